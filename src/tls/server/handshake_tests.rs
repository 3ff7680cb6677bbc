//! Tests of the handshake driver on loopback sockets against a rustls client: the
//! certificate by SNI, unrecognized_name, mTLS with and without intermediates, the
//! multiplexer's prefix hand-off, timeouts and non-TLS clients, half-close.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustls::AlertDescription;
use rustls::pki_types::ServerName;

use super::*;
use crate::tls::certs::tests::Ca;
use crate::tls::server::tests::*;

#[test]
fn handshake_serves_each_app_its_certificate_by_sni() {
    let apps = TwoApps::new("sni");
    let server = apps.server();
    let config = client_config(&apps.ca, ALL, None);
    let (sni, view) = connect(&server, &config, "a.test");
    assert_eq!(sni, Ok(Some("a.test".to_owned())));
    let view = view.expect("client a");
    assert_eq!(view.leaf.as_ref(), Some(&apps.a.der));
    assert_eq!(view.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (sni, view) = connect(&server, &config, "Q.w.test");
    assert_eq!(sni, Ok(Some("q.w.test".to_owned())));
    assert_eq!(view.expect("client w").leaf.as_ref(), Some(&apps.w.der));
    // TLS 1.2 too.
    let (_, view) = connect(
        &server,
        &client_config(&apps.ca, TLS12_ONLY, None),
        "a.test",
    );
    assert_eq!(view.expect("tls12").leaf.as_ref(), Some(&apps.a.der));
}

#[test]
fn unknown_sni_gets_unrecognized_name_alert() {
    let apps = TwoApps::new("unknown");
    let server = apps.server();
    let config = client_config(&apps.ca, ALL, None);
    for name in ["nobody.test", "plain.test", "w.test"] {
        let (served, view) = connect(&server, &config, name);
        assert_eq!(served, Err(AcceptError::UnknownName(Some(name.to_owned()))));
        let err = view.expect_err("refused");
        assert_eq!(
            rustls_error(&err),
            Some(&rustls::Error::AlertReceived(
                AlertDescription::UnrecognisedName
            )),
            "{err}"
        );
    }
    // An IP address as server name: rustls sends no SNI.
    let (served, view) = connect(&server, &config, "127.0.0.1");
    assert_eq!(served, Err(AcceptError::UnknownName(None)));
    assert!(view.is_err());
}

#[test]
fn mtls_requires_a_client_certificate_from_the_ca() {
    let (_dir, server_ca, client_root, server, _) = mtls("mtls");
    for versions in [ALL, TLS12_ONLY] {
        let (served, view) = connect(
            &server,
            &client_config(&server_ca, versions, None),
            "m.test",
        );
        match served {
            Err(AcceptError::Tls(why)) => {
                assert!(why.contains("client sent no certificate"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(view.is_err());

        let id = client_root.client_leaf("alice");
        let config = client_config(
            &server_ca,
            versions,
            Some((chain(&[&id.cert_pem]), &id.key_pem)),
        );
        let (served, view) = connect(&server, &config, "m.test");
        assert_eq!(served, Ok(Some("m.test".to_owned())));
        view.expect("accepted");

        let mid = client_root.intermediate("Client Intermediate");
        let id = mid.client_leaf("bob");
        let with_mid = chain(&[&id.cert_pem, &mid.pem()]);
        let config = client_config(&server_ca, versions, Some((with_mid, &id.key_pem)));
        let (served, view) = connect(&server, &config, "m.test");
        assert_eq!(served, Ok(Some("m.test".to_owned())));
        view.expect("accepted via intermediate");

        let stranger = Ca::root("Client Root").client_leaf("mallory");
        let config = client_config(
            &server_ca,
            versions,
            Some((chain(&[&stranger.cert_pem]), &stranger.key_pem)),
        );
        let (served, view) = connect(&server, &config, "m.test");
        match served {
            Err(AcceptError::Tls(why)) => {
                assert!(why.contains("client certificate rejected"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(view.is_err());
    }
}

#[test]
fn prefixed_hand_off_completes_the_handshake() {
    let apps = TwoApps::new("prefix");
    let server = apps.server();
    let config = client_config(&apps.ca, ALL, None);
    for split in [1, 5, 11, 60] {
        let (served, view) = run(async {
            let (mut server_tcp, client_tcp) = tcp_pair().await;
            let server_side = async {
                let mut head = vec![0u8; split];
                server_tcp.read_exact(&mut head).await.expect("probe read");
                assert_eq!(head.first(), Some(&0x16));
                serve(Prefixed::new(head, server_tcp), &server).await
            };
            future::zip(server_side, client(client_tcp, config.clone(), "a.test")).await
        });
        assert_eq!(served, Ok(Some("a.test".to_owned())), "split {split}");
        assert_eq!(view.expect("client").leaf.as_ref(), Some(&apps.a.der));
    }
}

#[test]
fn prefixed_reads_prefix_then_inner_and_returns_unread_parts() {
    run(async {
        let inner = futures_lite::io::Cursor::new(b"world".to_vec());
        let mut p = Prefixed::new(b"hello ".to_vec(), inner);
        let mut two = [0u8; 2];
        p.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"he");
        let (rest, _) = Prefixed::new(b"hello ".to_vec(), futures_lite::io::empty()).into_parts();
        assert_eq!(rest, b"hello ");
        let mut all = String::new();
        p.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "llo world");
        let (rest, _) = p.into_parts();
        assert!(rest.is_empty());
    });
}

#[test]
fn handshake_errors_timeout_closed_and_not_tls() {
    let apps = TwoApps::new("errors");
    let server = apps.server();
    run(async {
        // Silent client, and one that stops inside the ClientHello.
        for bytes in [&b""[..], &[0x16, 0x03, 0x01][..]] {
            let (server_tcp, mut client_tcp) = tcp_pair().await;
            client_tcp.write_all(bytes).await.expect("write");
            let got = accept_within(
                Prefixed::new(Vec::new(), server_tcp),
                &server,
                Duration::from_millis(200),
            )
            .await;
            assert_eq!(got.err(), Some(AcceptError::Timeout));
        }
        let (server_tcp, client_tcp) = tcp_pair().await;
        drop(client_tcp);
        let got = accept(Prefixed::new(Vec::new(), server_tcp), &server).await;
        assert_eq!(got.err(), Some(AcceptError::Closed));

        let (server_tcp, mut client_tcp) = tcp_pair().await;
        client_tcp
            .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
            .expect("write");
        let got = accept(Prefixed::new(Vec::new(), server_tcp), &server).await;
        assert!(matches!(got.err(), Some(AcceptError::Tls(_))));
        let mut alert = Vec::new();
        let _ = client_tcp.read_to_end(&mut alert).await;
        assert_eq!(alert.first(), Some(&0x15), "an alert record: {alert:?}");
    });
}

#[test]
fn half_close_after_close_notify_reaches_the_client_as_clean_eof() {
    let apps = TwoApps::new("halfclose");
    let server = apps.server();
    let config = client_config(&apps.ca, ALL, None);
    run(async {
        let (server_tcp, client_tcp) = tcp_pair().await;
        let server_side = async {
            let (mut tls, _) = accept(Prefixed::new(Vec::new(), server_tcp), &server)
                .await
                .expect("accept");
            tls.write_all(b"bye").await.expect("write");
            tls.close().await.expect("close_notify");
            tls.shut_write().expect("shut write");
            let mut got = Vec::new();
            tls.read_to_end(&mut got)
                .await
                .expect("read after half-close");
            got
        };
        let client_side = async {
            let name = ServerName::try_from("a.test").expect("name");
            let mut tls = futures_rustls::TlsConnector::from(config.clone())
                .connect(name, client_tcp)
                .await
                .expect("connect");
            let mut got = Vec::new();
            tls.read_to_end(&mut got).await.expect("clean EOF");
            assert_eq!(got, b"bye");
            tls.write_all(b"still open")
                .await
                .expect("write after server half-close");
            tls.close().await.expect("close");
        };
        let (got, ()) = future::zip(server_side, client_side).await;
        assert_eq!(got, b"still open");
    });
}

#[test]
fn post_quantum_group_is_preferred_and_classic_clients_still_connect() {
    let apps = TwoApps::new("pq");
    let server = apps.server();
    let view = connect(&server, &client_config(&apps.ca, ALL, None), "a.test").1;
    assert_eq!(
        view.expect("ring client").group,
        Some(rustls::NamedGroup::X25519)
    );
    // aws-lc (test builds only) offers X25519MLKEM768 first.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(apps.ca.cert.der().clone()).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let view = connect(&server, &std::sync::Arc::new(config), "a.test").1;
    assert_eq!(
        view.expect("aws-lc client").group,
        Some(rustls::NamedGroup::X25519MLKEM768)
    );
}
