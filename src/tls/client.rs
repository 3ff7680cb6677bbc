//! Upstream TLS client: verifies backends against the system CA bundle plus an optional
//! per-upstream CA file, and runs the client handshake with a deadline. Does IO (reads CA
//! files, drives handshakes on the given stream).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::http::conn::HalfClose;
use crate::timer::Timer;

/// Bundle files tried in order when neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` is set.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, OpenWrt (ca-bundle)
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine, macOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
];

/// How long a failed `ca_cert_path` load is remembered before the file is read again: a
/// misconfigured upstream must not cost a file read per request, yet a fixed file heals.
const CA_ERROR_RETRY: Duration = Duration::from_secs(5);

/// The ALPN protocols offered to upstreams (the engine speaks HTTP/1.1 to them).
const UPSTREAM_ALPN: &[&[u8]] = &[b"http/1.1"];

/// The crypto provider for upstream connections (one switch for the whole module): ring with
/// X25519MLKEM768 preferred, as on the server side.
fn crypto() -> rustls::crypto::CryptoProvider {
    crate::tls::pq::provider()
}

/// Client configurations for upstream TLS, built once per plan and shared.
///
/// The system roots are read on the first [`UpstreamTls::config`] call, so a plan without
/// TLS upstreams never touches the CA bundle.
pub struct UpstreamTls {
    roots: OnceLock<Arc<RootCertStore>>,
    configs: Mutex<HashMap<Option<PathBuf>, Cached>>,
}

/// A cached `config` answer; errors expire after [`CA_ERROR_RETRY`].
enum Cached {
    Ready(Arc<ClientConfig>),
    Failed(String, Instant),
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls::new()
    }
}

impl UpstreamTls {
    /// An empty cache; the system roots load lazily on first use.
    pub fn new() -> UpstreamTls {
        UpstreamTls {
            roots: OnceLock::new(),
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `roots` instead of the system CA bundle (tests, or a build without one).
    pub fn with_roots(roots: RootCertStore) -> UpstreamTls {
        let tls = UpstreamTls::new();
        let _ = tls.roots.set(Arc::new(roots));
        tls
    }

    /// The client config for an upstream that trusts the system roots plus, when given, the
    /// certificates in `extra_ca` (a CA or a self-signed backend certificate). Cached per path.
    ///
    /// # Errors
    /// `extra_ca` cannot be read, is not PEM, or holds no usable certificate.
    pub fn config(&self, extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
        let key = extra_ca.map(Path::to_path_buf);
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        match configs.get(&key) {
            Some(Cached::Ready(config)) => return Ok(config.clone()),
            Some(Cached::Failed(e, at)) if at.elapsed() < CA_ERROR_RETRY => return Err(e.clone()),
            _ => {}
        }
        let built = self.build(extra_ca);
        let cached = match &built {
            Ok(config) => Cached::Ready(config.clone()),
            Err(e) => Cached::Failed(e.clone(), Instant::now()),
        };
        configs.insert(key, cached);
        built
    }

    fn system(&self) -> &Arc<RootCertStore> {
        self.roots.get_or_init(|| {
            let (store, notes) = system_roots();
            for note in &notes {
                if store.is_empty() {
                    log::warn!("upstream TLS: {note}");
                } else {
                    log::info!("upstream TLS: {note}");
                }
            }
            Arc::new(store)
        })
    }

    fn build(&self, extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
        let roots = match extra_ca {
            None => self.system().clone(),
            Some(path) => {
                let (certs, error) = pem_certs(path);
                if let Some(e) = error {
                    return Err(format!("ca_cert_path {e}"));
                }
                if certs.is_empty() {
                    return Err(format!(
                        "ca_cert_path {}: no CERTIFICATE section in the file",
                        path.display()
                    ));
                }
                let mut store = RootCertStore::clone(self.system());
                let (added, unusable) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!(
                        "ca_cert_path {}: no usable certificate ({unusable} unparsable)",
                        path.display()
                    ));
                }
                Arc::new(store)
            }
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(crypto()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("upstream TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = UPSTREAM_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// Runs the TLS client handshake on `io` for `server_name`, bounded by `timeout`.
///
/// An IP literal (`192.0.2.1`, `::1` or `[::1]`) is verified against the certificate's IP
/// addresses and sends no SNI; anything else is sent as SNI and matched as a DNS name.
///
/// # Errors
/// Text saying why: `certificate not trusted: …`, `name mismatch: …`, `certificate rejected: …`,
/// `timeout after …`, the peer's alert, or the IO error.
pub async fn connect<S>(
    io: S,
    config: Arc<ClientConfig>,
    server_name: &str,
    timeout: Duration,
) -> Result<TlsStream<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = parse_server_name(server_name)?;
    let handshake = async {
        TlsConnector::from(config)
            .connect(name, io)
            .await
            .map(Some)
            .map_err(|e| describe(&e))
    };
    let deadline = async {
        Timer::after(timeout).await;
        Ok(None)
    };
    match futures_lite::future::or(handshake, deadline).await {
        Ok(Some(stream)) => Ok(stream),
        Ok(None) => Err(format!(
            "timeout after {timeout:?} in the TLS handshake with {server_name}"
        )),
        Err(e) => Err(e),
    }
}

/// Whether an idle pooled TLS connection may carry another request: nothing but TLS
/// housekeeping (TLS 1.3 session tickets, key updates) arrived since the last response.
///
/// A raw TCP `peek` cannot tell: the tickets a TLS 1.3 server sends after the handshake show
/// up as readable bytes. This polls the TLS stream once (never waits) and consumes those
/// records; EOF, `close_notify`, an error or any application byte mean "discard it".
pub async fn idle_usable<S>(stream: &mut TlsStream<S>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut byte = [0u8; 1];
    futures_lite::future::poll_once(stream.read(&mut byte))
        .await
        .is_none()
}

/// Shuts the TCP write side under the TLS session (no `close_notify` is sent; use
/// `poll_close` first for that).
impl<S: HalfClose> HalfClose for TlsStream<S> {
    fn shut_write(&self) -> io::Result<()> {
        self.get_ref().0.shut_write()
    }
}

/// The server name to verify: an IP literal (brackets allowed) or a DNS name.
fn parse_server_name(name: &str) -> Result<ServerName<'static>, String> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(bare.to_owned()).map_err(|_| format!("invalid TLS server name {name:?}"))
}

/// One line saying why a handshake failed.
fn describe(err: &io::Error) -> String {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("name mismatch: {cert}")
            }
            CertificateError::UnknownIssuer => {
                "certificate not trusted: unknown issuer (not signed by \
                 a system CA or by the upstream's ca_cert_path)"
                    .to_owned()
            }
            CertificateError::BadSignature | CertificateError::BadEncoding => {
                format!("certificate not trusted: {cert}")
            }
            other => format!("certificate rejected: {other}"),
        },
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("the upstream refused the TLS handshake (alert {alert:?})")
        }
        Some(e @ rustls::Error::InvalidMessage(_)) => {
            format!("TLS handshake failed: {e} (does the upstream speak TLS?)")
        }
        Some(e) => format!("TLS handshake failed: {e}"),
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            "the upstream closed the connection during the TLS handshake".to_owned()
        }
        None => format!("TLS handshake: {err}"),
    }
}

/// The system CA bundle: `SSL_CERT_FILE` and/or `SSL_CERT_DIR` when set, else the first
/// existing well-known bundle file. The notes say what was read and what was unusable.
pub fn system_roots() -> (RootCertStore, Vec<String>) {
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let dir = std::env::var_os("SSL_CERT_DIR").map(PathBuf::from);
    if file.is_some() || dir.is_some() {
        return roots_from(file.as_deref(), dir.as_deref());
    }
    let bundle = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
    roots_from(bundle, None)
}

/// Roots from a PEM bundle `file` and a `dir` of PEM files (`:`-separated list allowed, as
/// OpenSSL's `SSL_CERT_DIR`). Duplicates count once. Neither → an empty store and a note.
pub fn roots_from(file: Option<&Path>, dir: Option<&Path>) -> (RootCertStore, Vec<String>) {
    let mut store = RootCertStore::empty();
    let mut notes = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |path: &Path, notes: &mut Vec<String>| {
        let (certs, error) = pem_certs(path);
        if let Some(e) = error {
            notes.push(e);
        }
        let fresh: Vec<_> = certs
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .collect();
        let (added, unusable) = store.add_parsable_certificates(fresh);
        (added, unusable)
    };
    if let Some(file) = file {
        let (added, unusable) = add(file, &mut notes);
        notes.push(format!(
            "CA bundle {}: {added} certificates{}",
            file.display(),
            unusable_note(unusable)
        ));
    }
    for dir in dir
        .map(|d| std::env::split_paths(d.as_os_str()).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                notes.push(format!("CA directory {}: {e}", dir.display()));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_cert_file_name(p) && p.is_file())
            .collect();
        paths.sort();
        let (mut added, mut unusable) = (0, 0);
        for path in &paths {
            let (a, u) = add(path, &mut notes);
            added += a;
            unusable += u;
        }
        notes.push(format!(
            "CA directory {}: {added} certificates from {} files{}",
            dir.display(),
            paths.len(),
            unusable_note(unusable)
        ));
    }
    if store.is_empty() {
        notes.push(
            "no system CA certificates found (set SSL_CERT_FILE or SSL_CERT_DIR); TLS upstreams \
             need ca_cert_path"
                .to_owned(),
        );
    }
    (store, notes)
}

fn unusable_note(unusable: usize) -> String {
    match unusable {
        0 => String::new(),
        n => format!(", {n} unusable skipped"),
    }
}

/// OpenSSL hash links (`5ed36f99.0`) and `*.pem` / `*.crt` files.
fn is_cert_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if let Some((hash, n)) = name.split_once('.') {
        let hash_link = hash.len() == 8
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit());
        if hash_link {
            return true;
        }
    }
    name.ends_with(".pem") || name.ends_with(".crt")
}

/// The CERTIFICATE sections of a PEM file (keys and other sections are skipped), and the error
/// that stopped reading it, if any.
fn pem_certs(path: &Path) -> (Vec<CertificateDer<'static>>, Option<String>) {
    let iter = match CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter,
        Err(e) => return (Vec::new(), Some(format!("{}: {e}", path.display()))),
    };
    let mut certs = Vec::new();
    for item in iter {
        match item {
            Ok(cert) => certs.push(cert),
            Err(e) => return (certs, Some(format!("{}: {e}", path.display()))),
        }
    }
    (certs, None)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
