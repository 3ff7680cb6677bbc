//! TLS: the post-quantum key exchange group and crypto provider, certificate and key files,
//! the server side (SNI → app certificate, mTLS, tickets) and the upstream client side.

pub mod certs;
pub mod client;
pub mod pq;
pub mod server;
