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
workers     1
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
fn http_report_lists_listeners_apps_routes_and_upstreams() {
    let text = r#"listen_port = 8080
listen_port_tls = 8443
listen_address_v4 = "127.0.0.1"
public_https_port = 443
max_clients_per_ip = 8
request_max_body_size = "10m"
trusted_forwarded_proxies = ["cloudflare", "10.0.0.0/8"]
default_app = "web"
[apps.web]
server_name = "Web.Example.com"
tls = { tls_cert_path = "/certs/web.crt", tls_cert_key_path = "/certs/web.key", client_ca_cert_path = "/certs/ca.pem" }
allowhosts = ["10.0.0.0/8"]
denyhosts = ["*"]
[[apps.web.reverse_proxy]]
upstream = [{ location = "127.0.0.1:3000" }, { location = "[::1]", tls = true, server_name = "inner.lan" }]
load_balance = "round_robin"
upstream_options = ["set_upstream_host", "forwarded_header"]
[[apps.web.reverse_proxy]]
path = "/api"
replace_path = "/"
upstream = [{ location = "api.lan:9000" }]
health_check = { type = "http", path = "/healthz", interval = 20 }
[apps.acme]
server_name = "*.example.org"
tls = { acme = true }
[experimental]
connection_handling_timeout = "1h"
[experimental.h3]
[experimental.acme]
email = "ops@example.org"
"#;
    let report = describe(&ok(text), "/etc/sluice.toml");
    let expected = "\
config /etc/sluice.toml: rpxy shape, OK
http service
  listen    http 127.0.0.1:8080; https 127.0.0.1:8443; h3 udp 127.0.0.1:8443
  timeouts  request head 30s, keep-alive 60s, upstream connect 5s, upstream response 60s
  limits    max 512 clients (8 per IP), 64 h2 streams, backlog 1024, body 10m, connections closed after 1h
  public    https port 443 in redirects and Alt-Svc
  default   app web (plain HTTP with an unknown host)
  forwarded trusted from cloudflare, 10.0.0.0/8
  option    acme https://acme-v02.api.letsencrypt.org/directory as ops@example.org
app `web` web.example.com
  tls       cert /certs/web.crt key /certs/web.key; client certs verified by /certs/ca.pem; http redirects to https
  allow     10.0.0.0/8
  deny      0.0.0.0/0, ::/0
  route     (default) -> http://127.0.0.1:3000, https://[::1]:443 sni inner.lan (round_robin); set_upstream_host, forwarded_header
  route     /api (as /) -> http://api.lan:9000 (none); health http /healthz = 200 every 20s (timeout 5s, down after 3, up after 2)
app `acme` *.example.org
  tls       cert from ACME; http redirects to https
  route     none (404)
drain       10s
workers     1
warning     /etc/sluice.toml:23:1: `[apps.acme]` has no `reverse_proxy`: every request to it gets 404
";
    assert_eq!(report, expected);
}

#[test]
fn combined_report_lists_l4_and_http() {
    let combined = "listen_port = 80\n[apps.a]\nserver_name = 'a'\nreverse_proxy = [{ location = 'b' }]\n[[l4]]\nlisten_port = 443\nudp_target = 'h:1'\n";
    let report = describe(&ok(combined), "c.toml");
    assert!(
        report.starts_with("config c.toml: combined shape (rpxy + l4), OK\n"),
        "{report}"
    );
    assert!(
        report.contains("l4 service `l4[0]`\n  listen    udp 0.0.0.0:443\n"),
        "{report}"
    );
    assert!(
        report.contains("  udp       default -> h:1 (none)"),
        "{report}"
    );
    assert!(
        report.contains("http service\n  listen    http 0.0.0.0:80\n"),
        "{report}"
    );
    assert!(
        report.contains("app `a` a\n  route     (default) -> http://b:80 (none)\n"),
        "{report}"
    );
}
