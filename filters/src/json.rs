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
//! [`Check`] walks a value through the same serde_json code paths as [`PlainValue`] (strings
//! decoded and checked, numbers parsed with their range checks, the nesting limit), without
//! allocating. So text that passes [`Check`] is text [`PlainValue`] reads without error: what
//! lets [`crate::Call`] keep `args`/`kwargs` as text and decode them later, infallibly.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// How many arrays/objects serde_json lets nest, counted from the document's top level (its
/// recursion limit: 128 levels refused, 127 read).
pub(crate) const MAX_LEVELS: usize = 127;

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

/// Validates one value as [`PlainValue`] would read it, without building it; `levels` is how
/// many arrays/objects may still open, counting the value itself (serde_json's own limit also
/// applies, counted from the top of the document being read).
#[derive(Clone, Copy)]
pub(crate) struct Check {
    pub(crate) levels: usize,
}

impl Check {
    fn enter<E: serde::de::Error>(self) -> Result<Check, E> {
        match self.levels.checked_sub(1) {
            Some(levels) => Ok(Check { levels }),
            None => Err(E::custom("recursion limit exceeded")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        // Keys are strings: a key read with `Check` is decoded and validated like any string.
        while map.next_key_seed(Check { levels: 0 })?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Whether [`PlainValue`] reads `raw` without error at a place inside `enclosing`
/// arrays/objects of its document. `raw` is already well-formed JSON (serde_json checked its
/// syntax, escapes and UTF-8 when it captured it), but not yet checked for what only decoding
/// finds: `\u` escapes of lone surrogates, numbers out of range, nesting beyond serde_json's
/// limit for the whole document.
///
/// A quick scan settles almost every body (see [`needs_decoding_check`]); the others are
/// decoded with [`Check`].
pub(crate) fn check_raw(raw: &RawValue, enclosing: usize) -> bool {
    let Some(levels) = MAX_LEVELS.checked_sub(enclosing) else {
        return false;
    };
    let text = raw.get();
    if surely_decodes(text.as_bytes(), levels) || !needs_decoding_check(text, levels) {
        debug_assert!(decoding_check(text, levels), "the quick scan passed {text}");
        return true;
    }
    decoding_check(text, levels)
}

/// Validates `text` with [`Check`].
fn decoding_check(text: &str, levels: usize) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    Check { levels }.deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// A cheaper sufficient condition for `!needs_decoding_check(text, levels)`, settling the usual
/// `args` and `kwargs` (no escapes, no exponents, few digits) without tracking strings: no
/// backslash (so no `\u` escape), no `e`/`E` right after a digit (an exponent always follows
/// one), fewer than 300 digits in all (so no run of 300), and no more opening brackets in all
/// than `levels` (so no deeper nesting). Each is a branch-free pass the compiler vectorises,
/// about a tenth of the scan's cost per byte; bytes inside strings only make it more cautious.
fn surely_decodes(b: &[u8], levels: usize) -> bool {
    // Byte counters per chunk (at most 128 per chunk, so no overflow) keep the lanes narrow.
    let (mut opens, mut digits, mut flags) = (0usize, 0usize, 0u8);
    for chunk in b.chunks(128) {
        let (mut o, mut d, mut f) = (0u8, 0u8, 0u8);
        for &c in chunk {
            o += u8::from((c == b'[') | (c == b'{'));
            d += u8::from(c.is_ascii_digit());
            f |= u8::from(c == b'\\');
        }
        opens += usize::from(o);
        digits += usize::from(d);
        flags |= f;
    }
    if let Some(next) = b.get(1..) {
        flags |= b.iter().zip(next).fold(0u8, |f, (&x, &y)| {
            f | (u8::from(x.is_ascii_digit()) & u8::from((y | 0x20) == b'e'))
        });
    }
    flags == 0 && opens <= levels && digits < 300
}

/// Whether well-formed JSON `text` may hold something only decoding refuses, so that it needs
/// [`Check`]: conservatively, any `\u` escape of a surrogate (`\uD800`-`\uDFFF`, paired or
/// not), any number with an exponent or with a run of 300 digits (a JSON number can overflow
/// an `f64` only with one or the other), or nesting deeper than `levels`. One pass over the
/// bytes, about three times cheaper than [`Check`].
fn needs_decoding_check(text: &str, levels: usize) -> bool {
    let b = text.as_bytes();
    let (mut depth, mut digits, mut i) = (0usize, 0usize, 0usize);
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            // A string, to its closing quote (well-formed, so there is one).
            b'"' => loop {
                while b.get(i).is_some_and(|&c| c != b'"' && c != b'\\') {
                    i += 1;
                }
                match b.get(i) {
                    None => return true,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        if matches!(
                            b.get(i + 1..i + 4),
                            Some([b'u', b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'])
                        ) {
                            return true;
                        }
                        // The backslash and the escaped character (for `\u`, the `u`: its hex
                        // digits follow as ordinary bytes).
                        i += 2;
                    }
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > levels {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'0'..=b'9' => {
                digits += 1;
                if digits >= 300 {
                    return true;
                }
                continue;
            }
            // Outside strings an `e` follows a digit only as an exponent (else `true`, `false`).
            b'e' | b'E' if digits > 0 => return true,
            _ => {}
        }
        digits = 0;
    }
    false
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

    #[test]
    fn check_rejects_what_decoding_rejects() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(check_raw(&raw(r#"{"a":[1,"x",{"b":null}],"c":-0.5e3}"#), 2));
        assert!(check_raw(&raw("1e308"), 2));
        assert!(!check_raw(&raw("[1e400]"), 2));
        assert!(!check_raw(&raw(&format!("[{}]", "9".repeat(400))), 2));
        assert!(!check_raw(&raw(r#"["\ud800"]"#), 2));
        assert!(!check_raw(&raw(r#"{"\udc00":1}"#), 2));
        assert!(check_raw(&raw(r#"["\ud83d\ude00"]"#), 2));
        // Nesting: 127 levels in all, the enclosing ones included.
        let nested = |n: usize| raw(&format!("{}{}", "[".repeat(n), "]".repeat(n)));
        assert!(check_raw(&nested(125), 2));
        assert!(!check_raw(&nested(126), 2));
        assert!(check_raw(&nested(127), 0));
        assert!(!check_raw(&nested(128), 0));
        assert!(!check_raw(&nested(1), 128));
        // The quick scan: settles what it can, sends the rest to Check.
        let scan = |s: &str| needs_decoding_check(s, 10);
        assert!(!scan(
            r#"{"a":[1,-2.5,"x\u00e9\n\\",true,false,null],"e":"1e5 \"x"}"#
        ));
        assert!(!scan(&format!("[{}]", "9".repeat(299))));
        assert!(scan(&format!("[{}]", "9".repeat(300))));
        assert!(scan("[1e5]") && scan("[1.5E-5]") && scan("[0e0]"));
        assert!(scan(r#"["\ud83d\ude00"]"#) && scan(r#"{"\uDC00":1}"#));
        assert!(!scan(r#"["\\ud800", "\u00d8"]"#));
        assert!(!scan(&nested(10).get().replace("[]", "[1]")) && scan(nested(11).get()));
        // The quicker condition never passes what the scan would send to Check.
        let sure = |s: &str| surely_decodes(s.as_bytes(), 10);
        for text in [
            "[1e5]",
            "[1.5E-5]",
            "[0e0]",
            r#"["\ud83d\ude00"]"#,
            r#"{"\uDC00":1}"#,
            nested(11).get(),
            &format!("[{}]", "9".repeat(300)),
        ] {
            assert!(scan(text), "{text}");
            assert!(!sure(text), "{text}");
        }
        assert!(sure(
            r#"{"specification":{"display_name":{}},"limit":80,"domain":[["a","=",1]]}"#
        ));
        assert!(sure(&format!("[{}0]", "1,".repeat(149))));
        // Cautious: 300 digits in all, though no run of them, go to the scan.
        let spread = format!("[{}0]", "1,".repeat(299));
        assert!(!sure(&spread) && !scan(&spread));
        assert!(!sure(r#"["e\"1e"]"#) && !scan(r#"["e\"1e"]"#));
        // What Check accepts, PlainValue reads.
        for n in [1, 50, 127] {
            assert!(from_slice(nested(n).get().as_bytes()).is_ok());
        }
        assert!(from_slice(nested(128).get().as_bytes()).is_err());
    }
}
