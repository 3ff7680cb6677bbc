//! The `sluice --check` report: where each listener listens and where each route goes, in a
//! compact, stable text form. No IO.

use std::fmt::Write as _;

use super::Loaded;
use super::values::fmt_duration;
use crate::plan::{L4Service, ProtocolRoute, ProxyVersion, Route, Shape};

/// Width of the label column, so values line up.
const LABEL: usize = 12;

fn row(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "{label:<LABEL$}{text}");
}

fn sub_row(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "  {label:<w$}{text}", w = LABEL - 2);
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::L4 => "rpxy-l4 shape",
        Shape::Http => "rpxy shape",
        Shape::Combined => "combined shape (rpxy + l4)",
    }
}

fn proxy_name(v: ProxyVersion) -> &'static str {
    match v {
        ProxyVersion::None => "none",
        ProxyVersion::V1 => "v1",
        ProxyVersion::V2 => "v2",
    }
}

/// `a:1, b:2 (round_robin)`.
fn route_text(r: &Route) -> String {
    let targets: Vec<String> = r.targets.iter().map(ToString::to_string).collect();
    format!("{} ({})", targets.join(", "), r.balance.name())
}

fn protocol_text(p: &ProtocolRoute) -> String {
    let mut s = format!("{}: {}", p.route.name, p.protocol.name());
    if !p.server_names.is_empty() {
        let _ = write!(s, " sni [{}]", p.server_names.join(", "));
    }
    if !p.alpn.is_empty() {
        let _ = write!(s, " alpn [{}]", p.alpn.join(", "));
    }
    if p.ech {
        s.push_str(" ech");
    }
    let _ = write!(s, " -> {}", route_text(&p.route));
    if let Some(t) = p.route.idle_lifetime {
        let _ = write!(s, "; idle {}", fmt_duration(t));
    }
    if let Some(v) = p.route.send_proxy {
        let _ = write!(s, "; send PROXY {}", proxy_name(v));
    }
    s
}

fn service(out: &mut String, svc: &L4Service) {
    let _ = writeln!(out, "l4 service `{}`", svc.name);
    let transports = match (svc.wants_tcp(), svc.wants_udp()) {
        (true, true) => "tcp+udp",
        (true, false) => "tcp",
        (false, true) => "udp",
        (false, false) => "nothing (no route)",
    };
    let addrs: Vec<String> = svc.listen.iter().map(ToString::to_string).collect();
    sub_row(out, "listen", &format!("{transports} {}", addrs.join(", ")));

    if svc.wants_tcp() {
        let t = &svc.tcp;
        let mut s = match &svc.tcp_default {
            Some(r) => format!("default -> {}", route_text(r)),
            None => "no default (unmatched connections are closed)".to_string(),
        };
        let idle = if t.idle_timeout.is_zero() {
            "off".to_string()
        } else {
            fmt_duration(t.idle_timeout)
        };
        let _ = write!(
            s,
            "; max {} conns, backlog {}, connect timeout {}, idle timeout {idle}",
            t.max_connections,
            t.backlog,
            fmt_duration(t.connect_timeout)
        );
        if t.send_proxy != ProxyVersion::None {
            let _ = write!(s, ", send PROXY {}", proxy_name(t.send_proxy));
        }
        if t.recv_proxy {
            let from: Vec<String> = t.trusted_proxies.iter().map(ToString::to_string).collect();
            let _ = write!(s, ", PROXY header required from {}", from.join(", "));
        }
        sub_row(out, "tcp", &s);
    }
    if svc.wants_udp() {
        let u = &svc.udp;
        let mut s = match &svc.udp_default {
            Some(r) => format!("default -> {}", route_text(r)),
            None => "no default (unmatched datagrams are dropped)".to_string(),
        };
        let _ = write!(
            s,
            "; idle {}, max {} flows ({} per source IP)",
            fmt_duration(u.idle_lifetime),
            u.max_flows,
            u.max_flows_per_ip
        );
        sub_row(out, "udp", &s);
    }
    for p in &svc.protocols {
        sub_row(out, "protocol", &protocol_text(p));
    }
    if svc.protocols.iter().any(|p| !p.protocol.is_udp()) {
        let silent = match &svc.on_timeout {
            Some(name) => format!("route {name}"),
            None => "the default".to_string(),
        };
        let s = format!(
            "after {} without a decision: unmatched; silent clients go to {silent}",
            fmt_duration(svc.probe_timeout)
        );
        sub_row(out, "probe", &s);
    }
}

/// The report `sluice --check` prints for a valid config (warnings included).
///
/// # Examples
/// ```
/// let loaded = sluice::config::parse("status_listen = \"127.0.0.1:8449\"\n", "s.toml").unwrap();
/// let report = sluice::config::describe(&loaded, "s.toml");
/// assert!(report.starts_with("config s.toml: rpxy-l4 shape, OK\n"));
/// assert!(report.contains("status page http://127.0.0.1:8449/\n"));
/// ```
pub fn describe(loaded: &Loaded, file: &str) -> String {
    let plan = &loaded.plan;
    let mut out = String::new();
    let _ = writeln!(out, "config {file}: {}, OK", shape_name(plan.shape));
    for svc in &plan.l4 {
        service(&mut out, svc);
    }
    if !plan.l4.is_empty() {
        let text = format!(
            "ttl {}..{}",
            fmt_duration(plan.dns.min_ttl),
            fmt_duration(plan.dns.max_ttl)
        );
        row(&mut out, "dns cache", &text);
    }
    for a in &plan.status {
        row(&mut out, "status page", &format!("http://{a}/"));
    }
    if plan.shape != Shape::L4 {
        let apps = if plan.http_apps.is_empty() {
            "none".to_string()
        } else {
            plan.http_apps.join(", ")
        };
        row(
            &mut out,
            "apps",
            &format!("{apps} (HTTP engine: not in this version)"),
        );
    }
    row(&mut out, "drain", &fmt_duration(plan.drain_timeout));
    for w in &loaded.warnings {
        row(
            &mut out,
            "warning",
            &format!("{file}:{}:{}: {}", w.line, w.col, w.message),
        );
    }
    out
}
