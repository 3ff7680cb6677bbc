//! sluice: one small static binary that is an L4 TCP/UDP reverse proxy with a protocol
//! multiplexer and (in coming versions) an HTTP reverse proxy with TLS termination, both on
//! one port. The library holds everything; `main.rs` is the command line. Sans-IO modules
//! (config, plan, balance, wire, l4::flows) take bytes and values; the rest does IO.
// `deny` rather than `forbid` so that src/sys.rs alone can allow it.
#![deny(unsafe_code)]

pub mod balance;
pub mod config;
pub mod dns;
pub mod edge;
pub mod fds;
pub mod http;
pub mod l4;
pub mod latch;
pub mod logging;
pub mod plan;
pub mod probe;
pub mod reload;
pub mod route;
pub mod runloop;
pub mod spare;
pub mod state;
pub mod status;
pub mod sys;
pub mod timer;
pub mod tls;
pub mod wire;
