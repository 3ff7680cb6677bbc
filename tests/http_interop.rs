//! curl (installed by `make deps-test`) against the HTTP engine: a GET returns the backend's
//! body, a few-MB `--data-binary` POST arrives intact (curl sends `Expect: 100-continue` for
//! it), and `curl -i` shows sluice's own 404.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::http_backend::{HttpBackend, sha256_hex};
use common::http_client::*;
use common::*;

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl ({e}); `make deps-test` installs it"))
}

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: curl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_get_returns_the_backend_body() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));

    let url = format!("http://127.0.0.1:{port}/x?y=1");
    let host = format!("Host: {APP1}");
    let body = stdout_of(&curl(&["-H", &host, &url]), "GET");
    let echo = Echo::parse(&body);
    assert_eq!(echo.backend, "A");
    assert_eq!(
        (echo.method.as_str(), echo.target.as_str()),
        ("GET", "/x?y=1")
    );
    assert!(
        echo.header("user-agent")
            .is_some_and(|ua| ua.starts_with("curl/")),
        "curl's own headers pass through: {echo:?}"
    );
}

#[test]
fn curl_posts_a_few_megabytes_intact() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));

    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = sluice.dir().join("upload.bin");
    fs::write(&file, &data).unwrap();
    let url = format!("http://127.0.0.1:{port}/upload");
    let host = format!("Host: {APP1}");
    let at_file = format!("@{}", file.display());
    let body = stdout_of(
        &curl(&["-H", &host, "--data-binary", &at_file, &url]),
        "POST",
    );
    let echo = Echo::parse(&body);
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.body_len, data.len() as u64);
    assert_eq!(
        echo.body_sha256,
        sha256_hex(&data),
        "the file arrived byte for byte"
    );

    // Chunked upload of the same file.
    let body = stdout_of(
        &curl(&[
            "-H",
            &host,
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at_file,
            &url,
        ]),
        "chunked POST",
    );
    let echo = Echo::parse(&body);
    assert_eq!(echo.body_sha256, sha256_hex(&data), "chunked upload intact");
}

#[test]
fn curl_shows_sluice_404_for_an_unknown_route() {
    let api = HttpBackend::start("API");
    let port = free_port();
    let routes = [route_toml(Some("/api"), &[api.addr()], "")];
    let _sluice = Sluice::start(&http_config(port, "", &app_toml("app1", APP1, &routes)));

    let url = format!("http://127.0.0.1:{port}/nope");
    let host = format!("Host: {APP1}");
    let text = stdout_of(&curl(&["-i", "-H", &host, &url]), "404");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("curl -i output without a blank line: {text:?}"));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(body.starts_with("404 Not Found"), "{body:?}");
    assert!(body.contains("/nope"), "{body:?}");
    assert_eq!(api.accepted(), 0);
}
