//! Tests of the Google Cloud Storage transport (`transport::gcs`, through `Source`) against the
//! loopback GCS JSON API server of `dipex_testkit::gcs`: both credential paths (a
//! service-account key whose RS256 JWT the server verifies, and the metadata server with its
//! `Metadata-Flavor` header), pagination, percent-encoded object names, streamed fetches and
//! GCS's errors. No token or key ever appears in an error.

use dipex_integrations::transport::gcs::{GcsConfig, GcsCredentials, Step};
use dipex_integrations::transport::source::{Source, SourceError};
use dipex_testkit::gcs::{GcsServer, TEST_KEY_PEM};

fn key_source(server: &GcsServer, dir: &std::path::Path, bucket: &str) -> Source {
    let mut cfg = GcsConfig::new(bucket, GcsCredentials::KeyFile(server.key_file(dir)));
    cfg.endpoint = server.endpoint();
    Source::Gcs(cfg)
}

fn gcs_err(e: SourceError) -> dipex_integrations::transport::gcs::GcsError {
    match e {
        SourceError::Gcs(e) => e,
        other => panic!("not a GCS error: {other}"),
    }
}

#[test]
fn gcs_lists_all_pages_and_fetches_with_a_service_account_key() {
    let server = GcsServer::start();
    let dir = tempfile::tempdir().unwrap();
    server.set_page_size(2);
    server.put("opus-dumps", "ZLPE20240101220000_delta.xml", "<a/>");
    server.put(
        "opus-dumps",
        "production/ZLPE20240102220000_delta.xml",
        "<b>æ</b>",
    );
    server.put("opus-dumps", "notes/readme.txt", "x");
    server.put("opus-dumps", "production/", "");
    server.put("opus-dumps", "with space & plus+.xml", "<c/>");
    let src = key_source(&server, dir.path(), "opus-dumps");
    let names: Vec<String> = src.list().unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "ZLPE20240101220000_delta.xml",
            "notes/readme.txt",
            "production/ZLPE20240102220000_delta.xml",
            "with space & plus+.xml"
        ]
    );
    let listing = src.list().unwrap();
    assert_eq!(listing[2].size, Some("<b>æ</b>".len() as u64));
    assert_eq!(
        listing[2].modified,
        Some("2024-05-06T07:08:09.123Z".parse().unwrap())
    );
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.contains("pageToken="))
        .count();
    assert!(pages >= 2, "{:?}", server.requests());

    assert_eq!(
        src.read("production/ZLPE20240102220000_delta.xml").unwrap(),
        "<b>æ</b>".as_bytes()
    );
    let dest = dir.path().join("c.xml");
    assert_eq!(src.fetch("with space & plus+.xml", &dest).unwrap(), 4);
    assert_eq!(std::fs::read(&dest).unwrap(), b"<c/>");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("/o/production%2FZLPE20240102220000_delta.xml?alt=media")),
        "object names are percent-encoded: {:?}",
        server.requests()
    );
    // One token for all of it (cached).
    assert_eq!(server.tokens_issued(), 1);
}

#[test]
fn gcs_retries_transient_errors_but_not_forever() {
    let server = GcsServer::start();
    let dir = tempfile::tempdir().unwrap();
    server.put("b", "ZLPE20240101220000_delta.xml", "<a/>");
    let mut cfg = GcsConfig::new("b", GcsCredentials::KeyFile(server.key_file(dir.path())));
    cfg.endpoint = server.endpoint();
    cfg.attempts = 3;
    cfg.wait = std::time::Duration::from_millis(10);
    let src = Source::Gcs(cfg);
    server.fail_next(&[503, 429]);
    assert_eq!(src.list().unwrap().len(), 1);
    server.fail_next(&[500]);
    assert_eq!(src.read("ZLPE20240101220000_delta.xml").unwrap(), b"<a/>");
    server.fail_next(&[503, 503, 503]);
    let e = gcs_err(src.list().unwrap_err());
    assert_eq!(e.status(), Some(503));
    // Not retried: a 404.
    let before = server.requests().len();
    assert!(src.read("missing.xml").is_err());
    assert_eq!(server.requests().len(), before + 1);
}

#[test]
fn gcs_metadata_server_credentials() {
    let server = GcsServer::start();
    server.put("b", "ZLPE20240101220000_delta.xml", "<a/>");
    let mut cfg = GcsConfig::new("b", GcsCredentials::Metadata(server.metadata_url()));
    cfg.endpoint = server.endpoint();
    let src = Source::Gcs(cfg);
    assert_eq!(src.list().unwrap().len(), 1);
    assert_eq!(src.read("ZLPE20240101220000_delta.xml").unwrap(), b"<a/>");
    assert_eq!(server.tokens_issued(), 1);
}

#[test]
fn gcs_errors_name_the_bucket_and_never_a_secret() {
    let server = GcsServer::start();
    let dir = tempfile::tempdir().unwrap();
    server.put("opus", "a.xml", "<a/>");
    server.bucket("locked");
    server.forbid("locked");

    let e = gcs_err(key_source(&server, dir.path(), "nope").list().unwrap_err());
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.step(), Step::List);
    let text = e.to_string();
    assert!(
        text.contains("bucket nope") && text.contains("does not exist"),
        "{text}"
    );

    let e = gcs_err(
        key_source(&server, dir.path(), "locked")
            .list()
            .unwrap_err(),
    );
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("locked"), "{e}");

    let e = gcs_err(
        key_source(&server, dir.path(), "opus")
            .read("missing.xml")
            .unwrap_err(),
    );
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("missing.xml"), "{e}");

    // A key the token endpoint does not accept (another RSA key signs the JWT).
    let other = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output();
    if let Ok(out) = other
        && out.status.success()
    {
        let pem = String::from_utf8(out.stdout).unwrap();
        let key = server.key_file(dir.path());
        let text = std::fs::read_to_string(&key).unwrap().replace(
            &TEST_KEY_PEM.replace('\n', "\\n"),
            &pem.replace('\n', "\\n"),
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, text).unwrap();
        let mut cfg = GcsConfig::new("opus", GcsCredentials::KeyFile(bad));
        cfg.endpoint = server.endpoint();
        let e = gcs_err(Source::Gcs(cfg).list().unwrap_err());
        assert_eq!(e.step(), Step::Token);
        let text = e.to_string();
        assert!(text.contains("invalid_grant"), "{text}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("eyJ"),
            "{text}"
        );
    }

    // Not a key file.
    let junk = dir.path().join("junk.json");
    std::fs::write(
        &junk,
        r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"}"#,
    )
    .unwrap();
    let mut cfg = GcsConfig::new("opus", GcsCredentials::KeyFile(junk));
    cfg.endpoint = server.endpoint();
    let e = gcs_err(Source::Gcs(cfg).list().unwrap_err());
    assert_eq!(e.step(), Step::Key);
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");

    // No metadata server (a closed port).
    let port = dipex_testkit::samba::free_port();
    let mut cfg = GcsConfig::new(
        "opus",
        GcsCredentials::Metadata(format!("http://127.0.0.1:{port}/token")),
    );
    cfg.endpoint = server.endpoint();
    let e = gcs_err(Source::Gcs(cfg).list().unwrap_err());
    assert_eq!(e.step(), Step::Token);
    assert!(
        e.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{e}"
    );

    // No token in any request line the server saw, and no error quoted one.
    for r in server.requests() {
        assert!(!r.contains("ya29."), "{r}");
    }
}

#[test]
fn gcs_metadata_server_requires_its_header() {
    let server = GcsServer::start();
    // The server refuses a metadata request without `Metadata-Flavor: Google`.
    let mut stream =
        std::net::TcpStream::connect(server.endpoint().trim_start_matches("http://")).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(server.tokens_issued(), 0);
}
