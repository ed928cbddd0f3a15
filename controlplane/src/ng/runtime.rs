//! The ng listeners on tokio: UDP and TCP on the same address and port,
//! around one [`NgServer`] and one [`NgHandler`] behind a mutex.
//!
//! Only bytes move here: every decision (allow-list, cache, parsing,
//! replies) is the server's. [`NgRuntime::start`] refuses an address off
//! loopback without an allow-list ([`check_listen`]). TCP peers off the
//! allow-list are disconnected at once; connections are limited in number
//! ([`MAX_TCP_CONNECTIONS`]) and closed after [`TCP_IDLE_TIMEOUT`] without
//! data, or when the stream cannot be framed (after an error reply when
//! one can be made).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use super::stream::StreamFramer;
use super::{
    check_listen, ControlStatistics, NgConfig, NgCounters, NgHandler, NgServer, NgTransport,
};

/// Most TCP connections open at once.
pub const MAX_TCP_CONNECTIONS: usize = 256;

/// A TCP connection without data for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// What the listeners counted (the server's counters are separate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportCounters {
    /// UDP datagrams received.
    pub udp_received: u64,
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// TCP connections refused (peer not allowed, or too many).
    pub tcp_refused: u64,
    /// TCP connections closed because the stream could not be framed.
    pub tcp_unframeable: u64,
    /// TCP connections closed for idleness.
    pub tcp_timeouts: u64,
    /// Replies sent.
    pub sent: u64,
    /// Replies that could not be sent.
    pub send_failures: u64,
}

#[derive(Debug, Default)]
struct Atomics {
    udp_received: AtomicU64,
    tcp_accepted: AtomicU64,
    tcp_refused: AtomicU64,
    tcp_unframeable: AtomicU64,
    tcp_timeouts: AtomicU64,
    sent: AtomicU64,
    send_failures: AtomicU64,
    tcp_open: AtomicUsize,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Core<H> {
    server: NgServer,
    handler: H,
}

struct Inner<H> {
    core: Mutex<Core<H>>,
    counters: Atomics,
}

impl<H: NgHandler> Inner<H> {
    fn lock(&self) -> MutexGuard<'_, Core<H>> {
        // A handler that panicked leaves the server usable.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, transport: NgTransport, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        let mut core = self.lock();
        let Core { server, handler } = &mut *core;
        server.handle(handler, transport, peer, data, Instant::now())
    }
}

/// Running ng listeners. Dropping it (or [`NgRuntime::shutdown`]) stops
/// them.
pub struct NgRuntime<H> {
    inner: Arc<Inner<H>>,
    local: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl<H> std::fmt::Debug for NgRuntime<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NgRuntime")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl<H: NgHandler + Send + 'static> NgRuntime<H> {
    /// Binds UDP on `listen` and TCP on the same address and port (the
    /// port UDP got, if `listen` asks for port 0), and serves both until
    /// shut down. Refuses (`InvalidInput`, with the reason) to listen off
    /// loopback without an allow-list.
    pub async fn start(listen: SocketAddr, config: NgConfig, handler: H) -> io::Result<Self> {
        check_listen(listen, &config.allow)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let udp = UdpSocket::bind(listen).await?;
        let local = udp.local_addr()?;
        let tcp = TcpListener::bind(local).await?;
        let max_message = config.max_message_bytes;
        let limits = config.limits;
        let allow = config.allow.clone();
        let inner = Arc::new(Inner {
            core: Mutex::new(Core {
                server: NgServer::new(config),
                handler,
            }),
            counters: Atomics::default(),
        });
        let (shutdown, rx) = watch::channel(false);
        tokio::spawn(run_udp(inner.clone(), Arc::new(udp), rx.clone()));
        tokio::spawn(run_tcp(inner.clone(), tcp, rx, max_message, limits, allow));
        Ok(NgRuntime {
            inner,
            local,
            shutdown,
        })
    }

    /// The address both listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's counters.
    pub fn counters(&self) -> NgCounters {
        self.inner.lock().server.counters()
    }

    /// Per-proxy command counts.
    pub fn control_statistics(&self) -> ControlStatistics {
        self.inner.lock().server.control_statistics()
    }

    /// The listeners' counters.
    pub fn transport_counters(&self) -> TransportCounters {
        let a = &self.inner.counters;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportCounters {
            udp_received: get(&a.udp_received),
            tcp_accepted: get(&a.tcp_accepted),
            tcp_refused: get(&a.tcp_refused),
            tcp_unframeable: get(&a.tcp_unframeable),
            tcp_timeouts: get(&a.tcp_timeouts),
            sent: get(&a.sent),
            send_failures: get(&a.send_failures),
        }
    }

    /// Runs `f` on the handler (with requests held off meanwhile).
    pub fn with_handler<R>(&self, f: impl FnOnce(&mut H) -> R) -> R {
        f(&mut self.inner.lock().handler)
    }
}

impl<H> NgRuntime<H> {
    /// Stops the listeners (open TCP connections close too).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl<H> Drop for NgRuntime<H> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn run_udp<H: NgHandler + Send + 'static>(
    inner: Arc<Inner<H>>,
    sock: Arc<UdpSocket>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Larger than any UDP payload, so nothing is truncated.
    let mut buf = vec![0u8; 65_536];
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (n, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // e.g. ICMP port unreachable from an earlier reply.
                Err(_) => continue,
            },
        };
        inc(&inner.counters.udp_received);
        let Some(reply) = inner.handle(NgTransport::Udp, peer, &buf[..n]) else {
            continue;
        };
        match sock.send_to(&reply, peer).await {
            Ok(_) => inc(&inner.counters.sent),
            Err(_) => inc(&inner.counters.send_failures),
        }
    }
}

async fn run_tcp<H: NgHandler + Send + 'static>(
    inner: Arc<Inner<H>>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    max_message: usize,
    limits: super::bencode::Limits,
    allow: super::AllowList,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // e.g. out of file descriptors: back off a little.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let c = &inner.counters;
        if !allow.permits(peer.ip()) || c.tcp_open.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
            inc(&c.tcp_refused);
            drop(stream);
            continue;
        }
        inc(&c.tcp_accepted);
        c.tcp_open.fetch_add(1, Ordering::Relaxed);
        let inner = inner.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_tcp(&inner, stream, peer, shutdown, max_message, limits).await;
            inner.counters.tcp_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_tcp<H: NgHandler + Send + 'static>(
    inner: &Inner<H>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    max_message: usize,
    limits: super::bencode::Limits,
) {
    let mut framer = StreamFramer::new(max_message, limits);
    let mut buf = vec![0u8; 16_384];
    loop {
        if *shutdown.borrow() {
            return;
        }
        let n = tokio::select! {
            _ = shutdown.changed() => return,
            r = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => {
                    inc(&inner.counters.tcp_timeouts);
                    return;
                }
            },
        };
        framer.push(&buf[..n]);
        loop {
            let (message, last) = match framer.next_message() {
                Ok(Some(m)) => (m, false),
                Ok(None) => break,
                Err(_) => {
                    inc(&inner.counters.tcp_unframeable);
                    (framer.take_rest(), true)
                }
            };
            if let Some(reply) = inner.handle(NgTransport::Tcp, peer, &message) {
                match stream.write_all(&reply).await {
                    Ok(()) => inc(&inner.counters.sent),
                    Err(_) => {
                        inc(&inner.counters.send_failures);
                        return;
                    }
                }
            }
            if last {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}
