//! What a BridgeCore token says about its bearer.
//!
//! A token stands for one Odoo login on one tenant: the Odoo uid (`sub`), the database it was
//! checked against, and the BridgeCore session that holds the Odoo credential (`sid`, so logout
//! and revocation work by session). `typ` keeps the two kinds of token apart: a stolen access
//! token cannot be refreshed into a long-lived one, and a refresh token cannot call Odoo.

use serde::{Deserialize, Serialize};

/// What the bearer may administer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary user: Odoo calls with their own rights.
    User,
    /// May also use the tenant's admin endpoints (cache stats/clear, stats, health, ws stats).
    Admin,
}

/// Which of the two tokens a login hands out this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; sent with every call.
    Access,
    /// Long-lived; only ever sent to `/api/v1/auth/refresh` (and logout).
    Refresh,
}

impl TokenType {
    /// `"access"` or `"refresh"`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The claims of a BridgeCore token. Unknown claims are ignored, so tokens minted by a newer
/// version still verify during a rolling upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The Odoo uid, as decimal text (JWT `sub` is a string); see [`Claims::uid`].
    pub sub: String,
    /// The tenant (`tenants.<name>` in the YAML) the token was issued for.
    pub tenant: String,
    /// The Odoo database the login was checked against.
    pub db: String,
    /// The BridgeCore session id: the key of the stored Odoo credential and of revocation.
    pub sid: String,
    /// What the bearer may administer on `tenant`.
    pub role: Role,
    /// `model:access` restrictions (see [`Scopes`](super::Scopes)); empty means no restriction
    /// beyond the user's own Odoo rights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer; the verifier requires it to equal the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience; the verifier requires it to equal the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Token id, for revoking a single token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Access or refresh.
    pub typ: TokenType,
}

impl Claims {
    /// The Odoo uid. `None` unless `sub` is a positive integer in canonical decimal form (no
    /// sign, no leading zero), so two spellings of one uid can never be two rate-limit or
    /// cache identities.
    pub fn uid(&self) -> Option<i64> {
        let sub = self.sub.as_bytes();
        match sub.first() {
            Some(b'1'..=b'9') if sub.iter().all(u8::is_ascii_digit) => self.sub.parse().ok(),
            _ => None,
        }
    }

    /// Whether the bearer may use `tenant`'s admin endpoints: an admin token is admin only for
    /// the tenant it was issued for.
    pub fn is_admin_for(&self, tenant: &str) -> bool {
        self.role == Role::Admin && self.tenant == tenant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, role: Role) -> Claims {
        Claims {
            sub: sub.to_owned(),
            tenant: "odoo-prod".to_owned(),
            db: "production_db".to_owned(),
            sid: "s1".to_owned(),
            role,
            scopes: Vec::new(),
            iat: 1,
            exp: 2,
            nbf: None,
            iss: None,
            aud: None,
            jti: None,
            typ: TokenType::Access,
        }
    }

    #[test]
    fn uid_only_from_canonical_decimal() {
        for (sub, uid) in [
            ("2", Some(2)),
            ("42", Some(42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
            ("0", None),
            ("007", None),
            ("-1", None),
            ("+1", None),
            (" 1", None),
            ("1.0", None),
            ("", None),
            ("admin", None),
        ] {
            assert_eq!(claims(sub, Role::User).uid(), uid, "{sub:?}");
        }
    }

    #[test]
    fn admin_only_for_its_own_tenant() {
        assert!(claims("2", Role::Admin).is_admin_for("odoo-prod"));
        assert!(!claims("2", Role::Admin).is_admin_for("odoo-test"));
        assert!(!claims("2", Role::User).is_admin_for("odoo-prod"));
    }

    #[test]
    fn serialised_names() -> Result<(), serde_json::Error> {
        let mut c = claims("2", Role::Admin);
        c.typ = TokenType::Refresh;
        let v = serde_json::to_value(&c)?;
        assert_eq!(v["role"], "admin");
        assert_eq!(v["typ"], "refresh");
        // Empty scopes and absent optionals stay out of the token.
        assert!(v.get("scopes").is_none());
        assert!(v.get("nbf").is_none());
        let back: Claims = serde_json::from_value(v)?;
        assert_eq!(back, c);
        assert!(serde_json::from_str::<Role>(r#""Admin""#).is_err());
        assert!(serde_json::from_str::<TokenType>(r#""id""#).is_err());
        Ok(())
    }
}
