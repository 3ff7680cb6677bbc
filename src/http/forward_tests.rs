use super::*;
use crate::plan::Cidr;
use crate::plan::http::ProxyProvider;

fn cidr(s: &str) -> TrustedProxy {
    let (addr, prefix) = s.split_once('/').unwrap();
    TrustedProxy::Cidr(Cidr {
        addr: addr.parse().unwrap(),
        prefix: prefix.parse().unwrap(),
    })
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn ctx<'a>(peer: &str, trusted: &'a [TrustedProxy]) -> ForwardContext<'a> {
    ForwardContext {
        peer: SocketAddr::new(peer.parse().unwrap(), 50000),
        local: "192.0.2.1:443".parse().unwrap(),
        https: true,
        trusted,
        options: UpstreamOptions::default(),
        client_host: Some("app.example.com"),
        upstream_host: "10.0.0.5:8080",
        default_app_host: None,
        upgrade: false,
    }
}

fn get<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let all: Vec<_> = h.get_all(name).iter().collect();
    assert!(all.len() <= 1, "{name} appears {} times", all.len());
    all.first().map(|v| v.to_str().unwrap())
}

fn forward(pairs: &[(&str, &str)], cx: &ForwardContext<'_>) -> HeaderMap {
    let mut h = map(pairs);
    upstream_request_headers(&mut h, cx);
    h
}

const SPOOFED: &[(&str, &str)] = &[
    ("host", "app.example.com"),
    ("x-forwarded-for", "1.1.1.1"),
    ("x-forwarded-for", "2.2.2.2"),
    ("x-real-ip", "1.1.1.1"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "1"),
    ("x-forwarded-server", "evil"),
    ("x-forwarded-prefix", "/admin"),
    ("forwarded", "for=1.1.1.1;proto=https"),
];

#[test]
fn untrusted_peer_spoofed_headers_are_replaced() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.https = false;
    let h = forward(SPOOFED, &cx);
    assert_eq!(get(&h, "x-forwarded-for"), Some("203.0.113.7"));
    assert_eq!(get(&h, "x-real-ip"), Some("203.0.113.7"));
    assert_eq!(get(&h, "x-forwarded-proto"), Some("http"));
    assert_eq!(get(&h, "x-forwarded-host"), Some("app.example.com"));
    assert_eq!(get(&h, "x-forwarded-port"), Some("443"));
    assert_eq!(get(&h, "x-forwarded-server"), None);
    assert_eq!(get(&h, "x-forwarded-prefix"), None);
    assert_eq!(get(&h, "forwarded"), None);
}

#[test]
fn untrusted_when_trust_list_does_not_cover_the_peer() {
    let trusted = [
        cidr("10.0.0.0/8"),
        TrustedProxy::Named(ProxyProvider::Fastly),
    ];
    let h = forward(SPOOFED, &ctx("203.0.113.7", &trusted));
    assert_eq!(get(&h, "x-forwarded-for"), Some("203.0.113.7"));
    assert_eq!(get(&h, "x-real-ip"), Some("203.0.113.7"));
    assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
}

#[test]
fn trusted_peer_chain_is_appended_and_its_headers_kept() {
    let trusted = [cidr("10.0.0.0/8")];
    let mut cx = ctx("10.0.0.2", &trusted);
    cx.https = false;
    let h = forward(
        &[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.10"),
            ("x-forwarded-for", "10.0.0.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.example"),
            ("x-real-ip", "6.6.6.6"),
        ],
        &cx,
    );
    assert_eq!(
        get(&h, "x-forwarded-for"),
        Some("6.6.6.6, 198.51.100.10, 10.0.0.9, 10.0.0.2")
    );
    assert_eq!(get(&h, "x-real-ip"), Some("198.51.100.10"));
    assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
    assert_eq!(get(&h, "x-forwarded-host"), Some("public.example"));
    assert_eq!(get(&h, "x-forwarded-port"), Some("443"));
}

#[test]
fn trusted_peer_without_forwarding_headers_starts_the_chain() {
    let trusted = [cidr("10.0.0.0/8")];
    let h = forward(&[], &ctx("10.0.0.2", &trusted));
    assert_eq!(get(&h, "x-forwarded-for"), Some("10.0.0.2"));
    assert_eq!(get(&h, "x-real-ip"), Some("10.0.0.2"));
    assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
    assert_eq!(get(&h, "x-forwarded-host"), Some("app.example.com"));
}

#[test]
fn client_ip_is_the_rightmost_untrusted_address() {
    let trusted = [cidr("10.0.0.0/8"), cidr("2001:db8:ffff::/48")];
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "10.0.0.2"),
        (&["198.51.100.10"], "198.51.100.10"),
        (&["6.6.6.6, 198.51.100.10, 10.0.0.9"], "198.51.100.10"),
        (&["6.6.6.6", "198.51.100.10 , 10.0.0.9,"], "198.51.100.10"),
        (&["10.0.0.7, 10.0.0.9"], "10.0.0.7"),
        (&["6.6.6.6, unknown, 10.0.0.9"], "10.0.0.9"),
        (&["6.6.6.6, _hidden"], "10.0.0.2"),
        (&["198.51.100.10:5555"], "198.51.100.10"),
        (&["[2001:db8::1]:443, 10.0.0.9"], "2001:db8::1"),
        (&["\"[2001:db8::2]\""], "2001:db8::2"),
        (&["2001:db8::3, 2001:db8:ffff::1"], "2001:db8::3"),
        (&["::ffff:198.51.100.10"], "198.51.100.10"),
    ];
    for (xff, want) in cases {
        let pairs: Vec<(&str, &str)> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
        let h = map(&pairs);
        assert_eq!(
            client_ip(&h, peer, &trusted),
            want.parse::<IpAddr>().unwrap(),
            "{xff:?}"
        );
    }
    // An untrusted peer is the client whatever it claims.
    let h = map(&[("x-forwarded-for", "198.51.100.10")]);
    let outsider: IpAddr = "203.0.113.7".parse().unwrap();
    assert_eq!(client_ip(&h, outsider, &trusted), outsider);
    // A dual-stack socket's IPv4-mapped peer is trusted as IPv4.
    let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
    assert_eq!(
        client_ip(&h, mapped, &trusted),
        "198.51.100.10".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn is_trusted_by_cidr_and_by_cdn_name() {
    let cf = [TrustedProxy::Named(ProxyProvider::Cloudflare)];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(is_trusted(&cf, ip("173.245.48.5")));
    assert!(is_trusted(&cf, ip("::ffff:173.245.48.5")));
    assert!(!is_trusted(&cf, ip("151.101.1.1")));
    assert!(!is_trusted(&[], ip("127.0.0.1")));
    let mixed = [
        TrustedProxy::Named(ProxyProvider::Fastly),
        cidr("192.168.0.0/16"),
        cidr("::1/128"),
    ];
    assert!(is_trusted(&mixed, ip("151.101.1.1")));
    assert!(is_trusted(&mixed, ip("192.168.3.4")));
    assert!(is_trusted(&mixed, ip("::1")));
    assert!(!is_trusted(&mixed, ip("::2")));
}

#[test]
fn behind_cloudflare_the_real_client_is_recovered() {
    let trusted = [TrustedProxy::Named(ProxyProvider::Cloudflare)];
    let h = forward(
        &[
            ("x-forwarded-for", "198.51.100.10"),
            ("x-forwarded-proto", "https"),
        ],
        &ctx("162.158.1.2", &trusted),
    );
    assert_eq!(get(&h, "x-real-ip"), Some("198.51.100.10"));
    assert_eq!(
        get(&h, "x-forwarded-for"),
        Some("198.51.100.10, 162.158.1.2")
    );
}

#[test]
fn ipv6_peer_formatting() {
    let mut cx = ctx("2001:db8::7", &[]);
    cx.options.forwarded_header = true;
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "x-forwarded-for"), Some("2001:db8::7"));
    assert_eq!(get(&h, "x-real-ip"), Some("2001:db8::7"));
    assert_eq!(
        get(&h, "forwarded"),
        Some("for=\"[2001:db8::7]\";proto=https;host=app.example.com")
    );
    // A dual-stack socket's IPv4-mapped peer is written as IPv4.
    let h = forward(&[], &ctx("::ffff:203.0.113.7", &[]));
    assert_eq!(get(&h, "x-forwarded-for"), Some("203.0.113.7"));
}

#[test]
fn forwarded_header_replaces_an_untrusted_one() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.options.forwarded_header = true;
    cx.client_host = Some("app.example.com:8443");
    let h = forward(&[("forwarded", "for=1.1.1.1;host=evil")], &cx);
    assert_eq!(
        get(&h, "forwarded"),
        Some("for=203.0.113.7;proto=https;host=\"app.example.com:8443\"")
    );
}

#[test]
fn forwarded_header_extends_a_trusted_one() {
    let trusted = [cidr("10.0.0.0/8")];
    // Present from a trusted peer: extended even without the option (rpxy does too).
    let h = forward(
        &[("forwarded", "for=198.51.100.10;proto=https")],
        &ctx("10.0.0.2", &trusted),
    );
    assert_eq!(
        get(&h, "forwarded"),
        Some("for=198.51.100.10;proto=https, for=10.0.0.2;proto=https;host=app.example.com")
    );
    // Absent and the option off: none is made up.
    let h = forward(&[], &ctx("10.0.0.2", &trusted));
    assert_eq!(get(&h, "forwarded"), None);
    let mut cx = ctx("10.0.0.2", &trusted);
    cx.options.forwarded_header = true;
    cx.client_host = None;
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "forwarded"), Some("for=10.0.0.2;proto=https"));
}

#[test]
fn hop_by_hop_and_connection_named_headers_are_removed() {
    let h = forward(
        &[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "te"),
            ("x-secret", "s"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("trailer", "x-checksum"),
            ("upgrade", "websocket"),
            ("te", "deflate"),
            ("expect", "100-continue"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy", "http://evil:3128"),
            ("authorization", "Bearer t"),
            ("content-type", "text/plain"),
        ],
        &ctx("203.0.113.7", &[]),
    );
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "trailer",
        "upgrade",
        "te",
        "expect",
        "proxy-authorization",
        "proxy",
    ] {
        assert_eq!(get(&h, gone), None, "{gone}");
    }
    assert_eq!(get(&h, "authorization"), Some("Bearer t"));
    assert_eq!(get(&h, "content-type"), Some("text/plain"));
}

#[test]
fn te_trailers_survives_for_grpc() {
    let h = forward(
        &[("te", "Trailers, deflate;q=0.5"), ("connection", "TE")],
        &ctx("203.0.113.7", &[]),
    );
    assert_eq!(get(&h, "te"), Some("trailers"));
    assert_eq!(get(&h, "connection"), None);
}

#[test]
fn honoured_upgrade_keeps_upgrade() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.upgrade = true;
    let h = forward(
        &[
            ("connection", "Upgrade, keep-alive"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        &cx,
    );
    assert_eq!(get(&h, "upgrade"), Some("websocket"));
    assert_eq!(get(&h, "connection"), Some("upgrade"));
    assert!(h.contains_key("sec-websocket-key"));
}

#[test]
fn host_by_default_is_the_clients() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.client_host = Some("App.Example.com:80");
    let h = forward(&[("host", "App.Example.com:80")], &cx);
    assert_eq!(get(&h, "host"), Some("App.Example.com:80"));
    // Absolute-form target: the authority the driver passes wins over a stray Host.
    let h = forward(&[("host", "other.example")], &cx);
    assert_eq!(get(&h, "host"), Some("App.Example.com:80"));
}

#[test]
fn host_options() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.options.set_upstream_host = true;
    let h = forward(&[("host", "app.example.com")], &cx);
    assert_eq!(get(&h, "host"), Some("10.0.0.5:8080"));
    assert_eq!(get(&h, "x-forwarded-host"), Some("app.example.com"));
    cx.options.keep_original_host = true;
    let h = forward(&[("host", "app.example.com")], &cx);
    assert_eq!(get(&h, "host"), Some("app.example.com"));
}

#[test]
fn host_without_client_host_is_the_upstreams() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.client_host = None;
    cx.options.keep_original_host = true;
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "host"), Some("10.0.0.5:8080"));
    assert_eq!(get(&h, "x-forwarded-host"), None);
}

#[test]
fn default_app_fallback_rewrites_host_and_keeps_the_original_in_x_forwarded_host() {
    let mut cx = ctx("203.0.113.7", &[]);
    cx.client_host = Some("unknown.test:8080");
    cx.default_app_host = Some("fallback.example");
    cx.options.forwarded_header = true;
    let h = forward(&[("host", "unknown.test:8080")], &cx);
    assert_eq!(get(&h, "host"), Some("fallback.example"));
    assert_eq!(get(&h, "x-forwarded-host"), Some("unknown.test:8080"));
    assert_eq!(
        get(&h, "forwarded"),
        Some("for=203.0.113.7;proto=https;host=\"unknown.test:8080\"")
    );
    // Wins over set_upstream_host…
    cx.options.set_upstream_host = true;
    let h = forward(&[("host", "unknown.test:8080")], &cx);
    assert_eq!(get(&h, "host"), Some("fallback.example"));
    // …but not over an explicit keep_original_host.
    cx.options.keep_original_host = true;
    let h = forward(&[("host", "unknown.test:8080")], &cx);
    assert_eq!(get(&h, "host"), Some("unknown.test:8080"));
    // HTTP/1.0 without Host, and a wildcard default app.
    cx.options = UpstreamOptions::default();
    cx.client_host = None;
    cx.default_app_host = Some("*.example.net");
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "host"), Some("example.net"));
    assert_eq!(get(&h, "x-forwarded-host"), None);
}

#[test]
fn upgrade_insecure_requests_option() {
    let mut cx = ctx("203.0.113.7", &[]);
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "upgrade-insecure-requests"), None);
    cx.options.upgrade_insecure_requests = true;
    let h = forward(&[("upgrade-insecure-requests", "0")], &cx);
    assert_eq!(get(&h, "upgrade-insecure-requests"), Some("1"));
}

#[test]
fn cookie_lines_are_joined() {
    let h = forward(
        &[("cookie", "a=1"), ("cookie", " "), ("cookie", "b=2; c=3")],
        &ctx("203.0.113.7", &[]),
    );
    assert_eq!(get(&h, "cookie"), Some("a=1; b=2; c=3"));
    let h = forward(&[("cookie", "a=1")], &ctx("203.0.113.7", &[]));
    assert_eq!(get(&h, "cookie"), Some("a=1"));
}

#[test]
fn response_hop_by_hop_removed() {
    let pairs = [
        ("connection", "keep-alive, x-internal"),
        ("x-internal", "1"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("proxy-authenticate", "Basic"),
        ("content-type", "text/html"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ];
    let mut h = map(&pairs);
    client_response_headers(&mut h, false);
    let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["content-type", "set-cookie"]);
    assert_eq!(h.get_all("set-cookie").iter().count(), 2);

    let mut h = map(&pairs);
    client_response_headers(&mut h, true);
    assert_eq!(get(&h, "upgrade"), Some("websocket"));
    assert_eq!(get(&h, "connection"), Some("upgrade"));
    assert_eq!(get(&h, "keep-alive"), None);
}

#[test]
fn odd_bytes_never_panic() {
    let trusted = [cidr("0.0.0.0/0"), cidr("::/0")];
    let weird: &[&[u8]] = &[
        b"",
        b",,,",
        b"\xff\xfe",
        b"[",
        b"[]:",
        b"\"",
        b"1.2.3.4:99999",
        b"for=\"[::1]\";;;=",
    ];
    for w in weird {
        let mut h = HeaderMap::new();
        for name in ["x-forwarded-for", "forwarded", "connection", "te", "cookie"] {
            h.append(name, HeaderValue::from_bytes(w).unwrap());
        }
        for peer in ["10.0.0.1", "2001:db8::1"] {
            let mut cx = ctx(peer, &trusted);
            cx.options.forwarded_header = true;
            cx.client_host = Some("bad host\"\\");
            let mut h = h.clone();
            let _ = client_ip(&h, cx.peer.ip(), &trusted);
            upstream_request_headers(&mut h, &cx);
            assert!(h.contains_key("x-real-ip"));
            assert_eq!(get(&h, "host"), Some("bad host\"\\"));
        }
    }
    // A client host that cannot be a header value falls back to the upstream's.
    let mut cx = ctx("203.0.113.7", &[]);
    cx.client_host = Some("bad\nhost");
    let h = forward(&[], &cx);
    assert_eq!(get(&h, "host"), Some("10.0.0.5:8080"));
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    let mut ips: Vec<IpAddr> = [
        "0.0.0.0",
        "255.255.255.255",
        "10.0.0.1",
        "100.64.9.99",
        "::",
        "::1",
        "2001:db8::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::ffff:255.255.255.255",
        "64:ff9b::c000:221",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let mut rng = fastrand::Rng::with_seed(7);
    ips.extend((0..20_000).map(|_| IpAddr::from(rng.u32(..).to_be_bytes())));
    ips.extend((0..2_000).map(|_| IpAddr::from(rng.u128(..).to_be_bytes())));
    for ip in ips {
        assert_eq!(
            IpText::new(ip).as_bytes(),
            ip.to_string().as_bytes(),
            "{ip:?}"
        );
    }
}
