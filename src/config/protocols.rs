//! `[protocols.<name>]` entries of an L4 service: protocol, targets, SNI/ALPN filters,
//! per-route overrides, ECH, and the check that no two entries match the same traffic. No IO.

use std::ops::Range;

use toml::de::DeValue;

use super::l4::targets;
use super::values;
use super::walk::{self, Diags, Section, Value};
use crate::plan::{Balance, Protocol, ProtocolRoute, ProxyVersion, Route};

/// Keys of one `[protocols.<name>]` table (`alpns` is upstream's other spelling of `alpn`).
pub(crate) const PROTOCOL_KEYS: &[&str] = &[
    "protocol",
    "target",
    "load_balance",
    "server_names",
    "alpn",
    "alpns",
    "idle_lifetime",
    "send_proxy_protocol",
    "ech",
];

/// Keys of `[protocols.<name>.ech]`, in the table form and the inline form of upstream's spec.
pub(crate) const ECH_KEYS: &[&str] = &[
    "ech_config_list",
    "private_keys",
    "private_server_names",
    "server_names",
];

/// Config spellings of PROXY protocol versions.
pub(crate) const PROXY_VERSIONS: &[(&str, ProxyVersion)] = &[
    ("none", ProxyVersion::None),
    ("v1", ProxyVersion::V1),
    ("v2", ProxyVersion::V2),
];

/// Longest ALPN protocol id (RFC 7301: one length byte).
const MAX_ALPN_LEN: usize = 255;

/// A parsed entry with where it was written, for cross-entry checks.
pub(crate) struct Entry {
    pub(crate) route: ProtocolRoute,
    /// The `[protocols.<name>]` header.
    pub(crate) span: Range<usize>,
    pub(crate) label: String,
}

/// How an entry is named in messages: `[protocols.tls_1]`, `[l4.protocols."my app"]`.
fn entry_label(prefix: &str, name: &str, suffix: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        format!("`[{prefix}.{name}]`{suffix}")
    } else {
        format!("`[{prefix}.{name:?}]`{suffix}")
    }
}

/// Every entry of a `protocols` table, in file order. `prefix` is the dotted table path
/// (`protocols` or `l4.protocols`), `suffix` names the service for `[[l4]]` arrays.
pub(crate) fn parse_all(d: &mut Diags, v: &Value, prefix: &str, suffix: &str) -> Vec<Entry> {
    let Some(table) = walk::table(d, "protocols", v) else {
        return Vec::new();
    };
    let outer = Section {
        table,
        label: format!("`[{prefix}]`{suffix}"),
        span: v.span(),
    };
    let mut out: Vec<Entry> = Vec::new();
    for (name, key_span, value) in outer.entries() {
        let label = entry_label(prefix, name, suffix);
        let DeValue::Table(t) = value.get_ref() else {
            d.error(
                &key_span,
                format!(
                    "{label} must be a table (write `[{prefix}.{name}]` with `protocol = …` and `target = […]`), found {}",
                    walk::found(value.get_ref())
                ),
            );
            continue;
        };
        let sec = Section {
            table: t,
            label: label.clone(),
            span: value.span(),
        };
        if let Some(route) = parse_entry(d, &sec, name) {
            check_duplicate(d, &out, &route, &sec);
            out.push(Entry {
                route,
                span: sec.span,
                label,
            });
        }
    }
    out
}

fn parse_entry(d: &mut Diags, sec: &Section, name: &str) -> Option<ProtocolRoute> {
    sec.check_keys(d, PROTOCOL_KEYS);
    let protocol = sec
        .require(d, "protocol")
        .and_then(|v| walk::choice(d, "protocol", v, Protocol::ALL));
    let targets = sec
        .require(d, "target")
        .and_then(|v| targets(d, "target", v));
    let balance = match sec.get("load_balance") {
        Some(v) => walk::choice(d, "load_balance", v, Balance::ALL),
        None => Some(Balance::None),
    };
    let server_names = match sec.get("server_names") {
        Some(v) => server_names(d, v),
        None => Some(Vec::new()),
    };
    let alpn = alpn(d, sec);

    let send_proxy = sec.get("send_proxy_protocol").and_then(|v| {
        walk::choice(d, "send_proxy_protocol", v, PROXY_VERSIONS).map(|pv| (pv, v.span()))
    });
    let idle = sec.get("idle_lifetime").and_then(|v| {
        let t = walk::duration(d, "idle_lifetime", v)?;
        if t.is_zero() {
            d.error(&v.span(), "`idle_lifetime` must be greater than 0");
            return None;
        }
        Some((t, v.span()))
    });
    let ech = sec.get("ech").map(|v| ech(d, v, &sec.label));

    // Everything below needs the protocol; without it the errors are already reported.
    let protocol = protocol?;
    let pname = protocol.name();
    let mut ok = true;
    let mut only_sni = |d: &mut Diags, key: &str| {
        if let Some(span) = sec.key_span(key) {
            if !protocol.has_sni() {
                d.error(
                    &span,
                    format!("`{key}` only applies to protocol tls or quic, not {pname}"),
                );
                ok = false;
            }
        }
    };
    only_sni(d, "server_names");
    only_sni(d, "alpn");
    only_sni(d, "alpns");
    only_sni(d, "ech");
    if let Some((_, span)) = &idle {
        if !protocol.is_udp() {
            d.error(
                span,
                format!(
                    "`idle_lifetime` only applies to UDP protocols; {pname} is TCP (use `tcp_idle_timeout`)"
                ),
            );
            ok = false;
        }
    }
    let send_proxy = match send_proxy {
        Some((_, span)) if protocol.is_udp() => {
            d.warn(
                &span,
                format!("`send_proxy_protocol` is ignored for {pname}: PROXY protocol is only sent over TCP"),
            );
            None
        }
        other => other.map(|(pv, _)| pv),
    };
    let server_names = server_names?;
    let ech = match ech {
        Some(Some(ech_names)) if protocol.has_sni() => {
            if server_names.is_empty() && !ech_names {
                d.error(
                    &sec.key_span("ech").unwrap_or(sec.span.clone()),
                    "`ech` needs `server_names` (the public names whose ClientHello is decrypted)",
                );
                ok = false;
            }
            true
        }
        Some(_) => {
            ok = false;
            false
        }
        None => false,
    };
    let route = Route {
        name: name.to_string(),
        targets: targets?,
        balance: balance?,
        idle_lifetime: idle.map(|(t, _)| t),
        send_proxy,
    };
    let alpn = alpn?;
    ok.then_some(ProtocolRoute {
        protocol,
        route,
        server_names,
        alpn,
        ech,
    })
}

/// `server_names`: lower-cased host names, `*.example.com` allowed.
fn server_names(d: &mut Diags, v: &Value) -> Option<Vec<String>> {
    let list = walk::strings(d, "server_names", v)?;
    if list.is_empty() {
        d.error(
            &v.span(),
            "`server_names` is empty; remove the key to match every server name",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in list {
        match values::check_name(s, true) {
            Ok(()) => out.push(s.trim_end_matches('.').to_ascii_lowercase()),
            Err(e) => {
                d.error(&span, format!("`server_names`: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `alpn` or its alias `alpns`, never both.
fn alpn(d: &mut Diags, sec: &Section) -> Option<Vec<String>> {
    let (key, v) = match (sec.get("alpn"), sec.get("alpns")) {
        (Some(_), Some(second)) => {
            d.error(
                &sec.key_span("alpns").unwrap_or(second.span()),
                format!(
                    "both `alpn` and `alpns` in {}; they are the same setting, keep one",
                    sec.label
                ),
            );
            return None;
        }
        (Some(v), None) => ("alpn", v),
        (None, Some(v)) => ("alpns", v),
        (None, None) => return Some(Vec::new()),
    };
    let list = walk::strings(d, key, v)?;
    if list.is_empty() {
        d.error(
            &v.span(),
            format!("`{key}` is empty; remove the key to match every ALPN"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in list {
        if s.is_empty() || s.len() > MAX_ALPN_LEN {
            d.error(
                &span,
                format!("`{key}`: an ALPN id is 1..={MAX_ALPN_LEN} bytes"),
            );
            ok = false;
        } else {
            out.push(s.to_string());
        }
    }
    ok.then_some(out)
}

/// Checks an `ech` table; `Some(has_own_server_names)` when it is valid.
fn ech(d: &mut Diags, v: &Value, entry: &str) -> Option<bool> {
    let table = walk::table(d, "ech", v)?;
    let sec = Section {
        table,
        label: format!("`ech` of {entry}"),
        span: v.span(),
    };
    let errors_before = d.errors.len();
    sec.check_keys(d, ECH_KEYS);
    if let Some(v) = sec.get("ech_config_list") {
        walk::string(d, "ech_config_list", v);
    }
    if let Some(v) = sec.require(d, "private_keys") {
        if let Some(keys) = walk::strings(d, "private_keys", v) {
            if keys.is_empty() {
                d.error(&v.span(), "`private_keys` is empty");
            }
        }
    }
    if let Some(v) = sec.get("private_server_names") {
        for (s, span) in walk::strings(d, "private_server_names", v).unwrap_or_default() {
            // `name` or `name:port` (the port replaces the listen port).
            let name = match s.rsplit_once(':') {
                Some((n, p)) => match values::parse_port(p) {
                    Ok(_) => n,
                    Err(e) => {
                        d.error(&span, format!("`private_server_names`: {e}"));
                        continue;
                    }
                },
                None => s,
            };
            if let Err(e) = values::check_name(name, false) {
                d.error(&span, format!("`private_server_names`: {e}"));
            }
        }
    }
    let own_names = sec
        .get("server_names")
        .and_then(|v| server_names(d, v))
        .is_some();
    (d.errors.len() == errors_before).then_some(own_names)
}

/// Two entries of one protocol with the same server name set and ALPN set can never both
/// match: the second is unreachable and almost certainly a mistake.
fn check_duplicate(d: &mut Diags, earlier: &[Entry], route: &ProtocolRoute, sec: &Section) {
    let key = |r: &ProtocolRoute| {
        let mut names = r.server_names.clone();
        names.sort();
        names.dedup();
        let mut alpn = r.alpn.clone();
        alpn.sort();
        alpn.dedup();
        (r.protocol, names, alpn)
    };
    let mine = key(route);
    if let Some(first) = earlier.iter().find(|e| key(&e.route) == mine) {
        let (l1, l2) = (d.line(&first.span), d.line(&sec.span));
        d.error(
            &sec.span,
            format!(
                "{} (line {l2}) matches the same traffic as {} (line {l1}): both are protocol {} with the same server_names and alpn; merge them or make them differ",
                sec.label,
                first.label,
                route.protocol.name()
            ),
        );
    }
}
