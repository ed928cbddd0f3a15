//! UDP: one datagram is one message.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{FlowId, SendError, Shared, Transport};
use crate::sip::message::{is_keepalive, Framing};

pub(super) async fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Sends one datagram without waiting.
pub(super) fn send(
    shared: &Shared,
    sock: &UdpSocket,
    bytes: &[u8],
    to: SocketAddr,
) -> Result<(), SendError> {
    let c = shared.counters(Transport::Udp);
    match sock.try_send_to(bytes, to) {
        Ok(n) => {
            c.inc(&c.tx_messages);
            c.add(&c.tx_bytes, n);
            Ok(())
        }
        Err(e) => {
            c.inc(&c.send_failures);
            Err(SendError::Io(e.kind()))
        }
    }
}

/// Receives datagrams until shutdown.
pub(super) async fn run(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    let Ok(local) = sock.local_addr() else { return };
    let mut buf = vec![0u8; 65536];
    let mut shutdown = shared.shutdown.clone();
    let c = shared.counters(Transport::Udp);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (n, source) = tokio::select! {
            _ = shutdown.changed() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // e.g. ICMP port unreachable reported on the socket.
                Err(_) => continue,
            },
        };
        let data = &buf[..n];
        let Some(&first) = data.first() else { continue };
        if is_keepalive(data) {
            c.inc(&c.keepalives);
            continue;
        }
        if !(0x20..0x80).contains(&first) {
            // STUN (RFC 5626 §4.4.2 keepalives) or other non-SIP traffic.
            c.inc(&c.non_sip);
            continue;
        }
        let flow = FlowId {
            transport: Transport::Udp,
            local,
            remote: source,
            conn: 0,
        };
        let (event, reply) = shared.handle_payload(flow, source, data, Framing::Datagram);
        if let Some(r) = reply {
            let _ = send(&shared, &sock, &r, source);
        }
        shared.emit(event).await;
    }
}
