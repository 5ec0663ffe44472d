//! The rmcp adapter: exposes the [`Ledger`] as the MCP tool
//! `getTransactionsUsingUserId`.

use std::sync::Arc;

use rmcp::{
    RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

use crate::domain::{COUNT_MAX, Ledger, QueryError, Transaction};

/// Arguments of `getTransactionsUsingUserId`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = drop_null_default)]
pub(crate) struct GetTransactionsArgs {
    /// The user's id, as returned by the user server's getUserIdByEmail.
    pub(crate) user_id: String,
    /// How many of the newest transactions to return, 1 to 1000.
    /// Omit it for all of them (at most 1000).
    #[serde(default)]
    #[schemars(schema_with = "count_schema")]
    pub(crate) count: Option<serde_json::Value>,
}

/// One transaction on the wire. Money is exact: `amount` is a decimal string
/// with the currency's number of decimal places, `amountMinor` the same value
/// in minor units (pence), `currency` its ISO 4217 code.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionView {
    pub(crate) id: String,
    pub(crate) user_id: String,
    /// Decimal string in major units, e.g. "12.50".
    pub(crate) amount: String,
    /// The same amount in minor units, e.g. 1250.
    #[schemars(schema_with = "non_negative_integer")]
    pub(crate) amount_minor: u64,
    /// ISO 4217 currency code, e.g. "GBP".
    pub(crate) currency: String,
    pub(crate) description: String,
    /// Calendar date, YYYY-MM-DD.
    pub(crate) date: String,
}

impl From<&Transaction> for TransactionView {
    fn from(t: &Transaction) -> Self {
        Self {
            id: t.id.clone(),
            user_id: t.user_id.clone(),
            amount: t.amount.decimal(),
            amount_minor: t.amount.minor,
            currency: t.amount.currency.code().to_owned(),
            description: t.description.clone(),
            date: t.date.format("%Y-%m-%d").to_string(),
        }
    }
}

/// Structured result of `getTransactionsUsingUserId`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionsResult {
    pub(crate) user_id: String,
    /// Newest first (date descending; on the same day, the later-recorded first).
    pub(crate) transactions: Vec<TransactionView>,
    /// How many transactions the user has in all, before the cut to `count`.
    #[schemars(schema_with = "non_negative_integer")]
    pub(crate) total: usize,
}

/// A plain integer in [1, COUNT_MAX]: one `type`, no non-standard `format`,
/// so that every client's schema dialect accepts it.
fn count_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer", "minimum": 1, "maximum": COUNT_MAX })
}

/// `#[serde(default)]` keeps `count` optional but makes schemars add
/// `"default": null`, which the integer schema itself forbids.
fn drop_null_default(schema: &mut schemars::Schema) {
    if let Some(count) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("count"))
        .and_then(|c| c.as_object_mut())
    {
        count.remove("default");
    }
}

fn non_negative_integer(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer", "minimum": 0 })
}

/// The payment MCP server. Cheap to clone: one per session.
#[derive(Debug, Clone)]
pub struct PaymentServer {
    ledger: Arc<Ledger>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PaymentServer {
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger: Arc::new(ledger),
            tool_router: Self::tool_router(),
        }
    }

    /// List a user's transactions, newest first, optionally only the newest
    /// `count`. Returns a JSON array as text, and {userId, transactions,
    /// total} as structured content. An unknown user id gives an empty list.
    #[tool(
        name = "getTransactionsUsingUserId",
        output_schema = rmcp::handler::server::common::schema_for_output::<TransactionsResult>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_transactions(
        &self,
        Parameters(args): Parameters<GetTransactionsArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        // The HTTP layer already refused this with a 403; the rule holds on
        // every transport, and a request nobody vouched for is refused.
        let allowed = mcp_server_kit::principal(&context.extensions)
            .ok_or_else(|| SCOPE_READ.to_owned())
            .and_then(|p| may_read(p, &args.user_id));
        if let Err(scope) = allowed {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "access denied: this call needs the scope {scope}"
            ))]);
        }
        let history = parse_count(args.count.as_ref())
            .and_then(|count| self.ledger.history(&args.user_id, count));
        let history = match history {
            Ok(history) => history,
            Err(error) => {
                return CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
            }
        };
        let transactions: Vec<TransactionView> =
            history.transactions.into_iter().map(Into::into).collect();
        let text = serde_json::to_string(&transactions).expect("transactions serialise to JSON");
        let result = TransactionsResult {
            user_id: args.user_id,
            transactions,
            total: history.total,
        };
        let mut reply = CallToolResult::success(vec![ContentBlock::text(text)]);
        reply.structured_content =
            Some(serde_json::to_value(result).expect("result serialises to JSON"));
        reply
    }
}

/// Every request over HTTP needs this scope.
pub const SCOPE_READ: &str = "transactions:read";
/// Lets a token bound to one user (its `sub`) read anyone's transactions.
pub const SCOPE_READ_ANY: &str = "transactions:read:any";

/// May `principal` read the transactions of `user_id`? It may if it holds
/// [`SCOPE_READ`] and either [`SCOPE_READ_ANY`] or `sub` = `user_id`.
/// `Err` names the scope it lacks.
pub(crate) fn may_read(principal: &mcp_server_kit::Principal, user_id: &str) -> Result<(), String> {
    if !principal.has_scope(SCOPE_READ) {
        return Err(SCOPE_READ.to_owned());
    }
    if principal.has_scope(SCOPE_READ_ANY) || principal.subject() == Some(user_id) {
        return Ok(());
    }
    Err(SCOPE_READ_ANY.to_owned())
}

/// The HTTP layer's check of a `tools/call` before it reaches the tool, so
/// that a refusal is a 403 and the tool never runs: the rule of [`may_read`].
pub(crate) fn guard(
    principal: &mcp_server_kit::Principal,
    tool: &str,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    if tool != "getTransactionsUsingUserId" {
        return Ok(());
    }
    match arguments.get("userId").and_then(|v| v.as_str()) {
        Some(user_id) => may_read(principal, user_id),
        // Malformed arguments: the tool refuses them itself, with no data.
        None => Ok(()),
    }
}

/// `count` arrives as raw JSON so that a wrong type gets the same clear
/// message as a wrong value. `2.0` is accepted as 2 (some clients send floats).
fn parse_count(raw: Option<&serde_json::Value>) -> Result<Option<u32>, QueryError> {
    let bad = |value: &serde_json::Value| QueryError::BadCount {
        got: value.to_string(),
    };
    let value = match raw {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let number = value.as_number().ok_or_else(|| bad(value))?;
    let integer = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => n,
        (None, Some(f)) if f.fract() == 0.0 && (1.0..=f64::from(COUNT_MAX)).contains(&f) => {
            f as u64
        }
        _ => return Err(bad(value)),
    };
    match u32::try_from(integer) {
        Ok(n @ 1..=COUNT_MAX) => Ok(Some(n)),
        _ => Err(bad(value)),
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PaymentServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "payment-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Payment ledger. getTransactionsUsingUserId lists a user's transactions newest \
                 first; get the user id from the user directory first.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_are_portable_single_type_and_count_is_optional() {
        let input = rmcp::handler::server::common::schema_for_type::<GetTransactionsArgs>();
        assert_eq!(input["required"], json!(["userId"]));
        let count = &input["properties"]["count"];
        assert_eq!(count["type"], "integer");
        assert_eq!(
            (count["minimum"].clone(), count["maximum"].clone()),
            (json!(1), json!(1000))
        );
        assert!(
            count.get("default").is_none(),
            "a null default breaks the integer schema"
        );
        let output = rmcp::handler::server::common::schema_for_output::<TransactionsResult>();
        let text = serde_json::to_string(&*output).unwrap();
        assert!(
            !text.contains("\"format\""),
            "non-standard formats such as uint64: {text}"
        );
    }

    #[test]
    fn a_user_bound_token_reads_only_its_own_transactions() {
        use mcp_server_kit::Principal;
        let bob = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";
        let alice = "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d";
        let bound = Principal::jwt(Some(bob.into()), [SCOPE_READ.to_owned()]);
        assert_eq!(may_read(&bound, bob), Ok(()));
        assert_eq!(may_read(&bound, alice), Err(SCOPE_READ_ANY.to_owned()));
        let any = Principal::jwt(
            Some(bob.into()),
            [SCOPE_READ.to_owned(), SCOPE_READ_ANY.to_owned()],
        );
        assert_eq!(may_read(&any, alice), Ok(()));
        let unbound = Principal::jwt(None, [SCOPE_READ.to_owned()]);
        assert_eq!(may_read(&unbound, bob), Err(SCOPE_READ_ANY.to_owned()));
        let no_scope = Principal::jwt(Some(bob.into()), ["users:read".to_owned()]);
        assert_eq!(may_read(&no_scope, bob), Err(SCOPE_READ.to_owned()));
        assert_eq!(may_read(&Principal::local(), alice), Ok(()));
        let args = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(
            guard(
                &bound,
                "getTransactionsUsingUserId",
                &args(json!({"userId": alice}))
            ),
            Err(SCOPE_READ_ANY.to_owned())
        );
        assert_eq!(
            guard(&bound, "other", &args(json!({"userId": alice}))),
            Ok(())
        );
    }

    #[test]
    fn count_accepts_integers_in_range_and_names_anything_else() {
        assert_eq!(parse_count(None), Ok(None));
        assert_eq!(parse_count(Some(&json!(null))), Ok(None));
        assert_eq!(parse_count(Some(&json!(2))), Ok(Some(2)));
        assert_eq!(parse_count(Some(&json!(2.0))), Ok(Some(2)));
        assert_eq!(parse_count(Some(&json!(1000))), Ok(Some(1000)));
        for (raw, shown) in [
            (json!(0), "0"),
            (json!(-1), "-1"),
            (json!(1001), "1001"),
            (json!(2.5), "2.5"),
            (json!(1e300), "1e+300"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!("5"), "\"5\""),
            (json!([1]), "[1]"),
        ] {
            assert_eq!(
                parse_count(Some(&raw)).unwrap_err().to_string(),
                format!("count must be an integer between 1 and 1000, got {shown}")
            );
        }
    }
}
