//! deploy/ checked by the tools that will run it (issue 7 item 8): the systemd unit with
//! `systemd-analyze verify`, the compose stack with `docker compose config`, and BridgeCore's
//! configuration inside that stack with `bridgecore --test`. A tool that is not installed skips
//! its test with a message on stderr, so the suite runs on machines without systemd or Docker.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; `None` when it cannot be started at all (not installed).
fn run(cmd: &str, args: &[&str], dir: &Path) -> Option<Output> {
    Command::new(cmd).args(args).current_dir(dir).output().ok()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    let installed =
        run("systemd-analyze", &["--version"], root()).is_some_and(|o| o.status.success());
    if !installed {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    // The unit names the installed binary; `verify` checks that it exists, so the copy it
    // checks points at the binary cargo built. Everything else is the unit as shipped.
    let unit = std::fs::read_to_string(root().join("deploy/systemd/bridgecore.service")).unwrap();
    assert!(unit.contains("/usr/local/bin/bridgecore"));
    let unit = unit.replace(
        "/usr/local/bin/bridgecore",
        env!("CARGO_BIN_EXE_bridgecore"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bridgecore.service");
    std::fs::write(&path, unit).unwrap();
    let out = run(
        "systemd-analyze",
        &["verify", path.to_str().unwrap()],
        dir.path(),
    )
    .unwrap();
    let said = text(&out);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    // verify exits 0 on unknown keys and bad values; it only says so.
    for bad in [
        "Unknown",
        "ignoring",
        "Invalid",
        "Failed",
        "not executable",
        "rror",
    ] {
        assert!(
            !said.contains(bad),
            "systemd-analyze verify warned:\n{said}"
        );
    }
}

/// `docker compose` (the plugin) or the older `docker-compose`, if either works here.
fn compose() -> Option<Vec<&'static str>> {
    let plugin = run("docker", &["compose", "version"], root()).is_some_and(|o| o.status.success());
    if plugin {
        return Some(vec!["docker", "compose"]);
    }
    let standalone =
        run("docker-compose", &["version"], root()).is_some_and(|o| o.status.success());
    standalone.then(|| vec!["docker-compose"])
}

/// The variables a compose file requires (`${NAME:?message}`), in order, without repeats.
fn required_variables(compose: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in compose.split("${").skip(1) {
        let Some(end) = piece.find('}') else { continue };
        if let Some((name, _)) = piece[..end].split_once(":?") {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_compose_files_required_variables_are_found() {
    // Runs without Docker: the list the compose test fills in.
    let text = std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap();
    assert_eq!(
        required_variables(&text),
        [
            "POSTGRES_PASSWORD",
            "BRIDGECORE_CACHE_SECRET",
            "GRAFANA_ADMIN_PASSWORD"
        ]
    );
    // Each is listed for the operator in deploy/.env.example.
    let example = std::fs::read_to_string(root().join("deploy/.env.example")).unwrap();
    for name in required_variables(&text) {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} is missing from deploy/.env.example"
        );
    }
}

#[test]
fn the_compose_stack_is_valid() {
    let Some(cmd) = compose() else {
        eprintln!("skipped: neither `docker compose` nor `docker-compose` is installed");
        return;
    };
    let mut args: Vec<&str> = cmd[1..].to_vec();
    args.extend(["-f", "docker-compose.yml", "config", "-q"]);
    // The stack refuses to start without its secrets (`${VAR:?...}`: POSTGRES_PASSWORD,
    // BRIDGECORE_CACHE_SECRET, GRAFANA_ADMIN_PASSWORD), which live in deploy/.env: git-ignored, so absent on a fresh
    // checkout, and deploy/.env.example leaves them empty. Dummy values stand in (the
    // environment wins over any local deploy/.env).
    let required = required_variables(
        &std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap(),
    );
    assert!(
        required.contains(&"POSTGRES_PASSWORD".to_owned()),
        "{required:?}"
    );
    let out = Command::new(cmd[0])
        .args(&args)
        .current_dir(root().join("deploy"))
        .envs(required.iter().map(|v| (v, "compose-config-check")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} config failed:\n{}",
        cmd.join(" "),
        text(&out)
    );
}

#[test]
fn the_stacks_bridgecore_configuration_is_valid() {
    // Checked with the binary itself, not Docker: the stack's YAML must pass `--test` as
    // shipped (its secrets come from the environment, with defaults where the stack has none).
    // The cache-key secret has none: the stack shares Redis, whose instances must all use the
    // same one (docker-compose.yml requires it too).
    let check = |secret: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridgecore"));
        cmd.args(["-c", "deploy/bridgecore.compose.yaml", "--test"])
            .current_dir(root());
        match secret {
            Some(s) => cmd.env("BRIDGECORE_CACHE_SECRET", s),
            None => cmd.env_remove("BRIDGECORE_CACHE_SECRET"),
        };
        cmd.output().unwrap()
    };
    let out = check(Some("compose-config-check"));
    assert!(
        out.status.success(),
        "deploy/bridgecore.compose.yaml does not validate:\n{}",
        text(&out)
    );
    for missing in [None, Some("")] {
        let out = check(missing);
        assert!(!out.status.success(), "{missing:?}: {}", text(&out));
        assert!(
            text(&out).contains("BRIDGECORE_CACHE_SECRET") || text(&out).contains("key_secret"),
            "{missing:?}: {}",
            text(&out)
        );
    }
}
