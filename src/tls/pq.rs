//! The hybrid post-quantum TLS 1.3 key exchange group X25519MLKEM768 and the crypto provider
//! that prefers it. No IO.
//!
//! ring, our TLS crypto provider, has no ML-KEM. Rather than switch to aws-lc-rs (about
//! 0.7 MiB more in the static binary, DESIGN.md), the ML-KEM-768 half comes from the pure
//! Rust `ml-kem` crate (about 32 KiB) and the X25519 half from ring. The wire format is the
//! one aws-lc, BoringSSL, NSS and rustls implement (draft-ietf-tls-ecdhe-mlkem, code point
//! 0x11EC), with the ML-KEM part **first** (the older X25519Kyber768Draft00 put X25519
//! first):
//!
//! | value         | bytes                                                         |
//! |---------------|---------------------------------------------------------------|
//! | client share  | ML-KEM-768 encapsulation key (1184) ‖ X25519 public key (32)  |
//! | server share  | ML-KEM-768 ciphertext (1088) ‖ X25519 public key (32)         |
//! | shared secret | ML-KEM shared secret (32) ‖ X25519 shared secret (32)         |

use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{Ciphertext, EncodedSizeUser, KemCore, MlKem768, array::typenum::Unsigned};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::crypto::ring::kx_group;
use rustls::crypto::{
    ActiveKeyExchange, CompletedKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup,
};
use rustls::ffdhe_groups::FfdheGroup;
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};

type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;
type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;

/// ML-KEM-768 encapsulation key: 3 × 256 twelve-bit coefficients, then the 32-byte seed ρ.
const MLKEM_EK_LEN: usize = <EncapsulationKey as EncodedSizeUser>::EncodedSize::USIZE;
/// ML-KEM-768 ciphertext.
const MLKEM_CT_LEN: usize = <MlKem768 as KemCore>::CiphertextSize::USIZE;
/// The part of the encapsulation key holding the coefficients the modulus check covers.
const MLKEM_EK_COEFF_LEN: usize = MLKEM_EK_LEN - 32;
/// ML-KEM's modulus q; every coefficient of an honest encapsulation key is below it.
const MLKEM_Q: u16 = 3329;
/// X25519 public keys and shared secrets (RFC 7748).
const X25519_LEN: usize = 32;
/// What the client sends in its `key_share` entry.
const CLIENT_SHARE_LEN: usize = MLKEM_EK_LEN + X25519_LEN;
/// What the server answers in its `key_share` entry.
const SERVER_SHARE_LEN: usize = MLKEM_CT_LEN + X25519_LEN;
/// ML-KEM shared secret ‖ X25519 shared secret.
const SECRET_LEN: usize = 32 + X25519_LEN;

// The sizes the draft fixes; a different `ml-kem` parameter set must not slip through.
const _: () = assert!(CLIENT_SHARE_LEN == 1216 && SERVER_SHARE_LEN == 1120);

/// The X25519MLKEM768 hybrid key exchange group (ML-KEM-768 from `ml-kem`, X25519 from ring).
///
/// TLS 1.3 only. As a client it also offers its X25519 half as a separate X25519 key share
/// (when X25519 is in the provider's groups too), so a server without post-quantum support
/// picks X25519 without a HelloRetryRequest round trip.
///
/// # Examples
///
/// ```
/// use rustls::NamedGroup;
/// use sluice::tls::pq::X25519MLKEM768;
///
/// assert_eq!(X25519MLKEM768.name(), NamedGroup::X25519MLKEM768);
/// let client = X25519MLKEM768.start().unwrap();
/// assert_eq!(client.pub_key().len(), 1184 + 32);
/// ```
pub static X25519MLKEM768: &dyn SupportedKxGroup = &X25519MlKem768;

/// The crypto provider sluice's TLS uses: ring's default provider with X25519MLKEM768
/// preferred over the classical groups.
///
/// Key exchange groups, in preference order: X25519MLKEM768, X25519, secp256r1, secp384r1.
/// Cipher suites, signature verification, randomness and key loading are ring's defaults.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// let provider = sluice::tls::pq::provider();
/// assert_eq!(provider.kx_groups[0].name(), rustls::NamedGroup::X25519MLKEM768);
/// let _builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider));
/// ```
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        kx_groups: vec![
            X25519MLKEM768,
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ],
        ..rustls::crypto::ring::default_provider()
    }
}

#[derive(Debug)]
struct X25519MlKem768;

impl SupportedKxGroup for X25519MlKem768 {
    /// Client side: a fresh ML-KEM-768 key pair and X25519 key; the share is ek ‖ X25519 pub.
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let rng = SystemRandom::new();
        let mut kem_rng = KemRng::new(&rng);
        let (decapsulation_key, encapsulation_key) = MlKem768::generate(&mut kem_rng);
        kem_rng.result()?;
        let (x25519, x25519_pub) = x25519_key(&rng)?;

        let mut pub_key = Vec::with_capacity(CLIENT_SHARE_LEN);
        pub_key.extend_from_slice(&encapsulation_key.as_bytes());
        pub_key.extend_from_slice(x25519_pub.as_ref());
        Ok(Box::new(ClientKeyExchange {
            decapsulation_key: Box::new(decapsulation_key),
            x25519,
            pub_key,
        }))
    }

    /// Server side: encapsulate to the client's ML-KEM key and agree on X25519 in one step
    /// (ML-KEM is a KEM: the server's share depends on the client's).
    fn start_and_complete(&self, client_share: &[u8]) -> Result<CompletedKeyExchange, Error> {
        if client_share.len() != CLIENT_SHARE_LEN {
            return Err(invalid_share());
        }
        let (ek_bytes, client_x25519) = client_share
            .split_at_checked(MLKEM_EK_LEN)
            .ok_or_else(invalid_share)?;
        let ek_bytes = ek_bytes.try_into().map_err(|_| invalid_share())?;
        if !encapsulation_key_is_reduced(ek_bytes) {
            return Err(invalid_share());
        }
        let encapsulation_key = EncapsulationKey::from_bytes(ek_bytes);

        let rng = SystemRandom::new();
        let mut kem_rng = KemRng::new(&rng);
        let (ciphertext, kem_secret) = encapsulation_key
            .encapsulate(&mut kem_rng)
            .map_err(|()| Error::General("ML-KEM encapsulation failed".into()))?;
        kem_rng.result()?;
        let (x25519, x25519_pub) = x25519_key(&rng)?;

        let mut secret = Vec::with_capacity(SECRET_LEN);
        secret.extend_from_slice(&kem_secret);
        x25519_agree(x25519, client_x25519, &mut secret)?;

        let mut pub_key = Vec::with_capacity(SERVER_SHARE_LEN);
        pub_key.extend_from_slice(&ciphertext);
        pub_key.extend_from_slice(x25519_pub.as_ref());
        Ok(CompletedKeyExchange {
            group: NamedGroup::X25519MLKEM768,
            pub_key,
            secret: SharedSecret::from(secret),
        })
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None // and spares the linker rustls's table of FFDHE groups
    }

    /// The draft defines the group for TLS 1.3 only.
    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// A client's key exchange in flight, waiting for the server's share.
struct ClientKeyExchange {
    /// Boxed: ~2.4 KiB of key material that moves with the handshake state.
    decapsulation_key: Box<DecapsulationKey>,
    /// ring's single-use key; `complete` consumes `self`, so it is used at most once.
    x25519: EphemeralPrivateKey,
    /// Encapsulation key ‖ X25519 public key.
    pub_key: Vec<u8>,
}

impl ActiveKeyExchange for ClientKeyExchange {
    fn complete(self: Box<Self>, server_share: &[u8]) -> Result<SharedSecret, Error> {
        if server_share.len() != SERVER_SHARE_LEN {
            return Err(invalid_share());
        }
        let (ciphertext, server_x25519) = server_share
            .split_at_checked(MLKEM_CT_LEN)
            .ok_or_else(invalid_share)?;
        let ciphertext: &Ciphertext<MlKem768> =
            ciphertext.try_into().map_err(|_| invalid_share())?;
        // Never fails: a bad ciphertext yields an unrelated secret (implicit rejection), and
        // the handshake then fails at Finished.
        let kem_secret = self
            .decapsulation_key
            .decapsulate(ciphertext)
            .map_err(|()| Error::General("ML-KEM decapsulation failed".into()))?;

        let mut secret = Vec::with_capacity(SECRET_LEN);
        secret.extend_from_slice(&kem_secret);
        x25519_agree(self.x25519, server_x25519, &mut secret)?;
        Ok(SharedSecret::from(secret))
    }

    /// Our X25519 half, offered on its own too so an X25519-only server needs no retry.
    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        let x25519_pub = self.pub_key.get(MLKEM_EK_LEN..)?;
        Some((NamedGroup::X25519, x25519_pub))
    }

    /// The server picked plain X25519: finish that with the same X25519 key.
    fn complete_hybrid_component(
        self: Box<Self>,
        server_share: &[u8],
    ) -> Result<SharedSecret, Error> {
        let mut secret = Vec::with_capacity(X25519_LEN);
        x25519_agree(self.x25519, server_share, &mut secret)?;
        Ok(SharedSecret::from(secret))
    }

    fn pub_key(&self) -> &[u8] {
        &self.pub_key
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }
}

/// A fresh X25519 key and its public key.
fn x25519_key(rng: &SystemRandom) -> Result<(EphemeralPrivateKey, agreement::PublicKey), Error> {
    let key = EphemeralPrivateKey::generate(&agreement::X25519, rng)
        .map_err(|_| Error::FailedToGetRandomBytes)?;
    let public = key
        .compute_public_key()
        .map_err(|_| Error::General("X25519 public key".into()))?;
    Ok((key, public))
}

/// Appends the X25519 shared secret with `peer` to `secret`. ring rejects a peer key of the
/// wrong length and the all-zero result of a small-order point (RFC 8446 §7.4.2).
fn x25519_agree(key: EphemeralPrivateKey, peer: &[u8], secret: &mut Vec<u8>) -> Result<(), Error> {
    let peer = UnparsedPublicKey::new(&agreement::X25519, peer);
    agreement::agree_ephemeral(key, &peer, |shared| secret.extend_from_slice(shared))
        .map_err(|_| invalid_share())
}

/// FIPS 203 §7.2 encapsulation key check: every 12-bit coefficient is below q, i.e. the key
/// re-encodes to the same bytes. The draft makes servers refuse a client key that fails it;
/// `ml-kem` 0.2 would silently reduce the coefficients instead.
fn encapsulation_key_is_reduced(ek: &ml_kem::Encoded<EncapsulationKey>) -> bool {
    // Three bytes hold two coefficients, low 12 bits first. `ek` has the fixed size asserted
    // above, so all 384 triples are there.
    ek.chunks_exact(3)
        .take(MLKEM_EK_COEFF_LEN / 3)
        .all(|pair| match *pair {
            [b0, b1, b2] => {
                let low = u16::from(b0) | (u16::from(b1 & 0x0f) << 8);
                let high = u16::from(b1 >> 4) | (u16::from(b2) << 4);
                low < MLKEM_Q && high < MLKEM_Q
            }
            _ => false,
        })
}

fn invalid_share() -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare)
}

/// Feeds `ml-kem` (which draws through `rand_core`) from ring's system RNG.
///
/// `rand_core::RngCore::fill_bytes` cannot fail, so a failure is remembered and reported by
/// [`KemRng::result`] once `ml-kem` returns; the zeros it got meanwhile are never used.
struct KemRng<'a> {
    rng: &'a SystemRandom,
    failed: bool,
}

impl<'a> KemRng<'a> {
    fn new(rng: &'a SystemRandom) -> Self {
        Self { rng, failed: false }
    }

    fn result(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::FailedToGetRandomBytes);
        }
        Ok(())
    }
}

impl rand_core::RngCore for KemRng<'_> {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.rng.fill(dest).is_err() {
            self.failed = true;
            dest.fill(0);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        // Any non-zero code will do; ml-kem only calls `fill_bytes`.
        self.result()
            .map_err(|_| rand_core::Error::from(std::num::NonZeroU32::MIN))
    }
}

impl rand_core::CryptoRng for KemRng<'_> {}

#[cfg(test)]
#[path = "pq_tests.rs"]
mod tests;
