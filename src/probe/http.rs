//! HTTP probe: an HTTP/1.x request line's method, or the HTTP/2 prior-knowledge preface
//! (h2c, RFC 9113 §3.4). Pure; no IO.
//!
//! Decides at the SP after the method: a listed method and SP is `Match`, a prefix that
//! can no longer become one is `NoMatch`. The rest of the request line is not waited for:
//! a malformed target or version is the backend's to reject with 400, and a long URL would
//! otherwise hold the decision for up to 16 KiB.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// Request methods, each with the SP that ends it: RFC 9110's, PATCH (RFC 5789) and
/// WebDAV's (RFC 4918; versioning 3253, ordering 3648, ACL 3744, CalDAV 4791, SEARCH 5323,
/// bindings 5842). A fixed list rather than any RFC 9110 token: an SSH banner
/// (`SSH-2.0-OpenSSH_9.2p1 Debian-2`), SMTP/IMAP/IRC/Redis commands are tokens and a SP
/// too, and would all be sent to the HTTP backend.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"CONNECT ",
    b"OPTIONS ",
    b"TRACE ",
    b"PATCH ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"REPORT ",
    b"VERSION-CONTROL ",
    b"CHECKOUT ",
    b"CHECKIN ",
    b"UNCHECKOUT ",
    b"MKWORKSPACE ",
    b"UPDATE ",
    b"LABEL ",
    b"MERGE ",
    b"BASELINE-CONTROL ",
    b"MKACTIVITY ",
    b"ORDERPATCH ",
    b"ACL ",
    b"MKCALENDAR ",
    b"SEARCH ",
    b"BIND ",
    b"UNBIND ",
    b"REBIND ",
];

/// The client connection preface of HTTP/2 over cleartext with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Probe the start of a TCP stream for an HTTP/1.x request or the h2c preface (which
/// reports ALPN `h2` so routing can tell it apart).
pub fn probe(prefix: &[u8]) -> Probe {
    let mut undecided = false;
    for method in METHODS {
        match Reader::new(prefix).expect(method, "method") {
            Ok(()) => return Probe::Match(Detected::bare(Protocol::Http)),
            Err(WireError::Truncated) => undecided = true,
            Err(WireError::Invalid(_)) => {}
        }
    }
    match Reader::new(prefix).expect(H2_PREFACE, "h2 preface") {
        Ok(()) => Probe::Match(Detected {
            alpn: vec!["h2".into()],
            ..Detected::bare(Protocol::Http)
        }),
        Err(WireError::Truncated) => Probe::NeedMore,
        Err(WireError::Invalid(_)) if undecided => Probe::NeedMore,
        Err(WireError::Invalid(_)) => Probe::NoMatch,
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
