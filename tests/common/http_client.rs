//! Client ends for the HTTP engine's integration tests: a connection whose response reader
//! keeps what follows a response (keep-alive, pipelining), raw sends with how the connection
//! ended, sluice error checks, and what to observe of sluice (access lines, memory). The
//! configs and message types are in the submodules, re-exported here. Does IO.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{IO_TIMEOUT, LOG_TIMEOUT, Sluice, connect, field, is_reset};

mod config;
mod message;

// Re-exported for the test files; a binary that uses none of them would warn.
#[allow(unused_imports)]
pub use config::*;
#[allow(unused_imports)]
pub use message::*;

/// Largest response head the reader accepts.
const MAX_RESPONSE_HEAD: usize = 256 * 1024;
/// How a peer ended (or did not end) a connection within a wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// EOF or reset, after this long.
    Closed(Duration),
    /// Still open when the wait ended.
    Open,
    /// The peer sent more bytes instead.
    Data(Vec<u8>),
}

/// One client connection with a read buffer, so bytes after a response stay for the next.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl HttpConn {
    /// Connect to `addr` with [`IO_TIMEOUT`] on every operation.
    pub fn connect(addr: SocketAddr) -> HttpConn {
        HttpConn::from_stream(connect(addr))
    }

    pub fn from_stream(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Write all of `bytes`; panics on error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {} bytes: {e}", bytes.len()));
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let n = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }

    fn fill_or_eof(&mut self, what: &str) -> io::Result<()> {
        if self.fill()? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("EOF {what}"),
            ));
        }
        Ok(())
    }

    fn read_until(&mut self, delim: &[u8], limit: usize, what: &str) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self
                .available()
                .windows(delim.len())
                .position(|w| w == delim)
            {
                let end = self.pos + i + delim.len();
                let out = self.buf[self.pos..end].to_vec();
                self.pos = end;
                return Ok(out);
            }
            if self.available().len() > limit {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("{what} too long"),
                ));
            }
            self.fill_or_eof(what)?;
        }
    }

    /// Read one response head (which may be a 1xx).
    pub fn read_head(&mut self) -> io::Result<ResponseHead> {
        let raw = self.read_until(b"\r\n\r\n", MAX_RESPONSE_HEAD, "in a response head")?;
        let text = String::from_utf8_lossy(&raw);
        let mut lines = text.trim_end_matches("\r\n").split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line.split_once(':').ok_or_else(|| {
                io::Error::new(ErrorKind::InvalidData, format!("bad header line {line:?}"))
            })?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(ResponseHead {
            version,
            status,
            reason,
            headers,
        })
    }

    /// Read the body that follows `head` (a response to a request with method `method`),
    /// handing it to `sink` piece by piece; returns chunked trailers.
    pub fn read_body(
        &mut self,
        head: &ResponseHead,
        method: &str,
        sink: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Vec<(String, String)>> {
        if method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304 {
            return Ok(Vec::new());
        }
        if head.is_chunked() {
            return self.read_chunked(sink);
        }
        if let Some(n) = head.content_length() {
            self.take(n, sink)?;
            return Ok(Vec::new());
        }
        // Close-delimited.
        loop {
            if !self.available().is_empty() {
                sink(&self.buf[self.pos..]);
                self.pos = self.buf.len();
            }
            if self.fill()? == 0 {
                return Ok(Vec::new());
            }
        }
    }

    fn take(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.available().is_empty() {
                self.fill_or_eof(&format!("with {n} body bytes still to come"))?;
            }
            let k = self
                .available()
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            n -= k as u64;
        }
        Ok(())
    }

    fn read_chunked(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<(String, String)>> {
        let bad = |why: String| io::Error::new(ErrorKind::InvalidData, why);
        loop {
            let line = self.read_until(b"\r\n", 4096, "in a chunk size line")?;
            let text = String::from_utf8_lossy(&line);
            let size_text = text.trim_end().split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| bad(format!("bad chunk size line {text:?}")))?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let line = self.read_until(b"\r\n", MAX_RESPONSE_HEAD, "in trailers")?;
                    if line == b"\r\n" {
                        return Ok(trailers);
                    }
                    let t = String::from_utf8_lossy(&line);
                    if let Some((k, v)) = t.trim_end().split_once(':') {
                        trailers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
            }
            self.take(size, sink)?;
            let mut crlf = Vec::new();
            self.take(2, &mut |d: &[u8]| crlf.extend_from_slice(d))?;
            if crlf != b"\r\n" {
                return Err(bad(format!("no CRLF after chunk data: {crlf:?}")));
            }
        }
    }

    /// Read the final response to a `method` request, collecting 1xx statuses before it.
    pub fn read_response_to(&mut self, method: &str) -> io::Result<Response> {
        let mut interim = Vec::new();
        loop {
            let head = self.read_head()?;
            if (100..200).contains(&head.status) && head.status != 101 {
                interim.push(head.status);
                continue;
            }
            let mut body = Vec::new();
            let trailers = if head.status == 101 {
                Vec::new()
            } else {
                self.read_body(&head, method, &mut |d: &[u8]| body.extend_from_slice(d))?
            };
            return Ok(Response {
                head,
                body,
                interim,
                trailers,
            });
        }
    }

    /// The final response to a non-HEAD request; panics on error.
    pub fn response(&mut self) -> Response {
        self.read_response_to("GET")
            .unwrap_or_else(|e| panic!("read response: {e}"))
    }

    /// Send a request (see [`request_bytes`]) and read its response; panics on error.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send(&request_bytes(method, target, host, headers, body));
        self.read_response_to(method)
            .unwrap_or_else(|e| panic!("response to {method} {target} (Host {host}): {e}"))
    }

    /// `GET target` to [`APP1`] on this connection.
    pub fn get(&mut self, target: &str) -> Response {
        self.request("GET", target, APP1, &[], b"")
    }

    /// Bytes that arrived after the last response and were not read yet, if any now.
    pub fn leftover(&self) -> &[u8] {
        self.available()
    }

    /// Wait up to `timeout` for the peer to close the connection.
    pub fn ending(&mut self, timeout: Duration) -> Ending {
        if !self.available().is_empty() {
            return Ending::Data(self.available().to_vec());
        }
        if timeout.is_zero() {
            return Ending::Open;
        }
        let started = Instant::now();
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let result = self.fill();
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match result {
            Ok(0) => Ending::Closed(started.elapsed()),
            Ok(_) => Ending::Data(self.available().to_vec()),
            Err(e) if is_reset(&e) => Ending::Closed(started.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ending::Open
            }
            Err(e) => panic!("waiting for the connection to close: {e}"),
        }
    }

    /// Panics unless the peer closes the connection within `timeout` without sending more.
    pub fn assert_closed(&mut self, timeout: Duration, what: &str) {
        match self.ending(timeout) {
            Ending::Closed(_) => {}
            other => {
                panic!("{what}: expected the connection closed within {timeout:?}, got {other:?}")
            }
        }
    }
}

/// One `GET target` with `Host: host` on a fresh connection.
pub fn get(addr: SocketAddr, host: &str, target: &str) -> Response {
    HttpConn::connect(addr).request("GET", target, host, &[], b"")
}

/// What came back for raw bytes sent on a fresh connection.
#[derive(Debug)]
pub struct RawOutcome {
    /// The response, if one could be read.
    pub response: Option<Response>,
    /// Why no response could be read.
    pub error: Option<String>,
    /// How the connection ended after the response (or after the error).
    pub ending: Ending,
}

/// Send `bytes` on a fresh connection to `addr`, read one response (if any), then wait up to
/// `close_wait` for the connection to close.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], close_wait: Duration) -> RawOutcome {
    let mut conn = HttpConn::connect(addr);
    // Sluice may close while we write (it refused the head): that is an outcome, not a bug.
    let _ = conn.stream.write_all(bytes);
    match conn.read_response_to("GET") {
        Ok(r) => RawOutcome {
            response: Some(r),
            error: None,
            ending: conn.ending(close_wait),
        },
        Err(e) => {
            let ending = if e.kind() == ErrorKind::UnexpectedEof || is_reset(&e) {
                Ending::Closed(Duration::ZERO)
            } else {
                conn.ending(close_wait)
            };
            RawOutcome {
                response: None,
                error: Some(e.to_string()),
                ending,
            }
        }
    }
}

/// Panics unless `r` is an error sluice generated itself: status `status`, plain text, and a
/// body starting with the status code.
pub fn assert_sluice_error(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status(), status, "{what}: status of {r:?}");
    let ct = r
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        ct.starts_with("text/plain") && ct.contains("charset=utf-8"),
        "{what}: content-type of a sluice error is text/plain; charset=utf-8: {r:?}"
    );
    assert!(
        r.text().starts_with(&status.to_string()),
        "{what}: body starts with the status code: {:?}",
        r.text()
    );
    assert!(
        r.header("x-backend").is_none(),
        "{what}: sluice answered, not a backend: {r:?}"
    );
}

// ---- sluice observations --------------------------------------------------------------------

/// The access line (`http CLIENT -> LISTENER …`) of the request sent from `client`.
pub fn wait_http_access(sluice: &mut Sluice, client: SocketAddr) -> String {
    let needle = format!("http {client} -> ");
    sluice.wait_line(&format!("starting with `{needle}`"), LOG_TIMEOUT, |l| {
        l.contains(&needle) && field(l, "status").is_some()
    })
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Call `attempt` until it returns `Some`, or panic naming `what` after `timeout`. For
/// effects that only show in what sluice serves (health state, freed connection slots).
pub fn eventually<T>(what: &str, timeout: Duration, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = attempt() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
