//! QUIC probe: opens a client's v1/v2 Initial packets with the keys every observer can
//! derive (RFC 9001 §5.2), reassembles the CRYPTO stream across coalesced packets and
//! datagrams, and reads SNI/ALPN from the ClientHello. No IO.
//!
//! What is enforced, and why (RFC 9000 section numbers):
//! - the first datagram is at least 1200 bytes (§14.1: clients MUST pad it; servers MUST
//!   drop smaller ones, so a smaller one is not a connection worth routing — and refusing it
//!   costs no crypto);
//! - its first packet is a long-header Initial of v1 or v2 with the fixed bit set (§17.2;
//!   RFC 9287's greased bit needs a token from an earlier connection and is not supported),
//!   a Destination Connection ID of 8 to 20 bytes (§7.2, §17.2) and a valid AEAD tag;
//! - Initial packets carry only PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE (§12.4),
//!   have zero reserved bits (§17.2) and at least one frame;
//! - the CRYPTO stream starts with a ClientHello that fits in [`MAX_PROBE_BYTES`].
//!
//! Later packets are read the way a server would: other packet types (0-RTT, Handshake) and
//! Initials for another connection ID are skipped, undecryptable Initials are dropped, and a
//! datagram's unparseable tail (short header, unknown version, junk) is ignored. Datagrams
//! are read in order and reading stops at the first decision, so more datagrams never change
//! a `Match` or `NoMatch`.
#![deny(clippy::indexing_slicing)]

#[path = "quic_crypto.rs"]
mod crypto;
#[cfg(test)]
#[path = "quic_tests.rs"]
mod tests;

use self::crypto::{ClientInitialKeys, Version};
use super::{Detected, MAX_PROBE_BYTES, MAX_PROBE_DATAGRAMS, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// RFC 9000 §14.1: the smallest UDP payload that may carry a client's Initial packet.
const MIN_INITIAL_DATAGRAM: usize = 1200;
/// RFC 9000 §7.2: a client's first Destination Connection ID is at least 8 random bytes.
const MIN_ORIGINAL_DCID: usize = 8;
/// RFC 9000 §17.2: v1 (and v2) connection IDs are at most 20 bytes.
const MAX_CID: usize = 20;
/// RFC 9001 §5.4.2: header protection samples 16 bytes, 4 bytes after the packet number
/// starts.
const SAMPLE_OFFSET: usize = 4;
/// AES-128-GCM tag length.
const TAG_LEN: usize = 16;

/// Probe a new UDP flow for a QUIC v1/v2 client Initial and read its ClientHello.
///
/// `Match` carries the ClientHello's SNI, ALPN and ECH flag; `NeedMore` while the
/// ClientHello is still incomplete (it may span datagrams); `NoMatch` for anything else,
/// and when [`MAX_PROBE_DATAGRAMS`] datagrams have not completed it.
///
/// # Examples
/// ```
/// use sluice::probe::{Probe, quic};
///
/// // Nothing yet: wait.
/// assert_eq!(quic::probe(&[]), Probe::NeedMore);
/// // A WireGuard handshake initiation is no QUIC Initial.
/// let mut wireguard = vec![1, 0, 0, 0];
/// wireguard.resize(148, 0);
/// assert_eq!(quic::probe(&[&wireguard]), Probe::NoMatch);
/// ```
pub fn probe(datagrams: &[&[u8]]) -> Probe {
    match client_hello(datagrams) {
        Ok(hello) => match super::tls::parse_client_hello(&hello) {
            Ok(info) => Probe::Match(Detected {
                protocol: Protocol::Quic,
                sni: info.sni,
                alpn: info.alpn,
                ech: info.ech,
            }),
            // The message is complete, so a truncation means a length inside it lied.
            Err(_) => Probe::NoMatch,
        },
        Err(Undecided::NeedMore) => Probe::NeedMore,
        Err(Undecided::NotQuic) => Probe::NoMatch,
    }
}

/// Why [`client_hello`] has no ClientHello to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Undecided {
    /// Could still become a complete ClientHello.
    NeedMore,
    /// Not a QUIC client Initial, or one whose ClientHello can never be read.
    NotQuic,
}

/// The ClientHello handshake message (type, length and body) from the CRYPTO stream of the
/// client's Initial packets in `datagrams`.
fn client_hello(datagrams: &[&[u8]]) -> Result<Vec<u8>, Undecided> {
    let Some(first) = datagrams.first() else {
        return Err(Undecided::NeedMore);
    };
    if first.len() < MIN_INITIAL_DATAGRAM {
        return Err(Undecided::NotQuic);
    }
    let header = LongHeader::parse(&mut Reader::new(first)).map_err(|_| Undecided::NotQuic)?;
    if header.kind != Kind::Initial || header.dcid.len() < MIN_ORIGINAL_DCID {
        return Err(Undecided::NotQuic);
    }
    let keys =
        ClientInitialKeys::new(header.version, header.dcid).map_err(|_| Undecided::NotQuic)?;
    let mut flow = Flow {
        version: header.version,
        dcid: header.dcid,
        opener: Opener {
            keys,
            largest_pn: None,
            scratch: Vec::with_capacity(first.len()),
        },
        stream: CryptoStream::default(),
    };
    for (index, datagram) in datagrams.iter().take(MAX_PROBE_DATAGRAMS).enumerate() {
        // Servers drop small datagrams carrying Initials (§14.1); so does the probe.
        if datagram.len() < MIN_INITIAL_DATAGRAM {
            continue;
        }
        if let Some(hello) = flow.read_datagram(datagram, index == 0)? {
            return Ok(hello);
        }
    }
    if datagrams.len() >= MAX_PROBE_DATAGRAMS {
        return Err(Undecided::NotQuic);
    }
    Err(Undecided::NeedMore)
}

/// What is known about the flow while reading its datagrams.
struct Flow<'a> {
    version: Version,
    /// The client's original Destination Connection ID, which the keys come from.
    dcid: &'a [u8],
    opener: Opener,
    stream: CryptoStream,
}

impl Flow<'_> {
    /// Read the packets coalesced in one datagram; `Some` once the ClientHello is complete.
    /// In the first datagram the first packet must be an Initial that opens.
    fn read_datagram(
        &mut self,
        datagram: &[u8],
        first: bool,
    ) -> Result<Option<Vec<u8>>, Undecided> {
        let mut r = Reader::new(datagram);
        let mut strict = first;
        while !r.is_empty() {
            let Ok(packet) = LongHeader::parse(&mut r) else {
                // A short header or junk: the rest of the datagram is not for the probe.
                return if strict {
                    Err(Undecided::NotQuic)
                } else {
                    Ok(None)
                };
            };
            let ours = packet.version == self.version
                && packet.kind == Kind::Initial
                && packet.dcid == self.dcid;
            if !ours {
                if strict {
                    return Err(Undecided::NotQuic);
                }
                continue;
            }
            let Ok(plain) = self.opener.open(&packet) else {
                if strict {
                    return Err(Undecided::NotQuic);
                }
                continue;
            };
            strict = false;
            let closed = read_frames(plain, &mut self.stream)?;
            if let Some(len) = self.stream.hello_len()? {
                return Ok(Some(self.stream.take_prefix(len)));
            }
            if closed {
                // CONNECTION_CLOSE: the client gave up before sending a whole ClientHello.
                return Err(Undecided::NotQuic);
            }
        }
        Ok(None)
    }
}

/// Opens the client's Initial packets.
struct Opener {
    keys: ClientInitialKeys,
    /// The largest packet number opened so far (RFC 9000 §17.1 decoding).
    largest_pn: Option<u64>,
    /// Room to unprotect one packet in.
    scratch: Vec<u8>,
}

impl Opener {
    /// Remove header protection from a packet of ours and decrypt it into `scratch`;
    /// returns the plaintext frames.
    fn open(&mut self, packet: &LongHeader<'_>) -> Result<&[u8], Undecided> {
        const BAD: Undecided = Undecided::NotQuic;
        let mut sample_at = Reader::new(packet.bytes);
        sample_at
            .take(packet.pn_offset + SAMPLE_OFFSET)
            .map_err(|_| BAD)?;
        let sample = sample_at.take_array::<16>().map_err(|_| BAD)?;
        let mask = self.keys.header_mask(&sample).map_err(|_| BAD)?;
        let [mask_first, mask_pn @ ..] = mask;

        self.scratch.clear();
        self.scratch.extend_from_slice(packet.bytes);
        let (first, _) = self.scratch.split_first_mut().ok_or(BAD)?;
        *first ^= mask_first & 0x0f;
        let first = *first;
        let pn_len = usize::from(first & 0x03) + 1;
        let (header, payload) = self
            .scratch
            .split_at_mut_checked(packet.pn_offset + pn_len)
            .ok_or(BAD)?;
        if payload.len() < TAG_LEN {
            return Err(BAD);
        }
        let mut truncated_pn = 0u64;
        for (byte, m) in header.iter_mut().skip(packet.pn_offset).zip(mask_pn) {
            *byte ^= m;
            truncated_pn = (truncated_pn << 8) | u64::from(*byte);
        }
        let pn = decode_packet_number(self.largest_pn, truncated_pn, pn_len);
        let plain = self.keys.open(pn, header, payload).map_err(|_| BAD)?;
        // Reserved bits must be zero once protection is off (§17.2).
        if first & 0x0c != 0 {
            return Err(BAD);
        }
        self.largest_pn = Some(self.largest_pn.map_or(pn, |largest| largest.max(pn)));
        Ok(plain)
    }
}

/// Long-header packet types, which v2 numbers differently (RFC 9369 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

impl Kind {
    fn from_bits(version: Version, bits: u8) -> Kind {
        match (version, bits & 0x03) {
            (Version::V1, 0) | (Version::V2, 1) => Kind::Initial,
            (Version::V1, 1) | (Version::V2, 2) => Kind::ZeroRtt,
            (Version::V1, 2) | (Version::V2, 3) => Kind::Handshake,
            _ => Kind::Retry,
        }
    }
}

/// One long-header packet, split at the (still protected) packet number.
struct LongHeader<'a> {
    version: Version,
    kind: Kind,
    dcid: &'a [u8],
    /// The whole packet: header, packet number and payload.
    bytes: &'a [u8],
    /// Where the packet number starts in `bytes`.
    pn_offset: usize,
}

impl<'a> LongHeader<'a> {
    /// Parse the next packet in a datagram and step `r` past it. Errors when it is not a
    /// long-header v1/v2 packet that can be delimited (short header, fixed bit clear,
    /// unknown version, Retry, lengths past the datagram's end).
    fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let start = *r;
        let first = r.u8()?;
        if first & 0x80 == 0 {
            return Err(WireError::Invalid("short header"));
        }
        if first & 0x40 == 0 {
            return Err(WireError::Invalid("fixed bit clear"));
        }
        let version = Version::from_wire(u32::from_be_bytes(r.take_array()?))
            .ok_or(WireError::Invalid("unknown QUIC version"))?;
        let dcid = cid(r)?;
        cid(r)?;
        let kind = Kind::from_bits(version, first >> 4);
        match kind {
            Kind::Initial => {
                let token_len = r.quic_varint()?;
                r.take(usize::try_from(token_len).map_err(|_| WireError::Truncated)?)?;
            }
            Kind::ZeroRtt | Kind::Handshake => {}
            Kind::Retry => return Err(WireError::Invalid("Retry from a client")),
        }
        let length = usize::try_from(r.quic_varint()?).map_err(|_| WireError::Truncated)?;
        let pn_offset = start.len() - r.len();
        let bytes = Reader::new(start.rest()).take(pn_offset.saturating_add(length))?;
        r.take(length)?;
        Ok(LongHeader {
            version,
            kind,
            dcid,
            bytes,
            pn_offset,
        })
    }
}

/// A length-prefixed connection ID of at most [`MAX_CID`] bytes.
fn cid<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let len = usize::from(r.u8()?);
    if len > MAX_CID {
        return Err(WireError::Invalid("connection ID over 20 bytes"));
    }
    r.take(len)
}

/// RFC 9000 Appendix A.3: the full packet number closest to the next expected one.
fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let bits = 8 * pn_len.clamp(1, 4);
    let window = 1u64 << bits;
    let half = window / 2;
    let candidate = (expected & !(window - 1)) | truncated;
    if candidate.saturating_add(half) <= expected && candidate < (1 << 62) - window {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// Read the frames of an opened Initial packet, adding CRYPTO data to `stream`. Returns
/// whether a CONNECTION_CLOSE ended the packet.
fn read_frames(plain: &[u8], stream: &mut CryptoStream) -> Result<bool, Undecided> {
    const BAD: Undecided = Undecided::NotQuic;
    if plain.is_empty() {
        return Err(BAD); // §12.4: a packet with no frames
    }
    let mut r = Reader::new(plain);
    while !r.is_empty() {
        // Every frame type allowed here is below 0x40, a one-byte varint; a longer
        // encoding is either another type or a non-minimal one (§12.4) — both refused.
        match r.u8().map_err(|_| BAD)? {
            0x00 => {
                r.take_while(|b| b == 0x00);
            }
            0x01 => {}
            ty @ (0x02 | 0x03) => skip_ack(&mut r, ty == 0x03).map_err(|_| BAD)?,
            0x06 => {
                let offset = r.quic_varint().map_err(|_| BAD)?;
                let len = r.quic_varint().map_err(|_| BAD)?;
                let data = r
                    .take(usize::try_from(len).map_err(|_| BAD)?)
                    .map_err(|_| BAD)?;
                stream.insert(offset, data)?;
            }
            0x1c => return Ok(true),
            _ => return Err(BAD),
        }
    }
    Ok(false)
}

/// Step over an ACK frame's fields after its type (§19.3).
fn skip_ack(r: &mut Reader<'_>, ecn: bool) -> Result<(), WireError> {
    let _largest = r.quic_varint()?;
    let _delay = r.quic_varint()?;
    let ranges = r.quic_varint()?;
    let _first_range = r.quic_varint()?;
    // Each range is at least two bytes, so a lying count runs out of payload quickly.
    for _ in 0..ranges {
        r.quic_varint()?;
        r.quic_varint()?;
    }
    if ecn {
        for _ in 0..3 {
            r.quic_varint()?;
        }
    }
    Ok(())
}

/// The client's Initial CRYPTO stream, reassembled by offset: frames may come out of order,
/// split, repeated, and spread over packets and datagrams.
#[derive(Default)]
struct CryptoStream {
    bytes: Vec<u8>,
    /// `received[i]`: byte `i` has arrived. A flag per byte (at most [`MAX_PROBE_BYTES`])
    /// keeps any pattern of overlapping pieces linear, where a range list would need a cap.
    received: Vec<bool>,
}

impl CryptoStream {
    /// Add one CRYPTO frame's data; a repeat overwrites what came before.
    fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), Undecided> {
        let start = usize::try_from(offset).map_err(|_| Undecided::NotQuic)?;
        let end = start.saturating_add(data.len());
        if end > MAX_PROBE_BYTES {
            return Err(Undecided::NotQuic);
        }
        if end > self.bytes.len() {
            self.bytes.resize(end, 0);
            self.received.resize(end, false);
        }
        let (Some(dst), Some(seen)) = (
            self.bytes.get_mut(start..end),
            self.received.get_mut(start..end),
        ) else {
            return Err(Undecided::NotQuic);
        };
        dst.copy_from_slice(data);
        seen.fill(true);
        Ok(())
    }

    /// The length of the ClientHello message once all of it has arrived.
    ///
    /// # Errors
    /// `NotQuic` when the stream does not start with a ClientHello, or it could not fit in
    /// [`MAX_PROBE_BYTES`].
    fn hello_len(&self) -> Result<Option<usize>, Undecided> {
        let contiguous = self.received.iter().take_while(|&&seen| seen).count();
        let mut r = Reader::new(self.bytes.get(..contiguous).unwrap_or_default());
        match r.u8() {
            Ok(0x01) => {}
            Ok(_) => return Err(Undecided::NotQuic),
            Err(_) => return Ok(None),
        }
        let Ok(body_len) = r.u24() else {
            return Ok(None);
        };
        let len = 4 + usize::try_from(body_len).map_err(|_| Undecided::NotQuic)?;
        if len > MAX_PROBE_BYTES {
            return Err(Undecided::NotQuic);
        }
        Ok((contiguous >= len).then_some(len))
    }

    /// The stream's first `len` bytes.
    fn take_prefix(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.truncate(len);
        bytes
    }
}
