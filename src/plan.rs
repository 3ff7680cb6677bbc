//! The validated, shape-independent model of a config ("plan") that the runtime applies,
//! and the pure diff between two plans' listeners. No IO.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Everything sluice runs, derived from one config file of any shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Which of the three config shapes the file had.
    pub shape: Shape,
    /// L4 services: one per rpxy-l4 config (or per `[l4]` entry in the combined shape).
    pub l4: Vec<L4Service>,
    /// Where the built-in status page listens (`status_listen`).
    pub status: Vec<SocketAddr>,
    /// DNS cache bounds for target names.
    pub dns: DnsSettings,
    /// How long SIGTERM waits for open connections before exiting.
    pub drain_timeout: Duration,
    /// The HTTP engine's listeners, apps and routes (rpxy and combined shapes).
    pub http: Option<HttpPlan>,
}

/// The three config shapes DESIGN.md names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// rpxy-l4: top-level `listen_port`, `tcp_target`, `udp_target`, `[protocols.*]`.
    L4,
    /// rpxy: top-level `listen_port`, `listen_port_tls`, `[apps.*]`.
    Http,
    /// rpxy keys plus one or more `[l4]` tables.
    Combined,
}

/// Bounds for how long a resolved target name is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    pub min_ttl: Duration,
    pub max_ttl: Duration,
}

/// One L4 listening port with its TCP and UDP behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct L4Service {
    /// `l4` for the rpxy-l4 shape, `l4[N]` for the N-th `[[l4]]` entry.
    pub name: String,
    /// Addresses to listen on (TCP and, when UDP has somewhere to go, UDP).
    pub listen: Vec<SocketAddr>,
    pub tcp: TcpSettings,
    pub udp: UdpSettings,
    /// `tcp_target`: where TCP goes when no protocol rule claims it.
    pub tcp_default: Option<Route>,
    /// `udp_target`: where UDP goes when no protocol rule claims it.
    pub udp_default: Option<Route>,
    /// `[protocols.*]` in file order.
    pub protocols: Vec<ProtocolRoute>,
    /// How long a TCP client may stay silent (or undecided) before it is routed anyway.
    pub probe_timeout: Duration,
    /// The `[protocols.<name>]` whose route takes TCP clients that sent nothing within
    /// `probe_timeout` (server-speaks-first protocols); `None`: `tcp_target`.
    pub on_timeout: Option<String>,
}

impl L4Service {
    /// Whether a TCP listener is needed at all.
    pub fn wants_tcp(&self) -> bool {
        self.tcp_default.is_some() || self.protocols.iter().any(|p| !p.protocol.is_udp())
    }
    /// Whether a UDP listener is needed at all.
    pub fn wants_udp(&self) -> bool {
        self.udp_default.is_some() || self.protocols.iter().any(|p| p.protocol.is_udp())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TcpSettings {
    pub backlog: u32,
    pub max_connections: usize,
    pub connect_timeout: Duration,
    /// No byte in either direction for this long closes the connection; zero disables.
    pub idle_timeout: Duration,
    pub send_proxy: ProxyVersion,
    pub recv_proxy: bool,
    pub trusted_proxies: Vec<Cidr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UdpSettings {
    pub max_flows: usize,
    pub max_flows_per_ip: usize,
    pub idle_lifetime: Duration,
}

/// Where matching traffic goes and how one target is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// `default` for tcp_target/udp_target, else the `[protocols.<name>]` name.
    pub name: String,
    pub targets: Vec<Target>,
    pub balance: Balance,
    /// UDP flow idle lifetime override (`idle_lifetime` on a protocol entry).
    pub idle_lifetime: Option<Duration>,
    /// PROXY protocol override (`send_proxy_protocol` on a protocol entry).
    pub send_proxy: Option<ProxyVersion>,
}

/// A `[protocols.<name>]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolRoute {
    pub protocol: Protocol,
    pub route: Route,
    /// Lower-cased; may start with `*.`.
    pub server_names: Vec<String>,
    pub alpn: Vec<String>,
    /// An `[protocols.<name>.ech]` table was given.
    pub ech: bool,
}

/// Protocols a `[protocols.*]` entry may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tls,
    Http,
    Ssh,
    Socks5,
    Socks4,
    OpenVpn,
    Xmpp,
    Rdp,
    Postgres,
    Quic,
    Wireguard,
    OpenVpnUdp,
    Dns,
}

impl Protocol {
    /// Config spelling and value, one table for parsing and printing.
    pub const ALL: &'static [(&'static str, Protocol)] = &[
        ("tls", Protocol::Tls),
        ("http", Protocol::Http),
        ("ssh", Protocol::Ssh),
        ("socks5", Protocol::Socks5),
        ("socks4", Protocol::Socks4),
        ("openvpn", Protocol::OpenVpn),
        ("xmpp", Protocol::Xmpp),
        ("rdp", Protocol::Rdp),
        ("postgres", Protocol::Postgres),
        ("quic", Protocol::Quic),
        ("wireguard", Protocol::Wireguard),
        ("openvpn_udp", Protocol::OpenVpnUdp),
        ("dns", Protocol::Dns),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(n, _)| n)
    }

    pub fn is_udp(self) -> bool {
        matches!(
            self,
            Protocol::Quic | Protocol::Wireguard | Protocol::OpenVpnUdp | Protocol::Dns
        )
    }

    /// Whether `server_names`/`alpn` mean anything for this protocol.
    pub fn has_sni(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::Quic)
    }
}

/// A backend address as written: an IP literal or a name, and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Set when `host` is an IP literal (no lookup needed).
    pub ip: Option<IpAddr>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// How one target is chosen from a route's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Always the first target (the others are fail-over).
    None,
    Random,
    RoundRobin,
    /// Hash of the client IP: one client sticks to one target.
    SourceIp,
    /// Hash of the client IP and port.
    SourceSocket,
    /// The target with the fewest open connections.
    LeastConn,
}

impl Balance {
    pub const ALL: &'static [(&'static str, Balance)] = &[
        ("none", Balance::None),
        ("random", Balance::Random),
        ("round_robin", Balance::RoundRobin),
        ("source_ip", Balance::SourceIp),
        ("source_socket", Balance::SourceSocket),
        ("least_conn", Balance::LeastConn),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyVersion {
    None,
    V1,
    V2,
}

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this block (IPv4-mapped IPv6 addresses match IPv4 blocks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Transport of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What a listening socket is for: its identity across reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// An L4 service, by index into `Plan::l4`.
    L4(usize),
    Status,
}

impl Plan {
    /// Every socket this plan listens on and which service it feeds.
    pub fn listeners(&self) -> Vec<ListenerKey> {
        let mut out = Vec::new();
        for (i, svc) in self.l4.iter().enumerate() {
            for &addr in &svc.listen {
                if svc.wants_tcp() {
                    out.push(ListenerKey {
                        transport: Transport::Tcp,
                        addr,
                        role: Role::L4(i),
                    });
                }
                if svc.wants_udp() {
                    out.push(ListenerKey {
                        transport: Transport::Udp,
                        addr,
                        role: Role::L4(i),
                    });
                }
            }
        }
        for &addr in &self.status {
            out.push(ListenerKey {
                transport: Transport::Tcp,
                addr,
                role: Role::Status,
            });
        }
        out
    }
}

impl Plan {
    /// Settings this version validates but cannot honour yet. Running with them would do
    /// something other than what the config says, so the runtime refuses such a plan;
    /// `--check` still accepts it.
    pub fn unsupported(&self) -> Vec<String> {
        Vec::new()
    }

    /// Settings that run but do less than they will.
    pub fn limitations(&self) -> Vec<String> {
        self.l4
            .iter()
            .filter(|svc| svc.protocols.iter().any(|p| p.ech))
            .map(|svc| {
                format!(
                    "{}: ECH decryption is not implemented in this version; connections are routed by \
                     their outer SNI, as when decryption fails",
                    svc.name
                )
            })
            .collect()
    }
}

/// What changes between the sockets of a running plan and a new one. A socket is kept when
/// the same transport and address is listened on again, whatever service it now feeds, so a
/// reload never re-binds a port that stays.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListenerDiff {
    /// (old, new) pairs with the same transport and address.
    pub keep: Vec<(ListenerKey, ListenerKey)>,
    /// Sockets to bind.
    pub add: Vec<ListenerKey>,
    /// Sockets to stop accepting on.
    pub remove: Vec<ListenerKey>,
}

/// Compare the listeners of two plans (see [`ListenerDiff`]).
pub fn diff_listeners(old: &[ListenerKey], new: &[ListenerKey]) -> ListenerDiff {
    let same = |a: &ListenerKey, b: &ListenerKey| a.transport == b.transport && a.addr == b.addr;
    let mut diff = ListenerDiff::default();
    for n in new {
        match old.iter().find(|o| same(o, n)) {
            Some(o) => diff.keep.push((*o, *n)),
            None => diff.add.push(*n),
        }
    }
    for o in old {
        if !new.iter().any(|n| same(o, n)) {
            diff.remove.push(*o);
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: Transport, a: &str, role: Role) -> ListenerKey {
        ListenerKey {
            transport: t,
            addr: a.parse().unwrap(),
            role,
        }
    }

    #[test]
    fn diff_keeps_same_address_even_when_role_moves() {
        let old = [
            key(Transport::Tcp, "127.0.0.1:1000", Role::L4(0)),
            key(Transport::Udp, "127.0.0.1:1000", Role::L4(0)),
            key(Transport::Tcp, "127.0.0.1:2000", Role::Status),
        ];
        let new = [
            key(Transport::Tcp, "127.0.0.1:1000", Role::L4(1)),
            key(Transport::Tcp, "127.0.0.1:3000", Role::Status),
        ];
        let d = diff_listeners(&old, &new);
        assert_eq!(d.keep, vec![(old[0], new[0])]);
        assert_eq!(d.add, vec![new[1]]);
        assert_eq!(d.remove, vec![old[1], old[2]]);
    }

    #[test]
    fn diff_of_identical_plans_changes_nothing() {
        let l = [key(Transport::Tcp, "[::1]:1000", Role::L4(0))];
        let d = diff_listeners(&l, &l);
        assert!(d.add.is_empty() && d.remove.is_empty());
        assert_eq!(d.keep.len(), 1);
    }

    #[test]
    fn tcp_and_udp_on_one_port_are_different_sockets() {
        let old = [key(Transport::Tcp, "127.0.0.1:1000", Role::L4(0))];
        let new = [key(Transport::Udp, "127.0.0.1:1000", Role::L4(0))];
        let d = diff_listeners(&old, &new);
        assert_eq!((d.add.len(), d.remove.len(), d.keep.len()), (1, 1, 0));
    }

    #[test]
    fn cidr_contains() {
        let c = Cidr {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let all = Cidr {
            addr: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6 = Cidr {
            addr: "2001:db8::".parse().unwrap(),
            prefix: 32,
        };
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    }
}

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
    pub experimental: HttpExperimental,
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
/// in `deny` is refused; otherwise served. Both empty: everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAccess {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
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
    pub upstreams: Vec<Upstream>,
    pub balance: HttpBalance,
    pub options: UpstreamOptions,
    pub health_check: Option<HealthCheck>,
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
