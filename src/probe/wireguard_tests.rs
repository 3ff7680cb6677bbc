//! Tests of the WireGuard probe with initiations built per the protocol (random keys and
//! MACs: the probe looks at the header and the size only).
#![allow(clippy::indexing_slicing)]

use super::probe;
use crate::plan::Protocol;
use crate::probe::{Detected, Probe};

const INITIATION: &[u8] = include_bytes!("testdata/wireguard_initiation.bin");
/// Sent again after a cookie reply, with mac2 filled in.
const INITIATION_WITH_MAC2: &[u8] = include_bytes!("testdata/wireguard_initiation_with_mac2.bin");

fn wireguard() -> Probe {
    Probe::Match(Detected::bare(Protocol::Wireguard))
}

#[test]
fn initiations_match_with_or_without_mac2() {
    assert_eq!(probe(&[INITIATION]), wireguard());
    assert_eq!(INITIATION[132..], [0; 16], "mac2 is empty without a cookie");
    assert_eq!(probe(&[INITIATION_WITH_MAC2]), wireguard());
}

#[test]
fn initiation_of_another_size_is_no_match() {
    assert_eq!(probe(&[&INITIATION[..147]]), Probe::NoMatch);
    let longer = [INITIATION, &[0][..]].concat();
    assert_eq!(probe(&[&longer]), Probe::NoMatch);
}

#[test]
fn other_message_types_are_no_match() {
    // Response (92 bytes), cookie reply (64), transport data (32 and up), a keepalive.
    for (kind, len) in [(2u8, 92usize), (3, 64), (4, 32), (4, 148)] {
        let mut message = INITIATION.to_vec();
        message[0] = kind;
        message.truncate(len);
        assert_eq!(
            probe(&[&message]),
            Probe::NoMatch,
            "type {kind}, {len} bytes"
        );
    }
}

#[test]
fn reserved_bytes_must_be_zero() {
    for at in 1..4 {
        let mut message = INITIATION.to_vec();
        message[at] = 1;
        assert_eq!(probe(&[&message]), Probe::NoMatch, "byte {at}");
    }
}

#[test]
fn only_the_first_datagram_is_judged() {
    assert_eq!(probe(&[INITIATION, b"x"]), wireguard());
    assert_eq!(probe(&[b"x", INITIATION]), Probe::NoMatch);
    assert_eq!(probe(&[]), Probe::NeedMore);
}
