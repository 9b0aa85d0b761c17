//! One place files come from, whatever the transport: a local folder, an FTP/FTPS server or an
//! SFTP server (SMB and Google Cloud Storage join here). Importers list a source (names, sizes, modified
//! times in UTC) and read files from it; the source's description for logs never shows a
//! password.

use super::RemoteFile;
use super::ftp::{self, FtpConfig, FtpError};
use super::sftp::{self, SftpConfig, SftpError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    Local { path: String, reason: String },
    #[error(transparent)]
    Ftp(#[from] FtpError),
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("{0}")]
    Unsupported(String),
}

/// Where an importer's files are.
#[derive(Debug, Clone)]
pub enum Source {
    Local(PathBuf),
    Ftp(FtpConfig),
    Sftp(SftpConfig),
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
        };
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// A whole file.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        match self {
            Source::Local(dir) => {
                let p = dir.join(name);
                std::fs::read(&p).map_err(|e| local_err(&p, e))
            }
            Source::Ftp(cfg) => {
                let mut buf = Vec::new();
                ftp::download(cfg, name, &mut buf)?;
                Ok(buf)
            }
            Source::Sftp(cfg) => {
                let mut buf = Vec::new();
                sftp::download(cfg, name, &mut buf)?;
                Ok(buf)
            }
        }
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
                let result = ftp::upload_files(&cfg, &[(tmp.clone(), name.to_string())]);
                let _ = std::fs::remove_file(&tmp);
                Ok(result?)
            }
            Source::Sftp(cfg) => Ok(sftp::upload(cfg, subdir, name, bytes)?),
        }
    }

    /// For logs: the folder, or `ftp://user@host:port/dir` (no password).
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
}
