//! A streaming `multipart/form-data` parser: bodies are hashed and counted, never
//! buffered (except small non-file fields), so uploads of any size work.

use memchr::memmem;
use sha1::{Digest, Sha1};

/// One parsed part.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The form field name (`ufile`).
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Exact body size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-1 of the body (what `ir.attachment.checksum` holds).
    pub sha1: String,
    /// The value of small non-file fields (≤ 64 KiB), e.g. `csrf_token`, `model`, `id`.
    pub value: Option<String>,
}

const SMALL: usize = 64 * 1024;

enum St {
    Preamble,
    Headers,
    Body,
    AfterDelim,
    Done,
}

struct Cur {
    part: Part,
    hasher: Sha1,
    small: Vec<u8>,
}

/// Feed chunks with [`Parser::feed`], then call [`Parser::finish`].
pub struct Parser {
    first: Vec<u8>,
    delim: Vec<u8>,
    buf: Vec<u8>,
    st: St,
    cur: Option<Cur>,
    parts: Vec<Part>,
    error: Option<String>,
}

/// The `boundary=` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("boundary") {
            Some(v.trim().trim_matches('"').to_string())
        } else {
            None
        }
    })
}

fn param(header: &str, key: &str) -> Option<String> {
    for p in header.split(';').skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        if k == key {
            return Some(v.trim().trim_matches('"').to_string());
        }
        if k == format!("{key}*") {
            // RFC 5987: UTF-8''percent-encoded
            let v = v.trim();
            let enc = v.split_once("''").map(|(_, x)| x).unwrap_or(v);
            return Some(crate::server::percent_decode(enc, false));
        }
    }
    None
}

impl Parser {
    pub fn new(boundary: &str) -> Parser {
        Parser {
            first: format!("--{boundary}").into_bytes(),
            delim: format!("\r\n--{boundary}").into_bytes(),
            buf: Vec::new(),
            st: St::Preamble,
            cur: None,
            parts: Vec::new(),
            error: None,
        }
    }

    fn emit(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(c) = &mut self.cur {
            let data = &self.buf[..n];
            c.hasher.update(data);
            c.part.size += n as u64;
            if c.part.filename.is_none() && c.small.len() < SMALL {
                let take = (SMALL - c.small.len()).min(n);
                c.small.extend_from_slice(&data[..take]);
            }
        }
        self.buf.drain(..n);
    }

    fn close_part(&mut self) {
        if let Some(c) = self.cur.take() {
            let mut p = c.part;
            p.sha1 = c
                .hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if p.filename.is_none() {
                p.value = Some(String::from_utf8_lossy(&c.small).into_owned());
            }
            self.parts.push(p);
        }
    }

    /// Feeds the next chunk of the body.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        loop {
            match self.st {
                St::Done => {
                    self.buf.clear();
                    return;
                }
                St::Preamble => match memmem::find(&self.buf, &self.first) {
                    Some(p) => {
                        let after = p + self.first.len();
                        if self.buf.len() < after + 2 {
                            return;
                        }
                        if &self.buf[after..after + 2] == b"--" {
                            self.st = St::Done;
                            continue;
                        }
                        let skip = if &self.buf[after..after + 2] == b"\r\n" {
                            after + 2
                        } else {
                            after
                        };
                        self.buf.drain(..skip);
                        self.st = St::Headers;
                    }
                    None => {
                        let keep = self.first.len();
                        if self.buf.len() > keep {
                            let n = self.buf.len() - keep;
                            self.buf.drain(..n);
                        }
                        return;
                    }
                },
                St::Headers => match memmem::find(&self.buf, b"\r\n\r\n") {
                    Some(p) => {
                        let head = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                        self.buf.drain(..p + 4);
                        let mut part = Part {
                            name: String::new(),
                            filename: None,
                            content_type: None,
                            size: 0,
                            sha1: String::new(),
                            value: None,
                        };
                        for line in head.split("\r\n") {
                            let Some((k, v)) = line.split_once(':') else {
                                continue;
                            };
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-disposition" => {
                                    part.name = param(v, "name").unwrap_or_default();
                                    part.filename = param(v, "filename");
                                }
                                "content-type" => part.content_type = Some(v.trim().to_string()),
                                _ => {}
                            }
                        }
                        self.cur = Some(Cur {
                            part,
                            hasher: Sha1::new(),
                            small: Vec::new(),
                        });
                        self.st = St::Body;
                    }
                    None => {
                        if self.buf.len() > SMALL {
                            self.error = Some("part headers too large".into());
                            self.st = St::Done;
                        }
                        return;
                    }
                },
                St::Body => match memmem::find(&self.buf, &self.delim) {
                    Some(p) => {
                        self.emit(p);
                        let n = self.delim.len();
                        self.buf.drain(..n);
                        self.close_part();
                        self.st = St::AfterDelim;
                    }
                    None => {
                        let safe = self.buf.len().saturating_sub(self.delim.len() - 1);
                        self.emit(safe);
                        return;
                    }
                },
                St::AfterDelim => {
                    if self.buf.len() < 2 {
                        return;
                    }
                    if &self.buf[..2] == b"--" {
                        self.st = St::Done;
                    } else {
                        let skip = if &self.buf[..2] == b"\r\n" { 2 } else { 0 };
                        self.buf.drain(..skip);
                        self.st = St::Headers;
                    }
                }
            }
        }
    }

    /// Ends parsing; `Err` if the body was truncated or malformed.
    pub fn finish(mut self) -> Result<Vec<Part>, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.st {
            St::Done => Ok(self.parts),
            St::AfterDelim => {
                self.close_part();
                Ok(self.parts)
            }
            _ => Err("truncated multipart body".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_tiny_chunks() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"ufile\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--Xy world\r\n--XyZ--\r\n";
        for chunk in [1usize, 2, 3, 7, 1000] {
            let mut p = Parser::new("XyZ");
            for c in body.chunks(chunk) {
                p.feed(c);
            }
            let parts = p.finish().unwrap();
            assert_eq!(parts.len(), 2, "chunk {chunk}");
            assert_eq!(parts[0].value.as_deref(), Some("abc"));
            assert_eq!(parts[1].filename.as_deref(), Some("a.bin"));
            assert_eq!(parts[1].size, "hello\r\n--Xy world".len() as u64);
            assert_eq!(
                parts[1].sha1,
                crate::assets::sha1_hex(b"hello\r\n--Xy world")
            );
        }
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\""),
            Some("abc".into())
        );
    }
}
