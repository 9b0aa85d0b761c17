//! Putting several files into a folder on a server all together or not at all ([`put_all`]),
//! for any transport that can store, rename and delete files by name ([`Remote`]).
//!
//! The rule (also in `docs/plan2learn.md`, "Shipping"):
//!
//! 1. **Recover.** When a final name is missing and a backup name of an interrupted earlier run
//!    exists, the backup is renamed back to the final name.
//! 2. **Stage.** Every file is stored under a temporary name (`.<name>.part`, or `<name>.part`
//!    when the server refuses names that start with a dot). Nothing final is touched; a failure
//!    here deletes the temporary names and leaves the server as it was.
//! 3. **Commit**, file by file: an existing final file is renamed to its backup name
//!    (`.<name>.bak` / `<name>.bak`; a stale backup in the way is deleted first), then the
//!    temporary file is renamed to the final name.
//!    No rename ever goes onto an existing name (some servers refuse that), and no final file is
//!    ever deleted before its replacement is in place.
//! 4. **Clean up.** The backups are deleted. A backup that cannot be deleted is only logged and is
//!    replaced by the next run's step 3.
//!
//! When a commit step fails, the files already committed are rolled back (the new file is moved
//! back to its temporary name, the backup back to the final name; over a new connection when the
//! old one broke), and the temporary names are deleted. The error says whether the server holds
//! the previous files again or, if the rollback failed too, which names hold what.
//!
//! The remaining window: FTP and SFTP cannot rename several files at once, so while step 3 runs
//! (two renames per file on one connection), a reader may see some files already new and others
//! still old, and, between the two renames of one file, its final name briefly missing. A reader
//! never sees a partial file or a lost one.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// A folder on some server, as [`put_all`] needs it. Names are plain file names in that folder.
pub trait Remote {
    /// `FTP`, `FTPS`, `SFTP` or `folder`, for messages.
    fn protocol(&self) -> &'static str;
    /// The server (`host:port`) or the local folder, for messages.
    fn server(&self) -> String;
    /// The names of the files in the folder.
    fn names(&mut self) -> Result<BTreeSet<String>, Failure>;
    /// Store the local file under `name`, replacing what is there.
    fn store(&mut self, name: &str, local: &Path) -> Result<(), Failure>;
    /// Rename `from` to `to` (which does not exist).
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure>;
    fn delete(&mut self, name: &str) -> Result<(), Failure>;
}

/// Why one operation of a [`Remote`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's reply code when it refused (FTP), else `None`.
    pub code: Option<u32>,
    /// What went wrong: the server's reply or the connection's error (never a password).
    pub message: String,
    /// The server refused this operation as a permanent matter (an FTP 5xx reply, an SFTP
    /// status); the connection is still fine.
    pub refused: bool,
}

/// The step of [`put_all`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStep {
    /// Connecting, logging in, or listing the folder before anything is stored.
    Prepare,
    /// Putting back a backup left by an interrupted earlier run.
    Recover,
    /// Storing a file under its temporary name.
    Stage,
    /// Renaming an existing final file to its backup name.
    Backup,
    /// Renaming the temporary file to the final name.
    Commit,
}

impl fmt::Display for PutStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutStep::Prepare => "listing the folder",
            PutStep::Recover => "putting back the backup",
            PutStep::Stage => "uploading",
            PutStep::Backup => "renaming the previous file to its backup name",
            PutStep::Commit => "renaming the new file to its final name",
        })
    }
}

/// What the folder holds after a failed [`put_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Nothing final was touched: the previous files are there, as they were.
    Unchanged,
    /// Files had been replaced; they were all put back.
    Restored,
    /// The rollback failed too: each line says what a name holds now.
    Mixed(Vec<String>),
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Left::Unchanged => {
                f.write_str("nothing was replaced; the previous files are as they were")
            }
            Left::Restored => f.write_str(
                "the files already replaced were put back; the previous files are as they were",
            ),
            Left::Mixed(lines) => write!(
                f,
                "the previous files could NOT all be put back: {}",
                lines.join("; ")
            ),
        }
    }
}

/// A failed [`put_all`]: the protocol, the server, the step, the final file name, what went
/// wrong and what the folder holds now. Printed once: it has no `source()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{protocol} {server}: {step} {}: {}; {left}", file_part(file, temp), failure.message)]
pub struct PutError {
    pub protocol: &'static str,
    pub server: String,
    pub step: PutStep,
    /// The final name of the file the step was about (`None` for [`PutStep::Prepare`]).
    pub file: Option<String>,
    /// The temporary or backup name the step used, if any.
    pub temp: Option<String>,
    /// Boxed to keep `Result<_, PutError>` small.
    pub failure: Box<Failure>,
    pub left: Box<Left>,
}

fn file_part(file: &Option<String>, temp: &Option<String>) -> String {
    match (file, temp) {
        (Some(f), Some(t)) => format!("{f} (as {t})"),
        (Some(f), None) => f.clone(),
        (None, _) => String::new(),
    }
}

impl PutError {
    /// The server's reply code, when it refused.
    pub fn code(&self) -> Option<u32> {
        self.failure.code
    }
}

/// The temporary and backup names of a final name.
fn temp_name(name: &str, dot: bool) -> String {
    if dot {
        format!(".{name}.part")
    } else {
        format!("{name}.part")
    }
}

fn backup_name(name: &str, dot: bool) -> String {
    if dot {
        format!(".{name}.bak")
    } else {
        format!("{name}.bak")
    }
}

/// One file's progress through the commit.
struct Entry<'a> {
    name: &'a str,
    /// The temporary name it was staged under.
    temp: String,
    /// The backup name the previous final file was renamed to.
    backup: Option<String>,
    /// The new file is under the final name (else under `temp`).
    committed: bool,
}

/// Put `files` (local path, final remote name) into the remote folder, all or none (see the
/// module documentation for the exact rule). Names must be plain file names.
pub fn put_all(remote: &mut dyn Remote, files: &[(PathBuf, String)]) -> Result<(), PutError> {
    let err = |remote: &dyn Remote, step, file: Option<&str>, temp: Option<&str>, failure, left| {
        PutError {
            protocol: remote.protocol(),
            server: remote.server(),
            step,
            file: file.map(str::to_owned),
            temp: temp.map(str::to_owned),
            failure: Box::new(failure),
            left: Box::new(left),
        }
    };
    let present = remote
        .names()
        .map_err(|f| err(remote, PutStep::Prepare, None, None, f, Left::Unchanged))?;

    // 1. Recover: a final name that is missing may have its previous version under a backup
    //    name (an upload interrupted between its two renames). Dot files are often left out of
    //    listings, so the backup names are simply tried.
    let mut recovered = false;
    for (_, name) in files {
        if present.contains(name.as_str()) {
            continue;
        }
        for dot in [true, false] {
            let backup = backup_name(name, dot);
            match remote.rename(&backup, name) {
                Ok(()) => {
                    tracing::warn!(file = %name, backup, "put back the previous file an interrupted upload had left under its backup name");
                    recovered = true;
                    break;
                }
                Err(f) if f.refused => {} // no such backup
                Err(f) => {
                    return Err(err(
                        remote,
                        PutStep::Recover,
                        Some(name),
                        Some(&backup),
                        f,
                        Left::Unchanged,
                    ));
                }
            }
        }
    }
    let present = if recovered {
        remote
            .names()
            .map_err(|f| err(remote, PutStep::Prepare, None, None, f, Left::Unchanged))?
    } else {
        present
    };

    // 2. Stage.
    let mut dot = true;
    let mut entries: Vec<Entry> = Vec::with_capacity(files.len());
    for (local, name) in files {
        let mut temp = temp_name(name, dot);
        let mut result = remote.store(&temp, local);
        if let Err(f) = &result
            && dot
            && f.refused
        {
            // Some servers refuse names starting with a dot: once more without it, and for
            // every later name of this run.
            tracing::debug!(file = %name, reply = f.message, "storing a dot file refused, trying without the dot");
            let _ = remote.delete(&temp);
            dot = false;
            temp = temp_name(name, false);
            result = remote.store(&temp, local);
        }
        if let Err(f) = result {
            let _ = remote.delete(&temp);
            clean_temps(remote, &entries);
            return Err(err(
                remote,
                PutStep::Stage,
                Some(name),
                Some(&temp),
                f,
                Left::Unchanged,
            ));
        }
        entries.push(Entry {
            name,
            temp,
            backup: None,
            committed: false,
        });
    }

    // 3. Commit.
    for i in 0..entries.len() {
        let name = entries[i].name;
        if present.contains(name) {
            let backup = backup_name(name, dot);
            let mut result = remote.rename(name, &backup);
            if matches!(&result, Err(f) if f.refused) {
                // A stale backup of an earlier run may be in the way; it is never the only copy
                // (the final name exists), so delete it and try once more.
                if remote.delete(&backup).is_ok() {
                    result = remote.rename(name, &backup);
                }
            }
            if let Err(f) = result {
                let left = roll_back(remote, &mut entries);
                return Err(err(
                    remote,
                    PutStep::Backup,
                    Some(name),
                    Some(&backup),
                    f,
                    left,
                ));
            }
            entries[i].backup = Some(backup);
        }
        let temp = entries[i].temp.clone();
        if let Err(f) = remote.rename(&temp, name) {
            let left = roll_back(remote, &mut entries);
            return Err(err(
                remote,
                PutStep::Commit,
                Some(name),
                Some(&temp),
                f,
                left,
            ));
        }
        entries[i].committed = true;
    }

    // 4. Clean up.
    for e in &entries {
        if let Some(backup) = &e.backup
            && let Err(f) = remote.delete(backup)
        {
            tracing::warn!(
                file = e.name,
                backup,
                error = f.message,
                "could not delete the previous file's backup; the next upload removes it"
            );
        }
    }
    Ok(())
}

/// Delete the temporary names of staged files (best effort).
fn clean_temps(remote: &mut dyn Remote, entries: &[Entry]) {
    for e in entries.iter().filter(|e| !e.committed) {
        if let Err(f) = remote.delete(&e.temp) {
            let temp = &e.temp;
            tracing::warn!(
                file = e.name,
                temp,
                error = f.message,
                "could not delete a temporary file"
            );
        }
    }
}

/// Undo the commits so far, newest first; then delete every temporary name. Returns what the
/// folder holds.
fn roll_back(remote: &mut dyn Remote, entries: &mut [Entry]) -> Left {
    let touched = entries.iter().any(|e| e.committed || e.backup.is_some());
    let mut problems = Vec::new();
    for e in entries.iter_mut().rev() {
        if e.committed {
            match remote.rename(e.name, &e.temp) {
                Ok(()) => e.committed = false,
                Err(f) => {
                    problems.push(match &e.backup {
                        Some(b) => format!(
                            "{} is the new version, its previous version is {b} (moving the new one aside failed: {})",
                            e.name, f.message
                        ),
                        None => format!(
                            "{} is the new version (moving it aside failed: {})",
                            e.name, f.message
                        ),
                    });
                    continue;
                }
            }
        }
        if let Some(backup) = e.backup.take()
            && let Err(f) = remote.rename(&backup, e.name)
        {
            problems.push(format!(
                "{} is missing; its previous version is {backup} (putting it back failed: {})",
                e.name, f.message
            ));
            e.backup = Some(backup);
        }
    }
    clean_temps(remote, entries);
    match (problems.is_empty(), touched) {
        (true, true) => Left::Restored,
        (true, false) => Left::Unchanged,
        (false, _) => Left::Mixed(problems),
    }
}

/// The local folder as a [`Remote`] (for tests of the rule, and `Source::Local`).
pub struct Folder(pub PathBuf);

fn io_failure(e: std::io::Error) -> Failure {
    Failure {
        code: None,
        refused: e.kind() == std::io::ErrorKind::PermissionDenied,
        message: e.to_string(),
    }
}

impl Remote for Folder {
    fn protocol(&self) -> &'static str {
        "folder"
    }
    fn server(&self) -> String {
        self.0.display().to_string()
    }
    fn names(&mut self) -> Result<BTreeSet<String>, Failure> {
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&self.0).map_err(io_failure)? {
            let entry = entry.map_err(io_failure)?;
            if entry.file_type().map_err(io_failure)?.is_file() {
                out.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }
    fn store(&mut self, name: &str, local: &Path) -> Result<(), Failure> {
        let to = self.0.join(name);
        std::fs::copy(local, &to)
            .and_then(|_| std::fs::File::open(&to)?.sync_all())
            .map_err(io_failure)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        std::fs::rename(self.0.join(from), self.0.join(to)).map_err(io_failure)
    }
    fn delete(&mut self, name: &str) -> Result<(), Failure> {
        std::fs::remove_file(self.0.join(name)).map_err(io_failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A folder in memory that fails the n-th operation (or every rename onto an existing name,
    /// or every operation from the n-th on, like a dead connection).
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<String, Vec<u8>>,
        ops: usize,
        fail_at: Option<usize>,
        dead_from: Option<usize>,
        refuse_dots: bool,
    }

    impl Fake {
        fn tick(&mut self) -> Result<(), Failure> {
            self.ops += 1;
            let refused = |m: &str| Failure {
                code: Some(550),
                message: m.into(),
                refused: true,
            };
            if self.fail_at == Some(self.ops) {
                return Err(Failure {
                    refused: false,
                    ..refused("451 injected")
                });
            }
            if self.dead_from.is_some_and(|d| self.ops >= d) {
                return Err(Failure {
                    code: None,
                    message: "connection reset".into(),
                    refused: false,
                });
            }
            Ok(())
        }
    }

    impl Remote for Fake {
        fn protocol(&self) -> &'static str {
            "FTP"
        }
        fn server(&self) -> String {
            "fake:21".into()
        }
        fn names(&mut self) -> Result<BTreeSet<String>, Failure> {
            Ok(self.files.keys().cloned().collect())
        }
        fn store(&mut self, name: &str, local: &Path) -> Result<(), Failure> {
            self.tick()?;
            if self.refuse_dots && name.starts_with('.') {
                return Err(Failure {
                    code: Some(553),
                    message: "553 no dot files".into(),
                    refused: true,
                });
            }
            self.files
                .insert(name.into(), local.to_string_lossy().as_bytes().to_vec());
            Ok(())
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
            self.tick()?;
            let refused = Failure {
                code: Some(550),
                message: "550 rename".into(),
                refused: true,
            };
            if self.files.contains_key(to) {
                return Err(refused); // never over an existing name
            }
            let v = self.files.remove(from).ok_or(refused)?;
            self.files.insert(to.into(), v);
            Ok(())
        }
        fn delete(&mut self, name: &str) -> Result<(), Failure> {
            self.tick()?;
            self.files.remove(name).map(|_| ()).ok_or(Failure {
                code: Some(550),
                message: "550 no such file".into(),
                refused: true,
            })
        }
    }

    const NAMES: [&str; 5] = ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"];

    fn files() -> Vec<(PathBuf, String)> {
        NAMES
            .iter()
            .map(|n| (PathBuf::from(format!("new {n}")), n.to_string()))
            .collect()
    }

    fn old() -> BTreeMap<String, Vec<u8>> {
        NAMES
            .iter()
            .map(|n| (n.to_string(), format!("old {n}").into_bytes()))
            .collect()
    }

    fn new() -> BTreeMap<String, Vec<u8>> {
        NAMES
            .iter()
            .map(|n| (n.to_string(), format!("new {n}").into_bytes()))
            .collect()
    }

    #[test]
    fn every_failing_operation_leaves_the_old_files_or_all_new_ones() {
        // Count the operations of a clean run, then fail each one in turn.
        let mut clean = Fake {
            files: old(),
            ..Fake::default()
        };
        put_all(&mut clean, &files()).unwrap();
        assert_eq!(clean.files, new());
        let total = clean.ops;
        assert_eq!(total, 5 + 10 + 5, "stores, two renames per file, deletes");
        for n in 1..=total {
            let mut fake = Fake {
                files: old(),
                fail_at: Some(n),
                ..Fake::default()
            };
            match put_all(&mut fake, &files()) {
                Ok(()) => {
                    assert!(n > 15, "only a backup delete may fail quietly: {n}");
                    let mut expected = new();
                    let backup = fake.files.keys().find(|k| k.ends_with(".bak")).cloned();
                    if let Some(b) = backup {
                        expected.insert(b.clone(), fake.files[&b].clone());
                    }
                    assert_eq!(fake.files, expected, "op {n}");
                }
                Err(e) => {
                    assert_eq!(fake.files, old(), "op {n}: {e}");
                    let expect = if n <= 5 {
                        Left::Unchanged
                    } else {
                        Left::Restored
                    };
                    assert!(
                        *e.left == expect || (n == 6 && *e.left == Left::Unchanged),
                        "op {n}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_dead_connection_during_the_commit_is_reported_with_what_each_name_holds() {
        // Ops: 5 stores, then a.csv → backup (6), temp → a.csv (7), b.csv → backup (8): dead.
        let mut fake = Fake {
            files: old(),
            dead_from: Some(8),
            ..Fake::default()
        };
        let e = put_all(&mut fake, &files()).unwrap_err();
        assert_eq!(e.step, PutStep::Backup);
        assert_eq!(e.file.as_deref(), Some("b.csv"));
        assert_eq!(
            e.to_string(),
            "FTP fake:21: renaming the previous file to its backup name b.csv (as .b.csv.bak): connection reset; \
             the previous files could NOT all be put back: a.csv is the new version, its previous version is .a.csv.bak \
             (moving the new one aside failed: connection reset)"
        );
        // The next run puts the backup back first, then replaces everything.
        fake.dead_from = None;
        put_all(&mut fake, &files()).unwrap();
        assert_eq!(fake.files, new());
    }

    #[test]
    fn a_backup_left_by_an_interrupted_run_is_put_back_first() {
        let mut files_now = old();
        let d = files_now.remove("d.csv").unwrap();
        files_now.insert(".d.csv.bak".into(), d);
        files_now.insert(".d.csv.part".into(), b"half".to_vec());
        let mut fake = Fake {
            files: files_now,
            // Fail the first store: nothing else happens, but the backup is back.
            fail_at: Some(2),
            ..Fake::default()
        };
        let e = put_all(&mut fake, &files()).unwrap_err();
        assert_eq!(e.step, PutStep::Stage);
        let mut expected = old();
        expected.insert(".d.csv.part".into(), b"half".to_vec());
        assert_eq!(fake.files, expected);
    }

    #[test]
    fn servers_that_refuse_dot_names_get_plain_temporary_names() {
        let mut fake = Fake {
            files: old(),
            refuse_dots: true,
            ..Fake::default()
        };
        put_all(&mut fake, &files()).unwrap();
        assert_eq!(fake.files, new());
    }

    #[test]
    fn a_local_folder_gets_all_files_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let mut list = Vec::new();
        for n in NAMES {
            std::fs::write(dir.path().join(n), format!("old {n}")).unwrap();
            std::fs::write(src.path().join(n), format!("new {n}")).unwrap();
            list.push((src.path().join(n), n.to_string()));
        }
        // The fourth local file is missing: nothing is replaced, no temporary names stay.
        std::fs::remove_file(src.path().join("d.csv")).unwrap();
        let e = put_all(&mut Folder(dir.path().into()), &list).unwrap_err();
        assert_eq!((e.step, e.file.as_deref()), (PutStep::Stage, Some("d.csv")));
        assert_eq!(*e.left, Left::Unchanged);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, NAMES);
        for n in NAMES {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(n)).unwrap(),
                format!("old {n}")
            );
        }
        std::fs::write(src.path().join("d.csv"), "new d.csv").unwrap();
        put_all(&mut Folder(dir.path().into()), &list).unwrap();
        for n in NAMES {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(n)).unwrap(),
                format!("new {n}")
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    }
}
