//! Field expansion (issue 5, item 3): dotted field names (`partner_id.name`,
//! `partner_id.country_id.code`) in `search_read`, `read` and `web_search_read`, answered
//! without one round trip per record.
//!
//! Odoo refuses dotted names in `fields` (`Invalid field 'partner_id.name'`, odoo-protocol.md
//! §5.3). BridgeCore answers such a call itself, as the caller, with the caller's credential
//! (so Odoo's access rules and record rules apply to every read):
//!
//! - **Odoo 16** (and whenever the one-call form does not fit): the base call with the
//!   relational fields the dotted names start with, then **one batched `read` per relation
//!   level and comodel** for every distinct id reached, whatever the number of records: N
//!   records with M relation levels cost 1 + M calls (when each level names one comodel and
//!   its ids fit the tenant's read cap; beyond it, reads go in pieces of at most the cap).
//! - **Odoo 17+** (`common.version`, cached per tenant): **one** `web_search_read` / `web_read`
//!   with a nested `specification` (§5.2, §5.4), whose answer is reshaped into exactly what
//!   the 16 path answers ([`spec::reshape`]): the caller cannot tell which one ran.
//!
//! # The answer
//!
//! - **Flat** (JSON-RPC routes, XML-RPC and `/json/2`): each dotted name is a key of the record,
//!   `"partner_id.name": "Deco Addict"`. Its value is what `read` gives for the last field on
//!   the related record (a many2one leaf is `[id, name]`). Relational fields added only to
//!   follow the paths are left out: the record has exactly the keys asked for (plus `id`).
//! - **Nested** (`/api/v1`): each relational field that dotted names go through becomes an
//!   object, `partner_id: {id, name, email}` (or `false`); deeper paths nest further,
//!   `partner_id: {id, country_id: {id, code}}`.
//! - **Empty many2one** on the way: `false`. **Deleted related record** (Odoo's `read` leaves
//!   missing ids out): `false`.
//! - **Through an x2many** (`order_line.name`): a list with one value per related record, in
//!   the x2many's order; a second x2many deeper concatenates its lists (as Odoo's `mapped`
//!   does, without removing duplicates). Nested: a list of objects.
//! - **Records the caller may not read** at any level: the whole call answers Odoo's error for
//!   that read (`AccessError`), in the caller's protocol. Never a partial answer.
//!
//! The calls run as the earlier filters left them (canonical domain, capped `limit`); a `read`
//! with dotted fields is not split into batches by the optimizer (it leaves those to this
//! filter), and its base `read` here is one call whatever the number of ids.
//!
//! # Left to Odoo (forwarded untouched, Odoo answers its own error)
//!
//! Paths through a field that is not relational, unknown fields (at any level, plain fields
//! included), empty segments (`partner_id..name`), more than [`MAX_LEVELS`] relation levels,
//! field lists that are not lists of names, a `load` other than `_classic_read`, dotted
//! specification entries that are not `{}`, a relational field both expanded and given its
//! own sub-specification, and calls without a credential. When `fields_get` itself fails, the
//! call is forwarded too.
//!
//! XML-RPC `object.execute_kw` / `execute` calls are expanded like `/jsonrpc` ones (the reads
//! go to Odoo over `/jsonrpc` with the caller's `(db, uid, password)`); the answer is the
//! `methodResponse` Odoo would write for the flat records, and an error is Odoo's fault for the
//! route ([`crate::jsonrpc::odoo_fault`]), HTTP 200.
//!
//! An expanded answer carries `X-BridgeCore-Rewrite` with the tag `expand` (after the tags of
//! earlier rewrites, e.g. `limit,expand`; `fields` stays `exclude_binary`'s), and on `/api/v1`
//! `"optimized": true`.
//!
//! Automatic expansion (`optimizer.expand: {sale.order: {partner_id: [name, email]}}`) applies
//! on `/api/v1` to the configured relational fields the call reads (all with no `fields`);
//! configured paths that do not resolve are dropped, never an error.
//!
//! # Pieces
//!
//! [`plan::plan`] parses the field list into a tree of [`plan::Node`]s, checked against
//! `fields_get`; [`merge::Expansion`] computes each level's [`merge::LevelRead`] and merges the
//! answer; [`spec`] builds the 17+ specification and reshapes its answer; [`call`] finds the
//! field list in each call shape and builds the calls sent; [`ExpandFilter`] runs it all.

pub mod call;
mod filter;
pub mod merge;
pub mod plan;
pub mod spec;

#[cfg(test)]
mod tests;

pub use filter::{ExpandFilter, EXPAND_TOKEN};
pub use merge::{ids_of, Expansion, LevelRead};
pub use plan::{plan, Catalog, Node, Path, Plan, Planned, Request};

/// The most relation levels a dotted name may go through (`a.b.c.d.e`: four); deeper ones are
/// left to Odoo.
pub const MAX_LEVELS: usize = 4;

/// How expanded values are laid out in the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `"partner_id.name": …` keys (the JSON-RPC routes).
    #[default]
    Flat,
    /// `partner_id: {id, name, …}` objects (`/api/v1`).
    Nested,
}

/// How the caller's method shows relational values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `read`'s: many2one `[id, name]`, x2many ids.
    Classic,
    /// A 17+ specification's `{}`: many2one id, x2many ids.
    Web,
}

/// Why a call is left to Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No dotted field (nor automatic expansion) to do.
    NoDots,
    /// A field Odoo does not know (or hides from this user).
    UnknownField,
    /// A path goes on after a field that is not relational.
    NotRelational,
    /// An empty segment.
    BadPath,
    /// More than [`MAX_LEVELS`] relation levels.
    TooDeep,
}

/// An answer from Odoo that cannot be merged (not the shape `read` / `web_read` give).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A result that should be a list of records is not a list.
    #[error("the {0} answer is not a list")]
    NotAList(&'static str),
    /// An item is not a record with an integer `id`.
    #[error("the {0} answer holds something that is not a record")]
    NotARecord(&'static str),
    /// A `web_search_read` answer without `records`.
    #[error("the web_search_read answer has no records")]
    NoRecords,
}
