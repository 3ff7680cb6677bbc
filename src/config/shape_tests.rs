//! Unit tests of shape detection, the rpxy (HTTP) key checks and the combined shape with
//! `[l4]`/`[[l4]]`. No IO (the reference file is compiled in).
#![allow(clippy::indexing_slicing)]

use std::time::Duration;

use super::testing::{err_at, errs, ok};
use crate::plan::Shape;

const RPXY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/rpxy.config-example.toml"
));

#[test]
fn rpxy_reference_is_the_http_shape_with_its_apps() {
    let l = ok(RPXY);
    assert_eq!(l.plan.shape, Shape::Http);
    assert_eq!(
        l.plan.http.as_ref().unwrap().app_names(),
        ["localhost", "another_localhost", "localhost_with_acme"]
    );
    assert!(l.plan.l4.is_empty());
}

#[test]
fn rpxy_seed_readme_examples_with_apps_load() {
    let first = "listen_port = 80\n\n[apps.app1]\nserver_name = 'app1.example.com'\nreverse_proxy = [{ upstream = [{ location = 'app1.local:8080' }] }]\n";
    assert_eq!(ok(first).plan.http.unwrap().app_names(), ["app1"]);
    let lb = "listen_port = 80\n[apps.\"app_name\"]\nserver_name = 'app1.example.com'\nreverse_proxy = [\n  { location = 'app1.local:8080' },\n]\nload_balance = 'round_robin'\n";
    assert_eq!(ok(lb).plan.http.unwrap().app_names(), ["app_name"]);
    let paths = "listen_port_tls = 443\nhttps_redirection_port = 443\n[apps.app1]\nserver_name = 'app1.example.com'\ntls = { https_redirection = true, tls_cert_path = 'server.crt', tls_cert_key_path = 'server.key' }\n[[apps.app1.reverse_proxy]]\nupstream = [ { location = 'default.backend.local' } ]\n[[apps.app1.reverse_proxy]]\npath = '/path'\nupstream = [ { location = 'path.backend.local' } ]\n[experimental.h3]\nalt_svc_max_age = 3600\n";
    assert_eq!(ok(paths).plan.shape, Shape::Http);
}

#[test]
fn unknown_rpxy_keys_are_errors_at_every_checked_level() {
    let d = err_at(
        "listen_port = 80\nmax_client = 5\n[apps.a]\nserver_name = 'a'\n",
        "max_client`",
        2,
        1,
    );
    assert!(
        d.message.ends_with("did you mean `max_clients`?"),
        "{}",
        d.message
    );
    let d = err_at(
        "listen_port = 80\n[apps.a]\nserver_nmae = 'a'\n",
        "server_nmae",
        3,
        1,
    );
    assert!(
        d.message
            .contains("in `[apps.a]`; did you mean `server_name`?"),
        "{}",
        d.message
    );
    err_at(
        "listen_port = 80\n[apps.a]\nreverse_proxy = []\n",
        "missing required key `server_name`",
        2,
        1,
    );
    err_at(
        "listen_port = 80\n[apps.a]\nserver_name = 5\n",
        "`server_name`: expected a string",
        3,
        15,
    );
    err_at(
        "listen_port = 80\nexperimental = 1\n[apps.a]\nserver_name = 'a'\n",
        "`experimental`: expected a table",
        2,
        16,
    );
    err_at(
        "listen_port = 80\napps = 3\n",
        "`apps`: expected a table",
        2,
        8,
    );
    err_at("[apps.a]\nserver_name = 'a'\n", "need `listen_port`", 1, 2);
}

#[test]
fn default_app_must_name_an_app() {
    let d = err_at(
        "listen_port = 80\ndefault_app = 'ap1'\n[apps.app1]\nserver_name = 'a'\n",
        "no app named",
        2,
        15,
    );
    assert!(d.message.contains("did you mean `app1`?"), "{}", d.message);
}

#[test]
fn mixed_shapes_name_one_key_of_each() {
    let text = "listen_port = 8448\ntcp_target = [\"127.0.0.1:22\"]\n[apps.a]\nserver_name = 'a'\n";
    let d = err_at(text, "mixes rpxy-l4 keys", 2, 1);
    assert!(
        d.message.contains("(`tcp_target`, line 2)"),
        "{}",
        d.message
    );
    assert!(d.message.contains("(`apps`, line 3)"), "{}", d.message);
    assert!(d.message.contains("`[l4]`"));
    err_at(
        "udp_target = \"h:53\"\nlisten_port = 1\nmax_clients = 3\n",
        "mixes",
        1,
        1,
    );
}

#[test]
fn non_empty_experimental_counts_as_rpxy() {
    err_at(
        "listen_port = 1\ntcp_target = \"h:1\"\n[experimental]\nignore_sni_consistency = true\n",
        "(`experimental`, line 3)",
        2,
        1,
    );
}

#[test]
fn nothing_to_serve() {
    let d = err_at(
        "listen_port = 8448\nlisten_ipv6 = true\n",
        "nothing to serve",
        1,
        1,
    );
    assert!(d.message.contains("status_listen"));
    err_at("", "nothing to serve", 1, 1);
    err_at("listen_port = 80\n[apps]\n", "nothing to serve", 1, 1);
    err_at("listen_port = 1\n[protocols]\n", "nothing to serve", 1, 1);
}

#[test]
fn undecided_file_suggests_from_every_shape() {
    let d = err_at(
        "listen_port = 80\nlisten_port_tsl = 443\n",
        "listen_port_tsl",
        2,
        1,
    );
    assert!(
        d.message.contains("did you mean `listen_port_tls`?"),
        "{}",
        d.message
    );
}

const COMBINED: &str = r#"listen_port = 8080
listen_port_tls = 8443
status_listen = "127.0.0.1:8449"
drain_timeout = "30s"

[apps]
web = { server_name = "app.example.com", reverse_proxy = [{ upstream = [{ location = "127.0.0.1:3000" }] }] }

[[l4]]
listen_port = 443
listen_address_v4 = "127.0.0.1"
dns_cache_max_ttl = "10m"
[l4.protocols.ssh]
protocol = "ssh"
target = ["127.0.0.1:22"]
[l4.protocols.git]
protocol = "tls"
server_names = ["git.example.com"]
target = ["10.0.0.7:443"]

[[l4]]
listen_port = 51820
udp_target = ["10.0.0.8:51820"]
dns_cache_max_ttl = "10m"
"#;

#[test]
fn combined_with_two_l4_services() {
    let l = ok(COMBINED);
    let p = &l.plan;
    assert_eq!(p.shape, Shape::Combined);
    assert_eq!(p.http.as_ref().unwrap().app_names(), ["web"]);
    let names: Vec<&str> = p.l4.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["l4[0]", "l4[1]"]);
    assert_eq!(p.l4[0].listen, ["127.0.0.1:443".parse().unwrap()]);
    assert_eq!(p.l4[0].protocols.len(), 2);
    assert_eq!(p.l4[0].protocols[1].server_names, ["git.example.com"]);
    assert!(p.l4[1].wants_udp() && !p.l4[1].wants_tcp());
    assert_eq!(p.dns.max_ttl, Duration::from_secs(600));
    assert_eq!(p.status, ["127.0.0.1:8449".parse().unwrap()]);
    assert_eq!(p.drain_timeout, Duration::from_secs(30));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn combined_single_l4_table_is_named_l4() {
    let l = ok(
        "listen_port_tls = 8443\n[apps.a]\nserver_name = 'a'\ntls = { acme = true }\n[experimental.acme]\nemail = 'a@example.com'\n[l4]\nlisten_port = 443\ntcp_target = \"127.0.0.1:8443\"\n",
    );
    assert_eq!(l.plan.l4[0].name, "l4");
}

#[test]
fn combined_errors_name_the_service() {
    let text = COMBINED.replace(
        "udp_target = [\"10.0.0.8:51820\"]",
        "udp_targte = [\"10.0.0.8:51820\"]",
    );
    let d = err_at(&text, "udp_targte", 23, 1);
    assert!(
        d.message.contains("in `l4[1]`; did you mean `udp_target`?"),
        "{}",
        d.message
    );
    let text = COMBINED.replace("protocol = \"ssh\"", "protocol = \"shh\"");
    err_at(&text, "unknown value \"shh\"", 14, 12);
    let text = COMBINED.replace(
        "target = [\"127.0.0.1:22\"]",
        "target = [\"127.0.0.1:22\"]\nalpn = [\"x\"]",
    );
    let d = err_at(&text, "`alpn` only applies", 16, 1);
    assert!(!d.message.is_empty());
    let text = COMBINED.replace("[l4.protocols.ssh]\n", "[l4.protocols.ssh]\nbogus = 1\n");
    let d = err_at(&text, "bogus", 14, 1);
    assert!(
        d.message.contains("`[l4.protocols.ssh]` of `l4[0]`"),
        "{}",
        d.message
    );
}

#[test]
fn l4_keys_at_top_level_of_a_combined_file() {
    let text = format!("tcp_target = [\"h:1\"]\n{COMBINED}");
    let d = err_at(&text, "move it under `[l4]`", 1, 1);
    assert!(d.message.starts_with("`tcp_target` is an L4 setting"));
}

#[test]
fn dns_settings_of_two_l4_services_must_agree() {
    let text = COMBINED.replacen(
        "dns_cache_max_ttl = \"10m\"",
        "dns_cache_max_ttl = \"20m\"",
        1,
    );
    let d = err_at(
        &text,
        "DNS cache settings differ from `l4[0]` (line 12)",
        24,
        1,
    );
    assert!(d.message.contains("set `dns_cache_*` once"));
}

#[test]
fn overlapping_listeners_are_rejected() {
    let text = COMBINED.replace(
        "listen_port = 51820\nudp_target = [\"10.0.0.8:51820\"]",
        "listen_port = 443\ntcp_target = [\"10.0.0.8:1\"]",
    );
    let d = err_at(
        &text,
        "overlaps tcp 127.0.0.1:443 of L4 service `l4[0]` (line 10)",
        22,
        15,
    );
    assert!(
        d.message
            .starts_with("L4 service `l4[1]` would listen on tcp 0.0.0.0:443"),
        "{}",
        d.message
    );
    let d = err_at(
        "listen_port = 8448\ntcp_target = \"h:1\"\nstatus_listen = \"127.0.0.1:8448\"\n",
        "the status page would listen on tcp 127.0.0.1:8448",
        3,
        17,
    );
    assert!(d.message.contains("L4 service `l4`"));
    // UDP on the same port as the status page's TCP is fine.
    ok("listen_port = 8448\nudp_target = \"h:1\"\nstatus_listen = \"127.0.0.1:8448\"\n");
}

#[test]
fn l4_value_must_be_tables() {
    err_at(
        "l4 = 5\nlisten_port = 80\n[apps.a]\nserver_name = 'a'\n",
        "`l4`: expected a table",
        1,
        6,
    );
    assert!(!errs("l4 = []\n").is_empty());
}

#[test]
fn status_listen_errors() {
    err_at(
        "status_listen = \"localhost:8449\"\n",
        "is not a socket address",
        1,
        17,
    );
    err_at(
        "status_listen = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
        "listed twice",
        1,
        33,
    );
}
