use super::*;
use crate::plan::http::{HttpBalance, HttpPlan, HttpTimeouts};

fn route(path: Option<&str>, replace: Option<&str>) -> HttpRoute {
    HttpRoute {
        path: path.map(str::to_string),
        replace_path: replace.map(str::to_string),
        upstreams: vec![],
        builtin: None,
        balance: HttpBalance::None,
        options: Default::default(),
        health_check: None,
    }
}

fn app(name: &str, server_name: &str, paths: &[Option<&str>]) -> HttpApp {
    HttpApp {
        name: name.into(),
        server_name: server_name.into(),
        tls: None,
        routes: paths.iter().map(|p| route(*p, None)).collect(),
        access: Default::default(),
    }
}

fn plan(apps: Vec<HttpApp>, default_app: Option<&str>) -> HttpPlan {
    HttpPlan {
        listen_port: Some(80),
        listen_port_tls: None,
        listen_addresses: vec![],
        tcp_listen_backlog: 1024,
        max_concurrent_streams: 100,
        max_clients: 512,
        max_clients_per_ip: None,
        default_app: default_app.map(str::to_string),
        trusted_forwarded_proxies: vec![],
        redact_query_in_access_log: false,
        request_max_body_size: None,
        sticky_cookie_secret: None,
        public_https_port: None,
        apps,
        timeouts: HttpTimeouts::default(),
        experimental: Default::default(),
    }
}

fn apps() -> Vec<HttpApp> {
    vec![
        app("www", "www.example.com", &[None]),
        app("wild", "*.example.com", &[None]),
        app("lab", "*.lab.example.com", &[None]),
        app("git", "git.lab.example.com", &[None]),
        app("wild_again", "*.example.com", &[None]),
        app("fallback", "localhost.localdomain", &[None]),
    ]
}

#[test]
fn app_matrix() {
    let with_default = plan(apps(), Some("fallback"));
    let without = plan(apps(), None);
    let cases: &[(Option<&str>, AppMatch, AppMatch)] = &[
        (Some("www.example.com"), AppMatch::App(0), AppMatch::App(0)),
        (
            Some("WWW.Example.Com:8080"),
            AppMatch::App(0),
            AppMatch::App(0),
        ),
        (Some("www.example.com."), AppMatch::App(0), AppMatch::App(0)),
        (Some("api.example.com"), AppMatch::App(1), AppMatch::App(1)),
        (Some("a.b.example.com"), AppMatch::App(1), AppMatch::App(1)),
        (
            Some("box.lab.example.com"),
            AppMatch::App(2),
            AppMatch::App(2),
        ),
        (
            Some("git.lab.example.com:443"),
            AppMatch::App(3),
            AppMatch::App(3),
        ),
        // The wildcard does not cover the bare suffix, nor a name that only ends like it.
        (Some("example.com"), AppMatch::Default(5), AppMatch::Unknown),
        (
            Some("badexample.com"),
            AppMatch::Default(5),
            AppMatch::Unknown,
        ),
        (
            Some("localhost.localdomain"),
            AppMatch::App(5),
            AppMatch::App(5),
        ),
        (None, AppMatch::Default(5), AppMatch::Unknown),
        (Some(""), AppMatch::Default(5), AppMatch::Unknown),
        (Some("a:b:c"), AppMatch::Default(5), AppMatch::Unknown),
        (Some("[::1]:80"), AppMatch::Default(5), AppMatch::Unknown),
    ];
    for (authority, want_default, want_none) in cases {
        assert_eq!(
            match_app(&with_default, *authority),
            *want_default,
            "{authority:?} with default_app"
        );
        assert_eq!(
            match_app(&without, *authority),
            *want_none,
            "{authority:?} without default_app"
        );
    }
}

#[test]
fn default_app_naming_no_app_is_unknown() {
    let p = plan(apps(), Some("nonexistent"));
    assert_eq!(match_app(&p, Some("nowhere.test")), AppMatch::Unknown);
}

#[test]
fn wildcard_tie_goes_to_the_first_app() {
    let p = plan(apps(), None);
    // Apps 1 and 4 are both `*.example.com`.
    assert_eq!(match_app(&p, Some("x.example.com")), AppMatch::App(1));
}

#[test]
fn server_name_with_trailing_dot_matches() {
    let p = plan(vec![app("a", "dot.example.", &[None])], None);
    assert_eq!(match_app(&p, Some("DOT.example")), AppMatch::App(0));
    assert_eq!(match_app(&p, Some("dot.example.:80")), AppMatch::App(0));
}

#[test]
fn route_matrix() {
    let a = app(
        "a",
        "a.test",
        &[
            None,
            Some("/api"),
            Some("/api/v2/"),
            Some("/static/"),
            Some("/api/v2/admin"),
        ],
    );
    let cases: &[(&str, Option<usize>)] = &[
        ("/", Some(0)),
        ("/other", Some(0)),
        ("/api", Some(1)),
        ("/api/", Some(1)),
        ("/api/users", Some(1)),
        ("/apis", Some(0)),
        ("/api2/x", Some(0)),
        ("/api/v2", Some(2)),
        ("/api/v2/", Some(2)),
        ("/api/v2/x", Some(2)),
        ("/api/v2x", Some(1)),
        ("/api/v2/admin", Some(4)),
        ("/api/v2/admin/", Some(4)),
        ("/api/v2/administrator", Some(2)),
        // `/static/` is stored as written; it covers `/static` itself too.
        ("/static", Some(3)),
        ("/static/app.js", Some(3)),
        ("/staticfile", Some(0)),
        // Paths are case-sensitive.
        ("/API", Some(0)),
        ("", Some(0)),
    ];
    for (path, want) in cases {
        assert_eq!(match_route(&a, path), *want, "{path}");
    }
}

#[test]
fn no_default_route_means_no_match() {
    let a = app("a", "a.test", &[Some("/a"), Some("/b/")]);
    assert_eq!(match_route(&a, "/a/x"), Some(0));
    assert_eq!(match_route(&a, "/b"), Some(1));
    assert_eq!(match_route(&a, "/c"), None);
    assert_eq!(match_route(&a, "/"), None);
    assert_eq!(match_route(&app("e", "e.test", &[]), "/"), None);
}

#[test]
fn explicit_root_route_beats_the_pathless_one() {
    let a = app("a", "a.test", &[None, Some("/"), Some("/x")]);
    assert_eq!(match_route(&a, "/anything"), Some(1));
    assert_eq!(match_route(&a, "/"), Some(1));
    assert_eq!(match_route(&a, "/x/y"), Some(2));
}

#[test]
fn rpxy_readme_third_step_examples() {
    // path = '/path' (no replace_path), path = '/path/another' replace_path = '/path'.
    let a = HttpApp {
        routes: vec![
            route(None, None),
            route(Some("/path"), None),
            route(Some("/path/another"), Some("/path")),
        ],
        ..app("app1", "app1.example.com", &[])
    };
    let r = match_route(&a, "/path/to").and_then(|i| a.routes.get(i));
    assert_eq!(r.and_then(|r| r.path.as_deref()), Some("/path"));
    assert_eq!(
        rewrite_path(r.unwrap(), "/path/to?query=ok"),
        "/path/to?query=ok"
    );
    let r = match_route(&a, "/path/another/xx").and_then(|i| a.routes.get(i));
    assert_eq!(r.and_then(|r| r.path.as_deref()), Some("/path/another"));
    assert_eq!(
        rewrite_path(r.unwrap(), "/path/another/xx?query=ng"),
        "/path/xx?query=ng"
    );
    assert_eq!(match_route(&a, "/elsewhere"), Some(0));
}

#[test]
fn rpxy_readme_subapp_examples() {
    for n in 1..=3 {
        let prefix = format!("/subapp{n}");
        let r = route(Some(&prefix), Some("/"));
        assert_eq!(rewrite_path(&r, &prefix), "/");
        assert_eq!(rewrite_path(&r, &format!("{prefix}/")), "/");
        assert_eq!(rewrite_path(&r, &format!("{prefix}/a/b?c=d")), "/a/b?c=d");
        assert_eq!(rewrite_path(&r, &format!("{prefix}?c=d")), "/?c=d");
    }
}

#[test]
fn rpxy_config_example_maps() {
    let r = route(Some("/maps"), Some("/replacing/path1"));
    assert_eq!(
        rewrite_path(&r, "/maps/org/any.ext"),
        "/replacing/path1/org/any.ext"
    );
    assert_eq!(
        rewrite_path(&r, "/maps/hoge?x=1"),
        "/replacing/path1/hoge?x=1"
    );
    assert_eq!(rewrite_path(&r, "/maps"), "/replacing/path1");
    assert_eq!(rewrite_path(&r, "/maps/"), "/replacing/path1/");
    assert_eq!(
        rewrite_path(&r, "/maps?q=/maps/x"),
        "/replacing/path1?q=/maps/x"
    );
}

#[test]
fn rewrite_never_joins_with_a_double_slash() {
    let r = route(Some("/maps/"), Some("/new/"));
    assert_eq!(rewrite_path(&r, "/maps/a"), "/new/a");
    assert_eq!(rewrite_path(&r, "/maps"), "/new/");
    let r = route(Some("/"), Some("/x"));
    assert_eq!(rewrite_path(&r, "/a?b"), "/x/a?b");
    assert_eq!(rewrite_path(&r, "/"), "/x");
    // A `//` the client sent after the prefix is its own business.
    let r = route(Some("/maps"), Some("/m"));
    assert_eq!(rewrite_path(&r, "/maps//a"), "/m//a");
}

#[test]
fn rewrite_without_replace_path_or_match_is_identity() {
    assert_eq!(rewrite_path(&route(None, None), "/a?b"), "/a?b");
    assert_eq!(rewrite_path(&route(Some("/a"), None), "/a/b?c"), "/a/b?c");
    let r = route(Some("/a"), Some("/z"));
    assert_eq!(rewrite_path(&r, "/ab"), "/ab");
    assert_eq!(rewrite_path(&r, ""), "");
}

#[test]
fn normalization_cases() {
    let ok: &[(&str, &str)] = &[
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("/api/../admin", "/admin"),
        ("/a/./b", "/a/b"),
        ("/a/.", "/a/"),
        ("/a/..", "/"),
        ("/a/b/..", "/a/"),
        ("/.", "/"),
        ("/a/b/../../c", "/c"),
        ("/a//b", "/a//b"),
        ("/a//../b", "/a/b"),
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E%2E/b", "/b"),
        ("/a/.%2e/b", "/b"),
        ("/a/%2e/b", "/a/b"),
        ("/a/...", "/a/..."),
        ("/a/..b", "/a/..b"),
        ("/a/%2e%2e%2e", "/a/%2e%2e%2e"),
        ("/a/%2f..", "/a/%2f.."),
        ("/a/%2", "/a/%2"),
        ("/%41/b%20c", "/%41/b%20c"),
        ("/a/..?x=/../..", "/?x=/../.."),
        ("/a?", "/a?"),
    ];
    for (input, want) in ok {
        assert_eq!(normalize_path(input).as_deref(), Ok(*want), "{input}");
    }
}

#[test]
fn normalization_refuses_to_climb_above_root() {
    for input in [
        "/..",
        "/../a",
        "/a/../..",
        "/%2e%2e/etc/passwd",
        "/a/../.%2E/b",
    ] {
        assert_eq!(
            normalize_path(input),
            Err("path climbs above the root"),
            "{input}"
        );
    }
}

#[test]
fn normalization_needs_a_leading_slash() {
    for input in ["", "a/b", "*", "example.com:443", "?x"] {
        assert!(normalize_path(input).is_err(), "{input}");
    }
}

#[test]
fn normalized_path_cannot_slip_past_a_route() {
    let a = app("a", "a.test", &[Some("/api"), Some("/admin")]);
    let p = normalize_path("/api/%2e%2e/admin/users").unwrap();
    assert_eq!(match_route(&a, &p), Some(1));
}

#[test]
fn host_only_cases() {
    let cases: &[(&str, Option<&str>)] = &[
        ("example.com", Some("example.com")),
        ("Example.COM.", Some("example.com")),
        ("Example.COM.:443", Some("example.com")),
        ("example.com:", Some("example.com")),
        ("[::1]:80", Some("[::1]")),
        ("[::1]", Some("[::1]")),
        ("[2001:DB8::1]:8443", Some("[2001:db8::1]")),
        ("127.0.0.1:8080", Some("127.0.0.1")),
        ("under_score.test", Some("under_score.test")),
        ("", None),
        (":80", None),
        (".", None),
        ("a:b:c", None),
        ("a..b", None),
        (".a", None),
        ("example.com..", None),
        ("example.com:http", None),
        ("example.com:123456", None),
        ("user@example.com", None),
        ("exa mple.com", None),
        ("[::1", None),
        ("[::1]x", None),
        ("[::1]:8a", None),
        ("[not-v6]", None),
        ("::1", None),
        ("é.test", None),
    ];
    for (input, want) in cases {
        assert_eq!(host_only(input).as_deref(), *want, "{input:?}");
    }
    assert_eq!(host_only(&"a".repeat(300)), None);
}

#[test]
fn no_panic_on_odd_inputs() {
    let a = app("a", "a.test", &[None, Some("/"), Some("/é/"), Some("")]);
    let p = plan(vec![a.clone()], Some("a"));
    for s in [
        "",
        "/",
        "%",
        "%2",
        "%2e",
        "/%",
        "/é/..",
        "[",
        "]",
        ":",
        "[]",
        "[:]",
        "*.",
        "*",
        "/?",
        "?",
        "é",
        "\u{1F600}:1",
    ] {
        let _ = match_app(&p, Some(s));
        let _ = match_route(&a, s);
        let _ = normalize_path(s);
        let _ = host_only(s);
        for r in &a.routes {
            let _ = rewrite_path(r, s);
            let _ = rewrite_path(&route(r.path.as_deref(), Some("/é")), s);
        }
    }
}

#[test]
fn byte_split_agrees_with_the_char_split() {
    for s in [
        "",
        "?",
        "a?b",
        "/p?q?r",
        "é?ü",
        "/ö/ä",
        "host:8080",
        ":",
        "a:",
        "[::1]:80",
    ] {
        for b in [b'?', b':'] {
            assert_eq!(
                split_once_byte(s, b),
                s.split_once(char::from(b)),
                "{s:?} at {b}"
            );
        }
    }
}
