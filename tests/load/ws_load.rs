//! Issue 6 item 8: BridgeCore's live-updates WebSocket under load. Run it with
//! `tests/load/ws.sh` (which builds it and raises the file limit); see tests/load/README.md.
//!
//! 1. A fake Odoo (in this process) with `USERS` extra users, and the `bridgecore` binary
//!    (`BRIDGECORE_BIN`) as its own process in front of it, so its memory is measured alone.
//! 2. `CONNS` WebSocket clients, spread over the users, each authenticated by header and
//!    subscribed to `res.partner` (which nothing writes: they stay idle). BridgeCore's resident
//!    memory (`VmRSS`) is read before and after.
//! 3. `FANOUT` of them (again spread over the users) also subscribe to `res.country`, without
//!    fields; `WRITES` writes of one country through `/api/v1` each fan out to all of them,
//!    and every arrival is timed from the moment the write was sent.
//!
//! Knobs: `CONNS`, `FANOUT`, `USERS`, `WRITES`, `THREADS` (BridgeCore's `server.threads`, 2),
//! `BARE=1` (sockets that never authenticate), `KEEP=1` (keep the work directory).
//!
//! Prints the figures and `PASS`/`FAIL` against the targets (RSS < 200 MiB with 10 000 idle
//! subscribed sockets; p99 delivery < 50 ms to 1 000 subscribers); exits non-zero only when
//! something could not be set up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_odoo::{Dataset, FakeOdoo, User};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "a-load-test-secret-of-more-than-thirty-two-bytes";
const TENANT: &str = "load";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let conns = env("CONNS", 10_000);
    let fanout = env("FANOUT", 1_000).min(conns);
    let users = env("USERS", 10).max(1);
    let writes = env("WRITES", 20);
    // BARE=1: sockets that never authenticate (what the upgraded connection alone costs).
    let bare = env("BARE", 0) == 1;
    let bin = std::env::var("BRIDGECORE_BIN").unwrap_or_else(|_| "target/debug/bridgecore".into());
    let work = std::env::temp_dir().join(format!("bc-ws-load-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();

    // The fake Odoo with the load users (internal users: they may read partners and countries).
    let mut data = Dataset::demo();
    for u in 0..users {
        let login = format!("load{u}");
        data.add_user(User::new(
            100 + u as i64,
            &login,
            &login,
            &format!("Load {u}"),
        ));
    }
    let odoo = FakeOdoo::start(data);

    let port = free_port();
    let admin = free_port();
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{port}"]
  admin_listen: "127.0.0.1:{admin}"
  threads: {threads}
  access_log: false
  grace_period: 0s
  graceful_shutdown_timeout: 0s
  pid_file: {work}/bc.pid
  upgrade_sock: {work}/bc.sock
rate_limits:
  exempt: ["0.0.0.0/0", "::/0"]
auth:
  jwt: {{secret: "{SECRET}", access_ttl: 1h}}
cache: {{enabled: false}}
websocket:
  auth_timeout: {auth_timeout}
  max_connections: 100000
  max_connections_per_user: 100000
tenants:
  {TENANT}:
    upstream: ["{odoo}"]
    database: odoo
    service_login: admin
    service_password: admin
    max_connections: 256
    health_check: {{interval: 0s}}
"#,
        work = work.display(),
        odoo = odoo.addr(),
        auth_timeout = if bare { "1h" } else { "10s" },
        threads = env("THREADS", 2),
    );
    let conf_path = work.join("bridgecore.yaml");
    std::fs::write(&conf_path, config).unwrap();
    let log = std::fs::File::create(work.join("bridgecore.log")).unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&conf_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let server = Server { child };
    let pid = server.child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("http://127.0.0.1:{admin}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bridgecore did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss_start, _) = rss(pid);

    // One token per user.
    let mut tokens = Vec::new();
    for u in 0..users {
        let login = format!("load{u}");
        let answer: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"system_id": TENANT, "login": login, "password": login}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(
            answer["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("login: {answer}"))
                .to_owned(),
        );
    }
    let admin_token: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"system_id": TENANT, "login": "admin", "password": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_token = admin_token["access_token"].as_str().unwrap().to_owned();

    // The sockets: each runs a task that keeps reading (answering pings) and reports the
    // arrival of every `res.country` update.
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel::<Instant>();
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let opened = Instant::now();
    let mut handles = Vec::with_capacity(conns);
    for i in 0..conns {
        let token = tokens[i % users].clone();
        let url = format!("ws://127.0.0.1:{port}/api/v1/ws");
        let tx = arrivals_tx.clone();
        let (ready, failed, gate) = (ready.clone(), failed.clone(), gate.clone());
        let fan = i < fanout;
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let mut req = url.into_client_request().unwrap();
            if !bare {
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let Ok((mut ws, _)) =
                tokio_tungstenite::connect_async_with_config(req, Some(config), false).await
            else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if bare {
                ready.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            let mut models = vec!["res.partner"];
            if fan {
                models.push("res.country");
            }
            let mut pending = models.len();
            for m in &models {
                let msg = json!({"type": "subscribe_model", "system_id": TENANT, "model": m});
                if ws.send(Message::text(msg.to_string())).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("subscribed") => {
                        pending -= 1;
                        if pending == 0 {
                            ready.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    Some("authenticated") => {}
                    _ => {
                        eprintln!("socket {i}: {text}");
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            drop(permit);
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(text) = msg {
                    if text.contains("\"res.country\"") {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        }));
    }
    drop(arrivals_tx);
    loop {
        let (r, f) = (
            ready.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        if r + f >= conns {
            break;
        }
        if opened.elapsed() > Duration::from_secs(600) {
            panic!("only {r} of {conns} sockets subscribed after 10 minutes ({f} failed)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let setup_time = opened.elapsed();
    let failures = failed.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_idle, hwm_idle) = rss(pid);
    let stats: Value = http
        .get(format!("http://127.0.0.1:{admin}/api/v1/ws/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Fan-out: one write at a time, each timed until every subscriber has it.
    let mut from_send = Vec::new();
    let mut from_answer = Vec::new();
    let mut missing = 0usize;
    for w in 0..writes {
        let sent = Instant::now();
        let resp = http
            .post(format!("{base}/api/v1/systems/{TENANT}/odoo/write"))
            .bearer_auth(&admin_token)
            .json(&json!({"model": "res.country", "ids": [1], "values": {"name": format!("Belgium {w}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let answered = Instant::now();
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got < fanout {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some(at)) => {
                    got += 1;
                    from_send.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    from_answer.push(at.saturating_duration_since(answered).as_secs_f64() * 1000.0);
                }
                _ => break,
            }
        }
        missing += fanout - got;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (rss_end, hwm_end) = rss(pid);
    // BridgeCore's own view: from the change reaching its dispatcher to the messages queued.
    let metrics = http
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap_or_default();
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("tenant=\"load\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let server_mean_ms = metric("bridgecore_ws_delivery_seconds_sum")
        / metric("bridgecore_ws_delivery_seconds_count")
        * 1000.0;
    from_send.sort_by(f64::total_cmp);
    from_answer.sort_by(f64::total_cmp);

    let mib = |kib: u64| kib as f64 / 1024.0;
    let per_conn = (rss_idle.saturating_sub(rss_start)) as f64 * 1024.0 / conns.max(1) as f64;
    let p99 = percentile(&from_send, 0.99);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bridgecore binary:            {bin}");
    let _ = writeln!(out, "sockets:                      {conns} ({users} users), {failures} failed, set up in {:.1} s", setup_time.as_secs_f64());
    let _ = writeln!(
        out,
        "subscriptions (stats):        {}",
        stats["subscriptions"]
    );
    let _ = writeln!(
        out,
        "RSS at start:                 {:.1} MiB",
        mib(rss_start)
    );
    let _ = writeln!(
        out,
        "RSS with the idle sockets:    {:.1} MiB (peak {:.1} MiB), {:.1} KiB per socket",
        mib(rss_idle),
        mib(hwm_idle),
        per_conn / 1024.0
    );
    let _ = writeln!(
        out,
        "RSS after the fan-out:        {:.1} MiB (peak {:.1} MiB)",
        mib(rss_end),
        mib(hwm_end)
    );
    let _ = writeln!(out, "fan-out:                      {writes} writes x {fanout} subscribers, {missing} deliveries missing");
    let _ = writeln!(
        out,
        "delivery from the write sent: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&from_send, 0.5),
        percentile(&from_send, 0.9),
        p99,
        from_send.last().copied().unwrap_or(f64::NAN)
    );
    let _ = writeln!(
        out,
        "delivery from its answer:     p50 {:.1} ms, p99 {:.1} ms",
        percentile(&from_answer, 0.5),
        percentile(&from_answer, 0.99)
    );
    let _ = writeln!(
        out,
        "inside bridgecore:            {server_mean_ms:.1} ms mean from the change to {fanout} messages queued (access checks included)"
    );
    let rss_ok = mib(rss_idle) < 200.0 && failures == 0;
    let _ = writeln!(
        out,
        "{} RSS < 200 MiB with {conns} idle subscribed sockets",
        if rss_ok { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        out,
        "{} p99 delivery < 50 ms to {fanout} subscribers",
        if p99 < 50.0 && missing == 0 {
            "PASS"
        } else {
            "FAIL"
        }
    );
    drop(out);
    for h in handles {
        h.abort();
    }
    drop(server);
    if env("KEEP", 0) == 1 {
        println!("kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}
