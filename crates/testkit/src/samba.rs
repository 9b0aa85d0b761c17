//! A real Samba `smbd` on 127.0.0.1, for the SMB transport tests.
//!
//! Everything lives in a temporary directory: `smb.conf` (`smb ports` = a free port,
//! `interfaces = lo`, `bind interfaces only`, no NetBIOS, SMB2.10 and newer only), the state,
//! lock, cache and private directories, a tdbsam user database with one user (`root`, whose
//! Unix account every Debian system has) and a password, and the shared folder
//! (share `opus`, read-only). `smbd --foreground --no-process-group` is killed on drop.
//!
//! Needs root (smbd switches to the logged-in user) and Debian's `samba` package;
//! [`skip_reason`] says why the tests cannot run otherwise.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SMBD: &str = "/usr/sbin/smbd";
pub const SMBPASSWD: &str = "/usr/bin/smbpasswd";
/// The share's name.
pub const SHARE: &str = "opus";
/// The Samba user.
pub const USER: &str = "root";
/// Its password (synthetic).
pub const PASSWORD: &str = "smb-test-Pa55word-æ";

/// Why a Samba server cannot be started here, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !Path::new(SMBD).exists() || !Path::new(SMBPASSWD).exists() {
        return Some(format!(
            "{SMBD} or {SMBPASSWD} not found: install Debian's samba package"
        ));
    }
    if !crate::is_root() {
        return Some("not root: smbd needs root to serve files as its user".into());
    }
    None
}

/// A running smbd; killed on drop.
pub struct Samba {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Samba {
    /// Start smbd sharing an empty folder ([`Samba::share_dir`]) as `opus`, with a subfolder
    /// `sub`.
    pub fn start() -> Samba {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        for d in [
            "share",
            "share/sub",
            "state",
            "lock",
            "cache",
            "private",
            "pid",
            "ncalrpc",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for _attempt in 0..5 {
            let port = free_port();
            let conf = root.join("smb.conf");
            fs::write(
                &conf,
                format!(
                    "[global]\n\
                     server role = standalone server\n\
                     workgroup = WORKGROUP\n\
                     smb ports = {port}\n\
                     interfaces = lo\n\
                     bind interfaces only = yes\n\
                     disable netbios = yes\n\
                     server min protocol = SMB2_10\n\
                     passdb backend = tdbsam:{r}/private/passdb.tdb\n\
                     private dir = {r}/private\n\
                     state directory = {r}/state\n\
                     lock directory = {r}/lock\n\
                     cache directory = {r}/cache\n\
                     pid directory = {r}/pid\n\
                     ncalrpc dir = {r}/ncalrpc\n\
                     log file = {r}/smbd.log\n\
                     log level = 1\n\
                     map to guest = never\n\
                     load printers = no\n\
                     printing = bsd\n\
                     printcap name = /dev/null\n\
                     disable spoolss = yes\n\
                     [{SHARE}]\n\
                     path = {r}/share\n\
                     read only = yes\n\
                     guest ok = no\n\
                     valid users = {USER}\n",
                    r = root.display()
                ),
            )
            .unwrap();
            let mut pw = Command::new(SMBPASSWD)
                .arg("-c")
                .arg(&conf)
                .args(["-s", "-a", USER])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("smbpasswd");
            use std::io::Write;
            pw.stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
                .unwrap();
            let out = pw.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "smbpasswd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let log = fs::File::create(root.join("smbd.stderr")).unwrap();
            let mut child = Command::new(SMBD)
                .args(["--foreground", "--no-process-group", "-s"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("smbd");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Samba { child, port, dir };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let log = fs::read_to_string(root.join("smbd.stderr")).unwrap_or_default()
                        + &fs::read_to_string(root.join("smbd.log")).unwrap_or_default();
                    assert!(
                        log.contains("Address already in use") || log.contains("in use"),
                        "smbd exited ({status}): {log}"
                    );
                    break; // port taken meanwhile: try another
                }
                assert!(Instant::now() < deadline, "smbd did not start listening");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("smbd could not find a free port");
    }

    /// The shared folder on disk.
    pub fn share_dir(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// OPUS's `smb_host` for the share's root: `127.0.0.1:<port>/opus`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}/{SHARE}", self.port)
    }

    /// smbd's log, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("smbd.log")).unwrap_or_default()
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
