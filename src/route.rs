//! Choosing the protocol rule for what a probe detected. Precedence, most specific first:
//! SNI+ALPN > SNI > ALPN > protocol only > (no rule: the default target). Among SNI rules an
//! exact name beats a wildcard and a longer wildcard beats a shorter one; remaining ties go to
//! the rule written first. No IO.

use crate::plan::ProtocolRoute;
use crate::probe::Detected;

/// How well a rule's server name matched, higher is more specific.
fn sni_rank(patterns: &[String], sni: Option<&str>) -> Option<usize> {
    let sni = sni?;
    patterns
        .iter()
        .filter_map(|p| match p.strip_prefix("*.") {
            // `*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com`.
            Some(suffix) => {
                let covered = sni.len() > suffix.len() + 1
                    && sni.ends_with(suffix)
                    && sni.as_bytes().get(sni.len() - suffix.len() - 1) == Some(&b'.');
                covered.then_some(suffix.len())
            }
            None => (p == sni).then_some(usize::MAX),
        })
        .max()
}

/// The rule `detected` takes, if any.
pub fn select<'a>(rules: &'a [ProtocolRoute], detected: &Detected) -> Option<&'a ProtocolRoute> {
    let mut best: Option<((u8, usize), &ProtocolRoute)> = None;
    for rule in rules.iter().filter(|r| r.protocol == detected.protocol) {
        let sni = if rule.server_names.is_empty() {
            None
        } else {
            match sni_rank(&rule.server_names, detected.sni.as_deref()) {
                Some(rank) => Some(rank),
                None => continue,
            }
        };
        let alpn = if rule.alpn.is_empty() {
            false
        } else if rule.alpn.iter().any(|a| detected.alpn.contains(a)) {
            true
        } else {
            continue;
        };
        let class = match (sni.is_some(), alpn) {
            (true, true) => 4,
            (true, false) => 3,
            (false, true) => 2,
            (false, false) => 1,
        };
        let score = (class, sni.unwrap_or(0));
        // Strictly greater: the first rule written wins a tie.
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, rule));
        }
    }
    best.map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Balance, Protocol, Route};

    fn rule(name: &str, protocol: Protocol, sni: &[&str], alpn: &[&str]) -> ProtocolRoute {
        ProtocolRoute {
            protocol,
            route: Route {
                name: name.into(),
                targets: vec![],
                balance: Balance::None,
                idle_lifetime: None,
                send_proxy: None,
            },
            server_names: sni.iter().map(|s| s.to_string()).collect(),
            alpn: alpn.iter().map(|s| s.to_string()).collect(),
            ech: false,
        }
    }

    fn tls(sni: Option<&str>, alpn: &[&str]) -> Detected {
        Detected {
            protocol: Protocol::Tls,
            sni: sni.map(str::to_string),
            alpn: alpn.iter().map(|s| s.to_string()).collect(),
            ech: false,
        }
    }

    fn pick<'a>(rules: &'a [ProtocolRoute], d: &Detected) -> Option<&'a str> {
        select(rules, d).map(|r| r.route.name.as_str())
    }

    #[test]
    fn precedence_sni_alpn_then_sni_then_alpn_then_protocol() {
        let rules = [
            rule("proto", Protocol::Tls, &[], &[]),
            rule("alpn", Protocol::Tls, &[], &["h2"]),
            rule("sni", Protocol::Tls, &["a.example.com"], &[]),
            rule("both", Protocol::Tls, &["a.example.com"], &["h2"]),
        ];
        assert_eq!(
            pick(&rules, &tls(Some("a.example.com"), &["h2", "http/1.1"])),
            Some("both")
        );
        assert_eq!(
            pick(&rules, &tls(Some("a.example.com"), &["http/1.1"])),
            Some("sni")
        );
        assert_eq!(
            pick(&rules, &tls(Some("b.example.com"), &["h2"])),
            Some("alpn")
        );
        assert_eq!(
            pick(&rules, &tls(Some("b.example.com"), &[])),
            Some("proto")
        );
        assert_eq!(pick(&rules, &tls(None, &[])), Some("proto"));
    }

    #[test]
    fn no_rule_of_the_protocol_means_default() {
        let rules = [
            rule("ssh", Protocol::Ssh, &[], &[]),
            rule("sni", Protocol::Tls, &["a.example.com"], &[]),
        ];
        assert_eq!(pick(&rules, &tls(Some("b.example.com"), &[])), None);
        assert_eq!(pick(&rules, &tls(None, &[])), None);
        assert_eq!(pick(&rules, &Detected::bare(Protocol::Ssh)), Some("ssh"));
    }

    #[test]
    fn wildcards_cover_subdomains_only_and_exact_wins() {
        let rules = [
            rule("wild", Protocol::Tls, &["*.example.com"], &[]),
            rule("deeper", Protocol::Tls, &["*.lab.example.com"], &[]),
            rule("exact", Protocol::Tls, &["git.lab.example.com"], &[]),
        ];
        assert_eq!(
            pick(&rules, &tls(Some("www.example.com"), &[])),
            Some("wild")
        );
        assert_eq!(
            pick(&rules, &tls(Some("x.y.example.com"), &[])),
            Some("wild")
        );
        assert_eq!(
            pick(&rules, &tls(Some("box.lab.example.com"), &[])),
            Some("deeper")
        );
        assert_eq!(
            pick(&rules, &tls(Some("git.lab.example.com"), &[])),
            Some("exact")
        );
        assert_eq!(pick(&rules, &tls(Some("example.com"), &[])), None);
        assert_eq!(pick(&rules, &tls(Some("badexample.com"), &[])), None);
    }

    #[test]
    fn first_written_rule_wins_a_tie() {
        let rules = [
            rule("one", Protocol::Tls, &["a.example.com"], &[]),
            rule(
                "two",
                Protocol::Tls,
                &["a.example.com", "b.example.com"],
                &[],
            ),
        ];
        assert_eq!(pick(&rules, &tls(Some("a.example.com"), &[])), Some("one"));
        assert_eq!(pick(&rules, &tls(Some("b.example.com"), &[])), Some("two"));
    }

    #[test]
    fn alpn_rule_needs_an_offered_protocol() {
        let rules = [
            rule("h2", Protocol::Tls, &[], &["h2"]),
            rule("h1", Protocol::Tls, &[], &["http/1.1"]),
        ];
        assert_eq!(pick(&rules, &tls(None, &["http/1.1"])), Some("h1"));
        assert_eq!(pick(&rules, &tls(None, &["h2", "http/1.1"])), Some("h2"));
        assert_eq!(pick(&rules, &tls(None, &["dot"])), None);
    }
}
