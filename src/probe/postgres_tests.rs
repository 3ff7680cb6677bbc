//! Tests of the PostgreSQL probe with psql 15's SSLRequest and StartupMessage, and the
//! other requests built per the protocol documentation.
#![allow(clippy::indexing_slicing)]

use super::probe;
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

const PSQL_SSL_REQUEST: &[u8] = include_bytes!("testdata/postgres_psql_sslrequest.bin");
/// user=alice database=shop application_name=psql, protocol 3.0.
const PSQL_STARTUP: &[u8] = include_bytes!("testdata/postgres_psql_startup.bin");

fn postgres() -> Probe {
    Probe::Match(Detected::bare(Protocol::Postgres))
}

/// A StartupMessage for `code` with `params` (each `key\0value\0`) and the final \0.
fn startup(code: u32, params: &[u8]) -> Vec<u8> {
    let len = u32::try_from(8 + params.len() + 1).unwrap();
    [&len.to_be_bytes()[..], &code.to_be_bytes(), params, &[0]].concat()
}

#[test]
fn psql_ssl_request_matches_on_its_eight_bytes() {
    assert_eq!(decided_at(probe, PSQL_SSL_REQUEST), (8, postgres()));
}

#[test]
fn gssenc_request_matches_on_its_eight_bytes() {
    assert_eq!(
        decided_at(probe, &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]),
        (8, postgres())
    );
}

#[test]
fn cancel_requests_with_short_and_long_keys_match_on_their_header() {
    let v3_0 = [
        &[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e][..],
        &[0, 0, 0x30, 0x39],
        &[7; 4],
    ]
    .concat();
    assert_eq!(decided_at(probe, &v3_0), (8, postgres()));
    // Protocol 3.2 (PostgreSQL 18): a 32-byte secret key.
    let v3_2 = [
        &[0, 0, 0, 44, 0x04, 0xd2, 0x16, 0x2e][..],
        &[0, 0, 0x30, 0x39],
        &[7; 32],
    ]
    .concat();
    assert_eq!(decided_at(probe, &v3_2), (8, postgres()));
    assert_eq!(
        decided_at(probe, &[0, 0, 0, 15, 0x04, 0xd2, 0x16, 0x2e]),
        (5, Probe::NoMatch)
    );
}

#[test]
fn psql_startup_matches_once_the_whole_message_is_in() {
    assert_eq!(
        decided_at(probe, PSQL_STARTUP),
        (PSQL_STARTUP.len(), postgres())
    );
}

#[test]
fn startup_protocol_3_2_and_future_minors_match() {
    let params = b"user\0bob\0";
    assert_eq!(probe(&startup(0x0003_0002, params)), postgres());
    assert_eq!(probe(&startup(0x0003_270f, params)), postgres());
}

#[test]
fn startup_protocol_2_is_no_match() {
    assert_eq!(
        decided_at(probe, &startup(0x0002_0000, b"user\0bob\0")),
        (6, Probe::NoMatch)
    );
}

#[test]
fn startup_without_user_is_no_match() {
    assert_eq!(
        probe(&startup(0x0003_0000, b"database\0shop\0")),
        Probe::NoMatch
    );
    assert_eq!(probe(&startup(0x0003_0000, b"")), Probe::NoMatch);
}

#[test]
fn startup_whose_terminator_is_not_its_last_byte_is_no_match() {
    // The length claims one byte more than the terminator ends at.
    let mut long = PSQL_STARTUP.to_vec();
    long[3] += 1;
    assert_eq!(
        decided_at(probe, &long),
        (PSQL_STARTUP.len(), Probe::NoMatch)
    );
    // A \0 inside: the pairs end early, leaving bytes before the stated end.
    let early = startup(0x0003_0000, b"user\0bob\0\0x\0");
    assert_eq!(probe(&early), Probe::NoMatch);
    // The length ends inside a value.
    let mut short = PSQL_STARTUP.to_vec();
    short[3] -= 3;
    assert_eq!(probe(&short), Probe::NoMatch);
}

#[test]
fn startup_with_a_non_name_key_byte_is_no_match_at_that_byte() {
    let bad = startup(0x0003_0000, b"user\0bob\0data base\0x\0");
    assert_eq!(decided_at(probe, &bad), (22, Probe::NoMatch));
}

#[test]
fn lengths_out_of_range_are_no_match_as_early_as_the_bytes_show() {
    // 65 536 and up cannot be any of the messages.
    assert_eq!(
        decided_at(probe, &[0, 1, 0, 0, 0, 3, 0, 0]),
        (2, Probe::NoMatch)
    );
    // 10 001 is one past a StartupMessage's limit.
    assert_eq!(
        decided_at(probe, &[0, 0, 0x27, 0x11, 0, 3, 0, 0]),
        (4, Probe::NoMatch)
    );
    // Length 9 fits only a StartupMessage, whose code this is not.
    assert_eq!(
        decided_at(probe, &[0, 0, 0, 9, 0x04, 0xd2, 0x16, 0x2f]),
        (5, Probe::NoMatch)
    );
}

#[test]
fn other_protocols_are_no_match_on_the_first_byte() {
    assert_eq!(
        decided_at(probe, b"GET / HTTP/1.1\r\n"),
        (1, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
        (1, Probe::NoMatch)
    );
}

#[test]
fn bytes_after_an_ssl_request_do_not_undo_the_match() {
    let pipelined = [PSQL_SSL_REQUEST, &[0x16, 0x03, 0x01][..]].concat();
    assert_eq!(probe(&pipelined), postgres());
}
