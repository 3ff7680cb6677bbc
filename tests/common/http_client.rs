//! Client ends for the HTTP engine's integration tests: raw HTTP/1.1 requests over a
//! `TcpStream`, a response reader that keeps what follows a response (keep-alive,
//! pipelining), the parsed echo of an [`HttpBackend`](super::http_backend::HttpBackend), and
//! the rpxy-shape configs the tests start sluice with. Does IO.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::http_backend::find_header;
use super::{IO_TIMEOUT, LOG_TIMEOUT, Sluice, connect, field, is_reset};

/// The server name of the app most tests route to.
pub const APP1: &str = "app1.example.com";
/// A valid `sticky_cookie_secret`: 32 bytes as unpadded base64url (43 characters).
pub const STICKY_SECRET: &str = "c2x1aWNlLXRlc3RzLXN0aWNreS1zZWNyZXQtMzJieXQ";
/// Largest response head the reader accepts.
const MAX_RESPONSE_HEAD: usize = 256 * 1024;

// ---- configs ---------------------------------------------------------------------------

/// An rpxy-shape config: `listen_port` on 127.0.0.1, the top-level lines `top`, then `apps`
/// (TOML tables, e.g. from [`app_toml`]).
pub fn http_config(port: u16, top: &str, apps: &str) -> String {
    format!("listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n{top}\n{apps}")
}

/// `[{ location = "127.0.0.1:1" }, …]`.
pub fn upstream_list(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs
        .iter()
        .map(|a| format!("{{ location = \"{a}\" }}"))
        .collect();
    format!("[{}]", items.join(", "))
}

/// One `reverse_proxy` entry as an inline table: optional `path`, the upstreams, and `extra`
/// inline keys (e.g. `load_balance = "round_robin"`), all on one line.
pub fn route_toml(path: Option<&str>, addrs: &[SocketAddr], extra: &str) -> String {
    let mut parts = Vec::new();
    if let Some(p) = path {
        parts.push(format!("path = \"{p}\""));
    }
    parts.push(format!("upstream = {}", upstream_list(addrs)));
    if !extra.is_empty() {
        parts.push(extra.to_owned());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// `[apps.NAME]` with its `server_name` and `reverse_proxy` routes.
pub fn app_toml(name: &str, server_name: &str, routes: &[String]) -> String {
    format!(
        "[apps.{name}]\nserver_name = \"{server_name}\"\nreverse_proxy = [\n  {}\n]\n",
        routes.join(",\n  ")
    )
}

/// The common case: app `app1` ([`APP1`]) with one default route over `addrs` balanced by
/// `balance`, plus top-level lines `top`.
pub fn app1_config(port: u16, addrs: &[SocketAddr], balance: &str, top: &str) -> String {
    let route = route_toml(None, addrs, &format!("load_balance = \"{balance}\""));
    http_config(port, top, &app_toml("app1", APP1, &[route]))
}

// ---- requests ----------------------------------------------------------------------------

/// A request's bytes: `METHOD TARGET HTTP/1.1`, `Host`, the extra header lines, a
/// `Content-Length` when `body` is not empty, then the body.
pub fn request_bytes(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A response status line and header fields.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Header fields in order; names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a header's comma-separated values include `token` (any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"))
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("numeric Content-Length in response: {v:?}"))
        })
    }
}

/// A whole response: its head, decoded body, and the statuses of 1xx responses before it.
#[derive(Clone, Debug)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
    pub interim: Vec<u16>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.head.header_all(name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `x-backend` header (which backend answered); panics without one.
    pub fn backend(&self) -> String {
        self.header("x-backend")
            .unwrap_or_else(|| panic!("no x-backend in response: {self:?}"))
            .to_owned()
    }

    /// The backend's echo of the request; panics if the body is not one.
    pub fn echo(&self) -> Echo {
        Echo::parse(&self.text())
    }
}

/// What an [`HttpBackend`](super::http_backend::HttpBackend) said it received.
#[derive(Clone, Debug)]
pub struct Echo {
    pub backend: String,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body_sha256: String,
}

impl Echo {
    pub fn parse(text: &str) -> Echo {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let mut words = first.splitn(3, ' ');
        let (Some(backend), Some(method), Some(target)) =
            (words.next(), words.next(), words.next())
        else {
            panic!("not a backend echo: {text:?}");
        };
        let mut headers = Vec::new();
        let (mut body_len, mut body_sha256) = (None, None);
        for line in lines {
            let (k, v) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad echo line {line:?} in {text:?}"));
            match k {
                "body-len" => body_len = v.parse().ok(),
                "body-sha256" => body_sha256 = Some(v.to_owned()),
                _ => headers.push((k.to_owned(), v.to_owned())),
            }
        }
        Echo {
            backend: backend.to_owned(),
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body_len: body_len.unwrap_or_else(|| panic!("no body-len in echo {text:?}")),
            body_sha256: body_sha256.unwrap_or_else(|| panic!("no body-sha256 in echo {text:?}")),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

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
