//! The reference **payment server**: an MCP server holding a ledger of
//! transactions, with one read-only tool,
//! `getTransactionsUsingUserId {userId, count?}`.
//!
//! - `money.rs`: exact amounts ([`Money`]), integer minor units plus ISO 4217
//!   currency;
//! - `domain.rs`: the validated [`Ledger`] and its [`History`] query (pure);
//! - `tools.rs`: the rmcp handler [`PaymentServer`];
//! - `main.rs`: the `payment-server` binary, which picks the transport.
//!
//! **Access.** Over HTTP every request needs the scope `transactions:read`.
//! A token whose `sub` is a user id, and which lacks
//! `transactions:read:any`, reads only that user's transactions
//! (the rule is `may_read` in `tools.rs`, which the HTTP layer applies as
//! the `guard` of [`SPEC`]); asking for anyone else's is refused (HTTP 403).
//!
//! **An unknown user id gives an empty list, not an error.** The ledger is a
//! separate system from the user directory: it cannot tell a user who never
//! paid from one it never heard of, and saying "no such user" would let any
//! caller probe which ids exist.
//!
//! ```
//! use payment_server::Ledger;
//! let ledger = Ledger::demo();
//! let bob = ledger.history("b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f", Some(1)).unwrap();
//! assert_eq!(bob.transactions[0].description, "Coffee");
//! assert_eq!(bob.total, 4);
//! ```

mod domain;
mod money;
mod tools;

use std::{net::SocketAddr, path::Path};

pub use domain::{
    COUNT_MAX, DatasetError, History, Ledger, QueryError, Transaction, TransactionRecord,
};
pub use money::{Money, MoneyError};
pub use tools::{PaymentServer, SCOPE_READ, SCOPE_READ_ANY};

/// Where `payment-server --http` listens when no address is given, as in
/// the original demo.
const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8083);

/// What the kit needs to serve this server: its name, default address and
/// what its HTTP endpoint protects.
pub const SPEC: mcp_server_kit::ServerSpec = mcp_server_kit::ServerSpec {
    name: "payment-server",
    default_http: DEFAULT_HTTP_ADDR,
    protection: mcp_server_kit::Protection {
        scope: SCOPE_READ,
        scopes_supported: &[SCOPE_READ, SCOPE_READ_ANY],
        guard: Some(tools::guard),
    },
};

/// The payment server's part of a dataset file. The user server's part,
/// `users`, may sit in the same file and is ignored here.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetFile {
    transactions: Vec<TransactionRecord>,
    #[serde(default)]
    #[allow(dead_code, reason = "belongs to the user server; accepted, not read")]
    users: serde::de::IgnoredAny,
}

/// Loads the transactions of a dataset file. Nothing is loaded if any
/// record is bad.
pub fn load_ledger(path: &Path) -> Result<Ledger, mcp_server_kit::DataFileError> {
    let file: DatasetFile = mcp_server_kit::read_json(path)?;
    Ledger::from_records(file.transactions).map_err(|error| {
        mcp_server_kit::DataFileError::Invalid {
            path: path.to_owned(),
            message: error.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_example_dataset_is_the_embedded_demo() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../example-data.json"));
        let loaded = load_ledger(path).unwrap();
        let demo = Ledger::demo();
        for user in [
            "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f",
            "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d",
            "c3d4e5f6-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
        ] {
            assert_eq!(loaded.history(user, None), demo.history(user, None));
        }
        assert_eq!(loaded.len(), demo.len());
    }
}
