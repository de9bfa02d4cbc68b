#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bridgecore_filters::units::Rate;

use super::validate::load_report;
use super::yaml::{self, Kind, Node};
use super::*;

const FILE: &str = "t.yaml";

/// A valid file's tenant part, for tests about other sections.
const TENANT: &str = "tenants:\n  odoo:\n    upstream: [\"127.0.0.1:8069\"]\n";

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_yaml_with_env(text, FILE, &no_env)
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_yaml_with_env(text, FILE, &move |name| vars.get(name).cloned())
}

fn ok(text: &str) -> Config {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The errors as `LINE:COL: message` (the file name is checked once, in `display_format`).
fn errors(text: &str) -> Vec<String> {
    errors_of(load(text))
}

fn errors_of(result: Result<Config, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(_) => panic!("expected errors, the config is valid"),
        Err(ConfigErrors(list)) => list
            .into_iter()
            .map(|e| {
                assert_eq!(e.file, FILE);
                format!("{}:{}: {}", e.line, e.col, e.message)
            })
            .collect(),
    }
}

/// Asserts there is exactly one error, at `line:col`, containing `needle`.
fn assert_one(text: &str, line: usize, col: usize, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let prefix = format!("{line}:{col}: ");
    assert!(
        errs[0].starts_with(&prefix) && errs[0].contains(needle),
        "expected `{prefix}...{needle}...`, got `{}`",
        errs[0]
    );
}

fn reference_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/bridgecore.yaml")
}

// ---- the reference file ----

/// Everything in which `text` (a version of the reference file) has drifted from the code:
/// values that differ from the `Default` impls, keys the schema knows that the file does not
/// show. Empty when in sync.
fn drift(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let cfg = match Config::from_yaml_with_env(text, "conf/bridgecore.yaml", &no_env) {
        Ok(c) => c,
        Err(e) => return vec![format!("does not load with no variables set:\n{e}")],
    };
    let mut differs = |name: &str, same: bool| {
        if !same {
            out.push(format!("`{name}:` differs from the defaults in code"));
        }
    };
    differs("server", cfg.server == ServerConfig::default());
    differs("redis", cfg.redis.is_none());
    differs("cache", cfg.cache == CacheConfig::default());
    differs("rate_limits", cfg.rate_limits == RateLimitConfig::default());
    differs("auth", cfg.auth == AuthConfig::default());
    differs("optimizer", cfg.optimizer == OptimizerConfig::default());
    differs(
        "compression",
        cfg.compression == CompressionConfig::default(),
    );
    differs("websocket", cfg.websocket == WebsocketConfig::default());
    // The one tenant: what a fresh machine needs, everything else at the tenant defaults.
    differs(
        "tenants",
        cfg.tenants
            == vec![TenantConfig {
                name: "odoo".to_owned(),
                hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
                upstream: vec!["127.0.0.1:8069".to_owned()],
                websocket_upstream: vec!["127.0.0.1:8072".to_owned()],
                ..TenantConfig::default()
            }],
    );

    let Some(root) = yaml::parse(text).root else {
        return out;
    };
    // Every section but the optional `redis:` is written out.
    for section in schema::SECTIONS {
        if *section != "redis" && root.entry(section).is_none() {
            out.push(format!("section `{section}:` is missing"));
        }
    }
    // Every struct the file fills has all its keys written out (a tenant's `rate_limits: {}` is
    // filled, but its keys can only be shown as a commented example: setting them would change
    // the tenant's limits).
    let example_only = ["tenants.odoo.rate_limits", "tenants.odoo.optimizer"];
    for s in &load_report(text, &no_env).structs {
        if example_only.contains(&s.path.as_str()) {
            continue;
        }
        for field in s.known {
            if !s.present.iter().any(|p| p == field) {
                out.push(format!("`{}.{field}` is missing", s.path));
            }
        }
    }
    // The structs it cannot show without changing behaviour (the optional redis section, a
    // tenant's rate-limit overrides, a model entry) have every key in a commented example.
    let extras = "server: {tls: [{listen: \"127.0.0.1:1\", cert: c, key: k}]}\n\
                  redis: {url: \"redis://x\"}\n\
                  tenants: {t: {upstream: [\"a:1\"], rate_limits: {}, optimizer: {}}}\n\
                  cache: {models: {m: {}}}\n\
                  optimizer: {models: {m: {}}}\n";
    let mut checked = 0;
    for s in &load_report(extras, &no_env).structs {
        if [
            "redis",
            "tenants.t.rate_limits",
            "cache.models.m",
            "server.tls[0]",
            "tenants.t.optimizer",
            "optimizer.models.m",
        ]
        .contains(&s.path.as_str())
        {
            checked += 1;
            for field in s.known {
                let documented = text.lines().any(|line| {
                    let line = line.trim_start();
                    line.starts_with('#')
                        && line[1..].trim_start().starts_with(&format!("{field}:"))
                });
                if !documented {
                    out.push(format!("`{}.{field}` has no commented example", s.path));
                }
            }
        }
    }
    assert_eq!(
        checked,
        6,
        "struct paths: {:?}",
        load_report(extras, &no_env)
            .structs
            .iter()
            .map(|s| s.path.clone())
            .collect::<Vec<_>>()
    );
    // Maps merged over defaults list every default entry.
    let map_keys = |section: &str, key: &str| -> Vec<String> {
        root.entry(section)
            .and_then(|s| s.value.entry(key))
            .map(|m| match &m.value.kind {
                Kind::Map(entries) => entries.iter().map(|e| e.key.clone()).collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    };
    let ttl = map_keys("cache", "ttl");
    for method in CacheTtl::default()
        .methods
        .keys()
        .map(String::as_str)
        .chain(["default"])
    {
        if !ttl.iter().any(|k| k == method) {
            out.push(format!("`cache.ttl.{method}` is missing"));
        }
    }
    let caps = map_keys("optimizer", "max_limits");
    for method in OptimizerConfig::default().max_limits.keys() {
        if !caps.contains(method) {
            out.push(format!("`optimizer.max_limits.{method}` is missing"));
        }
    }
    out
}

fn reference_text() -> String {
    std::fs::read_to_string(reference_path()).unwrap()
}

#[test]
fn reference_file_matches_the_code() {
    let drift = drift(&reference_text());
    assert!(
        drift.is_empty(),
        "conf/bridgecore.yaml has drifted from the code:\n{}",
        drift.join("\n")
    );
}

#[test]
fn reference_file_warns_about_both_empty_secrets() {
    let cfg =
        Config::from_yaml_with_env(&reference_text(), "conf/bridgecore.yaml", &no_env).unwrap();
    assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.starts_with("auth.jwt.secret is empty")));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.starts_with("cache.key_secret is empty")));
}

#[test]
fn the_drift_check_catches_drift() {
    let text = reference_text();
    assert!(text.contains("\n  threads: 2\n"));
    let changed = drift(&text.replace("\n  threads: 2\n", "\n  threads: 3\n"));
    assert_eq!(changed, ["`server:` differs from the defaults in code"]);
    let removed = drift(&text.replace("\n  threads: 2\n", "\n"));
    assert_eq!(removed, ["`server.threads` is missing"]);
    let removed = drift(&text.replace("    search_read: 300s\n", ""));
    assert_eq!(removed, ["`cache.ttl.search_read` is missing"]);
    let removed = drift(&text.replace("#   url:", "#   URL:"));
    assert_eq!(removed, ["`redis.url` has no commented example"]);
}

#[test]
fn every_conf_file_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Config::from_yaml_with_env(&text, &path.display().to_string(), &no_env)
            {
                panic!("{e}");
            }
            count += 1;
        }
    }
    assert!(count >= 1);
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one_at_1_1() {
    let cfg = Config::load(&reference_path()).unwrap();
    assert_eq!(cfg.tenants.len(), 1);
    let err = Config::load(Path::new("/nonexistent/bridgecore.yaml")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/bridgecore.yaml:1:1: cannot read the configuration file"),
        "{err}"
    );
}

// ---- defaults and values ----

#[test]
fn a_minimal_file_gets_every_default() {
    let cfg = ok(TENANT);
    assert_eq!(cfg.server, ServerConfig::default());
    assert_eq!(cfg.cache, CacheConfig::default());
    assert_eq!(cfg.rate_limits, RateLimitConfig::default());
    let t = cfg.tenant("odoo").unwrap();
    assert_eq!(t.websocket_upstream, vec!["127.0.0.1:8069".to_owned()]);
    assert_eq!(t.timeout, Duration::from_secs(720));
    assert_eq!(t.connect_timeout, Duration::from_secs(5));
    assert_eq!(t.max_connections, 64);
    assert!(cfg.tenant("nope").is_none());
}

#[test]
fn every_section_parses_its_values() {
    let cfg = ok(r#"
server:
  listen: ["0.0.0.0:80", "[::]:80"]
  admin_listen: ~
  threads: 8
  max_body_size: 10MB
  trusted_proxies: ["10.0.0.0/8", 192.168.1.7, "fd00::/8"]
  grace_period: 1m
  graceful_shutdown_timeout: 0s
  daemon: true
  error_log: /var/log/bridgecore.log
  access_log: false
redis:
  url: "redis://redis:6379/0"
tenants:
  Prod-1.eu:
    hosts: ["ERP.example.com:8443", "[::1]:80", erp2.example.com]
    upstream: ["odoo:8069", "10.0.0.2:8069"]
    database: prod
    connect_timeout: 500ms
    timeout: 1h
    max_connections: 16
    service_login: bridge
    service_password: "p:w#d"
    allow_database_manager: true
    rate_limits: {read: 300/minute, delete: 1/s}
cache:
  enabled: true
  backend: redis
  max_memory: 1GiB
  key_secret: k
  ttl: {default: 60s, fields_get: ~, read: 10s}
  models:
    res.country: {ttl: 1d, shared: true}
    product.product: {}
rate_limits: {auth: 5/m, exempt: [127.0.0.1]}
auth:
  jwt: {algorithm: HS512, secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", access_ttl: 5m, refresh_ttl: 1d}
optimizer:
  max_limits: {read: 10, name_search: null, custom_search: 7}
compression: {gzip: false, min_size: 2KiB}
websocket: {poll_interval: 250ms}
"#);
    let s = &cfg.server;
    assert_eq!(
        s.listen,
        vec!["0.0.0.0:80".to_owned(), "[::]:80".to_owned()]
    );
    assert_eq!(s.admin_listen, None);
    assert_eq!(s.threads, 8);
    assert_eq!(s.max_body_size, 10_000_000);
    assert_eq!(
        s.trusted_proxies,
        vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.1.7/32".parse().unwrap(),
            "fd00::/8".parse().unwrap()
        ]
    );
    assert_eq!(s.grace_period, Duration::from_secs(60));
    assert_eq!(s.graceful_shutdown_timeout, Duration::ZERO);
    assert!(s.daemon && !s.access_log);
    assert_eq!(
        s.error_log.as_deref(),
        Some(Path::new("/var/log/bridgecore.log"))
    );
    assert_eq!(cfg.redis.as_ref().unwrap().url, "redis://redis:6379/0");

    let t = cfg.tenant("Prod-1.eu").unwrap();
    assert_eq!(
        t.hosts,
        vec!["erp.example.com", "[::1]", "erp2.example.com"]
    );
    assert_eq!(t.upstream, vec!["odoo:8069", "10.0.0.2:8069"]);
    assert_eq!(t.websocket_upstream, t.upstream);
    assert_eq!(t.database.as_deref(), Some("prod"));
    assert_eq!(t.connect_timeout, Duration::from_millis(500));
    assert_eq!(t.timeout, Duration::from_secs(3600));
    assert_eq!(t.max_connections, 16);
    assert_eq!(t.service_login.as_deref(), Some("bridge"));
    assert_eq!(t.service_password.as_deref(), Some("p:w#d"));
    assert!(t.allow_database_manager && !t.require_jwt);
    assert_eq!(t.rate_limits.read, Some(Rate::per_minute(300)));
    assert_eq!(t.rate_limits.delete, Some(Rate::per_second(1)));
    assert_eq!(t.rate_limits.auth, None);

    let c = &cfg.cache;
    assert_eq!(c.backend, CacheBackend::Redis);
    assert_eq!(c.max_memory, 1 << 30);
    assert_eq!(c.key_secret.as_deref(), Some("k"));
    assert_eq!(c.ttl.default, Duration::from_secs(60));
    // Merged over the defaults; `null` removes one.
    assert_eq!(c.ttl.for_method("fields_get"), Duration::from_secs(60));
    assert_eq!(c.ttl.for_method("name_search"), Duration::from_secs(600));
    assert_eq!(c.ttl.for_method("read"), Duration::from_secs(10));
    assert_eq!(
        c.models["res.country"],
        ModelCacheConfig {
            enabled: true,
            ttl: Some(Duration::from_secs(86_400)),
            shared: true
        }
    );
    assert_eq!(c.models["product.product"], ModelCacheConfig::default());

    assert_eq!(cfg.rate_limits.auth, Rate::per_minute(5));
    assert_eq!(cfg.rate_limits.read, Rate::per_minute(100));
    assert_eq!(
        cfg.rate_limits.exempt,
        vec!["127.0.0.1/32".parse().unwrap()]
    );
    assert_eq!(cfg.auth.jwt.algorithm, JwtAlgorithm::HS512);
    assert_eq!(cfg.auth.jwt.access_ttl, Duration::from_secs(300));
    let caps = &cfg.optimizer.max_limits;
    assert_eq!(caps.get("read"), Some(&10));
    assert_eq!(caps.get("name_search"), None);
    assert_eq!(caps.get("search_read"), Some(&200));
    assert_eq!(caps.get("custom_search"), Some(&7));
    assert_eq!(
        cfg.compression,
        CompressionConfig {
            gzip: false,
            min_size: 2048,
            ..CompressionConfig::default()
        }
    );
    assert_eq!(cfg.websocket.poll_interval, Duration::from_millis(250));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn admin_listen_can_be_turned_off() {
    for off in ["null", "~", "\"\"", ""] {
        let cfg = ok(&format!("server:\n  admin_listen: {off}\n{TENANT}"));
        assert_eq!(cfg.server.admin_listen, None, "{off:?}");
    }
}

#[test]
fn pingora_conf_maps_the_server_section() {
    let cfg = ok(&format!(
        "server:\n  threads: 3\n  pid_file: /run/b.pid\n  upgrade_sock: /run/b.sock\n  grace_period: 10s\n  graceful_shutdown_timeout: 2s\n  daemon: true\n  error_log: /var/log/b.log\n{TENANT}"
    ));
    let conf = cfg.server.pingora_conf();
    assert_eq!(conf.threads, 3);
    assert_eq!(conf.pid_file, "/run/b.pid");
    assert_eq!(conf.upgrade_sock, "/run/b.sock");
    assert_eq!(conf.grace_period_seconds, Some(10));
    assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(2));
    assert!(conf.daemon);
    assert_eq!(conf.error_log.as_deref(), Some("/var/log/b.log"));
    let pingora_default = pingora::server::configuration::ServerConf::default();
    assert_eq!(conf.work_stealing, pingora_default.work_stealing);
    assert_eq!(conf.max_retries, pingora_default.max_retries);

    // The defaults never fall back to Pingora's 300 s grace period.
    let conf = ServerConfig::default().pingora_conf();
    assert_eq!(conf.grace_period_seconds, Some(30));
    assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(5));
    assert_eq!(conf.pid_file, "/tmp/bridgecore.pid");
    assert_eq!(conf.error_log, None);
}

#[test]
fn grace_periods_are_whole_seconds() {
    assert_one(
        &format!("server:\n  grace_period: 1500ms\n{TENANT}"),
        2,
        17,
        "whole number of seconds",
    );
}

// ---- unknown keys, at every depth, at the key ----

#[test]
fn unknown_keys_are_reported_at_the_key_at_every_depth() {
    let text = "\
server:
  listn: [\"0.0.0.0:8080\"]
tenants:
  odoo:
    upstream: [\"127.0.0.1:8069\"]
    timeot: 5s
    rate_limits:
      reads: 1/s
auth:
  jwt:
    secrt: x
cache:
  models:
    res.partner: {ttl: 5s, share: true}
colour: blue
websocket:
    bogus_setting: 1
";
    let errs = errors(text);
    assert_eq!(
        errs,
        vec![
            "2:3: unknown key `listn` in `server` (did you mean `listen`?)",
            "6:5: unknown key `timeot` in `tenants.odoo` (did you mean `timeout`?)",
            "8:7: unknown key `reads` in `tenants.odoo.rate_limits` (did you mean `read`?)",
            "11:5: unknown key `secrt` in `auth.jwt` (did you mean `secret`?)",
            "14:28: unknown key `share` in `cache.models.res.partner` (did you mean `shared`?)",
            "15:1: unknown key `colour` at the top level (expected one of: server, redis, tenants, cache, rate_limits, auth, optimizer, compression, websocket)",
            "17:5: unknown key `bogus_setting` in `websocket` (expected one of: poll_interval, poll_overlap, ping_interval, auth_timeout, max_connections, max_connections_per_user, max_subscriptions, max_record_ids, queue_size, max_message_size, message_rate, send_timeout)",
        ]
    );
}

// ---- values ----

#[test]
fn a_bad_duration_is_reported_at_its_value() {
    assert_one(
        &format!("{TENANT}    timeout: 5x\n"),
        4,
        14,
        "`tenants.odoo.timeout`: invalid duration `5x`: expected a number and one of ms, s, m, h, d",
    );
    assert_one(
        &format!("{TENANT}    connect_timeout: 30\n"),
        4,
        22,
        "missing unit",
    );
}

#[test]
fn bad_sizes_and_rates_are_reported_at_their_values() {
    let errs = errors(&format!(
        "server:\n  max_body_size: 64M\nrate_limits:\n  read: 100/fortnight\n  write: 0/minute\n{TENANT}"
    ));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with("2:18: `server.max_body_size`: invalid size `64M`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("4:9: `rate_limits.read`: invalid rate `100/fortnight`"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].starts_with("5:10: `rate_limits.write`: a rate of 0"),
        "{}",
        errs[2]
    );
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    assert_one(
        &format!("server:\n  threads: two\n{TENANT}"),
        2,
        12,
        "`server.threads`: expected a whole number, found `two`",
    );
    assert_one(
        &format!("server:\n  threads: \"2\"\n{TENANT}"),
        2,
        12,
        "remove the quotes",
    );
    assert_one(
        &format!("compression:\n  gzip: yes\n{TENANT}"),
        2,
        9,
        "`compression.gzip`: expected true or false, found `yes`",
    );
    assert_one(
        &format!("server:\n  listen: 0.0.0.0:8080\n{TENANT}"),
        2,
        11,
        "`server.listen`: expected a list",
    );
    assert_one(
        &format!("server:\n  threads: -1\n{TENANT}"),
        2,
        12,
        "expected a number of 0 or more",
    );
    assert_one(
        "server: 5\ntenants: {a: {upstream: [\"x:1\"]}}\n",
        1,
        9,
        "`server`: expected a mapping",
    );
}

#[test]
fn zero_threads_and_zero_max_connections_are_errors() {
    let errs = errors(&format!(
        "server:\n  threads: 0\n{TENANT}    max_connections: 0\n"
    ));
    assert_eq!(
        errs,
        vec![
            "2:12: `server.threads`: must be at least 1",
            "6:22: `tenants.odoo.max_connections`: must be at least 1",
        ]
    );
}

#[test]
fn listen_addresses_must_be_ip_and_port() {
    let errs = errors(&format!(
        "server:\n  listen: [\"localhost:8080\", \"0.0.0.0\", \"0.0.0.0:8080\", \"0.0.0.0:8080\"]\n  admin_listen: \"127.0.0.1:99999\"\n{TENANT}"
    ));
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].starts_with("2:12: `server.listen[0]`: invalid listen address `localhost:8080`")
    );
    assert!(errs[1].starts_with("2:30: `server.listen[1]`: invalid listen address"));
    assert!(errs[2].starts_with("2:57: `server.listen[3]`: `0.0.0.0:8080` is listed twice"));
    assert!(errs[3].starts_with("3:17: `server.admin_listen`: invalid listen address"));
    assert_one(
        &format!("server:\n  listen: [\"127.0.0.1:9180\"]\n{TENANT}"),
        2,
        12,
        "is the default `server.admin_listen`",
    );
    assert_one(
        &format!(
            "server:\n  listen: [\"127.0.0.1:9180\"]\n  admin_listen: 127.0.0.1:9180\n{TENANT}"
        ),
        3,
        17,
        "also in `server.listen`",
    );
}

#[test]
fn upstreams_take_host_names_and_ports() {
    let cfg =
        ok("tenants:\n  a:\n    upstream: [odoo:8069, \"[::1]:8069\", odoo.internal.example:80]\n");
    assert_eq!(cfg.tenants[0].upstream.len(), 3);
    let errs = errors(
        "tenants:\n  a:\n    upstream: [odoo, \"http://odoo:8069\", \"odoo:0\", \"::1:8069\", \"bad host:1\"]\n",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].starts_with(
        "3:16: `tenants.a.upstream[0]`: invalid upstream `odoo`: the port is missing"
    ));
    assert!(errs[1].contains("without a scheme"));
    assert!(errs[2].contains("is not a port"));
    assert!(errs[3].contains("brackets"));
    assert!(errs[4].contains("not a host name"));
}

#[test]
fn bad_cidrs_are_reported_at_the_item() {
    let errs = errors(&format!(
        "server:\n  trusted_proxies: [\"10.0.0.0/33\", 10.0.0.1]\nrate_limits:\n  exempt:\n    - 1.2.3.4/8\n    - nope\n{TENANT}"
    ));
    assert_eq!(
        errs,
        vec![
            "2:21: `server.trusted_proxies[0]`: invalid CIDR `10.0.0.0/33`: expected an address or a network such as `10.0.0.0/8`, `192.168.1.7` or `fd00::/8`",
            "6:7: `rate_limits.exempt[1]`: invalid CIDR `nope`: expected an address or a network such as `10.0.0.0/8`, `192.168.1.7` or `fd00::/8`",
        ]
    );
}

// ---- tenants ----

#[test]
fn a_tenant_without_upstream_is_reported_at_its_name() {
    assert_one(
        "tenants:\n  odoo:\n    hosts: [a.example]\n",
        2,
        3,
        "`tenants.odoo`: tenant has no `upstream`",
    );
    assert_one(
        "tenants:\n  odoo:\n    upstream: []\n",
        3,
        15,
        "needs at least one `host:port`",
    );
    // An empty tenant body too.
    assert_one("tenants:\n  odoo:\n", 2, 3, "no `upstream`");
}

#[test]
fn duplicate_hosts_across_tenants_ignore_case_and_port() {
    let text = "\
tenants:
  a:
    hosts: [erp.example.com, b.example.com]
    upstream: [\"127.0.0.1:8069\"]
  b:
    hosts: [\"ERP.Example.com:8443\", b.example.com:80]
    upstream: [\"127.0.0.1:8070\"]
";
    assert_eq!(
        errors(text),
        vec![
            "6:13: `tenants.b.hosts[0]`: host `erp.example.com` is already used by tenant `a` (hosts are compared without case and port)",
            "6:37: `tenants.b.hosts[1]`: host `b.example.com` is already used by tenant `a` (hosts are compared without case and port)",
        ]
    );
    assert_one(
        "tenants:\n  a:\n    hosts: [x.example, X.EXAMPLE]\n    upstream: [\"h:1\"]\n",
        3,
        24,
        "listed twice",
    );
}

#[test]
fn bad_hosts_are_rejected() {
    let errs = errors("tenants:\n  a:\n    hosts: [\"*.example.com\", \"http://x\", \"::1\", \"a b\", \"x:port\"]\n    upstream: [\"h:1\"]\n");
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn tenants_are_required_and_named_for_urls() {
    assert_one("server: {threads: 2}\n", 1, 1, "no `tenants:` section");
    assert_one("tenants: {}\n", 1, 1, "`tenants` is empty");
    assert_one("tenants:\n", 1, 1, "`tenants` is empty");
    assert_one(
        "tenants: [a]\n",
        1,
        10,
        "expected a mapping of tenant names",
    );
    assert_one(
        "tenants:\n  \"my tenant\":\n    upstream: [\"h:1\"]\n",
        2,
        3,
        "invalid tenant name `my tenant`",
    );
}

#[test]
fn tenants_keep_file_order() {
    let cfg = ok("tenants:\n  zeta: {upstream: [\"h:1\"], hosts: [z]}\n  alpha: {upstream: [\"h:2\"], hosts: [a]}\n");
    let names: Vec<&str> = cfg.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"]);
}

#[test]
fn service_credentials_come_in_pairs_and_empty_is_none() {
    let cfg = ok(&format!(
        "{TENANT}    service_login: \"\"\n    service_password: \"\"\n"
    ));
    assert_eq!(cfg.tenants[0].service_login, None);
    assert_eq!(cfg.tenants[0].service_password, None);
    assert_one(
        &format!("{TENANT}    service_login: bot\n"),
        4,
        20,
        "set both or neither",
    );
}

#[test]
fn require_jwt_needs_a_secret() {
    assert_one(
        &format!("{TENANT}    require_jwt: true\n"),
        4,
        18,
        "needs JWT auth (`auth.jwt.secret`",
    );
    let cfg = load_env(
        &format!("auth:\n  jwt: {{secret: \"${{S}}\"}}\n{TENANT}    require_jwt: true\n"),
        &[("S", "0123456789abcdef0123456789abcdef")],
    )
    .unwrap();
    assert!(cfg.tenants[0].require_jwt);
}

// ---- cache and auth ----

#[test]
fn cache_backend_is_memory_or_redis_and_redis_needs_its_section() {
    assert_one(
        &format!("cache:\n  backend: redis\n{TENANT}"),
        2,
        12,
        "`redis` needs a `redis:` section",
    );
    assert_one(
        &format!("cache:\n  backend: memcached\n{TENANT}"),
        2,
        12,
        "unknown backend `memcached`: expected `memory` or `redis`",
    );
    let cfg = ok(&format!(
        "redis: {{url: \"redis://r:6379\"}}\ncache: {{backend: redis, key_secret: s}}\n{TENANT}"
    ));
    assert_eq!(cfg.cache.backend, CacheBackend::Redis);
    assert_one(
        &format!("redis:\n  url: \"http://r\"\n{TENANT}"),
        2,
        8,
        "invalid Redis URL",
    );
    assert_one(&format!("redis: {{}}\n{TENANT}"), 1, 1, "`url` is required");
}

#[test]
fn redis_needs_a_cache_key_secret_shared_by_every_instance() {
    // Written empty (here through a variable that is unset, as in the compose stack): the
    // error points at the value.
    let text = format!(
        "redis:\n  url: \"redis://r:6379\"\ncache:\n  backend: redis\n  key_secret: \"${{SECRET:-}}\"\n{TENANT}"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("5:15: `cache.key_secret`: required when `redis:` is set"),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("does not end the session's cache entries on the others"));
    let cfg = load_env(&text, &[("SECRET", "s3cret")]).unwrap();
    assert_eq!(cfg.cache.key_secret.as_deref(), Some("s3cret"));
    // Not written at all (the cache is on by default, generations go to Redis whatever the
    // backend): the error points at `redis:`.
    assert_one(
        &format!("{TENANT}redis:\n  url: \"redis://r:6379\"\n"),
        4,
        1,
        "`cache.key_secret`: required when `redis:` is set",
    );
    // Without Redis an empty secret only costs reuse across restarts: a warning.
    let cfg = ok(&format!("cache:\n  key_secret: \"\"\n{TENANT}"));
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.contains("cache.key_secret is empty")),
        "{:?}",
        cfg.warnings
    );
    // The cache off: nothing to key.
    ok(&format!(
        "redis: {{url: \"redis://r:6379\"}}\ncache: {{enabled: false}}\n{TENANT}"
    ));
}

#[test]
fn jwt_settings_are_checked() {
    let errs = errors(&format!(
        "auth:\n  jwt:\n    algorithm: none\n    access_ttl: 2h\n    refresh_ttl: 1h\n{TENANT}"
    ));
    assert_eq!(
        errs,
        vec![
            "3:16: `auth.jwt.algorithm`: unknown algorithm `none`: expected HS256, HS384, HS512, RS256, ES256 or EdDSA",
            "5:18: `auth.jwt.refresh_ttl`: must be longer than `auth.jwt.access_ttl` (2h)",
        ]
    );
}

#[test]
fn key_material_must_match_the_algorithm() {
    // An RS256 deployment with an HMAC secret is the HS/RS confusion waiting to happen.
    assert_one(
        &format!("auth:\n  jwt: {{algorithm: RS256, secret: \"0123456789abcdef0123456789abcdef\"}}\n{TENANT}"),
        2,
        35,
        "is for HS256/HS384/HS512; RS256 uses",
    );
    assert_one(
        &format!("auth:\n  jwt: {{secret: \"0123456789abcdef0123456789abcdef\", jwks_url: \"https://idp/jwks\"}}\n{TENANT}"),
        2,
        63,
        "is for RS256, ES256 or EdDSA; HS256 uses `secret`",
    );
    assert_one(
        &format!(
            "auth:\n  jwt: {{algorithm: ES256, public_key_file: /nonexistent/key.pem}}\n{TENANT}"
        ),
        2,
        44,
        "cannot read `/nonexistent/key.pem`",
    );
    assert_one(
        &format!("auth:\n  jwt: {{algorithm: EdDSA, jwks_url: \"ftp://idp\"}}\n{TENANT}"),
        2,
        37,
        "is not an http(s) URL",
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("pub.pem");
    std::fs::write(&pem, "test").unwrap();
    let cfg = ok(&format!(
        "auth:\n  jwt: {{algorithm: RS256, public_key_file: {}, leeway: 5s, issuer: me, audience: apps}}\n{TENANT}",
        pem.display()
    ));
    let j = &cfg.auth.jwt;
    assert_eq!(j.algorithm, JwtAlgorithm::RS256);
    assert!(j.enabled() && !j.can_issue());
    assert_eq!((j.issuer.as_str(), j.audience.as_str()), ("me", "apps"));
    assert_eq!(j.leeway, Duration::from_secs(5));
    // Verification-only without any key: off, with a warning.
    let cfg = ok(&format!("auth:\n  jwt: {{algorithm: RS256}}\n{TENANT}"));
    assert!(!cfg.auth.jwt.enabled());
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.contains("RS256 has no `public_key_file`")));
}

#[test]
fn secrets_that_are_empty_warn_and_short_ones_are_refused() {
    let cfg = ok(TENANT);
    assert_eq!(
        cfg.warnings,
        vec![
            "auth.jwt.secret is empty: JWT auth is off (/api/v1 logins and tokens are refused until a secret is set)",
            "cache.key_secret is empty: a random key is used per start (cache entries are not reused across restarts or shared between instances)",
        ]
    );
    assert_one(
        &format!("auth: {{jwt: {{secret: short}}}}\ncache: {{enabled: false}}\n{TENANT}"),
        1,
        22,
        "is only 5 bytes long: HS256 needs at least 32 random bytes",
    );
    assert_one(
        &format!("auth: {{jwt: {{algorithm: HS512, secret: \"0123456789abcdef0123456789abcdef\"}}}}\n{TENANT}"),
        1,
        40,
        "HS512 needs at least 64 random bytes",
    );
}

// ---- environment variables ----

#[test]
fn env_vars_are_replaced_in_values() {
    let cfg = load_env(
        &format!("{TENANT}    database: \"${{DB}}\"\n    service_login: ${{LOGIN:-admin}}\n    service_password: pre-${{PW}}-post\n"),
        &[("DB", "prod"), ("PW", "secret")],
    )
    .unwrap();
    let t = &cfg.tenants[0];
    assert_eq!(t.database.as_deref(), Some("prod"));
    assert_eq!(t.service_login.as_deref(), Some("admin"));
    assert_eq!(t.service_password.as_deref(), Some("pre-secret-post"));
}

#[test]
fn env_default_applies_when_unset_or_empty() {
    let text = format!("{TENANT}    database: ${{DB:-fallback}}\n");
    let unset = load_env(&text, &[]).unwrap();
    assert_eq!(unset.tenants[0].database.as_deref(), Some("fallback"));
    let empty = load_env(&text, &[("DB", "")]).unwrap();
    assert_eq!(empty.tenants[0].database.as_deref(), Some("fallback"));
    let set = load_env(&text, &[("DB", "prod")]).unwrap();
    assert_eq!(set.tenants[0].database.as_deref(), Some("prod"));
    // An empty default on a plain scalar is an empty (null) value.
    let none = load_env(&format!("{TENANT}    database: ${{DB:-}}\n"), &[]).unwrap();
    assert_eq!(none.tenants[0].database, None);
}

#[test]
fn an_interpolated_plain_scalar_is_typed_after_interpolation() {
    let text =
        format!("server:\n  threads: ${{THREADS:-3}}\n  daemon: ${{DAEMON:-false}}\n{TENANT}");
    let cfg = load_env(&text, &[]).unwrap();
    assert_eq!(cfg.server.threads, 3);
    assert!(!cfg.server.daemon);
    let cfg = load_env(&text, &[("THREADS", "7"), ("DAEMON", "true")]).unwrap();
    assert_eq!(cfg.server.threads, 7);
    assert!(cfg.server.daemon);
    // A quoted one stays text.
    let errs = errors_of(load_env(
        &format!("server:\n  threads: \"${{THREADS:-3}}\"\n{TENANT}"),
        &[],
    ));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("2:12: ") && errs[0].contains("remove the quotes"),
        "{errs:?}"
    );
}

#[test]
fn env_values_cannot_inject_yaml() {
    let evil = "x\n    require_jwt: true\nserver: {threads: 99}";
    let cfg = load_env(&format!("{TENANT}    database: ${{DB}}\n"), &[("DB", evil)]).unwrap();
    assert_eq!(cfg.tenants[0].database.as_deref(), Some(evil));
    assert!(!cfg.tenants[0].require_jwt);
    assert_eq!(cfg.server.threads, 2);
    // Keys are never interpolated.
    let errs = errors_of(load_env(
        "${SECTION}:\n  threads: 2\n",
        &[("SECTION", "server")],
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("1:1: unknown key `${SECTION}`")),
        "{errs:?}"
    );
}

#[test]
fn a_missing_env_var_is_reported_at_its_value() {
    let errs = errors(&format!(
        "{TENANT}    service_login: ${{ODOO_LOGIN}}\n    service_password: \"${{A}}${{B:-x}}${{C}}\"\n"
    ));
    assert_eq!(
        errs,
        vec![
            "4:20: environment variable `ODOO_LOGIN` is not set (write `${ODOO_LOGIN:-default}` to give a default)",
            "5:23: environment variable `A` is not set (write `${A:-default}` to give a default)",
            "5:23: environment variable `C` is not set (write `${C:-default}` to give a default)",
        ]
    );
}

#[test]
fn env_syntax_errors_and_escapes() {
    let errs = errors(&format!(
        "{TENANT}    database: \"${{DB\"\n    service_login: \"${{1X}}\"\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("4:15: unterminated `${`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("5:20: invalid variable reference `${1X}`"),
        "{}",
        errs[1]
    );
    let cfg = ok(&format!(
        "{TENANT}    database: \"cost $5 and $${{NOT_A_VAR}}\"\n"
    ));
    assert_eq!(
        cfg.tenants[0].database.as_deref(),
        Some("cost $5 and ${NOT_A_VAR}")
    );
}

// ---- YAML-level problems ----

#[test]
fn duplicate_keys_are_errors() {
    let errs = errors("tenants:\n  a:\n    upstream: [\"h:1\"]\n    upstream: [\"h:2\"]\nserver: {}\nserver: {}\n");
    assert_eq!(
        errs,
        vec![
            "4:5: duplicate key `upstream` (first defined at line 3, column 5)",
            "6:1: duplicate key `server` (first defined at line 5, column 1)",
        ]
    );
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let text = "\
server:
  threads: 0
  bogus: 1
tenants:
  a:
    upstream: [\"h:1\"]
    timeout: forever
    hosts: [x]
  b:
    hosts: [X]
cache:
  backend: disk
";
    let errs = errors(text);
    assert_eq!(errs.len(), 6, "{errs:#?}");
    let positions: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(positions, ["2:12", "3:3", "7:14", "9:3", "10:13", "12:12"]);
}

#[test]
fn syntax_errors_have_a_position() {
    let errs = errors("server:\n\tthreads: 2\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("2:2: YAML syntax error"), "{errs:?}");
    assert!(errs[0].contains("tabs"), "{errs:?}");

    let errs = errors("server:\n  listen: [\"0.0.0.0:8080\"\ntenants: {}\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("3:") && errs[0].contains("YAML syntax error"),
        "{errs:?}"
    );
}

#[test]
fn an_empty_file_is_an_error() {
    for text in ["", "\n\n", "# just a comment\n", "---\n", "~\n"] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text:?}: {errs:?}");
        assert!(
            errs[0].starts_with("1:1: the file is empty"),
            "{text:?}: {errs:?}"
        );
    }
    assert_one("just text\n", 1, 1, "expected a mapping of sections");
}

#[test]
fn anchors_aliases_tags_and_extra_documents_are_rejected() {
    let errs = errors(&format!(
        "{TENANT}    timeout: &t 5s\n    connect_timeout: *t\n    database: !!str prod\n"
    ));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs[0].starts_with("4:17: YAML anchors"), "{errs:#?}");
    assert!(errs[1].starts_with("5:22: YAML aliases"), "{}", errs[1]);
    assert!(errs[2].starts_with("6:21: YAML tags"), "{}", errs[2]);

    assert_one(
        &format!("{TENANT}---\nserver: {{}}\n"),
        4,
        1,
        "only one YAML document",
    );
}

#[test]
fn display_format_is_file_line_col_message() {
    let err =
        Config::from_yaml_with_env("tenants: {}\nbogus: 1\n", "conf/x.yaml", &no_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conf/x.yaml:1:1: `tenants` is empty: at least one tenant is required (BridgeCore would answer every request with 404)\n\
         conf/x.yaml:2:1: unknown key `bogus` at the top level (expected one of: server, redis, tenants, cache, rate_limits, auth, optimizer, compression, websocket)"
    );
}

#[test]
fn map_entries_are_validated() {
    let errs = errors(&format!(
        "cache:\n  ttl: {{default: ~, \"bad method\": 5s, read: 5}}\n  models:\n    \"res partner\": {{}}\noptimizer:\n  max_limits: {{read: 0}}\n{TENANT}"
    ));
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(
        errs[0].contains("`cache.ttl.default`: must be a duration"),
        "{errs:#?}"
    );
    assert!(errs
        .iter()
        .any(|e| e.contains("`bad method` is not an Odoo method name")));
    assert!(errs.iter().any(|e| e.contains("invalid duration `5`")));
    assert!(errs
        .iter()
        .any(|e| e.contains("`res partner` is not an Odoo model name")));
    assert!(errs
        .iter()
        .any(|e| e.contains("must be at least 1 (write `null`")));
}

#[test]
fn empty_sections_mean_defaults() {
    let cfg = ok(&format!("server:\ncache:\ncompression: {{}}\n{TENANT}"));
    assert_eq!(cfg.server, ServerConfig::default());
    assert_eq!(cfg.cache, CacheConfig::default());
}

#[test]
fn tree_keeps_key_positions() {
    let parsed = yaml::parse("a:\n  b: [1, {c: d}]\n");
    let root: Node = parsed.root.unwrap();
    let a = root.entry("a").unwrap();
    assert_eq!((a.key_pos.line, a.key_pos.col), (1, 1));
    let b = a.value.entry("b").unwrap();
    assert_eq!((b.key_pos.line, b.key_pos.col), (2, 3));
    let Kind::Seq(items) = &b.value.kind else {
        panic!("expected a list")
    };
    assert_eq!((items[1].pos.line, items[1].pos.col), (2, 10));
}

#[test]
fn tls_listeners_are_checked() {
    let errs = errors(&format!("server:\n  tls: [{{listen: \"127.0.0.1:8443\", cert: /nonexistent.crt, key: /nonexistent.key}}]\n{TENANT}"));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("2:42: `server.tls[0].cert`: cannot read `/nonexistent.crt`"));
    assert!(errs[1].starts_with("2:65: `server.tls[0].key`: cannot read `/nonexistent.key`"));
    assert_one(
        &format!("server:\n  redirect_http_to_https: true\n{TENANT}"),
        2,
        27,
        "needs a `server.tls` listener",
    );
    assert_one(
        &format!("server:\n  hsts: \"forever\"\n{TENANT}"),
        2,
        9,
        "not a Strict-Transport-Security value",
    );
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let ck = rcgen::generate_simple_self_signed(vec!["erp.example.com".to_owned()]).unwrap();
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.key_pair.serialize_pem()).unwrap();
    let cfg = ok(&format!(
        "server:\n  tls: [{{listen: \"127.0.0.1:8443\", cert: \"{}\", key: \"{}\"}}]\n  redirect_http_to_https: true\n  hsts: \"max-age=600\"\n{TENANT}",
        c.display(),
        k.display()
    ));
    assert_eq!(cfg.server.tls.len(), 1);
    assert_eq!(cfg.server.tls[0].listen, "127.0.0.1:8443");
    assert!(cfg.server.redirect_http_to_https);
    assert_eq!(cfg.server.hsts.as_deref(), Some("max-age=600"));
}

#[test]
fn tls_files_must_parse_as_pem_and_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let one = rcgen::generate_simple_self_signed(vec!["erp.example.com".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["erp.example.com".to_owned()]).unwrap();
    let cert = write("c.pem", &one.cert.pem());
    let key = write("k.pem", &one.key_pair.serialize_pem());
    let other_key = write("o.pem", &other.key_pair.serialize_pem());
    let garbage = write("g.pem", "not a certificate\n");
    let bad_base64 = write(
        "b.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let not_der = write(
        "d.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    // Block style, so each file name sits at a known column.
    let conf = |c: &str, k: &str| {
        format!("server:\n  tls:\n    - listen: \"127.0.0.1:8443\"\n      cert: {c}\n      key: {k}\n{TENANT}")
    };
    ok(&conf(&cert, &key));
    // Both files garbage: both reported, each at its own value.
    let errs = errors(&conf(&garbage, &garbage));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("4:13: `server.tls[0].cert`: ")
            && errs[0].contains("holds no PEM certificate"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("5:12: `server.tls[0].key`: ")
            && errs[1].contains("holds no PEM private key"),
        "{errs:?}"
    );
    // A certificate where the key should be is no key.
    assert_one(&conf(&cert, &cert), 5, 12, "holds no PEM private key");
    assert_one(&conf(&bad_base64, &key), 4, 13, "not valid PEM");
    assert_one(&conf(&not_der, &key), 4, 13, "not a valid certificate");
    assert_one(
        &conf(&cert, &other_key),
        5,
        12,
        "is not the private key of the certificate",
    );
}

// ---- optimizer (issue 5) ----

#[test]
fn optimizer_keys_load_and_tenants_override_them_key_by_key() {
    use bridgecore_filters::rewrite::{CapRoutes, DefaultFields, DomainMode, OptimizerSet};
    let cfg = ok(r#"optimizer:
  max_limits: {read: 50}
  models:
    res.partner: {max_limits: {search_read: 500, read: null}}
  limit_caps: {web: true}
  canonical_domains: key
  expand: {sale.order: {partner_id: [name, email, phone]}}
  default_fields: exclude_binary
  read_concurrency: 8
tenants:
  a:
    upstream: ["127.0.0.1:8069"]
  b:
    upstream: ["127.0.0.1:8069"]
    optimizer:
      max_limits: {read: 20, search_read: null}
      models: {res.partner: {max_limits: {read: 5}}}
      limit_caps: {api: false}
      canonical_domains: forward
      expand_dotted: false
      expand: {sale.order: {}, res.partner: {country_id: [code]}}
      default_fields: all
      read_concurrency: 1
"#);
    let o = &cfg.optimizer;
    assert_eq!(o.max_limits.get("read"), Some(&50));
    assert_eq!(o.max_limits.get("search_read"), Some(&200));
    assert_eq!(
        o.limit_caps,
        CapRoutes {
            api: true,
            rpc: true,
            web: true
        }
    );
    assert_eq!(o.canonical_domains, DomainMode::Key);
    assert_eq!(o.default_fields, DefaultFields::ExcludeBinary);
    assert_eq!(o.read_concurrency, 8);
    assert!(cfg.tenant("a").unwrap().optimizer.is_empty());

    let mut set = OptimizerSet::new(o.optimizer());
    for t in &cfg.tenants {
        set = set.with_tenant(t.name.clone(), &t.optimizer);
    }
    let a = set.for_tenant("a");
    assert_eq!(a.caps.cap_for("sale.order", "read"), Some(50));
    assert_eq!(a.caps.cap_for("res.partner", "read"), None);
    assert_eq!(a.caps.cap_for("res.partner", "search_read"), Some(500));
    assert_eq!(
        a.expand["sale.order"]["partner_id"],
        ["name", "email", "phone"]
    );
    let b = set.for_tenant("b");
    assert_eq!(b.caps.cap_for("sale.order", "read"), Some(20));
    assert_eq!(b.caps.cap_for("sale.order", "search_read"), None);
    assert_eq!(b.caps.cap_for("res.partner", "read"), Some(5));
    assert_eq!(b.caps.cap_for("res.partner", "search_read"), Some(500));
    assert_eq!(
        b.cap_routes,
        CapRoutes {
            api: false,
            rpc: true,
            web: true
        }
    );
    assert_eq!(b.domains, DomainMode::Forward);
    assert!(!b.expand_dotted);
    assert!(!b.expand.contains_key("sale.order"));
    assert_eq!(b.expand["res.partner"]["country_id"], ["code"]);
    assert_eq!(b.default_fields, DefaultFields::All);
    assert_eq!(b.read_concurrency, 1);
    // An unknown tenant reads the global settings.
    assert_eq!(set.for_tenant("zzz"), set.global());
}

#[test]
fn optimizer_errors_are_positioned() {
    let text = "optimizer:\n  canonical_domains: always\n  read_concurrency: 0\n  default_fields: none\n  colour: red\n  models:\n    \"res partner\": {}\n    res.users: {max_limits: {read: 0}}\n  expand:\n    sale.order: {partner_id: []}\n    res.partner: {\"bad field\": [name], country_id: [\"co de\"]}\n  limit_caps: {cli: true}\ntenants:\n  odoo:\n    upstream: [\"127.0.0.1:8069\"]\n    optimizer:\n      read_concurrency: 65\n      max_limits: {read: 0}\n      unknown: 1\n";
    let errs = errors(text);
    let expect = [
        "2:22: `optimizer.canonical_domains`: unknown mode `always`",
        "3:21: `optimizer.read_concurrency`: must be between 1 and 64",
        "4:19: `optimizer.default_fields`: unknown value `none`",
        "5:3: unknown key `colour`",
        "7:5: `optimizer.models.res partner`: `res partner` is not an Odoo model name",
        "8:36: `optimizer.models.res.users.max_limits.read`: must be at least 1",
        "10:30: `optimizer.expand.sale.order.partner_id`: list at least one field",
        "11:19: `optimizer.expand.res.partner.bad field`: `bad field` is not an Odoo field name",
        "11:53: `optimizer.expand.res.partner.country_id[0]`: `co de` is not an Odoo field name",
        "12:16: unknown key `cli`",
        "17:25: `tenants.odoo.optimizer.read_concurrency`: must be between 1 and 64",
        "18:26: `tenants.odoo.optimizer.max_limits.read`: must be at least 1",
        "19:7: unknown key `unknown`",
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(expect) {
        assert!(
            got.starts_with(want) || got.contains(want),
            "expected `{want}`, got `{got}`\nall: {errs:#?}"
        );
    }
}

#[test]
fn balance_shared_sessions_and_addons_paths_are_parsed_and_checked() {
    let cfg = ok("tenants:\n  a:\n    upstream: [\"h:1\", \"h:2\"]\n    balance: least_connections\n    shared_sessions: true\n    addons_paths: [/opt/odoo/addons, /srv/custom]\n");
    let t = &cfg.tenants[0];
    assert_eq!(t.balance, Balance::LeastConnections);
    assert!(t.shared_sessions);
    assert_eq!(
        t.addons_paths,
        vec![
            std::path::PathBuf::from("/opt/odoo/addons"),
            std::path::PathBuf::from("/srv/custom")
        ]
    );
    let d = ok("tenants:\n  a:\n    upstream: [\"h:1\"]\n");
    assert_eq!(d.tenants[0].balance, Balance::RoundRobin);
    assert!(!d.tenants[0].shared_sessions && d.tenants[0].addons_paths.is_empty());

    assert_one(
        "tenants:\n  a:\n    upstream: [\"h:1\"]\n    shared_sessions: maybe\n",
        4,
        22,
        "expected true or false",
    );
    let errs = errors("tenants:\n  a:\n    upstream: [\"h:1\"]\n    balance: fastest\n    addons_paths: [addons, /ok]\n    addon_paths: [/x]\n");
    let expect = [
        "4:14: `tenants.a.balance`: unknown balancing `fastest`",
        "5:20: `tenants.a.addons_paths[0]`: `addons` is not an absolute directory path",
        "6:5: unknown key `addon_paths` in `tenants.a` (did you mean `addons_paths`?)",
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "expected `{want}`, got `{got}`\nall: {errs:#?}"
        );
    }
}
