//! TLS listeners (issue 7 item 1): SNI across tenant hosts, HTTP/2 by ALPN, HSTS, `Secure` on
//! Odoo's session cookie, the plain-HTTP redirect, and certificates re-read on reload.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bridgecore::config::Config;
use common::*;
use serde_json::json;

struct Pair {
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn make_cert(dir: &Path, file: &str, names: &[&str]) -> Pair {
    let ck =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = dir.join(format!("{file}.crt"));
    let key = dir.join(format!("{file}.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    Pair {
        cert,
        key,
        pem: ck.cert.pem(),
    }
}

fn https_client(trust: &str, host: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(trust.as_bytes()).unwrap())
        .resolve(host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .build()
        .unwrap()
}

fn tls_yaml(odoo: &FakeOdoo, tls_port: u16, entries: &[&Pair], extra: &str) -> String {
    let a = TenantSpec::for_odoo("a", &["erp.example.com"], odoo);
    let b = TenantSpec::for_odoo("b", &["other.example.com"], odoo);
    let (text, _, _) = yaml(&[a, b], "");
    let list = entries
        .iter()
        .map(|p| {
            format!(
                "{{listen: \"127.0.0.1:{tls_port}\", cert: \"{}\", key: \"{}\"}}",
                p.cert.display(),
                p.key.display()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    with_server_keys(&text, &format!("tls: [{list}]\n  {extra}"))
}

async fn wait_tls(addr: SocketAddr) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{addr} does not accept connections");
}

#[tokio::test]
async fn tls_picks_the_certificate_by_sni_speaks_h2_and_secures_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let erp = make_cert(dir.path(), "erp", &["erp.example.com"]);
    let other = make_cert(dir.path(), "other", &["other.example.com"]);
    let odoo = FakeOdoo::start(Dataset::demo());
    let tls_port = free_port();
    let text = tls_yaml(
        &odoo,
        tls_port,
        &[&erp, &other],
        "hsts: \"max-age=600\"\n  redirect_http_to_https: true",
    );
    let bc = start_yaml(&text, Vec::new());
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    wait_tls(tls_addr).await;

    // erp.example.com gets its own certificate, over HTTP/2, with HSTS.
    let c = https_client(&erp.pem, "erp.example.com", tls_addr);
    let login = rpc(
        json!({"db": "odoo", "login": "admin", "password": "admin"}),
        1,
    );
    let resp = c
        .post(format!(
            "https://erp.example.com:{tls_port}/web/session/authenticate"
        ))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=600");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("session_id="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Odoo heard it was HTTPS.
    let seen = odoo.requests().into_iter().last().unwrap();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");

    // other.example.com gets the other certificate: a client trusting only erp's fails, one
    // trusting other's succeeds.
    let wrong = https_client(&erp.pem, "other.example.com", tls_addr);
    assert!(wrong
        .get(format!("https://other.example.com:{tls_port}/web/login"))
        .send()
        .await
        .is_err());
    let right = https_client(&other.pem, "other.example.com", tls_addr);
    let resp = right
        .get(format!("https://other.example.com:{tls_port}/web/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Plain HTTP is redirected, host and path kept, no HSTS there.
    let resp = client()
        .get(format!("http://{}/web?debug=1", bc.addr()))
        .header("host", "erp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers()["location"],
        format!("https://erp.example.com:{tls_port}/web?debug=1").as_str()
    );
    assert!(resp.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn a_reload_rereads_the_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path(), "erp", &["erp.example.com"]);
    let odoo = FakeOdoo::start(Dataset::demo());
    let tls_port = free_port();
    let text = tls_yaml(&odoo, tls_port, &[&first], "");
    let bc = start_yaml(&text, Vec::new());
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    wait_tls(tls_addr).await;
    let url = format!("https://erp.example.com:{tls_port}/web/login");
    assert!(https_client(&first.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .is_ok());

    // New files at the same paths, then a reload.
    let second = make_cert(dir.path(), "erp", &["erp.example.com"]);
    bc.handle()
        .reload(Config::from_yaml(&text, "test.yaml").unwrap())
        .unwrap();
    assert!(https_client(&second.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .is_ok());
    assert!(https_client(&first.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .is_err());

    // A broken key: the configuration no longer validates (what `--test` and SIGHUP see), and
    // a reload of a configuration validated before the key broke is refused at load time.
    // Either way the current certificate stays.
    let validated = Config::from_yaml(&text, "test.yaml").unwrap();
    std::fs::write(&second.key, "not a key").unwrap();
    assert!(Config::from_yaml(&text, "test.yaml").is_err());
    assert!(bc.handle().reload(validated).is_err());
    assert!(https_client(&second.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .is_ok());
}

/// The reload counter's value for `result` (0 before the first).
fn reloads(bc: &bridgecore::Running, result: &str) -> u64 {
    let text = String::from_utf8(bc.handle().metrics()).unwrap();
    let prefix = format!("bridgecore_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn a_reload_refused_after_loading_new_certificates_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path(), "erp", &["erp.example.com"]);
    let odoo = FakeOdoo::start(Dataset::demo());
    let tls_port = free_port();
    let text = tls_yaml(&odoo, tls_port, &[&first], "");
    let bc = start_yaml(&text, Vec::new());
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    wait_tls(tls_addr).await;
    let url = format!("https://erp.example.com:{tls_port}/web/login");
    let works = |pem: &str| {
        let c = https_client(pem, "erp.example.com", tls_addr);
        let url = url.clone();
        async move { c.get(&url).send().await.is_ok() }
    };
    assert!(works(&first.pem).await);

    // Renewed certificate files (valid: the new configuration validates), but an upstream that
    // does not resolve: the build fails after the certificates could have been loaded.
    let second = make_cert(dir.path(), "erp", &["erp.example.com"]);
    let broken = text.replace(&odoo.addr().to_string(), "no-such-host.invalid:8069");
    assert_ne!(broken, text);
    let err = bc
        .handle()
        .reload(Config::from_yaml(&broken, "test.yaml").unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    assert_eq!(reloads(&bc, "error"), 1);

    // Nothing changed: the old certificate is served, not the new one, and requests still
    // reach the old upstream.
    assert!(works(&first.pem).await);
    assert!(!works(&second.pem).await);
    let resp = https_client(&first.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        bc.handle().config().tenants[0].upstream,
        vec![odoo.addr().to_string()]
    );

    // The same files with a buildable configuration: now the new certificate is served.
    bc.handle()
        .reload(Config::from_yaml(&text, "test.yaml").unwrap())
        .unwrap();
    assert!(works(&second.pem).await);
    assert!(!works(&first.pem).await);
}

#[tokio::test]
async fn an_unknown_or_missing_server_name_gets_the_first_certificate_and_no_hsts_unless_set() {
    let dir = tempfile::tempdir().unwrap();
    // The listener's first entry is the fallback (tls.rs): here the one for other.example.com,
    // which also covers the names the clients below use without a tenant of their own.
    let fallback = make_cert(
        dir.path(),
        "other",
        &["other.example.com", "unknown.example.com", "127.0.0.1"],
    );
    let erp = make_cert(
        dir.path(),
        "erp",
        &["erp.example.com", "unknown.example.com"],
    );
    let odoo = FakeOdoo::start(Dataset::demo());
    let tls_port = free_port();
    // No `hsts:`.
    let text = tls_yaml(&odoo, tls_port, &[&fallback, &erp], "");
    let _bc = start_yaml(&text, Vec::new());
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    wait_tls(tls_addr).await;

    // A name no tenant has: the first certificate, not erp's (which is valid for the name
    // too, so only the trust decides). No tenant matches either: BridgeCore's 404.
    let unknown = format!("https://unknown.example.com:{tls_port}/web/login");
    let resp = https_client(&fallback.pem, "unknown.example.com", tls_addr)
        .get(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("strict-transport-security").is_none());
    assert!(https_client(&erp.pem, "unknown.example.com", tls_addr)
        .get(&unknown)
        .send()
        .await
        .is_err());

    // By IP: rustls sends no server name at all. The first certificate again.
    let by_ip = format!("https://127.0.0.1:{tls_port}/web/login");
    let resp = https_client(&fallback.pem, "unused.example.com", tls_addr)
        .get(&by_ip)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(https_client(&erp.pem, "unused.example.com", tls_addr)
        .get(&by_ip)
        .send()
        .await
        .is_err());

    // A tenant's own name still gets its own certificate, and without `hsts:` no
    // Strict-Transport-Security on an answer from Odoo either.
    let resp = https_client(&erp.pem, "erp.example.com", tls_addr)
        .get(format!("https://erp.example.com:{tls_port}/web/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("strict-transport-security").is_none(),
        "{:?}",
        resp.headers()
    );
    assert_eq!(odoo.count_path("/web/login"), 1);
}
