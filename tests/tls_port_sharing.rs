//! One port, many jobs, through the real binary (the combined shape): on the `[l4]` port
//! that is also `listen_port_tls`, TLS for an app is terminated by the HTTP engine, TLS for
//! `vpn.test` passes through untouched to a TLS backend (the client verifies that backend's
//! own certificate), SSH goes to an SSH-like backend, unknown names are refused or go to
//! `tcp_target`; plain HTTP is served on the HTTP port, also when an `[[l4]]` owns it.

mod common;

use std::io::Write;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::tls_pki::*;
use common::*;
use rustls::AlertDescription;

/// Everything behind the shared port: app `a.test` (sluice's certificate, backend A), a
/// passthrough TLS backend for `vpn.test` with its own CA, and an SSH-like TCP backend.
struct World {
    dir: TempDir,
    sluice_ca: Ca,
    a_leaf: Leaf,
    a: HttpBackend,
    vpn_ca: Ca,
    vpn_leaf: Leaf,
    vpn: TlsBackend,
    ssh: TcpBackend,
}

fn world() -> World {
    let dir = TempDir::new("tls-share");
    let sluice_ca = Ca::root(dir.path(), "sluice-root");
    let a_leaf = sluice_ca.server(dir.path(), "a", &["a.test"]);
    let vpn_ca = Ca::root(dir.path(), "vpn-root");
    let vpn_leaf = vpn_ca.server(dir.path(), "vpn", &["vpn.test"]);
    let vpn = TlsBackend::start("VPN", &vpn_leaf);
    World {
        a: HttpBackend::start("A"),
        ssh: TcpBackend::echo("SSH-2.0-test"),
        dir,
        sluice_ca,
        a_leaf,
        vpn_ca,
        vpn_leaf,
        vpn,
    }
}

/// The L4 rules: `vpn.test` passthrough and SSH.
fn rules(w: &World, prefix: &str) -> String {
    format!(
        "[{prefix}.protocols.vpn]\nprotocol = \"tls\"\nserver_names = [\"vpn.test\"]\n\
         target = [\"{}\"]\n\
         [{prefix}.protocols.ssh]\nprotocol = \"ssh\"\ntarget = [\"{}\"]\n",
        w.vpn.addr(),
        w.ssh.addr()
    )
}

/// Check what arrives through the shared TLS `port` for each kind of client: an app's name,
/// the passthrough name, SSH.
fn check_tls_port(w: &World, sluice: &mut Sluice, port: u16) {
    // An app's name: terminated here, with sluice's certificate, answered by its backend.
    let x = https_get(
        local(port),
        client_config(&[&w.sluice_ca], None),
        "a.test",
        "/app",
    );
    assert_eq!(&x.leaf, w.a_leaf.der(), "sluice's certificate for a.test");
    assert_eq!(x.response.backend(), "A");
    assert_eq!(x.response.echo().header("x-forwarded-proto"), Some("https"));
    let line = wait_https_access(sluice, x.local);
    assert_eq!(field(&line, "app"), Some("a"), "{line}");

    // vpn.test: the client trusts only the VPN backend's CA, so completing the handshake
    // proves sluice relayed it untouched.
    let x = https_get(
        local(port),
        client_config(&[&w.vpn_ca], None),
        "vpn.test",
        "/tunnel",
    );
    assert_eq!(&x.leaf, w.vpn_leaf.der(), "the backend's own certificate");
    assert_eq!(x.response.backend(), "VPN");
    assert_eq!(w.vpn.requests(), vec!["GET /tunnel".to_owned()]);
    let line = sluice.wait_tcp_access(x.local);
    assert_eq!(field(&line, "route"), Some("vpn"), "{line}");
    assert_eq!(field(&line, "sni"), Some("vpn.test"), "{line}");

    // SSH: the client speaks first (so the probe sees it), then gets the server's greeting.
    let mut s = connect(local(port));
    s.write_all(b"SSH-2.0-client\r\n").expect("send SSH banner");
    assert_eq!(read_line(&mut s).expect("SSH greeting"), "SSH-2.0-test");
    assert_eq!(read_line(&mut s).expect("echo"), "SSH-2.0-client\r");
    let client = s.local_addr().unwrap();
    drop(s);
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "route"), Some("ssh"), "{line}");
    assert_eq!(w.a.requests().len(), 1, "only the app's request reached A");
}

#[test]
fn one_tls_port_terminates_apps_passes_vpn_through_and_carries_ssh() {
    let w = world();
    let (http, tls) = (free_port(), free_port());
    let app = tls_app(
        "a",
        "a.test",
        &w.a_leaf,
        ", https_redirection = false",
        w.a.addr(),
    );
    let config = format!(
        "{}\n[l4]\nlisten_port = {tls}\nlisten_address_v4 = \"127.0.0.1\"\n{}",
        tls_config(Some(http), tls, "", &app),
        rules(&w, "l4")
    );
    let mut sluice = Sluice::start(&config);

    check_tls_port(&w, &mut sluice, tls);

    // A name nobody claims, with no tcp_target: the engine refuses it.
    let f = tls_get(
        local(tls),
        client_config(&[&w.sluice_ca], None),
        "other.test",
        "other.test",
        "/",
    )
    .err()
    .expect("other.test is refused");
    assert_eq!(f.alert(), Some(AlertDescription::UnrecognisedName), "{f:?}");

    // Plain HTTP on the HTTP port.
    let r = get(local(http), "a.test", "/plain");
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.backend(), "A");
    assert_eq!(r.echo().header("x-forwarded-proto"), Some("http"));
}

#[test]
fn l4_on_both_ports_hands_plain_http_to_the_engine_and_unknown_tls_to_tcp_target() {
    let w = world();
    let fallback_leaf = w.vpn_ca.server(w.dir.path(), "fallback", &["other.test"]);
    let fallback = TlsBackend::start("FALLBACK", &fallback_leaf);
    let (http, tls) = (free_port(), free_port());
    let app = tls_app(
        "a",
        "a.test",
        &w.a_leaf,
        ", https_redirection = false",
        w.a.addr(),
    );
    let config = format!(
        "{}\n[[l4]]\nlisten_port = {tls}\nlisten_address_v4 = \"127.0.0.1\"\n\
         tcp_target = [\"{}\"]\n{}\n\
         [[l4]]\nlisten_port = {http}\nlisten_address_v4 = \"127.0.0.1\"\n\
         [l4.protocols.ssh]\nprotocol = \"ssh\"\ntarget = [\"{}\"]\n",
        tls_config(Some(http), tls, "", &app),
        fallback.addr(),
        rules(&w, "l4"),
        w.ssh.addr()
    );
    let mut sluice = Sluice::start(&config);

    check_tls_port(&w, &mut sluice, tls);

    // With a tcp_target, TLS for a name no app or rule claims goes there untouched.
    let x = https_get(
        local(tls),
        client_config(&[&w.vpn_ca], None),
        "other.test",
        "/",
    );
    assert_eq!(&x.leaf, fallback_leaf.der());
    assert_eq!(x.response.backend(), "FALLBACK");

    // The HTTP port is an L4 port too: plain HTTP goes to the engine, SSH to its rule.
    let mut conn = HttpConn::connect(local(http));
    let r = conn.request("GET", "/plain", "a.test", &[], b"");
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.backend(), "A");
    let line = wait_http_access(&mut sluice, conn.local_addr());
    assert_eq!(field(&line, "app"), Some("a"), "{line}");
    let mut s = connect(local(http));
    s.write_all(b"SSH-2.0-client\r\n").expect("send SSH banner");
    assert_eq!(read_line(&mut s).expect("SSH greeting"), "SSH-2.0-test");
}
