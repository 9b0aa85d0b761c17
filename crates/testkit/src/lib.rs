//! dipex's test kit: what the tests and `dipex-bench` run against, on loopback, and the
//! synthetic data they use. It depends on no dipex crate; nothing in the product depends on it.
//!
//! * [`http`]: the small HTTP/1.1 server on `std::net` the OS2mo, OS2Sync and DAR servers answer
//!   through;
//! * [`os2mo`]: an OS2mo GraphQL v30 server with LoRa-like bitemporal semantics, and
//!   [`os2mo::peer`], which finds the real OS2mo the tests also run against;
//! * [`os2sync`]: an OS2sync 4.x REST API;
//! * [`dar`]: a KDS Adressevælger;
//! * [`gcs`]: a Google Cloud Storage JSON API with its OAuth token endpoint and metadata server;
//! * [`ftp`]: an FTP/FTPS server (libunftp) that misbehaves on request, and Debian's vsftpd;
//! * [`samba`]: Debian's smbd;
//! * [`synth`]: synthetic OPUS dumps and their address register;
//! * [`accounts`]: the local Unix users of the tests against real daemons.
//!
//! Synthetic data only: every CPR number here fails the modulus-11 check.

pub mod accounts;
pub mod dar;
pub mod ftp;
pub mod gcs;
pub mod http;
pub mod os2mo;
pub mod os2sync;
pub mod samba;
pub mod synth;

/// Whether this process runs as root (the daemons that log in or serve as local users need it).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `true` when a test can run (`reason` is `None`); otherwise [`skip`]s and returns `false`.
pub fn require(reason: Option<String>) -> bool {
    match reason {
        None => true,
        Some(reason) => {
            skip(&reason);
            false
        }
    }
}

/// A test that cannot run here (a daemon, root or a setting is missing): prints
/// `SKIPPED: <reason>` and returns, so the caller returns too; under `CI=true` it panics
/// instead, because `.ci/run` installs and starts everything the tests need, and a test that
/// skips there is a hole.
pub fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true, but this test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
