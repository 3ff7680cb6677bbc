//! Choosing a target for a new connection or flow: the order in which a route's targets are
//! tried (first choice, then fail-over). Pure functions of their inputs; no IO, no clock.

use std::net::{IpAddr, SocketAddr};

use crate::plan::{Balance, Target};

/// What a policy may look at besides the target list.
pub struct Pick<'a> {
    pub client: SocketAddr,
    /// A per-route counter for round robin; the caller increments it after each pick.
    pub round: usize,
    /// A random number for `random` (ignored by the other policies).
    pub random: u64,
    /// Open connections per target index (for `least_conn`).
    pub load: &'a dyn Fn(usize) -> usize,
}

/// The order in which to try `targets`: the first is the policy's choice, the rest are the
/// fail-over order. Hash policies use rendezvous hashing, so adding or removing one target
/// only moves the clients that hashed to it, and the same client gets the same target across
/// reloads and restarts (the hash has no per-process seed).
pub fn order(policy: Balance, targets: &[Target], pick: &Pick<'_>) -> Vec<usize> {
    let n = targets.len();
    let rotated = |start: usize| -> Vec<usize> { (0..n).map(|i| (start + i) % n.max(1)).collect() };
    match policy {
        _ if n == 0 => Vec::new(),
        Balance::None => (0..n).collect(),
        Balance::RoundRobin => rotated(pick.round % n),
        Balance::Random => rotated((pick.random % n as u64) as usize),
        Balance::SourceIp => by_score(targets, |t| score(&ip_key(pick.client.ip()), t)),
        Balance::SourceSocket => {
            let mut key = ip_key(pick.client.ip());
            key.extend_from_slice(&pick.client.port().to_be_bytes());
            by_score(targets, |t| score(&key, t))
        }
        Balance::LeastConn => {
            let mut order = rotated(pick.round % n);
            // Stable sort: ties keep the round-robin rotation, so equal loads still spread.
            order.sort_by_key(|&i| (pick.load)(i));
            order
        }
    }
}

fn ip_key(ip: IpAddr) -> Vec<u8> {
    // An IPv4-mapped IPv6 client hashes like its IPv4 address (dual-stack sockets).
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    }
}

fn by_score(targets: &[Target], score: impl Fn(&Target) -> u64) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (score(t), i))
        .collect();
    // Highest score first; the index breaks ties so the order is total and deterministic.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Rendezvous weight of `target` for a client key.
fn score(key: &[u8], target: &Target) -> u64 {
    let mut h = Fnv::new();
    h.write(key);
    h.write(&[0xff]);
    h.write(target.host.as_bytes());
    h.write(&target.port.to_be_bytes());
    mix(h.0)
}

/// FNV-1a, 64 bit: fixed constants, so hashes are identical in every process.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A 64-bit finaliser (splitmix64) so that close inputs give unrelated scores.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: u16) -> Vec<Target> {
        (0..n)
            .map(|i| Target {
                host: format!("10.0.0.{i}"),
                port: 80,
                ip: None,
            })
            .collect()
    }

    fn pick(client: &str, round: usize, random: u64) -> Pick<'static> {
        Pick {
            client: client.parse().unwrap(),
            round,
            random,
            load: &|_| 0,
        }
    }

    #[test]
    fn none_is_first_then_failover_in_file_order() {
        assert_eq!(
            order(Balance::None, &targets(3), &pick("1.2.3.4:5", 7, 9)),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn round_robin_rotates_with_the_counter() {
        let t = targets(3);
        let firsts: Vec<usize> = (0..6)
            .map(|r| order(Balance::RoundRobin, &t, &pick("1.2.3.4:5", r, 0))[0])
            .collect();
        assert_eq!(firsts, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(
            order(Balance::RoundRobin, &t, &pick("1.2.3.4:5", 1, 0)),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn random_uses_the_given_number() {
        let t = targets(4);
        assert_eq!(order(Balance::Random, &t, &pick("1.2.3.4:5", 0, 6))[0], 2);
    }

    #[test]
    fn source_ip_ignores_port_and_is_pinned_across_processes() {
        let t = targets(5);
        let a = order(Balance::SourceIp, &t, &pick("192.0.2.7:1000", 0, 0));
        let b = order(Balance::SourceIp, &t, &pick("192.0.2.7:2000", 3, 99));
        assert_eq!(a, b);
        // Pinned value: if this changes, every deployed client would move on upgrade.
        assert_eq!(mix(1), 0x5692_161d_100b_05e5);
    }

    #[test]
    fn source_ip_spreads_clients_over_targets() {
        let t = targets(4);
        let mut counts = [0usize; 4];
        for i in 0..4000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let p = Pick {
                client: SocketAddr::from((ip, 1)),
                round: 0,
                random: 0,
                load: &|_| 0,
            };
            counts[order(Balance::SourceIp, &t, &p)[0]] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn removing_a_target_only_moves_its_own_clients() {
        let all = targets(4);
        let fewer: Vec<Target> = all.iter().take(3).cloned().collect();
        for i in 0..1000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let p = Pick {
                client: SocketAddr::from((ip, 1)),
                round: 0,
                random: 0,
                load: &|_| 0,
            };
            let before = order(Balance::SourceIp, &all, &p)[0];
            let after = order(Balance::SourceIp, &fewer, &p)[0];
            if before != 3 {
                assert_eq!(before, after, "client {ip} moved needlessly");
            }
        }
    }

    #[test]
    fn source_socket_uses_the_port() {
        let t = targets(8);
        let firsts: std::collections::HashSet<usize> = (1000..1100)
            .map(|port| {
                order(
                    Balance::SourceSocket,
                    &t,
                    &pick(&format!("192.0.2.7:{port}"), 0, 0),
                )[0]
            })
            .collect();
        assert!(firsts.len() > 1);
    }

    #[test]
    fn mapped_ipv6_client_hashes_like_ipv4() {
        let t = targets(5);
        assert_eq!(
            order(Balance::SourceIp, &t, &pick("192.0.2.7:1", 0, 0)),
            order(Balance::SourceIp, &t, &pick("[::ffff:192.0.2.7]:1", 0, 0))
        );
    }

    #[test]
    fn least_conn_prefers_the_idlest_and_rotates_ties() {
        let t = targets(3);
        let load = |i: usize| [5, 1, 3][i];
        let p = Pick {
            client: "1.2.3.4:5".parse().unwrap(),
            round: 0,
            random: 0,
            load: &load,
        };
        assert_eq!(order(Balance::LeastConn, &t, &p), vec![1, 2, 0]);
        let even = |_: usize| 0;
        let p = Pick {
            client: "1.2.3.4:5".parse().unwrap(),
            round: 2,
            random: 0,
            load: &even,
        };
        assert_eq!(order(Balance::LeastConn, &t, &p)[0], 2);
    }

    #[test]
    fn empty_target_list_gives_nothing() {
        assert!(order(Balance::SourceIp, &[], &pick("1.2.3.4:5", 0, 0)).is_empty());
    }
}
