//! Client certificates (`client_ca_cert_path`) through the real binary: no certificate or one
//! from a foreign CA fails the handshake before anything reaches the backend; a certificate
//! from the CA, or a leaf of an intermediate the client sends along (sluice trusts only the
//! root), is served; an app without mTLS on the same port asks for nothing.

mod common;

use common::http_backend::HttpBackend;
use common::tls_pki::*;
use common::*;

/// The server PKI, the client PKI (root → intermediate) and a foreign CA.
struct Pki {
    dir: TempDir,
    server_ca: Ca,
    client_root: Ca,
    client_mid: Ca,
    stranger: Ca,
}

fn pki() -> Pki {
    let dir = TempDir::new("tls-mtls");
    let server_ca = Ca::root(dir.path(), "server-root");
    let client_root = Ca::root(dir.path(), "client-root");
    let client_mid = client_root.intermediate(dir.path(), "client-mid");
    let stranger = Ca::root(dir.path(), "stranger");
    Pki {
        dir,
        server_ca,
        client_root,
        client_mid,
        stranger,
    }
}

/// `m.test` → M requires client certificates from `client-root`; `open.test` → O does not.
fn start(p: &Pki, m: &HttpBackend, o: &HttpBackend) -> (Sluice, u16) {
    let dir = p.dir.path();
    let m_cert = p.server_ca.server(dir, "m", &["m.test"]);
    let o_cert = p.server_ca.server(dir, "open", &["open.test"]);
    let ca = format!(
        ", client_ca_cert_path = \"{}\"",
        p.client_root.pem_path.display()
    );
    let apps = [
        tls_app("m", "m.test", &m_cert, &ca, m.addr()),
        tls_app("open", "open.test", &o_cert, "", o.addr()),
    ];
    let port = free_port();
    (
        Sluice::start(&tls_config(None, port, "", &apps.join("\n"))),
        port,
    )
}

fn refused(p: &Pki, port: u16, client: Option<&Leaf>, what: &str) -> TlsFailure {
    let config = client_config(&[&p.server_ca], client);
    match tls_get(local(port), config, "m.test", "m.test", "/secret") {
        Ok(x) => panic!(
            "{what}: expected the TLS exchange to fail, got {:?}",
            x.response
        ),
        Err(f) => {
            eprintln!("{what}: refused at step {}: {}", f.step, f.error);
            assert!(
                f.tls_error().is_some() || is_reset(&f.error),
                "{what}: TLS refused it (an alert, or a reset after one): {f:?}"
            );
            f
        }
    }
}

#[test]
fn mtls_without_a_client_certificate_fails_the_handshake() {
    let p = pki();
    let (m, o) = (HttpBackend::start("M"), HttpBackend::start("O"));
    let (mut sluice, port) = start(&p, &m, &o);

    let f = refused(&p, port, None, "no client certificate");
    if let Some(alert) = f.alert() {
        assert!(
            matches!(
                alert,
                rustls::AlertDescription::CertificateRequired
                    | rustls::AlertDescription::HandshakeFailure
            ),
            "alert for a missing client certificate: {alert:?}"
        );
    }
    sluice.wait_for("TLS handshake failed", LOG_TIMEOUT);
    assert_eq!(m.accepted(), 0, "nothing reached the mTLS app's backend");

    // The app without mTLS on the same port needs no certificate.
    let x = https_get(
        local(port),
        client_config(&[&p.server_ca], None),
        "open.test",
        "/",
    );
    assert_eq!(x.response.backend(), "O");
}

#[test]
fn mtls_with_a_certificate_from_the_ca_is_served() {
    let p = pki();
    let (m, o) = (HttpBackend::start("M"), HttpBackend::start("O"));
    let (mut sluice, port) = start(&p, &m, &o);

    let alice = p.client_root.client(p.dir.path(), "alice", "alice");
    let x = https_get(
        local(port),
        client_config(&[&p.server_ca], Some(&alice)),
        "m.test",
        "/secret",
    );
    assert_eq!(x.response.status(), 200, "{:?}", x.response);
    assert_eq!(x.response.backend(), "M");
    let line = wait_https_access(&mut sluice, x.local);
    assert_eq!(field(&line, "status"), Some("200"), "{line}");
}

#[test]
fn mtls_leaf_of_an_intermediate_is_served_when_the_client_sends_the_chain() {
    let p = pki();
    let (m, o) = (HttpBackend::start("M"), HttpBackend::start("O"));
    let (_sluice, port) = start(&p, &m, &o);

    let bob = p.client_mid.client(p.dir.path(), "bob", "bob");
    assert_eq!(bob.chain.len(), 2, "leaf then intermediate");
    let x = https_get(
        local(port),
        client_config(&[&p.server_ca], Some(&bob)),
        "m.test",
        "/secret",
    );
    assert_eq!(x.response.backend(), "M");

    // Without the intermediate the leaf cannot be chained to the root: refused.
    let lone = Leaf {
        chain: vec![bob.der().clone()],
        key: bob.key.clone_key(),
        cert_path: bob.cert_path.clone(),
        key_path: bob.key_path.clone(),
    };
    refused(&p, port, Some(&lone), "a leaf without its intermediate");
    assert_eq!(m.request_count(), 1);
}

#[test]
fn mtls_certificate_from_another_ca_is_refused() {
    let p = pki();
    let (m, o) = (HttpBackend::start("M"), HttpBackend::start("O"));
    let (mut sluice, port) = start(&p, &m, &o);

    let mallory = p.stranger.client(p.dir.path(), "mallory", "mallory");
    let f = refused(
        &p,
        port,
        Some(&mallory),
        "a client certificate from a foreign CA",
    );
    if let Some(alert) = f.alert() {
        assert_eq!(
            alert,
            rustls::AlertDescription::UnknownCA,
            "the alert names the reason"
        );
    }
    sluice.wait_for("TLS handshake failed", LOG_TIMEOUT);
    assert_eq!(m.accepted(), 0);
}
