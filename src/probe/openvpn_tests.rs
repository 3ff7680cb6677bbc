//! Tests of the OpenVPN probes with resets captured from OpenVPN 2.6.14 (plain, tls-auth,
//! tls-crypt, tls-crypt-v2), plus what the other probes' tests share: [`decided_at`], and
//! the cross-probe matrix (every probe against every probe's samples) — kept here because
//! OpenVPN's is the weakest signature, the one likeliest to claim a foreign sample.
#![allow(clippy::indexing_slicing)]

use super::{probe_tcp, probe_udp};
use crate::plan::Protocol;
use crate::probe::{
    Detected, Probe, TCP_PROBES, TcpProbe, UDP_PROBES, probe_tcp as probe_all_tcp,
    probe_udp as probe_all_udp,
};

/// Feeds `bytes` one more byte at a time. Returns the length of the shortest prefix that
/// decides and the verdict, after checking that every shorter prefix is `NeedMore` and every
/// longer one up to the whole input gives the same verdict; `(len, NeedMore)` if none
/// decides.
pub(in crate::probe) fn decided_at(probe: TcpProbe, bytes: &[u8]) -> (usize, Probe) {
    let Some(at) = (0..=bytes.len()).find(|&n| probe(&bytes[..n]) != Probe::NeedMore) else {
        return (bytes.len(), Probe::NeedMore);
    };
    let verdict = probe(&bytes[..at]);
    for n in at..=bytes.len() {
        assert_eq!(
            probe(&bytes[..n]),
            verdict,
            "prefix of {n} bytes changed its mind"
        );
    }
    (at, verdict)
}

const TCP_PLAIN: &[u8] = include_bytes!("testdata/openvpn_2_6_tcp_plain.bin");
const TCP_TLS_AUTH: &[u8] = include_bytes!("testdata/openvpn_2_6_tcp_tlsauth.bin");
const TCP_TLS_CRYPT: &[u8] = include_bytes!("testdata/openvpn_2_6_tcp_tlscrypt.bin");
const TCP_TLS_CRYPT_V2: &[u8] = include_bytes!("testdata/openvpn_2_6_tcp_tlscryptv2.bin");
const UDP_PLAIN: &[u8] = include_bytes!("testdata/openvpn_2_6_udp_plain.bin");
const UDP_TLS_AUTH: &[u8] = include_bytes!("testdata/openvpn_2_6_udp_tlsauth.bin");
const UDP_TLS_AUTH_SHA512: &[u8] = include_bytes!("testdata/openvpn_2_6_udp_tlsauth_sha512.bin");
const UDP_TLS_CRYPT: &[u8] = include_bytes!("testdata/openvpn_2_6_udp_tlscrypt.bin");
const UDP_TLS_CRYPT_V2: &[u8] = include_bytes!("testdata/openvpn_2_6_udp_tlscryptv2.bin");

fn tcp_match() -> Probe {
    Probe::Match(Detected::bare(Protocol::OpenVpn))
}

fn udp_match() -> Probe {
    Probe::Match(Detected::bare(Protocol::OpenVpnUdp))
}

#[test]
fn tcp_resets_of_every_mode_match_once_the_session_id_is_in() {
    for reset in [TCP_PLAIN, TCP_TLS_AUTH, TCP_TLS_CRYPT, TCP_TLS_CRYPT_V2] {
        assert_eq!(
            decided_at(probe_tcp, reset),
            (11, tcp_match()),
            "{reset:02x?}"
        );
    }
}

#[test]
fn udp_resets_of_every_mode_match() {
    for reset in [
        UDP_PLAIN,
        UDP_TLS_AUTH,
        UDP_TLS_AUTH_SHA512,
        UDP_TLS_CRYPT,
        UDP_TLS_CRYPT_V2,
    ] {
        assert_eq!(probe_udp(&[reset]), udp_match(), "{reset:02x?}");
    }
}

#[test]
fn tls_crypt_v2_reset_is_opcode_10_with_a_long_packet() {
    assert_eq!(TCP_TLS_CRYPT_V2[2], 10 << 3);
    assert_eq!(UDP_TLS_CRYPT_V2[0], 10 << 3);
    // The same wrapped key in a packet too short to hold one: the length alone says so.
    let mut short = TCP_TLS_CRYPT_V2[..2 + 300].to_vec();
    short[..2].copy_from_slice(&300u16.to_be_bytes());
    assert_eq!(decided_at(probe_tcp, &short), (2, Probe::NoMatch));
    assert_eq!(probe_udp(&[&UDP_TLS_CRYPT_V2[..300]]), Probe::NoMatch);
}

#[test]
fn other_opcodes_and_key_ids_are_no_match_on_the_opcode_byte() {
    for opcode in [0x39, 0x20, 0x28, 0x40, 0x48, 0x08, 0x10] {
        let mut packet = TCP_PLAIN.to_vec();
        packet[2] = opcode;
        assert_eq!(
            decided_at(probe_tcp, &packet),
            (3, Probe::NoMatch),
            "{opcode:#x}"
        );
        assert_eq!(probe_udp(&[&packet[2..]]), Probe::NoMatch, "{opcode:#x}");
    }
}

#[test]
fn implausible_tcp_lengths_are_no_match_as_early_as_the_bytes_show() {
    // 13 and 256 fit neither a V2 nor a V3 reset.
    assert_eq!(
        decided_at(probe_tcp, &[0x00, 0x0d, 0x38, 0]),
        (2, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_tcp, &[0x01, 0x00, 0x38, 0]),
        (2, Probe::NoMatch)
    );
    // 336 fits only V3 and 14 only V2: the opcode byte decides.
    assert_eq!(
        decided_at(probe_tcp, &[0x01, 0x50, 0x38, 0]),
        (3, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_tcp, &[0x00, 0x0e, 0x50, 0]),
        (3, Probe::NoMatch)
    );
    // Nothing from 1279 up is a reset: the first byte says so.
    assert_eq!(
        decided_at(probe_tcp, &[0x05, 0x00, 0x38]),
        (1, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe_tcp, &[0x00, 0x05, 0x38]),
        (2, Probe::NoMatch)
    );
}

#[test]
fn tcp_reset_cut_inside_the_session_id_needs_more() {
    assert_eq!(probe_tcp(&TCP_PLAIN[..10]), Probe::NeedMore);
    assert_eq!(probe_tcp(&[]), Probe::NeedMore);
}

#[test]
fn udp_judges_the_first_datagram_only() {
    assert_eq!(probe_udp(&[UDP_PLAIN, b"anything"]), udp_match());
    assert_eq!(probe_udp(&[b"anything", UDP_PLAIN]), Probe::NoMatch);
    assert_eq!(probe_udp(&[]), Probe::NeedMore);
    assert_eq!(probe_udp(&[&UDP_PLAIN[..13]]), Probe::NoMatch);
}

/// The first bytes of a real ClientHello (curl 7.88, OpenSSL 3.0) and of a QUIC v1 Initial
/// (aioquic): enough for every probe here to rule them out.
const TLS_CLIENT_HELLO_START: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xcb, 0xde, 0x79, 0xfc, 0x4a,
    0x7f, 0x45, 0x59, 0xde, 0x5a, 0xdb, 0xbc, 0xd3, 0xb4, 0x64, 0xd4, 0x64, 0x7c, 0x24, 0xc0, 0x1e,
    0xfa, 0x1d, 0x42, 0x8f, 0x64, 0x67, 0xdd, 0x2e, 0x15, 0xd7, 0x15, 0x20, 0x3f, 0x10, 0x24, 0x49,
];

fn tcp_samples() -> Vec<(Protocol, &'static [u8])> {
    vec![
        (Protocol::Tls, TLS_CLIENT_HELLO_START),
        (Protocol::Http, include_bytes!("testdata/http_curl_get.bin")),
        (
            Protocol::Http,
            include_bytes!("testdata/http_curl_post_form.bin"),
        ),
        (
            Protocol::Http,
            include_bytes!("testdata/http_curl_h2_prior_knowledge.bin"),
        ),
        (
            Protocol::Ssh,
            include_bytes!("testdata/ssh_openssh_9_2.bin"),
        ),
        (
            Protocol::Postgres,
            include_bytes!("testdata/postgres_psql_sslrequest.bin"),
        ),
        (
            Protocol::Postgres,
            include_bytes!("testdata/postgres_psql_startup.bin"),
        ),
        (
            Protocol::Rdp,
            include_bytes!("testdata/rdp_ms_rdpbcgr_4_1_1_cookie.bin"),
        ),
        (
            Protocol::Rdp,
            include_bytes!("testdata/rdp_cookie_neg_req_hybrid_ex.bin"),
        ),
        (
            Protocol::Rdp,
            include_bytes!("testdata/rdp_routing_token_neg_req_tls.bin"),
        ),
        (
            Protocol::Xmpp,
            include_bytes!("testdata/xmpp_go_sendxmpp.bin"),
        ),
        (
            Protocol::Xmpp,
            include_bytes!("testdata/xmpp_rfc6120_9_1_1.bin"),
        ),
        (
            Protocol::Socks5,
            include_bytes!("testdata/socks_v5_curl.bin"),
        ),
        (
            Protocol::Socks5,
            include_bytes!("testdata/socks_v5_curl_proxy_user.bin"),
        ),
        (
            Protocol::Socks4,
            include_bytes!("testdata/socks_v4_curl.bin"),
        ),
        (
            Protocol::Socks4,
            include_bytes!("testdata/socks_v4a_curl.bin"),
        ),
        (Protocol::OpenVpn, TCP_PLAIN),
        (Protocol::OpenVpn, TCP_TLS_AUTH),
        (Protocol::OpenVpn, TCP_TLS_CRYPT),
        (Protocol::OpenVpn, TCP_TLS_CRYPT_V2),
    ]
}

fn udp_samples() -> Vec<(Protocol, Vec<u8>)> {
    let mut quic_initial = vec![0xc3, 0x00, 0x00, 0x00, 0x01, 0x08];
    quic_initial.extend_from_slice(&[0x8b, 0x0b, 0x3c, 0x5a, 0x21, 0x9e, 0x01, 0x7f, 0x00, 0x00]);
    quic_initial.resize(1200, 0x5c);
    vec![
        (Protocol::Quic, quic_initial),
        (
            Protocol::Wireguard,
            include_bytes!("testdata/wireguard_initiation.bin").to_vec(),
        ),
        (
            Protocol::Wireguard,
            include_bytes!("testdata/wireguard_initiation_with_mac2.bin").to_vec(),
        ),
        (
            Protocol::Dns,
            include_bytes!("testdata/dns_dig_a_edns.bin").to_vec(),
        ),
        (
            Protocol::Dns,
            include_bytes!("testdata/dns_dig_aaaa_no_edns.bin").to_vec(),
        ),
        (Protocol::OpenVpnUdp, UDP_PLAIN.to_vec()),
        (Protocol::OpenVpnUdp, UDP_TLS_AUTH.to_vec()),
        (Protocol::OpenVpnUdp, UDP_TLS_AUTH_SHA512.to_vec()),
        (Protocol::OpenVpnUdp, UDP_TLS_CRYPT.to_vec()),
        (Protocol::OpenVpnUdp, UDP_TLS_CRYPT_V2.to_vec()),
    ]
}

/// Protocols whose probes are not this suite's (TLS, QUIC): their samples here are cut
/// short or synthetic, so only "no one else claims them" is asserted.
fn foreign(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::Tls | Protocol::Quic)
}

#[test]
fn no_tcp_probe_matches_another_protocols_sample() {
    for (owner, sample) in tcp_samples() {
        for (protocol, probe) in TCP_PROBES {
            let verdict = probe(sample);
            if *protocol == owner {
                assert!(
                    foreign(owner) || matches!(verdict, Probe::Match(_)),
                    "{owner:?} probe does not match its own sample {sample:02x?}: {verdict:?}"
                );
            } else {
                assert!(
                    !matches!(verdict, Probe::Match(_)),
                    "{protocol:?} probe matches a {owner:?} sample {sample:02x?}"
                );
            }
        }
        if !foreign(owner) {
            let Probe::Match(found) = probe_all_tcp(sample, |_| true) else {
                panic!("no probe matches {owner:?} sample");
            };
            assert_eq!(found.protocol, owner, "table order picks another protocol");
        }
    }
}

#[test]
fn no_udp_probe_matches_another_protocols_sample() {
    for (owner, sample) in udp_samples() {
        let datagrams: &[&[u8]] = &[&sample];
        for (protocol, probe) in UDP_PROBES {
            let verdict = probe(datagrams);
            if *protocol == owner {
                assert!(
                    foreign(owner) || matches!(verdict, Probe::Match(_)),
                    "{owner:?} probe does not match its own sample {sample:02x?}: {verdict:?}"
                );
            } else {
                assert!(
                    !matches!(verdict, Probe::Match(_)),
                    "{protocol:?} probe matches a {owner:?} sample {sample:02x?}"
                );
            }
        }
        if !foreign(owner) {
            let Probe::Match(found) = probe_all_udp(datagrams, |_| true) else {
                panic!("no probe matches {owner:?} sample");
            };
            assert_eq!(found.protocol, owner, "table order picks another protocol");
        }
    }
}

#[test]
fn a_dns_query_with_a_reset_like_id_is_why_openvpn_udp_runs_after_dns() {
    let mut query = include_bytes!("testdata/dns_dig_aaaa_no_edns.bin").to_vec();
    query[0] = 0x38;
    assert_eq!(probe_udp(&[&query]), udp_match());
    let Probe::Match(found) = probe_all_udp(&[&query], |_| true) else {
        panic!("no match")
    };
    assert_eq!(found.protocol, Protocol::Dns);
}
