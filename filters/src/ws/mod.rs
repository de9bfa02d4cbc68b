//! BridgeCore's live model updates (`/api/v1/ws`), the pure part: the message protocol and its
//! limits ([`protocol`]), change events and how they are read from a write and its answer
//! ([`change`]), and the `write_date` poller's bookkeeping ([`poll`]). The sockets, the hub
//! that fans events out, Redis and the calls to Odoo are the glue's (`src/ws/`).

pub mod change;
pub mod poll;
pub mod protocol;

#[cfg(test)]
mod tests;

pub use change::{Answer, Change, Changed, Envelope, Operation, Source};
pub use poll::{PollState, Polled};
pub use protocol::{ClientMessage, ErrorCode, Incoming, Limits, ProtocolError, Subscribe};
