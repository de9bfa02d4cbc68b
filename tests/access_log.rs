//! The structured access log as ops read it: the real binary's standard output, one JSON line
//! per request, written out at shutdown at the latest.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn every_request_is_one_json_line_on_stdout() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let (text, port, _) = yaml(&[TenantSpec::for_odoo("odoo", &["127.0.0.1"], &odoo)], "");
    let text = text.replace("  access_log: false\n", "  access_log: true\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bridgecore.yaml");
    std::fs::write(&file, &text).unwrap();
    let out = dir.path().join("access.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bridgecore"))
        .arg("-c")
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    let mut up = false;
    for _ in 0..400 {
        if c.get(format!("{base}/web/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "bridgecore did not start");

    // A web-client call with the client's own request id and a query string that must not
    // reach the log (queries can carry tokens).
    let r = c
        .post(format!(
            "{base}/web/dataset/call_kw/res.partner/search_read?access_token=s3cret"
        ))
        .header("x-request-id", "trace-4711")
        .header("cookie", "session_id=nosuchsession")
        .json(
            &json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "model": "res.partner", "method": "search_read", "args": [],
            "kwargs": {"fields": ["name"], "limit": 2}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let web_bytes = r.bytes().await.unwrap().len();
    // An external caller with its own credentials: the uid is logged.
    let r = c
        .post(format!("{base}/jsonrpc"))
        .json(&rpc(
            json!({"service": "object", "method": "execute_kw",
                   "args": ["odoo", 2, "admin", "res.partner", "search_count", [[]]]}),
            2,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(b["result"].is_number(), "{b}");
    // A request BridgeCore answers itself: a body that is not JSON.
    let r = c
        .post(format!("{base}/web/dataset/call_kw/res.partner/read"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let refused = r.status().as_u16();
    // SIGTERM: a graceful stop writes what is still buffered.
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");

    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] != "/web/health")
        .collect();
    assert_eq!(calls.len(), 3, "{text}");

    let web = calls[0];
    assert_eq!(web["request_id"], "trace-4711");
    assert_eq!(web["tenant"], "odoo");
    assert_eq!(web["client_ip"], "127.0.0.1");
    assert_eq!(web["method"], "POST");
    assert_eq!(web["path"], "/web/dataset/call_kw/res.partner/search_read");
    assert!(!text.contains("s3cret"), "the query string reached the log");
    assert_eq!(web["status"], 200);
    assert_eq!(web["bytes"].as_u64(), Some(web_bytes as u64));
    assert_eq!(web["model"], "res.partner");
    assert_eq!(web["rpc_method"], "search_read");
    assert!(web["uid"].is_null());
    assert!(web["duration_ms"].as_f64().unwrap() >= web["upstream_ms"].as_f64().unwrap());
    assert!(web["error"].is_null());
    let ts = web["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T" && &ts[19..20] == ".",
        "{ts}"
    );

    let rpc = calls[1];
    assert_eq!(rpc["path"], "/jsonrpc");
    assert_eq!(rpc["uid"], 2);
    assert_eq!(rpc["model"], "res.partner");
    assert_eq!(rpc["rpc_method"], "search_count");
    // A request id made by BridgeCore: 32 hex digits, not the other request's.
    let id = rpc["request_id"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );

    let own = calls[2];
    assert_eq!(own["status"], refused);
    assert_eq!(own["tenant"], "odoo");
    assert_eq!(own["answered_by"], "bridgecore");
    assert!(own["upstream_ms"].is_null() && own["model"].is_null());
}
