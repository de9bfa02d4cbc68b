//! `bridgecore -c FILE --test`: exit 0 for a valid file; exit 1 and one `FILE:LINE:COL: message`
//! line per problem otherwise (design.md §4).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn bridgecore() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridgecore"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BRIDGECORE_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

fn check(path: &Path) -> Output {
    bridgecore()
        .arg("-c")
        .arg(path)
        .arg("--test")
        .output()
        .unwrap()
}

fn temp_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.flush().unwrap();
    file
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of stderr that look like `FILE:LINE:COL: message` for `file`.
fn problem_lines(out: &Output, file: &Path) -> Vec<String> {
    let prefix = format!("{}:", file.display());
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].to_owned())
        .collect()
}

#[test]
fn the_reference_file_is_valid() {
    let out = bridgecore()
        .args(["-c", "conf/bridgecore.yaml", "--test"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("conf/bridgecore.yaml: ok"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_valid_file_exits_0() {
    let file = temp_config("tenants:\n  odoo:\n    upstream: [\"odoo:8069\"]\n");
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("{}: ok", file.path().display())));
}

#[test]
fn an_invalid_file_exits_1_with_one_line_per_problem() {
    let file = temp_config(
        "server:\n  threads: 0\n  listn: [\"0.0.0.0:8080\"]\ntenants:\n  odoo:\n    upstream: [\"odoo:8069\"]\n    timeout: 5x\n",
    );
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let lines = problem_lines(&out, file.path());
    assert_eq!(lines.len(), 3, "stderr: {}", text(&out.stderr));
    assert!(
        lines[0].starts_with("2:12: `server.threads`: must be at least 1"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("3:3: unknown key `listn` in `server`"),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("7:14: `tenants.odoo.timeout`: invalid duration `5x`"),
        "{lines:#?}"
    );
    assert!(!text(&out.stdout).contains(": ok"));
}

#[test]
fn a_syntax_error_exits_1_with_its_position() {
    let file = temp_config("server:\n\tthreads: 2\n");
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(1));
    let lines = problem_lines(&out, file.path());
    assert_eq!(lines.len(), 1, "stderr: {}", text(&out.stderr));
    assert!(lines[0].starts_with("2:"), "{lines:#?}");
    assert!(lines[0].contains("YAML syntax error"), "{lines:#?}");
}

#[test]
fn a_missing_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yaml");
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let lines = problem_lines(&out, &path);
    assert_eq!(lines.len(), 1, "stderr: {}", text(&out.stderr));
    assert!(
        lines[0].starts_with("1:1: cannot read the configuration file"),
        "{lines:#?}"
    );
}

#[test]
fn environment_variables_fill_values() {
    let file = temp_config(
        "tenants:\n  odoo:\n    upstream: [\"${BC_TEST_UPSTREAM}\"]\n    max_connections: ${BC_TEST_MAX:-8}\n",
    );
    let out = bridgecore()
        .arg("-c")
        .arg(file.path())
        .arg("--test")
        .env("BC_TEST_UPSTREAM", "odoo:8069")
        .env_remove("BC_TEST_MAX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));

    let out = bridgecore()
        .arg("-c")
        .arg(file.path())
        .arg("--test")
        .env_remove("BC_TEST_UPSTREAM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines = problem_lines(&out, file.path());
    assert_eq!(lines.len(), 1, "stderr: {}", text(&out.stderr));
    assert!(
        lines[0].starts_with("3:16: environment variable `BC_TEST_UPSTREAM` is not set"),
        "{lines:#?}"
    );
}

#[test]
fn the_config_path_can_come_from_bridgecore_config() {
    let file = temp_config("tenants:\n  odoo:\n    upstream: [\"odoo:8069\"]\n");
    let out = bridgecore()
        .arg("--test")
        .env("BRIDGECORE_CONFIG", file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn a_key_file_that_does_not_parse_fails_the_check() {
    let mut key = tempfile::Builder::new().suffix(".pem").tempfile().unwrap();
    key.write_all(b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
        .unwrap();
    key.flush().unwrap();
    let file = temp_config(&format!(
        "auth:\n  jwt: {{algorithm: RS256, public_key_file: \"{}\"}}\ntenants:\n  a: {{upstream: [\"127.0.0.1:8069\"]}}\n",
        key.path().display()
    ));
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("auth.jwt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tls_files_that_are_not_pem_fail_the_check_at_their_values() {
    // What the systemd unit's ExecStartPre/ExecReload would meet: a certificate and a key
    // that exist but hold something else (a truncated copy, the wrong file).
    let dir = tempfile::tempdir().unwrap();
    let garbage_cert = dir.path().join("fullchain.pem");
    let garbage_key = dir.path().join("privkey.pem");
    std::fs::write(&garbage_cert, "<html>404 Not Found</html>\n").unwrap();
    std::fs::write(
        &garbage_key,
        "-----BEGIN PRIVATE KEY-----\nthis is not base64 !!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let conf = |cert: &Path, key: &Path| {
        temp_config(&format!(
            "server:\n  tls:\n    - listen: \"127.0.0.1:8443\"\n      cert: {}\n      key: {}\ntenants:\n  odoo:\n    upstream: [\"odoo:8069\"]\n",
            cert.display(),
            key.display()
        ))
    };
    let file = conf(&garbage_cert, &garbage_key);
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let lines = problem_lines(&out, file.path());
    assert_eq!(lines.len(), 2, "stderr: {}", text(&out.stderr));
    assert!(
        lines[0].starts_with("4:13: `server.tls[0].cert`: ")
            && lines[0].contains(&garbage_cert.display().to_string())
            && lines[0].contains("holds no PEM certificate"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("5:12: `server.tls[0].key`: ")
            && lines[1].contains(&garbage_key.display().to_string())
            && lines[1].contains("not valid PEM"),
        "{lines:#?}"
    );

    // The real thing at the same place passes.
    let ck = rcgen::generate_simple_self_signed(vec!["erp.example.com".to_owned()]).unwrap();
    let cert = dir.path().join("good.crt");
    let key = dir.path().join("good.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let file = conf(&cert, &key);
    let out = check(file.path());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}
