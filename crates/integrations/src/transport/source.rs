//! One place files come from, whatever the transport: a local folder, an FTP/FTPS server, an
//! SFTP server, an SMB share or a Google Cloud Storage bucket. Importers list a source (names,
//! sizes, modified times in UTC), read small files from it whole ([`Source::read`]) or stream
//! large ones to a local file ([`Source::fetch`]: written under `<dest>.part`, synced, then
//! renamed, so `dest` never holds a partial file), and put a set of files into a folder or onto
//! an FTP server all or none ([`Source::put_all`]). The source's description for logs never
//! shows a password.

use super::RemoteFile;
use super::ftp::{self, FtpConfig, FtpError};
use super::gcs::{self, GcsConfig, GcsError};
use super::put::{self, PutError};
use super::sftp::{self, SftpConfig, SftpError};
use super::smb::{self, SmbConfig, SmbError};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    Local { path: String, reason: String },
    #[error(transparent)]
    Ftp(#[from] FtpError),
    #[error(transparent)]
    Put(#[from] PutError),
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error(transparent)]
    Smb(#[from] SmbError),
    #[error(transparent)]
    Gcs(#[from] GcsError),
    #[error("{0}")]
    Unsupported(String),
}

/// Where an importer's files are.
#[derive(Debug, Clone)]
pub enum Source {
    Local(PathBuf),
    Ftp(FtpConfig),
    Sftp(SftpConfig),
    Smb(SmbConfig),
    Gcs(GcsConfig),
}

fn local_err(path: &Path, e: impl std::fmt::Display) -> SourceError {
    SourceError::Local {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Source {
    /// The regular files, sorted by name.
    pub fn list(&self) -> Result<Vec<RemoteFile>, SourceError> {
        let mut files = match self {
            Source::Local(dir) => {
                let mut out = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(|e| local_err(dir, e))? {
                    let entry = entry.map_err(|e| local_err(dir, e))?;
                    let meta = entry.metadata().map_err(|e| local_err(&entry.path(), e))?;
                    if !meta.is_file() {
                        continue;
                    }
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| jiff::Timestamp::try_from(t).ok());
                    out.push(RemoteFile {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        size: Some(meta.len()),
                        modified,
                    });
                }
                out
            }
            Source::Ftp(cfg) => ftp::list(cfg)?,
            Source::Sftp(cfg) => sftp::list(cfg)?,
            Source::Smb(cfg) => smb::list(cfg)?,
            Source::Gcs(cfg) => gcs::list(cfg)?,
        };
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// A whole file, in memory (for small files; large ones go through [`Source::fetch`]).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        let mut buf = Vec::new();
        self.download(name, &mut buf)?;
        Ok(buf)
    }

    /// Stream the file `name` to `dest`: written to `<dest>.part`, synced to disk, then renamed
    /// to `dest` (replacing it). On an error the `.part` file is removed and `dest` is left as
    /// it was. Returns the number of bytes.
    pub fn fetch(&self, name: &str, dest: &Path) -> Result<u64, SourceError> {
        let mut part = dest.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let result = (|| {
            let file = std::fs::File::create(&part).map_err(|e| local_err(&part, e))?;
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
            let n = self.download(name, &mut out)?;
            let file = out
                .into_inner()
                .map_err(|e| local_err(&part, e.into_error()))?;
            file.sync_all().map_err(|e| local_err(&part, e))?;
            std::fs::rename(&part, dest).map_err(|e| local_err(dest, e))?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        result
    }

    /// Stream a file into `to`.
    fn download(&self, name: &str, to: &mut dyn Write) -> Result<u64, SourceError> {
        Ok(match self {
            Source::Local(dir) => {
                let p = dir.join(name);
                let mut f = std::fs::File::open(&p).map_err(|e| local_err(&p, e))?;
                std::io::copy(&mut f, to).map_err(|e| local_err(&p, e))?
            }
            Source::Ftp(cfg) => ftp::download(cfg, name, to)?,
            Source::Sftp(cfg) => sftp::download(cfg, name, to)?,
            Source::Smb(cfg) => smb::download(cfg, name, to)?,
            Source::Gcs(cfg) => gcs::download(cfg, name, to)?,
        })
    }

    /// Put a file into `subdir` of the source, replacing one of the same name (the folder is
    /// created in a local folder; on an FTP or SFTP server it must exist).
    pub fn put(&self, subdir: &str, name: &str, bytes: &[u8]) -> Result<(), SourceError> {
        match self {
            Source::Local(dir) => {
                let d = dir.join(subdir);
                std::fs::create_dir_all(&d).map_err(|e| local_err(&d, e))?;
                std::fs::write(d.join(name), bytes).map_err(|e| local_err(&d.join(name), e))
            }
            Source::Ftp(cfg) => {
                let tmp = std::env::temp_dir().join(format!("dipex-{}-{name}", std::process::id()));
                std::fs::write(&tmp, bytes).map_err(|e| local_err(&tmp, e))?;
                let mut cfg = cfg.clone();
                cfg.dir = Some(match &cfg.dir {
                    Some(d) if !d.is_empty() => format!("{}/{subdir}", d.trim_end_matches('/')),
                    _ => subdir.to_string(),
                });
                let result = ftp::put_all(&cfg, &[(tmp.clone(), name.to_string())]);
                let _ = std::fs::remove_file(&tmp);
                Ok(result?)
            }
            Source::Sftp(cfg) => Ok(sftp::upload(cfg, subdir, name, bytes)?),
            Source::Smb(_) | Source::Gcs(_) => Err(SourceError::Unsupported(format!(
                "{} is read-only for dipex",
                self.describe()
            ))),
        }
    }

    /// Put `files` (local path, final name) into the source's folder all together or not at
    /// all, by the rule of [`put`](super::put): staged under temporary names, the previous files
    /// moved to backup names only when every new one is there, put back on any failure. For a
    /// local folder, FTP/FTPS and SFTP; SMB and GCS sources are read-only here.
    pub fn put_all(&self, files: &[(PathBuf, String)]) -> Result<(), SourceError> {
        match self {
            Source::Local(dir) => Ok(put::put_all(&mut put::Folder(dir.clone()), files)?),
            Source::Ftp(cfg) => Ok(ftp::put_all(cfg, files)?),
            Source::Sftp(cfg) => Ok(sftp::put_all(cfg, files)?),
            Source::Smb(_) | Source::Gcs(_) => Err(SourceError::Unsupported(format!(
                "{} is read-only for dipex",
                self.describe()
            ))),
        }
    }

    /// For logs: the folder, `ftp://user@host:port/dir`, `smb://user@server/share/dir` or
    /// `gs://bucket` (no password).
    pub fn describe(&self) -> String {
        match self {
            Source::Local(dir) => format!("folder {}", dir.display()),
            Source::Ftp(cfg) => {
                let scheme = match cfg.security {
                    ftp::FtpSecurity::Plain => "ftp",
                    ftp::FtpSecurity::ExplicitTls { .. } => "ftps",
                };
                format!(
                    "{scheme}://{}@{}:{}/{}",
                    cfg.user,
                    cfg.host,
                    cfg.port,
                    cfg.dir.as_deref().unwrap_or("")
                )
            }
            Source::Sftp(cfg) => format!(
                "sftp://{}@{}:{}/{}",
                cfg.user,
                cfg.host,
                cfg.port,
                cfg.dir.as_deref().unwrap_or("")
            ),
            Source::Smb(cfg) => format!(
                "smb://{}@{}",
                cfg.user,
                cfg.location().trim_start_matches('/')
            ),
            Source::Gcs(cfg) => {
                if cfg.endpoint == gcs::DEFAULT_ENDPOINT {
                    format!("gs://{}", cfg.bucket)
                } else {
                    format!("gs://{} at {}", cfg.bucket, cfg.endpoint)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_folder_lists_files_only_sorted_with_times() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.csv"), "x").unwrap();
        std::fs::write(dir.path().join("a.csv"), "yy").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let s = Source::Local(dir.path().to_path_buf());
        let l = s.list().unwrap();
        assert_eq!(
            l.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            vec!["a.csv", "b.csv"]
        );
        assert_eq!(l[0].size, Some(2));
        assert!(l[0].modified.is_some());
        assert_eq!(s.read("b.csv").unwrap(), b"x");
        assert!(
            s.read("nope.csv")
                .unwrap_err()
                .to_string()
                .contains("nope.csv")
        );
    }

    #[test]
    fn fetch_writes_through_a_part_file_and_leaves_nothing_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.xml"), "<a/>").unwrap();
        let s = Source::Local(dir.path().to_path_buf());
        let dest = out.path().join("a.xml");
        assert_eq!(s.fetch("a.xml", &dest).unwrap(), 4);
        assert_eq!(std::fs::read(&dest).unwrap(), b"<a/>");
        std::fs::write(&dest, "old").unwrap();
        assert!(s.fetch("missing.xml", &dest).is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
    }
}
