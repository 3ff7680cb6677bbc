#![allow(clippy::indexing_slicing)]

use http::HeaderMap;
use http::header::COOKIE;

use super::*;

const SECRET: [u8; 32] = [0x42; 32];

fn key() -> StickyKey {
    StickyKey::new(&SECRET)
}

#[test]
fn seal_then_open_round_trips() {
    let k = key();
    for id in ["", "0", "10.0.0.2:8080", "backend-β.example:443"] {
        let v = k.seal("app/route", id);
        assert_eq!(k.open("app/route", &v).as_deref(), Some(id), "{id}");
    }
}

#[test]
fn value_is_unpadded_base64url_and_fits_a_cookie() {
    let v = key().seal("r", "10.0.0.2:8080");
    assert!(
        v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // nonce 12 + plaintext 13 + tag 16 = 41 bytes -> 55 characters.
    assert_eq!(v.len(), 55);
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let k = key();
    assert_ne!(k.seal("r", "a"), k.seal("r", "a"));
}

#[test]
fn a_key_from_the_same_secret_opens_the_cookie() {
    let v = key().seal("r", "up");
    assert_eq!(key().open("r", &v).as_deref(), Some("up"));
}

#[test]
fn tampering_any_byte_is_rejected() {
    let k = key();
    let v = k.seal("r", "10.0.0.2:8080");
    let raw = decode(&v).unwrap();
    for i in 0..raw.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = raw.clone();
            bad[i] ^= flip;
            assert_eq!(k.open("r", &encode(&bad)), None, "byte {i} ^ {flip:#x}");
        }
    }
}

#[test]
fn changing_any_character_is_rejected() {
    let k = key();
    let v = k.seal("r", "10.0.0.2:8080");
    for i in 0..v.len() {
        for c in ['A', 'B', 'f', '9', '-', '_'] {
            let mut bad = v.clone().into_bytes();
            if bad[i] == c as u8 {
                continue;
            }
            bad[i] = c as u8;
            let bad = String::from_utf8(bad).unwrap();
            assert_eq!(k.open("r", &bad), None, "position {i} -> {c}");
        }
    }
}

#[test]
fn truncated_and_extended_values_are_rejected() {
    let k = key();
    let v = k.seal("r", "up");
    for n in 0..v.len() {
        assert_eq!(k.open("r", &v[..n]), None, "first {n} chars");
    }
    assert_eq!(k.open("r", &format!("{v}A")), None);
    assert_eq!(k.open("r", &format!("{v}AA")), None);
}

#[test]
fn a_cookie_from_another_route_is_rejected() {
    let k = key();
    let v = k.seal("app/api", "up");
    assert_eq!(k.open("app/web", &v), None);
    assert_eq!(k.open("", &v), None);
}

#[test]
fn a_cookie_from_another_key_is_rejected() {
    let v = key().seal("r", "up");
    assert_eq!(StickyKey::new(&[0x43; 32]).open("r", &v), None);
    assert_eq!(StickyKey::random().open("r", &v), None);
}

#[test]
fn random_keys_work_and_differ() {
    let (a, b) = (StickyKey::random(), StickyKey::random());
    let v = a.seal("r", "up");
    assert_eq!(a.open("r", &v).as_deref(), Some("up"));
    assert_eq!(b.open("r", &v), None);
}

#[test]
fn garbage_values_are_rejected_without_panic() {
    let k = key();
    let huge = "A".repeat(1 << 20);
    let long_valid_alphabet = "A".repeat(MAX_COOKIE_VALUE + 4);
    for v in [
        "",
        "A",
        "AA",
        "====",
        "AAAA====",
        "not base64!",
        "ÿÿÿÿ",
        "\0\0\0\0",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        huge.as_str(),
        long_valid_alphabet.as_str(),
    ] {
        assert_eq!(k.open("r", v), None, "{:.20}", v);
    }
}

#[test]
fn non_utf8_plaintext_is_rejected() {
    let k = key();
    // Seal raw bytes that are not UTF-8 through the same AEAD the key uses.
    let nonce = [9u8; NONCE_LEN];
    let mut in_out = vec![0xff, 0xfe];
    k.key
        .as_ref()
        .unwrap()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"r"),
            &mut in_out,
        )
        .unwrap();
    let mut raw = nonce.to_vec();
    raw.extend_from_slice(&in_out);
    assert_eq!(k.open("r", &encode(&raw)), None);
}

#[test]
fn base64url_matches_rfc_4648_vectors() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(encode(plain.as_bytes()), coded);
        assert_eq!(decode(coded).as_deref(), Some(plain.as_bytes()));
    }
    assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    assert_eq!(decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
}

#[test]
fn decode_refuses_non_canonical_trailing_bits() {
    assert_eq!(decode("Zh"), None); // "Zg" plus a stray low bit
    assert_eq!(decode("Zm9"), None); // "Zm8" plus a stray low bit
    assert_eq!(decode("Zm9v+"), None);
}

#[test]
fn every_byte_value_round_trips_through_base64url() {
    let all: Vec<u8> = (0..=255).collect();
    for n in 0..all.len() {
        assert_eq!(decode(&encode(&all[..n])).as_deref(), Some(&all[..n]));
    }
}

fn headers(cookies: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for c in cookies {
        h.append(COOKIE, c.parse().unwrap());
    }
    h
}

#[test]
fn find_cookie_searches_every_cookie_header() {
    let h = headers(&[
        "a=1; b=2",
        "c=3;sluice_sticky=XYZ ;d=4",
        "sluice_sticky=second",
    ]);
    assert_eq!(find_cookie(&h, COOKIE_NAME), Some("XYZ"));
    assert_eq!(find_cookie(&h, "a"), Some("1"));
    assert_eq!(find_cookie(&h, "d"), Some("4"));
    assert_eq!(find_cookie(&h, "e"), None);
}

#[test]
fn find_cookie_tolerates_spaces_quotes_and_junk() {
    let h = headers(&[";; junk ; x ; =v;  sluice_sticky  =  \"quoted\"  "]);
    assert_eq!(find_cookie(&h, COOKIE_NAME), Some("quoted"));
    let h = headers(&["sluice_sticky="]);
    assert_eq!(find_cookie(&h, COOKIE_NAME), Some(""));
}

#[test]
fn find_cookie_names_are_case_sensitive_and_exact() {
    let h = headers(&["Sluice_Sticky=1; sluice_sticky2=2; xsluice_sticky=3"]);
    assert_eq!(find_cookie(&h, COOKIE_NAME), None);
    assert_eq!(find_cookie(&HeaderMap::new(), COOKIE_NAME), None);
}

#[test]
fn find_cookie_returns_the_first_match() {
    let h = headers(&["sluice_sticky=one; sluice_sticky=two"]);
    assert_eq!(find_cookie(&h, COOKIE_NAME), Some("one"));
}

#[test]
fn set_cookie_has_the_attributes() {
    assert_eq!(
        set_cookie("V", "/api", false),
        "sluice_sticky=V; Path=/api; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        set_cookie("V", "/", true),
        "sluice_sticky=V; Path=/; HttpOnly; SameSite=Lax; Secure"
    );
}

#[test]
fn set_cookie_cannot_be_made_to_inject_attributes() {
    assert_eq!(
        set_cookie("a;b\r\n", "/x; Domain=evil\n", false),
        "sluice_sticky=ab; Path=/xDomain=evil; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        set_cookie("", "", false),
        "sluice_sticky=; Path=/; HttpOnly; SameSite=Lax"
    );
}

#[test]
fn a_sealed_value_survives_set_cookie_and_find_cookie() {
    let k = key();
    let v = k.seal("r", "up-1");
    let set = set_cookie(&v, "/", true);
    // What a browser sends back: the name=value pair only.
    let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
    let h = headers(&["other=1", &pair]);
    let found = find_cookie(&h, COOKIE_NAME).unwrap();
    assert_eq!(k.open("r", found).as_deref(), Some("up-1"));
}

#[test]
fn debug_does_not_print_the_key() {
    assert_eq!(format!("{:?}", key()), "StickyKey(..)");
}
