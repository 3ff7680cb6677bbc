//! Fuzz the HTTP/1.1 request parser with the invariants of `check_request_invariants`: no
//! panic, `consumed` within the input, a decision on a prefix is final, a parsed head
//! re-encoded parses to an equal head, and the body after it decodes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::http::h1::check_request_invariants;

fuzz_target!(|data: &[u8]| check_request_invariants(data));
