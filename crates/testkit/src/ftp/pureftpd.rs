//! A real Debian `pure-ftpd` (1.0.50) on 127.0.0.1, the second real FTP server the FTP/FTPS
//! tests must agree with (after [`super::vsftpd`]).
//!
//! Everything lives in a temporary directory: a PureDB of one virtual user, [`USER`], with a
//! random password (hashed with `openssl passwd -6`: pure-pw's own argon2id costs seconds per
//! login), mapped to the local Unix user [`super::vsftpd::USER`] and chrooted into the
//! served folder ([`PureFtpd::dir`]: the login lands in `/`); explicit FTPS required (`-Y 2`)
//! with a certificate signed by a private CA ([`super::vsftpd::private_ca`]); passive ports
//! above the kernel's ephemeral range, announced as 127.0.0.1. pure-ftpd logs to syslog only.
//!
//! Failure injection uses the real server's own switches: [`Options::no_rename`] (`-G`: every
//! rename refused with `550 Rename/move failure`, deletes still allowed) and
//! [`Options::no_dot_files`] (`-x`: storing a name that starts with a dot refused with
//! `553 Prohibited file name`). The session runs as the local user, so a sticky folder with
//! files of root refuses what the user may not do, as on any Unix server.
//!
//! Needs root and Debian's `pure-ftpd` and `pure-ftpd-common` packages, unpacked into
//! [`UNPACKED`] (or installed, without vsftpd); [`skip_reason`] says why not, and [`require`]
//! turns that into `SKIPPED: …`, or a failure when `CI=true`.

use super::vsftpd::{self, Certs};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/run` unpacks Debian's pure-ftpd packages (they conflict with vsftpd's as installed
/// packages: both provide `ftp-server`); `DIPEX_PURE_FTPD_ROOT` names another place. Without
/// either, an installed pure-ftpd is used.
pub const UNPACKED: &str = "/opt/dipex-pure-ftpd";
pub const OPENSSL: &str = "/usr/bin/openssl";

/// The path of one of the package's programs (`usr/sbin/pure-ftpd`, `usr/bin/pure-pw`).
pub fn program(rel: &str) -> PathBuf {
    let root = std::env::var_os("DIPEX_PURE_FTPD_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(UNPACKED));
    let unpacked = root.join(rel);
    if unpacked.exists() {
        unpacked
    } else {
        Path::new("/").join(rel)
    }
}
/// The virtual user the tests log in as.
pub const USER: &str = "dipex";

/// Why pure-ftpd cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    for rel in ["usr/sbin/pure-ftpd", "usr/bin/pure-pw"] {
        if !program(rel).exists() {
            return Some(format!(
                "{rel} not found in {UNPACKED} or /: unpack Debian's pure-ftpd and \
                 pure-ftpd-common packages there (as .ci/run does)"
            ));
        }
    }
    // The virtual user maps to a local user, whose account only root can make.
    (!crate::is_root()).then(|| "not root: pure-ftpd needs root to serve a local user".into())
}

/// `true` when the tests can run; otherwise prints `SKIPPED: …` and returns `false`, or panics
/// when `CI=true`.
pub fn require() -> bool {
    crate::require(skip_reason())
}

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-G`: refuse every rename.
    pub no_rename: bool,
    /// `-x`: refuse to store names that start with a dot.
    pub no_dot_files: bool,
}

/// A running pure-ftpd; killed on drop.
pub struct PureFtpd {
    child: Child,
    pub port: u16,
    pub certs: Certs,
    pub password: String,
    tmp: tempfile::TempDir,
}

impl PureFtpd {
    /// Start pure-ftpd serving an empty folder ([`PureFtpd::dir`], owned by the local user).
    pub fn start(opts: &Options) -> PureFtpd {
        // The local user the virtual one maps to (created once per machine).
        let _ = vsftpd::password();
        let (uid, gid) = vsftpd::user_ids();
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.join("files");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        let certs = vsftpd::private_ca(&root);
        let password = crate::accounts::random_password();
        let pdb = root.join("users.pdb");
        // The user's line written directly, with a SHA-512 crypt hash from openssl: pure-pw's
        // own argon2id hash takes seconds of CPU at every login.
        let hash = Command::new(OPENSSL)
            .args(["passwd", "-6", "-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                writeln!(c.stdin.take().unwrap(), "{password}")?;
                c.wait_with_output()
            })
            .expect("openssl passwd");
        assert!(hash.status.success(), "openssl passwd failed");
        let hash = String::from_utf8(hash.stdout).unwrap();
        let users = root.join("users.txt");
        fs::write(
            &users,
            // `/./`: chrooted into the served folder.
            format!(
                "{USER}:{}:{uid}:{gid}::{}/./::::::::::::\n",
                hash.trim(),
                dir.display()
            ),
        )
        .unwrap();
        let status = Command::new(program("usr/bin/pure-pw"))
            .arg("mkdb")
            .arg(&pdb)
            .arg("-f")
            .arg(&users)
            .stdout(Stdio::null())
            .status()
            .expect("pure-pw");
        assert!(status.success(), "pure-pw mkdb failed");
        for _attempt in 0..5 {
            let port = vsftpd::free_port();
            let mut cmd = Command::new(program("usr/sbin/pure-ftpd"));
            cmd.arg("-S")
                .arg(format!("127.0.0.1,{port}"))
                .args(["-E", "-H", "-4"])
                .arg("-l")
                .arg(format!("puredb:{}", pdb.display()))
                .args(["-Y", "2"])
                .arg("-2")
                .arg(format!("{},{}", certs.cert.display(), certs.key.display()))
                .args(["-p", "61000:64999", "-P", "127.0.0.1"]);
            if opts.no_rename {
                cmd.arg("-G");
            }
            if opts.no_dot_files {
                cmd.arg("-x");
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("pure-ftpd");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return PureFtpd {
                        child,
                        port,
                        certs,
                        password,
                        tmp,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let mut out = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut out);
                    }
                    assert!(
                        out.contains("in use") || out.contains("bind"),
                        "pure-ftpd exited ({status}): {out}"
                    );
                    break; // the port was taken meanwhile: try another
                }
                assert!(
                    Instant::now() < deadline,
                    "pure-ftpd did not start listening"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("pure-ftpd could not find a free port");
    }

    /// The served folder (the login's `/`).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("files")
    }

    /// The names in the served folder, sorted.
    pub fn names(&self) -> Vec<String> {
        vsftpd::names_in(&self.dir())
    }

    /// Write a file into the served folder, owned by the local user (as if uploaded earlier).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        vsftpd::put_as_user(&self.dir().join(name), bytes)
    }
}

impl Drop for PureFtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
