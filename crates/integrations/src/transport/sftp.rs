//! SFTP transport: list a directory and download files over SSH, for the Aarhus LOS importer.
//!
//! Each listing and each download uses one SSH connection, opened like this:
//!
//! 1. Before anything is sent: the private key is read (and decrypted with its passphrase), and
//!    the `known_hosts` file is read, so a bad key or file is reported without connecting.
//! 2. TCP connect to every resolved address in turn, then the SSH handshake. The server's host key
//!    is checked against the `known_hosts` file ([`HostKeyCheck::KnownHosts`]) during the key
//!    exchange; an unknown host or a changed key ends the connection there, before any
//!    authentication, with an error naming the host and the key's SHA-256 fingerprint. When the
//!    file holds keys of some type for the host, the client asks the server for that type first,
//!    as `ssh` does. [`HostKeyCheck::Insecure`] accepts any key (the old Python tool did) and logs
//!    a warning once per process.
//! 3. Authentication ([`SftpAuth`]): a password, a private key (ed25519, ECDSA or RSA; RSA signs
//!    with SHA-512 or SHA-256 when the server supports them), or a key followed by a password for
//!    servers that demand both (OpenSSH `AuthenticationMethods publickey,password`: the key is
//!    accepted as a partial success, then the password completes the login).
//!    `keyboard-interactive` is not used, so a server that takes passwords only that way (PAM
//!    setups with `PasswordAuthentication no`) refuses the password step.
//! 4. A session channel with the `sftp` subsystem. [`SftpConfig::dir`] is a path prefix (SFTP has
//!    no working directory): relative paths start in the login directory.
//!
//! Every network step (connect, handshake, each authentication step, each SFTP request, each
//! chunk of a download) has [`SftpConfig::timeout`]. Downloads are streamed in 64 KiB chunks and
//! are checked against the file's size when it was opened, so a transfer that ends early is an
//! error, never a silently short file.
//!
//! The SSH client is russh with ring as its only crypto provider. It is async; each call runs it
//! on a small current-thread tokio runtime of its own, so the functions here are blocking and must
//! not be called from inside an async runtime (use `spawn_blocking` there).
//!
//! Errors and `Debug` output never contain the password or the key passphrase.

use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Disconnect, MethodSet, Preferred};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpClientError;
use russh_sftp::protocol::FileAttributes;
use tokio::io::AsyncReadExt;

pub use super::RemoteFile;
use super::put::{self, Failure, PutError};

mod known_hosts;

use known_hosts::{KnownHosts, Verdict};

/// The standard SSH port.
pub const DEFAULT_PORT: u16 = 22;
/// Timeout of every network step when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the chunks a download is read and written in.
const CHUNK: usize = 64 * 1024;

/// How to log in. `Debug` never shows the password or the passphrase.
#[derive(Clone, PartialEq, Eq)]
pub enum SftpAuth {
    /// Password authentication.
    Password(String),
    /// Public key authentication with a private key file (OpenSSH, PEM/PKCS#1, PKCS#8 or PuTTY
    /// format), decrypted with `passphrase` when it is encrypted.
    Key {
        path: PathBuf,
        passphrase: Option<String>,
    },
    /// The key, then the password: for servers that require both (LOS's server does). A server
    /// that is content with the key alone is not sent the password.
    KeyThenPassword {
        path: PathBuf,
        passphrase: Option<String>,
        password: String,
    },
}

impl fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        match self {
            SftpAuth::Password(_) => f.debug_tuple("Password").field(&"<redacted>").finish(),
            SftpAuth::Key { path, passphrase } => f
                .debug_struct("Key")
                .field("path", path)
                .field("passphrase", &redacted(passphrase))
                .finish(),
            SftpAuth::KeyThenPassword {
                path, passphrase, ..
            } => f
                .debug_struct("KeyThenPassword")
                .field("path", path)
                .field("passphrase", &redacted(passphrase))
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// How the server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// The key must be listed for the host in this OpenSSH `known_hosts` file (plain, hashed and
    /// `[host]:port` entries, wildcards, `@revoked`; see the `known_hosts` module). Only the host
    /// name as configured is looked up.
    KnownHosts(PathBuf),
    /// Accept any host key (anyone in between can read the files and the password). Logs a
    /// warning once per process.
    Insecure,
}

/// Where and how to connect. `Debug` never shows the password or the passphrase.
#[derive(Clone, PartialEq, Eq)]
pub struct SftpConfig {
    pub host: String,
    /// Normally [`DEFAULT_PORT`].
    pub port: u16,
    pub user: String,
    pub auth: SftpAuth,
    pub host_keys: HostKeyCheck,
    /// Directory the files are in; `None` is the login directory. A relative path starts in the
    /// login directory.
    pub dir: Option<String>,
    /// Timeout of every network step, normally [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl SftpConfig {
    /// A config with the default port and timeout, for the login directory.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        auth: SftpAuth,
        host_keys: HostKeyCheck,
    ) -> SftpConfig {
        SftpConfig {
            host: host.into(),
            port: DEFAULT_PORT,
            user: user.into(),
            auth,
            host_keys,
            dir: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `host:port`, with brackets around an IPv6 address.
    fn server(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The remote path of `name` in [`SftpConfig::dir`].
    fn path_of(&self, name: &str) -> String {
        match self.dir.as_deref() {
            None | Some("") => name.to_owned(),
            Some(dir) if dir.ends_with('/') => format!("{dir}{name}"),
            Some(dir) => format!("{dir}/{name}"),
        }
    }
}

impl fmt::Debug for SftpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("host_keys", &self.host_keys)
            .field("dir", &self.dir)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The step an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading (and decrypting) the private key file, before connecting.
    ReadKey,
    /// Reading the `known_hosts` file, before connecting.
    ReadKnownHosts,
    /// Checking the remote name, before connecting.
    Name,
    /// Resolving the host, the TCP connection and the SSH handshake.
    Connect,
    /// Checking the server's host key (during the handshake, before authentication).
    HostKey,
    /// Public key authentication.
    AuthPublicKey,
    /// Password authentication.
    AuthPassword,
    /// Opening the session channel and the `sftp` subsystem.
    Subsystem,
    /// Reading the directory (and following symbolic links in it).
    List,
    /// Opening the remote file and reading its size.
    Open,
    /// Reading the remote file's data.
    Download,
    /// Writing a downloaded file to the caller's writer.
    WriteLocal,
    /// Creating and writing a file on the server.
    Upload,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::ReadKey => "reading the private key",
            Step::ReadKnownHosts => "reading the known_hosts file",
            Step::Name => "checking the remote name",
            Step::Connect => "connect",
            Step::HostKey => "host key check",
            Step::AuthPublicKey => "publickey authentication",
            Step::AuthPassword => "password authentication",
            Step::Subsystem => "opening the SFTP session",
            Step::List => "listing",
            Step::Open => "opening",
            Step::Download => "download",
            Step::WriteLocal => "writing the downloaded data",
            Step::Upload => "upload",
        })
    }
}

/// Why the server's host key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyProblem {
    /// The `known_hosts` file lists no key of this type for the host.
    Unknown {
        known_hosts: PathBuf,
        /// Key types the file does list for the host.
        other_key_types: Vec<String>,
    },
    /// The file lists a different key of the same type for the host: the server's key changed,
    /// or someone is in between.
    Changed { known_hosts: PathBuf, line: usize },
    /// The key is marked `@revoked` in the file.
    Revoked { known_hosts: PathBuf, line: usize },
    /// The server presented a certificate; only plain host keys are supported.
    Certificate,
}

impl fmt::Display for HostKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyProblem::Unknown {
                known_hosts,
                other_key_types,
            } => {
                write!(f, "the host is not in {}", known_hosts.display())?;
                if !other_key_types.is_empty() {
                    write!(
                        f,
                        " with a key of this type (it is listed with {})",
                        other_key_types.join(", ")
                    )?;
                }
                Ok(())
            }
            HostKeyProblem::Changed { known_hosts, line } => write!(
                f,
                "the key differs from the one for the host in {}, line {line} (the server's key \
                 changed, or someone is in between)",
                known_hosts.display()
            ),
            HostKeyProblem::Revoked { known_hosts, line } => write!(
                f,
                "the key is marked @revoked in {}, line {line}",
                known_hosts.display()
            ),
            HostKeyProblem::Certificate => {
                f.write_str("the server presented a host certificate; only plain keys are accepted")
            }
        }
    }
}

/// Why an SFTP operation failed. Every variant names the server (`host:port`) and the step, and
/// the file when there is one; never the password or the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// A local input is unusable: the key file (unreadable, encrypted without a passphrase, wrong
    /// passphrase), the `known_hosts` file, or the remote name.
    #[error("SFTP {server}: {step}{}: {message}", of(*step, file))]
    Setup {
        server: String,
        step: Step,
        file: Option<String>,
        message: String,
    },
    /// The server's host key was refused; nothing was sent after the handshake.
    #[error(
        "SFTP {server}: host key check failed: {problem}; the server's key is {key_type} \
         {fingerprint}"
    )]
    HostKey {
        server: String,
        problem: HostKeyProblem,
        /// E.g. `ssh-ed25519`.
        key_type: String,
        /// E.g. `SHA256:…`, as `ssh-keygen -l` shows it.
        fingerprint: String,
    },
    /// The server refused the step: an authentication step, or an SFTP request (no such file,
    /// permission denied).
    #[error("SFTP {server}: {step}{} refused by the server: {message}", of(*step, file))]
    Refused {
        server: String,
        step: Step,
        file: Option<String>,
        message: String,
    },
    /// The connection failed: network error, timeout, SSH protocol error, the server closed the
    /// connection, or a transfer that ended early.
    #[error("SFTP {server}: {step}{} failed: {message}", of(*step, file))]
    Connection {
        server: String,
        step: Step,
        file: Option<String>,
        message: String,
    },
    /// The caller's writer failed.
    #[error("SFTP {server}: {step}{} failed: {error}", of(*step, file))]
    Local {
        server: String,
        step: Step,
        file: Option<String>,
        /// Not a `source()`: the message shows it already (error chains are printed once).
        error: io::Error,
    },
}

/// " of <file>" for the error messages (" <file>" after "reading the private key", "opening",
/// "listing" and the like).
fn of(step: Step, file: &Option<String>) -> String {
    match (step, file) {
        (Step::ReadKey | Step::ReadKnownHosts | Step::Open | Step::List, Some(path)) => {
            format!(" {path}")
        }
        (_, Some(file)) => format!(" of {file}"),
        (_, None) => String::new(),
    }
}

impl SftpError {
    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            SftpError::HostKey { .. } => Step::HostKey,
            SftpError::Setup { step, .. }
            | SftpError::Refused { step, .. }
            | SftpError::Connection { step, .. }
            | SftpError::Local { step, .. } => *step,
        }
    }

    /// The server as `host:port`.
    pub fn server(&self) -> &str {
        match self {
            SftpError::Setup { server, .. }
            | SftpError::HostKey { server, .. }
            | SftpError::Refused { server, .. }
            | SftpError::Connection { server, .. }
            | SftpError::Local { server, .. } => server,
        }
    }

    /// The file the step was about, if any: the remote name, the listed directory, or the local
    /// key or `known_hosts` file.
    pub fn file(&self) -> Option<&str> {
        match self {
            SftpError::HostKey { .. } => None,
            SftpError::Setup { file, .. }
            | SftpError::Refused { file, .. }
            | SftpError::Connection { file, .. }
            | SftpError::Local { file, .. } => file.as_deref(),
        }
    }
}

/// List the regular files in [`SftpConfig::dir`] (or the login directory), sorted by name.
///
/// Directories and special files are left out. A symbolic link is listed when it points to a
/// regular file, with that file's size and time. Sizes and modification times (whole seconds,
/// UTC) are as the server reports them. An entry whose type the server does not report is listed.
pub fn list(cfg: &SftpConfig) -> Result<Vec<RemoteFile>, SftpError> {
    let ctx = Ctx::new(cfg);
    let prepared = prepare(&ctx, cfg)?;
    run(&ctx, async {
        let session = connect(&ctx, cfg, prepared).await?;
        let files = list_dir(&ctx, cfg, &session).await;
        session.close().await;
        files
    })
}

/// Download the file `name` in [`SftpConfig::dir`] (or the login directory) into `to`, streamed
/// in chunks; returns the number of bytes written.
///
/// `name` must be a plain file name. When the transfer fails halfway, `to` has received the data
/// up to that point.
pub fn download(cfg: &SftpConfig, name: &str, to: &mut dyn Write) -> Result<u64, SftpError> {
    let ctx = Ctx::new(cfg);
    check_remote_name(&ctx, name)?;
    let prepared = prepare(&ctx, cfg)?;
    run(&ctx, async {
        let session = connect(&ctx, cfg, prepared).await?;
        let result = fetch(&ctx, &session, &cfg.path_of(name), name, to).await;
        if result.is_ok() {
            session.close().await;
        }
        result
    })
}

/// Write `bytes` as the file `name` in the folder `subdir` of [`SftpConfig::dir`] (or of the
/// login directory), replacing a file of that name. The folder must exist.
///
/// One file through [`put_all`]: the data goes to a temporary name first, the previous file to a
/// backup name, then the new one is renamed into place (SFTP version 3 renames refuse an existing
/// target, and the previous file is never deleted before its replacement is there). `subdir` and
/// `name` must be plain names.
pub fn upload(cfg: &SftpConfig, subdir: &str, name: &str, bytes: &[u8]) -> Result<(), PutError> {
    let ctx = Ctx::new(cfg);
    let early = |e: SftpError| PutError {
        protocol: "SFTP",
        server: ctx.server.clone(),
        step: put::PutStep::Prepare,
        file: Some(name.to_owned()),
        temp: None,
        failure: Box::new(failure(&e)),
        left: Box::new(put::Left::Unchanged),
    };
    check_remote_name(&ctx, subdir).map_err(early)?;
    check_remote_name(&ctx, name).map_err(early)?;
    let local = std::env::temp_dir().join(format!("dipex-sftp-{}-{name}", std::process::id()));
    std::fs::write(&local, bytes).map_err(|e| {
        early(ctx.failed(
            Step::Upload,
            Some(name),
            format!("a local temporary file: {e}"),
        ))
    })?;
    let mut cfg = cfg.clone();
    cfg.dir = Some(cfg.path_of(subdir));
    let result = put_all(&cfg, &[(local.clone(), name.to_owned())]);
    let _ = std::fs::remove_file(&local);
    result
}

/// Put `files` (local path, remote name) into [`SftpConfig::dir`] (or the login directory) all
/// together or not at all, by the rule of [`super::put`], over one SSH connection (a new one if
/// it breaks).
pub fn put_all(cfg: &SftpConfig, files: &[(std::path::PathBuf, String)]) -> Result<(), PutError> {
    let ctx = Ctx::new(cfg);
    let early = |file: &str, e: SftpError| PutError {
        protocol: "SFTP",
        server: ctx.server.clone(),
        step: put::PutStep::Prepare,
        file: Some(file.to_owned()),
        temp: None,
        failure: Box::new(failure(&e)),
        left: Box::new(put::Left::Unchanged),
    };
    for (local, name) in files {
        check_remote_name(&ctx, name).map_err(|e| early(name, e))?;
        if let Err(e) = std::fs::File::open(local) {
            return Err(early(
                &local.display().to_string(),
                ctx.failed(Step::Upload, None, format!("reading the local file: {e}")),
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            early(
                "",
                ctx.failed(
                    Step::Connect,
                    None,
                    format!("cannot start the I/O runtime: {e}"),
                ),
            )
        })?;
    let mut remote = SftpRemote {
        cfg,
        ctx: Ctx::new(cfg),
        runtime,
        session: None,
    };
    let result = put::put_all(&mut remote, files);
    if let Some(session) = remote.session.take() {
        remote.runtime.block_on(session.close());
    }
    result
}

/// An [`SftpError`] as the [`Failure`] of one operation (without the server, which the
/// [`PutError`] names).
fn failure(e: &SftpError) -> Failure {
    let text = e.to_string();
    let prefix = format!("SFTP {}: ", e.server());
    Failure {
        code: None,
        message: text
            .strip_prefix(&prefix)
            .map(str::to_owned)
            .unwrap_or(text),
        refused: matches!(e, SftpError::Refused { .. }),
    }
}

/// An SFTP folder as [`put::Remote`].
struct SftpRemote<'a> {
    cfg: &'a SftpConfig,
    ctx: Ctx,
    runtime: tokio::runtime::Runtime,
    session: Option<Session>,
}

impl SftpRemote<'_> {
    /// Connect if there is no session (the first operation, or after one broke).
    fn connected(&mut self) -> Result<(), Failure> {
        if self.session.is_none() {
            let prepared = prepare(&self.ctx, self.cfg).map_err(|e| failure(&e))?;
            let session = self
                .runtime
                .block_on(connect(&self.ctx, self.cfg, prepared))
                .map_err(|e| failure(&e))?;
            self.session = Some(session);
        }
        Ok(())
    }

    /// An operation's outcome; a broken session is dropped so that the next one reconnects.
    fn done<T>(&mut self, result: Result<T, SftpError>) -> Result<T, Failure> {
        if let Err(e) = &result
            && !matches!(e, SftpError::Refused { .. })
        {
            self.session = None;
        }
        result.map_err(|e| failure(&e))
    }
}

impl put::Remote for SftpRemote<'_> {
    fn protocol(&self) -> &'static str {
        "SFTP"
    }

    fn server(&self) -> String {
        self.ctx.server.clone()
    }

    fn names(&mut self) -> Result<std::collections::BTreeSet<String>, Failure> {
        self.connected()?;
        let session = self.session.as_ref().expect("connected");
        let result = self
            .runtime
            .block_on(list_dir(&self.ctx, self.cfg, session));
        self.done(result)
            .map(|files| files.into_iter().map(|f| f.name).collect())
    }

    fn store(&mut self, name: &str, local: &Path) -> Result<(), Failure> {
        let bytes = std::fs::read(local).map_err(|e| Failure {
            code: None,
            message: format!("reading the local file {}: {e}", local.display()),
            refused: false,
        })?;
        self.connected()?;
        let (ctx, session) = (&self.ctx, self.session.as_ref().expect("connected"));
        let path = self.cfg.path_of(name);
        let result = self.runtime.block_on(async {
            use tokio::io::AsyncWriteExt;
            let (step, file) = (Step::Upload, Some(name));
            let mut remote = timed(ctx, step, file, session.sftp.create(path), |e| {
                ctx.sftp_err(step, file, e)
            })
            .await?;
            let written = tokio::time::timeout(ctx.timeout, async {
                remote.write_all(&bytes).await?;
                remote.shutdown().await
            })
            .await;
            match written {
                Err(_) => Err(ctx.timed_out(step, file)),
                Ok(Err(e)) => Err(ctx.io_err(step, file, &e)),
                Ok(Ok(())) => Ok(()),
            }
        });
        self.done(result)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        self.connected()?;
        let (ctx, session) = (&self.ctx, self.session.as_ref().expect("connected"));
        let (a, b) = (self.cfg.path_of(from), self.cfg.path_of(to));
        let (step, file) = (Step::Upload, Some(from));
        let result =
            self.runtime
                .block_on(timed(ctx, step, file, session.sftp.rename(a, b), |e| {
                    ctx.sftp_err(step, file, e)
                }));
        self.done(result)
    }

    fn delete(&mut self, name: &str) -> Result<(), Failure> {
        self.connected()?;
        let (ctx, session) = (&self.ctx, self.session.as_ref().expect("connected"));
        let path = self.cfg.path_of(name);
        let (step, file) = (Step::Upload, Some(name));
        let result = self.runtime.block_on(timed(
            ctx,
            step,
            file,
            session.sftp.remove_file(path),
            |e| ctx.sftp_err(step, file, e),
        ));
        self.done(result)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and timeouts

/// Facts every error needs.
struct Ctx {
    server: String,
    timeout: Duration,
}

impl Ctx {
    fn new(cfg: &SftpConfig) -> Ctx {
        Ctx {
            server: cfg.server(),
            timeout: cfg.timeout,
        }
    }

    fn setup(&self, step: Step, file: Option<&str>, message: impl Into<String>) -> SftpError {
        SftpError::Setup {
            server: self.server.clone(),
            step,
            file: file.map(str::to_owned),
            message: message.into(),
        }
    }

    fn refused(&self, step: Step, file: Option<&str>, message: impl Into<String>) -> SftpError {
        SftpError::Refused {
            server: self.server.clone(),
            step,
            file: file.map(str::to_owned),
            message: message.into(),
        }
    }

    fn failed(&self, step: Step, file: Option<&str>, message: impl Into<String>) -> SftpError {
        SftpError::Connection {
            server: self.server.clone(),
            step,
            file: file.map(str::to_owned),
            message: message.into(),
        }
    }

    fn timed_out(&self, step: Step, file: Option<&str>) -> SftpError {
        self.failed(step, file, format!("timed out after {:?}", self.timeout))
    }

    fn ssh_err(&self, step: Step, file: Option<&str>, e: &russh::Error) -> SftpError {
        let message = match e {
            russh::Error::Disconnect | russh::Error::HUP | russh::Error::SendError => {
                format!("the server closed the connection ({e})")
            }
            russh::Error::IO(io) => io_message(io),
            other => other.to_string(),
        };
        self.failed(step, file, message)
    }

    fn sftp_err(&self, step: Step, file: Option<&str>, e: SftpClientError) -> SftpError {
        match e {
            SftpClientError::Status(status) => {
                let text = status.error_message.trim();
                let message = if text.is_empty() || text == status.status_code.to_string() {
                    status.status_code.to_string()
                } else {
                    format!("{} ({text})", status.status_code)
                };
                self.refused(step, file, message)
            }
            SftpClientError::Timeout => self.timed_out(step, file),
            other => self.failed(step, file, lost_connection(&other.to_string())),
        }
    }

    fn io_err(&self, step: Step, file: Option<&str>, e: &io::Error) -> SftpError {
        if e.kind() == io::ErrorKind::TimedOut {
            return self.timed_out(step, file);
        }
        self.failed(step, file, lost_connection(&io_message(e)))
    }
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("the server closed the connection ({e})"),
        _ => e.to_string(),
    }
}

/// russh-sftp reports a closed channel as a failed internal send; say what it means.
fn lost_connection(message: &str) -> String {
    let lost = ["SendError", "RecvError", "closed", "dropped"];
    if lost.iter().any(|l| message.contains(l)) {
        format!("the connection was lost ({message})")
    } else {
        message.to_owned()
    }
}

/// `fut` with the configured timeout; `map` turns its error into an [`SftpError`].
async fn timed<T, E>(
    ctx: &Ctx,
    step: Step,
    file: Option<&str>,
    fut: impl Future<Output = Result<T, E>>,
    map: impl FnOnce(E) -> SftpError,
) -> Result<T, SftpError> {
    match tokio::time::timeout(ctx.timeout, fut).await {
        Ok(result) => result.map_err(map),
        Err(_) => Err(ctx.timed_out(step, file)),
    }
}

/// Run `fut` to completion on a current-thread runtime of its own.
fn run<T>(ctx: &Ctx, fut: impl Future<Output = Result<T, SftpError>>) -> Result<T, SftpError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ctx.failed(
                Step::Connect,
                None,
                format!("cannot start the I/O runtime: {e}"),
            )
        })?;
    runtime.block_on(fut)
}

/// A remote name must be a plain file name in the configured directory.
fn check_remote_name(ctx: &Ctx, name: &str) -> Result<(), SftpError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\r', '\n', '\0']);
    if bad {
        return Err(ctx.setup(
            Step::Name,
            Some(&name.escape_debug().to_string()),
            "a remote name must be a plain file name",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connection

/// The local inputs, read before connecting.
struct Prepared {
    known_hosts: Option<Arc<KnownHosts>>,
    auth: Auth,
}

enum Auth {
    Password(String),
    Key(Arc<PrivateKey>),
    KeyThenPassword(Arc<PrivateKey>, String),
}

fn prepare(ctx: &Ctx, cfg: &SftpConfig) -> Result<Prepared, SftpError> {
    let known_hosts = match &cfg.host_keys {
        HostKeyCheck::KnownHosts(path) => {
            let known = KnownHosts::read(path).map_err(|e| {
                ctx.setup(
                    Step::ReadKnownHosts,
                    Some(&path.display().to_string()),
                    e.to_string(),
                )
            })?;
            Some(Arc::new(known))
        }
        HostKeyCheck::Insecure => {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                tracing::warn!(
                    server = %ctx.server,
                    "SFTP host key verification is off: any server key is accepted"
                );
            });
            None
        }
    };
    let auth = match &cfg.auth {
        SftpAuth::Password(password) => Auth::Password(password.clone()),
        SftpAuth::Key { path, passphrase } => {
            Auth::Key(load_key(ctx, path, passphrase.as_deref())?)
        }
        SftpAuth::KeyThenPassword {
            path,
            passphrase,
            password,
        } => Auth::KeyThenPassword(
            load_key(ctx, path, passphrase.as_deref())?,
            password.clone(),
        ),
    };
    Ok(Prepared { known_hosts, auth })
}

fn load_key(
    ctx: &Ctx,
    path: &Path,
    passphrase: Option<&str>,
) -> Result<Arc<PrivateKey>, SftpError> {
    let shown = path.display().to_string();
    let key = russh::keys::load_secret_key(path, passphrase).map_err(|e| {
        let message = match (&e, passphrase) {
            (russh::keys::Error::KeyIsEncrypted, None) => {
                "the key is encrypted and no passphrase is configured".to_owned()
            }
            (russh::keys::Error::IO(io), _) => io.to_string(),
            (_, Some(_)) => format!("cannot read or decrypt the key (wrong passphrase?): {e}"),
            (_, None) => format!("cannot read the key: {e}"),
        };
        ctx.setup(Step::ReadKey, Some(&shown), message)
    })?;
    // An encrypted key decrypted without a passphrase cannot sign.
    if key.is_encrypted() {
        return Err(ctx.setup(
            Step::ReadKey,
            Some(&shown),
            "the key is encrypted and no passphrase is configured",
        ));
    }
    Ok(Arc::new(key))
}

/// An authenticated SSH connection with its SFTP session.
struct Session {
    ssh: Handle<Client>,
    sftp: SftpSession,
}

impl Session {
    /// Say goodbye; failing to after the work is done is not worth an error.
    async fn close(self) {
        let goodbye = async {
            let _ = self.sftp.close().await;
            let _ = self
                .ssh
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
}

async fn connect(ctx: &Ctx, cfg: &SftpConfig, prepared: Prepared) -> Result<Session, SftpError> {
    let Prepared { known_hosts, auth } = prepared;
    let mut config = client::Config {
        nodelay: true,
        ..Default::default()
    };
    if let Some(known) = &known_hosts {
        config.preferred = preferred_for(known.algorithms(&cfg.host, cfg.port));
    }
    let rejection = Arc::new(Mutex::new(None));
    let handler = Client {
        host: cfg.host.clone(),
        port: cfg.port,
        server: ctx.server.clone(),
        known_hosts,
        rejection: Arc::clone(&rejection),
    };
    let stream = tcp_connect(ctx, &cfg.host, cfg.port).await?;
    let handshake = client::connect_stream(Arc::new(config), stream, handler);
    let mut ssh = match tokio::time::timeout(ctx.timeout, handshake).await {
        Ok(Ok(ssh)) => ssh,
        Ok(Err(e)) => {
            let rejected = rejection.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(rejected.unwrap_or_else(|| ctx.ssh_err(Step::Connect, None, &e)));
        }
        Err(_) => return Err(ctx.timed_out(Step::Connect, None)),
    };
    authenticate(ctx, &mut ssh, &cfg.user, auth).await?;

    let file = None;
    let step = Step::Subsystem;
    let channel = timed(ctx, step, file, ssh.channel_open_session(), |e| {
        ctx.ssh_err(step, file, &e)
    })
    .await?;
    timed(
        ctx,
        step,
        file,
        channel.request_subsystem(true, "sftp"),
        |e| ctx.ssh_err(step, file, &e),
    )
    .await?;
    let sftp_config = russh_sftp::client::Config {
        request_timeout_secs: ctx.timeout.as_secs().max(1),
        ..Default::default()
    };
    let init = SftpSession::new_with_config(channel.into_stream(), sftp_config);
    let sftp = timed(ctx, step, file, init, |e| ctx.sftp_err(step, file, e)).await?;
    Ok(Session { ssh, sftp })
}

/// The default host key algorithms, those the `known_hosts` file holds for the host first.
fn preferred_for(known: Vec<Algorithm>) -> Preferred {
    let defaults = Preferred::DEFAULT;
    if known.is_empty() {
        return defaults;
    }
    let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) = defaults
        .key
        .iter()
        .cloned()
        .partition(|a| known.iter().any(|k| known_hosts::same_type(k, a)));
    first.extend(rest);
    Preferred {
        key: first.into(),
        ..defaults
    }
}

/// Every resolved address in turn, each with the timeout.
async fn tcp_connect(ctx: &Ctx, host: &str, port: u16) -> Result<tokio::net::TcpStream, SftpError> {
    let step = Step::Connect;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = timed(
        ctx,
        step,
        None,
        tokio::net::lookup_host((host, port)),
        |e| ctx.io_err(step, None, &e),
    )
    .await?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in addrs {
        match tokio::time::timeout(ctx.timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}"))
            }
        }
    }
    Err(ctx.io_err(step, None, &last))
}

/// "publickey,password" for the error messages.
fn method_names(methods: &MethodSet) -> String {
    let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

async fn authenticate(
    ctx: &Ctx,
    ssh: &mut Handle<Client>,
    user: &str,
    auth: Auth,
) -> Result<(), SftpError> {
    match auth {
        Auth::Password(password) => match password_step(ctx, ssh, user, password).await? {
            AuthResult::Success => Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => Err(ctx.refused(
                Step::AuthPassword,
                None,
                format!(
                    "the password was accepted, but the server requires more (it offers: {})",
                    method_names(&remaining_methods)
                ),
            )),
        },
        Auth::Key(key) => match key_step(ctx, ssh, user, key).await? {
            AuthResult::Success => Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => Err(ctx.refused(
                Step::AuthPublicKey,
                None,
                format!(
                    "the key was accepted, but the server requires more (it offers: {}); \
                     configure the key then the password",
                    method_names(&remaining_methods)
                ),
            )),
        },
        Auth::KeyThenPassword(key, password) => {
            if let AuthResult::Success = key_step(ctx, ssh, user, key).await? {
                tracing::debug!(server = %ctx.server, "the key alone was enough, password not sent");
                return Ok(());
            }
            match password_step(ctx, ssh, user, password).await? {
                AuthResult::Success => Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => Err(ctx.refused(
                    Step::AuthPassword,
                    None,
                    format!(
                        "the key and the password were accepted, but the server requires more \
                         (it offers: {})",
                        method_names(&remaining_methods)
                    ),
                )),
            }
        }
    }
}

/// Public key authentication. A refusal is an error; a partial success (the server wants another
/// method too) is returned as [`AuthResult::Failure`].
async fn key_step(
    ctx: &Ctx,
    ssh: &mut Handle<Client>,
    user: &str,
    key: Arc<PrivateKey>,
) -> Result<AuthResult, SftpError> {
    let step = Step::AuthPublicKey;
    let hash = if key.algorithm().is_rsa() {
        // The best of SHA-512, SHA-256 and SHA-1 the server announces (SHA-256 if it does not).
        let best = timed(ctx, step, None, ssh.best_supported_rsa_hash(), |e| {
            ctx.ssh_err(step, None, &e)
        })
        .await?;
        best.unwrap_or(Some(HashAlg::Sha256))
    } else {
        None
    };
    let key = PrivateKeyWithHashAlg::new(key, hash);
    let result = timed(
        ctx,
        step,
        None,
        ssh.authenticate_publickey(user, key),
        |e| ctx.ssh_err(step, None, &e),
    )
    .await?;
    match result {
        AuthResult::Failure {
            remaining_methods,
            partial_success: false,
        } => Err(ctx.refused(
            step,
            None,
            format!(
                "the server did not accept the key for user {user} (it offers: {})",
                method_names(&remaining_methods)
            ),
        )),
        other => Ok(other),
    }
}

/// Password authentication; like [`key_step`].
async fn password_step(
    ctx: &Ctx,
    ssh: &mut Handle<Client>,
    user: &str,
    password: String,
) -> Result<AuthResult, SftpError> {
    let step = Step::AuthPassword;
    let result = timed(
        ctx,
        step,
        None,
        ssh.authenticate_password(user, password),
        |e| ctx.ssh_err(step, None, &e),
    )
    .await?;
    match result {
        AuthResult::Failure {
            remaining_methods,
            partial_success: false,
        } => Err(ctx.refused(
            step,
            None,
            format!(
                "the server did not accept the password for user {user} (it offers: {})",
                method_names(&remaining_methods)
            ),
        )),
        other => Ok(other),
    }
}

/// The SSH client's callbacks: only the host key check.
struct Client {
    host: String,
    port: u16,
    server: String,
    /// `None` accepts any key ([`HostKeyCheck::Insecure`]).
    known_hosts: Option<Arc<KnownHosts>>,
    /// Why the key was refused, for the caller's error.
    rejection: Arc<Mutex<Option<SftpError>>>,
}

impl Client {
    fn check(&self, key: &PublicKeyOrCertificate) -> Result<(), SftpError> {
        let (public, problem) = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), None),
            PublicKeyOrCertificate::Certificate(cert) => (
                PublicKey::from(cert.public_key().clone()),
                Some(HostKeyProblem::Certificate),
            ),
        };
        let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
        let Some(known) = &self.known_hosts else {
            tracing::debug!(server = %self.server, %fingerprint, "host key accepted unchecked");
            return Ok(());
        };
        let problem = problem.or_else(|| {
            let path = known.path.clone();
            match known.check(&self.host, self.port, &public) {
                Verdict::Known => None,
                Verdict::Unknown { other_types } => Some(HostKeyProblem::Unknown {
                    known_hosts: path,
                    other_key_types: other_types,
                }),
                Verdict::Changed { line } => Some(HostKeyProblem::Changed {
                    known_hosts: path,
                    line,
                }),
                Verdict::Revoked { line } => Some(HostKeyProblem::Revoked {
                    known_hosts: path,
                    line,
                }),
            }
        });
        match problem {
            None => Ok(()),
            Some(problem) => Err(SftpError::HostKey {
                server: self.server.clone(),
                problem,
                key_type: public.algorithm().as_str().to_owned(),
                fingerprint,
            }),
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match self.check(server_public_key) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.rejection.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listing and download

/// What kind of file the attributes describe (`Unknown`: the server sent no mode).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Regular,
    Symlink,
    Other,
    Unknown,
}

fn kind(attrs: &FileAttributes) -> Kind {
    const S_IFMT: u32 = 0o170_000;
    match attrs.permissions.map(|mode| mode & S_IFMT) {
        None => Kind::Unknown,
        Some(0o100_000) => Kind::Regular,
        Some(0o120_000) => Kind::Symlink,
        Some(_) => Kind::Other,
    }
}

fn remote_file(name: String, attrs: &FileAttributes) -> RemoteFile {
    RemoteFile {
        name,
        size: attrs.size,
        modified: attrs
            .mtime
            .and_then(|secs| jiff::Timestamp::from_second(i64::from(secs)).ok()),
    }
}

async fn list_dir(
    ctx: &Ctx,
    cfg: &SftpConfig,
    session: &Session,
) -> Result<Vec<RemoteFile>, SftpError> {
    let step = Step::List;
    let dir = cfg.dir.as_deref().filter(|d| !d.is_empty());
    let entries = timed(
        ctx,
        step,
        dir,
        session.sftp.read_dir(dir.unwrap_or(".")),
        |e| ctx.sftp_err(step, dir, e),
    )
    .await?;
    let mut files = Vec::new();
    for entry in entries {
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let attrs = entry.metadata();
        match kind(&attrs) {
            Kind::Regular | Kind::Unknown => files.push(remote_file(name, &attrs)),
            Kind::Other => {}
            Kind::Symlink => {
                let path = cfg.path_of(&name);
                match tokio::time::timeout(ctx.timeout, session.sftp.metadata(path)).await {
                    Ok(Ok(target)) if kind(&target) == Kind::Regular => {
                        files.push(remote_file(name, &target))
                    }
                    // A link to a directory, or a dangling one.
                    Ok(Ok(_)) | Ok(Err(SftpClientError::Status(_))) => {}
                    Ok(Err(e)) => return Err(ctx.sftp_err(step, Some(&name), e)),
                    Err(_) => return Err(ctx.timed_out(step, Some(&name))),
                }
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

async fn fetch(
    ctx: &Ctx,
    session: &Session,
    path: &str,
    name: &str,
    to: &mut dyn Write,
) -> Result<u64, SftpError> {
    let file = Some(name);
    let step = Step::Open;
    let mut remote = timed(ctx, step, file, session.sftp.open(path), |e| {
        ctx.sftp_err(step, file, e)
    })
    .await?;
    let attrs = timed(ctx, step, file, remote.metadata(), |e| {
        ctx.sftp_err(step, file, e)
    })
    .await?;
    if matches!(kind(&attrs), Kind::Other | Kind::Symlink) {
        return Err(ctx.refused(step, file, "not a regular file"));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match tokio::time::timeout(ctx.timeout, remote.read(&mut buf)).await {
            Err(_) => return Err(ctx.timed_out(Step::Download, file)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) if session.ssh.is_closed() => {
                return Err(ctx.failed(
                    Step::Download,
                    file,
                    format!("the connection was lost after {total} bytes ({e})"),
                ));
            }
            Ok(Err(e)) => return Err(ctx.io_err(Step::Download, file, &e)),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
        };
        to.write_all(&buf[..n]).map_err(|error| SftpError::Local {
            server: ctx.server.clone(),
            step: Step::WriteLocal,
            file: file.map(str::to_owned),
            error,
        })?;
        total += n as u64;
    }
    // End of file before the size the file had when opened: the transfer was cut short.
    if let Some(size) = attrs.size
        && total < size
    {
        return Err(ctx.failed(
            Step::Download,
            file,
            format!("the transfer ended after {total} of {size} bytes"),
        ));
    }
    let _ = tokio::time::timeout(ctx.timeout, remote.close()).await;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_and_the_passphrase() {
        let cfg = SftpConfig::new(
            "sftp.example",
            "user",
            SftpAuth::KeyThenPassword {
                path: "/keys/id_rsa".into(),
                passphrase: Some("s3cret-phrase".to_owned()),
                password: "s3cret-pw".to_owned(),
            },
            HostKeyCheck::Insecure,
        );
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("/keys/id_rsa"), "{shown}");
        let shown = format!("{:?}", SftpAuth::Password("s3cret-pw".to_owned()));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn paths_and_servers() {
        let mut cfg = SftpConfig::new(
            "::1",
            "u",
            SftpAuth::Password("p".to_owned()),
            HostKeyCheck::Insecure,
        );
        assert_eq!(cfg.server(), "[::1]:22");
        assert_eq!(cfg.path_of("a.csv"), "a.csv");
        cfg.dir = Some("/data/los".to_owned());
        assert_eq!(cfg.path_of("a.csv"), "/data/los/a.csv");
        cfg.dir = Some("out/".to_owned());
        assert_eq!(cfg.path_of("a.csv"), "out/a.csv");
    }

    #[test]
    fn remote_names_must_be_plain_file_names() {
        let cfg = SftpConfig::new(
            "h",
            "u",
            SftpAuth::Password("p".to_owned()),
            HostKeyCheck::Insecure,
        );
        let ctx = Ctx::new(&cfg);
        assert!(check_remote_name(&ctx, "Pers_20240101.csv").is_ok());
        for bad in ["", "..", "../etc/passwd", "a\nb"] {
            let err = check_remote_name(&ctx, bad).unwrap_err();
            assert_eq!(err.step(), Step::Name, "{bad:?}");
        }
    }

    #[test]
    fn file_kinds_from_the_mode() {
        let attrs = |mode| FileAttributes {
            permissions: mode,
            ..Default::default()
        };
        assert_eq!(kind(&attrs(Some(0o100_644))), Kind::Regular);
        assert_eq!(kind(&attrs(Some(0o120_777))), Kind::Symlink);
        assert_eq!(kind(&attrs(Some(0o040_755))), Kind::Other);
        assert_eq!(kind(&attrs(None)), Kind::Unknown);
    }

    #[test]
    fn known_host_key_types_are_asked_for_first() {
        let preferred = preferred_for(vec![Algorithm::Rsa { hash: None }]);
        assert!(matches!(preferred.key[0], Algorithm::Rsa { .. }));
        assert_eq!(preferred.key.len(), Preferred::DEFAULT.key.len());
        assert_eq!(preferred_for(vec![]).key, Preferred::DEFAULT.key);
    }
}
