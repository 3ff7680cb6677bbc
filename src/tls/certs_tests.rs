//! Tests of certificate/key loading, and the PKI fixtures the TLS server tests share:
//! rcgen CAs and leaves written as PEM files into a temp dir, and `openssl` for the key
//! encodings rcgen cannot write (PKCS#1, SEC1) and for RSA keys (ring cannot generate them).

#![allow(clippy::indexing_slicing)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SignatureAlgorithm,
};

use super::*;

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sluice-tls-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Write `contents` to `name` in the dir (mode 0600) and return its path.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write fixture");
        set_mode(&path, 0o600);
        path
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A certificate authority (root or intermediate) that issues test certificates.
pub(crate) struct Ca {
    pub(crate) cert: rcgen::Certificate,
    pub(crate) key: KeyPair,
}

/// A leaf certificate with its key, as PEM.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: rustls::pki_types::CertificateDer<'static>,
}

fn named(cn: &str, names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("cert params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = named(cn, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
}

impl Ca {
    /// A self-signed root CA with an ECDSA P-256 key.
    pub(crate) fn root(cn: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let cert = ca_params(cn).self_signed(&key).expect("self-sign CA");
        Ca { cert, key }
    }

    /// An intermediate CA issued by this one.
    pub(crate) fn intermediate(&self, cn: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = ca_params(cn)
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign intermediate");
        Ca { cert, key }
    }

    /// A server leaf for `names` with a fresh key of `alg`.
    pub(crate) fn server_leaf(&self, names: &[&str], alg: &'static SignatureAlgorithm) -> Leaf {
        let key = KeyPair::generate_for(alg).expect("leaf key");
        self.leaf_with_key(names, key, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client-auth leaf (ECDSA P-256).
    pub(crate) fn client_leaf(&self, cn: &str) -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
        self.leaf_with_key(&[cn], key, ExtendedKeyUsagePurpose::ClientAuth)
    }

    pub(crate) fn leaf_with_key(
        &self,
        names: &[&str],
        key: KeyPair,
        usage: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let mut params = named(names.first().copied().unwrap_or("leaf"), names);
        params.extended_key_usages = vec![usage];
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// Run `openssl` with `args`, feeding `stdin`; its stdout. Panics with a clear message
/// when the binary is missing (`make deps-test` installs it) or fails.
pub(crate) fn openssl(args: &[&str], stdin: Option<&Path>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    if let Some(path) = stdin {
        cmd.stdin(std::fs::File::open(path).expect("open openssl input"));
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("these tests need the `openssl` binary (run `make deps-test`): {e}")
    });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl output is text")
}

/// `key_pem` re-encoded in its algorithm's traditional form: PKCS#1 for RSA, SEC1 for EC.
pub(crate) fn traditional(dir: &TempDir, key_pem: &str) -> String {
    let input = dir.write("pkcs8-input.pem", key_pem);
    openssl(&["pkey", "-traditional"], Some(&input))
}

fn check_loads(dir: &TempDir, leaf: &Leaf, key_pem: &str) -> LoadedCert {
    let cert = dir.write("cert.pem", &leaf.cert_pem);
    let key = dir.write("key.pem", key_pem);
    let loaded = load(&cert, &key).expect("loads");
    assert_eq!(loaded.key.cert.len(), 1);
    assert_eq!(loaded.key.cert[0], leaf.der);
    loaded
}

#[test]
fn loads_ecdsa_p256_pkcs8_with_names_and_expiry() {
    let dir = TempDir::new("p256");
    let leaf =
        Ca::root("Test CA").server_leaf(&["A.test", "*.b.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    assert!(leaf.key_pem.contains("BEGIN PRIVATE KEY"));
    let loaded = check_loads(&dir, &leaf, &leaf.key_pem);
    assert_eq!(loaded.names, vec!["a.test", "*.b.test"]);
    // 2030-01-02T00:00:00Z
    assert_eq!(
        loaded.not_after,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_542_400))
    );
}

#[test]
fn loads_ecdsa_p384_and_ed25519() {
    let dir = TempDir::new("p384-ed");
    let ca = Ca::root("Test CA");
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let leaf = ca.server_leaf(&["a.test"], alg);
        check_loads(&dir, &leaf, &leaf.key_pem);
    }
}

#[test]
fn loads_sec1_ec_key() {
    let dir = TempDir::new("sec1");
    let leaf = Ca::root("Test CA").server_leaf(&["a.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let sec1 = traditional(&dir, &leaf.key_pem);
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
    check_loads(&dir, &leaf, &sec1);
}

#[test]
fn loads_rsa_pkcs8_and_pkcs1_keys() {
    let dir = TempDir::new("rsa");
    let pkcs8 = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        None,
    );
    let key = KeyPair::from_pem(&pkcs8).expect("rcgen reads the RSA key");
    let leaf =
        Ca::root("Test CA").leaf_with_key(&["rsa.test"], key, ExtendedKeyUsagePurpose::ServerAuth);
    check_loads(&dir, &leaf, &pkcs8);
    let pkcs1 = traditional(&dir, &pkcs8);
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    check_loads(&dir, &leaf, &pkcs1);
}

#[test]
fn loads_full_chain_leaf_first_and_combined_file() {
    let dir = TempDir::new("chain");
    let root = Ca::root("Root");
    let mid = root.intermediate("Intermediate");
    let leaf = mid.server_leaf(&["a.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let cert = dir.write("chain.pem", format!("{}{}", leaf.cert_pem, mid.pem()));
    let key = dir.write("key.pem", &leaf.key_pem);
    let loaded = load(&cert, &key).expect("loads");
    assert_eq!(loaded.key.cert.len(), 2);
    assert_eq!(loaded.key.cert[0], leaf.der);
    // One file holding key and chain.
    let both = dir.write(
        "both.pem",
        format!("{}{}{}", leaf.key_pem, leaf.cert_pem, mid.pem()),
    );
    assert_eq!(load(&both, &both).expect("loads").key.cert.len(), 2);
}

#[test]
fn leaf_not_first_is_explained() {
    let dir = TempDir::new("order");
    let root = Ca::root("Root");
    let mid = root.intermediate("Intermediate");
    let leaf = mid.server_leaf(&["a.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let cert = dir.write("chain.pem", format!("{}{}", mid.pem(), leaf.cert_pem));
    let key = dir.write("key.pem", &leaf.key_pem);
    let err = load(&cert, &key).expect_err("wrong order");
    assert!(err.contains("put the leaf certificate first"), "{err}");
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let dir = TempDir::new("errors");
    let ca = Ca::root("Test CA");
    let leaf = ca.server_leaf(&["a.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let other = ca.server_leaf(&["b.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let cert = dir.write("cert.pem", &leaf.cert_pem);
    let key = dir.write("key.pem", &leaf.key_pem);
    let missing = dir.path().join("missing.pem");
    let garbage = dir.write("garbage.pem", "hello, not PEM\n");
    let broken = dir.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let unterminated = dir.write("unterminated.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    let encrypted = dir.write(
        "enc.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let other_key = dir.write("other-key.pem", &other.key_pem);
    let ed448 = dir.write(
        "ed448.pem",
        openssl(&["genpkey", "-algorithm", "ED448"], None),
    );
    let cases: [(&Path, &Path, &[&str]); 8] = [
        (&missing, &key, &["missing.pem", "cannot read"]),
        (&cert, &missing, &["missing.pem", "cannot read"]),
        (&garbage, &key, &["garbage.pem", "no CERTIFICATE block"]),
        (&broken, &key, &["broken.pem", "broken PEM"]),
        (&unterminated, &key, &["unterminated.pem", "broken PEM"]),
        (&cert, &garbage, &["garbage.pem", "no PRIVATE KEY block"]),
        (&cert, &encrypted, &["enc.pem", "encrypted"]),
        (
            &cert,
            &other_key,
            &[
                "other-key.pem",
                "does not match the certificate",
                "cert.pem",
            ],
        ),
    ];
    for (c, k, wants) in cases {
        let err = load(c, k).expect_err("must fail");
        for want in wants {
            assert!(err.contains(want), "{c:?} {k:?}: {err}");
        }
    }
    let err = load(&cert, &ed448).expect_err("Ed448 is not supported");
    assert!(
        err.contains("ed448.pem") && err.contains("unsupported key type"),
        "{err}"
    );
}

#[test]
fn load_ca_reads_one_or_several_certificates() {
    let dir = TempDir::new("ca");
    let (a, b) = (Ca::root("CA A"), Ca::root("CA B"));
    let one = dir.write("one.pem", a.pem());
    assert_eq!(load_ca(&one).expect("one CA"), vec![a.cert.der().clone()]);
    let two = dir.write("two.pem", format!("{}\n{}", a.pem(), b.pem()));
    assert_eq!(load_ca(&two).expect("two CAs").len(), 2);
    let garbage = dir.write("garbage.pem", "nope");
    let err = load_ca(&garbage).expect_err("no cert");
    assert!(
        err.contains("garbage.pem") && err.contains("no CERTIFICATE block"),
        "{err}"
    );
    let junk_der = dir.write(
        "junk.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let err = load_ca(&junk_der).expect_err("not a certificate");
    assert!(err.contains("certificate #1 is not a usable CA"), "{err}");
    assert!(
        load_ca(&dir.path().join("none.pem"))
            .expect_err("missing")
            .contains("cannot read")
    );
}

#[test]
fn key_file_too_open_warns_for_group_or_other_access() {
    let dir = TempDir::new("mode");
    let key = dir.write("key.pem", "x");
    assert_eq!(key_file_too_open(&key), None);
    for mode in [0o640, 0o604, 0o660, 0o644] {
        set_mode(&key, mode);
        let warning = key_file_too_open(&key).expect("warns");
        assert!(
            warning.contains("key.pem") && warning.contains("chmod 600"),
            "{warning}"
        );
    }
    assert_eq!(key_file_too_open(&dir.path().join("missing")), None);
}

#[test]
fn leaf_facts_never_panics_on_truncated_or_corrupt_der() {
    let leaf = Ca::root("Test CA").server_leaf(&["a.test"], &rcgen::PKCS_ED25519);
    let der = leaf.der.as_ref();
    assert!(leaf_facts(der).is_some());
    for n in 0..der.len() {
        let _ = leaf_facts(&der[..n]);
        let mut flipped = der.to_vec();
        flipped[n] ^= 0xff;
        let _ = leaf_facts(&flipped);
    }
    assert_eq!(leaf_facts(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    assert_eq!(leaf_facts(&[0x3f, 0x01, 0x00]), None);
}

#[test]
fn der_times_utc_and_generalized() {
    let at = |secs| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(der_time(0x17, b"700101000000Z"), at(0));
    assert_eq!(der_time(0x17, b"491231235959Z"), at(2_524_607_999)); // 2049
    assert_eq!(der_time(0x17, b"500101000000Z"), None); // 1950: before the epoch
    assert_eq!(der_time(0x18, b"20000229120000Z"), at(951_825_600));
    assert_eq!(der_time(0x18, b"40960101000000Z"), at(67_090_118_400));
    for bad in [
        &b"7001010000Z"[..],
        b"700101000000",
        b"701301000000Z",
        b"70010100000aZ",
        b"",
    ] {
        assert_eq!(der_time(0x17, bad), None, "{bad:?}");
    }
    assert_eq!(der_time(0x04, b"700101000000Z"), None);
}

#[test]
fn cert_der_corpus_replays_without_panics() {
    let dir = format!("{}/fuzz/corpus/cert_der", env!("CARGO_MANIFEST_DIR"));
    let (mut seen, mut real) = (0, 0);
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let der = std::fs::read(&path).expect("corpus file");
        fuzz_leaf_facts(&der);
        seen += 1;
        // The seeds named *.der are whole certificates from openssl (v1 and v3, RSA, ECDSA,
        // Ed25519, UTCTime and GeneralizedTime): the walk must understand every one.
        if path.extension().is_some_and(|e| e == "der") {
            assert!(
                leaf_facts(&der).is_some(),
                "{} not understood",
                path.display()
            );
            real += 1;
        }
    }
    assert!(seen >= 15 && real >= 8, "cert_der corpus went missing");
}
