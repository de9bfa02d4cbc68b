//! Deterministic bodies for static files, images, PDFs.

use sha1::{Digest, Sha1};

/// `"<first 16 hex of sha1>"` — a quoted strong ETag for `data`.
pub fn etag(data: &[u8]) -> String {
    format!("\"{}\"", &sha1_hex(data)[..16])
}

/// Lower-case hex SHA-1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    let d = Sha1::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// ~4 KB of JavaScript (the body of `/web/static/src/app.js`).
pub fn app_js() -> Vec<u8> {
    let mut s = String::from(
        "/** @odoo-module **/\n// fake-odoo web client bundle (deterministic test asset)\n",
    );
    let mut i = 0;
    while s.len() < 4096 {
        s.push_str(&format!(
            "export function component{i}(env, props) {{\n    const state = {{ id: {i}, name: \"component_{i}\", visible: true }};\n    return env.services.orm.call(\"res.partner\", \"search_read\", [[], [\"name\"]]).then((r) => r.length + state.id);\n}}\n"
        ));
        i += 1;
    }
    s.into_bytes()
}

/// ~3 KB of CSS (`/web/assets/<unique>/web.assets_web.min.css`).
pub fn app_css() -> Vec<u8> {
    let mut s = String::from("/* fake-odoo web.assets_web.min.css */\n");
    let mut i = 0;
    while s.len() < 3072 {
        s.push_str(&format!(
            ".o_fake_{i}{{display:flex;margin:{i}px;color:#714B67;background:#f{:x}f{:x}f{:x}}}\n",
            i % 16,
            (i * 3) % 16,
            (i * 7) % 16
        ));
        i += 1;
    }
    s.into_bytes()
}

/// A small SVG.
pub fn svg() -> Vec<u8> {
    b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"><rect width=\"16\" height=\"16\" fill=\"#714B67\"/></svg>\n".to_vec()
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (n, slot) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = kind.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend_from_slice(&crc32(&c).to_be_bytes());
}

/// A valid, uncompressed RGB PNG of `w`×`h` (≈ 3·w·h bytes), colours seeded by `seed`.
pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    for y in 0..h {
        raw.push(0u8);
        for x in 0..w {
            raw.push(((x * 5 + seed * 40) % 256) as u8);
            raw.push(((y * 5 + seed * 90) % 256) as u8);
            raw.push((((x + y) * 3 + seed * 17) % 256) as u8);
        }
    }
    // zlib stream made of stored deflate blocks
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(if i + 1 == blocks.len() { 1 } else { 0 });
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A syntactically valid one-page PDF of at least `min_size` bytes.
pub fn pdf(title: &str, min_size: usize) -> Vec<u8> {
    let mut content = format!(
        "BT /F1 18 Tf 72 720 Td ({}) Tj ET\n",
        title.replace(['(', ')', '\\'], "")
    );
    let mut i = 0;
    while content.len() < min_size {
        content.push_str(&format!("BT /F1 9 Tf 72 {} Td (Line {i}: fake-odoo report body, deterministic filler text.) Tj ET\n", 700 - (i % 60) * 11));
        i += 1;
    }
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{}endstream", content.len(), content),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (n, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{}\nendobj\n", n + 1, o).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Content type for a static path's extension.
pub fn mime_for(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    Some(match ext.as_str() {
        "js" => "text/javascript; charset=utf-8",
        "css" | "scss" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml; charset=utf-8",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "json" => "application/json; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        _ => return None,
    })
}

/// Body for a static path, by extension (deterministic per path).
pub fn static_body(path: &str) -> Option<Vec<u8>> {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    let seed = path
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    Some(match ext.as_str() {
        "js" => {
            let mut b = format!("// {path}\n").into_bytes();
            b.extend(app_js());
            b
        }
        "css" | "scss" => {
            let mut b = format!("/* {path} */\n").into_bytes();
            b.extend(app_css());
            b
        }
        "png" | "ico" => png(24, 24, seed % 7),
        "svg" => svg(),
        "woff" | "woff2" => {
            let mut b = b"wOF2".to_vec();
            b.extend((0..2048u32).map(|i| ((i * 7 + seed) % 251) as u8));
            b
        }
        "json" => format!("{{\"path\": \"{path}\", \"fake\": true}}\n").into_bytes(),
        "xml" => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<templates><t t-name=\"fake.{seed}\"><div>{path}</div></t></templates>\n").into_bytes(),
        "txt" | "html" => format!("fake static file {path}\n").into_bytes(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert!(app_js().len() >= 4096 && app_js().len() < 5000);
        let p = png(48, 48, 1);
        assert!(p.len() > 6000 && p.starts_with(b"\x89PNG"));
        let d = pdf("S00001", 20 * 1024);
        assert!(d.len() >= 20 * 1024 && d.starts_with(b"%PDF-1.4"));
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
