//! The rpxy-shape configs the HTTP tests start sluice with, and the names they use. No IO.

use std::net::SocketAddr;

/// The server name of the app most tests route to.
pub const APP1: &str = "app1.example.com";
/// A valid `sticky_cookie_secret`: 32 bytes as unpadded base64url (43 characters).
pub const STICKY_SECRET: &str = "c2x1aWNlLXRlc3RzLXN0aWNreS1zZWNyZXQtMzJieXQ";

/// An rpxy-shape config: `listen_port` on 127.0.0.1, the top-level lines `top`, then `apps`
/// (TOML tables, e.g. from [`app_toml`]).
pub fn http_config(port: u16, top: &str, apps: &str) -> String {
    format!("listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n{top}\n{apps}")
}

/// `[{ location = "127.0.0.1:1" }, …]`.
pub fn upstream_list(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs
        .iter()
        .map(|a| format!("{{ location = \"{a}\" }}"))
        .collect();
    format!("[{}]", items.join(", "))
}

/// One `reverse_proxy` entry as an inline table: optional `path`, the upstreams, and `extra`
/// inline keys (e.g. `load_balance = "round_robin"`), all on one line.
pub fn route_toml(path: Option<&str>, addrs: &[SocketAddr], extra: &str) -> String {
    let mut parts = Vec::new();
    if let Some(p) = path {
        parts.push(format!("path = \"{p}\""));
    }
    parts.push(format!("upstream = {}", upstream_list(addrs)));
    if !extra.is_empty() {
        parts.push(extra.to_owned());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// `[apps.NAME]` with its `server_name` and `reverse_proxy` routes.
pub fn app_toml(name: &str, server_name: &str, routes: &[String]) -> String {
    format!(
        "[apps.{name}]\nserver_name = \"{server_name}\"\nreverse_proxy = [\n  {}\n]\n",
        routes.join(",\n  ")
    )
}

/// The common case: app `app1` ([`APP1`]) with one default route over `addrs` balanced by
/// `balance`, plus top-level lines `top`.
pub fn app1_config(port: u16, addrs: &[SocketAddr], balance: &str, top: &str) -> String {
    let route = route_toml(None, addrs, &format!("load_balance = \"{balance}\""));
    http_config(port, top, &app_toml("app1", APP1, &[route]))
}
