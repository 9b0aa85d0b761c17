//! Tests of the FTP/FTPS transport (`dipex_integrations::transport::ftp`) against real servers on
//! loopback: in-process libunftp servers (explicit FTPS with an rcgen certificate, or plain FTP),
//! some with a storage wrapper that misbehaves like real servers do (refuses dot files or renames
//! over existing files, fails or drops the connection halfway through an upload), and a small proxy
//! that refuses `MLSD`.
//!
//! The servers come from `dipex_testkit::ftp`: each binds port 0 for its control connection and
//! every passive data connection, so tests never fight over ports; the client under test runs
//! synchronously on the test thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use dipex_integrations::transport::ftp::{
    self, FtpConfig, FtpError, FtpSecurity, RemoteFile, Step,
};
use dipex_integrations::transport::put::{Left, PutStep};

use dipex_testkit::ftp::{PASSWORD, Quirks, TestCert, TestServer, USER, cert_for, test_cert};

// ---------------------------------------------------------------------------------------------
// Test server (`dipex_testkit::ftp`), its client settings, and a proxy

fn config(server: &TestServer, security: FtpSecurity) -> FtpConfig {
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, security);
    cfg.port = server.port;
    cfg.timeout = Duration::from_secs(10);
    cfg
}

fn tls_verified(cert: &TestCert) -> FtpSecurity {
    FtpSecurity::ExplicitTls {
        verify: true,
        ca_file: Some(cert.cert.clone()),
    }
}

/// A proxy in front of a plain FTP server that answers `MLSD` with 500 itself, like servers that
/// do not know RFC 3659. Data connections go straight to the server (the client uses the
/// control connection's address with the port from `PASV`).
fn refuse_mlsd_proxy(server_port: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut to_server = server;
                let mut reply = client.try_clone().unwrap();
                let mut lines = BufReader::new(client);
                let mut line = String::new();
                while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                    if line.to_ascii_uppercase().starts_with("MLSD") {
                        let _ = reply.write_all(b"500 MLSD not understood\r\n");
                    } else if to_server.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    line.clear();
                }
                let _ = to_server.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Files like plan2learn's: CRLF lines with Danish letters, an empty file, and a ~1 MB file.
fn local_files(dir: &Path) -> Vec<(PathBuf, String, Vec<u8>)> {
    let csv = "\"BrugerId\";\"Navn\"\r\n\"1\";\"Primær Ærø Øster-Åby\"\r\n"
        .as_bytes()
        .to_vec();
    let big: Vec<u8> = (0..1_048_583u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    [
        ("bruger.csv", csv),
        ("leder.csv", Vec::new()),
        ("engagement.csv", big),
    ]
    .into_iter()
    .map(|(name, bytes)| {
        let path = dir.join(format!("local-{name}"));
        std::fs::write(&path, &bytes).unwrap();
        (path, name.to_owned(), bytes)
    })
    .collect()
}

fn uploads(files: &[(PathBuf, String, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .map(|(p, n, _)| (p.clone(), n.clone()))
        .collect()
}

fn assert_no_password(err: &FtpError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(PASSWORD), "password in error: {shown}");
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Upload over verified FTPS arrives byte-identical (CRLF, UTF-8, empty, 1 MB), leaves no
/// temporary files, and a second upload replaces the files.
#[test]
fn ftps_upload_is_complete_and_replaces_existing_files() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = config(&server, tls_verified(&cert));

    ftp::put_all(&cfg, &uploads(&files)).unwrap();
    for (_, name, bytes) in &files {
        assert_eq!(&std::fs::read(server.path(name)).unwrap(), bytes, "{name}");
    }
    assert_eq!(
        server.names(),
        ["bruger.csv", "engagement.csv", "leder.csv"]
    );

    // Again, with new content: every file is replaced.
    for (path, _, bytes) in &files {
        let mut changed = bytes.clone();
        changed.extend_from_slice(b"second run\r\n");
        std::fs::write(path, &changed).unwrap();
    }
    ftp::put_all(&cfg, &uploads(&files)).unwrap();
    for (_, name, bytes) in &files {
        let mut expected = bytes.clone();
        expected.extend_from_slice(b"second run\r\n");
        assert_eq!(
            std::fs::read(server.path(name)).unwrap(),
            expected,
            "{name}"
        );
    }
    assert_eq!(
        server.names(),
        ["bruger.csv", "engagement.csv", "leder.csv"]
    );
}

/// Uploading into a directory named in the config (`CWD`), and a missing directory names `CWD`.
#[test]
fn upload_goes_into_the_configured_directory() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    std::fs::create_dir(server.path("inbox")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let mut cfg = config(&server, tls_verified(&cert));
    cfg.dir = Some("inbox".to_owned());

    ftp::put_all(&cfg, &uploads(&files[..1])).unwrap();
    assert_eq!(
        std::fs::read(server.path("inbox/bruger.csv")).unwrap(),
        files[0].2
    );

    cfg.dir = Some("missing".to_owned());
    let err = ftp::put_all(&cfg, &uploads(&files[..1])).unwrap_err();
    assert_eq!(err.step, PutStep::Prepare, "{err}");
    assert!(err.to_string().contains("CWD to missing refused"), "{err}");
    assert_eq!(err.code(), Some(550), "{err}");
}

/// A wrong password names the login step and the server's 530 reply, never the password.
#[test]
fn wrong_password_names_login_and_the_530_reply() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    let mut cfg = config(&server, tls_verified(&cert));
    cfg.password = "Forkert-Kodeord-99".to_owned();

    let err = ftp::list(&cfg).unwrap_err();
    assert_eq!(err.step(), Step::Login, "{err}");
    assert_eq!(err.code(), Some(530), "{err}");
    assert_eq!(err.server(), format!("127.0.0.1:{}", server.port));
    let text = err.to_string();
    assert!(text.contains("login"), "{text}");
    assert!(text.contains("530"), "{text}");
    assert!(!text.contains("Forkert-Kodeord-99"), "{text}");
    assert!(!format!("{err:?}").contains("Forkert-Kodeord-99"));
}

/// With verification on, a certificate the client does not trust fails the TLS handshake.
#[test]
fn untrusted_certificate_fails_the_tls_handshake() {
    let cert = test_cert();
    let other = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());

    // Only the webpki roots: a self-signed certificate is unknown.
    let no_ca = FtpSecurity::ExplicitTls {
        verify: true,
        ca_file: None,
    };
    // Trusting some other certificate does not help either.
    for security in [no_ca, tls_verified(&other)] {
        let err = ftp::list(&config(&server, security)).unwrap_err();
        assert_eq!(err.step(), Step::TlsHandshake, "{err}");
        let text = err.to_string();
        assert!(text.contains("TLS handshake"), "{text}");
        assert!(text.to_lowercase().contains("certificate"), "{text}");
        assert_no_password(&err);
    }

    // A trusted certificate for another host name: verification checks the name too.
    let elsewhere = cert_for(&["ftp.example.org"]);
    let misnamed = TestServer::start(Some(&elsewhere), Quirks::default());
    let err = ftp::list(&config(&misnamed, tls_verified(&elsewhere))).unwrap_err();
    assert_eq!(err.step(), Step::TlsHandshake, "{err}");

    // verify: false accepts the self-signed certificate (legacy servers).
    let cfg = config(
        &server,
        FtpSecurity::ExplicitTls {
            verify: false,
            ca_file: None,
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    ftp::put_all(&cfg, &uploads(&files[..1])).unwrap();
    assert_eq!(
        std::fs::read(server.path("bruger.csv")).unwrap(),
        files[0].2
    );
}

/// A server without TLS refuses `AUTH TLS`: the error names that step and the reply.
#[test]
fn server_without_tls_refuses_auth_tls() {
    let cert = test_cert();
    let server = TestServer::start(None, Quirks::default());
    let err = ftp::list(&config(&server, tls_verified(&cert))).unwrap_err();
    assert_eq!(err.step(), Step::AuthTls, "{err}");
    let reply = err.reply().expect("a server reply");
    assert!(
        reply.starts_with(&err.code().unwrap().to_string()),
        "{reply}"
    );
    assert!((500..600).contains(&err.code().unwrap()), "{err}");
    assert!(err.to_string().contains("AUTH TLS"), "{err}");
    assert_no_password(&err);
}

/// A CA file that is missing or holds no certificate is reported before connecting.
#[test]
fn bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [dir.path().join("missing.pem"), empty] {
        let mut cfg = FtpConfig::new(
            "127.0.0.1",
            USER,
            PASSWORD,
            FtpSecurity::ExplicitTls {
                verify: true,
                ca_file: Some(path.clone()),
            },
        );
        // Nothing listens here; the CA file must fail first.
        cfg.port = 9;
        let err = ftp::list(&cfg).unwrap_err();
        assert_eq!(err.step(), Step::TlsSetup, "{err}");
        assert_eq!(err.file(), Some(path.display().to_string().as_str()));
    }
}

/// A missing local file or a remote name with a path is reported before connecting.
#[test]
fn bad_upload_list_is_refused_before_connecting() {
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    // Nothing listens here: the checks must fail first.
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, FtpSecurity::Plain);
    cfg.port = 9;
    let missing = local.path().join("organisation.csv");
    let mut list = uploads(&files);
    list.push((missing.clone(), "organisation.csv".to_owned()));
    let err = ftp::put_all(&cfg, &list).unwrap_err();
    assert_eq!(err.step, PutStep::Prepare, "{err}");
    assert_eq!(err.file, Some(missing.display().to_string()));
    assert!(err.to_string().contains("reading the local file"), "{err}");

    let err = ftp::put_all(&cfg, &[(files[0].0.clone(), "sub/bruger.csv".to_owned())]).unwrap_err();
    assert_eq!(err.step, PutStep::Prepare, "{err}");
    assert_eq!(err.file.as_deref(), Some("sub/bruger.csv"));
    assert!(err.to_string().contains("plain file name"), "{err}");
}

/// A server that drops the connection halfway through an upload: the error names the file and
/// `STOR`, the final name never exists, and the partial temporary file is removed.
#[test]
fn disconnect_mid_upload_leaves_no_partial_file() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            cut_after: Some(200_000),
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = config(&server, tls_verified(&cert));

    let err = ftp::put_all(&cfg, &uploads(&files[2..])).unwrap_err();
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("engagement.csv"), "{err}");
    assert!(err.to_string().contains("engagement.csv"), "{err}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
    assert!(!server.path("engagement.csv").exists());
    assert_eq!(server.names(), Vec::<String>::new(), "temporary file left");
}

/// A server that fails an upload with an error reply: the error carries the reply, and the
/// files staged before it are removed again (all or none: nothing final appears).
#[test]
fn refused_upload_reports_the_reply_and_cleans_up() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            fail_after: Some(300_000),
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = config(&server, tls_verified(&cert));

    let err = ftp::put_all(&cfg, &uploads(&files)).unwrap_err();
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("engagement.csv"), "{err}");
    assert_eq!(err.code(), Some(451), "{err}");
    assert!(
        err.failure.message.contains("refused by the server: 451"),
        "{err}"
    );
    assert_eq!(*err.left, Left::Unchanged);
    assert_eq!(server.names(), Vec::<String>::new());
}

/// Servers that refuse dot files and renames over existing files still get atomic replacements.
#[test]
fn quirky_server_without_dot_files_or_rename_over_still_gets_the_files() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            refuse_dot_files: true,
            refuse_rename_over: true,
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = config(&server, tls_verified(&cert));
    for round in 0..2 {
        ftp::put_all(&cfg, &uploads(&files)).unwrap();
        for (_, name, bytes) in &files {
            assert_eq!(
                &std::fs::read(server.path(name)).unwrap(),
                bytes,
                "{round} {name}"
            );
        }
        assert_eq!(
            server.names(),
            ["bruger.csv", "engagement.csv", "leder.csv"]
        );
    }
    // One refused dot file per run (the client then remembers); no rename ever goes onto an
    // existing name.
    assert_eq!(server.refusals.load(Ordering::SeqCst), 2);
}

/// (c) A server that refuses renames over existing files (but allows deletes) and also refuses
/// to put the last new file in place: the files already replaced are put back without ever
/// deleting a previous file.
#[test]
fn a_refused_rename_never_loses_a_previous_file() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            refuse_rename_over: true,
            refuse_rename_from: Some(".engagement.csv.part"),
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    for (_, name, _) in &files {
        std::fs::write(server.path(name), format!("previous {name}")).unwrap();
    }
    let cfg = config(&server, tls_verified(&cert));
    let err = ftp::put_all(&cfg, &uploads(&files)).unwrap_err();
    assert_eq!(err.step, PutStep::Commit, "{err}");
    assert_eq!(err.file.as_deref(), Some("engagement.csv"));
    assert_eq!(*err.left, Left::Restored, "{err}");
    assert_eq!(
        server.names(),
        ["bruger.csv", "engagement.csv", "leder.csv"]
    );
    for (_, name, _) in &files {
        assert_eq!(
            std::fs::read_to_string(server.path(name)).unwrap(),
            format!("previous {name}")
        );
    }
}

/// `list` gives names, sizes and UTC modification times (directories left out), and `download`
/// streams a file byte-identical; over FTPS and over plain FTP (LOS).
#[test]
fn list_and_download_over_ftps_and_plain_ftp() {
    let cert = test_cert();
    for tls in [true, false] {
        let server = TestServer::start(tls.then_some(&cert), Quirks::default());
        let security = if tls {
            tls_verified(&cert)
        } else {
            FtpSecurity::Plain
        };
        let cfg = config(&server, security);
        let expected = seed_listing(&server);

        let mut listed = ftp::list(&cfg).unwrap();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(listed, expected, "tls={tls}");

        let big = std::fs::read(server.path("Pers_nye_20210323.csv")).unwrap();
        let mut got = Vec::new();
        let n = ftp::download(&cfg, "Pers_nye_20210323.csv", &mut got).unwrap();
        assert_eq!(n, big.len() as u64);
        assert!(got == big, "download differs (tls={tls})");

        let err = ftp::download(&cfg, "missing.csv", &mut Vec::new()).unwrap_err();
        assert_eq!(err.step(), Step::Retr, "{err}");
        assert_eq!(err.file(), Some("missing.csv"));
        assert_eq!(err.code(), Some(550), "{err}");
    }
}

/// A server that refuses `MLSD` is listed with `NLST`, `SIZE` and `MDTM` instead.
#[test]
fn list_falls_back_to_nlst_when_mlsd_is_refused() {
    let server = TestServer::start(None, Quirks::default());
    let expected = seed_listing(&server);
    let mut cfg = config(&server, FtpSecurity::Plain);
    cfg.port = refuse_mlsd_proxy(server.port);

    let mut listed = ftp::list(&cfg).unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    // NLST cannot tell directories from files: the directory comes back without size or time
    // (libunftp refuses SIZE and MDTM on it).
    let (dirs, files): (Vec<RemoteFile>, Vec<RemoteFile>) =
        listed.into_iter().partition(|f| f.name == "archive");
    assert_eq!(files, expected);
    assert_eq!(dirs.len(), 1);
}

/// Files with known content and modification times, and a directory; returns the expected
/// listing of the files, sorted by name.
fn seed_listing(server: &TestServer) -> Vec<RemoteFile> {
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    let files = [
        (
            "Org_inital_20210101.csv",
            b"a;b\r\n".to_vec(),
            "2021-01-01T00:00:05Z",
        ),
        ("Pers_nye_20210323.csv", big, "2021-03-23T15:32:41Z"),
        ("STAM_tom.csv", Vec::new(), "2024-12-31T23:59:59Z"),
    ];
    std::fs::create_dir(server.path("archive")).unwrap();
    let mut expected = Vec::new();
    for (name, bytes, modified) in files {
        std::fs::write(server.path(name), &bytes).unwrap();
        let modified: jiff::Timestamp = modified.parse().unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(server.path(name))
            .unwrap();
        file.set_modified(SystemTime::from(modified)).unwrap();
        expected.push(RemoteFile {
            name: name.to_owned(),
            size: Some(bytes.len() as u64),
            modified: Some(modified),
        });
    }
    expected
}
