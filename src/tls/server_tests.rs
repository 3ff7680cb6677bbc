//! Tests of `TlsServer`: SNI → app selection, watched files, warnings, reload fallbacks
//! and resumption across reloads; and the loopback client/server helpers the handshake
//! tests share.

use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use rustls::client::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{HandshakeKind, SupportedProtocolVersion};

use super::*;
use crate::plan::http::{AppTls, HttpApp, HttpPlan};
use crate::timer::Timer;
use crate::tls::certs::tests::{Ca, Leaf, TempDir, set_mode};

pub(super) const ALL: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
pub(super) const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

pub(super) fn run<T>(f: impl Future<Output = T>) -> T {
    async_io::block_on(future::or(f, async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("test timed out")
    }))
}

pub(super) fn plan(apps: Vec<HttpApp>) -> HttpPlan {
    HttpPlan {
        listen_port: None,
        listen_port_tls: Some(443),
        listen_addresses: vec![],
        tcp_listen_backlog: 1,
        max_concurrent_streams: 1,
        max_clients: 1,
        max_clients_per_ip: None,
        default_app: None,
        trusted_forwarded_proxies: vec![],
        redact_query_in_access_log: false,
        request_max_body_size: None,
        sticky_cookie_secret: None,
        public_https_port: None,
        apps,
        timeouts: Default::default(),
        experimental: Default::default(),
    }
}

pub(super) fn app(name: &str, server_name: &str, tls: Option<AppTls>) -> HttpApp {
    HttpApp {
        name: name.into(),
        server_name: server_name.into(),
        tls,
        routes: vec![],
        access: Default::default(),
    }
}

pub(super) fn files(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> Option<AppTls> {
    Some(AppTls {
        cert: CertSource::Files { cert, key },
        client_ca_cert_path: client_ca,
        https_redirection: false,
    })
}

/// Write a leaf's cert and key as `<tag>.crt` / `<tag>.key` and return an app for it.
pub(super) fn file_app(
    dir: &TempDir,
    name: &str,
    server_name: &str,
    leaf: &Leaf,
    ca: Option<PathBuf>,
) -> HttpApp {
    let cert = dir.write(&format!("{name}.crt"), &leaf.cert_pem);
    let key = dir.write(&format!("{name}.key"), &leaf.key_pem);
    app(name, server_name, files(cert, key, ca))
}

pub(super) fn leaf(ca: &Ca, names: &[&str]) -> Leaf {
    ca.server_leaf(names, &rcgen::PKCS_ECDSA_P256_SHA256)
}

pub(super) fn client_config(
    ca: &Ca,
    versions: &[&'static SupportedProtocolVersion],
    client_cert: Option<(Vec<CertificateDer<'static>>, &str)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).expect("root");
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(
                chain,
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

pub(super) fn chain(pems: &[&str]) -> Vec<CertificateDer<'static>> {
    pems.iter()
        .flat_map(|p| CertificateDer::pem_slice_iter(p.as_bytes()).map(|c| c.expect("pem")))
        .collect()
}

/// What the client saw of a finished handshake.
#[derive(Debug)]
pub(super) struct ClientView {
    pub(super) leaf: Option<CertificateDer<'static>>,
    pub(super) kind: Option<HandshakeKind>,
    pub(super) alpn: Option<Vec<u8>>,
    pub(super) group: Option<rustls::NamedGroup>,
}

pub(super) async fn tcp_pair() -> (Async<TcpStream>, Async<TcpStream>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    let (client, accepted) =
        future::zip(Async::<TcpStream>::connect(addr), listener.accept()).await;
    (accepted.expect("accept").0, client.expect("connect"))
}

/// The server side: accept, send "hi", wait for the client's close_notify.
pub(super) async fn serve(
    tcp: Prefixed<Async<TcpStream>>,
    server: &TlsServer,
) -> Result<Option<String>, AcceptError> {
    let (mut tls, sni) = accept(tcp, server).await?;
    assert_eq!(tls.get_ref().1.server_name().map(str::to_owned), sni);
    tls.write_all(b"hi").await.expect("write");
    tls.flush().await.expect("flush");
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest).await;
    Ok(sni)
}

/// The client side: handshake, read "hi", close with close_notify.
pub(super) async fn client(
    tcp: Async<TcpStream>,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<ClientView> {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut tls = futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let mut hi = [0u8; 2];
    tls.read_exact(&mut hi).await?;
    assert_eq!(&hi, b"hi");
    let conn = tls.get_ref().1;
    let view = ClientView {
        leaf: conn.peer_certificates().and_then(|c| c.first().cloned()),
        kind: conn.handshake_kind(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        group: conn.negotiated_key_exchange_group().map(|g| g.name()),
    };
    tls.close().await?;
    Ok(view)
}

pub(super) fn connect(
    server: &TlsServer,
    config: &Arc<ClientConfig>,
    name: &str,
) -> (Result<Option<String>, AcceptError>, io::Result<ClientView>) {
    run(async {
        let (server_tcp, client_tcp) = tcp_pair().await;
        future::zip(
            serve(Prefixed::new(Vec::new(), server_tcp), server),
            client(client_tcp, config.clone(), name),
        )
        .await
    })
}

pub(super) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// A CA, two apps (exact and wildcard) and their leaves, loaded into a server.
pub(super) struct TwoApps {
    pub(super) dir: TempDir,
    pub(super) ca: Ca,
    pub(super) a: Leaf,
    pub(super) w: Leaf,
    pub(super) plan: HttpPlan,
}

impl TwoApps {
    pub(super) fn new(tag: &str) -> TwoApps {
        let dir = TempDir::new(tag);
        let ca = Ca::root("Server CA");
        let a = leaf(&ca, &["a.test"]);
        let w = leaf(&ca, &["*.w.test"]);
        let plan = plan(vec![
            file_app(&dir, "a", "a.test", &a, None),
            app("plain", "plain.test", None),
            file_app(&dir, "w", "*.w.test", &w, None),
        ]);
        TwoApps {
            dir,
            ca,
            a,
            w,
            plan,
        }
    }

    pub(super) fn server(&self) -> TlsServer {
        let (server, warnings) = TlsServer::new(&self.plan, None);
        assert_eq!(warnings, Vec::<String>::new());
        server
    }
}

#[test]
fn config_for_picks_exact_then_longest_wildcard() {
    let dir = TempDir::new("select");
    let ca = Ca::root("CA");
    let l = leaf(&ca, &["x.test"]);
    let mut acme = app(
        "acme",
        "acme.test",
        files(PathBuf::new(), PathBuf::new(), None),
    );
    if let Some(tls) = &mut acme.tls {
        tls.cert = CertSource::Acme;
    }
    let plan = plan(vec![
        file_app(&dir, "wild", "*.example.com", &l, None),
        file_app(&dir, "deep", "*.deep.example.com", &l, None),
        file_app(&dir, "exact", "a.deep.example.com", &l, None),
        app("plain", "plain.example.org", None),
        acme,
        file_app(&dir, "wild2", "*.example.com", &l, None),
    ]);
    let (server, _) = TlsServer::new(&plan, None);
    let cases = [
        ("a.deep.example.com", Some(2)),
        ("A.Deep.Example.COM.", Some(2)),
        ("b.deep.example.com", Some(1)),
        ("x.y.deep.example.com", Some(1)),
        ("deep.example.com", Some(0)),
        ("www.example.com", Some(0)),
        ("example.com", None),
        ("plain.example.org", None),
        ("acme.test", Some(4)),
        ("xexample.com", None),
    ];
    for (sni, want) in cases {
        assert_eq!(server.app_for(sni), want, "{sni}");
        assert_eq!(
            server.config_for(Some(sni)).is_ok(),
            want.is_some_and(|i| i != 4),
            "{sni}"
        );
    }
    assert_eq!(
        server.config_for(None).err(),
        Some(Refusal::UnknownName(None))
    );
    assert_eq!(
        server.config_for(Some("Plain.Example.ORG")).err(),
        Some(Refusal::UnknownName(Some("plain.example.org".into())))
    );
    match server.config_for(Some("acme.test")) {
        Err(Refusal::Broken(why)) => assert!(why.contains("ACME not implemented"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The same config object each time (built once).
    let (c1, c2) = (
        server.config_for(Some("www.example.com")),
        server.config_for(Some("q.example.com")),
    );
    assert!(Arc::ptr_eq(&c1.expect("c1"), &c2.expect("c2")));
}

#[test]
fn watched_files_lists_every_cert_key_and_ca_once() {
    let dir = TempDir::new("watch");
    let ca = Ca::root("CA");
    let l = leaf(&ca, &["a.test"]);
    let ca_path = dir.write("ca.pem", ca.pem());
    let a = file_app(&dir, "a", "a.test", &l, Some(ca_path.clone()));
    let mut b = a.clone();
    b.name = "b".into();
    b.server_name = "b.test".into();
    let (server, _) = TlsServer::new(&plan(vec![a, b]), None);
    let d = dir.path();
    assert_eq!(
        server.watched_files(),
        vec![d.join("a.crt"), d.join("a.key"), ca_path]
    );
}

#[test]
fn reload_keeps_the_old_cert_when_the_new_file_is_broken() {
    let apps = TwoApps::new("keep");
    let old = apps.server();
    apps.dir.write("a.crt", "garbage");
    let (fresh, warnings) = TlsServer::new(&apps.plan, None);
    assert!(matches!(
        fresh.config_for(Some("a.test")),
        Err(Refusal::Broken(_))
    ));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("a.crt") && w.contains("no CERTIFICATE")),
        "{warnings:?}"
    );
    let (server, warnings) = TlsServer::new(&apps.plan, Some(&old));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("a.crt") && warnings[0].contains("keeping the certificate"),
        "{warnings:?}"
    );
    let config = client_config(&apps.ca, ALL, None);
    let (_, view) = connect(&server, &config, "a.test");
    assert_eq!(view.expect("client").leaf.as_ref(), Some(&apps.a.der));
}

#[test]
fn warns_about_open_keys_foreign_names_and_expired_certs() {
    let dir = TempDir::new("warn");
    let ca = Ca::root("CA");
    let a = file_app(&dir, "a", "other.test", &leaf(&ca, &["a.test"]), None);
    if let Some(AppTls {
        cert: CertSource::Files { key, .. },
        ..
    }) = &a.tls
    {
        set_mode(key, 0o644);
    }
    let mut params = rcgen::CertificateParams::new(vec!["old.test".to_owned()]).expect("params");
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = params.signed_by(&key, &ca.cert, &ca.key).expect("sign");
    let expired = Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    };
    let old = file_app(&dir, "old", "old.test", &expired, None);
    let (server, warnings) = TlsServer::new(&plan(vec![a, old]), None);
    let has = |s: &[&str]| warnings.iter().any(|w| s.iter().all(|x| w.contains(x)));
    assert!(has(&["app `a`", "a.key", "chmod 600"]), "{warnings:?}");
    assert!(
        has(&["app `a`", "does not cover server_name other.test"]),
        "{warnings:?}"
    );
    assert!(has(&["app `old`", "expired"]), "{warnings:?}");
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(server.config_for(Some("other.test")).is_ok());
}

/// An mTLS app trusting `root` for client certificates.
pub(super) fn mtls(tag: &str) -> (TempDir, Ca, Ca, TlsServer, HttpPlan) {
    let dir = TempDir::new(tag);
    let server_ca = Ca::root("Server CA");
    let client_root = Ca::root("Client Root");
    let ca_path = dir.write("clients.pem", client_root.pem());
    let plan = plan(vec![file_app(
        &dir,
        "m",
        "m.test",
        &leaf(&server_ca, &["m.test"]),
        Some(ca_path),
    )]);
    let (server, warnings) = TlsServer::new(&plan, None);
    assert!(warnings.is_empty(), "{warnings:?}");
    (dir, server_ca, client_root, server, plan)
}

#[test]
fn mtls_app_with_unloadable_ca_is_refused_not_served_without_auth() {
    let (dir, server_ca, _, old, plan) = mtls("mtls-broken");
    dir.write("clients.pem", "garbage");
    let (server, warnings) = TlsServer::new(&plan, None);
    assert!(
        warnings.iter().any(|w| w.contains("clients.pem")),
        "{warnings:?}"
    );
    assert!(matches!(
        server.config_for(Some("m.test")),
        Err(Refusal::Broken(_))
    ));
    let (served, _) = connect(&server, &client_config(&server_ca, ALL, None), "m.test");
    assert!(matches!(served, Err(AcceptError::Broken(_))), "{served:?}");
    // With the old server, its CA set is kept: still mTLS.
    let (server, warnings) = TlsServer::new(&plan, Some(&old));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("keeping the client CAs")),
        "{warnings:?}"
    );
    let (served, _) = connect(&server, &client_config(&server_ca, ALL, None), "m.test");
    assert!(matches!(served, Err(AcceptError::Tls(_))), "{served:?}");
}

#[test]
fn sessions_resume_with_tickets_and_across_reloads() {
    let apps = TwoApps::new("resume");
    let server = apps.server();
    for versions in [ALL, TLS12_ONLY] {
        let config = client_config(&apps.ca, versions, None);
        let (_, first) = connect(&server, &config, "a.test");
        assert_eq!(first.expect("first").kind, Some(HandshakeKind::Full));
        let (_, second) = connect(&server, &config, "a.test");
        assert_eq!(
            second.expect("second").kind,
            Some(HandshakeKind::Resumed),
            "{versions:?}"
        );
        let (reloaded, _) = TlsServer::new(&apps.plan, Some(&server));
        let (_, third) = connect(&reloaded, &config, "a.test");
        assert_eq!(
            third.expect("third").kind,
            Some(HandshakeKind::Resumed),
            "{versions:?}"
        );
    }
}

/// rustls resumes without asking for the client certificate again: a session from before
/// the app turned on mTLS must not get in without one.
#[test]
fn session_from_before_mtls_does_not_skip_the_client_certificate() {
    let apps = TwoApps::new("resume-mtls");
    let server = apps.server();
    for versions in [ALL, TLS12_ONLY] {
        let config = client_config(&apps.ca, versions, None);
        let (_, first) = connect(&server, &config, "a.test");
        first.expect("first");
        let mut plan = apps.plan.clone();
        let ca_path = apps.dir.write("clients.pem", Ca::root("Clients").pem());
        if let Some(tls) = &mut plan.apps[0].tls {
            tls.client_ca_cert_path = Some(ca_path);
        }
        let (reloaded, warnings) = TlsServer::new(&plan, Some(&server));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (served, view) = connect(&reloaded, &config, "a.test");
        assert!(
            matches!(served, Err(AcceptError::Tls(_))),
            "{versions:?}: {served:?}"
        );
        assert!(view.is_err());
    }
}
