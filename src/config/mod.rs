//! Config loading: one TOML file of any of the three shapes (rpxy-l4, rpxy, combined) into a
//! validated [`Plan`], every problem reported with its line:col. Only [`load`] does IO.
//!
//! Values are read from toml's spanned `DeTable` (no serde derive) so each key and value keeps
//! its position. Shared settings in the combined shape: `status_listen` and `drain_timeout`
//! live at the top level; the DNS cache is one per process, so `dns_cache_*` go inside `[l4]`
//! tables and, when several `[[l4]]` entries set them, they must agree.
#![deny(clippy::indexing_slicing)]

mod describe;
mod http;
mod http_apps;
mod http_routes;
mod l4;
mod protocols;
mod shape;
mod suggest;
mod values;
mod walk;

#[cfg(test)]
mod describe_tests;
#[cfg(test)]
mod errors_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod l4_tests;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod values_tests;

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::plan::{DnsSettings, HttpPlan, MAX_WORKERS, Plan, Shape, Transport, Workers};
use l4::ServiceOut;
use walk::{Diags, Section};

pub use describe::describe;

/// A validated config and the warnings met on the way.
#[derive(Debug)]
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// One message about one place in the config (line 0: about the file as a whole).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Why a config was rejected: every problem found, in file order.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line == 0 {
                write!(f, "{}: {}", self.file, d.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// sluice's own top-level keys, valid in every shape.
const OWN_KEYS: &[&str] = &["status_listen", "drain_timeout", "workers"];
/// How long SIGTERM waits for open connections by default.
const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// Read `path` and [`parse`] it.
///
/// # Errors
/// The file cannot be read (one diagnostic with line 0), or see [`parse`].
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigError {
            file,
            diagnostics: vec![Diagnostic {
                line: 0,
                col: 0,
                message: format!("cannot read: {e}"),
            }],
        }),
    }
}

/// Validate a config text into a plan; `file` names it in messages, and relative certificate
/// paths are resolved against its directory (nothing is read).
///
/// # Examples
/// ```
/// let text = "listen_port = 8448\ntcp_target = [\"127.0.0.1:22\"]\n";
/// let loaded = sluice::config::parse(text, "inline.toml").unwrap();
/// assert_eq!(loaded.plan.l4[0].listen[0].to_string(), "0.0.0.0:8448");
///
/// let err = sluice::config::parse("listen_port = 0\ntcp_target = \"h:22\"\n", "x.toml");
/// let err = err.unwrap_err();
/// assert!(err.to_string().starts_with("x.toml:1:15: `listen_port`"));
/// ```
///
/// # Errors
/// Every TOML syntax error, or else every semantic error, each with its line:col.
pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
    let mut d = Diags::new(text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    let plan = if syntax.is_empty() {
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        build(&mut d, root.get_ref(), base)
    } else {
        for e in &syntax {
            let span = e.span().unwrap_or(0..0);
            let mut message = format!("TOML syntax error: {}", e.message());
            if e.message() == "duplicate key" {
                if let Some(key) = text.get(span.clone()) {
                    message = format!("TOML syntax error: duplicate key `{key}`");
                }
            }
            d.error(&span, message);
        }
        None
    };
    let Diags {
        mut errors,
        mut warnings,
        ..
    } = d;
    errors.sort_by_key(|e| (e.line, e.col));
    errors.dedup();
    warnings.sort_by_key(|w| (w.line, w.col));
    match plan {
        Some(plan) if errors.is_empty() => Ok(Loaded { plan, warnings }),
        _ => {
            if errors.is_empty() {
                errors.push(Diagnostic {
                    line: 1,
                    col: 1,
                    message: "invalid config".to_string(),
                });
            }
            Err(ConfigError {
                file: file.to_string(),
                diagnostics: errors,
            })
        }
    }
}

/// A service table found in the file, before parsing.
struct ServiceTable<'a, 'i> {
    sec: Section<'a, 'i>,
    name: String,
    prefix: &'static str,
    suffix: String,
}

fn build(d: &mut Diags, table: &DeTable, base: &Path) -> Option<Plan> {
    let root = Section {
        table,
        label: "top level".to_string(),
        span: 0..0,
    };
    let shape::Detected { shape, decided } = shape::detect(d, &root)?;
    let mut tables: Vec<ServiceTable> = Vec::new();
    let mut http = Some(None);
    match shape {
        Shape::L4 => {
            let allowed: Vec<&str> = [l4::L4_KEYS, OWN_KEYS, &["experimental"]].concat();
            let candidates: Vec<&str> = if decided {
                allowed.clone()
            } else {
                [l4::L4_KEYS, http::TOP_KEYS, OWN_KEYS].concat()
            };
            root.check_keys_suggesting(d, &allowed, &candidates);
            if let Some(v) = root.get("experimental") {
                walk::table(d, "experimental", v);
            }
            if decided || root.has("listen_port") {
                let sec = Section {
                    table,
                    label: "top level".to_string(),
                    span: 0..0,
                };
                tables.push(ServiceTable {
                    sec,
                    name: "l4".to_string(),
                    prefix: "protocols",
                    suffix: String::new(),
                });
            }
        }
        Shape::Http => {
            root.check_keys(d, &[http::TOP_KEYS, OWN_KEYS].concat());
            http = http::check(d, &root, base);
        }
        Shape::Combined => {
            for (key, span, _) in root.entries() {
                if shape::is_l4_only(key) {
                    d.error(
                        &span,
                        format!(
                            "`{key}` is an L4 setting; in a file with `[l4]`, move it under `[l4]`"
                        ),
                    );
                }
            }
            let l4_only: Vec<&str> = l4::L4_KEYS
                .iter()
                .copied()
                .filter(|k| shape::is_l4_only(k))
                .collect();
            let allowed = [http::TOP_KEYS, OWN_KEYS, &["l4"], &l4_only].concat();
            let candidates = [http::TOP_KEYS, OWN_KEYS, &["l4"]].concat();
            root.check_keys_suggesting(d, &allowed, &candidates);
            http = http::check(d, &root, base);
            if let Some(v) = root.get("l4") {
                l4_tables(d, v, &mut tables);
            }
        }
    }
    for t in &tables {
        if !std::ptr::eq(t.sec.table, table) {
            t.sec.check_keys(d, l4::L4_KEYS);
        }
    }
    let services: Vec<Option<ServiceOut>> = tables
        .iter()
        .map(|t| l4::service(d, &t.sec, &t.name, t.prefix, &t.suffix))
        .collect();

    let status = status_listen(d, &root);
    let drain = match root.get("drain_timeout") {
        Some(v) => walk::duration(d, "drain_timeout", v),
        None => Some(DEFAULT_DRAIN),
    };
    let workers = match root.get("workers") {
        Some(v) => workers(d, v),
        None => Some(Workers::Count(1)),
    };
    let dns = shared_dns(d, &tables, &services);
    something_to_serve(d, &root, &tables, status.as_ref());
    let services: Vec<ServiceOut> = services.into_iter().collect::<Option<_>>()?;
    let status = status?;
    let http = http?;
    listener_conflicts(d, &services, &status, http.as_ref(), &root);
    Some(Plan {
        shape,
        l4: services.into_iter().map(|s| s.svc).collect(),
        status: status.into_iter().map(|(a, _)| a).collect(),
        dns: dns?,
        drain_timeout: drain?,
        workers: workers?,
        http,
    })
}

/// `workers = N` (1..=MAX_WORKERS) or `"auto"`.
fn workers(d: &mut Diags, v: &walk::Value) -> Option<Workers> {
    match v.get_ref() {
        DeValue::String(s) if s.as_ref() == "auto" => Some(Workers::Auto),
        DeValue::String(s) => {
            d.error(
                &v.span(),
                format!(
                    "`workers`: expected a thread count or \"auto\", found {}",
                    walk::echo(s)
                ),
            );
            None
        }
        _ => walk::int(d, "workers", v, 1, MAX_WORKERS as u64).map(|n| Workers::Count(n as usize)),
    }
}

/// `[l4]` (one service `l4`) or `[[l4]]` (services `l4[0]`, `l4[1]`…).
fn l4_tables<'a, 'i>(d: &mut Diags, v: &'a walk::Value<'i>, out: &mut Vec<ServiceTable<'a, 'i>>) {
    match v.get_ref() {
        DeValue::Table(t) => out.push(ServiceTable {
            sec: Section {
                table: t,
                label: "`[l4]`".to_string(),
                span: v.span(),
            },
            name: "l4".to_string(),
            prefix: "l4.protocols",
            suffix: String::new(),
        }),
        DeValue::Array(a) if a.is_empty() => {
            d.error(
                &v.span(),
                "`l4` is an empty array; write `[[l4]]` tables or remove it",
            );
        }
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let name = format!("l4[{i}]");
                match e.get_ref() {
                    DeValue::Table(t) => out.push(ServiceTable {
                        sec: Section {
                            table: t,
                            label: format!("`{name}`"),
                            span: e.span(),
                        },
                        suffix: format!(" of `{name}`"),
                        name,
                        prefix: "l4.protocols",
                    }),
                    other => d.error(
                        &e.span(),
                        format!("`{name}`: expected a table, found {}", walk::found(other)),
                    ),
                }
            }
        }
        other => d.error(
            &v.span(),
            format!(
                "`l4`: expected a table `[l4]` or tables `[[l4]]`, found {}",
                walk::found(other)
            ),
        ),
    }
}

/// `status_listen`: socket addresses of the built-in status page, with their spans.
fn status_listen(d: &mut Diags, root: &Section) -> Option<Vec<(SocketAddr, Range<usize>)>> {
    let Some(v) = root.get("status_listen") else {
        return Some(Vec::new());
    };
    let mut out: Vec<(SocketAddr, Range<usize>)> = Vec::new();
    let mut ok = true;
    for (s, span) in walk::strings(d, "status_listen", v)? {
        match s.parse::<SocketAddr>() {
            Ok(a) if out.iter().any(|(b, _)| *b == a) => {
                d.error(&span, format!("`status_listen`: {a} is listed twice"));
                ok = false;
            }
            Ok(a) => out.push((a, span)),
            Err(_) => {
                d.error(
                    &span,
                    format!(
                        "`status_listen`: {} is not a socket address (write e.g. \"127.0.0.1:8449\" or \"[::1]:8449\")",
                        walk::echo(s)
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// One DNS cache serves the process: the first service that sets it decides, the others
/// must agree.
fn shared_dns(
    d: &mut Diags,
    tables: &[ServiceTable],
    services: &[Option<ServiceOut>],
) -> Option<DnsSettings> {
    let mut first: Option<(DnsSettings, usize, &str)> = None;
    let mut ok = true;
    for (t, s) in tables.iter().zip(services) {
        let Some((set, span)) = s.as_ref().and_then(|s| s.dns.clone()) else {
            continue;
        };
        match first {
            None => first = Some((set, d.line(&span), &t.name)),
            Some((f, line, name)) if f != set => {
                d.error(
                    &span,
                    format!(
                        "DNS cache settings differ from `{name}` (line {line}); the cache is shared by all L4 services, set `dns_cache_*` once"
                    ),
                );
                ok = false;
            }
            Some(_) => {}
        }
    }
    ok.then(|| first.map_or(l4::DEFAULT_DNS, |(s, _, _)| s))
}

fn has_route(sec: &Section) -> bool {
    l4::ROUTE_KEYS
        .iter()
        .any(|k| match sec.get(k).map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => !t.is_empty(),
            Some(_) => true,
            None => false,
        })
}

/// "nothing to serve" when no L4 route, app or status page exists; a warning for each L4
/// service that routes nothing (it opens no socket).
fn something_to_serve(
    d: &mut Diags,
    root: &Section,
    tables: &[ServiceTable],
    status: Option<&Vec<(SocketAddr, Range<usize>)>>,
) {
    let routes = tables.iter().any(|t| has_route(&t.sec));
    let apps = match root.get("apps").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => !t.is_empty(),
        Some(_) => true,
        None => false,
    };
    let status = status.is_none_or(|s| !s.is_empty());
    if !routes && !apps && !status {
        d.error(
            &(0..0),
            "nothing to serve: no L4 route (`tcp_target`, `udp_target` or `[protocols.*]`), no `[apps.*]` and no `status_listen`",
        );
        return;
    }
    for t in tables.iter().filter(|t| !has_route(&t.sec)) {
        let span = t
            .sec
            .get("listen_port")
            .map_or(t.sec.span.clone(), |v| v.span());
        d.warn(
            &span,
            format!(
                "L4 service `{}` has no route (`tcp_target`, `udp_target` or `[protocols.*]`) and opens no socket",
                t.name
            ),
        );
    }
}

/// How listener conflicts name the HTTP engine's sockets.
const HTTP_OWNER: &str = "the HTTP engine";

/// Two listeners of one transport on one port whose addresses overlap cannot both bind. An
/// L4 service on an HTTP port is no conflict: the multiplexer owns that socket and hands
/// what no L4 rule claims to the HTTP engine.
fn listener_conflicts(
    d: &mut Diags,
    services: &[ServiceOut],
    status: &[(SocketAddr, Range<usize>)],
    http: Option<&HttpPlan>,
    root: &Section,
) {
    let mut socks: Vec<(Transport, SocketAddr, String, Range<usize>)> = Vec::new();
    for s in services {
        let svc = &s.svc;
        for &a in &svc.listen {
            if svc.wants_tcp() {
                socks.push((
                    Transport::Tcp,
                    a,
                    format!("L4 service `{}`", svc.name),
                    s.port_span.clone(),
                ));
            }
            if svc.wants_udp() {
                socks.push((
                    Transport::Udp,
                    a,
                    format!("L4 service `{}`", svc.name),
                    s.port_span.clone(),
                ));
            }
        }
    }
    if let Some(h) = http {
        let (plain, tls) = h.sockets();
        for (key, addrs) in [("listen_port", plain), ("listen_port_tls", tls)] {
            let span = root.get(key).map_or(0..0, |v| v.span());
            for a in addrs {
                socks.push((Transport::Tcp, a, HTTP_OWNER.to_string(), span.clone()));
            }
        }
    }
    for (a, span) in status {
        if a.port() != 0 {
            socks.push((
                Transport::Tcp,
                *a,
                "the status page".to_string(),
                span.clone(),
            ));
        }
    }
    let overlap = |a: &SocketAddr, b: &SocketAddr| {
        a.port() == b.port()
            && a.is_ipv4() == b.is_ipv4()
            && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
    };
    let mut reported = Vec::new();
    for (j, (tj, aj, oj, sj)) in socks.iter().enumerate() {
        // The multiplexer owning an HTTP port is the combined shape's point, not a clash.
        let l4 = |o: &str| o.starts_with("L4 ");
        let shared = |oi: &str| (l4(oi) && oj == HTTP_OWNER) || (oi == HTTP_OWNER && l4(oj));
        let earlier = socks
            .iter()
            .take(j)
            .find(|(ti, ai, oi, _)| ti == tj && oi != oj && !shared(oi) && overlap(ai, aj));
        if let Some((_, ai, oi, si)) = earlier {
            if reported.contains(&(oj, sj.start)) {
                continue;
            }
            reported.push((oj, sj.start));
            let proto = if *tj == Transport::Tcp { "tcp" } else { "udp" };
            let line = d.line(si);
            d.error(
                sj,
                format!("{oj} would listen on {proto} {aj}, which overlaps {proto} {ai} of {oi} (line {line})"),
            );
        }
    }
}
