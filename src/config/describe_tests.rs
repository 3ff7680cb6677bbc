//! Unit tests of the `sluice --check` report. No IO.

use super::describe;
use super::testing::ok;

#[test]
fn l4_report_says_where_it_listens_and_routes() {
    let text = r#"listen_port = 8448
listen_ipv6 = true
tcp_target = ["192.168.122.4:53"]
tcp_load_balance = "source_ip"
udp_target = ["192.168.122.4:53", "[2001:db8::1]:53"]
tcp_send_proxy_protocol = "v2"
status_listen = "127.0.0.1:8449"
[protocols.tls_1]
protocol = "tls"
target = ["192.168.122.4:443"]
server_names = ["example.com"]
alpn = ["h2"]
send_proxy_protocol = "v1"
[protocols.dns]
protocol = "dns"
target = ["9.9.9.9:53"]
send_proxy_protocol = "v1"
"#;
    let report = describe(&ok(text), "/etc/sluice.toml");
    let expected = "\
config /etc/sluice.toml: rpxy-l4 shape, OK
l4 service `l4`
  listen    tcp+udp 0.0.0.0:8448, [::]:8448
  tcp       default -> 192.168.122.4:53 (source_ip); max 1024 conns, backlog 1024, connect timeout 5s, idle timeout 1h, send PROXY v2
  udp       default -> 192.168.122.4:53, [2001:db8::1]:53 (none); idle 30s, max 2048 flows (256 per source IP)
  protocol  tls_1: tls sni [example.com] alpn [h2] -> 192.168.122.4:443 (none); send PROXY v1
  protocol  dns: dns -> 9.9.9.9:53 (none)
  probe     after 2s without a decision: unmatched; silent clients go to the default
dns cache   ttl 30s..1h
status page http://127.0.0.1:8449/
drain       10s
warning     /etc/sluice.toml:17:23: `send_proxy_protocol` is ignored for dns: PROXY protocol is only sent over TCP
";
    assert_eq!(report, expected);
}

#[test]
fn report_without_default_routes_and_with_proxy_receive() {
    let text = r#"listen_port = 443
tcp_idle_timeout = 0
tcp_recv_proxy_protocol = true
tcp_trusted_proxies = ["10.0.0.0/8"]
[protocols.ssh]
protocol = "ssh"
target = "127.0.0.1:22"
"#;
    let report = describe(&ok(text), "c.toml");
    assert!(report.contains("  listen    tcp 0.0.0.0:443\n"), "{report}");
    assert!(
        report.contains(
            "  tcp       no default (unmatched connections are closed); max 1024 conns, backlog 1024, connect timeout 5s, idle timeout off, PROXY header required from 10.0.0.0/8\n"
        ),
        "{report}"
    );
    assert!(!report.contains("  udp"), "{report}");
}

#[test]
fn http_and_combined_reports_list_the_apps() {
    let report = describe(
        &ok("listen_port = 80\n[apps.a]\nserver_name = 'a'\n[apps.b]\nserver_name = 'b'\n"),
        "h.toml",
    );
    assert!(
        report.starts_with("config h.toml: rpxy shape, OK\n"),
        "{report}"
    );
    assert!(
        report.contains("apps        a, b (HTTP engine: not in this version)\n"),
        "{report}"
    );
    assert!(!report.contains("dns cache"));
    let combined = "listen_port = 80\n[apps.a]\nserver_name = 'a'\n[[l4]]\nlisten_port = 443\nudp_target = 'h:1'\n";
    let report = describe(&ok(combined), "c.toml");
    assert!(report.contains("combined shape"), "{report}");
    assert!(
        report.contains("l4 service `l4[0]`\n  listen    udp 0.0.0.0:443\n"),
        "{report}"
    );
    assert!(
        report.contains("  udp       default -> h:1 (none)"),
        "{report}"
    );
}
