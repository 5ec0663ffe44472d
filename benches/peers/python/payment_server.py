"""The payment ledger: MCP tool `getTransactionsUsingUserId {userId, count?}`,
as the TS peer (../ts/payment-server.mjs) and the Rust `payment-server`
(servers/payment).

    python payment_server.py              # stdio
    python payment_server.py --http 8083  # streamable HTTP at http://127.0.0.1:8083/mcp
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from serve import STRICT, load_data, serve, strict_tool

COUNT_MAX = 1000
ID_BYTES_MAX = 128

# ISO 4217 currencies whose minor unit is not 1/100 (the TS peer asks Intl).
DECIMAL_PLACES = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


def money(amount: str, currency: str) -> dict[str, Any]:
    """Exact money: the decimal string with the currency's decimal places, and
    the same value in integer minor units. Never a float."""
    places = DECIMAL_PLACES.get(currency, 2)
    whole, _, fraction = amount.partition(".")
    digits = fraction.ljust(places, "0")
    return {"amount": f"{whole}.{digits}" if places else whole, "amountMinor": int(whole + digits)}


def view(t: dict[str, str]) -> dict[str, Any]:
    """One transaction on the wire, keys in the TS peer's order."""
    return {
        "id": t["id"],
        "userId": t["userId"],
        **money(t["amount"], t["currency"]),
        "currency": t["currency"],
        "description": t["description"],
        "date": t["date"],
    }


def by_user(transactions: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Each user's transactions, newest first: date descending; on the same
    day, the transaction listed later in the dataset first."""
    newest_first = sorted(enumerate(transactions), key=lambda it: (it[1]["date"], it[0]), reverse=True)
    ledger: dict[str, list[dict[str, Any]]] = {}
    for _, t in newest_first:
        ledger.setdefault(t["userId"], []).append(view(t))
    return ledger


LEDGER = by_user(load_data()["transactions"])


# The structured result. (No docstrings: pydantic would publish them as
# schema descriptions, which the TS peer does not have.)
class Transaction(BaseModel):
    model_config = STRICT
    id: str
    userId: str
    amount: str = Field(description='Decimal string in major units, e.g. "12.50".')
    amountMinor: int = Field(ge=0, description="The same amount in minor units, e.g. 1250.")
    currency: str = Field(description='ISO 4217 currency code, e.g. "GBP".')
    description: str
    date: str = Field(description="Calendar date, YYYY-MM-DD.")


class Transactions(BaseModel):
    model_config = STRICT
    userId: str
    transactions: list[Transaction] = Field(
        description="Newest first (date descending; on the same day, the later-recorded first)."
    )
    total: int = Field(
        ge=0, description="How many transactions the user has in all, before the cut to `count`."
    )


USER_ID = Field(description="The user's id, as returned by the user server's getUserIdByEmail.")
COUNT = Field(
    ge=1,
    le=COUNT_MAX,
    description=(
        f"How many of the newest transactions to return, 1 to {COUNT_MAX}. "
        f"Omit it for all of them (at most {COUNT_MAX})."
    ),
)


async def get_transactions_using_user_id(
    userId: Annotated[str, USER_ID], count: Annotated[int, COUNT] = COUNT_MAX
) -> Annotated[CallToolResult, Transactions]:
    if not 1 <= len(userId.encode()) <= ID_BYTES_MAX:
        text = f"userId must be 1 to {ID_BYTES_MAX} bytes"
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
    # An unknown user id gives an empty list, not an error (separate systems).
    every = LEDGER.get(userId, [])
    transactions = every[:count]
    text = json.dumps(transactions, separators=(",", ":"), ensure_ascii=False)  # as JSON.stringify
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"userId": userId, "transactions": transactions, "total": len(every)},
    )


def new_server() -> MCPServer:
    tool = strict_tool(
        get_transactions_using_user_id,
        name="getTransactionsUsingUserId",
        description=(
            "List a user's transactions, newest first, optionally only the newest "
            "`count`. Returns a JSON array as text, and {userId, transactions, "
            "total} as structured content. An unknown user id gives an empty list."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    return MCPServer(
        "payment-server",
        version="0.1.0",
        instructions=(
            "Payment ledger. getTransactionsUsingUserId lists a user's transactions newest "
            "first; get the user id from the user directory first."
        ),
        tools=[tool],
        log_level="WARNING",
    )


if __name__ == "__main__":
    serve("payment-server", new_server())
