//! TLS termination against real third-party clients (`make deps-test` installs them): `curl`
//! with `--cacert`/`--resolve` for each app, `openssl s_client` seeing the
//! `unrecognized_name` refusal, and `openssl s_client -cert/-key` accepted or refused by an
//! mTLS app.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::http_backend::HttpBackend;
use common::tls_pki::*;
use common::*;

/// How long one curl or s_client run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Run `cmd` with `input` on stdin; killed (and the test failed) after [`TOOL_TIMEOUT`].
fn run(cmd: &mut Command, input: &[u8]) -> (Output, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?} (run `make deps-test`): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {TOOL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

struct Setup {
    dir: TempDir,
    ca: Ca,
    clients: Ca,
    backends: Vec<HttpBackend>,
    port: u16,
    sluice: Sluice,
}

/// Apps a.test, b.test, *.w.test and the mTLS app m.test (client CA `clients`).
fn setup() -> Setup {
    let dir = TempDir::new("tls-interop");
    let p = dir.path();
    let ca = Ca::root(p, "root");
    let clients = Ca::root(p, "clients");
    let backends: Vec<HttpBackend> = ["A", "B", "W", "M"].map(HttpBackend::start).into();
    let mtls = format!(", client_ca_cert_path = \"{}\"", clients.pem_path.display());
    let apps = [
        tls_app(
            "a",
            "a.test",
            &ca.server(p, "a", &["a.test"]),
            "",
            backends[0].addr(),
        ),
        tls_app(
            "b",
            "b.test",
            &ca.server(p, "b", &["b.test"]),
            "",
            backends[1].addr(),
        ),
        tls_app(
            "w",
            "*.w.test",
            &ca.server(p, "w", &["*.w.test"]),
            "",
            backends[2].addr(),
        ),
        tls_app(
            "m",
            "m.test",
            &ca.server(p, "m", &["m.test"]),
            &mtls,
            backends[3].addr(),
        ),
    ];
    let port = free_port();
    let sluice = Sluice::start(&tls_config(None, port, "", &apps.join("\n")));
    Setup {
        dir,
        ca,
        clients,
        backends,
        port,
        sluice,
    }
}

#[test]
fn curl_fetches_each_app_over_tls() {
    let mut s = setup();
    for (name, backend) in [("a.test", "A"), ("b.test", "B"), ("x.w.test", "W")] {
        let url = format!("https://{name}:{}/curl?n=1", s.port);
        let (out, text) = run(
            Command::new("curl")
                .args(["-sS", "-i", "--max-time", "10", "--http1.1", "--cacert"])
                .arg(&s.ca.pem_path)
                .arg("--resolve")
                .arg(format!("{name}:{}:127.0.0.1", s.port))
                .arg(&url),
            b"",
        );
        assert!(out.status.success(), "curl {url}: {text}");
        assert!(text.starts_with("HTTP/1.1 200"), "curl {url}: {text}");
        assert!(
            text.to_ascii_lowercase()
                .contains(&format!("x-backend: {}", backend.to_ascii_lowercase())),
            "curl {url} reached {backend}: {text}"
        );
        assert!(text.contains(&format!("{backend} GET /curl?n=1")), "{text}");
    }
    let line = s
        .sluice
        .wait_line("an https access line for curl", LOG_TIMEOUT, |l| {
            l.contains("] https ") && field(l, "status").is_some()
        });
    assert!(line.contains("method=GET"), "{line}");
}

#[test]
fn openssl_s_client_sees_unrecognized_name_for_an_unknown_sni() {
    let mut s = setup();
    let (out, text) = run(
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", s.port))
            .args(["-servername", "unknown.test", "-CAfile"])
            .arg(&s.ca.pem_path),
        b"",
    );
    assert!(!out.status.success(), "the handshake fails: {text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("unrecognized name") || lower.contains("alert number 112"),
        "s_client reports the unrecognized_name alert: {text}"
    );
    s.sluice.wait_line("the refusal logged", LOG_TIMEOUT, |l| {
        l.contains("TLS handshake failed") && l.contains("unknown.test")
    });
    assert!(s.backends.iter().all(|b| b.accepted() == 0));
}

/// `openssl s_client` to m.test sending one request; `client`: `-cert`/`-key` files.
fn s_client_mtls(s: &Setup, client: Option<&Leaf>) -> (Output, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{}", s.port))
        .args(["-servername", "m.test", "-CAfile"])
        .arg(&s.ca.pem_path);
    if let Some(leaf) = client {
        cmd.arg("-cert")
            .arg(&leaf.cert_path)
            .arg("-key")
            .arg(&leaf.key_path);
    }
    run(
        &mut cmd,
        b"GET /mtls HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n",
    )
}

#[test]
fn openssl_s_client_with_a_client_certificate_is_served() {
    let s = setup();
    let leaf = s.clients.client(s.dir.path(), "carol", "carol");
    let (_, text) = s_client_mtls(&s, Some(&leaf));
    assert!(text.contains("HTTP/1.1 200"), "served: {text}");
    assert!(text.contains("M GET /mtls"), "by m's backend: {text}");
}

#[test]
fn openssl_s_client_without_or_with_a_foreign_certificate_is_refused() {
    let mut s = setup();
    let (_, text) = s_client_mtls(&s, None);
    assert!(
        !text.contains("HTTP/1.1"),
        "no response without a certificate: {text}"
    );
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("certificate required"),
        "s_client reports the refusal: {text}"
    );

    let stranger = Ca::root(s.dir.path(), "stranger");
    let leaf = stranger.client(s.dir.path(), "eve", "eve");
    let (_, text) = s_client_mtls(&s, Some(&leaf));
    assert!(
        !text.contains("HTTP/1.1"),
        "no response to a foreign certificate: {text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("unknown ca"),
        "s_client reports the unknown CA: {text}"
    );
    s.sluice.wait_for("TLS handshake failed", LOG_TIMEOUT);
    assert_eq!(s.backends[3].accepted(), 0);
}
