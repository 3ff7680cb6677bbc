//! SSH probe: the client's identification string (RFC 4253 §4.2), `SSH-2.0-` or the
//! compatibility `SSH-1.99-`. Pure; no IO.
//!
//! Decides at the `-` after the protocol version. Clients that wait for the server's banner
//! before sending theirs (rare; not OpenSSH) never match and reach the listener's timeout
//! route, as with sslh.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// Identification prefixes up to the software version; SSH-1.5 (protocol 1) is long gone.
const BANNERS: &[&[u8]] = &[b"SSH-2.0-", b"SSH-1.99-"];

/// Probe the start of a TCP stream for an SSH client banner.
pub fn probe(prefix: &[u8]) -> Probe {
    let mut undecided = false;
    for banner in BANNERS {
        match Reader::new(prefix).expect(banner, "ssh banner") {
            Ok(()) => return Probe::Match(Detected::bare(Protocol::Ssh)),
            Err(WireError::Truncated) => undecided = true,
            Err(WireError::Invalid(_)) => {}
        }
    }
    if undecided {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
#[path = "ssh_tests.rs"]
mod tests;
