//! `[apps.<name>]` of the rpxy shape: server names, TLS, access lists, `reverse_proxy` routes,
//! their upstreams, balancing, options and health checks. No IO (files are only named).
//!
//! Decisions beyond rpxy:
//! - An app-level `load_balance` (the seed README's form) is the default for the app's routes
//!   that do not set their own.
//! - `allowhosts`/`denyhosts` (TODO in rpxy's example) are client CIDR lists (`'*'`: all).
//! - An app without routes loads with a warning (every request to it gets 404); an app without
//!   `tls` when there is no `listen_port` cannot be reached (an error, as in rpxy).
//! - `https_redirection` without both ports and `tls` without `listen_port_tls` have no effect:
//!   warnings.
//!
//! Routes and upstreams are read by `http_routes`.

use std::net::{IpAddr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::http::{GENERATE_SECRET, cidr, section};
use super::http_routes::routes;
use super::l4;
use super::values;
use super::walk::{self, Diags, Section, Value};
use crate::plan::{AppTls, CertSource, Cidr, ClientAccess, HttpApp, HttpBalance};

/// Keys of one `[apps.<name>]` table.
pub(crate) const APP_KEYS: &[&str] = &[
    "server_name",
    "reverse_proxy",
    "tls",
    "load_balance",
    "allowhosts",
    "denyhosts",
];
const TLS_KEYS: &[&str] = &[
    "https_redirection",
    "tls_cert_path",
    "tls_cert_key_path",
    "client_ca_cert_path",
    "acme",
];

/// What app validation needs to know about the rest of the file.
pub(crate) struct AppContext<'p> {
    pub(crate) http_port: bool,
    pub(crate) tls_port: bool,
    /// `sticky_cookie_secret` is set (or was set but invalid: reported already).
    pub(crate) sticky_secret: bool,
    /// `[experimental.acme]` exists (or `[experimental]` was invalid: reported already).
    pub(crate) acme: bool,
    pub(crate) base: &'p Path,
}

/// App names in file order (for `default_app`, even when an app is invalid) and the apps,
/// `None` when any is invalid.
pub(crate) fn apps(
    d: &mut Diags,
    root: &Section,
    cx: &AppContext,
) -> (Vec<String>, Option<Vec<HttpApp>>) {
    let mut names = Vec::new();
    let Some(apps_v) = root.get("apps") else {
        return (names, Some(Vec::new()));
    };
    let Some(apps) = walk::table(d, "apps", apps_v) else {
        return (names, None);
    };
    let apps = Section {
        table: apps,
        label: "`[apps]`".to_string(),
        span: apps_v.span(),
    };
    let mut out = Vec::new();
    let mut ok = true;
    // (lower-cased server name, span) of each app so far.
    let mut seen: Vec<(String, Range<usize>)> = Vec::new();
    for (name, key_span, v) in apps.entries() {
        names.push(name.to_string());
        let label = format!("`[apps.{name}]`");
        let DeValue::Table(t) = v.get_ref() else {
            d.error(
                &key_span,
                format!(
                    "{label} must be a table with `server_name`, found {}",
                    walk::found(v.get_ref())
                ),
            );
            ok = false;
            continue;
        };
        let sec = Section {
            table: t,
            label,
            span: v.span(),
        };
        match app(d, &sec, name, cx, &mut seen) {
            Some(a) => out.push(a),
            None => ok = false,
        }
    }
    (names, ok.then_some(out))
}

fn app(
    d: &mut Diags,
    sec: &Section,
    name: &str,
    cx: &AppContext,
    seen: &mut Vec<(String, Range<usize>)>,
) -> Option<HttpApp> {
    sec.check_keys(d, APP_KEYS);
    let server_name = sec
        .require(d, "server_name")
        .and_then(|v| server_name(d, v, seen));
    let tls = l4::opt(d, sec, "tls", None, |d, v| {
        tls(d, v, &sec.label, cx).map(Some)
    });
    match (&tls, cx.http_port) {
        (Some(None), false) => d.error(
            &sec.span,
            format!(
                "{} has no `tls` and there is no `listen_port`: it cannot be reached (give it `tls = {{ tls_cert_path = …, tls_cert_key_path = … }}` or set `listen_port`)",
                sec.label
            ),
        ),
        (Some(Some(_)), _) if !cx.tls_port => {
            if let Some(span) = sec.key_span("tls") {
                d.warn(
                    &span,
                    format!("`tls` of {} has no effect without `listen_port_tls`", sec.label),
                );
            }
        }
        _ => {}
    }
    let app_balance = l4::opt(d, sec, "load_balance", None, |d, v| {
        balance(d, v, cx).map(Some)
    });
    let allow = l4::opt(d, sec, "allowhosts", Vec::new(), |d, v| {
        hosts(d, "allowhosts", v)
    });
    let deny = l4::opt(d, sec, "denyhosts", Vec::new(), |d, v| {
        hosts(d, "denyhosts", v)
    });
    let routes = match sec.get("reverse_proxy") {
        Some(v) => routes(d, v, name, app_balance.flatten(), cx),
        None => {
            d.warn(
                &sec.span,
                format!(
                    "{} has no `reverse_proxy`: every request to it gets 404",
                    sec.label
                ),
            );
            if let Some(span) = sec.key_span("load_balance") {
                d.warn(
                    &span,
                    "`load_balance` has no effect without `reverse_proxy`",
                );
            }
            Some(Vec::new())
        }
    };
    Some(HttpApp {
        name: name.to_string(),
        server_name: server_name?,
        tls: tls?,
        routes: routes?,
        access: ClientAccess {
            allow: allow?,
            deny: deny?,
        },
    })
}

/// Lower-cased; a DNS name (`*.` allowed) or an IP literal; unique across apps.
fn server_name(d: &mut Diags, v: &Value, seen: &mut Vec<(String, Range<usize>)>) -> Option<String> {
    let s = walk::string(d, "server_name", v)?;
    let lower = s.to_ascii_lowercase();
    let bare = lower.strip_suffix('.').unwrap_or(&lower).to_string();
    let literal = bare.parse::<IpAddr>().is_ok()
        || bare
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|r| r.parse::<Ipv6Addr>().is_ok());
    if !literal {
        if let Err(e) = values::check_name(&bare, true) {
            d.error(&v.span(), format!("`server_name`: {e}"));
            return None;
        }
    }
    if let Some((_, span)) = seen.iter().find(|(n, _)| *n == bare) {
        let line = d.line(span);
        d.error(
            &v.span(),
            format!(
                "`server_name` {} is already the server name of the app on line {line}",
                walk::echo(&bare)
            ),
        );
        return None;
    }
    seen.push((bare.clone(), v.span()));
    Some(bare)
}

fn path_of(base: &Path, s: &str) -> PathBuf {
    let p = Path::new(s);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A non-empty path string, joined to the config file's directory when relative.
pub(crate) fn file_path(d: &mut Diags, key: &str, v: &Value, base: &Path) -> Option<PathBuf> {
    let s = walk::string(d, key, v)?;
    if s.trim().is_empty() {
        d.error(&v.span(), format!("`{key}` is empty"));
        return None;
    }
    Some(path_of(base, s))
}

fn tls(d: &mut Diags, v: &Value, app: &str, cx: &AppContext) -> Option<AppTls> {
    let sec = section(d, "tls", format!("`tls` of {app}"), v, TLS_KEYS)?;
    let redirect = l4::opt(d, &sec, "https_redirection", None, |d, v| {
        walk::boolean(d, "https_redirection", v).map(Some)
    });
    let acme = l4::opt(d, &sec, "acme", false, |d, v| walk::boolean(d, "acme", v));
    let file = |d: &mut Diags, key: &str| {
        l4::opt(d, &sec, key, None, |d, v| {
            file_path(d, key, v, cx.base).map(Some)
        })
    };
    let cert = file(d, "tls_cert_path");
    let key = file(d, "tls_cert_key_path");
    let ca = file(d, "client_ca_cert_path");
    let source = match (acme?, cert?, key?) {
        (true, None, None) => {
            if !cx.acme {
                let span = sec.get("acme").map_or(v.span(), |a| a.span());
                d.error(
                    &span,
                    format!("`acme = true` in {app} needs an `[experimental.acme]` table (at least `email`)"),
                );
                return None;
            }
            CertSource::Acme
        }
        (true, _, _) => {
            let span = sec.get("acme").map_or(v.span(), |a| a.span());
            d.error(
                &span,
                format!("{app}: `acme = true` and `tls_cert_path`/`tls_cert_key_path` exclude each other: the certificate comes from ACME or from files"),
            );
            return None;
        }
        (false, Some(cert), Some(key)) => CertSource::Files { cert, key },
        (false, Some(_), None) => {
            let span = sec.get("tls_cert_path").map_or(v.span(), |a| a.span());
            d.error(
                &span,
                format!("{app}: `tls_cert_path` needs `tls_cert_key_path` (the private key file)"),
            );
            return None;
        }
        (false, None, Some(_)) => {
            let span = sec.get("tls_cert_key_path").map_or(v.span(), |a| a.span());
            d.error(
                &span,
                format!(
                    "{app}: `tls_cert_key_path` needs `tls_cert_path` (the certificate chain file)"
                ),
            );
            return None;
        }
        (false, None, None) => {
            d.error(
                &v.span(),
                format!(
                    "`tls` of {app} needs `tls_cert_path` and `tls_cert_key_path`, or `acme = true`"
                ),
            );
            return None;
        }
    };
    let redirect = redirect?;
    let both = cx.http_port && cx.tls_port;
    if redirect == Some(true) && !both {
        if let Some(span) = sec.key_span("https_redirection") {
            d.warn(
                &span,
                "`https_redirection` has no effect unless both `listen_port` and `listen_port_tls` are set",
            );
        }
    }
    Some(AppTls {
        cert: source,
        client_ca_cert_path: ca?,
        https_redirection: both && redirect.unwrap_or(true),
    })
}

/// `allowhosts`/`denyhosts`: CIDRs or bare addresses; `'*'` is every address.
fn hosts(d: &mut Diags, key: &str, v: &Value) -> Option<Vec<Cidr>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in walk::strings(d, key, v)? {
        if s == "*" {
            for any in ["0.0.0.0/0", "::/0"] {
                out.extend(values::parse_cidr(any).ok().map(|(c, _)| c));
            }
            continue;
        }
        match cidr(d, key, s, &span) {
            Some(c) => out.push(c),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

pub(crate) fn balance(d: &mut Diags, v: &Value, cx: &AppContext) -> Option<HttpBalance> {
    let b = walk::choice(d, "load_balance", v, HttpBalance::ALL)?;
    if b == HttpBalance::Sticky && !cx.sticky_secret {
        d.error(
            &v.span(),
            format!("`load_balance = \"sticky\"` needs a top-level `sticky_cookie_secret` (32 bytes, unpadded base64url) to encrypt the cookie; {GENERATE_SECRET}"),
        );
        return None;
    }
    Some(b)
}
