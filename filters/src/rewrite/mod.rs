//! Rewrites of a parsed [`Call`](crate::Call) that protect Odoo's workers (issue 5).
//!
//! Each rewrite is a pure function: a call and its configuration in, the changed call and a
//! note of what changed out. The glue decides on which routes and tenants a rewrite runs (issue
//! 5, item 5: limit caps default on for `/api/v1`, `/jsonrpc` and `/json/2`, off for the web
//! client's cookie routes), sends the changed call with [`Call::to_body`](crate::Call::to_body),
//! and reports the change in the answer's headers. Keeping the decision free of I/O makes it
//! unit-testable per call shape and fuzzable.
//!
//! - [`Optimizer`] / [`OptimizerSet`] (`settings.rs`): one tenant's resolved settings, the
//!   global `optimizer:` section merged with the tenant's;
//! - [`fields`]: `fields_get` answers per tenant, model and credential ([`FieldsCatalog`]);
//! - [`OptimizerFilter`]: the built-in filter running canonical domains, `exclude_binary`,
//!   caps and `read` batching, and writing `X-BridgeCore-Rewrite`;
//! - [`limits`]: caps on the `limit` of searches ([`cap_limit`]), and large `read`s split into
//!   batches whose answers merge into the one a single `read` would give ([`split_read`],
//!   [`merge_read`]).

pub mod fields;
mod filter;
pub mod limits;
mod settings;

pub use fields::{FieldsCatalog, FIELDS_CAPACITY, FIELDS_TTL};
pub(crate) use filter::read_cap;
pub use filter::{
    note_rewrite, rewrites, CapRoutes, LimitCapFilter, OptimizerFilter, Rewrites, REWRITE_HEADER,
};
pub use settings::{
    CapRoutesOverrides, DefaultFields, DomainMode, Optimizer, OptimizerOverrides, OptimizerSet,
    DEFAULT_READ_CONCURRENCY, MAX_READ_CONCURRENCY,
};

pub use limits::{
    cap_limit, header_value, merge_read, split_read, Capped, LimitCaps, MergeError, ReadPlan,
    CAPPED_HEADER,
};

#[cfg(test)]
mod optimizer_tests;
#[cfg(test)]
mod tests;
