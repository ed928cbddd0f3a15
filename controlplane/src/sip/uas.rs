//! The request checks every UAS core makes before looking at a request
//! (RFC 3261 §8.2.1 and §8.2.2), returning the error response to send.

use super::header::HeaderName;
use super::message::{Request, Response};
use super::typed::Method;

/// What a UAS supports.
#[derive(Clone, Copy, Debug)]
pub struct UasPolicy<'a> {
    /// Methods it implements (listed in Allow).
    pub methods: &'a [Method],
    /// Option tags it supports (a Require outside this list gets 420).
    pub extensions: &'a [&'a str],
}

/// Checks, in RFC 3261 order, the method (405 if known but not in `methods`,
/// 501 if an extension method; both with Allow), the Request-URI scheme
/// (416 unless `sip:`/`sips:`), and Require (420 with Unsupported; not for
/// CANCEL). Returns the response to send (add a To tag with
/// [`Response::set_to_tag`]), or `None` if the request passes. An ACK always
/// passes: it is never answered.
pub fn check_request(req: &Request, policy: &UasPolicy<'_>) -> Option<Response> {
    if req.method == Method::Ack {
        return None;
    }
    if !policy.methods.contains(&req.method) {
        let status = if matches!(req.method, Method::Extension(_)) {
            501
        } else {
            405
        };
        let mut r = Response::from_request(req, status);
        let allow: Vec<&str> = policy.methods.iter().map(Method::as_str).collect();
        r.headers.push(HeaderName::Allow, allow.join(", "));
        return Some(r);
    }
    if !req.uri.is_sip() {
        return Some(Response::from_request(req, 416));
    }
    if req.method != Method::Cancel {
        let unsupported: Vec<&str> = req
            .headers
            .values(HeaderName::Require)
            .filter(|t| {
                !t.is_empty() && !policy.extensions.iter().any(|e| e.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            let mut r = Response::from_request(req, 420);
            r.headers
                .push(HeaderName::Unsupported, unsupported.join(", "));
            return Some(r);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Message;

    fn req(text: &str) -> Request {
        match Message::parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn msg(method: &str, uri: &str, extra: &str) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\n\
             From: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn checks_in_order() {
        let policy = UasPolicy {
            methods: &[Method::Options, Method::Invite, Method::Ack],
            extensions: &["outbound"],
        };
        let status = |t: &str| check_request(&req(t), &policy).map(|r| r.status);
        assert_eq!(status(&msg("OPTIONS", "sip:a@b", "")), None);
        assert_eq!(status(&msg("FOO", "sip:a@b", "")), Some(501));
        assert_eq!(status(&msg("BYE", "sip:a@b", "")), Some(405));
        assert_eq!(status(&msg("OPTIONS", "tel:+123", "")), Some(416));
        assert_eq!(
            status(&msg("OPTIONS", "sip:a@b", "Require: outbound\r\n")),
            None
        );
        let r = check_request(
            &req(&msg("OPTIONS", "sip:a@b", "Require: foo, outbound\r\n")),
            &policy,
        )
        .unwrap();
        assert_eq!(r.status, 420);
        assert_eq!(r.headers.get("Unsupported"), Some("foo"));
        assert_eq!(status(&msg("ACK", "tel:+1", "Require: foo\r\n")), None);
        let r = check_request(&req(&msg("FOO", "sip:a@b", "")), &policy).unwrap();
        assert_eq!(r.headers.get("Allow"), Some("OPTIONS, INVITE, ACK"));
    }
}
