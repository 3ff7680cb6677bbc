//! The rpxy (HTTP) part of a config: top-level keys and `[experimental.*]` into an
//! [`HttpPlan`]; `[apps.*]` are read by `http_apps`. No IO: certificate and key files are
//! only named here (the TLS engine reads them when it loads the plan).
//!
//! Where rpxy is lax or silent, sluice decides (and the tests pin it):
//! - `https_redirection_port` is the older name of `public_https_port`; both at once is an
//!   error. Either without `listen_port_tls` has no effect (a warning, rpxy refuses).
//! - Listen addresses follow the L4 rules (a duplicate address is an error, not skipped).
//! - `trusted_forwarded_proxies` names (`cloudflare`, `fastly`, `cloudfront`) are kept as names;
//!   the HTTP engine owns their address lists.
//! - `[experimental.tcp_recv_proxy_protocol]` `timeout` is milliseconds when an integer (as in
//!   rpxy) or a duration string; `0` means rpxy's fallback of 5s (with a warning).
//! - `[experimental.h3] request_max_body_size` is rpxy's deprecated h3-only limit: accepted
//!   (integer bytes only) with a warning.

use std::path::Path;
use std::time::Duration;

use super::http_apps::{self, AppContext};
use super::l4;
use super::suggest;
use super::values;
use super::walk::{self, Diags, Section, Value};
use crate::plan::{
    AcmeSettings, CacheSettings, H3Settings, HttpExperimental, HttpPlan, HttpTimeouts,
    ProxyProvider, RecvProxySettings, StickySecret, TrustedProxy,
};

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
    "request_header_timeout",
    "keepalive_timeout",
    "upstream_connect_timeout",
    "upstream_response_timeout",
    "apps",
    "experimental",
];

const EXPERIMENTAL_KEYS: &[&str] = &[
    "ignore_sni_consistency",
    "connection_handling_timeout",
    "h3",
    "cache",
    "acme",
    "tcp_recv_proxy_protocol",
];
const H3_KEYS: &[&str] = &[
    "alt_svc_max_age",
    "request_max_body_size",
    "max_concurrent_connections",
    "max_concurrent_bidistream",
    "max_concurrent_unistream",
    "max_idle_timeout",
];
const CACHE_KEYS: &[&str] = &[
    "cache_dir",
    "max_cache_entry",
    "max_cache_each_size",
    "max_cache_each_size_on_memory",
];
const ACME_KEYS: &[&str] = &["dir_url", "email", "registry_path"];
const RECV_PROXY_KEYS: &[&str] = &["trusted_proxies", "timeout"];

/// rpxy's defaults (its `constants.rs`), so a config means here what it means there.
const DEFAULT_BACKLOG: u64 = 1024;
const DEFAULT_MAX_STREAMS: u64 = 64;
const DEFAULT_MAX_CLIENTS: usize = 512;
/// 256 MiB, rpxy's default body limit.
const DEFAULT_MAX_BODY: u64 = 256 << 20;
const DEFAULT_ALT_SVC_MAX_AGE: Duration = Duration::from_secs(3600);
const DEFAULT_H3_CONNECTIONS: u64 = 10_000;
const DEFAULT_H3_STREAMS: u64 = 100;
const DEFAULT_H3_IDLE: Duration = Duration::from_secs(10);
const DEFAULT_CACHE_DIR: &str = "./cache";
const DEFAULT_CACHE_ENTRIES: usize = 1000;
const DEFAULT_CACHE_EACH_SIZE: usize = 65535;
const DEFAULT_ACME_DIR: &str = "https://acme-v02.api.letsencrypt.org/directory";
const DEFAULT_ACME_REGISTRY: &str = "./acme_registry";
/// How long a connection may take to send its PROXY header (rpxy's default).
const DEFAULT_PROXY_HEADER_TIMEOUT: Duration = Duration::from_millis(50);
/// What rpxy uses for `timeout = 0`.
const ZERO_PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Told to the user whenever a sticky secret is missing or malformed.
pub(crate) const GENERATE_SECRET: &str =
    "generate one with: openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\\n'";

/// A key's value as a sub-table, its keys checked; `None` (reported) when not a table.
pub(crate) fn section<'a, 'i>(
    d: &mut Diags,
    key: &str,
    label: String,
    v: &'a Value<'i>,
    keys: &[&str],
) -> Option<Section<'a, 'i>> {
    let t = walk::table(d, key, v)?;
    let sec = Section {
        table: t,
        label,
        span: v.span(),
    };
    sec.check_keys(d, keys);
    Some(sec)
}

fn port(d: &mut Diags, root: &Section, key: &str) -> Option<Option<u16>> {
    l4::opt(d, root, key, None, |d, v| {
        walk::int(d, key, v, 1, 65535).and_then(|n| u16::try_from(n).ok().map(Some))
    })
}

/// The HTTP part of an rpxy or combined config (its top-level keys already checked).
/// `None` when anything is wrong, or when there is nothing for the HTTP engine (no port, no
/// app). Relative certificate paths are joined to `base`, the config file's directory.
pub(crate) fn check(d: &mut Diags, root: &Section, base: &Path) -> Option<Option<HttpPlan>> {
    let http_port = port(d, root, "listen_port");
    let tls_port = port(d, root, "listen_port_tls");
    if let (Some(Some(a)), Some(Some(b))) = (http_port, tls_port) {
        if a == b {
            if let (Some(v), Some(w)) = (root.get("listen_port"), root.get("listen_port_tls")) {
                let line = d.line(&v.span());
                d.error(
                    &w.span(),
                    format!("`listen_port_tls` ({b}) equals `listen_port` (line {line}); HTTP and HTTPS need different ports"),
                );
            }
        }
    }
    let public_port = public_https_port(d, root, tls_port.flatten().is_some());
    let listen = l4::listen(d, root);
    let backlog = l4::opt(d, root, "tcp_listen_backlog", DEFAULT_BACKLOG, |d, v| {
        walk::int(d, "tcp_listen_backlog", v, 1, u64::from(u32::MAX))
    });
    let streams = l4::opt(
        d,
        root,
        "max_concurrent_streams",
        DEFAULT_MAX_STREAMS,
        |d, v| walk::int(d, "max_concurrent_streams", v, 1, u64::from(u32::MAX)),
    );
    let clients = l4::opt(d, root, "max_clients", DEFAULT_MAX_CLIENTS, |d, v| {
        walk::count(d, "max_clients", v, 1)
    });
    let per_ip = l4::opt(d, root, "max_clients_per_ip", None, |d, v| {
        let n = walk::count(d, "max_clients_per_ip", v, 0)?;
        match clients {
            Some(max) if n > max => {
                d.error(
                    &v.span(),
                    format!("`max_clients_per_ip` ({n}) is greater than `max_clients` ({max})"),
                );
                None
            }
            _ => Some((n > 0).then_some(n)),
        }
    });
    let trusted = l4::opt(d, root, "trusted_forwarded_proxies", Vec::new(), |d, v| {
        trusted_proxies(d, v)
    });
    let redact = l4::opt(d, root, "redact_query_in_access_log", false, |d, v| {
        walk::boolean(d, "redact_query_in_access_log", v)
    });
    let body = l4::opt(
        d,
        root,
        "request_max_body_size",
        Some(DEFAULT_MAX_BODY),
        body_size,
    );
    let secret = l4::opt(d, root, "sticky_cookie_secret", None, |d, v| {
        sticky_secret(d, v).map(Some)
    });
    let timeouts = timeouts(d, root);
    let experimental = match root.get("experimental") {
        Some(v) => experimental(d, v),
        None => Some(HttpExperimental::default()),
    };
    if let (Some(exp), Some(None), Some(v)) = (
        &experimental,
        tls_port,
        root.get("experimental")
            .and_then(|e| e.get_ref().as_table())
            .and_then(|t| t.get("h3")),
    ) {
        if exp.h3.is_some() {
            d.warn(
                &v.span(),
                "`[experimental.h3]` has no effect without `listen_port_tls` (HTTP/3 runs on the HTTPS port)",
            );
        }
    }

    let cx = AppContext {
        http_port: http_port.flatten().is_some(),
        tls_port: tls_port.flatten().is_some(),
        sticky_secret: !matches!(secret, Some(None)),
        acme: experimental.as_ref().is_none_or(|e| e.acme.is_some()),
        base,
    };
    let (names, apps) = http_apps::apps(d, root, &cx);
    if !names.is_empty() && http_port == Some(None) && tls_port == Some(None) {
        let span = root.get("apps").map_or(0..0, |v| v.span());
        d.error(
            &span,
            "apps need `listen_port` (HTTP) or `listen_port_tls` (HTTPS) at the top level",
        );
    }
    let default_app = default_app(d, root, &names);

    let (http_port, tls_port) = (http_port?, tls_port?);
    let apps = apps?;
    if http_port.is_none() && tls_port.is_none() && apps.is_empty() {
        // Settings without a listener: nothing for the HTTP engine (still validated above).
        experimental?;
        return Some(None);
    }
    Some(Some(HttpPlan {
        listen_port: http_port,
        listen_port_tls: tls_port,
        listen_addresses: listen?,
        tcp_listen_backlog: u32::try_from(backlog?).ok()?,
        max_concurrent_streams: u32::try_from(streams?).ok()?,
        max_clients: clients?,
        max_clients_per_ip: per_ip?,
        default_app: default_app?,
        trusted_forwarded_proxies: trusted?,
        redact_query_in_access_log: redact?,
        request_max_body_size: body?,
        sticky_cookie_secret: secret?,
        public_https_port: public_port?,
        apps,
        timeouts: timeouts?,
        experimental: experimental?,
    }))
}

/// The sluice extension timeouts (not rpxy keys); zero is refused: each guards a resource.
fn timeouts(d: &mut Diags, root: &Section) -> Option<HttpTimeouts> {
    let mut get = |key: &str, default: Duration| {
        l4::opt(d, root, key, default, |d, v| {
            let t = walk::duration(d, key, v)?;
            if t.is_zero() {
                d.error(&v.span(), format!("`{key}` must be greater than 0"));
                return None;
            }
            Some(t)
        })
    };
    let defaults = HttpTimeouts::default();
    let request_header = get("request_header_timeout", defaults.request_header);
    let keepalive = get("keepalive_timeout", defaults.keepalive);
    let upstream_connect = get("upstream_connect_timeout", defaults.upstream_connect);
    let upstream_response = get("upstream_response_timeout", defaults.upstream_response);
    Some(HttpTimeouts {
        request_header: request_header?,
        keepalive: keepalive?,
        upstream_connect: upstream_connect?,
        upstream_response: upstream_response?,
    })
}

/// `public_https_port`, or its older name `https_redirection_port` (not both).
fn public_https_port(d: &mut Diags, root: &Section, has_tls_port: bool) -> Option<Option<u16>> {
    let new = port(d, root, "public_https_port")?;
    let old = port(d, root, "https_redirection_port")?;
    let (Some(v_new), Some(v_old)) = (
        root.get("public_https_port"),
        root.get("https_redirection_port"),
    ) else {
        let (key, value) = match (new, old) {
            (Some(p), _) => ("public_https_port", p),
            (None, Some(p)) => ("https_redirection_port", p),
            (None, None) => return Some(None),
        };
        if !has_tls_port {
            if let Some(span) = root.key_span(key) {
                d.warn(
                    &span,
                    format!("`{key}` has no effect without `listen_port_tls`"),
                );
            }
        }
        return Some(Some(value));
    };
    let (first, second, first_key, second_key) = if v_new.span().start < v_old.span().start {
        (v_new, v_old, "public_https_port", "https_redirection_port")
    } else {
        (v_old, v_new, "https_redirection_port", "public_https_port")
    };
    let line = d.line(&first.span());
    d.error(
        &second.span(),
        format!(
            "`{second_key}` and `{first_key}` (line {line}) are two names for one setting (`https_redirection_port` is the older one); keep only `public_https_port`"
        ),
    );
    None
}

fn default_app(d: &mut Diags, root: &Section, names: &[String]) -> Option<Option<String>> {
    let Some(v) = root.get("default_app") else {
        return Some(None);
    };
    let name = walk::string(d, "default_app", v)?;
    if names.iter().any(|n| n == name) {
        return Some(Some(name.to_string()));
    }
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = if known.is_empty() {
        "; there are no `[apps.*]`".to_string()
    } else {
        suggest::hint(name, &known, "apps are")
    };
    d.error(
        &v.span(),
        format!("`default_app`: no app named {}{hint}", walk::echo(name)),
    );
    None
}

/// A CIDR (host bits cleared with a warning) for `key`, or `None` reported.
pub(crate) fn cidr(
    d: &mut Diags,
    key: &str,
    s: &str,
    span: &std::ops::Range<usize>,
) -> Option<crate::plan::Cidr> {
    match values::parse_cidr(s) {
        Ok((c, cleared)) => {
            if cleared {
                d.warn(span, format!("`{key}`: {s} has host bits set; using {c}"));
            }
            Some(c)
        }
        Err(e) => {
            d.error(span, format!("`{key}`: {e}"));
            None
        }
    }
}

/// `trusted_forwarded_proxies`: CIDRs and CDN names, a string or an array.
fn trusted_proxies(d: &mut Diags, v: &Value) -> Option<Vec<TrustedProxy>> {
    const KEY: &str = "trusted_forwarded_proxies";
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in walk::strings(d, KEY, v)? {
        if let Some((_, p)) = ProxyProvider::ALL.iter().find(|(n, _)| *n == s) {
            out.push(TrustedProxy::Named(*p));
            continue;
        }
        let looks_like_address =
            s.contains(['.', ':', '/']) || s.starts_with(|c: char| c.is_ascii_digit());
        if !looks_like_address {
            let names: Vec<&str> = ProxyProvider::ALL.iter().map(|(n, _)| *n).collect();
            let hint = suggest::hint(s, &names, "known names are");
            d.error(
                &span,
                format!(
                    "`{KEY}`: {} is neither a CIDR nor a known proxy name{hint}",
                    walk::echo(s)
                ),
            );
            ok = false;
            continue;
        }
        match cidr(d, KEY, s, &span) {
            Some(c) => out.push(TrustedProxy::Cidr(c)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `request_max_body_size`: bytes, or `"256k"`, `"10m"`, `"1g"` (powers of 1024), or
/// `"unlimited"`/`0` (`None`).
fn body_size(d: &mut Diags, v: &Value) -> Option<Option<u64>> {
    const KEY: &str = "request_max_body_size";
    if let Some(s) = v.get_ref().as_str() {
        return match parse_body_size(s) {
            Ok(n) => Some(n),
            Err(e) => {
                d.error(
                    &v.span(),
                    format!(
                        "`{KEY}`: {} {e}; write bytes (65536), a size like \"256k\", \"10m\", \"1g\", or \"unlimited\"",
                        walk::echo(s)
                    ),
                );
                None
            }
        };
    }
    if !matches!(v.get_ref(), toml::de::DeValue::Integer(_)) {
        d.error(
            &v.span(),
            format!(
                "`{KEY}`: expected a size (integer bytes or a string like \"10m\"), found {}",
                walk::found(v.get_ref())
            ),
        );
        return None;
    }
    let n = walk::int(d, KEY, v, 0, u64::MAX)?;
    Some((n > 0).then_some(n))
}

pub(crate) fn parse_body_size(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "unlimited" {
        return Ok(None);
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        return Err("is not a size".to_string());
    }
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("has an unknown unit `{other}`")),
    };
    let n: u64 = num.parse().map_err(|_| "is too large".to_string())?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| "is too large".to_string())?;
    Ok((bytes > 0).then_some(bytes))
}

/// Unpadded base64url (RFC 4648 §5) to bytes.
pub(crate) fn base64url_decode(s: &str) -> Result<Vec<u8>, String> {
    if s.ends_with('=') {
        return Err("has `=` padding; remove it (unpadded base64url)".to_string());
    }
    if s.contains(['+', '/']) {
        return Err("uses `+` or `/`: that is base64, not base64url (`-` and `_`)".to_string());
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => {
                return Err(format!(
                    "has `{}`, not a base64url character",
                    char::from(c)
                ));
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    if bits >= 6 || acc & ((1 << bits) - 1) != 0 {
        return Err("is not valid base64url (bad length or trailing bits)".to_string());
    }
    Ok(out)
}

fn sticky_secret(d: &mut Diags, v: &Value) -> Option<StickySecret> {
    let s = walk::string(d, "sticky_cookie_secret", v)?;
    let problem = match base64url_decode(s) {
        Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(key) => return Some(StickySecret(key)),
            Err(_) => format!("decodes to {} bytes, not 32", bytes.len()),
        },
        Err(e) => e,
    };
    // The value is a secret: say what is wrong without echoing it.
    d.error(
        &v.span(),
        format!("`sticky_cookie_secret` must be 32 bytes of unpadded base64url (43 characters), but it {problem}; {GENERATE_SECRET}"),
    );
    None
}

fn experimental(d: &mut Diags, v: &Value) -> Option<HttpExperimental> {
    let sec = section(
        d,
        "experimental",
        "`[experimental]`".to_string(),
        v,
        EXPERIMENTAL_KEYS,
    )?;
    let ignore_sni = l4::opt(d, &sec, "ignore_sni_consistency", false, |d, v| {
        walk::boolean(d, "ignore_sni_consistency", v)
    });
    let handling = l4::opt(d, &sec, "connection_handling_timeout", None, |d, v| {
        walk::duration(d, "connection_handling_timeout", v).map(|t| (!t.is_zero()).then_some(t))
    });
    let h3 = l4::opt(d, &sec, "h3", None, |d, v| h3(d, v).map(Some));
    let cache = l4::opt(d, &sec, "cache", None, |d, v| cache(d, v).map(Some));
    let acme = l4::opt(d, &sec, "acme", None, |d, v| acme(d, v).map(Some));
    let recv = l4::opt(d, &sec, "tcp_recv_proxy_protocol", None, |d, v| {
        recv_proxy(d, v).map(Some)
    });
    Some(HttpExperimental {
        ignore_sni_consistency: ignore_sni?,
        connection_handling_timeout: handling?,
        h3: h3?,
        cache: cache?,
        acme: acme?,
        tcp_recv_proxy_protocol: recv?,
    })
}

fn h3(d: &mut Diags, v: &Value) -> Option<H3Settings> {
    let sec = section(d, "h3", "`[experimental.h3]`".to_string(), v, H3_KEYS)?;
    let max_age = l4::opt(
        d,
        &sec,
        "alt_svc_max_age",
        DEFAULT_ALT_SVC_MAX_AGE,
        |d, v| walk::duration(d, "alt_svc_max_age", v),
    );
    let u32_max = u64::from(u32::MAX);
    let int = |d: &mut Diags, key: &str, default: u64| {
        l4::opt(d, &sec, key, default, |d, v| {
            walk::int(d, key, v, 1, u32_max)
        })
        .and_then(|n| u32::try_from(n).ok())
    };
    let conns = int(d, "max_concurrent_connections", DEFAULT_H3_CONNECTIONS);
    let bidi = int(d, "max_concurrent_bidistream", DEFAULT_H3_STREAMS);
    let uni = int(d, "max_concurrent_unistream", DEFAULT_H3_STREAMS);
    let idle = l4::opt(
        d,
        &sec,
        "max_idle_timeout",
        Some(DEFAULT_H3_IDLE),
        |d, v| walk::duration(d, "max_idle_timeout", v).map(|t| (!t.is_zero()).then_some(t)),
    );
    let body = l4::opt(d, &sec, "request_max_body_size", None, |d, v| {
        let n = walk::int(d, "request_max_body_size", v, 0, u64::MAX)?;
        d.warn(
            &v.span(),
            "`[experimental.h3] request_max_body_size` is deprecated (rpxy 0.13.2): it overrides the top-level `request_max_body_size` for HTTP/3 streams only; set the top-level key instead",
        );
        Some(Some(n))
    });
    Some(H3Settings {
        alt_svc_max_age: max_age?,
        max_concurrent_connections: conns?,
        max_concurrent_bidistream: bidi?,
        max_concurrent_unistream: uni?,
        max_idle_timeout: idle?,
        request_max_body_size: body?,
    })
}

fn cache(d: &mut Diags, v: &Value) -> Option<CacheSettings> {
    let sec = section(
        d,
        "cache",
        "`[experimental.cache]`".to_string(),
        v,
        CACHE_KEYS,
    )?;
    let dir = l4::opt(d, &sec, "cache_dir", DEFAULT_CACHE_DIR.into(), |d, v| {
        walk::string(d, "cache_dir", v).map(Into::into)
    });
    let entries = l4::opt(d, &sec, "max_cache_entry", DEFAULT_CACHE_ENTRIES, |d, v| {
        walk::count(d, "max_cache_entry", v, 1)
    });
    let each = l4::opt(
        d,
        &sec,
        "max_cache_each_size",
        DEFAULT_CACHE_EACH_SIZE,
        |d, v| walk::count(d, "max_cache_each_size", v, 1),
    );
    let on_memory = match sec.get("max_cache_each_size_on_memory") {
        Some(v) => {
            let n = walk::count(d, "max_cache_each_size_on_memory", v, 0);
            if let (Some(n), Some(max)) = (n, each) {
                if n > max {
                    d.error(
                        &v.span(),
                        format!("`max_cache_each_size_on_memory` ({n}) is greater than `max_cache_each_size` ({max})"),
                    );
                    return None;
                }
            }
            n
        }
        None => each,
    };
    Some(CacheSettings {
        cache_dir: dir?,
        max_cache_entry: entries?,
        max_cache_each_size: each?,
        max_cache_each_size_on_memory: on_memory?,
    })
}

fn acme(d: &mut Diags, v: &Value) -> Option<AcmeSettings> {
    let sec = section(d, "acme", "`[experimental.acme]`".to_string(), v, ACME_KEYS)?;
    let dir_url = l4::opt(d, &sec, "dir_url", DEFAULT_ACME_DIR.to_string(), |d, v| {
        let s = walk::string(d, "dir_url", v)?;
        if !(s.starts_with("https://") || s.starts_with("http://"))
            || s.contains(char::is_whitespace)
        {
            d.error(
                &v.span(),
                format!(
                    "`dir_url`: {} is not an http(s) URL of an ACME directory",
                    walk::echo(s)
                ),
            );
            return None;
        }
        Some(s.to_string())
    });
    let email = sec.require(d, "email").and_then(|v| {
        let s = walk::string(d, "email", v)?;
        let ok = s.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !s.contains(char::is_whitespace)
        });
        if !ok {
            d.error(
                &v.span(),
                format!(
                    "`email`: {} is not an email address (the ACME account contact)",
                    walk::echo(s)
                ),
            );
            return None;
        }
        Some(s.to_string())
    });
    let registry = l4::opt(
        d,
        &sec,
        "registry_path",
        DEFAULT_ACME_REGISTRY.into(),
        |d, v| walk::string(d, "registry_path", v).map(Into::into),
    );
    Some(AcmeSettings {
        dir_url: dir_url?,
        email: email?,
        registry_path: registry?,
    })
}

fn recv_proxy(d: &mut Diags, v: &Value) -> Option<RecvProxySettings> {
    let sec = section(
        d,
        "tcp_recv_proxy_protocol",
        "`[experimental.tcp_recv_proxy_protocol]`".to_string(),
        v,
        RECV_PROXY_KEYS,
    )?;
    let trusted = sec.require(d, "trusted_proxies").and_then(|v| {
        let list = walk::strings(d, "trusted_proxies", v)?;
        if list.is_empty() {
            d.error(
                &v.span(),
                "`trusted_proxies` is empty; list the CIDRs allowed to send PROXY headers, e.g. [\"127.0.0.1/32\"]",
            );
            return None;
        }
        let parsed: Vec<_> = list
            .iter()
            .map(|(s, span)| cidr(d, "trusted_proxies", s, span))
            .collect();
        parsed.into_iter().collect::<Option<Vec<_>>>()
    });
    let timeout = l4::opt(d, &sec, "timeout", DEFAULT_PROXY_HEADER_TIMEOUT, |d, v| {
        let t = match v.get_ref() {
            toml::de::DeValue::Integer(_) => {
                walk::int(d, "timeout", v, 0, u64::MAX).map(Duration::from_millis)?
            }
            _ => walk::duration(d, "timeout", v)?,
        };
        if t.is_zero() {
            d.warn(
                &v.span(),
                "`timeout = 0` means 5s here (as in rpxy); a short explicit value is better",
            );
            return Some(ZERO_PROXY_HEADER_TIMEOUT);
        }
        Some(t)
    });
    Some(RecvProxySettings {
        trusted_proxies: trusted?,
        timeout: timeout?,
    })
}
