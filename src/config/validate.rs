//! From the positioned tree to the runtime [`Config`]: deserialize each section into the file
//! schema, then parse and check every value, collecting every problem with its position.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bridgecore_filters::rewrite::{
    CapRoutesOverrides, DefaultFields, DomainMode, OptimizerOverrides, MAX_READ_CONCURRENCY,
};
use bridgecore_filters::units::{self, Rate};
use ipnet::IpNet;
use serde::Deserialize;

use super::de::{self, Sink, StructSeen};
use super::schema::{
    AuthFile, CacheFile, CompressionFile, OptimizerFile, RateLimitsFile, RedisFile, ServerFile,
    TenantFile, WebsocketFile, SECTIONS,
};
use super::yaml::{self, path_string, Kind, Node, Pos, Problem, Scalar, Seg};
use super::{
    AuthConfig, Balance, CacheBackend, CacheConfig, CompressionConfig, Config, HealthCheckConfig,
    Invalidation, JwtAlgorithm, JwtConfig, ModelCacheConfig, OptimizerConfig, RateLimitConfig,
    RateLimitOverrides, RedisConfig, ServerConfig, StaticCacheConfig, TenantConfig, TlsListener,
    WebsocketConfig,
};

/// Everything one load produced; the drift test reads `structs`.
pub(crate) struct Report {
    pub result: Result<Config, Vec<Problem>>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub structs: Vec<StructSeen>,
}

/// Parses and validates `text`.
pub(crate) fn load(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    load_report(text, env).result
}

pub(crate) fn load_report(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let parsed = yaml::parse(text);
    let mut primary = parsed.problems;
    let mut poisoned = parsed.poisoned;
    let Some(mut root) = parsed.root else {
        if primary.is_empty() {
            primary.push(Problem::new(
                Pos::START,
                "the file is empty: at least a `tenants:` section with one tenant is required",
            ));
        }
        return Report {
            result: Err(finish(primary, Vec::new(), &poisoned)),
            structs: Vec::new(),
        };
    };
    super::env::interpolate(&mut root, env, &mut primary, &mut poisoned);

    let mut v = Validator {
        root: &root,
        problems: Vec::new(),
        warnings: Vec::new(),
        structs: Vec::new(),
    };
    let config = v.config();
    let Validator {
        problems,
        warnings,
        structs,
        ..
    } = v;
    let result = if primary.is_empty() && problems.is_empty() {
        Ok(Config { warnings, ..config })
    } else {
        Err(finish(primary, problems, &poisoned))
    };
    Report { result, structs }
}

/// Sorts by position, drops echoes of problems already reported at a poisoned value, and drops
/// exact duplicates.
fn finish(primary: Vec<Problem>, later: Vec<Problem>, poisoned: &[Pos]) -> Vec<Problem> {
    let mut all = primary;
    all.extend(later.into_iter().filter(|p| !poisoned.contains(&p.pos)));
    all.sort_by_key(|p| p.pos);
    all.dedup();
    all
}

/// A section as found: absent, present but broken (already reported), or read.
enum Section<T> {
    Absent,
    Invalid,
    Present(T),
}

impl<T: Default> Section<T> {
    fn or_default(self) -> T {
        match self {
            Section::Present(t) => t,
            Section::Absent | Section::Invalid => T::default(),
        }
    }
}

struct Validator<'a> {
    root: &'a Node,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    structs: Vec<StructSeen>,
}

fn key(k: &str) -> Seg<'_> {
    Seg::Key(k)
}

fn is_name(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

impl<'a> Validator<'a> {
    /// A problem with the value at `path`.
    fn value_err(&mut self, path: &[Seg<'_>], message: impl AsRef<str>) {
        let pos = self.root.locate(path, false);
        self.problems.push(Problem::new(
            pos,
            format!("`{}`: {}", path_string(path), message.as_ref()),
        ));
    }

    /// A problem with the key at the end of `path` (or, if absent, with its parent).
    fn key_err(&mut self, path: &[Seg<'_>], message: impl AsRef<str>) {
        let pos = self.root.locate(path, true);
        self.problems.push(Problem::new(
            pos,
            format!("`{}`: {}", path_string(path), message.as_ref()),
        ));
    }

    fn deserialize<T: Deserialize<'a>>(&mut self, node: &'a Node, path: &str) -> Option<T> {
        let sink = Sink::default();
        let result = de::from_node::<T>(node, path, &sink);
        self.problems.extend(sink.problems.into_inner());
        self.structs.extend(sink.structs.into_inner());
        match result {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems
                    .push(Problem::new(e.pos.unwrap_or(node.pos), e.message));
                None
            }
        }
    }

    fn section<T: Deserialize<'a>>(&mut self, name: &str) -> Section<T> {
        match self.root.entry(name) {
            None => Section::Absent,
            Some(entry) => match self.deserialize(&entry.value, name) {
                Some(t) => Section::Present(t),
                None => Section::Invalid,
            },
        }
    }

    fn config(&mut self) -> Config {
        match &self.root.kind {
            Kind::Map(entries) => {
                for entry in entries {
                    if !SECTIONS.contains(&entry.key.as_str()) {
                        self.problems.push(Problem::new(
                            entry.key_pos,
                            de::unknown_key(&entry.key, "at the top level", SECTIONS),
                        ));
                    }
                }
            }
            Kind::Scalar(Scalar { text, plain: true }) if text.is_empty() || text == "~" => {
                self.problems.push(Problem::new(
                    Pos::START,
                    "the file is empty: at least a `tenants:` section with one tenant is required",
                ));
            }
            _ => self.problems.push(Problem::new(
                self.root.pos,
                "expected a mapping of sections at the top level (`server:`, `tenants:`, ...)",
            )),
        }

        let server = self.server();
        let redis = self.redis();
        let auth = self.auth();
        // A `redis:` section with problems of its own is reported once, not echoed here.
        let redis_ok = redis.as_ref().is_some_and(|r| !r.url.is_empty());
        let cache = self.cache(redis.is_some(), redis_ok);
        let rate_limits = self.rate_limits();
        let optimizer = self.optimizer();
        let compression = self.compression();
        let websocket = self.websocket();
        let tenants = self.tenants(auth.jwt.enabled());
        Config {
            server,
            redis,
            tenants,
            cache,
            rate_limits,
            auth,
            optimizer,
            compression,
            websocket,
            warnings: Vec::new(),
        }
    }

    // ---- leaf parsers: on a bad value, report it and use the default ----

    fn duration(&mut self, text: Option<&String>, path: &[Seg<'_>], default: Duration) -> Duration {
        match text.map(|t| units::parse_duration(t)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.value_err(path, e.to_string());
                default
            }
        }
    }

    fn positive_duration(
        &mut self,
        text: Option<&String>,
        path: &[Seg<'_>],
        default: Duration,
    ) -> Duration {
        let d = self.duration(text, path, default);
        if d.is_zero() {
            self.value_err(path, "must be longer than 0s");
            return default;
        }
        d
    }

    fn whole_seconds(
        &mut self,
        text: Option<&String>,
        path: &[Seg<'_>],
        default: Duration,
    ) -> Duration {
        let d = self.duration(text, path, default);
        if d.subsec_nanos() != 0 {
            self.value_err(path, "must be a whole number of seconds (e.g. `30s`)");
            return default;
        }
        d
    }

    fn size(&mut self, text: Option<&String>, path: &[Seg<'_>], default: u64) -> u64 {
        match text.map(|t| units::parse_size(t)) {
            None => default,
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                self.value_err(path, e.to_string());
                default
            }
        }
    }

    fn rate(&mut self, text: Option<&String>, path: &[Seg<'_>]) -> Option<Rate> {
        match units::parse_rate(text?) {
            Ok(rate) if rate.count == 0 => {
                self.value_err(
                    path,
                    "a rate of 0 would refuse every request; use at least 1 (or list trusted callers under `rate_limits.exempt`)",
                );
                None
            }
            Ok(rate) => Some(rate),
            Err(e) => {
                self.value_err(path, e.to_string());
                None
            }
        }
    }

    fn nets(&mut self, list: Option<Vec<String>>, path: &[Seg<'_>]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, text) in list.unwrap_or_default().iter().enumerate() {
            let mut item = path.to_vec();
            item.push(Seg::Index(i));
            match parse_net(text) {
                Some(net) => out.push(net),
                None => self.value_err(
                    &item,
                    format!(
                        "invalid CIDR `{text}`: expected an address or a network such as `10.0.0.0/8`, `192.168.1.7` or `fd00::/8`"
                    ),
                ),
            }
        }
        out
    }

    fn socket_addr(&mut self, text: &str, path: &[Seg<'_>]) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.value_err(
                    path,
                    format!(
                        "invalid listen address `{text}`: expected IP:port, such as `0.0.0.0:8080`, `127.0.0.1:9180` or `[::]:8080`"
                    ),
                );
                None
            }
        }
    }

    fn non_empty_path(
        &mut self,
        text: Option<String>,
        path: &[Seg<'_>],
        default: PathBuf,
    ) -> PathBuf {
        match text {
            None => default,
            Some(t) if t.is_empty() => {
                self.value_err(path, "must not be empty");
                default
            }
            Some(t) => PathBuf::from(t),
        }
    }

    // ---- sections ----

    fn server(&mut self) -> ServerConfig {
        let d = ServerConfig::default();
        let f: ServerFile = self.section("server").or_default();
        let p = |k: &'static str| [key("server"), key(k)];

        let mut listen = Vec::new();
        let mut listen_addrs: Vec<SocketAddr> = Vec::new();
        match f.listen {
            None => listen = d.listen,
            Some(list) if list.is_empty() => {
                self.value_err(
                    &p("listen"),
                    "needs at least one address, such as `0.0.0.0:8080`",
                );
            }
            Some(list) => {
                for (i, text) in list.iter().enumerate() {
                    let path = [key("server"), key("listen"), Seg::Index(i)];
                    if let Some(addr) = self.socket_addr(text, &path) {
                        if listen_addrs.contains(&addr) {
                            self.value_err(&path, format!("`{addr}` is listed twice"));
                        } else {
                            listen_addrs.push(addr);
                            listen.push(addr.to_string());
                        }
                    }
                }
            }
        }
        if listen_addrs.is_empty() {
            listen_addrs = listen.iter().filter_map(|l| l.parse().ok()).collect();
        }

        let admin_explicit = f.admin_listen.is_some();
        let admin_listen = match f.admin_listen {
            None => d.admin_listen,
            Some(None) => None,
            Some(Some(text)) if text.is_empty() => None,
            Some(Some(text)) => self
                .socket_addr(&text, &p("admin_listen"))
                .map(|addr| addr.to_string()),
        };
        let admin_addr = admin_listen
            .as_deref()
            .and_then(|a| a.parse::<SocketAddr>().ok());
        if let Some(addr) = admin_addr {
            if let Some(i) = listen_addrs.iter().position(|l| *l == addr) {
                if admin_explicit {
                    self.value_err(&p("admin_listen"), format!("`{addr}` is also in `server.listen`: the admin listener needs its own address"));
                } else {
                    self.value_err(
                        &[key("server"), key("listen"), Seg::Index(i)],
                        format!("`{addr}` is the default `server.admin_listen`: pick another address, or move or turn off the admin listener (`admin_listen: null`)"),
                    );
                }
            }
        }

        let threads = match f.threads {
            None => d.threads,
            Some(0) => {
                self.value_err(&p("threads"), "must be at least 1");
                d.threads
            }
            Some(n) => usize::try_from(n).unwrap_or(d.threads),
        };

        let max_body_size = self.size(
            f.max_body_size.as_ref(),
            &p("max_body_size"),
            d.max_body_size,
        );
        if max_body_size == 0 {
            self.value_err(
                &p("max_body_size"),
                "must be larger than 0 (every request with a body would be refused)",
            );
        }
        let trusted_proxies = self.nets(f.trusted_proxies, &p("trusted_proxies"));
        let pid_file = self.non_empty_path(f.pid_file, &p("pid_file"), d.pid_file);
        let upgrade_sock = self.non_empty_path(f.upgrade_sock, &p("upgrade_sock"), d.upgrade_sock);
        let grace_period =
            self.whole_seconds(f.grace_period.as_ref(), &p("grace_period"), d.grace_period);
        let graceful_shutdown_timeout = self.whole_seconds(
            f.graceful_shutdown_timeout.as_ref(),
            &p("graceful_shutdown_timeout"),
            d.graceful_shutdown_timeout,
        );
        let client_timeout = self.duration(
            f.client_timeout.as_ref(),
            &p("client_timeout"),
            d.client_timeout,
        );
        if client_timeout.is_zero() {
            self.value_err(&p("client_timeout"), "must be larger than 0");
        }
        let mut tls = Vec::new();
        let tls_files = f.tls.unwrap_or_default();
        let tls_given = !tls_files.is_empty();
        for (i, t) in tls_files.into_iter().enumerate() {
            let at = |k: &'static str| [key("server"), key("tls"), Seg::Index(i), key(k)];
            let here = [key("server"), key("tls"), Seg::Index(i)];
            let listen = match t.listen {
                None => {
                    self.key_err(&here, "`listen` is required, e.g. `0.0.0.0:443`");
                    None
                }
                Some(text) => self.socket_addr(&text, &at("listen")),
            };
            if let Some(addr) = listen {
                if listen_addrs.contains(&addr) || admin_addr == Some(addr) {
                    self.value_err(
                        &at("listen"),
                        format!("`{addr}` is also a plain-HTTP or admin listener"),
                    );
                }
            }
            // The path, and whether the file is there to be parsed.
            let mut file = |v: Option<String>, k: &'static str| -> Option<(PathBuf, bool)> {
                match v.filter(|s| !s.is_empty()) {
                    None => {
                        self.key_err(&here, format!("`{k}` is required (a PEM file)"));
                        None
                    }
                    Some(text) => {
                        let found = match std::fs::metadata(&text) {
                            Ok(_) => true,
                            Err(e) => {
                                self.value_err(&at(k), format!("cannot read `{text}`: {e}"));
                                false
                            }
                        };
                        Some((PathBuf::from(text), found))
                    }
                }
            };
            let cert = file(t.cert, "cert");
            let key_file = file(t.key, "key");
            // Both there: parse them as a start would, each problem at the file it is in.
            if let (Some((c, true)), Some((k, true))) = (&cert, &key_file) {
                if let Err(errors) = crate::tls::check_pair(c, k) {
                    for e in errors {
                        let k = match &e {
                            crate::tls::PemError::Cert { .. } => "cert",
                            crate::tls::PemError::Key { .. } => "key",
                        };
                        self.value_err(&at(k), e.to_string());
                    }
                }
            }
            let cert = cert.map(|(p, _)| p);
            let key_file = key_file.map(|(p, _)| p);
            if let (Some(addr), Some(cert), Some(key)) = (listen, cert, key_file) {
                tls.push(TlsListener {
                    listen: addr.to_string(),
                    cert,
                    key,
                });
            }
        }
        let redirect_http_to_https = f.redirect_http_to_https.unwrap_or(d.redirect_http_to_https);
        if redirect_http_to_https && !tls_given {
            self.value_err(
                &p("redirect_http_to_https"),
                "needs a `server.tls` listener to redirect to",
            );
        }
        let hsts = match f.hsts {
            None | Some(None) => d.hsts,
            Some(Some(v)) if v.is_empty() => None,
            Some(Some(v)) => {
                if !v.starts_with("max-age=") || http::HeaderValue::from_str(&v).is_err() {
                    self.value_err(&p("hsts"), format!("`{v}` is not a Strict-Transport-Security value such as `max-age=31536000; includeSubDomains`"));
                }
                Some(v)
            }
        };
        ServerConfig {
            tls,
            redirect_http_to_https,
            hsts,
            listen,
            admin_listen,
            threads,
            max_body_size,
            trusted_proxies,
            pid_file,
            upgrade_sock,
            grace_period,
            graceful_shutdown_timeout,
            daemon: f.daemon.unwrap_or(d.daemon),
            error_log: f
                .error_log
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .or(d.error_log),
            access_log: f.access_log.unwrap_or(d.access_log),
            client_timeout,
        }
    }

    fn redis(&mut self) -> Option<RedisConfig> {
        match self.section::<RedisFile>("redis") {
            Section::Absent => None,
            // Already reported; keep it as configured so no "needs redis" echo follows.
            Section::Invalid => Some(RedisConfig { url: String::new() }),
            Section::Present(f) => {
                let path = [key("redis"), key("url")];
                match f.url {
                    None => {
                        self.key_err(&[key("redis")], "`url` is required (remove the `redis:` section to keep everything in-process)");
                    }
                    Some(url) => {
                        let rest = REDIS_SCHEMES.iter().find_map(|s| url.strip_prefix(s));
                        match rest {
                            _ if url.starts_with("rediss://") => self.value_err(&path, "TLS to Redis (`rediss://`) is not supported yet: reach Redis over a private network or a local TLS tunnel (stunnel, spiped) with `redis://`"),
                            None => self.value_err(&path, format!("invalid Redis URL `{url}`: expected `redis://host:port/db` or `unix:///path/to/socket`")),
                            Some("") => self.value_err(&path, format!("invalid Redis URL `{url}`: the host is missing")),
                            Some(_) => return Some(RedisConfig { url }),
                        }
                    }
                }
                Some(RedisConfig { url: String::new() })
            }
        }
    }

    fn auth(&mut self) -> AuthConfig {
        let d = JwtConfig::default();
        let f: AuthFile = self.section("auth").or_default();
        let j = f.jwt.unwrap_or_default();
        let p = |k: &'static str| [key("auth"), key("jwt"), key(k)];
        let algorithm = match j.algorithm.as_deref() {
            None => d.algorithm,
            Some("HS256") => JwtAlgorithm::HS256,
            Some("HS384") => JwtAlgorithm::HS384,
            Some("HS512") => JwtAlgorithm::HS512,
            Some("RS256") => JwtAlgorithm::RS256,
            Some("ES256") => JwtAlgorithm::ES256,
            Some("EdDSA") => JwtAlgorithm::EdDSA,
            Some(other) => {
                self.value_err(
                    &p("algorithm"),
                    format!("unknown algorithm `{other}`: expected HS256, HS384, HS512, RS256, ES256 or EdDSA"),
                );
                d.algorithm
            }
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let secret = non_empty(j.secret);
        let public_key_file = self.key_file(non_empty(j.public_key_file), &p("public_key_file"));
        let private_key_file = self.key_file(non_empty(j.private_key_file), &p("private_key_file"));
        let jwks_file = self.key_file(non_empty(j.jwks_file), &p("jwks_file"));
        let jwks_url = non_empty(j.jwks_url);
        if let Some(url) = &jwks_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.value_err(&p("jwks_url"), format!("`{url}` is not an http(s) URL"));
            }
        }
        if algorithm.is_hmac() {
            let min = match algorithm {
                JwtAlgorithm::HS384 => 48,
                JwtAlgorithm::HS512 => 64,
                _ => 32,
            };
            for (k, set) in [
                ("public_key_file", public_key_file.is_some()),
                ("private_key_file", private_key_file.is_some()),
                ("jwks_file", jwks_file.is_some()),
                ("jwks_url", jwks_url.is_some()),
            ] {
                if set {
                    self.value_err(
                        &p(k),
                        format!(
                            "is for RS256, ES256 or EdDSA; {} uses `secret`",
                            algorithm.as_str()
                        ),
                    );
                }
            }
            match &secret {
                None => self.warnings.push(
                    "auth.jwt.secret is empty: JWT auth is off (/api/v1 logins and tokens are refused until a secret is set)".to_owned(),
                ),
                Some(s) if s.len() < min => self.value_err(
                    &p("secret"),
                    format!(
                        "is only {} bytes long: {} needs at least {min} random bytes",
                        s.len(),
                        algorithm.as_str()
                    ),
                ),
                Some(_) => {}
            }
        } else {
            if secret.is_some() {
                self.value_err(
                    &p("secret"),
                    format!(
                        "is for HS256/HS384/HS512; {} uses `public_key_file`, `jwks_file` or `jwks_url`",
                        algorithm.as_str()
                    ),
                );
            }
            let sources = [
                public_key_file.is_some(),
                jwks_file.is_some(),
                jwks_url.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if sources == 0 {
                self.warnings.push(format!(
                    "auth.jwt: {} has no `public_key_file`, `jwks_file` or `jwks_url`: JWT auth is off",
                    algorithm.as_str()
                ));
            } else if sources > 1 {
                self.value_err(
                    &p("algorithm"),
                    "set only one of `public_key_file`, `jwks_file` and `jwks_url`",
                );
            }
            if private_key_file.is_some() && public_key_file.is_none() {
                self.value_err(
                    &p("private_key_file"),
                    "needs `public_key_file` (the pair this instance signs and verifies with)",
                );
            }
        }
        let jwks_refresh =
            self.positive_duration(j.jwks_refresh.as_ref(), &p("jwks_refresh"), d.jwks_refresh);
        let issuer = self.non_empty_text(j.issuer, &p("issuer"), d.issuer);
        let audience = self.non_empty_text(j.audience, &p("audience"), d.audience);
        let leeway = self.duration(j.leeway.as_ref(), &p("leeway"), d.leeway);
        if leeway > Duration::from_secs(300) {
            self.value_err(
                &p("leeway"),
                "must be at most 5m: a longer one keeps expired tokens alive",
            );
        }
        let access_ttl =
            self.positive_duration(j.access_ttl.as_ref(), &p("access_ttl"), d.access_ttl);
        let refresh_ttl =
            self.positive_duration(j.refresh_ttl.as_ref(), &p("refresh_ttl"), d.refresh_ttl);
        if refresh_ttl <= access_ttl {
            self.value_err(
                &p("refresh_ttl"),
                format!(
                    "must be longer than `auth.jwt.access_ttl` ({})",
                    units::HumanDuration(access_ttl)
                ),
            );
        }
        AuthConfig {
            jwt: JwtConfig {
                algorithm,
                secret,
                public_key_file,
                private_key_file,
                jwks_file,
                jwks_url,
                jwks_refresh,
                issuer,
                audience,
                leeway,
                access_ttl,
                refresh_ttl,
            },
        }
    }

    /// A key file path that must exist and be readable when the file is checked.
    fn key_file(&mut self, text: Option<String>, path: &[Seg<'_>]) -> Option<PathBuf> {
        let t = text?;
        let p = PathBuf::from(&t);
        if let Err(e) = std::fs::metadata(&p) {
            self.value_err(path, format!("cannot read `{t}`: {e}"));
        }
        Some(p)
    }

    fn non_empty_text(
        &mut self,
        text: Option<String>,
        path: &[Seg<'_>],
        default: String,
    ) -> String {
        match text {
            None => default,
            Some(t) if t.is_empty() => {
                self.value_err(path, "must not be empty");
                default
            }
            Some(t) => t,
        }
    }

    fn cache(&mut self, have_redis: bool, redis_ok: bool) -> CacheConfig {
        let d = CacheConfig::default();
        let f: CacheFile = self.section("cache").or_default();
        let p = |k: &'static str| [key("cache"), key(k)];
        let enabled = f.enabled.unwrap_or(d.enabled);
        let backend = match f.backend.as_deref() {
            None => d.backend,
            Some("memory") => CacheBackend::Memory,
            Some("redis") => {
                if !have_redis {
                    self.value_err(
                        &p("backend"),
                        "`redis` needs a `redis:` section with the server's `url`",
                    );
                }
                CacheBackend::Redis
            }
            Some(other) => {
                self.value_err(
                    &p("backend"),
                    format!("unknown backend `{other}`: expected `memory` or `redis`"),
                );
                d.backend
            }
        };
        let max_memory = self.size(f.max_memory.as_ref(), &p("max_memory"), d.max_memory);
        if enabled && max_memory == 0 {
            self.value_err(
                &p("max_memory"),
                "must be larger than 0 (set `cache.enabled: false` to turn the cache off)",
            );
        }
        let written = f.key_secret.is_some();
        let key_secret = f.key_secret.filter(|s| !s.is_empty());
        if enabled && key_secret.is_none() && redis_ok {
            // Shared generations keyed by per-instance identities: a logout or `?debug=` on one
            // instance would not end the session's entries on the others.
            let message = "`cache.key_secret`: required when `redis:` is set: with an empty one each instance picks its own random key, so a logout or `?debug=` on one instance does not end the session's cache entries on the others (set the same secret on every instance, e.g. from `openssl rand -hex 32`, or set `cache.enabled: false`)";
            let pos = if written {
                self.root.locate(&p("key_secret"), false)
            } else {
                self.root.locate(&[key("redis")], true)
            };
            self.problems.push(Problem::new(pos, message));
        } else if enabled && key_secret.is_none() {
            self.warnings.push(
                "cache.key_secret is empty: a random key is used per start (cache entries are not reused across restarts or shared between instances)".to_owned(),
            );
        }

        let max_entry_size = self.size(
            f.max_entry_size.as_ref(),
            &p("max_entry_size"),
            d.max_entry_size,
        );
        let stale_if_error = self.duration(
            f.stale_if_error.as_ref(),
            &p("stale_if_error"),
            d.stale_if_error,
        );
        let lock_timeout =
            self.duration(f.lock_timeout.as_ref(), &p("lock_timeout"), d.lock_timeout);
        let sd = d.static_assets;
        let sf = f.static_assets.unwrap_or_default();
        let sp = |k: &'static str| [key("cache"), key("static"), key(k)];
        let static_assets = StaticCacheConfig {
            enabled: sf.enabled.unwrap_or(sd.enabled),
            max_memory: self.size(sf.max_memory.as_ref(), &sp("max_memory"), sd.max_memory),
            max_entry_size: self.size(
                sf.max_entry_size.as_ref(),
                &sp("max_entry_size"),
                sd.max_entry_size,
            ),
        };
        let invalidation = match f.invalidation.as_deref() {
            None => d.invalidation,
            Some("graph") => Invalidation::Graph,
            Some("model") => Invalidation::Model,
            Some("tenant") => Invalidation::Tenant,
            Some(other) => {
                self.value_err(
                    &p("invalidation"),
                    format!("unknown scope `{other}`: expected `graph`, `model` or `tenant`"),
                );
                d.invalidation
            }
        };

        let mut ttl = d.ttl;
        for (method, value) in f.ttl.unwrap_or_default() {
            let path = [key("cache"), key("ttl"), Seg::Key(&method)];
            if method == "default" {
                match value {
                    None => self.value_err(&path, "must be a duration such as `300s`"),
                    Some(text) => ttl.default = self.duration(Some(&text), &path, ttl.default),
                }
                continue;
            }
            if !is_name(&method, &['_']) {
                self.key_err(
                    &path,
                    format!("`{method}` is not an Odoo method name (letters, digits and `_`)"),
                );
                continue;
            }
            match value {
                None => {
                    ttl.methods.remove(&method);
                }
                Some(text) => {
                    let fallback = ttl.for_method(&method);
                    let dur = self.duration(Some(&text), &path, fallback);
                    ttl.methods.insert(method, dur);
                }
            }
        }

        let mut models = BTreeMap::new();
        for (model, m) in f.models.unwrap_or_default() {
            let path = [key("cache"), key("models"), Seg::Key(&model)];
            if !is_name(&model, &['_', '.']) {
                self.key_err(
                    &path,
                    format!("`{model}` is not an Odoo model name (such as `res.partner`)"),
                );
                continue;
            }
            let ttl_path = [key("cache"), key("models"), Seg::Key(&model), key("ttl")];
            let ttl = m
                .ttl
                .as_ref()
                .map(|text| self.duration(Some(text), &ttl_path, Duration::ZERO));
            let shared = m.shared.unwrap_or_default();
            let enabled = m.enabled.unwrap_or(true);
            models.insert(
                model,
                ModelCacheConfig {
                    enabled,
                    ttl,
                    shared,
                },
            );
        }

        CacheConfig {
            enabled,
            backend,
            max_memory,
            key_secret,
            max_entry_size,
            stale_if_error,
            invalidation,
            lock_timeout,
            static_assets,
            ttl,
            models,
        }
    }

    fn rate_limits(&mut self) -> RateLimitConfig {
        let d = RateLimitConfig::default();
        let f: RateLimitsFile = self.section("rate_limits").or_default();
        let p = |k: &'static str| [key("rate_limits"), key(k)];
        RateLimitConfig {
            auth: self.rate(f.auth.as_ref(), &p("auth")).unwrap_or(d.auth),
            read: self.rate(f.read.as_ref(), &p("read")).unwrap_or(d.read),
            write: self.rate(f.write.as_ref(), &p("write")).unwrap_or(d.write),
            delete: self
                .rate(f.delete.as_ref(), &p("delete"))
                .unwrap_or(d.delete),
            exempt: self.nets(f.exempt, &p("exempt")),
        }
    }

    fn optimizer(&mut self) -> OptimizerConfig {
        let d = OptimizerConfig::default();
        let f: OptimizerFile = self.section("optimizer").or_default();
        let o = self.optimizer_overrides(f, &[key("optimizer")]);
        let mut max_limits = d.max_limits;
        for (method, cap) in o.max_limits {
            match cap {
                Some(n) => max_limits.insert(method, n),
                None => max_limits.remove(&method),
            };
        }
        OptimizerConfig {
            max_limits,
            models: o.models,
            limit_caps: bridgecore_filters::rewrite::CapRoutes {
                api: o.limit_caps.api.unwrap_or(d.limit_caps.api),
                rpc: o.limit_caps.rpc.unwrap_or(d.limit_caps.rpc),
                web: o.limit_caps.web.unwrap_or(d.limit_caps.web),
            },
            canonical_domains: o.domains.unwrap_or(d.canonical_domains),
            expand_dotted: o.expand_dotted.unwrap_or(d.expand_dotted),
            expand: o.expand,
            default_fields: o.default_fields.unwrap_or(d.default_fields),
            read_concurrency: o.read_concurrency.unwrap_or(d.read_concurrency),
        }
    }

    /// Checks an `optimizer:` section (the global one, or a tenant's at `base`) into the
    /// settings it gives; every bad key or value is reported and left out.
    fn optimizer_overrides(&mut self, f: OptimizerFile, base: &[Seg<'_>]) -> OptimizerOverrides {
        let mut o = OptimizerOverrides::default();
        let method_ok = |m: &str| is_name(m, &['_']);
        let model_ok = |m: &str| is_name(m, &['_', '.']);

        for (method, value) in f.max_limits.unwrap_or_default() {
            let mut p = base.to_vec();
            p.extend([key("max_limits"), Seg::Key(&method)]);
            if !method_ok(&method) {
                self.key_err(
                    &p,
                    format!("`{method}` is not an Odoo method name (letters, digits and `_`)"),
                );
                continue;
            }
            match value {
                Some(0) => {
                    self.value_err(&p, "must be at least 1 (write `null` to remove the cap)")
                }
                cap => {
                    o.max_limits.insert(method.clone(), cap);
                }
            }
        }

        for (model, entry) in f.models.unwrap_or_default() {
            let mut p = base.to_vec();
            p.extend([key("models"), Seg::Key(&model)]);
            if !model_ok(&model) {
                self.key_err(
                    &p,
                    format!("`{model}` is not an Odoo model name (such as `res.partner`)"),
                );
                continue;
            }
            let mut methods = BTreeMap::new();
            for (method, value) in entry.max_limits.unwrap_or_default() {
                let mut mp = p.clone();
                mp.extend([key("max_limits"), Seg::Key(&method)]);
                if !method_ok(&method) {
                    self.key_err(
                        &mp,
                        format!("`{method}` is not an Odoo method name (letters, digits and `_`)"),
                    );
                    continue;
                }
                match value {
                    Some(0) => self.value_err(
                        &mp,
                        "must be at least 1 (write `null` to exempt the model from the cap)",
                    ),
                    cap => {
                        methods.insert(method.clone(), cap);
                    }
                }
            }
            o.models.insert(model.clone(), methods);
        }

        let caps = f.limit_caps.unwrap_or_default();
        o.limit_caps = CapRoutesOverrides {
            api: caps.api,
            rpc: caps.rpc,
            web: caps.web,
        };

        if let Some(mode) = f.canonical_domains {
            let mut p = base.to_vec();
            p.push(key("canonical_domains"));
            match DomainMode::from_name(&mode) {
                Some(m) => o.domains = Some(m),
                None => self.value_err(
                    &p,
                    format!("unknown mode `{mode}`: expected `forward`, `key` or `off`"),
                ),
            }
        }
        o.expand_dotted = f.expand_dotted;

        let global = base.len() == 1;
        for (model, fields) in f.expand.unwrap_or_default() {
            let mut p = base.to_vec();
            p.extend([key("expand"), Seg::Key(&model)]);
            if !model_ok(&model) {
                self.key_err(
                    &p,
                    format!("`{model}` is not an Odoo model name (such as `sale.order`)"),
                );
                continue;
            }
            if global && fields.is_empty() {
                self.value_err(
                    &p,
                    "list at least one relational field, e.g. `{partner_id: [name, email]}`",
                );
                continue;
            }
            let mut out = BTreeMap::new();
            for (field, subfields) in fields {
                let mut fp = p.clone();
                fp.push(Seg::Key(&field));
                if !method_ok(&field) {
                    self.key_err(
                        &fp,
                        format!("`{field}` is not an Odoo field name (letters, digits and `_`)"),
                    );
                    continue;
                }
                if subfields.is_empty() {
                    self.value_err(&fp, "list at least one field to read, e.g. `[name, email]`");
                    continue;
                }
                let mut ok = true;
                for (i, sub) in subfields.iter().enumerate() {
                    if !method_ok(sub) {
                        let mut sp = fp.clone();
                        sp.push(Seg::Index(i));
                        self.value_err(
                            &sp,
                            format!("`{sub}` is not an Odoo field name (letters, digits and `_`)"),
                        );
                        ok = false;
                    }
                }
                if ok {
                    out.insert(field.clone(), subfields.clone());
                }
            }
            o.expand.insert(model.clone(), out);
        }

        if let Some(name) = f.default_fields {
            let mut p = base.to_vec();
            p.push(key("default_fields"));
            match DefaultFields::from_name(&name) {
                Some(d) => o.default_fields = Some(d),
                None => self.value_err(
                    &p,
                    format!("unknown value `{name}`: expected `all` or `exclude_binary`"),
                ),
            }
        }

        if let Some(n) = f.read_concurrency {
            let mut p = base.to_vec();
            p.push(key("read_concurrency"));
            match usize::try_from(n) {
                Ok(n) if (1..=MAX_READ_CONCURRENCY).contains(&n) => o.read_concurrency = Some(n),
                _ => self.value_err(&p, format!("must be between 1 and {MAX_READ_CONCURRENCY}")),
            }
        }
        o
    }

    fn compression(&mut self) -> CompressionConfig {
        let d = CompressionConfig::default();
        let f: CompressionFile = self.section("compression").or_default();
        CompressionConfig {
            gzip: f.gzip.unwrap_or(d.gzip),
            brotli: f.brotli.unwrap_or(d.brotli),
            zstd: f.zstd.unwrap_or(d.zstd),
            min_size: self.size(
                f.min_size.as_ref(),
                &[key("compression"), key("min_size")],
                d.min_size,
            ),
        }
    }

    fn websocket(&mut self) -> WebsocketConfig {
        let d = WebsocketConfig::default();
        let f: WebsocketFile = self.section("websocket").or_default();
        let at = |k: &'static str| [key("websocket"), key(k)];
        let count = |this: &mut Self, v: Option<u64>, k: &'static str, default: usize| match v {
            None => default,
            Some(0) => {
                this.value_err(&at(k), "must be at least 1");
                default
            }
            Some(n) => usize::try_from(n).unwrap_or(default),
        };
        let max_connections = count(
            self,
            f.max_connections,
            "max_connections",
            d.max_connections,
        );
        let max_connections_per_user = count(
            self,
            f.max_connections_per_user,
            "max_connections_per_user",
            d.max_connections_per_user,
        );
        let max_subscriptions = count(
            self,
            f.max_subscriptions,
            "max_subscriptions",
            d.max_subscriptions,
        );
        let max_record_ids = count(self, f.max_record_ids, "max_record_ids", d.max_record_ids);
        let queue_size = count(self, f.queue_size, "queue_size", d.queue_size);
        let mut max_message_size = self.size(
            f.max_message_size.as_ref(),
            &at("max_message_size"),
            d.max_message_size,
        );
        if !(256..=16 * 1024 * 1024).contains(&max_message_size) {
            self.value_err(&at("max_message_size"), "must be between 256B and 16MiB");
            max_message_size = d.max_message_size;
        }
        WebsocketConfig {
            poll_interval: self.positive_duration(
                f.poll_interval.as_ref(),
                &at("poll_interval"),
                d.poll_interval,
            ),
            poll_overlap: self.duration(
                f.poll_overlap.as_ref(),
                &at("poll_overlap"),
                d.poll_overlap,
            ),
            ping_interval: self.positive_duration(
                f.ping_interval.as_ref(),
                &at("ping_interval"),
                d.ping_interval,
            ),
            auth_timeout: self.positive_duration(
                f.auth_timeout.as_ref(),
                &at("auth_timeout"),
                d.auth_timeout,
            ),
            max_connections,
            max_connections_per_user,
            max_subscriptions,
            max_record_ids,
            queue_size,
            max_message_size,
            message_rate: self
                .rate(f.message_rate.as_ref(), &at("message_rate"))
                .unwrap_or(d.message_rate),
            send_timeout: self.positive_duration(
                f.send_timeout.as_ref(),
                &at("send_timeout"),
                d.send_timeout,
            ),
        }
    }

    fn tenants(&mut self, jwt_on: bool) -> Vec<TenantConfig> {
        let root = self.root;
        let Some(section) = root.entry("tenants") else {
            if matches!(root.kind, Kind::Map(_)) {
                self.problems.push(Problem::new(
                    Pos::START,
                    "no `tenants:` section: at least one tenant is required (see conf/bridgecore.yaml)",
                ));
            }
            return Vec::new();
        };
        let empty = match &section.value.kind {
            Kind::Map(entries) => entries.is_empty(),
            Kind::Scalar(Scalar { text, plain: true }) => {
                matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            _ => false,
        };
        let Kind::Map(entries) = &section.value.kind else {
            if empty {
                self.problems.push(Problem::new(
                    section.key_pos,
                    "`tenants` is empty: at least one tenant is required (BridgeCore would answer every request with 404)",
                ));
            } else {
                self.problems.push(Problem::new(
                    section.value.pos,
                    "`tenants`: expected a mapping of tenant names to their settings (`odoo: {upstream: [...]}`)",
                ));
            }
            return Vec::new();
        };
        if empty {
            self.problems.push(Problem::new(
                section.key_pos,
                "`tenants` is empty: at least one tenant is required (BridgeCore would answer every request with 404)",
            ));
            return Vec::new();
        }

        let mut tenants = Vec::new();
        let mut host_owner: HashMap<String, String> = HashMap::new();
        for entry in entries {
            let name = entry.key.as_str();
            if !is_name(name, &['_', '.', '-']) {
                self.problems.push(Problem::new(
                    entry.key_pos,
                    format!("invalid tenant name `{name}`: it is used in `/api/v1/systems/{{name}}/` URLs, so use only letters, digits, `_`, `.` and `-`"),
                ));
            }
            let Some(f) = self.deserialize::<TenantFile>(&entry.value, &format!("tenants.{name}"))
            else {
                continue;
            };
            let tenant = self.tenant(name, f, &mut host_owner, jwt_on);
            tenants.push(tenant);
        }
        if tenants.len() > 1 {
            for t in &tenants {
                if t.hosts.is_empty() {
                    self.warnings.push(format!(
                        "tenant `{}` has no hosts: only /api/v1/systems/{}/ reaches it",
                        t.name, t.name
                    ));
                }
            }
        }
        tenants
    }

    fn addresses(&mut self, list: &[String], path: &[Seg<'_>]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let mut item = path.to_vec();
            item.push(Seg::Index(i));
            match check_upstream(text) {
                Ok(()) => out.push(text.clone()),
                Err(why) => self.value_err(&item, format!("invalid upstream `{text}`: {why}")),
            }
        }
        out
    }

    fn tenant(
        &mut self,
        name: &str,
        f: TenantFile,
        host_owner: &mut HashMap<String, String>,
        jwt_on: bool,
    ) -> TenantConfig {
        let d = TenantConfig::default();
        let at = |k: &'static str| [key("tenants"), Seg::Key(name), key(k)];

        let mut hosts = Vec::new();
        for (i, text) in f.hosts.unwrap_or_default().iter().enumerate() {
            let path = [key("tenants"), Seg::Key(name), key("hosts"), Seg::Index(i)];
            match normalize_host(text) {
                Err(why) => self.value_err(&path, format!("invalid host `{text}`: {why}")),
                Ok(host) => {
                    if let Some(owner) = host_owner.get(&host) {
                        let message = if owner == name {
                            format!("host `{host}` is listed twice")
                        } else {
                            format!("host `{host}` is already used by tenant `{owner}` (hosts are compared without case and port)")
                        };
                        self.value_err(&path, message);
                    } else {
                        host_owner.insert(host.clone(), name.to_owned());
                        hosts.push(host);
                    }
                }
            }
        }

        let upstream = match f.upstream {
            None => {
                self.key_err(
                    &[key("tenants"), Seg::Key(name)],
                    "tenant has no `upstream`: list Odoo's address, e.g. `upstream: [\"127.0.0.1:8069\"]`",
                );
                Vec::new()
            }
            Some(list) if list.is_empty() => {
                self.value_err(
                    &at("upstream"),
                    "needs at least one `host:port`, e.g. `[\"127.0.0.1:8069\"]`",
                );
                Vec::new()
            }
            Some(list) => self.addresses(&list, &at("upstream")),
        };
        let websocket_upstream = match f.websocket_upstream {
            None => upstream.clone(),
            Some(list) if list.is_empty() => {
                self.value_err(
                    &at("websocket_upstream"),
                    "needs at least one `host:port` (leave the key out to use `upstream`)",
                );
                Vec::new()
            }
            Some(list) => self.addresses(&list, &at("websocket_upstream")),
        };

        let connect_timeout = self.positive_duration(
            f.connect_timeout.as_ref(),
            &at("connect_timeout"),
            d.connect_timeout,
        );
        let timeout = self.positive_duration(f.timeout.as_ref(), &at("timeout"), d.timeout);
        let max_connections = match f.max_connections {
            None => d.max_connections,
            Some(0) => {
                self.value_err(&at("max_connections"), "must be at least 1");
                d.max_connections
            }
            Some(n) => usize::try_from(n).unwrap_or(d.max_connections),
        };

        let service_login = f.service_login.filter(|s| !s.is_empty());
        let service_password = f.service_password.filter(|s| !s.is_empty());
        match (&service_login, &service_password) {
            (Some(_), None) => self.value_err(
                &at("service_login"),
                "is set but `service_password` is empty: set both or neither",
            ),
            (None, Some(_)) => self.value_err(
                &at("service_password"),
                "is set but `service_login` is empty: set both or neither",
            ),
            _ => {}
        }

        let require_jwt = f.require_jwt.unwrap_or(d.require_jwt);
        if require_jwt && !jwt_on {
            self.value_err(
                &at("require_jwt"),
                "needs JWT auth (`auth.jwt.secret`, or key material for RS256/ES256/EdDSA): without it every Odoo call would be refused",
            );
        }

        let o = f.rate_limits.unwrap_or_default();
        let rp = |k: &'static str| [key("tenants"), Seg::Key(name), key("rate_limits"), key(k)];
        let rate_limits = RateLimitOverrides {
            auth: self.rate(o.auth.as_ref(), &rp("auth")),
            read: self.rate(o.read.as_ref(), &rp("read")),
            write: self.rate(o.write.as_ref(), &rp("write")),
            delete: self.rate(o.delete.as_ref(), &rp("delete")),
        };

        let h = f.health_check.unwrap_or_default();
        let dh = HealthCheckConfig::default();
        let hp = |k: &'static str| [key("tenants"), Seg::Key(name), key("health_check"), key(k)];
        let path = match h.path {
            None => dh.path.clone(),
            Some(p) if p.starts_with('/') && !p.contains(char::is_whitespace) => p,
            Some(p) => {
                self.value_err(
                    &hp("path"),
                    format!("`{p}` is not a path such as `/web/health`"),
                );
                dh.path.clone()
            }
        };
        let interval = self.duration(h.interval.as_ref(), &hp("interval"), dh.interval);
        let check_timeout = self.positive_duration(h.timeout.as_ref(), &hp("timeout"), dh.timeout);
        let mut count = |v: Option<u64>, k: &'static str, d: u32| match v {
            None => d,
            Some(0) => {
                self.value_err(&hp(k), "must be at least 1");
                d
            }
            Some(n) => u32::try_from(n).unwrap_or(d),
        };
        let rise = count(h.rise, "rise", dh.rise);
        let fall = count(h.fall, "fall", dh.fall);
        let cooldown = self.positive_duration(h.cooldown.as_ref(), &hp("cooldown"), dh.cooldown);
        let health_check = HealthCheckConfig {
            path,
            interval,
            timeout: check_timeout,
            rise,
            fall,
            cooldown,
        };
        let balance = match f.balance.as_deref() {
            None => d.balance,
            Some("round_robin") => Balance::RoundRobin,
            Some("least_connections") => Balance::LeastConnections,
            Some(other) => {
                self.value_err(
                    &at("balance"),
                    format!(
                        "unknown balancing `{other}`: expected `round_robin` or `least_connections`"
                    ),
                );
                d.balance
            }
        };
        let mut addons_paths = Vec::new();
        for (i, dir) in f.addons_paths.unwrap_or_default().iter().enumerate() {
            let path = [
                key("tenants"),
                Seg::Key(name),
                key("addons_paths"),
                Seg::Index(i),
            ];
            if !dir.starts_with('/') || dir.contains('\0') {
                self.value_err(
                    &path,
                    format!("`{dir}` is not an absolute directory path such as `/opt/odoo/addons`"),
                );
            } else {
                addons_paths.push(PathBuf::from(dir));
            }
        }
        let optimizer = match f.optimizer {
            None => OptimizerOverrides::default(),
            Some(o) => {
                self.optimizer_overrides(o, &[key("tenants"), Seg::Key(name), key("optimizer")])
            }
        };
        TenantConfig {
            optimizer,
            health_check,
            balance,
            shared_sessions: f.shared_sessions.unwrap_or(d.shared_sessions),
            addons_paths,
            name: name.to_owned(),
            hosts,
            upstream,
            websocket_upstream,
            database: f.database.filter(|s| !s.is_empty()),
            connect_timeout,
            timeout,
            max_connections,
            service_login,
            service_password,
            require_jwt,
            allow_database_manager: f.allow_database_manager.unwrap_or(d.allow_database_manager),
            filestore: f.filestore.filter(|s| !s.is_empty()),
            rate_limits,
        }
    }
}

const REDIS_SCHEMES: &[&str] = &["redis://", "redis+unix://", "unix://"];

/// A CIDR, or a bare address as a single-host network.
fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, not starting or ending
/// with `-`.
fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address, and a port 1-65535.
fn check_upstream(text: &str) -> Result<(), String> {
    if text.contains("://") {
        return Err("write `host:port` without a scheme, e.g. `127.0.0.1:8069`".to_owned());
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "the port is missing: write `host:port`, e.g. `{text}:8069`"
        ));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return Err(format!("`{port}` is not a port (1-65535)")),
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("`{inner}` is not an IPv6 address"));
    }
    if host.contains(':') {
        return Err("put IPv6 addresses in brackets, e.g. `[::1]:8069`".to_owned());
    }
    if host.parse::<IpAddr>().is_ok() || is_hostname(host) {
        Ok(())
    } else {
        Err(format!("`{host}` is not a host name or IP address"))
    }
}

/// A `hosts:` entry as the router compares it: lowercased, without port.
fn normalize_host(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if lower.is_empty() {
        return Err("a host name is required".to_owned());
    }
    if lower.contains('/') {
        return Err("write only the host name, without scheme or path".to_owned());
    }
    if lower.contains('*') {
        return Err("wildcards are not supported: list each host name".to_owned());
    }
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err("unclosed `[`".to_owned());
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{inner}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("expected `:port` after `]`".to_owned()),
            },
        };
        (format!("[{inner}]"), port)
    } else {
        match lower.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return Err("put IPv6 addresses in brackets, e.g. `[::1]`".to_owned())
            }
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (lower.clone(), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(format!("`{port}` is not a port"));
        }
    }
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || is_hostname(&host) {
        Ok(host)
    } else {
        Err("expected a host name such as `erp.example.com` (letters, digits, `-`, `.`)".to_owned())
    }
}
