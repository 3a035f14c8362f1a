//! `--web.config.file` in the exporter-toolkit format, with real clients: TLS (certificates made by the `openssl`
//! command), basic auth with bcrypt hashes, client certificates, extra headers; plain HTTP to a TLS port fails;
//! a bad file stops the binary before it listens, naming the key.

use genesys_cloud_exporter::exposition::{serve, webconfig, AppState};
use genesys_cloud_exporter::model::Readiness;
use genesys_cloud_exporter::state::{Store, StoreConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (Debian package openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA.
fn pki(tag: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("gce-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d = dir.as_path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    // Extensions make them X.509 v3, which webpki requires.
    std::fs::write(d.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for name in ["server", "client"] {
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let (csr, crt, ext) = (format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
    Dir(dir)
}

async fn start(web: &Path) -> (String, CancellationToken) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = webconfig::load(web).expect("web config loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = AppState::new(
        Store::new(StoreConfig::default()),
        prometheus::Registry::new(),
        Arc::new(Readiness::default()),
        "test",
    )
    .with_web_config(cfg);
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, app, shutdown.clone()));
    (format!("127.0.0.1:{}", addr.port()), shutdown)
}

fn client(dir: &Path, identity: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.crt")).expect("ca")).expect("ca pem");
    let mut b = reqwest::Client::builder().add_root_certificate(ca);
    if identity {
        let mut pem = std::fs::read(dir.join("client.crt")).expect("client crt");
        pem.extend(std::fs::read(dir.join("client.key")).expect("client key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    b.build().expect("client")
}

#[tokio::test]
async fn tls_and_basic_auth_with_real_clients() {
    let pki = pki("auth");
    let hash = bcrypt::hash("correct horse", 4).expect("hash");
    let web = pki.0.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .expect("web.yml");
    let (addr, stop) = start(&web).await;
    let https = client(&pki.0, false);
    let url = format!("https://{addr}/metrics");

    let r = https.get(&url).basic_auth("prometheus", Some("correct horse")).send().await.expect("TLS request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.text().await.expect("body").contains("process_"), "metrics served over TLS");

    let r = https.get(&url).basic_auth("prometheus", Some("wrong")).send().await.expect("request");
    assert_eq!(r.status(), 401, "wrong password");
    let r = https.get(&url).basic_auth("nobody", Some("correct horse")).send().await.expect("request");
    assert_eq!(r.status(), 401, "unknown user");
    let r = https.get(format!("https://{addr}/healthz")).send().await.expect("request");
    assert_eq!(r.status(), 401, "every endpoint is protected");
    assert!(r.headers()["www-authenticate"].to_str().unwrap_or("").starts_with("Basic"));

    // Plain HTTP to the TLS port does not get an answer.
    let plain = reqwest::Client::new().get(format!("http://{addr}/metrics")).send().await;
    assert!(plain.is_err() || !plain.is_ok_and(|r| r.status().is_success()), "plain HTTP to a TLS port fails");
    // Neither does a client that does not trust the certificate.
    let untrusted = reqwest::Client::builder().build().expect("client").get(&url).send().await;
    assert!(untrusted.is_err(), "an untrusted certificate is refused");
    stop.cancel();
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let pki = pki("mtls");
    let web = pki.0.join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n",
    )
    .expect("web.yml");
    let (addr, stop) = start(&web).await;
    let url = format!("https://{addr}/healthz");
    let r = client(&pki.0, true).get(&url).send().await.expect("mTLS request");
    assert_eq!(r.status(), 200);
    assert!(client(&pki.0, false).get(&url).send().await.is_err(), "no client certificate, no connection");
    stop.cancel();
}

#[test]
fn a_bad_web_config_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("gce-webcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let web = dir.join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  prometheus: plaintext-password\n").expect("web.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-cloud-exporter"))
        .args(["check", "--config-only", "--web.config.file"])
        .arg(&web)
        .output()
        .expect("binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--web.config.file") && err.contains("basic_auth_users") && err.contains("bcrypt"), "{err}");
    assert!(!err.contains("plaintext-password"), "the password is not echoed: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
