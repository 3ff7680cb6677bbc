//! HTTP/1.1 codec (RFC 9112), sans-IO: request and response heads are parsed from the bytes
//! buffered so far, bodies are decoded and encoded a slice at a time, heads are serialized
//! into a `Vec<u8>`. No IO and no clock; the connection drivers do both.
//!
//! Every ambiguity a request smuggler could exploit is an error, never "fixed up": both
//! Content-Length and Transfer-Encoding, differing Content-Lengths, unknown or non-final
//! codings, obs-fold, whitespace before a colon, bare CR or LF, control bytes, more than one
//! Host, malformed chunk lines. Each error maps to the status to answer with in one place,
//! [`H1Error::status`].
//!
//! ```
//! use sluice::http::h1::{parse_request, BodyFraming, Parsed};
//!
//! let bytes = b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\nGET /b HTTP/1.1\r\n";
//! let Ok(Parsed::Complete { head, consumed }) = parse_request(bytes) else { panic!() };
//! assert_eq!(head.target, "/a");
//! assert_eq!(head.host(), Some("example.com"));
//! assert_eq!(head.framing, BodyFraming::None);
//! // Pipelining: the next request starts at `consumed` (and is not complete yet).
//! assert_eq!(parse_request(&bytes[consumed..]), Ok(Parsed::Partial));
//! ```
#![deny(clippy::indexing_slicing)]

use std::fmt;

use http::header::{CONNECTION, EXPECT, HOST, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};

use crate::wire::Reader;

#[path = "h1_body.rs"]
mod body;
#[path = "h1_fields.rs"]
mod fields;
#[path = "h1_write.rs"]
mod write;

pub use body::{BodyDecoder, ChunkedDecoder, Decoded, LengthBody, write_chunk, write_last_chunk};
pub use write::{
    remove_hop_by_hop, remove_if_present, set_body_framing, write_request_head, write_response_head,
};

use fields::{Halt, has_token, take_line};
pub use fields::{header_map, recycle};

/// Longest request line, CRLF included: longer targets are rejected with 414 (nginx's
/// large_client_header_buffers default is 8 KiB; browsers cap URLs well below this).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest status line from an upstream, CRLF included: a reason phrase has no use for more.
pub const MAX_STATUS_LINE: usize = 8 * 1024;
/// Largest header section (field lines and the final CRLF): 431 beyond it; big cookies fit,
/// and it bounds what one connection can make us buffer before a body.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most field lines in one header or trailer section (431 beyond): real browsers send ~20.
pub const MAX_HEADERS: usize = 100;
/// Empty lines skipped before a request line (RFC 9112 §2.2 says ignore at least one; some
/// clients send a stray CRLF after a POST body). More are a 400.
pub const MAX_LEADING_EMPTY_LINES: usize = 4;
/// Longest chunk-size line, extensions and CRLF included: nobody needs longer extensions,
/// and it bounds buffering inside a body.
pub const MAX_CHUNK_LINE: usize = 1024;
/// Largest trailer section of a chunked body, final CRLF included.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Why a message was rejected. `Copy`, no allocation; the `&'static str` says what was wrong
/// (for logs and the short error body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H1Error {
    /// Malformed or ambiguous framing or syntax.
    Invalid(&'static str),
    /// Request line over [`MAX_REQUEST_LINE`] (or status line over [`MAX_STATUS_LINE`]).
    StartLineTooLong,
    /// Header or trailer section over its byte limit or [`MAX_HEADERS`].
    HeadersTooLarge(&'static str),
    /// Body larger than the caller's limit.
    BodyTooLarge,
    /// A well-formed HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// Valid HTTP we deliberately do not implement (compression transfer codings).
    Unsupported(&'static str),
}

impl H1Error {
    /// The status to answer a client whose request failed this way: the one place errors
    /// become statuses. (An upstream response that fails to parse is always a 502 instead.)
    pub fn status(self) -> StatusCode {
        match self {
            H1Error::Invalid(_) => StatusCode::BAD_REQUEST,
            H1Error::StartLineTooLong => StatusCode::URI_TOO_LONG,
            H1Error::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            H1Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            H1Error::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            H1Error::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// What was wrong, in a few words.
    pub fn context(self) -> &'static str {
        match self {
            H1Error::Invalid(why) | H1Error::HeadersTooLarge(why) | H1Error::Unsupported(why) => {
                why
            }
            H1Error::StartLineTooLong => "start line too long",
            H1Error::BodyTooLarge => "body larger than allowed",
            H1Error::VersionNotSupported => "HTTP version other than 1.0 and 1.1",
        }
    }
}

impl fmt::Display for H1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.context(), self.status().as_u16())
    }
}

impl std::error::Error for H1Error {}

/// Outcome of parsing a head from the bytes buffered so far.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// Every byte so far is a valid beginning: read more and parse the whole buffer again.
    Partial,
    /// The head is complete; the body (or the next message) starts at `consumed`.
    Complete { head: T, consumed: usize },
}

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: the next message starts right after the head.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: everything until the upstream closes the connection.
    UntilClose,
}

impl BodyFraming {
    /// Whether any body bytes can follow the head.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyFraming::None | BodyFraming::ContentLength(0))
    }
}

/// Which of the four request-target forms (RFC 9112 §3.2) the request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`, the usual one.
    Origin,
    /// `http://host/path`, sent to proxies.
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// A parsed request head plus what its headers mean for the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The request-target as sent (`*` for asterisk-form).
    pub target: Uri,
    pub form: TargetForm,
    /// `HTTP_10` or `HTTP_11`.
    pub version: Version,
    /// Every field line; duplicates kept in order per name. At most one Host, and it is
    /// valid `uri-host [":" port]`.
    pub headers: HeaderMap,
    pub framing: BodyFraming,
    /// The connection may carry another request after this one (1.1 unless
    /// `Connection: close`; 1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// HTTP/1.1 with `Expect: 100-continue`: send 100 before reading the body.
    pub expect_continue: bool,
    /// HTTP/1.1 with `Connection: upgrade` and an `Upgrade` header (e.g. WebSocket).
    pub upgrade: bool,
}

impl RequestHead {
    /// The Host header's value (`None` when absent, which only HTTP/1.0 may do).
    pub fn host(&self) -> Option<&str> {
        self.headers.get(HOST).and_then(|v| v.to_str().ok())
    }

    /// The authority in an absolute-form or authority-form target.
    pub fn target_authority(&self) -> Option<&str> {
        self.target.authority().map(|a| a.as_str())
    }

    /// Where the request is going (RFC 9112 §3.3): the target's authority if it has one,
    /// else a non-empty Host.
    pub fn authority(&self) -> Option<&str> {
        self.target_authority()
            .or_else(|| self.host().filter(|h| !h.is_empty()))
    }

    /// False when an absolute-form target and Host both name an authority and they differ
    /// (case-insensitively, with the scheme's default port made explicit). RFC 9112 §3.2.2
    /// has a proxy use the target's; a reverse proxy may prefer to refuse (400/421).
    pub fn host_matches_target(&self) -> bool {
        let (Some(target), Some(host)) = (self.target_authority(), self.host()) else {
            return true;
        };
        let default_port = match self.target.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "443",
            _ => "80",
        };
        let norm = |a: &str| -> String {
            let a = a.to_ascii_lowercase();
            let has_port = a
                .rfind(':')
                .is_some_and(|i| a.rfind(']').is_none_or(|j| i > j));
            if has_port {
                a
            } else {
                format!("{a}:{default_port}")
            }
        };
        norm(target) == norm(host)
    }

    /// The `Upgrade` header when the request asks for one (see [`RequestHead::upgrade`]).
    pub fn upgrade_protocol(&self) -> Option<&HeaderValue> {
        self.upgrade.then(|| self.headers.get(UPGRADE)).flatten()
    }

    /// Serializes this head as received (its own version), e.g. to forward it unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write::head(out, &self.method, &self.target, self.version, &self.headers);
    }
}

/// A parsed response head plus what its headers mean for the body and connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Per RFC 9112 §6.3, given the request's method.
    pub framing: BodyFraming,
    /// The upstream connection can be reused after this response's body.
    pub keep_alive: bool,
}

/// A head's map goes back to the thread's spare list ([`recycle`]).
impl Drop for RequestHead {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.headers));
    }
}

impl Drop for ResponseHead {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.headers));
    }
}

impl ResponseHead {
    /// A 1xx other than 101: the final response follows on the same connection.
    pub fn is_interim(&self) -> bool {
        self.status.is_informational() && self.status != StatusCode::SWITCHING_PROTOCOLS
    }

    /// Serializes this head with its own version and the status's canonical reason.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write::status_line(out, self.version, self.status, &self.headers);
    }
}

/// Parses a request head from the start of `buf`.
///
/// # Errors
/// Any syntax or framing error, a limit exceeded, or an unsupported version; a decision
/// (error or `Complete`) on a prefix of some input is the same on the whole input.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<RequestHead>, H1Error> {
    let mut r = Reader::new(buf);
    match request_head(&mut r) {
        Ok(head) => Ok(Parsed::Complete {
            head,
            consumed: buf.len().saturating_sub(r.len()),
        }),
        Err(Halt::Partial) => Ok(Parsed::Partial),
        Err(Halt::Fail(e)) => Err(e),
    }
}

/// Parses an upstream's response head from the start of `buf`; `request_method` is the
/// method of the request it answers (HEAD and CONNECT change the framing).
///
/// # Errors
/// As [`parse_request`]; every error from an upstream means 502 to the client.
pub fn parse_response(
    buf: &[u8],
    request_method: &Method,
) -> Result<Parsed<ResponseHead>, H1Error> {
    let mut r = Reader::new(buf);
    match response_head(&mut r, request_method) {
        Ok(head) => Ok(Parsed::Complete {
            head,
            consumed: buf.len().saturating_sub(r.len()),
        }),
        Err(Halt::Partial) => Ok(Parsed::Partial),
        Err(Halt::Fail(e)) => Err(e),
    }
}

fn invalid(why: &'static str) -> Halt {
    Halt::Fail(H1Error::Invalid(why))
}

fn request_head(r: &mut Reader<'_>) -> Result<RequestHead, Halt> {
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        match r.rest() {
            [] | [b'\r'] => return Err(Halt::Partial),
            [b'\r', b'\n', ..] => _ = r.take(2),
            _ => break,
        }
    }
    let line = take_line(r, MAX_REQUEST_LINE, H1Error::StartLineTooLong)?;
    let mut l = Reader::new(line);
    let method = l
        .take_until(b' ')
        .map_err(|_| invalid("request line is not method SP target SP version"))?;
    let target = l
        .take_until(b' ')
        .map_err(|_| invalid("request line is not method SP target SP version"))?;
    if method.is_empty() || !method.iter().all(|&b| fields::is_tchar(b)) {
        return Err(invalid("method is not a token"));
    }
    let method = Method::from_bytes(method).map_err(|_| invalid("method is not a token"))?;
    let (target, form) = request_target(target, &method)?;
    let version = fields::version(l.rest())?;

    let headers = fields::section(r, MAX_HEADER_BYTES, "header section over MAX_HEADER_BYTES")?;
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(invalid("more than one Host")),
        (None, None) if version == Version::HTTP_11 => {
            return Err(invalid("HTTP/1.1 request without Host"));
        }
        (Some(host), None) if !fields::valid_host(host.as_bytes()) => {
            return Err(invalid("Host is not uri-host [:port]"));
        }
        _ => {}
    }
    let framing = fields::request_framing(&headers, version)?;
    let http11 = version == Version::HTTP_11;
    let close = has_token(&headers, &CONNECTION, "close");
    let keep_alive = !close && (http11 || has_token(&headers, &CONNECTION, "keep-alive"));
    let expect_continue = http11 && has_token(&headers, &EXPECT, "100-continue");
    let upgrade =
        http11 && has_token(&headers, &CONNECTION, "upgrade") && headers.contains_key(UPGRADE);
    Ok(RequestHead {
        method,
        target,
        form,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    })
}

/// Classifies and parses a request-target (RFC 9112 §3.2). Only visible ASCII is allowed.
fn request_target(target: &[u8], method: &Method) -> Result<(Uri, TargetForm), Halt> {
    if target.is_empty() || !target.iter().all(|&b| fields::is_target_byte(b)) {
        return Err(invalid(
            "request-target is empty or has control or non-ASCII bytes",
        ));
    }
    let uri = Uri::try_from(target).map_err(|_| invalid("request-target is not a URI"))?;
    let userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    let form = if target == b"*" {
        if method != Method::OPTIONS {
            return Err(invalid("asterisk-form target without OPTIONS"));
        }
        TargetForm::Asterisk
    } else if *method == Method::CONNECT {
        let host_port = uri.scheme().is_none()
            && uri.path_and_query().is_none()
            && uri.port_u16().is_some()
            && !userinfo;
        if !host_port {
            return Err(invalid("CONNECT target is not authority-form host:port"));
        }
        TargetForm::Authority
    } else if target.starts_with(b"/") {
        if uri.scheme().is_some() || uri.authority().is_some() {
            return Err(invalid("origin-form target with an authority"));
        }
        TargetForm::Origin
    } else {
        let host_ok = uri.host().is_some_and(|h| !h.is_empty());
        if uri.scheme().is_none() || !host_ok || userinfo {
            return Err(invalid(
                "absolute-form target without scheme and host, or with userinfo",
            ));
        }
        TargetForm::Absolute
    };
    Ok((uri, form))
}

fn response_head(r: &mut Reader<'_>, request_method: &Method) -> Result<ResponseHead, Halt> {
    let line = take_line(r, MAX_STATUS_LINE, H1Error::StartLineTooLong)?;
    let mut l = Reader::new(line);
    let version = l
        .take_until(b' ')
        .map_err(|_| invalid("status line is not version SP status"))?;
    let version = fields::version(version)?;
    let code = l
        .take(3)
        .map_err(|_| invalid("status code is not 3 digits"))?;
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(invalid("status code is not 3 digits"));
    }
    let status = StatusCode::from_bytes(code).map_err(|_| invalid("status code below 100"))?;
    // The SP before an empty reason is required by RFC 9112 §4, but servers omit it.
    if !l.is_empty() {
        l.expect(b" ", "status code is not 3 digits")
            .map_err(|_| invalid("status code is not 3 digits"))?;
        if !l.rest().iter().all(|&b| fields::is_field_byte(b)) {
            return Err(invalid("control character in reason phrase"));
        }
    }
    let headers = fields::section(r, MAX_HEADER_BYTES, "header section over MAX_HEADER_BYTES")?;
    let framing = fields::response_framing(&headers, version, status, request_method)?;
    let close = has_token(&headers, &CONNECTION, "close");
    let keep_alive = !close
        && framing != BodyFraming::UntilClose
        && (version == Version::HTTP_11 || has_token(&headers, &CONNECTION, "keep-alive"));
    Ok(ResponseHead {
        version,
        status,
        headers,
        framing,
        keep_alive,
    })
}

/// The invariants [`parse_request`] keeps, checked by the fuzz target `h1_request` and by
/// the corpus replay in `cargo test`: no panic; a decision on a prefix is final; a
/// `Complete` head lies within the input, parses the same without the bytes after it, and
/// re-encoded parses to an equal head; a body after it decodes without panicking.
#[doc(hidden)]
pub fn check_request_invariants(data: &[u8]) {
    let full = parse_request(data);
    for cut in [1, 2, 3, 5, 8, 13, 64, 512, 4096] {
        let Some(prefix) = data.get(..data.len().saturating_sub(cut)) else {
            continue;
        };
        match parse_request(prefix) {
            Ok(Parsed::Partial) => {}
            early => assert_eq!(early, full, "decided on a prefix, then changed"),
        }
    }
    let Ok(Parsed::Complete { head, consumed }) = full else {
        return;
    };
    assert!(consumed <= data.len());
    let own = data.get(..consumed).expect("consumed within data");
    assert_eq!(
        parse_request(own),
        Ok(Parsed::Complete {
            head: head.clone(),
            consumed
        })
    );
    let mut again = Vec::new();
    head.encode(&mut again);
    match parse_request(&again) {
        Ok(Parsed::Complete { head: h, consumed }) => {
            assert_eq!(h, head, "re-encoded {:?}", String::from_utf8_lossy(&again));
            assert_eq!(consumed, again.len());
        }
        other => panic!("re-encoded head {again:?} parsed as {other:?}"),
    }
    if let Ok(mut body) = BodyDecoder::new(head.framing, 1 << 20) {
        let mut rest = data.get(consumed..).unwrap_or_default();
        while let Ok(step) = body.decode(rest) {
            assert!(step.consumed <= rest.len() && step.data.len() <= step.consumed);
            if step.done || step.consumed == 0 {
                break;
            }
            rest = rest.get(step.consumed..).unwrap_or_default();
        }
    }
}

/// The invariants [`parse_response`] keeps (fuzz target `h1_response`): those of
/// [`check_request_invariants`], for a response to GET and to HEAD.
#[doc(hidden)]
pub fn check_response_invariants(data: &[u8]) {
    for method in [Method::GET, Method::HEAD] {
        let full = parse_response(data, &method);
        for cut in [1, 2, 3, 5, 8, 13, 64, 512, 4096] {
            let Some(prefix) = data.get(..data.len().saturating_sub(cut)) else {
                continue;
            };
            match parse_response(prefix, &method) {
                Ok(Parsed::Partial) => {}
                early => assert_eq!(early, full, "decided on a prefix, then changed"),
            }
        }
        let Ok(Parsed::Complete { head, consumed }) = full else {
            continue;
        };
        assert!(consumed <= data.len());
        if method == Method::HEAD {
            assert_eq!(head.framing, BodyFraming::None);
        }
        let mut again = Vec::new();
        head.encode(&mut again);
        match parse_response(&again, &method) {
            Ok(Parsed::Complete { head: h, consumed }) => {
                assert_eq!(h, head, "re-encoded {:?}", String::from_utf8_lossy(&again));
                assert_eq!(consumed, again.len());
            }
            other => panic!("re-encoded head {again:?} parsed as {other:?}"),
        }
        if let Ok(mut body) = BodyDecoder::new(head.framing, u64::MAX) {
            let mut rest = data.get(consumed..).unwrap_or_default();
            while let Ok(step) = body.decode(rest) {
                assert!(step.consumed <= rest.len() && step.data.len() <= step.consumed);
                if step.done || step.consumed == 0 {
                    break;
                }
                rest = rest.get(step.consumed..).unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "h1_smuggling_tests.rs"]
mod smuggling_tests;
