//! Per-probe cost on captured client bytes: `cargo bench --bench probe_cost`. Prints ns per
//! call for each TLS capture through the TLS probe and through the whole TCP probe table, and
//! for each QUIC capture through the QUIC probe (which decrypts the Initial).

use std::hint::black_box;
use std::time::Instant;

use sluice::plan::Protocol;
use sluice::probe::{self, Probe};

const ITERATIONS: u32 = 20_000;

fn per_call(f: impl Fn() -> Probe) -> f64 {
    for _ in 0..ITERATIONS / 10 {
        let _ = black_box(f());
    }
    let t0 = Instant::now();
    for _ in 0..ITERATIONS {
        let _ = black_box(f());
    }
    t0.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/probe/testdata");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("testdata")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    println!(
        "{:<40} {:>8} {:>14} {:>12}",
        "capture", "bytes", "probe", "ns/call"
    );
    for path in files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if name.starts_with("tls_") && name.ends_with(".bin") {
            let own = per_call(|| probe::tls::probe(&data));
            let table = per_call(|| probe::probe_tcp(&data, |_| true));
            println!("{name:<40} {:>8} {:>14} {own:>12.0}", data.len(), "tls");
            println!(
                "{name:<40} {:>8} {:>14} {table:>12.0}",
                data.len(),
                "all tcp"
            );
        } else if name.starts_with("quic_") && name.ends_with(".bin") {
            let datagrams = probe::split_datagrams(&data);
            if !matches!(probe::quic::probe(&datagrams), Probe::Match(_)) {
                continue;
            }
            let own = per_call(|| probe::quic::probe(&datagrams));
            let table =
                per_call(|| probe::probe_udp(&datagrams, |p| p == Protocol::Quic || !p.has_sni()));
            println!("{name:<40} {:>8} {:>14} {own:>12.0}", data.len(), "quic");
            println!(
                "{name:<40} {:>8} {:>14} {table:>12.0}",
                data.len(),
                "all udp"
            );
        }
    }
}
