//! PostgreSQL probe: the first message of a frontend (protocol 3): SSLRequest,
//! GSSENCRequest, CancelRequest or a StartupMessage. Pure; no IO.
//!
//! Each starts with an int32 length (including itself) and an int32 code. The three
//! requests have fixed magic codes and match on their 8-byte header. A StartupMessage only
//! has protocol 3.x for a code, so it is read whole (the client sends it in one piece and
//! waits for the server; it is at most 10 000 bytes) and matches only when its key\0value\0
//! pairs end with the final \0 exactly at the stated length and name a `user`.
//! A client using PostgreSQL 17's `sslnegotiation=direct` starts with a TLS ClientHello,
//! which is the TLS probe's.
#![deny(clippy::indexing_slicing)]

use std::ops::RangeInclusive;

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::Reader;

const SSL_REQUEST: u64 = 80_877_103;
const GSSENC_REQUEST: u64 = 80_877_104;
const CANCEL_REQUEST: u64 = 80_877_102;
/// SSLRequest and GSSENCRequest are the header alone.
const REQUEST_LEN: u64 = 8;
/// CancelRequest: header, process id, and a secret key of 4 bytes (protocol 3.0) up to
/// 256 bytes (3.2).
const CANCEL_LEN: RangeInclusive<u64> = 16..=268;
/// StartupMessage: the server refuses longer ones (MAX_STARTUP_PACKET_LENGTH).
const STARTUP_LEN: RangeInclusive<u64> = 8..=10_000;
/// Protocol major 3, any minor: 3.0 and 3.2 exist, and the server negotiates a newer
/// minor down (NegotiateProtocolVersion), so clients may offer one.
const STARTUP_V3: RangeInclusive<u64> = 0x0003_0000..=0x0003_ffff;

/// Probe the start of a TCP stream for a PostgreSQL frontend's first message.
pub fn probe(prefix: &[u8]) -> Probe {
    let mut r = Reader::new(prefix);
    let len = r.uint_prefix::<4>();
    let code = r.uint_prefix::<4>();
    let request = len.may_be_in(REQUEST_LEN..=REQUEST_LEN)
        && (code.may_be_in(SSL_REQUEST..=SSL_REQUEST)
            || code.may_be_in(GSSENC_REQUEST..=GSSENC_REQUEST));
    let cancel = len.may_be_in(CANCEL_LEN) && code.may_be_in(CANCEL_REQUEST..=CANCEL_REQUEST);
    let startup = len.may_be_in(STARTUP_LEN) && code.may_be_in(STARTUP_V3);
    if !(request || cancel || startup) {
        return Probe::NoMatch;
    }
    let (Some(len), Some(_)) = (len.exact(), code.exact()) else {
        return Probe::NeedMore;
    };
    if request || cancel {
        // Exact values now, so these name the message (the code ranges do not overlap).
        return Probe::Match(Detected::bare(Protocol::Postgres));
    }
    startup_parameters(r, len.saturating_sub(8))
}

/// The StartupMessage body: `key\0value\0`… then `\0` as its last byte.
fn startup_parameters(mut r: Reader<'_>, body_len: u64) -> Probe {
    let body_len = usize::try_from(body_len).unwrap_or(usize::MAX);
    let complete = r.len() >= body_len;
    let mut body = Reader::new(r.take(body_len.min(r.len())).unwrap_or_default());
    // A missing \0 is fine while bytes are still to come; a partial key must already be
    // made of name bytes.
    let cut = |partial: &[u8], key: bool| {
        if complete || (key && !partial.iter().all(|&b| is_name_byte(b))) {
            Probe::NoMatch
        } else {
            Probe::NeedMore
        }
    };
    let mut has_user = false;
    loop {
        let Ok(key) = body.take_until(0) else {
            return cut(body.rest(), true);
        };
        if key.is_empty() {
            // The terminator: it must be the message's last byte.
            return if complete && body.is_empty() && has_user {
                Probe::Match(Detected::bare(Protocol::Postgres))
            } else {
                Probe::NoMatch
            };
        }
        if !key.iter().all(|&b| is_name_byte(b)) {
            return Probe::NoMatch;
        }
        has_user |= key == b"user";
        if body.take_until(0).is_err() {
            return cut(body.rest(), false);
        }
    }
}

/// Bytes of a parameter name (`user`, `database`, `application_name`, `_pq_.x`, a custom
/// `ext.setting`).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$')
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
