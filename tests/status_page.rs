//! The built-in status page of the real binary, fetched with a raw HTTP/1.1 request: directly
//! on `status_listen`, and relayed through an L4 port whose target is the status listener.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;

use common::*;

/// `GET path` with `Connection: close`; returns (status line, headers, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = connect(addr);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: sluice-tests\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Read the head, then the body by Content-Length (or to EOF without one).
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).expect("read response head");
        assert!(
            n > 0,
            "EOF inside response head: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut body = raw[head_end + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().expect("numeric Content-Length"))
    });
    match length {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut buf).expect("read response body");
                assert!(n > 0, "EOF after {} of {len} body bytes", body.len());
                body.extend_from_slice(&buf[..n]);
            }
            assert_eq!(body.len(), len, "body longer than Content-Length");
        }
        None => {
            s.read_to_end(&mut body).expect("read body to EOF");
        }
    }
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (
        status.to_owned(),
        headers.to_owned(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn assert_status_json(status: &str, body: &str, listener: SocketAddr) {
    assert!(status.starts_with("HTTP/1.1 200"), "status line: {status}");
    let json = body.trim();
    assert!(
        json.starts_with('{') && json.ends_with('}'),
        "a JSON object: {json}"
    );
    assert!(
        json.contains(&listener.to_string()),
        "the status JSON mentions the listener {listener}: {json}"
    );
}

#[test]
fn status_page_serves_json_and_html() {
    let a = TcpBackend::echo("A");
    let (port, status_port) = (free_port(), free_port());
    let _sluice = Sluice::start(&tcp_config(
        port,
        &[a.addr()],
        "none",
        &format!("status_listen = \"127.0.0.1:{status_port}\"\n"),
    ));

    let (status, headers, body) = http_get(local(status_port), "/status.json");
    assert_status_json(&status, &body, local(port));
    assert!(
        headers.to_ascii_lowercase().contains("application/json"),
        "JSON content type: {headers}"
    );

    let (status, _, body) = http_get(local(status_port), "/");
    assert!(status.starts_with("HTTP/1.1 200"), "status line: {status}");
    let lower = body.to_ascii_lowercase();
    assert!(
        lower.starts_with("<!doctype html") || lower.contains("<html"),
        "an HTML page: {body}"
    );
    assert!(
        body.contains(&local(port).to_string()),
        "HTML names the listener: {body}"
    );
}

#[test]
fn status_page_through_the_l4_relay() {
    let (port, status_port) = (free_port(), free_port());
    let _sluice = Sluice::start(&tcp_config(
        port,
        &[local(status_port)],
        "none",
        &format!("status_listen = \"127.0.0.1:{status_port}\"\n"),
    ));

    let (status, _, body) = http_get(local(port), "/status.json");
    assert_status_json(&status, &body, local(port));
}
