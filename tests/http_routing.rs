//! HTTP engine routing through the real binary: apps chosen by Host (any case, port
//! ignored), `default_app` and the 503 without it, longest path prefix on segment boundaries,
//! `replace_path`, 404 for no route, absolute-form targets, and `..` normalised before
//! routing.

mod common;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

/// Apps `app1` (A) and `app2` (B), each with one default route, and `top` lines.
fn two_apps(port: u16, a: &HttpBackend, b: &HttpBackend, top: &str) -> String {
    let apps = [
        app_toml("app1", APP1, &[route_toml(None, &[a.addr()], "")]),
        app_toml(
            "app2",
            "app2.example.org",
            &[route_toml(None, &[b.addr()], "")],
        ),
    ];
    http_config(port, top, &apps.join("\n"))
}

#[test]
fn host_selects_the_app_in_any_case_and_with_any_port() {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let port = free_port();
    let _sluice = Sluice::start(&two_apps(port, &a, &b, ""));

    let mut conn = HttpConn::connect(local(port));
    for (host, want) in [
        ("app1.example.com", "A"),
        ("APP1.Example.COM", "A"),
        ("app1.example.com:8080", "A"),
        ("app2.example.org", "B"),
        ("App2.Example.Org:443", "B"),
    ] {
        let r = conn.request("GET", "/who", host, &[], b"");
        assert_eq!(r.status(), 200, "Host {host}: {r:?}");
        assert_eq!(r.backend(), want, "Host {host}");
        assert_eq!(r.echo().target, "/who", "Host {host}");
    }
    assert_eq!(a.request_count(), 3);
    assert_eq!(b.request_count(), 2);
}

#[test]
fn unknown_host_without_default_app_is_503() {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let port = free_port();
    let _sluice = Sluice::start(&two_apps(port, &a, &b, ""));

    let r = get(local(port), "nobody.example.net", "/x");
    assert_sluice_error(&r, 503, "unknown Host");
    assert!(
        r.text().to_ascii_lowercase().contains("nobody.example.net"),
        "the 503 names the host it did not know: {:?}",
        r.text()
    );
    assert_eq!(a.accepted() + b.accepted(), 0, "no backend was asked");
}

#[test]
fn unknown_host_goes_to_default_app_with_its_server_name() {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let port = free_port();
    let _sluice = Sluice::start(&two_apps(port, &a, &b, "default_app = \"app2\""));

    let r = get(local(port), "Stranger.Example.Net:81", "/y?q=1");
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.backend(), "B", "default_app is app2");
    let echo = r.echo();
    assert_eq!(echo.target, "/y?q=1");
    assert_eq!(
        echo.header("host"),
        Some("app2.example.org"),
        "Host upstream becomes the default app's server_name: {echo:?}"
    );
    let forwarded_host = echo.header("x-forwarded-host").unwrap_or_default();
    assert!(
        forwarded_host.eq_ignore_ascii_case("stranger.example.net:81")
            || forwarded_host.eq_ignore_ascii_case("stranger.example.net"),
        "the original Host is kept in X-Forwarded-Host: {echo:?}"
    );
    // A known host still goes to its own app.
    assert_eq!(get(local(port), APP1, "/").backend(), "A");
}

/// app1: default route to D, `/maps` to M, `/maps/deep` to P.
fn path_routes(port: u16, d: &HttpBackend, m: &HttpBackend, p: &HttpBackend) -> String {
    let routes = [
        route_toml(None, &[d.addr()], ""),
        route_toml(Some("/maps"), &[m.addr()], ""),
        route_toml(Some("/maps/deep"), &[p.addr()], ""),
    ];
    http_config(port, "", &app_toml("app1", APP1, &routes))
}

#[test]
fn longest_path_prefix_wins_on_segment_boundaries() {
    let (d, m, p) = (
        HttpBackend::start("D"),
        HttpBackend::start("M"),
        HttpBackend::start("P"),
    );
    let port = free_port();
    let _sluice = Sluice::start(&path_routes(port, &d, &m, &p));

    let mut conn = HttpConn::connect(local(port));
    for (target, want) in [
        ("/", "D"),
        ("/other", "D"),
        ("/maps", "M"),
        ("/maps/", "M"),
        ("/maps/x", "M"),
        ("/maps?q=1", "M"),
        ("/mapsx", "D"),
        ("/maps-old/x", "D"),
        ("/maps/deep", "P"),
        ("/maps/deep/1", "P"),
        ("/maps/deeper", "M"),
    ] {
        let r = conn.get(target);
        assert_eq!(r.status(), 200, "{target}: {r:?}");
        assert_eq!(r.backend(), want, "{target}");
        assert_eq!(r.echo().target, target, "{target} is forwarded unchanged");
    }
}

#[test]
fn replace_path_rewrites_only_the_matched_prefix() {
    let (d, m) = (HttpBackend::start("D"), HttpBackend::start("M"));
    let port = free_port();
    let routes = [
        route_toml(None, &[d.addr()], ""),
        route_toml(
            Some("/maps"),
            &[m.addr()],
            "replace_path = \"/replacing/path1\"",
        ),
    ];
    let _sluice = Sluice::start(&http_config(port, "", &app_toml("app1", APP1, &routes)));

    let mut conn = HttpConn::connect(local(port));
    for (target, want) in [
        ("/maps/hoge?x=1", "/replacing/path1/hoge?x=1"),
        ("/maps/a/b/c", "/replacing/path1/a/b/c"),
        ("/maps", "/replacing/path1"),
        ("/maps?x=/maps", "/replacing/path1?x=/maps"),
    ] {
        let r = conn.get(target);
        assert_eq!(r.backend(), "M", "{target}");
        assert_eq!(r.echo().target, want, "{target}");
    }
    let r = conn.get("/mapsx/hoge");
    assert_eq!(r.backend(), "D");
    assert_eq!(r.echo().target, "/mapsx/hoge", "no rewrite off the route");
}

#[test]
fn no_matching_route_is_404() {
    let api = HttpBackend::start("API");
    let port = free_port();
    let routes = [route_toml(Some("/api"), &[api.addr()], "")];
    let _sluice = Sluice::start(&http_config(port, "", &app_toml("app1", APP1, &routes)));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.get("/x");
    assert_sluice_error(&r, 404, "no route");
    assert!(
        r.text().contains("/x"),
        "the 404 names the path: {:?}",
        r.text()
    );
    // A 404 is not a malformed request: the connection stays usable.
    let r = conn.get("/api/v1");
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.backend(), "API");
    assert_eq!(
        api.request_count(),
        1,
        "only the routed request reached the backend"
    );
}

#[test]
fn absolute_form_target_is_routed_by_its_authority() {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let port = free_port();
    let _sluice = Sluice::start(&two_apps(port, &a, &b, ""));

    // Authority and Host agree: served, and the backend gets origin form (it is an origin
    // server, not a proxy: RFC 9112 §3.2.1).
    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "GET",
        "http://app2.example.org/abs?q=1",
        "app2.example.org",
        &[],
        b"",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.backend(), "B");
    assert_eq!(r.echo().target, "/abs?q=1", "origin form upstream");

    // Authority differs from Host: refused, nothing forwarded. The request itself was
    // well-framed, so the connection may stay open; if it does, it must still be in sync.
    let before = (a.request_count(), b.request_count());
    let mut conn = HttpConn::connect(local(port));
    let r = conn.request("GET", "http://app2.example.org/abs", APP1, &[], b"");
    assert_sluice_error(&r, 400, "absolute-form authority differs from Host");
    assert_eq!(
        (a.request_count(), b.request_count()),
        before,
        "nothing forwarded"
    );
    if r.head.has_token("connection", "close") {
        conn.assert_closed(IO_TIMEOUT, "after a 400 with connection: close");
    } else {
        let next = conn.get("/after-400");
        assert_eq!(next.backend(), "A", "the connection is in sync: {next:?}");
    }
}

#[test]
fn dot_segments_are_normalised_before_routing() {
    let (d, m) = (HttpBackend::start("D"), HttpBackend::start("M"));
    let port = free_port();
    let routes = [
        route_toml(None, &[d.addr()], ""),
        route_toml(Some("/maps"), &[m.addr()], ""),
    ];
    let _sluice = Sluice::start(&http_config(port, "", &app_toml("app1", APP1, &routes)));

    let mut conn = HttpConn::connect(local(port));
    for (target, backend, upstream_target) in [
        ("/maps/../secret", "D", "/secret"),
        ("/maps/a/../../secret?q=1", "D", "/secret?q=1"),
        ("/x/../maps/y", "M", "/maps/y"),
        ("/x/./../maps/./y", "M", "/maps/y"),
    ] {
        let r = conn.get(target);
        assert_eq!(r.status(), 200, "{target}: {r:?}");
        assert_eq!(r.backend(), backend, "{target} routes after normalisation");
        assert_eq!(
            r.echo().target,
            upstream_target,
            "{target} is sent normalised"
        );
    }
    // Climbing above the root may be clamped (RFC 3986 §5.2.4) or refused; never forwarded
    // as it came.
    let r = conn.get("/../maps/z");
    match r.status() {
        200 => assert_eq!(r.echo().target, "/maps/z", "clamped to the root: {r:?}"),
        _ => assert_sluice_error(&r, 400, "a path above the root"),
    }
    let all = d.requests().into_iter().chain(m.requests());
    assert!(
        all.clone()
            .all(|q| !q.target.contains("/..") && !q.target.contains("/./")),
        "a backend saw a dot segment: {:?}",
        all.map(|q| q.target).collect::<Vec<_>>()
    );
}
