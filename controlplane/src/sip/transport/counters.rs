//! Per-transport counters.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        #[derive(Default, Debug)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        /// A copy of one transport's counters.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct CounterSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters! {
    /// Messages parsed and delivered.
    rx_messages,
    /// Bytes of SIP payload received (keepalives excluded).
    rx_bytes,
    /// Messages (and keepalive pongs) sent.
    tx_messages,
    /// Bytes sent.
    tx_bytes,
    /// Malformed input answered with an error response.
    malformed_answered,
    /// Malformed input dropped (responses, ACKs, unroutable requests, broken
    /// stream framing without a routable request).
    malformed_dropped,
    /// Input over the size limit (included in the malformed counts or closing
    /// the connection).
    too_large,
    /// Non-SIP datagrams ignored (e.g. STUN on the SIP port).
    non_sip,
    /// CRLF keepalives received.
    keepalives,
    /// Connection flows opened.
    flows_opened,
    /// Connection flows closed.
    flows_closed,
    /// TLS or WebSocket handshakes that failed or timed out.
    handshake_failures,
    /// WebSocket handshakes refused for not offering the `sip` subprotocol.
    subprotocol_refused,
    /// WebSocket handshakes refused for their Origin.
    origin_refused,
    /// Connections refused at the connection limit.
    connections_refused,
    /// Connections closed for idleness or an incomplete message.
    timeouts,
    /// Sends that failed (queue full, too large, socket error).
    send_failures,
    /// Plain HTTP requests on a WS/WSS listener answered with a web phone
    /// file.
    http_served,
    /// Plain HTTP requests on a WS/WSS listener answered 404 or 405.
    http_refused,
}

impl Counters {
    pub(crate) fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, c: &AtomicU64, n: usize) {
        c.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
