//! Client transactions: INVITE (RFC 3261 §17.1.1 with the RFC 6026
//! Accepted state) and non-INVITE (§17.1.2).

use std::time::{Duration, Instant};

use super::matching::{body_digest, to_tag, ClientMatch};
use super::{later, Destination, Fx, Output, TxnKey, TxnState};
use crate::sip::header::HeaderName;
use crate::sip::message::{Message, Request, Response};
use crate::sip::typed::{CSeq, Method};
use crate::sip::FlowId;

/// Responses remembered per transaction for deduplication.
const SEEN_CAPACITY: usize = 16;

/// What identifies a response already passed to the core: for 2xx the To tag
/// only (one dialog per tag), for 1xx status, tag, RSeq and body.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    to_tag: Option<Box<str>>,
    rseq: Option<Box<str>>,
    body: u64,
}

#[derive(Debug)]
pub(super) struct ClientTxn {
    pub(super) key: TxnKey,
    pub(super) invite: bool,
    pub(super) state: TxnState,
    request: Request,
    pub(super) dest: Destination,
    reliable: bool,
    pub(super) matcher: ClientMatch,
    /// Timer A or E.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer B or F, or the Proceeding limit of an INVITE.
    timeout_at: Option<Instant>,
    /// Timer D, K or M.
    end_at: Option<Instant>,
    ack: Option<Request>,
    seen: Vec<Seen>,
    /// INVITE: the CANCEL transaction created for it, if any.
    pub(super) cancel: Option<TxnKey>,
    /// The deadline registered in the layer's timer set.
    pub(super) scheduled: Option<Instant>,
}

impl ClientTxn {
    pub(super) fn new(
        key: TxnKey,
        request: Request,
        dest: Destination,
        matcher: ClientMatch,
    ) -> ClientTxn {
        let invite = request.method == Method::Invite;
        ClientTxn {
            key,
            invite,
            state: TxnState::Held,
            reliable: dest.transport().is_reliable(),
            request,
            dest,
            matcher,
            retransmit_at: None,
            interval: Duration::ZERO,
            timeout_at: None,
            end_at: None,
            ack: None,
            seen: Vec::new(),
            cancel: None,
            scheduled: None,
        }
    }

    /// Sends the request and starts Timers A and B (INVITE) or E and F.
    pub(super) fn start(&mut self, now: Instant, fx: &mut Fx<'_>) {
        self.state = if self.invite {
            TxnState::Calling
        } else {
            TxnState::Trying
        };
        self.transmit_request(fx);
        if !self.reliable {
            self.interval = fx.cfg.t1;
            self.retransmit_at = Some(later(now, self.interval));
        }
        self.timeout_at = Some(later(now, fx.cfg.timer_b()));
    }

    fn transmit_request(&self, fx: &mut Fx<'_>) {
        fx.out.push_back(Output::Transmit {
            key: Some(self.key),
            dest: self.dest.clone(),
            message: Message::Request(self.request.clone()),
        });
    }

    /// The earliest timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.end_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether a reliable connection should carry the rest of the
    /// transaction.
    pub(super) fn set_flow(&mut self, flow: FlowId) {
        if self.reliable && flow.transport.is_reliable() {
            self.dest = Destination::Flow(flow);
        }
    }

    /// A matching response arrived. Returns whether the transaction lives on.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        resp: Response,
        flow: FlowId,
        fx: &mut Fx<'_>,
    ) -> bool {
        if matches!(self.dest, Destination::Target(_)) {
            self.set_flow(flow);
        }
        let status = resp.status;
        match (self.state, status) {
            (TxnState::Held, _) => {
                // We have not sent anything yet: nothing can answer us.
                fx.counters.stray_responses += 1;
                true
            }
            (TxnState::Calling | TxnState::Trying | TxnState::Proceeding, 100..=199) => {
                if matches!(self.state, TxnState::Calling) {
                    // Timer B stops; the core runs its own Timer C, and the
                    // Proceeding limit bounds our memory.
                    self.timeout_at = Some(later(now, fx.cfg.proceeding_limit));
                }
                if self.invite {
                    self.retransmit_at = None; // Timer A stops
                }
                // (Timer E runs on; it is reset to T2 from now on, §17.1.2.2.)
                self.state = TxnState::Proceeding;
                self.deliver_provisional(resp, fx);
                true
            }
            (TxnState::Calling | TxnState::Proceeding, 200..=299) if self.invite => {
                self.state = TxnState::Accepted;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.end_at = Some(later(now, fx.cfg.timer_b())); // Timer M
                self.deliver_2xx(resp, fx);
                true
            }
            (TxnState::Calling | TxnState::Proceeding, _) if self.invite => {
                self.state = TxnState::Completed;
                self.retransmit_at = None;
                self.timeout_at = None;
                let ack = self.build_ack(&resp);
                fx.out.push_back(Output::Transmit {
                    key: Some(self.key),
                    dest: self.dest.clone(),
                    message: Message::Request(ack.clone()),
                });
                self.ack = Some(ack);
                self.deliver(resp, false, fx);
                if self.reliable {
                    return false; // Timer D = 0
                }
                self.end_at = Some(later(now, fx.cfg.timer_d));
                true
            }
            (TxnState::Trying | TxnState::Proceeding, _) => {
                // Non-INVITE final response.
                self.state = TxnState::Completed;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.deliver(resp, false, fx);
                if self.reliable {
                    return false; // Timer K = 0
                }
                self.end_at = Some(later(now, fx.cfg.t4));
                true
            }
            (TxnState::Accepted | TxnState::Completed, 200..=299) if self.invite => {
                // RFC 6026: every 2xx goes to the core, which ACKs it (a
                // retransmission again, a new fork with a new dialog).
                self.deliver_2xx(resp, fx);
                true
            }
            (TxnState::Completed, 300..) if self.invite => {
                // A retransmitted final response: send the ACK again.
                fx.counters.responses_absorbed += 1;
                if let Some(ack) = &self.ack {
                    fx.counters.retransmissions += 1;
                    fx.out.push_back(Output::Transmit {
                        key: Some(self.key),
                        dest: self.dest.clone(),
                        message: Message::Request(ack.clone()),
                    });
                }
                true
            }
            _ => {
                // Late provisional, or a final retransmission of a non-INVITE.
                fx.counters.responses_absorbed += 1;
                true
            }
        }
    }

    /// Passes a provisional response up unless it repeats one already passed.
    fn deliver_provisional(&mut self, resp: Response, fx: &mut Fx<'_>) {
        let seen = Seen {
            status: resp.status,
            to_tag: to_tag(&resp).map(Into::into),
            rseq: resp.headers.get(HeaderName::RSeq).map(Into::into),
            body: body_digest(&resp.body),
        };
        if self.seen.contains(&seen) {
            fx.counters.responses_absorbed += 1;
            return;
        }
        self.remember(seen);
        self.deliver(resp, false, fx);
    }

    /// Passes a 2xx up, flagged as a retransmission if its To tag was seen.
    fn deliver_2xx(&mut self, resp: Response, fx: &mut Fx<'_>) {
        let seen = Seen {
            status: 200,
            to_tag: to_tag(&resp).map(Into::into),
            rseq: None,
            body: 0,
        };
        let again = self.seen.contains(&seen);
        if !again {
            self.remember(seen);
        }
        self.deliver(resp, again, fx);
    }

    fn remember(&mut self, seen: Seen) {
        if self.seen.len() >= SEEN_CAPACITY {
            self.seen.remove(0);
        }
        self.seen.push(seen);
    }

    fn deliver(&self, response: Response, retransmission: bool, fx: &mut Fx<'_>) {
        fx.out.push_back(Output::Response {
            key: self.key,
            response,
            retransmission,
        });
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
    fn build_ack(&self, resp: &Response) -> Request {
        let req = &self.request;
        let mut ack = Request::new(Method::Ack, req.uri.clone());
        if let Some(via) = req.headers.values(HeaderName::Via).next() {
            ack.headers.push(HeaderName::Via, via);
        }
        let mf = req.headers.get(HeaderName::MaxForwards).unwrap_or("70");
        ack.headers.push(HeaderName::MaxForwards, mf);
        for route in req.headers.get_all(HeaderName::Route) {
            ack.headers.push(HeaderName::Route, route);
        }
        copy(&req.headers, &mut ack.headers, HeaderName::From);
        match resp.headers.get(HeaderName::To) {
            Some(to) => ack.headers.push(HeaderName::To, to),
            None => copy(&req.headers, &mut ack.headers, HeaderName::To),
        }
        copy(&req.headers, &mut ack.headers, HeaderName::CallId);
        let seq = req.headers.cseq().map_or(0, |c| c.seq);
        let cseq = CSeq {
            seq,
            method: Method::Ack,
        };
        ack.headers.push(HeaderName::CSeq, cseq.to_string());
        ack
    }

    /// The CANCEL for this INVITE (RFC 3261 §9.1).
    pub(super) fn build_cancel(&self) -> Request {
        let req = &self.request;
        let mut c = Request::new(Method::Cancel, req.uri.clone());
        if let Some(via) = req.headers.values(HeaderName::Via).next() {
            c.headers.push(HeaderName::Via, via);
        }
        c.headers.push(HeaderName::MaxForwards, "70");
        for route in req.headers.get_all(HeaderName::Route) {
            c.headers.push(HeaderName::Route, route);
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            copy(&req.headers, &mut c.headers, name);
        }
        let seq = req.headers.cseq().map_or(0, |c| c.seq);
        let cseq = CSeq {
            seq,
            method: Method::Cancel,
        };
        c.headers.push(HeaderName::CSeq, cseq.to_string());
        c
    }

    /// Timers. Returns whether the transaction lives on.
    pub(super) fn on_timer(&mut self, now: Instant, fx: &mut Fx<'_>) -> bool {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.end_at) {
            return false; // Timer D, K or M
        }
        if due(self.timeout_at) {
            // Timer B or F (or the Proceeding limit).
            fx.counters.timeouts += 1;
            fx.out.push_back(Output::Timeout { key: self.key });
            return false;
        }
        if due(self.retransmit_at) {
            // Timer A or E.
            fx.counters.retransmissions += 1;
            self.transmit_request(fx);
            self.interval = match (self.invite, self.state) {
                (true, _) => self.interval.saturating_mul(2),
                (false, TxnState::Proceeding) => fx.cfg.t2,
                (false, _) => self.interval.saturating_mul(2).min(fx.cfg.t2),
            };
            self.retransmit_at = Some(later(now, self.interval));
        }
        true
    }

    /// The transport failed: the core is told, the transaction ends.
    pub(super) fn on_transport_error(&mut self, fx: &mut Fx<'_>) -> bool {
        fx.counters.transport_errors += 1;
        fx.out.push_back(Output::TransportError { key: self.key });
        false
    }
}

fn copy(from: &crate::sip::Headers, to: &mut crate::sip::Headers, name: HeaderName) {
    for v in from.get_all(&name) {
        to.push(name.clone(), v);
    }
}
