//! One L4 service from rpxy-l4 keys (the top level of the rpxy-l4 shape, or one `[l4]` table
//! of the combined shape): listen addresses, TCP/UDP settings, default routes, protocols.
//! No IO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use super::protocols::{self, PROXY_VERSIONS};
use super::suggest;
use super::values;
use super::walk::{self, Diags, Section, Value};
use crate::plan::{
    Balance, DnsSettings, L4Service, ProxyVersion, Route, Target, TcpSettings, UdpSettings,
};

/// Every key of an L4 service table.
pub(crate) const L4_KEYS: &[&str] = &[
    "listen_port",
    "listen_address_v4",
    "listen_address_v6",
    "listen_ipv6",
    "tcp_backlog",
    "tcp_max_connections",
    "tcp_connect_timeout",
    "tcp_idle_timeout",
    "tcp_send_proxy_protocol",
    "tcp_recv_proxy_protocol",
    "tcp_trusted_proxies",
    "tcp_target",
    "tcp_load_balance",
    "udp_target",
    "udp_load_balance",
    "udp_idle_lifetime",
    "udp_max_connections",
    "udp_max_connections_per_ip",
    "dns_cache_min_ttl",
    "dns_cache_max_ttl",
    "probe_timeout",
    "on_timeout",
    "protocols",
];

/// L4 keys that rpxy (HTTP) also has at its top level: they alone do not decide the shape.
pub(crate) const SHARED_KEYS: &[&str] = &[
    "listen_port",
    "listen_ipv6",
    "listen_address_v4",
    "listen_address_v6",
];

/// Keys whose presence means the service routes something.
pub(crate) const ROUTE_KEYS: &[&str] = &["tcp_target", "udp_target", "protocols"];

pub(crate) const DEFAULT_BACKLOG: u64 = 1024;
pub(crate) const DEFAULT_TCP_MAX: usize = 1024;
pub(crate) const DEFAULT_UDP_MAX: usize = 2048;
/// One source may hold at most this many UDP flows unless configured (a flood from one
/// address must not take the whole table).
pub(crate) const DEFAULT_UDP_PER_IP_CAP: usize = 256;
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
pub(crate) const DEFAULT_UDP_IDLE: Duration = Duration::from_secs(30);
/// How long a silent client may wait before `on_timeout` (sslh's default is 2s too).
pub(crate) const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_DNS: DnsSettings = DnsSettings {
    min_ttl: Duration::from_secs(30),
    max_ttl: Duration::from_secs(3600),
};

/// A parsed service plus what the caller checks across services.
pub(crate) struct ServiceOut {
    pub(crate) svc: L4Service,
    /// DNS cache bounds when this table set either key, with the first key's span.
    pub(crate) dns: Option<(DnsSettings, Range<usize>)>,
    /// The `listen_port` value, where listener conflicts are reported.
    pub(crate) port_span: Range<usize>,
}

/// `value` or the default when the key is absent; `None` when present but invalid.
pub(crate) fn opt<T>(
    d: &mut Diags,
    sec: &Section,
    key: &str,
    default: T,
    parse: impl FnOnce(&mut Diags, &Value) -> Option<T>,
) -> Option<T> {
    match sec.get(key) {
        Some(v) => parse(d, v),
        None => Some(default),
    }
}

pub(crate) fn positive(d: &mut Diags, key: &str, v: &Value) -> Option<Duration> {
    let t = walk::duration(d, key, v)?;
    if t.is_zero() {
        d.error(&v.span(), format!("`{key}` must be greater than 0"));
        return None;
    }
    Some(t)
}

/// `tcp_target`, `udp_target`, `target`: a `host:port` string or a non-empty array of them.
pub(crate) fn targets(d: &mut Diags, key: &str, v: &Value) -> Option<Vec<Target>> {
    let list = walk::strings(d, key, v)?;
    if list.is_empty() {
        d.error(
            &v.span(),
            format!("`{key}`: empty target list; give at least one \"host:port\""),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in list {
        match values::parse_target(s) {
            Ok(t) => out.push(t),
            Err(e) => {
                d.error(&span, format!("`{key}`: bad target {}: {e}", walk::echo(s)));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A listen address list: a string or an array, no duplicates, the wildcard alone.
fn addresses(
    d: &mut Diags,
    key: &str,
    v: &Value,
    parse: fn(&str) -> Result<IpAddr, String>,
) -> Option<Vec<IpAddr>> {
    let list = walk::strings(d, key, v)?;
    if list.is_empty() {
        d.error(
            &v.span(),
            format!("`{key}` is empty; remove it to use the default"),
        );
        return None;
    }
    let mut out: Vec<IpAddr> = Vec::new();
    let mut ok = true;
    for (s, span) in &list {
        match parse(s) {
            Ok(ip) if out.contains(&ip) => {
                d.error(span, format!("`{key}`: {ip} is listed twice"));
                ok = false;
            }
            Ok(ip) => out.push(ip),
            Err(e) => {
                d.error(span, format!("`{key}`: {e}"));
                ok = false;
            }
        }
    }
    if out.len() > 1 {
        if let Some((s, span)) = list
            .iter()
            .find(|(s, _)| parse(s).is_ok_and(|ip| ip.is_unspecified()))
        {
            d.error(
                span,
                format!(
                    "`{key}`: {s} means every address and cannot be mixed with specific addresses"
                ),
            );
            ok = false;
        }
    }
    ok.then_some(out)
}

fn v4(s: &str) -> Result<IpAddr, String> {
    values::parse_listen_v4(s).map(IpAddr::V4)
}

fn v6(s: &str) -> Result<IpAddr, String> {
    values::parse_listen_v6(s).map(IpAddr::V6)
}

/// Parse the service in `sec` (its keys already checked by the caller). `prefix` is how its
/// protocols table is written (`protocols`, `l4.protocols`), `suffix` names the service in
/// messages for `[[l4]]` arrays.
pub(crate) fn service(
    d: &mut Diags,
    sec: &Section,
    name: &str,
    prefix: &str,
    suffix: &str,
) -> Option<ServiceOut> {
    let port = sec
        .require(d, "listen_port")
        .and_then(|v| walk::int(d, "listen_port", v, 1, 65535))
        .and_then(|n| u16::try_from(n).ok());
    let port_span = sec
        .get("listen_port")
        .map_or(sec.span.clone(), |v| v.span());
    let listen = listen(d, sec);

    let backlog = opt(d, sec, "tcp_backlog", DEFAULT_BACKLOG, |d, v| {
        walk::int(d, "tcp_backlog", v, 1, u64::from(u32::MAX))
    });
    let tcp_max = opt(d, sec, "tcp_max_connections", DEFAULT_TCP_MAX, |d, v| {
        walk::count(d, "tcp_max_connections", v, 1)
    });
    let udp_max = opt(d, sec, "udp_max_connections", DEFAULT_UDP_MAX, |d, v| {
        walk::count(d, "udp_max_connections", v, 1)
    });
    let per_ip_default = udp_max
        .unwrap_or(DEFAULT_UDP_MAX)
        .min(DEFAULT_UDP_PER_IP_CAP);
    let per_ip = opt(
        d,
        sec,
        "udp_max_connections_per_ip",
        per_ip_default,
        |d, v| {
            let n = walk::count(d, "udp_max_connections_per_ip", v, 1)?;
            match udp_max {
                Some(max) if n > max => {
                    d.error(
                    &v.span(),
                    format!("`udp_max_connections_per_ip` ({n}) is greater than `udp_max_connections` ({max})"),
                );
                    None
                }
                _ => Some(n),
            }
        },
    );
    let connect_timeout = opt(
        d,
        sec,
        "tcp_connect_timeout",
        DEFAULT_CONNECT_TIMEOUT,
        |d, v| positive(d, "tcp_connect_timeout", v),
    );
    let tcp_idle = opt(d, sec, "tcp_idle_timeout", DEFAULT_TCP_IDLE, |d, v| {
        walk::duration(d, "tcp_idle_timeout", v)
    });
    let udp_idle = opt(d, sec, "udp_idle_lifetime", DEFAULT_UDP_IDLE, |d, v| {
        positive(d, "udp_idle_lifetime", v)
    });
    let probe_timeout = opt(d, sec, "probe_timeout", DEFAULT_PROBE_TIMEOUT, |d, v| {
        positive(d, "probe_timeout", v)
    });
    let dns = dns(d, sec);
    let send_proxy = opt(
        d,
        sec,
        "tcp_send_proxy_protocol",
        ProxyVersion::None,
        |d, v| walk::choice(d, "tcp_send_proxy_protocol", v, PROXY_VERSIONS),
    );
    let (recv_proxy, trusted) = proxy_recv(d, sec);

    let tcp_default = default_route(d, sec, "tcp_target", "tcp_load_balance");
    let udp_default = default_route(d, sec, "udp_target", "udp_load_balance");
    let entries = match sec.get("protocols") {
        Some(v) => protocols::parse_all(d, v, prefix, suffix),
        None => Vec::new(),
    };
    let on_timeout = on_timeout(d, sec, &entries);

    let port = port?;
    let listen = listen?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let svc = L4Service {
        name: name.to_string(),
        listen,
        tcp: TcpSettings {
            backlog: u32::try_from(backlog?).ok()?,
            max_connections: tcp_max?,
            connect_timeout: connect_timeout?,
            idle_timeout: tcp_idle?,
            send_proxy: send_proxy?,
            recv_proxy: recv_proxy?,
            trusted_proxies: trusted?,
        },
        udp: UdpSettings {
            max_flows: udp_max?,
            max_flows_per_ip: per_ip?,
            idle_lifetime: udp_idle?,
        },
        tcp_default: tcp_default?,
        udp_default: udp_default?,
        protocols: entries.into_iter().map(|e| e.route).collect(),
        probe_timeout: probe_timeout?,
        on_timeout,
    };
    Some(ServiceOut {
        svc,
        dns: dns?,
        port_span,
    })
}

/// IPv4 addresses then IPv6 addresses (without the port).
pub(crate) fn listen(d: &mut Diags, sec: &Section) -> Option<Vec<IpAddr>> {
    let ipv4 = opt(
        d,
        sec,
        "listen_address_v4",
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        |d, v| addresses(d, "listen_address_v4", v, v4),
    );
    let ipv6_flag = opt(d, sec, "listen_ipv6", false, |d, v| {
        walk::boolean(d, "listen_ipv6", v)
    });
    let ipv6 = match sec.get("listen_address_v6") {
        Some(v) => {
            if let (Some(false), Some(span)) = (ipv6_flag, sec.key_span("listen_ipv6")) {
                d.warn(
                    &span,
                    "`listen_ipv6 = false` is ignored: `listen_address_v6` is set",
                );
            }
            addresses(d, "listen_address_v6", v, v6)
        }
        None if ipv6_flag == Some(true) => Some(vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)]),
        None => Some(Vec::new()),
    };
    ipv6_flag?;
    let mut all = ipv4?;
    all.extend(ipv6?);
    Some(all)
}

/// `dns_cache_min_ttl` ≤ `dns_cache_max_ttl`, each defaulting when absent.
fn dns(d: &mut Diags, sec: &Section) -> Option<Option<(DnsSettings, Range<usize>)>> {
    let min = opt(d, sec, "dns_cache_min_ttl", DEFAULT_DNS.min_ttl, |d, v| {
        walk::duration(d, "dns_cache_min_ttl", v)
    });
    let max = opt(d, sec, "dns_cache_max_ttl", DEFAULT_DNS.max_ttl, |d, v| {
        walk::duration(d, "dns_cache_max_ttl", v)
    });
    let (min, max) = (min?, max?);
    if min > max {
        let span = sec
            .get("dns_cache_min_ttl")
            .map_or(sec.span.clone(), |v| v.span());
        let where_max = match sec.get("dns_cache_max_ttl") {
            Some(v) => format!("line {}", d.line(&v.span())),
            None => "the default".to_string(),
        };
        d.error(
            &span,
            format!(
                "`dns_cache_min_ttl` ({}) is greater than `dns_cache_max_ttl` ({}, {where_max})",
                values::fmt_duration(min),
                values::fmt_duration(max)
            ),
        );
        return None;
    }
    let first = ["dns_cache_min_ttl", "dns_cache_max_ttl"]
        .iter()
        .filter_map(|k| sec.key_span(k))
        .min_by_key(|s| s.start);
    Some(first.map(|span| {
        (
            DnsSettings {
                min_ttl: min,
                max_ttl: max,
            },
            span,
        )
    }))
}

/// `tcp_recv_proxy_protocol` and `tcp_trusted_proxies` (required and non-empty when receiving).
fn proxy_recv(d: &mut Diags, sec: &Section) -> (Option<bool>, Option<Vec<crate::plan::Cidr>>) {
    let recv = opt(d, sec, "tcp_recv_proxy_protocol", false, |d, v| {
        walk::boolean(d, "tcp_recv_proxy_protocol", v)
    });
    let trusted = opt(d, sec, "tcp_trusted_proxies", Vec::new(), |d, v| {
        let mut out = Vec::new();
        let mut ok = true;
        for (s, span) in walk::strings(d, "tcp_trusted_proxies", v)? {
            match values::parse_cidr(s) {
                Ok((cidr, cleared)) => {
                    if cleared {
                        d.warn(
                            &span,
                            format!("`tcp_trusted_proxies`: {s} has host bits set; using {cidr}"),
                        );
                    }
                    out.push(cidr);
                }
                Err(e) => {
                    d.error(&span, format!("`tcp_trusted_proxies`: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    });
    if let (Some(true), Some(list)) = (recv, &trusted) {
        if list.is_empty() {
            let span = sec
                .get("tcp_recv_proxy_protocol")
                .map_or(sec.span.clone(), |v| v.span());
            d.error(
                &span,
                "`tcp_recv_proxy_protocol = true` needs a non-empty `tcp_trusted_proxies` (the CIDRs allowed to send PROXY headers, e.g. [\"10.0.0.0/8\"])",
            );
            return (None, trusted);
        }
    }
    if let (Some(false), Some(span)) = (recv, sec.key_span("tcp_trusted_proxies")) {
        d.warn(
            &span,
            "`tcp_trusted_proxies` has no effect without `tcp_recv_proxy_protocol = true`",
        );
    }
    (recv, trusted)
}

/// `tcp_target`/`udp_target` with its load balance as the route named `default`.
fn default_route(
    d: &mut Diags,
    sec: &Section,
    target_key: &str,
    balance_key: &str,
) -> Option<Option<Route>> {
    let balance = opt(d, sec, balance_key, Balance::None, |d, v| {
        walk::choice(d, balance_key, v, Balance::ALL)
    });
    let Some(v) = sec.get(target_key) else {
        if let Some(span) = sec.key_span(balance_key) {
            d.warn(
                &span,
                format!("`{balance_key}` has no effect without `{target_key}`"),
            );
        }
        return balance.map(|_| None);
    };
    let targets = targets(d, target_key, v);
    Some(Some(Route {
        name: "default".to_string(),
        targets: targets?,
        balance: balance?,
        idle_lifetime: None,
        send_proxy: None,
    }))
}

/// `on_timeout` must name a `[protocols.*]` entry of a TCP protocol; returns that name.
fn on_timeout(d: &mut Diags, sec: &Section, entries: &[protocols::Entry]) -> Option<String> {
    let v = sec.get("on_timeout")?;
    let name = walk::string(d, "on_timeout", v)?;
    let declared: Vec<&str> = match sec.get("protocols").map(|p| p.get_ref()) {
        Some(toml::de::DeValue::Table(t)) => t.keys().map(|k| k.get_ref().as_ref()).collect(),
        _ => Vec::new(),
    };
    if !declared.contains(&name) {
        let hint = if declared.is_empty() {
            "; there are no [protocols.*] entries".to_string()
        } else {
            suggest::hint(name, &declared, "entries are")
        };
        d.error(
            &v.span(),
            format!(
                "`on_timeout`: no protocol entry named {}{hint}",
                walk::echo(name)
            ),
        );
        return None;
    }
    if let Some(e) = entries.iter().find(|e| e.route.route.name == name) {
        if e.route.protocol.is_udp() {
            d.error(
                &v.span(),
                format!(
                    "`on_timeout` names {}, a UDP protocol ({}); a probe timeout only happens on TCP",
                    e.label,
                    e.route.protocol.name()
                ),
            );
            return None;
        }
    }
    Some(name.to_string())
}
