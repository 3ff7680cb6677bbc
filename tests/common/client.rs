//! Client ends for the integration tests: TCP and UDP sockets with timeouts, and helpers that
//! talk to the tagged backends through sluice and assert on what comes back. Does IO.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};

use super::IO_TIMEOUT;

/// Connect with [`IO_TIMEOUT`] on connect, reads and writes.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read one `\n`-terminated line (without the `\n`), byte by byte so nothing after it is
/// consumed.
pub fn read_line(s: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte) {
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("EOF after {:?}", String::from_utf8_lossy(&line)),
                ));
            }
            Ok(_) if byte[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Open a connection through `addr`, say `hello`, and return it with the name of the backend
/// that answered (after checking the echo came back).
pub fn hello(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = connect(addr);
    s.write_all(b"hello\n").expect("send hello");
    let name = read_line(&mut s).unwrap_or_else(|e| panic!("backend name via {addr}: {e}"));
    let echo = read_line(&mut s).unwrap_or_else(|e| panic!("hello echo via {addr}: {e}"));
    assert_eq!(echo, "hello", "echo via {addr} (backend {name})");
    (s, name)
}

/// Send `msg` and expect it echoed back as the next line.
pub fn echo_roundtrip(s: &mut TcpStream, msg: &str) {
    s.write_all(format!("{msg}\n").as_bytes())
        .unwrap_or_else(|e| panic!("send {msg:?}: {e}"));
    let got = read_line(s).unwrap_or_else(|e| panic!("echo of {msg:?}: {e}"));
    assert_eq!(got, msg);
}

/// Expect the peer to close `s` (EOF or reset) without sending a single byte.
pub fn assert_closed_without_data(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: expected the connection closed, got data {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if is_reset(&e) => {}
        Err(e) => panic!("{what}: expected the connection closed, got error {e} ({e:?})"),
    }
}

/// Whether `e` means the peer dropped the connection (as opposed to a timeout).
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Connecting to `addr` must be refused: sluice stops a removed (or draining) listener before
/// it logs that it did, so the first attempt after the log line has to fail.
pub fn assert_refuses_new_connections(addr: SocketAddr) {
    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        Err(e) => panic!("connect to {addr}: expected refused, got {e}"),
        Ok(_) => panic!("{addr} still accepts connections"),
    }
}

/// A UDP client socket on `127.0.0.1:0` with [`IO_TIMEOUT`] on reads.
pub fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP client");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// One answer of a [`UdpBackend`] as the client received it.
#[derive(Debug)]
pub struct UdpReply {
    /// Where the datagram came from (should be the address the client sent to).
    pub from: SocketAddr,
    /// Which backend answered.
    pub backend: String,
    /// The source address the backend saw (sluice's upstream socket for this flow).
    pub upstream: SocketAddr,
    pub payload: Vec<u8>,
}

/// Receive one datagram and split it as `NAME|PEER|PAYLOAD`.
pub fn udp_recv(s: &UdpSocket) -> UdpReply {
    let mut buf = vec![0u8; 65536];
    let (n, from) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("UDP reply to {:?}: {e}", s.local_addr()));
    let data = &buf[..n];
    let mut parts = data.splitn(3, |&b| b == b'|');
    let (Some(name), Some(peer), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("malformed UDP reply {:?}", String::from_utf8_lossy(data));
    };
    UdpReply {
        from,
        backend: String::from_utf8_lossy(name).into_owned(),
        upstream: String::from_utf8_lossy(peer)
            .parse()
            .expect("peer address in UDP reply"),
        payload: payload.to_vec(),
    }
}

/// Send `payload` to `to` and receive the answer.
pub fn udp_ask(s: &UdpSocket, to: SocketAddr, payload: &[u8]) -> UdpReply {
    s.send_to(payload, to).expect("send datagram");
    let reply = udp_recv(s);
    assert_eq!(
        reply.payload, payload,
        "UDP payload echoed by {}",
        reply.backend
    );
    reply
}
