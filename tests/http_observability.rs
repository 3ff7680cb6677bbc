//! What the HTTP engine tells its operator: one access line per request on stderr (client,
//! listener, app, host, method, path with the query redacted on request, status, upstream,
//! bytes, duration), and the built-in status app (`builtin:status`) as HTML and JSON.

mod common;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

const STATUS_HOST: &str = "status.localhost";

/// app1 (routes `/api` to `b`) and the status app; `top` lines.
fn config(port: u16, b: &HttpBackend, top: &str) -> String {
    let apps = [
        app_toml("app1", APP1, &[route_toml(Some("/api"), &[b.addr()], "")]),
        "[apps.status]\nserver_name = \"status.localhost\"\n\
         reverse_proxy = [{ upstream = [{ location = \"builtin:status\" }] }]\n"
            .to_owned(),
    ];
    http_config(port, top, &apps.join("\n"))
}

fn dur_is_seconds(line: &str) {
    let dur = field(line, "dur").unwrap_or_else(|| panic!("no dur= in {line}"));
    assert!(
        dur.strip_suffix('s')
            .is_some_and(|n| n.parse::<f64>().is_ok()),
        "dur is seconds: {line}"
    );
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {key}= in {line}"))
}

#[test]
fn access_line_for_a_proxied_request() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let mut sluice = Sluice::start(&config(port, &b, ""));

    let mut conn = HttpConn::connect(local(port));
    let client = conn.local_addr();
    let r = conn.request("POST", "/api/items?id=7", APP1, &[], b"twelve bytes");
    assert_eq!(r.status(), 200, "{r:?}");

    let line = wait_http_access(&mut sluice, client);
    let start = format!("http {client} -> {} ", local(port));
    assert!(line.contains(&start), "client and listener: {line}");
    assert_eq!(field(&line, "app"), Some("app1"), "{line}");
    assert_eq!(field(&line, "host"), Some(APP1), "{line}");
    assert_eq!(field(&line, "method"), Some("POST"), "{line}");
    assert_eq!(field(&line, "path"), Some("/api/items?id=7"), "{line}");
    assert_eq!(field(&line, "status"), Some("200"), "{line}");
    let upstream = b.addr().to_string();
    assert_eq!(field(&line, "upstream"), Some(upstream.as_str()), "{line}");
    assert!(num(&line, "in") >= 12, "request bytes counted: {line}");
    assert!(
        num(&line, "out") >= r.body.len() as u64,
        "response bytes counted: {line}"
    );
    dur_is_seconds(&line);

    // One line per request: a second request on the same connection gets its own.
    conn.get("/api/second");
    let needle = format!("http {client} -> ");
    let second = sluice.wait_line("for the second request", LOG_TIMEOUT, |l| {
        l.contains(&needle) && field(l, "path") == Some("/api/second")
    });
    assert_eq!(field(&second, "method"), Some("GET"), "{second}");
}

#[test]
fn access_line_when_sluice_answers_itself_and_with_redacted_queries() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let mut sluice = Sluice::start(&config(port, &b, "redact_query_in_access_log = true"));

    let mut conn = HttpConn::connect(local(port));
    let client = conn.local_addr();
    let r = conn.get("/nowhere?token=secret");
    assert_eq!(r.status(), 404, "{r:?}");
    let line = wait_http_access(&mut sluice, client);
    assert_eq!(field(&line, "status"), Some("404"), "{line}");
    assert_eq!(
        field(&line, "upstream"),
        Some("-"),
        "sluice answered itself: {line}"
    );
    assert_eq!(field(&line, "path"), Some("/nowhere?REDACTED"), "{line}");
    assert!(!line.contains("secret"), "the query is not logged: {line}");

    let mut conn = HttpConn::connect(local(port));
    let client = conn.local_addr();
    assert_eq!(conn.get("/api/x?password=hunter2").status(), 200);
    let line = wait_http_access(&mut sluice, client);
    assert_eq!(field(&line, "path"), Some("/api/x?REDACTED"), "{line}");
    assert!(
        !sluice.lines().iter().any(|l| l.contains("hunter2")),
        "no line logs the query"
    );

    // An unknown host: 503 by sluice, also logged.
    let mut conn = HttpConn::connect(local(port));
    let client = conn.local_addr();
    assert_eq!(
        conn.request("GET", "/", "nobody.example", &[], b"")
            .status(),
        503
    );
    let line = wait_http_access(&mut sluice, client);
    assert_eq!(field(&line, "status"), Some("503"), "{line}");
    assert_eq!(field(&line, "upstream"), Some("-"), "{line}");
}

#[test]
fn builtin_status_app_serves_html_and_json() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&config(port, &b, ""));
    // Some traffic for the counters.
    assert_eq!(get(local(port), APP1, "/api/count").status(), 200);

    let r = get(local(port), STATUS_HOST, "/");
    assert_eq!(r.status(), 200, "{r:?}");
    let ct = r
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(ct.starts_with("text/html"), "{r:?}");
    let html = r.text();
    assert!(html.to_ascii_lowercase().contains("<html"), "{html}");
    assert!(html.contains("sluice"), "{html}");
    assert!(html.contains(APP1), "the page lists the apps: {html}");

    let r = get(local(port), STATUS_HOST, "/?format=json");
    assert_eq!(r.status(), 200, "{r:?}");
    let ct = r
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(ct.starts_with("application/json"), "{r:?}");
    let json = r.text();
    let json = json.trim();
    assert!(
        json.starts_with('{') && json.ends_with('}'),
        "a JSON object: {json}"
    );
    for key in [
        "\"version\"",
        "\"uptime_s\"",
        "\"listeners\"",
        "\"apps\"",
        "\"http\"",
    ] {
        assert!(json.contains(key), "JSON has {key}: {json}");
    }
    assert!(json.contains("app1"), "apps are listed: {json}");
    assert!(
        json.contains(&b.addr().to_string()),
        "upstreams (with health) are listed: {json}"
    );
    assert!(
        json.contains(&local(port).to_string()),
        "the listener is listed: {json}"
    );
    assert_eq!(
        b.request_count(),
        1,
        "the status app does not touch the backends"
    );
}
