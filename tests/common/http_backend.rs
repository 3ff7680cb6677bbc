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

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ring::digest;

mod input;
mod payload;
mod websocket;

use input::{Input, invalid, read_chunked};
// Re-exported for the test files; a binary that uses none of them would warn.
#[allow(unused_imports)]
pub use payload::{Pattern, hex, sha256_hex};
use websocket::websocket_echo;
#[allow(unused_imports)]
pub use websocket::{base64, websocket_accept};

/// Biggest request head the backend accepts (it is lenient: sluice enforces the real limits).
const MAX_HEAD: usize = 1 << 20;

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

fn handle_connection(stream: TcpStream, id: usize, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    match shared.behaviour {
        Behaviour::CloseImmediately => {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Behaviour::NeverRespond => {
            let mut input = Input::new(stream, &shared.bytes);
            while matches!(input.fill(), Ok(n) if n > 0) {
                input.discard();
            }
        }
        Behaviour::Serve => {
            let Ok(writer) = stream.try_clone() else {
                return;
            };
            let mut input = Input::new(stream, &shared.bytes);
            let _ = serve(&mut input, writer, id, shared);
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
fn serve(input: &mut Input, mut out: TcpStream, conn: usize, shared: &Shared) -> io::Result<()> {
    loop {
        let Some(raw) = input.read_until(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(());
        };
        let head = parse_head(&raw)?;
        shared.heads.lock().unwrap().push(head.target.clone());
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
        if !respond(input, &mut out, shared, seen, keep_alive)? {
            let _ = out.shutdown(Shutdown::Write);
            return Ok(());
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
    shared: &Shared,
    seen: SeenRequest,
    keep_alive: bool,
) -> io::Result<bool> {
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
        websocket_echo(input, out, &shared.ws_frames)?;
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
