//! Fuzz the Dns probe with the invariants of `check_udp_probe`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::plan::Protocol;
use sluice::probe::{self, check_udp_probe};

fuzz_target!(|data: &[u8]| check_udp_probe(Protocol::Dns, probe::dns::probe, data));
