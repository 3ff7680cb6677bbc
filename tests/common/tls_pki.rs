//! TLS kit for the integration tests: a throw-away PKI (root and intermediate CAs, server and
//! client leaves as PEM files in a test's temp dir, made with rcgen), rustls client configs,
//! a blocking HTTPS client connection that reports what the handshake negotiated, and an
//! HTTPS backend that answers with its own name. Does IO (files, sockets, threads).

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, NamedGroup, RootCertStore, StreamOwned,
};

use super::connect;
use super::http_client::{Response, ResponseHead};

mod backend;

// Re-exported for the test files; a binary that uses none of it would warn.
#[allow(unused_imports)]
pub use backend::TlsBackend;

/// A certificate authority: a self-signed root, or an intermediate signed by another CA.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The intermediates between this CA and its root, this one first (empty for a root).
    chain: Vec<CertificateDer<'static>>,
    /// This CA's certificate as a PEM file (what sluice or a client is told to trust).
    pub pem_path: PathBuf,
}

impl Ca {
    /// A root CA named `name`, written to `DIR/NAME-ca.pem`.
    pub fn root(dir: &Path, name: &str) -> Ca {
        let mut params = ca_params(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("generate CA key");
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca::written(dir, name, cert, key, Vec::new())
    }

    /// An intermediate CA signed by `self`, written to `DIR/NAME-ca.pem`.
    pub fn intermediate(&self, dir: &Path, name: &str) -> Ca {
        let mut params = ca_params(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let key = KeyPair::generate().expect("generate intermediate key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign intermediate");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Ca::written(dir, name, cert, key, chain)
    }

    fn written(
        dir: &Path,
        name: &str,
        cert: rcgen::Certificate,
        key: KeyPair,
        chain: Vec<CertificateDer<'static>>,
    ) -> Ca {
        let pem_path = dir.join(format!("{name}-ca.pem"));
        fs::write(&pem_path, cert.pem()).expect("write CA PEM");
        Ca {
            cert,
            key,
            chain,
            pem_path,
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A server certificate for `names` (DNS names, `*.` wildcards allowed), written as
    /// `DIR/STEM.pem` (leaf, then this CA's intermediates) and `DIR/STEM.key` (PKCS#8).
    pub fn server(&self, dir: &Path, stem: &str, names: &[&str]) -> Leaf {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("server cert params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf(dir, stem, params)
    }

    /// A client certificate with common name `cn`, written like [`Ca::server`].
    pub fn client(&self, dir: &Path, stem: &str, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.leaf(dir, stem, params)
    }

    fn leaf(&self, dir: &Path, stem: &str, mut params: CertificateParams) -> Leaf {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        let pem: String = chain.iter().map(der_to_pem).collect();
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        fs::write(&cert_path, pem).expect("write leaf PEM");
        fs::write(&key_path, key.serialize_pem()).expect("write leaf key");
        restrict(&key_path);
        Leaf {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_path,
            key_path,
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn der_to_pem(der: &CertificateDer<'_>) -> String {
    let b64 = super::http_backend::base64(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Keep a key file private (sluice warns about keys others can read).
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod key");
}

/// A leaf certificate with its chain (leaf first, then intermediates) and key, in memory
/// and as files.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Leaf {
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// Move this leaf's files over `other`'s, certificate first, each by rename (new inodes,
    /// the way deployment tools replace files).
    pub fn rename_over(&self, other: &Leaf) {
        fs::rename(&self.cert_path, &other.cert_path).expect("rename certificate into place");
        fs::rename(&self.key_path, &other.key_path).expect("rename key into place");
    }
}

/// The provider the tests' clients use unless a test picks another (both ring and aws-lc
/// are compiled in, so there is no process default).
pub fn ring() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A client config trusting `roots`, presenting `client` when asked, offering ALPN
/// `http/1.1`, with resumption off (each handshake shows the server's current certificate).
pub fn client_config(roots: &[&Ca], client: Option<&Leaf>) -> Arc<ClientConfig> {
    client_config_with(ring(), roots, client)
}

/// [`client_config`] with a chosen crypto provider.
pub fn client_config_with(
    provider: CryptoProvider,
    roots: &[&Ca],
    client: Option<&Leaf>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for ca in roots {
        store.add(ca.der()).expect("add root");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("client protocol versions")
        .with_root_certificates(store);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key.clone_key())
            .expect("client certificate"),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Why a TLS exchange failed: the step, and the error (a rustls error inside when TLS said
/// no).
#[derive(Debug)]
pub struct TlsFailure {
    pub step: &'static str,
    pub error: io::Error,
}

impl TlsFailure {
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        self.error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
    }

    /// The fatal alert the server sent, if that is what ended it.
    pub fn alert(&self) -> Option<AlertDescription> {
        match self.tls_error() {
            Some(rustls::Error::AlertReceived(a)) => Some(*a),
            _ => None,
        }
    }
}

/// A client TLS connection through which HTTP/1.1 requests go one after another.
pub struct TlsConn {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
    local: SocketAddr,
}

impl TlsConn {
    /// Connect to `addr` and complete a handshake for `sni` (an IP literal sends no SNI).
    pub fn connect(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        sni: &str,
    ) -> Result<TlsConn, TlsFailure> {
        let name = ServerName::try_from(sni.to_owned()).expect("valid server name");
        let tcp = connect(addr);
        let local = tcp.local_addr().unwrap();
        let conn = ClientConnection::new(config, name).expect("client connection");
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|error| TlsFailure {
                    step: "handshake",
                    error,
                })?;
        }
        Ok(TlsConn {
            stream,
            buf: Vec::new(),
            local,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The certificate chain the server sent.
    pub fn peer_chain(&self) -> Vec<CertificateDer<'static>> {
        self.stream
            .conn
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    pub fn peer_leaf(&self) -> CertificateDer<'static> {
        self.peer_chain()
            .into_iter()
            .next()
            .expect("the server sent a certificate")
    }

    pub fn group(&self) -> Option<NamedGroup> {
        self.stream
            .conn
            .negotiated_key_exchange_group()
            .map(|g| g.name())
    }

    /// Whether the handshake resumed an earlier session (ticket or session id).
    pub fn resumed(&self) -> bool {
        self.stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// `GET target` with `Host: host`; the response, or what failed.
    pub fn get(&mut self, host: &str, target: &str) -> Result<Response, TlsFailure> {
        let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let fail = |step| move |error| TlsFailure { step, error };
        self.stream
            .write_all(req.as_bytes())
            .and_then(|()| self.stream.flush())
            .map_err(fail("send request"))?;
        read_response(&mut self.stream, &mut self.buf).map_err(fail("read response"))
    }
}

/// What one HTTPS request on a fresh connection saw.
pub struct TlsExchange {
    pub leaf: CertificateDer<'static>,
    pub group: Option<NamedGroup>,
    pub local: SocketAddr,
    pub response: Response,
}

/// Handshake with `sni`, then `GET target` with `Host: host`, on a fresh connection.
pub fn tls_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    sni: &str,
    host: &str,
    target: &str,
) -> Result<TlsExchange, TlsFailure> {
    let mut conn = TlsConn::connect(addr, config, sni)?;
    let response = conn.get(host, target)?;
    Ok(TlsExchange {
        leaf: conn.peer_leaf(),
        group: conn.group(),
        local: conn.local_addr(),
        response,
    })
}

/// Like [`tls_get`] with Host = SNI; panics with the failure.
pub fn https_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
    target: &str,
) -> TlsExchange {
    tls_get(addr, config, name, name, target)
        .unwrap_or_else(|f| panic!("GET https://{name}{target} via {addr}: {f:?}"))
}

/// One HTTP/1.1 response (Content-Length, chunked or close-delimited body); `buf` keeps the
/// bytes that follow it. A missing `close_notify` counts as the end of a close-delimited body.
pub fn read_response(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Response> {
    let bad = |why: String| io::Error::new(ErrorKind::InvalidData, why);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if fill(s, buf)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "EOF in response head",
            ));
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut lines = head_text.trim_end().split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let head = ResponseHead {
        version,
        status,
        reason,
        headers,
    };
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line = take_line(s, buf)?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                while !take_line(s, buf)?.is_empty() {}
                break body;
            }
            body.extend(take(s, buf, size)?);
            take(s, buf, 2)?;
        }
    } else if let Some(n) = head.header("content-length") {
        let n = n
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {n:?}")))?;
        take(s, buf, n)?
    } else {
        while fill(s, buf).unwrap_or(0) > 0 {}
        std::mem::take(buf)
    };
    Ok(Response {
        head,
        body,
        interim: Vec::new(),
        trailers: Vec::new(),
    })
}

fn fill(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn take(s: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
    while buf.len() < n {
        if fill(s, buf)? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF in body"));
        }
    }
    Ok(buf.drain(..n).collect())
}

fn take_line(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..i + 2).collect();
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if fill(s, buf)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "EOF in chunked body",
            ));
        }
    }
}

/// An rpxy-shape config: `listen_port_tls` (and `listen_port` when given) on 127.0.0.1,
/// the top-level lines `top`, then `apps`.
pub fn tls_config(http_port: Option<u16>, tls_port: u16, top: &str, apps: &str) -> String {
    let http = http_port.map_or(String::new(), |p| format!("listen_port = {p}\n"));
    format!("{http}listen_port_tls = {tls_port}\nlisten_address_v4 = \"127.0.0.1\"\n{top}\n{apps}")
}

/// `[apps.NAME]` for `server_name`, served over TLS with `leaf` (`tls_extra`: more inline
/// keys of its `tls` table, e.g. `, https_redirection = false`), one route to `upstream`.
pub fn tls_app(
    name: &str,
    server_name: &str,
    leaf: &Leaf,
    tls_extra: &str,
    upstream: SocketAddr,
) -> String {
    format!(
        "[apps.{name}]\nserver_name = \"{server_name}\"\n\
         tls = {{ tls_cert_path = \"{}\", tls_cert_key_path = \"{}\"{tls_extra} }}\n\
         reverse_proxy = [{{ upstream = [{{ location = \"{upstream}\" }}] }}]\n",
        leaf.cert_path.display(),
        leaf.key_path.display()
    )
}

/// The access line (`https CLIENT -> LISTENER …`) of the request sent from `client`.
pub fn wait_https_access(sluice: &mut super::Sluice, client: SocketAddr) -> String {
    let needle = format!("https {client} -> ");
    sluice.wait_line(
        &format!("starting with `{needle}`"),
        super::LOG_TIMEOUT,
        |l| l.contains(&needle) && super::field(l, "status").is_some(),
    )
}
