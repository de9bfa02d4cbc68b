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

#[test]
fn the_compose_stack_is_valid() {
    let Some(cmd) = compose() else {
        eprintln!("skipped: neither `docker compose` nor `docker-compose` is installed");
        return;
    };
    let mut args: Vec<&str> = cmd[1..].to_vec();
    args.extend(["-f", "docker-compose.yml", "config", "-q"]);
    let out = run(cmd[0], &args, &root().join("deploy")).unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_bridgecore"))
        .args(["-c", "deploy/bridgecore.compose.yaml", "--test"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy/bridgecore.compose.yaml does not validate:\n{}",
        text(&out)
    );
}
