//! Tests of the PROXY protocol codec: spec examples, real haproxy bytes, round trips,
//! byte-exact NeedMore/Invalid decisions, and the fuzz corpus replay.
#![allow(clippy::indexing_slicing)]

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn tcp(src: &str, dst: &str) -> ProxiedAddrs {
    ProxiedAddrs::Tcp {
        src: sa(src),
        dst: sa(dst),
    }
}

/// Parses a complete header (optionally followed by payload), checks that every shorter
/// prefix of the header is NeedMore, and returns it.
fn done(bytes: &[u8]) -> Header {
    let Parse::Done(header) = parse(bytes) else {
        panic!(
            "{:?} for {:?}",
            parse(bytes),
            String::from_utf8_lossy(bytes)
        )
    };
    for cut in 0..header.len {
        assert_eq!(
            parse(&bytes[..cut]),
            Parse::NeedMore,
            "prefix of {cut} bytes"
        );
    }
    check_invariants(bytes);
    header
}

/// The length of the shortest prefix that is Invalid (all shorter ones being NeedMore).
fn invalid_at(bytes: &[u8]) -> usize {
    for n in 0..=bytes.len() {
        match parse(&bytes[..n]) {
            Parse::NeedMore => {}
            Parse::Invalid(_) => {
                check_invariants(bytes);
                return n;
            }
            other => panic!("{other:?} at {n} for {:?}", String::from_utf8_lossy(bytes)),
        }
    }
    panic!("never invalid: {:?}", String::from_utf8_lossy(bytes))
}

/// A v2 header whose length field is the body's length.
fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    v2_declaring(
        ver_cmd,
        family,
        u16::try_from(body.len()).expect("short body"),
        body,
    )
}

fn v2_declaring(ver_cmd: u8, family: u8, len: u16, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[ver_cmd, family]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

const V4_BODY: [u8; 12] = [10, 0, 0, 1, 192, 168, 1, 2, 0x04, 0xD2, 0x01, 0xBB];

// ---- v1 -------------------------------------------------------------------------------

#[test]
fn v1_spec_example_points_len_at_the_payload() {
    let stream = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    let h = done(stream);
    assert_eq!(h.version, 1);
    assert_eq!(h.addrs, tcp("192.168.0.1:56324", "192.168.0.11:443"));
    assert_eq!(&stream[h.len..], b"GET / HTTP/1.1\r\n");
}

#[test]
fn v1_longest_lines_of_each_kind() {
    let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(tcp4.len(), 56);
    let h = done(tcp4);
    assert_eq!(h.len, 56);
    assert_eq!(
        h.addrs,
        tcp("255.255.255.255:65535", "255.255.255.255:65535")
    );

    let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {v6} {v6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    let h = done(tcp6.as_bytes());
    assert_eq!(
        h.addrs,
        tcp(&format!("[{v6}]:65535"), &format!("[{v6}]:65535"))
    );

    let worst = format!("PROXY UNKNOWN {v6} {v6} 65535 65535\r\n");
    assert_eq!(worst.len(), V1_MAX_LINE);
    assert_eq!(
        done(worst.as_bytes()),
        Header {
            version: 1,
            addrs: ProxiedAddrs::Unknown,
            len: 107
        }
    );
}

#[test]
fn v1_unknown_short_and_long_forms() {
    let short = done(b"PROXY UNKNOWN\r\nSSH-2.0-x\r\n");
    assert_eq!(
        short,
        Header {
            version: 1,
            addrs: ProxiedAddrs::Unknown,
            len: 15
        }
    );
    // "the receiver must ignore anything presented before the CRLF"
    let line = b"PROXY UNKNOWN whatever \x01\xff goes\r\n";
    assert_eq!(
        done(line),
        Header {
            version: 1,
            addrs: ProxiedAddrs::Unknown,
            len: line.len()
        }
    );
}

#[test]
fn v1_line_without_crlf_in_107_bytes_is_invalid() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LINE - 1, b'x');
    assert_eq!(parse(&line), Parse::NeedMore);
    line.push(b'\r');
    assert_eq!(invalid_at(&[&line[..], b"\n"].concat()), V1_MAX_LINE);
    // The same line one byte shorter is fine.
    line.truncate(V1_MAX_LINE - 2);
    line.extend_from_slice(b"\r\n");
    assert_eq!(done(&line).len, V1_MAX_LINE);
}

#[test]
fn v1_tcp6_accepts_any_spelling_the_spec_allows() {
    let cases = [
        (
            "PROXY TCP6 ::1 ::1 40222 9001\r\n",
            "[::1]:40222",
            "[::1]:9001",
        ),
        (
            "PROXY TCP6 2001:DB8::A 2001:db8::b 1 2\r\n",
            "[2001:db8::a]:1",
            "[2001:db8::b]:2",
        ),
        (
            "PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 :: 0 0\r\n",
            "[2001:db8::1]:0",
            "[::]:0",
        ),
        (
            "PROXY TCP6 ::ffff:10.0.0.1 ::ffff:10.0.0.2 80 81\r\n",
            "[::ffff:10.0.0.1]:80",
            "[::ffff:10.0.0.2]:81",
        ),
    ];
    for (line, src, dst) in cases {
        assert_eq!(done(line.as_bytes()).addrs, tcp(src, dst), "{line}");
    }
}

#[test]
fn v1_invalid_lines_are_rejected_at_the_first_bad_byte() {
    // (line, length of the shortest Invalid prefix)
    let cases: &[(&[u8], usize)] = &[
        (b"GET / HTTP/1.1\r\n", 1),
        (b"POST / HTTP/1.1\r\n", 2),
        (b"proxy TCP4", 1),
        (b"PROXY  TCP4", 7),
        (b"PROXY TCP5 ", 10),
        (b"PROXY TCP4\r\n", 11),
        (b"PROXY UNKNOWNX\r\n", 14),
        (b"PROXY UNKNOWN\n", 14),
        (b"PROXY UNKNOWN abc\n", 18),
        (b"PROXY UNKNOWN\rx", 15),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 20),
        // Octets: leading zeros (octal confusion), too large, too many, empty.
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 13),
        (b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", 14),
        (b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 19),
        (b"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", 14),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 17),
        // Family mismatch: an IPv6 address in a TCP4 line and the other way round.
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", 12),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 19),
        (b"PROXY TCP6 ::1::2 ::1 1 2\r\n", 16),
        (b"PROXY TCP6 12345:: ::1 1 2\r\n", 16),
        (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 27),
        (b"PROXY TCP6 ::g ::1 1 2\r\n", 14),
        // Ports: too large, leading zero, sign, missing.
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 32),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n", 32),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", 29),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", 28),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", 28),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", 34),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 31),
        // Line ends: a lone LF, a CR not followed by LF.
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", 32),
    ];
    for &(line, at) in cases {
        assert_eq!(invalid_at(line), at, "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn v1_ports_zero_and_max_are_valid() {
    assert_eq!(
        done(b"PROXY TCP4 0.0.0.0 1.2.3.4 0 65535\r\n").addrs,
        tcp("0.0.0.0:0", "1.2.3.4:65535")
    );
}

/// The IPv6 viability check is a heuristic; it must never reject a prefix of a real
/// address, whatever its spelling.
#[test]
fn v1_every_prefix_of_every_ipv6_spelling_needs_more() {
    let mut rng = fastrand::Rng::with_seed(6);
    for _ in 0..2000 {
        // Mostly-zero groups so that `::` compression shows up in many positions.
        let groups: [u16; 8] = std::array::from_fn(|_| {
            if rng.bool() {
                0
            } else {
                rng.u16(..) >> rng.u32(0..16)
            }
        });
        let ip = Ipv6Addr::from(groups);
        let o = ip.octets();
        let spellings = [
            ip.to_string(),
            ip.to_string().to_uppercase(),
            groups.map(|g| format!("{g:04x}")).join(":"),
            groups.map(|g| format!("{g:x}")).join(":"),
            format!(
                "{}:{}.{}.{}.{}",
                groups[..6]
                    .iter()
                    .map(|g| format!("{g:x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                o[12],
                o[13],
                o[14],
                o[15]
            ),
        ];
        for text in spellings {
            let line = format!("PROXY TCP6 {text} ::1 65535 0\r\n");
            if line.len() > V1_MAX_LINE {
                continue;
            }
            let h = done(line.as_bytes());
            assert_eq!(
                h.addrs,
                ProxiedAddrs::Tcp {
                    src: SocketAddr::new(ip.into(), 65535),
                    dst: sa("[::1]:0")
                }
            );
        }
    }
}

// ---- v2 -------------------------------------------------------------------------------

#[test]
fn v2_tcp4_and_tcp6_built_by_hand() {
    let h = done(&[&v2(0x21, 0x11, &V4_BODY)[..], b"payload"].concat());
    assert_eq!(
        h,
        Header {
            version: 2,
            addrs: tcp("10.0.0.1:1234", "192.168.1.2:443"),
            len: 28
        }
    );

    let mut body = Vec::new();
    body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&[0xFF, 0xFF, 0x00, 0x00]);
    let h = done(&v2(0x21, 0x21, &body));
    assert_eq!(
        h,
        Header {
            version: 2,
            addrs: tcp("[2001:db8::1]:65535", "[2001:db8::2]:0"),
            len: 52
        }
    );
}

#[test]
fn v2_local_and_non_tcp_families_keep_the_real_peer() {
    let unknown = |len| Header {
        version: 2,
        addrs: ProxiedAddrs::Unknown,
        len,
    };
    // LOCAL ignores whatever block follows, even addresses of a TCP family.
    assert_eq!(done(&v2(0x20, 0x00, &[])), unknown(16));
    assert_eq!(done(&v2(0x20, 0x11, &V4_BODY)), unknown(28));
    assert_eq!(done(&v2(0x20, 0x11, &[1, 2])), unknown(18));
    // PROXY over UNSPEC, UDP and UNIX.
    assert_eq!(done(&v2(0x21, 0x00, &[9; 5])), unknown(21));
    assert_eq!(done(&v2(0x21, 0x12, &V4_BODY)), unknown(28));
    assert_eq!(done(&v2(0x21, 0x22, &[0; 36])), unknown(52));
    assert_eq!(done(&v2(0x21, 0x31, &[b'/'; 216])), unknown(232));
    assert_eq!(done(&v2(0x21, 0x32, &[0; 216])), unknown(232));
}

#[test]
fn v2_tlvs_are_skipped_when_they_fit() {
    let mut body = V4_BODY.to_vec();
    body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // ALPN "h2"
    body.extend_from_slice(&[0x04, 0x00, 0x00]); // empty NOOP
    body.extend_from_slice(&[0x02, 0x00, 0x0B]); // AUTHORITY
    body.extend_from_slice(b"example.com");
    let h = done(&[&v2(0x21, 0x11, &body)[..], b"\x16\x03\x01"].concat());
    assert_eq!(h.addrs, tcp("10.0.0.1:1234", "192.168.1.2:443"));
    assert_eq!(h.len, 16 + body.len());
}

#[test]
fn v2_largest_accepted_header_is_536_bytes() {
    let mut body = V4_BODY.to_vec();
    body.extend_from_slice(&[0x04, 0x01, 0xF9]); // NOOP padding to the limit
    body.resize(V2_MAX_BODY, 0);
    assert_eq!(done(&v2(0x21, 0x11, &body)).len, MAX_HEADER);
    // One more byte is refused as soon as the length field is read.
    assert_eq!(invalid_at(&v2_declaring(0x21, 0x11, 521, &[])), 16);
    assert_eq!(invalid_at(&v2_declaring(0x20, 0x00, 0xFFFF, &[])), 16);
}

#[test]
fn v2_invalid_headers_are_rejected_at_the_first_bad_byte() {
    let mut bad_sig = v2(0x21, 0x11, &V4_BODY);
    bad_sig[11] = b'\r';
    let cases: Vec<(Vec<u8>, usize)> = vec![
        (b"\r\n\r\n\0\r\nQUIT\r".to_vec(), 12),
        (b"\r\r".to_vec(), 2),
        (b"\n".to_vec(), 1),
        (bad_sig, 12),
        (b"\x16\x03\x01\x02\x00".to_vec(), 1), // a TLS ClientHello
        (b"SSH-2.0-OpenSSH\r\n".to_vec(), 1),
        (v2(0x11, 0x11, &V4_BODY), 13), // version 1 in the v2 byte
        (v2(0x31, 0x11, &V4_BODY), 13),
        (v2(0x22, 0x11, &V4_BODY), 13), // command 2
        (v2(0x2F, 0x11, &V4_BODY), 13),
        (v2(0x21, 0x13, &V4_BODY), 14), // unknown protocol nibble
        (v2(0x21, 0x41, &V4_BODY), 14), // unknown family nibble
        (v2(0x21, 0x01, &V4_BODY), 14),
        (v2(0x21, 0x10, &V4_BODY), 14),
        (v2_declaring(0x21, 0x11, 11, &V4_BODY), 16), // too short for IPv4
        (v2_declaring(0x21, 0x21, 35, &[0; 35]), 16), // too short for IPv6
        (v2_declaring(0x21, 0x12, 0, &[]), 16),
        (v2_declaring(0x21, 0x31, 215, &[0; 215]), 16),
        // TLVs: a header cut by the declared length, a value overrunning it.
        (v2(0x21, 0x11, &[&V4_BODY[..], &[0x04, 0x00]].concat()), 16),
        (v2(0x21, 0x11, &[&V4_BODY[..], &[0x04]].concat()), 16),
        (
            v2(
                0x21,
                0x11,
                &[&V4_BODY[..], &[0x04, 0x00, 0x02, 0xAA]].concat(),
            ),
            31,
        ),
        (
            v2(
                0x21,
                0x11,
                &[&V4_BODY[..], &[0x04, 0x00, 0x00, 0x01, 0xFF, 0xFF]].concat(),
            ),
            34,
        ),
    ];
    for (bytes, at) in cases {
        assert_eq!(invalid_at(&bytes), at, "{bytes:02x?}");
    }
}

// ---- encoders -------------------------------------------------------------------------

#[test]
fn encoders_round_trip_ipv4_ipv6_and_mixed() {
    let cases = [
        (
            "10.1.2.3:40000",
            "10.9.8.7:443",
            "10.1.2.3:40000",
            "10.9.8.7:443",
        ),
        (
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "0.0.0.0:0",
            "255.255.255.255:65535",
        ),
        (
            "[2001:db8::1]:1",
            "[fe80::1]:2",
            "[2001:db8::1]:1",
            "[fe80::1]:2",
        ),
        (
            "[::]:0",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            "[::]:0",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        ),
        // Mixed families: the IPv4 side travels IPv4-mapped.
        (
            "192.0.2.1:5000",
            "[2001:db8::2]:443",
            "[::ffff:192.0.2.1]:5000",
            "[2001:db8::2]:443",
        ),
        (
            "[2001:db8::1]:5000",
            "198.51.100.7:443",
            "[2001:db8::1]:5000",
            "[::ffff:198.51.100.7]:443",
        ),
    ];
    for (src, dst, want_src, want_dst) in cases {
        let want = tcp(want_src, want_dst);
        for (version, encoded) in [
            (1, encode_v1(sa(src), sa(dst))),
            (2, encode_v2(sa(src), sa(dst))),
        ] {
            let stream = [&encoded[..], b"DATA"].concat();
            let h = done(&stream);
            assert_eq!(
                h,
                Header {
                    version,
                    addrs: want,
                    len: encoded.len()
                },
                "{src} {dst} v{version}"
            );
            assert_eq!(&stream[h.len..], b"DATA");
        }
    }
}

#[test]
fn encoders_write_the_exact_bytes() {
    assert_eq!(
        encode_v1(sa("[::1]:40222"), sa("[::1]:9001")),
        b"PROXY TCP6 ::1 ::1 40222 9001\r\n"
    );
    assert_eq!(
        encode_v1(sa("1.2.3.4:5"), sa("[::2]:6")),
        b"PROXY TCP6 ::ffff:1.2.3.4 ::2 5 6\r\n"
    );
    assert_eq!(
        encode_v2(sa("10.0.0.1:1234"), sa("192.168.1.2:443")),
        v2(0x21, 0x11, &V4_BODY)
    );
    // Scope ids and flow labels are not part of the protocol.
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(Ipv6Addr::LOCALHOST, 7, 99, 3));
    assert_eq!(
        encode_v2(scoped, scoped),
        encode_v2(sa("[::1]:7"), sa("[::1]:7"))
    );
}

// ---- real senders ---------------------------------------------------------------------

/// Bytes haproxy 2.6.12 sent to a listener (`server … send-proxy`, `send-proxy-v2`,
/// `proxy-v2-options unique-id,crc32c,authority`, and `check-send-proxy` health checks),
/// each followed by what the client sent. The same files are in the fuzz corpus.
#[test]
fn haproxy_2_6_send_proxy_bytes() {
    let hello = |stream: &[u8], addrs: ProxiedAddrs, version: u8| {
        let h = done(stream);
        assert_eq!((h.version, h.addrs), (version, addrs));
        assert_eq!(&stream[h.len..], b"HELLO");
    };
    hello(
        b"PROXY TCP4 127.0.0.1 127.0.0.1 56382 9001\r\nHELLO",
        tcp("127.0.0.1:56382", "127.0.0.1:9001"),
        1,
    );
    hello(
        b"PROXY TCP6 ::1 ::1 40222 9001\r\nHELLO",
        tcp("[::1]:40222", "[::1]:9001"),
        1,
    );
    hello(
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01\xc9\x5a\x23\x2aHELLO",
        tcp("127.0.0.1:51546", "127.0.0.1:9002"),
        2,
    );
    hello(
        b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\
          \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\xb8\x2c\x23\x2aHELLO",
        tcp("[::1]:47148", "[::1]:9002"),
        2,
    );
}

/// haproxy puts CRC32C first and the unique id after it; the CRC is not verified (the
/// spec makes that optional for receivers), only skipped like any TLV.
#[test]
fn haproxy_2_6_v2_tlvs_crc32c_and_unique_id() {
    let v4 =
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x3f\x7f\x00\x00\x01\x7f\x00\x00\x01\xc4\x88\x23\x2b\
               \x03\x00\x04\x8a\x0a\x86\x52\
               \x05\x00\x297F000001:C488_7F000001:232B_6B0265F6_0004HELLO";
    let h = done(v4);
    assert_eq!(
        h,
        Header {
            version: 2,
            addrs: tcp("127.0.0.1:50312", "127.0.0.1:9003"),
            len: 79
        }
    );
    assert_eq!(&v4[h.len..], b"HELLO");
}

#[test]
fn haproxy_2_6_health_checks() {
    // send-proxy-v2 health check: LOCAL over UNSPEC, no addresses.
    assert_eq!(
        done(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"),
        Header {
            version: 2,
            addrs: ProxiedAddrs::Unknown,
            len: 16
        }
    );
    // send-proxy health check: a real TCP4 line (not UNKNOWN).
    assert_eq!(
        done(b"PROXY TCP4 127.0.0.1 127.0.0.1 48972 9105\r\n").addrs,
        tcp("127.0.0.1:48972", "127.0.0.1:9105")
    );
}

// ---- fuzz corpus ----------------------------------------------------------------------

/// Replays `fuzz/corpus/proxy_protocol` with the fuzz target's invariants.
#[test]
fn fuzz_corpus_replays_with_the_fuzz_invariants() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/proxy_protocol");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        check_invariants(&data);
        seen += 1;
    }
    assert!(seen >= 8, "corpus went missing: {seen} files");
}
