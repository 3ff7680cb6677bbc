//! Fuzz the Socks5 probe with the invariants of `check_tcp_probe`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::plan::Protocol;
use sluice::probe::{self, check_tcp_probe};

fuzz_target!(|data: &[u8]| check_tcp_probe(Protocol::Socks5, probe::socks::probe_v5, data));
