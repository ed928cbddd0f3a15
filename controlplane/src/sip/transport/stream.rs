//! TCP and TLS: listeners, outgoing connections and the per-connection loop
//! (Content-Length framing, CRLF keepalives, timeouts, bounded send queue).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::counters::Counters;
use super::{
    finish, ws, CloseReason, ConnSlot, FlowCtl, FlowGuard, FlowId, Outgoing, SendError, Shared,
    Target, Transport, TransportEvent,
};
use crate::sip::framing::{StreamFramer, StreamItem};
use crate::sip::message::{error_response, Framing};
use crate::sip::ParseError;

/// Read size; also bounds what one push adds to the framer.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts connections until shutdown.
pub(super) async fn accept_loop(shared: Arc<Shared>, t: Transport, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (tcp, remote) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of descriptors or similar: back off a little
                    // instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = shared.try_slot(t) else {
            continue; // dropping `tcp` closes it
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_accepted(Arc::clone(&shared), t, tcp, remote, slot));
    }
}

async fn serve_accepted(
    shared: Arc<Shared>,
    t: Transport,
    tcp: TcpStream,
    remote: SocketAddr,
    slot: ConnSlot,
) {
    let Ok(local) = tcp.local_addr() else { return };
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let c = shared.counters(t);
    match t {
        Transport::Tcp => {
            let (guard, rx, ctl) = shared.register(slot, t, local, remote);
            serve_registered(&shared, guard, rx, ctl, tcp).await;
        }
        Transport::Tls | Transport::Wss => {
            let Some(acceptor) = shared.tls_acceptor.clone() else {
                return;
            };
            let accept = acceptor.accept(tcp).into_fallible();
            let tls = match tokio::time::timeout_at(deadline, accept).await {
                Ok(Ok(s)) => s,
                Ok(Err((_, tcp))) => {
                    // Count before the peer sees the connection close.
                    c.inc(&c.handshake_failures);
                    drop(tcp);
                    return;
                }
                Err(_) => {
                    c.inc(&c.handshake_failures);
                    return;
                }
            };
            if t == Transport::Tls {
                let (guard, rx, ctl) = shared.register(slot, t, local, remote);
                serve_registered(&shared, guard, rx, ctl, tls).await;
            } else {
                ws::serve(&shared, slot, t, local, remote, tls, deadline).await;
            }
        }
        Transport::Ws => ws::serve(&shared, slot, t, local, remote, tcp, deadline).await,
        Transport::Udp => {}
    }
}

/// Runs a registered TCP/TLS flow to its end and reports it.
async fn serve_registered<S>(
    shared: &Arc<Shared>,
    guard: FlowGuard,
    mut rx: mpsc::Receiver<Outgoing>,
    ctl: Arc<FlowCtl>,
    mut io: S,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let flow = guard.flow;
    shared
        .emit(TransportEvent::FlowOpened { flow, ws: None })
        .await;
    let reason = run_stream(shared, flow, &mut io, &mut rx, &ctl).await;
    drop(rx);
    if !matches!(reason, CloseReason::PeerClosed | CloseReason::Io(_)) {
        let _ = timeout(Duration::from_secs(1), io.shutdown()).await;
    }
    drop(io);
    finish(guard, reason).await;
}

/// Writes one message (or pong) within the write timeout.
pub(super) async fn write_counted<S: AsyncWrite + Unpin>(
    io: &mut S,
    data: &[u8],
    limit: Duration,
    c: &Counters,
) -> Result<(), CloseReason> {
    let r = timeout(limit, async {
        io.write_all(data).await?;
        io.flush().await
    })
    .await;
    match r {
        Ok(Ok(())) => {
            c.inc(&c.tx_messages);
            c.add(&c.tx_bytes, data.len());
            Ok(())
        }
        Ok(Err(e)) => Err(CloseReason::Io(e.kind())),
        Err(_) => Err(CloseReason::WriteTimeout),
    }
}

async fn run_stream<S>(
    shared: &Arc<Shared>,
    flow: FlowId,
    io: &mut S,
    rx: &mut mpsc::Receiver<Outgoing>,
    ctl: &FlowCtl,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let c = shared.counters(flow.transport);
    let mut framer = StreamFramer::new(cfg.limits);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut shutdown = shared.shutdown.clone();
    let mut last_rx = Instant::now();
    let mut partial_since: Option<Instant> = None;
    // After a framing error: input is discarded, but the core's answers to
    // the messages already delivered still go out until the linger ends.
    let mut draining: Option<(CloseReason, Instant)> = None;
    loop {
        if *shutdown.borrow() {
            return CloseReason::Shutdown;
        }
        let mut deadline = last_rx + cfg.idle_timeout;
        if let Some(p) = partial_since {
            deadline = deadline.min(p + cfg.message_timeout);
        }
        if let Some((_, until)) = draining {
            deadline = until;
        }
        tokio::select! {
            _ = shutdown.changed() => return CloseReason::Shutdown,
            r = ctl.wait() => {
                if r == CloseReason::Closed {
                    // What the core sent before closing still goes out
                    // (e.g. a 403 and then the close).
                    while let Ok(Outgoing::Data(b)) = rx.try_recv() {
                        if write_counted(io, &b, cfg.write_timeout, c).await.is_err() {
                            break;
                        }
                    }
                }
                return r;
            }
            _ = tokio::time::sleep_until(deadline) => {
                return match draining {
                    Some((reason, _)) => reason,
                    None if partial_since.is_some() => CloseReason::MessageTimeout,
                    None => CloseReason::IdleTimeout,
                };
            }
            out = rx.recv() => match out {
                Some(Outgoing::Data(b)) => {
                    if let Err(r) = write_counted(io, &b, cfg.write_timeout, c).await {
                        return r;
                    }
                }
                None => return CloseReason::Closed,
            },
            r = io.read(&mut buf) => {
                let n = match r {
                    Ok(0) => return draining.map_or(CloseReason::PeerClosed, |d| d.0),
                    Ok(n) => n,
                    Err(e) => return draining.map_or(CloseReason::Io(e.kind()), |d| d.0),
                };
                if draining.is_some() {
                    continue;
                }
                last_rx = Instant::now();
                if framer.push(&buf[..n]).is_err() {
                    c.inc(&c.too_large);
                    c.inc(&c.malformed_dropped);
                    draining = Some((CloseReason::Framing(ParseError::TooLarge), last_rx + cfg.linger));
                    continue;
                }
                let mut completed = false;
                loop {
                    match framer.next_item() {
                        Ok(None) => break,
                        Ok(Some(StreamItem::Ping)) => {
                            c.inc(&c.keepalives);
                            if let Err(r) = write_counted(io, b"\r\n", cfg.write_timeout, c).await {
                                return r;
                            }
                        }
                        Ok(Some(StreamItem::Message(bytes))) => {
                            completed = true;
                            let (event, reply) =
                                shared.handle_payload(flow, flow.remote, &bytes, Framing::Stream);
                            if let Some(r) = reply {
                                if let Err(r) = write_counted(io, &r, cfg.write_timeout, c).await {
                                    return r;
                                }
                            }
                            shared.emit(event).await;
                        }
                        Err(error) => {
                            // The rest of the stream cannot be delimited. A
                            // request with a bad or duplicate Content-Length is
                            // answered; one without Content-Length (an RFC 2543
                            // peer or a non-SIP client) is not.
                            let reply = if cfg.answer_malformed && error != ParseError::MissingContentLength {
                                error_response(framer.buffer(), error, &cfg.limits)
                            } else {
                                None
                            };
                            let answered = reply.is_some();
                            c.inc(if answered { &c.malformed_answered } else { &c.malformed_dropped });
                            if error == ParseError::TooLarge {
                                c.inc(&c.too_large);
                            }
                            if let Some(r) = reply {
                                let _ = write_counted(io, &r.to_bytes(), cfg.write_timeout, c).await;
                            }
                            shared
                                .emit(TransportEvent::Malformed {
                                    flow,
                                    source: flow.remote,
                                    error,
                                    answered,
                                })
                                .await;
                            draining = Some((CloseReason::Framing(error), Instant::now() + cfg.linger));
                            break;
                        }
                    }
                }
                partial_since = if !framer.is_partial() {
                    None
                } else if completed || partial_since.is_none() {
                    Some(last_rx)
                } else {
                    partial_since
                };
            }
        }
    }
}

/// Opens a TCP or TLS connection and starts serving it.
pub(super) async fn connect(shared: &Arc<Shared>, target: &Target) -> Result<FlowId, SendError> {
    let t = target.transport;
    let cfg = &shared.config;
    let tls = match t {
        Transport::Tcp => None,
        Transport::Tls => {
            let client = cfg.tls_client.clone().ok_or(SendError::Tls)?;
            let name = target
                .server_name
                .clone()
                .unwrap_or_else(|| target.addr.ip().to_string());
            let name = ServerName::try_from(name).map_err(|_| SendError::Tls)?;
            Some((tokio_rustls::TlsConnector::from(client), name))
        }
        _ => return Err(SendError::Unsupported),
    };
    let slot = shared.try_slot(t).ok_or(SendError::TooManyConnections)?;
    let c = shared.counters(t);
    let deadline = Instant::now() + cfg.connect_timeout;
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(target.addr)).await {
        Ok(Ok(s)) => s,
        _ => return Err(SendError::ConnectFailed),
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map_err(|e| SendError::Io(e.kind()))?;
    let remote = target.addr;
    match tls {
        None => {
            let (guard, rx, ctl) = shared.register(slot, t, local, remote);
            let flow = guard.flow;
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                serve_registered(&shared, guard, rx, ctl, tcp).await;
            });
            Ok(flow)
        }
        Some((connector, name)) => {
            let stream = match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await
            {
                Ok(Ok(s)) => s,
                _ => {
                    c.inc(&c.handshake_failures);
                    return Err(SendError::ConnectFailed);
                }
            };
            let (guard, rx, ctl) = shared.register(slot, t, local, remote);
            let flow = guard.flow;
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                serve_registered(&shared, guard, rx, ctl, stream).await;
            });
            Ok(flow)
        }
    }
}
