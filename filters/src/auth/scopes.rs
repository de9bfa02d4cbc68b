//! Token scopes: `model:access` restrictions on top of the user's own Odoo rights.
//!
//! A scope can only take rights away, never add any: Odoo still checks every call with the
//! user's credential. Scopes let an integration hold a token that can, say, only read partners
//! even though the user behind it is an administrator.
//!
//! The rules, chosen so that every doubt refuses:
//! - an empty list is unrestricted (the user's own rights);
//! - `read` allows reads, `write` allows writes **and reads** (a client that may change records
//!   may see them), `delete` allows only `unlink` (`write` does **not** imply it), `*` allows all;
//! - login calls ([`Category::Auth`]) are always allowed: they carry their own credential;
//! - a call without a model (`/web/session/*`, the `common` and `db` services, unknown routes)
//!   needs an unrestricted token or a `*:<access>` scope covering its category, since no
//!   model-specific scope can say anything about it.
//!
//! Scopes are parsed once (at login, or once per verified token) into [`Scopes`]; checking a
//! call is then a scan of a few entries with no allocation.

use std::fmt;
use std::str::FromStr;

use crate::classify::Category;

/// At most this many scopes per token: each one is bytes in every request, and a token must
/// stay under [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN).
pub const MAX_SCOPES: usize = 64;

/// Longest model name accepted in a scope (Odoo's `ir_model.model` is a varchar; real names
/// are far shorter).
const MAX_MODEL_LEN: usize = 128;

/// Why a scope list was refused. Messages quote at most 64 characters of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not of the form `model:access`.
    #[error("scope `{0}` must be `model:access`, e.g. `res.partner:read` or `*:read`")]
    Syntax(String),
    /// The model part is neither `*` nor an Odoo model name.
    #[error(
        "scope `{scope}`: `{model}` is neither `*` nor an Odoo model name (lowercase letters, \
         digits, `_` and `.`, e.g. `res.partner`)"
    )]
    BadModel {
        /// The whole scope.
        scope: String,
        /// Its model part.
        model: String,
    },
    /// The access part is none of `read`, `write`, `delete`, `*`.
    #[error("scope `{scope}`: access `{access}` must be read, write, delete or *")]
    BadAccess {
        /// The whole scope.
        scope: String,
        /// Its access part.
        access: String,
    },
    /// A login asked for a scope the user's granted scopes do not cover.
    #[error("scope `{0}` is not covered by the scopes granted")]
    NotGranted(String),
    /// More than [`MAX_SCOPES`].
    #[error("{0} scopes; at most {MAX_SCOPES} are allowed")]
    TooMany(usize),
}

/// What a scope allows on its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads.
    Read,
    /// Writes other than deletes, and reads.
    Write,
    /// Deletes (`unlink`) only.
    Delete,
    /// Everything (`*`).
    Any,
}

impl Access {
    /// `read`, `write`, `delete` or `*`, as written in a scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
            Access::Any => "*",
        }
    }

    fn parse(s: &str) -> Option<Access> {
        match s {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "delete" => Some(Access::Delete),
            "*" => Some(Access::Any),
            _ => None,
        }
    }

    /// Whether this access allows a call of `category` (other than [`Category::Auth`]).
    fn allows(self, category: Category) -> bool {
        matches!(
            (self, category),
            (Access::Any, _)
                | (Access::Read | Access::Write, Category::Read)
                | (Access::Write, Category::Write)
                | (Access::Delete, Category::Delete)
        )
    }

    /// Whether everything `other` allows, this allows too.
    fn covers(self, other: Access) -> bool {
        self == other || self == Access::Any || (self == Access::Write && other == Access::Read)
    }
}

/// One parsed `model:access` scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `None` is `*` (every model).
    model: Option<Box<str>>,
    access: Access,
}

impl Scope {
    /// Parses `model:access`: `model` an Odoo model name (`res.partner`) or `*`, `access` one
    /// of `read`, `write`, `delete`, `*`. Surrounding whitespace is ignored; nothing else is
    /// forgiven (`Res.Partner`, `sale.*`, `READ` are errors, since they would never match what
    /// they look like they should).
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        let s = s.trim();
        let Some((model, access)) = s.split_once(':') else {
            return Err(ScopeError::Syntax(clip(s)));
        };
        let model = if model == "*" {
            None
        } else if is_model_name(model) {
            Some(Box::from(model))
        } else {
            return Err(ScopeError::BadModel {
                scope: clip(s),
                model: clip(model),
            });
        };
        let access = Access::parse(access).ok_or_else(|| ScopeError::BadAccess {
            scope: clip(s),
            access: clip(access),
        })?;
        Ok(Scope { model, access })
    }

    /// The model, or `None` for `*`.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// What the scope allows on its model.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether this scope allows a call of `category` on `model` (`None`: a call without a
    /// model, which only a `*` scope can allow). [`Category::Auth`] is decided by [`allows`].
    pub fn allows(&self, model: Option<&str>, category: Category) -> bool {
        let model_ok = match (self.model.as_deref(), model) {
            (None, _) => true,
            (Some(mine), Some(model)) => mine == model,
            (Some(_), None) => false,
        };
        model_ok && self.access.allows(category)
    }

    /// Whether everything `other` allows, this scope allows too.
    pub fn covers(&self, other: &Scope) -> bool {
        let model_ok = match (self.model.as_deref(), other.model.as_deref()) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => false,
        };
        model_ok && self.access.covers(other.access)
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl fmt::Display for Scope {
    /// The canonical `model:access` form, as stored in tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.model.as_deref().unwrap_or("*"),
            self.access.as_str()
        )
    }
}

/// A parsed scope list, as a token carries it. Empty is unrestricted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses every scope; the first bad one is the error. More than [`MAX_SCOPES`] is refused.
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Scopes, ScopeError> {
        if scopes.len() > MAX_SCOPES {
            return Err(ScopeError::TooMany(scopes.len()));
        }
        scopes
            .iter()
            .map(|s| Scope::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Scopes)
    }

    /// Whether the list is empty (no restriction beyond the user's own rights).
    pub fn is_unrestricted(&self) -> bool {
        self.0.is_empty()
    }

    /// The parsed scopes.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// See [`allows`].
    pub fn allows(&self, model: Option<&str>, category: Category) -> bool {
        allows(&self.0, model, category)
    }

    /// The canonical strings, for the token's `scopes` claim.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }
}

/// Whether a token with `scopes` may make a call of `category` on `model` (`None` when the
/// call names no model). See the module documentation for the rules. Does not allocate.
pub fn allows(scopes: &[Scope], model: Option<&str>, category: Category) -> bool {
    category == Category::Auth
        || scopes.is_empty()
        || scopes.iter().any(|scope| scope.allows(model, category))
}

/// The scopes to put in a token when a login asks for `requested` and the user is `granted`:
/// - nothing requested: the granted scopes (an empty grant is unrestricted);
/// - otherwise the requested scopes, each of which must be covered by a granted one (an empty
///   grant covers everything), else [`ScopeError::NotGranted`].
///
/// The result is canonical (`model:access`) and free of duplicates, in request order.
pub fn narrow(requested: &[String], granted: &[String]) -> Result<Vec<String>, ScopeError> {
    let granted = Scopes::parse(granted)?;
    let requested = Scopes::parse(requested)?;
    if requested.is_unrestricted() {
        return Ok(dedup(granted.0));
    }
    if !granted.is_unrestricted() {
        if let Some(missing) = requested
            .0
            .iter()
            .find(|r| !granted.0.iter().any(|g| g.covers(r)))
        {
            return Err(ScopeError::NotGranted(missing.to_string()));
        }
    }
    Ok(dedup(requested.0))
}

fn dedup(scopes: Vec<Scope>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let s = scope.to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// An Odoo model name: dot-separated non-empty parts of lowercase ASCII letters, digits and
/// `_`, starting with a letter (`res.partner`, `x_custom`, `ir.model.fields`).
fn is_model_name(s: &str) -> bool {
    s.len() <= MAX_MODEL_LEN
        && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// At most 64 characters of user input, for error messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Scopes {
        Scopes::parse(list).expect("test scopes parse")
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parse_and_canonical_form() {
        for (input, model, access) in [
            ("res.partner:read", Some("res.partner"), Access::Read),
            ("sale.order:write", Some("sale.order"), Access::Write),
            (
                "ir.model.fields:delete",
                Some("ir.model.fields"),
                Access::Delete,
            ),
            ("x_custom_2:*", Some("x_custom_2"), Access::Any),
            ("*:read", None, Access::Read),
            ("*:*", None, Access::Any),
            ("  res.partner:read ", Some("res.partner"), Access::Read),
        ] {
            let scope = Scope::parse(input).expect("valid scope");
            assert_eq!(scope.model(), model, "{input}");
            assert_eq!(scope.access(), access, "{input}");
            assert_eq!(scope.to_string(), input.trim());
            assert_eq!(input.parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        for (input, want) in [
            ("", "must be `model:access`"),
            ("res.partner", "must be `model:access`"),
            (":read", "is neither `*` nor an Odoo model name"),
            ("Res.Partner:read", "is neither `*` nor an Odoo model name"),
            ("sale.*:read", "is neither `*` nor an Odoo model name"),
            ("res..partner:read", "is neither `*` nor an Odoo model name"),
            (".res:read", "is neither `*` nor an Odoo model name"),
            ("res.:read", "is neither `*` nor an Odoo model name"),
            ("1res:read", "is neither `*` nor an Odoo model name"),
            ("res partner:read", "is neither `*` nor an Odoo model name"),
            ("res.partner:READ", "must be read, write, delete or *"),
            ("res.partner:", "must be read, write, delete or *"),
            ("res.partner:read:write", "must be read, write, delete or *"),
            ("res.partner:unlink", "must be read, write, delete or *"),
        ] {
            let err = Scope::parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
        let long = format!("{}:read", "a".repeat(200));
        let err = Scope::parse(&long).expect_err("too long").to_string();
        assert!(err.len() < 300, "{err}");
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("m{i}:read")).collect();
        assert_eq!(
            Scopes::parse(&many),
            Err(ScopeError::TooMany(MAX_SCOPES + 1))
        );
    }

    #[test]
    fn allows_table() {
        use Category::{Auth, Delete, Read, Write};
        let p = Some("res.partner");
        let o = Some("sale.order");
        #[rustfmt::skip]
        let table: &[(&[&str], Option<&str>, Category, bool)] = &[
            // Empty: unrestricted.
            (&[], p, Read, true), (&[], p, Delete, true), (&[], None, Write, true),
            // read
            (&["res.partner:read"], p, Read, true),
            (&["res.partner:read"], p, Write, false),
            (&["res.partner:read"], p, Delete, false),
            (&["res.partner:read"], o, Read, false),
            (&["res.partner:read"], None, Read, false),
            // write implies read, not delete
            (&["res.partner:write"], p, Read, true),
            (&["res.partner:write"], p, Write, true),
            (&["res.partner:write"], p, Delete, false),
            // delete is only delete
            (&["res.partner:delete"], p, Delete, true),
            (&["res.partner:delete"], p, Read, false),
            (&["res.partner:delete"], p, Write, false),
            // * access is everything on the model
            (&["res.partner:*"], p, Delete, true),
            (&["res.partner:*"], p, Write, true),
            (&["res.partner:*"], o, Read, false),
            (&["res.partner:*"], None, Read, false),
            // * model
            (&["*:read"], o, Read, true),
            (&["*:read"], None, Read, true),
            (&["*:read"], None, Write, false),
            (&["*:read"], o, Delete, false),
            (&["*:write"], None, Write, true),
            (&["*:delete"], o, Delete, true),
            (&["*:*"], None, Delete, true),
            // Auth is always allowed
            (&["res.partner:read"], None, Auth, true),
            (&["res.partner:read"], o, Auth, true),
            // several
            (&["res.partner:read", "sale.order:write"], o, Write, true),
            (&["res.partner:read", "sale.order:write"], p, Write, false),
            (&["res.partner:read", "sale.order:delete"], o, Delete, true),
            (&["res.partner:read", "*:read"], o, Read, true),
            // the model is matched exactly
            (&["res.partner:read"], Some("res.partner.bank"), Read, false),
            (&["res.partner:read"], Some("res"), Read, false),
        ];
        for (list, model, category, want) in table {
            let parsed = scopes(list);
            assert_eq!(
                parsed.allows(*model, *category),
                *want,
                "{list:?} {model:?} {category:?}"
            );
            assert_eq!(allows(parsed.as_slice(), *model, *category), *want);
        }
    }

    /// Requested, granted, and the narrowed list or the scope refused.
    type NarrowCase<'a> = (&'a [&'a str], &'a [&'a str], Result<&'a [&'a str], &'a str>);

    #[test]
    fn narrow_table() {
        #[rustfmt::skip]
        let table: &[NarrowCase<'_>] = &[
            // Nothing requested: the grant.
            (&[], &[], Ok(&[])),
            (&[], &["res.partner:read"], Ok(&["res.partner:read"])),
            // An empty grant covers everything.
            (&["res.partner:read"], &[], Ok(&["res.partner:read"])),
            (&["*:*"], &[], Ok(&["*:*"])),
            // Narrower than granted.
            (&["res.partner:read"], &["res.partner:write"], Ok(&["res.partner:read"])),
            (&["res.partner:read"], &["res.partner:*"], Ok(&["res.partner:read"])),
            (&["res.partner:delete"], &["res.partner:*"], Ok(&["res.partner:delete"])),
            (&["res.partner:read", "sale.order:write"], &["*:write"],
                Ok(&["res.partner:read", "sale.order:write"])),
            (&["*:read"], &["*:*"], Ok(&["*:read"])),
            // Canonical and deduplicated.
            (&[" res.partner:read", "res.partner:read "], &[], Ok(&["res.partner:read"])),
            // Not covered.
            (&["res.partner:write"], &["res.partner:read"], Err("res.partner:write")),
            (&["res.partner:delete"], &["res.partner:write"], Err("res.partner:delete")),
            (&["sale.order:read"], &["res.partner:*"], Err("sale.order:read")),
            (&["*:read"], &["res.partner:read"], Err("*:read")),
            (&["res.partner:*"], &["res.partner:write", "res.partner:delete"],
                Err("res.partner:*")),
        ];
        for (requested, granted, want) in table {
            let got = narrow(&strings(requested), &strings(granted));
            match want {
                Ok(want) => assert_eq!(got, Ok(strings(want)), "{requested:?} of {granted:?}"),
                Err(scope) => assert_eq!(
                    got,
                    Err(ScopeError::NotGranted((*scope).to_owned())),
                    "{requested:?} of {granted:?}"
                ),
            }
        }
        assert!(matches!(
            narrow(&strings(&["bad"]), &[]),
            Err(ScopeError::Syntax(_))
        ));
        assert!(matches!(
            narrow(&[], &strings(&["res.partner:nope"])),
            Err(ScopeError::BadAccess { .. })
        ));
    }
}
