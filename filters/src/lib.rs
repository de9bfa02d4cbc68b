//! BridgeCore's pure protocol and policy layer.
//!
//! Everything here is plain data in, decision out: no sockets, no Pingora. The proxy glue in the
//! `bridgecore` crate reads bytes off the wire, asks this crate what they mean and what to do,
//! and applies the answer. Keeping the riskiest logic (parsing every Odoo call shape, deciding
//! what is a write) free of I/O makes it testable, fuzzable and benchmarkable on its own.
//!
//! - [`route`] names the Odoo endpoint a path belongs to;
//! - [`jsonrpc`] parses request bodies (JSON-RPC, XML-RPC, `/json/2`) into one [`Call`] type and
//!   writes it back;
//! - [`classify`] sorts calls into read/write classes and rate-limit categories (default-deny);
//! - [`domain`] parses Odoo domains and writes them in a canonical order for cache keys;
//! - [`rewrite`] changes calls to protect Odoo and share cache entries: limit caps, large
//!   `read`s answered from batches, canonical domains, `exclude_binary` field lists;
//! - [`expand`] answers dotted field names (`partner_id.name`) with one batched read per
//!   relation level (one `web_search_read` on Odoo 17+);
//! - [`filter`] is the [`Filter`] trait and the [`Chain`] that runs filters in order;
//! - [`odoo`] is the handle filters use to call Odoo themselves;
//! - [`rate_limit`] keys, policy and the exact local limiter behind the per-category limits;
//! - [`error`] builds BridgeCore's own error answers in the caller's protocol;
//! - [`units`] parses the durations, sizes and rates of the YAML file;
//! - [`encoding`] negotiates response compression from `Accept-Encoding`;
//! - [`forwarded`] computes the `X-Forwarded-*` headers Odoo's proxy mode reads;
//! - [`ws`] is the live-updates WebSocket's protocol, change events and poller bookkeeping.

pub mod api;
pub mod auth;
pub mod cache;
pub mod call;
pub mod classify;
pub mod domain;
pub mod encoding;
pub mod error;
pub mod expand;
pub mod filter;
pub mod forwarded;
pub mod json;
pub mod jsonrpc;
pub mod odoo;
pub mod rate_limit;
pub mod rewrite;
pub mod route;
pub mod units;
pub mod ws;

pub use call::{Call, Credential, Shape};
pub use classify::{Category, Class};
pub use error::ErrorKind;
pub use filter::{
    Chain, ChainDecision, Decision, Exchange, Filter, HeaderEdit, Outcome, Reply, ResponseHead,
};
pub use odoo::{NoOdoo, OdooClient, OdooError, OdooReply};
pub use route::Endpoint;
