//! Fuzz the Rdp probe with the invariants of `check_tcp_probe`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::plan::Protocol;
use sluice::probe::{self, check_tcp_probe};

fuzz_target!(|data: &[u8]| check_tcp_probe(Protocol::Rdp, probe::rdp::probe, data));
