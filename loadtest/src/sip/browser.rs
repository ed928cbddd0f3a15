//! A simulated browser's SIP user agent over one WSS connection (as JsSIP
//! behaves): REGISTER with digest (401, then the authenticated retry),
//! INVITE with digest (407, ACK, the authenticated retry, 1xx, 200, ACK),
//! BYE, and answering an INVITE from Strait (180, 200 with the browser's
//! SDP answer). Over a reliable transport nothing is retransmitted; every
//! wait is bounded by the operation's deadline.

use std::time::Instant;

use tokio::sync::mpsc;
use tokio::time::timeout_at;

use super::digest::Challenge;
use super::msg::{header_param, Builder, SipMsg};
use super::wss::Conn;
use super::{unique, Failure};

/// What a finished INVITE client transaction went through.
#[derive(Debug, Clone, Copy, Default)]
pub struct InviteTimes {
    /// First provisional response (100 Trying or 18x).
    pub first_1xx: Option<Instant>,
    /// First 18x.
    pub ringing: Option<Instant>,
    /// The 200.
    pub answered: Option<Instant>,
}

/// One side of an established dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Their tag.
    pub remote_tag: String,
    /// Our address (name-addr, no tag).
    pub local: String,
    /// Their address (name-addr, no tag).
    pub remote: String,
    /// Where in-dialog requests go (their Contact).
    pub target: String,
    /// Our last CSeq.
    pub cseq: u32,
    /// The SDP they sent (offer or answer).
    pub remote_sdp: String,
}

/// A simulated browser: one user on one connection.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The connection.
    pub conn: Conn,
    /// SIP user (AOR `sip:user@domain`).
    pub user: String,
    /// Its password.
    pub password: String,
    /// Registrar domain (host of the AOR and of REGISTER's Request-URI).
    pub domain: String,
    host: String,
    instance: String,
}

/// Waits for the final response of a transaction, noting provisional ones.
async fn final_response(
    rx: &mut mpsc::UnboundedReceiver<SipMsg>,
    deadline: Instant,
    times: &mut InviteTimes,
) -> Result<SipMsg, Failure> {
    // Bounded by the deadline (and the channel closing).
    loop {
        let msg = timeout_at(deadline.into(), rx.recv())
            .await
            .map_err(|_| Failure::Timeout)?
            .ok_or(Failure::Closed)?;
        let status = msg.status().unwrap_or(0);
        if status >= 200 {
            return Ok(msg);
        }
        let now = Instant::now();
        times.first_1xx.get_or_insert(now);
        if (180..200).contains(&status) {
            times.ringing.get_or_insert(now);
        }
    }
}

impl Browser {
    /// A browser for `user` on `conn`.
    pub fn new(conn: Conn, user: &str, password: &str, domain: &str) -> Self {
        let host = format!("{}.invalid", unique("h"));
        let n = unique("");
        let instance = format!(
            "5d0e8f53-4a4c-4c0e-9f8a-{:0>12}",
            &n[n.len().saturating_sub(12)..]
        );
        Browser {
            conn,
            user: user.to_string(),
            password: password.to_string(),
            domain: domain.to_string(),
            host,
            instance,
        }
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/WSS {};branch={branch};rport", self.host)
    }

    /// Our Contact URI.
    pub fn contact(&self) -> String {
        format!("<sip:{}@{};transport=ws>", self.user, self.host)
    }

    /// Our AOR.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    async fn transact(
        &self,
        branch: &str,
        text: String,
        deadline: Instant,
        times: &mut InviteTimes,
    ) -> Result<SipMsg, Failure> {
        let mut rx = self.conn.request(branch, text);
        let r = final_response(&mut rx, deadline, times).await;
        if r.is_err() {
            self.conn.forget(branch);
        }
        r
    }

    /// One registration: REGISTER, the 401 challenge, the authenticated
    /// REGISTER, its 200. A fresh Call-ID each time (a page load); the
    /// Contact and instance stay, so the binding is replaced, not added.
    pub async fn register(&self, expires: u32, deadline: Instant) -> Result<(), Failure> {
        let call_id = unique("reg");
        let tag = unique("t");
        let ruri = format!("sip:{}", self.domain);
        let aor = self.aor();
        let build = |cseq: u32, branch: &str, auth: Option<&str>| {
            let mut b = Builder::request("REGISTER", &ruri)
                .header("Via", &self.via(branch))
                .header("Max-Forwards", "70")
                .header("To", &format!("<{aor}>"))
                .header("From", &format!("<{aor}>;tag={tag}"))
                .header("Call-ID", &call_id)
                .header("CSeq", &format!("{cseq} REGISTER"))
                .header(
                    "Contact",
                    &format!(
                        "{};+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:{}>\";expires={expires}",
                        self.contact(),
                        self.instance
                    ),
                )
                .header("Expires", &expires.to_string())
                .header("Supported", "path,gruu,outbound")
                .header("User-Agent", "strait-loadtest");
            if let Some(a) = auth {
                b = b.header("Authorization", a);
            }
            b.finish()
        };
        let mut times = InviteTimes::default();
        let b1 = unique("z9hG4bK");
        let r = self
            .transact(&b1, build(1, &b1, None), deadline, &mut times)
            .await?;
        match r.status() {
            Some(401) => {}
            Some(200) => return Err(Failure::Protocol("REGISTER accepted without a challenge")),
            Some(_) => return Err(Failure::of(&r)),
            None => return Err(Failure::Protocol("not a response")),
        }
        let ch = Challenge::pick(r.headers_named("WWW-Authenticate"))
            .ok_or(Failure::Protocol("no usable WWW-Authenticate"))?;
        let auth = ch.answer(
            &self.user,
            &self.password,
            "REGISTER",
            &ruri,
            &unique("cn"),
            1,
        );
        let b2 = unique("z9hG4bK");
        let r = self
            .transact(&b2, build(2, &b2, Some(&auth)), deadline, &mut times)
            .await?;
        match r.status() {
            Some(200) => Ok(()),
            Some(_) => Err(Failure::of(&r)),
            None => Err(Failure::Protocol("not a response")),
        }
    }

    /// Calls `ruri` with the SDP `offer`: INVITE, 407, ACK, INVITE with
    /// Proxy-Authorization, until the 200 (then ACK). Returns the dialog
    /// and the times of the provisional and final answers.
    pub async fn invite(
        &self,
        ruri: &str,
        offer: &str,
        deadline: Instant,
    ) -> Result<(Dialog, InviteTimes), Failure> {
        let call_id = unique("call");
        let tag = unique("t");
        let local = format!("<{}>", self.aor());
        let remote = format!("<{ruri}>");
        let build = |cseq: u32, branch: &str, auth: Option<&str>| {
            let mut b = Builder::request("INVITE", ruri)
                .header("Via", &self.via(branch))
                .header("Max-Forwards", "70")
                .header("To", &remote)
                .header("From", &format!("{local};tag={tag}"))
                .header("Call-ID", &call_id)
                .header("CSeq", &format!("{cseq} INVITE"))
                .header("Contact", &format!("{};ob", self.contact()))
                .header("Allow", "INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,INFO")
                .header("Supported", "ice,replaces,outbound")
                .header("User-Agent", "strait-loadtest");
            if let Some(a) = auth {
                b = b.header("Proxy-Authorization", a);
            }
            b.body(Some("application/sdp"), offer)
        };
        let mut times = InviteTimes::default();
        let b1 = unique("z9hG4bK");
        let r = self
            .transact(&b1, build(1, &b1, None), deadline, &mut times)
            .await?;
        let status = r.status().unwrap_or(0);
        if status != 407 {
            if (200..300).contains(&status) {
                self.ack_2xx(&r, 1);
                return Err(Failure::Protocol("INVITE accepted without a challenge"));
            }
            self.ack_non2xx(&r, ruri, &b1);
            return Err(Failure::of(&r));
        }
        self.ack_non2xx(&r, ruri, &b1);
        let ch = Challenge::pick(r.headers_named("Proxy-Authenticate"))
            .ok_or(Failure::Protocol("no usable Proxy-Authenticate"))?;
        let auth = ch.answer(&self.user, &self.password, "INVITE", ruri, &unique("cn"), 1);
        let mut times = InviteTimes::default();
        let b2 = unique("z9hG4bK");
        let r = self
            .transact(&b2, build(2, &b2, Some(&auth)), deadline, &mut times)
            .await?;
        times.answered = Some(Instant::now());
        let status = r.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            self.ack_non2xx(&r, ruri, &b2);
            return Err(Failure::of(&r));
        }
        self.ack_2xx(&r, 2);
        let remote_tag = r
            .to_tag()
            .ok_or(Failure::Protocol("200 without a To tag"))?
            .to_string();
        let target = r
            .contact_uri()
            .ok_or(Failure::Protocol("200 without a Contact"))?
            .to_string();
        Ok((
            Dialog {
                call_id,
                local_tag: tag,
                remote_tag,
                local,
                remote,
                target,
                cseq: 2,
                remote_sdp: r.body_str().to_string(),
            },
            times,
        ))
    }

    /// The ACK of a non-2xx final answer (same branch, hop by hop).
    fn ack_non2xx(&self, resp: &SipMsg, ruri: &str, branch: &str) {
        let Some((cseq, _)) = resp.cseq() else { return };
        let text = Builder::request("ACK", ruri)
            .header("Via", &self.via(branch))
            .header("Max-Forwards", "70")
            .header("To", resp.header("To").unwrap_or(""))
            .header("From", resp.header("From").unwrap_or(""))
            .header("Call-ID", resp.call_id().unwrap_or(""))
            .header("CSeq", &format!("{cseq} ACK"))
            .finish();
        let _ = self.conn.send(text);
    }

    /// The ACK of a 2xx (its own transaction, to the Contact).
    fn ack_2xx(&self, resp: &SipMsg, cseq: u32) {
        let target = resp.contact_uri().unwrap_or("sip:invalid").to_string();
        let text = Builder::request("ACK", &target)
            .header("Via", &self.via(&unique("z9hG4bK")))
            .header("Max-Forwards", "70")
            .header("To", resp.header("To").unwrap_or(""))
            .header("From", resp.header("From").unwrap_or(""))
            .header("Call-ID", resp.call_id().unwrap_or(""))
            .header("CSeq", &format!("{cseq} ACK"))
            .finish();
        let _ = self.conn.send(text);
    }

    /// Ends the dialog with BYE and waits for its 200.
    pub async fn bye(&self, d: &mut Dialog, deadline: Instant) -> Result<(), Failure> {
        d.cseq += 1;
        let branch = unique("z9hG4bK");
        let text = Builder::request("BYE", &d.target)
            .header("Via", &self.via(&branch))
            .header("Max-Forwards", "70")
            .header("To", &format!("{};tag={}", d.remote, d.remote_tag))
            .header("From", &format!("{};tag={}", d.local, d.local_tag))
            .header("Call-ID", &d.call_id)
            .header("CSeq", &format!("{} BYE", d.cseq))
            .header("User-Agent", "strait-loadtest")
            .finish();
        let mut times = InviteTimes::default();
        let r = self.transact(&branch, text, deadline, &mut times).await?;
        match r.status() {
            Some(200) => Ok(()),
            Some(_) => Err(Failure::of(&r)),
            None => Err(Failure::Protocol("not a response")),
        }
    }

    /// Answers an INVITE from Strait: 180, then 200 with `answer`. Returns
    /// the dialog (its ACK arrives on the connection as a request).
    pub fn answer(&self, invite: &SipMsg, answer: &str) -> Result<Dialog, Failure> {
        let tag = unique("t");
        let ringing = Builder::response(invite, 180, "Ringing", Some(&tag))
            .header("Contact", &self.contact())
            .finish();
        let ok = Builder::response(invite, 200, "OK", Some(&tag))
            .header("Contact", &self.contact())
            .header("Supported", "ice,replaces,outbound")
            .body(Some("application/sdp"), answer);
        if !(self.conn.send(ringing) && self.conn.send(ok)) {
            return Err(Failure::Closed);
        }
        let from = invite.header("From").ok_or(Failure::Protocol("no From"))?;
        let to = invite.header("To").ok_or(Failure::Protocol("no To"))?;
        let strip = |v: &str| v.split_once(";tag=").map_or(v, |(a, _)| a).to_string();
        Ok(Dialog {
            call_id: invite
                .call_id()
                .ok_or(Failure::Protocol("no Call-ID"))?
                .to_string(),
            local_tag: tag,
            remote_tag: header_param(from, "tag")
                .ok_or(Failure::Protocol("no From tag"))?
                .to_string(),
            local: strip(to),
            remote: strip(from),
            target: invite
                .contact_uri()
                .ok_or(Failure::Protocol("no Contact"))?
                .to_string(),
            cseq: 0,
            remote_sdp: invite.body_str().to_string(),
        })
    }

    /// Answers an in-dialog or stray request from Strait with `status`.
    pub fn respond(&self, req: &SipMsg, status: u16, reason: &str) {
        let _ = self
            .conn
            .send(Builder::response(req, status, reason, Some(&unique("t"))).finish());
    }
}
