//! SOCKS probes: a SOCKS5 method greeting (RFC 1928 §3) and a SOCKS4/4a request. Pure; no
//! IO.
//!
//! Both match once the client's whole first message is in: it sends nothing else before
//! the server answers. Bytes after it do not undo the match: a client may pipeline its
//! request after a no-authentication greeting, and a decision must be final anyway.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::Reader;

const SOCKS5: u8 = 0x05;
const SOCKS4: u8 = 0x04;
const SOCKS4_CONNECT: u8 = 0x01;
const SOCKS4_BIND: u8 = 0x02;
/// A SOCKS4 USERID or SOCKS4a host name longer than this is not a client's (a DNS name is
/// at most 253 characters).
const MAX_SOCKS4_STRING: usize = 255;

/// Probe the start of a TCP stream for a SOCKS5 greeting: VER 5, NMETHODS ≥ 1, then that
/// many methods.
pub fn probe_v5(prefix: &[u8]) -> Probe {
    let mut r = Reader::new(prefix);
    match r.u8() {
        Ok(SOCKS5) => {}
        Ok(_) => return Probe::NoMatch,
        Err(_) => return Probe::NeedMore,
    }
    let count = match r.u8() {
        Ok(0) => return Probe::NoMatch,
        Ok(n) => usize::from(n),
        Err(_) => return Probe::NeedMore,
    };
    let methods = r.take(count.min(r.len())).unwrap_or_default();
    if !methods.iter().all(|&m| is_socks5_method(m)) {
        Probe::NoMatch
    } else if methods.len() < count {
        Probe::NeedMore
    } else {
        Probe::Match(Detected::bare(Protocol::Socks5))
    }
}

/// Methods a client may offer (IANA registry): 0x00–0x09 assigned (no authentication,
/// GSSAPI, username/password, … JSON parameter block; 0x04 is unassigned but kept, as one
/// range is simpler and costs nothing), 0x80–0xFE private. 0x0A–0x7F are unassigned and
/// 0xFF means "no acceptable method" (a server's answer).
fn is_socks5_method(m: u8) -> bool {
    matches!(m, 0x00..=0x09 | 0x80..=0xfe)
}

/// Probe the start of a TCP stream for a SOCKS4 request: VER 4, CONNECT or BIND, port,
/// IPv4 address, USERID\0; SOCKS4a (address 0.0.0.x, x ≠ 0) then a host name\0.
pub fn probe_v4(prefix: &[u8]) -> Probe {
    let mut r = Reader::new(prefix);
    match r.u8() {
        Ok(SOCKS4) => {}
        Ok(_) => return Probe::NoMatch,
        Err(_) => return Probe::NeedMore,
    }
    match r.u8() {
        Ok(SOCKS4_CONNECT | SOCKS4_BIND) => {}
        Ok(_) => return Probe::NoMatch,
        Err(_) => return Probe::NeedMore,
    }
    let Ok(_port) = r.u16() else {
        return Probe::NeedMore;
    };
    let Ok(address) = r.take_array::<4>() else {
        return Probe::NeedMore;
    };
    let socks4a = match address {
        [0, 0, 0, 0] => return Probe::NoMatch,
        [0, 0, 0, _] => true,
        _ => false,
    };
    if let Err(verdict) = socks4_string(&mut r, false) {
        return verdict;
    }
    if socks4a {
        if let Err(verdict) = socks4_string(&mut r, true) {
            return verdict;
        }
    }
    Probe::Match(Detected::bare(Protocol::Socks4))
}

/// A NUL-terminated SOCKS4 string without control characters (UTF-8 is let through);
/// `Err` carries the verdict when it is not (yet) one.
fn socks4_string(r: &mut Reader<'_>, non_empty: bool) -> Result<(), Probe> {
    let plausible =
        |s: &[u8]| s.len() <= MAX_SOCKS4_STRING && s.iter().all(|&b| b >= 0x20 && b != 0x7f);
    match r.take_until(0) {
        Ok(s) if plausible(s) && !(non_empty && s.is_empty()) => Ok(()),
        Ok(_) => Err(Probe::NoMatch),
        Err(_) if plausible(r.rest()) => Err(Probe::NeedMore),
        Err(_) => Err(Probe::NoMatch),
    }
}

#[cfg(test)]
#[path = "socks_tests.rs"]
mod tests;
