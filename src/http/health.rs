//! Health of one HTTP upstream: the active check's up/down verdict with its thresholds and
//! passive ejection with doubling back-off (`UpstreamHealth`, no IO, `now` passed in), and
//! the active check itself (`probe`, which does IO: a TCP connect or an HTTP/1.1 GET).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sluice::http::health::{UpstreamHealth, EJECT_BASE};
//! use sluice::http::select::Availability;
//!
//! let mut h = UpstreamHealth::new();
//! let t0 = Instant::now();
//! assert_eq!(h.on_failure(t0), Some(EJECT_BASE)); // a connect failure ejects it for 10 s
//! assert_eq!(h.availability(t0), Availability::Ejected);
//! assert_eq!(h.availability(t0 + EJECT_BASE), Availability::Up);
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use http::Method;

use crate::http::h1::{Parsed, parse_response};
use crate::http::select::Availability;
use crate::plan::{HealthCheck, HealthCheckKind};

/// Failed requests in a row that eject an upstream (nginx's `max_fails=1`).
pub const PASSIVE_MAX_FAILS: u32 = 1;
/// How long the first ejection lasts (nginx's `fail_timeout` default).
pub const EJECT_BASE: Duration = Duration::from_secs(10);
/// The longest ejection: each ejection in a row doubles up to this, so a dead upstream
/// without an active check is retried every 5 minutes at worst.
pub const EJECT_MAX: Duration = Duration::from_secs(5 * 60);
/// Most response bytes an HTTP check reads before giving up on finding the head's end:
/// only the status matters, and a health endpoint has no business sending big headers.
pub const MAX_CHECK_RESPONSE_HEAD: usize = 8 * 1024;

/// A change of the active check's verdict, for the caller to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    CameUp,
}

/// What is known about one upstream's health. Starts `Up`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// The active check's verdict.
    down: bool,
    /// Active checks failed in a row.
    checks_failed: u32,
    /// Active checks passed in a row.
    checks_passed: u32,
    /// Passive failures since the last success or ejection.
    passive_fails: u32,
    /// Ejections in a row (no success in between): the back-off exponent.
    ejections: u32,
    ejected_until: Option<Instant>,
    last_error: Option<String>,
}

impl UpstreamHealth {
    /// Up, with no failures on record.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Down` if the active check says so, else `Ejected` until the ejection ends, else `Up`.
    pub fn availability(&self, now: Instant) -> Availability {
        if self.down {
            Availability::Down
        } else if self.ejected_until.is_some_and(|t| now < t) {
            Availability::Ejected
        } else {
            Availability::Up
        }
    }

    /// Records an active check's outcome: `unhealthy_threshold` failures in a row mark the
    /// upstream down, `healthy_threshold` successes in a row mark it up again (thresholds
    /// below 1 count as 1). Coming up also ends any passive ejection: the checks just showed
    /// it working.
    pub fn on_check(&mut self, ok: bool, check: &HealthCheck) -> Option<Transition> {
        if ok {
            self.checks_failed = 0;
            self.checks_passed = self.checks_passed.saturating_add(1);
            if self.down && self.checks_passed >= check.healthy_threshold.max(1) {
                self.down = false;
                self.clear_passive();
                return Some(Transition::CameUp);
            }
        } else {
            self.checks_passed = 0;
            self.checks_failed = self.checks_failed.saturating_add(1);
            if !self.down && self.checks_failed >= check.unhealthy_threshold.max(1) {
                self.down = true;
                return Some(Transition::WentDown);
            }
        }
        None
    }

    /// Records a passive failure (connect failed, or reset before any response byte).
    /// Returns how long the upstream is now ejected for when this failure ejects it;
    /// failures while it is already ejected (requests that were in flight) change nothing.
    pub fn on_failure(&mut self, now: Instant) -> Option<Duration> {
        if self.ejected_until.is_some_and(|t| now < t) {
            return None;
        }
        self.passive_fails = self.passive_fails.saturating_add(1);
        if self.passive_fails < PASSIVE_MAX_FAILS {
            return None;
        }
        let eject_for = eject_duration(self.ejections);
        self.passive_fails = 0;
        self.ejections = self.ejections.saturating_add(1);
        self.ejected_until = now.checked_add(eject_for);
        Some(eject_for)
    }

    /// Records a completed response: the passive failure count and back-off start over, and
    /// an ejection ends.
    pub fn on_success(&mut self) {
        self.clear_passive();
    }

    fn clear_passive(&mut self) {
        self.passive_fails = 0;
        self.ejections = 0;
        self.ejected_until = None;
    }

    /// The active check's verdict is down.
    /// No active check watches this upstream any more (a reload removed it): forget its
    /// verdict, which nothing could otherwise ever lift.
    pub fn forget_checks(&mut self) {
        self.down = false;
        self.checks_failed = 0;
        self.checks_passed = 0;
    }

    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Active checks failed in a row.
    pub fn checks_failed(&self) -> u32 {
        self.checks_failed
    }

    /// Active checks passed in a row.
    pub fn checks_passed(&self) -> u32 {
        self.checks_passed
    }

    /// Passive failures since the last success or ejection.
    pub fn passive_fails(&self) -> u32 {
        self.passive_fails
    }

    /// Ejections in a row without a success in between.
    pub fn ejections(&self) -> u32 {
        self.ejections
    }

    /// When the current or last ejection ends (`None` after a success).
    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
    }

    /// What the last failed check or request said, for the status page.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn set_last_error(&mut self, e: String) {
        self.last_error = Some(e);
    }
}

/// `EJECT_BASE * 2^previous`, at most `EJECT_MAX`.
fn eject_duration(previous: u32) -> Duration {
    let factor = 1u32.checked_shl(previous).unwrap_or(u32::MAX);
    EJECT_BASE.saturating_mul(factor).min(EJECT_MAX)
}

/// Runs one active check against `addr`, all of it within `timeout`: a TCP connect, and for
/// an HTTP check a `GET path` with `Host: host` whose status must be `expected_status`.
///
/// # Errors
/// Why the check failed, in a few words: `connect refused`, `timeout after 2s`,
/// `status 500, expected 200`, …
/// `tls`: the upstream speaks TLS (client config, server name): an HTTP check then runs over
/// a verified TLS connection.
pub async fn probe(
    addr: SocketAddr,
    host: &str,
    kind: &HealthCheckKind,
    timeout: Duration,
    tls: Option<(std::sync::Arc<rustls::ClientConfig>, &str)>,
) -> Result<(), String> {
    let check = async {
        let stream = async_net::TcpStream::connect(addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect refused".to_owned(),
                _ => format!("connect failed: {e}"),
            })?;
        match (kind, tls) {
            (HealthCheckKind::Tcp, _) => Ok(()),
            (
                HealthCheckKind::Http {
                    path,
                    expected_status,
                },
                None,
            ) => http_check(stream, host, path, *expected_status).await,
            (
                HealthCheckKind::Http {
                    path,
                    expected_status,
                },
                Some((config, name)),
            ) => {
                let tls = crate::tls::client::connect(stream, config, name, timeout).await?;
                http_check(tls, host, path, *expected_status).await
            }
        }
    };
    let deadline = async {
        crate::timer::Timer::after(timeout).await;
        Err(format!("timeout after {}", show(timeout)))
    };
    future::or(check, deadline).await
}

async fn http_check<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
    expected: u16,
) -> Result<(), String> {
    // Both come from the config; refuse anything that could split the request.
    let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !clean(host) || !clean(path) {
        return Err("invalid host or path for the check request".to_owned());
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-health-check\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send failed: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("send failed: {e}"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        match parse_response(&buf, &Method::GET) {
            Ok(Parsed::Complete { head, consumed }) if head.is_interim() => {
                buf.drain(..consumed.min(buf.len()));
                continue;
            }
            Ok(Parsed::Complete { head, .. }) => {
                let got = head.status.as_u16();
                return if got == expected {
                    Ok(())
                } else {
                    Err(format!("status {got}, expected {expected}"))
                };
            }
            Ok(Parsed::Partial) if buf.len() >= MAX_CHECK_RESPONSE_HEAD => {
                return Err(format!(
                    "response head over {} KiB",
                    MAX_CHECK_RESPONSE_HEAD / 1024
                ));
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return Err(format!("bad response: {}", e.context())),
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        let Some(read) = chunk.get(..n).filter(|r| !r.is_empty()) else {
            return Err(if buf.is_empty() {
                "closed without a response".to_owned()
            } else {
                "closed in the response head".to_owned()
            });
        };
        buf.extend_from_slice(read);
    }
}

/// `2s`, `1500ms`: whole seconds when they are.
fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
