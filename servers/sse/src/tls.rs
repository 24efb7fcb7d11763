//! TLS for [`crate::serve`]: a certificate and key, from PEM files or made up for `localhost`
//! at start-up, served on the same port as cleartext with ALPN `h2` and `http/1.1`.
//!
//! Browsers speak HTTP/2 only over TLS, and only when ALPN offers `h2`: a server that forgets
//! ALPN silently falls back to HTTP/1.1, and the browser's six-connections-per-host limit
//! returns (the seventh event stream of a page never opens). [`TlsConfig::acceptor`] sets
//! ALPN from what the server speaks.
//!
//! rustls on the *ring* provider, chosen explicitly: the default aws-lc provider needs cmake
//! and takes minutes to build.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the certificate chain {path}: {source}")]
    Certificates {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { path: PathBuf },
    #[error("reading the private key {path}: {source}")]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A server certificate chain and its key; cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    certificates: Vec<CertificateDer<'static>>,
    /// Where the certificate came from, for logs and `Debug`.
    source: String,
    /// The checked configuration (ALPN unset): building it up front turns a key that does not
    /// match its certificate into an error at start-up, not at the first connection.
    checked: Arc<rustls::ServerConfig>,
}

impl TlsConfig {
    /// A certificate chain and its private key (PKCS#8, PKCS#1 or SEC1), PEM-encoded.
    pub fn from_pem_files(certificates: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(certificates)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::Certificates {
                path: certificates.to_path_buf(),
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: certificates.to_path_buf(),
            });
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
            path: key.to_path_buf(),
            source,
        })?;
        Self::new(chain, private, certificates.display().to_string())
    }

    /// A certificate and key already decoded (say, from a self-signed certificate made at
    /// start-up); `source` says where they came from.
    pub fn new(
        certificates: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        source: String,
    ) -> Result<Self, TlsError> {
        let checked = Arc::new(server_config(&certificates, &key)?);
        Ok(TlsConfig {
            certificates,
            source,
            checked,
        })
    }

    /// The leaf certificate, DER-encoded (a client that trusts exactly this certificate pins
    /// it; a test hands it to its client).
    pub fn leaf_certificate(&self) -> &CertificateDer<'static> {
        &self.certificates[0]
    }

    /// The acceptor [`crate::serve`] uses: ALPN `h2` then `http/1.1` when `http2`, else
    /// `http/1.1` alone.
    pub fn acceptor(&self, http2: bool) -> tokio_rustls::TlsAcceptor {
        let mut config = (*self.checked).clone();
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

fn server_config(
    certificates: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates.to_vec(), key.clone_key())
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("source", &self.source)
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

/// Two configurations are equal when they serve the same certificates (the key goes with
/// them, or building would have failed).
impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.certificates == other.certificates
    }
}

impl Eq for TlsConfig {}
