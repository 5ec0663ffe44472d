//! The rmcp adapter: exposes [`UserStore`] as the MCP tool `getUserIdByEmail`.

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

use crate::domain::UserStore;

/// Arguments of `getUserIdByEmail`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetUserIdArgs {
    /// The user's email address. Matching ignores case and surrounding whitespace.
    pub(crate) email: String,
}

/// Structured result of `getUserIdByEmail`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserIdResult {
    /// The user's id, as the payment server knows it.
    pub(crate) user_id: String,
    /// The email as stored, which may differ in case from the one asked for.
    pub(crate) email: String,
    /// The user's display name.
    pub(crate) name: String,
}

/// The user-directory MCP server. Cheap to clone: one per session.
#[derive(Debug, Clone)]
pub struct UserServer {
    store: Arc<UserStore>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl UserServer {
    pub fn new(store: UserStore) -> Self {
        Self {
            store: Arc::new(store),
            tool_router: Self::tool_router(),
        }
    }

    /// Look up a user's id by email address (case-insensitive). Returns the id
    /// as text, and {userId, email, name} as structured content.
    #[tool(
        name = "getUserIdByEmail",
        output_schema = rmcp::handler::server::common::schema_for_output::<UserIdResult>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_user_id_by_email(
        &self,
        Parameters(GetUserIdArgs { email }): Parameters<GetUserIdArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        // The HTTP layer already refused anyone without the scope; this
        // holds on any transport, and refuses a request nobody vouched for.
        let allowed = mcp_server_kit::principal(&context.extensions)
            .is_some_and(|p| p.has_scope(crate::SCOPE_READ));
        if !allowed {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "access denied: this call needs the scope {}",
                crate::SCOPE_READ
            ))]);
        }
        match self.store.find_by_email(&email) {
            Ok(user) => {
                let result = UserIdResult {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    name: user.name.clone(),
                };
                let mut reply = CallToolResult::success(vec![ContentBlock::text(&user.id)]);
                reply.structured_content =
                    Some(serde_json::to_value(result).expect("UserIdResult serialises to JSON"));
                reply
            }
            Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for UserServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "user-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "User directory. getUserIdByEmail turns an email address into the user id \
                 that other systems (such as the payment server) key their records by.",
            )
    }
}
