//! PROXY protocol through the real binary: v1 and v2 headers sent to targets (globally and
//! per route), headers received from trusted proxies and stripped, untrusted or missing
//! headers refused.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;

use common::*;

/// A backend that records what its first connection sends until the bytes end with `end`,
/// then answers "ok\n".
fn capture(end: &'static [u8]) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(end) && got.len() < 4096 && s.read_exact(&mut byte).is_ok() {
            got.push(byte[0]);
        }
        let _ = tx.send(got);
        let _ = s.write_all(b"ok\n");
    });
    (addr, rx)
}

const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

#[test]
fn sends_v1_header_then_the_client_bytes() {
    let port = free_port();
    let (backend, rx) = capture(b"hello\n");
    let _sluice = Sluice::start(&tcp_config(
        port,
        &[backend],
        "none",
        "tcp_send_proxy_protocol = \"v1\"\n",
    ));
    let mut c = connect(local(port));
    let cport = c.local_addr().unwrap().port();
    c.write_all(b"hello\n").unwrap();
    let got = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let want = format!("PROXY TCP4 127.0.0.1 127.0.0.1 {cport} {port}\r\nhello\n");
    assert_eq!(String::from_utf8_lossy(&got), want);
    assert_eq!(read_line(&mut c).unwrap(), "ok");
}

#[test]
fn per_route_v2_header_carries_both_addresses() {
    let port = free_port();
    let (backend, rx) = capture(b"HTTP/1.1\r\n\r\n");
    let config = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\ntcp_send_proxy_protocol = \"v1\"\n\
         [protocols.web]\nprotocol = \"http\"\ntarget = [\"{backend}\"]\nsend_proxy_protocol = \"v2\"\n"
    );
    let _sluice = Sluice::start(&config);
    let mut c = connect(local(port));
    let cport = c.local_addr().unwrap().port();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let got = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(got.get(..12), Some(V2_SIG), "v2 signature: {got:?}");
    assert_eq!(got[12], 0x21, "version 2, PROXY command");
    assert_eq!(got[13], 0x11, "TCP over IPv4");
    assert_eq!(u16::from_be_bytes([got[14], got[15]]), 12);
    assert_eq!(&got[16..20], &[127, 0, 0, 1]);
    assert_eq!(&got[20..24], &[127, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([got[24], got[25]]), cport);
    assert_eq!(u16::from_be_bytes([got[26], got[27]]), port);
    assert_eq!(
        &got[28..],
        b"GET / HTTP/1.1\r\n\r\n",
        "the probed bytes follow the header unchanged"
    );
    assert_eq!(read_line(&mut c).unwrap(), "ok");
}

fn recv_config(port: u16, backend: SocketAddr, trusted: &str, extra: &str) -> String {
    format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\ntcp_target = [\"{backend}\"]\n\
         tcp_recv_proxy_protocol = true\ntcp_trusted_proxies = [\"{trusted}\"]\n{extra}"
    )
}

#[test]
fn received_header_is_stripped_and_its_client_is_used() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&recv_config(port, a.addr(), "127.0.0.0/8", ""));
    let mut c = connect(local(port));
    c.write_all(format!("PROXY TCP4 203.0.113.9 127.0.0.1 5555 {port}\r\nhello\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "A");
    assert_eq!(
        read_line(&mut c).unwrap(),
        "hello",
        "the header never reaches the target"
    );
    drop(c);
    let client: SocketAddr = "203.0.113.9:5555".parse().unwrap();
    let line = sluice.wait_tcp_access(client);
    assert_eq!(
        field(&line, "target"),
        Some(a.addr().to_string().as_str()),
        "{line}"
    );
}

#[test]
fn received_v2_header_is_passed_on_as_v1_with_the_real_client() {
    let port = free_port();
    let (backend, rx) = capture(b"data\n");
    let _sluice = Sluice::start(&recv_config(
        port,
        backend,
        "127.0.0.1",
        "tcp_send_proxy_protocol = \"v1\"\n",
    ));
    let mut header = V2_SIG.to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 51, 100, 7, 127, 0, 0, 1, 0x1f, 0x90]);
    header.extend_from_slice(&port.to_be_bytes());
    let mut c = connect(local(port));
    c.write_all(&header).unwrap();
    c.write_all(b"data\n").unwrap();
    let want = format!("PROXY TCP4 198.51.100.7 127.0.0.1 8080 {port}\r\ndata\n");
    let got = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn untrusted_sender_and_missing_header_are_refused() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&recv_config(port, a.addr(), "10.0.0.0/8", ""));
    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    c.write_all(format!("PROXY TCP4 203.0.113.9 127.0.0.1 5555 {port}\r\nhello\n").as_bytes())
        .unwrap();
    assert_closed_without_data(&mut c, "PROXY header from an untrusted peer");
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("untrusted_proxy"), "{line}");

    let port2 = free_port();
    let mut sluice2 = Sluice::start(&recv_config(port2, a.addr(), "127.0.0.0/8", ""));
    let mut c = connect(local(port2));
    let client = c.local_addr().unwrap();
    c.write_all(b"hello without a header\n").unwrap();
    assert_closed_without_data(&mut c, "no PROXY header");
    let line = sluice2.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("bad_proxy_header"), "{line}");
    assert_eq!(a.accepted(), 0, "nothing reached the target");
}
