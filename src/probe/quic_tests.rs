//! Tests of the QUIC probe: the RFC 9001/9369 Appendix A packets, real aioquic captures,
//! and packets sealed here to show reassembly, coalescing and every refusal.
//! `testdata/quic_capture.py` and `testdata/quic_rfc_vectors.py` regenerate the test data.
// Tests build packets by hand; a bad index is a broken test, not a reachable panic.
#![allow(clippy::indexing_slicing)]

use super::crypto::{ClientInitialKeys, Version};
use super::*;
use crate::probe::split_datagrams;

const RFC9001_A2: &str = include_str!("testdata/quic_rfc9001_client_initial.hex");
const RFC9369_A2: &str = include_str!("testdata/quic_rfc9369_client_initial.hex");
/// aioquic 1.7.2 client, SNI h3.example.com, ALPN h3; one Initial padded with zero bytes
/// after the packet (not PADDING frames) to 1200.
const AIOQUIC_H3: &[u8] = include_bytes!("testdata/quic_aioquic_h3.bin");
/// The same with `original_version=VERSION_2`.
const AIOQUIC_V2_H3: &[u8] = include_bytes!("testdata/quic_aioquic_v2_h3.bin");
/// The same with `quantum_readiness_test=True`: a 1679-byte ClientHello in two datagrams.
const AIOQUIC_PQ_H3: &[u8] = include_bytes!("testdata/quic_aioquic_pq_h3.bin");

/// The CRYPTO frame of RFC 9001 A.2 / RFC 9369 A.2 (a ClientHello for example.com).
const RFC_CRYPTO_FRAME: &str = "\
    060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868\
    04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578\
    616d706c652e636f6dff01000100000a00080006001d00170018001000070005\
    04616c706e000500050100000000003300260024001d00209370b2c9caa47fba\
    baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400\
    0d0010000e0403050306030203080408050806002d00020101001c0002400100\
    3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000\
    75300901100f088394c8f03e51570806048000ffff";
const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
const DCID: &[u8] = b"sluice-dcid-0001";

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn quic(sni: &str, alpn: &[&str]) -> Probe {
    Probe::Match(Detected {
        protocol: Protocol::Quic,
        sni: Some(sni.to_owned()),
        alpn: alpn.iter().map(|a| (*a).to_owned()).collect(),
        ech: false,
    })
}

/// The probe's answer after each datagram; checks that a decision never changes.
fn answers(datagrams: &[&[u8]]) -> Vec<Probe> {
    let answers: Vec<Probe> = (1..=datagrams.len())
        .map(|n| probe(&datagrams[..n]))
        .collect();
    if let Some(at) = answers.iter().position(|a| *a != Probe::NeedMore) {
        for later in &answers[at..] {
            assert_eq!(
                later, &answers[at],
                "a decision changed with more datagrams"
            );
        }
    }
    answers
}

fn varint(v: u64) -> Vec<u8> {
    match v {
        0..0x40 => vec![v as u8],
        0x40..0x4000 => ((v as u16) | 0x4000).to_be_bytes().to_vec(),
        0x4000..0x4000_0000 => ((v as u32) | 0x8000_0000).to_be_bytes().to_vec(),
        _ => (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec(),
    }
}

fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x06];
    frame.extend(varint(offset as u64));
    frame.extend(varint(data.len() as u64));
    frame.extend(data);
    frame
}

/// A client Initial (or other long-header packet) sealed with the real Initial keys.
#[derive(Clone)]
struct Sealed {
    version: Version,
    /// Long-header type bits, as on the wire for `version`.
    type_bits: u8,
    /// Set the reserved bits (must be zero).
    reserved: u8,
    dcid: Vec<u8>,
    token: Vec<u8>,
    pn: u64,
    pn_len: usize,
    frames: Vec<u8>,
    /// PADDING frames are added until the packet is this long.
    size: usize,
}

impl Sealed {
    fn initial(frames: &[u8]) -> Self {
        Sealed {
            version: Version::V1,
            type_bits: 0,
            reserved: 0,
            dcid: DCID.to_vec(),
            token: Vec::new(),
            pn: 0,
            pn_len: 4,
            frames: frames.to_vec(),
            size: 1200,
        }
    }

    fn v2(mut self) -> Self {
        self.version = Version::V2;
        self.type_bits = 1;
        self
    }

    fn pn(mut self, pn: u64) -> Self {
        self.pn = pn;
        self
    }

    fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    fn seal(&self) -> Vec<u8> {
        let keys = ClientInitialKeys::new(self.version, &self.dcid).unwrap();
        let wire: u32 = match self.version {
            Version::V1 => 1,
            Version::V2 => 0x6b33_43cf,
        };
        let mut header =
            vec![0xc0 | self.type_bits << 4 | self.reserved << 2 | (self.pn_len as u8 - 1)];
        header.extend(wire.to_be_bytes());
        header.push(self.dcid.len() as u8);
        header.extend(&self.dcid);
        header.push(0); // SCID
        if Kind::from_bits(self.version, self.type_bits) == Kind::Initial {
            header.extend(varint(self.token.len() as u64));
            header.extend(&self.token);
        }
        let fixed = header.len() + 2 + self.pn_len + TAG_LEN;
        let payload_len = self
            .frames
            .len()
            .max(self.size.saturating_sub(fixed))
            .max(20);
        let length = (self.pn_len + payload_len + TAG_LEN) as u16;
        header.extend((0x4000 | length).to_be_bytes());
        let pn_offset = header.len();
        header.extend(&self.pn.to_be_bytes()[8 - self.pn_len..]);
        let mut payload = self.frames.clone();
        payload.resize(payload_len, 0);
        keys.seal(self.pn, &header, &mut payload);
        let sample_at = SAMPLE_OFFSET - self.pn_len;
        let sample: [u8; 16] = payload[sample_at..sample_at + 16].try_into().unwrap();
        let mask = keys.header_mask(&sample).unwrap();
        header[0] ^= mask[0] & 0x0f;
        for i in 0..self.pn_len {
            header[pn_offset + i] ^= mask[1 + i];
        }
        header.extend(payload);
        header
    }
}

/// The reassembled ClientHello of a capture.
fn hello_of(datagrams: &[&[u8]]) -> Vec<u8> {
    client_hello(datagrams).expect("a complete ClientHello")
}

/// Bytes of a datagram made of `packets`, padded with zero bytes to 1200 like aioquic.
fn datagram(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut d = packets.concat();
    if d.len() < MIN_INITIAL_DATAGRAM {
        d.resize(MIN_INITIAL_DATAGRAM, 0);
    }
    d
}

// ---- RFC 9001 / RFC 9369 Appendix A ----

fn open_rfc_packet(packet_hex: &str) -> (u64, Vec<u8>) {
    let packet = hex(packet_hex);
    assert_eq!(packet.len(), 1200);
    let header = LongHeader::parse(&mut Reader::new(&packet)).unwrap();
    assert_eq!(header.kind, Kind::Initial);
    assert_eq!(header.dcid, RFC_DCID);
    assert_eq!(header.pn_offset, 18);
    let keys = ClientInitialKeys::new(header.version, header.dcid).unwrap();
    let mut opener = Opener {
        keys,
        largest_pn: None,
        scratch: Vec::new(),
    };
    let plain = opener.open(&header).unwrap().to_vec();
    (opener.largest_pn.unwrap(), plain)
}

#[test]
fn rfc9001_a2_client_initial_opens_to_its_crypto_frame() {
    let (pn, plain) = open_rfc_packet(RFC9001_A2);
    assert_eq!(pn, 2);
    assert_eq!(plain.len(), 1162);
    let frame = hex(RFC_CRYPTO_FRAME);
    assert_eq!(&plain[..frame.len()], &frame[..]);
    assert!(plain[frame.len()..].iter().all(|&b| b == 0), "then PADDING");
}

#[test]
fn rfc9369_a2_client_initial_opens_to_its_crypto_frame() {
    let (pn, plain) = open_rfc_packet(RFC9369_A2);
    assert_eq!(pn, 2);
    assert_eq!(plain.len(), 1162);
    let frame = hex(RFC_CRYPTO_FRAME);
    assert_eq!(&plain[..frame.len()], &frame[..]);
    assert!(plain[frame.len()..].iter().all(|&b| b == 0), "then PADDING");
}

#[test]
fn test_sealer_reproduces_the_rfc_packets() {
    let mut v1 = Sealed::initial(&hex(RFC_CRYPTO_FRAME)).pn(2);
    v1.dcid = RFC_DCID.to_vec();
    assert_eq!(v1.seal(), hex(RFC9001_A2));
    assert_eq!(v1.v2().seal(), hex(RFC9369_A2));
}

#[test]
fn rfc_client_initials_match_example_com() {
    for packet in [hex(RFC9001_A2), hex(RFC9369_A2)] {
        let hello = hello_of(&[&packet]);
        assert_eq!(hello.len(), 241);
        assert_eq!(hello[..4], [0x01, 0x00, 0x00, 0xed]);
        assert_eq!(answers(&[&packet]), [quic("example.com", &["alpn"])]);
    }
}

// ---- real clients ----

#[test]
fn aioquic_v1_initial_padded_with_zero_bytes_matches() {
    let datagrams = split_datagrams(AIOQUIC_H3);
    assert_eq!(datagrams.len(), 1);
    let hello = hello_of(&datagrams);
    assert_eq!((hello.first(), hello.len()), (Some(&0x01), 475));
    assert_eq!(answers(&datagrams), [quic("h3.example.com", &["h3"])]);
}

#[test]
fn aioquic_v2_initial_matches() {
    let datagrams = split_datagrams(AIOQUIC_V2_H3);
    let hello = hello_of(&datagrams);
    assert_eq!((hello.first(), hello.len()), (Some(&0x01), 475));
    assert_eq!(answers(&datagrams), [quic("h3.example.com", &["h3"])]);
}

#[test]
fn aioquic_post_quantum_hello_spans_two_datagrams() {
    let datagrams = split_datagrams(AIOQUIC_PQ_H3);
    assert_eq!(datagrams.len(), 2);
    let hello = hello_of(&datagrams);
    assert_eq!((hello.first(), hello.len()), (Some(&0x01), 1679));
    assert_eq!(
        answers(&datagrams),
        [Probe::NeedMore, quic("h3.example.com", &["h3"])]
    );
}

#[test]
fn retransmitted_first_datagram_is_harmless() {
    let d = split_datagrams(AIOQUIC_PQ_H3);
    assert_eq!(
        answers(&[d[0], d[0], d[1]]),
        [
            Probe::NeedMore,
            Probe::NeedMore,
            quic("h3.example.com", &["h3"])
        ]
    );
}

// ---- reassembly ----

/// The 1679-byte ClientHello of the aioquic post-quantum capture.
fn big_hello() -> Vec<u8> {
    hello_of(&split_datagrams(AIOQUIC_PQ_H3))
}

#[test]
fn chrome_like_out_of_order_crypto_frames_with_ping_and_padding() {
    let hello = big_hello();
    // Datagram 1: pieces from the middle before the start, PINGs and PADDING between.
    let frames1 = [
        vec![0x01],
        crypto(900, &hello[900..1300]),
        vec![0x00, 0x00, 0x00],
        crypto(0, &hello[..300]),
        vec![0x01],
        crypto(600, &hello[600..900]),
        crypto(250, &hello[250..350]), // overlaps what came before
    ]
    .concat();
    let d1 = Sealed::initial(&frames1).seal();
    // Datagram 2: two coalesced Initials.
    let p1 = Sealed::initial(&crypto(1300, &hello[1300..]))
        .pn(1)
        .size(0)
        .seal();
    let p2 = Sealed::initial(&crypto(300, &hello[300..600])).pn(2).seal();
    let d2 = datagram(&[p1, p2]);
    assert_eq!(hello_of(&[&d1, &d2]), hello);
    assert_eq!(
        answers(&[&d1, &d2]),
        [Probe::NeedMore, quic("h3.example.com", &["h3"])]
    );
}

#[test]
fn crypto_frames_in_reverse_order_across_three_datagrams() {
    let hello = big_hello();
    let d: Vec<Vec<u8>> = [(1100, hello.len(), 0), (500, 1100, 1), (0, 500, 2)]
        .iter()
        .map(|&(from, to, pn)| {
            Sealed::initial(&crypto(from, &hello[from..to]))
                .pn(pn)
                .seal()
        })
        .collect();
    assert_eq!(
        answers(&[&d[0], &d[1], &d[2]]),
        [
            Probe::NeedMore,
            Probe::NeedMore,
            quic("h3.example.com", &["h3"])
        ]
    );
}

#[test]
fn coalesced_0rtt_and_unknown_version_packets_are_skipped() {
    let hello = big_hello();
    let first = Sealed::initial(&crypto(0, &hello[..1000])).size(0).seal();
    // A 0-RTT packet (its payload cannot be opened with Initial keys, and is not).
    let mut zero_rtt = Sealed::initial(&[0x08; 40]).size(0);
    zero_rtt.type_bits = 1;
    let second = Sealed::initial(&crypto(1000, &hello[1000..]))
        .pn(1)
        .size(0)
        .seal();
    // A greased version after the ClientHello: unreadable, ignored to the datagram's end.
    let mut greased = vec![0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8];
    greased.extend(DCID.get(..8).unwrap());
    greased.extend([0; 40]);
    let d = datagram(&[first, zero_rtt.seal(), second, greased]);
    assert_eq!(answers(&[&d]), [quic("h3.example.com", &["h3"])]);
}

#[test]
fn initial_for_another_connection_id_is_skipped() {
    let hello = big_hello();
    let first = Sealed::initial(&crypto(0, &hello[..1000])).size(0).seal();
    let mut other = Sealed::initial(&crypto(0, &[0x02; 64])).size(0);
    other.dcid = b"another-dcid".to_vec();
    let second = Sealed::initial(&crypto(1000, &hello[1000..])).pn(1).seal();
    let d = datagram(&[first, other.seal(), second]);
    assert_eq!(answers(&[&d]), [quic("h3.example.com", &["h3"])]);
}

#[test]
fn ack_frames_are_skipped() {
    let hello = big_hello();
    let frames = [
        vec![0x02, 0x05, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00], // 2 ranges
        vec![0x03, 0x40, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03], // with ECN counts
        crypto(0, &hello[..1000]),
    ]
    .concat();
    let d1 = Sealed::initial(&frames).seal();
    let d2 = Sealed::initial(&crypto(1000, &hello[1000..])).pn(1).seal();
    assert_eq!(
        answers(&[&d1, &d2]),
        [Probe::NeedMore, quic("h3.example.com", &["h3"])]
    );
}

#[test]
fn token_and_one_byte_packet_numbers_are_read() {
    let mut p = Sealed::initial(&crypto(0, &hello_of(&split_datagrams(AIOQUIC_H3))));
    p.token = vec![0xab; 90];
    p.pn_len = 1;
    p.pn = 7;
    assert_eq!(answers(&[&p.seal()]), [quic("h3.example.com", &["h3"])]);
}

#[test]
fn undecryptable_later_initial_is_dropped_like_a_server_would() {
    let hello = big_hello();
    let d1 = Sealed::initial(&crypto(0, &hello[..1000])).seal();
    let mut bad = Sealed::initial(&crypto(1000, &hello[1000..])).pn(1).seal();
    *bad.last_mut().unwrap() ^= 1;
    let good = Sealed::initial(&crypto(1000, &hello[1000..])).pn(1).seal();
    assert_eq!(
        answers(&[&d1, &bad, &good]),
        [
            Probe::NeedMore,
            Probe::NeedMore,
            quic("h3.example.com", &["h3"])
        ]
    );
}

#[test]
fn later_junk_keeps_need_more_until_the_datagram_limit() {
    let d = split_datagrams(AIOQUIC_PQ_H3);
    let short_header = [0x40; 1300];
    let small = [0xc0; 100];
    let mut flow: Vec<&[u8]> = vec![d[0]];
    flow.extend(
        [&short_header[..], &small[..]]
            .iter()
            .cycle()
            .take(MAX_PROBE_DATAGRAMS - 2),
    );
    assert_eq!(probe(&flow), Probe::NeedMore);
    flow.push(&short_header);
    assert_eq!(flow.len(), MAX_PROBE_DATAGRAMS);
    assert_eq!(probe(&flow), Probe::NoMatch);
    flow.push(d[1]);
    assert_eq!(
        probe(&flow),
        Probe::NoMatch,
        "datagrams past the limit are not read"
    );
}

#[test]
fn small_later_datagram_is_ignored() {
    // The second Initial without the zero bytes after it: 576 bytes, which servers drop.
    let d = split_datagrams(AIOQUIC_PQ_H3);
    let unpadded = &d[1][..576];
    assert_eq!(
        answers(&[d[0], unpadded]),
        [Probe::NeedMore, Probe::NeedMore]
    );
    assert_eq!(
        probe(&[d[0], unpadded, d[1]]),
        quic("h3.example.com", &["h3"])
    );
}

#[test]
fn no_datagrams_yet_is_need_more() {
    assert_eq!(probe(&[]), Probe::NeedMore);
}

#[test]
fn packet_numbers_decode_as_in_rfc9000_a3() {
    assert_eq!(
        decode_packet_number(Some(0xa82f_30ea), 0x9b32, 2),
        0xa82f_9b32
    );
    assert_eq!(decode_packet_number(None, 2, 4), 2);
    assert_eq!(decode_packet_number(Some(0xff), 0x01, 1), 0x101);
    // Beyond the 2^62 packet number space: no overflow, whatever the answer.
    assert_eq!(decode_packet_number(Some(u64::MAX), 0, 1), u64::MAX - 0xff);
}

// ---- refusals ----

#[test]
fn every_truncation_of_the_first_datagram_is_no_match() {
    let packet = hex(RFC9001_A2);
    for cut in 0..packet.len() {
        assert_eq!(probe(&[&packet[..cut]]), Probe::NoMatch, "cut at {cut}");
        let mut padded = packet[..cut].to_vec();
        padded.resize(1200, 0);
        assert_eq!(
            probe(&[&padded]),
            Probe::NoMatch,
            "cut at {cut}, zero-padded"
        );
    }
}

#[test]
fn length_past_the_datagram_is_no_match() {
    let mut packet = hex(RFC9001_A2);
    packet[16..18].copy_from_slice(&[0x44, 0xff]);
    assert_eq!(probe(&[&packet]), Probe::NoMatch);
}

#[test]
fn corrupted_tag_ciphertext_or_dcid_is_no_match() {
    for at in [1199, 600, 22, 18, 10] {
        let mut packet = hex(RFC9001_A2);
        packet[at] ^= 0x01;
        assert_eq!(probe(&[&packet]), Probe::NoMatch, "byte {at}");
    }
}

#[test]
fn short_header_is_no_match() {
    let mut packet = hex(RFC9001_A2);
    packet[0] = 0x40 | (packet[0] & 0x0f);
    assert_eq!(probe(&[&packet]), Probe::NoMatch);
}

#[test]
fn wireguard_handshake_initiation_is_no_match() {
    let mut initiation = vec![0x01, 0, 0, 0];
    initiation.extend((0u8..144).map(|i| i.wrapping_mul(37)));
    assert_eq!(probe(&[&initiation]), Probe::NoMatch);
    initiation.resize(1200, 0);
    assert_eq!(
        probe(&[&initiation]),
        Probe::NoMatch,
        "even at Initial size"
    );
}

#[test]
fn unknown_versions_are_no_match() {
    for version in [0u32, 0xff00_001d, 0x1a2a_3a4a, 2] {
        let mut packet = hex(RFC9001_A2);
        packet[1..5].copy_from_slice(&version.to_be_bytes());
        assert_eq!(probe(&[&packet]), Probe::NoMatch, "version {version:#x}");
    }
}

#[test]
fn fixed_bit_clear_is_no_match() {
    let mut packet = hex(RFC9001_A2);
    packet[0] &= !0x40;
    assert_eq!(probe(&[&packet]), Probe::NoMatch);
}

#[test]
fn first_packet_not_an_initial_is_no_match() {
    let frames = crypto(0, &hello_of(&split_datagrams(AIOQUIC_H3)));
    // v1 0-RTT/Handshake/Retry type bits; and v1's Initial code under v2 (a v2 Retry) and
    // v2's Initial code under v1 (a v1 0-RTT).
    for (v2, bits) in [(false, 1), (false, 2), (false, 3), (true, 0), (true, 2)] {
        let mut p = Sealed::initial(&frames);
        if v2 {
            p = p.v2();
        }
        p.type_bits = bits;
        assert_eq!(probe(&[&p.seal()]), Probe::NoMatch, "v2 {v2} type {bits}");
    }
    assert_eq!(
        probe(&[&Sealed::initial(&frames).v2().seal()]),
        quic("h3.example.com", &["h3"])
    );
}

#[test]
fn original_dcid_shorter_than_8_or_longer_than_20_is_no_match() {
    let frames = crypto(0, &hello_of(&split_datagrams(AIOQUIC_H3)));
    for (len, ok) in [(0, false), (7, false), (8, true), (20, true), (21, false)] {
        let mut p = Sealed::initial(&frames);
        p.dcid = vec![0x5a; len];
        let expected = if ok {
            quic("h3.example.com", &["h3"])
        } else {
            Probe::NoMatch
        };
        assert_eq!(probe(&[&p.seal()]), expected, "DCID of {len} bytes");
    }
}

#[test]
fn first_datagram_under_1200_bytes_is_no_match() {
    let frames = crypto(0, &hello_of(&split_datagrams(AIOQUIC_H3)));
    assert_eq!(
        probe(&[&Sealed::initial(&frames).size(1199).seal()]),
        Probe::NoMatch
    );
    assert_eq!(
        probe(&[&Sealed::initial(&frames).size(1200).seal()]),
        quic("h3.example.com", &["h3"])
    );
}

#[test]
fn reserved_bits_set_is_no_match() {
    let mut p = Sealed::initial(&crypto(0, &hello_of(&split_datagrams(AIOQUIC_H3))));
    p.reserved = 0b10;
    assert_eq!(probe(&[&p.seal()]), Probe::NoMatch);
}

#[test]
fn frames_not_allowed_in_initial_are_no_match() {
    let hello = hello_of(&split_datagrams(AIOQUIC_H3));
    // STREAM, NEW_TOKEN, application CONNECTION_CLOSE, HANDSHAKE_DONE, and PADDING encoded
    // in two bytes.
    for frame in [
        &[0x08, 0x00, 0x01, 0xff][..],
        &[0x07, 0x01, 0xaa],
        &[0x1d, 0, 0],
        &[0x1e],
        &[0x40, 0x00],
    ] {
        let frames = [frame.to_vec(), crypto(0, &hello)].concat();
        assert_eq!(
            probe(&[&Sealed::initial(&frames).seal()]),
            Probe::NoMatch,
            "{frame:02x?}"
        );
    }
}

#[test]
fn truncated_frames_inside_a_packet_are_no_match() {
    let hello = hello_of(&split_datagrams(AIOQUIC_H3));
    for frame in [&[0x06, 0x00, 0x44, 0x00][..], &[0x02, 0x05, 0x00, 0xc0]] {
        // The frame runs to the end of the payload: no PADDING after it.
        let frames = [crypto(0, &hello), vec![0x00; 800], frame.to_vec()].concat();
        assert_eq!(
            probe(&[&Sealed::initial(&frames).size(0).seal()]),
            Probe::NoMatch
        );
    }
}

#[test]
fn connection_close_before_the_hello_completes_is_no_match() {
    let hello = big_hello();
    let close = [0x1c, 0x0a, 0x00, 0x00];
    let frames = [crypto(0, &hello[..1000]), close.to_vec()].concat();
    assert_eq!(probe(&[&Sealed::initial(&frames).seal()]), Probe::NoMatch);
    // After a whole ClientHello it changes nothing.
    let small = hello_of(&split_datagrams(AIOQUIC_H3));
    let frames = [crypto(0, &small), close.to_vec()].concat();
    assert_eq!(
        probe(&[&Sealed::initial(&frames).seal()]),
        quic("h3.example.com", &["h3"])
    );
}

#[test]
fn crypto_data_past_the_probe_limit_is_no_match() {
    let frames = crypto(MAX_PROBE_BYTES - 10, &[0x01; 20]);
    assert_eq!(probe(&[&Sealed::initial(&frames).seal()]), Probe::NoMatch);
    let huge_offset = [vec![0x06], varint((1 << 62) - 1), vec![0x01, 0x00]].concat();
    assert_eq!(
        probe(&[&Sealed::initial(&huge_offset).seal()]),
        Probe::NoMatch
    );
}

#[test]
fn client_hello_longer_than_the_probe_limit_is_no_match() {
    let frames = crypto(0, &[0x01, 0x00, 0x40, 0x00, 0x03, 0x03]);
    assert_eq!(probe(&[&Sealed::initial(&frames).seal()]), Probe::NoMatch);
}

#[test]
fn crypto_stream_not_starting_with_client_hello_is_no_match() {
    let frames = crypto(0, &[0x02, 0x00, 0x00, 0x02, 0x03, 0x03]);
    assert_eq!(probe(&[&Sealed::initial(&frames).seal()]), Probe::NoMatch);
}

#[test]
fn malformed_client_hello_is_no_match() {
    let frames = crypto(0, &[0x01, 0x00, 0x00, 0x02, 0x03, 0x03]);
    assert_eq!(probe(&[&Sealed::initial(&frames).seal()]), Probe::NoMatch);
}

/// libFuzzer cannot forge AEAD tags, so its mutations rarely reach the frame parser or the
/// reassembly; this seals random frame sequences (seeded, so failures reproduce) to cover
/// them: the ClientHello cut at random points and shuffled, with PING, PADDING and ACK
/// between, and now and then junk, a CONNECTION_CLOSE, an odd version or packet number.
/// No panic, and no decision changes with more datagrams.
#[test]
fn random_sealed_frames_never_panic_and_decide_once() {
    let hello = big_hello();
    let mut rng = fastrand::Rng::with_seed(0x5175_1ce0);
    let (mut matches, mut no_matches) = (0, 0);
    for _ in 0..1000 {
        let mut cuts: Vec<usize> = (0..rng.usize(1..8))
            .map(|_| rng.usize(..hello.len()))
            .collect();
        cuts.extend([0, hello.len()]);
        cuts.sort_unstable();
        let mut chunks: Vec<Vec<u8>> = cuts
            .windows(2)
            .map(|w| crypto(w[0], &hello[w[0]..w[1]]))
            .collect();
        rng.shuffle(&mut chunks);
        let v2 = rng.bool();
        let mut datagrams = Vec::new();
        let mut pn = 0;
        while !chunks.is_empty() && datagrams.len() < MAX_PROBE_DATAGRAMS {
            let mut packets = Vec::new();
            for _ in 0..rng.usize(1..=3) {
                let mut frames = Vec::new();
                for _ in 0..rng.usize(0..=2) {
                    if let Some(chunk) = chunks.pop() {
                        frames.extend(chunk);
                    }
                    frames.extend(random_frame(&mut rng));
                }
                let mut p = Sealed::initial(&frames).pn(pn).size(rng.usize(0..=1300));
                p.pn_len = rng.usize(1..=4);
                if v2 != (rng.u8(..) < 4) {
                    p = p.v2();
                }
                pn += rng.u64(0..3);
                packets.push(p.seal());
            }
            datagrams.push(datagram(&packets));
        }
        let refs: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        match answers(&refs).last() {
            Some(Probe::Match(_)) => matches += 1,
            Some(Probe::NoMatch) => no_matches += 1,
            _ => {}
        }
    }
    assert!(
        matches > 100 && no_matches > 100,
        "{matches} matches, {no_matches} refusals"
    );
}

fn random_frame(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..64) {
        0 => vec![0x1c, 0x00, 0x00, 0x00],
        1 => (0..rng.usize(1..8)).map(|_| rng.u8(..)).collect(),
        2..20 => vec![0x00; rng.usize(1..50)],
        20..40 => vec![0x01],
        40..60 => {
            let mut f = vec![0x02 | rng.u8(0..2)];
            let ranges = rng.u64(0..3);
            let fields = 4 + 2 * ranges + if f[0] == 0x03 { 3 } else { 0 };
            for i in 0..fields {
                let bits = rng.u32(0..=if i == 2 { 1 } else { 62 });
                f.extend(varint(if i == 2 { ranges } else { rng.u64(..1 << bits) }));
            }
            f
        }
        _ => Vec::new(),
    }
}
