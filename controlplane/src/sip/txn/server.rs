//! Server transactions: INVITE (RFC 3261 §17.2.1 with the RFC 6026
//! Accepted state) and non-INVITE (§17.2.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::matching::{to_tag, ServerMatch};
use super::{later, Destination, Fx, Output, TxnError, TxnKey, TxnState};
use crate::sip::message::{Message, Request, Response};
use crate::sip::typed::Method;
use crate::sip::FlowId;

#[derive(Debug)]
pub(super) struct ServerTxn {
    pub(super) key: TxnKey,
    pub(super) invite: bool,
    pub(super) state: TxnState,
    /// Where responses go: the flow the request came on.
    pub(super) flow: FlowId,
    reliable: bool,
    pub(super) matcher: ServerMatch,
    /// INVITE: the 100 Trying the layer sends if the core is slow.
    trying: Option<Response>,
    trying_at: Option<Instant>,
    /// The last response sent (provisional or final).
    last: Option<Response>,
    /// Timer G.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer H, or the limit on waiting for the core's final response.
    timeout_at: Option<Instant>,
    /// Timer I, J or L.
    end_at: Option<Instant>,
    /// The deadline registered in the layer's timer set.
    pub(super) scheduled: Option<Instant>,
}

impl ServerTxn {
    /// A new transaction for `req` (not ACK). For an INVITE, sends 100 Trying
    /// now or arms its timer, per [`TxnConfig::trying_delay`](super::TxnConfig).
    pub(super) fn new(
        key: TxnKey,
        req: &Request,
        flow: FlowId,
        matcher: ServerMatch,
        now: Instant,
        fx: &mut Fx<'_>,
    ) -> ServerTxn {
        let invite = req.method == Method::Invite;
        let mut t = ServerTxn {
            key,
            invite,
            state: if invite {
                TxnState::Proceeding
            } else {
                TxnState::Trying
            },
            flow,
            reliable: flow.transport.is_reliable(),
            matcher,
            trying: None,
            trying_at: None,
            last: None,
            retransmit_at: None,
            interval: Duration::ZERO,
            timeout_at: None,
            end_at: None,
            scheduled: None,
        };
        if invite {
            t.timeout_at = Some(later(now, fx.cfg.proceeding_limit));
            match fx.cfg.trying_delay {
                Some(d) if d.is_zero() => {
                    let trying = Response::from_request(req, 100);
                    t.transmit(Message::Response(trying.clone()), fx);
                    t.last = Some(trying);
                }
                Some(d) => {
                    t.trying = Some(Response::from_request(req, 100));
                    t.trying_at = Some(later(now, d));
                }
                None => {}
            }
        } else {
            // The client gives up after Timer F (64*T1); so do we.
            t.timeout_at = Some(later(now, fx.cfg.timer_b()));
        }
        t
    }

    fn transmit(&self, message: Message, fx: &mut Fx<'_>) {
        fx.out.push_back(Output::Transmit {
            key: Some(self.key),
            dest: Destination::Flow(self.flow),
            message,
        });
    }

    fn retransmit_last(&self, fx: &mut Fx<'_>) {
        if let Some(r) = &self.last {
            fx.counters.retransmissions += 1;
            self.transmit(Message::Response(r.clone()), fx);
        }
    }

    /// The earliest timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [
            self.trying_at,
            self.retransmit_at,
            self.timeout_at,
            self.end_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The To tag of the last response sent.
    pub(super) fn last_to_tag(&self) -> Option<String> {
        self.last.as_ref().and_then(to_tag)
    }

    /// The request was received again.
    pub(super) fn on_retransmission(&mut self, fx: &mut Fx<'_>) {
        fx.counters.requests_absorbed += 1;
        match self.state {
            TxnState::Proceeding if self.last.is_none() => {
                // INVITE, nothing sent yet: the client worries, answer 100
                // now rather than at the timer.
                if let Some(trying) = self.trying.take() {
                    self.trying_at = None;
                    self.transmit(Message::Response(trying.clone()), fx);
                    self.last = Some(trying);
                }
            }
            TxnState::Proceeding | TxnState::Completed => self.retransmit_last(fx),
            // Trying (the core has not answered), Confirmed, Accepted
            // (RFC 6026: absorbed).
            _ => {}
        }
    }

    /// An ACK matched this (INVITE) transaction. Returns whether it lives on.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        ack: Request,
        flow: FlowId,
        source: SocketAddr,
        fx: &mut Fx<'_>,
    ) -> bool {
        match self.state {
            TxnState::Completed => {
                fx.counters.acks_absorbed += 1;
                self.state = TxnState::Confirmed;
                self.retransmit_at = None;
                self.timeout_at = None;
                if self.reliable {
                    return false; // Timer I = 0
                }
                self.end_at = Some(later(now, fx.cfg.t4));
                true
            }
            TxnState::Accepted => {
                // RFC 6026: an ACK matching an accepted INVITE goes to the
                // core (only an RFC 2543 ACK for a 2xx can match).
                fx.out.push_back(Output::Ack {
                    key: Some(self.key),
                    request: ack,
                    flow,
                    source,
                });
                true
            }
            _ => {
                // Confirmed: a retransmitted ACK; Proceeding: an ACK before
                // any final response makes no sense.
                fx.counters.acks_absorbed += 1;
                true
            }
        }
    }

    /// The core responds. Returns whether the transaction lives on.
    pub(super) fn send_response(
        &mut self,
        now: Instant,
        resp: Response,
        fx: &mut Fx<'_>,
    ) -> Result<bool, TxnError> {
        let status = resp.status;
        if !(100..=699).contains(&status) {
            return Err(TxnError::BadStatus);
        }
        match (self.state, status) {
            (TxnState::Trying | TxnState::Proceeding, 100..=199) => {
                self.state = TxnState::Proceeding;
                self.trying = None;
                self.trying_at = None;
                self.send(resp, fx);
                Ok(true)
            }
            (TxnState::Proceeding, 200..=299) if self.invite => {
                self.state = TxnState::Accepted;
                self.trying = None;
                self.trying_at = None;
                self.timeout_at = None;
                self.end_at = Some(later(now, fx.cfg.timer_b())); // Timer L
                self.send(resp, fx);
                Ok(true)
            }
            (TxnState::Accepted, 200..=299) => {
                // The core retransmits its 2xx (RFC 6026: passed through).
                self.send(resp, fx);
                Ok(true)
            }
            (TxnState::Proceeding, _) if self.invite => {
                self.state = TxnState::Completed;
                self.trying = None;
                self.trying_at = None;
                if !self.reliable {
                    self.interval = fx.cfg.t1;
                    self.retransmit_at = Some(later(now, self.interval)); // Timer G
                }
                self.timeout_at = Some(later(now, fx.cfg.timer_b())); // Timer H
                self.send(resp, fx);
                Ok(true)
            }
            (TxnState::Trying | TxnState::Proceeding, _) => {
                // Non-INVITE final response.
                self.state = TxnState::Completed;
                self.timeout_at = None;
                self.send(resp, fx);
                if self.reliable {
                    return Ok(false); // Timer J = 0
                }
                self.end_at = Some(later(now, fx.cfg.timer_b())); // Timer J
                Ok(true)
            }
            _ => Err(TxnError::InvalidState),
        }
    }

    fn send(&mut self, resp: Response, fx: &mut Fx<'_>) {
        self.transmit(Message::Response(resp.clone()), fx);
        self.last = Some(resp);
    }

    /// Timers. Returns whether the transaction lives on.
    pub(super) fn on_timer(&mut self, now: Instant, fx: &mut Fx<'_>) -> bool {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.end_at) {
            return false; // Timer I, J or L
        }
        if due(self.timeout_at) {
            // Timer H (no ACK), or the core never answered.
            fx.counters.timeouts += 1;
            fx.out.push_back(Output::Timeout { key: self.key });
            return false;
        }
        if due(self.trying_at) {
            self.trying_at = None;
            if let Some(trying) = self.trying.take() {
                self.transmit(Message::Response(trying.clone()), fx);
                self.last = Some(trying);
            }
        }
        if due(self.retransmit_at) {
            // Timer G.
            self.retransmit_last(fx);
            self.interval = self.interval.saturating_mul(2).min(fx.cfg.t2);
            self.retransmit_at = Some(later(now, self.interval));
        }
        true
    }

    /// The transport failed. Returns whether the transaction lives on: an
    /// Accepted INVITE stays (RFC 6026), to keep absorbing retransmissions.
    pub(super) fn on_transport_error(&mut self, fx: &mut Fx<'_>) -> bool {
        fx.counters.transport_errors += 1;
        fx.out.push_back(Output::TransportError { key: self.key });
        self.state == TxnState::Accepted
    }
}
