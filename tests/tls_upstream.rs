//! Upstream TLS through the real binary: `tls = true` upstreams verified against a private
//! CA (`ca_cert_path`) with the upstream's `server_name` as SNI; without that CA, or with a
//! name the certificate does not cover, sluice answers 502 saying why and sends no request.

mod common;

use common::http_client::*;
use common::tls_pki::*;
use common::*;

/// A plain-HTTP app `up.test` whose one upstream is `backend` over TLS with `options`
/// (inline keys after `tls = true`).
fn upstream_app(port: u16, backend: &TlsBackend, options: &str) -> String {
    format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n\
         [apps.up]\nserver_name = \"up.test\"\n\
         reverse_proxy = [{{ upstream = [{{ location = \"{}\", tls = true{options} }}] }}]\n",
        backend.addr()
    )
}

struct Setup {
    _dir: TempDir,
    ca: Ca,
    backend: TlsBackend,
}

fn setup() -> Setup {
    let dir = TempDir::new("tls-upstream");
    let ca = Ca::root(dir.path(), "backend-root");
    let leaf = ca.server(dir.path(), "backend", &["backend.test"]);
    let backend = TlsBackend::start("TLSB", &leaf);
    Setup {
        _dir: dir,
        ca,
        backend,
    }
}

#[test]
fn upstream_tls_with_a_private_ca_is_verified_and_works() {
    let s = setup();
    let port = free_port();
    let options = format!(
        ", server_name = \"backend.test\", ca_cert_path = \"{}\"",
        s.ca.pem_path.display()
    );
    let mut sluice = Sluice::start(&upstream_app(port, &s.backend, &options));

    let mut conn = HttpConn::connect(local(port));
    for n in 0..3 {
        let r = conn.request("GET", &format!("/x/{n}?q"), "up.test", &[], b"");
        assert_eq!(r.status(), 200, "{r:?}");
        assert_eq!(r.backend(), "TLSB");
        assert!(
            r.text()
                .starts_with(&format!("TLSB GET /x/{n}?q\nhost: up.test\n")),
            "the request reached the TLS backend with the client's Host: {:?}",
            r.text()
        );
    }
    let line = wait_http_access(&mut sluice, conn.local_addr());
    assert_eq!(field(&line, "status"), Some("200"), "{line}");
    assert_eq!(s.backend.requests().len(), 3);
    assert!(s.backend.handshakes() >= 1);
}

#[test]
fn upstream_tls_without_the_ca_is_502_naming_the_certificate() {
    let s = setup();
    let port = free_port();
    let options = ", server_name = \"backend.test\"";
    let mut sluice = Sluice::start(&upstream_app(port, &s.backend, options));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request("GET", "/", "up.test", &[], b"");
    assert_sluice_error(&r, 502, "a backend certificate from an unknown CA");
    assert!(
        r.text().to_ascii_lowercase().contains("certificate"),
        "the 502 says the certificate is the problem: {:?}",
        r.text()
    );
    assert!(
        s.backend.requests().is_empty(),
        "no request was sent unverified"
    );
    let line = wait_http_access(&mut sluice, conn.local_addr());
    assert_eq!(field(&line, "status"), Some("502"), "{line}");
}

#[test]
fn upstream_tls_with_a_name_the_certificate_does_not_cover_is_502() {
    let s = setup();
    let port = free_port();
    let options = format!(
        ", server_name = \"other.test\", ca_cert_path = \"{}\"",
        s.ca.pem_path.display()
    );
    let _sluice = Sluice::start(&upstream_app(port, &s.backend, &options));

    let r = get(local(port), "up.test", "/");
    assert_sluice_error(&r, 502, "a backend certificate for another name");
    let text = r.text().to_ascii_lowercase();
    assert!(
        text.contains("name") || text.contains("certificate"),
        "the 502 says why: {text:?}"
    );
    assert!(s.backend.requests().is_empty());
}
