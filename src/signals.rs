//! SIGHUP: re-read the configuration file and swap it in, keeping the old one when the new
//! file is invalid.

use std::path::PathBuf;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::Config;
use crate::Handle;

/// Reloads `path` on every SIGHUP.
pub struct ReloadOnHangup {
    /// The configuration file.
    pub path: PathBuf,
    /// The running BridgeCore.
    pub handle: Handle,
}

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            log::error!("cannot listen for SIGHUP: reloads are off");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = hup.recv() => {
                    if got.is_none() { return; }
                    let path = self.path.clone();
                    let loaded = tokio::task::spawn_blocking(move || Config::load(&path)).await;
                    match loaded {
                        Ok(Ok(cfg)) => {
                            // Building a generation resolves names and reads key files: off
                            // the runtime's threads.
                            let handle = self.handle.clone();
                            match tokio::task::spawn_blocking(move || handle.reload(cfg)).await {
                                Ok(Ok(())) => log::info!("configuration reloaded from {}", self.path.display()),
                                Ok(Err(e)) => log::error!("reload refused, keeping the old configuration: {e}"),
                                Err(e) => log::error!("reload failed: {e}"),
                            }
                        }
                        Ok(Err(errors)) => {
                            self.handle.shared.metrics.reloads.with_label_values(&["error"]).inc();
                            for e in &errors.0 {
                                log::error!("reload refused: {e}");
                            }
                        }
                        Err(e) => log::error!("reload failed: {e}"),
                    }
                }
            }
        }
    }
}
