//! Several upstreams per tenant (issue 7 item 3): sessions stick to one upstream, health checks
//! take a failing one out of rotation and bring it back, a refused connection moves the request
//! (and the session) to another upstream.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn two_upstreams(a: &FakeOdoo, b: &FakeOdoo, health: &str) -> String {
    let mut spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], a).extra(health);
    spec.upstream = format!("{}\", \"{}", a.addr(), b.addr());
    let (text, _, _) = yaml(&[spec], "");
    text
}

async fn call(bc: &bridgecore::Running, sid: &str) -> u16 {
    client()
        .post(format!("http://{}/web/dataset/call_kw", bc.addr()))
        .header("cookie", format!("session_id={sid}"))
        .json(&rpc(
            json!({"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}),
            1,
        ))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Which fake served `sid`'s requests: (at a, at b).
fn served(a: &FakeOdoo, b: &FakeOdoo, sid: &str) -> (usize, usize) {
    let count = |o: &FakeOdoo| {
        o.requests()
            .iter()
            .filter(|s| {
                s.headers
                    .get("cookie")
                    .is_some_and(|c| c.to_str().unwrap() == format!("session_id={sid}"))
            })
            .count()
    };
    (count(a), count(b))
}

async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met in 5 s");
}

/// The tenant's health as the admin listener reports it.
async fn health(bc: &bridgecore::Running) -> serde_json::Value {
    client()
        .get(format!(
            "http://{}/api/v1/systems/odoo/health",
            bc.admin_addr().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn in_rotation(bc: &bridgecore::Running, addr: std::net::SocketAddr) -> bool {
    let text = String::from_utf8(bc.handle().metrics()).unwrap();
    text.lines().any(|l| {
        l.starts_with("bridgecore_upstream_up{")
            && l.contains("kind=\"http\"")
            && l.contains(&format!("upstream=\"{addr}\""))
            && l.ends_with(" 1")
    })
}

#[tokio::test]
async fn sessions_stick_and_move_with_health() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let text = two_upstreams(
        &a,
        &b,
        "health_check: {interval: 100ms, timeout: 500ms, rise: 2, fall: 2}\n",
    );
    let bc = start_yaml(&text, Vec::new());
    until(|| in_rotation(&bc, a.addr()) && in_rotation(&bc, b.addr())).await;

    let sids: Vec<String> = (0..16).map(|i| format!("session{i:02}")).collect();
    for sid in &sids {
        for _ in 0..3 {
            call(&bc, sid).await;
        }
    }
    let mut on_b = Vec::new();
    for sid in &sids {
        let (x, y) = served(&a, &b, sid);
        assert!(
            (x, y) == (3, 0) || (x, y) == (0, 3),
            "{sid} went to both: {x} + {y}"
        );
        if y == 3 {
            on_b.push(sid.clone());
        }
    }
    assert!(
        !on_b.is_empty() && on_b.len() < sids.len(),
        "sessions spread over both: {on_b:?}"
    );

    // b fails its health checks: out of rotation, its sessions move to a.
    b.set_healthy(false);
    until(|| !in_rotation(&bc, b.addr())).await;
    for sid in &on_b {
        let before = served(&a, &b, sid);
        call(&bc, sid).await;
        let after = served(&a, &b, sid);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 0),
            "{sid} moved to a"
        );
    }
    // Healthy again: back in rotation after `rise` checks, and the sessions return to b.
    b.set_healthy(true);
    until(|| in_rotation(&bc, b.addr())).await;
    for sid in &on_b {
        let before = served(&a, &b, sid);
        call(&bc, sid).await;
        let after = served(&a, &b, sid);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (0, 1),
            "{sid} back on b"
        );
    }
    // The health endpoint says the same.
    let h = health(&bc).await;
    assert_eq!(h["upstreams"][b.addr().to_string()]["in_rotation"], true);
}

#[tokio::test]
async fn a_refused_connection_moves_the_request_and_ejects_the_upstream() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    // No active checks: only the connect failure takes b out.
    let text = two_upstreams(&a, &b, "health_check: {interval: 0s}\n");
    let bc = start_yaml(&text, Vec::new());
    let b_addr = b.addr();
    // Find sessions that live on b.
    let sids: Vec<String> = (0..16).map(|i| format!("sess{i:02}")).collect();
    for sid in &sids {
        call(&bc, sid).await;
    }
    let on_b: Vec<String> = sids
        .iter()
        .filter(|s| served(&a, &b, s).1 == 1)
        .cloned()
        .collect();
    assert!(!on_b.is_empty());
    b.stop();
    // The next call of a b session: refused by b, sent to a instead; b leaves the rotation.
    let before = a.count();
    assert_eq!(call(&bc, &on_b[0]).await, 200);
    assert_eq!(a.count(), before + 1);
    let h = health(&bc).await;
    assert_eq!(
        h["upstreams"][b_addr.to_string()]["in_rotation"],
        false,
        "{h}"
    );
    assert_eq!(
        h["upstreams"][a.addr().to_string()]["in_rotation"],
        true,
        "{h}"
    );
    for sid in &on_b {
        assert_eq!(call(&bc, sid).await, 200);
    }
}
