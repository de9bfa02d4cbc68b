//! Static files and asset bundles from memory, and Odoo's `--x-sendfile` (issue 7 item 6).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[tokio::test]
async fn static_files_are_kept_as_odoo_allows_and_revalidated_here() {
    let h = Harness::start();
    let get = |path: &'static str, extra: Option<(&'static str, String)>| {
        let url = h.url(path);
        async move {
            let mut r = client().get(url);
            if let Some((k, v)) = extra {
                r = r.header(k, v);
            }
            r.send().await.unwrap()
        }
    };
    let path = "/web/static/src/img/logo.png";
    let first = get(path, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "MISS");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let cc = first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = first.bytes().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = get(path, None).await;
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.headers()["etag"], etag.as_str());
    assert_eq!(second.headers()["cache-control"], cc.as_str());
    assert_eq!(second.headers()["content-type"], "image/png");
    assert_eq!(second.bytes().await.unwrap(), body);
    let not_modified = get(path, Some(("if-none-match", etag.clone()))).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());
    assert!(not_modified.bytes().await.unwrap().is_empty());
    assert_eq!(
        h.odoo.count_path(path),
        1,
        "Odoo saw the first request only"
    );
}

#[tokio::test]
async fn bundles_are_compressed_once_per_coding() {
    let h = Harness::start();
    let path = "/web/assets/1a2b3c/web.assets_web.min.js";
    let fetch = |coding: &'static str| {
        let url = h.url(path);
        async move {
            client()
                .get(url)
                .header("accept-encoding", coding)
                .send()
                .await
                .unwrap()
        }
    };
    let plain = fetch("identity").await.bytes().await.unwrap();
    for coding in ["gzip", "zstd", "br"] {
        let miss = fetch(coding).await;
        assert_eq!(miss.headers()["x-cache"], "MISS", "{coding}");
        let miss_body = miss.bytes().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let hit = fetch(coding).await;
        assert_eq!(hit.headers()["x-cache"], "HIT", "{coding}");
        assert_eq!(hit.headers()["content-encoding"], coding);
        assert!(hit.headers()["etag"].to_str().unwrap().starts_with("W/"));
        let hit_body = hit.bytes().await.unwrap();
        assert!(hit_body.len() < plain.len());
        for b in [&miss_body, &hit_body] {
            assert_eq!(decode(coding, b), plain.to_vec(), "{coding}");
        }
    }
    // Four codings, one request each at Odoo.
    assert_eq!(h.odoo.count_path(path), 4);
}

#[tokio::test]
async fn uncacheable_answers_and_off_switch() {
    let h = Harness::start();
    // Attachments without `unique` are `no-cache` at Odoo: always asked again.
    for _ in 0..2 {
        let r = client().get(h.url("/web/content/7")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("x-cache").is_none());
    }
    assert_eq!(h.odoo.count_path("/web/content/7"), 2);
    let off = Harness::with(
        Dataset::demo(),
        "",
        "cache:\n  static: {enabled: false}\n",
        Vec::new(),
    );
    for _ in 0..2 {
        client()
            .get(off.url("/web/static/src/img/logo.png"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(off.odoo.count_path("/web/static/src/img/logo.png"), 2);
}

#[tokio::test]
async fn x_accel_redirect_is_served_from_the_filestore() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("filestore");
    let extra = format!("filestore: \"{}\"\n", store.display());
    let h = Harness::with(Dataset::demo(), &extra, "", Vec::new());
    h.odoo.set_x_sendfile(Some("odoo"));
    let (rel, bytes) = FakeOdoo::attachment_file(12);
    let file = store.join("odoo").join(&rel);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &bytes).unwrap();
    // Odoo answers with headers only; nginx-style, BridgeCore sends the file.
    let direct = client()
        .get(h.direct("/web/content/12"))
        .send()
        .await
        .unwrap();
    assert!(direct.headers().contains_key("x-accel-redirect"));
    assert!(direct.bytes().await.unwrap().is_empty());
    let r = client().get(h.url("/web/content/12")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-accel-redirect").is_none());
    assert!(r.headers().get("x-sendfile").is_none());
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    // A file that is not there is a 404, not Odoo's empty answer.
    let r = client().get(h.url("/web/content/13")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn x_accel_redirect_cannot_leave_the_filestore() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("filestore");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"not for clients").unwrap();
    let extra = format!("filestore: \"{}\"\n", store.display());
    let h = Harness::with(Dataset::demo(), &extra, "", Vec::new());
    h.odoo.set_x_sendfile(Some("../.."));
    let r = client().get(h.url("/web/content/12")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("not for clients"));
}

/// One raw HTTP/1.1 GET (the path exactly as written: clients normalise `..` away).
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: erp.example.com\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn module_static_files_come_from_addons_paths_with_odoo_caching_and_csp_on_images() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let write = |root: &std::path::Path, rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    let png = b"\x89PNG\r\n\x1a\nnot really a png, but served as one".to_vec();
    write(first.path(), "custom/static/src/img/logo.png", &png);
    write(first.path(), "custom/static/src/app.js", b"// first\n");
    write(second.path(), "custom/static/src/app.js", b"// second\n");
    write(second.path(), "other/static/src/other.css", b"body{}\n");
    write(outside.path(), "secret.txt", b"top secret\n");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        first.path().join("custom/static/leak.txt"),
    )
    .unwrap();
    let h = Harness::with(
        Dataset::demo(),
        &format!(
            "addons_paths: [\"{}\", \"{}\"]\n",
            first.path().display(),
            second.path().display()
        ),
        "",
        Vec::new(),
    );
    let get = |path: &str, extra: Option<(&'static str, String)>| {
        let url = h.url(path);
        async move {
            let mut r = client().get(url);
            if let Some((k, v)) = extra {
                r = r.header(k, v);
            }
            r.send().await.unwrap()
        }
    };

    // From disk: Odoo's caching headers, validators, the image CSP; Odoo never asked.
    let r = get("/custom/static/src/img/logo.png", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["cache-control"], "public, max-age=604800");
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = r.headers()["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(r.bytes().await.unwrap(), png);
    let r = get(
        "/custom/static/src/img/logo.png",
        Some(("if-none-match", etag.clone())),
    )
    .await;
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    let r = get(
        "/custom/static/src/img/logo.png",
        Some(("if-modified-since", last_modified)),
    )
    .await;
    assert_eq!(r.status(), 304);
    // The first directory that has the file wins; later ones are still searched.
    let r = get("/custom/static/src/app.js", None).await;
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(r.headers().get("content-security-policy").is_none());
    assert_eq!(r.text().await.unwrap(), "// first\n");
    assert_eq!(
        get("/other/static/src/other.css", None)
            .await
            .text()
            .await
            .unwrap(),
        "body{}\n"
    );
    assert_eq!(
        h.odoo.count(),
        0,
        "nothing reached Odoo: {:?}",
        h.odoo.requests()
    );

    // Not on disk: Odoo answers, and a static image from Odoo gets the CSP too.
    let r = get("/web/static/src/img/odoo.png", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    assert_eq!(h.odoo.count_path("/web/static/src/img/odoo.png"), 1);

    // A symlink out of the module's static directory is not followed: Odoo answers instead.
    let r = get("/custom/static/leak.txt", None).await;
    assert_ne!(r.text().await.unwrap(), "top secret\n");
    assert_eq!(h.odoo.count_path("/custom/static/leak.txt"), 1);

    // Traversal attempts are refused before any lookup, and reach nothing.
    let before = h.odoo.count();
    for path in [
        "/custom/static/../../../../etc/passwd",
        "/custom/static/%2e%2e/%2e%2e/secret.txt",
        "/custom/static/src%2f..%2f..%2fsecret.txt",
        "/custom/static/a%00.png",
    ] {
        let (status, text) = raw_get(h.bc.addr(), path).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            !text.contains("top secret") && !text.contains("root:"),
            "{text}"
        );
    }
    assert_eq!(h.odoo.count(), before);
}
