//! Stored answers of the response cache, precompressed once and re-stamped per hit.
//!
//! A cached JSON-RPC read must go back with the *caller's* `id`, and most clients want it
//! compressed. Compressing 12 KB per hit costs more than the rest of a hit together, so the
//! envelope is written with `id` last (clients do not care about key order):
//!
//! ```text
//! {"jsonrpc":"2.0","result":<result>,"id":<id>}
//! └──────── PREFIX + result ──────┘└── TAIL ──┘
//! ```
//!
//! `PREFIX + result` is compressed once, at store time, and left *open*: flushed to a byte
//! boundary but not finished. A hit copies that open stream and appends the small TAIL in the
//! coding's own framing, with no compression work:
//!
//! - **gzip**: header, raw deflate ended by a sync flush; per hit one final *stored* deflate block
//!   (more than one past 65 535 bytes) with the TAIL, then CRC-32 and ISIZE. The CRC of
//!   `PREFIX + result` is kept, and extended over the TAIL ([`crc32fast::Hasher::new_with_initial_len`]).
//! - **br**: the encoder's `BROTLI_OPERATION_FLUSH` output; per hit one *uncompressed*
//!   meta-block with the TAIL and the final empty meta-block. An uncompressed meta-block holds
//!   at most 65 536 bytes here (4-nibble length), so a longer TAIL (an absurd `id`) is answered
//!   in identity.
//! - **zstd**: one frame without content size or checksum, ended by `ZSTD_e_flush`; per hit one
//!   *raw* block with `Last_Block` set (more than one past the frame's block size limit). One
//!   frame, not two concatenated, so every decoder reads the whole answer.
//!
//! Odoo 19's `/json/2` answers with the bare result (no envelope, no id): [`Envelope::Bare`]
//! stores finished streams and a hit hands out the stored [`Bytes`] as they are.
//!
//! A compressed form that is not smaller than identity is not kept (a `[]` answer grows under
//! every coding); [`Bodies::render`] then answers in identity.

use std::fmt;
use std::io::Write as _;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::encoding::Coding;

/// The envelope before the result. `id` comes last so that it can be appended per hit.
const PREFIX: &[u8] = br#"{"jsonrpc":"2.0","result":"#;
/// The start of the per-hit TAIL; the id's JSON and `}` follow.
const TAIL_HEAD: &[u8] = br#","id":"#;
/// The end of the TAIL.
const TAIL_END: &[u8] = b"}";

/// gzip member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
/// gzip trailer: CRC-32 and ISIZE.
const GZIP_TRAILER: usize = 8;
/// The largest stored deflate block (LEN is 16 bits).
const DEFLATE_STORED_MAX: usize = 65_535;
/// A stored deflate block's header at a byte boundary: BFINAL/BTYPE byte, LEN, NLEN.
const DEFLATE_STORED_HEADER: usize = 5;

/// The largest uncompressed brotli meta-block with a 4-nibble MLEN.
const BROTLI_UNCOMPRESSED_MAX: usize = 65_536;
/// Uncompressed meta-block header (20 bits, padded) plus the final empty meta-block.
const BROTLI_OVERHEAD: usize = 3 + 1;
/// ISLAST=1, ISLASTEMPTY=1: the end of a brotli stream.
const BROTLI_LAST_EMPTY: u8 = 0x03;
/// brotli window bounds (log2). Below 2^18 the `brotli` crate picks other hashers for the
/// middle qualities and compresses 12 KB twenty times slower (4 ms instead of 0.2 ms at level
/// 5, measured); 4 MiB is the encoder's default.
const BROTLI_LGWIN_MIN: u32 = 18;
const BROTLI_LGWIN_MAX: u32 = 22;

/// A zstd frame's magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A zstd block header.
const ZSTD_BLOCK_HEADER: usize = 3;
/// zstd's absolute block size limit (the window can lower it).
const ZSTD_BLOCK_MAX: usize = 128 * 1024;

/// Format version of [`Bodies::encode`].
const ENCODING_VERSION: u8 = 1;

/// How the stored result is wrapped when answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// A JSON-RPC 2.0 answer (`/web/dataset/call_kw`, `/jsonrpc`): the result inside
    /// `{"jsonrpc":"2.0","result":…,"id":…}`, the id re-stamped per hit.
    JsonRpc,
    /// Odoo 19's `/json/2`: the result is the whole body, the same for every caller.
    Bare,
}

/// Why an upstream answer cannot be stored.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum NotStorable {
    /// The body is not JSON.
    #[error("the answer is not JSON")]
    NotJson,
    /// The body is JSON but not an object.
    #[error("the answer is not a JSON object")]
    NotAnObject,
    /// The answer has an `error` member: Odoo sends its errors as HTTP 200.
    #[error("the answer is an error")]
    Error,
    /// The answer has no `result` member.
    #[error("the answer has no result")]
    NoResult,
    /// `result` appears twice: parsers disagree on which one counts, so neither is stored.
    #[error("the answer has two results")]
    DuplicateResult,
}

/// The raw JSON text of the top-level `result` member of a JSON-RPC answer body.
///
/// Refuses answers with an `error` member (Odoo sends errors as HTTP 200, and an error must
/// never be served from the cache). The body is parsed with serde_json, so a `"result"` inside
/// a string or a nested object is not mistaken for the member; the result itself is validated
/// but borrowed as text (`&RawValue`), not built into a `Value` tree.
pub fn jsonrpc_result(answer: &[u8]) -> Result<&[u8], NotStorable> {
    let parsed: Answer<'_> = match serde_json::from_slice(answer) {
        Ok(parsed) => parsed,
        Err(e) if e.is_data() => return Err(NotStorable::NotAnObject),
        Err(_) => return Err(NotStorable::NotJson),
    };
    if parsed.error {
        return Err(NotStorable::Error);
    }
    if parsed.duplicate {
        return Err(NotStorable::DuplicateResult);
    }
    parsed
        .result
        .map(|raw| raw.get().as_bytes())
        .ok_or(NotStorable::NoResult)
}

/// What [`jsonrpc_result`] reads of an answer: only an object is accepted (a derived
/// `Deserialize` would also take an array as a struct).
struct Answer<'a> {
    result: Option<&'a RawValue>,
    error: bool,
    duplicate: bool,
}

impl<'de> Deserialize<'de> for Answer<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnswerVisitor)
    }
}

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Answer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut answer = Answer {
            result: None,
            error: false,
            duplicate: false,
        };
        while let Some(key) = map.next_key::<Member>()? {
            match key {
                Member::Result => {
                    let raw = map.next_value::<&'de RawValue>()?;
                    answer.duplicate |= answer.result.replace(raw).is_some();
                }
                Member::Error => {
                    map.next_value::<IgnoredAny>()?;
                    answer.error = true;
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(answer)
    }
}

/// A top-level member name, compared without allocating (escaped names included).
enum Member {
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl Visitor<'_> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "result" => Member::Result,
                    "error" => Member::Error,
                    _ => Member::Other,
                })
            }
        }
        deserializer.deserialize_identifier(MemberVisitor)
    }
}

/// Which codings to precompute (the `compression:` section's switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codings {
    /// Keep a gzip form.
    pub gzip: bool,
    /// Keep a brotli form.
    pub brotli: bool,
    /// Keep a zstd form.
    pub zstd: bool,
}

impl From<crate::encoding::Enabled> for Codings {
    fn from(enabled: crate::encoding::Enabled) -> Self {
        Codings {
            gzip: enabled.gzip,
            brotli: enabled.brotli,
            zstd: enabled.zstd,
        }
    }
}

/// One stored answer: the result and its precompressed forms.
///
/// For [`Envelope::JsonRpc`] the compressed forms are *open* streams of `PREFIX + result`;
/// for [`Envelope::Bare`] they are finished streams of the result. Cloning is cheap (shared
/// [`Bytes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bodies {
    envelope: Envelope,
    result: Bytes,
    gzip: Option<Bytes>,
    /// CRC-32 of `PREFIX + result` (JsonRpc; unused for Bare), extended over the TAIL per hit.
    gzip_crc: u32,
    brotli: Option<Bytes>,
    zstd: Option<Bytes>,
    /// The largest block the open zstd frame accepts (its window, at most 128 KiB).
    zstd_block_max: usize,
}

impl Bodies {
    /// Stores `result` and compresses it once per requested coding.
    ///
    /// `result` is the raw result JSON ([`jsonrpc_result`]) for [`Envelope::JsonRpc`], the whole
    /// body for [`Envelope::Bare`]. `level` is one number for every coding, read on each
    /// coding's own scale and clamped to it (gzip 0–9, brotli 0–11, zstd 1–19), as Pingora's
    /// compression module does with its level. A form that fails to compress, or is not smaller
    /// than identity, is not kept: a hit in that coding is answered in identity.
    pub fn build(result: &[u8], envelope: Envelope, codings: Codings, level: u32) -> Bodies {
        Self::build_inner(result, envelope, codings, level, true)
    }

    /// [`Bodies::build`]; `only_smaller` off keeps every form (tests exercise the framing on
    /// tiny results that way).
    fn build_inner(
        result: &[u8],
        envelope: Envelope,
        codings: Codings,
        level: u32,
        only_smaller: bool,
    ) -> Bodies {
        let parts: &[&[u8]] = match envelope {
            Envelope::JsonRpc => &[PREFIX, result],
            Envelope::Bare => &[result],
        };
        let open = envelope == Envelope::JsonRpc;
        let identity: usize = parts.iter().map(|p| p.len()).sum();
        // What a hit adds to an open form beyond the TAIL, which identity has too.
        let (gzip_extra, brotli_extra, zstd_extra) = if open {
            (
                DEFLATE_STORED_HEADER + GZIP_TRAILER,
                BROTLI_OVERHEAD,
                ZSTD_BLOCK_HEADER,
            )
        } else {
            (0, 0, 0)
        };
        let worth = |form: &Vec<u8>, extra| !only_smaller || form.len() + extra < identity;

        let gzip = (codings.gzip)
            .then(|| gzip_stream(parts, level, open))
            .flatten()
            .filter(|g| worth(g, gzip_extra));
        let brotli = (codings.brotli)
            .then(|| brotli_stream(parts, level, open))
            .flatten()
            .filter(|b| worth(b, brotli_extra));
        let zstd = (codings.zstd)
            .then(|| zstd_stream(parts, level, open))
            .flatten()
            .filter(|z| worth(z, zstd_extra))
            .filter(|z| !open || zstd_open_block_max(z).is_some());
        let result = Bytes::copy_from_slice(result);
        Self::assemble(envelope, result.clone(), gzip, brotli, zstd)
            .unwrap_or_else(|| Bodies::identity(envelope, result))
    }

    /// A body with no compressed forms.
    fn identity(envelope: Envelope, result: Bytes) -> Bodies {
        Bodies {
            envelope,
            gzip_crc: 0,
            result,
            gzip: None,
            brotli: None,
            zstd: None,
            zstd_block_max: 0,
        }
    }

    /// Puts the parts together and derives what hits need (CRC, zstd block limit); `None` if
    /// the zstd frame is not one a raw block can be appended to.
    fn assemble(
        envelope: Envelope,
        result: Bytes,
        gzip: Option<Vec<u8>>,
        brotli: Option<Vec<u8>>,
        zstd: Option<Vec<u8>>,
    ) -> Option<Bodies> {
        let gzip_crc = match (envelope, &gzip) {
            (Envelope::JsonRpc, Some(_)) => {
                let mut crc = crc32fast::Hasher::new();
                crc.update(PREFIX);
                crc.update(&result);
                crc.finalize()
            }
            _ => 0,
        };
        let zstd_block_max = match (envelope, &zstd) {
            (Envelope::JsonRpc, Some(frame)) => zstd_open_block_max(frame)?,
            _ => 0,
        };
        Some(Bodies {
            envelope,
            result,
            gzip: gzip.map(Bytes::from),
            gzip_crc,
            brotli: brotli.map(Bytes::from),
            zstd: zstd.map(Bytes::from),
            zstd_block_max,
        })
    }

    /// The answer for one hit: the body and its `Content-Encoding` (`None`: identity).
    ///
    /// `coding` is what the client negotiated ([`crate::encoding::negotiate`]); a coding that
    /// was not kept falls back to identity, as does brotli for an id whose JSON is longer than
    /// 65 KB. `id` is the request's JSON-RPC id (`None` is written as `null`), ignored for
    /// [`Envelope::Bare`], which hands out the stored bytes without copying. A JSON-RPC hit
    /// costs one allocation of the exact size and a few copies.
    ///
    /// Send the body with this `Content-Encoding` and keep Pingora's compression module off it
    /// (`adjust_level(0)`): an identity fallback would otherwise be compressed per hit.
    pub fn render(&self, coding: Option<Coding>, id: Option<&Value>) -> (Bytes, Option<Coding>) {
        if self.envelope == Envelope::Bare {
            let stored = match coding {
                Some(Coding::Gzip) => self.gzip.as_ref(),
                Some(Coding::Brotli) => self.brotli.as_ref(),
                Some(Coding::Zstd) => self.zstd.as_ref(),
                None => None,
            };
            return match stored {
                Some(body) => (body.clone(), coding),
                None => (self.result.clone(), None),
            };
        }
        let tail = Tail::new(id);
        match coding {
            Some(Coding::Gzip) => {
                if let Some(open) = &self.gzip {
                    return (self.render_gzip(open, &tail), coding);
                }
            }
            Some(Coding::Brotli) => {
                if let Some(open) = &self.brotli {
                    if tail.len <= BROTLI_UNCOMPRESSED_MAX {
                        return (render_brotli(open, &tail), coding);
                    }
                }
            }
            Some(Coding::Zstd) => {
                if let Some(open) = &self.zstd {
                    return (render_zstd(open, &tail, self.zstd_block_max), coding);
                }
            }
            None => {}
        }
        let size = PREFIX.len() + self.result.len() + tail.len;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(PREFIX);
        out.extend_from_slice(&self.result);
        tail.write(&mut out);
        debug_assert_eq!(out.len(), size);
        (out.into(), None)
    }

    fn render_gzip(&self, open: &[u8], tail: &Tail<'_>) -> Bytes {
        let blocks = tail.len.div_ceil(DEFLATE_STORED_MAX).max(1);
        let size = open.len() + blocks * DEFLATE_STORED_HEADER + tail.len + GZIP_TRAILER;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(open);
        let mut crc = crc32fast::Hasher::new_with_initial_len(
            self.gzip_crc,
            (PREFIX.len() + self.result.len()) as u64,
        );
        let stored_header = |out: &mut Vec<u8>, len: usize, last: bool| {
            // BFINAL, BTYPE=00 (stored), padding to the byte boundary the sync flush left.
            out.push(u8::from(last));
            let len = len as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
        };
        blocks_of(&mut out, tail, DEFLATE_STORED_MAX, stored_header, |t| {
            crc.update(t)
        });
        let isize = (PREFIX.len() + self.result.len() + tail.len) as u64 as u32;
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&isize.to_le_bytes());
        debug_assert_eq!(out.len(), size);
        out.into()
    }

    /// The raw result JSON (for BridgeCore's own `/api/v1` answers, which wrap it differently).
    pub fn result(&self) -> &[u8] {
        &self.result
    }

    /// How the result is wrapped.
    pub fn envelope(&self) -> Envelope {
        self.envelope
    }

    /// Bytes held: the result, every compressed form and this struct (for the memory bound and
    /// the stats).
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.result.len()
            + [&self.gzip, &self.brotli, &self.zstd]
                .iter()
                .filter_map(|b| b.as_ref().map(Bytes::len))
                .sum::<usize>()
    }

    /// A compact binary form for Redis: a version byte, the envelope, a byte of which codings
    /// follow, each section as a u32 (LE) length and its bytes (result, gzip, br, zstd), and a
    /// CRC-32 of all that, so a corrupted entry is refused instead of served as garbage.
    pub fn encode(&self) -> Vec<u8> {
        let sections = [
            Some(&self.result),
            self.gzip.as_ref(),
            self.brotli.as_ref(),
            self.zstd.as_ref(),
        ];
        let size = 3
            + sections
                .iter()
                .flatten()
                .map(|s| 4 + s.len())
                .sum::<usize>()
            + 4;
        let mut out = Vec::with_capacity(size);
        out.push(ENCODING_VERSION);
        out.push(match self.envelope {
            Envelope::JsonRpc => 0,
            Envelope::Bare => 1,
        });
        out.push(
            u8::from(self.gzip.is_some())
                | u8::from(self.brotli.is_some()) << 1
                | u8::from(self.zstd.is_some()) << 2,
        );
        for section in sections.into_iter().flatten() {
            // Results are bounded far below 4 GiB by the cache's size limit.
            out.extend_from_slice(&(section.len() as u32).to_le_bytes());
            out.extend_from_slice(section);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The inverse of [`Bodies::encode`]. Refuses (never panics on) truncated, corrupted or
    /// foreign input.
    pub fn decode(bytes: &[u8]) -> Result<Bodies, DecodeError> {
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or(DecodeError::Truncated)?;
        let mut r = Reader(body);
        let version = r.byte()?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::Version(version));
        }
        if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
            return Err(DecodeError::Checksum);
        }
        let envelope = match r.byte()? {
            0 => Envelope::JsonRpc,
            1 => Envelope::Bare,
            _ => return Err(DecodeError::Malformed("unknown envelope")),
        };
        let present = r.byte()?;
        if present & !0b111 != 0 {
            return Err(DecodeError::Malformed("unknown coding"));
        }
        let result = Bytes::copy_from_slice(r.section()?);
        let mut form = |bit: u8| -> Result<Option<Vec<u8>>, DecodeError> {
            if present & bit == 0 {
                return Ok(None);
            }
            r.section().map(|s| Some(s.to_vec()))
        };
        let gzip = form(1)?;
        let brotli = form(2)?;
        let zstd = form(4)?;
        if !r.0.is_empty() {
            return Err(DecodeError::Malformed("trailing bytes"));
        }
        if gzip
            .as_ref()
            .is_some_and(|g| !g.starts_with(&GZIP_HEADER[..3]))
        {
            return Err(DecodeError::Malformed("not a gzip stream"));
        }
        if zstd.as_ref().is_some_and(|z| !z.starts_with(&ZSTD_MAGIC)) {
            return Err(DecodeError::Malformed("not a zstd frame"));
        }
        Self::assemble(envelope, result, gzip, brotli, zstd)
            .ok_or(DecodeError::Malformed("zstd frame cannot be continued"))
    }
}

/// Why [`Bodies::decode`] refused its input.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Written by another version of BridgeCore (or not by BridgeCore at all).
    #[error("unknown cache body format version {0}")]
    Version(u8),
    /// The input ends early.
    #[error("truncated cache body")]
    Truncated,
    /// The CRC does not match: corrupted.
    #[error("cache body checksum mismatch")]
    Checksum,
    /// Well-formed but impossible content.
    #[error("malformed cache body: {0}")]
    Malformed(&'static str),
}

/// A bounds-checked cursor over [`Bodies::encode`] output.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.0.split_first().ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(b)
    }

    fn section(&mut self) -> Result<&'a [u8], DecodeError> {
        let (len, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or(DecodeError::Truncated)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| DecodeError::Truncated)?;
        if rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (section, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(section)
    }
}

/// The per-hit TAIL, `,"id":<id>}`, measured before the output is allocated.
struct Tail<'a> {
    id: Option<&'a Value>,
    len: usize,
}

impl<'a> Tail<'a> {
    fn new(id: Option<&'a Value>) -> Self {
        let mut counter = Counter(0);
        // Serialising a `Value` cannot fail (its keys are strings, its floats finite); were it
        // to, `null` is still a valid answer.
        let id = id.filter(|id| serde_json::to_writer(&mut counter, id).is_ok());
        let id_len = if id.is_some() { counter.0 } else { 4 };
        Tail {
            id,
            len: TAIL_HEAD.len() + id_len + TAIL_END.len(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(TAIL_HEAD);
        match self.id {
            // Writing into a Vec cannot fail, and the same value serialised once already.
            Some(id) => {
                let _ = serde_json::to_writer(&mut *out, id);
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(TAIL_END);
    }
}

/// Counts what is written.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends the TAIL in blocks of at most `max` bytes, each after `header(len, last)`, and
/// passes each block's bytes to `seen`. The usual TAIL fits one block and is written in place;
/// a longer one (an id of more than 64 KB) goes through a scratch buffer.
fn blocks_of(
    out: &mut Vec<u8>,
    tail: &Tail<'_>,
    max: usize,
    header: impl Fn(&mut Vec<u8>, usize, bool),
    mut seen: impl FnMut(&[u8]),
) {
    if tail.len <= max {
        header(out, tail.len, true);
        let start = out.len();
        tail.write(out);
        seen(&out[start..]);
        return;
    }
    let mut scratch = Vec::with_capacity(tail.len);
    tail.write(&mut scratch);
    let mut chunks = scratch.chunks(max).peekable();
    while let Some(chunk) = chunks.next() {
        header(out, chunk.len(), chunks.peek().is_none());
        out.extend_from_slice(chunk);
        seen(chunk);
    }
}

fn render_brotli(open: &[u8], tail: &Tail<'_>) -> Bytes {
    let size = open.len() + BROTLI_OVERHEAD + tail.len;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(open);
    // Meta-block header, LSB first: ISLAST=0, MNIBBLES=4 (code 0), MLEN-1 in 16 bits,
    // ISUNCOMPRESSED=1, then zero bits to the byte boundary: 24 bits.
    let header = ((tail.len as u32 - 1) << 3) | (1 << 19);
    out.extend_from_slice(&header.to_le_bytes()[..3]);
    tail.write(&mut out);
    out.push(BROTLI_LAST_EMPTY);
    debug_assert_eq!(out.len(), size);
    out.into()
}

fn render_zstd(open: &[u8], tail: &Tail<'_>, block_max: usize) -> Bytes {
    let blocks = tail.len.div_ceil(block_max).max(1);
    let size = open.len() + blocks * ZSTD_BLOCK_HEADER + tail.len;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(open);
    let raw_header = |out: &mut Vec<u8>, len: usize, last: bool| {
        // Last_Block, Block_Type 0 (raw), Block_Size: 24 bits little-endian.
        let header = u32::from(last) | ((len as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
    };
    blocks_of(&mut out, tail, block_max, raw_header, |_| {});
    debug_assert_eq!(out.len(), size);
    out.into()
}

/// gzip of `parts`: finished, or (`open`) ended by a sync flush, without BFINAL or trailer.
fn gzip_stream(parts: &[&[u8]], level: u32, open: bool) -> Option<Vec<u8>> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + total / 3 + 256);
    out.extend_from_slice(&GZIP_HEADER);
    let mut deflate = Compress::new(Compression::new(level.min(9)), false);
    for part in parts {
        let mut input = *part;
        while !input.is_empty() {
            reserve_some(&mut out, input.len() / 3);
            let before = deflate.total_in();
            deflate
                .compress_vec(input, &mut out, FlushCompress::None)
                .ok()?;
            let used = usize::try_from(deflate.total_in() - before).ok()?;
            input = input.get(used..)?;
        }
    }
    if open {
        // Done once a call leaves room unused: everything is out, up to the empty stored
        // block that aligns the stream.
        loop {
            reserve_some(&mut out, 256);
            deflate
                .compress_vec(&[], &mut out, FlushCompress::Sync)
                .ok()?;
            if out.len() < out.capacity() {
                break;
            }
        }
        return Some(out);
    }
    loop {
        reserve_some(&mut out, 256);
        if deflate
            .compress_vec(&[], &mut out, FlushCompress::Finish)
            .ok()?
            == Status::StreamEnd
        {
            break;
        }
    }
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.update(part);
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(total as u64 as u32).to_le_bytes());
    Some(out)
}

/// Makes sure `out` has at least `at_least` (and 64) bytes of spare capacity.
fn reserve_some(out: &mut Vec<u8>, at_least: usize) {
    let want = at_least.max(64);
    if out.capacity() - out.len() < want {
        out.reserve(want);
    }
}

/// brotli of `parts`: finished, or (`open`) flushed with `BROTLI_OPERATION_FLUSH`, which ends
/// on a byte boundary without the last meta-block.
fn brotli_stream(parts: &[&[u8]], level: u32, open: bool) -> Option<Vec<u8>> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    // The smallest window that holds the input, within the bounds (the encoder sizes its
    // tables by it, and a client allocates it); the TAIL's uncompressed meta-block needs none.
    let mut lgwin = BROTLI_LGWIN_MIN;
    while lgwin < BROTLI_LGWIN_MAX && (1usize << lgwin) - 16 < total {
        lgwin += 1;
    }
    let mut writer = brotli::CompressorWriter::new(
        Vec::with_capacity(total / 4 + 64),
        4096,
        level.min(11),
        lgwin,
    );
    for part in parts {
        writer.write_all(part).ok()?;
    }
    if open {
        writer.flush().ok()?;
        // Dropping the writer finishes its own copy of the stream; the open one is this.
        return Some(writer.get_ref().clone());
    }
    Some(writer.into_inner())
}

/// zstd of `parts` as one frame with no content size and no checksum: finished, or (`open`)
/// ended with `ZSTD_e_flush`, so its last block is not marked last.
fn zstd_stream(parts: &[&[u8]], level: u32, open: bool) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{self, zstd_sys::ZSTD_EndDirective, CParameter, InBuffer, OutBuffer};
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut cctx = zstd_safe::CCtx::create();
    let level = i32::try_from(level.clamp(1, 19)).ok()?;
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .ok()?;
    cctx.set_parameter(CParameter::ChecksumFlag(false)).ok()?;
    cctx.set_parameter(CParameter::ContentSizeFlag(false))
        .ok()?;
    let mut out: Vec<u8> = Vec::with_capacity(zstd_safe::compress_bound(total) + 64);
    /// Feeds `input` with `end`; for a flush or an end, until nothing is pending.
    fn run(
        cctx: &mut zstd_safe::CCtx<'_>,
        out: &mut Vec<u8>,
        input: &[u8],
        end: ZSTD_EndDirective,
    ) -> Option<()> {
        let mut input = InBuffer::around(input);
        loop {
            reserve_some(out, 256);
            let pos = out.len();
            let mut output = OutBuffer::around_pos(out, pos);
            let pending = cctx.compress_stream2(&mut output, &mut input, end).ok()?;
            let all_in = input.pos() == input.src.len();
            let continuing = matches!(end, ZSTD_EndDirective::ZSTD_e_continue);
            if all_in && (continuing || pending == 0) {
                return Some(());
            }
        }
    }
    for part in parts {
        run(
            &mut cctx,
            &mut out,
            part,
            ZSTD_EndDirective::ZSTD_e_continue,
        )?;
    }
    let end = if open {
        ZSTD_EndDirective::ZSTD_e_flush
    } else {
        ZSTD_EndDirective::ZSTD_e_end
    };
    run(&mut cctx, &mut out, &[], end)?;
    Some(out)
}

/// The largest block that can be appended to an open zstd frame, read from its header; `None`
/// unless the header is one a raw last block can complete: no content size (it would have to
/// match), no checksum (it would need a trailer), no dictionary, a window descriptor.
fn zstd_open_block_max(frame: &[u8]) -> Option<usize> {
    let header = frame.strip_prefix(&ZSTD_MAGIC)?;
    let (&descriptor, rest) = header.split_first()?;
    // FCS flag (bits 7-6), Single_Segment (5), reserved (3), Content_Checksum (2), Dictionary_ID
    // flag (1-0) must all be zero.
    if descriptor & 0b1110_1111 != 0 {
        return None;
    }
    let &window = rest.first()?;
    let exponent = u32::from(window >> 3);
    let base = 1u64 << (10 + exponent);
    let size = base + (base / 8) * u64::from(window & 7);
    usize::try_from(size.min(ZSTD_BLOCK_MAX as u64)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const ALL: Codings = Codings {
        gzip: true,
        brotli: true,
        zstd: true,
    };

    /// A `search_read` answer of res.partner rows as Odoo 17 sends it, about 12 KB.
    fn odoo_rows() -> String {
        let rows: Vec<Value> = (1..=30)
            .map(|i| {
                json!({
                    "id": i,
                    "name": format!("Partner {i} NV"),
                    "display_name": format!("Partner {i} NV, Contact {i}"),
                    "email": format!("contact{i}@partner{i}.example.be"),
                    "phone": format!("+32 2 555 {:02} {:02}", i, i * 3 % 100),
                    "street": format!("Rue de la Loi {i}"),
                    "city": "Bruxelles",
                    "zip": "1000",
                    "country_id": [20, "Belgium"],
                    "state_id": false,
                    "vat": format!("BE0{:09}", 477_472_701 + i),
                    "category_id": [1, 3],
                    "user_id": [2, "Mitchell Admin"],
                    "credit_limit": 0.0,
                    "active": true,
                    "lang": "fr_BE",
                    "write_date": format!("2024-05-{:02} 10:{:02}:00", i % 28 + 1, i % 60),
                })
            })
            .collect();
        serde_json::to_string(&rows).unwrap()
    }

    fn results() -> Vec<String> {
        vec![
            "[]".to_owned(),
            odoo_rows(),
            r#"{"name":"Café \"Le Zinc\" — Ω 😀","note":"line\nbreak \\ back\u00e9 \u2028","tags":["ü","日本語"]}"#
                .to_owned(),
            r#""""#.to_owned(),
        ]
    }

    fn ids() -> Vec<Option<Value>> {
        vec![
            Some(json!(1)),
            Some(json!("abc")),
            None,
            Some(Value::Null),
            Some(json!(u64::MAX)),
            Some(json!(-9_007_199_254_740_993_i64)),
            Some(json!("ключ \"😀\" \u{7f}")),
            // TAIL over 64 KiB: brotli answers in identity, gzip needs two stored blocks.
            Some(Value::String("x".repeat(70_000))),
            // Over 128 KiB: zstd needs two raw blocks, gzip three stored blocks.
            Some(Value::String("y".repeat(140_000))),
        ]
    }

    /// Runs `program args` on `input`; `None` when the program is not installed.
    fn cli(program: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
        let mut child = match Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{program}: {e}"),
        };
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} refused the body: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(output.stdout)
    }

    /// Decodes `body` with decoders independent of the encoders, all of which must agree.
    fn decode_body(body: &[u8], coding: Option<Coding>) -> Vec<u8> {
        let Some(coding) = coding else {
            return body.to_vec();
        };
        let mut decoded = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(body)
                    .read_to_end(&mut decoded)
                    .unwrap();
                let mut multi = Vec::new();
                flate2::read::MultiGzDecoder::new(body)
                    .read_to_end(&mut multi)
                    .unwrap();
                assert_eq!(multi, decoded, "MultiGzDecoder");
                if let Some(cli) = cli("gzip", &["-dc"], body) {
                    assert_eq!(cli, decoded, "gzip -dc");
                }
            }
            Coding::Brotli => {
                brotli::Decompressor::new(body, 4096)
                    .read_to_end(&mut decoded)
                    .unwrap();
                if let Some(cli) = cli("brotli", &["-dc"], body) {
                    assert_eq!(cli, decoded, "brotli -dc");
                }
            }
            Coding::Zstd => {
                decoded = zstd::stream::decode_all(body).unwrap();
                if let Some(cli) = cli("zstd", &["-dcq"], body) {
                    assert_eq!(cli, decoded, "zstd -dc");
                }
            }
        }
        decoded
    }

    /// Renders `coding` for `id` and checks the answer decodes to the identity answer, with
    /// the result and the id in place.
    fn check(bodies: &Bodies, result: &str, coding: Option<Coding>, id: Option<&Value>) {
        let (body, got) = bodies.render(coding, id);
        let decoded = decode_body(&body, got);
        let (identity, none) = bodies.render(None, id);
        assert_eq!(none, None);
        assert_eq!(decoded, identity, "{coding:?} decodes to the identity body");
        let expected: Value = serde_json::from_str(result).unwrap();
        let parsed: Value = serde_json::from_slice(&decoded).unwrap();
        match bodies.envelope {
            Envelope::JsonRpc => {
                let mut keys: Vec<_> = parsed.as_object().unwrap().keys().collect();
                keys.sort();
                assert_eq!(keys, ["id", "jsonrpc", "result"]);
                assert_eq!(parsed["jsonrpc"], "2.0");
                assert_eq!(parsed["result"], expected);
                assert_eq!(parsed["id"], id.cloned().unwrap_or(Value::Null));
                let tail = Tail::new(id).len;
                let brotli_fits = tail <= BROTLI_UNCOMPRESSED_MAX;
                let expect = coding
                    .filter(|c| kept(bodies, *c))
                    .filter(|c| *c != Coding::Brotli || brotli_fits);
                assert_eq!(got, expect, "Content-Encoding for a TAIL of {tail} bytes");
            }
            Envelope::Bare => {
                assert_eq!(parsed, expected);
                assert_eq!(decoded, result.as_bytes());
                assert_eq!(got, coding.filter(|c| kept(bodies, *c)));
            }
        }
    }

    fn kept(bodies: &Bodies, coding: Coding) -> bool {
        match coding {
            Coding::Gzip => bodies.gzip.is_some(),
            Coding::Brotli => bodies.brotli.is_some(),
            Coding::Zstd => bodies.zstd.is_some(),
        }
    }

    fn round_trips(coding: Option<Coding>) {
        for result in results() {
            let rpc = Bodies::build_inner(result.as_bytes(), Envelope::JsonRpc, ALL, 5, false);
            for id in ids() {
                check(&rpc, &result, coding, id.as_ref());
            }
            let bare = Bodies::build_inner(result.as_bytes(), Envelope::Bare, ALL, 5, false);
            check(&bare, &result, coding, Some(&json!(7)));
        }
    }

    #[test]
    fn identity_round_trips() {
        round_trips(None);
    }

    #[test]
    fn gzip_round_trips() {
        round_trips(Some(Coding::Gzip));
    }

    #[test]
    fn brotli_round_trips() {
        round_trips(Some(Coding::Brotli));
    }

    #[test]
    fn zstd_round_trips() {
        round_trips(Some(Coding::Zstd));
    }

    #[test]
    fn identity_body_is_prefix_result_tail() {
        let bodies = Bodies::build(b"[1,2]", Envelope::JsonRpc, ALL, 5);
        let (body, coding) = bodies.render(None, Some(&json!("a\"b")));
        assert_eq!(coding, None);
        assert_eq!(
            &body[..],
            br#"{"jsonrpc":"2.0","result":[1,2],"id":"a\"b"}"#
        );
        let (body, _) = bodies.render(None, None);
        assert_eq!(&body[..], br#"{"jsonrpc":"2.0","result":[1,2],"id":null}"#);
    }

    #[test]
    fn brotli_uncompressed_meta_block_limit() {
        // TAIL = `,"id":"` + s + `"}`: 9 bytes around the string.
        for result in [odoo_rows(), r#""""#.to_owned()] {
            let bodies = Bodies::build_inner(result.as_bytes(), Envelope::JsonRpc, ALL, 5, false);
            for (len, expect) in [
                (0, Some(Coding::Brotli)),
                (BROTLI_UNCOMPRESSED_MAX - 9, Some(Coding::Brotli)),
                (BROTLI_UNCOMPRESSED_MAX - 8, None),
            ] {
                let id = Value::String("z".repeat(len));
                assert_eq!(Tail::new(Some(&id)).len, len + 9);
                let (_, got) = bodies.render(Some(Coding::Brotli), Some(&id));
                assert_eq!(got, expect);
                check(&bodies, &result, Some(Coding::Brotli), Some(&id));
            }
        }
    }

    #[test]
    fn block_limits_at_their_edges() {
        let result = odoo_rows();
        let bodies = Bodies::build(result.as_bytes(), Envelope::JsonRpc, ALL, 5);
        assert_eq!(bodies.zstd_block_max, ZSTD_BLOCK_MAX);
        for tail in [
            DEFLATE_STORED_MAX - 1,
            DEFLATE_STORED_MAX,
            DEFLATE_STORED_MAX + 1,
            ZSTD_BLOCK_MAX,
            ZSTD_BLOCK_MAX + 1,
            2 * DEFLATE_STORED_MAX,
        ] {
            let id = Value::String("q".repeat(tail - 9));
            assert_eq!(Tail::new(Some(&id)).len, tail);
            check(&bodies, &result, Some(Coding::Gzip), Some(&id));
            check(&bodies, &result, Some(Coding::Zstd), Some(&id));
        }
    }

    #[test]
    fn open_streams_are_left_open() {
        let result = odoo_rows();
        let bodies = Bodies::build(result.as_bytes(), Envelope::JsonRpc, ALL, 5);

        // gzip: ends with the sync flush's empty stored block, no trailer.
        let gzip = bodies.gzip.as_ref().unwrap();
        assert_eq!(&gzip[..10], &GZIP_HEADER);
        assert!(gzip.ends_with(&[0, 0, 0xff, 0xff]));
        let mut out = Vec::new();
        assert!(flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut out)
            .is_err());

        // zstd: no content size, no checksum, no dictionary, not single-segment; not finished.
        let zstd = bodies.zstd.as_ref().unwrap();
        assert_eq!(&zstd[..4], &ZSTD_MAGIC);
        assert_eq!(
            zstd[4] & 0b1110_1111,
            0,
            "frame header descriptor {:#010b}",
            zstd[4]
        );
        assert!(zstd::stream::decode_all(&zstd[..]).is_err());

        // brotli: the whole PREFIX + result comes out of the open stream, which has no end.
        let brotli = bodies.brotli.as_ref().unwrap();
        let mut partial = Vec::new();
        let mut reader = brotli::Decompressor::new(&brotli[..], 4096);
        let err = reader.read_to_end(&mut partial);
        assert!(err.is_err(), "an open brotli stream must not be complete");
        let mut prefix_result = PREFIX.to_vec();
        prefix_result.extend_from_slice(result.as_bytes());
        assert_eq!(partial, prefix_result);
    }

    #[test]
    fn zstd_header_check_refuses_frames_that_cannot_be_continued() {
        let mut frame = ZSTD_MAGIC.to_vec();
        frame.extend_from_slice(&[0x00, 0x58]);
        // Window_Descriptor 0x58: exponent 11, 2 MiB window, blocks capped at 128 KiB.
        assert_eq!(zstd_open_block_max(&frame), Some(ZSTD_BLOCK_MAX));
        frame[5] = 0x00; // 1 KiB window
        assert_eq!(zstd_open_block_max(&frame), Some(1024));
        for bad in [0x04, 0x40, 0x20, 0x01, 0x08] {
            frame[4] = bad;
            assert_eq!(zstd_open_block_max(&frame), None, "descriptor {bad:#x}");
        }
        assert_eq!(zstd_open_block_max(&ZSTD_MAGIC), None);
        // A finished frame from the crate's one-shot API has a content size: refused.
        let finished = zstd::bulk::compress(b"[1,2,3]", 5).unwrap();
        assert_eq!(zstd_open_block_max(&finished), None);
    }

    #[test]
    fn small_window_splits_zstd_tail() {
        // A hand-made body whose frame claims a 1 KiB window: the TAIL goes in 1 KiB blocks.
        let result = odoo_rows();
        let mut bodies = Bodies::build(result.as_bytes(), Envelope::JsonRpc, ALL, 1);
        let open = zstd_stream(&[PREFIX, result.as_bytes()], 1, true).unwrap();
        assert!(open.len() > 6);
        bodies.zstd_block_max = 1024;
        bodies.zstd = Some(open.into());
        let id = Value::String("w".repeat(5000));
        let (body, _) = bodies.render(Some(Coding::Zstd), Some(&id));
        // 5009 bytes of TAIL: 5 blocks of 1 KiB or less.
        let frame = bodies.zstd.as_ref().unwrap();
        assert_eq!(body.len(), frame.len() + 5 * ZSTD_BLOCK_HEADER + 5009);
        check(&bodies, &result, Some(Coding::Zstd), Some(&id));
    }

    #[test]
    fn every_level_on_each_scale() {
        let result = odoo_rows();
        for level in 0..=22 {
            // gzip level 0 is stored blocks, larger than identity: dropped by `build`.
            let public = Bodies::build(result.as_bytes(), Envelope::JsonRpc, ALL, level);
            assert_eq!(public.gzip.is_some(), level > 0, "gzip at level {level}");
            assert!(public.brotli.is_some() && public.zstd.is_some());
            let bodies =
                Bodies::build_inner(result.as_bytes(), Envelope::JsonRpc, ALL, level, false);
            for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
                check(&bodies, &result, Some(coding), Some(&json!(level)));
            }
            let bare = Bodies::build_inner(result.as_bytes(), Envelope::Bare, ALL, level, false);
            for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
                check(&bare, &result, Some(coding), None);
            }
        }
    }

    #[test]
    fn forms_not_smaller_than_identity_are_dropped() {
        let small = Bodies::build(b"[]", Envelope::JsonRpc, ALL, 5);
        assert_eq!(
            (&small.gzip, &small.brotli, &small.zstd),
            (&None, &None, &None)
        );
        for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            let (body, got) = small.render(Some(coding), Some(&json!(1)));
            assert_eq!(got, None);
            assert_eq!(&body[..], br#"{"jsonrpc":"2.0","result":[],"id":1}"#);
        }
        let bare = Bodies::build(b"[]", Envelope::Bare, ALL, 5);
        assert_eq!(
            bare.render(Some(Coding::Zstd), None),
            (Bytes::from_static(b"[]"), None)
        );

        let rows = odoo_rows();
        let big = Bodies::build(rows.as_bytes(), Envelope::JsonRpc, ALL, 5);
        let (identity, _) = big.render(None, Some(&json!(1)));
        for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            let (body, got) = big.render(Some(coding), Some(&json!(1)));
            assert_eq!(got, Some(coding));
            assert!(
                body.len() * 3 < identity.len(),
                "{coding:?}: {} bytes",
                body.len()
            );
        }
    }

    #[test]
    fn codings_not_asked_for_are_answered_in_identity() {
        let rows = odoo_rows();
        let only_gzip = Codings {
            gzip: true,
            brotli: false,
            zstd: false,
        };
        for envelope in [Envelope::JsonRpc, Envelope::Bare] {
            let bodies = Bodies::build(rows.as_bytes(), envelope, only_gzip, 5);
            assert_eq!(
                bodies.render(Some(Coding::Gzip), None).1,
                Some(Coding::Gzip)
            );
            assert_eq!(bodies.render(Some(Coding::Brotli), None).1, None);
            assert_eq!(bodies.render(Some(Coding::Zstd), None).1, None);
            check(&bodies, &rows, Some(Coding::Zstd), None);
        }
    }

    #[test]
    fn bare_hits_share_the_stored_bytes() {
        let rows = odoo_rows();
        let bodies = Bodies::build(rows.as_bytes(), Envelope::Bare, ALL, 5);
        let (body, _) = bodies.render(Some(Coding::Brotli), Some(&json!(1)));
        assert_eq!(body.as_ptr(), bodies.brotli.as_ref().unwrap().as_ptr());
        let (body, _) = bodies.render(None, Some(&json!(1)));
        assert_eq!(body.as_ptr(), bodies.result.as_ptr());
        assert_eq!(bodies.result(), rows.as_bytes());
    }

    #[test]
    fn weight_counts_every_form() {
        let rows = odoo_rows();
        let bodies = Bodies::build(rows.as_bytes(), Envelope::JsonRpc, ALL, 5);
        let forms = [&bodies.gzip, &bodies.brotli, &bodies.zstd]
            .iter()
            .map(|f| f.as_ref().unwrap().len())
            .sum::<usize>();
        assert_eq!(
            bodies.weight(),
            std::mem::size_of::<Bodies>() + rows.len() + forms
        );
        assert!(bodies.weight() > rows.len() + 3000);
    }

    #[test]
    fn jsonrpc_result_borrows_the_raw_result() {
        let answer = br#"{"jsonrpc":"2.0","id":1,"result":[{"id":3,"name":"A"}]}"#;
        let result = jsonrpc_result(answer).unwrap();
        assert_eq!(result, br#"[{"id":3,"name":"A"}]"#);
        // A slice of the answer itself, not a copy.
        let offset = result.as_ptr() as usize - answer.as_ptr() as usize;
        assert_eq!(&answer[offset..offset + result.len()], result);

        let spaced = b"{ \"jsonrpc\": \"2.0\", \"id\": 1, \"result\" :  [1, 2] \n}";
        assert_eq!(jsonrpc_result(spaced).unwrap(), b"[1, 2]");
        assert_eq!(
            jsonrpc_result(br#"{"id":null,"result":null}"#).unwrap(),
            b"null"
        );
        assert_eq!(jsonrpc_result(br#"{"result":""}"#).unwrap(), br#""""#);
        // An escaped member name is still the member.
        assert_eq!(jsonrpc_result(br#"{"res\u0075lt":5}"#).unwrap(), b"5");
    }

    #[test]
    fn jsonrpc_result_finds_the_member_not_the_word() {
        let answer = br#"{"jsonrpc":"2.0","note":"\"result\":[666]","meta":{"result":[7]},"id":2,"result":{"x":"result"}}"#;
        assert_eq!(jsonrpc_result(answer).unwrap(), br#"{"x":"result"}"#);
        let only_nested = br#"{"jsonrpc":"2.0","id":2,"data":{"result":[1]},"x":"\"result\":1"}"#;
        assert_eq!(jsonrpc_result(only_nested), Err(NotStorable::NoResult));
    }

    #[test]
    fn jsonrpc_result_refuses_what_cannot_be_cached() {
        let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessError"}}}"#;
        assert_eq!(jsonrpc_result(error), Err(NotStorable::Error));
        let both = br#"{"jsonrpc":"2.0","id":1,"result":[],"error":null}"#;
        assert_eq!(jsonrpc_result(both), Err(NotStorable::Error));
        assert_eq!(
            jsonrpc_result(br#"{"jsonrpc":"2.0","id":1}"#),
            Err(NotStorable::NoResult)
        );
        assert_eq!(
            jsonrpc_result(br#"{"result":1,"result":2}"#),
            Err(NotStorable::DuplicateResult)
        );
        for not_json in [
            &b""[..],
            b"<html>502 Bad Gateway</html>",
            br#"{"result":[1,}"#,
            br#"{"result":1} trailing"#,
            br#"{"result":[1]"#,
            b"{\"result\":\"\xff\"}",
        ] {
            assert_eq!(jsonrpc_result(not_json), Err(NotStorable::NotJson));
        }
        for not_object in [&b"[]"[..], b"[\"result\", 1]", b"\"result\"", b"1", b"null"] {
            assert_eq!(jsonrpc_result(not_object), Err(NotStorable::NotAnObject));
        }
    }

    fn samples() -> Vec<Bodies> {
        let rows = odoo_rows();
        let mut out = Vec::new();
        for envelope in [Envelope::JsonRpc, Envelope::Bare] {
            out.push(Bodies::build(rows.as_bytes(), envelope, ALL, 5));
            out.push(Bodies::build(b"[]", envelope, ALL, 5));
            out.push(Bodies::build_inner(b"\"\"", envelope, ALL, 5, false));
            out.push(Bodies::build(
                rows.as_bytes(),
                envelope,
                Codings {
                    gzip: false,
                    brotli: true,
                    zstd: false,
                },
                5,
            ));
        }
        out
    }

    #[test]
    fn encode_decode_round_trip() {
        for bodies in samples() {
            let encoded = bodies.encode();
            let decoded = Bodies::decode(&encoded).unwrap();
            assert_eq!(decoded, bodies);
            for coding in [
                None,
                Some(Coding::Gzip),
                Some(Coding::Brotli),
                Some(Coding::Zstd),
            ] {
                let id = json!("r");
                assert_eq!(
                    decoded.render(coding, Some(&id)),
                    bodies.render(coding, Some(&id))
                );
            }
        }
        let rows = odoo_rows();
        let bodies = Bodies::build(rows.as_bytes(), Envelope::JsonRpc, ALL, 5);
        // Version, envelope, flags, four sections and the CRC: nothing more.
        let sections = [&bodies.gzip, &bodies.brotli, &bodies.zstd]
            .iter()
            .map(|f| 4 + f.as_ref().unwrap().len())
            .sum::<usize>();
        assert_eq!(bodies.encode().len(), 3 + 4 + rows.len() + sections + 4);
    }

    #[test]
    fn decode_refuses_truncations_and_corruption() {
        for bodies in samples() {
            let encoded = bodies.encode();
            for len in 0..encoded.len() {
                assert!(Bodies::decode(&encoded[..len]).is_err(), "prefix of {len}");
            }
            let mut longer = encoded.clone();
            longer.push(0);
            assert!(Bodies::decode(&longer).is_err());
            for i in (0..encoded.len()).step_by(97) {
                let mut flipped = encoded.clone();
                flipped[i] ^= 0x20;
                assert!(Bodies::decode(&flipped).is_err(), "byte {i} flipped");
            }
        }
        let mut encoded = samples()[0].encode();
        encoded[0] = 2;
        assert_eq!(Bodies::decode(&encoded), Err(DecodeError::Version(2)));
    }

    #[test]
    fn decode_checks_content_behind_a_valid_crc() {
        // A well-framed entry whose CRC matches but whose content is impossible.
        let reseal = |mut body: Vec<u8>| {
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            body
        };
        let mut unknown_envelope = vec![1, 2, 0, 2, 0, 0, 0];
        unknown_envelope.extend_from_slice(b"[]");
        assert!(matches!(
            Bodies::decode(&reseal(unknown_envelope)),
            Err(DecodeError::Malformed(_))
        ));
        let mut bad_zstd = vec![1, 0, 4, 2, 0, 0, 0];
        bad_zstd.extend_from_slice(b"[]");
        let finished = zstd::bulk::compress(b"[1,2,3]", 5).unwrap();
        bad_zstd.extend_from_slice(&(finished.len() as u32).to_le_bytes());
        bad_zstd.extend_from_slice(&finished);
        assert!(matches!(
            Bodies::decode(&reseal(bad_zstd)),
            Err(DecodeError::Malformed(_))
        ));
        let mut bad_gzip = vec![1, 0, 1, 2, 0, 0, 0];
        bad_gzip.extend_from_slice(b"[]\x04\0\0\0\x28\xb5\x2f\xfd");
        assert!(matches!(
            Bodies::decode(&reseal(bad_gzip)),
            Err(DecodeError::Malformed(_))
        ));
        let valid = samples()[0].encode();
        let mut trailing = valid[..valid.len() - 4].to_vec();
        trailing.push(0);
        assert_eq!(
            Bodies::decode(&reseal(trailing)),
            Err(DecodeError::Malformed("trailing bytes"))
        );
        assert!(Bodies::decode(&reseal(valid[..valid.len() - 4].to_vec())).is_ok());
        let mut flags = vec![1, 0, 8, 2, 0, 0, 0];
        flags.extend_from_slice(b"[]");
        assert!(matches!(
            Bodies::decode(&reseal(flags)),
            Err(DecodeError::Malformed(_))
        ));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            "\\PC{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_\"\\\\é]{0,10}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_results_round_trip_through_every_coding(
            result in json_value(),
            id in prop::option::of(json_value()),
            level in 0u32..10,
        ) {
            let text = serde_json::to_string(&result).unwrap();
            for envelope in [Envelope::JsonRpc, Envelope::Bare] {
                let bodies = Bodies::build_inner(text.as_bytes(), envelope, ALL, level, false);
                let (identity, _) = bodies.render(None, id.as_ref());
                for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
                    let (body, got) = bodies.render(Some(coding), id.as_ref());
                    prop_assert_eq!(got, Some(coding));
                    let decoded = match coding {
                        Coding::Gzip => {
                            let mut out = Vec::new();
                            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
                            out
                        }
                        Coding::Brotli => {
                            let mut out = Vec::new();
                            brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut out).unwrap();
                            out
                        }
                        Coding::Zstd => zstd::stream::decode_all(&body[..]).unwrap(),
                    };
                    prop_assert_eq!(&decoded[..], &identity[..]);
                }
                let parsed: Value = serde_json::from_slice(&identity).unwrap();
                let reparsed: Value = serde_json::from_str(&text).unwrap();
                match envelope {
                    Envelope::JsonRpc => {
                        prop_assert_eq!(&parsed["result"], &reparsed);
                        prop_assert_eq!(&parsed["id"], id.as_ref().unwrap_or(&Value::Null));
                    }
                    Envelope::Bare => prop_assert_eq!(&parsed, &reparsed),
                }
                prop_assert_eq!(Bodies::decode(&bodies.encode()).unwrap(), bodies);
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Bodies::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_resealed_garbage(
            envelope in 0u8..3,
            flags in 0u8..9,
            tail in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            // Garbage that passes the CRC reaches the section parsing and the content checks.
            let mut body = vec![1, envelope, flags];
            body.extend_from_slice(&tail);
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            let _ = Bodies::decode(&body);
        }
    }
}
