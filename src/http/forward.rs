//! The header rewrites of a reverse proxy, on `http::HeaderMap`s the drivers hand in: towards
//! the upstream (hop-by-hop removal, X-Forwarded-* / X-Real-IP / Forwarded believed only from
//! `trusted_forwarded_proxies`, Host per `upstream_options`) and back towards the client
//! (hop-by-hop removal). No IO.
//!
//! Where sluice follows rpxy (rpxy-lib `message_handler/header_ops`) and where it does not:
//! - Host: rpxy leaves the client's Host alone unless `set_upstream_host` is set (its
//!   example config calls `keep_original_host` "[default]"); so does sluice. On the
//!   `default_app` fallback Host becomes that app's `server_name` — rpxy does so even over
//!   `keep_original_host`, sluice honours an explicit `keep_original_host` there.
//! - X-Forwarded-For from a trusted peer: rpxy drops the entries left of the trust boundary;
//!   sluice appends the peer to the chain as received (nginx's `$proxy_add_x_forwarded_for`)
//!   and puts the real client in X-Real-IP. X-Forwarded-Proto/Host/Port from a trusted peer
//!   are kept (rpxy always overwrites them, which loses `https` behind a TLS-terminating CDN).
//! - Like rpxy: Proxy-Authorization/Proxy-Authenticate are dropped (credentials for *this*
//!   hop), `TE: trailers` survives (gRPC needs it), several Cookie lines become one, and an
//!   existing Forwarded from a trusted peer is extended even without `forwarded_header`.
//! - Not done: X-Forwarded-Ssl, X-Original-URI (rpxy sets them); the httpoxy `Proxy` header
//!   is removed rather than set empty.
#![deny(clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{
    COOKIE, EXPECT, FORWARDED, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    UPGRADE_INSECURE_REQUESTS,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::cdn_ranges;
use super::h1::{remove_hop_by_hop, remove_if_present};
use crate::plan::http::{TrustedProxy, UpstreamOptions};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// httpoxy (CVE-2016-5385): CGI-style backends turn it into `HTTP_PROXY`.
static PROXY: HeaderName = HeaderName::from_static("proxy");

/// What the header rewrites towards an upstream need to know about one request.
#[derive(Clone, Copy, Debug)]
pub struct ForwardContext<'a> {
    /// The TCP peer (already the PROXY-protocol client if any).
    pub peer: SocketAddr,
    /// Where the client connected.
    pub local: SocketAddr,
    /// Client-side scheme.
    pub https: bool,
    pub trusted: &'a [TrustedProxy],
    pub options: UpstreamOptions,
    /// Authority the client sent (Host or target), as received.
    pub client_host: Option<&'a str>,
    /// Upstream authority, e.g. `10.0.0.5:8080` or `backend.local` (no default port).
    pub upstream_host: &'a str,
    /// `Some(server_name)` when the request is served by the `default_app` fallback.
    pub default_app_host: Option<&'a str>,
    /// The request is an upgrade (WebSocket) that will be honoured.
    pub upgrade: bool,
}

/// Rewrites a client's request headers for the upstream, in place:
/// - hop-by-hop fields and every field Connection names go, and Expect (the driver answers
///   100-continue), Proxy-Authorization, Proxy-Authenticate and Proxy; with `upgrade`,
///   Upgrade stays and Connection is `upgrade`; a `TE` holding `trailers` becomes
///   `TE: trailers`; several Cookie lines become one (`; `-joined, as HTTP/1.1 wants);
/// - peer trusted ([`is_trusted`]): the peer is appended to X-Forwarded-For, incoming
///   X-Forwarded-Proto/Host/Port are kept (set when absent), X-Real-IP is [`client_ip`];
/// - peer not trusted: every incoming `X-Forwarded-*`, X-Real-IP and Forwarded goes;
///   X-Forwarded-For and X-Real-IP are the peer, X-Forwarded-Proto the client-side scheme,
///   X-Forwarded-Host the client's authority as received, X-Forwarded-Port the local port;
/// - Forwarded (RFC 7239): with `forwarded_header`, or when a trusted peer sent one, an
///   element `for=…;proto=…;host=…` for this hop is appended to a trusted one or replaces
///   an untrusted one;
/// - Host: the client's with `keep_original_host`; else the default app's `server_name`
///   on the `default_app` fallback; else `upstream_host` with `set_upstream_host`; else
///   the client's (rpxy's default), or `upstream_host` when the client sent none;
/// - `Upgrade-Insecure-Requests: 1` with `upgrade_insecure_requests`.
pub fn upstream_request_headers(headers: &mut HeaderMap, ctx: &ForwardContext<'_>) {
    let te_trailers = has_token(headers, &TE, b"trailers");
    remove_hop_by_hop(headers, ctx.upgrade);
    // One pass over the names first: most requests carry none of these, and a removal
    // hashes the name.
    if headers.keys().any(|n| {
        matches!(
            n.as_str(),
            "expect" | "proxy-authorization" | "proxy-authenticate" | "proxy"
        )
    }) {
        for name in [&EXPECT, &PROXY_AUTHORIZATION, &PROXY_AUTHENTICATE, &PROXY] {
            headers.remove(name);
        }
    }
    if te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    join_cookies(headers);

    let peer = canonical(ctx.peer.ip());
    let proto = if ctx.https { "https" } else { "http" };
    let client_host = ctx.client_host.filter(|h| !h.is_empty());
    let ours = || forwarded_element(peer, proto, client_host);
    if is_trusted(ctx.trusted, peer) {
        let client = client_ip(headers, peer, ctx.trusted);
        let chain = appended(headers, &X_FORWARDED_FOR, IpText::new(peer).as_bytes());
        set(headers, &X_FORWARDED_FOR, chain);
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            set(headers, &X_FORWARDED_PROTO, proto);
        }
        if let Some(host) = client_host.filter(|_| !headers.contains_key(&X_FORWARDED_HOST)) {
            set(headers, &X_FORWARDED_HOST, host);
        }
        if !headers.contains_key(&X_FORWARDED_PORT) {
            set(headers, &X_FORWARDED_PORT, ctx.local.port().to_string());
        }
        set(headers, &X_REAL_IP, IpText::new(client).as_bytes());
        if headers.contains_key(FORWARDED) || ctx.options.forwarded_header {
            let value = appended(headers, &FORWARDED, ours().as_bytes());
            set(headers, &FORWARDED, value);
        }
    } else {
        let spoofable: Vec<HeaderName> = headers
            .keys()
            .filter(|n| {
                let n = n.as_str();
                n.starts_with("x-forwarded-") || n == "x-real-ip" || n == "forwarded"
            })
            .cloned()
            .collect();
        for name in spoofable {
            headers.remove(name);
        }
        let peer = IpText::new(peer);
        set(headers, &X_FORWARDED_FOR, peer.as_bytes());
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
        if let Some(host) = client_host {
            set(headers, &X_FORWARDED_HOST, host);
        }
        headers.insert(
            X_FORWARDED_PORT.clone(),
            HeaderValue::from(ctx.local.port()),
        );
        set(headers, &X_REAL_IP, peer.as_bytes());
        if ctx.options.forwarded_header {
            set(headers, &FORWARDED, ours());
        }
    }

    let default_app = ctx
        .default_app_host
        .map(|name| name.strip_prefix("*.").unwrap_or(name));
    let host = match (ctx.options.keep_original_host, client_host) {
        (true, Some(h)) => h,
        _ => default_app
            .or_else(|| ctx.options.set_upstream_host.then_some(ctx.upstream_host))
            .or(client_host)
            .unwrap_or(ctx.upstream_host),
    };
    match HeaderValue::from_str(host).or_else(|_| HeaderValue::from_str(ctx.upstream_host)) {
        Ok(v) => {
            headers.insert(HOST, v);
        }
        Err(_) => {
            headers.remove(HOST);
        }
    }

    if ctx.options.upgrade_insecure_requests {
        headers.insert(UPGRADE_INSECURE_REQUESTS, HeaderValue::from_static("1"));
    }
}

/// Rewrites an upstream's response headers for the client, in place: hop-by-hop fields,
/// every field Connection names, and Proxy-Authenticate go. `upgrade` (only for a 101
/// answering an upgrade being honoured) keeps Upgrade and sets `Connection: upgrade`.
pub fn client_response_headers(headers: &mut HeaderMap, upgrade: bool) {
    remove_hop_by_hop(headers, upgrade);
    remove_if_present(headers, &PROXY_AUTHENTICATE);
}

/// Whether `ip` is one of `trusted_forwarded_proxies` (a CIDR, or a CDN's published range);
/// an IPv4-mapped IPv6 address counts as IPv4.
pub fn is_trusted(trusted: &[TrustedProxy], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|t| match t {
        TrustedProxy::Cidr(c) => c.contains(ip),
        TrustedProxy::Named(p) => cdn_ranges::contains(*p, ip),
    })
}

/// The real client of a request: `peer` unless it is trusted; then, walking X-Forwarded-For
/// from the right, the first untrusted address. When every entry is trusted, the leftmost;
/// when an entry is not an address (`unknown`, garbage), the trusted hop that sent it.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[TrustedProxy]) -> IpAddr {
    let mut client = canonical(peer);
    if !is_trusted(trusted, client) {
        return client;
    }
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        for entry in value.as_bytes().rsplit(|&b| b == b',') {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            let Some(ip) = parse_node(entry) else {
                return client;
            };
            if !is_trusted(trusted, ip) {
                return ip;
            }
            client = ip;
        }
    }
    client
}

/// An X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:5`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:5`, optionally in double quotes.
fn parse_node(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = s.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(canonical(ip))
}

/// An address as text, on the stack: what X-Forwarded-For and X-Real-IP carry. IPv4, what
/// nearly every request has, is written by hand; `Display` through `core::fmt` cost about
/// 600 instructions an address, twice per proxied request (a sixth of the rewrites' cost).
struct IpText {
    buf: [u8; 45],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> IpText {
        let mut text = IpText {
            buf: [0; 45],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
            }
            IpAddr::V6(v6) => {
                // 45 bytes hold the longest form (`ffff:...:255.255.255.255`).
                let mut cursor = std::io::Cursor::new(text.buf.as_mut_slice());
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v6}"));
                text.len = usize::try_from(cursor.position()).unwrap_or(0);
            }
        }
        text
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// This hop's RFC 7239 element: `for=1.2.3.4;proto=https;host=example.com`, IPv6 as
/// `for="[2001:db8::1]"`, a host that is not a token quoted; no `host` when there is none or
/// it holds bytes a quoted-string cannot.
fn forwarded_element(peer: IpAddr, proto: &str, host: Option<&str>) -> String {
    let mut s = String::with_capacity(64);
    let _ = match peer {
        IpAddr::V4(ip) => write!(s, "for={ip}"),
        IpAddr::V6(ip) => write!(s, "for=\"[{ip}]\""),
    };
    s.push_str(";proto=");
    s.push_str(proto);
    if let Some(host) = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic())) {
        s.push_str(";host=");
        if host.bytes().all(is_tchar) {
            s.push_str(host);
        } else {
            s.push('"');
            for c in host.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
        }
    }
    s
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Every value of `name` joined with `, `, then `last`.
fn appended(headers: &HeaderMap, name: &HeaderName, last: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in headers.get_all(name) {
        let v = v.as_bytes().trim_ascii();
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(last);
    out
}

/// Replaces every value of `name` with `value`; a value that cannot be a header value
/// (not possible for what this module builds) removes the field instead.
fn set(headers: &mut HeaderMap, name: &HeaderName, value: impl AsRef<[u8]>) {
    match HeaderValue::from_bytes(value.as_ref()) {
        Ok(v) => {
            headers.insert(name.clone(), v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

/// Whether the comma-separated list `name` holds `token` (case-insensitive; parameters
/// such as `;q=1` ignored).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|e| {
            let e = e.split(|&b| b == b';').next().unwrap_or_default();
            e.trim_ascii().eq_ignore_ascii_case(token)
        })
    })
}

/// Several Cookie lines (HTTP/2 clients send one per cookie) become one `; `-joined line.
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for v in headers.get_all(COOKIE) {
        let v = v.as_bytes().trim_ascii();
        if v.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(v);
    }
    if joined.is_empty() {
        headers.remove(COOKIE);
    } else {
        set(headers, &COOKIE, joined);
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
