//! The HTTP engine's part of the plan (rpxy keys): apps, routes, upstreams, health
//! checks and experimental settings. Validated values only; no IO.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Cidr, Target};

/// The HTTP engine's part of a plan: the rpxy keys of an rpxy or combined config.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpPlan {
    /// `listen_port`: plain HTTP.
    pub listen_port: Option<u16>,
    /// `listen_port_tls`: HTTPS (and HTTP/3 on UDP when `h3` is set).
    pub listen_port_tls: Option<u16>,
    /// Addresses both ports listen on: IPv4 then IPv6 (same keys and rules as an L4 service).
    pub listen_addresses: Vec<IpAddr>,
    pub tcp_listen_backlog: u32,
    /// Concurrent streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Open client connections over HTTP/1.1, HTTP/2 and HTTP/3 together.
    pub max_clients: usize,
    /// Open connections per client IP; `None`: no per-IP cap (`max_clients_per_ip = 0`).
    pub max_clients_per_ip: Option<usize>,
    /// The app that serves plain HTTP requests whose host names no app.
    pub default_app: Option<String>,
    /// Peers whose X-Forwarded-* / Forwarded headers are believed.
    pub trusted_forwarded_proxies: Vec<TrustedProxy>,
    pub redact_query_in_access_log: bool,
    /// Largest request body in bytes; `None`: unlimited.
    pub request_max_body_size: Option<u64>,
    /// Key of the encrypted sticky-session cookie.
    pub sticky_cookie_secret: Option<StickySecret>,
    /// Port named in HTTP→HTTPS redirects and Alt-Svc when clients see another one than
    /// `listen_port_tls` (`public_https_port`, or the older `https_redirection_port`).
    pub public_https_port: Option<u16>,
    /// `[apps.*]` in file order.
    pub apps: Vec<HttpApp>,
    pub timeouts: HttpTimeouts,
    pub experimental: HttpExperimental,
}

/// Timeouts of the HTTP engine (sluice extensions; rpxy has fixed ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// `request_header_timeout`: a request head must arrive complete within this (slowloris).
    pub request_header: Duration,
    /// `keepalive_timeout`: an idle client connection between requests is closed after this.
    pub keepalive: Duration,
    /// `upstream_connect_timeout`: then the next upstream is tried (502 when none is left).
    pub upstream_connect: Duration,
    /// `upstream_response_timeout`: no response head from the upstream within this → 504.
    pub upstream_response: Duration,
}

impl Default for HttpTimeouts {
    /// nginx-like: 30 s for a head, 60 s keep-alive, 5 s to connect, 60 s for a response.
    fn default() -> Self {
        HttpTimeouts {
            request_header: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            upstream_connect: Duration::from_secs(5),
            upstream_response: Duration::from_secs(60),
        }
    }
}

impl HttpPlan {
    /// Sockets for plain HTTP, then for HTTPS (TCP; HTTP/3 uses the HTTPS ones over UDP).
    pub fn sockets(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let on = |port: Option<u16>| -> Vec<SocketAddr> {
            port.map_or_else(Vec::new, |p| {
                self.listen_addresses
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, p))
                    .collect()
            })
        };
        (on(self.listen_port), on(self.listen_port_tls))
    }

    /// Configured features this version validates but does not serve yet, one warning each.
    pub fn limitations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let acme: Vec<&str> = self
            .apps
            .iter()
            .filter(|a| a.tls.as_ref().is_some_and(|t| t.cert == CertSource::Acme))
            .map(|a| a.name.as_str())
            .collect();
        if !acme.is_empty() {
            out.push(format!(
                "ACME certificates (apps {}) are not implemented in this version: TLS handshakes for them are refused",
                acme.join(", ")
            ));
        }
        if self.experimental.h3.is_some() {
            out.push("`[experimental.h3]`: HTTP/3 is not implemented in this version; HTTPS is served over TCP only".to_owned());
        }
        let h2: Vec<&str> = self
            .apps
            .iter()
            .filter(|a| a.routes.iter().any(|r| r.options.force_http2_upstream))
            .map(|a| a.name.as_str())
            .collect();
        if !h2.is_empty() {
            out.push(format!(
                "`force_http2_upstream` (apps {}) is not implemented in this version: those upstreams are spoken to in HTTP/1.1",
                h2.join(", ")
            ));
        }
        if self.experimental.cache.is_some() {
            out.push("`[experimental.cache]` is not implemented in this version: responses are not cached".to_owned());
        }
        out
    }

    /// App names in file order.
    pub fn app_names(&self) -> Vec<&str> {
        self.apps.iter().map(|a| a.name.as_str()).collect()
    }
}

/// One entry of `trusted_forwarded_proxies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedProxy {
    Cidr(Cidr),
    /// A CDN's published address ranges, kept by name; the HTTP engine owns the lists.
    Named(ProxyProvider),
}

/// CDNs whose ranges rpxy knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyProvider {
    Cloudflare,
    Fastly,
    Cloudfront,
}

impl ProxyProvider {
    pub const ALL: &'static [(&'static str, ProxyProvider)] = &[
        ("cloudflare", ProxyProvider::Cloudflare),
        ("fastly", ProxyProvider::Fastly),
        ("cloudfront", ProxyProvider::Cloudfront),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(n, _)| n)
    }
}

/// The 32-byte key of the sticky cookie; `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StickySecret(pub [u8; 32]);

impl fmt::Debug for StickySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StickySecret(..)")
    }
}

/// One `[apps.<name>]`: a host name and its routes.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpApp {
    /// The table name, as written.
    pub name: String,
    /// Lower-cased; may start with `*.` (a sluice extension).
    pub server_name: String,
    pub tls: Option<AppTls>,
    /// `reverse_proxy` entries in file order; at most one without `path` (the default).
    pub routes: Vec<HttpRoute>,
    /// `allowhosts`/`denyhosts` (listed as TODO in rpxy's example; sluice implements them).
    pub access: ClientAccess,
}

/// Which client addresses an app answers: an address in `allow` is served; otherwise one
/// in `deny` is refused; any other is served only when `allow` is empty (an allow list
/// alone admits only its addresses). Both empty: everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAccess {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl ClientAccess {
    /// Whether a client at `ip` is served.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|c| c.contains(ip)) {
            return true;
        }
        !self.deny.iter().any(|c| c.contains(ip)) && self.allow.is_empty()
    }
}

/// An app's `tls = { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct AppTls {
    pub cert: CertSource,
    /// Client certificates are required and verified against this CA file (mTLS).
    pub client_ca_cert_path: Option<std::path::PathBuf>,
    /// Plain HTTP requests get a 301 to HTTPS (effective value: false unless both ports are set).
    pub https_redirection: bool,
}

/// Where an app's certificate comes from. Files are not read at load: the TLS engine does.
#[derive(Clone, Debug, PartialEq)]
pub enum CertSource {
    /// PEM files, relative paths already joined to the config file's directory.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    /// Issued and renewed with ACME TLS-ALPN-01 (`[experimental.acme]`).
    Acme,
}

/// One `reverse_proxy` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRoute {
    /// Path prefix (matched on segment boundaries); `None`: the app's default route.
    pub path: Option<String>,
    /// What the matched prefix is rewritten to.
    pub replace_path: Option<String>,
    /// Empty when `builtin` is set.
    pub upstreams: Vec<Upstream>,
    /// A page sluice serves itself (`location = "builtin:status"`).
    pub builtin: Option<Builtin>,
    pub balance: HttpBalance,
    pub options: UpstreamOptions,
    pub health_check: Option<HealthCheck>,
}

/// What a `builtin:` location serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// The status page: HTML, or JSON with `?format=json`.
    Status,
}

/// One `upstream` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    /// Host and port (80, or 443 with `tls`, when the location has none).
    pub target: Target,
    pub tls: bool,
    /// SNI and certificate name to use instead of the target host (sluice extension).
    pub server_name: Option<String>,
    /// Extra CA to trust for this upstream, e.g. a self-signed backend (sluice extension).
    pub ca_cert_path: Option<std::path::PathBuf>,
}

/// How a route picks an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpBalance {
    /// The first (healthy) upstream.
    None,
    RoundRobin,
    Random,
    /// Round robin, then the upstream named by the client's encrypted cookie.
    Sticky,
    /// The first healthy upstream; needs a health check.
    PrimaryBackup,
}

impl HttpBalance {
    pub const ALL: &'static [(&'static str, HttpBalance)] = &[
        ("none", HttpBalance::None),
        ("round_robin", HttpBalance::RoundRobin),
        ("random", HttpBalance::Random),
        ("sticky", HttpBalance::Sticky),
        ("primary_backup", HttpBalance::PrimaryBackup),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }
}

/// `upstream_options` of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpstreamOptions {
    /// Send the client's Host (wins over `set_upstream_host`).
    pub keep_original_host: bool,
    /// Send the upstream's host name as Host.
    pub set_upstream_host: bool,
    /// Add `Upgrade-Insecure-Requests: 1`.
    pub upgrade_insecure_requests: bool,
    pub force_http11_upstream: bool,
    pub force_http2_upstream: bool,
    /// Add (or update) a `Forwarded` header.
    pub forwarded_header: bool,
}

impl UpstreamOptions {
    /// Config spellings, in the order `names` prints them.
    pub const NAMES: &'static [&'static str] = &[
        "keep_original_host",
        "set_upstream_host",
        "upgrade_insecure_requests",
        "force_http11_upstream",
        "force_http2_upstream",
        "forwarded_header",
    ];

    /// The flag a config spelling sets.
    pub fn flag(&mut self, name: &str) -> Option<&mut bool> {
        match name {
            "keep_original_host" => Some(&mut self.keep_original_host),
            "set_upstream_host" => Some(&mut self.set_upstream_host),
            "upgrade_insecure_requests" => Some(&mut self.upgrade_insecure_requests),
            "force_http11_upstream" => Some(&mut self.force_http11_upstream),
            "force_http2_upstream" => Some(&mut self.force_http2_upstream),
            "forwarded_header" => Some(&mut self.forwarded_header),
            _ => None,
        }
    }

    /// The options that are set, by config spelling.
    pub fn names(&self) -> Vec<&'static str> {
        let mut copy = *self;
        Self::NAMES
            .iter()
            .copied()
            .filter(|n| copy.flag(n).is_some_and(|f| *f))
            .collect()
    }
}

/// Active health checking of a route's upstreams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    /// Less than `interval`.
    pub timeout: Duration,
    /// Consecutive failures that mark an upstream unhealthy.
    pub unhealthy_threshold: u32,
    /// Consecutive successes that mark it healthy again.
    pub healthy_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// A TCP connect succeeds.
    Tcp,
    /// `GET path` answers `expected_status`.
    Http { path: String, expected_status: u16 },
}

/// `[experimental]` of the rpxy shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpExperimental {
    /// Serve requests whose Host differs from the TLS SNI instead of answering 421.
    pub ignore_sni_consistency: bool,
    /// A connection is closed after this long whatever it does; `None`: never.
    pub connection_handling_timeout: Option<Duration>,
    /// `[experimental.h3]`: HTTP/3 on UDP `listen_port_tls`.
    pub h3: Option<H3Settings>,
    pub cache: Option<CacheSettings>,
    pub acme: Option<AcmeSettings>,
    /// `[experimental.tcp_recv_proxy_protocol]`: every TCP connection starts with a PROXY header.
    pub tcp_recv_proxy_protocol: Option<RecvProxySettings>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H3Settings {
    pub alt_svc_max_age: Duration,
    pub max_concurrent_connections: u32,
    pub max_concurrent_bidistream: u32,
    pub max_concurrent_unistream: u32,
    /// `None`: no idle timeout (`max_idle_timeout = 0`).
    pub max_idle_timeout: Option<Duration>,
    /// Deprecated h3-only body limit in bytes (overrides the top-level one for h3 streams).
    pub request_max_body_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// As written (rpxy: relative to the working directory).
    pub cache_dir: std::path::PathBuf,
    pub max_cache_entry: usize,
    /// Largest cached response in bytes.
    pub max_cache_each_size: usize,
    /// Responses up to this size stay in memory; larger ones go to files.
    pub max_cache_each_size_on_memory: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeSettings {
    pub dir_url: String,
    pub email: String,
    /// As written (rpxy: relative to the working directory).
    pub registry_path: std::path::PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecvProxySettings {
    /// Only these peers may connect (and must send a PROXY header).
    pub trusted_proxies: Vec<Cidr>,
    /// How long to wait for the header.
    pub timeout: Duration,
}
