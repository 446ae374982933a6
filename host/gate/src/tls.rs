//! TLS on both sides of the gate, with rustls: the listener's certificate, re-read when its
//! files change (rotation by cert-manager or certbot without a restart), and the client
//! configuration for an HTTPS upstream (the system's roots, an optional private CA, an
//! optional client certificate). Verification is never turned off.

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertificateFiles {
    pub(crate) fn relative_to(self, base: &Path) -> Self {
        CertificateFiles { cert: base.join(self.cert), key: base.join(self.key) }
    }
}

/// The one crypto provider the gate uses, on both sides.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a certificate chain and its key, checked to belong together; the error names the
/// file and what is wrong.
fn read_pair(
    files: &CertificateFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = load_certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "`{}`: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            files.key.display()
        )
    })?;
    CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider()).map_err(|e| {
        format!("`{}` and `{}` do not make a pair: {e}", files.cert.display(), files.key.display())
    })?;
    Ok((chain, key))
}

fn load_pair(files: &CertificateFiles) -> Result<CertifiedKey, String> {
    let (chain, key) = read_pair(files)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| e.to_string())
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect())
        .map_err(|e| format!("`{}`: cannot read PEM certificates: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("`{}`: holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

fn not_after(certificate: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// When the files were last written, to notice a rotation; following symlinks, as
/// Kubernetes secret volumes swap them.
fn stamp(files: &CertificateFiles) -> Option<[(SystemTime, u64); 2]> {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([one(&files.cert)?, one(&files.key)?])
}

/// The listener's TLS: one `ServerConfig` whose certificate is swapped on rotation;
/// handshakes in flight and connections already open keep the pair they started with.
pub struct ServerTls {
    resolver: Arc<RotatingCertificate>,
    config: Arc<ServerConfig>,
}

#[derive(Debug)]
struct RotatingCertificate {
    files: CertificateFiles,
    current: ArcSwap<CertifiedKey>,
    seen: Mutex<Option<[(SystemTime, u64); 2]>>,
}

impl ResolvesServerCert for RotatingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What a look at the certificate files found.
#[derive(Debug)]
pub enum Rotation {
    Unchanged,
    Rotated,
    /// The files changed but the new pair is unusable; the old one keeps serving.
    Refused(String),
}

impl ServerTls {
    /// Load the pair; HTTP/2 and HTTP/1.1 are offered by ALPN, in that order.
    pub fn load(files: &CertificateFiles) -> Result<Self, String> {
        let seen = stamp(files);
        let pair = load_pair(files)?;
        let resolver = Arc::new(RotatingCertificate {
            files: files.clone(),
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new(seen),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls { resolver, config: Arc::new(config) })
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// When the certificate being served (the chain's first) expires: its notAfter, as Unix
    /// time; `None` if it does not parse as X.509 (rustls serves it all the same).
    pub fn not_after(&self) -> Option<i64> {
        not_after(self.resolver.current.load().cert.first()?)
    }

    /// Re-read the pair if its files changed since the last look.
    pub fn rotate_if_changed(&self) -> Rotation {
        let files = &self.resolver.files;
        let now = stamp(files);
        let mut seen = self.resolver.seen.lock();
        if now.is_none() || now == *seen {
            return Rotation::Unchanged;
        }
        *seen = now;
        match load_pair(files) {
            Ok(pair) => {
                self.resolver.current.store(Arc::new(pair));
                Rotation::Rotated
            }
            Err(why) => Rotation::Refused(why),
        }
    }
}

/// The client side for an HTTPS upstream, and when its client certificate expires.
pub struct UpstreamTls {
    pub config: ClientConfig,
    /// The client certificate's notAfter, as Unix time: `None` without one, or if it does
    /// not parse as X.509.
    pub client_certificate_not_after: Option<i64>,
}

/// The client side for an HTTPS upstream: the system's roots plus `ca` if given, and a client
/// certificate for registries that require mutual TLS.
pub fn upstream_config(
    ca: Option<&Path>,
    client: Option<&CertificateFiles>,
) -> Result<UpstreamTls, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system root certificate could not be read");
    }
    let (_added, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates rustls cannot use were skipped");
    }
    if let Some(ca) = ca {
        for certificate in load_certificates(ca)? {
            roots.add(certificate).map_err(|e| {
                format!("upstream_ca: `{}`: not a usable CA certificate: {e}", ca.display())
            })?;
        }
    }
    if roots.is_empty() {
        return Err(
            "no root certificate to verify the upstream with: the system has none readable; give `upstream_ca`"
                .into(),
        );
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let (config, client_certificate_not_after) = match client {
        Some(files) => {
            let (chain, key) =
                read_pair(files).map_err(|e| format!("upstream_client_cert: {e}"))?;
            let expires = chain.first().and_then(not_after);
            let config = builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("upstream_client_cert: {e}"))?;
            (config, expires)
        }
        None => (builder.with_no_client_auth(), None),
    };
    // The connector offers HTTP/1.1 by ALPN itself (`enable_http1`).
    Ok(UpstreamTls { config, client_certificate_not_after })
}
