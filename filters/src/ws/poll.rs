//! The `write_date` poller's bookkeeping (odoo-protocol.md §8.5): which changes of one model it
//! has reported, and from when to ask next.
//!
//! Odoo stamps `write_date` with the *start* of the writing transaction, so a long transaction
//! can commit after a poll with a stamp older than what that poll saw. Each poll therefore asks
//! again for everything from `cursor − overlap` on (`cursor` is the newest stamp seen), and
//! reports only the `(id, write_date)` pairs it has not reported before. Stamps are whole
//! seconds, as Odoo returns them, so two changes of one record within the same second are one
//! change here.
//!
//! The state is small (the pairs inside the overlap window), serialisable (a new poller
//! instance continues where the last one stopped) and free of I/O.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::change::Operation;

/// Most pairs remembered: beyond it the oldest are forgotten first (their records may then be
/// reported once more if they are polled again within the window).
pub const MAX_SEEN: usize = 100_000;

/// One row of a poll answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    /// The record.
    pub id: i64,
    /// Its `write_date` as Odoo wrote it.
    pub write_date: String,
    /// Its `create_date`, if read.
    pub create_date: Option<String>,
}

impl Polled {
    /// `create` when the record has not been written since it was created, else `write`.
    pub fn operation(&self) -> Operation {
        let created = self.create_date.as_deref().and_then(parse_datetime);
        match (created, parse_datetime(&self.write_date)) {
            (Some(c), Some(w)) if c == w => Operation::Create,
            _ => Operation::Write,
        }
    }
}

/// Why a poll answer could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unexpected poll answer: {0}")]
pub struct PollError(pub String);

/// Reads a `search_read` answer of `id`, `write_date` (and `create_date`).
pub fn rows(answer: &Value) -> Result<Vec<Polled>, PollError> {
    let items = answer
        .as_array()
        .ok_or_else(|| PollError("not a list".into()))?;
    items
        .iter()
        .map(|r| {
            let id = r
                .get("id")
                .and_then(Value::as_i64)
                .filter(|i| *i > 0)
                .ok_or_else(|| PollError("a row without an id".into()))?;
            let write_date = r
                .get("write_date")
                .and_then(Value::as_str)
                .filter(|s| parse_datetime(s).is_some())
                .ok_or_else(|| PollError(format!("record {id} has no readable write_date")))?
                .to_owned();
            let create_date = r
                .get("create_date")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(Polled {
                id,
                write_date,
                create_date,
            })
        })
        .collect()
}

/// What a poller knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollState {
    /// The newest `write_date` seen, in unix seconds; `None` before the baseline.
    pub cursor: Option<i64>,
    /// `(write_date seconds, id)` pairs already reported (or known from before the start).
    pub seen: BTreeSet<(i64, i64)>,
}

impl PollState {
    /// Whether the baseline has been taken.
    pub fn started(&self) -> bool {
        self.cursor.is_some()
    }

    /// The domain of the next poll: everything stamped from `cursor − overlap_secs` on. Before
    /// the baseline: everything (the caller asks for the newest row only).
    pub fn domain(&self, overlap_secs: i64) -> Value {
        match self.cursor {
            Some(c) => json!([["write_date", ">=", format_datetime(c - overlap_secs)]]),
            None => json!([]),
        }
    }

    /// Takes the baseline from the newest stamp in the database (`None`: no records yet):
    /// changes from before it are not reported.
    pub fn baseline(&mut self, newest: Option<&str>) {
        self.cursor = Some(newest.and_then(parse_datetime).unwrap_or(0));
    }

    /// Marks rows as known without reporting them (the baseline's window, or changes
    /// BridgeCore itself reported already).
    pub fn mark_seen(&mut self, rows: &[Polled]) {
        for r in rows {
            if let Some(t) = parse_datetime(&r.write_date) {
                self.seen.insert((t, r.id));
                self.cursor = Some(self.cursor.map_or(t, |c| c.max(t)));
            }
        }
        self.bound();
    }

    /// Takes one poll's rows; returns those not reported before, in their order, and moves the
    /// cursor. Pairs older than the window are forgotten.
    pub fn absorb(&mut self, rows: Vec<Polled>, overlap_secs: i64) -> Vec<Polled> {
        let mut new = Vec::new();
        for r in rows {
            let Some(t) = parse_datetime(&r.write_date) else {
                continue;
            };
            self.cursor = Some(self.cursor.map_or(t, |c| c.max(t)));
            if self.seen.insert((t, r.id)) {
                new.push(r);
            }
        }
        if let Some(c) = self.cursor {
            let floor = c - overlap_secs;
            self.seen = self.seen.split_off(&(floor, i64::MIN));
        }
        self.bound();
        new
    }

    fn bound(&mut self) {
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_first();
        }
    }
}

/// `"YYYY-MM-DD HH:MM:SS"` (Odoo's datetime format, UTC; fractional seconds ignored) to unix
/// seconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Unix seconds to `"YYYY-MM-DD HH:MM:SS"` (UTC).
pub fn format_datetime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
