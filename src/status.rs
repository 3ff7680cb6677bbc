//! The built-in status page (`status_listen`): listeners, routes and live counters as HTML
//! (`GET /`) and JSON (`GET /status.json`). Reads one request head per connection and closes.
//! The request-line parser is sans-IO; `serve` does IO.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::plan::Route;
use crate::state::{self, Shared};
use crate::timer::Timer;
use crate::wire::{Reader, WireError};

/// A status request head larger than this is refused (it has no reason to be big).
const MAX_HEAD: usize = 8 * 1024;
/// A client that has not sent its head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Method and path of an HTTP/1.x request line.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
}

/// Parse the request line at the start of `head`.
///
/// # Errors
/// `Truncated` until a full line has arrived; `Invalid` for anything not `METHOD SP
/// TARGET SP HTTP/1.x CRLF`.
pub fn parse_request_line(head: &[u8]) -> Result<RequestLine<'_>, WireError> {
    let mut r = Reader::new(head);
    let line = r.take_until(b'\n')?;
    let mut line = Reader::new(
        line.strip_suffix(b"\r")
            .ok_or(WireError::Invalid("bare LF"))?,
    );
    let method = line
        .take_until(b' ')
        .map_err(|_| WireError::Invalid("no method"))?;
    let path = line
        .take_until(b' ')
        .map_err(|_| WireError::Invalid("no target"))?;
    let version = line.rest();
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return Err(WireError::Invalid("bad method"));
    }
    if path.is_empty() || !path.iter().all(|b| b.is_ascii_graphic()) {
        return Err(WireError::Invalid("bad target"));
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(WireError::Invalid("bad version"));
    }
    Ok(RequestLine { method, path })
}

/// Accept status-page requests until the task is dropped.
pub async fn serve(listener: Rc<Async<TcpListener>>, shared: Rc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => state::spawn(answer(stream, peer, shared.clone())).detach(),
            Err(e) => {
                log::warn!("status: accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: Async<TcpStream>, peer: SocketAddr, shared: Rc<Shared>) {
    let mut head = Vec::with_capacity(1024);
    let read_head = async {
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            head.extend_from_slice(buf.get(..n)?);
            if n == 0 || head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                return Some(());
            }
        }
    };
    let timeout = async {
        Timer::after(HEAD_TIMEOUT).await;
        None
    };
    if future::or(read_head, timeout).await.is_none() {
        return;
    }
    let (status, ctype, body) = match parse_request_line(&head) {
        _ if head.len() > MAX_HEAD => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request head too large\n".to_owned(),
        ),
        Ok(RequestLine {
            method: b"GET" | b"HEAD",
            path,
        }) => match path.split(|&b| b == b'?').next() {
            Some(b"/") => ("200 OK", "text/html; charset=utf-8", html(&shared)),
            Some(b"/status.json") => ("200 OK", "application/json", json(&shared)),
            _ => (
                "404 Not Found",
                "text/plain",
                "no such page; try / or /status.json\n".to_owned(),
            ),
        },
        Ok(_) => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".to_owned(),
        ),
        Err(e) => {
            log::debug!("status {peer}: bad request: {e:?}");
            (
                "400 Bad Request",
                "text/plain",
                "malformed request line\n".to_owned(),
            )
        }
    };
    let is_head = head.starts_with(b"HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        out.push_str(&body);
    }
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.flush().await;
}

fn route_targets(r: &Option<Route>) -> String {
    r.as_ref().map_or_else(
        || "-".to_owned(),
        |r| {
            format!(
                "{} ({})",
                r.targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                r.balance.name()
            )
        },
    )
}

pub(crate) fn esc_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn esc_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The status page as HTML.
pub fn html(shared: &Shared) -> String {
    let plan = shared.plan.borrow().clone();
    let slots = shared.slots.borrow();
    let mut s = String::from(
        "<!doctype html><html lang=en><meta charset=utf-8><title>sluice status</title>",
    );
    s.push_str("<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}</style>");
    let _ = write!(
        s,
        "<h1>sluice {}</h1><p>config <code>{}</code>, generation {}, up {}s</p>",
        env!("CARGO_PKG_VERSION"),
        esc_html(&shared.config_path),
        shared.generation.get(),
        shared.started.elapsed().as_secs()
    );
    for svc in &plan.l4 {
        let _ = write!(s, "<h2>L4 service {}</h2><table>", esc_html(&svc.name));
        let listen: Vec<String> = svc.listen.iter().map(ToString::to_string).collect();
        let _ = write!(
            s,
            "<tr><th>listen</th><td>{}</td></tr>",
            esc_html(&listen.join(", "))
        );
        let _ = write!(
            s,
            "<tr><th>tcp default</th><td>{}</td></tr>",
            esc_html(&route_targets(&svc.tcp_default))
        );
        let _ = write!(
            s,
            "<tr><th>udp default</th><td>{}</td></tr>",
            esc_html(&route_targets(&svc.udp_default))
        );
        for p in &svc.protocols {
            let _ = write!(
                s,
                "<tr><th>protocol {}</th><td>{} → {}</td></tr>",
                esc_html(&p.route.name),
                p.protocol.name(),
                esc_html(&route_targets(&Some(p.route.clone())))
            );
        }
        if let Some(slot) = slots.get(&svc.name) {
            let st = &slot.stats;
            let _ = write!(
                s,
                "<tr><th>tcp</th><td>{} open, {} total, {} refused, {} failed</td></tr>\
                 <tr><th>udp</th><td>{} flows, {} total, {} datagrams dropped</td></tr>\
                 <tr><th>bytes</th><td>{} up, {} down</td></tr>",
                st.tcp_active.get(),
                st.tcp_total.get(),
                st.tcp_refused.get(),
                st.tcp_failed.get(),
                st.udp_flows.get(),
                st.udp_total.get(),
                st.udp_dropped.get(),
                st.bytes_up.get(),
                st.bytes_down.get()
            );
        }
        s.push_str("</table>");
    }
    if let Some(engine) = shared.http_engine() {
        crate::http::status::html(&engine, &mut s);
    }
    s.push_str("<p><a href=\"/status.json\">JSON</a> (or <code>?format=json</code>)</p>");
    s
}

/// The status page as JSON.
pub fn json(shared: &Shared) -> String {
    let plan = shared.plan.borrow().clone();
    let slots = shared.slots.borrow();
    let mut s = format!(
        "{{\"version\":\"{}\",\"config\":\"{}\",\"generation\":{},\"uptime_s\":{},\"l4\":[",
        env!("CARGO_PKG_VERSION"),
        esc_json(&shared.config_path),
        shared.generation.get(),
        shared.started.elapsed().as_secs()
    );
    for (i, svc) in plan.l4.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let list = |v: Vec<String>| {
            v.iter()
                .map(|x| format!("\"{}\"", esc_json(x)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let route = |r: &Option<Route>| match r {
            None => "null".to_owned(),
            Some(r) => format!(
                "{{\"name\":\"{}\",\"balance\":\"{}\",\"targets\":[{}]}}",
                esc_json(&r.name),
                r.balance.name(),
                list(r.targets.iter().map(ToString::to_string).collect())
            ),
        };
        let _ = write!(
            s,
            "{{\"name\":\"{}\",\"listen\":[{}],\"tcp_default\":{},\"udp_default\":{},\"protocols\":[{}]",
            esc_json(&svc.name),
            list(svc.listen.iter().map(ToString::to_string).collect()),
            route(&svc.tcp_default),
            route(&svc.udp_default),
            svc.protocols
                .iter()
                .map(|p| format!(
                    "{{\"protocol\":\"{}\",\"route\":{}}}",
                    p.protocol.name(),
                    route(&Some(p.route.clone()))
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(slot) = slots.get(&svc.name) {
            let st = &slot.stats;
            let _ = write!(
                s,
                ",\"tcp_open\":{},\"tcp_total\":{},\"tcp_refused\":{},\"tcp_failed\":{},\"udp_flows\":{},\"udp_total\":{},\"udp_dropped\":{},\"bytes_up\":{},\"bytes_down\":{}",
                st.tcp_active.get(),
                st.tcp_total.get(),
                st.tcp_refused.get(),
                st.tcp_failed.get(),
                st.udp_flows.get(),
                st.udp_total.get(),
                st.udp_dropped.get(),
                st.bytes_up.get(),
                st.bytes_down.get()
            );
        }
        s.push('}');
    }
    s.push_str("],\"listeners\":[");
    let listeners: Vec<String> = plan
        .listeners()
        .iter()
        .map(|k| format!("\"{} {}\"", k.describe(), k.addr))
        .collect();
    s.push_str(&listeners.join(","));
    s.push(']');
    if let Some(engine) = shared.http_engine() {
        crate::http::status::json(&engine, &mut s);
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_from_curl() {
        let head = b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1:8449\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            parse_request_line(head),
            Ok(RequestLine {
                method: b"GET",
                path: b"/status.json"
            })
        );
    }

    #[test]
    fn partial_line_is_truncated_not_invalid() {
        assert_eq!(parse_request_line(b"GET / HT"), Err(WireError::Truncated));
        assert_eq!(parse_request_line(b""), Err(WireError::Truncated));
    }

    #[test]
    fn malformed_lines_are_invalid() {
        for bad in [
            &b"GET / HTTP/1.1\n"[..],
            b"get / HTTP/1.1\r\n",
            b"GET  HTTP/1.1\r\n",
            b"GET / HTTP/2\r\n",
            b"GET /\x01 HTTP/1.1\r\n",
            b"GET\r\n",
        ] {
            assert!(
                matches!(parse_request_line(bad), Err(WireError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_escapes_control_and_quote() {
        assert_eq!(esc_json("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}

#[cfg(test)]
mod fuzz_corpus {
    use super::*;

    /// Replays `fuzz/corpus/status_request_line` with the fuzz target's invariants.
    #[test]
    fn corpus_replays_without_panics() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/status_request_line"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("corpus directory") {
            let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
            if let Ok(RequestLine { method, path }) = parse_request_line(&data) {
                assert!(method.iter().all(u8::is_ascii_uppercase));
                assert!(path.iter().all(u8::is_ascii_graphic));
            }
            seen += 1;
        }
        assert!(seen >= 5, "corpus went missing: {seen} files");
    }
}
