//! The access line of one HTTP request: who asked what, how it was answered, by which
//! upstream, bytes both ways and time taken. The format is documented in README.md. No IO
//! beyond the log call.

use std::time::Instant;

use super::engine::Engine;
use super::h1::RequestHead;
use super::server::ConnInfo;

/// One access line; the format is documented in README.md.
pub struct Access {
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    https: bool,
    /// Whether access lines are written at all: when not, the request's strings are not
    /// copied (they would be allocations per request for nothing).
    enabled: bool,
    started: Option<Instant>,
    app: String,
    host: String,
    method: String,
    path: String,
    /// 0 until answered (then the line is written).
    pub status: u16,
    upstream: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
}

impl Access {
    pub fn new(cx: &ConnInfo) -> Self {
        let enabled = log::log_enabled!(target: crate::logging::ACCESS, log::Level::Info);
        Access {
            peer: cx.peer,
            local: cx.local,
            https: cx.https,
            enabled,
            // Read only for the line's duration.
            started: enabled.then(Instant::now),
            app: String::new(),
            host: String::new(),
            method: String::new(),
            path: String::new(),
            status: 0,
            upstream: String::new(),
            bytes_in: 0,
            bytes_out: 0,
            error: None,
        }
    }

    pub fn request(&mut self, head: &RequestHead, redact: bool) {
        if !self.enabled {
            return;
        }
        self.started = Some(Instant::now());
        self.method.clear();
        self.method.push_str(head.method.as_str());
        self.host.clear();
        self.host.push_str(head.authority().unwrap_or_default());
        let target = head.target.path_and_query().map_or("/", |p| p.as_str());
        self.path.clear();
        match target.split_once('?') {
            Some((p, _)) if redact => {
                self.path.push_str(p);
                self.path.push_str("?REDACTED");
            }
            _ => self.path.push_str(target),
        }
    }

    pub fn set_app(&mut self, name: &str) {
        if self.enabled {
            self.app.clear();
            self.app.push_str(name);
        }
    }

    pub fn set_upstream(&mut self, target: &impl std::fmt::Display) {
        if self.enabled {
            use std::fmt::Write;
            self.upstream.clear();
            let _ = write!(self.upstream, "{target}");
        }
    }

    pub fn log(&self, engine: &Engine) {
        engine.stats.count_response(self.status);
        engine.stats.bytes_in.add(self.bytes_in);
        engine.stats.bytes_out.add(self.bytes_out);
        let error = self
            .error
            .as_deref()
            .map(|e| format!(" error=\"{}\"", e.replace('"', "'")))
            .unwrap_or_default();
        log::info!(
            target: crate::logging::ACCESS,
            "{} {} -> {} app={} host={} method={} path={} status={} upstream={} in={} out={} dur={:.3}s{error}",
            if self.https { "https" } else { "http" },
            self.peer,
            self.local,
            or_dash(&self.app),
            or_dash(&self.host),
            or_dash(&self.method),
            or_dash(&self.path),
            self.status,
            or_dash(&self.upstream),
            self.bytes_in,
            self.bytes_out,
            self.started.map_or(0.0, |t| t.elapsed().as_secs_f64())
        );
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
