//! Fuzz the PROXY protocol parser with the invariants of `check_invariants`: no panic, a
//! `Done` header lies within the input and `MAX_HEADER`, decisions are final, and a `Tcp`
//! header re-encoded in its version parses back to the same addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::l4::proxy_protocol::check_invariants;

fuzz_target!(|data: &[u8]| check_invariants(data));
