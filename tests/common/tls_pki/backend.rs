//! An HTTPS origin for the integration tests: a rustls server on `127.0.0.1:0` with a
//! thread per connection that answers every request with its own name. Does IO.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::super::IO_TIMEOUT;
use super::{Leaf, fill, ring, take};

/// An HTTPS origin on `127.0.0.1:0` serving `leaf`: every `GET` is answered `200` with
/// `x-backend: NAME` and the body `NAME METHOD TARGET\nhost: HOST\n`. Thread per connection;
/// stops accepting on drop.
pub struct TlsBackend {
    name: String,
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TlsBackend {
    pub fn start(name: &str, leaf: &Leaf) -> TlsBackend {
        let config = ServerConfig::builder_with_provider(Arc::new(ring()))
            .with_safe_default_protocol_versions()
            .expect("server protocol versions")
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .expect("backend certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind TLS backend");
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (done, seen, halt, tag) = (
            handshakes.clone(),
            requests.clone(),
            stop.clone(),
            name.to_owned(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let (config, done, seen, tag) =
                    (config.clone(), done.clone(), seen.clone(), tag.clone());
                thread::spawn(move || {
                    let _ = serve_tls(tcp, config, &done, &seen, &tag);
                });
            }
        });
        TlsBackend {
            name: name.to_owned(),
            addr,
            handshakes,
            requests,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// `METHOD TARGET` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve_tls(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    handshakes: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    name: &str,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    handshakes.fetch_add(1, Ordering::SeqCst);
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if fill(&mut s, &mut buf).unwrap_or(0) == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let field = |name: &str| {
            head.split("\r\n").find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if let Some(n) = field("content-length").and_then(|n| n.parse().ok()) {
            take(&mut s, &mut buf, n)?;
        }
        let mut words = request_line.split(' ');
        let (method, target) = (words.next().unwrap_or("-"), words.next().unwrap_or("-"));
        seen.lock().unwrap().push(format!("{method} {target}"));
        let host = field("host").unwrap_or_default();
        let body = format!("{name} {method} {target}\nhost: {host}\n");
        let close = field("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let response = format!(
            "HTTP/1.1 200 OK\r\nx-backend: {name}\r\ncontent-type: text/plain\r\n\
             content-length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        s.write_all(response.as_bytes())?;
        s.flush()?;
        if close {
            s.conn.send_close_notify();
            return s.flush();
        }
    }
}
