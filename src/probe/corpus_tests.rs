//! Replays every probe's fuzz corpus (`fuzz/corpus/<target>/`) with the fuzz targets'
//! invariants, so crashers found once stay fixed.

use super::*;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        out.push(std::fs::read(entry.expect("entry").path()).expect("corpus file"));
    }
    assert!(!out.is_empty(), "{dir} is empty");
    out
}

#[test]
fn tcp_probe_corpora_replay() {
    let targets: &[(&str, Protocol, TcpProbe)] = &[
        ("probe_tls", Protocol::Tls, tls::probe),
        ("probe_http", Protocol::Http, http::probe),
        ("probe_ssh", Protocol::Ssh, ssh::probe),
        ("probe_postgres", Protocol::Postgres, postgres::probe),
        ("probe_rdp", Protocol::Rdp, rdp::probe),
        ("probe_xmpp", Protocol::Xmpp, xmpp::probe),
        ("probe_socks5", Protocol::Socks5, socks::probe_v5),
        ("probe_socks4", Protocol::Socks4, socks::probe_v4),
        ("probe_openvpn_tcp", Protocol::OpenVpn, openvpn::probe_tcp),
    ];
    for (target, protocol, probe) in targets {
        for input in corpus(target) {
            check_tcp_probe(*protocol, *probe, &input);
        }
    }
}

#[test]
fn udp_probe_corpora_replay() {
    let targets: &[(&str, Protocol, UdpProbe)] = &[
        ("probe_quic", Protocol::Quic, quic::probe),
        ("probe_wireguard", Protocol::Wireguard, wireguard::probe),
        ("probe_dns", Protocol::Dns, dns::probe),
        (
            "probe_openvpn_udp",
            Protocol::OpenVpnUdp,
            openvpn::probe_udp,
        ),
    ];
    for (target, protocol, probe) in targets {
        for input in corpus(target) {
            check_udp_probe(*protocol, *probe, &input);
        }
    }
}

#[test]
fn split_datagrams_reads_length_prefixed_records() {
    assert_eq!(
        split_datagrams(&[0, 2, 7, 8, 0, 1, 9]),
        vec![&[7u8, 8][..], &[9][..]]
    );
    assert_eq!(split_datagrams(&[0, 5, 1]), vec![&[1u8][..]]);
    assert_eq!(split_datagrams(&[3]), vec![&[3u8][..]]);
}
