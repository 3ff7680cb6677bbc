//! Tests of the DNS probe with dig 9.18's queries and variants built from them.
#![allow(clippy::indexing_slicing)]

use super::probe;
use crate::plan::Protocol;
use crate::probe::{Detected, Probe};

/// `dig example.com`: RD and AD set, an EDNS OPT record with a cookie.
const DIG_A: &[u8] = include_bytes!("testdata/dns_dig_a_edns.bin");
/// `dig +noedns www.example.org AAAA`.
const DIG_AAAA_NO_EDNS: &[u8] = include_bytes!("testdata/dns_dig_aaaa_no_edns.bin");

fn dns() -> Probe {
    Probe::Match(Detected::bare(Protocol::Dns))
}

fn verdict(datagram: &[u8]) -> Probe {
    probe(&[datagram])
}

/// A query for `name` (wire form, root label included) of type A, class IN.
fn query(name: &[u8]) -> Vec<u8> {
    [
        &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
        name,
        &[0, 1, 0, 1],
    ]
    .concat()
}

#[test]
fn dig_queries_match() {
    assert_eq!(verdict(DIG_A), dns());
    assert_eq!(verdict(DIG_AAAA_NO_EDNS), dns());
}

#[test]
fn root_and_chaos_class_queries_match() {
    assert_eq!(verdict(&query(&[0])), dns());
    // version.bind CH TXT
    let mut chaos = query(b"\x07version\x04bind\0");
    let len = chaos.len();
    chaos[len - 4..].copy_from_slice(&[0, 16, 0, 3]);
    assert_eq!(verdict(&chaos), dns());
}

#[test]
fn responses_and_other_opcodes_are_no_match() {
    let with_flags = |flags: u16| {
        let mut q = DIG_A.to_vec();
        q[2..4].copy_from_slice(&flags.to_be_bytes());
        verdict(&q)
    };
    assert_eq!(with_flags(0x0120), dns());
    assert_eq!(with_flags(0x8180), Probe::NoMatch, "response");
    assert_eq!(with_flags(0x2800), Probe::NoMatch, "UPDATE");
    assert_eq!(with_flags(0x2000), Probe::NoMatch, "NOTIFY");
    assert_eq!(with_flags(0x0160), Probe::NoMatch, "Z set");
    assert_eq!(with_flags(0x0123), Probe::NoMatch, "RCODE set");
}

#[test]
fn question_and_answer_counts_are_checked() {
    let with_counts = |qd: u16, an: u16| {
        let mut q = DIG_A.to_vec();
        q[4..6].copy_from_slice(&qd.to_be_bytes());
        q[6..8].copy_from_slice(&an.to_be_bytes());
        verdict(&q)
    };
    assert_eq!(with_counts(0, 0), Probe::NoMatch);
    assert_eq!(with_counts(2, 0), Probe::NoMatch, "RFC 9619: one question");
    assert_eq!(with_counts(1, 1), Probe::NoMatch);
}

#[test]
fn compressed_or_oversized_names_are_no_match() {
    assert_eq!(verdict(&query(&[0xc0, 0x0c])), Probe::NoMatch, "pointer");
    assert_eq!(
        verdict(&query(&[0x41, b'a', 0])),
        Probe::NoMatch,
        "extended label type"
    );
    let label_64 = [&[64u8][..], &[b'a'; 64], &[0]].concat();
    assert_eq!(verdict(&query(&label_64)), Probe::NoMatch);
    let label_63 = [&[63u8][..], &[b'a'; 63], &[0]].concat();
    assert_eq!(verdict(&query(&label_63)), dns());
}

#[test]
fn names_of_255_bytes_match_and_longer_ones_do_not() {
    // Four labels of 63 (256 bytes with their length bytes) are one too many; shorten the
    // last to reach exactly 255 with the root.
    let name = |last: usize| {
        let mut n = Vec::new();
        for len in [63, 63, 63, last] {
            n.push(u8::try_from(len).unwrap());
            n.extend(std::iter::repeat_n(b'a', len));
        }
        n.push(0);
        n
    };
    assert_eq!(name(61).len(), 255);
    assert_eq!(verdict(&query(&name(61))), dns());
    assert_eq!(verdict(&query(&name(62))), Probe::NoMatch);
}

#[test]
fn truncated_questions_are_no_match() {
    for cut in [0, 11, 12, 20, DIG_AAAA_NO_EDNS.len() - 1] {
        assert_eq!(verdict(&DIG_AAAA_NO_EDNS[..cut]), Probe::NoMatch, "{cut}");
    }
}

#[test]
fn reserved_type_and_unknown_classes_are_no_match() {
    let with = |qtype: u16, qclass: u16| {
        let mut q = query(&[0]);
        let len = q.len();
        q[len - 4..len - 2].copy_from_slice(&qtype.to_be_bytes());
        q[len - 2..].copy_from_slice(&qclass.to_be_bytes());
        verdict(&q)
    };
    assert_eq!(with(0, 1), Probe::NoMatch);
    assert_eq!(with(1, 2), Probe::NoMatch);
    assert_eq!(with(1, 0x8001), Probe::NoMatch, "mDNS unicast-response bit");
    assert_eq!(with(255, 255), dns());
}

#[test]
fn only_the_first_datagram_is_judged() {
    assert_eq!(probe(&[DIG_A, b"x"]), dns());
    assert_eq!(probe(&[b"x", DIG_A]), Probe::NoMatch);
    assert_eq!(probe(&[]), Probe::NeedMore);
}
