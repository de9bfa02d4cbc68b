//! TLS listeners (`server.tls`): certificates chosen by SNI among a listener's entries, and
//! re-read on reload without touching open connections.
//!
//! Each listen address gets one [`CertResolver`], handed to Pingora's rustls acceptor once; a
//! reload swaps the certificates inside it, so new handshakes use the new files while existing
//! connections (Odoo's bus websocket included) carry on. For SNI, each certificate is offered
//! for the tenant hosts it is valid for (rustls checks the name against the certificate); a
//! client that names no known host, or none at all, gets the listener's first certificate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::tls::sign::{CertifiedKey, SigningKey};
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCertUsingSni;

use crate::config::Config;

/// Why a listener's certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is unreadable, is not PEM, or the two do not match.
    #[error("server.tls: {0}")]
    Pem(#[from] PemError),
    /// The listeners cannot change this way (a new address needs a restart).
    #[error("server.tls: {0}")]
    Listener(String),
}

/// What is wrong with one listener's certificate chain or private key, by file: configuration
/// validation (`bridgecore --test`) reports it at the YAML value that names the file.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The certificate chain file (`server.tls[].cert`).
    #[error("`{}`: {reason}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key file (`server.tls[].key`), or a key that is not the certificate's.
    #[error("`{}`: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

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

/// Reads a PEM certificate chain (leaf first), refusing a file that holds none.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let err = |reason: String| PemError::Cert {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(pem_reason(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(err(
            "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into(),
        ));
    }
    Ok(chain)
}

/// Reads the first PEM private key (PKCS#8, PKCS#1 or SEC1) and loads it for signing.
fn read_key(path: &Path, provider: &CryptoProvider) -> Result<Arc<dyn SigningKey>, PemError> {
    let err = |reason: String| PemError::Key {
        path: path.to_owned(),
        reason,
    };
    let der = match PrivateKeyDer::from_pem_file(path) {
        Ok(der) => der,
        Err(pem::Error::NoItemsFound) => {
            return Err(err(
                "holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)".into(),
            ))
        }
        Err(e) => return Err(err(pem_reason(e))),
    };
    provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| err(format!("not a usable private key: {e}")))
}

fn pem_reason(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        e => format!("not valid PEM: {e}"),
    }
}

/// Loads and checks a certificate chain and its private key: both parse, the leaf certificate
/// is well-formed and the key is the one it certifies. Every problem found is returned, each
/// blamed on its file (both files when both are broken).
pub fn check_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, Vec<PemError>> {
    pingora::tls::install_default_crypto_provider();
    let Some(provider) = CryptoProvider::get_default() else {
        return Err(vec![PemError::Key {
            path: key.to_owned(),
            reason: "no TLS crypto provider is installed".into(),
        }]);
    };
    let (chain, signing) = match (read_chain(cert), read_key(key, provider)) {
        (Ok(chain), Ok(signing)) => (chain, signing),
        (chain, signing) => {
            return Err(chain.err().into_iter().chain(signing.err()).collect());
        }
    };
    let ck = CertifiedKey::new(chain, signing);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(vec![PemError::Key {
            path: key.to_owned(),
            reason: format!(
                "is not the private key of the certificate in `{}`",
                cert.display()
            ),
        }]),
        Err(e) => Err(vec![PemError::Cert {
            path: cert.to_owned(),
            reason: format!("not a valid certificate: {e}"),
        }]),
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    // The first problem is enough for a refused start or reload (`--test` lists them all).
    check_pair(cert, key).map_err(|errors| {
        errors.into_iter().next().map_or_else(
            || TlsError::Listener(format!("`{}` cannot be loaded", cert.display())),
            TlsError::Pem,
        )
    })
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

    /// Loads the certificates of a new configuration without installing them: a reload
    /// installs them with [`TlsListeners::install`] only once everything else of the new
    /// configuration has been built, so a refused reload changes nothing. Addresses cannot
    /// change without a restart.
    pub fn prepare(&self, config: &Config) -> Result<StagedCerts, TlsError> {
        let new = build(config)?;
        for addr in new.keys() {
            if !self.resolvers.contains_key(addr) {
                return Err(TlsError::Listener(format!(
                    "`{addr}` is a new TLS listen address: it needs a restart (or a graceful upgrade)"
                )));
            }
        }
        Ok(StagedCerts(new))
    }

    /// Swaps in certificates loaded by [`TlsListeners::prepare`]: new handshakes use them,
    /// open connections carry on.
    pub fn install(&self, staged: StagedCerts) {
        let mut new = staged.0;
        for (addr, resolver) in &self.resolvers {
            match new.remove(addr) {
                Some(certs) => resolver.certs.store(Arc::new(certs)),
                None => log::warn!(
                    "server.tls: `{addr}` was removed from the configuration; it keeps its last certificates until a restart"
                ),
            }
        }
    }
}

/// Certificates loaded for a reload, not yet in use.
pub struct StagedCerts(BTreeMap<String, Certs>);

impl std::fmt::Debug for StagedCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}
