//! OpenVPN probes: a client's first packet, P_CONTROL_HARD_RESET_CLIENT_V2 (or V3 with
//! tls-crypt-v2), over TCP (with its u16 length prefix) and over UDP. Pure; no IO.
//!
//! The signature is weak (a length, an opcode byte, then random bytes): the opcode and
//! length bounds are those of OpenVPN's own port sharing (`is_openvpn_protocol` in ps.c),
//! and key id 0, which a new session's reset always has. What follows the 8-byte session
//! id depends on tls-auth / tls-crypt, which the probe cannot know, so it matches once the
//! session id is in. This is why the probe runs last in both tables: a DNS query whose
//! id starts with 0x38 or 0x50 looks like a reset to it.
#![deny(clippy::indexing_slicing)]

use std::ops::RangeInclusive;

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, UintPrefix};

/// Opcode 7 in the high 5 bits, key id 0 in the low 3.
const HARD_RESET_CLIENT_V2: u8 = 7 << 3;
/// Opcode 10 (tls-crypt-v2: the reset carries the wrapped client key), key id 0.
const HARD_RESET_CLIENT_V3: u8 = 10 << 3;
/// A V2 reset: opcode, session id, ack count, packet id (14) up to tls-auth's largest
/// HMAC and replay fields, as OpenVPN's port sharing bounds it.
const V2_LEN: RangeInclusive<u64> = 14..=255;
/// A V3 reset carries a wrapped client key of at least 290 bytes and at most 1024
/// (TLS_CRYPT_V2_MAX_WKC_LEN), plus headers; bounds as in OpenVPN's port sharing.
const V3_LEN: RangeInclusive<u64> = 336..=1278;
const SESSION_ID_LEN: usize = 8;

/// Probe the start of a TCP stream for an OpenVPN hard reset.
pub fn probe_tcp(prefix: &[u8]) -> Probe {
    let mut r = Reader::new(prefix);
    let len = r.uint_prefix::<2>();
    hard_reset(Protocol::OpenVpn, len, r)
}

/// Probe a new UDP flow's first datagram for an OpenVPN hard reset.
pub fn probe_udp(datagrams: &[&[u8]]) -> Probe {
    let Some(first) = datagrams.first() else {
        return Probe::NeedMore;
    };
    let len = u64::try_from(first.len()).unwrap_or(u64::MAX);
    hard_reset(
        Protocol::OpenVpnUdp,
        UintPrefix { min: len, max: len },
        Reader::new(first),
    )
}

/// The packet from its opcode on, `len` being what is known of its length (the TCP length
/// prefix, or the UDP datagram's size).
fn hard_reset(protocol: Protocol, len: UintPrefix, mut r: Reader<'_>) -> Probe {
    let opcode = r.u8().ok();
    let is =
        |op: u8, lens: RangeInclusive<u64>| len.may_be_in(lens) && opcode.is_none_or(|o| o == op);
    if !is(HARD_RESET_CLIENT_V2, V2_LEN) && !is(HARD_RESET_CLIENT_V3, V3_LEN) {
        return Probe::NoMatch;
    }
    if len.exact().is_none() || opcode.is_none() || r.take(SESSION_ID_LEN).is_err() {
        return Probe::NeedMore;
    }
    Probe::Match(Detected::bare(protocol))
}

#[cfg(test)]
#[path = "openvpn_tests.rs"]
pub(super) mod tests;
