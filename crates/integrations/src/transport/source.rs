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
