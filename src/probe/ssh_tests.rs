//! Tests of the SSH probe with OpenSSH 9.2's banner.
#![allow(clippy::indexing_slicing)]

use super::probe;
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

const OPENSSH_9_2: &[u8] = include_bytes!("testdata/ssh_openssh_9_2.bin");

fn ssh() -> Probe {
    Probe::Match(Detected::bare(Protocol::Ssh))
}

#[test]
fn openssh_banner_matches_at_the_dash_after_2_0() {
    assert_eq!(decided_at(probe, OPENSSH_9_2), (8, ssh()));
}

#[test]
fn compatibility_banner_1_99_matches_at_its_dash() {
    assert_eq!(decided_at(probe, b"SSH-1.99-OpenSSH_3.9p1\r\n"), (9, ssh()));
}

#[test]
fn protocol_1_and_other_versions_are_no_match() {
    assert_eq!(
        decided_at(probe, b"SSH-1.5-OpenSSH_1.2.3\r\n"),
        (7, Probe::NoMatch)
    );
    assert_eq!(decided_at(probe, b"SSH-2.1-x\r\n"), (7, Probe::NoMatch));
    assert_eq!(decided_at(probe, b"SSH-2.0_x\r\n"), (8, Probe::NoMatch));
}

#[test]
fn lowercase_and_leading_garbage_are_no_match_on_the_first_byte() {
    assert_eq!(decided_at(probe, b"ssh-2.0-x\r\n"), (1, Probe::NoMatch));
    assert_eq!(decided_at(probe, b"\r\nSSH-2.0-x\r\n"), (1, Probe::NoMatch));
    assert_eq!(
        decided_at(probe, &[0x16, 0x03, 0x01, 0x02, 0x00]),
        (1, Probe::NoMatch)
    );
}

#[test]
fn banner_cut_before_the_dash_needs_more() {
    for cut in 0..8 {
        assert_eq!(probe(&OPENSSH_9_2[..cut]), Probe::NeedMore, "{cut}");
    }
    assert_eq!(probe(b"SSH-1.9"), Probe::NeedMore);
}
