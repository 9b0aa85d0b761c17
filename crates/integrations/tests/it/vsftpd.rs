//! The FTP transport against a real Debian vsftpd on loopback (`dipex_testkit::ftp::vsftpd`):
//! explicit FTPS with a private CA, a local user. plan2learn's five files go up all together or
//! not at all when the server refuses the fourth file (by its own `deny_file` rule, or a sticky
//! folder that forbids renaming someone else's file) or when the session is killed mid-transfer
//! (the kernel's file size limit); the LOS import reads over FTPS trusting the private CA, and
//! imports a file modified in the same second as the previous run's start.
//!
//! Without vsftpd (or root) every test prints `SKIPPED: …`; with `CI=true` it fails instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dipex_backend::{Backend, Query, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::los::run::{self, Job};
use dipex_integrations::los::uuids;
use dipex_integrations::opus::run::Env;
use dipex_integrations::transport::ftp::{self, FtpConfig, FtpSecurity};
use dipex_integrations::transport::put::{Left, PutError, PutStep};
use dipex_integrations::transport::source::Source;
use dipex_model::Kind;
use dipex_testkit::ftp::vsftpd::{self, Options, Vsftpd};
use uuid::Uuid;

pub(crate) const FILES: [&str; 5] = [
    "bruger.csv",
    "organisation.csv",
    "engagement.csv",
    "stillingskode.csv",
    "leder.csv",
];

/// What these tests need of a real FTP server (vsftpd here, pure-ftpd in `pureftpd.rs`).
pub(crate) trait Served {
    /// The client settings: explicit FTPS trusting the server's private CA.
    fn config(&self) -> FtpConfig;
    /// The folder the login lands in.
    fn dir(&self) -> PathBuf;
    /// The names in that folder, sorted.
    fn names(&self) -> Vec<String>;
    /// Put a file there, owned by the login's local user.
    fn put(&self, name: &str, bytes: &[u8]);
}

impl Served for Vsftpd {
    fn config(&self) -> FtpConfig {
        ftps(self.port, vsftpd::USER, vsftpd::password(), &self.certs.ca)
    }
    fn dir(&self) -> PathBuf {
        Vsftpd::dir(self)
    }
    fn names(&self) -> Vec<String> {
        Vsftpd::names(self)
    }
    fn put(&self, name: &str, bytes: &[u8]) {
        Vsftpd::put(self, name, bytes)
    }
}

/// Explicit FTPS to 127.0.0.1:`port`, trusting the CA in `ca`.
pub(crate) fn ftps(port: u16, user: &str, password: &str, ca: &Path) -> FtpConfig {
    let mut cfg = FtpConfig::new(
        "127.0.0.1",
        user,
        password,
        FtpSecurity::ExplicitTls {
            verify: true,
            ca_file: Some(ca.to_path_buf()),
        },
    );
    cfg.port = port;
    cfg.timeout = Duration::from_secs(20);
    cfg
}

/// root owns the served folder (sticky, writable by all) and the files `names` in it: the login
/// may not rename, overwrite or delete them.
pub(crate) fn sticky_with_roots(server: &dyn Served, names: &[&str]) {
    std::os::unix::fs::chown(server.dir(), Some(0), Some(0)).unwrap();
    std::fs::set_permissions(server.dir(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    for name in names {
        let path = server.dir().join(name);
        if !path.exists() {
            std::fs::write(&path, "not yours").unwrap();
        }
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
}

/// The fourth previous file belongs to root in a sticky folder, so the server refuses to move it
/// to its backup name: the three files already replaced are put back. Returns the error for the
/// server's own reply.
pub(crate) fn refused_rename_of_the_fourth(server: &dyn Served) -> PutError {
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(server, local.path(), 10);
    sticky_with_roots(server, &["stillingskode.csv"]);
    let err = ftp::put_all(&server.config(), &list).unwrap_err();
    assert_eq!(err.step, PutStep::Backup, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"), "{err}");
    assert_eq!(*err.left, Left::Restored, "{err}");
    assert_previous_five(server);
    err
}

fn config(server: &dyn Served) -> FtpConfig {
    server.config()
}

/// The previous export on the server, and a new one in a local folder (the fourth file of the
/// new one `big` bytes long).
pub(crate) fn previous_and_new(
    server: &dyn Served,
    local: &Path,
    big: usize,
) -> Vec<(PathBuf, String)> {
    let mut list = Vec::new();
    for (i, name) in FILES.iter().enumerate() {
        server.put(name, format!("\"previous\";\"{name}\"\r\n").as_bytes());
        let path = local.join(name);
        let bytes = if i == 3 {
            vec![b'x'; big]
        } else {
            format!("\"new\";\"{name}\"\r\n").into_bytes()
        };
        std::fs::write(&path, bytes).unwrap();
        list.push((path, name.to_string()));
    }
    list
}

/// The server holds exactly the previous five files, byte-identical, and nothing else.
pub(crate) fn assert_previous_five(server: &dyn Served) {
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(server.names(), expected);
    for name in FILES {
        assert_eq!(
            std::fs::read(server.dir().join(name)).unwrap(),
            format!("\"previous\";\"{name}\"\r\n").into_bytes(),
            "{name}"
        );
    }
}

#[test]
fn all_five_files_replace_the_previous_ones() {
    if !vsftpd::require() {
        return;
    }
    all_five_replace_the_previous_ones(&Vsftpd::start(&Options::default()));
}

/// The five new files replace the previous five; no temporary or backup name is left.
pub(crate) fn all_five_replace_the_previous_ones(server: &dyn Served) {
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(server, local.path(), 10);
    ftp::put_all(&server.config(), &list).unwrap();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        server.names(),
        expected,
        "no temporary or backup names left"
    );
    for (path, name) in &list {
        assert_eq!(
            std::fs::read(server.dir().join(name)).unwrap(),
            std::fs::read(path).unwrap(),
            "{name}"
        );
    }
}

/// (a) The server refuses to store the fourth file (vsftpd's `deny_file` matches its temporary
/// names): nothing final is touched, the three staged files are removed.
#[test]
fn a_refused_upload_of_the_fourth_file_leaves_the_previous_five() {
    if !vsftpd::require() {
        return;
    }
    let server = Vsftpd::start(&Options {
        deny_file: Some("{*stillingskode.csv.part}".into()),
        ..Options::default()
    });
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(&server, local.path(), 10);
    let err = ftp::put_all(&config(&server), &list).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "FTPS 127.0.0.1:{}: uploading stillingskode.csv (as stillingskode.csv.part): \
             STOR of stillingskode.csv.part refused by the server: 550 Permission denied.; \
             nothing was replaced; the previous files are as they were",
            server.port
        )
    );
    assert!(std::error::Error::source(&err).is_none(), "printed once");
    assert_previous_five(&server);
}

/// (a) The server refuses to rename the fourth file: the folder is sticky and the previous
/// `stillingskode.csv` belongs to another user, so it cannot be moved to its backup name. The
/// three files already replaced are put back.
#[test]
fn a_refused_rename_of_the_fourth_file_puts_the_first_three_back() {
    if !vsftpd::require() {
        return;
    }
    let server = Vsftpd::start(&Options::default());
    let err = refused_rename_of_the_fourth(&server);
    assert_eq!(err.code(), Some(550), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "FTPS 127.0.0.1:{}: renaming the previous file to its backup name stillingskode.csv \
             (as .stillingskode.csv.bak): RNFR/RNTO of stillingskode.csv refused by the server: \
             550 Rename failed.; the files already replaced were put back; the previous files are \
             as they were",
            server.port
        )
    );
}

/// (b) The session dies in the middle of the fourth upload: the daemon runs with a 64 KiB file
/// size limit, so the kernel kills the session process that writes the 1 MiB file.
#[test]
fn a_connection_killed_mid_transfer_leaves_the_previous_five() {
    if !vsftpd::require() {
        return;
    }
    let server = Vsftpd::start(&Options {
        file_size_limit: Some(64 * 1024),
        ..Options::default()
    });
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(&server, local.path(), 1024 * 1024);
    let err = ftp::put_all(&config(&server), &list).unwrap_err();
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"));
    assert_eq!(err.code(), None, "a dead connection, not a reply: {err}");
    assert_eq!(*err.left, Left::Unchanged, "{err}");
    assert_previous_five(&server);
}

// ---------------------------------------------------------------------------------------------
// LOS over FTPS

struct Clock;

impl Env for Clock {
    fn now(&self) -> jiff::civil::DateTime {
        jiff::civil::date(2021, 3, 10).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/los")
}

fn los_job<'a>(source: &'a Source, register: &'a OfflineRegister, state: &'a Path) -> Job<'a> {
    Job {
        source,
        register,
        state_file: state,
        azid_system: Uuid::parse_str(uuids::AZID_SYSTEM).unwrap(),
        from_date: None,
        dry_run: false,
    }
}

/// (d) The LOS import over FTPS, trusting the server's private CA; an untrusted server is an
/// error printed once, naming protocol, server and step.
#[test]
fn los_imports_over_ftps_with_a_private_ca() {
    if !vsftpd::require() {
        return;
    }
    los_over_ftps_with_a_private_ca(&Vsftpd::start(&Options::default()));
}

pub(crate) fn los_over_ftps_with_a_private_ca(server: &dyn Served) {
    for e in std::fs::read_dir(fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        server.put(
            &e.file_name().to_string_lossy(),
            &std::fs::read(e.path()).unwrap(),
        );
    }
    let register = OfflineRegister::load(fixtures().join("adresser.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let source = Source::Ftp(config(server));
    let mut store = Store::open_in_memory().unwrap();
    let report = run::import(&mut store, &los_job(&source, &register, &state), &mut Clock)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.files.len(), 19);
    assert_eq!(report.rejected(), 0);
    assert!(!store.read(&Query::all(Kind::OrgUnit)).unwrap().is_empty());
    assert!(state.exists());

    // Without the CA the handshake fails; the message is printed once (no source chain).
    let mut cfg = config(server);
    cfg.security = FtpSecurity::ExplicitTls {
        verify: true,
        ca_file: None,
    };
    let source = Source::Ftp(cfg);
    let err = run::import(
        &mut Store::open_in_memory().unwrap(),
        &los_job(&source, &register, &dir.path().join("state2")),
        &mut Clock,
    )
    .unwrap_err();
    assert!(std::error::Error::source(&err).is_none(), "{err}");
    let text = err.to_string();
    let prefix = format!(
        "reading the files: FTPS 127.0.0.1:{}: TLS handshake failed: TLS: invalid peer certificate: UnknownIssuer",
        server.config().port
    );
    assert_eq!(text, prefix);
}

/// (e) A file modified in the same second as the previous run's start, after it, is imported
/// (vsftpd reports modified times to the second); seen again, it changes nothing.
#[test]
fn los_imports_a_file_modified_in_the_second_the_last_run_started() {
    if !vsftpd::require() {
        return;
    }
    los_same_second(&Vsftpd::start(&Options::default()));
}

pub(crate) fn los_same_second(server: &dyn Served) {
    let register = OfflineRegister::load(fixtures().join("adresser.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let started: jiff::Timestamp = "2021-03-10T11:00:00.400Z".parse().unwrap();
    std::fs::write(&state, started.to_string()).unwrap();
    let name = "STAM_UUID_Enhedstype.csv";
    server.put(
        name,
        &std::fs::read(fixtures().join("ok").join(name)).unwrap(),
    );
    let file = std::fs::File::options()
        .write(true)
        .open(server.dir().join(name))
        .unwrap();
    let arrived: jiff::Timestamp = "2021-03-10T11:00:00.700Z".parse().unwrap();
    file.set_modified(std::time::SystemTime::from(arrived))
        .unwrap();
    let source = Source::Ftp(config(server));
    let mut store = Store::open_in_memory().unwrap();
    let r = run::import(&mut store, &los_job(&source, &register, &state), &mut Clock).unwrap();
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [name]);
    assert!(!r.files[0].plan.ops.is_empty(), "the classes were created");
    // The same file seen again (the state put back to that start): nothing is applied twice.
    std::fs::write(&state, started.to_string()).unwrap();
    let again = run::import(&mut store, &los_job(&source, &register, &state), &mut Clock).unwrap();
    assert_eq!(again.files.len(), 1);
    assert!(
        again.files[0].plan.ops.is_empty(),
        "{:?}",
        again.files[0].plan
    );
}
