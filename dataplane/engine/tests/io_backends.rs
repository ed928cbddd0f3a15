//! Loopback tests of both datagram backends through the one interface.
//!
//! Every loop is bounded by an iteration count and a deadline, and every
//! blocking read has a timeout; nothing asserts on timing. The io_uring tests
//! require io_uring to work here; set `STRAIT_SKIP_URING_TESTS=1` on a host
//! that refuses it (the fallback tests still run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use strait_dataplane::io::{
    probe_uring, ActiveKind, Backend, BackendKind, DatagramIo, IoConfig, RxPacket, SocketId,
    TxError, TxQueue, UringBackend, UringStage, Verdict, MAX_DATAGRAM, PACKET_CAPACITY, TAILROOM,
};

const WAIT: Duration = Duration::from_millis(5);

/// Counts heap allocations made by threads that asked to be watched (per
/// thread: tests run in parallel).
struct CountingAlloc;

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    if WATCHED.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: defers to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by this thread while running `f`.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    WATCHED.with(|w| w.set(true));
    let r = f();
    WATCHED.with(|w| w.set(false));
    (r, ALLOCATIONS.with(Cell::get) - before)
}

fn skip_uring(kind: BackendKind) -> bool {
    kind == BackendKind::Uring && std::env::var_os("STRAIT_SKIP_URING_TESTS").is_some()
}

fn open_with(kind: BackendKind, config: IoConfig) -> Backend {
    let b = Backend::open(&IoConfig { kind, ..config }).expect("backend opens");
    let want = if kind == BackendKind::Uring {
        ActiveKind::Uring
    } else {
        ActiveKind::Mmsg
    };
    assert_eq!(b.kind(), want);
    b
}

fn open(kind: BackendKind) -> Backend {
    open_with(kind, IoConfig::default())
}

fn peer_at(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).expect("bind peer");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn peer() -> UdpSocket {
    peer_at("127.0.0.1:0")
}

fn addr_of(b: &Backend, id: SocketId) -> SocketAddr {
    b.local_addr(id).expect("registered")
}

/// Runs the backend with `f` until `done` holds (bounded), then flushes.
fn pump<F, D>(b: &mut Backend, mut f: F, mut done: D)
where
    F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    D: FnMut(&Backend) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut iterations = 0;
    while !done(b) && iterations < 20_000 && Instant::now() < deadline {
        b.run_once(WAIT, &mut f).expect("run_once");
        iterations += 1;
    }
    b.flush().expect("flush");
    assert!(done(b), "condition not reached; stats {:?}", b.stats());
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 4096];
    let (n, from) = s.recv_from(&mut buf).expect("datagram arrives");
    buf.truncate(n);
    (buf, from)
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 31 + k * 7) as u8).collect()
}

fn echo(p: RxPacket<'_>, _: &mut TxQueue) -> Verdict {
    Verdict::Send {
        socket: p.socket,
        to: p.from,
        len: p.len,
    }
}

// ---------------------------------------------------------------------------
// Scenarios, each run against both backends.

fn echo_n(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let dst = addr_of(&b, id);
    let p = peer();
    let n = 200;
    let mut bytes = 0u64;
    // Chunks keep the loopback queues far from overflowing.
    for chunk in 0..n / 20 {
        for i in chunk * 20..(chunk + 1) * 20 {
            let data = payload(i, 60 + i % 100);
            bytes += data.len() as u64;
            p.send_to(&data, dst).expect("send");
        }
        let want = ((chunk + 1) * 20) as u64;
        pump(&mut b, echo, |b| b.stats().rx_packets >= want);
        for i in chunk * 20..(chunk + 1) * 20 {
            let (got, from) = recv(&p);
            assert_eq!(from, dst);
            assert_eq!(got, payload(i, 60 + i % 100), "packet {i}");
        }
    }
    // The last sends' completions are reaped by one more (idle) iteration.
    pump(&mut b, echo, |b| b.stats().tx_packets >= n as u64);
    let s = b.stats();
    assert_eq!(s.rx_packets, n as u64);
    assert_eq!(s.tx_packets, n as u64);
    assert_eq!(s.rx_bytes, bytes);
    assert_eq!(s.tx_bytes, bytes);
    assert!(s.rx_batches >= 1 && s.rx_batches <= n as u64);
    assert!(s.tx_batches >= 1 && s.tx_batches <= n as u64);
    assert_eq!(
        (s.tx_errors, s.tx_dropped, s.rx_truncated, s.rx_errors),
        (0, 0, 0, 0)
    );
}

fn edit_in_place(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let dst = addr_of(&b, id);
    let p = peer();
    // A small packet grows by a 10-byte "tag", a largest-size one by the
    // whole tail room, and a third one shrinks.
    let sizes = [100usize, MAX_DATAGRAM, 300];
    for (i, &len) in sizes.iter().enumerate() {
        p.send_to(&payload(i, len), dst).expect("send");
    }
    let mut seen = 0;
    pump(
        &mut b,
        |mut pkt, _| {
            assert_eq!(pkt.buf.len(), PACKET_CAPACITY);
            let len = pkt.len;
            pkt.data_mut().reverse();
            let new_len = match len {
                100 => {
                    pkt.buf[len..len + 10].copy_from_slice(b"0123456789");
                    len + 10
                }
                MAX_DATAGRAM => {
                    pkt.buf[len..len + TAILROOM].fill(0xAB);
                    len + TAILROOM
                }
                _ => 7,
            };
            seen += 1;
            Verdict::Send {
                socket: pkt.socket,
                to: pkt.from,
                len: new_len,
            }
        },
        |b| b.stats().rx_packets >= 3,
    );
    assert_eq!(seen, 3);
    let mut exp0 = payload(0, 100);
    exp0.reverse();
    exp0.extend_from_slice(b"0123456789");
    let mut exp1 = payload(1, MAX_DATAGRAM);
    exp1.reverse();
    exp1.extend(std::iter::repeat_n(0xAB, TAILROOM));
    let mut exp2 = payload(2, 300);
    exp2.reverse();
    exp2.truncate(7);
    assert_eq!(recv(&p).0, exp0);
    assert_eq!(recv(&p).0, exp1);
    assert_eq!(recv(&p).0, exp2);
}

fn forward_between_sockets(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let a = b
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind a");
    let c = b
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind b");
    let (a_addr, c_addr) = (addr_of(&b, a), addr_of(&b, c));
    let pa = peer();
    let pb = peer();
    let pa_addr = pa.local_addr().expect("addr");
    let pb_addr = pb.local_addr().expect("addr");
    // Leg A -> leg B and back, like a relayed call.
    for i in 0..10 {
        pa.send_to(&payload(i, 172), a_addr).expect("send");
        pb.send_to(&payload(100 + i, 172), c_addr).expect("send");
    }
    pump(
        &mut b,
        |p, _| {
            let (socket, to) = if p.socket == a {
                (c, pb_addr)
            } else {
                (a, pa_addr)
            };
            assert!(
                p.from == pa_addr || p.from == pb_addr,
                "stranger {}",
                p.from
            );
            Verdict::Send {
                socket,
                to,
                len: p.len,
            }
        },
        |b| b.stats().rx_packets >= 20,
    );
    for i in 0..10 {
        let (got, from) = recv(&pb);
        assert_eq!(from, c_addr, "leaves from the other leg's socket");
        assert_eq!(got, payload(i, 172));
        let (got, from) = recv(&pa);
        assert_eq!(from, a_addr);
        assert_eq!(got, payload(100 + i, 172));
    }
}

fn queue_send(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open_with(
        kind,
        IoConfig {
            tx_buffers: 4,
            ..IoConfig::default()
        },
    );
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let dst = addr_of(&b, id);
    let p = peer();
    let pa = p.local_addr().expect("addr");

    // Out of band, outside the loop.
    b.queue_send(id, pa, b"stun answer").expect("queued");
    b.flush().expect("flush");
    assert_eq!(recv(&p), (b"stun answer".to_vec(), dst));

    // From inside the closure, beside an in-place forward of the same batch.
    p.send_to(b"nack", dst).expect("send");
    pump(
        &mut b,
        |pkt, tx| {
            tx.queue_send(pkt.socket, pkt.from, b"resend-1")
                .expect("room");
            tx.queue_with(pkt.socket, pkt.from, |buf| {
                buf[..8].copy_from_slice(b"resend-2");
                8
            })
            .expect("room");
            Verdict::Send {
                socket: pkt.socket,
                to: pkt.from,
                len: pkt.len,
            }
        },
        |b| b.stats().rx_packets >= 1,
    );
    let mut got: Vec<Vec<u8>> = (0..3).map(|_| recv(&p).0).collect();
    got.sort();
    assert_eq!(
        got,
        vec![b"nack".to_vec(), b"resend-1".to_vec(), b"resend-2".to_vec()]
    );

    // The pool is bounded: 4 buffers, each back once its send completed
    // (io_uring: reaped by a later iteration).
    pump(&mut b, echo, |b| b.stats().tx_packets >= 4);
    assert_eq!(b.tx_queue().available(), 4);
    for _ in 0..4 {
        b.queue_send(id, pa, b"x").expect("room");
    }
    assert_eq!(b.queue_send(id, pa, b"x"), Err(TxError::QueueFull));
    assert_eq!(
        b.queue_send(id, pa, &vec![0u8; PACKET_CAPACITY + 1]),
        Err(TxError::TooLong)
    );
    b.flush().expect("flush");
    for _ in 0..4 {
        assert_eq!(recv(&p).0, b"x");
    }
    // Buffers come back once the sends complete.
    pump(&mut b, echo, |b| b.stats().tx_packets >= 8);
    assert_eq!(b.tx_queue().available(), 4);
    b.queue_send(id, pa, b"again").expect("room again");
    b.flush().expect("flush");
    assert_eq!(recv(&p).0, b"again");
    assert_eq!(b.stats().tx_queue_rejected, 2);
}

fn many_sockets(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let n = 500;
    let mut b = open(kind);
    let ids: Vec<SocketId> = (0..n)
        .map(|_| b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind"))
        .collect();
    assert_eq!(b.socket_count(), n);
    // Dense ids: 0..n.
    assert_eq!(
        ids.iter().map(|i| i.index()).collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    let p = peer();
    let addrs: Vec<SocketAddr> = ids.iter().map(|&i| addr_of(&b, i)).collect();
    for chunk in addrs.chunks(50) {
        for (k, a) in chunk.iter().enumerate() {
            p.send_to(&payload(k, 40), *a).expect("send");
        }
        let want = b.stats().rx_packets + chunk.len() as u64;
        pump(&mut b, echo, |b| b.stats().rx_packets >= want);
        let mut sources = HashSet::new();
        for _ in 0..chunk.len() {
            let (data, from) = recv(&p);
            assert_eq!(data.len(), 40);
            sources.insert(from);
        }
        assert_eq!(sources, chunk.iter().copied().collect::<HashSet<_>>());
    }
    // Remove half; the freed ids come back lowest first and the new sockets
    // work.
    for &id in ids.iter().step_by(2) {
        b.remove_socket(id).expect("remove");
    }
    assert_eq!(b.socket_count(), n / 2);
    assert!(b.remove_socket(ids[0]).is_err(), "double remove is refused");
    let again = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    assert_eq!(again.index(), 0);
    let again_addr = addr_of(&b, again);
    p.send_to(b"new", again_addr).expect("send");
    p.send_to(b"old", addrs[1]).expect("send");
    let before = b.stats().rx_packets;
    pump(&mut b, echo, |b| b.stats().rx_packets >= before + 2);
    let mut got: Vec<(Vec<u8>, SocketAddr)> = vec![recv(&p), recv(&p)];
    got.sort();
    assert_eq!(
        got,
        vec![(b"new".to_vec(), again_addr), (b"old".to_vec(), addrs[1])]
    );
}

fn truncated(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let dst = addr_of(&b, id);
    let p = peer();
    p.send_to(&vec![7u8; MAX_DATAGRAM + 1], dst)
        .expect("send big");
    p.send_to(&vec![9u8; 3000], dst).expect("send bigger");
    p.send_to(b"fine", dst).expect("send");
    let mut lens = Vec::new();
    pump(
        &mut b,
        |pkt, _| {
            lens.push(pkt.len);
            Verdict::Drop
        },
        |b| b.stats().rx_packets >= 1 && b.stats().rx_truncated >= 2,
    );
    assert_eq!(lens, vec![4]);
    let s = b.stats();
    assert_eq!((s.rx_truncated, s.rx_packets, s.rx_bytes), (2, 1, 4));
}

fn ipv6(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let Ok(v6) = b.bind("[::1]:0".parse().expect("addr")) else {
        return; // no IPv6 loopback in this namespace
    };
    let v4 = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let p6 = peer_at("[::1]:0");
    let p4 = peer();
    let p4_addr = p4.local_addr().expect("addr");
    let v6_addr = addr_of(&b, v6);
    p6.send_to(b"over six", v6_addr).expect("send");
    let mut from6 = None;
    pump(
        &mut b,
        |pkt, _| {
            from6 = Some(pkt.from);
            Verdict::Send {
                socket: v4,
                to: p4_addr,
                len: pkt.len,
            }
        },
        |b| b.stats().rx_packets >= 1,
    );
    assert_eq!(from6, Some(p6.local_addr().expect("addr")));
    let (got, from) = recv(&p4);
    assert_eq!(got, b"over six");
    assert_eq!(from, addr_of(&b, v4));
    // And back: v4 in, out of the v6 socket.
    p4.send_to(b"over four", addr_of(&b, v4)).expect("send");
    let p6_addr = p6.local_addr().expect("addr");
    pump(
        &mut b,
        |pkt, _| Verdict::Send {
            socket: v6,
            to: p6_addr,
            len: pkt.len,
        },
        |b| b.stats().rx_packets >= 2,
    );
    assert_eq!(recv(&p6), (b"over four".to_vec(), v6_addr));
}

fn send_errors_do_not_stop_the_loop(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let gone = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    b.remove_socket(gone).expect("remove");
    let dst = addr_of(&b, id);
    let p = peer();
    let v6_peer: SocketAddr = "[2001:db8::1]:5004".parse().expect("addr");
    for i in 0..4u8 {
        p.send_to(&[i], dst).expect("send");
    }
    pump(
        &mut b,
        |pkt, _| match pkt.buf[0] {
            // IPv6 destination through an IPv4 socket.
            0 => Verdict::Send {
                socket: pkt.socket,
                to: v6_peer,
                len: 1,
            },
            // Unknown (removed) socket.
            1 => Verdict::Send {
                socket: gone,
                to: pkt.from,
                len: 1,
            },
            // Longer than the buffer.
            2 => Verdict::Send {
                socket: pkt.socket,
                to: pkt.from,
                len: PACKET_CAPACITY + 1,
            },
            _ => Verdict::Send {
                socket: pkt.socket,
                to: pkt.from,
                len: 1,
            },
        },
        |b| b.stats().rx_packets >= 4,
    );
    assert_eq!(recv(&p).0, [3u8]);
    assert_eq!(b.stats().tx_errors, 3);
}

fn connection_refused(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    // A connected socket in the backend learns ECONNREFUSED from an ICMP
    // port unreachable; both backends must count it and keep receiving.
    let mut b = open(kind);
    let target = peer();
    let target_addr = target.local_addr().expect("addr");
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(target_addr).expect("connect");
    let id = b.add_socket(s).expect("add");
    let dst = addr_of(&b, id);
    drop(target); // port closed: the next datagram there bounces
    b.queue_send(id, target_addr, b"into the void")
        .expect("queued");
    b.flush().expect("flush");
    // Wait until the error has been seen (mmsg: EPOLLERR/recv error; uring:
    // the multishot receive ends with -ECONNREFUSED and is re-armed).
    pump(
        &mut b,
        |_, _| Verdict::Drop,
        |b| b.stats().rx_errors + b.stats().tx_errors >= 1,
    );
    // The same port is alive again: traffic flows through the same socket.
    let again = peer_at(&target_addr.to_string());
    again.send_to(b"hello again", dst).expect("send");
    let before = b.stats().rx_packets;
    pump(&mut b, echo, |b| b.stats().rx_packets > before);
    assert_eq!(recv(&again).0, b"hello again");
}

fn busy_poll(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    // Idle: the non-blocking forms return nothing.
    for _ in 0..3 {
        assert_eq!(b.poll(echo).expect("poll"), 0);
    }
    assert_eq!(
        b.run_busy(10, Duration::from_millis(1), echo)
            .expect("busy"),
        0
    );
    let p = peer();
    p.send_to(b"ping", addr_of(&b, id)).expect("send");
    let mut total = 0;
    for _ in 0..2000 {
        total += b.run_busy(64, WAIT, echo).expect("busy");
        if total > 0 {
            break;
        }
    }
    assert_eq!(total, 1);
    b.flush().expect("flush");
    assert_eq!(recv(&p).0, b"ping");
}

fn no_allocation_in_steady_state(kind: BackendKind) {
    if skip_uring(kind) {
        return;
    }
    let mut b = open(kind);
    let ids: Vec<SocketId> = (0..8)
        .map(|_| b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = ids.iter().map(|&i| addr_of(&b, i)).collect();
    let p = peer();
    let pa = p.local_addr().expect("addr");
    let data = payload(1, 172);
    let mut buf = vec![0u8; 2048];
    let mut allocations = 0;
    for round in 0..20 {
        for a in &addrs {
            p.send_to(&data, *a).expect("send");
        }
        let want = b.stats().rx_packets + addrs.len() as u64;
        let mut spins = 0;
        while b.stats().rx_packets < want && spins < 20_000 {
            // Forward, queue an out-of-band copy now and then, flush.
            let (r, n) = allocations_in(|| {
                let r = b.run_once(WAIT, |pkt, tx| {
                    if pkt.len == 172 && pkt.buf[0] % 4 == 0 {
                        let _ = tx.queue_send(pkt.socket, pkt.from, b"oob");
                    }
                    Verdict::Send {
                        socket: pkt.socket,
                        to: pkt.from,
                        len: pkt.len,
                    }
                });
                let _ = b.queue_send(ids[0], pa, b"side");
                b.flush().map(|()| r)
            });
            r.expect("run_once").expect("flush");
            // The first rounds warm up (lazy first-use allocations).
            if round >= 2 {
                allocations += n;
            }
            spins += 1;
        }
        // Drain what came back (not measured).
        p.set_nonblocking(true).expect("nonblocking");
        while p.recv_from(&mut buf).is_ok() {}
        p.set_nonblocking(false).expect("blocking");
    }
    assert_eq!(b.stats().rx_packets, 20 * addrs.len() as u64);
    assert_eq!(allocations, 0, "heap allocations in steady state");
}

macro_rules! backend_tests {
    ($m:ident, $kind:expr) => {
        mod $m {
            use super::*;
            #[test]
            fn echo_relay_counts_bytes_and_packets() {
                echo_n($kind)
            }
            #[test]
            fn in_place_edit_and_length_change() {
                edit_in_place($kind)
            }
            #[test]
            fn forwards_from_socket_a_to_socket_b_peer() {
                forward_between_sockets($kind)
            }
            #[test]
            fn queue_send_out_of_band_and_bounded() {
                queue_send($kind)
            }
            #[test]
            fn five_hundred_sockets_dense_ids() {
                many_sockets($kind)
            }
            #[test]
            fn truncated_datagrams_counted_and_dropped() {
                truncated($kind)
            }
            #[test]
            fn ipv6_and_cross_family_forwarding() {
                ipv6($kind)
            }
            #[test]
            fn bad_verdicts_are_counted_not_fatal() {
                send_errors_do_not_stop_the_loop($kind)
            }
            #[test]
            fn econnrefused_is_survived() {
                connection_refused($kind)
            }
            #[test]
            fn non_blocking_poll_and_busy_budget() {
                busy_poll($kind)
            }
            #[test]
            fn steady_state_does_not_allocate() {
                no_allocation_in_steady_state($kind)
            }
        }
    };
}

backend_tests!(mmsg, BackendKind::Mmsg);
backend_tests!(uring, BackendKind::Uring);

// ---------------------------------------------------------------------------
// Backend selection.

/// Installs, on the calling thread only, a seccomp filter that makes
/// `io_uring_setup` fail with `EPERM` (what container runtimes' default
/// profiles do).
fn deny_io_uring_on_this_thread() {
    let nr = libc::SYS_io_uring_setup as u32;
    let mut filter = [
        // A = syscall number
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; `prog` points at a live filter array. Both
    // settings are per thread (no TSYNC), so other tests are unaffected.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0
        );
    }
}

#[test]
fn auto_prefers_uring_when_it_works() {
    if skip_uring(BackendKind::Uring) {
        return;
    }
    assert_eq!(probe_uring(), Ok(()));
    let b = Backend::open(&IoConfig::default()).expect("open");
    assert_eq!(b.kind(), ActiveKind::Uring);
    assert_eq!(b.uring_error(), None);
}

#[test]
fn auto_falls_back_to_mmsg_when_seccomp_refuses_io_uring() {
    std::thread::spawn(|| {
        deny_io_uring_on_this_thread();
        let err = probe_uring().expect_err("io_uring is refused on this thread");
        assert_eq!((err.stage, err.errno), (UringStage::Setup, libc::EPERM));
        assert!(Backend::open(&IoConfig {
            kind: BackendKind::Uring,
            ..IoConfig::default()
        })
        .is_err());
        let mut b = Backend::open(&IoConfig::default()).expect("auto opens");
        assert_eq!(b.kind(), ActiveKind::Mmsg);
        assert_eq!(b.uring_error(), Some(err));
        // ... and the fallback forwards traffic.
        let id = b.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let p = peer();
        p.send_to(b"via mmsg", addr_of(&b, id)).expect("send");
        pump(&mut b, echo, |b| b.stats().rx_packets >= 1);
        assert_eq!(recv(&p).0, b"via mmsg");
    })
    .join()
    .expect("test thread");
}

#[test]
fn auto_falls_back_on_impossible_uring_config() {
    let config = IoConfig {
        uring_buffers: 3,
        ..IoConfig::default()
    };
    let b = Backend::open(&config).expect("auto opens");
    assert_eq!(b.kind(), ActiveKind::Mmsg);
    assert_eq!(b.uring_error().map(|e| e.stage), Some(UringStage::Config));
    assert!(Backend::open(&IoConfig {
        kind: BackendKind::Uring,
        ..config
    })
    .is_err());
}

/// Drops `CAP_IPC_LOCK` from the calling thread's effective set, so io_uring
/// charges its rings to `RLIMIT_MEMLOCK` as it would for an unprivileged
/// process. Per thread: other tests keep the capability.
fn drop_cap_ipc_lock_on_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the ABI
    // requires; pid 0 is the calling thread.
    unsafe {
        assert_eq!(
            libc::syscall(
                libc::SYS_capget,
                &mut header as *mut Header,
                data.as_mut_ptr()
            ),
            0
        );
        data[0].effective &= !(1 << CAP_IPC_LOCK);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn uring_fits_locked_memory_and_enomem_falls_back() {
    if skip_uring(BackendKind::Uring) {
        return;
    }
    std::thread::spawn(|| {
        drop_cap_ipc_lock_on_this_thread();
        // The default sizing pins ~230 KiB (rings + buffer ring), far below
        // the 8 MiB limit of this machine.
        let default =
            UringBackend::new(&IoConfig::default()).expect("default sizing fits RLIMIT_MEMLOCK");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        let r = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
        assert_eq!(r, 0);
        if limit.rlim_cur == libc::RLIM_INFINITY {
            return; // nothing to exhaust
        }
        // The largest sizing pins ~1.8 MiB; hold rings until the limit bites.
        let big = IoConfig {
            uring_buffers: 32768,
            uring_sq_entries: 4096,
            ..IoConfig::default()
        };
        let mut held = vec![default];
        let err = loop {
            assert!(held.len() < 1024, "RLIMIT_MEMLOCK never enforced");
            match UringBackend::new(&big) {
                Ok(b) => held.push(b),
                Err(e) => break e,
            }
        };
        assert_eq!(err.errno, libc::ENOMEM, "{err}");
        let b = Backend::open(&big).expect("auto opens");
        assert_eq!(b.kind(), ActiveKind::Mmsg);
        assert_eq!(b.uring_error().map(|e| e.errno), Some(libc::ENOMEM));
    })
    .join()
    .expect("test thread");
}
