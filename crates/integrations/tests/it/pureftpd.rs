//! The FTP transport against a real Debian pure-ftpd 1.0.50 on loopback
//! (`dipex_testkit::ftp::pureftpd`): explicit FTPS with a private CA, a virtual user chrooted
//! into the served folder. The same cases as against vsftpd (`vsftpd.rs`, whose helpers these
//! tests share), with pure-ftpd's own refusals: a server that prohibits dot files (`-x`) gets
//! the five files under plain temporary names, and a server that refuses every rename (`-G`)
//! but allows deletes keeps the previous five.
//!
//! Without pure-ftpd (or root) every test prints `SKIPPED: …`; with `CI=true` it fails instead.

use crate::vsftpd::{
    FILES, Served, all_five_replace_the_previous_ones, assert_previous_five, ftps,
    los_over_ftps_with_a_private_ca, los_same_second, previous_and_new,
    refused_rename_of_the_fourth, sticky_with_roots,
};
use dipex_integrations::transport::ftp::{self, FtpConfig};
use dipex_integrations::transport::put::{Left, PutStep};
use dipex_testkit::ftp::pureftpd::{self, Options, PureFtpd};
use std::path::PathBuf;

impl Served for PureFtpd {
    fn config(&self) -> FtpConfig {
        ftps(self.port, pureftpd::USER, &self.password, &self.certs.ca)
    }
    fn dir(&self) -> PathBuf {
        PureFtpd::dir(self)
    }
    fn names(&self) -> Vec<String> {
        PureFtpd::names(self)
    }
    fn put(&self, name: &str, bytes: &[u8]) {
        PureFtpd::put(self, name, bytes)
    }
}

/// A server that refuses names starting with a dot: the files are staged and backed up under
/// plain names (`x.part`, `x.bak`), all five replace the previous ones, nothing else is left.
#[test]
fn all_five_files_replace_the_previous_ones_when_dot_files_are_prohibited() {
    if !pureftpd::require() {
        return;
    }
    all_five_replace_the_previous_ones(&PureFtpd::start(&Options {
        no_dot_files: true,
        ..Options::default()
    }));
}

/// A server that refuses every rename but allows deletes: the previous files are never deleted
/// to make room, so the server keeps exactly the previous five.
#[test]
fn a_server_that_refuses_every_rename_keeps_the_previous_five() {
    if !pureftpd::require() {
        return;
    }
    let server = PureFtpd::start(&Options {
        no_rename: true,
        ..Options::default()
    });
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(&server, local.path(), 10);
    let err = ftp::put_all(&server.config(), &list).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "FTPS 127.0.0.1:{}: renaming the previous file to its backup name bruger.csv \
             (as .bruger.csv.bak): RNFR/RNTO of bruger.csv refused by the server: \
             550 Rename/move failure; nothing was replaced; the previous files are as they were",
            server.port
        )
    );
    assert_previous_five(&server);
}

/// The first upload into an empty folder: no previous files, no backups to recover.
#[test]
fn the_first_upload_into_an_empty_folder_puts_all_five() {
    if !pureftpd::require() {
        return;
    }
    let server = PureFtpd::start(&Options::default());
    let local = tempfile::tempdir().unwrap();
    let mut list = Vec::new();
    for name in FILES {
        let path = local.path().join(name);
        std::fs::write(&path, format!("new {name}")).unwrap();
        list.push((path, name.to_string()));
    }
    ftp::put_all(&server.config(), &list).unwrap();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(server.names(), expected);
}

/// The server refuses to store the fourth file: its temporary names are taken by files of root
/// in a sticky folder. Nothing final is touched; the three staged files are removed.
#[test]
fn a_refused_upload_of_the_fourth_file_leaves_the_previous_five() {
    if !pureftpd::require() {
        return;
    }
    let server = PureFtpd::start(&Options::default());
    let local = tempfile::tempdir().unwrap();
    let list = previous_and_new(&server, local.path(), 10);
    let blockers = [".stillingskode.csv.part", "stillingskode.csv.part"];
    sticky_with_roots(&server, &blockers);
    let err = ftp::put_all(&server.config(), &list).unwrap_err();
    assert_eq!(err.step, PutStep::Stage, "{err}");
    assert_eq!(err.file.as_deref(), Some("stillingskode.csv"), "{err}");
    assert_eq!(*err.left, Left::Unchanged, "{err}");
    for b in blockers {
        std::fs::remove_file(server.dir().join(b)).unwrap();
    }
    assert_previous_five(&server);
}

/// The server refuses to rename the fourth previous file (root's, in a sticky folder) to its
/// backup name: the three files already replaced are put back.
#[test]
fn a_refused_rename_of_the_fourth_file_puts_the_first_three_back() {
    if !pureftpd::require() {
        return;
    }
    let err = refused_rename_of_the_fourth(&PureFtpd::start(&Options::default()));
    // pure-ftpd answers a rename the system refuses (EPERM) with a 4xx, as if it were passing.
    assert_eq!(err.code(), Some(451), "{err}");
}

/// The LOS import over FTPS from pure-ftpd, trusting its private CA.
#[test]
fn los_imports_over_ftps_with_a_private_ca() {
    if !pureftpd::require() {
        return;
    }
    los_over_ftps_with_a_private_ca(&PureFtpd::start(&Options::default()));
}

/// A file modified in the same second as the previous run's start is imported (pure-ftpd's
/// MLSD gives modified times to the second too).
#[test]
fn los_imports_a_file_modified_in_the_second_the_last_run_started() {
    if !pureftpd::require() {
        return;
    }
    los_same_second(&PureFtpd::start(&Options::default()));
}
