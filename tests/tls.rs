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

    // A reload with a broken key keeps the current certificate.
    std::fs::write(&second.key, "not a key").unwrap();
    assert!(bc
        .handle()
        .reload(Config::from_yaml(&text, "test.yaml").unwrap())
        .is_err());
    assert!(https_client(&second.pem, "erp.example.com", tls_addr)
        .get(&url)
        .send()
        .await
        .is_ok());
}
