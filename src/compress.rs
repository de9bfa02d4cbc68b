//! Brotli for responses, done by BridgeCore itself.
//!
//! Pingora 0.9.1's compression module ends brotli streams with a flush instead of a finish, so
//! every `br` body it produces lacks the final meta-block: curl and browsers accept it, strict
//! decoders (Node's `fetch`, the `brotli` CLI, the `brotli` crate) reject it (cloudflare/pingora
//! #1013, open). BridgeCore keeps the module for gzip and zstd, which finish their streams
//! correctly, and encodes brotli here, finishing the stream at the end of the body.

use std::io::Write;

use bytes::Bytes;

/// Buffer size and window of the encoder (the module's own choices).
const BUFFER: usize = 4096;
const LG_WINDOW: u32 = 19;

/// A streaming brotli encoder for one response body.
pub struct BrotliStream {
    writer: Option<brotli::CompressorWriter<Vec<u8>>>,
}

impl BrotliStream {
    /// A new encoder at `level` (0-11).
    pub fn new(level: u32) -> Self {
        BrotliStream {
            writer: Some(brotli::CompressorWriter::new(
                Vec::new(),
                BUFFER,
                level,
                LG_WINDOW,
            )),
        }
    }

    /// Feeds a chunk; returns what is ready to send. At `end` the stream is finished and the
    /// encoder is spent.
    pub fn encode(&mut self, input: &[u8], end: bool) -> Bytes {
        let Some(writer) = self.writer.as_mut() else {
            return Bytes::new();
        };
        // Writing into a Vec cannot fail.
        let _ = writer.write_all(input);
        if end {
            match self.writer.take() {
                Some(w) => Bytes::from(w.into_inner()),
                None => Bytes::new(),
            }
        } else {
            Bytes::from(std::mem::take(writer.get_mut()))
        }
    }
}

/// Compresses a whole body at once (BridgeCore's own answers).
pub fn brotli_all(body: &[u8], level: u32) -> Bytes {
    BrotliStream::new(level).encode(body, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::Decompressor::new(b, 4096)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn streamed_chunks_form_one_complete_stream() {
        let text = "{\"jsonrpc\":\"2.0\",\"result\":[1,2,3]}".repeat(500);
        let mut enc = BrotliStream::new(5);
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(1000) {
            out.extend_from_slice(&enc.encode(chunk, false));
        }
        out.extend_from_slice(&enc.encode(&[], true));
        assert_eq!(decode(&out), text.as_bytes());
        assert!(out.len() < text.len() / 10);
    }

    #[test]
    fn whole_body_round_trips() {
        assert_eq!(
            decode(&brotli_all(b"hello hello hello", 5)),
            b"hello hello hello"
        );
        assert_eq!(decode(&brotli_all(b"", 5)), b"");
    }
}
