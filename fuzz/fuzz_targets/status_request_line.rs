//! Fuzz the status page's request-line parser: it must never panic, and what it returns
//! must be slices of its input that satisfy its own rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::status::{RequestLine, parse_request_line};

fuzz_target!(|data: &[u8]| {
    if let Ok(RequestLine { method, path }) = parse_request_line(data) {
        assert!(!method.is_empty() && method.iter().all(u8::is_ascii_uppercase));
        assert!(!path.is_empty() && path.iter().all(u8::is_ascii_graphic));
        assert!(method.len() + path.len() + 2 <= data.len());
    }
});
