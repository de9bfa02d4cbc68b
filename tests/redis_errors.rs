//! Redis failures are counted by who met them (issue 7 item 5): `bridgecore_redis_errors_total`
//! with a bounded `op` label, while BridgeCore keeps answering without Redis.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

/// The value of `bridgecore_redis_errors_total{op="<op>"}` (0 when absent).
fn redis_errors(bc: &bridgecore::Running, op: &str) -> u64 {
    let text = String::from_utf8(bc.handle().metrics()).unwrap();
    let prefix = format!("bridgecore_redis_errors_total{{op=\"{op}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn read(h: &Harness, sid: &str, n: i64) -> u16 {
    let call = rpc(
        json!({"model": "res.partner", "method": "search_count", "args": [[["id", ">", n]]], "kwargs": {}}),
        1,
    );
    post_as(h.url("/web/dataset/call_kw"), sid, &call)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn redis_failures_are_counted_by_operation_while_requests_keep_working() {
    let mut redis = OwnRedis::start();
    let top = format!(
        "redis: {{url: \"redis://127.0.0.1:{}/0\"}}\ncache: {{backend: redis, key_secret: \"a-shared-cache-key-secret-for-tests\"}}\nauth:\n  jwt: {{secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}}\n",
        redis.port
    );
    let h = Harness::with(Dataset::demo(), "", &top, Vec::new());
    let sid = h.odoo.new_session(2);
    for n in 0..3 {
        assert_eq!(read(&h, &sid, n).await, 200);
    }
    let _ = api_token(&h, "demo", "demo").await;
    for op in ["cache", "limits", "sessions", "pubsub"] {
        assert_eq!(redis_errors(&h.bc, op), 0, "{op} before the outage");
    }

    redis.stop();
    // Reads still work (local limits, no shared cache); each user of Redis counts its failures.
    for n in 3..8 {
        assert_eq!(read(&h, &sid, n).await, 200);
    }
    let login = client()
        .post(h.url("/api/v1/auth/login"))
        .json(&json!({"system_id": "odoo", "login": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 503, "no session store, no login");
    for op in ["cache", "limits", "sessions"] {
        assert!(redis_errors(&h.bc, op) > 0, "{op} failures counted");
    }
    // The change-event subscriber notices its connection dropped.
    let handle = h.bc.handle().clone();
    eventually(move || {
        String::from_utf8(handle.metrics())
            .unwrap()
            .lines()
            .any(|l| {
                l.starts_with("bridgecore_redis_errors_total{op=\"pubsub\"} ") && !l.ends_with(" 0")
            })
    })
    .await;
    // Only the known operations ever appear as labels.
    let text = String::from_utf8(h.bc.handle().metrics()).unwrap();
    for line in text
        .lines()
        .filter(|l| l.starts_with("bridgecore_redis_errors_total{"))
    {
        assert!(
            ["cache", "limits", "sessions", "pubsub"]
                .iter()
                .any(|op| line.contains(&format!("op=\"{op}\""))),
            "{line}"
        );
    }
}
