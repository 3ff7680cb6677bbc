//! The command line of the real binary: `--check` on good and bad configs and on the
//! upstream reference configs, `-V`, and an unknown flag.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

fn check(path: &Path) -> Output {
    run_sluice(
        &["--check", "-c", path.to_str().expect("utf-8 path")],
        CHECK_TIMEOUT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_describes_a_good_config_without_dialling_targets() {
    // A target that would notice a connection (it never accepts; we look afterwards).
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let port = free_port();
    let dir = TempDir::new("check-good");
    let path = dir.path().join("good.toml");
    fs::write(
        &path,
        tcp_config(port, &[target.local_addr().unwrap()], "round_robin", ""),
    )
    .unwrap();

    let out = check(&path);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&local(port).to_string()),
        "--check names the listen address 127.0.0.1:{port}:\n{stdout}"
    );
    let target_addr = target.local_addr().unwrap().to_string();
    assert!(
        stdout.contains(&target_addr),
        "--check names the target {target_addr}:\n{stdout}"
    );
    match target.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("--check dialled the target (from {peer})"),
        Err(e) => panic!("accept on the target: {e}"),
    }
}

#[test]
fn check_rejects_an_unknown_key_with_line_and_suggestion() {
    let dir = TempDir::new("check-typo");
    let path = dir.path().join("typo.toml");
    fs::write(
        &path,
        "listen_port = 40001\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         \n\
         tcp_targte = [\"127.0.0.1:41000\"]\n",
    )
    .unwrap();

    let out = check(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let want = format!(
        "{}:4:1: unknown key `tcp_targte` in top level; did you mean `tcp_target`?",
        path.display()
    );
    assert!(stderr.contains(&want), "expected `{want}` in:\n{stderr}");
}

#[test]
fn check_rejects_port_zero() {
    let dir = TempDir::new("check-port0");
    let path = dir.path().join("port0.toml");
    fs::write(
        &path,
        "listen_port = 0\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         tcp_target = [\"127.0.0.1:41000\"]\n",
    )
    .unwrap();

    let out = check(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let want = format!("{}:1:", path.display());
    assert!(
        stderr.contains(&want),
        "a diagnostic at `{want}` in:\n{stderr}"
    );
}

fn check_reference(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(name);
    assert!(path.exists(), "fixture {} is missing", path.display());
    let out = check(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--check {name}\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !out.stdout.is_empty(),
        "--check {name} describes the config"
    );
}

#[test]
fn check_accepts_reference_rpxy_l4_example() {
    check_reference("rpxy-l4.config.example.toml");
}

#[test]
fn check_accepts_reference_rpxy_l4_spec() {
    check_reference("rpxy-l4.config.spec.toml");
}

#[test]
fn check_accepts_reference_rpxy_example() {
    check_reference("rpxy.config-example.toml");
}

#[test]
fn version_flag_prints_the_version() {
    for flag in ["-V", "--version"] {
        let out = run_sluice(&[flag], CHECK_TIMEOUT);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}: {stdout}");
        assert!(
            stdout.contains(env!("CARGO_PKG_VERSION")),
            "{flag} prints {}: {stdout:?}",
            env!("CARGO_PKG_VERSION")
        );
    }
}

#[test]
fn unknown_flag_is_an_error() {
    let out = run_sluice(&["--no-such-flag"], CHECK_TIMEOUT);
    assert!(!out.status.success(), "exit status {}", out.status);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("no-such-flag"),
        "the error names the flag: {all}"
    );
}

/// Under a tiny open-file limit, sluice refuses to start with a line that says why: it
/// neither aborts half-way (async-io's reactor panics when it cannot make its epoll set)
/// nor runs with every accept failing. With enough descriptors it serves.
#[test]
fn a_tiny_open_file_limit_is_refused_plainly_and_a_sufficient_one_serves() {
    let backend = TcpBackend::echo("A");
    let port = free_port();
    let dir = TempDir::new("nofile");
    let config = dir.path().join("sluice.toml");
    fs::write(&config, tcp_config(port, &[backend.addr()], "none", "")).unwrap();
    let run = |limit: u32| {
        std::process::Command::new("prlimit")
            .arg(format!("--nofile={limit}:{limit}"))
            .arg(sluice_bin())
            .arg("-c")
            .arg(&config)
            .env("SLUICE_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux)")
    };
    for limit in [5, 6, 8, 16, 32, 63] {
        let out = run(limit).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "limit {limit}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the open file limit is {limit}; sluice needs at least 64"
            )),
            "limit {limit}: {stderr}"
        );
    }
    let mut child = run(64);
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(stderr) {
        let line = line.unwrap();
        let ready = line.contains("ready:");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("ready:")),
        "{seen:#?}"
    );
    let (_c, name) = hello(local(port));
    assert_eq!(name, "A");
    child.kill().unwrap();
    child.wait().unwrap();
}
