//! Turning a case into the bytes of a header: tokens minted with the
//! test-only keys, for one setting.

use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use serde_json::json;

use crate::matrix::{Case, Credential, Flaw, Server, Signer};

/// The trusted issuer's keys, and a key of the attacker's own.
const ISSUER_ES256: &[u8] = include_bytes!("../keys/issuer-es256.pem");
const ISSUER_RS256: &[u8] = include_bytes!("../keys/issuer-rs256.pem");
const FORGER_ES256: &[u8] = include_bytes!("../keys/forger-es256.pem");

/// A forged, expired or premature token's times, from [`World::now`].
const EXPIRED_AGO_S: u64 = 3_600;
const NOT_BEFORE_AHEAD_S: u64 = 86_400;
/// A valid token's `nbf`, before [`World::now`].
const VALID_SINCE_S: u64 = 60;

/// Where the cases are sent: what the servers trust and what the attacker
/// holds.
#[derive(Debug, Clone)]
pub struct World<'a> {
    /// The `iss` of the authorization server the servers trust.
    pub issuer: &'a str,
    /// An `iss` they do not trust.
    pub rogue_issuer: &'a str,
    /// The key id of the issuer's ES256 key in the servers' JWKS.
    pub kid_es256: &'a str,
    /// The key id of its RS256 key, if the servers trust that key too.
    pub kid_rs256: Option<&'a str>,
    /// The servers' time, in seconds since the Unix epoch.
    pub now: u64,
    /// How long the valid tokens last from `now`.
    pub lifetime_s: u64,
    /// Each server's resource URL: the audience its tokens must name.
    pub user_resource: String,
    pub payment_resource: String,
    /// The user id the attacker's own token is bound to.
    pub own_user: &'a str,
    /// The servers' static tokens (user, payment), if they hold any.
    pub static_tokens: Option<(&'a str, &'a str)>,
}

impl World<'_> {
    /// Whether the case means anything here: its key or static tokens are
    /// ones the servers hold.
    pub fn applies(&self, case: &Case) -> bool {
        match case.credential {
            Credential::Jwt {
                signer: Signer::IssuerRs256,
                ..
            } => self.kid_rs256.is_some(),
            Credential::UnknownStatic | Credential::OtherServersStatic => {
                self.static_tokens.is_some()
            }
            _ => true,
        }
    }

    /// The `Authorization` header value the case sends, if any. A case that
    /// does not [apply](Self::applies) gets none.
    pub fn authorization(&self, case: &Case) -> Option<String> {
        match case.credential {
            Credential::Absent => None,
            Credential::Header(value) => Some(value.to_owned()),
            Credential::Jwt {
                signer,
                audience,
                scopes,
                own_user,
                flaw,
            } => {
                let claims = self.claims(audience, &scopes.join(" "), own_user, flaw);
                self.sign(signer, &claims)
                    .map(|token| format!("Bearer {token}"))
            }
            Credential::UnknownStatic => self
                .static_tokens
                .map(|_| format!("Bearer {}", "x".repeat(40))),
            Credential::OtherServersStatic => {
                let (user, payment) = self.static_tokens?;
                let other = match case.server {
                    Server::User => payment,
                    Server::Payment => user,
                };
                Some(format!("Bearer {other}"))
            }
        }
    }

    /// A valid token from the trusted issuer (ES256) for the server whose
    /// resource URL is `resource`, granting `scope` (space-separated), for
    /// no particular user: what a legitimate orchestrator holds.
    pub fn valid_token(&self, resource: &str, scope: &str) -> String {
        self.sign(Signer::Issuer, &self.valid_claims(resource, scope))
            .expect("the issuer's ES256 key always signs")
    }

    /// A [valid token](Self::valid_token) that names the client it was
    /// issued to (`client_id`, as RFC 9068 access tokens do), so that each
    /// client holds a token of its own.
    pub fn client_token(&self, resource: &str, scope: &str, client_id: &str) -> String {
        let mut claims = self.valid_claims(resource, scope);
        claims["client_id"] = json!(client_id);
        self.sign(Signer::Issuer, &claims)
            .expect("the issuer's ES256 key always signs")
    }

    fn valid_claims(&self, resource: &str, scope: &str) -> serde_json::Value {
        let now = self.now;
        json!({
            "iss": self.issuer, "aud": resource, "scope": scope,
            "exp": now + self.lifetime_s, "nbf": now - VALID_SINCE_S,
        })
    }

    fn resource(&self, server: Server) -> &str {
        match server {
            Server::User => &self.user_resource,
            Server::Payment => &self.payment_resource,
        }
    }

    fn claims(
        &self,
        audience: Server,
        scope: &str,
        own_user: bool,
        flaw: Flaw,
    ) -> serde_json::Value {
        let now = self.now;
        let mut claims = json!({
            "iss": self.issuer, "aud": self.resource(audience), "scope": scope,
            "exp": now + self.lifetime_s, "nbf": now - VALID_SINCE_S,
        });
        if own_user {
            claims["sub"] = json!(self.own_user);
        }
        match flaw {
            Flaw::None => {}
            Flaw::Expired => claims["exp"] = json!(now - EXPIRED_AGO_S),
            Flaw::NotYetValid => claims["nbf"] = json!(now + NOT_BEFORE_AHEAD_S),
            Flaw::OtherIssuer => claims["iss"] = json!(self.rogue_issuer),
        }
        claims
    }

    fn sign(&self, signer: Signer, claims: &serde_json::Value) -> Option<String> {
        let (pem, algorithm, kid) = match signer {
            Signer::Issuer => (ISSUER_ES256, Algorithm::ES256, self.kid_es256),
            Signer::Forger => (FORGER_ES256, Algorithm::ES256, self.kid_es256),
            Signer::IssuerRs256 => (ISSUER_RS256, Algorithm::RS256, self.kid_rs256?),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        Some(
            jsonwebtoken::encode(&header, claims, &encoding_key(pem, algorithm))
                .expect("the test keys sign"),
        )
    }
}

/// The JWKS the servers of `world` trust: the issuer's ES256 key under
/// [`World::kid_es256`], and its RS256 key under [`World::kid_rs256`] if
/// that is set.
pub fn jwks(world: &World<'_>) -> JwkSet {
    let jwk = |pem, algorithm, kid: &str| {
        let mut jwk = Jwk::from_encoding_key(&encoding_key(pem, algorithm), algorithm)
            .expect("the test keys have JWKs");
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    };
    let mut keys = vec![jwk(ISSUER_ES256, Algorithm::ES256, world.kid_es256)];
    if let Some(kid) = world.kid_rs256 {
        keys.push(jwk(ISSUER_RS256, Algorithm::RS256, kid));
    }
    JwkSet { keys }
}

/// The key in a PEM file of `keys/`. They are compiled in and checked by
/// this crate's tests: a failure is a broken build, not bad input.
fn encoding_key(pem: &[u8], algorithm: Algorithm) -> EncodingKey {
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        _ => EncodingKey::from_ec_pem(pem),
    }
    .expect("the test keys are valid PEM")
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::MATRIX;

    fn world(kid_rs256: Option<&'static str>, static_tokens: bool) -> World<'static> {
        World {
            issuer: "https://auth.example.test",
            rogue_issuer: "https://evil.example.test",
            kid_es256: "es",
            kid_rs256,
            now: 1_900_000_000,
            lifetime_s: 600,
            user_resource: "http://u/mcp".into(),
            payment_resource: "http://p/mcp".into(),
            own_user: "intruder",
            static_tokens: static_tokens
                .then_some(("user-static-token-0123", "payment-static-token")),
        }
    }

    #[test]
    fn every_case_applies_where_the_servers_hold_all_the_keys() {
        let full = world(Some("rs"), true);
        for case in &MATRIX {
            assert!(full.applies(case), "{}", case.name);
            let header = full.authorization(case);
            assert_eq!(
                header.is_none(),
                case.credential == Credential::Absent,
                "{}",
                case.name
            );
        }
        let jwt_only = world(None, false);
        let skipped: Vec<&str> = MATRIX
            .iter()
            .filter(|c| !jwt_only.applies(c))
            .map(|c| c.name)
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(MATRIX[..13].iter().all(|c| jwt_only.applies(c)));
    }

    #[test]
    fn minted_tokens_verify_with_the_jwks_and_carry_their_flaw() {
        let world = world(Some("rs"), false);
        let keys = jwks(&world);
        let key = |kid: &str| {
            let jwk = keys.find(kid).expect("the key is in the JWKS");
            DecodingKey::from_jwk(jwk).unwrap()
        };
        let expired = MATRIX.iter().find(|c| c.name == "expired").unwrap();
        let header = world.authorization(expired).unwrap();
        let token = header.strip_prefix("Bearer ").unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&["http://p/mcp"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key("es"), &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["exp"], json!(world.now - EXPIRED_AGO_S));
        assert_eq!(
            claims["scope"],
            json!("transactions:read transactions:read:any")
        );

        let forged = MATRIX
            .iter()
            .find(|c| c.name == "forged signature")
            .unwrap();
        let header = world.authorization(forged).unwrap();
        let token = header.strip_prefix("Bearer ").unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(token, &key("es"), &validation).is_err());
    }
}
