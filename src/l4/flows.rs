//! The UDP flow table: flows keyed by (client, local address), per-source-IP and global caps,
//! and idle expiry through a deadline heap (a datagram only stamps its flow; nothing scans the
//! whole table). Sans-IO: the caller passes `now`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A flow's identity: who sent, and to which of our addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub client: SocketAddr,
    pub local: SocketAddr,
}

/// Why a new flow was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `udp_max_connections` flows exist already.
    TableFull,
    /// `udp_max_connections_per_ip` flows from this source IP exist already.
    SourceFull,
}

struct Flow<V> {
    value: V,
    created: Instant,
    last_seen: Instant,
    lifetime: Duration,
    /// Matches the one live heap entry of this flow; older entries are skipped.
    generation: u64,
}

/// A flow removed by [`FlowTable::expire`].
pub struct Expired<V> {
    pub key: FlowKey,
    pub value: V,
    pub created: Instant,
}

pub struct FlowTable<V> {
    flows: HashMap<FlowKey, Flow<V>>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, FlowKey)>>,
    per_ip: HashMap<IpAddr, usize>,
    max_flows: usize,
    max_per_ip: usize,
    next_generation: u64,
}

impl<V> FlowTable<V> {
    pub fn new(max_flows: usize, max_per_ip: usize) -> Self {
        FlowTable {
            flows: HashMap::new(),
            deadlines: BinaryHeap::new(),
            per_ip: HashMap::new(),
            max_flows,
            max_per_ip,
            next_generation: 0,
        }
    }

    /// New caps apply to new flows; existing flows are never evicted by a lower cap.
    pub fn set_limits(&mut self, max_flows: usize, max_per_ip: usize) {
        self.max_flows = max_flows;
        self.max_per_ip = max_per_ip;
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flow's value, and its idle clock restarted at `now`.
    pub fn touch(&mut self, key: &FlowKey, now: Instant) -> Option<&mut V> {
        let flow = self.flows.get_mut(key)?;
        flow.last_seen = now;
        Some(&mut flow.value)
    }

    /// Whether a new flow from `client` would be admitted.
    pub fn admit(&self, client: IpAddr) -> Result<(), Refusal> {
        if self.flows.len() >= self.max_flows {
            return Err(Refusal::TableFull);
        }
        if self.per_ip.get(&client).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(Refusal::SourceFull);
        }
        Ok(())
    }

    /// Add a flow that expires after `lifetime` without traffic.
    ///
    /// # Errors
    /// A cap is reached (see [`FlowTable::admit`]); the value is handed back.
    pub fn insert(
        &mut self,
        key: FlowKey,
        value: V,
        now: Instant,
        lifetime: Duration,
    ) -> Result<(), (Refusal, V)> {
        if let Err(r) = self.admit(key.client.ip()) {
            return Err((r, value));
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let old = self.flows.insert(
            key,
            Flow {
                value,
                created: now,
                last_seen: now,
                lifetime,
                generation,
            },
        );
        if old.is_none() {
            *self.per_ip.entry(key.client.ip()).or_insert(0) += 1;
        }
        self.deadlines
            .push(Reverse((now + lifetime, generation, key)));
        Ok(())
    }

    /// Give a flow a new idle lifetime (e.g. once its protocol rule is known); it applies
    /// from the flow's last activity.
    pub fn set_lifetime(&mut self, key: &FlowKey, lifetime: Duration) {
        if let Some(flow) = self.flows.get_mut(key) {
            flow.lifetime = lifetime;
            // The current heap entry may now be late; a fresh one with the same generation
            // keeps expiry exact (the later of the two is skipped as a duplicate check).
            self.deadlines
                .push(Reverse((flow.last_seen + lifetime, flow.generation, *key)));
        }
    }

    /// Remove a flow now (e.g. its upstream socket failed).
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let flow = self.flows.remove(key)?;
        self.forget_source(key.client.ip());
        Some(flow.value)
    }

    /// When [`FlowTable::expire`] next has something to check.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Remove flows idle for their lifetime at `now`. `activity` reports traffic stamped
    /// outside the table (replies from upstream), so a flow busy in either direction lives.
    pub fn expire(
        &mut self,
        now: Instant,
        activity: impl Fn(&V) -> Option<Instant>,
    ) -> Vec<Expired<V>> {
        let mut out = Vec::new();
        while let Some(&Reverse((at, generation, key))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            if flow.generation != generation {
                continue;
            }
            let last = activity(&flow.value).map_or(flow.last_seen, |a| a.max(flow.last_seen));
            let due = last + flow.lifetime;
            if due > now {
                self.deadlines.push(Reverse((due, generation, key)));
                continue;
            }
            if let Some(flow) = self.flows.remove(&key) {
                self.forget_source(key.client.ip());
                out.push(Expired {
                    key,
                    value: flow.value,
                    created: flow.created,
                });
            }
        }
        out
    }

    /// Every flow, for shutdown.
    pub fn drain(&mut self) -> Vec<Expired<V>> {
        self.deadlines.clear();
        self.per_ip.clear();
        self.flows
            .drain()
            .map(|(key, f)| Expired {
                key,
                value: f.value,
                created: f.created,
            })
            .collect()
    }

    fn forget_source(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(client: &str) -> FlowKey {
        FlowKey {
            client: client.parse().unwrap(),
            local: "127.0.0.1:443".parse().unwrap(),
        }
    }
    const LIFE: Duration = Duration::from_secs(30);

    #[test]
    fn idle_flow_expires_at_its_lifetime_not_before() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10, 10);
        t.insert(key("10.0.0.1:1"), "a", t0, LIFE).unwrap();
        assert!(
            t.expire(t0 + LIFE - Duration::from_millis(1), |_| None)
                .is_empty()
        );
        assert_eq!(t.next_deadline(), Some(t0 + LIFE));
        let gone = t.expire(t0 + LIFE, |_| None);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].value, "a");
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn traffic_either_way_keeps_a_flow_alive() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10, 10);
        t.insert(key("10.0.0.1:1"), t0 + Duration::from_secs(50), t0, LIFE)
            .unwrap();
        t.insert(key("10.0.0.2:1"), t0, t0, LIFE).unwrap();
        t.touch(&key("10.0.0.2:1"), t0 + Duration::from_secs(20));
        // Flow 1 saw a reply at t0+50 (value = its reply stamp); flow 2 a datagram at t0+20.
        let gone = t.expire(t0 + LIFE, |v| Some(*v));
        assert!(gone.is_empty());
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(50)));
        let gone = t.expire(t0 + Duration::from_secs(50), |v| Some(*v));
        assert_eq!(
            gone.iter().map(|e| e.key).collect::<Vec<_>>(),
            vec![key("10.0.0.2:1")]
        );
        let gone = t.expire(t0 + Duration::from_secs(80), |v| Some(*v));
        assert_eq!(gone.len(), 1);
    }

    #[test]
    fn shorter_lifetime_set_later_expires_earlier() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10, 10);
        t.insert(key("10.0.0.1:1"), (), t0, LIFE).unwrap();
        t.set_lifetime(&key("10.0.0.1:1"), Duration::from_secs(5));
        assert_eq!(t.expire(t0 + Duration::from_secs(5), |_| None).len(), 1);
        // The stale 30 s entry finds nothing and does no harm.
        assert!(t.expire(t0 + LIFE, |_| None).is_empty());
    }

    #[test]
    fn caps_global_and_per_source() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(3, 2);
        t.insert(key("10.0.0.1:1"), (), t0, LIFE).unwrap();
        t.insert(key("10.0.0.1:2"), (), t0, LIFE).unwrap();
        assert_eq!(
            t.insert(key("10.0.0.1:3"), (), t0, LIFE).unwrap_err().0,
            Refusal::SourceFull
        );
        t.insert(key("10.0.0.2:1"), (), t0, LIFE).unwrap();
        assert_eq!(
            t.insert(key("10.0.0.3:1"), (), t0, LIFE).unwrap_err().0,
            Refusal::TableFull
        );
        t.remove(&key("10.0.0.1:1"));
        t.insert(key("10.0.0.1:3"), (), t0, LIFE).unwrap();
    }

    #[test]
    fn expired_flows_release_their_source_slot() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10, 1);
        t.insert(key("10.0.0.1:1"), (), t0, LIFE).unwrap();
        assert_eq!(
            t.admit("10.0.0.1".parse().unwrap()),
            Err(Refusal::SourceFull)
        );
        t.expire(t0 + LIFE, |_| None);
        assert_eq!(t.admit("10.0.0.1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn removed_then_reinserted_flow_is_not_expired_by_the_old_deadline() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10, 10);
        t.insert(key("10.0.0.1:1"), 1, t0, LIFE).unwrap();
        t.remove(&key("10.0.0.1:1"));
        t.insert(key("10.0.0.1:1"), 2, t0 + Duration::from_secs(10), LIFE)
            .unwrap();
        assert!(t.expire(t0 + LIFE, |_| None).is_empty());
        assert_eq!(t.expire(t0 + Duration::from_secs(40), |_| None).len(), 1);
    }

    #[test]
    fn many_flows_expire_in_deadline_order() {
        let t0 = Instant::now();
        let mut t = FlowTable::new(10_000, 10_000);
        for i in 0..1000u16 {
            let k = FlowKey {
                client: SocketAddr::from(([10, 0, 0, 1], i + 1)),
                local: "127.0.0.1:443".parse().unwrap(),
            };
            t.insert(k, i, t0 + Duration::from_millis(u64::from(i)), LIFE)
                .unwrap();
        }
        let gone = t.expire(t0 + LIFE + Duration::from_millis(499), |_| None);
        assert_eq!(gone.len(), 500);
        assert!(gone.iter().all(|e| e.value < 500));
        assert_eq!(t.len(), 500);
    }
}
