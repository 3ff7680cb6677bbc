use super::*;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use async_io::Async;
use futures_lite::AsyncWriteExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const PATIENCE: Duration = Duration::from_secs(5);

/// A private CA and leaf certificates it signs.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let ca = params.self_signed(&ca_key).expect("CA cert");
        Pki { ca, ca_key }
    }

    /// A server config presenting a leaf for `names` (IP literals become IP SANs).
    fn server(&self, names: &[&str]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("leaf cert");
        server_config(leaf.der().clone(), key)
    }
}

fn server_config(cert: CertificateDer<'static>, key: KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::new(crypto()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server cert");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A file under the temp dir, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sluice-tls-client-{}-{tag}-{n}", std::process::id());
        TempPath(std::env::temp_dir().join(name))
    }

    fn file(tag: &str, contents: &str) -> TempPath {
        let path = TempPath::new(tag);
        std::fs::write(&path.0, contents).expect("write temp file");
        path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn listener() -> (Async<TcpListener>, SocketAddr) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("local addr");
    (listener, addr)
}

/// Accepts one TLS connection and echoes 4 bytes back.
async fn echo_once(listener: Async<TcpListener>, config: Arc<ServerConfig>) -> Result<(), String> {
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let acceptor = futures_rustls::TlsAcceptor::from(config);
    let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    tls.write_all(&buf).await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())
}

/// Connects to `server` as `name` with `client` and exchanges "ping".
fn round_trip(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> Result<(), String> {
    let (listener, addr) = listener();
    smol::block_on(async {
        let serve = echo_once(listener, server);
        let talk = async {
            let tcp = Async::<TcpStream>::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let mut tls = connect(tcp, client, name, PATIENCE).await?;
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"ping");
            Ok(())
        };
        futures_lite::future::zip(serve, talk).await.1
    })
}

#[test]
fn extra_ca_file_is_trusted_and_bytes_round_trip() {
    let pki = Pki::new();
    let ca_file = TempPath::file("ca", &pki.ca.pem());
    let tls = UpstreamTls::with_roots(RootCertStore::empty());
    let config = tls.config(Some(&ca_file.0)).expect("config");
    round_trip(pki.server(&["backend.test"]), config, "backend.test").expect("round trip");
}

#[test]
fn system_roots_alone_do_not_trust_a_private_ca() {
    let pki = Pki::new();
    let config = UpstreamTls::new().config(None).expect("config");
    let err = round_trip(pki.server(&["backend.test"]), config, "backend.test").unwrap_err();
    assert!(
        err.starts_with("certificate not trusted: unknown issuer"),
        "{err}"
    );
}

#[test]
fn wrong_server_name_is_a_name_mismatch() {
    let pki = Pki::new();
    let ca_file = TempPath::file("ca", &pki.ca.pem());
    let config = UpstreamTls::with_roots(RootCertStore::empty())
        .config(Some(&ca_file.0))
        .expect("config");
    let err = round_trip(pki.server(&["backend.test"]), config, "other.test").unwrap_err();
    assert!(err.starts_with("name mismatch: "), "{err}");
    assert!(err.contains("backend.test"), "{err}");
}

#[test]
fn ip_literal_upstream_matches_an_ip_san() {
    let pki = Pki::new();
    let ca_file = TempPath::file("ca", &pki.ca.pem());
    let config = UpstreamTls::with_roots(RootCertStore::empty())
        .config(Some(&ca_file.0))
        .expect("config");
    round_trip(pki.server(&["127.0.0.1"]), config.clone(), "127.0.0.1").expect("IP SAN");
    let err = round_trip(pki.server(&["backend.test"]), config, "127.0.0.1").unwrap_err();
    assert!(err.starts_with("name mismatch: "), "{err}");
}

#[test]
fn self_signed_backend_certificate_as_ca_cert_path() {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["selfsigned.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let pinned = TempPath::file("pin", &cert.pem());
    let config = UpstreamTls::with_roots(RootCertStore::empty())
        .config(Some(&pinned.0))
        .expect("config");
    round_trip(
        server_config(cert.der().clone(), key),
        config,
        "selfsigned.test",
    )
    .expect("pinned");
}

#[test]
fn silent_server_times_out() {
    // The kernel completes the TCP handshake from the backlog; nobody ever answers.
    let silent = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let addr = silent.local_addr().expect("addr");
    let config = UpstreamTls::with_roots(RootCertStore::empty())
        .config(None)
        .expect("config");
    let started = Instant::now();
    let err = smol::block_on(async {
        let tcp = Async::<TcpStream>::connect(addr).await.expect("connect");
        connect(tcp, config, "backend.test", Duration::from_millis(300))
            .await
            .map(|_| ())
    })
    .unwrap_err();
    let waited = started.elapsed();
    assert!(err.starts_with("timeout after 300ms"), "{err}");
    assert!(
        waited >= Duration::from_millis(300) && waited < PATIENCE,
        "{waited:?}"
    );
}

#[test]
fn idle_connection_with_session_tickets_stays_usable_until_close_notify() {
    let pki = Pki::new();
    let ca_file = TempPath::file("ca", &pki.ca.pem());
    let client = UpstreamTls::with_roots(RootCertStore::empty())
        .config(Some(&ca_file.0))
        .expect("config");
    let server = pki.server(&["backend.test"]);
    let (listener, addr) = listener();
    let (close, closing) = smol::channel::bounded::<()>(1);
    smol::block_on(async {
        let serve = async {
            let (tcp, _) = listener.accept().await.expect("accept");
            let acceptor = futures_rustls::TlsAcceptor::from(server);
            let mut tls = acceptor.accept(tcp).await.expect("server handshake");
            let _ = closing.recv().await;
            tls.close().await.expect("close_notify");
        };
        let talk = async {
            let tcp = Async::<TcpStream>::connect(addr).await.expect("connect");
            let mut tls = connect(tcp, client, "backend.test", PATIENCE)
                .await
                .expect("handshake");
            // TLS 1.3 tickets arrive after the handshake: a TCP peek sees them as data.
            let mut peeked = [0u8; 1];
            let started = Instant::now();
            while !matches!(tls.get_ref().0.get_ref().peek(&mut peeked), Ok(1)) {
                assert!(started.elapsed() < PATIENCE, "no session ticket arrived");
                Timer::after(Duration::from_millis(10)).await;
            }
            assert!(idle_usable(&mut tls).await, "tickets made it unusable");
            assert!(idle_usable(&mut tls).await);
            close.send(()).await.expect("signal");
            let started = Instant::now();
            while idle_usable(&mut tls).await {
                assert!(started.elapsed() < PATIENCE, "close_notify not noticed");
                Timer::after(Duration::from_millis(10)).await;
            }
        };
        futures_lite::future::zip(serve, talk).await;
    });
}

#[test]
fn config_is_cached_per_ca_path() {
    let pki = Pki::new();
    let ca_file = TempPath::file("ca", &pki.ca.pem());
    let tls = UpstreamTls::with_roots(RootCertStore::empty());
    let a = tls.config(Some(&ca_file.0)).expect("config");
    let b = tls.config(Some(&ca_file.0)).expect("config");
    assert!(Arc::ptr_eq(&a, &b));
    let system = tls.config(None).expect("config");
    assert!(!Arc::ptr_eq(&a, &system));
    assert!(Arc::ptr_eq(&system, &tls.config(None).expect("config")));
}

#[test]
fn bad_ca_cert_path_says_why() {
    let tls = UpstreamTls::with_roots(RootCertStore::empty());
    let missing = TempPath::new("missing");
    let err = tls.config(Some(&missing.0)).unwrap_err();
    assert!(err.contains(&missing.0.display().to_string()), "{err}");
    let empty = TempPath::file("empty", "no pem here\n");
    let err = tls.config(Some(&empty.0)).unwrap_err();
    assert!(err.contains("no CERTIFICATE"), "{err}");
    let junk = TempPath::file(
        "junk",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let err = tls.config(Some(&junk.0)).unwrap_err();
    assert!(
        err.contains("no usable certificate (1 unparsable)"),
        "{err}"
    );
}

#[test]
fn roots_from_a_bundle_file_loads_exactly_it() {
    let pki = Pki::new();
    let other = Pki::new();
    let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let bundle = format!(
        "{}{junk}{key}{}{}",
        pki.ca.pem(),
        other.ca.pem(),
        pki.ca.pem()
    );
    let file = TempPath::file("bundle", &bundle);
    let (store, notes) = roots_from(Some(&file.0), None);
    assert_eq!(store.len(), 2, "{notes:?}");
    let expected = format!(
        "CA bundle {}: 2 certificates, 1 unusable skipped",
        file.0.display()
    );
    assert_eq!(notes, vec![expected]);
    // What the bundle trusts is what a handshake trusts.
    let tls = UpstreamTls::with_roots(store);
    let config = tls.config(None).expect("config");
    round_trip(pki.server(&["backend.test"]), config, "backend.test").expect("trusted");
}

#[test]
fn roots_from_a_directory_reads_hash_links_and_pem_files_once() {
    let pki = Pki::new();
    let dir = TempPath::new("dir");
    std::fs::create_dir(&dir.0).expect("mkdir");
    for name in [
        "5ed36f99.0",
        "test-ca.pem",
        "copy.crt",
        "README",
        "5ed36f99.r0",
    ] {
        std::fs::write(dir.0.join(name), pki.ca.pem()).expect("write");
    }
    let (store, notes) = roots_from(None, Some(&dir.0));
    assert_eq!(store.len(), 1, "{notes:?}");
    let expected = format!(
        "CA directory {}: 1 certificates from 3 files",
        dir.0.display()
    );
    assert_eq!(notes, vec![expected]);
}

#[test]
fn no_roots_found_is_an_empty_store_with_a_note() {
    let (store, notes) = roots_from(None, None);
    assert!(store.is_empty());
    assert!(
        notes.iter().any(|n| n.contains("ca_cert_path")),
        "{notes:?}"
    );
    let missing = TempPath::new("nodir");
    let (store, notes) = roots_from(Some(&missing.0), Some(&missing.0));
    assert!(store.is_empty());
    assert_eq!(notes.len(), 4, "{notes:?}");
}

#[test]
fn server_names_parse_ip_literals_with_or_without_brackets() {
    for ip in ["127.0.0.1", "::1", "[::1]"] {
        assert!(
            matches!(parse_server_name(ip), Ok(ServerName::IpAddress(_))),
            "{ip}"
        );
    }
    assert!(matches!(
        parse_server_name("backend.test"),
        Ok(ServerName::DnsName(_))
    ));
    assert!(parse_server_name("bad name!").is_err());
}
