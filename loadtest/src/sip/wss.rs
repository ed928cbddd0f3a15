//! SIP over secure WebSocket (RFC 7118), client side, as a browser opens it:
//! TLS (rustls) to the WSS listener, the WebSocket handshake asking for the
//! `sip` subprotocol, then one SIP message per text frame.
//!
//! A [`Conn`] runs two tasks: a writer fed through a channel and a reader
//! that hands responses to the client transaction waiting for their Via
//! branch and requests to the connection's owner ([`Incoming`]).
//!
//! Certificates: Strait generates a self-signed one when none is
//! configured. [`client_config`] pins the exact certificate when it is
//! known (read from Strait's `state_dir`), otherwise accepts any; the
//! handshake signatures are verified either way.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::msg::SipMsg;

/// Reads the first certificate of a PEM file as DER.
pub fn read_pem_cert(path: &Path) -> io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text
        .find(begin)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no certificate in the file"))?
        + begin.len();
    let end = text[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unterminated certificate"))?;
    let b64: String = text[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[derive(Debug)]
struct Pinned {
    der: Option<Vec<u8>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.der {
            Some(d) if d.as_slice() != end_entity.as_ref() => Err(
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A TLS client configuration that accepts exactly `pinned` (DER), or any
/// server certificate when `None`.
pub fn client_config(pinned: Option<Vec<u8>>) -> io::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algs = provider.signature_verification_algorithms;
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { der: pinned, algs }))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A request (or an unmatched response) that arrived on a connection.
#[derive(Debug)]
pub struct Incoming {
    /// The connection's index.
    pub conn: usize,
    /// The message.
    pub msg: SipMsg,
}

type Pending = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<SipMsg>>>>;

/// One WebSocket connection (a simulated browser tab).
#[derive(Debug, Clone)]
pub struct Conn {
    /// Index in the pool.
    pub index: usize,
    /// Our address.
    pub local: SocketAddr,
    /// `None` asks the writer to close.
    out: mpsc::UnboundedSender<Option<String>>,
    pending: Pending,
    closed: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Conn {
    /// Opens connection `index` to `addr` (TLS with `tls`, SNI-less: an IP
    /// address), within `within`. Requests from the server go to `incoming`.
    pub async fn connect(
        index: usize,
        addr: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
        incoming: mpsc::UnboundedSender<Incoming>,
        within: Duration,
    ) -> io::Result<Conn> {
        let fut = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let local = tcp.local_addr()?;
            let tls = tokio_rustls::TlsConnector::from(tls)
                .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                .await?;
            let mut req = format!("wss://{addr}/")
                .into_client_request()
                .map_err(io::Error::other)?;
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
            let (ws, resp) = tokio_tungstenite::client_async(req, tls)
                .await
                .map_err(io::Error::other)?;
            let proto = resp
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok());
            if proto != Some("sip") {
                return Err(io::Error::other(format!(
                    "server chose subprotocol {proto:?}, not sip"
                )));
            }
            Ok::<_, io::Error>((ws, local))
        };
        let (ws, local) = tokio::time::timeout(within, fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "WSS connect timed out"))??;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Option<String>>();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let closed_w = closed.clone();
        tokio::spawn(async move {
            while let Some(Some(text)) = out_rx.recv().await {
                if sink.send(WsMessage::text(text)).await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::Relaxed);
            let _ = sink.close().await;
        });
        let pending_r = pending.clone();
        let closed_r = closed.clone();
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                let data = match frame {
                    Ok(WsMessage::Text(t)) => t.as_bytes().to_vec(),
                    Ok(WsMessage::Binary(b)) => b.to_vec(),
                    Ok(WsMessage::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let Ok(msg) = SipMsg::parse(&data) else {
                    continue;
                };
                if let Some(status) = msg.status() {
                    let branch = msg.via_branch().unwrap_or("").to_string();
                    let mut p = lock(&pending_r);
                    let waiter = if status >= 200 {
                        p.remove(&branch)
                    } else {
                        p.get(&branch).cloned()
                    };
                    drop(p);
                    match waiter {
                        Some(w) => {
                            let _ = w.send(msg);
                        }
                        None => {
                            let _ = incoming.send(Incoming { conn: index, msg });
                        }
                    }
                } else {
                    let _ = incoming.send(Incoming { conn: index, msg });
                }
            }
            closed_r.store(true, Ordering::Relaxed);
            // Waiters see their channel close.
            lock(&pending_r).clear();
        });
        Ok(Conn {
            index,
            local,
            out,
            pending,
            closed,
        })
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Sends a message (false if the connection is gone).
    pub fn send(&self, text: String) -> bool {
        !self.is_closed() && self.out.send(Some(text)).is_ok()
    }

    /// Sends a request whose top Via has `branch`; its responses arrive on
    /// the returned channel (which closes after the final one, or when the
    /// connection closes).
    pub fn request(&self, branch: &str, text: String) -> mpsc::UnboundedReceiver<SipMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(branch.to_string(), tx);
        if !self.send(text) {
            lock(&self.pending).remove(branch);
        }
        rx
    }

    /// Stops waiting for `branch` (after a timeout).
    pub fn forget(&self, branch: &str) {
        lock(&self.pending).remove(branch);
    }

    /// Closes the connection (the writer sends a close frame).
    pub fn close(&self) {
        let _ = self.out.send(None);
        self.closed.store(true, Ordering::Relaxed);
        lock(&self.pending).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pem");
        std::fs::write(
            &p,
            "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAwQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(read_pem_cert(&p).unwrap(), vec![0, 1, 2, 3, 4]);
        std::fs::write(&p, "nothing").unwrap();
        assert!(read_pem_cert(&p).is_err());
        assert!(client_config(None).is_ok());
    }
}
