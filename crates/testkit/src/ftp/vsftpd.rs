//! A real Debian `vsftpd` on 127.0.0.1, for the FTP/FTPS tests that must agree with a real
//! server (plan2learn's all-or-nothing upload, the LOS import over FTPS).
//!
//! Everything lives in a temporary directory: `vsftpd.conf` (`listen_port` = a free port,
//! `listen_address=127.0.0.1`, `background=NO`, `seccomp_sandbox=NO`, passive ports chosen by
//! the kernel, announced as 127.0.0.1), explicit FTPS required for login and data with a
//! certificate for `localhost`/`127.0.0.1` signed by a private CA made with rcgen (webpki refuses
//! a self-signed CA certificate as the server's own), and the served folder ([`Vsftpd::dir`]).
//! The login is a local Unix user, [`USER`], made by [`crate::accounts`] (home `/`, which
//! vsftpd enters before `local_root`; no login shell; a random password); PAM checks it
//! through a service file of our own, `/etc/pam.d/dipex-ftp-test` (`pam_unix` only: the
//! system's `vsftpd` service would also demand a login shell).
//!
//! Failure injection uses the real server's own means: [`Options::deny_file`] (vsftpd's
//! `deny_file`, which refuses every command on matching names) and [`Options::file_size_limit`]
//! (the daemon runs under `prlimit --fsize`, so the session process that writes past the limit
//! is killed by the kernel with `SIGXFSZ` and the connection dies mid-transfer).
//!
//! Needs root and Debian's `vsftpd` package; [`skip_reason`] says why not, and [`require`]
//! turns that into `SKIPPED: …`, or a failure when `CI=true`.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const VSFTPD: &str = "/usr/sbin/vsftpd";
/// The local Unix user the tests log in as.
pub const USER: &str = "dipex-ftp-test";
/// The PAM service the server authenticates through.
pub const PAM_SERVICE: &str = "dipex-ftp-test";

/// Why vsftpd cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !Path::new(VSFTPD).exists() {
        return Some(format!(
            "{VSFTPD} not found: install Debian's vsftpd package"
        ));
    }
    if !crate::is_root() {
        return Some("not root: vsftpd needs root to log in a local user".into());
    }
    None
}

/// `true` when the tests can run; otherwise prints `SKIPPED: …` and returns `false`, or panics
/// when `CI=true` (CI installs vsftpd, so a missing daemon there is a failure).
pub fn require() -> bool {
    crate::require(skip_reason())
}

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// vsftpd's `deny_file` patterns (e.g. `{*stillingskode.csv*}`): every command on a
    /// matching name is refused with 550.
    pub deny_file: Option<String>,
    /// The daemon's `RLIMIT_FSIZE` in bytes: a session writing past it is killed mid-transfer.
    pub file_size_limit: Option<u64>,
}

/// The private CA and the server's certificate, as PEM files.
pub struct Certs {
    /// The CA certificate: what a client must trust (`ca_file`).
    pub ca: PathBuf,
    /// The server's certificate (for `localhost` and `127.0.0.1`), signed by the CA.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA and a leaf certificate signed by it, written into `dir`.
pub fn private_ca(dir: &Path) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dipex test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let certs = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    fs::write(&certs.ca, ca_cert.pem()).unwrap();
    fs::write(&certs.cert, leaf.pem()).unwrap();
    fs::write(&certs.key, leaf_key.serialize_pem()).unwrap();
    certs
}

/// The test user's password: the user and the PAM service are created once per machine, the
/// password kept for every test process ([`crate::accounts`]).
pub fn password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        let pam = Path::new("/etc/pam.d").join(PAM_SERVICE);
        if !pam.exists() {
            fs::write(
                &pam,
                "# dipex tests (crates/testkit/src/ftp/vsftpd.rs): the test FTP user, by password only.\n\
                 auth required pam_unix.so\n\
                 account required pam_unix.so\n",
            )
            .unwrap();
        }
        // vsftpd changes into the home directory before `local_root`: it must exist.
        crate::accounts::user_with_password(USER, "/")
    })
}

/// The test user's uid and gid.
pub fn user_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, USER]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// A running vsftpd; killed on drop.
pub struct Vsftpd {
    child: Child,
    pub port: u16,
    pub certs: Certs,
    tmp: tempfile::TempDir,
}

impl Vsftpd {
    /// Start vsftpd serving an empty folder ([`Vsftpd::dir`], owned by [`USER`]).
    pub fn start(opts: &Options) -> Vsftpd {
        let _ = password();
        let (uid, gid) = user_ids();
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        // The session runs as the test user: it must reach the served folder.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.join("files");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        let certs = private_ca(&root);
        fs::create_dir_all("/var/run/vsftpd/empty").unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let conf = root.join("vsftpd.conf");
            let mut text = format!(
                "listen=YES\n\
                 listen_ipv6=NO\n\
                 listen_address=127.0.0.1\n\
                 listen_port={port}\n\
                 background=NO\n\
                 seccomp_sandbox=NO\n\
                 secure_chroot_dir=/var/run/vsftpd/empty\n\
                 pam_service_name={PAM_SERVICE}\n\
                 anonymous_enable=NO\n\
                 local_enable=YES\n\
                 write_enable=YES\n\
                 local_umask=022\n\
                 local_root={dir}\n\
                 chroot_local_user=NO\n\
                 userlist_enable=NO\n\
                 use_localtime=NO\n\
                 xferlog_enable=NO\n\
                 dirmessage_enable=NO\n\
                 connect_from_port_20=NO\n\
                 pasv_enable=YES\n\
                 pasv_address=127.0.0.1\n\
                 ssl_enable=YES\n\
                 allow_anon_ssl=NO\n\
                 force_local_logins_ssl=YES\n\
                 force_local_data_ssl=YES\n\
                 require_ssl_reuse=YES\n\
                 ssl_ciphers=HIGH\n\
                 rsa_cert_file={cert}\n\
                 rsa_private_key_file={key}\n",
                dir = dir.display(),
                cert = certs.cert.display(),
                key = certs.key.display(),
            );
            if let Some(deny) = &opts.deny_file {
                text.push_str(&format!("deny_file={deny}\n"));
            }
            fs::write(&conf, text).unwrap();
            let log = fs::File::create(root.join("vsftpd.stderr")).unwrap();
            let mut cmd = match opts.file_size_limit {
                Some(limit) => {
                    let mut c = Command::new("prlimit");
                    c.arg(format!("--fsize={limit}:{limit}"))
                        .arg("--")
                        .arg(VSFTPD);
                    c
                }
                None => Command::new(VSFTPD),
            };
            let mut child = cmd
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("vsftpd");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Vsftpd {
                        child,
                        port,
                        certs,
                        tmp,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let log = fs::read_to_string(root.join("vsftpd.stderr")).unwrap_or_default();
                    assert!(
                        log.contains("could not bind") || log.contains("in use"),
                        "vsftpd exited ({status}): {log}"
                    );
                    break; // the port was taken meanwhile: try another
                }
                assert!(Instant::now() < deadline, "vsftpd did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("vsftpd could not find a free port");
    }

    /// The served folder (where the login lands).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("files")
    }

    /// The names in the served folder, sorted.
    pub fn names(&self) -> Vec<String> {
        names_in(&self.dir())
    }

    /// Write a file into the served folder, owned by the test user (as if uploaded earlier).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        put_as_user(&self.dir().join(name), bytes)
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Write `path`, owned by the test user (as if that user had uploaded it).
pub fn put_as_user(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    let (uid, gid) = user_ids();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
