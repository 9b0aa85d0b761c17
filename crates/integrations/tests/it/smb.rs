//! Tests of the SMB transport (`transport::smb`, through `Source`) against a real Samba `smbd`
//! on loopback (`dipex_testkit::samba`), with libsmbclient loaded at run time.
//! Without root, `smbd` or libsmbclient every test prints `SKIPPED` and passes (under
//! `CI=true` it fails: `dipex_testkit::skip`); `.ci/run` installs `samba` and `libsmbclient`
//! and runs as root.

use std::time::{Duration, Instant};

use dipex_integrations::opus::files::list_source_dumps;
use dipex_integrations::transport::smb::{self, SmbConfig, SmbError};
use dipex_integrations::transport::source::{Source, SourceError};
use dipex_testkit::samba::{self, PASSWORD, Samba, USER};

fn skip_reason() -> Option<String> {
    if let Some(r) = samba::skip_reason() {
        return Some(r);
    }
    if !smb::library_available() {
        return Some("libsmbclient cannot be loaded: install libsmbclient".into());
    }
    None
}

macro_rules! require_samba {
    () => {
        if let Some(reason) = skip_reason() {
            dipex_testkit::skip(&reason);
            return;
        }
    };
}

fn config(server: &Samba, host: &str, password: &str) -> SmbConfig {
    let _ = server;
    let mut cfg = SmbConfig::new(host, USER, password).unwrap();
    cfg.timeout = Duration::from_secs(10);
    cfg.attempts = 2;
    cfg.wait = Duration::from_millis(100);
    cfg
}

fn smb_err(e: SourceError) -> SmbError {
    match e {
        SourceError::Smb(e) => e,
        other => panic!("not an SMB error: {other}"),
    }
}

#[test]
fn smb_lists_picks_and_fetches_dumps() {
    require_samba!();
    let server = Samba::start();
    let share = server.share_dir();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(share.join("ZLPE20240102220000_delta.xml"), "<b>æøå</b>").unwrap();
    std::fs::write(share.join("ZLPE20240101220000_delta.xml"), &big).unwrap();
    std::fs::write(share.join("notes.txt"), "x").unwrap();
    std::fs::write(share.join("sub/ZLPE20240103220000_delta.xml"), "<c/>").unwrap();
    let src = Source::Smb(config(&server, &server.host(), PASSWORD));
    let listing = src
        .list()
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let names: Vec<&str> = listing.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ZLPE20240101220000_delta.xml",
            "ZLPE20240102220000_delta.xml",
            "notes.txt"
        ]
    );
    assert_eq!(listing[0].size, Some(big.len() as u64));
    let mtime = std::fs::metadata(share.join("notes.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        listing[2].modified.map(|t| t.as_second()),
        Some(jiff::Timestamp::try_from(mtime).unwrap().as_second())
    );

    // The OPUS rules pick the dumps.
    let spool = tempfile::tempdir().unwrap();
    let (dumps, skipped) = list_source_dumps(&src, spool.path()).unwrap();
    assert_eq!(dumps.len(), 2);
    assert_eq!(skipped, ["notes.txt"]);
    let next = &dumps[0];
    assert_eq!(next.dump.name, "ZLPE20240101220000_delta.xml");
    src.fetch(&next.remote, &next.dump.path).unwrap();
    assert_eq!(std::fs::read(&next.dump.path).unwrap(), big);
    assert_eq!(
        src.read("ZLPE20240102220000_delta.xml").unwrap(),
        "<b>æøå</b>".as_bytes()
    );

    // A subfolder of the share.
    let sub = Source::Smb(config(&server, &format!("{}/sub", server.host()), PASSWORD));
    let names: Vec<String> = sub.list().unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["ZLPE20240103220000_delta.xml"]);
    assert_eq!(sub.read("ZLPE20240103220000_delta.xml").unwrap(), b"<c/>");

    // A missing file names the file.
    let e = smb_err(src.read("ZLPE20990101000000_delta.xml").unwrap_err());
    assert!(
        e.to_string().contains("ZLPE20990101000000_delta.xml"),
        "{e}"
    );
}

#[test]
fn smb_wrong_password_fails_at_once_without_showing_it() {
    require_samba!();
    let server = Samba::start();
    let wrong = "Wr0ng-secret-pw";
    let mut cfg = config(&server, &server.host(), wrong);
    cfg.attempts = 5;
    cfg.wait = Duration::from_secs(2);
    let started = Instant::now();
    let e = smb_err(Source::Smb(cfg).list().unwrap_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no retries: {:?}",
        started.elapsed()
    );
    assert!(matches!(e, SmbError::Denied { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("wrong user name or password"), "{text}");
    assert!(
        text.contains(&server.host().replace('/', "")[..9]),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    assert!(!format!("{e:?}").contains(wrong));
}

#[test]
fn smb_unreachable_server_is_retried_then_reported() {
    require_samba!();
    let port = samba::free_port();
    let mut cfg = SmbConfig::new(&format!("127.0.0.1:{port}/opus"), USER, PASSWORD).unwrap();
    cfg.attempts = 3;
    cfg.wait = Duration::from_millis(200);
    cfg.timeout = Duration::from_secs(5);
    let started = Instant::now();
    let e = smb_err(Source::Smb(cfg).list().unwrap_err());
    let text = e.to_string();
    assert!(text.contains(&format!("//127.0.0.1:{port}/opus")), "{text}");
    assert!(text.contains("after 3 attempts"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn smb_missing_share_is_named() {
    require_samba!();
    let server = Samba::start();
    let host = format!("127.0.0.1:{}/nosuchshare", server.port);
    let e = smb_err(
        Source::Smb(config(&server, &host, PASSWORD))
            .list()
            .unwrap_err(),
    );
    let text = e.to_string();
    assert!(text.contains("nosuchshare"), "{text}");
    assert!(!text.contains("after"), "not retried: {text}");
}
