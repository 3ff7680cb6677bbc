//! The validated, shape-independent model of a config ("plan") that the runtime applies,
//! and the pure diff between two plans' listeners. No IO.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub mod http;
pub use http::*;

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
    /// `workers`: event-loop threads; read at start only.
    pub workers: Workers,
    /// The HTTP engine's listeners, apps and routes (rpxy and combined shapes).
    pub http: Option<HttpPlan>,
}

/// How many event-loop threads serve the TCP listeners (`workers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// One per CPU this process may run on (affinity and cgroup quota respected).
    Auto,
    Count(usize),
}

/// The most `workers` a config may ask for.
pub const MAX_WORKERS: usize = 64;

impl Workers {
    pub fn threads(self) -> usize {
        match self {
            Workers::Auto => std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .min(MAX_WORKERS),
            Workers::Count(n) => n,
        }
    }
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
    /// The HTTP engine's plain-HTTP port (`listen_port` of the rpxy keys).
    Http,
    /// The HTTP engine's HTTPS port (`listen_port_tls`).
    Https,
}

impl ListenerKey {
    /// `tcp`, `udp`, `status tcp` or `http tcp`: how logs and the status page name it.
    pub fn describe(&self) -> &'static str {
        match (self.role, self.transport) {
            (Role::L4(_), Transport::Tcp) => "tcp",
            (Role::L4(_), Transport::Udp) => "udp",
            (Role::Status, _) => "status tcp",
            (Role::Http, _) => "http tcp",
            (Role::Https, _) => "https tcp",
        }
    }
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
        if let Some(http) = &self.http {
            // An HTTP address an L4 service also listens on belongs to the multiplexer,
            // which hands plain HTTP over to the engine in-process.
            let (plain, tls) = http.sockets();
            let wanted = plain
                .into_iter()
                .map(|a| (a, Role::Http))
                .chain(tls.into_iter().map(|a| (a, Role::Https)));
            for (addr, role) in wanted {
                let taken = out
                    .iter()
                    .any(|k| k.transport == Transport::Tcp && k.addr == addr);
                if !taken {
                    out.push(ListenerKey {
                        transport: Transport::Tcp,
                        addr,
                        role,
                    });
                }
            }
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
        let mut out: Vec<String> = self
            .l4
            .iter()
            .filter(|svc| svc.protocols.iter().any(|p| p.ech))
            .map(|svc| {
                format!(
                    "{}: ECH decryption is not implemented in this version; connections are routed by \
                     their outer SNI, as when decryption fails",
                    svc.name
                )
            })
            .collect();
        if let Some(h) = &self.http {
            out.extend(h.limitations());
        }
        out
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
