//! `reverse_proxy` entries of an app: path routing, upstreams, balancing, upstream options and
//! health checks. No IO (CA files are only named).
//!
//! Decisions beyond rpxy:
//! - The seed README's flat form, `reverse_proxy = [{ location = … }, …]` with an app-level
//!   `load_balance`, is one default route whose upstreams are the entries. It is only read
//!   that way when no entry has `upstream`; mixing the two forms is an error.
//! - Two routes with the same path (`/a` and `/a/` count as one), or two without `path`, are
//!   an error: one of them could never be chosen.
//! - Upstreams may set `server_name` (SNI) and `ca_cert_path` for self-signed backends.
//! - Health-check HTTP settings on a TCP check, and `set_upstream_host` next to
//!   `keep_original_host`, have no effect: warnings.

use std::net::Ipv6Addr;
use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use super::http::section;
use super::http_apps::{AppContext, balance, file_path};
use super::l4;
use super::suggest;
use super::values;
use super::walk::{self, Diags, Section, Value};
use crate::plan::{
    Builtin, HealthCheck, HealthCheckKind, HttpBalance, HttpRoute, Target, Upstream,
    UpstreamOptions,
};

const ROUTE_KEYS: &[&str] = &[
    "path",
    "replace_path",
    "upstream",
    "upstream_options",
    "load_balance",
    "health_check",
];
/// `server_name` and `ca_cert_path` are sluice's, for self-signed upstreams.
const UPSTREAM_KEYS: &[&str] = &["location", "tls", "server_name", "ca_cert_path"];
const HEALTH_KEYS: &[&str] = &[
    "type",
    "interval",
    "timeout",
    "unhealthy_threshold",
    "healthy_threshold",
    "path",
    "expected_status",
];

/// rpxy's health-check defaults.
const HC_INTERVAL: Duration = Duration::from_secs(10);
const HC_TIMEOUT: Duration = Duration::from_secs(5);
const HC_UNHEALTHY: u64 = 3;
const HC_HEALTHY: u64 = 2;
const HC_STATUS: u64 = 200;

#[derive(Clone, Copy, PartialEq)]
enum CheckType {
    Tcp,
    Http,
}
const CHECK_TYPES: &[(&str, CheckType)] = &[("tcp", CheckType::Tcp), ("http", CheckType::Http)];

/// Elements of an array of tables (`[[…]]` or inline), each with its span.
fn tables<'a, 'i>(
    d: &mut Diags,
    key: &str,
    v: &'a Value<'i>,
    header: &str,
) -> Option<Vec<(&'a toml::de::DeTable<'i>, Range<usize>)>> {
    let DeValue::Array(a) = v.get_ref() else {
        d.error(
            &v.span(),
            format!(
                "`{key}`: expected an array of tables (`{key} = [{{ … }}]` or `[[{header}]]`), found {}",
                walk::found(v.get_ref())
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for e in a.iter() {
        match e.get_ref() {
            DeValue::Table(t) => out.push((t, e.span())),
            other => {
                d.error(
                    &e.span(),
                    format!(
                        "`{key}`: expected a table element, found {}",
                        walk::found(other)
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

pub(crate) fn routes(
    d: &mut Diags,
    v: &Value,
    app: &str,
    app_balance: Option<HttpBalance>,
    cx: &AppContext,
) -> Option<Vec<HttpRoute>> {
    let header = format!("apps.{app}.reverse_proxy");
    let entries = tables(d, "reverse_proxy", v, &header)?;
    if entries.is_empty() {
        d.warn(
            &v.span(),
            format!("`reverse_proxy` of `[apps.{app}]` is empty: every request to it gets 404"),
        );
        return Some(Vec::new());
    }
    let is_flat = |t: &toml::de::DeTable| t.contains_key("location") && !t.contains_key("upstream");
    if entries.iter().all(|(t, _)| is_flat(t)) {
        // The seed README's flat form: every entry is an upstream of one default route.
        let label = format!("`reverse_proxy` of `[apps.{app}]`");
        let builtin_at = entries.iter().position(|(t, _)| is_builtin(t));
        if let Some((t, span)) = builtin_at.and_then(|i| entries.get(i)) {
            let which = builtin(d, t, span, entries.len(), &label)?;
            return Some(vec![HttpRoute {
                path: None,
                replace_path: None,
                upstreams: Vec::new(),
                builtin: Some(which),
                balance: HttpBalance::None,
                options: UpstreamOptions::default(),
                health_check: None,
            }]);
        }
        let mut ups = Vec::new();
        let mut ok = true;
        for (i, (t, span)) in entries.iter().enumerate() {
            let label = format!("`reverse_proxy[{i}]` of `[apps.{app}]`");
            match upstream(d, t, span, label, cx) {
                Some(u) => ups.push(u),
                None => ok = false,
            }
        }
        return ok.then(|| {
            vec![HttpRoute {
                path: None,
                replace_path: None,
                upstreams: ups,
                builtin: None,
                balance: app_balance.unwrap_or(HttpBalance::None),
                options: UpstreamOptions::default(),
                health_check: None,
            }]
        });
    }
    let mut out = Vec::new();
    let mut ok = true;
    // (normalised path, span, is default) of each route so far.
    let mut seen: Vec<(Option<String>, Range<usize>)> = Vec::new();
    for (i, (t, span)) in entries.iter().enumerate() {
        let sec = Section {
            table: t,
            label: format!("`reverse_proxy[{i}]` of `[apps.{app}]`"),
            span: span.clone(),
        };
        if is_flat(t) {
            let at = sec.key_span("location").unwrap_or(span.clone());
            d.error(
                &at,
                format!("{}: `location` belongs inside `upstream = [{{ location = … }}]`; the flat form `reverse_proxy = [{{ location = … }}]` works only when no entry has `upstream`", sec.label),
            );
            ok = false;
            continue;
        }
        match route(d, &sec, app_balance, cx, &mut seen) {
            Some(r) => out.push(r),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn route(
    d: &mut Diags,
    sec: &Section,
    app_balance: Option<HttpBalance>,
    cx: &AppContext,
    seen: &mut Vec<(Option<String>, Range<usize>)>,
) -> Option<HttpRoute> {
    sec.check_keys(d, ROUTE_KEYS);
    let path = l4::opt(d, sec, "path", None, |d, v| {
        url_path(d, "path", v).map(Some)
    });
    let replace = l4::opt(d, sec, "replace_path", None, |d, v| {
        let p = url_path(d, "replace_path", v)?;
        if !sec.has("path") {
            d.error(
                &v.span(),
                "`replace_path` needs `path` (it replaces the matched prefix; the default route has none)",
            );
            return None;
        }
        Some(Some(p))
    });
    if let Some(p) = &path {
        let norm = p.as_ref().map(|p| normalise(p));
        let here = sec.get("path").map_or(sec.span.clone(), |v| v.span());
        if let Some((_, first)) = seen.iter().find(|(q, _)| *q == norm) {
            let line = d.line(first);
            let message = match &norm {
                Some(n) => format!(
                    "{}: path `{n}` is already routed on line {line}; one of the two would never be used",
                    sec.label
                ),
                None => format!(
                    "{}: a second route without `path` (the first is on line {line}); only the first default route would ever be used",
                    sec.label
                ),
            };
            d.error(&here, message);
        } else {
            seen.push((norm, here));
        }
    }
    let ups = sec.require(d, "upstream").and_then(|v| {
        let list = tables(d, "upstream", v, "…reverse_proxy.upstream")?;
        if list.is_empty() {
            d.error(
                &v.span(),
                "`upstream` is empty; give at least one `{ location = \"host:port\" }`",
            );
            return None;
        }
        let builtin_at = list.iter().position(|(t, _)| is_builtin(t));
        if let Some(i) = builtin_at {
            let (t, span) = list.get(i)?;
            return builtin(d, t, span, list.len(), &sec.label).map(Err);
        }
        let parsed: Vec<Option<Upstream>> = list
            .iter()
            .enumerate()
            .map(|(i, (t, span))| {
                let label = format!("`upstream[{i}]` of {}", sec.label);
                upstream(d, t, span, label, cx)
            })
            .collect();
        parsed.into_iter().collect::<Option<Vec<_>>>().map(Ok)
    });
    let options = l4::opt(
        d,
        sec,
        "upstream_options",
        UpstreamOptions::default(),
        upstream_options,
    );
    let health = l4::opt(d, sec, "health_check", None, |d, v| {
        health_check(d, v, &sec.label)
    });
    let balance = match sec.get("load_balance") {
        Some(v) => balance(d, v, cx),
        None => Some(app_balance.unwrap_or(HttpBalance::None)),
    };
    if let (Some(HttpBalance::PrimaryBackup), Some(None)) = (balance, &health) {
        let span = sec
            .get("load_balance")
            .map_or(sec.span.clone(), |v| v.span());
        d.error(
            &span,
            format!("{}: `load_balance = \"primary_backup\"` needs `health_check` (it routes to the first healthy upstream)", sec.label),
        );
        return None;
    }
    let (upstreams, builtin) = match ups? {
        Ok(list) => (list, None),
        Err(b) => (Vec::new(), Some(b)),
    };
    Some(HttpRoute {
        path: path?,
        replace_path: replace?,
        upstreams,
        builtin,
        balance: balance?,
        options: options?,
        health_check: health?,
    })
}

/// Locations that name a page sluice serves itself instead of an upstream.
const BUILTIN_PREFIX: &str = "builtin:";

fn is_builtin(t: &toml::de::DeTable) -> bool {
    t.get("location")
        .and_then(|v| v.get_ref().as_str())
        .is_some_and(|l| l.starts_with(BUILTIN_PREFIX))
}

/// `upstream = [{ location = "builtin:status" }]`: the only upstream of its route.
fn builtin(
    d: &mut Diags,
    t: &toml::de::DeTable,
    span: &Range<usize>,
    count: usize,
    label: &str,
) -> Option<Builtin> {
    let name = t.get("location")?.get_ref().as_str()?;
    let which = match name.strip_prefix(BUILTIN_PREFIX) {
        Some("status") => Builtin::Status,
        _ => {
            d.error(
                span,
                format!(
                    "{label}: unknown built-in location {}; the one there is is `builtin:status`",
                    walk::echo(name)
                ),
            );
            return None;
        }
    };
    if count > 1 || t.len() > 1 {
        d.error(
            span,
            format!("{label}: `{name}` is served by sluice itself; it must be the route's only upstream, with no other keys"),
        );
        return None;
    }
    Some(which)
}

/// `/a/b/` and `/a/b` route the same prefix.
fn normalise(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// A URL path: starts with `/`, no query, fragment, whitespace or control characters.
fn url_path(d: &mut Diags, key: &str, v: &Value) -> Option<String> {
    let s = walk::string(d, key, v)?;
    let problem = if !s.starts_with('/') {
        Some("must start with `/`")
    } else if s.contains(['?', '#']) {
        Some("must not contain `?` or `#` (a path prefix only)")
    } else if s.contains(|c: char| c.is_whitespace() || c.is_control()) {
        Some("must not contain spaces or control characters")
    } else {
        None
    };
    if let Some(p) = problem {
        d.error(&v.span(), format!("`{key}` {} {p}", walk::echo(s)));
        return None;
    }
    Some(s.to_string())
}

fn upstream(
    d: &mut Diags,
    t: &toml::de::DeTable,
    span: &Range<usize>,
    label: String,
    cx: &AppContext,
) -> Option<Upstream> {
    let sec = Section {
        table: t,
        label,
        span: span.clone(),
    };
    sec.check_keys(d, UPSTREAM_KEYS);
    let tls = l4::opt(d, &sec, "tls", false, |d, v| walk::boolean(d, "tls", v));
    let target = sec.require(d, "location").and_then(|v| {
        let s = walk::string(d, "location", v)?;
        match location(s, tls.unwrap_or(false)) {
            Ok(t) => Some(t),
            Err(e) => {
                d.error(&v.span(), format!("`location` {}: {e}", walk::echo(s)));
                None
            }
        }
    });
    let server_name = l4::opt(d, &sec, "server_name", None, |d, v| {
        let s = walk::string(d, "server_name", v)?;
        match values::check_name(s, false) {
            Ok(()) => Some(Some(s.to_ascii_lowercase())),
            Err(e) => {
                d.error(&v.span(), format!("`server_name`: {e}"));
                None
            }
        }
    });
    let ca = l4::opt(d, &sec, "ca_cert_path", None, |d, v| {
        file_path(d, "ca_cert_path", v, cx.base).map(Some)
    });
    if tls == Some(false) {
        for key in ["server_name", "ca_cert_path"] {
            if let Some(span) = sec.key_span(key) {
                d.warn(
                    &span,
                    format!(
                        "`{key}` of {} has no effect without `tls = true`",
                        sec.label
                    ),
                );
            }
        }
    }
    Some(Upstream {
        target: target?,
        tls: tls?,
        server_name: server_name?,
        ca_cert_path: ca?,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 80, or 443 with TLS.
pub(crate) fn location(s: &str, tls: bool) -> Result<Target, String> {
    let default_port = if tls { 443 } else { 80 };
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "write it without `{scheme}://` (`tls = true` makes the upstream HTTPS)"
        ));
    }
    if s.contains('/') {
        return Err(
            "a location is `host` or `host:port`; a path prefix goes in `replace_path`".to_string(),
        );
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Err(format!("IPv6 addresses need brackets: \"[{s}]\""));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return values::parse_target(&format!("[{inner}]:{default_port}"));
    }
    if s.contains(':') {
        return values::parse_target(s);
    }
    values::parse_target(&format!("{s}:{default_port}"))
}

fn upstream_options(d: &mut Diags, v: &Value) -> Option<UpstreamOptions> {
    const KEY: &str = "upstream_options";
    let mut opts = UpstreamOptions::default();
    let mut spans: Vec<(&str, Range<usize>)> = Vec::new();
    let mut ok = true;
    for (s, span) in walk::strings(d, KEY, v)? {
        let Some(flag) = opts.flag(s) else {
            // `force_http2` is too far from `force_http2_upstream` for an edit-distance match.
            let prefixed: Vec<&str> = UpstreamOptions::NAMES
                .iter()
                .copied()
                .filter(|n| n.starts_with(s) && !s.is_empty())
                .collect();
            let hint = match prefixed.as_slice() {
                [one] => format!("; did you mean `{one}`?"),
                _ => suggest::hint(s, UpstreamOptions::NAMES, "options are"),
            };
            d.error(
                &span,
                format!("`{KEY}`: unknown option {}{hint}", walk::echo(s)),
            );
            ok = false;
            continue;
        };
        if *flag {
            d.error(&span, format!("`{KEY}`: {s} is listed twice"));
            ok = false;
        }
        *flag = true;
        spans.push((s, span));
    }
    let find = |name: &str| {
        spans
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone())
    };
    if let (Some(a), Some(b)) = (find("force_http11_upstream"), find("force_http2_upstream")) {
        let (first, second) = if a.start < b.start { (a, b) } else { (b, a) };
        let line = d.line(&first);
        d.error(
            &second,
            format!("`{KEY}`: force_http11_upstream and force_http2_upstream exclude each other (the other is on line {line})"),
        );
        ok = false;
    }
    if let (Some(_), Some(set)) = (find("keep_original_host"), find("set_upstream_host")) {
        d.warn(
            &set,
            "`set_upstream_host` has no effect: `keep_original_host` is also set and wins",
        );
    }
    ok.then_some(opts)
}

/// `health_check = true|false` or a table; `Some(None)`: no checks.
fn health_check(d: &mut Diags, v: &Value, route: &str) -> Option<Option<HealthCheck>> {
    if let DeValue::Boolean(on) = v.get_ref() {
        return Some(on.then_some(HealthCheck {
            kind: HealthCheckKind::Tcp,
            interval: HC_INTERVAL,
            timeout: HC_TIMEOUT,
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }));
    }
    if !matches!(v.get_ref(), DeValue::Table(_)) {
        d.error(
            &v.span(),
            format!(
                "`health_check`: expected `true`, `false` or a table, found {}",
                walk::found(v.get_ref())
            ),
        );
        return None;
    }
    let sec = section(
        d,
        "health_check",
        format!("`health_check` of {route}"),
        v,
        HEALTH_KEYS,
    )?;
    let kind = l4::opt(d, &sec, "type", CheckType::Tcp, |d, v| {
        walk::choice(d, "type", v, CHECK_TYPES)
    });
    let interval = l4::opt(d, &sec, "interval", HC_INTERVAL, |d, v| {
        l4::positive(d, "interval", v)
    });
    let timeout = l4::opt(d, &sec, "timeout", HC_TIMEOUT, |d, v| {
        l4::positive(d, "timeout", v)
    });
    let threshold = |d: &mut Diags, key: &str, default: u64| {
        l4::opt(d, &sec, key, default, |d, v| {
            walk::int(d, key, v, 1, u64::from(u32::MAX))
        })
        .and_then(|n| u32::try_from(n).ok())
    };
    let unhealthy = threshold(d, "unhealthy_threshold", HC_UNHEALTHY);
    let healthy = threshold(d, "healthy_threshold", HC_HEALTHY);
    let path = l4::opt(d, &sec, "path", None, |d, v| {
        url_path(d, "path", v).map(Some)
    });
    let status = l4::opt(d, &sec, "expected_status", HC_STATUS, |d, v| {
        walk::int(d, "expected_status", v, 100, 599)
    });
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t >= i {
            let span = sec.get("timeout").map_or(sec.span.clone(), |v| v.span());
            let where_i = match sec.get("interval") {
                Some(v) => format!("line {}", d.line(&v.span())),
                None => "the default".to_string(),
            };
            d.error(
                &span,
                format!(
                    "`timeout` ({}) must be less than `interval` ({}, {where_i})",
                    values::fmt_duration(t),
                    values::fmt_duration(i)
                ),
            );
            return None;
        }
    }
    let kind = match kind? {
        CheckType::Tcp => {
            for key in ["path", "expected_status"] {
                if let Some(span) = sec.key_span(key) {
                    d.warn(
                        &span,
                        format!("`{key}` has no effect on a `type = \"tcp\"` health check"),
                    );
                }
            }
            HealthCheckKind::Tcp
        }
        CheckType::Http => {
            let Some(path) = path? else {
                d.error(
                    &sec.span,
                    format!(
                        "{}: `type = \"http\"` needs `path` (e.g. \"/healthz\")",
                        sec.label
                    ),
                );
                return None;
            };
            HealthCheckKind::Http {
                path,
                expected_status: u16::try_from(status?).ok()?,
            }
        }
    };
    Some(Some(HealthCheck {
        kind,
        interval: interval?,
        timeout: timeout?,
        unhealthy_threshold: unhealthy?,
        healthy_threshold: healthy?,
    }))
}
