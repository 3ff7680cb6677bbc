//! Tests of the XMPP probe with go-sendxmpp 0.5's stream header and RFC 6120's example.
#![allow(clippy::indexing_slicing)]

use super::{MAX_HEADER_WAIT, probe};
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

const GO_SENDXMPP: &[u8] = include_bytes!("testdata/xmpp_go_sendxmpp.bin");
/// RFC 6120 §9.1.1's client stream header, after an XML declaration.
const RFC_6120: &[u8] = include_bytes!("testdata/xmpp_rfc6120_9_1_1.bin");

fn xmpp() -> Probe {
    Probe::Match(Detected::bare(Protocol::Xmpp))
}

/// Where `needle` ends in `haystack`.
fn end_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len()
}

#[test]
fn go_sendxmpp_header_matches_once_jabber_client_is_seen() {
    let at = end_of(GO_SENDXMPP, b"jabber:client");
    assert_eq!(decided_at(probe, GO_SENDXMPP), (at, xmpp()));
}

#[test]
fn rfc_6120_header_with_attributes_on_many_lines_matches() {
    let at = end_of(RFC_6120, b"jabber:client");
    assert_eq!(decided_at(probe, RFC_6120), (at, xmpp()));
}

#[test]
fn header_without_declaration_or_with_double_quotes_matches() {
    assert_eq!(
        probe(b"<stream:stream xmlns=\"jabber:client\" to=\"example.com\">"),
        xmpp()
    );
    assert_eq!(
        probe(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream xmlns='jabber:client'"),
        xmpp()
    );
}

#[test]
fn stream_tag_closed_without_the_client_namespace_is_no_match_at_the_bracket() {
    let server = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' to='b.example'>";
    assert_eq!(decided_at(probe, server), (server.len(), Probe::NoMatch));
    let bare = b"<stream:stream version='1.0'>jabber:client";
    assert_eq!(decided_at(probe, bare), (29, Probe::NoMatch));
}

#[test]
fn other_xml_is_no_match_where_it_parts_from_a_stream_header() {
    assert_eq!(decided_at(probe, b"<html><body>"), (2, Probe::NoMatch));
    assert_eq!(
        decided_at(probe, b"<?xml-stylesheet href='a'?>"),
        (6, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"<?xml version='1.0'?><stream:features>"),
        (30, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"<stream:streamx xmlns='jabber:client'>"),
        (15, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"<?xml version='1.0'><stream:stream"),
        (20, Probe::NoMatch)
    );
}

#[test]
fn leading_whitespace_is_no_match() {
    assert_eq!(
        decided_at(probe, b"\n<stream:stream xmlns='jabber:client'>"),
        (1, Probe::NoMatch)
    );
}

#[test]
fn undecided_after_the_wait_limit_is_no_match() {
    let mut long = b"<stream:stream to='".to_vec();
    long.resize(400, b'a');
    long.extend_from_slice(b"' xmlns='jabber:client'>");
    assert_eq!(decided_at(probe, &long), (MAX_HEADER_WAIT, Probe::NoMatch));
    let mut declaration = b"<?xml version='1.0' ".to_vec();
    declaration.resize(300, b' ');
    assert_eq!(
        decided_at(probe, &declaration),
        (MAX_HEADER_WAIT, Probe::NoMatch)
    );
}

#[test]
fn common_prefixes_of_declaration_and_tag_need_more() {
    for prefix in [
        &b""[..],
        b"<",
        b"<?",
        b"<?xml",
        b"<?xml version='1.0'?>\n",
        b"<stream:",
        b"<stream:stream ",
    ] {
        assert_eq!(probe(prefix), Probe::NeedMore, "{prefix:?}");
    }
}
