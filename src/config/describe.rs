//! The `sluice --check` report: where each listener listens and where each route goes, in a
//! compact, stable text form. No IO.

use std::fmt::Write as _;

use super::Loaded;
use super::values::fmt_duration;
use crate::plan::{
    CertSource, HealthCheckKind, HttpApp, HttpPlan, HttpRoute, L4Service, ProtocolRoute,
    ProxyVersion, Route, Shape, TrustedProxy, Upstream,
};

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

fn addrs(list: &[std::net::SocketAddr]) -> String {
    let v: Vec<String> = list.iter().map(ToString::to_string).collect();
    v.join(", ")
}

/// `4096` bytes as `4k`, `256m`… when exact.
fn size(n: u64) -> String {
    for (shift, unit) in [(30, "g"), (20, "m"), (10, "k")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// The HTTP engine: listeners, limits, then each app with its routes and upstreams.
fn http_service(out: &mut String, h: &HttpPlan) {
    let _ = writeln!(out, "http service");
    let (plain, tls) = h.sockets();
    let mut listen = Vec::new();
    if !plain.is_empty() {
        listen.push(format!("http {}", addrs(&plain)));
    }
    if !tls.is_empty() {
        listen.push(format!("https {}", addrs(&tls)));
        if h.experimental.h3.is_some() {
            listen.push(format!("h3 udp {}", addrs(&tls)));
        }
    }
    if listen.is_empty() {
        listen.push("nothing (no listen_port or listen_port_tls)".to_string());
    }
    sub_row(out, "listen", &listen.join("; "));
    let t = &h.timeouts;
    sub_row(
        out,
        "timeouts",
        &format!(
            "request head {:?}, keep-alive {:?}, upstream connect {:?}, upstream response {:?}",
            t.request_header, t.keepalive, t.upstream_connect, t.upstream_response
        ),
    );
    let mut limits = format!("max {} clients", h.max_clients);
    if let Some(n) = h.max_clients_per_ip {
        let _ = write!(limits, " ({n} per IP)");
    }
    let body = h
        .request_max_body_size
        .map_or("unlimited".to_string(), size);
    let _ = write!(
        limits,
        ", {} h2 streams, backlog {}, body {body}",
        h.max_concurrent_streams, h.tcp_listen_backlog
    );
    if let Some(t) = h.experimental.connection_handling_timeout {
        let _ = write!(limits, ", connections closed after {}", fmt_duration(t));
    }
    sub_row(out, "limits", &limits);
    if let Some(p) = h.public_https_port {
        sub_row(
            out,
            "public",
            &format!("https port {p} in redirects and Alt-Svc"),
        );
    }
    if let Some(app) = &h.default_app {
        sub_row(
            out,
            "default",
            &format!("app {app} (plain HTTP with an unknown host)"),
        );
    }
    if !h.trusted_forwarded_proxies.is_empty() {
        let v: Vec<String> = h
            .trusted_forwarded_proxies
            .iter()
            .map(|p| match p {
                TrustedProxy::Cidr(c) => c.to_string(),
                TrustedProxy::Named(n) => n.name().to_string(),
            })
            .collect();
        sub_row(out, "forwarded", &format!("trusted from {}", v.join(", ")));
    }
    let x = &h.experimental;
    let mut extra = Vec::new();
    if x.ignore_sni_consistency {
        extra.push("SNI/Host consistency not enforced".to_string());
    }
    if let Some(c) = &x.cache {
        extra.push(format!(
            "cache {} ({} entries, each ≤ {}, in memory ≤ {})",
            c.cache_dir.display(),
            c.max_cache_entry,
            size(c.max_cache_each_size as u64),
            size(c.max_cache_each_size_on_memory as u64)
        ));
    }
    if let Some(a) = &x.acme {
        extra.push(format!("acme {} as {}", a.dir_url, a.email));
    }
    if let Some(p) = &x.tcp_recv_proxy_protocol {
        let from: Vec<String> = p.trusted_proxies.iter().map(ToString::to_string).collect();
        extra.push(format!("PROXY header required from {}", from.join(", ")));
    }
    if h.redact_query_in_access_log {
        extra.push("query values redacted in the access log".to_string());
    }
    for e in extra {
        sub_row(out, "option", &e);
    }
    for app in &h.apps {
        http_app(out, app);
    }
}

fn http_app(out: &mut String, app: &HttpApp) {
    let _ = writeln!(out, "app `{}` {}", app.name, app.server_name);
    if let Some(t) = &app.tls {
        let mut s = match &t.cert {
            CertSource::Files { cert, key } => {
                format!("cert {} key {}", cert.display(), key.display())
            }
            CertSource::Acme => "cert from ACME".to_string(),
        };
        if let Some(ca) = &t.client_ca_cert_path {
            let _ = write!(s, "; client certs verified by {}", ca.display());
        }
        if t.https_redirection {
            s.push_str("; http redirects to https");
        }
        sub_row(out, "tls", &s);
    }
    let acl = |list: &[crate::plan::Cidr]| {
        let v: Vec<String> = list.iter().map(ToString::to_string).collect();
        v.join(", ")
    };
    if !app.access.allow.is_empty() {
        sub_row(out, "allow", &acl(&app.access.allow));
    }
    if !app.access.deny.is_empty() {
        sub_row(out, "deny", &acl(&app.access.deny));
    }
    if app.routes.is_empty() {
        sub_row(out, "route", "none (404)");
    }
    for r in &app.routes {
        sub_row(out, "route", &http_route(r));
    }
}

fn upstream_text(u: &Upstream) -> String {
    let mut s = format!("{}://{}", if u.tls { "https" } else { "http" }, u.target);
    if let Some(n) = &u.server_name {
        let _ = write!(s, " sni {n}");
    }
    if let Some(ca) = &u.ca_cert_path {
        let _ = write!(s, " ca {}", ca.display());
    }
    s
}

/// `/maps (as /replacing/path1) -> http://a:80, http://b:80 (random); force_http11_upstream`.
fn http_route(r: &HttpRoute) -> String {
    let mut s = r.path.clone().unwrap_or_else(|| "(default)".to_string());
    if let Some(p) = &r.replace_path {
        let _ = write!(s, " (as {p})");
    }
    if r.builtin.is_some() {
        s.push_str(" -> built-in status page (HTML; JSON with ?format=json)");
        return s;
    }
    let ups: Vec<String> = r.upstreams.iter().map(upstream_text).collect();
    let _ = write!(s, " -> {} ({})", ups.join(", "), r.balance.name());
    let opts = r.options.names();
    if !opts.is_empty() {
        let _ = write!(s, "; {}", opts.join(", "));
    }
    if let Some(hc) = &r.health_check {
        let kind = match &hc.kind {
            HealthCheckKind::Tcp => "tcp".to_string(),
            HealthCheckKind::Http {
                path,
                expected_status,
            } => format!("http {path} = {expected_status}"),
        };
        let _ = write!(
            s,
            "; health {kind} every {} (timeout {}, down after {}, up after {})",
            fmt_duration(hc.interval),
            fmt_duration(hc.timeout),
            hc.unhealthy_threshold,
            hc.healthy_threshold
        );
    }
    s
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
    match &plan.http {
        Some(h) => http_service(&mut out, h),
        None if plan.shape != Shape::L4 => row(&mut out, "http", "no listen_port and no apps"),
        None => {}
    }
    row(&mut out, "drain", &fmt_duration(plan.drain_timeout));
    let workers = match plan.workers {
        crate::plan::Workers::Auto => format!("auto ({} on this machine)", plan.workers.threads()),
        crate::plan::Workers::Count(n) => n.to_string(),
    };
    row(&mut out, "workers", &workers);
    for w in &loaded.warnings {
        row(
            &mut out,
            "warning",
            &format!("{file}:{}:{}: {}", w.line, w.col, w.message),
        );
    }
    out
}
