//! Several upstreams per tenant (issue 7 item 3): sessions stick to one upstream, health checks
//! take a failing one out of rotation and bring it back, a refused connection moves the request
//! (and the session) to another upstream.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bridgecore::config::Config;
use common::*;
use fake_odoo::Fault;
use serde_json::json;

fn two_upstreams(a: &FakeOdoo, b: &FakeOdoo, health: &str) -> String {
    let mut spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], a).extra(health);
    spec.upstream = format!("{}\", \"{}", a.addr(), b.addr());
    let (text, _, _) = yaml(&[spec], "");
    text
}

async fn call(bc: &bridgecore::Running, sid: &str) -> u16 {
    post_as(
        format!("http://{}/web/dataset/call_kw", bc.addr()),
        sid,
        &rpc(
            json!({"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}),
            1,
        ),
    )
    .await
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

/// A read that names no session (so no upstream is its home): `common.version`.
async fn sessionless(bc: &bridgecore::Running) -> u16 {
    client()
        .post(format!("http://{}/jsonrpc", bc.addr()))
        .json(&rpc(
            json!({"service": "common", "method": "version", "args": []}),
            1,
        ))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `workers` clients, each sending `each` sessionless reads one after the other.
async fn load(bc: &bridgecore::Running, workers: usize, each: usize) {
    let bc = std::sync::Arc::new(bc);
    let runs = (0..workers).map(|_| {
        let bc = bc.clone();
        async move {
            for _ in 0..each {
                assert_eq!(sessionless(&bc).await, 200);
            }
        }
    });
    futures_util::future::join_all(runs).await;
}

#[tokio::test]
async fn least_connections_sends_fewer_new_requests_to_a_slow_upstream() {
    let slow = FakeOdoo::start(Dataset::demo());
    let fast = FakeOdoo::start(Dataset::demo());
    slow.set_delay(Duration::from_millis(300));
    let (workers, each) = (6, 16);
    let total = workers * each;

    // Round robin (the default) gives the slow one every other request ...
    let bc = start_yaml(&two_upstreams(&slow, &fast, ""), Vec::new());
    load(&bc, workers, each).await;
    assert_eq!(slow.count() + fast.count(), total);
    assert_eq!(slow.count(), total / 2);
    bc.stop();
    slow.reset_counts();
    fast.reset_counts();

    // ... least connections only what the fast one is too busy to take first.
    let bc = start_yaml(
        &two_upstreams(&slow, &fast, "balance: least_connections\n"),
        Vec::new(),
    );
    load(&bc, workers, each).await;
    assert_eq!(slow.count() + fast.count(), total);
    assert!(
        slow.count() * 4 <= total,
        "slow upstream got {} of {total}",
        slow.count()
    );
    // Nothing stays counted once the requests are done.
    let h = health(&bc).await;
    for addr in [slow.addr(), fast.addr()] {
        assert_eq!(h["upstreams"][addr.to_string()]["in_flight"], 0, "{h}");
    }
}

#[tokio::test]
async fn a_request_the_client_abandons_stops_counting_against_its_upstream() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    a.set_delay(Duration::from_secs(60));
    b.set_delay(Duration::from_secs(60));
    let bc = start_yaml(
        &two_upstreams(&a, &b, "balance: least_connections\n"),
        Vec::new(),
    );
    let pending = tokio::spawn({
        let addr = bc.addr();
        async move {
            let _ = client()
                .post(format!("http://{addr}/jsonrpc"))
                .json(&rpc(
                    json!({"service": "common", "method": "version", "args": []}),
                    1,
                ))
                .send()
                .await;
        }
    });
    until(|| a.count() + b.count() == 1).await;
    let busy = if a.count() == 1 { a.addr() } else { b.addr() };
    assert_eq!(
        health(&bc).await["upstreams"][busy.to_string()]["in_flight"],
        1
    );
    // The client hangs up while Odoo is still working: the request ends, and so does its count.
    pending.abort();
    let _ = pending.await;
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        last = health(&bc).await;
        if last["upstreams"][busy.to_string()]["in_flight"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("still counted after the client left: {last}");
}

/// `/jsonrpc` `execute_kw` on `res.partner` as the admin: positional arguments, then keywords.
fn jsonrpc(method: &str, args: serde_json::Value, kwargs: serde_json::Value) -> serde_json::Value {
    rpc(
        json!({"service": "object", "method": "execute_kw",
               "args": ["odoo", 2, "admin", "res.partner", method, args, kwargs]}),
        9,
    )
}

async fn post(
    bc: &bridgecore::Running,
    path: &str,
    body: &serde_json::Value,
    sid: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut r = client()
        .post(format!("http://{}{path}", bc.addr()))
        .json(body);
    if let Some(sid) = sid {
        r = r.header("cookie", format!("session_id={sid}"));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_failed_read_with_its_own_credentials_goes_once_to_another_upstream_and_a_write_never() {
    let json2 = || {
        let mut d = Dataset::demo();
        d.json2 = true;
        d
    };
    let broken = FakeOdoo::start(json2());
    let good = FakeOdoo::start(json2());
    broken.set_fault(Some(Fault::Reset));
    // The broken one is listed first: the first request without a session goes to it.
    let bc = start_yaml(&two_upstreams(&broken, &good, ""), Vec::new());

    let read = jsonrpc(
        "search_read",
        json!([[]]),
        json!({"fields": ["name"], "limit": 3}),
    );
    let (status, body) = post(&bc, "/jsonrpc", &read, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(
        broken.count_calls("res.partner", "search_read"),
        1,
        "one attempt at the broken one"
    );
    assert_eq!(
        good.count_calls("res.partner", "search_read"),
        1,
        "one at the good one"
    );
    metric_appears(&bc, "bridgecore_upstream_retries_total{tenant=\"odoo\"} 1").await;

    // A write is sent once: when it lands on the broken upstream, the client gets Odoo's error
    // shape with 502 and the write is not tried elsewhere.
    let mut failed = None;
    for i in 0..8 {
        let write = jsonrpc(
            "write",
            json!([[1], {"name": format!("renamed {i}")}]),
            json!({}),
        );
        let before = (
            broken.count_calls("res.partner", "write"),
            good.count_calls("res.partner", "write"),
        );
        let (status, body) = post(&bc, "/jsonrpc", &write, None).await;
        let after = (
            broken.count_calls("res.partner", "write"),
            good.count_calls("res.partner", "write"),
        );
        assert_eq!(
            after.0 - before.0 + after.1 - before.1,
            1,
            "sent exactly once"
        );
        if after.0 > before.0 {
            failed = Some((status, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = failed.expect("a write landed on the broken upstream");
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], 502, "{body}");
    assert!(
        body["error"]["data"]["name"]
            .as_str()
            .unwrap()
            .starts_with("bridgecore."),
        "{body}"
    );

    // An upstream that answers 502/503 itself (Odoo down behind it): the read moves too.
    broken.set_fault(Some(Fault::Status(503)));
    broken.reset_counts();
    good.reset_counts();
    for i in 0..4 {
        // Different domains: no answer comes from the cache.
        let count = jsonrpc("search_count", json!([[["id", ">", i]]]), json!({}));
        let (status, body) = post(&bc, "/jsonrpc", &count, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["result"].is_i64(), "{body}");
    }
    assert!(broken.count() >= 1);
    assert_eq!(good.count_calls("res.partner", "search_count"), 4);

    // `/json/2` with an API key carries its own credentials too.
    broken.set_fault(Some(Fault::Reset));
    for i in 0..4 {
        let r = client()
            .post(format!(
                "http://{}/json/2/res.partner/search_read",
                bc.addr()
            ))
            .header("authorization", "bearer admin-api-key")
            .header("x-odoo-database", "odoo")
            .json(&json!({"domain": [["id", ">", i]], "fields": ["name"], "limit": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rows: serde_json::Value = r.json().await.unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    }
    assert!(broken.count_calls("res.partner", "search_read") >= 1);
    assert_eq!(good.count_calls("res.partner", "search_read"), 4);
}

/// Session ids whose home (by the consistent hash) is `home`: found by asking BridgeCore with
/// both upstreams healthy.
async fn sessions_living_on(
    bc: &bridgecore::Running,
    home: &FakeOdoo,
    other: &FakeOdoo,
) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..16 {
        let sid = format!("shared{i:02}");
        call(bc, &sid).await;
        if served(home, other, &sid) == (1, 0) {
            out.push(sid);
        }
    }
    assert!(!out.is_empty());
    out
}

#[tokio::test]
async fn a_cookie_session_read_is_retried_only_when_the_tenant_shares_sessions() {
    for shared in [false, true] {
        let home = FakeOdoo::start(Dataset::demo());
        let other = FakeOdoo::start(Dataset::demo());
        let extra = if shared {
            "shared_sessions: true\n"
        } else {
            ""
        };
        let bc = start_yaml(&two_upstreams(&home, &other, extra), Vec::new());
        let sids = sessions_living_on(&bc, &home, &other).await;
        for sid in &sids {
            home.add_session(sid, 2);
            other.add_session(sid, 2);
        }
        home.set_fault(Some(Fault::Reset));
        let read = rpc(
            json!({"model": "res.partner", "method": "search_count", "args": [[["id", ">", 1]]], "kwargs": {}}),
            3,
        );
        for sid in &sids {
            let before = served(&home, &other, sid);
            let (status, body) = post(&bc, "/web/dataset/call_kw", &read, Some(sid)).await;
            let after = served(&home, &other, sid);
            assert_eq!(after.0 - before.0, 1, "tried at its home first");
            if shared {
                assert_eq!(status, 200, "{body}");
                assert!(body["result"].as_i64().is_some(), "{body}");
                assert_eq!(after.1 - before.1, 1, "then once on the other upstream");
            } else {
                assert_eq!(status, 502, "{body}");
                assert_eq!(body["error"]["code"], 502, "{body}");
                assert_eq!(
                    after.1, before.1,
                    "never sent where the session does not live"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_health_ejected_upstream_stays_out_across_a_reload_and_returns_when_healthy() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let text = two_upstreams(
        &a,
        &b,
        "health_check: {interval: 100ms, timeout: 500ms, rise: 2, fall: 2}\n",
    );
    let bc = start_yaml(&text, Vec::new());
    until(|| in_rotation(&bc, a.addr()) && in_rotation(&bc, b.addr())).await;
    // b fails its checks (it still answers everything else, as a wedged Odoo might).
    b.set_healthy(false);
    until(|| !in_rotation(&bc, b.addr())).await;

    // A reload that keeps both addresses (and changes something else).
    let new_text = text.replace(
        "    database: odoo\n",
        "    database: odoo\n    max_connections: 32\n",
    );
    assert_ne!(new_text, text);
    bc.handle()
        .reload(Config::from_yaml(&new_text, "test.yaml").unwrap())
        .unwrap();
    assert_eq!(bc.handle().config().tenants[0].max_connections, 32);
    // Right away, before any new check could have taken it out again: b is still out, and
    // every request goes to a.
    let (a0, b0) = (a.count_path("/jsonrpc"), b.count_path("/jsonrpc"));
    for _ in 0..10 {
        assert_eq!(sessionless(&bc).await, 200);
    }
    assert_eq!(a.count_path("/jsonrpc") - a0, 10);
    assert_eq!(
        b.count_path("/jsonrpc"),
        b0,
        "b got requests after the reload"
    );
    let h = health(&bc).await;
    assert_eq!(
        h["upstreams"][b.addr().to_string()]["in_rotation"],
        false,
        "{h}"
    );

    // Healthy again: back after `rise` checks, and it takes its turn again.
    b.set_healthy(true);
    until(|| in_rotation(&bc, b.addr())).await;
    let (a1, b1) = (a.count_path("/jsonrpc"), b.count_path("/jsonrpc"));
    for _ in 0..10 {
        assert_eq!(sessionless(&bc).await, 200);
    }
    assert_eq!(
        (a.count_path("/jsonrpc") - a1, b.count_path("/jsonrpc") - b1),
        (5, 5)
    );
}

/// A TCP relay to `target` on a fixed address that can be switched off (listener closed, open
/// connections cut) and on again: an upstream that dies and comes back on the same port.
struct Relay {
    addr: SocketAddr,
    target: SocketAddr,
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let mut relay = Relay {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            target,
            running: None,
        };
        relay.on().await;
        relay
    }

    async fn on(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let target = self.target;
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        conns.spawn(async move {
                            if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        });
                    }
                }
            }
            drop(listener);
            conns.shutdown().await;
        });
        self.running = Some((stop, task));
    }

    /// Returns once the port refuses connections and no relayed connection is left.
    async fn off(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await.unwrap();
        }
    }
}

/// Whether the admin listener says `addr` is in rotation.
async fn rotation(bc: &bridgecore::Running, addr: SocketAddr) -> bool {
    let h = health(bc).await;
    h["upstreams"][addr.to_string()]["in_rotation"]
        .as_bool()
        .unwrap_or_else(|| panic!("{addr} not in {h}"))
}

#[tokio::test]
async fn a_passively_ejected_upstream_comes_back_by_cooldown_or_health_check() {
    let cooldown = Duration::from_secs(3);
    for checks in [
        // No active checks: only the cooldown can bring it back.
        "health_check: {interval: 0s, cooldown: 3s}\n",
        // Active checks that never eject by themselves here (`fall`): the failed connection
        // does, and `rise` good checks bring it back.
        "health_check: {interval: 100ms, timeout: 500ms, rise: 2, fall: 1000}\n",
    ] {
        let with_checks = !checks.contains("interval: 0s");
        let a = FakeOdoo::start(Dataset::demo());
        let b = FakeOdoo::start(Dataset::demo());
        let mut relay = Relay::start(b.addr()).await;
        let mut spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &a).extra(checks);
        spec.upstream = format!("{}\", \"{}", a.addr(), relay.addr);
        let (text, _, _) = yaml(&[spec], "");
        let bc = start_yaml(&text, Vec::new());
        for _ in 0..4 {
            assert_eq!(sessionless(&bc).await, 200);
        }
        assert_eq!(b.count_path("/jsonrpc"), 2, "{checks}");

        // b's port goes dead: the first request sent there is refused and moved to a, and b
        // leaves the rotation.
        relay.off().await;
        let mut tries = 0;
        while rotation(&bc, relay.addr).await {
            assert_eq!(sessionless(&bc).await, 200);
            tries += 1;
            assert!(tries < 10, "{checks}: never ejected");
        }
        let ejected = Instant::now();

        // A reload keeps it out.
        bc.handle()
            .reload(Config::from_yaml(&text, "test.yaml").unwrap())
            .unwrap();
        assert!(
            !rotation(&bc, relay.addr).await,
            "{checks}: back after the reload"
        );
        for _ in 0..4 {
            assert_eq!(sessionless(&bc).await, 200);
        }
        assert!(!rotation(&bc, relay.addr).await, "{checks}");
        if !with_checks {
            assert!(
                ejected.elapsed() < cooldown,
                "too slow to tell the cooldown apart"
            );
        }

        // b's port comes back: requests reach b again, by the cooldown or by the checks.
        relay.on().await;
        let before = b.count_path("/jsonrpc");
        let deadline = Instant::now() + Duration::from_secs(15);
        while b.count_path("/jsonrpc") == before {
            assert!(Instant::now() < deadline, "{checks}: b never came back");
            assert_eq!(sessionless(&bc).await, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !with_checks {
            // Not before the cooldown (measured from a little after the ejection).
            assert!(
                ejected.elapsed() >= cooldown - Duration::from_millis(500),
                "back after {:?}",
                ejected.elapsed()
            );
        }
        assert!(rotation(&bc, relay.addr).await, "{checks}");
        relay.off().await;
    }
}

/// A listener that takes connections (the kernel's backlog does) and never answers: each
/// health check of it lasts its whole timeout.
fn hanging() -> (std::net::TcpListener, std::net::SocketAddr) {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hung.local_addr().unwrap();
    (hung, addr)
}

/// Starts BridgeCore with `tenants` and counts the health checks that reach `odoo` in one
/// second, a moment after the start (the first round has begun, and any check of a hanging
/// upstream hangs by then).
async fn health_checks_in_a_second(odoo: &FakeOdoo, tenants: &[TenantSpec]) -> usize {
    let (text, _, _) = yaml(tenants, "");
    let _bc = start_yaml(&text, Vec::new());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = odoo.count_path("/web/health");
    tokio::time::sleep(Duration::from_secs(1)).await;
    odoo.count_path("/web/health") - before
}

#[tokio::test]
async fn a_tenant_whose_upstream_hangs_does_not_hold_up_the_others_health_checks() {
    let a = FakeOdoo::start(Dataset::demo());
    let (_hung, hung_addr) = hanging();
    let mut stuck = TenantSpec::for_odoo("stuck", &["stuck.example.com"], &a)
        .extra("health_check: {interval: 100ms, timeout: 20s}\n");
    stuck.upstream = hung_addr.to_string();
    stuck.ws_upstream = hung_addr.to_string();
    let odoo = TenantSpec::for_odoo("odoo", &["erp.example.com"], &a)
        .extra("health_check: {interval: 100ms, timeout: 500ms}\n");
    let checks = health_checks_in_a_second(&a, &[stuck, odoo]).await;
    // Every 100 ms, its upstream and its bus upstream: about 20 in the second.
    assert!(
        checks >= 8,
        "{checks} health checks of the other tenant in 1 s while another tenant's checks hang"
    );
}

#[tokio::test]
async fn a_hanging_upstream_does_not_hold_up_the_checks_of_its_tenants_bus_upstream() {
    let a = FakeOdoo::start(Dataset::demo());
    let (_hung, hung_addr) = hanging();
    let mut spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &a)
        .extra("health_check: {interval: 100ms, timeout: 20s}\n");
    spec.upstream = hung_addr.to_string();
    let checks = health_checks_in_a_second(&a, &[spec]).await;
    // The bus upstream every 100 ms: about 10 in the second.
    assert!(
        checks >= 4,
        "{checks} health checks of the bus upstream in 1 s while the HTTP upstream's check hangs"
    );
}

#[tokio::test]
async fn a_hanging_upstream_does_not_hold_up_the_checks_of_its_sibling() {
    let a = FakeOdoo::start(Dataset::demo());
    let (_hung, hung_addr) = hanging();
    let mut spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &a)
        .extra("health_check: {interval: 100ms, timeout: 20s}\n");
    spec.upstream = format!("{hung_addr}\", \"{}", a.addr());
    spec.ws_upstream = hung_addr.to_string();
    let checks = health_checks_in_a_second(&a, &[spec]).await;
    assert!(
        checks >= 4,
        "{checks} health checks of the healthy upstream in 1 s while its sibling's check hangs"
    );
}
