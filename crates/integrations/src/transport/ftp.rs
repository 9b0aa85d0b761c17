//! FTP and explicit FTPS transport: upload files atomically, list a directory, download a file.
//!
//! Used by the plan2learn exporter (upload of its CSV files over explicit FTPS, "FTPES") and, later,
//! by the Aarhus LOS importer (list and download over plain FTP or explicit FTPS).
//!
//! Each listing, download and uploaded file uses one connection, opened like this:
//!
//! 1. TCP connect with a timeout; every read and write on the control and data connections has
//!    the same timeout ([`FtpConfig::timeout`]).
//! 2. For [`FtpSecurity::ExplicitTls`]: `AUTH TLS`, the TLS handshake (completed right away, so a
//!    refused certificate is reported as the TLS step), `PBSZ 0`, `PROT P` (data connections are
//!    TLS too, with session resumption for servers that demand it).
//! 3. `USER`/`PASS`, `TYPE I` (binary: bytes are never rewritten), `CWD` to [`FtpConfig::dir`]
//!    when set. Data connections use passive mode (`PASV`); like the old Python tool, the address
//!    in the `PASV` reply is ignored and the control connection's address is used.
//!
//! Uploads ([`put_all`]) put a set of files into place all together or not at all, by the rule
//! of [`super::put`]: every file is `STOR`ed under a temporary name (`.<name>.part`, or
//! `<name>.part` when the server refuses names starting with a dot), and only when all are there
//! are the previous files renamed to backup names and the new ones renamed (`RNFR`/`RNTO`) to
//! their final names. No rename goes onto an existing name and no final file is deleted before
//! its replacement is in place; a failure puts the previous files back (over a new connection
//! when the old one broke) and deletes the temporary names.
//!
//! Certificates are verified by default against the webpki roots plus an optional PEM file;
//! `verify: false` accepts any certificate (the old tool did; plan2learn's server may need it) and
//! logs a warning once per process. Only the `ring` rustls provider is used.
//!
//! Errors never contain the password: it is sent only in `PASS`, server replies are scrubbed of
//! it, and suppaftp's own `log` output (which would trace `PASS <password>`) is compiled out with
//! its `no-log` feature.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use suppaftp::types::{FileType, Response};
use suppaftp::{ImplFtpStream, Status, TlsConnector, TlsStream};

use super::put::{self, Failure, PutError, Remote as _};
use std::collections::BTreeSet;

pub use super::RemoteFile;

/// The standard FTP control port.
pub const DEFAULT_PORT: u16 = 21;
/// Connect, read and write timeout when none is configured (the old Python tool used 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether and how the control and data connections are encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FtpSecurity {
    /// Plain FTP, nothing encrypted (LOS's server).
    Plain,
    /// Explicit FTPS: connect in plain text, then `AUTH TLS`, `PBSZ 0`, `PROT P`.
    ExplicitTls {
        /// Verify the server's certificate and host name. `false` accepts any certificate.
        verify: bool,
        /// PEM file with extra trusted certificates (a private CA or the server's own
        /// certificate), used in addition to the webpki roots.
        ca_file: Option<PathBuf>,
    },
}

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct FtpConfig {
    pub host: String,
    /// Control port, normally [`DEFAULT_PORT`].
    pub port: u16,
    pub user: String,
    pub password: String,
    pub security: FtpSecurity,
    /// Timeout for connecting and for every read and write, normally [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Directory to `CWD` into after login; `None` stays where the login lands.
    pub dir: Option<String>,
}

impl FtpConfig {
    /// A config with the default port and timeout and no `CWD`.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
        security: FtpSecurity,
    ) -> FtpConfig {
        FtpConfig {
            host: host.into(),
            port: DEFAULT_PORT,
            user: user.into(),
            password: password.into(),
            security,
            timeout: DEFAULT_TIMEOUT,
            dir: None,
        }
    }

    /// `FTP` or `FTPS`, for messages.
    pub fn protocol(&self) -> &'static str {
        match self.security {
            FtpSecurity::Plain => "FTP",
            FtpSecurity::ExplicitTls { .. } => "FTPS",
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
}

impl fmt::Debug for FtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("security", &self.security)
            .field("timeout", &self.timeout)
            .field("dir", &self.dir)
            .finish()
    }
}

/// The protocol step an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the CA file or building the TLS settings, before connecting.
    TlsSetup,
    /// Resolving the host, the TCP connection and the server's greeting.
    Connect,
    /// The `AUTH TLS` command.
    AuthTls,
    /// The TLS handshake on the control or a data connection (certificate checks included).
    TlsHandshake,
    /// `PBSZ 0` and `PROT P` after the handshake.
    ProtectData,
    /// `USER` and `PASS`.
    Login,
    /// `TYPE I`.
    Binary,
    /// `CWD` to the configured directory.
    Cwd,
    /// Reading the local file to upload.
    ReadLocal,
    /// `STOR` of the temporary file, data transfer included.
    Stor,
    /// `RNFR`/`RNTO` of the temporary file to its final name.
    Rename,
    /// `DELE` of an existing file that the server would not rename over.
    Delete,
    /// The `MLSD` listing.
    Mlsd,
    /// The `NLST` listing (fallback when `MLSD` is refused), with `SIZE` and `MDTM` per name.
    Nlst,
    /// `RETR`, data transfer included.
    Retr,
    /// Writing a downloaded file to the caller's writer.
    WriteLocal,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::TlsSetup => "TLS setup",
            Step::Connect => "connect",
            Step::AuthTls => "AUTH TLS",
            Step::TlsHandshake => "TLS handshake",
            Step::ProtectData => "PBSZ/PROT",
            Step::Login => "login",
            Step::Binary => "TYPE I",
            Step::Cwd => "CWD",
            Step::ReadLocal => "reading the local file",
            Step::Stor => "STOR",
            Step::Rename => "RNFR/RNTO",
            Step::Delete => "DELE",
            Step::Mlsd => "MLSD",
            Step::Nlst => "NLST",
            Step::Retr => "RETR",
            Step::WriteLocal => "writing the downloaded data",
        })
    }
}

/// Why an FTP operation failed. Every variant names the server (`host:port`) and the step, the
/// file when there is one, and the server's reply when there is one; never the password.
#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    /// The TLS settings could not be built (unreadable or empty CA file, bad host name).
    #[error("{protocol} {server}: {step}{}: {message}", of(*step, file))]
    Setup {
        /// `FTP` or `FTPS`.
        protocol: &'static str,
        server: String,
        step: Step,
        file: Option<String>,
        message: String,
    },
    /// The server answered the step with a negative or unexpected reply.
    #[error("{protocol} {server}: {step}{} refused by the server: {reply}", of(*step, file))]
    Refused {
        /// `FTP` or `FTPS`.
        protocol: &'static str,
        server: String,
        step: Step,
        file: Option<String>,
        /// The reply code, e.g. 530.
        code: u32,
        /// The reply as the server sent it (code and message), password scrubbed.
        reply: String,
    },
    /// The connection failed: network error, timeout, TLS failure, connection closed, or a reply
    /// that is not FTP.
    #[error("{protocol} {server}: {step}{} failed: {message}", of(*step, file))]
    Connection {
        /// `FTP` or `FTPS`.
        protocol: &'static str,
        server: String,
        step: Step,
        file: Option<String>,
        message: String,
    },
    /// A local file could not be read (upload) or the caller's writer failed (download).
    #[error("{protocol} {server}: {step}{} failed: {error}", of(*step, file))]
    Local {
        protocol: &'static str,
        server: String,
        step: Step,
        file: Option<String>,
        /// Not a `source()`: the message already shows it, and error chains are printed once.
        error: io::Error,
    },
}

/// " of <file>" for the error messages (" to <dir>" for `CWD`).
fn of(step: Step, file: &Option<String>) -> String {
    match (step, file) {
        (Step::Cwd, Some(dir)) => format!(" to {dir}"),
        (_, Some(file)) => format!(" of {file}"),
        (_, None) => String::new(),
    }
}

/// The message of an error without its "<protocol> <server>: " prefix.
fn detail(e: &FtpError) -> String {
    let text = e.to_string();
    let prefix = format!("{} {}: ", e.protocol(), e.server());
    text.strip_prefix(&prefix)
        .map(str::to_owned)
        .unwrap_or(text)
}

impl FtpError {
    /// `FTP` or `FTPS`.
    pub fn protocol(&self) -> &'static str {
        match self {
            FtpError::Setup { protocol, .. }
            | FtpError::Refused { protocol, .. }
            | FtpError::Connection { protocol, .. }
            | FtpError::Local { protocol, .. } => protocol,
        }
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            FtpError::Setup { step, .. }
            | FtpError::Refused { step, .. }
            | FtpError::Connection { step, .. }
            | FtpError::Local { step, .. } => *step,
        }
    }

    /// The server as `host:port`.
    pub fn server(&self) -> &str {
        match self {
            FtpError::Setup { server, .. }
            | FtpError::Refused { server, .. }
            | FtpError::Connection { server, .. }
            | FtpError::Local { server, .. } => server,
        }
    }

    /// The file the step was about, if any (the final remote name for uploads).
    pub fn file(&self) -> Option<&str> {
        match self {
            FtpError::Setup { file, .. }
            | FtpError::Refused { file, .. }
            | FtpError::Connection { file, .. }
            | FtpError::Local { file, .. } => file.as_deref(),
        }
    }

    /// The server's reply (code and message), if the server refused the step.
    pub fn reply(&self) -> Option<&str> {
        match self {
            FtpError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// The server's reply code, if the server refused the step.
    pub fn code(&self) -> Option<u32> {
        match self {
            FtpError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Explicit FTPS with the two TLS settings every FTPS user has (`<prefix>.verify_tls`,
/// `<prefix>.ca_file`): plan2learn's upload and the LOS import share this one configuration.
/// Turning verification off is warned about, naming the setting.
pub fn explicit_tls(prefix: &str, verify: bool, ca_file: Option<PathBuf>) -> FtpSecurity {
    if !verify {
        tracing::warn!(
            "{prefix}.verify_tls is false: the FTPS server's certificate is not checked (only for legacy servers)"
        );
    }
    FtpSecurity::ExplicitTls { verify, ca_file }
}

/// Put `files` (local path, remote name) into the login (or [`FtpConfig::dir`]) directory, all
/// or none, by the rule of [`super::put`]: every file is uploaded under a temporary name first,
/// and only when all are there are the previous files moved to backup names and the new ones
/// renamed into place; a failure puts the previous files back and removes the temporary names.
///
/// A remote name is a plain file name; names and local files are checked before connecting.
/// Each upload gets its own connection, as the old tool did (plan2learn's server was seen to
/// time out the session after an upload); the renames share one.
pub fn put_all(cfg: &FtpConfig, files: &[(PathBuf, String)]) -> Result<(), PutError> {
    let ctx = Ctx::new(cfg);
    let mut remote = FtpRemote {
        cfg,
        ctx: Ctx::new(cfg),
        conn: None,
    };
    let early = |step: Step, file: String, message: String| PutError {
        protocol: remote.protocol(),
        server: ctx.server.clone(),
        step: put::PutStep::Prepare,
        file: Some(file),
        temp: None,
        failure: Box::new(Failure {
            code: None,
            message: format!("{step}: {message}"),
            refused: false,
        }),
        left: Box::new(put::Left::Unchanged),
    };
    for (local, name) in files {
        if let Err(e) = check_remote_name(&ctx, name) {
            return Err(early(
                Step::Stor,
                name.escape_debug().to_string(),
                detail(&e),
            ));
        }
        if let Err(e) = File::open(local) {
            return Err(early(
                Step::ReadLocal,
                local.display().to_string(),
                e.to_string(),
            ));
        }
    }
    let result = put::put_all(&mut remote, files);
    if let Some(ftp) = remote.conn.take() {
        quit(&ctx, ftp);
    }
    result
}

/// An FTP folder as [`put::Remote`]: one connection, opened when needed and again after it broke.
struct FtpRemote<'a> {
    cfg: &'a FtpConfig,
    ctx: Ctx,
    conn: Option<Ftp>,
}

impl FtpRemote<'_> {
    /// Run `f` on the connection (opening one if needed); a broken connection is dropped so
    /// that the next operation opens a new one.
    fn with<T>(
        &mut self,
        f: impl FnOnce(&Ctx, &mut Ftp) -> Result<T, FtpError>,
    ) -> Result<T, Failure> {
        if self.conn.is_none() {
            self.conn = Some(connect(self.cfg).map_err(|e| failure(&e))?);
        }
        let ftp = self.conn.as_mut().expect("connected");
        let result = f(&self.ctx, ftp);
        if let Err(e) = &result
            && !matches!(e, FtpError::Refused { .. })
        {
            self.conn = None;
        }
        result.map_err(|e| failure(&e))
    }
}

/// An [`FtpError`] as a [`Failure`] of one operation (the server is named by the [`PutError`]).
fn failure(e: &FtpError) -> Failure {
    Failure {
        code: e.code(),
        message: detail(e),
        refused: matches!(e, FtpError::Refused { .. }) && e.code().is_some_and(is_5xx),
    }
}

impl put::Remote for FtpRemote<'_> {
    fn protocol(&self) -> &'static str {
        self.cfg.protocol()
    }

    fn server(&self) -> String {
        self.ctx.server.clone()
    }

    fn names(&mut self) -> Result<BTreeSet<String>, Failure> {
        self.with(list_on)
            .map(|files| files.into_iter().map(|f| f.name).collect())
    }

    fn store(&mut self, name: &str, local: &Path) -> Result<(), Failure> {
        let result = self.with(|ctx, ftp| {
            let mut input = File::open(local).map_err(|error| FtpError::Local {
                protocol: ctx.protocol,
                server: ctx.server.clone(),
                step: Step::ReadLocal,
                file: Some(local.display().to_string()),
                error,
            })?;
            store(ctx, ftp, name, name, local, &mut input)
        });
        // A new connection for the next upload.
        if let Some(ftp) = self.conn.take() {
            quit(&self.ctx, ftp);
        }
        result
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        self.with(|ctx, ftp| {
            ftp.rename(from, to)
                .map_err(|e| ctx.err(Step::Rename, Some(from), e))
        })
    }

    fn delete(&mut self, name: &str) -> Result<(), Failure> {
        self.with(|ctx, ftp| {
            ftp.rm(name)
                .map_err(|e| ctx.err(Step::Delete, Some(name), e))
        })
    }
}

/// List the files in the login (or [`FtpConfig::dir`]) directory.
///
/// Uses `MLSD` (names, sizes, UTC modification times; directories are left out). When the server
/// refuses `MLSD`, falls back to `NLST` with `SIZE` and `MDTM` per name; there directories cannot be
/// told apart and come back with whatever `SIZE` and `MDTM` give (often nothing).
pub fn list(cfg: &FtpConfig) -> Result<Vec<RemoteFile>, FtpError> {
    let ctx = Ctx::new(cfg);
    let mut ftp = connect(cfg)?;
    let files = list_on(&ctx, &mut ftp)?;
    quit(&ctx, ftp);
    Ok(files)
}

/// `MLSD`, or `NLST` with `SIZE` and `MDTM` when the server refuses it.
fn list_on(ctx: &Ctx, ftp: &mut Ftp) -> Result<Vec<RemoteFile>, FtpError> {
    match ftp.mlsd(None) {
        Ok(lines) => Ok(lines
            .iter()
            .filter_map(|line| parse_mlsd_line(line))
            .collect()),
        Err(suppaftp::FtpError::UnexpectedResponse(reply)) if is_permanent(&reply) => {
            tracing::debug!(server = %ctx.server, "MLSD refused, listing with NLST");
            list_nlst(ctx, ftp)
        }
        Err(e) => Err(ctx.err(Step::Mlsd, None, e)),
    }
}

/// Download the remote file `name` into `to`, streamed; returns the number of bytes written.
pub fn download(cfg: &FtpConfig, name: &str, to: &mut dyn Write) -> Result<u64, FtpError> {
    let ctx = Ctx::new(cfg);
    let mut ftp = connect(cfg)?;
    let file = Some(name);
    let mut stream = ftp
        .retr_as_stream(name)
        .map_err(|e| ctx.err(Step::Retr, file, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let err = ctx.io_err(Step::Retr, file, &e);
                // The server's reply, if it sent one, says more than the broken data stream.
                return Err(match stream.finish() {
                    Err(e @ suppaftp::FtpError::UnexpectedResponse(_)) => {
                        ctx.err(Step::Retr, file, e)
                    }
                    _ => err,
                });
            }
        };
        if let Err(error) = to.write_all(&buf[..n]) {
            drop(stream);
            return Err(FtpError::Local {
                protocol: ctx.protocol,
                server: ctx.server,
                step: Step::WriteLocal,
                file: file.map(str::to_owned),
                error,
            });
        }
        total += n as u64;
    }
    stream.finish().map_err(|e| ctx.err(Step::Retr, file, e))?;
    quit(&ctx, ftp);
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Connection

/// The suppaftp client; plain sessions simply never switch to TLS.
type Ftp = ImplFtpStream<TlsSession>;

/// Facts every error needs, and the password to scrub from server replies.
struct Ctx {
    protocol: &'static str,
    server: String,
    password: String,
}

impl Ctx {
    fn new(cfg: &FtpConfig) -> Ctx {
        Ctx {
            protocol: cfg.protocol(),
            server: cfg.server(),
            password: cfg.password.clone(),
        }
    }

    /// Removes the password from text that came from the server or the network.
    fn scrub(&self, text: &str) -> String {
        // A very short password would also match ordinary words; servers never echo `PASS`
        // anyway, so only longer ones are worth the replacement.
        if self.password.len() >= 4 {
            text.replace(&self.password, "<redacted>")
        } else {
            text.to_owned()
        }
    }

    fn err(&self, step: Step, file: Option<&str>, e: suppaftp::FtpError) -> FtpError {
        let file = file.map(str::to_owned);
        let server = self.server.clone();
        match e {
            suppaftp::FtpError::UnexpectedResponse(reply) => FtpError::Refused {
                protocol: self.protocol,
                server,
                step,
                file,
                code: reply_code(&reply),
                reply: self.scrub(&reply_text(&reply)),
            },
            suppaftp::FtpError::ConnectionError(e) => self.io_err(step, file.as_deref(), &e),
            suppaftp::FtpError::SecureError(message) => {
                // suppaftp wraps its own errors again: "Secure error: Secure error: ...".
                let mut message = message.as_str();
                while let Some(rest) = message.strip_prefix("Secure error: ") {
                    message = rest;
                }
                FtpError::Connection {
                    protocol: self.protocol,
                    server,
                    step,
                    file,
                    message: self.scrub(&format!("TLS: {message}")),
                }
            }
            suppaftp::FtpError::BadResponse => FtpError::Connection {
                protocol: self.protocol,
                server,
                step,
                file,
                message: "the server's reply is not valid FTP".to_owned(),
            },
            other => FtpError::Connection {
                protocol: self.protocol,
                server,
                step,
                file,
                message: self.scrub(&other.to_string()),
            },
        }
    }

    fn io_err(&self, step: Step, file: Option<&str>, e: &io::Error) -> FtpError {
        let message = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("timed out ({e})")
            }
            io::ErrorKind::UnexpectedEof => format!("the server closed the connection ({e})"),
            _ => e.to_string(),
        };
        FtpError::Connection {
            protocol: self.protocol,
            server: self.server.clone(),
            step,
            file: file.map(str::to_owned),
            message: self.scrub(&message),
        }
    }
}

/// The reply code as a number; suppaftp maps codes it does not know to 0, so read the text.
fn reply_code(reply: &Response) -> u32 {
    let code = reply.status.code();
    if code != 0 {
        return code;
    }
    reply
        .body
        .get(..3)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// The reply as the server sent it, lines joined; its body already starts with the code.
fn reply_text(reply: &Response) -> String {
    let text = String::from_utf8_lossy(&reply.body);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        format!("{} (no text)", reply.status.code())
    } else {
        lines.join(" / ")
    }
}

/// A 5xx reply: the server will not do this, as opposed to a temporary (4xx) failure.
fn is_permanent(reply: &Response) -> bool {
    (500..600).contains(&reply_code(reply))
}

/// Connect, secure (for FTPS), log in, switch to binary and `CWD`.
fn connect(cfg: &FtpConfig) -> Result<Ftp, FtpError> {
    let ctx = Ctx::new(cfg);
    // Build the TLS settings first, so a bad CA file is reported before anything is sent.
    let tls = match &cfg.security {
        FtpSecurity::Plain => None,
        FtpSecurity::ExplicitTls { verify, ca_file } => {
            Some(tls_config(&ctx, *verify, ca_file.as_deref())?)
        }
    };
    let control = tcp_connect(&ctx, &cfg.host, cfg.port, cfg.timeout)?;
    let timeout = cfg.timeout;
    let mut ftp = Ftp::connect_with_stream(control)
        .map_err(|e| ctx.err(Step::Connect, None, e))?
        .passive_stream_builder(move |addr: SocketAddr| {
            data_connect(addr, timeout).map_err(suppaftp::FtpError::ConnectionError)
        });
    // Like Python's ftplib: trust the control connection's address over the one in PASV replies
    // (servers behind NAT announce their private address).
    ftp.set_passive_nat_workaround(true);
    if let Some(config) = tls {
        let handshakes = Arc::new(AtomicUsize::new(0));
        let connector = Connector {
            config,
            handshakes: Arc::clone(&handshakes),
        };
        ftp = ftp.into_secure(connector, &cfg.host).map_err(|e| {
            // into_secure sends AUTH TLS, shakes hands, then sends PBSZ and PROT; the handshake
            // counter tells which of them failed.
            let step = match (&e, handshakes.load(Ordering::SeqCst)) {
                (suppaftp::FtpError::SecureError(_), 0) => Step::TlsHandshake,
                (_, 0) => Step::AuthTls,
                _ => Step::ProtectData,
            };
            ctx.err(step, None, e)
        })?;
    }
    ftp.login(cfg.user.as_str(), cfg.password.as_str())
        .map_err(|e| ctx.err(Step::Login, None, e))?;
    ftp.transfer_type(FileType::Binary)
        .map_err(|e| ctx.err(Step::Binary, None, e))?;
    if let Some(dir) = &cfg.dir {
        ftp.cwd(dir).map_err(|e| ctx.err(Step::Cwd, Some(dir), e))?;
    }
    Ok(ftp)
}

/// The control connection: every resolved address in turn, each with the timeout.
fn tcp_connect(ctx: &Ctx, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, FtpError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ctx.io_err(Step::Connect, None, &e))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                set_timeouts(&stream, timeout).map_err(|e| ctx.io_err(Step::Connect, None, &e))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(ctx.io_err(Step::Connect, None, &last))
}

fn data_connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    set_timeouts(&stream, timeout)?;
    Ok(stream)
}

fn set_timeouts(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)
}

/// Say goodbye; a failing `QUIT` after the work is done is not worth an error.
fn quit(ctx: &Ctx, mut ftp: Ftp) {
    if let Err(e) = ftp.quit() {
        tracing::debug!(server = %ctx.server, error = %ctx.err(Step::Connect, None, e), "QUIT failed");
    }
}

// ---------------------------------------------------------------------------------------------
// TLS

/// rustls settings: webpki roots plus `ca_file`, or no verification at all.
fn tls_config(
    ctx: &Ctx,
    verify: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, FtpError> {
    let setup_err = |file: Option<&Path>, message: String| FtpError::Setup {
        protocol: ctx.protocol,
        server: ctx.server.clone(),
        step: Step::TlsSetup,
        file: file.map(|f| f.display().to_string()),
        message,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup_err(None, e.to_string()))?;
    let config = if verify {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| setup_err(Some(path), e.to_string()))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| setup_err(Some(path), e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| setup_err(Some(path), e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(setup_err(Some(path), "no certificates in it".to_owned()));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        static WARN: Once = Once::new();
        WARN.call_once(|| {
            tracing::warn!(
                server = %ctx.server,
                "FTPS certificate verification is off: any server certificate is accepted"
            );
        });
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any server certificate, but still checks the handshake signatures made with it.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Makes TLS sessions for the control and data connections and completes each handshake at
/// once, so that certificate errors surface as the handshake step, and an empty upload still
/// has a TLS data connection.
#[derive(Debug)]
struct Connector {
    config: Arc<ClientConfig>,
    /// Handshakes completed, to tell a failed `AUTH TLS` from a failed `PBSZ`/`PROT`.
    handshakes: Arc<AtomicUsize>,
}

impl TlsConnector for Connector {
    type Stream = TlsSession;

    fn connect(&self, domain: &str, mut socket: TcpStream) -> suppaftp::FtpResult<TlsSession> {
        let tls_err = |e: &dyn fmt::Display| suppaftp::FtpError::SecureError(e.to_string());
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| tls_err(&e))?;
        let mut conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(|e| tls_err(&e))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut socket).map_err(|e| tls_err(&e))?;
        }
        self.handshakes.fetch_add(1, Ordering::SeqCst);
        Ok(TlsSession {
            stream: StreamOwned::new(conn, socket),
            close_notify: true,
        })
    }
}

/// A TLS connection that says `close_notify` when dropped (servers reject uploads whose data
/// connection ends without it).
#[derive(Debug)]
struct TlsSession {
    stream: StreamOwned<ClientConnection, TcpStream>,
    close_notify: bool,
}

impl TlsStream for TlsSession {
    type InnerStream = StreamOwned<ClientConnection, TcpStream>;

    fn tcp_stream(mut self) -> suppaftp::FtpResult<TcpStream> {
        let socket = self
            .stream
            .sock
            .try_clone()
            .map_err(suppaftp::FtpError::ConnectionError)?;
        self.close_notify = false;
        Ok(socket)
    }

    fn get_ref(&self) -> &TcpStream {
        self.stream.get_ref()
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.stream
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        if self.close_notify {
            // Best effort: the peer may already be gone.
            let _ = self.stream.flush();
            self.stream.conn.send_close_notify();
            let _ = self.stream.conn.write_tls(&mut self.stream.sock);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upload

/// A remote name must be a plain file name: the temporary name is derived from it.
fn check_remote_name(ctx: &Ctx, remote: &str) -> Result<(), FtpError> {
    let bad = remote.is_empty()
        || remote == "."
        || remote == ".."
        || remote.contains(['/', '\\', '\r', '\n', '\0']);
    if bad {
        return Err(FtpError::Setup {
            protocol: ctx.protocol,
            server: ctx.server.clone(),
            step: Step::Stor,
            file: Some(remote.escape_debug().to_string()),
            message: "a remote name must be a plain file name".to_owned(),
        });
    }
    Ok(())
}

fn is_5xx(code: u32) -> bool {
    (500..600).contains(&code)
}

/// `STOR` `input` (read from `local`) as `temp`; errors name the final remote name.
fn store(
    ctx: &Ctx,
    ftp: &mut Ftp,
    temp: &str,
    remote: &str,
    local: &Path,
    input: &mut File,
) -> Result<(), FtpError> {
    let file = Some(remote);
    let mut stream = ftp
        .put_with_stream(temp)
        .map_err(|e| ctx.err(Step::Stor, file, e))?;
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                // Closing the data connection early ends the transfer; the partial temporary
                // file is removed by the caller.
                drop(stream);
                return Err(FtpError::Local {
                    protocol: ctx.protocol,
                    server: ctx.server.clone(),
                    step: Step::ReadLocal,
                    file: Some(local.display().to_string()),
                    error,
                });
            }
        };
        if let Err(e) = stream.write_all(&buf[..n]) {
            let err = ctx.io_err(Step::Stor, file, &e);
            // The server's reply, if it sent one before closing, says more than a broken pipe.
            return Err(match stream.finish() {
                Err(e @ suppaftp::FtpError::UnexpectedResponse(_)) => ctx.err(Step::Stor, file, e),
                _ => err,
            });
        }
    }
    if let Err(e) = stream.flush() {
        let err = ctx.io_err(Step::Stor, file, &e);
        drop(stream);
        return Err(err);
    }
    stream.finish().map_err(|e| ctx.err(Step::Stor, file, e))
}

// ---------------------------------------------------------------------------------------------
// Listing

/// `NLST`, then `SIZE` and `MDTM` per name (each may be refused, e.g. for directories).
fn list_nlst(ctx: &Ctx, ftp: &mut Ftp) -> Result<Vec<RemoteFile>, FtpError> {
    let names = ftp.nlst(None).map_err(|e| ctx.err(Step::Nlst, None, e))?;
    let mut files = Vec::with_capacity(names.len());
    for raw in names {
        let name = raw.trim_end_matches(['\r', '\n']);
        let name = name.strip_prefix("./").unwrap_or(name);
        if name.is_empty() || name == "." || name == ".." {
            continue;
        }
        let size = match ftp.size(name) {
            Ok(size) => Some(size as u64),
            Err(suppaftp::FtpError::UnexpectedResponse(_)) => None,
            Err(e) => return Err(ctx.err(Step::Nlst, Some(name), e)),
        };
        let modified = match ftp.custom_command(format!("MDTM {name}"), &[Status::File]) {
            Ok(reply) => {
                let text = String::from_utf8_lossy(&reply.body);
                text.get(4..).and_then(|t| parse_ftp_time(t.trim()))
            }
            Err(suppaftp::FtpError::UnexpectedResponse(_)) => None,
            Err(e) => return Err(ctx.err(Step::Nlst, Some(name), e)),
        };
        files.push(RemoteFile {
            name: name.to_owned(),
            size,
            modified,
        });
    }
    Ok(files)
}

/// One `MLSD` line, `fact=value;...; name`; `None` for directories and unreadable lines.
fn parse_mlsd_line(line: &str) -> Option<RemoteFile> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (facts, name) = line.split_once(' ')?;
    if name.is_empty() {
        return None;
    }
    let mut size = None;
    let mut modified = None;
    let mut is_file = true;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let Some((key, value)) = fact.split_once('=') else {
            continue;
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                is_file = value.eq_ignore_ascii_case("file")
                    || value.to_ascii_lowercase().starts_with("os.unix=symlink")
            }
            "size" => size = value.parse().ok(),
            "modify" => modified = parse_ftp_time(value),
            _ => {}
        }
    }
    is_file.then(|| RemoteFile {
        name: name.to_owned(),
        size,
        modified,
    })
}

/// `YYYYMMDDHHMMSS` with an optional `.fraction` (any number of digits), in UTC (RFC 3659).
fn parse_ftp_time(text: &str) -> Option<jiff::Timestamp> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| whole[range].parse::<i32>().ok();
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Keep nanosecond precision; ignore digits beyond it.
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse::<i32>().ok()?
        }
        Some(_) => return None,
    };
    let datetime = jiff::civil::DateTime::new(
        i16::try_from(num(0..4)?).ok()?,
        i8::try_from(num(4..6)?).ok()?,
        i8::try_from(num(6..8)?).ok()?,
        i8::try_from(num(8..10)?).ok()?,
        i8::try_from(num(10..12)?).ok()?,
        // Leap seconds ("60") are folded into the last second of the minute.
        i8::try_from(num(12..14)?.min(59)).ok()?,
        nanos,
    )
    .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(datetime).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ftp_times_parse_with_and_without_fraction_as_utc() {
        assert_eq!(
            parse_ftp_time("20210323153241"),
            Some(ts("2021-03-23T15:32:41Z"))
        );
        assert_eq!(
            parse_ftp_time("20210323153241.448"),
            Some(ts("2021-03-23T15:32:41.448Z"))
        );
        assert_eq!(
            parse_ftp_time("20210323153241.5"),
            Some(ts("2021-03-23T15:32:41.5Z"))
        );
        assert_eq!(
            parse_ftp_time("20210323153241.1234567891"),
            Some(ts("2021-03-23T15:32:41.123456789Z"))
        );
        for bad in [
            "",
            "2021032315324",
            "20210323153241.",
            "2021-03-23T15:32",
            "20211323153241",
        ] {
            assert_eq!(parse_ftp_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn mlsd_lines_give_files_and_skip_directories() {
        assert_eq!(
            parse_mlsd_line(
                "type=file;size=1234;modify=20210323153241.448;UNIX.mode=0644; Pers_nye 2021.csv"
            ),
            Some(RemoteFile {
                name: "Pers_nye 2021.csv".to_owned(),
                size: Some(1234),
                modified: Some(ts("2021-03-23T15:32:41.448Z")),
            })
        );
        assert_eq!(
            parse_mlsd_line("Type=File;Modify=20240101000000;Size=0; empty.csv"),
            Some(RemoteFile {
                name: "empty.csv".to_owned(),
                size: Some(0),
                modified: Some(ts("2024-01-01T00:00:00Z")),
            })
        );
        assert_eq!(
            parse_mlsd_line("type=dir;modify=20240101000000; archive"),
            None
        );
        assert_eq!(parse_mlsd_line("type=cdir; ."), None);
        assert_eq!(parse_mlsd_line("type=pdir; .."), None);
        assert_eq!(parse_mlsd_line("garbage"), None);
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = FtpConfig::new("ftp.example", "user", "s3cret-pw", FtpSecurity::Plain);
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn server_replies_are_scrubbed_of_the_password() {
        let cfg = FtpConfig::new("::1", "user", "s3cret-pw", FtpSecurity::Plain);
        let ctx = Ctx::new(&cfg);
        assert_eq!(ctx.server, "[::1]:21");
        let reply = Response::new(Status::NotLoggedIn, b"530 bad PASS s3cret-pw\r\n".to_vec());
        let err = ctx.err(
            Step::Login,
            None,
            suppaftp::FtpError::UnexpectedResponse(reply),
        );
        let text = err.to_string();
        assert_eq!(
            text,
            "FTP [::1]:21: login refused by the server: 530 bad PASS <redacted>"
        );
        assert_eq!(err.code(), Some(530));
    }

    #[test]
    fn remote_names_must_be_plain_file_names() {
        let cfg = FtpConfig::new("h", "u", "p", FtpSecurity::Plain);
        let ctx = Ctx::new(&cfg);
        assert!(check_remote_name(&ctx, "bruger.csv").is_ok());
        for bad in ["", "..", "a/b.csv", "a\r\nDELE x"] {
            assert!(check_remote_name(&ctx, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_reply_codes_are_read_from_the_text() {
        let reply = Response::new(Status::Unknown, b"534 Policy requires SSL\r\n".to_vec());
        assert_eq!(reply_code(&reply), 534);
        assert_eq!(reply_text(&reply), "534 Policy requires SSL");
    }
}
