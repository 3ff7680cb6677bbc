//! The HTTP engine: hand-written HTTP/1.1 codec (sans-IO), routing, forwarding headers,
//! upstream selection and health, sticky cookies, and the connection drivers that do IO.

pub mod access;
pub mod cdn_ranges;
pub mod conn;
pub mod engine;
pub mod forward;
pub mod h1;
pub mod health;
pub mod local;
pub mod proxy;
pub mod routing;
pub mod select;
pub mod server;
pub mod status;
pub mod sticky;
pub mod upgrade;
pub mod upstream_io;
