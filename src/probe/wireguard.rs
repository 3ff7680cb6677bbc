//! WireGuard probe: a new flow's first datagram is a handshake initiation (type 1, three
//! reserved zero bytes, exactly 148 bytes long). Pure; no IO.
//!
//! Only an initiation starts a flow; a retry after a cookie reply is an initiation too
//! (with mac2 set). Transport data (type 4) arriving on a flow sluice has forgotten is not
//! matched: the peer starts a new handshake within seconds when its packets go unanswered,
//! and matching type 4's short header would claim far more foreign datagrams.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::Reader;

/// Message type 1 (handshake initiation) and the three reserved zero bytes.
const INITIATION_HEADER: &[u8] = &[1, 0, 0, 0];
/// Header 4, sender index 4, ephemeral 32, encrypted static 48, encrypted timestamp 28,
/// mac1 16, mac2 16.
const INITIATION_LEN: usize = 148;

/// Probe a new UDP flow's first datagram for a WireGuard handshake initiation.
pub fn probe(datagrams: &[&[u8]]) -> Probe {
    let Some(first) = datagrams.first() else {
        return Probe::NeedMore;
    };
    let header = Reader::new(first).expect(INITIATION_HEADER, "not an initiation");
    if first.len() == INITIATION_LEN && header.is_ok() {
        Probe::Match(Detected::bare(Protocol::Wireguard))
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
#[path = "wireguard_tests.rs"]
mod tests;
