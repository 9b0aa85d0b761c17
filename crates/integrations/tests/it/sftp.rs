//! Tests of the SFTP transport (`dipex_integrations::transport::sftp`) against a real OpenSSH
//! server on loopback.
//!
//! Each test starts its own `/usr/sbin/sshd -D -e` on a free port of 127.0.0.1, with a config,
//! an ed25519 host key and an `authorized_keys` file in a temporary directory, the `sftp`
//! subsystem served by `internal-sftp`, and `AllowUsers` limited to a dedicated local test user.
//! Password authentication needs a real local user with a password, so the tests create
//! `dipex-sftp-test` (no home, `nologin` shell) once with `useradd` and a random password
//! (`chpasswd`; kept for later test processes, `dipex_testkit::accounts`); that needs root. Without `/usr/sbin/sshd`
//! (Debian: `apt-get install openssh-server`) or without root, every test prints `SKIPPED` and
//! passes (under `CI=true` it fails: `dipex_testkit::skip`); `.ci/run` installs the server and
//! runs as root.
//!
//! The client under test runs synchronously on the test thread.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use dipex_integrations::transport::RemoteFile;
use dipex_integrations::transport::put::{Left, PutStep};
use dipex_integrations::transport::sftp::{
    self, HostKeyCheck, HostKeyProblem, SftpAuth, SftpConfig, SftpError, Step,
};

const SSHD: &str = "/usr/sbin/sshd";
const USER: &str = "dipex-sftp-test";
const PASSPHRASE: &str = "key-passphrase-æøå";

// ---------------------------------------------------------------------------------------------
// The test user, client keys and the server

/// Why the tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            if !Path::new(SSHD).exists() {
                return Some(format!("{SSHD} not found: install openssh-server"));
            }
            if !dipex_testkit::is_root() {
                return Some("not root: sshd cannot log in a test user".to_owned());
            }
            None
        })
        .clone()
}

macro_rules! require_sshd {
    () => {
        if let Some(reason) = skip_reason() {
            dipex_testkit::skip(&reason);
            return;
        }
    };
}

fn run_out(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The test user's password: the user and its random password are made once per machine
/// (`dipex_testkit::accounts`).
fn password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| dipex_testkit::accounts::user_with_password(USER, "/nonexistent"))
}

/// Client keys, made once per test process: ed25519 without a passphrase, and RSA encrypted
/// with [`PASSPHRASE`] in the PEM format paramiko-era tools write.
struct ClientKeys {
    _dir: tempfile::TempDir,
    ed25519: PathBuf,
    rsa: PathBuf,
    authorized: String,
}

fn client_keys() -> &'static ClientKeys {
    static KEYS: OnceLock<ClientKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ed25519 = dir.path().join("id_ed25519");
        let rsa = dir.path().join("id_rsa");
        keygen(&ed25519, &["-t", "ed25519", "-N", ""]);
        keygen(
            &rsa,
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASSPHRASE],
        );
        let authorized = [&ed25519, &rsa]
            .iter()
            .map(|k| fs::read_to_string(k.with_extension("pub")).unwrap())
            .collect();
        ClientKeys {
            _dir: dir,
            ed25519,
            rsa,
            authorized,
        }
    })
}

fn keygen(path: &Path, args: &[&str]) {
    run_out(
        Command::new("ssh-keygen")
            .args(["-q", "-C", "dipex-test", "-f"])
            .arg(path)
            .args(args),
    );
}

/// A running sshd with its files; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The files in the served directory, as the listing should show them.
fn expected_listing() -> Vec<RemoteFile> {
    let file = |name: &str, size: u64, at: &str| RemoteFile {
        name: name.to_owned(),
        size: Some(size),
        modified: Some(at.parse().unwrap()),
    };
    vec![
        file(
            "Pers_2024-03-23.csv",
            PERS.len() as u64,
            "2024-03-23T15:32:41Z",
        ),
        file("big.bin", BIG_SIZE as u64, "2021-01-02T03:04:05Z"),
        file("empty.csv", 0, "2023-12-31T23:59:59Z"),
        // A symbolic link to Pers_2024-03-23.csv: listed with its target's size and time.
        file("link.csv", PERS.len() as u64, "2024-03-23T15:32:41Z"),
    ]
}

const BIG_SIZE: usize = 1_048_583;
const PERS: &str = "\"Id\";\"Navn\"\n\"1\";\"Ærø\"\n";

fn big_content(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn set_mtime(path: &Path, at: &str) {
    let at: jiff::Timestamp = at.parse().unwrap();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(at.as_second() as u64);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

impl Sshd {
    /// Start sshd with `extra` config lines (e.g. `AuthenticationMethods`).
    fn start(extra: &str) -> Sshd {
        let _ = password();
        let keys = client_keys();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // sshd reads authorized_keys as the user, and internal-sftp serves files as the user.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        keygen(&root.join("host_ed25519"), &["-t", "ed25519", "-N", ""]);
        fs::write(root.join("authorized_keys"), &keys.authorized).unwrap();

        let data = root.join("data");
        fs::create_dir(&data).unwrap();
        fs::create_dir(data.join("archive")).unwrap();
        fs::write(data.join("Pers_2024-03-23.csv"), PERS).unwrap();
        fs::write(data.join("empty.csv"), "").unwrap();
        fs::write(data.join("big.bin"), big_content(BIG_SIZE)).unwrap();
        fs::write(data.join("huge.bin"), big_content(8 << 20)).unwrap();
        std::os::unix::fs::symlink("Pers_2024-03-23.csv", data.join("link.csv")).unwrap();
        std::os::unix::fs::symlink("archive", data.join("archive-link")).unwrap();
        set_mtime(&data.join("Pers_2024-03-23.csv"), "2024-03-23T15:32:41Z");
        set_mtime(&data.join("empty.csv"), "2023-12-31T23:59:59Z");
        set_mtime(&data.join("big.bin"), "2021-01-02T03:04:05Z");
        // huge.bin is only downloaded through the cutting proxy; hide it from the listing
        // test by keeping it in its own directory.
        fs::create_dir(root.join("huge")).unwrap();
        fs::rename(data.join("huge.bin"), root.join("huge/huge.bin")).unwrap();

        for _attempt in 0..5 {
            let port = crate::free_port();
            let config = root.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_ed25519\n\
                     PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n\
                     StrictModes no\nUsePAM no\nPasswordAuthentication yes\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     AllowUsers {USER}\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n{extra}\n",
                    root = root.display()
                ),
            )
            .unwrap();
            let log = fs::File::create(root.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd { child, port, dir };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let log = fs::read_to_string(root.join("sshd.log")).unwrap_or_default();
                    assert!(
                        log.contains("Address already in use"),
                        "sshd exited ({status}): {log}"
                    );
                    break; // Port taken meanwhile: try another.
                }
                assert!(Instant::now() < deadline, "sshd did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd could not find a free port");
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root().join("sshd.log")).unwrap_or_default()
    }

    /// `[127.0.0.1]:port <host key>`, as `ssh` would record it.
    fn known_hosts_line(&self) -> String {
        let key = fs::read_to_string(self.root().join("host_ed25519.pub")).unwrap();
        format!("[127.0.0.1]:{} {}", self.port, key.trim())
    }

    /// The host key's fingerprint as `ssh-keygen -l` shows it.
    fn fingerprint(&self) -> String {
        let out = run_out(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(self.root().join("host_ed25519.pub")),
        );
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// A `known_hosts` file with `text`.
    fn known_hosts(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root().join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn config(&self, auth: SftpAuth) -> SftpConfig {
        let known = self.known_hosts("known_hosts", &format!("{}\n", self.known_hosts_line()));
        let mut cfg = SftpConfig::new("127.0.0.1", USER, auth, HostKeyCheck::KnownHosts(known));
        cfg.port = self.port;
        cfg.dir = Some(self.root().join("data").display().to_string());
        cfg.timeout = Duration::from_secs(10);
        cfg
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ed25519() -> SftpAuth {
    SftpAuth::Key {
        path: client_keys().ed25519.clone(),
        passphrase: None,
    }
}

fn rsa(passphrase: Option<&str>) -> SftpAuth {
    SftpAuth::Key {
        path: client_keys().rsa.clone(),
        passphrase: passphrase.map(str::to_owned),
    }
}

fn download_vec(cfg: &SftpConfig, name: &str) -> Result<Vec<u8>, SftpError> {
    let mut out = Vec::new();
    let n = sftp::download(cfg, name, &mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

fn assert_no_secrets(err: &SftpError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(password()), "password in error: {shown}");
    assert!(!shown.contains(PASSPHRASE), "passphrase in error: {shown}");
}

// ---------------------------------------------------------------------------------------------
// Tests

/// ed25519 key: the listing has the regular files (and the link to one) with sizes and UTC
/// times, without directories; a 1 MB download is byte-identical; a missing file is refused at
/// the open step, naming the file.
#[test]
fn ed25519_key_lists_and_downloads() {
    require_sshd!();
    let server = Sshd::start("");
    let cfg = server.config(ed25519());

    assert_eq!(sftp::list(&cfg).unwrap(), expected_listing());
    assert_eq!(
        download_vec(&cfg, "big.bin").unwrap(),
        big_content(BIG_SIZE)
    );
    assert_eq!(
        download_vec(&cfg, "Pers_2024-03-23.csv").unwrap(),
        PERS.as_bytes()
    );
    assert_eq!(download_vec(&cfg, "empty.csv").unwrap(), b"");

    let err = download_vec(&cfg, "missing.csv").unwrap_err();
    assert!(matches!(err, SftpError::Refused { .. }), "{err:?}");
    assert_eq!(err.step(), Step::Open);
    assert_eq!(err.file(), Some("missing.csv"));
    assert!(err.to_string().contains("No such file"), "{err}");

    let mut missing_dir = cfg.clone();
    missing_dir.dir = Some("/nonexistent-dir".to_owned());
    let err = sftp::list(&missing_dir).unwrap_err();
    assert_eq!(
        (err.step(), err.file()),
        (Step::List, Some("/nonexistent-dir"))
    );
}

/// An upload lands whole under its name in the folder, replaces an older file of that name and
/// leaves no `.part` file; a missing folder is refused at the upload step, naming the file.
#[test]
fn upload_replaces_and_needs_the_folder() {
    require_sshd!();
    let server = Sshd::start("");
    let cfg = server.config(ed25519());
    let folder = server.root().join("data/out");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o777)).unwrap();

    sftp::upload(&cfg, "out", "list.txt", b"first version, longer").unwrap();
    sftp::upload(&cfg, "out", "list.txt", b"second").unwrap();
    assert_eq!(fs::read(folder.join("list.txt")).unwrap(), b"second");
    let names: Vec<_> = fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["list.txt"]);

    let err = sftp::upload(&cfg, "missing", "list.txt", b"x").unwrap_err();
    assert_eq!(err.step, PutStep::Prepare, "{err}");
    assert!(err.failure.refused, "{err:?}");
    assert!(err.to_string().starts_with("SFTP "), "{err}");
    assert_eq!(fs::read(folder.join("list.txt")).unwrap(), b"second");
    let err = sftp::upload(&cfg, "..", "list.txt", b"x").unwrap_err();
    assert!(
        err.to_string().contains("checking the remote name"),
        "{err}"
    );
}

/// `put_all` over SFTP: all files or none; a refused upload of the second file leaves the
/// previous files as they were.
#[test]
fn put_all_replaces_every_file_or_none() {
    require_sshd!();
    let server = Sshd::start("");
    let folder = server.root().join("data/set");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o777)).unwrap();
    let mut cfg = server.config(ed25519());
    cfg.dir = Some(folder.display().to_string());
    let local = tempfile::tempdir().unwrap();
    let mut list = Vec::new();
    for n in ["a.csv", "b.csv"] {
        fs::write(folder.join(n), format!("old {n}")).unwrap();
        fs::write(local.path().join(n), format!("new {n}")).unwrap();
        list.push((local.path().join(n), n.to_string()));
    }
    // The second local file cannot be read: nothing is replaced.
    fs::remove_file(local.path().join("b.csv")).unwrap();
    assert!(sftp::put_all(&cfg, &list).is_err());
    fs::write(local.path().join("b.csv"), "new b.csv").unwrap();
    for n in ["a.csv", "b.csv"] {
        assert_eq!(
            fs::read_to_string(folder.join(n)).unwrap(),
            format!("old {n}")
        );
    }
    sftp::put_all(&cfg, &list).unwrap();
    let mut names: Vec<_> = fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.csv", "b.csv"]);
    for n in ["a.csv", "b.csv"] {
        assert_eq!(
            fs::read_to_string(folder.join(n)).unwrap(),
            format!("new {n}")
        );
    }
}

/// plan2learn's five files, in the order `plan2learn ship` puts them.
const FIVE: [&str; 5] = [
    "bruger.csv",
    "organisation.csv",
    "engagement.csv",
    "stillingskode.csv",
    "leder.csv",
];

/// The test user's uid and gid (the SFTP session runs as that user).
fn test_user_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        run_out(Command::new("id").args([flag, USER]))
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// A sticky, world-writable folder on the server holding the previous five files, owned by the
/// test user (except the ones in `root_owned`, which the session can read but never rename or
/// delete: the sticky bit). The local new files: the 4th is `big` bytes. Returns the folder, the
/// client settings and the upload list.
fn previous_five(
    server: &Sshd,
    local: &Path,
    root_owned: &[&str],
    big: usize,
) -> (PathBuf, SftpConfig, Vec<(PathBuf, String)>) {
    let (uid, gid) = test_user_ids();
    let folder = server.root().join("data/set");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o1777)).unwrap();
    let mut list = Vec::new();
    for (i, name) in FIVE.iter().enumerate() {
        let path = folder.join(name);
        fs::write(&path, format!("previous {name}")).unwrap();
        if !root_owned.contains(name) {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        let new = local.join(name);
        if i == 3 {
            fs::write(&new, big_content(big)).unwrap();
        } else {
            fs::write(&new, format!("new {name}")).unwrap();
        }
        list.push((new, name.to_string()));
    }
    let mut cfg = server.config(ed25519());
    cfg.dir = Some(folder.display().to_string());
    (folder, cfg, list)
}

/// The names in `folder`, sorted.
fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The folder holds the previous five files, byte-identical, and `also` (sorted), nothing else.
fn assert_previous_five(folder: &Path, also: &[&str]) {
    let mut expected: Vec<String> = FIVE.iter().chain(also).map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names_in(folder), expected);
    for name in FIVE {
        assert_eq!(
            fs::read_to_string(folder.join(name)).unwrap(),
            format!("previous {name}"),
            "{name}"
        );
    }
}

/// The SFTP server refuses to store the 4th file (its temporary names are taken by files the
/// session may not write or delete): the server keeps exactly the previous five, and the first
/// three temporary files are deleted again.
#[test]
fn a_refused_upload_of_the_fourth_file_leaves_the_previous_five() {
    require_sshd!();
    let server = Sshd::start("");
    let local = tempfile::tempdir().unwrap();
    let (folder, cfg, list) = previous_five(&server, local.path(), &[], 10);
    let blockers = [".stillingskode.csv.part", "stillingskode.csv.part"];
    for b in blockers {
        fs::write(folder.join(b), "not yours").unwrap();
        fs::set_permissions(folder.join(b), fs::Permissions::from_mode(0o444)).unwrap();
    }
    let err = sftp::put_all(&cfg, &list).unwrap_err();
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"), "{err}");
    assert!(err.failure.refused, "the server refused it: {err}");
    assert_eq!(*err.left, Left::Unchanged, "{err}");
    assert_previous_five(&folder, &blockers);
}

/// The SFTP server refuses to rename the 4th previous file to its backup name (the session may
/// not move it): the first three, already replaced, are put back, and no file is lost.
#[test]
fn a_refused_rename_of_the_fourth_file_puts_the_first_three_back() {
    require_sshd!();
    let server = Sshd::start("");
    let local = tempfile::tempdir().unwrap();
    let (folder, cfg, list) = previous_five(&server, local.path(), &["stillingskode.csv"], 10);
    let err = sftp::put_all(&cfg, &list).unwrap_err();
    assert_eq!(err.step, PutStep::Backup, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"), "{err}");
    assert!(err.failure.refused, "the server refused it: {err}");
    assert_eq!(*err.left, Left::Restored, "{err}");
    assert_previous_five(&folder, &[]);
}

/// The connection dies while the 4th file is being uploaded (cut between client and server):
/// over a new connection the temporary files are deleted, and the server keeps exactly the
/// previous five.
#[test]
fn a_connection_killed_mid_transfer_leaves_the_previous_five() {
    require_sshd!();
    let server = Sshd::start("");
    let local = tempfile::tempdir().unwrap();
    let (folder, mut cfg, list) = previous_five(&server, local.path(), &[], 64 << 20);
    let (port, cut) = switch_proxy(server.port);
    cfg.port = port;
    // The host key is looked up under the port the client connects to.
    let line = server
        .known_hosts_line()
        .replace(&format!(":{} ", server.port), &format!(":{port} "));
    cfg.host_keys = HostKeyCheck::KnownHosts(server.known_hosts("proxy", &format!("{line}\n")));
    // Cut the connection as soon as the 4th file's upload has begun.
    let watched = folder.join(".stillingskode.csv.part");
    let watcher = {
        let cut = cut.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if fs::metadata(&watched).is_ok_and(|m| m.len() > 0) {
                    cut.store(true, Ordering::SeqCst);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        })
    };
    let err = sftp::put_all(&cfg, &list).unwrap_err();
    assert!(watcher.join().unwrap(), "the 4th upload never began: {err}");
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"), "{err}");
    assert!(
        !err.failure.refused,
        "a dead connection, not a refusal: {err}"
    );
    assert_eq!(*err.left, Left::Unchanged, "{err}");
    assert_previous_five(&folder, &[]);
}

/// A proxy to `port` that passes everything until `cut` is set, then closes the connections it
/// carries (the flag is cleared again, so later connections pass).
fn switch_proxy(port: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            for (from, to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server.try_clone().unwrap(), client.try_clone().unwrap()),
            ] {
                let flag = flag.clone();
                std::thread::spawn(move || pump_until_cut(from, to, &flag));
            }
        }
    });
    (proxy_port, cut)
}

/// Copy `from` to `to` until either side closes or `cut` is set (then close both).
fn pump_until_cut(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if cut.swap(false, Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// An encrypted RSA key (PEM, as paramiko wrote them) with its passphrase logs in; without it or
/// with a wrong one the key file is refused before connecting, naming the file.
#[test]
fn encrypted_rsa_key_needs_its_passphrase() {
    require_sshd!();
    let server = Sshd::start("");
    let cfg = server.config(rsa(Some(PASSPHRASE)));
    assert_eq!(sftp::list(&cfg).unwrap(), expected_listing());

    for passphrase in [None, Some("wrong passphrase")] {
        let cfg = server.config(rsa(passphrase));
        let err = sftp::list(&cfg).unwrap_err();
        assert!(matches!(err, SftpError::Setup { .. }), "{err:?}");
        assert_eq!(err.step(), Step::ReadKey, "{err}");
        assert_eq!(err.file(), Some(client_keys().rsa.to_str().unwrap()));
        assert_no_secrets(&err);
    }
    // Nothing reached the server.
    assert_eq!(server.log().matches("Accepted publickey").count(), 1);
}

/// Password login works; a wrong password is refused at the password step, and the error names
/// the user but not the password.
#[test]
fn password_login_and_wrong_password() {
    require_sshd!();
    let server = Sshd::start("");
    let cfg = server.config(SftpAuth::Password(password().to_owned()));
    assert_eq!(sftp::list(&cfg).unwrap(), expected_listing());

    let cfg = server.config(SftpAuth::Password("not-the-password".to_owned()));
    let err = sftp::list(&cfg).unwrap_err();
    assert!(matches!(err, SftpError::Refused { .. }), "{err:?}");
    assert_eq!(err.step(), Step::AuthPassword);
    let text = err.to_string();
    assert!(text.contains("password authentication refused"), "{text}");
    assert!(text.contains(USER), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert_no_secrets(&err);
}

/// A server that demands publickey then password (`AuthenticationMethods publickey,password`):
/// key then password logs in; the key alone or the password alone is refused with a message
/// saying what the server wants; a wrong password after the key is refused at the password step.
#[test]
fn key_then_password() {
    require_sshd!();
    let server = Sshd::start("AuthenticationMethods publickey,password");
    let both = |password: &str| SftpAuth::KeyThenPassword {
        path: client_keys().ed25519.clone(),
        passphrase: None,
        password: password.to_owned(),
    };
    let cfg = server.config(both(password()));
    assert_eq!(sftp::list(&cfg).unwrap(), expected_listing());
    assert_eq!(
        download_vec(&cfg, "big.bin").unwrap(),
        big_content(BIG_SIZE)
    );

    let err = sftp::list(&server.config(ed25519())).unwrap_err();
    assert_eq!(err.step(), Step::AuthPublicKey, "{err}");
    assert!(err.to_string().contains("requires more"), "{err}");
    assert!(err.to_string().contains("password"), "{err}");

    let err = sftp::list(&server.config(SftpAuth::Password(password().to_owned()))).unwrap_err();
    assert_eq!(err.step(), Step::AuthPassword, "{err}");
    assert!(err.to_string().contains("offers: publickey"), "{err}");

    let err = sftp::list(&server.config(both("wrong-password"))).unwrap_err();
    assert!(matches!(err, SftpError::Refused { .. }), "{err:?}");
    assert_eq!(err.step(), Step::AuthPassword, "{err}");
    assert_no_secrets(&err);
}

/// Host keys: an unknown host and a changed key are refused during the handshake, before any
/// authentication, naming the host and the key's fingerprint; a hashed `known_hosts` entry
/// (`ssh-keygen -H`) is accepted; `Insecure` accepts any key; a missing `known_hosts` file is
/// reported before connecting.
#[test]
fn host_keys_are_checked_before_authentication() {
    require_sshd!();
    let server = Sshd::start("");
    let with_known = |path: PathBuf| {
        let mut cfg = server.config(SftpAuth::Password(password().to_owned()));
        cfg.host_keys = HostKeyCheck::KnownHosts(path);
        cfg
    };
    let fingerprint = server.fingerprint();
    let host = format!("127.0.0.1:{}", server.port);
    let recorded = format!("[127.0.0.1]:{}", server.port);

    // Unknown: the file knows another port only.
    let other_port = server
        .known_hosts_line()
        .replace(&format!(":{} ", server.port), ":1 ");
    let unknown = server.known_hosts("unknown", &format!("# other servers\n{other_port}\n"));
    let err = sftp::list(&with_known(unknown.clone())).unwrap_err();
    match &err {
        SftpError::HostKey {
            server: s,
            problem: HostKeyProblem::Unknown { known_hosts, .. },
            key_type,
            fingerprint: f,
        } => {
            assert_eq!(s, &format!("127.0.0.1:{}", server.port));
            assert_eq!((known_hosts, key_type.as_str()), (&unknown, "ssh-ed25519"));
            assert_eq!(f, &fingerprint);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.step(), Step::HostKey);
    let text = err.to_string();
    let start = format!("SFTP {host}: host key check failed: the host is not in");
    assert!(
        text.starts_with(&start[..]) && text.contains(&fingerprint),
        "{text}"
    );

    // Changed: another ed25519 key recorded for this host and port, on line 2.
    let other_key = server.root().join("other_ed25519");
    keygen(&other_key, &["-t", "ed25519", "-N", ""]);
    let other_key = fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let changed = server.known_hosts("changed", &format!("\n{recorded} {other_key}"));
    let err = sftp::list(&with_known(changed)).unwrap_err();
    assert!(
        matches!(
            &err,
            SftpError::HostKey { problem: HostKeyProblem::Changed { line: 2, .. }, fingerprint: f, .. }
                if f == &fingerprint
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 2"), "{err}");

    // Neither attempt got as far as authentication.
    let log = server.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "{log}"
    );

    // Hashed by ssh-keygen itself.
    let hashed = server.known_hosts("hashed", &format!("{}\n", server.known_hosts_line()));
    run_out(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&hashed));
    assert!(fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    assert_eq!(sftp::list(&with_known(hashed)).unwrap(), expected_listing());

    let mut insecure = with_known(PathBuf::new());
    insecure.host_keys = HostKeyCheck::Insecure;
    assert_eq!(sftp::list(&insecure).unwrap(), expected_listing());

    let missing = server.root().join("no-such-known-hosts");
    let err = sftp::list(&with_known(missing.clone())).unwrap_err();
    assert_eq!(err.step(), Step::ReadKnownHosts, "{err}");
    assert_eq!(err.file(), missing.to_str());
}

/// A connection that drops in the middle of a download (a proxy that cuts it after 1 MB of an
/// 8 MB file) is a clean error naming the file and the download step, quickly.
#[test]
fn connection_dropped_mid_download() {
    require_sshd!();
    let server = Sshd::start("");
    let mut cfg = server.config(ed25519());
    cfg.dir = Some(server.root().join("huge").display().to_string());
    cfg.port = cutting_proxy(server.port, 1 << 20);
    // The host key is looked up under the port the client connects to.
    let line = server
        .known_hosts_line()
        .replace(&format!(":{} ", server.port), &format!(":{} ", cfg.port));
    cfg.host_keys = HostKeyCheck::KnownHosts(server.known_hosts("proxy", &format!("{line}\n")));
    let started = Instant::now();
    let mut out = Vec::new();
    let err = sftp::download(&cfg, "huge.bin", &mut out).unwrap_err();
    assert!(matches!(err, SftpError::Connection { .. }), "{err:?}");
    assert_eq!(err.step(), Step::Download, "{err}");
    assert_eq!(err.file(), Some("huge.bin"));
    let text = err.to_string();
    assert!(
        text.contains("download of huge.bin failed: the connection was lost"),
        "{text}"
    );
    assert!(out.len() < 8 << 20, "{}", out.len());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// A proxy to `port` that closes both sides after passing `limit` bytes from the server.
fn cutting_proxy(port: u16, limit: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let mut server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut to_server, mut from_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_server);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut passed = 0;
                while passed < limit {
                    match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let n = n.min(limit - passed);
                            if client.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            passed += n;
                        }
                    }
                }
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            });
        }
    });
    proxy_port
}

/// The LOS import over SFTP gives the same MO as from a local folder; a connection that drops in
/// the middle of a file fails the run and leaves the state file alone.
#[test]
fn los_import_over_sftp() {
    use dipex_backend::{Backend, Query, Store};
    use dipex_integrations::los::{run as los, uuids};
    use dipex_integrations::transport::source::Source;
    use dipex_model::Kind;
    require_sshd!();
    struct Clock(u128);
    impl dipex_integrations::opus::run::Env for Clock {
        fn now(&self) -> jiff::civil::DateTime {
            jiff::civil::date(2021, 3, 10).at(12, 0, 0, 0)
        }
        fn timestamp(&self) -> jiff::Timestamp {
            jiff::Timestamp::now()
        }
        fn new_uuid(&mut self) -> uuid::Uuid {
            self.0 += 1;
            uuid::Uuid::from_u128(0x1e55_0000_0000_4000_8000_0000_0000_0000 + self.0)
        }
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/los");
    let server = Sshd::start("");
    let served = server.root().join("los");
    fs::create_dir(&served).unwrap();
    fs::set_permissions(&served, fs::Permissions::from_mode(0o755)).unwrap();
    for e in fs::read_dir(fixtures.join("ok")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), served.join(e.file_name())).unwrap();
    }
    let register =
        dipex_integrations::dar::OfflineRegister::load(fixtures.join("adresser.csv")).unwrap();
    let azid = uuid::Uuid::parse_str(uuids::AZID_SYSTEM).unwrap();
    let import = |store: &mut Store, source: &Source, state: &Path| {
        let job = los::Job {
            source,
            register: &register,
            state_file: state,
            azid_system: azid,
            from_date: None,
            dry_run: false,
        };
        los::import(store, &job, &mut Clock(0)).map_err(|e| e.to_string())
    };
    let dump = |s: &Store| -> Vec<String> {
        Kind::ALL
            .iter()
            .flat_map(|k| s.read(&Query::all(*k)).unwrap())
            .map(|o| o.to_dump_json().to_string())
            .collect()
    };
    // The SFTP user puts the DAR failure lists into this folder.
    let dar_folder = served.join("DARfejlliste");
    fs::create_dir(&dar_folder).unwrap();
    fs::set_permissions(&dar_folder, fs::Permissions::from_mode(0o777)).unwrap();
    let mut cfg = server.config(ed25519());
    cfg.dir = Some(served.display().to_string());
    let tmp = tempfile::tempdir().unwrap();
    let mut over_sftp = Store::open_in_memory().unwrap();
    let report = import(
        &mut over_sftp,
        &Source::Sftp(cfg.clone()),
        &tmp.path().join("a"),
    )
    .unwrap();
    assert_eq!(report.files.len(), 19);
    assert!(!report.dar_lists.is_empty());
    for list in &report.dar_lists {
        let uploaded = dar_folder.join(list.file_name().unwrap());
        assert_eq!(
            fs::read_to_string(&uploaded).unwrap(),
            fs::read_to_string(list).unwrap(),
            "{} is put into DARfejlliste over SFTP",
            list.display()
        );
    }
    fs::remove_dir_all(&dar_folder).unwrap();
    let mut local = Store::open_in_memory().unwrap();
    import(
        &mut local,
        &Source::Local(served.clone()),
        &tmp.path().join("b"),
    )
    .unwrap();
    assert_eq!(dump(&over_sftp), dump(&local));

    // A big file whose download is cut: the run fails cleanly and the state is not written.
    fs::write(
        served.join("Pers_nye_20210309_020000.csv"),
        big_content(8 << 20),
    )
    .unwrap();
    let mut cut = cfg.clone();
    cut.port = cutting_proxy(server.port, 1 << 20);
    let line = server
        .known_hosts_line()
        .replace(&format!(":{} ", server.port), &format!(":{} ", cut.port));
    cut.host_keys = HostKeyCheck::KnownHosts(server.known_hosts("proxy", &format!("{line}\n")));
    let state = tmp.path().join("c");
    let mut store = Store::open_in_memory().unwrap();
    let err = import(&mut store, &Source::Sftp(cut), &state)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Pers_nye_20210309_020000.csv"), "{err}");
    assert!(!state.exists(), "the state is not advanced");
}
