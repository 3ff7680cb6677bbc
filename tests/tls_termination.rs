//! TLS termination through the real binary: the certificate chosen by SNI (exact and
//! wildcard apps), `unrecognized_name` for a name no app serves, 421 when Host and SNI
//! disagree (and `ignore_sni_consistency`), `https_redirection` with and without a port, the
//! `https` access line, and the X25519MLKEM768 key exchange with an independent (aws-lc) client.

mod common;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::tls_pki::*;
use common::*;
use rustls::{AlertDescription, NamedGroup};

/// A PKI with a server certificate for each of `a.test`, `b.test` and `*.w.test`.
struct Certs {
    _dir: TempDir,
    ca: Ca,
    a: Leaf,
    b: Leaf,
    w: Leaf,
}

fn certs() -> Certs {
    let dir = TempDir::new("tls-term");
    let ca = Ca::root(dir.path(), "root");
    let a = ca.server(dir.path(), "a", &["a.test"]);
    let b = ca.server(dir.path(), "b", &["b.test"]);
    let w = ca.server(dir.path(), "w", &["*.w.test"]);
    Certs {
        _dir: dir,
        ca,
        a,
        b,
        w,
    }
}

/// Apps a.test → A, b.test → B and *.w.test → W, each with its own certificate, on `tls`
/// (and plain HTTP on `http` when given), plus `top` lines.
fn three_apps(
    http: Option<u16>,
    tls: u16,
    c: &Certs,
    backends: [&HttpBackend; 3],
    top: &str,
) -> String {
    let apps = [
        tls_app("a", "a.test", &c.a, "", backends[0].addr()),
        tls_app("b", "b.test", &c.b, "", backends[1].addr()),
        tls_app("w", "*.w.test", &c.w, "", backends[2].addr()),
    ];
    tls_config(http, tls, top, &apps.join("\n"))
}

fn backends() -> [HttpBackend; 3] {
    ["A", "B", "W"].map(HttpBackend::start)
}

#[test]
fn sni_selects_each_apps_certificate_and_access_lines_say_https() {
    let c = certs();
    let [a, b, w] = backends();
    let port = free_port();
    let mut sluice = Sluice::start(&three_apps(None, port, &c, [&a, &b, &w], ""));
    let config = client_config(&[&c.ca], None);

    for (name, leaf, backend, app) in [
        ("a.test", &c.a, "A", "a"),
        ("b.test", &c.b, "B", "b"),
        ("x.w.test", &c.w, "W", "w"),
    ] {
        let x = https_get(local(port), config.clone(), name, "/who?q=1");
        assert_eq!(&x.leaf, leaf.der(), "{name}: the certificate of its app");
        assert_eq!(x.response.status(), 200, "{name}: {:?}", x.response);
        assert_eq!(x.response.backend(), backend, "{name}");
        let echo = x.response.echo();
        assert_eq!(echo.target, "/who?q=1", "{name}");
        assert_eq!(
            echo.header("x-forwarded-proto"),
            Some("https"),
            "{name}: {echo:?}"
        );
        let line = wait_https_access(&mut sluice, x.local);
        assert!(line.contains(&format!("https {} -> ", x.local)), "{line}");
        assert_eq!(field(&line, "app"), Some(app), "{line}");
        assert_eq!(field(&line, "status"), Some("200"), "{line}");
    }
    // The name matching is case-insensitive.
    let x = https_get(local(port), config, "A.Test", "/");
    assert_eq!(&x.leaf, c.a.der());
    assert_eq!(x.response.backend(), "A");
}

#[test]
fn unknown_or_missing_sni_is_refused_with_unrecognized_name() {
    let c = certs();
    let [a, b, w] = backends();
    let port = free_port();
    let mut sluice = Sluice::start(&three_apps(None, port, &c, [&a, &b, &w], ""));
    let config = client_config(&[&c.ca], None);

    for sni in ["unknown.test", "w.test", "a.test.evil"] {
        let failure = tls_get(local(port), config.clone(), sni, sni, "/")
            .err()
            .unwrap_or_else(|| panic!("SNI {sni}: the handshake must fail"));
        assert_eq!(
            failure.alert(),
            Some(AlertDescription::UnrecognisedName),
            "SNI {sni}: {failure:?}"
        );
        assert_eq!(u8::from(AlertDescription::UnrecognisedName), 112);
        sluice.wait_line(
            &format!("saying the handshake for {sni} failed"),
            LOG_TIMEOUT,
            |l| l.contains("TLS handshake failed") && l.contains(sni),
        );
    }
    // An IP literal as server name: the ClientHello carries no SNI at all.
    let failure = tls_get(local(port), config, "127.0.0.1", "a.test", "/")
        .err()
        .expect("no SNI: the handshake must fail");
    assert_eq!(failure.alert(), Some(AlertDescription::UnrecognisedName));
    assert_eq!(a.accepted() + b.accepted() + w.accepted(), 0);
}

#[test]
fn host_other_than_sni_is_421() {
    let c = certs();
    let [a, b, w] = backends();
    let port = free_port();
    let _sluice = Sluice::start(&three_apps(None, port, &c, [&a, &b, &w], ""));
    let config = client_config(&[&c.ca], None);

    let x = tls_get(local(port), config.clone(), "a.test", "b.test", "/")
        .unwrap_or_else(|f| panic!("{f:?}"));
    assert_sluice_error(&x.response, 421, "SNI a.test, Host b.test");
    let text = x.response.text();
    assert!(
        text.contains("Misdirected Request") && text.contains("a.test, not b.test"),
        "the 421 names both names: {text:?}"
    );
    assert_eq!(b.accepted(), 0, "nothing went to b's backend");

    // The same connection name with a port in Host is consistent.
    let x = tls_get(
        local(port),
        config,
        "a.test",
        &format!("A.test:{port}"),
        "/",
    )
    .unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(x.response.status(), 200, "{:?}", x.response);
    assert_eq!(x.response.backend(), "A");
}

#[test]
fn ignore_sni_consistency_routes_by_host() {
    let c = certs();
    let [a, b, w] = backends();
    let port = free_port();
    let top = "[experimental]\nignore_sni_consistency = true\n";
    let _sluice = Sluice::start(&three_apps(None, port, &c, [&a, &b, &w], top));

    let x = tls_get(
        local(port),
        client_config(&[&c.ca], None),
        "a.test",
        "b.test",
        "/",
    )
    .unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(&x.leaf, c.a.der(), "the certificate follows SNI");
    assert_eq!(x.response.status(), 200, "{:?}", x.response);
    assert_eq!(x.response.backend(), "B", "the app follows Host");
}

#[test]
fn plain_http_is_redirected_to_https_on_the_tls_port() {
    let c = certs();
    let [a, b, w] = backends();
    let (http, tls) = (free_port(), free_port());
    let apps = [
        tls_app("a", "a.test", &c.a, ", https_redirection = true", a.addr()),
        tls_app("b", "b.test", &c.b, ", https_redirection = false", b.addr()),
        // Not written: on by default when both ports are set (as in rpxy).
        tls_app("w", "*.w.test", &c.w, "", w.addr()),
    ];
    let _sluice = Sluice::start(&tls_config(Some(http), tls, "", &apps.join("\n")));

    let r = get(local(http), "a.test", "/path/x?q=1&r=2");
    assert_eq!(r.status(), 301, "{r:?}");
    let want = format!("https://a.test:{tls}/path/x?q=1&r=2");
    assert_eq!(r.header("location"), Some(want.as_str()), "{r:?}");
    let r = get(local(http), "x.w.test", "/");
    assert_eq!(r.status(), 301, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("https://x.w.test:{tls}/").as_str())
    );
    assert_eq!(a.accepted() + w.accepted(), 0, "a redirect asks no backend");

    let r = get(local(http), "b.test", "/plain");
    assert_eq!(
        r.status(),
        200,
        "https_redirection = false serves HTTP: {r:?}"
    );
    assert_eq!(r.backend(), "B");
    assert_eq!(r.echo().header("x-forwarded-proto"), Some("http"));

    // And the redirect's target really serves the same path over TLS.
    let x = https_get(
        local(tls),
        client_config(&[&c.ca], None),
        "a.test",
        "/path/x?q=1&r=2",
    );
    assert_eq!(x.response.backend(), "A");
    assert_eq!(x.response.echo().target, "/path/x?q=1&r=2");
}

#[test]
fn redirect_to_public_port_443_omits_the_port() {
    let c = certs();
    let [a, b, w] = backends();
    let (http, tls) = (free_port(), free_port());
    let config = three_apps(Some(http), tls, &c, [&a, &b, &w], "public_https_port = 443");
    let _sluice = Sluice::start(&config);

    let r = get(local(http), "a.test:8080", "/p?q");
    assert_eq!(r.status(), 301, "{r:?}");
    assert_eq!(r.header("location"), Some("https://a.test/p?q"), "{r:?}");
}

#[test]
fn redirect_to_another_public_port_names_it() {
    let c = certs();
    let [a, b, w] = backends();
    let (http, tls) = (free_port(), free_port());
    let config = three_apps(
        Some(http),
        tls,
        &c,
        [&a, &b, &w],
        "public_https_port = 8443",
    );
    let _sluice = Sluice::start(&config);

    let r = get(local(http), "b.test", "/");
    assert_eq!(r.status(), 301, "{r:?}");
    assert_eq!(r.header("location"), Some("https://b.test:8443/"), "{r:?}");
}

#[test]
fn aws_lc_client_negotiates_x25519mlkem768() {
    let c = certs();
    let [a, b, w] = backends();
    let port = free_port();
    let _sluice = Sluice::start(&three_apps(None, port, &c, [&a, &b, &w], ""));

    // Only the hybrid group: the handshake succeeds only if sluice implements it.
    let mut only_pq = rustls::crypto::aws_lc_rs::default_provider();
    only_pq.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
    let x = tls_get(
        local(port),
        client_config_with(only_pq, &[&c.ca], None),
        "a.test",
        "a.test",
        "/pq",
    )
    .unwrap_or_else(|f| panic!("an X25519MLKEM768-only aws-lc client: {f:?}"));
    assert_eq!(x.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(x.response.backend(), "A");

    // aws-lc's default offers X25519MLKEM768 and X25519: sluice prefers the hybrid.
    let x = https_get(
        local(port),
        client_config_with(
            rustls::crypto::aws_lc_rs::default_provider(),
            &[&c.ca],
            None,
        ),
        "b.test",
        "/",
    );
    assert_eq!(x.group, Some(NamedGroup::X25519MLKEM768));

    // A client without post-quantum support still gets a classic group.
    let x = https_get(local(port), client_config(&[&c.ca], None), "b.test", "/");
    assert_eq!(x.group, Some(NamedGroup::X25519));
}
