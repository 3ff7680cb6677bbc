//! Serializing HTTP/1.1 heads into a `Vec<u8>`, and the header rewrites a proxy makes before
//! forwarding (hop-by-hop removal, re-stated framing). No IO.
//!
//! The `http` types cannot hold CR, LF or NUL in names, values or URIs, so nothing written
//! here can split a line.

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use super::BodyFraming;
use super::fields::list;

/// Appends `method SP target SP HTTP/1.1 CRLF`, the field lines and the empty line.
/// `target` is written as the `Uri` holds it: path and query for origin-form, `*`,
/// `host:port` for CONNECT, or a full absolute URI.
pub fn write_request_head(out: &mut Vec<u8>, method: &Method, target: &Uri, headers: &HeaderMap) {
    head(out, method, target, Version::HTTP_11, headers);
}

/// Appends `HTTP/1.1 SP status SP reason CRLF`, the field lines and the empty line (the
/// canonical reason phrase; empty for unknown codes).
pub fn write_response_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    status_line(out, Version::HTTP_11, status, headers);
}

fn version_text(version: Version) -> &'static [u8] {
    if version == Version::HTTP_10 {
        b"HTTP/1.0"
    } else {
        b"HTTP/1.1"
    }
}

pub(super) fn head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &Uri,
    version: Version,
    headers: &HeaderMap,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    if let Some(scheme) = target.scheme_str() {
        out.extend_from_slice(scheme.as_bytes());
        out.extend_from_slice(b"://");
    }
    if let Some(authority) = target.authority() {
        out.extend_from_slice(authority.as_str().as_bytes());
    }
    out.extend_from_slice(target.path().as_bytes());
    if let Some(query) = target.query() {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(version_text(version));
    out.extend_from_slice(b"\r\n");
    fields(out, headers);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn status_line(
    out: &mut Vec<u8>,
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
) {
    out.extend_from_slice(version_text(version));
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    fields(out, headers);
    out.extend_from_slice(b"\r\n");
}

/// `name: value CRLF` for every field (names lower-case, as `HeaderMap` keeps them).
pub(super) fn fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The fields RFC 9110 §7.6.1 makes hop-by-hop, plus the obsolete Keep-Alive and
/// Proxy-Connection.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop fields before forwarding: Connection, Keep-Alive, Proxy-Connection,
/// TE, Trailer, Transfer-Encoding, Upgrade, and every field Connection
/// names, except Host and Content-Length (naming those is an attack on the next hop, not
/// an option). With `keep_upgrade` (forwarding an accepted upgrade request or its 101)
/// `Upgrade` stays and Connection becomes exactly `upgrade`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry few of them (a response's `Connection: keep-alive`): one pass over
    // the names notes which are there, and only those are hashed for a removal.
    let mut present = 0u8;
    for name in headers.keys() {
        let name = name.as_str();
        if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name) {
            present |= 1 << i;
        }
    }
    if present != 0 {
        remove_named_hop_by_hop(headers, keep_upgrade, present);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// `present`: bit `i` set when `HOP_BY_HOP[i]` is among the fields.
fn remove_named_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool, present: u8) {
    // Tokens that name a field removed anyway (`keep-alive`, `upgrade`) or none (`close`)
    // need no HeaderName of their own.
    let named: Vec<HeaderName> = list(headers, &CONNECTION)
        .filter(|token| {
            !token.eq_ignore_ascii_case(b"close")
                && !HOP_BY_HOP
                    .iter()
                    .any(|h| token.eq_ignore_ascii_case(h.as_bytes()))
        })
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .filter(|name| *name != HOST && *name != CONTENT_LENGTH)
        .filter(|name| !(keep_upgrade && *name == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for (i, name) in HOP_BY_HOP.into_iter().enumerate() {
        if present & (1 << i) == 0 || (keep_upgrade && name == UPGRADE.as_str()) {
            continue;
        }
        headers.remove(name);
    }
}

/// Re-states the framing as the only framing field: removes Content-Length and
/// Transfer-Encoding, then sets `Content-Length: n` or `Transfer-Encoding: chunked`
/// (nothing for no body or a close-delimited one). Call after [`remove_hop_by_hop`].
pub fn set_body_framing(headers: &mut HeaderMap, framing: BodyFraming) {
    match framing {
        BodyFraming::ContentLength(n) => {
            remove_if_present(headers, &TRANSFER_ENCODING);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
        BodyFraming::Chunked => {
            remove_if_present(headers, &CONTENT_LENGTH);
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        BodyFraming::None | BodyFraming::UntilClose => {
            remove_if_present(headers, &CONTENT_LENGTH);
            remove_if_present(headers, &TRANSFER_ENCODING);
        }
    }
}

/// Removes every `name` field. Most messages have none of the fields a proxy takes out:
/// looking at the names first (a comparison each) spares the hash and probe of a removal.
pub fn remove_if_present(headers: &mut HeaderMap, name: &HeaderName) {
    if headers.keys().any(|k| k == name) {
        headers.remove(name);
    }
}
