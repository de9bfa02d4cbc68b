//! Change events: what a successful write did, read from the call and Odoo's answer, and the
//! form events travel in between BridgeCore instances (a Redis channel per tenant).
//!
//! Which records a call changed (odoo-protocol.md §2, §3.2):
//!
//! | method | operation | ids from |
//! |---|---|---|
//! | `create` | create | the answer (an id or a list of ids) |
//! | `copy` | create | the answer (an id) |
//! | `name_create` | create | the answer's first element (`[id, name]`) |
//! | `web_save` without ids | create | the answer (`[{"id": …}]`) |
//! | `unlink` | unlink | the first argument (or `/json/2`'s `ids`) |
//! | `write`, `web_save` with ids, buttons and every other method | write | the first argument (or `ids`) |
//! | `/web/dataset/resequence` | write | `params.ids` |
//!
//! A call whose ids cannot be read (an `@api.model` method with no record argument, ids that
//! are not integers) produces no event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::{Call, Shape};

/// The most records one event names; a write over more is cut there (see the README).
pub const MAX_EVENT_IDS: usize = 10_000;

/// What happened to the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// New records.
    Create,
    /// Changed records (writes, buttons, archiving).
    Write,
    /// Deleted records.
    Unlink,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Write => "write",
            Operation::Unlink => "unlink",
        }
    }
}

/// Who saw the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A call through some BridgeCore instance.
    Bridgecore,
    /// Found in Odoo by the poller (its UI, crons, other clients).
    Odoo,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Bridgecore => "bridgecore",
            Source::Odoo => "odoo",
        }
    }
}

/// One changed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// Its id.
    pub id: i64,
    /// Its `write_date` after the change, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_date: Option<String>,
}

/// One change of records of one model of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The tenant (system id).
    pub tenant: String,
    /// The model.
    pub model: String,
    /// What happened.
    pub operation: Operation,
    /// Who saw it.
    pub source: Source,
    /// The records.
    pub records: Vec<Changed>,
}

impl Change {
    /// A change without write dates.
    pub fn new(
        tenant: &str,
        model: &str,
        operation: Operation,
        source: Source,
        ids: &[i64],
    ) -> Self {
        Change {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
            operation,
            source,
            records: ids
                .iter()
                .map(|&id| Changed {
                    id,
                    write_date: None,
                })
                .collect(),
        }
    }

    /// The record ids.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.records.iter().map(|r| r.id)
    }
}

/// A change on the wire between instances: the publishing instance (so it can skip its own
/// events, which it delivered locally already) and the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing instance's random id.
    pub origin: String,
    /// The change.
    pub change: Change,
}

/// Largest envelope read from the bus: [`MAX_EVENT_IDS`] records with their dates fit.
pub const MAX_ENVELOPE: usize = 1024 * 1024;

/// Why a bus message was ignored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Larger than [`MAX_ENVELOPE`].
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not an envelope.
    #[error("not a change envelope: {0}")]
    Invalid(String),
}

impl Envelope {
    /// The message text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message; anything malformed (another program on the channel, a newer version)
    /// is an error, never a panic.
    pub fn decode(text: &[u8]) -> Result<Envelope, EnvelopeError> {
        if text.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge(text.len()));
        }
        let env: Envelope =
            serde_json::from_slice(text).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
        let bad_id = env.change.records.iter().any(|r| r.id <= 0);
        if env.change.records.len() > MAX_EVENT_IDS || bad_id {
            return Err(EnvelopeError::Invalid("bad record ids".into()));
        }
        if !super::protocol::is_model_name(&env.change.model) {
            return Err(EnvelopeError::Invalid("bad model name".into()));
        }
        Ok(env)
    }
}

/// What Odoo answered to a forwarded write, as far as events care.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It succeeded; the JSON-RPC `result` (for XML-RPC: the integers of the answer).
    Result(Value),
    /// It failed (an error or fault), or the answer could not be read: no event.
    Failed,
}

/// Reads Odoo's answer body to a call of `shape` with HTTP `status`.
pub fn answer(shape: &Shape, status: u16, body: &[u8]) -> Answer {
    if status != 200 {
        return Answer::Failed;
    }
    match shape {
        Shape::XmlRpc { .. } => xmlrpc_answer(body),
        Shape::Json2 => match crate::json::from_slice(body) {
            Ok(v) => Answer::Result(v),
            Err(_) => Answer::Failed,
        },
        _ => match crate::json::from_slice(body) {
            Ok(Value::Object(mut top)) if !top.contains_key("error") => {
                top.remove("result").map_or(Answer::Failed, Answer::Result)
            }
            _ => Answer::Failed,
        },
    }
}

/// An XML-RPC `methodResponse`: a `<fault>` fails; otherwise the integers it holds, as an
/// array (all `create`-like answers are an id, a list of ids, or `[id, name]`).
fn xmlrpc_answer(body: &[u8]) -> Answer {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut in_int = false;
    let mut params = false;
    let mut ints = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"fault" => return Answer::Failed,
                b"params" => params = true,
                b"int" | b"i4" | b"i8" => in_int = true,
                b"string" => in_int = false,
                _ => {}
            },
            Ok(Event::End(_)) => in_int = false,
            Ok(Event::Text(t)) if in_int => {
                let text = String::from_utf8_lossy(&t);
                match text.trim().parse::<i64>() {
                    Ok(i) => ints.push(Value::from(i)),
                    Err(_) => return Answer::Failed,
                }
                if ints.len() > MAX_EVENT_IDS {
                    break;
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => return Answer::Failed,
            Ok(_) => {}
        }
    }
    if params {
        Answer::Result(Value::Array(ints))
    } else {
        Answer::Failed
    }
}

/// The records a successful call changed: `(model, operation, ids)`, or `None` when it names
/// none that can be read. `result` is the answer's result ([`Answer::Result`]).
pub fn change_of(call: &Call, result: &Value) -> Option<(String, Operation, Vec<i64>)> {
    if call.shape == Shape::WebJson {
        // `/web/dataset/resequence`: `params.model` and `params.ids`.
        if call.path != "/web/dataset/resequence" {
            return None;
        }
        let model = call.params.get("model")?.as_str()?;
        let ids = ids_in(call.params.get("ids")?)?;
        return valid(model, Operation::Write, ids);
    }
    let model = call.model.as_deref()?;
    let method = call.method.as_deref()?;
    let args = call.args();
    let kwargs = call.kwargs();
    let record_arg = || {
        if call.shape == Shape::Json2 {
            kwargs.get("ids").and_then(ids_in)
        } else {
            args.first().and_then(ids_in)
        }
    };
    let (op, ids) = match method {
        "create" | "copy" => (Operation::Create, ids_in(result)?),
        "name_create" => (
            Operation::Create,
            vec![result.get(0).and_then(Value::as_i64).or(result.as_i64())?],
        ),
        "web_save" => match record_arg() {
            Some(ids) if !ids.is_empty() => (Operation::Write, ids),
            _ => (
                Operation::Create,
                result
                    .as_array()?
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_i64))
                    .collect(),
            ),
        },
        "unlink" => (Operation::Unlink, record_arg()?),
        _ => (Operation::Write, record_arg()?),
    };
    valid(model, op, ids)
}

fn valid(model: &str, op: Operation, mut ids: Vec<i64>) -> Option<(String, Operation, Vec<i64>)> {
    if !super::protocol::is_model_name(model) {
        return None;
    }
    ids.retain(|&id| id > 0);
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(MAX_EVENT_IDS);
    (!ids.is_empty()).then(|| (model.to_owned(), op, ids))
}

/// An id or a list of ids (Odoo accepts both as a record argument).
fn ids_in(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Number(n) => Some(vec![n.as_i64()?]),
        Value::Array(items) => items.iter().map(Value::as_i64).collect(),
        _ => None,
    }
}
