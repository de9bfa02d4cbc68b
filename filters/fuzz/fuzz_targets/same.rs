//! JSON equality for the round-trip checks of the fuzz targets.
//!
//! Without the `float_roundtrip` feature, serde_json parses floats "best effort": the shortest
//! text of a parsed float (what serialising writes) can parse back one ulp away (`1e89` comes
//! back as `1.0000000000000001e89`). Rewritten calls are written from values, so that happens
//! to them; it is reported, and fixed by serde_json's `float_roundtrip` feature. So that the
//! targets keep finding other bugs in the production build, floats then compare within a
//! relative 1e-12; built with `--features float_roundtrip`, everything compares exactly.

use serde_json::Value;

pub fn same(a: &Value, b: &Value) -> bool {
    if cfg!(feature = "float_roundtrip") {
        return a == b;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
