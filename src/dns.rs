//! Target name resolution: the system resolver on the blocking pool (never on the event
//! loop), behind a cache bounded by `dns_cache_min_ttl`/`dns_cache_max_ttl`. The cache itself
//! is sans-IO (`DnsCache` takes `now`); `Resolver` does the lookups.
//!
//! getaddrinfo does not report record TTLs, so an answer is kept for `dns_cache_min_ttl`
//! (never longer than `dns_cache_max_ttl`). A failed refresh keeps serving the previous answer
//! and retries after [`STALE_RETRY`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::plan::{DnsSettings, Target};

/// How long a stale answer is reused after a failed refresh before trying again.
pub const STALE_RETRY: Duration = Duration::from_secs(5);

struct Entry {
    addrs: Vec<SocketAddr>,
    fresh_until: Instant,
}

/// What the cache knows about a name at some instant.
#[derive(Debug, PartialEq)]
pub enum Cached {
    Fresh(Vec<SocketAddr>),
    /// Known but due for a refresh.
    Stale,
    Unknown,
}

pub struct DnsCache {
    entries: HashMap<(String, u16), Entry>,
    settings: DnsSettings,
}

impl DnsCache {
    pub fn new(settings: DnsSettings) -> Self {
        DnsCache {
            entries: HashMap::new(),
            settings,
        }
    }

    pub fn set_settings(&mut self, settings: DnsSettings) {
        self.settings = settings;
    }

    pub fn get(&self, host: &str, port: u16, now: Instant) -> Cached {
        match self.entries.get(&(host.to_owned(), port)) {
            Some(e) if e.fresh_until > now => Cached::Fresh(e.addrs.clone()),
            Some(_) => Cached::Stale,
            None => Cached::Unknown,
        }
    }

    /// Record a lookup's outcome; returns what to use. A failure with an earlier answer on
    /// file returns that answer and keeps it for [`STALE_RETRY`].
    ///
    /// # Errors
    /// The lookup failed and the name never resolved before.
    pub fn store(
        &mut self,
        host: &str,
        port: u16,
        now: Instant,
        result: io::Result<Vec<SocketAddr>>,
    ) -> io::Result<Vec<SocketAddr>> {
        let key = (host.to_owned(), port);
        let result = result.and_then(|a| {
            if a.is_empty() {
                Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"))
            } else {
                Ok(a)
            }
        });
        match result {
            Ok(addrs) => {
                let ttl = self.settings.min_ttl.min(self.settings.max_ttl);
                self.entries.insert(
                    key,
                    Entry {
                        addrs: addrs.clone(),
                        fresh_until: now + ttl,
                    },
                );
                Ok(addrs)
            }
            Err(e) => match self.entries.get_mut(&key) {
                Some(entry) => {
                    log::warn!("dns: refreshing {host} failed ({e}); keeping the previous answer");
                    entry.fresh_until = now + STALE_RETRY.min(self.settings.max_ttl);
                    Ok(entry.addrs.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// Resolves targets through [`DnsCache`] and the blocking pool.
pub struct Resolver {
    cache: RefCell<DnsCache>,
}

impl Resolver {
    pub fn new(settings: DnsSettings) -> Self {
        Resolver {
            cache: RefCell::new(DnsCache::new(settings)),
        }
    }

    pub fn set_settings(&self, settings: DnsSettings) {
        self.cache.borrow_mut().set_settings(settings);
    }

    /// The addresses of `target`, from the cache when fresh.
    ///
    /// # Errors
    /// The name does not resolve and never did.
    pub async fn resolve(&self, target: &Target) -> io::Result<Vec<SocketAddr>> {
        if let Some(ip) = target.ip {
            return Ok(vec![SocketAddr::new(ip, target.port)]);
        }
        if let Cached::Fresh(addrs) =
            self.cache
                .borrow()
                .get(&target.host, target.port, Instant::now())
        {
            return Ok(addrs);
        }
        let query = (target.host.clone(), target.port);
        let result = smol::unblock(move || query.to_socket_addrs().map(Iterator::collect)).await;
        self.cache
            .borrow_mut()
            .store(&target.host, target.port, Instant::now(), result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min: u64, max: u64) -> DnsSettings {
        DnsSettings {
            min_ttl: Duration::from_secs(min),
            max_ttl: Duration::from_secs(max),
        }
    }
    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn answer_is_fresh_for_min_ttl_then_stale() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(settings(30, 3600));
        assert_eq!(c.get("db", 5432, t0), Cached::Unknown);
        c.store("db", 5432, t0, Ok(vec![addr("10.0.0.1:5432")]))
            .unwrap();
        assert_eq!(
            c.get("db", 5432, t0 + Duration::from_secs(29)),
            Cached::Fresh(vec![addr("10.0.0.1:5432")])
        );
        assert_eq!(
            c.get("db", 5432, t0 + Duration::from_secs(30)),
            Cached::Stale
        );
        assert_eq!(c.get("db", 80, t0), Cached::Unknown);
    }

    #[test]
    fn max_ttl_caps_the_lifetime() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(settings(60, 10));
        c.store("db", 1, t0, Ok(vec![addr("10.0.0.1:1")])).unwrap();
        assert_eq!(c.get("db", 1, t0 + Duration::from_secs(10)), Cached::Stale);
    }

    #[test]
    fn failed_refresh_keeps_the_stale_answer() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(settings(30, 3600));
        c.store("db", 1, t0, Ok(vec![addr("10.0.0.1:1")])).unwrap();
        let later = t0 + Duration::from_secs(31);
        let got = c
            .store("db", 1, later, Err(io::Error::other("SERVFAIL")))
            .unwrap();
        assert_eq!(got, vec![addr("10.0.0.1:1")]);
        assert!(matches!(
            c.get("db", 1, later + STALE_RETRY - Duration::from_millis(1)),
            Cached::Fresh(_)
        ));
        assert_eq!(c.get("db", 1, later + STALE_RETRY), Cached::Stale);
    }

    #[test]
    fn a_name_that_never_resolved_fails() {
        let mut c = DnsCache::new(settings(30, 3600));
        assert!(
            c.store("nx", 1, Instant::now(), Err(io::Error::other("NXDOMAIN")))
                .is_err()
        );
        assert!(c.store("empty", 1, Instant::now(), Ok(vec![])).is_err());
    }

    #[test]
    fn resolver_uses_literals_without_lookup_and_fails_unknown_names() {
        let r = Resolver::new(settings(30, 3600));
        let lit = Target {
            host: "127.0.0.1".into(),
            port: 9,
            ip: Some("127.0.0.1".parse().unwrap()),
        };
        assert_eq!(
            smol::block_on(r.resolve(&lit)).unwrap(),
            vec![addr("127.0.0.1:9")]
        );
        let localhost = Target {
            host: "localhost".into(),
            port: 9,
            ip: None,
        };
        assert!(!smol::block_on(r.resolve(&localhost)).unwrap().is_empty());
        let bad = Target {
            host: "name.invalid".into(),
            port: 9,
            ip: None,
        };
        assert!(smol::block_on(r.resolve(&bad)).is_err());
    }
}
