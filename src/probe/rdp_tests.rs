//! Tests of the RDP probe with Connection Requests built per MS-RDPBCGR (the §4.1.1
//! example byte for byte, and the modern variants) and nmap's minimal one.
#![allow(clippy::indexing_slicing)]

use super::probe;
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

/// MS-RDPBCGR 4.1.1: `Cookie: mstshash=eltons`, RDP_NEG_REQ for standard RDP security.
const SPEC_EXAMPLE: &[u8] = include_bytes!("testdata/rdp_ms_rdpbcgr_4_1_1_cookie.bin");
/// What mstsc sends today: a cookie and RDP_NEG_REQ for TLS | CredSSP | CredSSP-EX.
const HYBRID_EX: &[u8] = include_bytes!("testdata/rdp_cookie_neg_req_hybrid_ex.bin");
/// Reconnecting through a load balancer: a routing token instead of the cookie.
const ROUTING_TOKEN: &[u8] = include_bytes!("testdata/rdp_routing_token_neg_req_tls.bin");
/// nmap's RDP service probe: the CR TPDU with nothing after it.
const NMAP_MINIMAL: &[u8] = &[
    0x03, 0x00, 0x00, 0x0b, 0x06, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00,
];

fn rdp() -> Probe {
    Probe::Match(Detected::bare(Protocol::Rdp))
}

#[test]
fn spec_example_is_byte_exact_and_matches_after_the_fixed_cr_header() {
    assert_eq!(&SPEC_EXAMPLE[..6], &[0x03, 0x00, 0x00, 0x2c, 0x27, 0xe0]);
    assert_eq!(decided_at(probe, SPEC_EXAMPLE), (11, rdp()));
}

#[test]
fn negotiation_and_routing_token_variants_match() {
    assert_eq!(decided_at(probe, HYBRID_EX), (11, rdp()));
    assert_eq!(decided_at(probe, ROUTING_TOKEN), (11, rdp()));
    assert_eq!(decided_at(probe, NMAP_MINIMAL), (11, rdp()));
}

#[test]
fn length_indicator_must_cover_the_rest_of_the_packet() {
    let mut bad = SPEC_EXAMPLE.to_vec();
    bad[4] -= 1;
    assert_eq!(decided_at(probe, &bad), (5, Probe::NoMatch));
}

#[test]
fn tpkt_lengths_no_li_can_describe_are_no_match_early() {
    assert_eq!(
        decided_at(probe, &[0x03, 0x00, 0x00, 0x0a, 0x05, 0xe0]),
        (4, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, &[0x03, 0x00, 0x01, 0x04, 0xff, 0xe0]),
        (4, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, &[0x03, 0x00, 0x02, 0x00, 0xff, 0xe0]),
        (3, Probe::NoMatch)
    );
}

#[test]
fn other_tpdus_refs_and_classes_are_no_match_at_their_byte() {
    let with = |at: usize, value: u8| {
        let mut pdu = SPEC_EXAMPLE.to_vec();
        pdu[at] = value;
        decided_at(probe, &pdu)
    };
    assert_eq!(with(5, 0xd0), (6, Probe::NoMatch), "connection confirm");
    assert_eq!(with(5, 0xf0), (6, Probe::NoMatch), "data");
    assert_eq!(with(5, 0xe1), (6, Probe::NoMatch), "credit in class 0");
    assert_eq!(with(7, 0x01), (8, Probe::NoMatch), "DST-REF not zero");
    assert_eq!(with(10, 0x20), (11, Probe::NoMatch), "class 2");
    assert_eq!(with(0, 0x02), (1, Probe::NoMatch), "TPKT version");
    assert_eq!(with(1, 0x01), (2, Probe::NoMatch), "TPKT reserved");
}

#[test]
fn src_ref_and_option_bits_are_not_judged() {
    let mut pdu = SPEC_EXAMPLE.to_vec();
    pdu[8..10].copy_from_slice(&[0x12, 0x34]);
    pdu[10] = 0x02;
    assert_eq!(probe(&pdu), rdp());
}
