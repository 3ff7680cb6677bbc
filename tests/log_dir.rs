//! `--log-dir` on the real binary: access lines in `access.log`, everything else in
//! `sluice.log`, and SIGUSR1 reopening the files after logrotate renamed them.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn log_dir_splits_access_log_and_reopens_it_on_sigusr1() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let logs = TempDir::new("logs");
    let dir = logs.path().to_str().expect("utf-8 temp path").to_owned();
    let sluice = Sluice::spawn(&tcp_config(port, &[a.addr()], "none", ""), &["-l", &dir]);
    let (access, main_log) = (
        logs.path().join("access.log"),
        logs.path().join("sluice.log"),
    );
    wait_for_file_line(&main_log, "ready:", READY_TIMEOUT);

    let (c, _) = hello(local(port));
    let first = c.local_addr().unwrap();
    drop(c);
    let line = wait_for_file_line(&access, &format!("tcp {first} -> "), LOG_TIMEOUT);
    assert!(line.contains("end="), "access line: {line}");
    let main_text = fs::read_to_string(&main_log).unwrap();
    assert!(
        !main_text.lines().any(|l| is_access_line(l, "tcp", first)),
        "access lines stay out of sluice.log:\n{main_text}"
    );

    // logrotate: rename, then SIGUSR1 makes sluice reopen (and so recreate) access.log.
    let rotated = logs.path().join("access.log.1");
    fs::rename(&access, &rotated).unwrap();
    sluice.signal("USR1");
    let deadline = Instant::now() + LOG_TIMEOUT;
    while !access.exists() {
        assert!(
            Instant::now() < deadline,
            "access.log not recreated within {LOG_TIMEOUT:?} of SIGUSR1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (c, _) = hello(local(port));
    let second = c.local_addr().unwrap();
    drop(c);
    wait_for_file_line(&access, &format!("tcp {second} -> "), LOG_TIMEOUT);
    let old = fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains(&format!("tcp {first} -> ")),
        "rotated file: {old}"
    );
    assert!(
        !old.contains(&format!("tcp {second} -> ")),
        "after SIGUSR1 nothing goes to the renamed file: {old}"
    );
}
