//! WebSocket and secure WebSocket (RFC 7118): handshake with the `sip`
//! subprotocol and an Origin allow-list, then one SIP message per WebSocket
//! message (text or binary; fragmented messages are reassembled by
//! tungstenite within the size limit), pings, idle timeout. A request that
//! is not a WebSocket upgrade is answered by [`super::http`] (the web phone
//! page).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use super::http::{self, Head, Prefixed, ReadFailed};
use super::{
    finish, CloseReason, ConnSlot, FlowCtl, FlowId, Outgoing, Shared, Transport, TransportEvent,
    WsHandshake,
};
use crate::sip::message::{is_keepalive, Framing};

fn http_error(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{text}\r\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len() + 2));
    r
}

/// Reads the HTTP request (within `deadline`): a WebSocket upgrade is
/// handshaken and the flow served; anything else is answered by
/// [`http`] and the connection closed.
pub(super) async fn serve<S>(
    shared: &Arc<Shared>,
    slot: ConnSlot,
    t: Transport,
    local: SocketAddr,
    remote: SocketAddr,
    mut io: S,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let c = shared.counters(t);
    let head = match http::read_head(&mut io, deadline, cfg.web_phone).await {
        Ok((Head::Upgrade, bytes)) => bytes,
        Ok((Head::Answer(a), _)) => {
            // Counted before the peer sees the answer.
            if a.malformed {
                c.inc(&c.malformed_answered);
                if a.status == 431 {
                    c.inc(&c.too_large);
                }
            } else if a.status == 200 {
                c.inc(&c.http_served);
            } else {
                c.inc(&c.http_refused);
            }
            match http::answer(&mut io, &a, cfg.write_timeout, cfg.linger).await {
                Ok(n) => c.add(&c.tx_bytes, n),
                Err(_) => c.inc(&c.send_failures),
            }
            return;
        }
        Ok((Head::Partial, _)) | Err(ReadFailed::Closed | ReadFailed::TimedOut) => {
            c.inc(&c.handshake_failures);
            return;
        }
    };
    let io = Prefixed::new(head, io);
    let mut refused = false;
    let mut info = None;
    let allowed = &cfg.ws_allowed_origins;
    // The error type is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offers_sip = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("sip"));
        if !offers_sip {
            // Counted here, before the peer sees the answer.
            c.inc(&c.subprotocol_refused);
            refused = true;
            return Err(http_error(
                StatusCode::BAD_REQUEST,
                "SIP over WebSocket needs the 'sip' subprotocol (RFC 7118)",
            ));
        }
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let origin_ok = allowed.is_empty()
            || origin
                .as_deref()
                .is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !origin_ok {
            c.inc(&c.origin_refused);
            refused = true;
            return Err(http_error(StatusCode::FORBIDDEN, "Origin not allowed"));
        }
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("sip"),
        );
        info = Some(WsHandshake {
            path: req.uri().to_string(),
            origin,
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
        Ok(resp)
    };
    let max = cfg.limits.max_message_size;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * max + 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let result = tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(ws_config)),
    )
    .await;
    let (mut ws, info) = match (result, info) {
        (Ok(Ok(ws)), Some(info)) => (ws, info),
        _ => {
            if !refused {
                c.inc(&c.handshake_failures);
            }
            return;
        }
    };
    let (guard, mut rx, ctl) = shared.register(slot, t, local, remote);
    let flow = guard.flow;
    shared
        .emit(TransportEvent::FlowOpened {
            flow,
            ws: Some(Box::new(info)),
        })
        .await;
    let reason = run(shared, flow, &mut ws, &mut rx, &ctl).await;
    drop(rx);
    let code = match reason {
        CloseReason::PeerClosed | CloseReason::Io(_) | CloseReason::WriteTimeout => None,
        CloseReason::TooLarge => Some(CloseCode::Size),
        CloseReason::WebSocketProtocol => Some(CloseCode::Protocol),
        CloseReason::IdleTimeout | CloseReason::Shutdown => Some(CloseCode::Away),
        _ => Some(CloseCode::Normal),
    };
    if let Some(code) = code {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
    }
    drop(ws);
    finish(guard, reason).await;
}

async fn send_ws<S>(
    ws: &mut WebSocketStream<S>,
    msg: WsMessage,
    limit: Duration,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match timeout(limit, ws.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(map_error(e)),
        Err(_) => Err(CloseReason::WriteTimeout),
    }
}

fn map_error(e: WsError) -> CloseReason {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => CloseReason::PeerClosed,
        WsError::Io(e) => CloseReason::Io(e.kind()),
        WsError::Capacity(_) => CloseReason::TooLarge,
        _ => CloseReason::WebSocketProtocol,
    }
}

/// One SIP message as a WebSocket message: text if it is UTF-8.
fn to_ws_message(bytes: Vec<u8>) -> WsMessage {
    match String::from_utf8(bytes) {
        Ok(s) => WsMessage::text(s),
        Err(e) => WsMessage::binary(e.into_bytes()),
    }
}

async fn run<S>(
    shared: &Arc<Shared>,
    flow: FlowId,
    ws: &mut WebSocketStream<S>,
    rx: &mut mpsc::Receiver<Outgoing>,
    ctl: &FlowCtl,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let c = shared.counters(flow.transport);
    let mut shutdown = shared.shutdown.clone();
    let mut last_rx = Instant::now();
    let ping_every = cfg.ws_ping_interval.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            return CloseReason::Shutdown;
        }
        let deadline = last_rx + cfg.idle_timeout;
        tokio::select! {
            _ = shutdown.changed() => return CloseReason::Shutdown,
            r = ctl.wait() => {
                if r == CloseReason::Closed {
                    // What the core sent before closing still goes out.
                    while let Ok(Outgoing::Data(b)) = rx.try_recv() {
                        let n = b.len();
                        if send_ws(ws, to_ws_message(b), cfg.write_timeout).await.is_err() {
                            break;
                        }
                        c.inc(&c.tx_messages);
                        c.add(&c.tx_bytes, n);
                    }
                }
                return r;
            }
            _ = tokio::time::sleep_until(deadline) => return CloseReason::IdleTimeout,
            _ = ping.tick(), if cfg.ws_ping_interval.is_some() => {
                if let Err(r) = send_ws(ws, WsMessage::Ping(Default::default()), cfg.write_timeout).await {
                    return r;
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Data(b)) => {
                    let n = b.len();
                    if let Err(r) = send_ws(ws, to_ws_message(b), cfg.write_timeout).await {
                        return r;
                    }
                    c.inc(&c.tx_messages);
                    c.add(&c.tx_bytes, n);
                }
                None => return CloseReason::Closed,
            },
            m = ws.next() => {
                let msg = match m {
                    None => return CloseReason::PeerClosed,
                    Some(Err(e)) => {
                        let r = map_error(e);
                        if r == CloseReason::TooLarge {
                            c.inc(&c.too_large);
                            c.inc(&c.malformed_dropped);
                        }
                        return r;
                    }
                    Some(Ok(m)) => m,
                };
                last_rx = Instant::now();
                let data: &[u8] = match &msg {
                    WsMessage::Text(t) => t.as_bytes(),
                    WsMessage::Binary(b) => b,
                    // Pings are answered by tungstenite; a close is answered
                    // too, and the stream then ends.
                    _ => continue,
                };
                if is_keepalive(data) {
                    c.inc(&c.keepalives);
                    if data == b"\r\n\r\n" {
                        if let Err(r) = send_ws(ws, WsMessage::text("\r\n"), cfg.write_timeout).await {
                            return r;
                        }
                        c.inc(&c.tx_messages);
                    }
                    continue;
                }
                let (event, reply) = shared.handle_payload(flow, flow.remote, data, Framing::Datagram);
                if let Some(r) = reply {
                    let n = r.len();
                    if let Err(r) = send_ws(ws, to_ws_message(r), cfg.write_timeout).await {
                        return r;
                    }
                    c.inc(&c.tx_messages);
                    c.add(&c.tx_bytes, n);
                }
                shared.emit(event).await;
            }
        }
    }
}
