//! Lines, field lines and the framing headers of HTTP/1.1 (RFC 9112 §2, §5, §6; RFC 9110
//! §5.6): the strict byte rules every head and trailer section goes through. No IO.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::{BodyFraming, H1Error, MAX_HEADERS, invalid};
use crate::spare::Spare;
use crate::wire::{Reader, WireError};

/// Room for a browser's ~20 fields without regrowing a map.
const MAP_CAPACITY: usize = 24;
/// Cleared header maps kept per thread for the next heads. musl's allocator unmaps a
/// ~2.5 KiB map's memory when it is freed and maps it again for the next one (about 0.2
/// mmap/munmap pairs and 0.65 page faults per proxied request, bench/PROFILE.md).
const SPARE_MAPS: usize = 32;
/// A map that grew past this many fields is not kept.
const MAX_KEPT_CAPACITY: usize = 64;

thread_local! {
    static MAPS: Spare<HeaderMap> = const { Spare::new(SPARE_MAPS) };
}

/// An empty header map: a kept one when there is one.
pub fn header_map() -> HeaderMap {
    MAPS.with(Spare::take)
        .unwrap_or_else(|| HeaderMap::with_capacity(MAP_CAPACITY))
}

/// Keep `map`'s memory (emptied) for a later [`header_map`].
pub fn recycle(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > MAX_KEPT_CAPACITY {
        return;
    }
    map.clear();
    MAPS.with(|spare| spare.give(map));
}

/// Why a head parser stopped early.
pub(super) enum Halt {
    /// Every byte so far is a valid beginning.
    Partial,
    Fail(H1Error),
}

impl From<H1Error> for Halt {
    fn from(e: H1Error) -> Self {
        Halt::Fail(e)
    }
}

/// The next CRLF-terminated line, without its CRLF, whose CRLF ends within `limit` bytes
/// (`too_long` otherwise). Strict CRLF: a bare LF terminator or a CR anywhere else is an
/// error, because a peer that splits lines differently is how smuggling starts.
pub(super) fn take_line<'a>(
    r: &mut Reader<'a>,
    limit: usize,
    too_long: H1Error,
) -> Result<&'a [u8], Halt> {
    let line = match r.take_until_within(b'\n', limit, "line too long") {
        Ok(line) => line,
        Err(WireError::Truncated) => return Err(Halt::Partial),
        Err(WireError::Invalid(_)) => return Err(Halt::Fail(too_long)),
    };
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(invalid("bare LF as line terminator"));
    };
    if line.contains(&b'\r') {
        return Err(invalid("bare CR"));
    }
    Ok(line)
}

/// A header (or trailer) section up to and including its empty line, in at most `budget`
/// bytes and [`MAX_HEADERS`] fields.
pub(super) fn section(
    r: &mut Reader<'_>,
    budget: usize,
    too_large: &'static str,
) -> Result<HeaderMap, Halt> {
    let mut headers = header_map();
    let mut left = budget;
    let mut count = 0;
    loop {
        let before = r.len();
        let Some((name, value)) = field_line(r, left, H1Error::HeadersTooLarge(too_large))? else {
            return Ok(headers);
        };
        left = left.saturating_sub(before.saturating_sub(r.len()));
        if count == MAX_HEADERS {
            return Err(Halt::Fail(H1Error::HeadersTooLarge(
                "more than MAX_HEADERS fields",
            )));
        }
        count += 1;
        headers.append(name, value);
    }
}

/// The next `field-name ":" OWS field-value OWS CRLF` line of a section, or `None` for the
/// empty line that ends it; its CRLF must end within `limit` bytes (`too_long` otherwise).
///
/// One pass over the line's bytes: the name's token bytes, then the value's field bytes up
/// to the first byte that is neither, which must be the CR of the line's CRLF. The rules
/// are [`take_line`]'s (strict CRLF) and RFC 9112 §5's (no whitespace before the colon,
/// no obs-fold).
pub(super) fn field_line(
    r: &mut Reader<'_>,
    limit: usize,
    too_long: H1Error,
) -> Result<Option<(HeaderName, HeaderValue)>, Halt> {
    let rest = r.rest();
    // Out of bytes before the line ended: more may come, unless the line is already too long.
    let partial = || {
        if rest.len() >= limit {
            Halt::Fail(too_long)
        } else {
            Halt::Partial
        }
    };
    match rest.first() {
        None => return Err(partial()),
        Some(b'\r') => {
            return match rest.get(1) {
                None => Err(partial()),
                // The empty line counts against the section's budget like any other.
                Some(b'\n') if limit < 2 => Err(Halt::Fail(too_long)),
                Some(b'\n') => {
                    r.take(2).map_err(|_| Halt::Partial)?;
                    Ok(None)
                }
                Some(_) => Err(invalid("bare CR")),
            };
        }
        Some(b' ' | b'\t') => return Err(invalid("obs-fold or whitespace before a field line")),
        Some(_) => {}
    }
    let name_len = rest
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(rest.len());
    let Some(&after_name) = rest.get(name_len) else {
        return Err(partial());
    };
    match after_name {
        b':' if name_len > 0 => {}
        b':' => return Err(invalid("empty field name")),
        b' ' | b'\t' => return Err(invalid("whitespace between field name and colon")),
        0 => return Err(invalid("NUL in field name")),
        b'\r' => {
            return Err(match rest.get(name_len + 1) {
                None => partial(),
                Some(b'\n') => invalid("field line without colon"),
                Some(_) => invalid("bare CR"),
            });
        }
        b'\n' => return Err(invalid("bare LF as line terminator")),
        _ => return Err(invalid("field name is not a token")),
    }
    let value_at = name_len + 1;
    let tail = rest.get(value_at..).unwrap_or_default();
    let value_len = field_bytes(tail);
    match (tail.get(value_len), tail.get(value_len + 1)) {
        (None, _) | (Some(b'\r'), None) => return Err(partial()),
        (Some(b'\r'), Some(b'\n')) => {}
        (Some(b'\r'), Some(_)) => return Err(invalid("bare CR")),
        (Some(b'\n'), _) => return Err(invalid("bare LF as line terminator")),
        (Some(0), _) => return Err(invalid("NUL in field value")),
        (Some(_), _) => return Err(invalid("control character in field value")),
    }
    let line_len = value_at + value_len + 2;
    if line_len > limit {
        return Err(Halt::Fail(too_long));
    }
    let name = rest.get(..name_len).unwrap_or_default();
    let value = trim_ows(tail.get(..value_len).unwrap_or_default());
    let bad = H1Error::Invalid;
    let name = HeaderName::from_bytes(name).map_err(|_| bad("field name is not a token"))?;
    let value = HeaderValue::from_bytes(value).map_err(|_| bad("invalid field value"))?;
    r.take(line_len).map_err(|_| Halt::Partial)?;
    Ok(Some((name, value)))
}

/// `HTTP/1.1` or `HTTP/1.0`; another well-formed `HTTP/d.d` is 505, anything else 400.
pub(super) fn version(v: &[u8]) -> Result<Version, H1Error> {
    match v {
        b"HTTP/1.1" => Ok(Version::HTTP_11),
        b"HTTP/1.0" => Ok(Version::HTTP_10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(H1Error::VersionNotSupported)
        }
        _ => Err(H1Error::Invalid("malformed HTTP version")),
    }
}

/// Byte classes, one bit each, looked up in [`CLASS`] (one load per byte instead of a
/// chain of comparisons: this is the hot loop of every parse).
const TCHAR: u8 = 1;
const FIELD: u8 = 2;
const HOST: u8 = 4;
const TARGET: u8 = 8;

// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        let tchar_punct = matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        );
        if c.is_ascii_alphanumeric() || tchar_punct {
            class |= TCHAR;
        }
        if c == b'\t' || (c >= 0x20 && c != 0x7f) {
            class |= FIELD;
        }
        let sub_delim = matches!(
            c,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        );
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') || sub_delim {
            class |= HOST;
        }
        if c >= 0x21 && c <= 0x7e {
            class |= TARGET;
        }
        table[b] = class;
        b += 1;
    }
    table
};

#[inline]
fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

/// RFC 9110 §5.6.2 tchar.
#[inline]
pub(super) fn is_tchar(b: u8) -> bool {
    class(b) & TCHAR != 0
}

/// field-vchar, SP or HTAB (obs-text allowed; every other control byte is not).
#[inline]
pub(super) fn is_field_byte(b: u8) -> bool {
    class(b) & FIELD != 0
}

/// How many bytes at the start of `bytes` are [`is_field_byte`]. Eight at a time while none
/// of the eight is a control byte (below 0x20, or DEL), then one at a time: values are most
/// of a head's bytes, and this is the one pass over them before they are copied.
pub(super) fn field_bytes(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `w` is below 0x20 / equal to 0x7f: the classic "has less" / "has zero" word
    // tests. Bytes of 0x80 and above (obs-text) never set their high bit in either. A match
    // may be over-reported, never missed, and is then looked at byte by byte.
    let plain = |w: u64| {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w;
        let x = w ^ (ONES * 0x7f);
        let del = x.wrapping_sub(ONES) & !x;
        (below_space | del) & HIGHS == 0
    };
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if !plain(u64::from_ne_bytes(word)) {
            if let Some(i) = chunk.iter().position(|&b| !is_field_byte(b)) {
                return at + i;
            }
        }
        at += 8;
    }
    let tail = bytes.get(at..).unwrap_or_default();
    at + tail
        .iter()
        .position(|&b| !is_field_byte(b))
        .unwrap_or(tail.len())
}

/// Visible ASCII, the only bytes a request-target may hold.
#[inline]
pub(super) fn is_target_byte(b: u8) -> bool {
    class(b) & TARGET != 0
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The elements of every `name` field line's comma-separated list, OWS trimmed, empty
/// elements skipped (RFC 9110 §5.6.1).
pub(super) fn list<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether the `name` list holds `token` (case-insensitive), e.g. `Connection: close`.
pub(super) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    list(headers, name).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// Host = uri-host [ ":" port ] (RFC 9110 §7.2), empty allowed; no userinfo.
pub(super) fn valid_host(host: &[u8]) -> bool {
    let mut r = Reader::new(host);
    if r.expect(b"[", "").is_ok() {
        let literal = r.take_while(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if literal.is_empty() || r.expect(b"]", "").is_err() {
            return false;
        }
    } else {
        // reg-name or IPv4address: unreserved / pct-encoded / sub-delims.
        let mut name = r.take_while(|b| b != b':').iter();
        while let Some(&b) = name.next() {
            let ok = if b == b'%' {
                let hex = |d: Option<&u8>| d.is_some_and(u8::is_ascii_hexdigit);
                hex(name.next()) && hex(name.next())
            } else {
                class(b) & HOST != 0
            };
            if !ok {
                return false;
            }
        }
    }
    if r.is_empty() {
        return true;
    }
    r.expect(b":", "").is_ok()
        && r.len() <= 5
        && r.rest().iter().all(u8::is_ascii_digit)
        && r.rest()
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
            <= 65535
}

/// The Content-Length, if any. Every element of every line must be 1*DIGIT and fit a u64;
/// repeats are accepted only when they are all the same number (`5, 5` or two lines of
/// `5`), per RFC 9110 §8.6; differing values are an error.
pub(super) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, H1Error> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let digits = trim_ows(element);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(H1Error::Invalid("Content-Length is not 1*DIGIT"));
            }
            let n = digits
                .iter()
                .try_fold(0u64, |n, &d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .ok_or(H1Error::Invalid("Content-Length overflows"))?;
            if found.is_some_and(|m| m != n) {
                return Err(H1Error::Invalid("differing Content-Length values"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// The transfer codings must be exactly one `chunked`, and last: unknown codings and a
/// non-final or repeated `chunked` are errors (400); known compression codings are valid
/// HTTP we do not implement (501), since forwarding them would need re-coding.
fn transfer_encoding_is_chunked(headers: &HeaderMap) -> Result<(), H1Error> {
    let mut codings = 0;
    let mut chunked = 0;
    let mut last_chunked = false;
    let mut compressed = false;
    for coding in list(headers, &TRANSFER_ENCODING) {
        codings += 1;
        last_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_chunked {
            chunked += 1;
        } else if [
            &b"gzip"[..],
            b"x-gzip",
            b"deflate",
            b"compress",
            b"x-compress",
        ]
        .iter()
        .any(|known| coding.eq_ignore_ascii_case(known))
        {
            compressed = true;
        } else {
            return Err(H1Error::Invalid("unknown transfer coding"));
        }
    }
    if codings == 0 {
        return Err(H1Error::Invalid("empty Transfer-Encoding"));
    }
    if !last_chunked {
        return Err(H1Error::Invalid("final transfer coding is not chunked"));
    }
    if chunked > 1 {
        return Err(H1Error::Invalid("chunked applied more than once"));
    }
    if compressed {
        return Err(H1Error::Unsupported("transfer coding other than chunked"));
    }
    Ok(())
}

/// Common part of request and response framing: TE xor CL, TE never in 1.0.
fn declared_framing(headers: &HeaderMap, version: Version) -> Result<Option<BodyFraming>, H1Error> {
    if headers.contains_key(TRANSFER_ENCODING) {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(H1Error::Invalid(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(H1Error::Invalid("Transfer-Encoding in HTTP/1.0"));
        }
        transfer_encoding_is_chunked(headers)?;
        return Ok(Some(BodyFraming::Chunked));
    }
    Ok(content_length(headers)?.map(BodyFraming::ContentLength))
}

/// RFC 9112 §6.3 for a request: chunked, Content-Length, or no body.
pub(super) fn request_framing(
    headers: &HeaderMap,
    version: Version,
) -> Result<BodyFraming, H1Error> {
    Ok(declared_framing(headers, version)?.unwrap_or(BodyFraming::None))
}

/// RFC 9112 §6.3 for a response: none after HEAD, for 1xx/204/304 and a 2xx to CONNECT
/// (whatever the headers say); else chunked, Content-Length or until close.
pub(super) fn response_framing(
    headers: &HeaderMap,
    version: Version,
    status: StatusCode,
    request_method: &Method,
) -> Result<BodyFraming, H1Error> {
    let bodiless = *request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (*request_method == Method::CONNECT && status.is_success());
    if bodiless {
        return Ok(BodyFraming::None);
    }
    Ok(declared_framing(headers, version)?.unwrap_or(BodyFraming::UntilClose))
}
