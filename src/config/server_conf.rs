//! `server:` onto Pingora's `ServerConf` (pingora-notes.md §8).
//!
//! Pingora's own YAML ignores unknown keys, so ops never edit one: BridgeCore builds the
//! `ServerConf` here. Only the keys below are set; everything else is Pingora's default
//! (`work_stealing: true`, `upstream_keepalive_pool_size: 128`, ...). The grace period is always
//! explicit: Pingora's default (300 s, with signals ignored meanwhile) is never used.

use pingora::server::configuration::ServerConf;

use super::ServerConfig;

impl ServerConfig {
    /// The Pingora server settings for this section: `threads`, `pid_file`, `upgrade_sock`,
    /// `grace_period_seconds`, `graceful_shutdown_timeout_seconds`, `daemon` and `error_log`.
    pub fn pingora_conf(&self) -> ServerConf {
        ServerConf {
            threads: self.threads,
            pid_file: self.pid_file.to_string_lossy().into_owned(),
            upgrade_sock: self.upgrade_sock.to_string_lossy().into_owned(),
            grace_period_seconds: Some(self.grace_period.as_secs()),
            graceful_shutdown_timeout_seconds: Some(self.graceful_shutdown_timeout.as_secs()),
            daemon: self.daemon,
            error_log: self
                .error_log
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            ..ServerConf::default()
        }
    }
}
