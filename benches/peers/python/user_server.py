"""The user directory: MCP tool `getUserIdByEmail {email}`, as the TS peer
(../ts/user-server.mjs) and the Rust `user-server` (servers/user).

    python user_server.py              # stdio
    python user_server.py --http 8082  # streamable HTTP at http://127.0.0.1:8082/mcp
"""

from __future__ import annotations

import json
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from serve import STRICT, load_data, serve, strict_tool

USERS = {user["email"].strip().lower(): user for user in load_data()["users"]}


# The structured result. (No docstring: pydantic would publish it as the
# outputSchema's description, which the TS peer does not have.)
class User(BaseModel):
    model_config = STRICT
    userId: str = Field(description="The user's id, as the payment server knows it.")
    email: str = Field(description="The email as stored, which may differ in case from the one asked for.")
    name: str = Field(description="The user's display name.")


def error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


EMAIL = Field(description="The user's email address. Matching ignores case and surrounding whitespace.")


async def get_user_id_by_email(email: Annotated[str, EMAIL]) -> Annotated[CallToolResult, User]:
    trimmed = email.strip()
    if "@" not in trimmed:
        quoted = json.dumps(trimmed, ensure_ascii=False)
        return error(f"Invalid email address {quoted}: missing separator character '@'")
    user = USERS.get(trimmed.lower())
    if user is None:
        return error(f"User with email {trimmed} not found")
    return CallToolResult(
        content=[TextContent(type="text", text=user["id"])],
        structured_content={"userId": user["id"], "email": user["email"], "name": user["name"]},
    )


def new_server() -> MCPServer:
    tool = strict_tool(
        get_user_id_by_email,
        name="getUserIdByEmail",
        description=(
            "Look up a user's id by email address (case-insensitive). Returns the id "
            "as text, and {userId, email, name} as structured content."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    return MCPServer(
        "user-server",
        version="0.1.0",
        instructions=(
            "User directory. getUserIdByEmail turns an email address into the user id "
            "that other systems (such as the payment server) key their records by."
        ),
        tools=[tool],
        log_level="WARNING",
    )


if __name__ == "__main__":
    serve("user-server", new_server())
