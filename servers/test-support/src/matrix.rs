//! The cases, as data.

use payment_server::{SCOPE_READ as TRANSACTIONS_READ, SCOPE_READ_ANY as TRANSACTIONS_READ_ANY};
use serde_json::json;
use user_server::SCOPE_READ as USERS_READ;

/// A reference server, as the target of a case or the audience of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    User,
    Payment,
}

impl Server {
    /// The name the orchestrator and the harness give it.
    pub fn name(self) -> &'static str {
        match self {
            Server::User => "user",
            Server::Payment => "payment",
        }
    }
}

/// Who signs a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The authorization server the servers trust, with its ES256 key.
    Issuer,
    /// The same authorization server with its RS256 key (only where the
    /// servers trust one: [`crate::World::kid_rs256`]).
    IssuerRs256,
    /// A P-256 key of the attacker's own, under the issuer's key id.
    Forger,
}

/// What a JWT gets wrong besides its signer, audience and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    None,
    /// `exp` an hour ago.
    Expired,
    /// `nbf` a day ahead.
    NotYetValid,
    /// `iss` names an authorization server the servers do not trust.
    OtherIssuer,
}

/// How a case's `Authorization` header is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No header at all.
    Absent,
    /// This header value, verbatim.
    Header(&'static str),
    /// A JWT, `own_user` when it is bound (`sub`) to the attacker's own user.
    Jwt {
        signer: Signer,
        audience: Server,
        scopes: &'static [&'static str],
        own_user: bool,
        flaw: Flaw,
    },
    /// A static-looking token the server does not hold (only where the
    /// servers hold static tokens).
    UnknownStatic,
    /// The other server's static token, replayed.
    OtherServersStatic,
}

/// What the server must answer: the status and its RFC 6750 challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401 with no error code: no credentials came.
    NoCredentials,
    /// 401 `invalid_request`: the header is not `Bearer <token>`.
    BadRequest,
    /// 401 `invalid_token`, with a description containing this.
    BadToken(&'static str),
    /// 403 `insufficient_scope`, naming this scope.
    Scope(&'static str),
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Scope(_) => 403,
            _ => 401,
        }
    }

    /// Whether a `WWW-Authenticate` value is this refusal's challenge: a
    /// Bearer challenge pointing to the resource metadata, with this error
    /// code and detail.
    pub fn challenged_by(self, challenge: &str) -> bool {
        let error = |code: &str| challenge.contains(&format!("error=\"{code}\""));
        challenge.starts_with("Bearer ")
            && challenge.contains("resource_metadata=\"http")
            && match self {
                Refusal::NoCredentials => !challenge.contains("error="),
                Refusal::BadRequest => error("invalid_request"),
                Refusal::BadToken(description) => {
                    error("invalid_token") && challenge.contains(description)
                }
                Refusal::Scope(scope) => {
                    error("insufficient_scope") && challenge.contains(&format!("scope=\"{scope}\""))
                }
            }
    }
}

/// One request the servers must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub name: &'static str,
    /// Where it is sent: the user server gets a lookup of the victim's
    /// email, the payment server a listing of the victim's transactions.
    pub server: Server,
    pub credential: Credential,
    pub content_type: &'static str,
    pub refusal: Refusal,
}

/// The user whose data the cases try to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim<'a> {
    pub id: &'a str,
    pub email: &'a str,
}

impl Case {
    /// The JSON-RPC `tools/call` the case sends.
    pub fn body(&self, victim: &Victim<'_>) -> String {
        let (tool, arguments) = match self.server {
            Server::User => ("getUserIdByEmail", json!({ "email": victim.email })),
            Server::Payment => ("getTransactionsUsingUserId", json!({ "userId": victim.id })),
        };
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}})
        .to_string()
    }
}

const JSON: &str = "application/json";
const BOTH_READS: &[&str] = &[USERS_READ, TRANSACTIONS_READ];
const EVERY_READ: &[&str] = &[TRANSACTIONS_READ, TRANSACTIONS_READ_ANY];

/// A well-formed JWT of the trusted issuer.
const fn jwt(audience: Server, scopes: &'static [&'static str], flaw: Flaw) -> Credential {
    Credential::Jwt {
        signer: Signer::Issuer,
        audience,
        scopes,
        own_user: false,
        flaw,
    }
}

const fn case(
    name: &'static str,
    server: Server,
    credential: Credential,
    refusal: Refusal,
) -> Case {
    Case {
        name,
        server,
        credential,
        content_type: JSON,
        refusal,
    }
}

/// The attacker's own valid token, bound to its own user.
const OWN_TOKEN: Credential = Credential::Jwt {
    signer: Signer::Issuer,
    audience: Server::Payment,
    scopes: &[TRANSACTIONS_READ],
    own_user: true,
    flaw: Flaw::None,
};

/// Every case, in the order they are sent. (The harness's intruder sends
/// them in this order, and its traces record it: append new cases.)
pub const MATRIX: [Case; 16] = [
    case(
        "no token",
        Server::Payment,
        Credential::Absent,
        Refusal::NoCredentials,
    ),
    case(
        "no token",
        Server::User,
        Credential::Absent,
        Refusal::NoCredentials,
    ),
    case(
        "malformed header",
        Server::Payment,
        Credential::Header("Bearer"),
        Refusal::BadRequest,
    ),
    case(
        "wrong scheme",
        Server::User,
        Credential::Header("Basic aW50cnVkZXI6cGFzc3dvcmQ="),
        Refusal::BadRequest,
    ),
    case(
        "forged signature",
        Server::Payment,
        Credential::Jwt {
            signer: Signer::Forger,
            audience: Server::Payment,
            scopes: EVERY_READ,
            own_user: false,
            flaw: Flaw::None,
        },
        Refusal::BadToken("signature does not verify"),
    ),
    case(
        "expired",
        Server::Payment,
        jwt(Server::Payment, EVERY_READ, Flaw::Expired),
        Refusal::BadToken("has expired"),
    ),
    case(
        "not yet valid",
        Server::User,
        jwt(Server::User, &[USERS_READ], Flaw::NotYetValid),
        Refusal::BadToken("not valid yet"),
    ),
    case(
        "wrong issuer",
        Server::User,
        jwt(Server::User, &[USERS_READ], Flaw::OtherIssuer),
        Refusal::BadToken("another authorization server"),
    ),
    case(
        "user-server token replayed at the payment server",
        Server::Payment,
        jwt(Server::User, BOTH_READS, Flaw::None),
        Refusal::BadToken("issued for another resource"),
    ),
    case(
        "payment-server token replayed at the user server",
        Server::User,
        jwt(Server::Payment, BOTH_READS, Flaw::None),
        Refusal::BadToken("issued for another resource"),
    ),
    case(
        "missing scope",
        Server::Payment,
        jwt(Server::Payment, &[USERS_READ], Flaw::None),
        Refusal::Scope(TRANSACTIONS_READ),
    ),
    case(
        "own token asking for another user's transactions",
        Server::Payment,
        OWN_TOKEN,
        Refusal::Scope(TRANSACTIONS_READ_ANY),
    ),
    Case {
        // rmcp takes any case of the media type: so must the checks.
        content_type: "Application/JSON; charset=utf-8",
        ..case(
            "the same in a mixed-case Content-Type",
            Server::Payment,
            OWN_TOKEN,
            Refusal::Scope(TRANSACTIONS_READ_ANY),
        )
    },
    case(
        "unknown static token",
        Server::User,
        Credential::UnknownStatic,
        Refusal::BadToken("not valid for this server"),
    ),
    case(
        "the user server's static token replayed at the payment server",
        Server::Payment,
        Credential::OtherServersStatic,
        Refusal::BadToken("not valid for this server"),
    ),
    case(
        "RS256 token for another audience",
        Server::Payment,
        Credential::Jwt {
            signer: Signer::IssuerRs256,
            audience: Server::User,
            scopes: &[TRANSACTIONS_READ],
            own_user: false,
            flaw: Flaw::None,
        },
        Refusal::BadToken("issued for another resource"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_is_a_denial_and_both_servers_are_attacked() {
        assert!(
            MATRIX
                .iter()
                .all(|c| matches!(c.refusal.status(), 401 | 403))
        );
        for server in [Server::User, Server::Payment] {
            assert!(MATRIX.iter().any(|c| c.server == server), "{server:?}");
        }
    }

    #[test]
    fn a_challenge_matches_only_its_own_refusal() {
        let metadata = r#"resource_metadata="http://h/.well-known/oauth-protected-resource/mcp""#;
        let missing = format!(r#"Bearer {metadata}, scope="transactions:read""#);
        let scope = format!(
            r#"Bearer error="insufficient_scope", scope="transactions:read:any", {metadata}"#
        );
        let expired = format!(
            r#"Bearer error="invalid_token", error_description="the token has expired", {metadata}"#
        );
        assert!(Refusal::NoCredentials.challenged_by(&missing));
        assert!(!Refusal::NoCredentials.challenged_by(&expired));
        assert!(Refusal::Scope(TRANSACTIONS_READ_ANY).challenged_by(&scope));
        assert!(!Refusal::Scope(TRANSACTIONS_READ).challenged_by(&scope));
        assert!(Refusal::BadToken("has expired").challenged_by(&expired));
        assert!(!Refusal::BadToken("not valid yet").challenged_by(&expired));
        assert!(!Refusal::BadRequest.challenged_by(&expired));
        assert!(!Refusal::BadToken("has expired").challenged_by("Basic realm=\"x\""));
    }

    #[test]
    fn bodies_ask_for_the_victims_data() {
        let victim = Victim {
            id: "u-1",
            email: "v@example.com",
        };
        let lookup = MATRIX[1].body(&victim);
        assert!(lookup.contains("getUserIdByEmail") && lookup.contains("v@example.com"));
        let list = MATRIX[0].body(&victim);
        assert!(list.contains("getTransactionsUsingUserId") && list.contains("u-1"));
    }
}
