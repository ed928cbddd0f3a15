//! TLS material for the TLS and WSS transports: a self-signed certificate
//! generator (for tests and first runs), PEM loading, and rustls
//! configurations built on the `ring` provider explicitly (so the choice does
//! not depend on which rustls features other crates enable).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct CertifiedKey {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Generates a self-signed certificate (ECDSA P-256) for the given
/// subject alternative names (DNS names or IP addresses).
pub fn self_signed(names: &[&str]) -> Result<CertifiedKey, rcgen::Error> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let ck = rcgen::generate_simple_self_signed(names)?;
    Ok(CertifiedKey {
        chain: vec![ck.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
    })
}

/// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1).
pub fn load_pem(cert_path: &Path, key_path: &Path) -> io::Result<CertifiedKey> {
    let bad = |e: rustls::pki_types::pem::Error| {
        io::Error::new(io::ErrorKind::InvalidData, e.to_string())
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if chain.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no certificate in PEM file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(bad)?;
    Ok(CertifiedKey { chain, key })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration (TLS 1.2 and 1.3, no client authentication).
pub fn server_config(ck: CertifiedKey) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(ck.chain, ck.key)?;
    Ok(Arc::new(cfg))
}

/// A client configuration trusting exactly the given certificates (a private
/// CA, or a peer's self-signed certificate).
pub fn client_config(
    trusted: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone())?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
