//! The data plane is its own process: `kill -9` of the control plane while
//! media flows loses no packet on established legs, and a new control plane
//! re-attaches and recovers the session table.
//!
//! Real processes: `strait-dataplane` and `strait-dpctl` (the minimal
//! control plane) from this crate; media over loopback.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    let out = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(out).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = prefix.to_string();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            if line.starts_with(&want) {
                let _ = tx.send(line);
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines.map_while(Result::ok) {}
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no line starting with {prefix:?}"))
}

#[test]
fn kill_9_of_the_control_plane_loses_no_media_and_a_new_one_reattaches() {
    let shm = std::env::temp_dir().join(format!("strait-kill9-{}", std::process::id()));
    let shm = shm.to_str().unwrap().to_string();
    let pairs = format!("{shm}.pairs");
    const STREAMS: u16 = 4;
    const PACKETS: u16 = 600;
    const KILL_AT: u16 = 200;
    let (a_base, b_base) = (14000u16, 16000u16);
    // Source and sink sockets first, so the ports are ours.
    let sources: Vec<UdpSocket> = (0..STREAMS)
        .map(|i| UdpSocket::bind(("127.0.0.1", a_base + 2 * i)).unwrap())
        .collect();
    let sinks: Vec<UdpSocket> = (0..STREAMS)
        .map(|i| {
            let s = UdpSocket::bind(("127.0.0.1", b_base + 2 * i)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s
        })
        .collect();

    let mut dp = Kill(
        Command::new(env!("CARGO_BIN_EXE_strait-dataplane"))
            .args(["--shm", &shm, "--port-min", "27000", "--port-max", "27999"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&mut dp.0, "strait-dataplane: ready");
    // dpctl gives stream i source a_base+i and sink b_base+i; use every
    // other stream so sources and sinks never share a port.
    let mut cp = Kill(
        Command::new(env!("CARGO_BIN_EXE_strait-dpctl"))
            .args([
                "relay",
                "--shm",
                &shm,
                "--streams",
                &(2 * STREAMS).to_string(),
            ])
            .args([
                "--a-base",
                &a_base.to_string(),
                "--b-base",
                &b_base.to_string(),
            ])
            .args(["--pairs-out", &pairs, "--hold"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&mut cp.0, "ready");
    let relay_ports: Vec<u16> = std::fs::read_to_string(&pairs)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();

    // One receiver per sink, so no socket buffer overflows while another
    // is read.
    let receivers: Vec<_> = sinks
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut buf = [0u8; 2048];
                while got.len() < PACKETS as usize && Instant::now() < deadline {
                    match s.recv(&mut buf) {
                        Ok(n) if n >= 12 => got.push(u16::from_be_bytes([buf[2], buf[3]])),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break, // 200 ms of silence: the rest is lost
                    }
                }
                got
            })
        })
        .collect();

    let mut killed_at = None;
    for seq in 0..PACKETS {
        if seq == KILL_AT {
            // SIGKILL: no cleanup, exactly like kill -9.
            cp.0.kill().unwrap();
            cp.0.wait().unwrap();
            killed_at = Some(Instant::now());
        }
        for (i, s) in sources.iter().enumerate() {
            let mut p = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i as u8];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p.extend(std::iter::repeat_n(0xD5u8, 160));
            s.send_to(&p, ("127.0.0.1", relay_ports[2 * i])).unwrap();
        }
        // Pace at 1 ms so the loss check is about the relay, not about
        // overrunning a socket buffer.
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(killed_at.is_some());
    for (i, r) in receivers.into_iter().enumerate() {
        let seqs = r.join().unwrap();
        let expected: Vec<u16> = (0..PACKETS).collect();
        assert_eq!(
            seqs, expected,
            "stream {i}: every packet, in order, across the kill"
        );
    }

    // A new control plane attaches and recovers the table from the workers.
    let out = Command::new(env!("CARGO_BIN_EXE_strait-dpctl"))
        .args(["snapshot", "--shm", &shm])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("legs={}", 4 * STREAMS)), "{text}");
    assert!(
        text.contains(&format!("leg 1 peer 2 port {}", relay_ports[0])),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_strait-dpctl"))
        .args(["counters", "--shm", &shm])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let relayed = u64::from(STREAMS) * u64::from(PACKETS);
    assert!(text.contains(&format!("packets_out={relayed} ")), "{text}");
    assert!(text.contains("dropped=0"), "{text}");

    // SIGTERM ends the data plane cleanly.
    // SAFETY: sending a signal to our own child by pid.
    unsafe {
        libc::kill(dp.0.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = dp.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "data plane did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let _ = std::fs::remove_file(&pairs);
}
