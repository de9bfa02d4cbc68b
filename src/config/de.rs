//! A serde `Deserializer` over the positioned YAML tree.
//!
//! It does what a YAML deserializer does, plus three things BridgeCore's file needs:
//! - every error carries the position of the node it is about (the key for unknown keys);
//! - unknown keys of a struct are all recorded (not just the first), then skipped, so one pass
//!   finds every misspelt key in a section;
//! - plain scalars are typed against the target: a plain `5` is a number for a `u64` and the text
//!   `5` for a `String`; a quoted `"5"` is always text.
//!
//! It also records, for each struct it fills, which keys the struct knows and which the file
//! has: the drift test uses that to prove the reference file documents every key.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{Entry, Kind, Node, Pos, Problem, Scalar};

/// What one deserialization pass collects besides its result.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    /// Unknown keys (each at its key).
    pub problems: RefCell<Vec<Problem>>,
    /// For each struct filled: its path, the keys it knows, the keys the file gave it.
    pub structs: RefCell<Vec<StructSeen>>,
}

#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct StructSeen {
    pub path: String,
    pub known: &'static [&'static str],
    pub present: Vec<String>,
}

/// A deserialization error, positioned once it has passed through the node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

impl DeError {
    /// Positions an error that has none yet, prefixing the path it is about.
    fn at(mut self, pos: Pos, path: &str) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            if !path.is_empty() {
                self.message = format!("`{path}`: {}", self.message);
            }
        }
        self
    }
}

/// Deserializes `T` from `node`, whose path from the root is `path` (for messages).
pub(crate) fn from_node<'a, T: de::Deserialize<'a>>(
    node: &'a Node,
    path: &str,
    sink: &Sink,
) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_owned(),
        sink,
    })
}

/// How YAML 1.2's core schema reads a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn resolve(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(n) = i128::from_str_radix(hex, 16) {
                return Resolved::Int(n);
            }
        }
        return Resolved::Str(text);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            if let Ok(n) = i128::from_str_radix(oct, 8) {
                return Resolved::Int(n);
            }
        }
        return Resolved::Str(text);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i128>() {
            return Resolved::Int(n);
        }
        return Resolved::Str(text);
    }
    if is_core_float(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return Resolved::Float(f);
        }
    }
    Resolved::Str(text)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// How a node reads in an error message: "a mapping", "a list", "`text`", "an empty value".
fn describe(node: &Node) -> String {
    match &node.kind {
        Kind::Map(_) => "a mapping".to_owned(),
        Kind::Seq(_) => "a list".to_owned(),
        Kind::Scalar(Scalar { text, plain: true }) if text.is_empty() => {
            "an empty value".to_owned()
        }
        Kind::Scalar(Scalar { text, plain: true }) => format!("`{text}`"),
        Kind::Scalar(Scalar { text, plain: false }) => format!("the quoted text \"{text}\""),
    }
}

fn is_null(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar(Scalar { text, plain: true }) if resolve(text) == Resolved::Null)
}

/// "unknown key `listn` in `server` (did you mean `listen`?)", or the list of known keys when
/// none is close.
pub(crate) fn unknown_key(key: &str, place: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d);
    match closest {
        Some((_, k)) => format!("unknown key `{key}` {place} (did you mean `{k}`?)"),
        None => format!(
            "unknown key `{key}` {place} (expected one of: {})",
            known.join(", ")
        ),
    }
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

struct NodeDe<'a, 's> {
    node: &'a Node,
    path: String,
    sink: &'s Sink,
}

impl<'a, 's> NodeDe<'a, 's> {
    fn fail<T>(&self, message: String) -> Result<T, DeError> {
        Err(DeError { message, pos: None }.at(self.node.pos, &self.path))
    }

    fn integer(&self, what: &str) -> Result<i128, DeError> {
        match &self.node.kind {
            Kind::Scalar(Scalar { text, plain: true }) => match resolve(text) {
                Resolved::Int(n) => Ok(n),
                _ => self.fail(format!("expected {what}, found {}", describe(self.node))),
            },
            Kind::Scalar(Scalar { plain: false, .. }) => self.fail(format!(
                "expected {what}, found {} (remove the quotes)",
                describe(self.node)
            )),
            _ => self.fail(format!("expected {what}, found {}", describe(self.node))),
        }
    }

    fn unsigned<T: TryFrom<i128>>(&self) -> Result<T, DeError> {
        let n = self.integer("a whole number")?;
        if n < 0 {
            return self.fail(format!("expected a number of 0 or more, found `{n}`"));
        }
        T::try_from(n).or_else(|_| self.fail(format!("the number `{n}` is too large")))
    }

    fn signed<T: TryFrom<i128>>(&self) -> Result<T, DeError> {
        let n = self.integer("a whole number")?;
        T::try_from(n).or_else(|_| self.fail(format!("the number `{n}` is out of range")))
    }

    fn map_access(
        &self,
        entries: &'a [Entry],
        only: Option<&'static [&'static str]>,
    ) -> MapDe<'a, 's> {
        let entries: Vec<&'a Entry> = match only {
            None => entries.iter().collect(),
            Some(known) => entries
                .iter()
                .filter(|e| {
                    let ok = known.contains(&e.key.as_str());
                    if !ok {
                        let place = if self.path.is_empty() {
                            "at the top level".to_owned()
                        } else {
                            format!("in `{}`", self.path)
                        };
                        self.sink
                            .problems
                            .borrow_mut()
                            .push(Problem::new(e.key_pos, unknown_key(&e.key, &place, known)));
                    }
                    ok
                })
                .collect(),
        };
        MapDe {
            entries: entries.into_iter(),
            value: None,
            path: self.path.clone(),
            sink: self.sink,
        }
    }
}

macro_rules! unsigned {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.unsigned()?;
            let result = visitor.$visit(n);
            self.position_value(result)
        }
    )*};
}

macro_rules! signed {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.signed()?;
            let result = visitor.$visit(n);
            self.position_value(result)
        }
    )*};
}

impl NodeDe<'_, '_> {
    fn position_value<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| e.at(self.node.pos, &self.path))
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(self.map_access(entries, None)),
            Kind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                path: self.path.clone(),
                sink: self.sink,
            }),
            Kind::Scalar(Scalar { text, plain: false }) => visitor.visit_str(text),
            Kind::Scalar(Scalar { text, plain: true }) => match resolve(text) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(n) => match (u64::try_from(n), i64::try_from(n)) {
                    (Ok(u), _) => visitor.visit_u64(u),
                    (_, Ok(i)) => visitor.visit_i64(i),
                    _ => visitor.visit_i128(n),
                },
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_str(s),
            },
        };
        self.position_value(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.node.kind {
            Kind::Scalar(Scalar { text, plain: true }) => match resolve(text) {
                Resolved::Bool(b) => b,
                _ => {
                    return self.fail(format!(
                        "expected true or false, found {}",
                        describe(self.node)
                    ))
                }
            },
            Kind::Scalar(Scalar { plain: false, .. }) => {
                return self.fail(format!(
                    "expected true or false, found {} (remove the quotes)",
                    describe(self.node)
                ))
            }
            _ => {
                return self.fail(format!(
                    "expected true or false, found {}",
                    describe(self.node)
                ))
            }
        };
        let result = visitor.visit_bool(b);
        self.position_value(result)
    }

    unsigned! {
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    signed! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = match &self.node.kind {
            Kind::Scalar(Scalar { text, plain: true }) => match resolve(text) {
                // Integers read as floats where a float is wanted.
                #[allow(clippy::cast_precision_loss)]
                Resolved::Int(n) => n as f64,
                Resolved::Float(f) => f,
                _ => return self.fail(format!("expected a number, found {}", describe(self.node))),
            },
            _ => return self.fail(format!("expected a number, found {}", describe(self.node))),
        };
        let result = visitor.visit_f64(f);
        self.position_value(result)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Scalar(Scalar { text, plain: false }) => visitor.visit_str(text),
            Kind::Scalar(Scalar { text, plain: true }) => {
                if resolve(text) == Resolved::Null {
                    return self.fail(format!(
                        "expected text, found {}",
                        if text.is_empty() {
                            "an empty value".to_owned()
                        } else {
                            format!("null (`{text}`); quote it if you mean the text")
                        }
                    ));
                }
                visitor.visit_str(text)
            }
            _ => return self.fail(format!("expected text, found {}", describe(self.node))),
        };
        self.position_value(result)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if is_null(self.node) {
            let result = visitor.visit_none();
            self.position_value(result)
        } else {
            let (pos, path) = (self.node.pos, self.path.clone());
            visitor.visit_some(self).map_err(|e| e.at(pos, &path))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if is_null(self.node) {
            let result = visitor.visit_unit();
            self.position_value(result)
        } else {
            self.fail(format!(
                "expected an empty value, found {}",
                describe(self.node)
            ))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (pos, path) = (self.node.pos, self.path.clone());
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(pos, &path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Kind::Seq(items) = &self.node.kind else {
            return self.fail(format!(
                "expected a list (`[a, b]` or `- a` lines), found {}",
                describe(self.node)
            ));
        };
        let result = visitor.visit_seq(SeqDe {
            items: items.iter().enumerate(),
            path: self.path.clone(),
            sink: self.sink,
        });
        self.position_value(result)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(self.map_access(entries, None)),
            // `key:` with nothing after it: an empty mapping.
            _ if is_null(self.node) => visitor.visit_map(self.map_access(&[], None)),
            _ => {
                return self.fail(format!(
                    "expected a mapping (`key: value` lines or `{{key: value}}`), found {}",
                    describe(self.node)
                ))
            }
        };
        self.position_value(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let entries: &[Entry] = match &self.node.kind {
            Kind::Map(entries) => entries,
            _ if is_null(self.node) => &[],
            _ => {
                return self.fail(format!(
                    "expected a mapping (`key: value` lines or `{{key: value}}`), found {}",
                    describe(self.node)
                ))
            }
        };
        self.sink.structs.borrow_mut().push(StructSeen {
            path: self.path.clone(),
            known: fields,
            present: entries.iter().map(|e| e.key.clone()).collect(),
        });
        let result = visitor.visit_map(self.map_access(entries, Some(fields)));
        self.position_value(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Kind::Scalar(Scalar { text, .. }) = &self.node.kind else {
            return self.fail(format!("expected a name, found {}", describe(self.node)));
        };
        let de: de::value::StrDeserializer<'_, DeError> = text.as_str().into_deserializer();
        let result = visitor.visit_enum(de);
        self.position_value(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'a, 's> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: String,
    sink: &'s Sink,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(NodeDe {
                    node,
                    path: format!("{}[{i}]", self.path),
                    sink: self.sink,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a, 's> {
    entries: std::vec::IntoIter<&'a Entry>,
    value: Option<&'a Entry>,
    path: String,
    sink: &'s Sink,
}

impl<'de> de::MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let de: de::value::StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(de)
            .map(Some)
            .map_err(|e| e.at(entry.key_pos, &self.path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(entry) = self.value.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        seed.deserialize(NodeDe {
            node: &entry.value,
            path: child_path(&self.path, &entry.key),
            sink: self.sink,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_resolution() {
        assert_eq!(resolve(""), Resolved::Null);
        assert_eq!(resolve("~"), Resolved::Null);
        assert_eq!(resolve("True"), Resolved::Bool(true));
        assert_eq!(resolve("2"), Resolved::Int(2));
        assert_eq!(resolve("-2"), Resolved::Int(-2));
        assert_eq!(resolve("0x1F"), Resolved::Int(31));
        assert_eq!(resolve("0o17"), Resolved::Int(15));
        assert_eq!(resolve("1.5"), Resolved::Float(1.5));
        assert_eq!(resolve("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve("yes"), Resolved::Str("yes"));
        assert_eq!(resolve("0.0.0.0:8080"), Resolved::Str("0.0.0.0:8080"));
        assert_eq!(resolve("30s"), Resolved::Str("30s"));
        assert_eq!(resolve("."), Resolved::Str("."));
        assert_eq!(resolve("1e"), Resolved::Str("1e"));
    }
}
