//! Fuzz the leaf certificate DER walk (subjectAltName DNS names and notAfter) with the
//! invariants of `fuzz_leaf_facts`: no panic, a cut certificate is never one, the bytes after
//! it change nothing, names are lower-cased, notAfter is a four-digit year.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::tls::certs::fuzz_leaf_facts;

fuzz_target!(|data: &[u8]| fuzz_leaf_facts(data));
