//! Certificate reload through the real binary: files replaced by rename while sluice runs
//! are picked up after the `certificate files changed` log line, new handshakes see the new
//! certificate (compared by leaf DER) while a connection opened before keeps working; a
//! broken replacement keeps the old certificate; a replaced client CA changes who may connect.

mod common;

use std::cell::Cell;
use std::fs;
use std::path::Path;

use common::http_backend::HttpBackend;
use common::tls_pki::*;
use common::*;

/// How many log lines sluice has written so far: later waits look only at what follows.
fn mark(sluice: &mut Sluice) -> usize {
    sluice.lines().len()
}

/// Wait until sluice has logged, after line `mark`, `certificate files changed` naming each
/// of `paths` (one line or several: the poll may fall between two renames).
fn wait_reloaded(sluice: &mut Sluice, mark: usize, paths: &[&Path]) {
    for path in paths {
        let path = path.display().to_string();
        // `wait_line` shows each line to the predicate once, in order: count them.
        let index = Cell::new(0);
        sluice.wait_line(
            &format!("after line {mark} saying `certificate files changed` for {path}"),
            LOG_TIMEOUT,
            |l| {
                index.set(index.get() + 1);
                index.get() > mark && l.contains("certificate files changed") && l.contains(&path)
            },
        );
    }
}

/// Write `text` to a sibling of `path`, then rename it over `path`.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).expect("write replacement");
    fs::rename(&tmp, path).expect("rename replacement into place");
}

#[test]
fn replaced_certificate_is_served_to_new_handshakes_while_open_connections_keep_working() {
    let dir = TempDir::new("tls-reload");
    let ca = Ca::root(dir.path(), "root");
    let old = ca.server(dir.path(), "a", &["a.test"]);
    let a = HttpBackend::start("A");
    let port = free_port();
    let apps = tls_app("a", "a.test", &old, "", a.addr());
    let mut sluice = Sluice::start(&tls_config(None, port, "", &apps));
    let config = client_config(&[&ca], None);

    let mut kept =
        TlsConn::connect(local(port), config.clone(), "a.test").unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(&kept.peer_leaf(), old.der());
    let r = kept
        .get("a.test", "/before")
        .unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(r.backend(), "A");

    let new = ca.server(dir.path(), "a-next", &["a.test"]);
    assert_ne!(new.der(), old.der());
    let before = mark(&mut sluice);
    new.rename_over(&old);
    wait_reloaded(&mut sluice, before, &[&old.cert_path, &old.key_path]);

    let x = https_get(local(port), config, "a.test", "/after");
    assert_eq!(
        &x.leaf,
        new.der(),
        "a new handshake gets the new certificate"
    );
    assert_eq!(x.response.backend(), "A");

    for n in 0..3 {
        let r = kept
            .get("a.test", &format!("/still/{n}"))
            .unwrap_or_else(|f| panic!("the connection opened before the reload: {f:?}"));
        assert_eq!(r.status(), 200, "{r:?}");
        assert_eq!(r.echo().target, format!("/still/{n}"));
    }
    assert_eq!(&kept.peer_leaf(), old.der(), "its session is the old one");
}

#[test]
fn broken_replacement_keeps_the_old_certificate_until_fixed() {
    let dir = TempDir::new("tls-reload-broken");
    let ca = Ca::root(dir.path(), "root");
    let old = ca.server(dir.path(), "a", &["a.test"]);
    let a = HttpBackend::start("A");
    let port = free_port();
    let apps = tls_app("a", "a.test", &old, "", a.addr());
    let mut sluice = Sluice::start(&tls_config(None, port, "", &apps));
    let config = client_config(&[&ca], None);

    let before = mark(&mut sluice);
    replace_file(&old.key_path, "this is not a private key\n");
    wait_reloaded(&mut sluice, before, &[&old.key_path]);
    sluice.wait_for("keeping the certificate loaded before", LOG_TIMEOUT);
    let x = https_get(local(port), config.clone(), "a.test", "/");
    assert_eq!(
        &x.leaf,
        old.der(),
        "the broken key did not take the app down"
    );
    assert_eq!(x.response.backend(), "A");

    // A key that does not match the certificate is refused the same way.
    let other = ca.server(dir.path(), "other", &["a.test"]);
    let before = mark(&mut sluice);
    replace_file(&old.key_path, &fs::read_to_string(&other.key_path).unwrap());
    wait_reloaded(&mut sluice, before, &[&old.key_path]);
    let index = Cell::new(0);
    sluice.wait_line("a warning that the key does not match", LOG_TIMEOUT, |l| {
        index.set(index.get() + 1);
        index.get() > before && l.contains("keeping the certificate loaded before")
    });
    let x = https_get(local(port), config.clone(), "a.test", "/");
    assert_eq!(&x.leaf, old.der());

    let fixed = ca.server(dir.path(), "a-fixed", &["a.test"]);
    let before = mark(&mut sluice);
    fixed.rename_over(&old);
    wait_reloaded(&mut sluice, before, &[&old.cert_path, &old.key_path]);
    let x = https_get(local(port), config, "a.test", "/");
    assert_eq!(&x.leaf, fixed.der(), "the fixed pair is served");
}

#[test]
fn replaced_client_ca_changes_which_client_certificates_are_accepted() {
    let dir = TempDir::new("tls-reload-ca");
    let server_ca = Ca::root(dir.path(), "server");
    let leaf = server_ca.server(dir.path(), "m", &["m.test"]);
    let (ca1, ca2) = (Ca::root(dir.path(), "c1"), Ca::root(dir.path(), "c2"));
    let (one, two) = (
        ca1.client(dir.path(), "one", "one"),
        ca2.client(dir.path(), "two", "two"),
    );
    let client_ca = dir.path().join("clients.pem");
    fs::copy(&ca1.pem_path, &client_ca).expect("install client CA");
    let m = HttpBackend::start("M");
    let port = free_port();
    let extra = format!(", client_ca_cert_path = \"{}\"", client_ca.display());
    let apps = tls_app("m", "m.test", &leaf, &extra, m.addr());
    let mut sluice = Sluice::start(&tls_config(None, port, "", &apps));
    let get = |client: &Leaf| {
        tls_get(
            local(port),
            client_config(&[&server_ca], Some(client)),
            "m.test",
            "m.test",
            "/",
        )
    };

    assert_eq!(get(&one).map(|x| x.response.status()).ok(), Some(200));
    assert!(get(&two).is_err(), "c2's client is not accepted yet");

    let before = mark(&mut sluice);
    replace_file(&client_ca, &fs::read_to_string(&ca2.pem_path).unwrap());
    wait_reloaded(&mut sluice, before, &[&client_ca]);

    assert_eq!(
        get(&two).map(|x| x.response.status()).ok(),
        Some(200),
        "c2's client is accepted after the reload"
    );
    let f = get(&one)
        .err()
        .expect("c1's client is refused after the reload");
    assert!(f.tls_error().is_some() || is_reset(&f.error), "{f:?}");
}
