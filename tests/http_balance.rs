//! HTTP load-balancing policies through the real binary, judged by the `x-backend` of each
//! response: none, round_robin, random, sticky (cookie attributes, stickiness, a tampered or
//! garbage cookie not trusted), and primary_backup following the health check.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

fn pair() -> (HttpBackend, HttpBackend, [SocketAddr; 2]) {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let addrs = [a.addr(), b.addr()];
    (a, b, addrs)
}

fn counts(names: &[String]) -> HashMap<&str, usize> {
    let mut c = HashMap::new();
    for n in names {
        *c.entry(n.as_str()).or_insert(0) += 1;
    }
    c
}

/// Backend names of `n` sequential requests, each on its own client connection.
fn names_of(port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let r = get(local(port), APP1, &format!("/lb/{i}"));
            assert_eq!(r.status(), 200, "{r:?}");
            r.backend()
        })
        .collect()
}

#[test]
fn balance_none_always_uses_the_first_upstream() {
    let (_a, b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &addrs, "none", ""));

    let names = names_of(port, 10);
    assert!(names.iter().all(|n| n == "A"), "{names:?}");
    assert_eq!(b.request_count(), 0);
}

#[test]
fn balance_round_robin_alternates_evenly() {
    let (_a, _b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &addrs, "round_robin", ""));

    let names = names_of(port, 20);
    let c = counts(&names);
    assert_eq!(
        (c.get("A"), c.get("B")),
        (Some(&10), Some(&10)),
        "{names:?}"
    );
    assert!(
        names.windows(2).all(|w| w[0] != w[1]),
        "strict alternation: {names:?}"
    );
}

#[test]
fn balance_round_robin_applies_per_request_on_a_keep_alive_connection() {
    let (_a, _b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &addrs, "round_robin", ""));

    let mut conn = HttpConn::connect(local(port));
    let names: Vec<String> = (0..10).map(|_| conn.get("/same-conn").backend()).collect();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
}

#[test]
fn balance_random_uses_both_upstreams() {
    let (_a, _b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &addrs, "random", ""));

    let mut conn = HttpConn::connect(local(port));
    let names: Vec<String> = (0..100).map(|_| conn.get("/rnd").backend()).collect();
    let c = counts(&names);
    // Each side has probability 2^-100 of being missed by a fair coin.
    assert!(c.contains_key("A") && c.contains_key("B"), "{c:?}");
    assert!(c["A"] >= 20 && c["B"] >= 20, "roughly even: {c:?}");
}

/// The `sluice_sticky=VALUE` pair of a response's Set-Cookie, checking its attributes.
fn sticky_cookie(r: &Response) -> Option<String> {
    let set = r
        .header_all("set-cookie")
        .into_iter()
        .find(|v| v.trim_start().starts_with("sluice_sticky="))?;
    let mut parts = set.split(';').map(str::trim);
    let pair = parts.next().unwrap().to_owned();
    let attrs: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "HttpOnly: {set}");
    assert!(
        attrs.iter().any(|a| a == "samesite=lax"),
        "SameSite=Lax: {set}"
    );
    assert!(
        pair.len() > "sluice_sticky=".len() + 8,
        "a real value: {set}"
    );
    Some(pair)
}

fn sticky_config(port: u16, addrs: &[SocketAddr]) -> String {
    let top = format!("sticky_cookie_secret = \"{STICKY_SECRET}\"");
    app1_config(port, addrs, "sticky", &top)
}

#[test]
fn balance_sticky_sets_a_cookie_and_keeps_each_client_on_one_upstream() {
    let (_a, _b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&sticky_config(port, &addrs));

    // Collect a cookie for each upstream (fresh clients are balanced over both).
    let mut cookies: HashMap<String, String> = HashMap::new();
    for i in 0..20 {
        let r = get(local(port), APP1, &format!("/first/{i}"));
        assert_eq!(r.status(), 200, "{r:?}");
        let cookie = sticky_cookie(&r)
            .unwrap_or_else(|| panic!("the first response sets sluice_sticky: {r:?}"));
        cookies.entry(r.backend()).or_insert(cookie);
        if cookies.len() == 2 {
            break;
        }
    }
    assert_eq!(
        cookies.len(),
        2,
        "both upstreams handed out cookies: {cookies:?}"
    );

    for (backend, cookie) in &cookies {
        let mut conn = HttpConn::connect(local(port));
        for i in 0..50 {
            let r = conn.request(
                "GET",
                &format!("/stick/{i}"),
                APP1,
                &[("Cookie", cookie)],
                b"",
            );
            assert_eq!(r.status(), 200, "{r:?}");
            assert_eq!(&r.backend(), backend, "request {i} with cookie {cookie}");
        }
    }
    // Also across connections, and with other cookies around it.
    let (backend, cookie) = cookies.iter().next().unwrap();
    for i in 0..10 {
        let mut conn = HttpConn::connect(local(port));
        let header = format!("theme=dark; {cookie}; lang=en");
        let r = conn.request(
            "GET",
            &format!("/again/{i}"),
            APP1,
            &[("Cookie", &header)],
            b"",
        );
        assert_eq!(&r.backend(), backend, "new connection {i}");
    }
}

#[test]
fn balance_sticky_does_not_trust_a_tampered_or_garbage_cookie() {
    let (_a, _b, addrs) = pair();
    let port = free_port();
    let _sluice = Sluice::start(&sticky_config(port, &addrs));

    let r = get(local(port), APP1, "/first");
    let good = sticky_cookie(&r).expect("a sticky cookie");
    // Flip one character of the value (keeping it in the base64url alphabet).
    let mut tampered: Vec<char> = good.chars().collect();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();

    for bad in [
        tampered.as_str(),
        "sluice_sticky=garbage",
        "sluice_sticky=",
        "sluice_sticky=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let mut conn = HttpConn::connect(local(port));
        let r = conn.request("GET", "/tampered", APP1, &[("Cookie", bad)], b"");
        assert_eq!(
            r.status(),
            200,
            "served despite a bad cookie {bad:?}: {r:?}"
        );
        let fresh =
            sticky_cookie(&r).unwrap_or_else(|| panic!("a fresh cookie replaces {bad:?}: {r:?}"));
        assert_ne!(fresh, bad, "a new value");
        // The fresh cookie is trusted and sticks.
        let backend = r.backend();
        for _ in 0..5 {
            let r = conn.request("GET", "/fresh", APP1, &[("Cookie", &fresh)], b"");
            assert_eq!(r.backend(), backend);
        }
    }
}

#[test]
fn balance_primary_backup_follows_the_primary_health() {
    let (a, b, addrs) = pair();
    let port = free_port();
    let check = "health_check = { type = \"http\", path = \"/health\", interval = \"200ms\", \
                 timeout = \"100ms\", unhealthy_threshold = 1, healthy_threshold = 1 }";
    let route = route_toml(
        None,
        &addrs,
        &format!("load_balance = \"primary_backup\", {check}"),
    );
    let _sluice = Sluice::start(&http_config(port, "", &app_toml("app1", APP1, &[route])));
    a.wait_health_checks(1, LOG_TIMEOUT);

    let mut conn = HttpConn::connect(local(port));
    let names: Vec<String> = (0..10).map(|_| conn.get("/pb").backend()).collect();
    assert!(
        names.iter().all(|n| n == "A"),
        "the primary takes everything: {names:?}"
    );
    assert_eq!(b.request_count(), 0);

    a.set_health(500);
    let seen = a.health_checks();
    a.wait_health_checks(seen + 2, LOG_TIMEOUT);
    eventually("traffic moves to the backup", LOG_TIMEOUT, || {
        (conn.get("/pb").backend() == "B").then_some(())
    });
    let names: Vec<String> = (0..10).map(|_| conn.get("/pb").backend()).collect();
    assert!(
        names.iter().all(|n| n == "B"),
        "the backup while A fails: {names:?}"
    );

    a.set_health(200);
    let seen = a.health_checks();
    a.wait_health_checks(seen + 2, LOG_TIMEOUT);
    eventually("traffic returns to the primary", LOG_TIMEOUT, || {
        (conn.get("/pb").backend() == "A").then_some(())
    });
    let names: Vec<String> = (0..10).map(|_| conn.get("/pb").backend()).collect();
    assert!(
        names.iter().all(|n| n == "A"),
        "the primary again: {names:?}"
    );
}
