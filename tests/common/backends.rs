//! Tagged backends for the integration tests: a TCP echo server and a UDP echo server on
//! `127.0.0.1:0`, each answering with its own name so a test can tell which one sluice chose.
//! Each runs on its own threads. Does IO.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A TCP backend on `127.0.0.1:0` that greets each connection with `NAME\n`, echoes every byte
/// it reads, and on EOF from the client writes `NAME eof\n` and shuts down its write side (so
/// both directions of a half-close are visible to the client).
pub struct TcpBackend {
    name: String,
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TcpBackend {
    pub fn echo(name: &str) -> TcpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt, tag) = (accepted.clone(), stop.clone(), name.to_owned());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let tag = tag.clone();
                thread::spawn(move || echo_connection(stream, &tag));
            }
        });
        TcpBackend {
            name: name.to_owned(),
            addr,
            accepted,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn echo_connection(mut s: TcpStream, name: &str) {
    let _ = s.set_nodelay(true);
    if s.write_all(format!("{name}\n").as_bytes()).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                let _ = s.write_all(format!("{name} eof\n").as_bytes());
                let _ = s.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A UDP backend on `127.0.0.1:0` that answers each datagram with `NAME|PEER|PAYLOAD`, where
/// PEER is the source address it saw.
pub struct UdpBackend {
    name: String,
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl UdpBackend {
    pub fn echo(name: &str) -> UdpBackend {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP backend");
        let addr = socket.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt, tag) = (peers.clone(), stop.clone(), name.to_owned());
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let received = socket.recv_from(&mut buf);
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok((n, peer)) = received else { continue };
                seen.lock().unwrap().push(peer);
                let mut reply = format!("{tag}|{peer}|").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, peer);
            }
        });
        UdpBackend {
            name: name.to_owned(),
            addr,
            peers,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Source addresses of every datagram received so far, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for UdpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the receive loop so it sees `stop`.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(b"", self.addr);
        }
    }
}
