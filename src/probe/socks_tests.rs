//! Tests of the SOCKS probes with curl 7.88's SOCKS5 greetings and SOCKS4/4a requests.
#![allow(clippy::indexing_slicing)]

use super::{MAX_SOCKS4_STRING, probe_v4, probe_v5};
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

/// No authentication or GSSAPI.
const CURL_V5: &[u8] = include_bytes!("testdata/socks_v5_curl.bin");
/// With --proxy-user: username/password offered too.
const CURL_V5_PROXY_USER: &[u8] = include_bytes!("testdata/socks_v5_curl_proxy_user.bin");
/// CONNECT 127.0.0.1:80, empty USERID.
const CURL_V4: &[u8] = include_bytes!("testdata/socks_v4_curl.bin");
/// CONNECT example.com:80 through 0.0.0.1.
const CURL_V4A: &[u8] = include_bytes!("testdata/socks_v4a_curl.bin");

fn socks5() -> Probe {
    Probe::Match(Detected::bare(Protocol::Socks5))
}

fn socks4() -> Probe {
    Probe::Match(Detected::bare(Protocol::Socks4))
}

#[test]
fn curl_v5_greetings_match_once_every_method_is_in() {
    assert_eq!(decided_at(probe_v5, CURL_V5), (4, socks5()));
    assert_eq!(decided_at(probe_v5, CURL_V5_PROXY_USER), (5, socks5()));
}

#[test]
fn v5_request_pipelined_after_the_greeting_still_matches() {
    let pipelined = [
        &[0x05, 0x01, 0x00][..],
        &[0x05, 0x01, 0x00, 0x03, 0x07],
        b"example",
        &[0, 80],
    ]
    .concat();
    assert_eq!(decided_at(probe_v5, &pipelined), (3, socks5()));
}

#[test]
fn v5_private_methods_match() {
    assert_eq!(probe_v5(&[0x05, 0x02, 0x80, 0xfe]), socks5());
}

#[test]
fn v5_without_methods_or_with_unassigned_ones_is_no_match() {
    assert_eq!(
        decided_at(probe_v5, &[0x05, 0x00, 0x00]),
        (2, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_v5, &[0x05, 0x03, 0x00, 0x0a, 0x02]),
        (4, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_v5, &[0x05, 0x01, 0xff]),
        (3, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_v5, &[0x04, 0x01, 0x00]),
        (1, Probe::NoMatch)
    );
}

#[test]
fn curl_v4_request_matches_at_the_userid_terminator() {
    assert_eq!(decided_at(probe_v4, CURL_V4), (9, socks4()));
    let with_user = [&CURL_V4[..8], b"alice\0"].concat();
    assert_eq!(decided_at(probe_v4, &with_user), (14, socks4()));
}

#[test]
fn curl_v4a_request_matches_at_the_host_name_terminator() {
    assert_eq!(decided_at(probe_v4, CURL_V4A), (21, socks4()));
}

#[test]
fn v4_bind_matches() {
    let bind = [&[0x04, 0x02, 0x1f, 0x90, 192, 0, 2, 1][..], b"\0"].concat();
    assert_eq!(probe_v4(&bind), socks4());
}

#[test]
fn v4_other_commands_and_address_zero_are_no_match() {
    assert_eq!(
        decided_at(probe_v4, &[0x04, 0x03, 0, 80, 1, 2, 3, 4, 0]),
        (2, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_v4, &[0x04, 0x01, 0, 80, 0, 0, 0, 0, 0]),
        (8, Probe::NoMatch)
    );
}

#[test]
fn v4_control_characters_in_strings_are_no_match_at_that_byte() {
    let userid = [&CURL_V4[..8], b"al\x01ce\0"].concat();
    assert_eq!(decided_at(probe_v4, &userid), (11, Probe::NoMatch));
    let host = [&CURL_V4A[..9], b"exa\nmple.com\0"].concat();
    assert_eq!(decided_at(probe_v4, &host), (13, Probe::NoMatch));
}

#[test]
fn v4a_empty_host_name_is_no_match() {
    let empty = [&CURL_V4A[..9], b"\0"].concat();
    assert_eq!(decided_at(probe_v4, &empty), (10, Probe::NoMatch));
}

#[test]
fn v4_strings_longer_than_the_limit_are_no_match_without_waiting_for_the_nul() {
    let mut long = CURL_V4[..8].to_vec();
    long.resize(8 + MAX_SOCKS4_STRING + 10, b'u');
    long.push(0);
    assert_eq!(
        decided_at(probe_v4, &long),
        (8 + MAX_SOCKS4_STRING + 1, Probe::NoMatch)
    );
    let mut longest = CURL_V4[..8].to_vec();
    longest.resize(8 + MAX_SOCKS4_STRING, b'u');
    longest.push(0);
    assert_eq!(probe_v4(&longest), socks4());
}
