//! The access line of one HTTP request: who asked what, how it was answered, by which
//! upstream, bytes both ways and time taken. The format is documented in README.md. No IO
//! beyond the log call.

use std::time::Instant;

use super::engine::Engine;
use super::h1::RequestHead;
use super::server::ConnInfo;
use crate::state::add;

/// One access line; the format is documented in README.md.
pub struct Access {
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    https: bool,
    started: Instant,
    pub app: String,
    host: String,
    method: String,
    path: String,
    /// 0 until answered (then the line is written).
    pub status: u16,
    pub upstream: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
}

impl Access {
    pub fn new(cx: &ConnInfo) -> Self {
        let dash = || "-".to_owned();
        Access {
            peer: cx.peer,
            local: cx.local,
            https: cx.https,
            started: Instant::now(),
            app: dash(),
            host: dash(),
            method: dash(),
            path: dash(),
            status: 0,
            upstream: dash(),
            bytes_in: 0,
            bytes_out: 0,
            error: None,
        }
    }

    pub fn request(&mut self, head: &RequestHead, redact: bool) {
        self.started = Instant::now();
        self.method = head.method.as_str().to_owned();
        self.host = head.authority().unwrap_or("-").to_owned();
        let target = head.target.path_and_query().map_or("/", |p| p.as_str());
        self.path = match target.split_once('?') {
            Some((p, _)) if redact => format!("{p}?REDACTED"),
            _ => target.to_owned(),
        };
    }

    pub fn log(&self, engine: &Engine) {
        engine.stats.count_response(self.status);
        add(&engine.stats.bytes_in, self.bytes_in);
        add(&engine.stats.bytes_out, self.bytes_out);
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
            self.app,
            self.host,
            self.method,
            self.path,
            self.status,
            self.upstream,
            self.bytes_in,
            self.bytes_out,
            self.started.elapsed().as_secs_f64()
        );
    }
}
