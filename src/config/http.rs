//! The rpxy (HTTP) part of a config: its key tables per level and, for now, key-name checks
//! and the app list (the HTTP engine that reads the values comes in a later issue). No IO.

use super::suggest;
use super::walk::{self, Diags, Section};
use toml::de::DeValue;

/// rpxy's top-level keys (reference config and seed README).
pub(crate) const TOP_KEYS: &[&str] = &[
    "listen_port",
    "listen_port_tls",
    "listen_ipv6",
    "listen_address_v4",
    "listen_address_v6",
    "tcp_listen_backlog",
    "max_concurrent_streams",
    "max_clients",
    "max_clients_per_ip",
    "default_app",
    "trusted_forwarded_proxies",
    "redact_query_in_access_log",
    "request_max_body_size",
    "sticky_cookie_secret",
    "public_https_port",
    "https_redirection_port",
    "apps",
    "experimental",
];

/// Keys of one `[apps.<name>]` table. `load_balance` at app level is the seed README's older
/// form of the per-`reverse_proxy` setting.
pub(crate) const APP_KEYS: &[&str] = &["server_name", "reverse_proxy", "tls", "load_balance"];

/// App names in file order; errors for anything malformed at the levels checked so far.
pub(crate) fn check(d: &mut Diags, root: &Section) -> Vec<String> {
    if let Some(v) = root.get("experimental") {
        walk::table(d, "experimental", v);
    }
    for port_key in [
        "listen_port",
        "listen_port_tls",
        "public_https_port",
        "https_redirection_port",
    ] {
        if let Some(v) = root.get(port_key) {
            walk::int(d, port_key, v, 1, 65535);
        }
    }
    let mut names = Vec::new();
    let Some(apps_v) = root.get("apps") else {
        return names;
    };
    let Some(apps) = walk::table(d, "apps", apps_v) else {
        return names;
    };
    let apps = Section {
        table: apps,
        label: "`[apps]`".to_string(),
        span: apps_v.span(),
    };
    for (name, key_span, v) in apps.entries() {
        let label = format!("`[apps.{name}]`");
        let DeValue::Table(t) = v.get_ref() else {
            d.error(
                &key_span,
                format!(
                    "{label} must be a table with `server_name`, found {}",
                    walk::found(v.get_ref())
                ),
            );
            continue;
        };
        let app = Section {
            table: t,
            label,
            span: v.span(),
        };
        app.check_keys(d, APP_KEYS);
        if let Some(v) = app.require(d, "server_name") {
            walk::string(d, "server_name", v);
        }
        names.push(name.to_string());
    }
    if !names.is_empty() && !root.has("listen_port") && !root.has("listen_port_tls") {
        d.error(
            &apps.span,
            "apps need `listen_port` (HTTP) or `listen_port_tls` (HTTPS) at the top level",
        );
    }
    if let Some(v) = root.get("default_app") {
        if let Some(name) = walk::string(d, "default_app", v) {
            if !names.iter().any(|n| n == name) {
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = suggest::hint(name, &known, "apps are");
                d.error(
                    &v.span(),
                    format!("`default_app`: no app named {}{hint}", walk::echo(name)),
                );
            }
        }
    }
    names
}
