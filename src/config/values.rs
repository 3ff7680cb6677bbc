//! Parsers for the value syntaxes inside config strings: durations, `host:port` targets,
//! DNS names, CIDR blocks and listen addresses. Plain `&str` in, value or reason out. No IO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::plan::{Cidr, Target};

/// Appended to every duration error so the user sees a valid spelling.
pub(crate) const DURATION_EXAMPLE: &str = "write an integer number of seconds or a string like \"500ms\", \"30s\", \"1m30s\", \"2h\", \"1d\"";

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// `"500ms"`, `"30s"`, `"1m"`, `"1h"`, `"2d"` and sums of them such as `"1m30s"` or
/// `"1h 30m"`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(digits);
        if num.is_empty() {
            return Err(format!("expected a number at `{rest}`"));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let ms_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{num}` has no unit")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        let n: u64 = num.parse().map_err(|_| "number too large".to_string())?;
        total_ms = n
            .checked_mul(ms_per_unit)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = after.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

/// The shortest spelling [`parse_duration`] reads back: `1h`, `1m30s`, `500ms`, `0s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut left = ms;
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = left / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            left -= n * size;
        }
    }
    out
}

/// A port `1..=65535`.
pub(crate) fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) => Err("port 0 is not allowed (1..=65535)".to_string()),
        Ok(p) if !s.starts_with('+') => Ok(p),
        _ => Err(format!("port `{s}` is not a number 1..=65535")),
    }
}

/// `"1.2.3.4:53"`, `"[2001:db8::1]:443"` or `"backend.lan:8080"`.
pub(crate) fn parse_target(s: &str) -> Result<Target, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, port)) = rest.split_once("]:") else {
            return Err("expected `[IPv6 address]:port`".to_string());
        };
        let ip: Ipv6Addr = host
            .parse()
            .map_err(|_| format!("`{host}` is not an IPv6 address"))?;
        let port = parse_port(port)?;
        return Ok(Target {
            host: ip.to_string(),
            port,
            ip: Some(IpAddr::V6(ip)),
        });
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(
            "missing `:port` (write e.g. \"backend.lan:443\" or \"10.0.0.2:443\")".to_string(),
        );
    };
    if host.contains(':') {
        return Err(format!("IPv6 addresses need brackets: \"[{host}]:{port}\""));
    }
    let port = parse_port(port)?;
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Target {
            host: host.to_string(),
            port,
            ip: Some(IpAddr::V4(ip)),
        });
    }
    check_name(host, false)?;
    Ok(Target {
        host: host.to_string(),
        port,
        ip: None,
    })
}

/// A DNS host name of LDH labels (letters, digits, hyphens), at most 253 characters, one
/// optional trailing dot; with `wildcard`, `*.` may lead (`*.example.com`).
pub(crate) fn check_name(name: &str, wildcard: bool) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let bare = match bare.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Err(format!("`{name}`: a wildcard is not allowed here")),
        None => bare,
    };
    if bare.is_empty() {
        return Err("empty host name".to_string());
    }
    if bare.len() > MAX_NAME_LEN {
        return Err(format!("host name longer than {MAX_NAME_LEN} characters"));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{name}` is not a valid IPv4 address"));
    }
    for label in labels {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "`{name}` is not a host name (labels are 1..={MAX_LABEL_LEN} characters)"
            ));
        }
        if !ok_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{name}` is not a host name (letters, digits and inner hyphens only)"
            ));
        }
    }
    Ok(())
}

/// `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address (a /32 or /128). Host bits are
/// cleared; the flag says whether there were any.
pub(crate) fn parse_cidr(s: &str) -> Result<(Cidr, bool), String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP address (write e.g. \"10.0.0.0/8\")"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => return Err(format!("prefix length `/{p}` must be 0..={max}")),
        },
    };
    let masked = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok((
        Cidr {
            addr: masked,
            prefix,
        },
        masked != addr,
    ))
}

/// An IPv4 listen address, no port.
pub(crate) fn parse_listen_v4(s: &str) -> Result<Ipv4Addr, String> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    if parse_listen_v6(s).is_ok() {
        return Err(format!(
            "`{s}` is an IPv6 address; put it in `listen_address_v6`"
        ));
    }
    if s.parse::<std::net::SocketAddrV4>().is_ok() {
        return Err(format!(
            "`{s}`: give the address without a port (the port is `listen_port`)"
        ));
    }
    Err(format!("`{s}` is not an IPv4 address"))
}

/// An IPv6 listen address, bare (`::1`) or bracketed (`[::1]`), no port.
pub(crate) fn parse_listen_v6(s: &str) -> Result<Ipv6Addr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<Ipv6Addr>() {
        return Ok(ip);
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(format!(
            "`{s}` is an IPv4 address; put it in `listen_address_v4`"
        ));
    }
    if s.parse::<std::net::SocketAddrV6>().is_ok() {
        return Err(format!(
            "`{s}`: give the address without a port (the port is `listen_port`)"
        ));
    }
    Err(format!("`{s}` is not an IPv6 address"))
}
