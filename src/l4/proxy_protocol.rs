//! The PROXY protocol (haproxy's `proxy-protocol.txt`, v1 text and v2 binary): parse the
//! header a trusted load balancer puts in front of a TCP stream, and encode one for a
//! target. Sans-IO: bytes in, a verdict out; the TCP driver reads, waits and strips.
#![deny(clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::{Reader, WireError};

/// Longest header we accept: the spec sizes both formats to fit the smallest TCP segment
/// every host must take (576 − 40 = 536 bytes), so a sender can always emit it at once.
pub const MAX_HEADER: usize = 536;
/// Longest v1 line including CRLF (spec: `PROXY UNKNOWN` with two full-length IPv6
/// addresses and two 5-digit ports); no CRLF by then means the line is invalid.
pub const V1_MAX_LINE: usize = 107;
/// v2 signature (12) + version/command + family/protocol + u16 length.
const V2_FIXED: usize = 16;
/// v2 address block plus TLVs that still fits in [`MAX_HEADER`].
const V2_MAX_BODY: usize = MAX_HEADER - V2_FIXED;
/// The v2 signature; its `\0` and CRLFs make it invalid in every common text protocol.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v1 starts with this (`PROXY` and exactly one space).
const V1_PREAMBLE: &[u8] = b"PROXY ";
/// A v2 TLV's type byte and u16 length.
const TLV_HEAD: usize = 3;
/// Longest IPv4 text: `255.255.255.255`.
const V4_TEXT_MAX: usize = 15;
/// Longest IPv6 text (INET6_ADDRSTRLEN − 1): six groups and an embedded IPv4 address.
const V6_TEXT_MAX: usize = 45;
/// Longest port text: `65535`.
const PORT_TEXT_MAX: usize = 5;

/// v2 version/command byte: version 2 in the high nibble.
const V2_VERSION: u8 = 0x2;
const V2_CMD_LOCAL: u8 = 0x0;
const V2_CMD_PROXY: u8 = 0x1;
/// v2 family/protocol bytes (high nibble family, low nibble transport).
const V2_UNSPEC: u8 = 0x00;
const V2_TCP4: u8 = 0x11;
const V2_UDP4: u8 = 0x12;
const V2_TCP6: u8 = 0x21;
const V2_UDP6: u8 = 0x22;
const V2_UNIX_STREAM: u8 = 0x31;
const V2_UNIX_DGRAM: u8 = 0x32;
/// Address block sizes: 2×4 + 2×2, 2×16 + 2×2, 2×108.
const V2_ADDR_LEN_INET: usize = 12;
const V2_ADDR_LEN_INET6: usize = 36;
const V2_ADDR_LEN_UNIX: usize = 216;

/// Addresses a PROXY header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxiedAddrs {
    /// A proxied TCP connection: the original client (`src`) and the address it reached
    /// (`dst`). Both are always of the same family.
    Tcp { src: SocketAddr, dst: SocketAddr },
    /// v1 `UNKNOWN`, v2 `LOCAL`, or a v2 family other than TCP: keep the real peer.
    Unknown,
}

/// A complete, valid PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    pub addrs: ProxiedAddrs,
    /// Bytes the header occupies at the start of the stream: strip exactly these.
    pub len: usize,
}

/// What [`parse`] made of the bytes so far.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    Done(Header),
    /// Every byte so far fits a valid header: read more (the driver owns the deadline).
    NeedMore,
    /// No continuation can make this a valid header: close the connection.
    Invalid(&'static str),
}

/// Parses the PROXY header (v1 or v2) at the start of a TCP stream.
///
/// Decisions are final: once a prefix is `Done` or `Invalid`, more bytes never change the
/// answer, and a client that is not sending a PROXY header is rejected at the first byte
/// that leaves both formats (usually the first or second).
///
/// # Examples
/// ```
/// use sluice::l4::proxy_protocol::{parse, Parse, ProxiedAddrs};
/// let stream = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
/// let Parse::Done(h) = parse(stream) else { panic!() };
/// assert_eq!(&stream[h.len..], b"GET / HTTP/1.1\r\n");
/// let ProxiedAddrs::Tcp { src, .. } = h.addrs else { panic!() };
/// assert_eq!(src, "192.168.0.1:56324".parse().unwrap());
/// assert_eq!(parse(b"PROXY TC"), Parse::NeedMore);
/// assert!(matches!(parse(b"GET /"), Parse::Invalid(_)));
/// ```
pub fn parse(prefix: &[u8]) -> Parse {
    let parsed = match prefix.first() {
        None => Err(WireError::Truncated),
        Some(b'P') => parse_v1(prefix),
        Some(b'\r') => parse_v2(prefix),
        Some(_) => Err(WireError::Invalid("not a PROXY header")),
    };
    match parsed {
        Ok(header) => Parse::Done(header),
        Err(WireError::Truncated) => Parse::NeedMore,
        Err(WireError::Invalid(why)) => Parse::Invalid(why),
    }
}

/// Encodes a v1 line (`PROXY TCP4 …\r\n`). The spec wants both addresses of one family, so
/// when exactly one is IPv6 the IPv4 one is written IPv4-mapped (`::ffff:a.b.c.d`).
///
/// # Examples
/// ```
/// let line = sluice::l4::proxy_protocol::encode_v1(
///     "192.168.0.1:56324".parse().unwrap(),
///     "192.168.0.11:443".parse().unwrap(),
/// );
/// assert_eq!(line, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
/// ```
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src_ip, dst_ip) = same_family(src.ip(), dst.ip());
    let proto = if src_ip.is_ipv4() { "TCP4" } else { "TCP6" };
    // Display never writes more than 39 characters for IPv6, so this stays ≤ 104 bytes.
    format!(
        "PROXY {proto} {src_ip} {dst_ip} {} {}\r\n",
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// Encodes a v2 header: command PROXY, TCP over IPv4 or IPv6 (mixed families are sent as
/// IPv6 with the IPv4 address mapped), no TLVs.
///
/// # Examples
/// ```
/// let h = sluice::l4::proxy_protocol::encode_v2(
///     "10.0.0.1:1000".parse().unwrap(),
///     "10.0.0.2:443".parse().unwrap(),
/// );
/// assert_eq!(h.len(), 16 + 12);
/// ```
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src_ip, dst_ip) = same_family(src.ip(), dst.ip());
    let mut out = Vec::with_capacity(V2_FIXED + V2_ADDR_LEN_INET6);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push((V2_VERSION << 4) | V2_CMD_PROXY);
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(V2_TCP4);
            out.extend_from_slice(&(V2_ADDR_LEN_INET as u16).to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(V2_TCP6);
            out.extend_from_slice(&(V2_ADDR_LEN_INET6 as u16).to_be_bytes());
            out.extend_from_slice(&to_v6(s).octets());
            out.extend_from_slice(&to_v6(d).octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

/// Both addresses in one family: IPv4 becomes IPv4-mapped IPv6 when the other is IPv6.
fn same_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    match (a, b) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (a, b),
        _ => (IpAddr::V6(to_v6(a)), IpAddr::V6(to_v6(b))),
    }
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

// ---- v1 ------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum V1Proto {
    Tcp4,
    Tcp6,
    Unknown,
}

fn parse_v1(prefix: &[u8]) -> Result<Header, WireError> {
    // Only the first V1_MAX_LINE bytes can belong to the line.
    let window = Reader::new(prefix).take(prefix.len().min(V1_MAX_LINE))?;
    let mut r = Reader::new(window);
    match v1_line(&mut r) {
        Ok(addrs) => Ok(Header {
            version: 1,
            addrs,
            len: window.len() - r.len(),
        }),
        Err(WireError::Truncated) if prefix.len() >= V1_MAX_LINE => {
            Err(WireError::Invalid("v1: no CRLF within 107 bytes"))
        }
        Err(e) => Err(e),
    }
}

fn v1_line(r: &mut Reader<'_>) -> Result<ProxiedAddrs, WireError> {
    r.expect(V1_PREAMBLE, "v1: not `PROXY `")?;
    let proto = one_of(
        r,
        &[
            (b"TCP4 ", V1Proto::Tcp4),
            (b"TCP6 ", V1Proto::Tcp6),
            (b"UNKNOWN", V1Proto::Unknown),
        ],
        "v1: protocol is not TCP4, TCP6 or UNKNOWN",
    )?;
    // Each field is parsed as soon as its delimiter arrives, so a bad one is refused before
    // the next field is read.
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match proto {
        V1Proto::Unknown => return v1_unknown_rest(r),
        V1Proto::Tcp4 => (
            v4_field(r, "v1: bad TCP4 source address")?.into(),
            v4_field(r, "v1: bad TCP4 destination address")?.into(),
        ),
        V1Proto::Tcp6 => (
            v6_field(r, "v1: bad TCP6 source address")?.into(),
            v6_field(r, "v1: bad TCP6 destination address")?.into(),
        ),
    };
    let sport = field(r, b' ', is_digit, port_viable, "v1: bad source port")?;
    let dport = field(r, b'\r', is_digit, port_viable, "v1: bad destination port")?;
    r.expect(b"\n", "v1: CR not followed by LF")?;
    Ok(ProxiedAddrs::Tcp {
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
    })
}

/// After `UNKNOWN`: the line ends at once (`\r\n`) or after a space and anything but a bare
/// CR or LF (the spec forbids ending a line on one of them alone).
fn v1_unknown_rest(r: &mut Reader<'_>) -> Result<ProxiedAddrs, WireError> {
    match r.u8()? {
        b'\r' => {}
        b' ' => {
            r.take_while(|b| b != b'\r' && b != b'\n');
            if r.u8()? == b'\n' {
                return Err(WireError::Invalid("v1: LF without CR"));
            }
        }
        _ => {
            return Err(WireError::Invalid(
                "v1: protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    }
    r.expect(b"\n", "v1: CR not followed by LF")?;
    Ok(ProxiedAddrs::Unknown)
}

/// One space- or CR-terminated v1 field of `allowed` characters, parsed with the standard
/// library's strict parsers (no leading zeros in IPv4 octets, exactly 128 bits of IPv6,
/// ports 0–65535). A field cut short by the end of input is judged by `viable` (could it
/// still become valid?) so that a bad one is refused at its first bad byte, not at its
/// delimiter.
fn field<T: std::str::FromStr>(
    r: &mut Reader<'_>,
    delim: u8,
    allowed: fn(u8) -> bool,
    viable: fn(&[u8]) -> bool,
    why: &'static str,
) -> Result<T, WireError> {
    let text = r.take_while(allowed);
    if !viable(text) {
        return Err(WireError::Invalid(why));
    }
    if r.u8()? != delim {
        return Err(WireError::Invalid(why));
    }
    // ASCII by `allowed`, which also keeps out the `+` that `u16::from_str` would take.
    let text = std::str::from_utf8(text).map_err(|_| WireError::Invalid(why))?;
    text.parse().map_err(|_| WireError::Invalid(why))
}

fn v4_field(r: &mut Reader<'_>, why: &'static str) -> Result<Ipv4Addr, WireError> {
    field(r, b' ', is_v4_char, v4_viable, why)
}

fn v6_field(r: &mut Reader<'_>, why: &'static str) -> Result<Ipv6Addr, WireError> {
    field(r, b' ', is_v6_char, v6_viable, why)
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn is_v4_char(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

fn is_v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// A decimal number of at most `max_len` digits, no leading zero, not above `max`, or a
/// prefix of one (possibly empty).
fn decimal_viable(digits: &[u8], max_len: usize, max: u32) -> bool {
    if digits.len() > max_len
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits.first() == Some(&b'0'))
    {
        return false;
    }
    let value = digits
        .iter()
        .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
    value <= max
}

fn port_viable(text: &[u8]) -> bool {
    decimal_viable(text, PORT_TEXT_MAX, u32::from(u16::MAX))
}

/// `text` (digits and dots) is a dotted-quad IPv4 address or a prefix of one.
fn v4_viable(text: &[u8]) -> bool {
    if text.len() > V4_TEXT_MAX {
        return false;
    }
    let octets = text.split(|&b| b == b'.').count();
    let mut parts = text.split(|&b| b == b'.').enumerate();
    octets <= 4
        && parts
            .all(|(i, part)| (i + 1 == octets || !part.is_empty()) && decimal_viable(part, 3, 255))
}

/// `text` (hex digits, colons, dots) can still become an IPv6 address: not too long, at
/// most one `::` and no `:::`, at most 7 colons (8 with a `::`), groups of at most 4 hex
/// digits, and dots only in a final embedded IPv4 part. Cheap rather than exact: the
/// complete field is parsed for real.
fn v6_viable(text: &[u8]) -> bool {
    let doubles = text.windows(2).filter(|w| w == b"::").count();
    let colons = text.iter().filter(|&&b| b == b':').count();
    if text.len() > V6_TEXT_MAX
        || doubles > 1
        || text.windows(3).any(|w| w == b":::")
        || colons > 7 + doubles
    {
        return false;
    }
    let groups = text.split(|&b| b == b':').count();
    let mut parts = text.split(|&b| b == b':').enumerate();
    parts.all(|(i, part)| {
        if part.contains(&b'.') {
            i + 1 == groups && v4_viable(part)
        } else {
            part.len() <= 4
        }
    })
}

// ---- v2 ------------------------------------------------------------------------------

fn parse_v2(prefix: &[u8]) -> Result<Header, WireError> {
    let mut r = Reader::new(prefix);
    r.expect(&V2_SIGNATURE, "v2: bad signature")?;
    let ver_cmd = r.u8()?;
    if ver_cmd >> 4 != V2_VERSION {
        return Err(WireError::Invalid("v2: version is not 2"));
    }
    let command = ver_cmd & 0x0F;
    if command != V2_CMD_LOCAL && command != V2_CMD_PROXY {
        return Err(WireError::Invalid("v2: command is neither LOCAL nor PROXY"));
    }
    let family = r.u8()?;
    let addr_len = match family {
        V2_UNSPEC => 0,
        V2_TCP4 | V2_UDP4 => V2_ADDR_LEN_INET,
        V2_TCP6 | V2_UDP6 => V2_ADDR_LEN_INET6,
        V2_UNIX_STREAM | V2_UNIX_DGRAM => V2_ADDR_LEN_UNIX,
        _ => return Err(WireError::Invalid("v2: unknown address family or protocol")),
    };
    let body_len = usize::from(r.u16()?);
    if body_len > V2_MAX_BODY {
        return Err(WireError::Invalid("v2: header longer than 536 bytes"));
    }
    let len = V2_FIXED + body_len;
    if command == V2_CMD_LOCAL || family == V2_UNSPEC {
        // LOCAL: "discard the protocol block including the family"; UNSPEC: "ignore
        // address information". Either way the block is skipped unread.
        r.take(body_len)?;
        return Ok(Header {
            version: 2,
            addrs: ProxiedAddrs::Unknown,
            len,
        });
    }
    if body_len < addr_len {
        return Err(WireError::Invalid(
            "v2: length too short for the address family",
        ));
    }
    if (1..TLV_HEAD).contains(&(body_len - addr_len)) {
        return Err(WireError::Invalid(
            "v2: TLV header overruns the header length",
        ));
    }
    let addrs = match family {
        V2_TCP4 => {
            let src = Ipv4Addr::from(r.take_array::<4>()?);
            let dst = Ipv4Addr::from(r.take_array::<4>()?);
            tcp_addrs(&mut r, IpAddr::V4(src), IpAddr::V4(dst))?
        }
        V2_TCP6 => {
            let src = Ipv6Addr::from(r.take_array::<16>()?);
            let dst = Ipv6Addr::from(r.take_array::<16>()?);
            tcp_addrs(&mut r, IpAddr::V6(src), IpAddr::V6(dst))?
        }
        _ => {
            // UDP and UNIX: valid, but nothing a TCP proxy can use.
            r.take(addr_len)?;
            ProxiedAddrs::Unknown
        }
    };
    skip_tlvs(&mut r, body_len - addr_len)?;
    Ok(Header {
        version: 2,
        addrs,
        len,
    })
}

fn tcp_addrs(r: &mut Reader<'_>, src: IpAddr, dst: IpAddr) -> Result<ProxiedAddrs, WireError> {
    let sport = r.u16()?;
    let dport = r.u16()?;
    Ok(ProxiedAddrs::Tcp {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
    })
}

/// Skips the TLVs filling the `declared` bytes after the addresses, checking that each one
/// fits; an overrun is rejected as soon as its length field is read.
fn skip_tlvs(r: &mut Reader<'_>, mut declared: usize) -> Result<(), WireError> {
    while declared > 0 {
        if declared < TLV_HEAD {
            return Err(WireError::Invalid(
                "v2: TLV header overruns the header length",
            ));
        }
        let _kind = r.u8()?;
        let value_len = usize::from(r.u16()?);
        declared -= TLV_HEAD;
        if value_len > declared {
            return Err(WireError::Invalid(
                "v2: TLV value overruns the header length",
            ));
        }
        r.take(value_len)?;
        declared -= value_len;
    }
    Ok(())
}

// ---- shared --------------------------------------------------------------------------

/// Consumes whichever of `choices` the input starts with; `Truncated` while the input is
/// still a prefix of one of them.
fn one_of<T: Copy>(
    r: &mut Reader<'_>,
    choices: &[(&[u8], T)],
    why: &'static str,
) -> Result<T, WireError> {
    let rest = r.rest();
    let mut partial = false;
    for &(word, value) in choices {
        if rest.starts_with(word) {
            r.take(word.len())?;
            return Ok(value);
        }
        partial |= word.starts_with(rest);
    }
    Err(if partial {
        WireError::Truncated
    } else {
        WireError::Invalid(why)
    })
}

/// The invariants [`parse`] keeps, checked by the fuzz target and by the corpus replay in
/// `cargo test`: no panic; a `Done` header lies within the input and [`MAX_HEADER`], parses
/// the same without the bytes after it, and every shorter prefix of it is `NeedMore`;
/// decisions are final; a `Tcp` header re-encoded in its version parses to the same
/// addresses.
#[doc(hidden)]
pub fn check_invariants(data: &[u8]) {
    let full = parse(data);
    for cut in [1, 2, 3, 5, 8, 16, 64, 512] {
        let Some(prefix) = data.get(..data.len().saturating_sub(cut)) else {
            continue;
        };
        match (parse(prefix), full) {
            (Parse::NeedMore, _) => {}
            (early, late) => assert_eq!(early, late, "decided on a prefix, then changed"),
        }
    }
    let Parse::Done(header) = full else { return };
    assert!(header.version == 1 || header.version == 2);
    assert!(
        header.len <= data.len() && header.len <= MAX_HEADER,
        "{header:?}"
    );
    let own = data.get(..header.len).expect("len within data");
    assert_eq!(parse(own), full, "bytes after the header changed it");
    for cut in 0..header.len {
        let prefix = own.get(..cut).expect("cut within header");
        assert_eq!(parse(prefix), Parse::NeedMore, "prefix of {cut} bytes");
    }
    if let ProxiedAddrs::Tcp { src, dst } = header.addrs {
        let again = if header.version == 1 {
            encode_v1(src, dst)
        } else {
            encode_v2(src, dst)
        };
        let reparsed = Header {
            version: header.version,
            addrs: header.addrs,
            len: again.len(),
        };
        assert_eq!(parse(&again), Parse::Done(reparsed), "re-encoded {again:?}");
    }
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
