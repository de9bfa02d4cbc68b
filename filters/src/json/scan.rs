//! A validating one-pass reader of JSON text: it checks values and steps over them without
//! building them, and hands out the text of the ones the caller keeps. The fast reading of hot
//! call shapes ([`crate::jsonrpc`]) reads whole bodies with it; [`super::check_raw`] checks
//! answers with it.
//!
//! It accepts exactly what [`super::from_slice`] accepts: `None` means the text is not valid
//! JSON there (the fast reading then reads the body the straightforward way, which names the
//! error). It must never pass text that reading refuses, nor read a string or a nesting
//! differently. How each rule matches serde_json's:
//!
//! - the body must be UTF-8 as a whole ([`Scanner::new`]): serde_json refuses invalid UTF-8 in
//!   strings, and any byte above ASCII outside a string is a syntax error anyway;
//! - the grammar is RFC 8259's, as serde_json's: whitespace is space, tab, CR and LF; no
//!   trailing commas, comments, leading zeros, bare `.5` or `1.`, `NaN` or `Infinity`;
//! - strings: control characters are refused, escapes must be one of JSON's; a string with a
//!   `\u` escape of a surrogate (paired or not) is read by serde_json itself, which knows what
//!   pairing it accepts; strings read for their value ([`Scanner::string`]) are decoded by
//!   serde_json whenever they hold an escape;
//! - numbers: one without an exponent and shorter than 300 bytes is always finite (below
//!   10^300), so it is valid once its syntax is; any other is read by serde_json itself (a
//!   number is read the same wherever it stands, so reading it alone is exact);
//! - nesting: the caller says how many arrays/objects a value may still open, counted from the
//!   top of the document as serde_json's recursion limit ([`MAX_LEVELS`]) counts them.

use std::borrow::Cow;

use serde_json::Value;

use super::{self as json, MAX_LEVELS};

/// What a string held, as far as reading it is concerned.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Escapes {
    None,
    /// Escapes, none of a surrogate.
    Plain,
    /// A `\u` escape of a surrogate: serde_json decides whether the string is valid.
    Surrogate,
}

/// Bytes that end the quick part of a string: the quote, the backslash and control characters.
static STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        stop[c] = true;
        c += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// The high bit of each byte of `word` that is a [`STRING_STOP`] byte, and possibly of bytes
/// after the first one (borrows run upwards), so only the lowest set bit is exact.
#[inline(always)]
fn stop_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))) | control
}

/// Whether any byte of `b` is a [`STRING_STOP`] byte.
pub(crate) fn has_string_stop(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut stops = 0;
    for word in &mut chunks {
        stops |= stop_bytes(u64::from_le_bytes(word.try_into().unwrap_or_default()));
    }
    stops != 0
        || chunks
            .remainder()
            .iter()
            .any(|&c| STRING_STOP[usize::from(c)])
}

/// A position in a UTF-8 body.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    /// `None` when the body is not UTF-8 (no JSON document then reads without error).
    pub(crate) fn new(body: &'a [u8]) -> Option<Self> {
        Some(Scanner {
            text: std::str::from_utf8(body).ok()?,
            i: 0,
        })
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        // Compact JSON has none: one comparison settles the usual case.
        while let Some(&c) = self.bytes().get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return;
            }
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let c = *self.bytes().get(self.i)?;
        self.i += 1;
        Some(c)
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.byte()? == c).then_some(())
    }

    /// Consumes `c` if it comes next (after whitespace).
    #[inline(always)]
    fn eat(&mut self, c: u8) -> bool {
        self.skip_whitespace();
        let next = self.bytes().get(self.i) == Some(&c);
        self.i += usize::from(next);
        next
    }

    /// Only whitespace remains.
    pub(crate) fn end(mut self) -> Option<()> {
        self.skip_whitespace();
        (self.i == self.text.len()).then_some(())
    }

    /// Reads an object's members, handing each name (decoded) to `member`, which must read
    /// the value. The object's `{` is read here; `None` if the next value is not an object.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            let name = self.string_rest()?;
            self.expect(b':')?;
            member(self, name)?;
            match self.byte()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Reads an array's elements, calling `element` to read each one. The array's `[` is read
    /// here; `None` if the next value is not an array.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            element(self)?;
            match self.byte()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string value, decoded; `None` if the next value is not a string.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        self.string_rest()
    }

    /// The text of the next value, checked, with `levels` arrays/objects it may still open
    /// (itself included).
    pub(crate) fn raw(&mut self, levels: usize) -> Option<&'a str> {
        self.skip_whitespace();
        let start = self.i;
        self.skip_value(levels)?;
        self.text.get(start..self.i)
    }

    /// The next value, built (as [`json::from_slice`] builds it).
    pub(crate) fn value(&mut self, levels: usize) -> Option<Value> {
        let raw = self.raw(levels)?;
        // The usual `id`, a small integer, built directly (checked JSON: no sign, no zeros in
        // front, so this reads only plain integers, as serde_json would).
        if let Ok(n) = raw.parse::<u32>() {
            return Some(Value::from(n));
        }
        json::from_slice(raw.as_bytes()).ok()
    }

    /// After an opening quote: the string's content, decoded, and the position past its
    /// closing quote.
    fn string_rest(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i;
        match self.scan_string()? {
            Escapes::None => self.text.get(start..self.i - 1).map(Cow::Borrowed),
            Escapes::Plain | Escapes::Surrogate => {
                let quoted = self.text.get(start - 1..self.i)?;
                serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
            }
        }
    }

    /// After an opening quote: checks the string and moves past its closing quote.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<()> {
        let start = self.i;
        if self.scan_string()? == Escapes::Surrogate {
            self.check_surrogates(start)?;
        }
        Some(())
    }

    /// serde_json's reading of the string that started at `start` (after its quote) and just
    /// ended, for what it accepts of surrogate escapes.
    #[cold]
    fn check_surrogates(&self, start: usize) -> Option<()> {
        let quoted = self.text.get(start - 1..self.i)?;
        serde_json::from_str::<String>(quoted).ok().map(drop)
    }

    /// After an opening quote: moves past the closing quote; `None` on a control character or
    /// an escape JSON does not have.
    #[inline(always)]
    fn scan_string(&mut self) -> Option<Escapes> {
        let b = self.bytes();
        let mut i = self.i;
        let mut escapes = Escapes::None;
        loop {
            // Eight bytes at a time while they last, to the first stop byte.
            while let Some(word) = b.get(i..i + 8) {
                let stops = stop_bytes(u64::from_le_bytes(word.try_into().ok()?));
                if stops != 0 {
                    i += (stops.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            while !STRING_STOP[usize::from(*b.get(i)?)] {
                i += 1;
            }
            match b[i] {
                b'"' => break,
                b'\\' => {
                    let found = match *b.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            i += 2;
                            Escapes::Plain
                        }
                        b'u' => {
                            let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
                            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                                return None;
                            }
                            let code = u16::from_str_radix(hex, 16).ok()?;
                            i += 6;
                            if (0xD800..0xE000).contains(&code) {
                                Escapes::Surrogate
                            } else {
                                Escapes::Plain
                            }
                        }
                        _ => return None,
                    };
                    escapes = escapes.max(found);
                }
                _ => return None,
            }
        }
        self.i = i + 1;
        Some(escapes)
    }

    /// After a number's first byte (`-` or a digit): checks it and moves past it.
    fn number(&mut self) -> Option<()> {
        let b = self.bytes();
        let start = self.i - 1;
        let mut i = self.i;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let lead = if b[start] == b'-' {
            i += 1;
            *b.get(i - 1)?
        } else {
            b[start]
        };
        match lead {
            // No leading zeros: a digit may not follow.
            b'0' if b.get(i).is_some_and(u8::is_ascii_digit) => return None,
            b'0' => {}
            b'1'..=b'9' => i = digits(i),
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            let after = digits(i + 1);
            if after == i + 1 {
                return None;
            }
            i = after;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = b.get(i) {
            exponent = true;
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let after = digits(i);
            if after == i {
                return None;
            }
            i = after;
        }
        self.i = i;
        if exponent || i - start >= 300 {
            json::from_slice(b.get(start..i)?).ok()?;
        }
        Some(())
    }

    /// After a literal's first byte: the rest of it.
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.i + rest.len();
        (self.bytes().get(self.i..end)? == rest).then(|| self.i = end)
    }

    /// An object member's name and colon, inside [`Scanner::skip_value`].
    #[inline(always)]
    fn skip_name(&mut self) -> Option<()> {
        self.expect(b'"')?;
        self.skip_string()?;
        self.expect(b':')
    }

    /// Checks the next value and moves past it; `levels`: how many arrays/objects it may still
    /// open, itself included (at most [`MAX_LEVELS`]). Iterative, one bit per open container.
    pub(crate) fn skip_value(&mut self, levels: usize) -> Option<()> {
        let levels = levels.min(MAX_LEVELS);
        // Bit 0: whether the innermost open container is an object.
        let mut objects: u128 = 0;
        let mut depth = 0usize;
        'value: loop {
            match self.byte()? {
                b'"' => self.skip_string()?,
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                open @ (b'[' | b'{') => {
                    if depth == levels {
                        return None;
                    }
                    let object = open == b'{';
                    if !self.eat(if object { b'}' } else { b']' }) {
                        depth += 1;
                        objects = objects << 1 | u128::from(object);
                        if object {
                            self.skip_name()?;
                        }
                        continue 'value;
                    }
                }
                _ => return None,
            }
            // A value ended: close containers until a comma asks for another value.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let object = objects & 1 == 1;
                match (self.byte()?, object) {
                    (b',', _) => {
                        if object {
                            self.skip_name()?;
                        }
                        continue 'value;
                    }
                    (b']', false) | (b'}', true) => {
                        depth -= 1;
                        objects >>= 1;
                    }
                    _ => return None,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Whether the scanner reads `text` as one whole value.
    fn scans(text: &str) -> bool {
        json::is_valid(text.as_bytes())
    }

    /// The scanner accepts exactly what serde_json's `Value` reading accepts.
    fn agrees(text: &str) {
        let reference = json::from_slice(text.as_bytes()).is_ok();
        assert_eq!(scans(text), reference, "{text:?}");
    }

    /// The word-at-a-time check is the byte rule, wherever the byte stands (borrows between
    /// bytes of a word included), and what serde_json escapes.
    #[test]
    fn string_stops_are_found_anywhere() {
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 33] {
            for at in 0..len {
                for b in [0u8, 0x01, 0x1f, 0x20, b'"', b'\\', b'a', 0x7f, 0x80, 0xff] {
                    for neighbour in [b'a', 0x00, 0xff] {
                        let mut v = vec![b'a'; len];
                        v[at] = b;
                        if at + 1 < len {
                            v[at + 1] = neighbour;
                        }
                        let want = v.iter().any(|&c| STRING_STOP[usize::from(c)]);
                        assert_eq!(has_string_stop(&v), want, "{v:?}");
                        if let Ok(text) = std::str::from_utf8(&v) {
                            let written = serde_json::to_string(text).unwrap();
                            assert_eq!(written != format!("\"{text}\""), want, "{v:?}");
                        }
                    }
                }
            }
        }
        assert!(!has_string_stop(b""));
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        for text in [
            "0",
            "-0",
            "1",
            "-12.5",
            "0.5",
            "1e5",
            "1E+5",
            "1e-400",
            "1e400",
            "-1e400",
            "01",
            "-01",
            "1.",
            ".5",
            "-",
            "+1",
            "1.e5",
            "1e",
            "1e+",
            "00",
            "0x10",
            "NaN",
            "Infinity",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "truex",
            "\"\"",
            "\"a\\\"b\"",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"a\tb\"",
            "\"a\nb\"",
            "\"\u{7f}\"",
            "\"é\"",
            "[]",
            "{}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":}",
            "{1:2}",
            "[[],{}]",
            " [ 1 , { \"a\" : [ ] } ] ",
            "[1]x",
            "{\"a\":1}}",
            "[\"a\",\"b\"]]",
            "[\r\n\t1]",
            "[\u{0c}1]",
            "",
        ] {
            agrees(text);
        }
        agrees(&format!("[{}]", "9".repeat(299)));
        agrees(&format!("[{}]", "9".repeat(400)));
        agrees(&format!("[0.{}]", "9".repeat(400)));
        agrees(&format!("[-{}]", "1".repeat(310)));
        for n in [1, 126, 127, 128, 200] {
            agrees(&format!("{}{}", "[".repeat(n), "]".repeat(n)));
            agrees(&format!("{}{}", "{\"a\":".repeat(n), "}".repeat(n)));
        }
        assert!(Scanner::new(b"\"\xff\"").is_none());
        // Stop bytes at every offset of the eight-byte steps, after ASCII and UTF-8 text.
        for len in 0..20 {
            for filler in ["a", "é"] {
                let text = filler.repeat(len);
                for inner in [
                    "", "\\n", "\\u0041", "\u{1}", "\u{1f}", "\\", "\"", "\\ud800",
                ] {
                    agrees(&format!("[\"{text}{inner}{text}\",\"{text}\"]"));
                }
            }
        }
    }

    #[test]
    fn strings_are_decoded_as_serde_json_decodes_them() {
        fn read(text: &str) -> Option<Cow<'_, str>> {
            Scanner::new(text.as_bytes()).unwrap().string()
        }
        assert_eq!(read(r#""model""#).unwrap(), "model");
        assert!(matches!(read(r#""model""#), Some(Cow::Borrowed(_))));
        assert_eq!(read(r#""mod\u0065l""#).unwrap(), "model");
        assert_eq!(read(r#""a\\b\/c""#).unwrap(), "a\\b/c");
        assert_eq!(read(r#""\ud83d\ude00""#).unwrap(), "\u{1f600}");
        assert!(read(r#""\ud83d""#).is_none());
        assert!(read("1").is_none());
    }

    #[test]
    fn nesting_counts_from_the_given_levels() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        fn raw(text: &str, levels: usize) -> Option<&str> {
            Scanner::new(text.as_bytes()).unwrap().raw(levels)
        }
        assert_eq!(raw(&nested(5), 5), Some(nested(5).as_str()));
        assert_eq!(raw(&nested(6), 5), None);
        assert_eq!(raw("1", 0), Some("1"));
        assert_eq!(raw("[]", 0), None);
    }

    #[test]
    fn values_are_built_as_the_plain_reading_builds_them() {
        let value = |text: &str| Scanner::new(text.as_bytes()).unwrap().value(MAX_LEVELS);
        for text in [
            "7",
            "0",
            "4294967295",
            "4294967296",
            "-1",
            "1.5",
            "\"x\"",
            "null",
            "[1]",
        ] {
            assert_eq!(
                value(text),
                json::from_slice(text.as_bytes()).ok(),
                "{text}"
            );
        }
        let quirk = r#"{"$serde_json::private::RawValue":"[1]"}"#;
        assert_eq!(value(quirk), json::from_slice(quirk.as_bytes()).ok());
    }
}
