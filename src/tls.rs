//! TLS listeners (`server.tls`): certificates chosen by SNI among a listener's entries, and
//! re-read on reload without touching open connections.
//!
//! Each listen address gets one [`CertResolver`], handed to Pingora's rustls acceptor once; a
//! reload swaps the certificates inside it, so new handshakes use the new files while existing
//! connections (Odoo's bus websocket included) carry on. For SNI, each certificate is offered
//! for the tenant hosts it is valid for (rustls checks the name against the certificate); a
//! client that names no known host, or none at all, gets the listener's first certificate.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};
use rustls::server::ResolvesServerCertUsingSni;

use crate::config::Config;

/// Why a listener's certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("server.tls: {0}")]
pub struct TlsError(String);

/// What one listen address serves: the SNI table and the fallback.
struct Certs {
    by_name: ResolvesServerCertUsingSni,
    fallback: Arc<CertifiedKey>,
}

/// The certificate resolver of one TLS listen address.
pub struct CertResolver {
    certs: ArcSwap<Certs>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertResolver")
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        if hello.server_name().is_some() {
            if let Some(ck) = certs.by_name.resolve(hello) {
                return Some(ck);
            }
        }
        Some(certs.fallback.clone())
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    pingora::tls::install_default_crypto_provider();
    let (chain, key_der) =
        pingora::tls::load_certs_and_key_files(&cert.to_string_lossy(), &key.to_string_lossy())
            .map_err(|e| TlsError(format!("`{}`/`{}`: {e}", cert.display(), key.display())))?
            .ok_or_else(|| {
                TlsError(format!(
                    "`{}` holds no certificate or `{}` no private key",
                    cert.display(),
                    key.display()
                ))
            })?;
    let provider = CryptoProvider::get_default()
        .ok_or_else(|| TlsError("no TLS crypto provider installed".into()))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError(format!("`{}`: {e}", key.display())))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        TlsError(format!(
            "`{}` and `{}` do not match: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Arc::new(ck))
}

/// Loads the certificates of every TLS listen address, by address.
fn build(config: &Config) -> Result<BTreeMap<String, Certs>, TlsError> {
    let hosts: Vec<&str> = config
        .tenants
        .iter()
        .flat_map(|t| t.hosts.iter().map(String::as_str))
        .collect();
    let mut out = BTreeMap::new();
    for entry in &config.server.tls {
        let ck = load(&entry.cert, &entry.key)?;
        let certs = out.entry(entry.listen.clone()).or_insert_with(|| Certs {
            by_name: ResolvesServerCertUsingSni::new(),
            fallback: ck.clone(),
        });
        for host in &hosts {
            // `add` refuses a name the certificate is not valid for (and names already taken
            // by an earlier entry): that is how each host finds its certificate.
            let _ = certs.by_name.add(host, (*ck).clone());
        }
    }
    Ok(out)
}

/// The resolvers of all TLS listeners, by listen address.
#[derive(Default)]
pub struct TlsListeners {
    resolvers: BTreeMap<String, Arc<CertResolver>>,
}

impl TlsListeners {
    /// Loads every certificate of `config`.
    pub fn new(config: &Config) -> Result<Self, TlsError> {
        let resolvers = build(config)?
            .into_iter()
            .map(|(addr, certs)| {
                (
                    addr,
                    Arc::new(CertResolver {
                        certs: ArcSwap::from_pointee(certs),
                    }),
                )
            })
            .collect();
        Ok(TlsListeners { resolvers })
    }

    /// The listen addresses and their resolvers.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<CertResolver>)> {
        self.resolvers.iter().map(|(a, r)| (a.as_str(), r))
    }

    /// Re-reads the certificates for a new configuration. Addresses cannot change without a
    /// restart; a certificate that fails to load keeps the old ones everywhere.
    pub fn reload(&self, config: &Config) -> Result<(), TlsError> {
        let mut new = build(config)?;
        for addr in new.keys() {
            if !self.resolvers.contains_key(addr) {
                return Err(TlsError(format!(
                    "`{addr}` is a new TLS listen address: it needs a restart (or a graceful upgrade)"
                )));
            }
        }
        for (addr, resolver) in &self.resolvers {
            match new.remove(addr) {
                Some(certs) => resolver.certs.store(Arc::new(certs)),
                None => log::warn!(
                    "server.tls: `{addr}` was removed from the configuration; it keeps its last certificates until a restart"
                ),
            }
        }
        Ok(())
    }
}
