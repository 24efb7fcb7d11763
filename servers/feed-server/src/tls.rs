//! `--tls-self-signed`: a certificate made at start-up, so that browsers (which speak HTTP/2
//! only over TLS) and the load generator can reach the server over h2 without a CA.

use pushbench_sse::{TlsConfig, TlsError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the certificate is valid for: the loopback names a local run uses.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why no self-signed certificate could be made.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("making the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A fresh key and a certificate for [`SELF_SIGNED_NAMES`], signed by that key.
pub fn self_signed() -> Result<TlsConfig, SelfSignedError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let certificate: CertificateDer<'static> = made.cert.der().clone();
    Ok(TlsConfig::new(
        vec![certificate],
        key,
        format!("self-signed for {}", SELF_SIGNED_NAMES.join(", ")),
    )?)
}
