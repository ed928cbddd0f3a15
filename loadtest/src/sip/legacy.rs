//! A simulated legacy SIP endpoint on one UDP socket (Strait's
//! `routing.default_next_hop`), with RFC 3261 reliability over UDP:
//!
//! - UAS: an INVITE from Strait gets 100 and 180 at once, then (after
//!   the ring time) a 200 with a PCMU answer, the 200 retransmitted (T1
//!   doubling up to T2) until the ACK; a retransmitted INVITE gets the last
//!   response again; BYE gets 200 (and again for a retransmitted BYE);
//!   CANCEL gets 200 and the INVITE 487; OPTIONS 200.
//! - UAC: INVITE to a user registered at Strait (Timer A retransmissions
//!   until a response, ACK for every final answer, the 2xx ACK repeated
//!   when the 200 is), BYE (Timer E retransmissions until the final answer).
//!
//! Which calls the UAS answers how: an INVITE whose Request-URI user has a
//! [`Legacy::expect`]ation gets that answer (its media port) and reports
//! Strait's offer to the waiter; any other INVITE gets the default answer.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout_at};

use super::browser::{Dialog, InviteTimes};
use super::msg::{addr_uri, Builder, SipMsg};
use super::sdp::legacy_sdp;
use super::{unique, Failure};

/// RFC 3261 T1.
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2.
pub const T2: Duration = Duration::from_secs(4);
/// Ended UAS dialogs are remembered this long (to answer retransmissions).
const LINGER: Duration = Duration::from_secs(40);

/// Counters of the legacy endpoint.
#[derive(Debug, Default)]
pub struct LegacyCounters {
    /// New INVITEs received.
    pub invites_in: AtomicU64,
    /// ACKs for our 200s.
    pub acks_in: AtomicU64,
    /// BYEs received.
    pub byes_in: AtomicU64,
    /// Requests we retransmitted (ours, and 200s awaiting ACK).
    pub retransmits: AtomicU64,
    /// Datagrams that did not parse.
    pub malformed: AtomicU64,
}

/// What Strait offered for a call we answered.
#[derive(Debug, Clone)]
pub struct Offered {
    /// Strait's Call-ID toward us.
    pub call_id: String,
    /// The SDP offer.
    pub sdp: String,
}

struct Expectation {
    media: SocketAddr,
    tx: oneshot::Sender<Offered>,
}

struct UasCall {
    invite_branch: String,
    peer: SocketAddr,
    to_tag: String,
    /// The last response to the INVITE.
    last: Option<String>,
    acked: bool,
    /// When the dialog ended (BYE or failure), for pruning.
    ended: Option<Instant>,
    /// Our answer to its BYE, for retransmitted BYEs.
    bye_ok: Option<String>,
}

struct Inner {
    sock: UdpSocket,
    local: SocketAddr,
    strait: SocketAddr,
    default_media: SocketAddr,
    ring: Duration,
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<SipMsg>>>,
    acks: Mutex<HashMap<String, String>>,
    uas: Mutex<HashMap<String, UasCall>>,
    expect: Mutex<HashMap<String, Expectation>>,
    counters: LegacyCounters,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The legacy endpoint (cheap to clone).
#[derive(Clone)]
pub struct Legacy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legacy")
            .field("local", &self.inner.local)
            .field("strait", &self.inner.strait)
            .finish_non_exhaustive()
    }
}

/// Asks for 4 MiB socket buffers (the kernel caps them at
/// `net.core.rmem_max`/`wmem_max`), so that bursts at high call rates are
/// not dropped here before Strait is the bottleneck.
fn grow_buffers(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: the fd is the open socket we own; the option value is a
        // c_int on our stack with its exact size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                std::ptr::addr_of!(size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// The user part of a SIP URI (`sip:user@host;p` -> `user`).
fn uri_user(uri: &str) -> &str {
    let u = addr_uri(uri);
    let u = u.strip_prefix("sip:").unwrap_or(u);
    u.split_once('@').map_or("", |(user, _)| user)
}

impl Legacy {
    /// Binds `local` and starts the endpoint: our requests go to `strait`
    /// (its UDP listener); calls without an expectation are answered after
    /// `ring` with media at `default_media`.
    pub async fn start(
        local: SocketAddr,
        strait: SocketAddr,
        default_media: SocketAddr,
        ring: Duration,
    ) -> io::Result<Legacy> {
        let sock = UdpSocket::bind(local).await?;
        grow_buffers(&sock);
        let local = sock.local_addr()?;
        let inner = Arc::new(Inner {
            sock,
            local,
            strait,
            default_media,
            ring,
            pending: Mutex::default(),
            acks: Mutex::default(),
            uas: Mutex::default(),
            expect: Mutex::default(),
            counters: LegacyCounters::default(),
        });
        let me = Legacy { inner };
        let rx = me.clone();
        tokio::spawn(async move { rx.receive_loop().await });
        let sweep = Arc::downgrade(&me.inner);
        tokio::spawn(async move {
            // Ends when the endpoint is dropped.
            loop {
                sleep(Duration::from_secs(5)).await;
                let Some(inner) = sweep.upgrade() else { break };
                let now = Instant::now();
                lock(&inner.uas).retain(|_, c| c.ended.is_none_or(|t| now - t < LINGER));
            }
        });
        Ok(me)
    }

    /// Our address.
    pub fn local(&self) -> SocketAddr {
        self.inner.local
    }

    /// The counters.
    pub fn counters(&self) -> &LegacyCounters {
        &self.inner.counters
    }

    /// Calls to `user` are answered with media at `media`; Strait's offer
    /// arrives on the returned channel.
    pub fn expect(&self, user: &str, media: SocketAddr) -> oneshot::Receiver<Offered> {
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.expect).insert(user.to_string(), Expectation { media, tx });
        rx
    }

    /// Drops an expectation that was not met.
    pub fn unexpect(&self, user: &str) {
        lock(&self.inner.expect).remove(user);
    }

    async fn send_to(&self, text: &str, to: SocketAddr) {
        let _ = self.inner.sock.send_to(text.as_bytes(), to).await;
    }

    async fn receive_loop(self) {
        let mut buf = vec![0u8; 65_536];
        // Ends when the socket fails (the runtime shuts down with the run).
        loop {
            let Ok((n, from)) = self.inner.sock.recv_from(&mut buf).await else {
                break;
            };
            let Ok(msg) = SipMsg::parse(&buf[..n]) else {
                self.inner
                    .counters
                    .malformed
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if msg.status().is_some() {
                self.on_response(msg).await;
            } else {
                self.on_request(msg, from).await;
            }
        }
    }

    async fn on_response(&self, msg: SipMsg) {
        let branch = msg.via_branch().unwrap_or("").to_string();
        let status = msg.status().unwrap_or(0);
        let waiter = {
            let mut p = lock(&self.inner.pending);
            if status >= 200 {
                p.remove(&branch)
            } else {
                p.get(&branch).cloned()
            }
        };
        if let Some(w) = waiter {
            let _ = w.send(msg);
            return;
        }
        // A retransmitted 200 to an INVITE we already ACKed: ACK again.
        if (200..300).contains(&status) && msg.cseq().is_some_and(|(_, m)| m == "INVITE") {
            let ack = msg
                .call_id()
                .and_then(|c| lock(&self.inner.acks).get(c).cloned());
            if let Some(ack) = ack {
                self.send_to(&ack, self.inner.strait).await;
            }
        }
    }

    async fn on_request(&self, msg: SipMsg, from: SocketAddr) {
        let method = msg.method().unwrap_or("").to_string();
        let call_id = msg.call_id().unwrap_or("").to_string();
        match method.as_str() {
            "INVITE" => self.on_invite(msg, from, call_id).await,
            "ACK" => {
                let mut uas = lock(&self.inner.uas);
                if let Some(c) = uas.get_mut(&call_id) {
                    if !c.acked {
                        c.acked = true;
                        self.inner.counters.acks_in.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            "BYE" => {
                let reply = {
                    let mut uas = lock(&self.inner.uas);
                    match uas.get_mut(&call_id) {
                        Some(c) => {
                            if c.bye_ok.is_none() {
                                self.inner.counters.byes_in.fetch_add(1, Ordering::Relaxed);
                                c.bye_ok = Some(Builder::response(&msg, 200, "OK", None).finish());
                                c.ended = Some(Instant::now());
                                c.acked = true;
                            }
                            c.bye_ok.clone().unwrap_or_default()
                        }
                        None => Builder::response(&msg, 481, "Call Does Not Exist", None).finish(),
                    }
                };
                self.send_to(&reply, from).await;
            }
            "CANCEL" => {
                let (reply, terminated) = {
                    let mut uas = lock(&self.inner.uas);
                    match uas.get_mut(&call_id) {
                        Some(c) if msg.via_branch() == Some(c.invite_branch.as_str()) => {
                            let ok = Builder::response(&msg, 200, "OK", Some(&c.to_tag)).finish();
                            let mut t = None;
                            if c.last.as_ref().is_none_or(|l| l.starts_with("SIP/2.0 1")) {
                                c.ended = Some(Instant::now());
                                c.acked = true;
                                t = Some(c.to_tag.clone());
                            }
                            (ok, t)
                        }
                        _ => (
                            Builder::response(&msg, 481, "No Such Transaction", None).finish(),
                            None,
                        ),
                    }
                };
                self.send_to(&reply, from).await;
                if let Some(tag) = terminated {
                    // 487 to the INVITE: rebuilt from the CANCEL (same
                    // Via, From, To, Call-ID; CSeq method INVITE).
                    let mut inv = msg.clone();
                    for h in inv.headers.iter_mut() {
                        if h.0.eq_ignore_ascii_case("CSeq") {
                            h.1 = h.1.replace("CANCEL", "INVITE");
                        }
                    }
                    let r = Builder::response(&inv, 487, "Request Terminated", Some(&tag)).finish();
                    if let Some(c) = lock(&self.inner.uas).get_mut(&call_id) {
                        c.last = Some(r.clone());
                    }
                    self.send_to(&r, from).await;
                }
            }
            "OPTIONS" | "INFO" | "UPDATE" | "MESSAGE" | "NOTIFY" => {
                let r = Builder::response(&msg, 200, "OK", Some(&unique("t"))).finish();
                self.send_to(&r, from).await;
            }
            _ => {
                let r =
                    Builder::response(&msg, 501, "Not Implemented", Some(&unique("t"))).finish();
                self.send_to(&r, from).await;
            }
        }
    }

    async fn on_invite(&self, msg: SipMsg, from: SocketAddr, call_id: String) {
        let branch = msg.via_branch().unwrap_or("").to_string();
        // A retransmission (or a re-INVITE in an existing dialog).
        let existing = {
            let uas = lock(&self.inner.uas);
            uas.get(&call_id)
                .map(|c| (c.invite_branch == branch, c.last.clone(), c.to_tag.clone()))
        };
        if let Some((same, last, tag)) = existing {
            if same {
                if let Some(last) = last {
                    self.inner
                        .counters
                        .retransmits
                        .fetch_add(1, Ordering::Relaxed);
                    self.send_to(&last, from).await;
                }
            } else {
                // re-INVITE: accept with the same media.
                let media = self.inner.default_media;
                let ok = Builder::response(&msg, 200, "OK", Some(&tag))
                    .header("Contact", &format!("<sip:legacy@{}>", self.inner.local))
                    .body(Some("application/sdp"), &legacy_sdp(media, 1));
                self.send_to(&ok, from).await;
            }
            return;
        }
        self.inner
            .counters
            .invites_in
            .fetch_add(1, Ordering::Relaxed);
        let user = uri_user(msg.uri().unwrap_or("")).to_string();
        let expectation = lock(&self.inner.expect).remove(&user);
        let media = match expectation {
            Some(e) => {
                let _ = e.tx.send(Offered {
                    call_id: call_id.clone(),
                    sdp: msg.body_str().to_string(),
                });
                e.media
            }
            None => self.inner.default_media,
        };
        let tag = unique("lt");
        let trying = Builder::response(&msg, 100, "Trying", None).finish();
        lock(&self.inner.uas).insert(
            call_id.clone(),
            UasCall {
                invite_branch: branch,
                peer: from,
                to_tag: tag.clone(),
                last: Some(trying.clone()),
                acked: false,
                ended: None,
                bye_ok: None,
            },
        );
        self.send_to(&trying, from).await;
        let me = self.clone();
        tokio::spawn(async move { me.answer(msg, call_id, tag, media).await });
    }

    async fn answer(self, invite: SipMsg, call_id: String, tag: String, media: SocketAddr) {
        let ringing = Builder::response(&invite, 180, "Ringing", Some(&tag))
            .header("Contact", &format!("<sip:legacy@{}>", self.inner.local))
            .finish();
        let peer = {
            let mut uas = lock(&self.inner.uas);
            let Some(c) = uas.get_mut(&call_id) else {
                return;
            };
            c.last = Some(ringing.clone());
            c.peer
        };
        self.send_to(&ringing, peer).await;
        if !self.inner.ring.is_zero() {
            sleep(self.inner.ring).await;
        }
        let session = u64::from(media.port());
        let ok = Builder::response(&invite, 200, "OK", Some(&tag))
            .header("Contact", &format!("<sip:legacy@{}>", self.inner.local))
            .body(Some("application/sdp"), &legacy_sdp(media, session));
        let peer = {
            let mut uas = lock(&self.inner.uas);
            let Some(c) = uas.get_mut(&call_id) else {
                return;
            };
            if c.ended.is_some() {
                // Cancelled while ringing.
                return;
            }
            c.last = Some(ok.clone());
            c.peer
        };
        self.send_to(&ok, peer).await;
        // Retransmit the 200 until the ACK (RFC 3261 §13.3.1.4), 64*T1 at most.
        let give_up = Instant::now() + 64 * T1;
        let mut every = T1;
        loop {
            sleep(every).await;
            let acked = lock(&self.inner.uas)
                .get(&call_id)
                .is_none_or(|c| c.acked || c.ended.is_some());
            if acked {
                return;
            }
            if Instant::now() >= give_up {
                if let Some(c) = lock(&self.inner.uas).get_mut(&call_id) {
                    c.ended = Some(Instant::now());
                }
                return;
            }
            self.inner
                .counters
                .retransmits
                .fetch_add(1, Ordering::Relaxed);
            self.send_to(&ok, peer).await;
            every = (every * 2).min(T2);
        }
    }

    /// Sends a request to Strait and waits for its final answer,
    /// retransmitting (Timer A for INVITE until any response, Timer E for
    /// others until the final one).
    async fn transact(
        &self,
        branch: &str,
        text: &str,
        invite: bool,
        deadline: Instant,
        times: &mut InviteTimes,
    ) -> Result<SipMsg, Failure> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.inner.pending).insert(branch.to_string(), tx);
        self.send_to(text, self.inner.strait).await;
        let mut every = T1;
        let mut next = Instant::now() + every;
        let mut provisional = false;
        let out = loop {
            let wake = next.min(deadline);
            match timeout_at(wake.into(), rx.recv()).await {
                Ok(Some(m)) => {
                    let status = m.status().unwrap_or(0);
                    if status >= 200 {
                        break Ok(m);
                    }
                    provisional = true;
                    let now = Instant::now();
                    times.first_1xx.get_or_insert(now);
                    if (180..200).contains(&status) {
                        times.ringing.get_or_insert(now);
                    }
                    if !invite {
                        // Timer E continues at T2 after a provisional answer.
                        every = T2;
                    }
                }
                Ok(None) => break Err(Failure::Closed),
                Err(_) => {
                    if Instant::now() >= deadline {
                        break Err(Failure::Timeout);
                    }
                    if !(invite && provisional) {
                        self.inner
                            .counters
                            .retransmits
                            .fetch_add(1, Ordering::Relaxed);
                        self.send_to(text, self.inner.strait).await;
                    }
                    every = if invite {
                        every * 2
                    } else {
                        (every * 2).min(T2)
                    };
                    next = Instant::now() + every;
                }
            }
        };
        if out.is_err() {
            lock(&self.inner.pending).remove(branch);
        }
        out
    }

    /// Calls `user@domain` at Strait from `from_user` with a PCMU offer on
    /// `media`: INVITE until the 200 (ACKed). Returns the dialog.
    pub async fn invite(
        &self,
        user: &str,
        domain: &str,
        from_user: &str,
        media: SocketAddr,
        deadline: Instant,
    ) -> Result<(Dialog, InviteTimes), Failure> {
        let ruri = format!("sip:{user}@{domain}");
        let call_id = unique("lcall");
        let tag = unique("lt");
        let local = format!("<sip:{from_user}@{}>", self.inner.local.ip());
        let remote = format!("<{ruri}>");
        let branch = unique("z9hG4bK");
        let via = format!("SIP/2.0/UDP {};branch={branch};rport", self.inner.local);
        let text = Builder::request("INVITE", &ruri)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("To", &remote)
            .header("From", &format!("{local};tag={tag}"))
            .header("Call-ID", &call_id)
            .header("CSeq", "1 INVITE")
            .header(
                "Contact",
                &format!("<sip:{from_user}@{}>", self.inner.local),
            )
            .header("User-Agent", "strait-loadtest-legacy")
            .body(
                Some("application/sdp"),
                &legacy_sdp(media, u64::from(media.port())),
            );
        let mut times = InviteTimes::default();
        let r = self
            .transact(&branch, &text, true, deadline, &mut times)
            .await?;
        times.answered = Some(Instant::now());
        let status = r.status().unwrap_or(0);
        // ACK every final answer: non-2xx in the transaction (same branch),
        // 2xx as its own request to the Contact.
        let two = (200..300).contains(&status);
        let (ack_uri, ack_via) = if two {
            (
                r.contact_uri().unwrap_or(&ruri).to_string(),
                format!(
                    "SIP/2.0/UDP {};branch={};rport",
                    self.inner.local,
                    unique("z9hG4bK")
                ),
            )
        } else {
            (ruri.clone(), via)
        };
        let ack = Builder::request("ACK", &ack_uri)
            .header("Via", &ack_via)
            .header("Max-Forwards", "70")
            .header("To", r.header("To").unwrap_or(&remote))
            .header("From", &format!("{local};tag={tag}"))
            .header("Call-ID", &call_id)
            .header("CSeq", "1 ACK")
            .finish();
        self.send_to(&ack, self.inner.strait).await;
        if !two {
            return Err(Failure::of(&r));
        }
        lock(&self.inner.acks).insert(call_id.clone(), ack);
        let remote_tag = r
            .to_tag()
            .ok_or(Failure::Protocol("200 without a To tag"))?
            .to_string();
        Ok((
            Dialog {
                call_id,
                local_tag: tag,
                remote_tag,
                local,
                remote,
                target: ack_uri,
                cseq: 1,
                remote_sdp: r.body_str().to_string(),
            },
            times,
        ))
    }

    /// Ends a dialog we started with BYE.
    pub async fn bye(&self, d: &mut Dialog, deadline: Instant) -> Result<(), Failure> {
        d.cseq += 1;
        let branch = unique("z9hG4bK");
        let text = Builder::request("BYE", &d.target)
            .header(
                "Via",
                &format!("SIP/2.0/UDP {};branch={branch};rport", self.inner.local),
            )
            .header("Max-Forwards", "70")
            .header("To", &format!("{};tag={}", d.remote, d.remote_tag))
            .header("From", &format!("{};tag={}", d.local, d.local_tag))
            .header("Call-ID", &d.call_id)
            .header("CSeq", &format!("{} BYE", d.cseq))
            .finish();
        let mut times = InviteTimes::default();
        let r = self
            .transact(&branch, &text, false, deadline, &mut times)
            .await;
        lock(&self.inner.acks).remove(&d.call_id);
        let r = r?;
        match r.status() {
            Some(200) => Ok(()),
            Some(_) => Err(Failure::of(&r)),
            None => Err(Failure::Protocol("not a response")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_users() {
        assert_eq!(uri_user("sip:9000001@127.0.0.1:5080"), "9000001");
        assert_eq!(uri_user("<sip:alice@h;transport=ws>"), "alice");
        assert_eq!(uri_user("sip:127.0.0.1"), "");
    }

    /// The UAS against our own UAC over loopback: INVITE, 100/180/200, ACK,
    /// BYE; an expectation gets the offer.
    #[test]
    fn uac_calls_uas() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let media: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let uas = Legacy::start(any, any, media, Duration::from_millis(10))
                .await
                .unwrap();
            let uac = Legacy::start(any, uas.local(), media, Duration::ZERO)
                .await
                .unwrap();
            let my_media: SocketAddr = "127.0.0.1:7777".parse().unwrap();
            let offered = uas.expect("42", my_media);
            let deadline = Instant::now() + Duration::from_secs(5);
            let (mut d, times) = uac
                .invite("42", "127.0.0.1", "caller", media, deadline)
                .await
                .unwrap();
            assert!(times.ringing.is_some());
            let p = crate::sdp::parse(&d.remote_sdp).unwrap();
            assert_eq!(p.port, 7777);
            let o = offered.await.unwrap();
            assert_eq!(o.call_id, d.call_id);
            assert!(o.sdp.contains("m=audio 9 RTP/AVP"));
            uac.bye(&mut d, deadline).await.unwrap();
            assert_eq!(uas.counters().invites_in.load(Ordering::Relaxed), 1);
            assert_eq!(uas.counters().byes_in.load(Ordering::Relaxed), 1);
            // The ACK is in flight; give it a moment.
            for _ in 0..50 {
                if uas.counters().acks_in.load(Ordering::Relaxed) == 1 {
                    break;
                }
                sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(uas.counters().acks_in.load(Ordering::Relaxed), 1);
            // An unknown dialog's BYE: 481.
            let mut gone = d.clone();
            gone.call_id = "nope".into();
            assert_eq!(
                uac.bye(&mut gone, deadline).await,
                Err(Failure::Status(481, "Call Does Not Exist".into()))
            );
        });
    }
}
