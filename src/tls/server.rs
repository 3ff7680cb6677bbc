//! The TLS server side: one rustls `ServerConfig` per TLS app (its certificate, mTLS
//! verifier, ALPN, shared resumption state) and SNI → app selection (exact, then the
//! longest `*.` wildcard). Reads cert/key files in `TlsServer::new`; the handshake driver
//! (`accept`, `Prefixed`, in `handshake`) does IO on the stream it is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{
    ProducesTickets, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};

use super::certs;
use crate::plan::http::{CertSource, HttpApp, HttpPlan};

mod handshake;

pub use handshake::{
    AcceptError, HANDSHAKE_TIMEOUT, Prefixed, ServerTls, UNRECOGNIZED_NAME_ALERT, accept,
};

/// What a TLS app negotiates with ALPN, in preference order (h2 goes first once served).
pub const ALPN_PROTOCOLS: &[&[u8]] = &[b"http/1.1"];
/// TLS 1.2 session ids remembered for clients without ticket support (a few hundred
/// bytes each), shared by the apps without mTLS.
const SESSION_CACHE_ENTRIES: usize = 256;
/// The same for each mTLS app, which keeps its own (see [`Resumption`]).
const MTLS_SESSION_CACHE_ENTRIES: usize = 64;

/// The crypto provider of every TLS app: ring, with X25519MLKEM768 preferred.
fn crypto() -> Arc<CryptoProvider> {
    Arc::new(super::pq::provider())
}

/// The TLS side of the HTTP engine, built from the plan; clones share one copy.
#[derive(Clone, Debug)]
pub struct TlsServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// One per app with `tls`, in plan order.
    sites: Vec<Site>,
    /// Resumption state of the apps without mTLS (kept across reloads).
    shared: Resumption,
    watched: Vec<PathBuf>,
}

#[derive(Debug)]
struct Site {
    /// Index into `plan.apps`.
    app: usize,
    app_name: String,
    /// Lower-cased, no trailing dot; may start with `*.`.
    server_name: String,
    /// The certificate served (the one loaded before, when the file failed to load now).
    cert: Option<Arc<CertifiedKey>>,
    /// The client CAs of an mTLS app, as loaded (or kept).
    client_ca: Option<Vec<CertificateDer<'static>>>,
    resumption: Resumption,
    state: Result<Arc<ServerConfig>, String>,
}

/// Tickets and session ids. rustls resumes a session without asking for a client
/// certificate again, so each mTLS app has its own, renewed whenever its CA set changes:
/// a session from before mTLS (or from another CA) can never skip the client check.
#[derive(Clone, Debug)]
pub struct Resumption {
    ticketer: Option<Arc<dyn ProducesTickets>>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl Resumption {
    /// What the apps without mTLS start with: one per process, so every worker thread
    /// issues and accepts the same tickets and finds the same sessions.
    pub fn for_all_apps() -> Resumption {
        Resumption::new(SESSION_CACHE_ENTRIES)
    }

    fn new(entries: usize) -> Resumption {
        Resumption {
            // Fails only when the system RNG does; then no tickets (session ids still work).
            ticketer: rustls::crypto::ring::Ticketer::new().ok(),
            sessions: ServerSessionMemoryCache::new(entries),
        }
    }
}

/// Why [`TlsServer::config_for`] has no config for a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The SNI (lower-cased) names no TLS app, or there was no SNI.
    UnknownName(Option<String>),
    /// The app exists but cannot serve TLS (its files failed to load, ACME, …).
    Broken(String),
}

impl TlsServer {
    /// Load every TLS app's certificate, key and client CA and build its config.
    /// Returns warnings: files that failed to load (the certificate or CA set `old` had
    /// for the same app, by name, is kept; without one the app is refused), keys readable
    /// by others, certificates that do not cover their `server_name` or have expired.
    /// Tickets and session ids of `old` carry over, so clients resume across reloads.
    pub fn new(plan: &HttpPlan, old: Option<&TlsServer>) -> (TlsServer, Vec<String>) {
        Self::resuming(plan, old, Resumption::for_all_apps())
    }

    /// [`TlsServer::new`], starting (without `old`) from `first` for the apps without mTLS.
    pub fn resuming(
        plan: &HttpPlan,
        old: Option<&TlsServer>,
        first: Resumption,
    ) -> (TlsServer, Vec<String>) {
        let mut warnings = Vec::new();
        let shared = old.map_or(first, |o| o.inner.shared.clone());
        let mut sites = Vec::new();
        let mut watched: Vec<PathBuf> = Vec::new();
        for (i, app) in plan.apps.iter().enumerate() {
            let Some(tls) = &app.tls else { continue };
            let before = old.and_then(|o| o.inner.sites.iter().find(|s| s.app_name == app.name));
            if let CertSource::Files { cert, key } = &tls.cert {
                watched.extend([cert.clone(), key.clone()]);
            }
            watched.extend(tls.client_ca_cert_path.iter().cloned());
            sites.push(build_site(i, app, before, &shared, &mut warnings));
        }
        let mut seen = std::collections::HashSet::new();
        watched.retain(|p| seen.insert(p.clone()));
        let inner = Inner {
            sites,
            shared,
            watched,
        };
        (
            TlsServer {
                inner: Arc::new(inner),
            },
            warnings,
        )
    }

    /// The config for a ClientHello's SNI: the TLS app whose `server_name` is the name,
    /// else the one with the longest `*.suffix` covering it (one or more labels; ties go
    /// to the app written first). Case and a trailing dot are ignored; apps without `tls`
    /// are not considered.
    ///
    /// # Errors
    /// [`Refusal::UnknownName`] when no TLS app serves the name (or there is no SNI);
    /// [`Refusal::Broken`] when that app cannot serve TLS now.
    pub fn config_for(&self, sni: Option<&str>) -> Result<Arc<ServerConfig>, Refusal> {
        let unknown = || Refusal::UnknownName(sni.map(str::to_ascii_lowercase));
        let site = sni.and_then(|n| self.site_for(n)).ok_or_else(unknown)?;
        site.state.clone().map_err(Refusal::Broken)
    }

    /// The index into `plan.apps` of the TLS app serving `sni` (same rules as
    /// [`TlsServer::config_for`], broken apps included).
    pub fn app_for(&self, sni: &str) -> Option<usize> {
        self.site_for(sni).map(|s| s.app)
    }

    /// Every cert, key and client-CA path of the TLS apps, once each, for the reload poller.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.inner.watched.clone()
    }

    fn site_for(&self, sni: &str) -> Option<&Site> {
        let host = sni.strip_suffix('.').unwrap_or(sni);
        let mut best: Option<(usize, &Site)> = None;
        for site in &self.inner.sites {
            let rank = match site.server_name.strip_prefix("*.") {
                Some(suffix) => wildcard_covers(suffix, host).then_some(suffix.len()),
                None => site
                    .server_name
                    .eq_ignore_ascii_case(host)
                    .then_some(usize::MAX),
            };
            if let Some(rank) = rank {
                if best.is_none_or(|(b, _)| rank > b) {
                    best = Some((rank, site));
                }
            }
        }
        best.map(|(_, s)| s)
    }
}

/// Whether `*.suffix` covers `host`: at least one label before `.suffix`, any case.
fn wildcard_covers(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() + 1
        && host
            .get(host.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        && host.as_bytes().get(host.len() - suffix.len() - 1) == Some(&b'.')
}

/// Whether a certificate DNS name (`*.` allowed, one label) covers an app's server_name.
fn cert_name_covers(cert_name: &str, server_name: &str) -> bool {
    if cert_name.eq_ignore_ascii_case(server_name) {
        return true;
    }
    match (cert_name.strip_prefix("*."), server_name.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            label != "*" && !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
        }
        _ => false,
    }
}

/// Load one TLS app's files and build its config, falling back to `before`'s certificate
/// and CA set when a file fails.
fn build_site(
    index: usize,
    app: &HttpApp,
    before: Option<&Site>,
    shared: &Resumption,
    warnings: &mut Vec<String>,
) -> Site {
    let server_name = app.server_name.trim_end_matches('.').to_ascii_lowercase();
    let mut site = Site {
        app: index,
        app_name: app.name.clone(),
        server_name,
        cert: None,
        client_ca: None,
        resumption: shared.clone(),
        state: Err(String::new()),
    };
    let Some(tls) = &app.tls else {
        site.state = Err(format!("app `{}` has no TLS", app.name));
        return site;
    };
    let cert_error = match &tls.cert {
        CertSource::Acme => Some("ACME not implemented".to_owned()),
        CertSource::Files { cert, key } => {
            if let Some(w) = certs::key_file_too_open(key) {
                warnings.push(format!("app `{}`: {w}", app.name));
            }
            match certs::load(cert, key) {
                Ok(loaded) => {
                    check_cert(&app.name, &site.server_name, &loaded, warnings);
                    site.cert = Some(loaded.key);
                    None
                }
                Err(e) => Some(e),
            }
        }
    };
    if let Some(e) = cert_error {
        site.cert = before.and_then(|b| b.cert.clone());
        let kept = if site.cert.is_some() {
            "; keeping the certificate loaded before"
        } else {
            ""
        };
        warnings.push(format!("app `{}`: {e}{kept}", app.name));
        if site.cert.is_none() {
            site.state = Err(format!("app `{}`: {e}", app.name));
        }
    }
    if let Some(path) = &tls.client_ca_cert_path {
        match certs::load_ca(path) {
            Ok(ca) => site.client_ca = Some(ca),
            Err(e) => {
                site.client_ca = before.and_then(|b| b.client_ca.clone());
                let kept = if site.client_ca.is_some() {
                    "; keeping the client CAs loaded before"
                } else {
                    ""
                };
                warnings.push(format!("app `{}`: {e}{kept}", app.name));
                if site.client_ca.is_none() {
                    // Never fall back to serving without client authentication.
                    site.state = Err(format!("app `{}`: client CA: {e}", app.name));
                    return site;
                }
            }
        }
        site.resumption = match before {
            Some(b) if b.client_ca.is_some() && b.client_ca == site.client_ca => {
                b.resumption.clone()
            }
            _ => Resumption::new(MTLS_SESSION_CACHE_ENTRIES),
        };
    }
    if let Some(cert) = site.cert.clone() {
        site.state = server_config(cert, site.client_ca.as_deref(), &site.resumption)
            .map_err(|e| format!("app `{}`: {e}", app.name));
        if let Err(e) = &site.state {
            warnings.push(e.clone());
        }
    }
    site
}

/// Warnings about a freshly loaded certificate: names that miss the app, expiry.
fn check_cert(app: &str, server_name: &str, cert: &certs::LoadedCert, warnings: &mut Vec<String>) {
    if !cert.names.is_empty() && !cert.names.iter().any(|n| cert_name_covers(n, server_name)) {
        warnings.push(format!(
            "app `{app}`: the certificate is for {} and does not cover server_name {server_name}",
            cert.names.join(", ")
        ));
    }
    if cert.not_after.is_some_and(|t| t < SystemTime::now()) {
        warnings.push(format!("app `{app}`: the certificate has expired"));
    }
}

/// One app's rustls config: TLS 1.3 and 1.2, its certificate, mTLS when it has client
/// CAs, ALPN, resumption, no 0-RTT.
fn server_config(
    cert: Arc<CertifiedKey>,
    client_ca: Option<&[CertificateDer<'static>]>,
    resumption: &Resumption,
) -> Result<Arc<ServerConfig>, String> {
    let provider = crypto();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| format!("client CA: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(cert)));
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    if let Some(ticketer) = &resumption.ticketer {
        config.ticketer = ticketer.clone();
    }
    config.session_storage = resumption.sessions.clone();
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
