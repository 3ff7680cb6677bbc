//! WebSocket upgrades through the HTTP engine to an echo backend: a raw client (handshake,
//! masked text and binary frames, ping, close) and the Python `websockets` client
//! (`tests/ws_client.py`).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::http_backend::{HttpBackend, base64, websocket_accept};
use common::http_client::*;
use common::*;

/// A client frame: FIN + `opcode`, masked with `mask` (RFC 6455 §5.3).
fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Read one server frame (unmasked): (first byte, payload).
fn read_frame(s: &mut std::net::TcpStream, already: &mut Vec<u8>) -> (u8, Vec<u8>) {
    let need = |n: usize, buf: &mut Vec<u8>, s: &mut std::net::TcpStream| {
        while buf.len() < n {
            let mut chunk = [0u8; 16 * 1024];
            let k = s.read(&mut chunk).expect("read a WebSocket frame");
            assert!(k > 0, "EOF inside a WebSocket frame");
            buf.extend_from_slice(&chunk[..k]);
        }
    };
    need(2, already, s);
    let (first, second) = (already[0], already[1]);
    assert_eq!(second & 0x80, 0, "server frames are not masked");
    let (len, header) = match second & 0x7f {
        126 => {
            need(4, already, s);
            (u64::from(u16::from_be_bytes([already[2], already[3]])), 4)
        }
        127 => {
            need(10, already, s);
            let mut b = [0u8; 8];
            b.copy_from_slice(&already[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    let total = header + len as usize;
    need(total, already, s);
    let payload = already[header..total].to_vec();
    already.drain(..total);
    (first, payload)
}

fn websocket_config(port: u16, b: &HttpBackend) -> String {
    // default_app: the Python client sends `Host: 127.0.0.1:PORT`.
    let top = "default_app = \"app1\"";
    app1_config(port, &[b.addr()], "none", top)
}

#[test]
fn raw_websocket_client_upgrades_and_echoes_through_sluice() {
    let b = HttpBackend::start("WS");
    let port = free_port();
    let _sluice = Sluice::start(&websocket_config(port, &b));

    let key = base64(b"sluice-ws-key-16");
    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "GET",
        "/chat?room=1",
        APP1,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", &key),
            ("Sec-WebSocket-Version", "13"),
        ],
        b"",
    );
    assert_eq!(r.status(), 101, "{r:?}");
    assert!(r.head.has_token("connection", "upgrade"), "{r:?}");
    assert!(
        r.header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
        "{r:?}"
    );
    let accept = websocket_accept(&key);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some(accept.as_str()),
        "{r:?}"
    );
    assert_eq!(r.backend(), "WS");
    let seen = b.last_request();
    assert_eq!(seen.target, "/chat?room=1");
    assert_eq!(seen.header("sec-websocket-key"), Some(key.as_str()));
    assert!(
        seen.header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
        "Upgrade is forwarded when upgrading: {:?}",
        seen.headers
    );

    let mut leftover = conn.leftover().to_vec();
    let mut s = conn.stream().try_clone().unwrap();
    s.write_all(&masked_frame(0x1, b"hello through sluice", [1, 2, 3, 4]))
        .unwrap();
    let (first, payload) = read_frame(&mut s, &mut leftover);
    assert_eq!(first, 0x81, "FIN + text");
    assert_eq!(payload, b"hello through sluice");

    let blob: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    s.write_all(&masked_frame(0x2, &blob, [9, 8, 7, 6]))
        .unwrap();
    let (first, payload) = read_frame(&mut s, &mut leftover);
    assert_eq!(first, 0x82, "FIN + binary");
    assert!(payload == blob, "70000-byte binary frame echoed intact");

    s.write_all(&masked_frame(0x9, b"ping!", [5, 5, 5, 5]))
        .unwrap();
    let (first, payload) = read_frame(&mut s, &mut leftover);
    assert_eq!((first, payload.as_slice()), (0x8A, &b"ping!"[..]), "pong");

    s.write_all(&masked_frame(0x8, &1000u16.to_be_bytes(), [0, 1, 0, 1]))
        .unwrap();
    let (first, payload) = read_frame(&mut s, &mut leftover);
    assert_eq!(first, 0x88, "close echoed");
    assert_eq!(payload, 1000u16.to_be_bytes());
    // The backend closes its TCP connection after the close handshake (RFC 6455 §7.1.1);
    // sluice must pass that on instead of holding the client's connection open.
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = [0u8; 64];
    match s.read(&mut rest) {
        Ok(0) => {}
        Ok(n) => panic!("data after the close frame: {:?}", &rest[..n]),
        Err(e) if is_reset(&e) => {}
        Err(e) => panic!(
            "the client connection stayed open {:?} after the backend closed: {e}",
            started.elapsed()
        ),
    }
    assert_eq!(b.ws_frames(), 2, "the backend echoed both data frames");
}

#[test]
fn python_websockets_client_talks_through_sluice() {
    let b = HttpBackend::start("WS");
    let port = free_port();
    let _sluice = Sluice::start(&websocket_config(port, &b));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(format!("ws://127.0.0.1:{port}/py"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); `make deps-test` installs python3 and websockets")
        });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ws_client.py did not finish within 40s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out_reader.join().unwrap(), err_reader.join().unwrap());
    assert_ne!(
        status.code(),
        Some(3),
        "python websockets is missing: `make deps-test` installs it\n{stderr}"
    );
    assert!(
        status.success(),
        "ws_client.py failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("backend=WS"),
        "x-backend on the 101: {stdout}"
    );
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
    assert_eq!(b.request_count(), 1, "one upgrade request");
    assert!(
        b.ws_frames() >= 22,
        "frames went through the backend: {}",
        b.ws_frames()
    );
}
