//! Local Unix test users for the tests against real daemons that log in a system user (vsftpd,
//! pure-ftpd through it, OpenSSH's sshd): created once per machine with `useradd` (no home
//! directory made, no login shell) and given a fresh random password once per test process with
//! `chpasswd`. Needs root.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Held while a test helper changes a local account (`useradd`, `chpasswd`). Several helpers of
/// one test process set up their users at the same moment, and concurrent changes of
/// `/etc/shadow` lost one of the passwords (a login then refused); the lock file serialises them
/// across threads and processes. Dropping the file releases it.
pub fn account_lock() -> fs::File {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/dipex-test-accounts.lock")
        .expect("cannot open /tmp/dipex-test-accounts.lock");
    file.lock()
        .expect("cannot lock /tmp/dipex-test-accounts.lock");
    file
}

/// Whether the local user exists.
pub fn exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Make sure `user` exists with home directory `home` (not created) and no login shell, and
/// give it a new random password, which is returned.
pub fn user_with_new_password(user: &str, home: &str) -> String {
    let _accounts = account_lock();
    if !exists(user) {
        let nologin = ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        let status = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", home, "--shell"])
            .args([nologin, user])
            .status()
            .unwrap();
        // Another test process may have created it meanwhile.
        assert!(status.success() || exists(user), "useradd {user} failed");
    } else {
        let _ = Command::new("usermod")
            .args(["--home", home, user])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let password = random_password();
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(chpasswd.stdin.take().unwrap(), "{user}:{password}").unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    password
}

/// 24 random hex digits.
pub fn random_password() -> String {
    let mut random = [0u8; 12];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    random.iter().map(|b| format!("{b:02x}")).collect()
}
