//! The reference **user server**: an MCP server that maps email addresses to
//! user ids with one read-only tool, `getUserIdByEmail {email}`.
//!
//! - `domain.rs`: the validated [`UserStore`] and its lookup, and
//!   [`email_key`], the form two addresses are compared in (pure);
//! - `tools.rs`: the rmcp handler [`UserServer`];
//! - `main.rs`: the `user-server` binary, which picks the transport.
//!
//! ```
//! use user_server::{UserStore, LookupError};
//! let store = UserStore::demo();
//! assert_eq!(store.find_by_email(" BOB@example.com ").unwrap().name, "Bob");
//! assert!(matches!(store.find_by_email("nobody@example.com"), Err(LookupError::NotFound { .. })));
//! ```

mod domain;
mod tools;

use std::{net::SocketAddr, path::Path};

pub use domain::{DatasetError, LookupError, User, UserRecord, UserStore, email_key};
pub use tools::UserServer;

/// Where `user-server --http` listens when no address is given, as in the
/// original demo.
const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8082);

/// The OAuth scope every request to the user server needs over HTTP.
pub const SCOPE_READ: &str = "users:read";

/// What the kit needs to serve this server: its name, default address and
/// what its HTTP endpoint protects.
pub const SPEC: mcp_server_kit::ServerSpec = mcp_server_kit::ServerSpec {
    name: "user-server",
    default_http: DEFAULT_HTTP_ADDR,
    protection: mcp_server_kit::Protection {
        scope: SCOPE_READ,
        scopes_supported: &[SCOPE_READ],
        guard: None,
    },
};

/// The user server's part of a dataset file. The payment server's part,
/// `transactions`, may sit in the same file and is ignored here.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetFile {
    users: Vec<UserRecord>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "belongs to the payment server; accepted, not read"
    )]
    transactions: serde::de::IgnoredAny,
}

/// Loads the users of a dataset file. Nothing is loaded if any record is bad.
pub fn load_users(path: &Path) -> Result<UserStore, mcp_server_kit::DataFileError> {
    let file: DatasetFile = mcp_server_kit::read_json(path)?;
    UserStore::from_records(file.users).map_err(|error| mcp_server_kit::DataFileError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_example_dataset_is_the_embedded_demo() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../example-data.json"));
        let loaded = load_users(path).unwrap();
        assert_eq!(loaded.users(), UserStore::demo().users());
    }
}
