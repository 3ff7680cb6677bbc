//! Unit tests of the rpxy-l4 shape: the upstream reference files load with the values they
//! state, defaults, and every L4 key. No IO (the reference files are compiled in).
#![allow(clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use super::testing::{err_at, l4_with, ok};
use crate::plan::{Balance, Protocol, ProxyVersion, Shape, Workers};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/rpxy-l4.config.example.toml"
));
const SPEC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/rpxy-l4.config.spec.toml"
));

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn reference_example_loads_with_its_values() {
    let l = ok(EXAMPLE);
    let p = &l.plan;
    assert_eq!(p.shape, Shape::L4);
    assert_eq!(p.l4.len(), 1);
    let s = &p.l4[0];
    assert_eq!(s.name, "l4");
    assert_eq!(s.listen, addrs(&["0.0.0.0:8448", "[::]:8448"]));
    assert_eq!(
        (s.tcp.backlog, s.tcp.max_connections, s.udp.max_flows),
        (1024, 1024, 2048)
    );
    assert_eq!(p.dns.min_ttl, Duration::from_secs(30));
    assert_eq!(p.dns.max_ttl, Duration::from_secs(3600));
    let tcp = s.tcp_default.as_ref().unwrap();
    assert_eq!(tcp.name, "default");
    assert_eq!(tcp.balance, Balance::SourceIp);
    assert_eq!(tcp.targets[0].host, "one.one.one.one");
    assert_eq!(tcp.targets[0].ip, None);
    assert_eq!(tcp.targets[1].to_string(), "1.1.1.1:53");
    assert_eq!(
        s.udp_default.as_ref().unwrap().targets[0].host,
        "dns.google"
    );
    assert_eq!(s.udp.idle_lifetime, Duration::from_secs(30));
    let names: Vec<&str> = s.protocols.iter().map(|p| p.route.name.as_str()).collect();
    assert_eq!(
        names,
        ["http_1", "tls_1", "tls_2", "quic_1", "wireguard_1"],
        "file order"
    );
    let tls1 = &s.protocols[1];
    assert_eq!(
        (tls1.protocol, tls1.alpn.clone()),
        (Protocol::Tls, vec!["dot".to_string()])
    );
    let tls2 = &s.protocols[2];
    assert_eq!(tls2.server_names, ["localhost"]);
    assert_eq!(tls2.route.targets.len(), 3);
    let quic = &s.protocols[3];
    assert_eq!(quic.protocol, Protocol::Quic);
    assert_eq!(quic.route.idle_lifetime, Some(Duration::from_secs(30)));
    assert_eq!(quic.alpn, ["h3"]);
    assert_eq!(s.protocols[4].protocol, Protocol::Wireguard);
    assert!(s.wants_tcp() && s.wants_udp());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn reference_spec_loads_with_its_values() {
    let l = ok(SPEC);
    let s = &l.plan.l4[0];
    assert_eq!(s.listen, addrs(&["0.0.0.0:8448", "[::]:8448"]));
    assert_eq!(
        s.tcp_default.as_ref().unwrap().targets[0].to_string(),
        "192.168.122.4:53"
    );
    let by_name = |n: &str| s.protocols.iter().find(|p| p.route.name == n).unwrap();
    assert_eq!(
        by_name("tls_2").server_names,
        ["example.com", "example.org"]
    );
    assert_eq!(
        by_name("tls_3").alpn,
        ["h2", "http/1.1"],
        "alpns is an alias of alpn"
    );
    let tls4 = by_name("tls_4");
    assert!(tls4.ech);
    assert_eq!(tls4.server_names, ["my-public-name.example.com"]);
    assert_eq!(tls4.route.targets[1].host, "default-backend.example.com");
    assert_eq!(
        by_name("quic").route.idle_lifetime,
        Some(Duration::from_secs(30))
    );
    assert_eq!(by_name("ssh").protocol, Protocol::Ssh);
    assert_eq!(by_name("socks5").route.targets[0].port, 1080);
    assert_eq!(s.protocols.len(), 7);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn defaults_of_a_minimal_service() {
    let l = ok(&l4_with(""));
    let p = &l.plan;
    let s = &p.l4[0];
    assert_eq!(
        s.listen,
        addrs(&["0.0.0.0:8448"]),
        "IPv6 only with listen_ipv6"
    );
    assert_eq!(s.tcp.backlog, 1024);
    assert_eq!(s.tcp.max_connections, 1024);
    assert_eq!(s.tcp.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.tcp.idle_timeout, Duration::from_secs(3600));
    assert_eq!(s.tcp.send_proxy, ProxyVersion::None);
    assert!(!s.tcp.recv_proxy);
    assert_eq!((s.udp.max_flows, s.udp.max_flows_per_ip), (2048, 256));
    assert_eq!(s.udp.idle_lifetime, Duration::from_secs(30));
    assert_eq!(s.tcp_default.as_ref().unwrap().balance, Balance::None);
    assert!(s.udp_default.is_none());
    assert!(s.wants_tcp() && !s.wants_udp());
    assert_eq!(p.drain_timeout, Duration::from_secs(10));
    assert!(p.status.is_empty() && p.http.is_none());
}

#[test]
fn every_tcp_and_udp_setting_is_read() {
    let l = ok(&l4_with(
        r#"tcp_backlog = 64
tcp_max_connections = 10
tcp_connect_timeout = "1500ms"
tcp_idle_timeout = 0
udp_target = "[2001:db8::53]:53"
udp_max_connections = 100
udp_idle_lifetime = "2m"
udp_load_balance = "round_robin"
tcp_load_balance = "least_conn"
tcp_send_proxy_protocol = "v1"
tcp_recv_proxy_protocol = true
tcp_trusted_proxies = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
dns_cache_min_ttl = 5
dns_cache_max_ttl = "10m"
probe_timeout = "250ms"
drain_timeout = "3s"
"#,
    ));
    let s = &l.plan.l4[0];
    assert_eq!((s.tcp.backlog, s.tcp.max_connections), (64, 10));
    assert_eq!(s.tcp.connect_timeout, Duration::from_millis(1500));
    assert_eq!(s.tcp.idle_timeout, Duration::ZERO);
    assert_eq!(s.tcp.send_proxy, ProxyVersion::V1);
    assert!(s.tcp.recv_proxy);
    let cidrs: Vec<String> = s
        .tcp
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(cidrs, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]);
    assert_eq!(
        (s.udp.max_flows, s.udp.max_flows_per_ip),
        (100, 100),
        "per-IP default ≤ max"
    );
    assert_eq!(s.udp.idle_lifetime, Duration::from_secs(120));
    let udp = s.udp_default.as_ref().unwrap();
    assert_eq!(
        (udp.balance, udp.targets[0].to_string()),
        (Balance::RoundRobin, "[2001:db8::53]:53".into())
    );
    assert_eq!(s.tcp_default.as_ref().unwrap().balance, Balance::LeastConn);
    assert_eq!(l.plan.dns.min_ttl, Duration::from_secs(5));
    assert_eq!(l.plan.dns.max_ttl, Duration::from_secs(600));
    assert_eq!(l.plan.drain_timeout, Duration::from_secs(3));
}

#[test]
fn listen_addresses_v4_first_then_v6() {
    let l = ok(&l4_with(
        "listen_address_v4 = [\"127.0.0.1\", \"10.0.0.5\"]\nlisten_address_v6 = [\"::1\", \"[fe80::1]\"]\n",
    ));
    assert_eq!(
        l.plan.l4[0].listen,
        addrs(&[
            "127.0.0.1:8448",
            "10.0.0.5:8448",
            "[::1]:8448",
            "[fe80::1]:8448"
        ])
    );
    let l = ok(&l4_with(
        "listen_address_v6 = \"[::]\"\nlisten_address_v4 = \"127.0.0.1\"\n",
    ));
    assert_eq!(
        l.plan.l4[0].listen,
        addrs(&["127.0.0.1:8448", "[::]:8448"]),
        "v6 implies IPv6"
    );
}

#[test]
fn listen_ipv6_false_with_v6_addresses_warns() {
    let l = ok(&l4_with(
        "listen_ipv6 = false\nlisten_address_v6 = \"::1\"\n",
    ));
    assert_eq!(l.plan.l4[0].listen, addrs(&["0.0.0.0:8448", "[::1]:8448"]));
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].line, 3);
    assert!(l.warnings[0].message.contains("ignored"));
}

#[test]
fn protocol_entry_overrides_and_udp_proxy_warning() {
    let l = ok(&l4_with(
        r#"[protocols.wg]
protocol = "wireguard"
target = "10.0.0.9:51820"
idle_lifetime = "3m"
send_proxy_protocol = "v2"
[protocols.git]
protocol = "ssh"
target = ["git.lan:22"]
send_proxy_protocol = "v2"
load_balance = "random"
[protocols.web]
protocol = "tls"
target = ["10.0.0.2:443"]
server_names = ["Example.COM", "*.Example.org"]
"#,
    ));
    let ps = &l.plan.l4[0].protocols;
    assert_eq!(ps[0].route.idle_lifetime, Some(Duration::from_secs(180)));
    assert_eq!(ps[0].route.send_proxy, None, "ignored on UDP");
    assert_eq!(ps[1].route.send_proxy, Some(ProxyVersion::V2));
    assert_eq!(ps[1].route.balance, Balance::Random);
    assert_eq!(
        ps[2].server_names,
        ["example.com", "*.example.org"],
        "lower-cased"
    );
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].line, 7);
    assert!(l.warnings[0].message.contains("ignored for wireguard"));
}

#[test]
fn several_entries_of_one_protocol_differing_by_sni_or_alpn_are_fine() {
    let l = ok(&l4_with(
        r#"on_timeout = "ssh"
[protocols.a]
protocol = "tls"
target = ["10.0.0.1:443"]
server_names = ["a.example"]
[protocols.b]
protocol = "tls"
target = ["10.0.0.2:443"]
server_names = ["a.example"]
alpn = ["h2"]
[protocols.c]
protocol = "tls"
target = ["10.0.0.3:443"]
[protocols.ssh]
protocol = "ssh"
target = ["127.0.0.1:22"]
"#,
    ));
    assert_eq!(l.plan.l4[0].protocols.len(), 4);
}

#[test]
fn inline_ech_form_is_accepted() {
    let l = ok(&l4_with(
        r#"[protocols.q]
protocol = "quic"
target = ["10.0.0.1:443"]
ech = { private_keys = ["/path/to/private.key"], server_names = ["example.org"] }
"#,
    ));
    assert!(l.plan.l4[0].protocols[0].ech);
    assert!(l.plan.l4[0].wants_udp());
}

#[test]
fn status_listen_alone_serves_the_status_page() {
    let l = ok("status_listen = [\"127.0.0.1:8449\", \"[::1]:8449\"]\n");
    assert_eq!(l.plan.shape, Shape::L4);
    assert!(l.plan.l4.is_empty());
    assert_eq!(l.plan.status, addrs(&["127.0.0.1:8449", "[::1]:8449"]));
    let l = ok("listen_port = 8448\nstatus_listen = \"127.0.0.1:8449\"\n");
    assert_eq!(l.plan.l4.len(), 1);
    assert!(
        l.warnings[0].message.contains("has no route"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn empty_experimental_table_is_allowed_in_the_l4_shape() {
    let l = ok(&l4_with("[experimental]\n"));
    assert_eq!(l.plan.shape, Shape::L4);
}

#[test]
fn workers_is_a_thread_count_or_auto_in_every_shape() {
    assert_eq!(ok(&l4_with("")).plan.workers, Workers::Count(1));
    assert_eq!(
        ok(&l4_with("workers = 4\n")).plan.workers,
        Workers::Count(4)
    );
    let auto = ok(&l4_with("workers = \"auto\"\n")).plan.workers;
    assert_eq!(auto, Workers::Auto);
    assert!((1..=crate::plan::MAX_WORKERS).contains(&auto.threads()));
    let http = "workers = 2\nlisten_port = 8080\n[apps.a]\nserver_name = \"a.example\"\n";
    assert_eq!(ok(http).plan.workers, Workers::Count(2));
    err_at(
        &l4_with("workers = 0\n"),
        "expected an integer 1..=64",
        3,
        11,
    );
    err_at(&l4_with("workers = 65\n"), "`workers`", 3, 11);
    err_at(
        &l4_with("workers = \"all\"\n"),
        "a thread count or \"auto\"",
        3,
        11,
    );
}
