//! TLS probe: reassembles the ClientHello from the handshake records a client sent first and
//! reads what routing needs from it (SNI, ALPN, ECH). The ClientHello parser is shared with
//! the QUIC probe, which finds the same message in CRYPTO frames. No IO.

// Every read goes through `Reader`, so hostile lengths cannot index out of bounds.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

use super::{Detected, MAX_PROBE_BYTES, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// TLS record header: content type, legacy version (2 bytes), fragment length (2 bytes).
const RECORD_HEADER_LEN: usize = 5;
/// Handshake message header: msg_type, 24-bit length.
const HANDSHAKE_HEADER_LEN: usize = 4;
/// Record content type `handshake` (RFC 8446 5.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type `client_hello` (RFC 8446 4).
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Largest record we accept. A ClientHello record is plaintext and may hold at most 2^14
/// bytes (RFC 8446 5.1); we allow the largest record any TLS version has defined (TLS 1.2
/// ciphertext, 2^14 + 2048, RFC 5246 6.2.3) because leniency costs nothing here:
/// `MAX_PROBE_BYTES` bounds what we hold either way.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Record legacy versions seen on a first record: SSL 3.0 (0x0300) to TLS 1.3 (0x0304);
/// real clients mostly send 0x0301 for compatibility with old middleboxes.
const RECORD_VERSION_MINOR_MAX: u8 = 4;
/// Smallest ClientHello body: version, random, empty session id, one cipher suite, one
/// compression method, no extensions (allowed before TLS 1.3).
const MIN_CLIENT_HELLO_LEN: usize = 2 + 32 + 1 + (2 + 2) + (1 + 1);
/// Largest ClientHello body the vectors' length prefixes allow (RFC 8446 4.1.2): lets a
/// QUIC caller reject a hostile length before buffering it.
const MAX_CLIENT_HELLO_LEN: usize = 2 + 32 + (1 + 32) + (2 + 0xfffe) + (1 + 0xff) + (2 + 0xffff);
/// Longest session id (RFC 8446 4.1.2: `legacy_session_id<0..32>`).
const MAX_SESSION_ID_LEN: usize = 32;
/// Longest host name in text form without the trailing dot (RFC 1035 2.3.4: 255 octets on
/// the wire); anything longer cannot name a certificate and would only bloat logs.
const MAX_HOST_NAME_LEN: usize = 253;

/// Extension types we read (IANA TLS ExtensionType registry).
const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
/// server_name NameType `host_name` (RFC 6066 3).
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What a ClientHello says that routing cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloInfo {
    /// server_name (host_name type), lower-cased, no trailing dot.
    pub sni: Option<String>,
    /// ALPN protocol names in client order (non-UTF-8 names are skipped).
    pub alpn: Vec<String>,
    /// An encrypted_client_hello extension (0xfe0d) is present.
    pub ech: bool,
}

/// Parse one ClientHello handshake message (starting at the handshake type byte 0x01, as
/// carried in TLS records or in QUIC CRYPTO frames). Bytes after the message are ignored:
/// what may follow it is the caller's business.
///
/// Lengths are checked strictly: every vector must fit its container, the extensions must end
/// exactly at the end of the message, and no extension type may repeat (RFC 8446 4.2). A
/// host name must be printable ASCII (IDNs are sent as A-labels), is lower-cased and loses
/// one trailing dot; an IP literal is passed through as clients send it.
///
/// # Examples
/// ```
/// use sluice::probe::tls::parse_client_hello;
/// use sluice::wire::WireError;
///
/// assert_eq!(parse_client_hello(&[1, 0, 0]), Err(WireError::Truncated));
/// assert!(matches!(parse_client_hello(&[2, 0, 0, 0]), Err(WireError::Invalid(_))));
/// ```
///
/// # Errors
/// `Truncated` when the message is incomplete; `Invalid` when it is not a ClientHello.
pub fn parse_client_hello(msg: &[u8]) -> Result<HelloInfo, WireError> {
    let mut r = Reader::new(msg);
    let len = client_hello_len(&mut r)?;
    let body = r.sub(len)?;
    // The body is all here: from now on running out of bytes means a length lied.
    parse_client_hello_body(body).map_err(|e| match e {
        WireError::Truncated => WireError::Invalid("vector overruns the ClientHello"),
        invalid => invalid,
    })
}

/// The TCP probe: `Match` once the whole ClientHello has arrived in handshake records (it may
/// be split over several records, and the records over several reads); `NoMatch` as soon as
/// the bytes cannot be one (the first byte alone rules out most protocols).
pub fn probe(prefix: &[u8]) -> Probe {
    match read_client_hello(prefix) {
        Ok(hello) => Probe::Match(Detected {
            protocol: Protocol::Tls,
            sni: hello.sni,
            alpn: hello.alpn,
            ech: hello.ech,
        }),
        Err(WireError::Truncated) => Probe::NeedMore,
        Err(WireError::Invalid(_)) => Probe::NoMatch,
    }
}

/// Walk the handshake records at the start of `prefix`, joining their fragments until they
/// hold one whole ClientHello, and parse it. Every check uses only bytes already present, so
/// `Invalid` on a prefix stays `Invalid` however the client continues.
fn read_client_hello(prefix: &[u8]) -> Result<HelloInfo, WireError> {
    let mut r = Reader::new(prefix);
    // Handshake bytes so far; borrowed while the hello fits in the first record (the usual
    // case), copied together once it spans several.
    let mut joined: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    // Handshake header plus ClientHello body, once its header has arrived.
    let mut hello_total: Option<usize> = None;
    loop {
        let fragment_len = record_header(&mut r)?;
        let record_end = prefix.len() - r.len() + fragment_len;
        if record_end > MAX_PROBE_BYTES {
            return Err(WireError::Invalid(
                "ClientHello records exceed the probe limit",
            ));
        }
        // A record in flight may stop short; its declared length is already known.
        let fragment = r.take(fragment_len.min(r.len()))?;
        let joined_end = joined.len() + fragment_len;
        if joined.is_empty() {
            joined = Cow::Borrowed(fragment);
        } else {
            joined.to_mut().extend_from_slice(fragment);
        }
        if hello_total.is_none() {
            match client_hello_len(&mut Reader::new(&joined)) {
                Ok(len) => hello_total = Some(HANDSHAKE_HEADER_LEN + len),
                Err(WireError::Truncated) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(total) = hello_total {
            if total + RECORD_HEADER_LEN > MAX_PROBE_BYTES {
                return Err(WireError::Invalid("ClientHello exceeds the probe limit"));
            }
            // The ClientHello may precede a key change, so it must end with its record
            // (RFC 8446 5.1); a client's first flight holds nothing else.
            if joined_end > total {
                return Err(WireError::Invalid("ClientHello does not end its record"));
            }
        }
        if fragment.len() < fragment_len {
            return Err(WireError::Truncated);
        }
        if hello_total == Some(joined.len()) {
            return parse_client_hello(&joined);
        }
    }
}

/// Read one record header that may carry (part of) a ClientHello; returns the fragment
/// length. Checked byte by byte so that a prefix of one byte is already decided.
fn record_header(r: &mut Reader<'_>) -> Result<usize, WireError> {
    if r.u8()? != CONTENT_HANDSHAKE {
        return Err(WireError::Invalid("not a handshake record"));
    }
    if r.u8()? != 3 {
        return Err(WireError::Invalid("record version major is not 3"));
    }
    if r.u8()? > RECORD_VERSION_MINOR_MAX {
        return Err(WireError::Invalid("record version is newer than TLS 1.3"));
    }
    let len = usize::from(r.u16()?);
    if len == 0 {
        // RFC 8446 5.1 (and RFC 5246 6.2.1): no zero-length handshake fragments.
        return Err(WireError::Invalid("empty handshake record"));
    }
    if len > MAX_RECORD_LEN {
        return Err(WireError::Invalid("record too long"));
    }
    Ok(len)
}

/// Read a handshake header that must announce a ClientHello; returns the body length.
fn client_hello_len(r: &mut Reader<'_>) -> Result<usize, WireError> {
    if r.u8()? != HANDSHAKE_CLIENT_HELLO {
        return Err(WireError::Invalid("handshake message is not a ClientHello"));
    }
    let len = usize::try_from(r.u24()?).map_err(|_| WireError::Invalid("length overflow"))?;
    if !(MIN_CLIENT_HELLO_LEN..=MAX_CLIENT_HELLO_LEN).contains(&len) {
        return Err(WireError::Invalid("ClientHello length out of range"));
    }
    Ok(len)
}

/// Parse a complete ClientHello body (RFC 8446 4.1.2, which also covers TLS 1.0-1.2).
fn parse_client_hello_body(mut body: Reader<'_>) -> Result<HelloInfo, WireError> {
    let [major, _minor] = body.take_array()?;
    if major != 3 {
        // Any 3.x: a client may offer a version newer than the server knows (RFC 5246 E.1).
        return Err(WireError::Invalid("ClientHello version major is not 3"));
    }
    body.take(32)?; // random
    let session_id_len = usize::from(body.u8()?);
    if session_id_len > MAX_SESSION_ID_LEN {
        return Err(WireError::Invalid("session id longer than 32"));
    }
    body.take(session_id_len)?;
    let cipher_suites = vec_u16(&mut body)?;
    if cipher_suites.is_empty() || cipher_suites.len() % 2 != 0 {
        return Err(WireError::Invalid("cipher suites list is empty or odd"));
    }
    let compression = vec_u8(&mut body)?;
    // Every TLS version requires the null method (RFC 5246 7.4.1.2, RFC 8446 4.1.2).
    if !compression.rest().contains(&0) {
        return Err(WireError::Invalid("compression methods lack null"));
    }
    let mut hello = HelloInfo::default();
    if body.is_empty() {
        // No extensions at all: legal before TLS 1.3.
        return Ok(hello);
    }
    let mut extensions = vec_u16(&mut body)?;
    body.finish("bytes after the extensions")?;
    // A hello has a dozen or two extensions; sorting their types afterwards keeps a hostile
    // one with thousands from costing a quadratic scan.
    let mut seen = Vec::with_capacity(32);
    while !extensions.is_empty() {
        let ext_type = extensions.u16()?;
        seen.push(ext_type);
        let data = vec_u16(&mut extensions)?;
        match ext_type {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_ENCRYPTED_CLIENT_HELLO => hello.ech = true,
            _ => {}
        }
    }
    // RFC 8446 4.2: "There MUST NOT be more than one extension of the same type".
    seen.sort_unstable();
    if seen.windows(2).any(|pair| pair.first() == pair.last()) {
        return Err(WireError::Invalid("duplicate extension"));
    }
    Ok(hello)
}

/// A vector with a one-byte length prefix.
fn vec_u8<'a>(r: &mut Reader<'a>) -> Result<Reader<'a>, WireError> {
    let len = usize::from(r.u8()?);
    r.sub(len)
}

/// A vector with a two-byte length prefix.
fn vec_u16<'a>(r: &mut Reader<'a>) -> Result<Reader<'a>, WireError> {
    let len = usize::from(r.u16()?);
    r.sub(len)
}

/// server_name (RFC 6066 3): the host_name, validated and normalized; other name types are
/// skipped.
fn server_name(mut data: Reader<'_>) -> Result<Option<String>, WireError> {
    let mut list = vec_u16(&mut data)?;
    data.finish("server_name has trailing bytes")?;
    if list.is_empty() {
        return Err(WireError::Invalid("empty server_name list"));
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = vec_u16(&mut list)?.rest();
        if name_type != NAME_TYPE_HOST_NAME {
            continue;
        }
        if host.is_some() {
            // "MUST NOT contain more than one name of the same name_type".
            return Err(WireError::Invalid("two host names"));
        }
        host = Some(host_name(name)?);
    }
    Ok(host)
}

/// Lower-case a host_name and drop one trailing dot; reject what cannot be a DNS name in
/// text form (empty, too long, bytes outside printable ASCII such as NUL or spaces).
fn host_name(name: &[u8]) -> Result<String, WireError> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST_NAME_LEN {
        return Err(WireError::Invalid("host name empty or too long"));
    }
    if !name.iter().all(u8::is_ascii_graphic) {
        return Err(WireError::Invalid("host name is not printable ASCII"));
    }
    let name = std::str::from_utf8(name).map_err(|_| WireError::Invalid("host name"))?;
    Ok(name.to_ascii_lowercase())
}

/// application_layer_protocol_negotiation (RFC 7301 3.1): names in client order; names that
/// are not UTF-8 cannot be routed on and are skipped.
fn alpn(mut data: Reader<'_>) -> Result<Vec<String>, WireError> {
    let mut list = vec_u16(&mut data)?;
    data.finish("ALPN has trailing bytes")?;
    if list.is_empty() {
        return Err(WireError::Invalid("empty ALPN list"));
    }
    let mut names = Vec::new();
    while !list.is_empty() {
        let name = vec_u8(&mut list)?.rest();
        if name.is_empty() {
            return Err(WireError::Invalid("empty ALPN name"));
        }
        if let Ok(name) = std::str::from_utf8(name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
#[path = "tls_tests.rs"]
#[allow(clippy::indexing_slicing)] // tests build inputs by slicing; a panic there fails the test
mod tests;
