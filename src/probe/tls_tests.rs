//! Tests of the TLS probe: ClientHellos captured from real clients (openssl s_client 3.0,
//! curl 7.88 with OpenSSL 3.0; see `testdata/`), and variants re-framed or edited from them.

use super::*;
use crate::probe::check_tcp_probe;

/// `openssl s_client -servername a.example.com -alpn h2,http/1.1`
const OPENSSL_SNI_ALPN: &[u8] = include_bytes!("testdata/tls_openssl_sni_alpn.bin");
/// `openssl s_client -noservername`
const OPENSSL_NO_SNI: &[u8] = include_bytes!("testdata/tls_openssl_no_sni.bin");
/// `openssl s_client -servername A.Example.COM.`
const OPENSSL_UPPER_DOT: &[u8] = include_bytes!("testdata/tls_openssl_upper_trailing_dot.bin");
/// `openssl s_client -servername 192.0.2.1`
const OPENSSL_IP_SNI: &[u8] = include_bytes!("testdata/tls_openssl_ip_sni.bin");
/// `openssl s_client -servername c.example.com -tls1_2`
const OPENSSL_TLS12: &[u8] = include_bytes!("testdata/tls_openssl_tls12.bin");
/// `curl https://b.example.com:PORT/ --resolve b.example.com:PORT:127.0.0.1`
const CURL: &[u8] = include_bytes!("testdata/tls_curl.bin");
/// The same with `--http1.1`.
const CURL_HTTP11: &[u8] = include_bytes!("testdata/tls_curl_http11.bin");
/// `curl https://127.0.0.1:PORT/`
const CURL_IP: &[u8] = include_bytes!("testdata/tls_curl_ip_no_sni.bin");

const CAPTURES: &[&[u8]] = &[
    OPENSSL_SNI_ALPN,
    OPENSSL_NO_SNI,
    OPENSSL_UPPER_DOT,
    OPENSSL_IP_SNI,
    OPENSSL_TLS12,
    CURL,
    CURL_HTTP11,
    CURL_IP,
];

/// The handshake message inside a capture that holds it in one record.
fn message(capture: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(capture);
    r.take(RECORD_HEADER_LEN).expect("record header");
    r.rest().to_vec()
}

/// Frame a handshake message into records (version 0x0301) whose fragments have the given
/// sizes; the last record takes what is left.
fn frame(msg: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = msg;
    for (i, &size) in sizes.iter().enumerate() {
        let size = if i + 1 == sizes.len() {
            rest.len()
        } else {
            size
        };
        let (fragment, tail) = rest.split_at(size);
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&u16::try_from(size).unwrap().to_be_bytes());
        out.extend_from_slice(fragment);
        rest = tail;
    }
    out
}

/// One record holding `msg`.
fn record(msg: &[u8]) -> Vec<u8> {
    frame(msg, &[msg.len()])
}

/// A ClientHello message split into the body before its extensions and its extensions.
fn split_extensions(msg: &[u8]) -> (Vec<u8>, Vec<(u16, Vec<u8>)>) {
    let mut r = Reader::new(msg);
    r.take(HANDSHAKE_HEADER_LEN).unwrap();
    let body = r.rest();
    r.take(2 + 32).unwrap();
    let sid = r.u8().unwrap();
    r.take(usize::from(sid)).unwrap();
    let cs = r.u16().unwrap();
    r.take(usize::from(cs)).unwrap();
    let cm = r.u8().unwrap();
    r.take(usize::from(cm)).unwrap();
    let head = body.get(..body.len() - r.len()).unwrap().to_vec();
    let ext_len = r.u16().unwrap();
    let mut exts = r.sub(usize::from(ext_len)).unwrap();
    let mut out = Vec::new();
    while !exts.is_empty() {
        let t = exts.u16().unwrap();
        let len = exts.u16().unwrap();
        out.push((t, exts.take(usize::from(len)).unwrap().to_vec()));
    }
    (head, out)
}

/// Re-encode a ClientHello message from its parts, fixing every length.
fn join_extensions(head: &[u8], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (t, data) in exts {
        block.extend_from_slice(&t.to_be_bytes());
        block.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        block.extend_from_slice(data);
    }
    let mut body = head.to_vec();
    body.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&block);
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
    msg.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

/// A captured hello with its extension list edited, re-framed in one record.
fn edited(capture: &[u8], edit: impl FnOnce(&mut Vec<(u16, Vec<u8>)>)) -> Vec<u8> {
    let (head, mut exts) = split_extensions(&message(capture));
    edit(&mut exts);
    record(&join_extensions(&head, &exts))
}

/// A server_name extension body naming `name` (host_name type).
fn sni_ext(name: &[u8]) -> Vec<u8> {
    let mut entry = vec![NAME_TYPE_HOST_NAME];
    entry.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
    entry.extend_from_slice(name);
    let mut out = u16::try_from(entry.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&entry);
    out
}

/// An ALPN extension body listing `names`.
fn alpn_ext(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for name in names {
        list.push(u8::try_from(name.len()).unwrap());
        list.extend_from_slice(name);
    }
    let mut out = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&list);
    out
}

fn set_ext(exts: &mut [(u16, Vec<u8>)], ext_type: u16, data: Vec<u8>) {
    let slot = exts
        .iter_mut()
        .find(|(t, _)| *t == ext_type)
        .expect("extension present");
    slot.1 = data;
}

fn matched(prefix: &[u8]) -> Detected {
    match probe(prefix) {
        Probe::Match(d) => d,
        other => panic!("expected a match, got {other:?}"),
    }
}

fn detected(sni: Option<&str>, alpn: &[&str], ech: bool) -> Detected {
    Detected {
        protocol: Protocol::Tls,
        sni: sni.map(str::to_owned),
        alpn: alpn.iter().map(|&s| s.to_owned()).collect(),
        ech,
    }
}

/// Feed `input` one byte more at a time, as a client trickling it would: every prefix short
/// of the whole must be `NeedMore`, and the whole must give `expected`.
fn assert_needs_every_byte(input: &[u8], expected: &Probe) {
    for n in 0..input.len() {
        assert_eq!(
            probe(&input[..n]),
            Probe::NeedMore,
            "prefix of {n}/{} bytes",
            input.len()
        );
    }
    assert_eq!(&probe(input), expected);
}

// --- Real clients ---------------------------------------------------------------------

#[test]
fn openssl_s_client_sends_sni_and_alpn_in_one_record() {
    assert_eq!(
        matched(OPENSSL_SNI_ALPN),
        detected(Some("a.example.com"), &["h2", "http/1.1"], false)
    );
}

#[test]
fn curl_pads_its_hello_to_512_bytes_and_offers_h2_then_http11() {
    // OpenSSL's padding extension (0x0015) brings curl's hello to 512 bytes, sidestepping
    // F5 middleboxes that choke on hellos of 256..511 bytes.
    assert_eq!(message(CURL).len(), 512);
    assert!(
        split_extensions(&message(CURL))
            .1
            .iter()
            .any(|(t, _)| *t == 0x0015)
    );
    assert_eq!(
        matched(CURL),
        detected(Some("b.example.com"), &["h2", "http/1.1"], false)
    );
}

#[test]
fn curl_http11_offers_only_http11() {
    assert_eq!(
        matched(CURL_HTTP11),
        detected(Some("b.example.com"), &["http/1.1"], false)
    );
}

#[test]
fn curl_omits_sni_when_connecting_to_an_ip_literal() {
    assert_eq!(matched(CURL_IP), detected(None, &["h2", "http/1.1"], false));
}

#[test]
fn openssl_sends_an_ip_literal_as_sni_and_it_is_passed_through() {
    // RFC 6066 forbids it, but openssl sends whatever -servername says; routing decides.
    assert_eq!(
        matched(OPENSSL_IP_SNI),
        detected(Some("192.0.2.1"), &[], false)
    );
}

#[test]
fn openssl_noservername_sends_neither_sni_nor_alpn() {
    assert_eq!(matched(OPENSSL_NO_SNI), detected(None, &[], false));
}

#[test]
fn openssl_sends_uppercase_and_trailing_dot_verbatim_and_we_normalize() {
    let (_, exts) = split_extensions(&message(OPENSSL_UPPER_DOT));
    assert_eq!(
        exts.first(),
        Some(&(EXT_SERVER_NAME, sni_ext(b"A.Example.COM.")))
    );
    assert_eq!(
        matched(OPENSSL_UPPER_DOT),
        detected(Some("a.example.com"), &[], false)
    );
}

#[test]
fn openssl_tls12_hello_has_no_supported_versions_extension() {
    let (_, exts) = split_extensions(&message(OPENSSL_TLS12));
    assert!(!exts.iter().any(|(t, _)| *t == 0x002b));
    assert_eq!(
        matched(OPENSSL_TLS12),
        detected(Some("c.example.com"), &[], false)
    );
}

#[test]
fn every_capture_keeps_the_probe_invariants_and_parses_as_a_message() {
    for capture in CAPTURES {
        check_tcp_probe(Protocol::Tls, probe, capture);
        let msg = message(capture);
        let Probe::Match(d) = probe(capture) else {
            panic!("no match")
        };
        let hello = parse_client_hello(&msg).unwrap();
        assert_eq!((hello.sni, hello.alpn, hello.ech), (d.sni, d.alpn, d.ech));
    }
}

// --- Segmentation and record framing --------------------------------------------------

#[test]
fn every_prefix_of_a_captured_hello_needs_more() {
    for capture in CAPTURES {
        assert_needs_every_byte(capture, &probe(capture));
    }
}

#[test]
fn hello_split_over_three_records_is_reassembled() {
    let split = frame(&message(OPENSSL_SNI_ALPN), &[100, 100, 0]);
    assert_eq!(split.len(), OPENSSL_SNI_ALPN.len() + 2 * RECORD_HEADER_LEN);
    let expected = Probe::Match(detected(Some("a.example.com"), &["h2", "http/1.1"], false));
    assert_needs_every_byte(&split, &expected);
    check_tcp_probe(Protocol::Tls, probe, &split);
}

#[test]
fn handshake_header_itself_split_across_records() {
    // One byte of type, then two of the length, then the rest.
    let split = frame(&message(CURL), &[1, 2, 0]);
    assert_needs_every_byte(&split, &Probe::Match(matched(CURL)));
}

#[test]
fn bytes_after_the_hello_such_as_early_data_are_ignored() {
    let mut input = CURL.to_vec();
    input.extend_from_slice(&[23, 3, 3, 0, 2, 0xaa, 0xbb]);
    assert_eq!(probe(&input), probe(CURL));
}

#[test]
fn hello_must_end_with_its_record() {
    // Record length one longer than the hello: decided on the header, before the extra byte.
    let mut input = OPENSSL_SNI_ALPN.to_vec();
    let len = u16::try_from(input.len() - RECORD_HEADER_LEN + 1).unwrap();
    input.splice(3..5, len.to_be_bytes());
    assert_eq!(
        probe(&input[..RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN]),
        Probe::NoMatch
    );
    input.push(0);
    assert_eq!(probe(&input), Probe::NoMatch);
    // Nor may a later record run past it.
    let msg = message(OPENSSL_SNI_ALPN);
    let mut input = frame(&msg, &[10, 0]);
    let last_len = u16::try_from(msg.len() - 10 + 1).unwrap();
    let at = RECORD_HEADER_LEN + 10 + 3;
    input.splice(at..at + 2, last_len.to_be_bytes());
    assert_eq!(probe(&input[..at + 2]), Probe::NoMatch);
}

#[test]
fn first_byte_decides_what_is_not_tls() {
    for first in [&b"G"[..], b"S", b"\x80", b"\x17", b"\x15", b"\x14", b"\x00"] {
        assert_eq!(probe(first), Probe::NoMatch, "{first:?}");
    }
    assert_eq!(probe(&[CONTENT_HANDSHAKE]), Probe::NeedMore);
    assert_eq!(probe(&[]), Probe::NeedMore);
}

#[test]
fn sslv2_compatible_hello_is_not_matched() {
    // SSLv2 record header (high bit + 2-byte length), msg_type 1, version 3.1.
    let v2 = [
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    assert_eq!(probe(&v2), Probe::NoMatch);
}

#[test]
fn record_versions_from_ssl3_to_tls13_are_accepted() {
    let msg = message(OPENSSL_SNI_ALPN);
    for (version, accepted) in [
        ([3, 0], true),
        ([3, 1], true),
        ([3, 3], true),
        ([3, 4], true),
        ([3, 5], false),
        ([2, 0], false),
        ([0xfe, 0xfd], false), // DTLS 1.2
    ] {
        let mut input = record(&msg);
        input.splice(1..3, version);
        assert_eq!(
            matches!(probe(&input), Probe::Match(_)),
            accepted,
            "{version:?}"
        );
        // Decided by the version bytes alone when rejected.
        if !accepted {
            assert_eq!(probe(&input[..3]), Probe::NoMatch);
        }
    }
}

#[test]
fn zero_length_and_oversized_records_are_rejected() {
    assert_eq!(probe(&[22, 3, 1, 0, 0]), Probe::NoMatch);
    let too_long = u16::try_from(MAX_RECORD_LEN + 1).unwrap().to_be_bytes();
    assert_eq!(probe(&[22, 3, 1, too_long[0], too_long[1]]), Probe::NoMatch);
}

#[test]
fn non_handshake_record_before_the_hello_is_complete_is_rejected() {
    let msg = message(CURL);
    let mut input = frame(&msg, &[50, 0]);
    input.truncate(RECORD_HEADER_LEN + 50);
    assert_eq!(probe(&input), Probe::NeedMore);
    input.extend_from_slice(&[21, 3, 3, 0, 2, 1, 0]); // an alert
    assert_eq!(probe(&input), Probe::NoMatch);
}

#[test]
fn handshake_message_other_than_client_hello_is_rejected() {
    let mut msg = message(CURL);
    msg[0] = 2; // ServerHello
    assert_eq!(
        probe(&record(&msg)[..RECORD_HEADER_LEN + 1]),
        Probe::NoMatch
    );
    assert!(matches!(
        parse_client_hello(&msg),
        Err(WireError::Invalid(_))
    ));
}

#[test]
fn lying_lengths_never_panic_and_never_reverse_a_decision() {
    // Flip each length byte of the record and handshake headers, and each byte of the hello.
    for capture in [CURL, OPENSSL_SNI_ALPN, OPENSSL_TLS12] {
        let split = frame(&message(capture), &[7, 90, 0]);
        for input in [capture.to_vec(), split] {
            for at in 0..input.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = input.clone();
                    bad[at] ^= flip;
                    check_tcp_probe(Protocol::Tls, probe, &bad);
                    let _ = parse_client_hello(bad.get(RECORD_HEADER_LEN..).unwrap());
                }
            }
        }
    }
}

#[test]
fn length_fields_that_lie_give_no_match_or_need_more() {
    let input = OPENSSL_SNI_ALPN.to_vec();
    // Handshake length one longer than the record: the hello would need another record.
    let mut longer = input.clone();
    longer[8] += 1;
    assert_eq!(probe(&longer), Probe::NeedMore);
    // One shorter: the record runs past the hello.
    let mut shorter = input.clone();
    shorter[8] -= 1;
    assert_eq!(probe(&shorter), Probe::NoMatch);
    // Cipher suites length running past the message.
    let mut suites = input.clone();
    let at = RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + 2 + 32 + 1 + 32;
    suites[at] = 0xff;
    assert_eq!(probe(&suites), Probe::NoMatch);
    // Extensions block one byte short of the message end.
    let (head, exts) = split_extensions(&message(OPENSSL_SNI_ALPN));
    let mut msg = join_extensions(&head, &exts);
    let ext_len_at = HANDSHAKE_HEADER_LEN + head.len();
    msg[ext_len_at + 1] -= 1;
    assert_eq!(
        parse_client_hello(&msg),
        Err(WireError::Invalid("bytes after the extensions"))
    );
    assert_eq!(probe(&record(&msg)), Probe::NoMatch);
}

// --- Extensions -----------------------------------------------------------------------

#[test]
fn ech_extension_appended_to_a_real_hello_is_reported() {
    let input = edited(CURL, |exts| {
        exts.push((EXT_ENCRYPTED_CLIENT_HELLO, vec![1, 0, 1]))
    });
    assert_eq!(
        matched(&input),
        detected(Some("b.example.com"), &["h2", "http/1.1"], true)
    );
}

#[test]
fn duplicate_extension_is_rejected() {
    let input = edited(OPENSSL_SNI_ALPN, |exts| {
        exts.push((EXT_ALPN, alpn_ext(&[b"h2"])))
    });
    assert_eq!(probe(&input), Probe::NoMatch);
    let input = edited(CURL, |exts| exts.push((0x0015, Vec::new())));
    assert_eq!(probe(&input), Probe::NoMatch, "a second padding extension");
}

#[test]
fn uppercase_sni_is_lower_cased_and_one_trailing_dot_dropped() {
    let input = edited(CURL, |exts| {
        set_ext(exts, EXT_SERVER_NAME, sni_ext(b"WWW.Example.ORG."))
    });
    assert_eq!(matched(&input).sni.as_deref(), Some("www.example.org"));
    let input = edited(CURL, |exts| set_ext(exts, EXT_SERVER_NAME, sni_ext(b"a..")));
    assert_eq!(matched(&input).sni.as_deref(), Some("a."));
}

#[test]
fn sni_that_cannot_be_a_host_name_is_rejected() {
    let long = vec![b'a'; MAX_HOST_NAME_LEN + 1];
    for name in [
        &b""[..],
        b".",
        b"a\0.example.com",
        b"a b",
        b"caf\xc3\xa9.example",
        b"a\x7f",
        &long,
    ] {
        let input = edited(CURL, |exts| set_ext(exts, EXT_SERVER_NAME, sni_ext(name)));
        assert_eq!(probe(&input), Probe::NoMatch, "{name:?}");
    }
    let longest = vec![b'a'; MAX_HOST_NAME_LEN];
    let input = edited(CURL, |exts| {
        set_ext(exts, EXT_SERVER_NAME, sni_ext(&longest))
    });
    assert!(matches!(probe(&input), Probe::Match(_)));
}

#[test]
fn server_name_list_shape_is_checked() {
    let empty_list = vec![0, 0];
    let mut two_hosts = sni_ext(b"a.example");
    two_hosts.extend_from_slice(&sni_ext(b"b.example")[2..]);
    two_hosts.splice(
        0..2,
        u16::try_from(two_hosts.len() - 2).unwrap().to_be_bytes(),
    );
    let mut trailing = sni_ext(b"a.example");
    trailing.push(0);
    for data in [empty_list, two_hosts, trailing] {
        let input = edited(CURL, |exts| set_ext(exts, EXT_SERVER_NAME, data.clone()));
        assert_eq!(probe(&input), Probe::NoMatch, "{data:?}");
    }
    // An unknown name type is skipped; the host_name after it still counts.
    let mut other_type = vec![0, 0, 7, 0, 1, b'x'];
    other_type.extend_from_slice(&sni_ext(b"a.example")[2..]);
    other_type.splice(
        0..2,
        u16::try_from(other_type.len() - 2).unwrap().to_be_bytes(),
    );
    let input = edited(CURL, |exts| set_ext(exts, EXT_SERVER_NAME, other_type));
    assert_eq!(matched(&input).sni.as_deref(), Some("a.example"));
}

#[test]
fn alpn_names_that_are_not_utf8_are_skipped() {
    let data = alpn_ext(&[b"h2", b"\xff\xfe", b"http/1.1"]);
    let input = edited(CURL, |exts| set_ext(exts, EXT_ALPN, data));
    assert_eq!(matched(&input).alpn, ["h2", "http/1.1"]);
}

#[test]
fn empty_alpn_list_or_name_is_rejected() {
    for data in [vec![0, 0], alpn_ext(&[b"h2", b""])] {
        let input = edited(CURL, |exts| set_ext(exts, EXT_ALPN, data.clone()));
        assert_eq!(probe(&input), Probe::NoMatch, "{data:?}");
    }
}

#[test]
fn hello_without_extensions_is_legal_before_tls13() {
    let (head, _) = split_extensions(&message(OPENSSL_TLS12));
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
    msg.extend_from_slice(&u32::try_from(head.len()).unwrap().to_be_bytes()[1..]);
    msg.extend_from_slice(&head);
    assert_eq!(matched(&record(&msg)), detected(None, &[], false));
}

// --- Size -----------------------------------------------------------------------------

/// A post-quantum hello as Chrome and Firefox now send: an X25519MLKEM768 key share (group
/// 0x11ec, 1184 + 32 bytes) before the X25519 one. Built from the openssl capture because
/// the OpenSSL 3.0 here cannot send one.
fn post_quantum_hello() -> Vec<u8> {
    edited(OPENSSL_SNI_ALPN, |exts| {
        let mut shares = vec![0x11, 0xec, 0x04, 0xc0];
        shares.extend(std::iter::repeat_n(0x5a, 1184 + 32));
        shares.extend_from_slice(&[0x00, 0x1d, 0x00, 0x20]);
        shares.extend(std::iter::repeat_n(0xa5, 32));
        let mut data = u16::try_from(shares.len()).unwrap().to_be_bytes().to_vec();
        data.extend_from_slice(&shares);
        set_ext(exts, 0x0033, data);
    })
}

#[test]
fn post_quantum_hello_spans_two_tcp_segments() {
    let input = post_quantum_hello();
    assert!(input.len() > 1500, "{}", input.len());
    let expected = Probe::Match(detected(Some("a.example.com"), &["h2", "http/1.1"], false));
    // Typical MSS on Ethernet: the first segment leaves the hello incomplete.
    assert_eq!(probe(&input[..1448]), Probe::NeedMore);
    assert_needs_every_byte(&input, &expected);
    check_tcp_probe(Protocol::Tls, probe, &input);
}

#[test]
fn hello_larger_than_the_probe_limit_is_rejected_on_its_header() {
    // Padding that makes the hello itself bigger than what a probe may hold.
    let input = edited(CURL, |exts| {
        set_ext(exts, 0x0015, vec![0; MAX_PROBE_BYTES]);
    });
    let msg = message(&input);
    let framed = frame(&msg, &[1 << 14, 0]);
    assert_eq!(
        probe(&framed[..RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN]),
        Probe::NoMatch
    );
    assert_eq!(
        parse_client_hello(&msg).map(|h| h.sni),
        Ok(Some("b.example.com".into()))
    );
}

#[test]
fn many_small_records_past_the_probe_limit_are_rejected() {
    // A hello that fits, framed one byte per record: six bytes on the wire per byte.
    let input = edited(CURL, |exts| set_ext(exts, 0x0015, vec![0; 3000]));
    let msg = message(&input);
    let framed = frame(&msg, &vec![1; msg.len()]);
    assert!(framed.len() > MAX_PROBE_BYTES);
    assert_eq!(probe(&framed), Probe::NoMatch);
    assert_eq!(probe(&framed[..MAX_PROBE_BYTES + 1]), Probe::NoMatch);
    assert_eq!(probe(&framed[..MAX_PROBE_BYTES - 10]), Probe::NeedMore);
}

// --- parse_client_hello on its own (as QUIC uses it) --------------------------------------

#[test]
fn parse_client_hello_says_truncated_until_the_whole_message_is_there() {
    let msg = message(CURL);
    for n in 0..msg.len() {
        assert_eq!(
            parse_client_hello(&msg[..n]),
            Err(WireError::Truncated),
            "{n}"
        );
    }
    let mut with_trailing = msg.clone();
    with_trailing.extend_from_slice(b"next frame");
    assert_eq!(parse_client_hello(&with_trailing), parse_client_hello(&msg));
}

#[test]
fn parse_client_hello_rejects_impossible_lengths_on_the_header() {
    assert!(matches!(
        parse_client_hello(&[1, 0, 0, 40]),
        Err(WireError::Invalid(_))
    ));
    assert!(matches!(
        parse_client_hello(&[1, 0xff, 0xff, 0xff]),
        Err(WireError::Invalid(_))
    ));
    assert_eq!(
        parse_client_hello(&[1, 0, 0, 41]),
        Err(WireError::Truncated)
    );
}
