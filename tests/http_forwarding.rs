//! Headers the HTTP engine adds, removes and rewrites on the way upstream, seen by the
//! backend: hop-by-hop fields dropped, X-Forwarded-* / X-Real-IP set, spoofed values from an
//! untrusted peer replaced, `forwarded_header`, and the Host options.

mod common;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

fn one_backend_config(port: u16, b: &HttpBackend, route_extra: &str, top: &str) -> String {
    let route = route_toml(None, &[b.addr()], route_extra);
    http_config(port, top, &app_toml("app1", APP1, &[route]))
}

#[test]
fn hop_by_hop_headers_are_not_forwarded() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&one_backend_config(port, &b, "", ""));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "GET",
        "/hop",
        APP1,
        &[
            ("Connection", "keep-alive, X-Private-Hop"),
            ("X-Private-Hop", "secret"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Proxy-Connection", "keep-alive"),
            ("Upgrade", "h2c"),
            ("X-End-To-End", "kept"),
        ],
        b"",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    for name in [
        "x-private-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "upgrade",
    ] {
        assert!(
            seen.header(name).is_none(),
            "hop-by-hop `{name}` reached the backend: {:?}",
            seen.headers
        );
    }
    for value in seen.header_all("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-private-hop"),
            "the client's Connection options reached the backend: {value}"
        );
    }
    assert_eq!(
        seen.header("x-end-to-end"),
        Some("kept"),
        "{:?}",
        seen.headers
    );
    // The same request's echo agrees with what the backend recorded.
    assert!(r.echo().header("x-private-hop").is_none());
}

#[test]
fn forwarding_headers_describe_the_client() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&one_backend_config(port, &b, "", ""));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.get("/fwd");
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.header("x-real-ip"),
        Some("127.0.0.1"),
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.header("x-forwarded-proto"),
        Some("http"),
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(APP1),
        "{:?}",
        seen.headers
    );
    let port_text = port.to_string();
    assert_eq!(
        seen.header("x-forwarded-port"),
        Some(port_text.as_str()),
        "the port the client connected to: {:?}",
        seen.headers
    );
    assert!(
        seen.header("forwarded").is_none(),
        "Forwarded only with forwarded_header"
    );
    assert_eq!(
        seen.header_all("x-forwarded-for").len(),
        1,
        "one X-Forwarded-For"
    );
}

#[test]
fn spoofed_forwarding_headers_from_an_untrusted_peer_are_replaced() {
    let b = HttpBackend::start("A");
    let port = free_port();
    // 127.0.0.1 (where the test connects from) is not in the trusted list.
    let top = "trusted_forwarded_proxies = [\"127.0.0.2/32\"]";
    let _sluice = Sluice::start(&one_backend_config(port, &b, "", top));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "GET",
        "/spoof",
        APP1,
        &[
            ("X-Forwarded-For", "6.6.6.6, 7.7.7.7"),
            ("X-Real-IP", "6.6.6.6"),
            ("X-Forwarded-For", "8.8.8.8"),
        ],
        b"",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    assert_eq!(
        seen.header_all("x-forwarded-for"),
        vec!["127.0.0.1"],
        "only the real peer: {:?}",
        seen.headers
    );
    assert_eq!(
        seen.header_all("x-real-ip"),
        vec!["127.0.0.1"],
        "{:?}",
        seen.headers
    );
}

#[test]
fn forwarding_headers_from_a_trusted_peer_are_extended() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let top = "trusted_forwarded_proxies = [\"127.0.0.1/32\"]";
    let _sluice = Sluice::start(&one_backend_config(port, &b, "", top));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "GET",
        "/chain",
        APP1,
        &[("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    let xff = seen.header_all("x-forwarded-for").join(", ");
    assert_eq!(
        xff, "203.0.113.9, 127.0.0.1",
        "a trusted proxy's chain is kept and the peer appended: {:?}",
        seen.headers
    );
}

#[test]
fn forwarded_header_option_adds_rfc7239_forwarded() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let extra = "upstream_options = [\"forwarded_header\"]";
    let _sluice = Sluice::start(&one_backend_config(port, &b, extra, ""));

    let r = get(local(port), APP1, "/rfc7239");
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    let forwarded = seen
        .header("forwarded")
        .unwrap_or_else(|| panic!("no Forwarded header: {:?}", seen.headers))
        .to_ascii_lowercase();
    assert!(
        forwarded.contains("for=127.0.0.1") || forwarded.contains("for=\"127.0.0.1"),
        "Forwarded names the client: {forwarded}"
    );
    assert!(
        forwarded.contains("proto=http"),
        "Forwarded has the proto: {forwarded}"
    );
}

#[test]
fn host_upstream_by_default_and_with_the_host_options() {
    let b = HttpBackend::start("A");
    let upstream_host = b.addr().to_string();
    for (option, want) in [
        ("", APP1),
        ("upstream_options = [\"keep_original_host\"]", APP1),
        (
            "upstream_options = [\"set_upstream_host\"]",
            upstream_host.as_str(),
        ),
    ] {
        let port = free_port();
        let _sluice = Sluice::start(&one_backend_config(port, &b, option, ""));
        let r = get(local(port), APP1, "/host");
        assert_eq!(r.status(), 200, "{option}: {r:?}");
        assert_eq!(
            b.last_request().header("host"),
            Some(want),
            "with `{option}`"
        );
        assert_eq!(
            b.last_request().header_all("host").len(),
            1,
            "one Host ({option})"
        );
    }
}

#[test]
fn upgrade_insecure_requests_option_is_accepted_and_requests_flow() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let extra = "upstream_options = [\"upgrade_insecure_requests\", \"force_http11_upstream\"]";
    let _sluice = Sluice::start(&one_backend_config(port, &b, extra, ""));

    let r = get(local(port), APP1, "/opts");
    assert_eq!(r.status(), 200, "{r:?}");
    let seen = b.last_request();
    assert_eq!(seen.version, "HTTP/1.1", "force_http11_upstream");
    assert_eq!(
        seen.header("upgrade-insecure-requests"),
        Some("1"),
        "upgrade_insecure_requests adds the header: {:?}",
        seen.headers
    );
}
