//! SMB transport (Windows shares): list a folder and download files, for the OPUS importer
//! (`integrations.opus.smb_host`, `smb_user`, `smb_password`).
//!
//! The client is Samba's own `libsmbclient`, **loaded at run time** with `libloading`: building
//! dipex needs no Samba headers or libraries, and only a machine that reads dumps from a share
//! needs the library installed (Debian: `apt install libsmbclient`). Without it every call fails
//! with [`SmbError::Library`] saying so. Only these functions of its context API are used:
//! `smbc_new_context`, `smbc_setDebug`, `smbc_setOptionUserData`/`smbc_getOptionUserData`,
//! `smbc_setFunctionAuthDataWithContext`, `smbc_setOptionProtocols` (SMB2 and SMB3 only),
//! `smbc_setOptionNoAutoAnonymousLogin`, `smbc_setTimeout`, `smbc_setPort`, `smbc_init_context`,
//! `smbc_getFunction{Opendir,Readdir,Closedir,Stat,Open,Read,Close}` and `smbc_free_context`.
//!
//! libsmbclient is not thread-safe, so every use in the process is serialized behind one mutex,
//! and each listing or download uses a context of its own that is freed afterwards. All
//! `unsafe` code of dipex's SMB support is in this module.
//!
//! Like the old Python tool, operations are retried on connection errors (refused, timed out,
//! unreachable, reset) up to [`SmbConfig::attempts`] times (7), waiting [`SmbConfig::wait`]
//! (2 s) and then twice as long after each further failure, at most [`MAX_WAIT`]. A refused login is reported at once. A download is only retried while nothing
//! has been written yet.
//!
//! Errors and `Debug` output never contain the password: it is handed to libsmbclient only in
//! its authentication callback, and libsmbclient's errors are `errno` values.
#![allow(unsafe_code)] // the FFI to libsmbclient; nowhere else

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use super::RemoteFile;
use crate::dar::http::percent_encode;

/// Attempts of an operation on connection errors, as the old tool made.
pub const DEFAULT_ATTEMPTS: u32 = 7;
/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Wait after the first failed attempt (the old tool waited this long every time; dipex
/// doubles it after each further failure, up to [`MAX_WAIT`]).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// Timeout of each SMB request when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// What the error says when the library cannot be loaded.
pub const NEEDS_LIBRARY: &str = "SMB source needs libsmbclient (Debian: apt install libsmbclient)";

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmbConfig {
    /// Host name or IP address.
    pub server: String,
    /// TCP port; `None` is libsmbclient's default (445, then 139).
    pub port: Option<u16>,
    pub share: String,
    /// Folder inside the share, `/`-separated; empty for the share's root.
    pub dir: String,
    pub user: String,
    pub password: String,
    /// Domain or workgroup; a user written `DOMAIN\user` sets it.
    pub workgroup: String,
    /// Timeout of each request.
    pub timeout: Duration,
    /// Attempts on connection errors, normally [`DEFAULT_ATTEMPTS`].
    pub attempts: u32,
    /// Wait between attempts, normally [`DEFAULT_WAIT`].
    pub wait: Duration,
}

impl fmt::Debug for SmbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmbConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("share", &self.share)
            .field("dir", &self.dir)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("workgroup", &self.workgroup)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("wait", &self.wait)
            .finish()
    }
}

impl SmbConfig {
    /// A config from OPUS's `smb_host` (`IP/share/folder`, also `IP:port/share/folder`,
    /// `smb://IP/share` and `\\IP\share\folder`), a user (`user`, or `DOMAIN\user`) and a
    /// password, with the default timeout and retries.
    pub fn new(host: &str, user: &str, password: &str) -> Result<SmbConfig, SmbError> {
        let (server, port, share, dir) = parse_host(host).map_err(|reason| SmbError::Setting {
            host: host.to_string(),
            reason,
        })?;
        let (workgroup, user) = match user.split_once('\\') {
            Some((domain, user)) if !domain.is_empty() => (domain.to_string(), user.to_string()),
            _ => ("WORKGROUP".to_string(), user.to_string()),
        };
        Ok(SmbConfig {
            server,
            port,
            share,
            dir,
            user,
            password: password.to_string(),
            workgroup,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            wait: DEFAULT_WAIT,
        })
    }

    /// `//server[:port]/share/dir`, for messages.
    pub fn location(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let dir = if self.dir.is_empty() {
            String::new()
        } else {
            format!("/{}", self.dir)
        };
        format!("//{}{port}/{}{dir}", self.server, self.share)
    }

    /// The `smb://` URL of the folder, or of a file in it (no user, no password).
    fn url(&self, file: Option<&str>) -> String {
        let mut url = format!("smb://{}/{}", self.server, percent_encode(&self.share));
        for part in self.dir.split('/').filter(|p| !p.is_empty()) {
            url.push('/');
            url.push_str(&percent_encode(part));
        }
        if let Some(f) = file {
            url.push('/');
            url.push_str(&percent_encode(f));
        }
        url
    }
}

/// Split `smb_host` into server, port, share and folder.
pub fn parse_host(host: &str) -> Result<(String, Option<u16>, String, String), String> {
    let h = host.trim();
    let h = h.strip_prefix("smb://").unwrap_or(h);
    let h = h.replace('\\', "/");
    let h = h.trim_start_matches('/');
    let mut parts = h.split('/').filter(|p| !p.is_empty());
    let authority = parts
        .next()
        .ok_or("no server; write it as IP/share/folder")?;
    let share = parts
        .next()
        .ok_or("no share after the server; write it as IP/share/folder")?
        .to_string();
    let dir = parts.collect::<Vec<_>>().join("/");
    let (server, port) = match authority.rsplit_once(':') {
        Some((s, p)) if !s.contains(':') => (
            s.to_string(),
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{p:?} is not a port number"))?,
            ),
        ),
        _ => (authority.to_string(), None),
    };
    if server.is_empty() {
        return Err("no server; write it as IP/share/folder".into());
    }
    Ok((server, port, share, dir))
}

/// The step an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating and initialising the client context.
    Setup,
    /// Opening and reading the folder (the first contact: connect and log in).
    List,
    /// Reading a file's size and time.
    Stat,
    /// Opening a file (the first contact of a download).
    Open,
    /// Reading a file.
    Read,
    /// Writing the downloaded data to the caller's writer.
    WriteLocal,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Setup => "client setup",
            Step::List => "listing",
            Step::Stat => "stat",
            Step::Open => "open",
            Step::Read => "read",
            Step::WriteLocal => "writing the downloaded data",
        })
    }
}

/// Why an SMB operation failed. Names the share (`//server[:port]/share/folder`), the step and
/// the file; never the password.
#[derive(Debug, thiserror::Error)]
pub enum SmbError {
    /// libsmbclient is not installed (or not usable).
    #[error("{NEEDS_LIBRARY}: {reason}")]
    Library { reason: String },
    /// `smb_host` cannot be understood.
    #[error("integrations.opus.smb_host {host:?}: {reason}")]
    Setting { host: String, reason: String },
    /// The server refused the user name and password (or the user may not read the folder).
    #[error(
        "SMB {location}: {step}{}: access denied for user {user:?}: wrong user name or password, or no right to read (check integrations.opus.smb_user and smb_password)",
        of(file)
    )]
    Denied {
        location: String,
        step: Step,
        file: Option<String>,
        user: String,
    },
    /// Anything else: connection errors (after the retries), missing share, folder or file.
    #[error("SMB {location}: {step}{} failed{}: {message}", of(file), tries(*attempts))]
    Failed {
        location: String,
        step: Step,
        file: Option<String>,
        /// The `errno` libsmbclient set, when there is one.
        errno: Option<i32>,
        /// How many attempts were made.
        attempts: u32,
        message: String,
    },
}

fn of(file: &Option<String>) -> String {
    match file {
        Some(f) => format!(" of {f}"),
        None => String::new(),
    }
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

impl SmbError {
    /// The step that failed, when a server was involved.
    pub fn step(&self) -> Option<Step> {
        match self {
            SmbError::Denied { step, .. } | SmbError::Failed { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// Whether another attempt might succeed (a connection error).
    fn retryable(&self) -> bool {
        matches!(self, SmbError::Failed { errno: Some(e), .. } if is_connection_errno(*e))
    }
}

fn is_connection_errno(e: i32) -> bool {
    matches!(
        e,
        libc::ECONNREFUSED
            | libc::ETIMEDOUT
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::ECONNRESET
            | libc::ECONNABORTED
            | libc::EHOSTDOWN
            | libc::ENOTCONN
            | libc::EPIPE
            | libc::EAGAIN
    )
}

/// List the regular files in the folder (sizes and modification times in UTC), sorted by name.
pub fn list(cfg: &SmbConfig) -> Result<Vec<RemoteFile>, SmbError> {
    let lib = library()?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    retry(cfg, |_| {
        let session = Session::new(lib, cfg)?;
        let mut files = session.list()?;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    })
}

/// Download the file `name` from the folder into `to`, streamed; returns the number of bytes.
/// A file that ends before its size is an error, never a short file.
pub fn download(cfg: &SmbConfig, name: &str, to: &mut dyn Write) -> Result<u64, SmbError> {
    let lib = library()?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut written = false;
    retry(cfg, |_| {
        if written {
            // Bytes went to the writer already: another attempt would repeat them.
            return Err(SmbError::Failed {
                location: cfg.location(),
                step: Step::Read,
                file: Some(name.to_string()),
                errno: None,
                attempts: 1,
                message: "the connection broke during the transfer".into(),
            });
        }
        let session = Session::new(lib, cfg)?;
        session.download(name, to, &mut written)
    })
}

/// The wait after failed attempt `attempt` (1-based): `first`, doubled after each further
/// failure, at most [`MAX_WAIT`] (2, 4, 8, 16, 30, 30 s with the defaults).
fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    first.saturating_mul(factor).min(MAX_WAIT.max(first))
}

/// Run `op` up to `cfg.attempts` times while it fails with a connection error.
fn retry<T>(
    cfg: &SmbConfig,
    mut op: impl FnMut(u32) -> Result<T, SmbError>,
) -> Result<T, SmbError> {
    let attempts = cfg.attempts.max(1);
    let mut attempt = 1;
    loop {
        match op(attempt) {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable() && attempt < attempts => {
                let wait = backoff(cfg.wait, attempt);
                tracing::debug!("{e}; attempt {attempt} of {attempts}, trying again in {wait:?}");
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(SmbError::Failed {
                location,
                step,
                file,
                errno,
                message,
                ..
            }) => {
                return Err(SmbError::Failed {
                    location,
                    step,
                    file,
                    errno,
                    attempts: attempt,
                    message,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// libsmbclient, loaded at run time

/// libsmbclient's `SMBCCTX` and `SMBCFILE`: opaque.
#[repr(C)]
struct SmbcCtx {
    _private: [u8; 0],
}
#[repr(C)]
struct SmbcFile {
    _private: [u8; 0],
}

/// `struct smbc_dirent` from `libsmbclient.h`.
#[repr(C)]
struct SmbcDirent {
    smbc_type: u32,
    dirlen: u32,
    commentlen: u32,
    comment: *mut c_char,
    namelen: u32,
    name: [c_char; 1],
}

/// `SMBC_FILE` from `libsmbclient.h`.
const SMBC_FILE: u32 = 8;

type AuthFn = unsafe extern "C" fn(
    *mut SmbcCtx,
    *const c_char,
    *const c_char,
    *mut c_char,
    c_int,
    *mut c_char,
    c_int,
    *mut c_char,
    c_int,
);
type OpendirFn = unsafe extern "C" fn(*mut SmbcCtx, *const c_char) -> *mut SmbcFile;
type ReaddirFn = unsafe extern "C" fn(*mut SmbcCtx, *mut SmbcFile) -> *mut SmbcDirent;
type ClosedirFn = unsafe extern "C" fn(*mut SmbcCtx, *mut SmbcFile) -> c_int;
type StatFn = unsafe extern "C" fn(*mut SmbcCtx, *const c_char, *mut libc::stat) -> c_int;
type OpenFn =
    unsafe extern "C" fn(*mut SmbcCtx, *const c_char, c_int, libc::mode_t) -> *mut SmbcFile;
type ReadFn = unsafe extern "C" fn(*mut SmbcCtx, *mut SmbcFile, *mut c_void, usize) -> isize;
type CloseFn = unsafe extern "C" fn(*mut SmbcCtx, *mut SmbcFile) -> c_int;

/// The functions dipex uses, with the library kept loaded for the life of the process.
struct Lib {
    _lib: libloading::Library,
    new_context: unsafe extern "C" fn() -> *mut SmbcCtx,
    free_context: unsafe extern "C" fn(*mut SmbcCtx, c_int) -> c_int,
    init_context: unsafe extern "C" fn(*mut SmbcCtx) -> *mut SmbcCtx,
    set_debug: unsafe extern "C" fn(*mut SmbcCtx, c_int),
    set_user_data: unsafe extern "C" fn(*mut SmbcCtx, *mut c_void),
    get_user_data: unsafe extern "C" fn(*mut SmbcCtx) -> *mut c_void,
    set_auth: unsafe extern "C" fn(*mut SmbcCtx, AuthFn),
    set_protocols: unsafe extern "C" fn(*mut SmbcCtx, *const c_char, *const c_char) -> c_int,
    set_no_anonymous: unsafe extern "C" fn(*mut SmbcCtx, c_int),
    set_timeout: unsafe extern "C" fn(*mut SmbcCtx, c_int),
    set_port: unsafe extern "C" fn(*mut SmbcCtx, u16),
    opendir: unsafe extern "C" fn(*mut SmbcCtx) -> OpendirFn,
    readdir: unsafe extern "C" fn(*mut SmbcCtx) -> ReaddirFn,
    closedir: unsafe extern "C" fn(*mut SmbcCtx) -> ClosedirFn,
    stat: unsafe extern "C" fn(*mut SmbcCtx) -> StatFn,
    open: unsafe extern "C" fn(*mut SmbcCtx) -> OpenFn,
    read: unsafe extern "C" fn(*mut SmbcCtx) -> ReadFn,
    close: unsafe extern "C" fn(*mut SmbcCtx) -> CloseFn,
}

/// Serializes every use of libsmbclient in the process.
static LOCK: Mutex<()> = Mutex::new(());
static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();

/// Whether libsmbclient can be loaded on this machine (tests use it to skip).
pub fn library_available() -> bool {
    library().is_ok()
}

fn library() -> Result<&'static Lib, SmbError> {
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|reason| SmbError::Library {
            reason: reason.clone(),
        })
}

fn load() -> Result<Lib, String> {
    load_from(&["libsmbclient.so.0", "libsmbclient.so"])
}

/// The first of `names` that loads and has every function dipex uses.
fn load_from(names: &[&str]) -> Result<Lib, String> {
    let mut last = String::new();
    for &name in names {
        // SAFETY: loading libsmbclient runs its (and Samba's) library constructors, which only
        // initialise their own state; the library is never unloaded (it lives in a static).
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return bind(lib),
            Err(e) => {
                // libloading says "dlopen failed"; the loader's own words are its source.
                let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                last = format!("{name}: {why}");
            }
        }
    }
    Err(last)
}

fn bind(lib: libloading::Library) -> Result<Lib, String> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the type given for each symbol is its C prototype in libsmbclient.h
            // (Samba 4.x); the fn pointer stays valid because the library is kept loaded in
            // the returned `Lib`, which lives in a static for the rest of the process.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: {e}", $name))?
        };
    }
    Ok(Lib {
        new_context: sym!("smbc_new_context"),
        free_context: sym!("smbc_free_context"),
        init_context: sym!("smbc_init_context"),
        set_debug: sym!("smbc_setDebug"),
        set_user_data: sym!("smbc_setOptionUserData"),
        get_user_data: sym!("smbc_getOptionUserData"),
        set_auth: sym!("smbc_setFunctionAuthDataWithContext"),
        set_protocols: sym!("smbc_setOptionProtocols"),
        set_no_anonymous: sym!("smbc_setOptionNoAutoAnonymousLogin"),
        set_timeout: sym!("smbc_setTimeout"),
        set_port: sym!("smbc_setPort"),
        opendir: sym!("smbc_getFunctionOpendir"),
        readdir: sym!("smbc_getFunctionReaddir"),
        closedir: sym!("smbc_getFunctionClosedir"),
        stat: sym!("smbc_getFunctionStat"),
        open: sym!("smbc_getFunctionOpen"),
        read: sym!("smbc_getFunctionRead"),
        close: sym!("smbc_getFunctionClose"),
        _lib: lib,
    })
}

/// What the authentication callback hands to libsmbclient.
struct Creds {
    workgroup: CString,
    user: CString,
    password: CString,
}

/// Copy `src` into the C buffer `dst` of `len` bytes, NUL-terminated, cut if too long.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes (or null, or `len <= 0`: nothing is written).
unsafe fn copy_out(dst: *mut c_char, len: c_int, src: &CStr) {
    if dst.is_null() || len <= 0 {
        return;
    }
    let bytes = src.to_bytes();
    let n = bytes.len().min(len as usize - 1);
    // SAFETY: `n + 1 <= len` bytes are written, within the buffer the caller vouched for; the
    // source is a live CStr of at least `n` bytes and does not overlap a libsmbclient buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), dst, n);
        *dst.add(n) = 0;
    }
}

/// libsmbclient's authentication callback: the workgroup, user and password of the context.
unsafe extern "C" fn auth(
    ctx: *mut SmbcCtx,
    _server: *const c_char,
    _share: *const c_char,
    wg: *mut c_char,
    wglen: c_int,
    un: *mut c_char,
    unlen: c_int,
    pw: *mut c_char,
    pwlen: c_int,
) {
    let Some(Ok(lib)) = LIB.get().map(Result::as_ref) else {
        return;
    };
    // SAFETY: libsmbclient calls this with the context it was set on; its user data is the
    // `Creds` the `Session` owning the context set, which outlives the context (the session
    // frees the context before dropping the creds).
    unsafe {
        let creds = (lib.get_user_data)(ctx).cast::<Creds>();
        if creds.is_null() {
            return;
        }
        let creds = &*creds;
        // SAFETY: the buffers and lengths are libsmbclient's, as documented for this callback.
        copy_out(wg, wglen, &creds.workgroup);
        copy_out(un, unlen, &creds.user);
        copy_out(pw, pwlen, &creds.password);
    }
}

/// One initialised libsmbclient context, freed on drop. Only used with [`LOCK`] held.
struct Session<'a> {
    lib: &'static Lib,
    cfg: &'a SmbConfig,
    ctx: *mut SmbcCtx,
    /// Read by the authentication callback through the context's user data.
    _creds: Box<Creds>,
}

fn cstring(cfg: &SmbConfig, step: Step, what: &str, s: &str) -> Result<CString, SmbError> {
    CString::new(s).map_err(|_| SmbError::Failed {
        location: cfg.location(),
        step,
        file: None,
        errno: None,
        attempts: 1,
        message: format!("the {what} contains a NUL character"),
    })
}

impl<'a> Session<'a> {
    fn new(lib: &'static Lib, cfg: &'a SmbConfig) -> Result<Session<'a>, SmbError> {
        let creds = Box::new(Creds {
            workgroup: cstring(cfg, Step::Setup, "workgroup", &cfg.workgroup)?,
            user: cstring(cfg, Step::Setup, "user name", &cfg.user)?,
            password: cstring(cfg, Step::Setup, "password", &cfg.password)?,
        });
        let timeout_ms = c_int::try_from(cfg.timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: plain calls of libsmbclient's context API in the documented order (new, set
        // options, init); the context pointer is checked for null before use; the user data
        // points at `creds`, kept alive in the returned session until the context is freed.
        unsafe {
            let ctx = (lib.new_context)();
            if ctx.is_null() {
                return Err(errno_err(
                    cfg,
                    Step::Setup,
                    None,
                    io::Error::last_os_error(),
                ));
            }
            (lib.set_debug)(ctx, 0);
            (lib.set_user_data)(ctx, (&*creds as *const Creds).cast_mut().cast::<c_void>());
            (lib.set_auth)(ctx, auth);
            (lib.set_protocols)(ctx, c"SMB2_02".as_ptr(), c"SMB3".as_ptr());
            (lib.set_no_anonymous)(ctx, 1);
            (lib.set_timeout)(ctx, timeout_ms);
            if let Some(port) = cfg.port {
                (lib.set_port)(ctx, port);
            }
            if (lib.init_context)(ctx).is_null() {
                let e = io::Error::last_os_error();
                (lib.free_context)(ctx, 0);
                return Err(errno_err(cfg, Step::Setup, None, e));
            }
            Ok(Session {
                lib,
                cfg,
                ctx,
                _creds: creds,
            })
        }
    }

    fn url(&self, step: Step, file: Option<&str>) -> Result<CString, SmbError> {
        cstring(self.cfg, step, "path", &self.cfg.url(file))
    }

    fn list(&self) -> Result<Vec<RemoteFile>, SmbError> {
        let url = self.url(Step::List, None)?;
        let mut names = Vec::new();
        // SAFETY: the function pointers come from this initialised context; the directory
        // handle is checked for null, only used with this context, and closed once on every
        // path; `__errno_location` is the calling thread's errno; each
        // dirent is read before the next readdir call (which may reuse its memory), and its
        // `name` is the NUL-terminated string libsmbclient documents.
        unsafe {
            let opendir = (self.lib.opendir)(self.ctx);
            let readdir = (self.lib.readdir)(self.ctx);
            let closedir = (self.lib.closedir)(self.ctx);
            let dir = opendir(self.ctx, url.as_ptr());
            if dir.is_null() {
                return Err(self.err(Step::List, None, io::Error::last_os_error()));
            }
            loop {
                // errno tells the end of the folder (unchanged) from an error (set).
                *libc::__errno_location() = 0;
                let entry = readdir(self.ctx, dir);
                if entry.is_null() {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error().is_some_and(|n| n != 0) {
                        closedir(self.ctx, dir);
                        return Err(self.err(Step::List, None, e));
                    }
                    break;
                }
                if (*entry).smbc_type == SMBC_FILE {
                    let name = CStr::from_ptr((*entry).name.as_ptr());
                    names.push(name.to_string_lossy().into_owned());
                }
            }
            closedir(self.ctx, dir);
        }
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let st = self.stat(&name)?;
            let modified = jiff::Timestamp::new(st.st_mtime, st.st_mtime_nsec as i32).ok();
            files.push(RemoteFile {
                name,
                size: u64::try_from(st.st_size).ok(),
                modified,
            });
        }
        Ok(files)
    }

    fn stat(&self, name: &str) -> Result<libc::stat, SmbError> {
        let url = self.url(Step::Stat, Some(name))?;
        // SAFETY: `st` is a zeroed `struct stat` (all-integer, so zero is valid) that
        // libsmbclient fills; the URL is a live C string.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let stat = (self.lib.stat)(self.ctx);
            if stat(self.ctx, url.as_ptr(), &mut st) < 0 {
                return Err(self.err(Step::Stat, Some(name), io::Error::last_os_error()));
            }
            Ok(st)
        }
    }

    fn download(
        &self,
        name: &str,
        to: &mut dyn Write,
        written: &mut bool,
    ) -> Result<u64, SmbError> {
        let url = self.url(Step::Open, Some(name))?;
        let file = Some(name);
        // SAFETY: the handle is checked for null, used only with this context, and closed
        // exactly once on every path; reads go into `buf`, at most `buf.len()` bytes.
        unsafe {
            let open = (self.lib.open)(self.ctx);
            let read = (self.lib.read)(self.ctx);
            let close = (self.lib.close)(self.ctx);
            let fh = open(self.ctx, url.as_ptr(), libc::O_RDONLY, 0);
            if fh.is_null() {
                return Err(self.err(Step::Open, file, io::Error::last_os_error()));
            }
            let size = match self.stat(name) {
                Ok(st) => u64::try_from(st.st_size).ok(),
                Err(e) => {
                    close(self.ctx, fh);
                    return Err(e);
                }
            };
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            let result = loop {
                let n = read(self.ctx, fh, buf.as_mut_ptr().cast::<c_void>(), buf.len());
                if n < 0 {
                    break Err(self.err(Step::Read, file, io::Error::last_os_error()));
                }
                if n == 0 {
                    break Ok(total);
                }
                *written = true;
                let n = n as usize;
                if let Err(e) = to.write_all(&buf[..n]) {
                    break Err(SmbError::Failed {
                        location: self.cfg.location(),
                        step: Step::WriteLocal,
                        file: file.map(str::to_owned),
                        errno: None,
                        attempts: 1,
                        message: e.to_string(),
                    });
                }
                total += n as u64;
            };
            close(self.ctx, fh);
            let total = result?;
            if let Some(size) = size
                && total != size
            {
                return Err(SmbError::Failed {
                    location: self.cfg.location(),
                    step: Step::Read,
                    file: file.map(str::to_owned),
                    errno: None,
                    attempts: 1,
                    message: format!("got {total} bytes of {size}"),
                });
            }
            Ok(total)
        }
    }

    fn err(&self, step: Step, file: Option<&str>, e: io::Error) -> SmbError {
        errno_err(self.cfg, step, file, e)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: the context came from `smbc_new_context` + `smbc_init_context` and is freed
        // exactly once; `1` also closes its connections. The creds it points at are dropped
        // after this.
        unsafe {
            (self.lib.free_context)(self.ctx, 1);
        }
    }
}

fn errno_err(cfg: &SmbConfig, step: Step, file: Option<&str>, e: io::Error) -> SmbError {
    let errno = e.raw_os_error();
    if matches!(errno, Some(libc::EACCES) | Some(libc::EPERM)) {
        return SmbError::Denied {
            location: cfg.location(),
            step,
            file: file.map(str::to_owned),
            user: cfg.user.clone(),
        };
    }
    let message = match errno {
        Some(libc::ENOENT) => "no such share, folder or file".to_string(),
        Some(libc::ENODEV) => "no such share".to_string(),
        Some(libc::ENOTDIR) => "not a folder".to_string(),
        _ => e.to_string(),
    };
    SmbError::Failed {
        location: cfg.location(),
        step,
        file: file.map(str::to_owned),
        errno,
        attempts: 1,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_maximum() {
        let waits: Vec<u64> = (1..=7)
            .map(|a| backoff(DEFAULT_WAIT, a).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            backoff(Duration::from_millis(10), 3),
            Duration::from_millis(40)
        );
        assert_eq!(backoff(DEFAULT_WAIT, u32::MAX), MAX_WAIT);
    }

    #[test]
    fn smb_host_forms() {
        let p = |h| parse_host(h).unwrap();
        assert_eq!(
            p("10.0.0.5/opus"),
            ("10.0.0.5".into(), None, "opus".into(), String::new())
        );
        assert_eq!(
            p("10.0.0.5/opus/dumps/løn"),
            ("10.0.0.5".into(), None, "opus".into(), "dumps/løn".into())
        );
        assert_eq!(
            p("127.0.0.1:4445/opus/"),
            ("127.0.0.1".into(), Some(4445), "opus".into(), String::new())
        );
        assert_eq!(
            p(r"\\fileserver\share\OPUS"),
            ("fileserver".into(), None, "share".into(), "OPUS".into())
        );
        assert_eq!(
            p("smb://fileserver/share"),
            ("fileserver".into(), None, "share".into(), String::new())
        );
        assert!(parse_host("10.0.0.5").is_err());
        assert!(parse_host("").is_err());
        assert!(parse_host("10.0.0.5:x/s").is_err());
    }

    #[test]
    fn config_hides_the_password_and_splits_the_domain() {
        let c = SmbConfig::new("10.0.0.5:445/opus/in", r"KOMMUNE\svc-opus", "hunter2xyz").unwrap();
        assert_eq!(c.workgroup, "KOMMUNE");
        assert_eq!(c.user, "svc-opus");
        assert_eq!(c.location(), "//10.0.0.5:445/opus/in");
        assert_eq!(c.url(Some("a b.xml")), "smb://10.0.0.5/opus/in/a%20b.xml");
        assert!(!format!("{c:?}").contains("hunter2xyz"));
        let e = SmbConfig::new("nohost", "u", "hunter2xyz").unwrap_err();
        assert!(e.to_string().contains("smb_host"));
    }

    #[test]
    fn a_missing_library_says_what_to_install() {
        // No such library: the loader's reason names the file.
        let reason = load_from(&["libdipex-no-such-smbclient.so.0"])
            .err()
            .expect("cannot load");
        assert!(
            reason.contains("libdipex-no-such-smbclient.so.0"),
            "{reason}"
        );
        let e = SmbError::Library { reason };
        assert!(
            e.to_string()
                .starts_with("SMB source needs libsmbclient (Debian: apt install libsmbclient)"),
            "{e}"
        );
        // A library that loads but is not libsmbclient: the first missing function is named.
        let reason = load_from(&["libc.so.6"]).err().expect("not libsmbclient");
        assert!(reason.starts_with("smbc_new_context: "), "{reason}");
    }
}
