//! Unit tests of the value parsers (durations, targets, names, CIDRs, listen addresses) and
//! of the typo suggestions. No IO.
#![allow(clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::suggest::{distance, nearest};
use super::values::*;

#[test]
fn durations_in_every_unit_and_compound() {
    let ms = |n| Duration::from_millis(n);
    assert_eq!(parse_duration("500ms"), Ok(ms(500)));
    assert_eq!(parse_duration("30s"), Ok(ms(30_000)));
    assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
    assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
    assert_eq!(parse_duration("2d"), Ok(ms(172_800_000)));
    assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
    assert_eq!(parse_duration("1h 30m"), Ok(ms(5_400_000)));
    assert_eq!(parse_duration("1s500ms"), Ok(ms(1_500)));
    assert_eq!(parse_duration("0s"), Ok(ms(0)));
}

#[test]
fn duration_garbage_is_explained() {
    assert!(parse_duration("").unwrap_err().contains("empty"));
    assert!(
        parse_duration("5 minutes")
            .unwrap_err()
            .contains("unknown unit `minutes`")
    );
    assert!(parse_duration("30").unwrap_err().contains("no unit"));
    assert!(parse_duration("1.5s").is_err());
    assert!(
        parse_duration("s")
            .unwrap_err()
            .contains("expected a number")
    );
    assert!(parse_duration("-5s").is_err());
    assert!(parse_duration("99999999999999999999s").is_err());
    assert!(
        parse_duration("9999999999999999d")
            .unwrap_err()
            .contains("too large")
    );
}

#[test]
fn durations_print_in_their_shortest_form_and_read_back() {
    for (d, s) in [
        (Duration::from_secs(3600), "1h"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::ZERO, "0s"),
        (Duration::from_secs(86_400 + 7_200), "1d2h"),
    ] {
        assert_eq!(fmt_duration(d), s);
        assert_eq!(parse_duration(s), Ok(d));
    }
}

#[test]
fn targets_ipv4_ipv6_and_names() {
    let t = parse_target("192.168.122.4:53").unwrap();
    assert_eq!(
        (t.port, t.ip),
        (53, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 122, 4))))
    );
    let t = parse_target("[2001:db8::1]:443").unwrap();
    assert_eq!(t.ip, Some(IpAddr::V6("2001:db8::1".parse().unwrap())));
    assert_eq!(t.to_string(), "[2001:db8::1]:443");
    let t = parse_target("dot.cloudflare.com:853").unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.ip),
        ("dot.cloudflare.com", 853, None)
    );
    assert!(parse_target("backend-1.lan.:8080").is_ok());
}

#[test]
fn bad_targets_say_why() {
    assert!(parse_target("10.0.0.1:0").unwrap_err().contains("port 0"));
    assert!(
        parse_target("10.0.0.1:70000")
            .unwrap_err()
            .contains("1..=65535")
    );
    assert!(
        parse_target("10.0.0.1")
            .unwrap_err()
            .contains("missing `:port`")
    );
    assert!(
        parse_target("2001:db8::1:443")
            .unwrap_err()
            .contains("brackets")
    );
    assert!(
        parse_target("[2001:db8::1]")
            .unwrap_err()
            .contains("[IPv6 address]:port")
    );
    assert!(
        parse_target("[zz::g]:80")
            .unwrap_err()
            .contains("not an IPv6 address")
    );
    assert!(
        parse_target("1.2.3.256:80")
            .unwrap_err()
            .contains("not a valid IPv4")
    );
    assert!(
        parse_target("-bad.example:80")
            .unwrap_err()
            .contains("not a host name")
    );
    assert!(parse_target("under_score.lan:80").is_err());
    assert!(parse_target("a..b:80").is_err());
    assert!(parse_target("host:+80").is_err());
}

#[test]
fn host_name_limits() {
    assert!(check_name("*.example.com", true).is_ok());
    assert!(check_name("*.example.com", false).is_err());
    assert!(check_name("*", true).is_err());
    let label63 = "a".repeat(63);
    assert!(check_name(&format!("{label63}.com"), false).is_ok());
    assert!(check_name(&format!("a{label63}.com"), false).is_err());
    let long = vec!["abcdefghi"; 26].join("."); // 26*10-1 = 259 characters
    assert!(check_name(&long, false).unwrap_err().contains("253"));
}

#[test]
fn cidrs_normalise_host_bits() {
    let (c, cleared) = parse_cidr("10.0.0.0/8").unwrap();
    assert_eq!((c.to_string(), cleared), ("10.0.0.0/8".to_string(), false));
    let (c, cleared) = parse_cidr("10.1.2.3/8").unwrap();
    assert_eq!((c.to_string(), cleared), ("10.0.0.0/8".to_string(), true));
    let (c, _) = parse_cidr("192.0.2.7").unwrap();
    assert_eq!(c.prefix, 32);
    let (c, _) = parse_cidr("2001:db8::/32").unwrap();
    assert_eq!(c.to_string(), "2001:db8::/32");
    assert_eq!(parse_cidr("::1").unwrap().0.prefix, 128);
    assert_eq!(parse_cidr("0.0.0.0/0").unwrap().0.prefix, 0);
    assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("0..=32"));
    assert!(
        parse_cidr("example.com/8")
            .unwrap_err()
            .contains("not an IP address")
    );
}

#[test]
fn listen_addresses_bare_and_bracketed() {
    assert_eq!(parse_listen_v6("[::1]"), Ok(Ipv6Addr::LOCALHOST));
    assert_eq!(parse_listen_v6("::1"), Ok(Ipv6Addr::LOCALHOST));
    assert_eq!(parse_listen_v4("10.0.0.5"), Ok(Ipv4Addr::new(10, 0, 0, 5)));
    assert!(
        parse_listen_v4("::1")
            .unwrap_err()
            .contains("listen_address_v6")
    );
    assert!(
        parse_listen_v6("127.0.0.1")
            .unwrap_err()
            .contains("listen_address_v4")
    );
    assert!(
        parse_listen_v4("127.0.0.1:80")
            .unwrap_err()
            .contains("without a port")
    );
    assert!(
        parse_listen_v6("[::1]:80")
            .unwrap_err()
            .contains("without a port")
    );
    assert!(parse_listen_v4("localhost").is_err());
}

#[test]
fn edit_distance_counts_transpositions_once() {
    assert_eq!(distance("tcp_targte", "tcp_target"), 1);
    assert_eq!(distance("abc", "abc"), 0);
    assert_eq!(distance("", "abc"), 3);
    assert_eq!(distance("Listen_Port", "listen_port"), 0);
    assert_eq!(distance("kitten", "sitting"), 3);
}

#[test]
fn suggestions_only_when_close() {
    let keys = ["tcp_target", "udp_target", "listen_port"];
    assert_eq!(nearest("tcp_targte", &keys), Some("tcp_target"));
    assert_eq!(nearest("listen_prot", &keys), Some("listen_port"));
    assert_eq!(nearest("frobnicate", &keys), None);
    assert_eq!(nearest("tsl", &["tls", "ssh"]), Some("tls"));
}
