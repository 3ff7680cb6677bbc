//! Fuzz the HTTP/1.1 response parser with the invariants of `check_response_invariants`
//! (as for requests, for a response to GET and to HEAD).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::http::h1::check_response_invariants;

fuzz_target!(|data: &[u8]| check_response_invariants(data));
