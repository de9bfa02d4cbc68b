//! JSON reading for request bodies: plain [`Value`]s, and validation without building them.
//!
//! # Why not `Value::deserialize`
//!
//! With serde_json's `raw_value` feature on (BridgeCore needs it to keep `args`/`kwargs` as
//! text), `Value::deserialize` reads an object whose first key is serde_json's private token
//! `"$serde_json::private::RawValue"` as the JSON *inside* its string value: `{"$serde_json::
//! private::RawValue": "[]"}` becomes `[]`. Odoo sees an ordinary dict there, so a filter (or a
//! cache key) looking at the `Value` would see something else than Odoo does. [`PlainValue`]
//! reads every object as an object, as serde_json does without the feature.
//!
//! # Validation
//!
//! [`scan`] checks JSON text without building it, to the same rules as [`from_slice`], so that
//! text it passed decodes here later without error. [`MAX_LEVELS`] is the nesting both count
//! with.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// How many arrays/objects serde_json lets nest, counted from the document's top level (its
/// recursion limit: 128 levels refused, 127 read).
pub(crate) const MAX_LEVELS: usize = 127;

pub(crate) mod scan;

/// Whether `text` is one JSON document that [`from_slice`] reads without error, found without
/// building it (see [`scan`]: about a third of the cost of reading it).
pub fn is_valid(text: &[u8]) -> bool {
    valid_at(text, MAX_LEVELS)
}

/// Whether JSON escapes anything in `text` (a quote, a backslash or a control character):
/// text without any is written as a JSON string by quoting it, as serde_json writes it. Eight
/// bytes at a time, for hot paths that write strings by hand (the access log).
pub fn needs_escape(text: &[u8]) -> bool {
    scan::has_string_stop(text)
}

/// Whether `text` is one JSON value with at most `levels` nested arrays/objects.
fn valid_at(text: &[u8], levels: usize) -> bool {
    scan::Scanner::new(text)
        .and_then(|mut s| {
            s.skip_value(levels)?;
            s.end()
        })
        .is_some()
}

/// Whether [`from_slice`] reads `raw` without error at a place inside `enclosing`
/// arrays/objects of its document: `raw` is well-formed JSON, but serde_json captured it
/// without decoding, so lone surrogates, numbers out of range and too deep a nesting are found
/// only now.
pub(crate) fn check_raw(raw: &RawValue, enclosing: usize) -> bool {
    let Some(levels) = MAX_LEVELS.checked_sub(enclosing) else {
        return false;
    };
    valid_at(raw.get().as_bytes(), levels)
}

/// Deserialises one [`Value`], every object as an object (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct PlainValue;

impl<'de> DeserializeSeed<'de> for PlainValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PlainValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own visitor (its parser never produces a non-finite float).
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(PlainValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(PlainValue)?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// Reads a whole document (nothing but whitespace after it) with [`PlainValue`]. Use it, not
/// `serde_json::from_slice::<Value>`, for any JSON BridgeCore acts on (see the module doc).
pub fn from_slice(text: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = PlainValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The types a lazily decoded member can have: what [`PlainValue`] reads from an array or an
/// object.
pub(crate) trait Plain: Default + Sized {
    /// `value` as `Self`, if it has the right type.
    fn from_plain(value: Value) -> Option<Self>;
}

impl Plain for Vec<Value> {
    fn from_plain(value: Value) -> Option<Self> {
        match value {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

impl Plain for Map<String, Value> {
    fn from_plain(value: Value) -> Option<Self> {
        match value {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_value_token_is_an_ordinary_key() {
        let text = r#"{"$serde_json::private::RawValue":"[1]"}"#;
        let v = from_slice(text.as_bytes()).unwrap();
        assert_eq!(v["$serde_json::private::RawValue"], "[1]");
        // What serde_json's own Value does with the feature on (the reason for PlainValue).
        let quirk: Value = serde_json::from_str(text).unwrap();
        assert_eq!(quirk, serde_json::json!([1]));
    }
}
