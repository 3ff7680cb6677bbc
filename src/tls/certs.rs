//! Certificate and key files into rustls values: PEM chains (leaf first), PKCS#8, PKCS#1
//! (RSA) and SEC1 (EC) keys checked against their certificate, client-CA bundles, the
//! leaf's DNS names and expiry (a minimal DER walk), and the permission check on key files.
//! Reads files; everything else is pure.
#![deny(clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::KeyProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys, RootCertStore};

use crate::wire::Reader;

/// A certificate chain with its signing key, ready for a rustls server.
#[derive(Clone, Debug)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// DNS names of the leaf's subjectAltName, lower-cased (`*.example.com` kept as is);
    /// empty when the leaf has none or its DER could not be walked. For logs and checks.
    pub names: Vec<String>,
    /// The leaf's notAfter; `None` when it could not be read.
    pub not_after: Option<SystemTime>,
}

/// Where private keys are parsed: the `ring` provider's, as for the rest of TLS.
fn key_provider() -> &'static dyn KeyProvider {
    rustls::crypto::ring::default_provider().key_provider
}

/// Load a PEM certificate chain (leaf first, then intermediates) and its PEM private key
/// (PKCS#8, PKCS#1 or SEC1; the two may be one file).
///
/// # Errors
/// A message naming the file and what is wrong with it: unreadable, no CERTIFICATE block,
/// broken PEM, no or an encrypted private key, an unsupported key type, or a key that does
/// not match the first certificate.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<LoadedCert, String> {
    let chain = read_certs(cert_path)?;
    let key_der = read_key(key_path)?;
    let signing = key_provider().load_private_key(key_der).map_err(|e| {
        format!(
            "{}: unsupported key type or malformed key (sluice takes RSA, ECDSA P-256/P-384 and Ed25519): {e}",
            key_path.display()
        )
    })?;
    let key = CertifiedKey::new(chain, signing);
    match key.keys_match() {
        // Unknown: the key cannot tell its public half; nothing to compare (not with ring).
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(mismatch(cert_path, key_path, &key));
        }
        Err(e) => {
            return Err(format!(
                "{}: the first certificate cannot be parsed: {e}",
                cert_path.display()
            ));
        }
    }
    let (names, not_after) = key
        .cert
        .first()
        .and_then(|leaf| leaf_facts(leaf))
        .unwrap_or_default();
    Ok(LoadedCert {
        key: Arc::new(key),
        names,
        not_after,
    })
}

/// The error for a key that does not match the leaf, with a hint when it matches another
/// certificate of the file (the leaf must come first).
fn mismatch(cert_path: &Path, key_path: &Path, key: &CertifiedKey) -> String {
    let later = key.cert.iter().skip(1).position(|c| {
        CertifiedKey::new(vec![c.clone()], key.key.clone())
            .keys_match()
            .is_ok()
    });
    match later {
        Some(i) => format!(
            "{}: the key matches certificate #{} of {}, not the first one: put the leaf certificate first",
            key_path.display(),
            i + 2,
            cert_path.display()
        ),
        None => format!(
            "{}: key does not match the certificate in {}",
            key_path.display(),
            cert_path.display()
        ),
    }
}

/// Load one or more CA certificates (client CAs for mTLS) from a PEM file.
///
/// # Errors
/// A message naming the file: unreadable, broken PEM, no CERTIFICATE block, or a
/// certificate that cannot serve as a trust anchor.
pub fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = read_certs(path)?;
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            format!(
                "{}: certificate #{} is not a usable CA certificate: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(certs)
}

/// A warning when group or others have any access to the key file (mode & 0o077);
/// `None` when it is private or its mode cannot be read (the load reports that).
#[cfg(unix)]
pub fn key_file_too_open(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: private key file is accessible to group/others (mode {mode:03o}); `chmod 600` it",
            path.display()
        )
    })
}

/// Permissions are not checked off Unix.
#[cfg(not(unix))]
pub fn key_file_too_open(_path: &Path) -> Option<String> {
    None
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

fn pem_error(path: &Path, e: &pem::Error) -> String {
    format!("{}: broken PEM: {e}", path.display())
}

/// Every CERTIFICATE block of a PEM file, in order; other blocks are skipped.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block (expected PEM `-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key block of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY") => {
            format!(
                "{}: the private key is encrypted; sluice needs it unencrypted (`openssl pkey -in KEY -out PLAIN`)",
                path.display()
            )
        }
        pem::Error::NoItemsFound => format!(
            "{}: no PRIVATE KEY block (expected PKCS#8 `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
            path.display()
        ),
        e => pem_error(path, &e),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- a minimal DER walk: subjectAltName DNS names and notAfter of the leaf ----

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` of TBSCertificate.
const VERSION_TAG: u8 = 0xa0;
/// `[3] EXPLICIT Extensions` of TBSCertificate.
const EXTENSIONS_TAG: u8 = 0xa3;
/// `dNSName [2] IA5String` of GeneralName.
const DNS_NAME_TAG: u8 = 0x82;
/// id-ce-subjectAltName, 2.5.29.17.
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];

/// One DER element: its tag and a reader over its contents. `None` on a high tag number,
/// an indefinite or over-long length, or truncation.
fn tlv<'a>(r: &mut Reader<'a>) -> Option<(u8, Reader<'a>)> {
    let tag = r.u8().ok()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = r.u8().ok()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        r.take(n)
            .ok()?
            .iter()
            .fold(0usize, |v, &b| (v << 8) | usize::from(b))
    };
    Some((tag, r.sub(len).ok()?))
}

/// The next element's contents when it has tag `want`.
fn expect<'a>(r: &mut Reader<'a>, want: u8) -> Option<Reader<'a>> {
    let (tag, body) = tlv(r)?;
    (tag == want).then_some(body)
}

/// The leaf's subjectAltName DNS names (lower-cased) and notAfter. `None` when the DER is
/// not a certificate this walk understands.
pub(crate) fn leaf_facts(der: &[u8]) -> Option<(Vec<String>, Option<SystemTime>)> {
    let mut cert = expect(&mut Reader::new(der), SEQUENCE)?;
    let mut tbs = expect(&mut cert, SEQUENCE)?;
    if tbs.rest().first() == Some(&VERSION_TAG) {
        tlv(&mut tbs)?;
    }
    expect(&mut tbs, INTEGER)?; // serialNumber
    expect(&mut tbs, SEQUENCE)?; // signature
    expect(&mut tbs, SEQUENCE)?; // issuer
    let mut validity = expect(&mut tbs, SEQUENCE)?;
    tlv(&mut validity)?; // notBefore
    let not_after = tlv(&mut validity).and_then(|(tag, body)| der_time(tag, body.rest()));
    expect(&mut tbs, SEQUENCE)?; // subject
    expect(&mut tbs, SEQUENCE)?; // subjectPublicKeyInfo
    let mut names = Vec::new();
    while !tbs.is_empty() {
        let (tag, mut body) = tlv(&mut tbs)?;
        if tag == EXTENSIONS_TAG {
            let mut exts = expect(&mut body, SEQUENCE)?;
            while !exts.is_empty() {
                let mut ext = expect(&mut exts, SEQUENCE)?;
                if expect(&mut ext, OID)?.rest() == SAN_OID {
                    names.extend(san_dns_names(ext)?);
                }
            }
        }
    }
    Some((names, not_after))
}

/// The invariants [`leaf_facts`] keeps, checked by the fuzz target `cert_der` and by the
/// corpus replay in `cargo test`: no panic; input that does not start with one whole DER
/// element gives `None`; the bytes after that element change nothing, and every cut of it
/// gives `None`; the names are lower-cased (no ASCII upper case) and no longer together
/// than the input; notAfter is before the year 10000 (GeneralizedTime has four digits).
///
/// Not asserted, because it does not hold: that names are DNS names. A dNSName's bytes are
/// taken as they are when they are UTF-8, so spaces, control characters (a newline) and
/// non-ASCII letters come through.
#[doc(hidden)]
pub fn fuzz_leaf_facts(data: &[u8]) {
    /// 10000-01-01T00:00:00Z, just after the latest GeneralizedTime (with a leap second).
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    let facts = leaf_facts(data);
    let mut r = Reader::new(data);
    if tlv(&mut r).is_none() {
        assert_eq!(facts, None, "a certificate from no whole DER element");
        return;
    }
    let len = data.len() - r.len();
    let own = data.get(..len).unwrap_or_default();
    assert_eq!(
        leaf_facts(own),
        facts,
        "the bytes after the certificate mattered"
    );
    for cut in [1, 2, 3, 5, 8, 13, 64, 512] {
        let prefix = own.get(..len.saturating_sub(cut)).unwrap_or_default();
        assert_eq!(leaf_facts(prefix), None, "a certificate cut by {cut} bytes");
    }
    let Some((names, not_after)) = facts else {
        return;
    };
    for name in &names {
        assert!(
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'-' | b'.' | b'*')),
            "name not a lower-case DNS name: {name:?}"
        );
    }
    assert!(names.iter().map(String::len).sum::<usize>() <= data.len());
    if let Some(t) = not_after {
        assert!(t < SystemTime::UNIX_EPOCH + YEAR_10000, "notAfter {t:?}");
    }
}

/// DNS names of a subjectAltName extension, its OID already read.
fn san_dns_names(mut ext: Reader<'_>) -> Option<Vec<String>> {
    if ext.rest().first() == Some(&BOOLEAN) {
        tlv(&mut ext)?; // critical
    }
    let mut value = expect(&mut ext, OCTET_STRING)?;
    let mut general_names = expect(&mut value, SEQUENCE)?;
    let mut out = Vec::new();
    while !general_names.is_empty() {
        let (tag, body) = tlv(&mut general_names)?;
        if tag == DNS_NAME_TAG {
            // Only DNS-shaped names (they end up in log lines): letters, digits, `-`, `.`
            // and a leading `*`; anything else is skipped.
            let raw = body.rest();
            let dns_shaped = !raw.is_empty()
                && raw
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*'));
            if let (true, Ok(name)) = (dns_shaped, std::str::from_utf8(raw)) {
                out.push(name.to_ascii_lowercase());
            }
        }
    }
    Some(out)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`)
/// as a time; `None` for other forms or dates before 1970.
pub(crate) fn der_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let mut r = Reader::new(text);
    let year = match tag {
        UTC_TIME => match digits(&mut r, 2)? {
            yy @ 0..=49 => 2000 + yy,
            yy => 1900 + yy,
        },
        GENERALIZED_TIME => digits(&mut r, 4)?,
        _ => return None,
    };
    let month = digits(&mut r, 2)?;
    let day = digits(&mut r, 2)?;
    let (hour, minute, second) = (digits(&mut r, 2)?, digits(&mut r, 2)?, digits(&mut r, 2)?);
    if r.rest() != b"Z"
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// `n` ASCII digits as a number.
fn digits(r: &mut Reader<'_>, n: usize) -> Option<u32> {
    r.take(n).ok()?.iter().try_fold(0u32, |v, &b| {
        b.is_ascii_digit().then(|| v * 10 + u32::from(b - b'0'))
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "certs_tests.rs"]
pub(crate) mod tests;
