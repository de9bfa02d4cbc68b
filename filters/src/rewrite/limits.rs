//! Limit caps (issue 5, item 1; odoo-protocol.md §7): no single call makes an Odoo worker read
//! an unbounded number of records.
//!
//! - [`cap_limit`] gives `search`, `search_fetch`, `search_read`, `web_search_read` and
//!   `name_search` a `limit` of at most the cap: a missing or unlimited one becomes the cap, a
//!   larger one is lowered to it. The answer then carries [`CAPPED_HEADER`] with
//!   [`header_value`], so that a caller can tell a short page from the end of the data.
//! - [`split_read`] turns a `read` of more ids than the cap into batches of at most the cap,
//!   and [`merge_read`] joins their answers into exactly what one big `read` returns. The
//!   caller cannot tell the difference; Odoo never materialises more than the cap at once.
//!
//! Caps come from `optimizer.max_limits` (per method), overridden per model ([`LimitCaps`]);
//! a tenant's overrides are merged into its own [`LimitCaps`]
//! ([`Optimizer::merged`](super::Optimizer::merged)). The
//! [`OptimizerFilter`](super::OptimizerFilter) applies them and sends split reads.
//!
//! # Where the limit is
//!
//! The same method can get its `limit` by keyword or by position (odoo-protocol.md §2.6), and
//! positions follow each method's Python signature, identical in 16, 17 and 18 up to `limit`:
//!
//! | method | positional parameters before `limit` | Odoo's default |
//! |---|---|---|
//! | `search` | `domain`, `offset=0` | no limit |
//! | `search_fetch` (17+) | `domain`, `field_names`, `offset=0` | no limit |
//! | `search_read` | `domain=None`, `fields=None`, `offset=0` | no limit |
//! | `web_search_read` | `domain`, `specification` (16: `fields=None`), `offset=0` | no limit |
//! | `name_search` | `name=''`, `args=None` (18: `domain`), `operator='ilike'` | 100 |
//!
//! How each call shape passes arguments decides where the cap is written:
//!
//! - `call_kw`/`call_button` and `object.execute_kw` (`/jsonrpc`, XML-RPC): `args` and
//!   `kwargs`. When `args` reaches the `limit` slot, the limit is that slot; otherwise it is
//!   `kwargs.limit`, which is where a missing one is added. A limit in both places makes Python
//!   raise `TypeError` (multiple values): left untouched, Odoo answers that error.
//! - `object.execute`: positional only. A missing limit is added positionally, after filling
//!   the slots before it with their Python defaults. Where a slot has no default (`search`'s
//!   `domain`), Odoo raises for the missing argument anyway, and the call is left untouched.
//!   `web_search_read`'s `specification` is filled with `null`: Odoo 16's default for `fields`;
//!   on 17/18 the call fails with or without the cap, as it lacks a required argument.
//! - `/json/2`: named arguments only (`args[0]` holds `ids`, not a method argument): always
//!   `limit`.
//!
//! # Which limits are capped
//!
//! `Query` writes `LIMIT` only when `limit` is truthy (odoo-protocol.md §7), so a missing
//! limit, `null`, `false`, `0` and `0.0` all mean **no limit** and get the cap. An integer
//! above the cap is lowered to it; so is a float above it, because Odoo reads a float as a
//! limit too (16 formats it with `%d`, 17/18 hand it to PostgreSQL, which rounds it): leaving
//! `1e9` alone would let any caller bypass the cap. Values Odoo refuses are left untouched, so
//! that the caller gets Odoo's own error: negative numbers, integers beyond PostgreSQL's
//! `bigint`, `true`, strings, lists, objects. `name_search` without a limit is capped only when
//! the cap is below Odoo's default of 100; raising that default would change the answer.
//! `web_search_read`'s `count_limit` is not touched: its `length` still counts past a capped
//! page, so a client's pager shows the true total.
//!
//! Not capped: `search_count` (its `limit` bounds the count, capping would change the number),
//! `read_group` / `web_read_group` (their `limit` counts groups), and any method not in the
//! table, whatever the configuration says.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::call::{Call, Shape};

/// The header that tells a caller its limit was capped; its value is [`header_value`].
pub const CAPPED_HEADER: &str = "x-bridgecore-limit-capped";

/// The largest `limit` per ORM method, with per-model overrides.
///
/// A cap of 0 is never stored: to Odoo a limit of 0 means *no* limit, the opposite of a cap
/// (the YAML loader refuses it for the same reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitCaps {
    methods: BTreeMap<String, u64>,
    /// model → method → cap, `None` exempting the pair from the per-method cap.
    models: BTreeMap<String, BTreeMap<String, Option<u64>>>,
}

impl LimitCaps {
    /// Caps per method name (`optimizer.max_limits`), for every model.
    pub fn new(methods: BTreeMap<String, u64>) -> Self {
        LimitCaps {
            methods: methods.into_iter().filter(|(_, cap)| *cap > 0).collect(),
            models: BTreeMap::new(),
        }
    }

    /// Overrides the cap of `method` on `model` (a model whose rows are large can get a smaller
    /// cap, a small lookup table a larger one). A cap of 0 is ignored.
    pub fn with_model(
        mut self,
        model: impl Into<String>,
        method: impl Into<String>,
        cap: u64,
    ) -> Self {
        if cap > 0 {
            self.models
                .entry(model.into())
                .or_default()
                .insert(method.into(), Some(cap));
        }
        self
    }

    /// Exempts `method` on `model` from its per-method cap.
    pub fn exempt(mut self, model: impl Into<String>, method: impl Into<String>) -> Self {
        self.models
            .entry(model.into())
            .or_default()
            .insert(method.into(), None);
        self
    }

    /// Sets (`Some`, a cap of 0 is ignored) or removes (`None`) the per-method cap of `method`:
    /// a tenant's `max_limits` merged over the global one.
    pub fn set_method(&mut self, method: &str, cap: Option<u64>) {
        match cap {
            Some(0) => {}
            Some(cap) => {
                self.methods.insert(method.to_owned(), cap);
            }
            None => {
                self.methods.remove(method);
            }
        }
    }

    /// Sets the cap of `method` on `model` (`Some`, 0 ignored) or exempts the pair (`None`):
    /// a tenant's `models` merged over the global one.
    pub fn set_model(&mut self, model: &str, method: &str, cap: Option<u64>) {
        if cap == Some(0) {
            return;
        }
        self.models
            .entry(model.to_owned())
            .or_default()
            .insert(method.to_owned(), cap);
    }

    /// Whether no cap is set at all (then the caps need not run).
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
            && self
                .models
                .values()
                .all(|m| m.values().all(Option::is_none))
    }

    /// The cap for `method` on `model`: the model's override if any, else the method's.
    pub fn cap_for(&self, model: &str, method: &str) -> Option<u64> {
        match self
            .models
            .get(model)
            .and_then(|methods| methods.get(method))
        {
            Some(over) => *over,
            None => self.methods.get(method).copied(),
        }
    }
}

/// What [`cap_limit`] changed: the limit asked for and the cap sent instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capped {
    /// The limit the call carried; `None` when it asked for no limit (missing, `null`,
    /// `false`, `0`). A float is reported rounded up.
    pub asked: Option<u64>,
    /// The limit sent to Odoo.
    pub cap: u64,
}

/// The value of [`CAPPED_HEADER`]: `<asked>-><cap>`, `asked` being `none` when the call asked
/// for no limit, e.g. `500->200` or `none->200`.
pub fn header_value(capped: &Capped) -> String {
    match capped.asked {
        Some(asked) => format!("{asked}->{}", capped.cap),
        None => format!("none->{}", capped.cap),
    }
}

/// A positional parameter before `limit`, and what an `execute` call that stops short of it
/// gets in its place.
#[derive(Debug, Clone, Copy)]
enum Pad {
    /// No default: Odoo raises for a call without it.
    Required,
    /// Python's `None`.
    Null,
    /// `0` (`offset`).
    Zero,
    /// `''` (`name_search`'s `name`).
    Empty,
    /// `'ilike'` (`name_search`'s `operator`).
    Ilike,
}

impl Pad {
    fn value(self) -> Option<Value> {
        match self {
            Pad::Required => None,
            Pad::Null => Some(Value::Null),
            Pad::Zero => Some(Value::from(0)),
            Pad::Empty => Some(Value::from("")),
            Pad::Ilike => Some(Value::from("ilike")),
        }
    }
}

/// Where a method's `limit` sits (see the module documentation's table).
struct Signature {
    /// The positional parameters before `limit`: `limit` is `args[before.len()]`.
    before: &'static [Pad],
    /// Odoo's default when the call gives none (`None`: no limit).
    default: Option<u64>,
}

fn signature(method: &str) -> Option<Signature> {
    let (before, default): (&'static [Pad], _) = match method {
        "search" => (&[Pad::Required, Pad::Zero], None),
        "search_fetch" => (&[Pad::Required, Pad::Required, Pad::Zero], None),
        "search_read" | "web_search_read" => (&[Pad::Null, Pad::Null, Pad::Zero], None),
        "name_search" => (&[Pad::Empty, Pad::Null, Pad::Ilike], Some(100)),
        _ => return None,
    };
    Some(Signature { before, default })
}

/// How the ORM method receives the call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passing {
    /// `args` positionally and `kwargs` by name (`call_kw`, `execute_kw`).
    Both,
    /// `args` only (`object.execute`).
    Positional,
    /// `kwargs` only; `args[0]` is `ids` (`/json/2`).
    Named,
}

/// How `call` passes arguments to its ORM method; `None` for calls that run none.
fn passing(call: &Call) -> Option<Passing> {
    match call.shape {
        Shape::CallKw | Shape::CallButton => Some(Passing::Both),
        Shape::Json2 => Some(Passing::Named),
        Shape::JsonRpc | Shape::XmlRpc { .. } => {
            match (call.service.as_deref(), call.service_method.as_deref()) {
                (Some("object"), Some("execute_kw")) => Some(Passing::Both),
                (Some("object"), Some("execute")) => Some(Passing::Positional),
                _ => None,
            }
        }
        Shape::WebJson => None,
    }
}

/// What a `limit` value means to Odoo.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Asked {
    /// No `limit` given: the method's default applies.
    Absent,
    /// Falsy (`null`, `false`, `0`, `0.0`): no `LIMIT`.
    Unlimited,
    /// A positive integer.
    Count(u64),
    /// A positive float.
    Float(f64),
}

/// Reads a `limit` value; `None` for values Odoo refuses (left untouched).
fn asked(value: Option<&Value>) -> Option<Asked> {
    Some(match value {
        None => Asked::Absent,
        Some(Value::Null | Value::Bool(false)) => Asked::Unlimited,
        Some(Value::Number(number)) => {
            if let Some(int) = number.as_i64() {
                match u64::try_from(int) {
                    Ok(0) => Asked::Unlimited,
                    Ok(count) => Asked::Count(count),
                    // Negative: PostgreSQL refuses `LIMIT -1`.
                    Err(_) => return None,
                }
            } else if number.is_u64() {
                // Beyond bigint: PostgreSQL refuses it.
                return None;
            } else {
                // A float; `-0.0 == 0.0`, falsy in Python too.
                let float = number.as_f64()?;
                if float == 0.0 {
                    Asked::Unlimited
                } else if float > 0.0 {
                    Asked::Float(float)
                } else {
                    return None;
                }
            }
        }
        // `true`, strings, lists, objects: Odoo raises (or, for `true` on 16, reads `LIMIT 1`,
        // under any cap).
        Some(_) => return None,
    })
}

/// Caps the `limit` of a search-like call in place (see the module documentation): `Some`
/// with what changed, `None` when the call was left exactly as it was (no cap for this model
/// and method, a method without a `limit` to cap, a limit already within the cap, or one Odoo
/// refuses).
pub fn cap_limit(call: &mut Call, caps: &LimitCaps) -> Option<Capped> {
    let method = call.method.as_deref()?;
    let cap = caps.cap_for(call.model.as_deref()?, method)?;
    let signature = signature(method)?;
    let passing = passing(call)?;
    let slot = signature.before.len();
    let positional = match passing {
        Passing::Both => call.args().len() > slot,
        Passing::Positional => true,
        Passing::Named => false,
    };
    let named = call.kwargs().get("limit");
    if positional && passing == Passing::Both && named.is_some() {
        return None;
    }
    let current = if positional {
        call.args().get(slot)
    } else {
        named
    };
    let (over, reported) = match asked(current)? {
        Asked::Absent => (signature.default.is_none_or(|default| default > cap), None),
        Asked::Unlimited => (true, None),
        Asked::Count(count) => (count > cap, Some(count)),
        // Saturating: a float above u64::MAX reports u64::MAX.
        Asked::Float(float) => (float > cap as f64, Some(float.ceil() as u64)),
    };
    if !over {
        return None;
    }
    let limit = Value::from(cap);
    if !positional {
        call.kwargs_mut().insert("limit".to_owned(), limit);
    } else if call.args().len() > slot {
        if let Some(value) = call.args_mut().get_mut(slot) {
            *value = limit;
        }
    } else {
        // `execute` stopping short of the slot: fill the parameters before it, if they all
        // have defaults (checked before anything changes).
        let pads: Option<Vec<Value>> = signature.before[call.args().len()..]
            .iter()
            .map(|pad| pad.value())
            .collect();
        let args = call.args_mut();
        args.extend(pads?);
        args.push(limit);
    }
    Some(Capped {
        asked: reported,
        cap,
    })
}

/// A `read` split into batches of at most the cap, in the order of the ids asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// The ids of each batch; concatenated, exactly the ids of the original call.
    pub batches: Vec<Vec<i64>>,
}

impl ReadPlan {
    /// The call that reads batch `index`: `call` with its ids (`args[0]`, in every shape)
    /// replaced by the batch's; every other argument, the context and the credential are kept.
    /// `None` when there is no such batch.
    pub fn call(&self, call: &Call, index: usize) -> Option<Call> {
        let ids = self.batches.get(index)?;
        let mut batch = call.clone();
        let first = batch.args_mut().first_mut()?;
        *first = Value::Array(ids.iter().map(|&id| Value::from(id)).collect());
        Some(batch)
    }

    /// The calls of every batch, in order.
    pub fn calls(&self, call: &Call) -> Vec<Call> {
        (0..self.batches.len())
            .filter_map(|index| self.call(call, index))
            .collect()
    }
}

/// The batches to send instead of a `read` of more than `cap` ids (`read(ids, fields=None,
/// load='_classic_read')`, ids in `args[0]` in every call shape). `None` when no split is
/// needed or none is safe: another method, `cap` 0, at most `cap` ids, or ids that are not a
/// plain list of integers (a single id, a string, ...: Odoo answers those as they are).
///
/// Duplicate ids are kept in place: Odoo's `read` answers once per occurrence (see
/// [`merge_read`]), so each batch does the same for its part.
pub fn split_read(call: &Call, cap: u64) -> Option<ReadPlan> {
    if call.method.as_deref() != Some("read") || call.model.is_none() || cap == 0 {
        return None;
    }
    passing(call)?;
    let ids = call.args().first()?.as_array()?;
    let size = usize::try_from(cap).unwrap_or(usize::MAX);
    if ids.len() <= size {
        return None;
    }
    let ids: Vec<i64> = ids.iter().map(Value::as_i64).collect::<Option<_>>()?;
    Some(ReadPlan {
        batches: ids.chunks(size).map(<[i64]>::to_vec).collect(),
    })
}

/// Why batch answers cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// A batch's result is not a JSON list of records (an error answer must be forwarded as it
    /// is, not merged).
    #[error("the result of read batch {batch} is not a JSON array")]
    NotAList {
        /// The batch's position in the [`ReadPlan`].
        batch: usize,
    },
}

/// Joins the results of a [`ReadPlan`]'s batches (each the `result` of one `read`, in plan
/// order) into the result one `read` of all the ids gives.
///
/// That is their concatenation, because of how Odoo's `read` builds its answer (16:
/// `_read` + `_read_format`; 17/18: `fetch` + `_read_format`):
///
/// - `call_kw` runs `read` on `browse(ids)`, and a recordset keeps the ids' order **and their
///   duplicates**; `_read_format` makes one dict per record of `self` (`for record in self`),
///   so `read([7, 3, 7])` answers three dicts, 7, 3, 7. Batches split in order and answered in
///   order give the same list.
/// - Ids of deleted records are skipped (`MissingError` clears their values, and
///   `[vals for record, vals in data if vals]` drops them): in the batch that holds them as in
///   one big read.
/// - Records the user may not read make `read` raise `AccessError`, in one big read as in the
///   batch that holds them. The [`OptimizerFilter`](super::OptimizerFilter) answers that
///   batch's error (the first in plan order) and does not call this function; the error's
///   message may name fewer records.
///
/// What batches cannot give: one snapshot. Each batch is its own request and transaction, so
/// a write committed between two batches is seen only by the later one (as when a client
/// pages through results itself).
pub fn merge_read(batches: Vec<Value>) -> Result<Value, MergeError> {
    let mut records = Vec::new();
    for (batch, result) in batches.into_iter().enumerate() {
        match result {
            Value::Array(items) => records.extend(items),
            _ => return Err(MergeError::NotAList { batch }),
        }
    }
    Ok(Value::Array(records))
}
