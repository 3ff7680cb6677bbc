//! A tagged HTTP/1.1 origin server for the HTTP engine's integration tests, on `127.0.0.1:0`
//! with a thread per connection (std only). It reads every request completely (Content-Length
//! and chunked bodies, keep-alive, `Expect: 100-continue`) and answers with its own name and
//! what it received, so a test can see both which upstream sluice chose and what sluice sent.
//! It also counts raw bytes and connections, for "nothing reached the backend". Does IO.
//!
//! The answer to an ordinary request is `200`, `x-backend: NAME`, and the body
//! `NAME METHOD TARGET\n`, one `name: value\n` line per request header (names lower-cased),
//! then `body-len: N\nbody-sha256: HEX\n`. Knobs, chosen by the request:
//! - `GET /health`: the status set by [`HttpBackend::set_health`] (200 at first); counted
//!   apart from ordinary requests.
//! - `GET /download?bytes=N`: N bytes of [`Pattern`], streamed without buffering.
//! - `?respond=chunked` / `?respond=close`: the same echo body, chunked or close-delimited.
//! - `?status=NNN`: that status instead of 200.
//! - `Upgrade: websocket` with a `Sec-WebSocket-Key`: the RFC 6455 handshake, then every data
//!   frame is echoed back (pings answered, close echoed).
//!
//! Connection-level variants: [`HttpBackend::never_respond`] and
//! [`HttpBackend::close_immediately`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ring::digest;

/// Biggest request head the backend accepts (it is lenient: sluice enforces the real limits).
const MAX_HEAD: usize = 1 << 20;
/// Size of each read from a connection.
const READ_CHUNK: usize = 64 * 1024;
/// The GUID of RFC 6455 §1.3 that `Sec-WebSocket-Accept` is derived with.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a backend does with each accepted connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Serve,
    NeverRespond,
    CloseImmediately,
}

/// One request the backend read completely, head and body.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// Accept order (0-based) of the connection it arrived on.
    pub conn: usize,
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header fields in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Decoded body length (after de-chunking).
    pub body_len: u64,
    pub body_sha256: String,
    /// Whether the body came chunked.
    pub chunked: bool,
}

impl SeenRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The first value of `name` in `headers`, compared case-insensitively.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

struct Shared {
    name: String,
    behaviour: Behaviour,
    accepted: AtomicUsize,
    bytes: AtomicU64,
    heads: Mutex<Vec<String>>,
    requests: Mutex<Vec<SeenRequest>>,
    health_status: AtomicU16,
    health_checks: AtomicUsize,
    ws_frames: AtomicUsize,
    stop: AtomicBool,
}

/// An HTTP/1.1 backend (see the module docs for what it answers). Listening as soon as it is
/// constructed; stops accepting on drop.
pub struct HttpBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HttpBackend {
    /// A backend that serves every request (see the module docs).
    pub fn start(name: &str) -> HttpBackend {
        HttpBackend::with(name, Behaviour::Serve)
    }

    /// A backend that accepts and reads but never answers (for upstream response timeouts).
    pub fn never_respond(name: &str) -> HttpBackend {
        HttpBackend::with(name, Behaviour::NeverRespond)
    }

    /// A backend that closes each connection as soon as it accepts it.
    pub fn close_immediately(name: &str) -> HttpBackend {
        HttpBackend::with(name, Behaviour::CloseImmediately)
    }

    fn with(name: &str, behaviour: Behaviour) -> HttpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind HTTP backend");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            behaviour,
            accepted: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            heads: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            health_status: AtomicU16::new(200),
            health_checks: AtomicUsize::new(0),
            ws_frames: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let state = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let id = state.accepted.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                thread::spawn(move || handle_connection(stream, id, &state));
            }
        });
        HttpBackend { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Connections accepted so far (health-check connections included).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Raw bytes received on all connections so far.
    pub fn bytes_received(&self) -> u64 {
        self.shared.bytes.load(Ordering::SeqCst)
    }

    /// Targets of every request head parsed so far, complete request or not.
    pub fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().unwrap().clone()
    }

    /// Every complete request so far except health checks, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many complete requests (health checks excluded) arrived so far.
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The most recent complete request; panics when there was none.
    pub fn last_request(&self) -> SeenRequest {
        let requests = self.shared.requests.lock().unwrap();
        let last = requests.last().cloned();
        last.unwrap_or_else(|| panic!("backend {} received no request", self.name()))
    }

    /// The status `GET /health` answers with from now on.
    pub fn set_health(&self, status: u16) {
        self.shared.health_status.store(status, Ordering::SeqCst);
    }

    /// `GET /health` requests answered so far.
    pub fn health_checks(&self) -> usize {
        self.shared.health_checks.load(Ordering::SeqCst)
    }

    /// WebSocket data frames echoed so far.
    pub fn ws_frames(&self) -> usize {
        self.shared.ws_frames.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` health checks have been answered in total; panics after
    /// `timeout`. (There is no event to block on across threads here, so this polls the
    /// counter the serving threads bump.)
    pub fn wait_health_checks(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.health_checks() < n {
            assert!(
                Instant::now() < deadline,
                "backend {} got {} health checks, not {n}, within {timeout:?}",
                self.name(),
                self.health_checks()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// The deterministic bytes `/download` serves: byte `i` is `i % 251` (a prime, so the
/// pattern does not line up with buffer sizes and a shifted or dropped block shows).
pub struct Pattern {
    period: Vec<u8>,
}

impl Pattern {
    const PRIME: usize = 251;

    pub fn new() -> Pattern {
        let period = (0..Self::PRIME * 256)
            .map(|i| (i % Self::PRIME) as u8)
            .collect();
        Pattern { period }
    }

    /// The longest slice the pattern can hand out at once.
    pub fn max_slice(&self) -> usize {
        self.period.len() - Self::PRIME
    }

    /// The `len` pattern bytes starting at stream offset `offset` (`len <= max_slice()`).
    pub fn slice(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % Self::PRIME as u64) as usize;
        &self.period[start..start + len]
    }

    /// Whether `data` equals the pattern at `offset` (any length).
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        let step = self.max_slice();
        data.chunks(step)
            .enumerate()
            .all(|(i, part)| part == self.slice(offset + (i * step) as u64, part.len()))
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::new()
    }
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2): base64(SHA-1(key ‖ GUID)).
pub fn websocket_accept(key: &str) -> String {
    let hash = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    base64(hash.as_ref())
}

/// Standard padded base64 (RFC 4648 §4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data` as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// A connection's read side with a buffer, counting every byte into the backend's total.
struct Input<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    shared: &'a Shared,
}

impl Input<'_> {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Read more bytes into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
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
        self.shared.bytes.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn fill_or_eof(&mut self) -> io::Result<()> {
        if self.fill()? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF"));
        }
        Ok(())
    }

    /// Bytes up to and including `delim`; `Ok(None)` on EOF before any byte.
    fn read_until(&mut self, delim: &[u8], limit: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self
                .available()
                .windows(delim.len())
                .position(|w| w == delim)
            {
                let end = self.pos + i + delim.len();
                let out = self.buf[self.pos..end].to_vec();
                self.pos = end;
                return Ok(Some(out));
            }
            if self.available().len() > limit {
                return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                if self.available().is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "EOF inside a line",
                ));
            }
        }
    }

    /// Consume exactly `n` bytes, handing them to `sink` piece by piece.
    fn take(&mut self, mut n: u64, sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.available().is_empty() {
                self.fill_or_eof()?;
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
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, why.to_owned())
}

fn handle_connection(stream: TcpStream, id: usize, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    match shared.behaviour {
        Behaviour::CloseImmediately => {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Behaviour::NeverRespond => {
            let mut input = Input {
                stream,
                buf: Vec::new(),
                pos: 0,
                shared,
            };
            while matches!(input.fill(), Ok(n) if n > 0) {
                input.pos = input.buf.len();
            }
        }
        Behaviour::Serve => {
            let Ok(writer) = stream.try_clone() else {
                return;
            };
            let mut input = Input {
                stream,
                buf: Vec::new(),
                pos: 0,
                shared,
            };
            let _ = serve(&mut input, writer, id);
        }
    }
}

struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

fn parse_head(raw: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(raw).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = text.trim_end_matches("\r\n").split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("no colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
    })
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Serve requests on one connection until it closes or something is malformed.
fn serve(input: &mut Input, mut out: TcpStream, conn: usize) -> io::Result<()> {
    loop {
        let Some(raw) = input.read_until(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(());
        };
        let head = parse_head(&raw)?;
        input.shared.heads.lock().unwrap().push(head.target.clone());
        let chunked = find_header(&head.headers, "transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"));
        let length = match find_header(&head.headers, "content-length") {
            Some(v) if !chunked => v.trim().parse::<u64>().map_err(|_| invalid("bad CL"))?,
            _ => 0,
        };
        let expects = find_header(&head.headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects && (chunked || length > 0) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut body_len = 0u64;
        let mut sink = |data: &[u8]| {
            ctx.update(data);
            body_len += data.len() as u64;
        };
        if chunked {
            read_chunked(input, &mut sink)?;
        } else {
            input.take(length, &mut sink)?;
        }
        let seen = SeenRequest {
            conn,
            method: head.method.clone(),
            target: head.target.clone(),
            version: head.version.clone(),
            headers: head.headers.clone(),
            body_len,
            body_sha256: hex(ctx.finish().as_ref()),
            chunked,
        };
        let keep_alive = if head.version == "HTTP/1.0" {
            has_token(&head.headers, "connection", "keep-alive")
        } else {
            !has_token(&head.headers, "connection", "close")
        };
        if !respond(input, &mut out, seen, keep_alive)? {
            let _ = out.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Decode a chunked body into `sink` (extensions and trailers skipped).
fn read_chunked(input: &mut Input, sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
    loop {
        let line = input
            .read_until(b"\r\n", 4096)?
            .ok_or_else(|| invalid("EOF in chunk"))?;
        let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk line"))?;
        let size_text = text.trim_end().split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("chunk size"))?;
        if size == 0 {
            loop {
                let trailer = input.read_until(b"\r\n", MAX_HEAD)?;
                match trailer {
                    Some(t) if t == b"\r\n" => return Ok(()),
                    Some(_) => {}
                    None => return Err(invalid("EOF in trailers")),
                }
            }
        }
        input.take(size, sink)?;
        let mut crlf = Vec::new();
        input.take(2, &mut |d: &[u8]| crlf.extend_from_slice(d))?;
        if crlf != b"\r\n" {
            return Err(invalid("no CRLF after chunk data"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn query_param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

/// Answer one complete request; `Ok(false)` when the connection must close afterwards.
fn respond(
    input: &mut Input,
    out: &mut TcpStream,
    seen: SeenRequest,
    keep_alive: bool,
) -> io::Result<bool> {
    let shared = input.shared;
    let name = shared.name.clone();
    let path = seen.target.split('?').next().unwrap_or_default().to_owned();
    let connection = if keep_alive {
        ""
    } else {
        "connection: close\r\n"
    };
    if path == "/health" {
        let status = shared.health_status.load(Ordering::SeqCst);
        shared.health_checks.fetch_add(1, Ordering::SeqCst);
        let body = format!("{name} health\n");
        let head = format!(
            "HTTP/1.1 {status} {}\r\nx-backend: {name}\r\ncontent-length: {}\r\n{connection}\r\n",
            reason(status),
            body.len()
        );
        out.write_all(format!("{head}{body}").as_bytes())?;
        return Ok(keep_alive);
    }
    let upgrade = find_header(&seen.headers, "upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        && has_token(&seen.headers, "connection", "upgrade");
    if let (true, Some(key)) = (upgrade, seen.header("sec-websocket-key")) {
        let accept = websocket_accept(key);
        shared.requests.lock().unwrap().push(seen);
        out.write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
                 sec-websocket-accept: {accept}\r\nx-backend: {name}\r\n\r\n"
            )
            .as_bytes(),
        )?;
        websocket_echo(input, out)?;
        return Ok(false);
    }
    let status: u16 = query_param(&seen.target, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let head_only = seen.method == "HEAD";
    if path == "/download" {
        let total: u64 = query_param(&seen.target, "bytes")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        shared.requests.lock().unwrap().push(seen);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nx-backend: {name}\r\ncontent-type: application/octet-stream\r\n\
             content-length: {total}\r\n{connection}\r\n",
            reason(status)
        );
        out.write_all(head.as_bytes())?;
        if !head_only {
            let pattern = Pattern::new();
            let mut sent = 0u64;
            while sent < total {
                let n = (pattern.max_slice() as u64).min(total - sent) as usize;
                out.write_all(pattern.slice(sent, n))?;
                sent += n as u64;
            }
        }
        return Ok(keep_alive);
    }
    let mut body = format!("{name} {} {}\n", seen.method, seen.target);
    for (k, v) in &seen.headers {
        body.push_str(&format!("{k}: {v}\n"));
    }
    body.push_str(&format!(
        "body-len: {}\nbody-sha256: {}\n",
        seen.body_len, seen.body_sha256
    ));
    let mode = query_param(&seen.target, "respond")
        .unwrap_or("length")
        .to_owned();
    shared.requests.lock().unwrap().push(seen);
    let common = format!(
        "HTTP/1.1 {status} {}\r\nx-backend: {name}\r\ncontent-type: text/plain\r\n",
        reason(status)
    );
    match mode.as_str() {
        "chunked" => {
            out.write_all(
                format!("{common}transfer-encoding: chunked\r\n{connection}\r\n").as_bytes(),
            )?;
            if !head_only {
                // Uneven pieces, one with an extension, and a trailer: all legal framing.
                let bytes = body.as_bytes();
                let (a, rest) = bytes.split_at(bytes.len().min(7));
                let (b, c) = rest.split_at(rest.len() / 2);
                let mut wire = Vec::new();
                for (i, piece) in [a, b, c].iter().enumerate() {
                    if !piece.is_empty() {
                        let ext = if i == 1 { ";piece=two" } else { "" };
                        wire.extend_from_slice(format!("{:x}{ext}\r\n", piece.len()).as_bytes());
                        wire.extend_from_slice(piece);
                        wire.extend_from_slice(b"\r\n");
                    }
                }
                wire.extend_from_slice(b"0\r\nx-trailer: done\r\n\r\n");
                out.write_all(&wire)?;
            }
            Ok(keep_alive)
        }
        "close" => {
            out.write_all(format!("{common}connection: close\r\n\r\n").as_bytes())?;
            if !head_only {
                out.write_all(body.as_bytes())?;
            }
            Ok(false)
        }
        _ => {
            let head = format!("{common}content-length: {}\r\n{connection}\r\n", body.len());
            let mut wire = head.into_bytes();
            if !head_only {
                wire.extend_from_slice(body.as_bytes());
            }
            out.write_all(&wire)?;
            Ok(keep_alive)
        }
    }
}

/// Echo WebSocket frames (RFC 6455 §5) until a close frame or EOF. Client frames must be
/// masked; echoes are unmasked with the same FIN bit and opcode.
fn websocket_echo(input: &mut Input, out: &mut TcpStream) -> io::Result<()> {
    loop {
        let mut header = Vec::new();
        if input.available().is_empty() && input.fill()? == 0 {
            return Ok(());
        }
        input.take(2, &mut |d: &[u8]| header.extend_from_slice(d))?;
        let (first, second) = (header[0], header[1]);
        let opcode = first & 0x0f;
        if second & 0x80 == 0 {
            return Err(invalid("unmasked client frame"));
        }
        let mut len = u64::from(second & 0x7f);
        let extra = match len {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if extra > 0 {
            let mut ext = Vec::new();
            input.take(extra, &mut |d: &[u8]| ext.extend_from_slice(d))?;
            len = ext.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        }
        let mut mask = Vec::new();
        input.take(4, &mut |d: &[u8]| mask.extend_from_slice(d))?;
        let mut payload = Vec::new();
        input.take(len, &mut |d: &[u8]| payload.extend_from_slice(d))?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        match opcode {
            0x8 => {
                out.write_all(&frame(0x80 | 0x8, &payload))?;
                let _ = out.shutdown(Shutdown::Write);
                return Ok(());
            }
            0x9 => out.write_all(&frame(0x80 | 0xA, &payload))?,
            0xA => {}
            _ => {
                input.shared.ws_frames.fetch_add(1, Ordering::SeqCst);
                out.write_all(&frame(first, &payload))?;
            }
        }
    }
}

/// An unmasked frame with first byte `first` (FIN, RSV, opcode) and `payload`.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}
