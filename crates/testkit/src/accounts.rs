//! Local Unix test users for the tests against real daemons that log in a system user (vsftpd,
//! pure-ftpd through it, OpenSSH's sshd): created once per machine with `useradd` (no home
//! directory made, no login shell) and given a random password with `chpasswd` when it is made;
//! the password is kept in `/tmp/dipex-test-<user>.password` (mode 0600), so test processes
//! running at the same time log in with the same one. Needs root.

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

/// Make sure `user` exists with home directory `home` (not created) and no login shell, with a
/// random password, which is returned. The password is made once and kept for later test
/// processes (one that set a new one would lock out a process already running).
pub fn user_with_password(user: &str, home: &str) -> String {
    let _accounts = account_lock();
    let kept = Path::new("/tmp").join(format!("dipex-test-{user}.password"));
    let existed = exists(user);
    if !existed {
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
    if let Ok(password) = fs::read_to_string(&kept)
        && existed
        && !password.trim().is_empty()
    {
        return password.trim().to_string();
    }
    let password = random_password();
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(chpasswd.stdin.take().unwrap(), "{user}:{password}").unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&kept)
            .unwrap();
        f.write_all(password.as_bytes()).unwrap();
    }
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
