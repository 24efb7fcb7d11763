//! TLS for `https://` and `wss://` targets: the rustls client configuration the measured
//! clients use (and the control plane's reqwest client builds the same way).
//!
//! rustls on the *ring* provider, chosen explicitly: the default aws-lc provider takes minutes
//! to build. Server certificates are checked against the Mozilla roots (webpki-roots), unless
//! the scenario says `target.insecure = true`, which accepts any certificate (a self-signed
//! test target) while still checking the handshake's signatures, so the connection is as
//! costly as a verified one. ALPN offers `http/1.1` only for the HTTP/1.1 clients, `h2` only
//! for the HTTP/2 ones ([`TlsTarget::for_http2`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration")]
    Config(#[from] rustls::Error),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// What a measured client needs to speak TLS to its target.
#[derive(Clone, Debug)]
pub struct TlsTarget {
    pub config: Arc<ClientConfig>,
    /// The name sent as SNI and checked against the certificate.
    pub server_name: ServerName<'static>,
}

impl TlsTarget {
    pub fn new(host: &str, insecure: bool) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::ServerName(host.to_string()))?;
        Ok(TlsTarget {
            config: client_config(insecure)?,
            server_name,
        })
    }
}

impl TlsTarget {
    /// For the HTTP/2 clients: ALPN offers `h2` only (a server that does not pick it fails
    /// the connect).
    pub fn for_http2(host: &str, insecure: bool) -> Result<Self, TlsError> {
        let mut target = TlsTarget::new(host, insecure)?;
        let mut config = (*target.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        target.config = Arc::new(config);
        Ok(target)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration: Mozilla roots, or any certificate when `insecure`.
pub fn client_config(insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `insecure = true`: any certificate is accepted; signatures are still verified.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_build_and_names_are_checked() {
        assert!(client_config(false).is_ok());
        let t = TlsTarget::new("localhost", true).unwrap();
        assert_eq!(t.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(TlsTarget::new("127.0.0.1", false).is_ok());
        let h2 = TlsTarget::for_http2("127.0.0.1", true).unwrap();
        assert_eq!(h2.config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(matches!(
            TlsTarget::new("not a host", false),
            Err(TlsError::ServerName(_))
        ));
    }
}
