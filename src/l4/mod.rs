//! The L4 half: TCP and UDP listeners that forward to targets chosen per route.

pub mod flows;
pub mod mux;
pub mod proxy_protocol;
pub mod relay;
pub mod tcp;
pub mod udp;
