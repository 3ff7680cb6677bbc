//! Tests for X25519MLKEM768: interop with aws-lc-rs's independent implementation both ways,
//! negotiation with our own provider, and malformed key shares. In memory, no sockets.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, aws_lc_rs, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, Error, HandshakeKind, NamedGroup,
    ProtocolVersion, RootCertStore, ServerConfig, ServerConnection,
};

use super::{CLIENT_SHARE_LEN, MLKEM_EK_LEN, SERVER_SHARE_LEN, X25519MLKEM768, provider};

/// A self-signed certificate for "localhost" and its PKCS#8 key.
struct TestCert {
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl TestCert {
    fn localhost() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen self-signed certificate");
        Self {
            der: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()),
        }
    }
}

fn server_config(provider: CryptoProvider, cert: &TestCert) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .expect("server certificate");
    Arc::new(config)
}

fn client_config(provider: CryptoProvider, cert: &TestCert) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).expect("root certificate");
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// `provider` with only `groups` for key exchange.
fn with_groups(
    provider: CryptoProvider,
    groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
) -> CryptoProvider {
    CryptoProvider {
        kx_groups: groups.to_vec(),
        ..provider
    }
}

/// Moves everything `from` has to send into `to` and lets `to` process it.
fn transfer<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> Result<(), Error> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).expect("write to a Vec");
    }
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("read from a slice");
        to.process_new_packets()?;
    }
    Ok(())
}

/// Runs a handshake between `client` and `server` to completion, or to the first error.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Error> {
    let mut flights = 0;
    while client.is_handshaking() || server.is_handshaking() {
        flights += 1;
        assert!(flights < 10, "handshake makes no progress");
        transfer(client, server)?;
        transfer(server, client)?;
    }
    Ok(())
}

/// Connects a client and a server built from these providers and checks application data
/// flows both ways; returns them for the caller's assertions.
fn connect(
    client_provider: CryptoProvider,
    server_provider: CryptoProvider,
) -> (ClientConnection, ServerConnection) {
    let cert = TestCert::localhost();
    let name = ServerName::try_from("localhost").expect("server name");
    let mut client = ClientConnection::new(client_config(client_provider, &cert), name)
        .expect("client connection");
    let mut server =
        ServerConnection::new(server_config(server_provider, &cert)).expect("server connection");
    handshake(&mut client, &mut server).expect("handshake");
    assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    client.writer().write_all(b"ping").expect("client write");
    transfer(&mut client, &mut server).expect("client to server");
    let mut got = [0; 4];
    server.reader().read_exact(&mut got).expect("server read");
    assert_eq!(&got, b"ping");

    server.writer().write_all(b"pong").expect("server write");
    transfer(&mut server, &mut client).expect("server to client");
    client.reader().read_exact(&mut got).expect("client read");
    assert_eq!(&got, b"pong");
    (client, server)
}

fn negotiated(client: &ClientConnection, server: &ServerConnection) -> (NamedGroup, NamedGroup) {
    let group = |g: Option<&'static dyn rustls::crypto::SupportedKxGroup>| {
        g.expect("a key exchange group").name()
    };
    (
        group(client.negotiated_key_exchange_group()),
        group(server.negotiated_key_exchange_group()),
    )
}

#[test]
fn aws_lc_client_negotiates_x25519mlkem768_with_our_server() {
    let aws_lc_pq_only = with_groups(
        aws_lc_rs::default_provider(),
        &[aws_lc_rs::kx_group::X25519MLKEM768],
    );
    let (client, server) = connect(aws_lc_pq_only, provider());
    let pq = NamedGroup::X25519MLKEM768;
    assert_eq!(negotiated(&client, &server), (pq, pq));
    assert_eq!(server.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn our_client_negotiates_x25519mlkem768_with_aws_lc_server() {
    let ours_pq_only = with_groups(provider(), &[X25519MLKEM768]);
    let (client, server) = connect(ours_pq_only, aws_lc_rs::default_provider());
    let pq = NamedGroup::X25519MLKEM768;
    assert_eq!(negotiated(&client, &server), (pq, pq));
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn our_provider_prefers_x25519mlkem768() {
    let (client, server) = connect(provider(), provider());
    let pq = NamedGroup::X25519MLKEM768;
    assert_eq!(negotiated(&client, &server), (pq, pq));
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn x25519_only_client_gets_x25519() {
    let x25519_only = with_groups(ring::default_provider(), &[ring::kx_group::X25519]);
    let (client, server) = connect(x25519_only, provider());
    let x25519 = NamedGroup::X25519;
    assert_eq!(negotiated(&client, &server), (x25519, x25519));
}

/// Our client also offers its X25519 half on its own (`hybrid_component`), so a server
/// without post-quantum support answers at once instead of asking for a retry.
#[test]
fn x25519_only_server_gets_x25519_without_hello_retry() {
    let x25519_only = with_groups(ring::default_provider(), &[ring::kx_group::X25519]);
    let (client, server) = connect(provider(), x25519_only);
    let x25519 = NamedGroup::X25519;
    assert_eq!(negotiated(&client, &server), (x25519, x25519));
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn shares_have_draft_sizes_and_secrets_agree() {
    assert_eq!(X25519MLKEM768.name(), NamedGroup::X25519MLKEM768);
    assert!(X25519MLKEM768.usable_for_version(ProtocolVersion::TLSv1_3));
    assert!(!X25519MLKEM768.usable_for_version(ProtocolVersion::TLSv1_2));

    let client = X25519MLKEM768.start().expect("client start");
    assert_eq!(client.group(), NamedGroup::X25519MLKEM768);
    assert_eq!(client.pub_key().len(), 1184 + 32);
    let (classical, x25519_pub) = client.hybrid_component().expect("X25519 half");
    assert_eq!(classical, NamedGroup::X25519);
    assert_eq!(
        x25519_pub,
        client.pub_key().get(1184..).expect("X25519 part")
    );

    let server = X25519MLKEM768
        .start_and_complete(client.pub_key())
        .expect("server completes");
    assert_eq!(server.group, NamedGroup::X25519MLKEM768);
    assert_eq!(server.pub_key.len(), 1088 + 32);
    let client_secret = client.complete(&server.pub_key).expect("client completes");
    assert_eq!(client_secret.secret_bytes().len(), 32 + 32);
    assert_eq!(client_secret.secret_bytes(), server.secret.secret_bytes());
}

/// ML-KEM's implicit rejection: a corrupted ciphertext is not an error but yields an
/// unrelated secret (the handshake then fails at Finished).
#[test]
fn corrupted_ciphertext_yields_a_different_secret() {
    let client = X25519MLKEM768.start().expect("client start");
    let server = X25519MLKEM768
        .start_and_complete(client.pub_key())
        .expect("server completes");
    let mut corrupted = server.pub_key.clone();
    if let Some(byte) = corrupted.first_mut() {
        *byte ^= 1;
    }
    let client_secret = client.complete(&corrupted).expect("client completes");
    assert_ne!(client_secret.secret_bytes(), server.secret.secret_bytes());
    assert_eq!(
        client_secret.secret_bytes().get(32..),
        server.secret.secret_bytes().get(32..),
        "the X25519 half still agrees"
    );
}

#[test]
fn malformed_client_shares_are_rejected() {
    let good = X25519MLKEM768
        .start()
        .expect("client start")
        .pub_key()
        .to_vec();
    assert_eq!(good.len(), CLIENT_SHARE_LEN);

    let mut zero_x25519 = good.clone();
    zero_x25519.truncate(MLKEM_EK_LEN);
    zero_x25519.extend_from_slice(&[0; 32]);
    // The first coefficient 0xfff is not below q = 3329: fails the FIPS 203 modulus check.
    let mut unreduced = good.clone();
    unreduced.splice(0..2, [0xff, 0x0f]);
    // The old X25519Kyber768Draft00 order: X25519 first.
    let mut swapped = good.clone();
    swapped.rotate_right(32);

    let cases: [(&str, &[u8]); 9] = [
        ("empty", &[]),
        ("one byte", &[0x04]),
        (
            "X25519 only",
            good.get(MLKEM_EK_LEN..).expect("X25519 part"),
        ),
        (
            "encapsulation key only",
            good.get(..MLKEM_EK_LEN).expect("ek part"),
        ),
        (
            "truncated by one",
            good.get(..CLIENT_SHARE_LEN - 1).expect("prefix"),
        ),
        ("one byte too long", &[good.as_slice(), &[0]].concat()),
        ("all-zero X25519 part", &zero_x25519),
        ("coefficient not below q", &unreduced),
        ("all 0xff", &[0xff; CLIENT_SHARE_LEN]),
    ];
    for (what, share) in cases {
        assert!(
            X25519MLKEM768.start_and_complete(share).is_err(),
            "{what}: accepted"
        );
    }
    // Not necessarily invalid bytes, so only "no panic" here.
    let _ = X25519MLKEM768.start_and_complete(&swapped);
    // The unmodified share still works.
    assert!(X25519MLKEM768.start_and_complete(&good).is_ok());
}

#[test]
fn malformed_server_shares_are_rejected() {
    let reply = {
        let client = X25519MLKEM768.start().expect("client start");
        X25519MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server completes")
            .pub_key
    };
    assert_eq!(reply.len(), SERVER_SHARE_LEN);
    let mut zero_x25519 = reply.clone();
    if let Some(x25519) = zero_x25519.get_mut(SERVER_SHARE_LEN - 32..) {
        x25519.fill(0);
    }

    let cases: [(&str, &[u8]); 5] = [
        ("empty", &[]),
        (
            "truncated by one",
            reply.get(..SERVER_SHARE_LEN - 1).expect("prefix"),
        ),
        ("one byte too long", &[reply.as_slice(), &[0]].concat()),
        ("a client share", &[0x11; CLIENT_SHARE_LEN]),
        ("all-zero X25519 part", &zero_x25519),
    ];
    for (what, share) in cases {
        let client = X25519MLKEM768.start().expect("client start");
        assert!(client.complete(share).is_err(), "{what}: accepted");
    }

    // The X25519-only fallback checks its share as well.
    for share in [&[][..], &[0; 32][..], &[9; 33][..]] {
        let client = X25519MLKEM768.start().expect("client start");
        assert!(client.complete_hybrid_component(share).is_err());
    }
}
