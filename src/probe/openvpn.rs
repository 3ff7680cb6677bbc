//! openvpn probe (stub, being written).

use super::Probe;

pub fn probe_tcp(_prefix: &[u8]) -> Probe {
    Probe::NoMatch
}

pub fn probe_udp(_datagrams: &[&[u8]]) -> Probe {
    Probe::NoMatch
}
