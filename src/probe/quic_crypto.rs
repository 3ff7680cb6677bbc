//! QUIC Initial packet protection, client side (RFC 9001 §5, RFC 9369 §3.3): keys anyone
//! can derive from the client's first Destination Connection ID, header-protection masks
//! and AES-128-GCM opening. Pure computation, no IO.

use ring::aead::quic::{AES_128, HeaderProtectionKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::error::Unspecified;
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};

/// The QUIC versions whose Initial packets this module can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// RFC 9000, wire value 0x00000001.
    V1,
    /// RFC 9369, wire value 0x6b3343cf.
    V2,
}

impl Version {
    pub(super) fn from_wire(version: u32) -> Option<Self> {
        match version {
            0x0000_0001 => Some(Version::V1),
            0x6b33_43cf => Some(Version::V2),
            _ => None,
        }
    }

    /// The Initial salt (RFC 9001 §5.2, RFC 9369 §3.3.1).
    fn salt(self) -> &'static [u8] {
        match self {
            Version::V1 => &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Version::V2 => &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
        }
    }

    /// HKDF labels for the packet key, IV and header-protection key (RFC 9369 §3.3.2).
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }
}

/// The raw client Initial secrets; kept apart from [`ClientInitialKeys`] so the RFC test
/// vectors can be checked byte for byte.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientInitialSecrets {
    pub client_secret: [u8; 32],
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

impl ClientInitialSecrets {
    /// Derive the client's Initial secrets from its original Destination Connection ID.
    ///
    /// # Errors
    /// Never in practice (ring rejects only impossible output lengths).
    pub(super) fn derive(version: Version, dcid: &[u8]) -> Result<Self, Unspecified> {
        let initial = Salt::new(HKDF_SHA256, version.salt()).extract(dcid);
        let mut client_secret = [0; 32];
        expand_label(&initial, b"client in", &mut client_secret)?;
        let client = Prk::new_less_safe(HKDF_SHA256, &client_secret);
        let [key_label, iv_label, hp_label] = version.labels();
        let mut secrets = ClientInitialSecrets {
            client_secret,
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&client, key_label, &mut secrets.key)?;
        expand_label(&client, iv_label, &mut secrets.iv)?;
        expand_label(&client, hp_label, &mut secrets.hp)?;
        Ok(secrets)
    }
}

/// An output length for `Prk::expand`.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, filling `out`.
fn expand_label(prk: &Prk, label: &[u8], out: &mut [u8]) -> Result<(), Unspecified> {
    let out_len = u16::try_from(out.len())
        .map_err(|_| Unspecified)?
        .to_be_bytes();
    let label_len = [u8::try_from(b"tls13 ".len() + label.len()).map_err(|_| Unspecified)?];
    let info: [&[u8]; 5] = [&out_len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len()))?.fill(out)
}

/// What opening a client Initial packet needs, derived once per probe.
pub(super) struct ClientInitialKeys {
    aead: LessSafeKey,
    iv: [u8; 12],
    hp: HeaderProtectionKey,
}

impl ClientInitialKeys {
    /// # Errors
    /// Never in practice (ring rejects only wrong key lengths).
    pub(super) fn new(version: Version, dcid: &[u8]) -> Result<Self, Unspecified> {
        let secrets = ClientInitialSecrets::derive(version, dcid)?;
        Ok(ClientInitialKeys {
            aead: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &secrets.key)?),
            iv: secrets.iv,
            hp: HeaderProtectionKey::new(&AES_128, &secrets.hp)?,
        })
    }

    /// The 5-byte header-protection mask for a 16-byte ciphertext sample (RFC 9001 §5.4.3).
    ///
    /// # Errors
    /// Never for a 16-byte sample.
    pub(super) fn header_mask(&self, sample: &[u8; 16]) -> Result<[u8; 5], Unspecified> {
        self.hp.new_mask(sample)
    }

    /// Decrypt and authenticate `payload` (ciphertext and tag) in place, with the
    /// unprotected header as associated data; returns the plaintext.
    ///
    /// # Errors
    /// When the tag does not verify.
    pub(super) fn open<'p>(
        &self,
        packet_number: u64,
        header: &[u8],
        payload: &'p mut [u8],
    ) -> Result<&'p mut [u8], Unspecified> {
        self.aead
            .open_in_place(self.nonce(packet_number), Aad::from(header), payload)
    }

    /// Encrypt `payload` in place and append the tag (test packets only).
    #[cfg(test)]
    pub(super) fn seal(&self, packet_number: u64, header: &[u8], payload: &mut Vec<u8>) {
        self.aead
            .seal_in_place_append_tag(self.nonce(packet_number), Aad::from(header), payload)
            .expect("AES-GCM seals any test-sized payload");
    }

    /// The IV XOR the packet number, left-padded to 12 bytes (RFC 9001 §5.3).
    fn nonce(&self, packet_number: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, p) in nonce.iter_mut().rev().zip(packet_number.to_le_bytes()) {
            *n ^= p;
        }
        Nonce::assume_unique_for_key(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2).expect("even"), 16).expect("hex"))
            .collect();
        bytes.try_into().expect("length")
    }

    const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

    #[test]
    fn rfc9001_a1_client_initial_keys() {
        let s = ClientInitialSecrets::derive(Version::V1, &DCID).unwrap();
        assert_eq!(
            s.client_secret,
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        assert_eq!(s.key, hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(s.iv, hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(s.hp, hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9369_a1_client_initial_keys() {
        let s = ClientInitialSecrets::derive(Version::V2, &DCID).unwrap();
        assert_eq!(
            s.client_secret,
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        );
        assert_eq!(s.key, hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(s.iv, hex("91f73e2351d8fa91660e909f"));
        assert_eq!(s.hp, hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn rfc9001_a2_header_protection_mask() {
        let keys = ClientInitialKeys::new(Version::V1, &DCID).unwrap();
        let mask = keys
            .header_mask(&hex("d1b1c98dd7689fb8ec11d242b123dc9b"))
            .unwrap();
        assert_eq!(mask, hex("437b9aec36"));
    }

    #[test]
    fn rfc9369_a2_header_protection_mask() {
        let keys = ClientInitialKeys::new(Version::V2, &DCID).unwrap();
        let mask = keys
            .header_mask(&hex("ffe67b6abcdb4298b485dd04de806071"))
            .unwrap();
        assert_eq!(mask, hex("94a0c95e80"));
    }

    #[test]
    fn nonce_is_iv_xor_packet_number() {
        let keys = ClientInitialKeys::new(Version::V1, &DCID).unwrap();
        // RFC 9001 A.2: packet number 2 with iv fa044b2f42a3fd3b46fb255c.
        let expected: [u8; 12] = hex("fa044b2f42a3fd3b46fb255e");
        assert_eq!(keys.nonce(2).as_ref(), &expected);
    }

    #[test]
    fn wire_versions_map_to_v1_and_v2_only() {
        assert_eq!(Version::from_wire(1), Some(Version::V1));
        assert_eq!(Version::from_wire(0x6b33_43cf), Some(Version::V2));
        assert_eq!(Version::from_wire(0), None);
        assert_eq!(Version::from_wire(0xff00_001d), None, "draft-29");
    }
}
