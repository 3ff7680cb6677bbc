//! Unit tests of what users see most: every class of config error, its text and its
//! line:col. No IO except one read of a missing file (`load`).
#![allow(clippy::indexing_slicing)]

use super::parse;
use super::testing::{err_at, errs, l4_with};

#[test]
fn unknown_key_with_suggestion_at_its_line_and_column() {
    let d = err_at(
        "listen_port = 8448\n  tcp_targte = [\"127.0.0.1:22\"]\n",
        "tcp_targte",
        2,
        3,
    );
    assert_eq!(
        d.message,
        "unknown key `tcp_targte` in top level; did you mean `tcp_target`?"
    );
}

#[test]
fn unknown_key_in_a_protocol_table_names_the_table() {
    let text = l4_with(
        "[protocols.tls_1]\nprotocol = \"tls\"\ntarget = [\"10.0.0.1:443\"]\nserver_name = [\"a.example\"]\n",
    );
    let d = err_at(&text, "server_name`", 6, 1);
    assert!(
        d.message
            .contains("in `[protocols.tls_1]`; did you mean `server_names`?"),
        "{}",
        d.message
    );
}

#[test]
fn unknown_key_without_close_match_lists_the_valid_keys() {
    let text =
        l4_with("[protocols.x]\nprotocol = \"ssh\"\ntarget = [\"10.0.0.1:22\"]\nfrobnicate = 1\n");
    let d = err_at(&text, "frobnicate", 6, 1);
    assert!(
        d.message
            .contains("valid keys are: protocol, target, load_balance"),
        "{}",
        d.message
    );
    assert!(!d.message.contains("did you mean"));
}

#[test]
fn bad_enum_values_get_suggestions() {
    let text = l4_with(
        "tcp_load_balance = \"round_robbin\"\n[protocols.x]\nprotocol = \"tsl\"\ntarget = [\"10.0.0.1:443\"]\n",
    );
    let d = err_at(&text, "round_robbin", 3, 20);
    assert!(
        d.message.ends_with("did you mean `round_robin`?"),
        "{}",
        d.message
    );
    let d = err_at(&text, "\"tsl\"", 5, 12);
    assert_eq!(
        d.message,
        "`protocol`: unknown value \"tsl\"; did you mean `tls`?"
    );
    let d = err_at(
        &l4_with("tcp_send_proxy_protocol = \"version2\"\n"),
        "version2",
        3,
        0,
    );
    assert!(
        d.message.contains("expected one of: none, v1, v2"),
        "{}",
        d.message
    );
}

#[test]
fn port_zero_names_its_line() {
    let d = err_at(
        "tcp_target = [\"127.0.0.1:22\"]\nlisten_port = 0\n",
        "listen_port",
        2,
        15,
    );
    assert!(d.message.contains("1..=65535, found 0"), "{}", d.message);
    err_at(
        "listen_port = 8448\ntcp_target = [\"127.0.0.1:0\"]\n",
        "port 0",
        2,
        15,
    );
}

#[test]
fn missing_listen_port_is_reported() {
    let d = err_at(
        "tcp_target = [\"127.0.0.1:22\"]\n",
        "missing required key `listen_port`",
        1,
        1,
    );
    assert!(d.message.contains("top level"));
}

#[test]
fn bad_listen_addresses() {
    err_at(
        &l4_with("listen_address_v4 = \"::1\"\n"),
        "put it in `listen_address_v6`",
        3,
        21,
    );
    err_at(
        &l4_with("listen_address_v4 = [\"10.0.0.1\", \"10.0.0.256\"]\n"),
        "not an IPv4 address",
        3,
        34,
    );
    err_at(
        &l4_with("listen_address_v6 = \"fe80::1%eth0\"\n"),
        "not an IPv6 address",
        3,
        0,
    );
}

#[test]
fn wildcard_mixed_with_specific_addresses() {
    let d = err_at(
        &l4_with("listen_address_v4 = [\"10.0.0.1\", \"0.0.0.0\"]\n"),
        "cannot be mixed",
        3,
        34,
    );
    assert!(d.message.contains("0.0.0.0 means every address"));
    err_at(
        &l4_with("listen_address_v6 = [\"[::]\", \"::1\"]\n"),
        "cannot be mixed",
        3,
        22,
    );
}

#[test]
fn duplicate_listen_address() {
    err_at(
        &l4_with("listen_address_v6 = [\"::1\", \"[::1]\"]\n"),
        "::1 is listed twice",
        3,
        29,
    );
}

#[test]
fn empty_target_list() {
    let d = err_at(
        "listen_port = 1\ntcp_target = []\n",
        "empty target list",
        2,
        14,
    );
    assert!(d.message.starts_with("`tcp_target`"));
    let text = l4_with("[protocols.x]\nprotocol = \"ssh\"\ntarget = []\n");
    err_at(&text, "`target`: empty target list", 5, 10);
}

#[test]
fn missing_protocol_target_is_reported_at_the_header() {
    let text = l4_with("[protocols.x]\nprotocol = \"ssh\"\n");
    let d = err_at(&text, "missing required key `target`", 3, 1);
    assert!(d.message.contains("`[protocols.x]`"));
}

#[test]
fn dns_min_ttl_greater_than_max() {
    let text = l4_with("dns_cache_max_ttl = \"1m\"\ndns_cache_min_ttl = \"2m\"\n");
    let d = err_at(&text, "is greater than `dns_cache_max_ttl`", 4, 21);
    assert!(
        d.message.contains("(2m)") && d.message.contains("(1m, line 3)"),
        "{}",
        d.message
    );
    let d = err_at(
        &l4_with("dns_cache_min_ttl = \"2h\"\n"),
        "greater than",
        3,
        0,
    );
    assert!(d.message.contains("the default"), "{}", d.message);
}

#[test]
fn recv_proxy_without_trusted_proxies() {
    err_at(
        &l4_with("tcp_recv_proxy_protocol = true\n"),
        "needs a non-empty `tcp_trusted_proxies`",
        3,
        27,
    );
    err_at(
        &l4_with("tcp_recv_proxy_protocol = true\ntcp_trusted_proxies = []\n"),
        "needs a non-empty",
        3,
        0,
    );
    err_at(
        &l4_with("tcp_trusted_proxies = [\"10.0.0.0/40\"]\n"),
        "0..=32",
        3,
        24,
    );
}

#[test]
fn duplicate_protocol_rule_names_both_lines() {
    let text = l4_with(
        "[protocols.a]\nprotocol = \"tls\"\ntarget = [\"10.0.0.1:443\"]\nserver_names = [\"x.example\", \"y.example\"]\n\
         [protocols.b]\nprotocol = \"tls\"\ntarget = [\"10.0.0.2:443\"]\nserver_names = [\"Y.example\", \"x.example\"]\n",
    );
    let d = err_at(&text, "matches the same traffic", 7, 1);
    assert!(
        d.message.contains("`[protocols.b]` (line 7)"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains("`[protocols.a]` (line 3)"),
        "{}",
        d.message
    );
    let two_ssh = l4_with(
        "[protocols.s1]\nprotocol = \"ssh\"\ntarget = [\"h:22\"]\n[protocols.s2]\nprotocol = \"ssh\"\ntarget = [\"g:22\"]\n",
    );
    err_at(&two_ssh, "same traffic", 6, 1);
}

#[test]
fn alpn_and_alpns_together() {
    let text = l4_with(
        "[protocols.t]\nprotocol = \"tls\"\ntarget = [\"h:443\"]\nalpn = [\"h2\"]\nalpns = [\"h2\"]\n",
    );
    let d = err_at(&text, "both `alpn` and `alpns`", 7, 1);
    assert!(d.message.contains("keep one"));
}

#[test]
fn sni_settings_on_a_protocol_without_sni() {
    let text = l4_with(
        "[protocols.s]\nprotocol = \"ssh\"\ntarget = [\"h:22\"]\nserver_names = [\"a.example\"]\n",
    );
    let d = err_at(&text, "`server_names` only applies", 6, 1);
    assert!(d.message.contains("not ssh"));
    let text =
        l4_with("[protocols.s]\nprotocol = \"http\"\ntarget = [\"h:80\"]\nalpn = [\"h2\"]\n");
    err_at(&text, "`alpn` only applies", 6, 1);
}

#[test]
fn idle_lifetime_on_a_tcp_protocol_and_ech_without_server_names() {
    let text =
        l4_with("[protocols.s]\nprotocol = \"ssh\"\ntarget = [\"h:22\"]\nidle_lifetime = 30\n");
    err_at(&text, "`idle_lifetime` only applies to UDP", 6, 17);
    let text = l4_with(
        "[protocols.t]\nprotocol = \"tls\"\ntarget = [\"h:443\"]\n[protocols.t.ech]\nprivate_keys = [\"k\"]\n",
    );
    err_at(&text, "`ech` needs `server_names`", 6, 0);
    let text = l4_with(
        "[protocols.t]\nprotocol = \"tls\"\ntarget = [\"h:443\"]\nserver_names = [\"a.example\"]\n[protocols.t.ech]\nprivate_key = [\"k\"]\n",
    );
    let d = err_at(&text, "unknown key `private_key`", 8, 1);
    assert!(
        d.message
            .contains("in `ech` of `[protocols.t]`; did you mean `private_keys`?"),
        "{}",
        d.message
    );
    err_at(&text, "missing required key `private_keys`", 7, 0);
}

#[test]
fn on_timeout_must_name_a_tcp_protocol_entry() {
    let base = "[protocols.ssh]\nprotocol = \"ssh\"\ntarget = [\"h:22\"]\n[protocols.wg]\nprotocol = \"wireguard\"\ntarget = [\"h:51820\"]\n";
    let d = err_at(
        &l4_with(&format!("on_timeout = \"shh\"\n{base}")),
        "no protocol entry named",
        3,
        14,
    );
    assert!(d.message.contains("did you mean `ssh`?"), "{}", d.message);
    err_at(
        &l4_with(&format!("on_timeout = \"wg\"\n{base}")),
        "a UDP protocol (wireguard)",
        3,
        14,
    );
    err_at(
        &l4_with("probe_timeout = 0\n"),
        "`probe_timeout` must be greater than 0",
        3,
        17,
    );
}

#[test]
fn udp_limits_are_consistent() {
    let text = l4_with("udp_max_connections = 10\nudp_max_connections_per_ip = 11\n");
    err_at(&text, "is greater than `udp_max_connections` (10)", 4, 30);
    err_at(
        &l4_with("udp_idle_lifetime = 0\n"),
        "`udp_idle_lifetime` must be greater than 0",
        3,
        21,
    );
    err_at(
        &l4_with("tcp_connect_timeout = \"0s\"\n"),
        "must be greater than 0",
        3,
        0,
    );
}

#[test]
fn type_errors_say_what_was_expected_and_found() {
    let d = err_at(&l4_with("tcp_backlog = \"1024\"\n"), "tcp_backlog", 3, 15);
    assert_eq!(
        d.message,
        "`tcp_backlog`: expected an integer 1..=4294967295, found string \"1024\""
    );
    let d = err_at(
        &l4_with("tcp_max_connections = -5\n"),
        "tcp_max_connections",
        3,
        0,
    );
    assert!(d.message.contains("found -5"), "{}", d.message);
    let d = err_at(
        &l4_with("tcp_max_connections = 1.5\n"),
        "tcp_max_connections",
        3,
        0,
    );
    assert!(d.message.contains("found float 1.5"), "{}", d.message);
    let d = err_at(
        &l4_with("tcp_backlog = 99999999999999999999999\n"),
        "tcp_backlog",
        3,
        0,
    );
    assert!(
        d.message.contains("found 99999999999999999999999"),
        "{}",
        d.message
    );
    let d = err_at(
        &l4_with("tcp_backlog = 0x7fffffffffffffffffffffffffffffffff\n"),
        "tcp_backlog",
        3,
        0,
    );
    assert!(d.message.contains("too large"), "{}", d.message);
    let d = err_at(&l4_with("listen_ipv6 = \"yes\"\n"), "listen_ipv6", 3, 0);
    assert!(
        d.message.contains("expected true or false"),
        "{}",
        d.message
    );
    let d = err_at(&l4_with("udp_target = 53\n"), "udp_target", 3, 0);
    assert!(
        d.message
            .contains("expected a string or an array of strings, found integer 53")
    );
    let d = err_at(&l4_with("protocols = 5\n"), "protocols", 3, 0);
    assert!(d.message.contains("expected a table"), "{}", d.message);
}

#[test]
fn bad_duration_shows_a_valid_example() {
    let d = err_at(
        &l4_with("dns_cache_min_ttl = \"5 minutes\"\n"),
        "invalid duration",
        3,
        21,
    );
    assert!(d.message.contains("\"1m30s\""), "{}", d.message);
    assert!(d.message.contains("unknown unit `minutes`"));
}

#[test]
fn bad_targets_point_at_the_element() {
    let text = "listen_port = 1\ntcp_target = [\n  \"10.0.0.1:22\",\n  \"2001:db8::1:22\",\n]\n";
    let d = err_at(text, "brackets", 4, 3);
    assert!(
        d.message
            .starts_with("`tcp_target`: bad target \"2001:db8::1:22\""),
        "{}",
        d.message
    );
}

#[test]
fn toml_syntax_errors_have_line_and_column() {
    let d = err_at(
        "listen_port = 8448\ntcp_target = [\"a:1\"\nx = 1\n",
        "TOML syntax error",
        3,
        0,
    );
    assert!(d.line == 3);
    let d = err_at("a = 1\na = 2\n", "duplicate key `a`", 2, 1);
    assert!(d.message.starts_with("TOML syntax error"));
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "listen_port = 0\ntcp_targte = 1\ntcp_backlog = -1\nudp_target = []\n";
    let all = errs(text);
    let lines: Vec<usize> = all.iter().map(|d| d.line).collect();
    assert_eq!(lines, [1, 2, 3, 4], "{all:#?}");
}

#[test]
fn display_prints_one_line_per_diagnostic() {
    let e = parse("listen_port = 0\ntcp_target = []\n", "/etc/sluice.toml").unwrap_err();
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("/etc/sluice.toml:1:15: `listen_port`"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("/etc/sluice.toml:2:14: `tcp_target`"),
        "{text}"
    );
}

#[test]
fn unreadable_file_is_an_io_error_without_position() {
    let e = super::load(std::path::Path::new("/nonexistent/sluice.toml")).unwrap_err();
    assert_eq!(e.diagnostics[0].line, 0);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/sluice.toml: cannot read:"),
        "{e}"
    );
}

#[test]
fn absurd_durations_are_refused_before_they_can_overflow_a_deadline() {
    let e = err_at(
        &l4_with("tcp_idle_timeout = 9223372036854775807\n"),
        "tcp_idle_timeout",
        3,
        0,
    );
    assert!(e.message.contains("tcp_idle_timeout"), "{}", e.message);
    let e = errs(&l4_with("tcp_connect_timeout = \"100000d\"\n"));
    assert!(
        e.iter().any(|d| d.message.contains("10-year maximum")),
        "{e:?}"
    );
}
