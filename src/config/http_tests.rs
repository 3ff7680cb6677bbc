//! Unit tests of the rpxy (HTTP) shape: the reference example and every TOML block of the
//! seed README load with their meaning, and each error class names its line. No IO beyond
//! reading the seed README (the reference file is compiled in).
#![allow(clippy::indexing_slicing)]

use std::path::PathBuf;
use std::time::Duration;

use super::parse;
use super::testing::{err_at, errs, ok};
use crate::plan::{
    CertSource, HealthCheckKind, HttpBalance, HttpPlan, ProxyProvider, TrustedProxy,
};

const RPXY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/rpxy.config-example.toml"
));
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/seeds/003_bd9cd8ab5aa71b58.txt"
);

/// One app that routes somewhere, to complete fragments.
const MIN_APP: &str = "[apps.min]\nserver_name = 'min.example.com'\nreverse_proxy = [{ upstream = [{ location = '127.0.0.1:8080' }] }]\n";

fn http(text: &str) -> HttpPlan {
    ok(text).plan.http.expect("an HTTP plan")
}

/// `listen_port = 80` and an app `a` whose body is `body` (from line 4 on).
fn app_with(body: &str) -> String {
    format!("listen_port = 80\n[apps.a]\nserver_name = 'a.example.com'\n{body}")
}

#[test]
fn reference_example_loads_with_its_values() {
    let l = ok(RPXY);
    let h = l.plan.http.as_ref().unwrap();
    assert_eq!((h.listen_port, h.listen_port_tls), (Some(8080), Some(8443)));
    assert_eq!(
        h.listen_addresses,
        ["0.0.0.0".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        (
            h.tcp_listen_backlog,
            h.max_concurrent_streams,
            h.max_clients
        ),
        (1024, 100, 512)
    );
    assert_eq!(h.default_app.as_deref(), Some("another_localhost"));
    assert_eq!(h.request_max_body_size, Some(256 << 20));
    assert_eq!(
        h.app_names(),
        ["localhost", "another_localhost", "localhost_with_acme"]
    );

    let app = &h.apps[0];
    assert_eq!(app.server_name, "localhost");
    let tls = app.tls.as_ref().unwrap();
    assert_eq!(
        tls.cert,
        CertSource::Files {
            cert: "/certs/server.crt".into(),
            key: "/certs/server.key".into()
        }
    );
    assert!(tls.https_redirection);
    assert_eq!(app.routes.len(), 2);
    let default = &app.routes[0];
    assert_eq!(default.path, None);
    assert_eq!(default.balance, HttpBalance::RoundRobin);
    assert_eq!(default.upstreams[0].target.to_string(), "www.yahoo.com:443");
    assert!(default.upstreams[1].tls);
    assert_eq!(
        default.options.names(),
        ["keep_original_host", "force_http2_upstream"]
    );
    let maps = &app.routes[1];
    assert_eq!(maps.path.as_deref(), Some("/maps"));
    assert_eq!(maps.replace_path.as_deref(), Some("/replacing/path1"));
    assert_eq!(maps.balance, HttpBalance::Random);
    assert_eq!(
        maps.options.names(),
        [
            "set_upstream_host",
            "upgrade_insecure_requests",
            "force_http11_upstream",
            "forwarded_header"
        ]
    );
    assert_eq!(h.apps[2].tls.as_ref().unwrap().cert, CertSource::Acme);

    let x = &h.experimental;
    assert!(!x.ignore_sni_consistency);
    assert_eq!(x.connection_handling_timeout, None);
    let h3 = x.h3.as_ref().unwrap();
    assert_eq!(h3.alt_svc_max_age, Duration::from_secs(3600));
    assert_eq!(h3.max_concurrent_connections, 10_000);
    assert_eq!(h3.max_idle_timeout, Some(Duration::from_secs(10)));
    assert_eq!(h3.request_max_body_size, None);
    let cache = x.cache.as_ref().unwrap();
    assert_eq!(cache.cache_dir, PathBuf::from("./cache"));
    assert_eq!(cache.max_cache_each_size_on_memory, 65535);
    let acme = x.acme.as_ref().unwrap();
    assert_eq!(acme.dir_url, "https://localhost:14000/dir");
    assert_eq!(acme.email, "test@example.com");
    assert_eq!(x.tcp_recv_proxy_protocol, None);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn reference_commented_keys_load_when_uncommented() {
    // Every `# key = …` line of the reference that is a setting, uncommented in place.
    let mut text = String::new();
    for line in RPXY.lines() {
        let setting = [
            "# listen_address_v4 = ['192.168.1.1', '10.0.0.1']",
            "# listen_address_v6 = ['::1', 'fe80::1']",
            "# public_https_port = 443",
            "# max_clients_per_ip = 0",
            "# trusted_forwarded_proxies = [\"cloudfront\", \"10.0.0.0/8\"]",
            "# redact_query_in_access_log = true",
            "# request_max_body_size = \"256m\"",
            "# allowhosts = ",
            "# denyhosts = ",
            "# [apps.localhost.reverse_proxy.health_check]",
            "# type = \"tcp\"",
            "# interval = 10",
            "# timeout = 5",
            "# unhealthy_threshold",
            "# healthy_threshold",
            "# # HTTP-specific",
            "# path = \"/healthz\"",
            "# expected_status",
            "# request_max_body_size = 65536",
            "# [experimental.tcp_recv_proxy_protocol]",
            "# trusted_proxies",
            "# timeout = 50",
        ]
        .iter()
        .any(|s| line.starts_with(s));
        let line = if setting { &line[2..] } else { line };
        text.push_str(line);
        text.push('\n');
    }
    // The health-check table follows the first `[[apps.localhost.reverse_proxy]]`, so it
    // belongs to the first route.
    let l = ok(&text);
    let h = l.plan.http.as_ref().unwrap();
    assert_eq!(h.listen_addresses.len(), 4);
    assert_eq!(h.public_https_port, Some(443));
    assert_eq!(h.max_clients_per_ip, None);
    assert_eq!(
        h.trusted_forwarded_proxies[0],
        TrustedProxy::Named(ProxyProvider::Cloudfront)
    );
    assert!(h.redact_query_in_access_log);
    let app = &h.apps[0];
    assert_eq!(app.access.allow.len(), 3);
    assert_eq!(app.access.deny.len(), 2);
    let hc = app.routes[0].health_check.as_ref().unwrap();
    assert_eq!(hc.kind, HealthCheckKind::Tcp);
    assert_eq!(
        (hc.interval, hc.timeout),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
    let h3 = h.experimental.h3.as_ref().unwrap();
    assert_eq!(h3.request_max_body_size, Some(65536));
    let pp = h.experimental.tcp_recv_proxy_protocol.as_ref().unwrap();
    assert_eq!(pp.trusted_proxies.len(), 2);
    assert_eq!(pp.timeout, Duration::from_millis(50));
    let messages: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("deprecated")),
        "{messages:?}"
    );
    // `path` on a tcp check is the reference's own "HTTP-specific" example.
    assert!(
        messages.iter().any(|m| m.contains("`path` has no effect")),
        "{messages:?}"
    );
}

/// The ```toml blocks of the seed README with the line of their first content line.
fn seed_blocks() -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(SEED).expect("seed README");
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut cur {
            None if line.trim() == "```toml" => cur = Some((i + 2, String::new())),
            Some((start, body)) if line.trim() == "```" => {
                out.push((*start, std::mem::take(body)));
                cur = None;
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_seed_readme_block_loads() {
    let blocks = seed_blocks();
    let starts: Vec<usize> = blocks.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        starts,
        [
            114, 140, 158, 168, 182, 200, 210, 246, 287, 301, 313, 328, 340, 356
        ],
        "the seed README changed; revisit this table"
    );
    let ports = "listen_port = 80\nlisten_port_tls = 443\n";
    let app_head = "[apps.x]\nserver_name = 'x.example.com'\n";
    let route = "reverse_proxy = [{ upstream = [{ location = 'backend.local' }] }]\n";
    let acme = "[experimental.acme]\nemail = 'a@example.com'\n";
    for (start, block) in &blocks {
        // How a fragment is completed, and why it cannot load alone.
        let text = match start {
            // Complete configs.
            114 | 182 | 210 => block.clone(),
            // An `[apps.*]` example without a listener ("#..." elides the rest).
            140 | 168 | 246 | 301 => format!("listen_port = 80\n{block}"),
            // Keys of one app table (`reverse_proxy = […]`, `tls = {…}`).
            158 => format!("{ports}{app_head}{block}"),
            200 => format!("{ports}{app_head}{route}{block}"),
            // `[experimental.*]` tables: need a listener and an app.
            287 | 313 => format!("{ports}{MIN_APP}{block}"),
            340 => format!(
                "listen_port_tls = 443\n[apps.x]\nserver_name = 'x.example.com'\n{route}tls = {{ acme = true }}\n{block}"
            ),
            // An ACME app: needs `listen_port_tls` and the `[experimental.acme]` of the next block.
            328 => format!("listen_port_tls = 443\n{block}{acme}"),
            // Top-level ports only: needs an app.
            356 => format!("{block}{MIN_APP}"),
            other => panic!("unclassified seed block at line {other}"),
        };
        if let Err(e) = parse(&text, "seed.toml") {
            panic!("seed README block at line {start} does not load:\n{e}\n---\n{text}");
        }
    }
}

#[test]
fn seed_readme_blocks_mean_what_the_readme_says() {
    let blocks = seed_blocks();
    let block = |line: usize| blocks.iter().find(|(l, _)| *l == line).unwrap().1.clone();
    // The flat form with an app-level `load_balance`: one route over both locations.
    let h = http(&format!("listen_port = 80\n{}", block(168)));
    let r = &h.apps[0].routes;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].balance, HttpBalance::RoundRobin);
    let ups: Vec<String> = r[0]
        .upstreams
        .iter()
        .map(|u| u.target.to_string())
        .collect();
    assert_eq!(ups, ["app1.local:8080", "app2.local:8000"]);
    // Path routing with replace_path; https_redirection needs both ports (a warning).
    let l = ok(&block(210));
    let h = l.plan.http.as_ref().unwrap();
    let paths: Vec<Option<&str>> = h.apps[0].routes.iter().map(|r| r.path.as_deref()).collect();
    assert_eq!(paths, [None, Some("/path"), Some("/path/another")]);
    assert_eq!(h.apps[0].routes[2].replace_path.as_deref(), Some("/path"));
    assert!(!h.apps[0].tls.as_ref().unwrap().https_redirection);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0]
            .message
            .contains("`https_redirection` has no effect")
    );
    // The flat form with `tls = true`: HTTPS to the given port.
    let h = http(&format!(
        "listen_port = 80\n[apps.x]\nserver_name = 'x'\n{}",
        block(158)
    ));
    let u = &h.apps[0].routes[0].upstreams[0];
    assert!(u.tls);
    assert_eq!(u.target.to_string(), "app1.localdomain:8080");
    // `https_redirection_port` is `public_https_port`.
    let h = http(&format!("{}{MIN_APP}", block(356)));
    assert_eq!(h.public_https_port, Some(443));
    // rpxy's deprecated h3 body limit loads with a warning.
    let l = ok(&format!(
        "listen_port = 80\nlisten_port_tls = 443\n{MIN_APP}{}",
        block(287)
    ));
    assert!(l.warnings.iter().any(|w| w.message.contains("deprecated")));
}

#[test]
fn top_level_values() {
    let text = format!(
        "listen_port = 80\nlisten_port_tls = 443\nlisten_ipv6 = true\nmax_clients = 10\nmax_clients_per_ip = 2\n\
         trusted_forwarded_proxies = \"cloudflare\"\nrequest_max_body_size = \"10m\"\n\
         sticky_cookie_secret = \"{}\"\n{MIN_APP}",
        "A".repeat(42) + "A"
    );
    let h = http(&text);
    assert_eq!(h.listen_addresses.len(), 2);
    assert_eq!(h.max_clients_per_ip, Some(2));
    assert_eq!(
        h.trusted_forwarded_proxies,
        [TrustedProxy::Named(ProxyProvider::Cloudflare)]
    );
    assert_eq!(h.request_max_body_size, Some(10 << 20));
    assert_eq!(h.sticky_cookie_secret.unwrap().0, [0; 32]);
    assert_eq!(
        format!("{:?}", h.sticky_cookie_secret),
        "Some(StickySecret(..))"
    );
    let (plain, tls) = h.sockets();
    assert_eq!(plain.len(), 2);
    assert_eq!(tls[1].to_string(), "[::]:443");
    for (v, want) in [
        ("0", None),
        ("\"unlimited\"", None),
        ("\"256k\"", Some(256 << 10)),
        ("\"1g\"", Some(1 << 30)),
        ("65536", Some(65536)),
    ] {
        let h = http(&format!(
            "request_max_body_size = {v}\nlisten_port = 80\n{MIN_APP}"
        ));
        assert_eq!(h.request_max_body_size, want, "{v}");
    }
}

#[test]
fn top_level_errors_name_their_line() {
    let d = err_at(
        &format!("listen_port = 80\nlisten_port_tls = 80\n{MIN_APP}"),
        "equals `listen_port` (line 1)",
        2,
        19,
    );
    assert!(d.message.contains("different ports"));
    let d = err_at(
        &format!(
            "listen_port = 80\npublic_https_port = 443\nlisten_port_tls = 8443\nhttps_redirection_port = 443\n{MIN_APP}"
        ),
        "`https_redirection_port` and `public_https_port` (line 2)",
        4,
        26,
    );
    assert!(d.message.contains("keep only `public_https_port`"));
    let d = err_at(
        &format!(
            "listen_port = 80\ntrusted_forwarded_proxies = ['10.0.0.0/8', 'cloudflair']\n{MIN_APP}"
        ),
        "neither a CIDR nor a known proxy name",
        2,
        44,
    );
    assert!(
        d.message.ends_with("did you mean `cloudflare`?"),
        "{}",
        d.message
    );
    err_at(
        &format!("listen_port = 80\ntrusted_forwarded_proxies = '10.0.0.0/33'\n{MIN_APP}"),
        "prefix length `/33`",
        2,
        0,
    );
    let d = err_at(
        &format!("listen_port = 80\nrequest_max_body_size = '10x'\n{MIN_APP}"),
        "unknown unit `x`",
        2,
        25,
    );
    assert!(d.message.contains("\"unlimited\""));
    err_at(
        &format!("listen_port = 80\nmax_clients = 4\nmax_clients_per_ip = 5\n{MIN_APP}"),
        "`max_clients_per_ip` (5) is greater than `max_clients` (4)",
        3,
        22,
    );
    let d = err_at(
        &format!("listen_port = 80\nsticky_cookie_secret = 'c2hvcnQ'\n{MIN_APP}"),
        "decodes to 5 bytes, not 32",
        2,
        24,
    );
    assert!(
        d.message.contains("openssl rand -base64 32"),
        "{}",
        d.message
    );
    assert!(!d.message.contains("c2hvcnQ"), "the secret is not echoed");
    let padded = format!("{}=", "A".repeat(43));
    err_at(
        &format!("listen_port = 80\nsticky_cookie_secret = '{padded}'\n{MIN_APP}"),
        "`=` padding",
        2,
        0,
    );
    err_at(
        &format!(
            "listen_port = 80\nsticky_cookie_secret = '{}+'\n{MIN_APP}",
            "A".repeat(42)
        ),
        "not base64url",
        2,
        0,
    );
    // HTTP and the status page on one socket.
    err_at(
        &format!(
            "listen_port = 8080\nlisten_address_v4 = '127.0.0.1'\nstatus_listen = '127.0.0.1:8080'\n{MIN_APP}"
        ),
        "the status page would listen on tcp 127.0.0.1:8080, which overlaps tcp 127.0.0.1:8080 of the HTTP engine (line 1)",
        3,
        0,
    );
}

#[test]
fn combined_l4_on_the_https_port_is_not_a_conflict() {
    let text = format!(
        "listen_port_tls = 443\n[apps.a]\nserver_name = 'a.example.com'\ntls = {{ tls_cert_path = 'a.crt', tls_cert_key_path = 'a.key' }}\n{}\n[l4]\nlisten_port = 443\n[l4.protocols.ssh]\nprotocol = 'ssh'\ntarget = '127.0.0.1:22'\n",
        "reverse_proxy = [{ upstream = [{ location = '127.0.0.1:3000' }] }]"
    );
    let l = ok(&text);
    assert_eq!(l.plan.http.as_ref().unwrap().listen_port_tls, Some(443));
    assert_eq!(l.plan.l4[0].listen[0].port(), 443);
}

#[test]
fn app_tls_forms() {
    let l = parse(
        &String::from(
            "listen_port = 80\nlisten_port_tls = 443\n[apps.a]\nserver_name = 'A.Example.COM'\n\
             tls = { tls_cert_path = 'certs/a.crt', tls_cert_key_path = '/k/a.key', client_ca_cert_path = 'ca.pem', https_redirection = false }\n\
             reverse_proxy = [{ upstream = [{ location = 'b' }] }]\n"
        ),
        "/etc/sluice/sluice.toml",
    )
    .unwrap();
    let app = &l.plan.http.as_ref().unwrap().apps[0];
    assert_eq!(app.server_name, "a.example.com");
    let tls = app.tls.as_ref().unwrap();
    assert_eq!(
        tls.cert,
        CertSource::Files {
            cert: "/etc/sluice/certs/a.crt".into(),
            key: "/k/a.key".into()
        }
    );
    assert_eq!(tls.client_ca_cert_path, Some("/etc/sluice/ca.pem".into()));
    assert!(!tls.https_redirection);
    // Wildcard names are a sluice extension.
    let h = http(
        &app_with("reverse_proxy = [{ upstream = [{ location = 'b' }] }]\n")
            .replace("a.example.com", "*.Example.com"),
    );
    assert_eq!(h.apps[0].server_name, "*.example.com");
}

#[test]
fn app_tls_errors() {
    let ports = "listen_port = 80\nlisten_port_tls = 443\n";
    let app =
        "[apps.a]\nserver_name = 'a'\nreverse_proxy = [{ upstream = [{ location = 'b' }] }]\n";
    let t = |tls: &str| {
        format!("{ports}{app}tls = {tls}\n[experimental.acme]\nemail = 'a@b.example'\n")
    };
    err_at(
        &t("{ acme = true, tls_cert_path = 'c' }"),
        "`acme = true` and `tls_cert_path`/`tls_cert_key_path` exclude each other",
        6,
        16,
    );
    err_at(
        &t("{ tls_cert_path = 'c' }"),
        "`tls_cert_path` needs `tls_cert_key_path`",
        6,
        25,
    );
    err_at(
        &t("{ tls_cert_key_path = 'k' }"),
        "`tls_cert_key_path` needs `tls_cert_path`",
        6,
        29,
    );
    err_at(
        &t("{ https_redirection = true }"),
        "needs `tls_cert_path` and `tls_cert_key_path`, or `acme = true`",
        6,
        7,
    );
    let d = err_at(&t("{ tls_cert_pth = 'c' }"), "tls_cert_pth", 6, 9);
    assert!(
        d.message.contains("did you mean `tls_cert_path`?"),
        "{}",
        d.message
    );
    err_at(
        &format!("{ports}{app}tls = {{ acme = true }}\n"),
        "needs an `[experimental.acme]` table",
        6,
        16,
    );
    err_at(
        &format!("listen_port_tls = 443\n{app}"),
        "`[apps.a]` has no `tls` and there is no `listen_port`",
        2,
        0,
    );
    err_at(
        &format!(
            "{ports}{app}[apps.b]\nserver_name = 'A'\nreverse_proxy = [{{ upstream = [{{ location = 'b' }}] }}]\n"
        ),
        "`server_name` \"a\" is already the server name of the app on line 4",
        7,
        15,
    );
    err_at(
        &format!("{ports}[apps.a]\nserver_name = 'a b'\n"),
        "`server_name`: `a b` is not a host name",
        4,
        0,
    );
    // No effect: warnings, not errors.
    let l = ok(&format!(
        "listen_port = 80\n{app}tls = {{ tls_cert_path = 'c', tls_cert_key_path = 'k' }}\n"
    ));
    assert!(
        l.warnings[0]
            .message
            .contains("has no effect without `listen_port_tls`")
    );
}

#[test]
fn routes_and_upstreams() {
    let h = http(&app_with(
        "load_balance = 'random'\n\
         [[apps.a.reverse_proxy]]\nupstream = [{ location = '[2001:db8::1]' }, { location = 'h', tls = true, server_name = 'Inner.lan', ca_cert_path = '/ca.pem' }]\n\
         [[apps.a.reverse_proxy]]\npath = '/api/'\nreplace_path = '/'\nload_balance = 'primary_backup'\n\
         upstream = [{ location = '10.0.0.1:8080' }]\nhealth_check = { type = 'http', path = '/healthz', interval = '30s', timeout = 2, expected_status = 204 }\n",
    ));
    let r = &h.apps[0].routes;
    assert_eq!(r[0].balance, HttpBalance::Random, "the app-level default");
    assert_eq!(r[0].upstreams[0].target.to_string(), "[2001:db8::1]:80");
    let u = &r[0].upstreams[1];
    assert_eq!(u.target.to_string(), "h:443");
    assert_eq!(u.server_name.as_deref(), Some("inner.lan"));
    assert_eq!(u.ca_cert_path, Some("/ca.pem".into()));
    assert_eq!(r[1].balance, HttpBalance::PrimaryBackup);
    let hc = r[1].health_check.as_ref().unwrap();
    assert_eq!(
        hc.kind,
        HealthCheckKind::Http {
            path: "/healthz".into(),
            expected_status: 204
        }
    );
    assert_eq!(
        (hc.interval, hc.timeout),
        (Duration::from_secs(30), Duration::from_secs(2))
    );
    assert_eq!((hc.unhealthy_threshold, hc.healthy_threshold), (3, 2));
    let h = http(&app_with(
        "reverse_proxy = [{ upstream = [{ location = 'b' }], health_check = true }]\n",
    ));
    assert_eq!(
        h.apps[0].routes[0].health_check.as_ref().unwrap().kind,
        HealthCheckKind::Tcp
    );
}

#[test]
fn route_errors_name_their_line() {
    let rp = "[[apps.a.reverse_proxy]]\n";
    let up = "upstream = [{ location = 'b' }]\n";
    err_at(
        &app_with(&format!("{rp}path = 'api'\n{up}")),
        "`path` \"api\" must start with `/`",
        5,
        8,
    );
    err_at(
        &app_with(&format!("{rp}path = '/a?x=1'\n{up}")),
        "must not contain `?`",
        5,
        0,
    );
    let d = err_at(
        &app_with(&format!("{rp}path = '/api'\n{up}{rp}path = '/api/'\n{up}")),
        "path `/api` is already routed on line 5",
        8,
        8,
    );
    assert!(
        d.message.starts_with("`reverse_proxy[1]` of `[apps.a]`"),
        "{}",
        d.message
    );
    err_at(
        &app_with(&format!("{rp}{up}{rp}{up}")),
        "a second route without `path` (the first is on line 4)",
        6,
        0,
    );
    err_at(
        &app_with(&format!("{rp}replace_path = '/x'\n{up}")),
        "`replace_path` needs `path`",
        5,
        16,
    );
    err_at(
        &app_with(&format!("{rp}path = '/x'\n")),
        "missing required key `upstream` in `reverse_proxy[0]` of `[apps.a]`",
        4,
        0,
    );
    err_at(
        &app_with(&format!("{rp}upstream = []\n")),
        "`upstream` is empty",
        5,
        12,
    );
    err_at(
        &app_with("[apps.a.reverse_proxy]\nupstream = []\n"),
        "`reverse_proxy`: expected an array of tables",
        4,
        0,
    );
    // Locations.
    for (loc, needle) in [
        ("https://b", "write it without `https://`"),
        ("::1", "IPv6 addresses need brackets: \"[::1]\""),
        ("b:0", "port 0 is not allowed"),
        ("b/x", "a path prefix goes in `replace_path`"),
        ("b_c", "is not a host name"),
    ] {
        let d = err_at(
            &app_with(&format!("{rp}upstream = [{{ location = '{loc}' }}]\n")),
            needle,
            5,
            26,
        );
        assert!(d.message.starts_with("`location`"), "{}", d.message);
    }
    let d = err_at(
        &app_with(&format!("{rp}upstream = [{{ locaton = 'b' }}]\n")),
        "unknown key `locaton` in `upstream[0]` of `reverse_proxy[0]` of `[apps.a]`",
        5,
        15,
    );
    assert!(d.message.ends_with("did you mean `location`?"));
    // The flat form cannot be mixed with structured entries.
    err_at(
        &app_with("reverse_proxy = [{ upstream = [{ location = 'b' }] }, { location = 'c' }]\n"),
        "`location` belongs inside `upstream = [{ location = … }]`",
        4,
        57,
    );
}

#[test]
fn balance_options_and_health_errors() {
    let rp = "[[apps.a.reverse_proxy]]\nupstream = [{ location = 'b' }]\n";
    let d = err_at(
        &app_with(&format!("{rp}load_balance = \"stiky\"\n")),
        "`load_balance`: unknown value \"stiky\"",
        6,
        16,
    );
    assert!(
        d.message.ends_with("did you mean `sticky`?"),
        "{}",
        d.message
    );
    let d = err_at(
        &app_with(&format!("{rp}load_balance = 'sticky'\n")),
        "needs a top-level `sticky_cookie_secret`",
        6,
        16,
    );
    assert!(d.message.contains("openssl rand"));
    err_at(
        &app_with(&format!("{rp}load_balance = 'primary_backup'\n")),
        "`load_balance = \"primary_backup\"` needs `health_check`",
        6,
        16,
    );
    let d = err_at(
        &app_with(&format!("{rp}upstream_option = ['forwarded_header']\n")),
        "unknown key `upstream_option`",
        6,
        1,
    );
    assert!(
        d.message.ends_with("did you mean `upstream_options`?"),
        "{}",
        d.message
    );
    let d = err_at(
        &app_with(&format!("{rp}upstream_options = ['force_http2']\n")),
        "unknown option \"force_http2\"",
        6,
        21,
    );
    assert!(
        d.message.ends_with("did you mean `force_http2_upstream`?"),
        "{}",
        d.message
    );
    err_at(
        &app_with(&format!(
            "{rp}upstream_options = [\n  'force_http11_upstream',\n  'force_http2_upstream',\n]\n"
        )),
        "force_http11_upstream and force_http2_upstream exclude each other (the other is on line 7)",
        8,
        3,
    );
    err_at(
        &app_with(&format!(
            "{rp}upstream_options = ['forwarded_header', 'forwarded_header']\n"
        )),
        "forwarded_header is listed twice",
        6,
        41,
    );
    let l = ok(&app_with(&format!(
        "{rp}upstream_options = ['keep_original_host', 'set_upstream_host']\n"
    )));
    assert!(
        l.warnings[0]
            .message
            .contains("`keep_original_host` is also set and wins")
    );
    // Health checks.
    let hc = "[apps.a.reverse_proxy.health_check]\n";
    err_at(
        &app_with(&format!("{rp}{hc}interval = 5\ntimeout = 5\n")),
        "`timeout` (5s) must be less than `interval` (5s, line 7)",
        8,
        11,
    );
    err_at(
        &app_with(&format!("{rp}{hc}interval = 3\n")),
        "`timeout` (5s) must be less than `interval` (3s, line 7)",
        6,
        0,
    );
    err_at(
        &app_with(&format!("{rp}{hc}type = 'http'\n")),
        "`type = \"http\"` needs `path`",
        6,
        0,
    );
    err_at(
        &app_with(&format!("{rp}{hc}type = 'http'\npath = 'healthz'\n")),
        "`path` \"healthz\" must start with `/`",
        8,
        8,
    );
    let d = err_at(
        &app_with(&format!("{rp}{hc}type = 'htp'\n")),
        "`type`: unknown value \"htp\"",
        7,
        8,
    );
    assert!(d.message.ends_with("did you mean `http`?"));
    let d = err_at(
        &app_with(&format!("{rp}{hc}intervall = 5\n")),
        "unknown key `intervall` in `health_check` of `reverse_proxy[0]` of `[apps.a]`",
        7,
        1,
    );
    assert!(d.message.ends_with("did you mean `interval`?"));
    err_at(
        &app_with(&format!("{rp}health_check = 'yes'\n")),
        "`health_check`: expected `true`, `false` or a table",
        6,
        16,
    );
    err_at(
        &app_with(&format!("{rp}{hc}expected_status = 700\n")),
        "`expected_status`: expected an integer 100..=599",
        7,
        19,
    );
}

#[test]
fn app_level_keys() {
    let d = err_at(
        &app_with("reverse_proxi = [{ upstream = [{ location = 'b' }] }]\n"),
        "unknown key `reverse_proxi` in `[apps.a]`",
        4,
        1,
    );
    assert!(
        d.message.ends_with("did you mean `reverse_proxy`?"),
        "{}",
        d.message
    );
    let d = err_at(
        &app_with("reverse_proxy = [{ location = 'b' }]\nload_balance = 'round_robn'\n"),
        "unknown value \"round_robn\"",
        5,
        16,
    );
    assert!(d.message.ends_with("did you mean `round_robin`?"));
    err_at(
        &app_with("allowhosts = ['10.0.0.0/8', 'nowhere']\n"),
        "`allowhosts`: `nowhere` is not an IP address",
        4,
        29,
    );
    let l = ok(&app_with(""));
    assert!(
        l.warnings[0]
            .message
            .contains("has no `reverse_proxy`: every request to it gets 404")
    );
    let l = ok(&app_with("reverse_proxy = []\n"));
    assert!(
        l.warnings[0]
            .message
            .contains("`reverse_proxy` of `[apps.a]` is empty")
    );
}

#[test]
fn experimental_values_and_errors() {
    let base = format!("listen_port = 80\nlisten_port_tls = 443\n{MIN_APP}[experimental]\n");
    // Line numbers: the `[experimental]` header is line 6.
    let h = http(&format!(
        "{base}connection_handling_timeout = '2m'\nignore_sni_consistency = true\n\
         [experimental.h3]\nmax_idle_timeout = 0\n[experimental.cache]\nmax_cache_each_size = 1000\n\
         [experimental.tcp_recv_proxy_protocol]\ntrusted_proxies = '10.0.0.0/8'\ntimeout = '1s'\n"
    ));
    let x = &h.experimental;
    assert!(x.ignore_sni_consistency);
    assert_eq!(
        x.connection_handling_timeout,
        Some(Duration::from_secs(120))
    );
    assert_eq!(x.h3.as_ref().unwrap().max_idle_timeout, None);
    let c = x.cache.as_ref().unwrap();
    assert_eq!(
        (c.max_cache_each_size, c.max_cache_each_size_on_memory),
        (1000, 1000)
    );
    assert_eq!(
        x.tcp_recv_proxy_protocol.as_ref().unwrap().timeout,
        Duration::from_secs(1)
    );

    let d = err_at(
        &format!("{base}h4 = {{}}\n"),
        "unknown key `h4` in `[experimental]`",
        7,
        1,
    );
    assert!(d.message.ends_with("did you mean `h3`?"));
    let d = err_at(
        &format!("{base}[experimental.h3]\nalt_svc_maxage = 1\n"),
        "unknown key `alt_svc_maxage` in `[experimental.h3]`",
        8,
        1,
    );
    assert!(d.message.ends_with("did you mean `alt_svc_max_age`?"));
    err_at(
        &format!(
            "{base}[experimental.cache]\nmax_cache_each_size = 10\nmax_cache_each_size_on_memory = 20\n"
        ),
        "`max_cache_each_size_on_memory` (20) is greater than `max_cache_each_size` (10)",
        9,
        33,
    );
    err_at(
        &format!("{base}[experimental.acme]\ndir_url = 'x'\n"),
        "missing required key `email` in `[experimental.acme]`",
        7,
        0,
    );
    err_at(
        &format!("{base}[experimental.acme]\nemail = 'nobody'\n"),
        "`email`: \"nobody\" is not an email address",
        8,
        9,
    );
    err_at(
        &format!("{base}[experimental.tcp_recv_proxy_protocol]\ntrusted_proxies = []\n"),
        "`trusted_proxies` is empty",
        8,
        19,
    );
    err_at(
        &format!("{base}[experimental.tcp_recv_proxy_protocol]\ntimeout = 5\n"),
        "missing required key `trusted_proxies`",
        7,
        0,
    );
    err_at(
        &format!("{base}connection_handling_timeout = -1\n"),
        "`connection_handling_timeout`: expected an integer 0..=",
        7,
        31,
    );
    let l = ok(&format!("listen_port = 80\n{MIN_APP}[experimental.h3]\n"));
    assert!(
        l.warnings[0]
            .message
            .contains("`[experimental.h3]` has no effect without `listen_port_tls`")
    );
}

#[test]
fn all_errors_are_reported_together() {
    let all = errs(&app_with(
        "reverse_proxy = [{ path = 'x', upstream = [{ location = 'http://b' }], load_balance = 'rr' }]\n",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
}
