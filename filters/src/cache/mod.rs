//! The pure half of the response cache: keys, stored answers, and the dependency graph that
//! decides which generations a write bumps (design.md §5, odoo-protocol.md §3–4). Stores,
//! generations and the Pingora glue live in BridgeCore's `src/cache`.

pub mod body;
pub mod graph;
pub mod key;
