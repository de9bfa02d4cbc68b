//! Graceful binary upgrade (issue 7 item 2): a second `bridgecore --upgrade` takes the running
//! one's listeners over through the upgrade socket when the first gets SIGQUIT, and no request
//! fails on the way. Runs the real binary, as ops do.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(file: &std::path::Path, upgrade: bool) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridgecore"));
    cmd.arg("-c").arg(file);
    if upgrade {
        cmd.arg("--upgrade");
    }
    Proc(
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A client that opens a new connection for every request (as many clients behind a balancer
/// do), so each request meets whichever process accepts it.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A one-tenant configuration in `dir` with its own upgrade socket and pid file, and a short
/// drain (`graceful_shutdown_timeout`), so that a stopped process is gone soon: the file, the
/// main port and the admin port.
fn config(dir: &std::path::Path, odoo: &FakeOdoo, drain: &str) -> (std::path::PathBuf, u16, u16) {
    let sock = dir.join("upgrade.sock");
    let (text, port, admin) = yaml(
        &[TenantSpec::for_odoo("odoo", &["erp.example.com"], odoo)],
        "",
    );
    let text = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("upgrade_sock:") {
                format!("  upgrade_sock: {}", sock.display())
            } else if t.starts_with("pid_file:") {
                format!("  pid_file: {}", dir.join("bc.pid").display())
            } else if t.starts_with("grace_period:") {
                "  grace_period: 1s".to_owned()
            } else if t.starts_with("graceful_shutdown_timeout:") {
                format!("  graceful_shutdown_timeout: {drain}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let file = dir.join("bridgecore.yaml");
    std::fs::write(&file, &text).unwrap();
    (file, port, admin)
}

/// Waits until the process answers on `port`.
async fn until_up(port: u16) {
    let c = fresh_client();
    let url = format!("http://127.0.0.1:{port}/web/health");
    for _ in 0..400 {
        if c.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("bridgecore did not start");
}

#[tokio::test]
async fn a_graceful_upgrade_hands_the_listeners_over_without_failing_a_request() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("upgrade.sock");
    let (file, port, admin) = config(dir.path(), &odoo, "1s");

    let url = format!("http://127.0.0.1:{port}/web/health");
    let mut old = spawn(&file, false);
    let old_pid = old.0.id();
    let c = fresh_client();
    until_up(port).await;

    // A client keeps asking throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Result<u16, String>>>> = Arc::default();
    let load = tokio::spawn({
        let (stop, outcomes, url) = (stop.clone(), outcomes.clone(), url.clone());
        async move {
            let c = fresh_client();
            while !stop.load(Ordering::Relaxed) {
                let r = c.get(&url).send().await;
                let outcome = match r {
                    Ok(r) => Ok(r.status().as_u16()),
                    Err(e) => Err(format!("{e:?}")),
                };
                outcomes.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    wait_until(
        "requests before the upgrade",
        Duration::from_secs(10),
        || outcomes.lock().unwrap().len() >= 10,
    )
    .await;

    // The new binary waits on the upgrade socket; SIGQUIT makes the old one send its
    // listeners there, then drain and exit.
    let mut new = spawn(&file, true);
    wait_until("the upgrade socket", Duration::from_secs(10), || {
        sock.exists()
    })
    .await;
    signal(old_pid, "-QUIT");
    let mut old_exit = None;
    wait_until("the old process to exit", Duration::from_secs(30), || {
        old_exit = old.0.try_wait().unwrap();
        old_exit.is_some()
    })
    .await;
    assert!(
        new.0.try_wait().unwrap().is_none(),
        "the new process must keep running"
    );

    // After the old one is gone, the new one answers on the same ports.
    let served_before = outcomes.lock().unwrap().len();
    wait_until(
        "requests after the handover",
        Duration::from_secs(10),
        || outcomes.lock().unwrap().len() >= served_before + 20,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let admin_metrics = c
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_metrics.status(), 200, "the admin listener moved too");

    let outcomes = outcomes.lock().unwrap().clone();
    let failed: Vec<_> = outcomes.iter().filter(|o| *o != &Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the upgrade: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    signal(new.0.id(), "-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while new.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_connection_accepted_before_a_graceful_shutdown_gets_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let odoo = FakeOdoo::start(Dataset::demo());
    let dir = tempfile::tempdir().unwrap();
    let (file, port, _) = config(dir.path(), &odoo, "5s");
    let bc = spawn(&file, false);
    until_up(port).await;
    // Connected (the process accepted it), but the request comes late: after SIGTERM, once the
    // process has stopped accepting and dropped its idle keep-alive connections, within the
    // grace period (1 s) in which it finishes what it has.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(bc.0.id(), "-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    conn.write_all(
        format!("GET /web/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
