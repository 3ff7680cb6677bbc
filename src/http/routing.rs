//! Which app and which route a request takes, with rpxy's semantics: apps by `server_name`
//! (exact, then the longest `*.` wildcard, then `default_app`), routes by the longest `path`
//! prefix on segment boundaries, `replace_path` rewriting, and the dot-segment normalization
//! that keeps `/api/../admin` from slipping past a route. No IO.
#![deny(clippy::indexing_slicing)]

use crate::plan::http::{HttpApp, HttpPlan, HttpRoute};

/// Longest host name accepted (RFC 1035 caps a name at 253 characters; a little slack for
/// a trailing dot and brackets).
const MAX_HOST_LEN: usize = 255;

/// Which app serves a request, as an index into `plan.apps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppMatch {
    /// The host names this app (exactly or through a wildcard).
    App(usize),
    /// No app names the host; `default_app` serves it (plain HTTP only — the driver decides).
    Default(usize),
    /// No app names the host and there is no `default_app`.
    Unknown,
}

/// The app for `authority` (`host[:port]` from Host or an absolute-form target; `None` for
/// HTTP/1.0 without Host). Case, port and a trailing dot are ignored. An exact `server_name`
/// wins; then the longest `*.suffix` wildcard covering the host (one or more labels: not
/// the bare suffix); ties go to the app written first. A malformed authority matches no
/// app.
///
/// ```
/// use sluice::http::routing::{match_app, AppMatch};
/// # use sluice::plan::http::*;
/// # let app = |name: &str, server_name: &str| HttpApp { name: name.into(),
/// #     server_name: server_name.into(), tls: None, routes: vec![], access: Default::default() };
/// # let plan = HttpPlan { listen_port: Some(80), listen_port_tls: None, listen_addresses: vec![],
/// #     tcp_listen_backlog: 1, max_concurrent_streams: 1, max_clients: 1, max_clients_per_ip: None,
/// #     default_app: Some("fallback".into()), trusted_forwarded_proxies: vec![],
/// #     redact_query_in_access_log: false, request_max_body_size: None, sticky_cookie_secret: None,
/// #     public_https_port: None, timeouts: Default::default(), experimental: Default::default(),
/// #     apps: vec![app("fallback", "example.org"), app("wild", "*.example.com")] };
/// assert_eq!(match_app(&plan, Some("A.Example.COM:8080")), AppMatch::App(1));
/// assert_eq!(match_app(&plan, Some("example.com")), AppMatch::Default(0));
/// ```
pub fn match_app(plan: &HttpPlan, authority: Option<&str>) -> AppMatch {
    if let Some(host) = authority.and_then(host_only) {
        let mut best: Option<(usize, usize)> = None; // (rank, index)
        for (i, app) in plan.apps.iter().enumerate() {
            let name = app
                .server_name
                .strip_suffix('.')
                .unwrap_or(&app.server_name);
            let rank = match name.strip_prefix("*.") {
                Some(suffix) => covers(suffix, &host).then_some(suffix.len()),
                None => name.eq_ignore_ascii_case(&host).then_some(usize::MAX),
            };
            if let Some(rank) = rank {
                // Strictly greater: the first app written wins a tie.
                if best.is_none_or(|(b, _)| rank > b) {
                    best = Some((rank, i));
                }
            }
        }
        if let Some((_, i)) = best {
            return AppMatch::App(i);
        }
    }
    plan.default_app
        .as_deref()
        .and_then(|name| plan.apps.iter().position(|a| a.name == name))
        .map_or(AppMatch::Unknown, AppMatch::Default)
}

/// Whether the wildcard `*.suffix` covers `host`: at least one label before `.suffix`.
fn covers(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() + 1
        && host
            .get(host.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        && host.as_bytes().get(host.len() - suffix.len() - 1) == Some(&b'.')
}

/// The route of `app` for `path` (the path only, query split off), as an index into
/// `app.routes`: the longest `path` prefix on a segment boundary (`/a` and `/a/` both
/// cover `/a`, `/a/` and `/a/b`, not `/ab`); else a route `path = "/"`; else the route
/// without `path`. `None`: no route (answer 404).
pub fn match_route(app: &HttpApp, path: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (rank, index)
    for (i, route) in app.routes.iter().enumerate() {
        let rank = match route.path.as_deref() {
            None => Some(0),
            Some(p) => prefix_rest(p, path).map(|_| trim_slashes(p).len() + 1),
        };
        if let Some(rank) = rank {
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// `prefix` without trailing slashes (`/` becomes the empty prefix, which covers all).
fn trim_slashes(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// What follows the route prefix in `path` when the prefix covers it on a segment boundary:
/// `""` or a string starting with `/`.
fn prefix_rest<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let prefix = trim_slashes(prefix);
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// `path_and_query` with the prefix `route.path` matched replaced by `route.replace_path`;
/// the query is kept as is, and the join never makes `//`. Unchanged without
/// `replace_path` (or when the route's prefix does not cover the path).
///
/// ```
/// use sluice::http::routing::rewrite_path;
/// # use sluice::plan::http::*;
/// # let route = |path: &str, replace: &str| HttpRoute { path: Some(path.into()),
/// #     replace_path: Some(replace.into()), upstreams: vec![], builtin: None,
/// #     balance: HttpBalance::None, options: Default::default(), health_check: None };
/// let route = route("/maps", "/replacing/path1");
/// assert_eq!(rewrite_path(&route, "/maps/hoge?x=1"), "/replacing/path1/hoge?x=1");
/// assert_eq!(rewrite_path(&route, "/maps"), "/replacing/path1");
/// ```
pub fn rewrite_path(route: &HttpRoute, path_and_query: &str) -> String {
    let (Some(prefix), Some(replace)) = (route.path.as_deref(), route.replace_path.as_deref())
    else {
        return path_and_query.to_string();
    };
    let (path, query) = split_query(path_and_query);
    let Some(mut rest) = prefix_rest(prefix, path) else {
        return path_and_query.to_string();
    };
    if rest == "/" && trim_slashes(prefix).is_empty() {
        // Route `/` matched the root itself: nothing follows the prefix.
        rest = "";
    }
    let mut out = String::with_capacity(replace.len() + rest.len() + query.len());
    if rest.is_empty() {
        out.push_str(replace);
    } else {
        out.push_str(trim_slashes(replace));
        out.push_str(rest);
    }
    out.push_str(query);
    out
}

/// `s` split around the first `b` (an ASCII byte, so both sides are whole UTF-8). A byte
/// search: `str::split_once(char)` goes through the generic char searcher, which cost a
/// proxied request ~600 instructions for its two short searches.
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|c| c == b)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// (path, `?query` or "").
fn split_query(path_and_query: &str) -> (&str, &str) {
    match path_and_query.bytes().position(|b| b == b'?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    }
}

/// Removes `.` and `..` segments (RFC 3986 §5.2.4) from a path, so that routing sees the
/// path the upstream will act on. `%2e`/`%2E` count as dots when deciding whether a
/// segment is `.` or `..`; every other byte is kept as sent (no other decoding, `//` not
/// merged). A query (`?…`), if present, is kept untouched.
///
/// # Errors
/// The path does not start with `/`, or a `..` climbs above the root.
///
/// ```
/// use sluice::http::routing::normalize_path;
/// assert_eq!(normalize_path("/api/../admin?x=/../"), Ok("/admin?x=/../".to_string()));
/// assert_eq!(normalize_path("/a/%2E%2e/b/."), Ok("/b/".to_string()));
/// assert!(normalize_path("/a/../..").is_err());
/// ```
pub fn normalize_path(path: &str) -> Result<String, &'static str> {
    let (path, query) = split_query(path);
    let Some(body) = path.strip_prefix('/') else {
        return Err("path does not start with /");
    };
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in body.split('/') {
        trailing_slash = false;
        match dot_count(seg) {
            Some(1) => trailing_slash = true,
            Some(_) => {
                if out.pop().is_none() {
                    return Err("path climbs above the root");
                }
                trailing_slash = true;
            }
            None => out.push(seg),
        }
    }
    if trailing_slash {
        out.push("");
    }
    let mut normalized = String::with_capacity(path.len() + query.len());
    for seg in &out {
        normalized.push('/');
        normalized.push_str(seg);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    normalized.push_str(query);
    Ok(normalized)
}

/// `Some(1)` for a `.` segment, `Some(2)` for `..`, counting `%2e`/`%2E` as a dot.
fn dot_count(seg: &str) -> Option<u8> {
    let mut bytes = seg.as_bytes();
    let mut dots = 0u8;
    while !bytes.is_empty() {
        bytes = match bytes {
            [b'.', rest @ ..] => rest,
            [b'%', b'2', b'e' | b'E', rest @ ..] => rest,
            _ => return None,
        };
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    (dots > 0).then_some(dots)
}

/// The host of an authority (`host[:port]`), lower-cased, without the port and a trailing
/// dot; an IPv6 literal keeps its brackets. `None` when malformed: empty, userinfo, more
/// than one colon outside brackets, a non-numeric port, empty labels, or characters a host
/// name cannot hold.
///
/// ```
/// use sluice::http::routing::host_only;
/// assert_eq!(host_only("Example.COM.:8080").as_deref(), Some("example.com"));
/// assert_eq!(host_only("[::1]:80").as_deref(), Some("[::1]"));
/// assert_eq!(host_only("a:b:c"), None);
/// ```
pub fn host_only(authority: &str) -> Option<String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        let inner = host.get(1..end)?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':')?,
        };
        (host, port)
    } else {
        match split_once_byte(authority, b':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return None;
    }
    if host.starts_with('[') {
        return Some(host.to_ascii_lowercase());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.as_bytes().windows(2).any(|w| w == b"..")
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    valid.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
