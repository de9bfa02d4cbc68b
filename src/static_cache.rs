//! Static files and asset bundles in memory, with HTTP semantics (issue 7 item 6).
//!
//! `/web/static/…`, `/<module>/static/…` and `/web/assets/…` are the same for every user (Odoo
//! serves them without a session), so their answers are kept per tenant, path, query and the
//! coding the client gets — compressed once when stored, never per hit. Only what Odoo marks
//! cacheable is kept (`Cache-Control: public` with a `max-age`, no `no-store`/`private`/
//! `no-cache`, no `Set-Cookie`), for that `max-age`. A hit whose `If-None-Match` matches is a 304.
//! TinyUFO bounds the memory; a 64-bit index with the full key checked on every hit.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridgecore_filters::encoding::Coding;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tinyufo::TinyUfo;

/// One kept answer.
#[derive(Debug)]
pub struct Asset {
    key: Box<str>,
    /// The headers sent with it (type, caching, validators, encoding).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, in `coding`.
    pub body: Bytes,
    /// The strong or weak validator, for `If-None-Match`.
    pub etag: Option<HeaderValue>,
    fresh_until: Instant,
}

/// Headers of Odoo's answer that are kept with the body.
const KEPT: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
    header::EXPIRES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_SECURITY_POLICY,
    header::X_CONTENT_TYPE_OPTIONS,
];

/// The store.
pub struct StaticCache {
    ufo: TinyUfo<u64, Arc<Asset>>,
    hasher: std::collections::hash_map::RandomState,
}

/// Whether `path` is a static file or an asset bundle.
pub fn is_static(path: &str) -> bool {
    path.starts_with("/web/assets/") || path.split('/').nth(2) == Some("static")
}

/// How long Odoo lets shared caches keep an answer with these headers (`None`: not at all).
pub fn freshness(headers: &HeaderMap) -> Option<Duration> {
    if headers.contains_key(header::SET_COOKIE) || headers.contains_key(header::CONTENT_ENCODING) {
        return None;
    }
    let cc = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut public = false;
    let mut max_age = None;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        match d.as_str() {
            "no-store" | "private" | "no-cache" => return None,
            "public" | "immutable" => public |= d == "public",
            _ => {
                let age = d
                    .strip_prefix("s-maxage=")
                    .or_else(|| d.strip_prefix("max-age="));
                if let Some(n) = age.and_then(|n| n.parse::<u64>().ok()) {
                    // s-maxage wins over max-age for a shared cache.
                    if d.starts_with("s-maxage=") || max_age.is_none() {
                        max_age = Some(n);
                    }
                }
            }
        }
    }
    let secs = max_age.filter(|n| *n > 0)?;
    // Static files are public in Odoo even when `public` is not spelled out; anything that
    // set a cookie was refused above.
    let _ = public;
    Some(Duration::from_secs(secs.min(7 * 24 * 3600)))
}

impl StaticCache {
    /// A store of at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        let units = (max_bytes as usize / 1024).max(1);
        StaticCache {
            ufo: TinyUfo::new(units, (max_bytes as usize / (32 * 1024)).clamp(64, 1 << 20)),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The key of a request: tenant, path and query, and the coding the client gets.
    pub fn key(tenant: &str, path_and_query: &str, coding: Option<Coding>) -> String {
        let c = coding.map_or("identity", Coding::token);
        let mut k = String::with_capacity(tenant.len() + path_and_query.len() + c.len() + 2);
        k.push_str(tenant);
        k.push('\0');
        k.push_str(path_and_query);
        k.push('\0');
        k.push_str(c);
        k
    }

    fn index(&self, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key.as_bytes());
        h.finish()
    }

    /// The fresh answer under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Asset>> {
        self.ufo
            .get(&self.index(key))
            .filter(|a| &*a.key == key && Instant::now() < a.fresh_until)
    }

    /// Keeps Odoo's answer (`headers`, uncompressed `body`) under `key`, compressed in
    /// `coding` when that pays (the same rule as for proxied answers).
    pub fn put(
        &self,
        key: String,
        headers: &HeaderMap,
        body: Bytes,
        coding: Option<Coding>,
        ttl: Duration,
        compress: bool,
    ) {
        let mut kept: Vec<(HeaderName, HeaderValue)> = KEPT
            .iter()
            .filter_map(|n| headers.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
        let mut etag = headers.get(header::ETAG).cloned();
        let body = match coding.filter(|_| compress) {
            Some(c) => {
                let encoded = encode(c, &body);
                kept.push((
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(c.token()),
                ));
                kept.push((header::VARY, HeaderValue::from_static("Accept-Encoding")));
                // A compressed body is not byte-identical: the validator becomes weak.
                if let Some(e) = etag.as_ref().filter(|e| !e.as_bytes().starts_with(b"W/")) {
                    let mut weak = b"W/".to_vec();
                    weak.extend_from_slice(e.as_bytes());
                    etag = HeaderValue::from_bytes(&weak).ok();
                    kept.retain(|(n, _)| n != header::ETAG);
                    if let Some(w) = &etag {
                        kept.push((header::ETAG, w.clone()));
                    }
                }
                encoded
            }
            None => body,
        };
        let weight = (body.len() + 512).div_ceil(1024).min(u16::MAX as usize) as u16;
        let index = self.index(&key);
        let asset = Arc::new(Asset {
            key: key.into_boxed_str(),
            headers: kept,
            body,
            etag,
            fresh_until: Instant::now() + ttl,
        });
        self.ufo.remove(&index);
        let _ = self.ufo.put(index, asset, weight);
    }
}

fn encode(coding: Coding, body: &[u8]) -> Bytes {
    use std::io::Write;
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 3),
                flate2::Compression::new(6),
            );
            let _ = e.write_all(body);
            Bytes::from(e.finish().unwrap_or_default())
        }
        Coding::Zstd => Bytes::from(zstd::bulk::compress(body, 6).unwrap_or_default()),
        Coding::Brotli => crate::compress::brotli_all(body, 6),
    }
}

/// Whether `If-None-Match` (weak comparison, as RFC 9110 asks for it) matches `etag`.
pub fn not_modified(if_none_match: Option<&HeaderValue>, etag: Option<&HeaderValue>) -> bool {
    let (Some(inm), Some(etag)) = (
        if_none_match.and_then(|v| v.to_str().ok()),
        etag.and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let etag = bare(etag);
    inm.split(',').any(|t| t.trim() == "*" || bare(t) == etag)
}

// ---- addons paths on disk (`tenants.X.addons_paths`) ----

/// How long browsers and shared caches may keep a static file, as Odoo says for them
/// (`STATIC_CACHE`, one week).
pub const STATIC_CACHE_CONTROL: &str = "public, max-age=604800";

/// The header the deploy doc's nginx sample puts on static answers that are images
/// (`map $sent_http_content_type $content_type_csp { ~image/ "default-src 'none'"; }`): an
/// SVG opened on its own runs no script.
pub const IMAGE_CSP: &str = "default-src 'none'";

/// What a `/<module>/static/<path>` request names on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum StaticPath {
    /// Not a module's static file (another route, or a module name Odoo would not have).
    NotStatic,
    /// A path that tries to leave the static directory (`..`, NUL, backslash, an encoded
    /// slash, an absolute part): refused, never looked up.
    Refused,
    /// The module and the file's path under its `static/` directory.
    File(String, PathBuf),
}

/// Splits a request path into module and file, percent-decoded and checked segment by segment.
pub fn static_path(path: &str) -> StaticPath {
    let Some(rest) = path.strip_prefix('/') else {
        return StaticPath::NotStatic;
    };
    let Some((module, file)) = rest.split_once("/static/") else {
        return StaticPath::NotStatic;
    };
    let module_ok = !module.is_empty()
        && module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !module_ok || file.is_empty() {
        return StaticPath::NotStatic;
    }
    let mut rel = PathBuf::new();
    for raw in file.split('/') {
        let Some(seg) = percent_decode(raw) else {
            return StaticPath::Refused;
        };
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains(['\\', '\0', '/']) {
            return StaticPath::Refused;
        }
        rel.push(seg);
    }
    StaticPath::File(module.to_owned(), rel)
}

/// `%XX` decoding of one path segment; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(seg: &str) -> Option<String> {
    if !seg.contains('%') {
        return Some(seg.to_owned());
    }
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A static file read from an addons directory.
#[derive(Debug)]
pub struct DiskFile {
    /// The file's bytes.
    pub body: Bytes,
    /// By extension.
    pub content_type: &'static str,
    /// A weak validator from the modification time and size (as nginx makes them).
    pub etag: HeaderValue,
    /// The modification time, for `Last-Modified` / `If-Modified-Since`.
    pub modified: std::time::SystemTime,
}

/// The first `<dir>/<module>/static/<rel>` that is a regular file inside its module's
/// `static/` directory once symlinks are resolved (a link that points out of it is not
/// served). Runs the file system calls on the blocking pool.
pub async fn addons_file(dirs: &[PathBuf], module: String, rel: PathBuf) -> Option<DiskFile> {
    let dirs = dirs.to_vec();
    tokio::task::spawn_blocking(move || {
        dirs.iter()
            .find_map(|dir| read_inside(&dir.join(&module).join("static"), &rel))
    })
    .await
    .ok()
    .flatten()
}

fn read_inside(root: &std::path::Path, rel: &std::path::Path) -> Option<DiskFile> {
    let root = std::fs::canonicalize(root).ok()?;
    let file = std::fs::canonicalize(root.join(rel)).ok()?;
    if !file.starts_with(&root) {
        log::warn!(
            "addons_paths: `{}` resolves outside `{}`: not served",
            rel.display(),
            root.display()
        );
        return None;
    }
    let meta = std::fs::metadata(&file).ok()?;
    if !meta.is_file() {
        return None;
    }
    let modified = meta.modified().ok()?;
    let body = std::fs::read(&file).ok()?;
    let secs = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let etag = HeaderValue::from_str(&format!("W/\"{secs:x}-{:x}\"", body.len())).ok()?;
    Some(DiskFile {
        content_type: content_type_of(&file),
        body: Bytes::from(body),
        etag,
        modified,
    })
}

/// The content type of a static file, by its extension (the types Odoo's addons ship).
pub fn content_type_of(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "scss" | "sass" | "less" => "text/x-scss; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "txt" | "md" | "rst" => "text/plain; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "pdf" => "application/pdf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Whether a request with these validators may get a 304 for `file`: `If-None-Match` when
/// sent (weak comparison), else `If-Modified-Since` (whole seconds).
pub fn disk_not_modified(headers: &http::HeaderMap, file: &DiskFile) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        return not_modified(Some(inm), Some(&file.etag));
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    since.is_some_and(|since| secs(file.modified) <= secs(since))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn static_paths_cannot_leave_their_directory() {
        assert_eq!(
            static_path("/sale/static/src/img/a%20b.png"),
            StaticPath::File("sale".into(), PathBuf::from("src/img/a b.png"))
        );
        for bad in [
            "/web/static/../../etc/passwd",
            "/web/static/src/%2e%2e/x",
            "/web/static/a%2fb",
            "/web/static/a%00b",
            "/web/static/a%5cb",
            "/web/static//etc/passwd",
            "/web/static/a%zz",
        ] {
            assert_eq!(static_path(bad), StaticPath::Refused, "{bad}");
        }
        assert_eq!(static_path("/web/image/1"), StaticPath::NotStatic);
        assert_eq!(static_path("/../static/x"), StaticPath::NotStatic);
        assert_eq!(static_path("/web/static/"), StaticPath::NotStatic);
    }

    fn h(cc: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::CACHE_CONTROL, HeaderValue::from_str(cc).unwrap());
        m
    }

    #[test]
    fn only_what_odoo_lets_shared_caches_keep() {
        assert_eq!(
            freshness(&h("public, max-age=604800")),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(
            freshness(&h("public, max-age=31536000, immutable")),
            Some(Duration::from_secs(7 * 24 * 3600))
        );
        assert_eq!(
            freshness(&h("max-age=60, s-maxage=10")),
            Some(Duration::from_secs(10))
        );
        for no in [
            "no-store",
            "private, max-age=60",
            "no-cache",
            "public",
            "max-age=0",
        ] {
            assert_eq!(freshness(&h(no)), None, "{no}");
        }
        let mut cookie = h("public, max-age=60");
        cookie.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        assert_eq!(freshness(&cookie), None);
        assert_eq!(freshness(&HeaderMap::new()), None);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let e = HeaderValue::from_static("\"abc\"");
        let w = HeaderValue::from_static("W/\"abc\"");
        assert!(not_modified(Some(&e), Some(&w)));
        assert!(not_modified(
            Some(&HeaderValue::from_static("\"x\", W/\"abc\"")),
            Some(&e)
        ));
        assert!(not_modified(Some(&HeaderValue::from_static("*")), Some(&e)));
        assert!(!not_modified(
            Some(&HeaderValue::from_static("\"x\"")),
            Some(&e)
        ));
        assert!(!not_modified(None, Some(&e)));
        assert!(!not_modified(Some(&e), None));
    }

    #[test]
    fn paths() {
        assert!(is_static("/web/static/src/img/logo.png"));
        assert!(is_static("/sale/static/description/icon.png"));
        assert!(is_static("/web/assets/1/web.assets_web.min.js"));
        assert!(!is_static("/web/image/res.partner/1/avatar_128"));
        assert!(!is_static("/web/dataset/call_kw"));
        assert!(!is_static("/static"));
    }

    #[test]
    fn compressed_entries_decode_and_have_weak_validators() {
        let store = StaticCache::new(1 << 20);
        let mut headers = h("public, max-age=60");
        headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css"));
        let body = Bytes::from("body { color: red; } ".repeat(200));
        let key = StaticCache::key("t", "/web/static/a.css", Some(Coding::Gzip));
        store.put(
            key.clone(),
            &headers,
            body.clone(),
            Some(Coding::Gzip),
            Duration::from_secs(60),
            true,
        );
        let a = store.get(&key).unwrap();
        assert_eq!(a.etag.as_ref().unwrap(), "W/\"v1\"");
        let mut out = Vec::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&a.body[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert!(store
            .get(&StaticCache::key("t", "/web/static/a.css", None))
            .is_none());
    }
}
