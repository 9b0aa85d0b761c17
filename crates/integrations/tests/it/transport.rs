//! Tests of the FTP/FTPS transport (`dipex_integrations::transport::ftp`) against real servers on
//! loopback: in-process libunftp servers (explicit FTPS with an rcgen certificate, or plain FTP),
//! some with a storage wrapper that misbehaves like real servers do (refuses dot files or renames
//! over existing files, fails or drops the connection halfway through an upload), and a small proxy
//! that refuses `MLSD`.
//!
//! Every server binds port 0 for its control connection and every passive data connection, so
//! tests never fight over ports; each server has its own tokio runtime, and the client under test
//! runs synchronously on the test thread. Control connections reach libunftp through a relay that
//! works around a race in its `AUTH TLS` handling (see [`relay`]).

use std::fmt::Debug;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dipex_integrations::transport::ftp::{
    self, FtpConfig, FtpError, FtpSecurity, RemoteFile, Step,
};
use libunftp::ServerBuilder;
use tempfile::TempDir;
use tokio::io::{AsyncRead, ReadBuf};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, DefaultUser, Principal};
use unftp_core::storage::{self, ErrorKind, Fileinfo, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

const USER: &str = "plan2learn";
const PASSWORD: &str = "Hemmeligt-Kodeord-42";

// ---------------------------------------------------------------------------------------------
// Test server

/// A self-signed certificate for `localhost` and `127.0.0.1`, as PEM files.
struct TestCert {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn test_cert() -> TestCert {
    cert_for(&["localhost", "127.0.0.1"])
}

/// A self-signed end-entity certificate (not a CA, which webpki would refuse) for `names`.
fn cert_for(names: &[&str]) -> TestCert {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    TestCert {
        _dir: dir,
        cert,
        key,
    }
}

/// Ways the storage behind the server misbehaves.
#[derive(Debug, Clone, Copy, Default)]
struct Quirks {
    /// Refuse to store files whose names start with a dot (550).
    refuse_dot_files: bool,
    /// Refuse to rename onto an existing file (550), like servers on Windows.
    refuse_rename_over: bool,
    /// Fail an upload after this many bytes; the server answers 451.
    fail_after: Option<u64>,
    /// After this many bytes of an upload, drop the control connection and the data connection.
    cut_after: Option<u64>,
}

struct TestServer {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    root: TempDir,
    /// How often a quirk made the storage refuse something.
    refusals: Arc<AtomicUsize>,
}

impl TestServer {
    /// A libunftp server on 127.0.0.1; with `tls`, explicit FTPS with that certificate.
    fn start(tls: Option<&TestCert>, quirks: Quirks) -> TestServer {
        let root = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls = tls.map(|c| (c.cert.clone(), c.key.clone()));
        let dir = root.path().to_path_buf();
        let refusals = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&refusals);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                // Keep a handle on the control connection, so that the storage can drop it.
                let socket = socket.into_std().unwrap();
                let control = Arc::new(socket.try_clone().unwrap());
                let socket = tokio::net::TcpStream::from_std(socket).unwrap();
                let Ok((to_server, server_side)) = loopback_pair().await else {
                    return;
                };
                tokio::spawn(relay(socket, to_server));
                let dir = dir.clone();
                let counter = Arc::clone(&counter);
                let storage = move || Quirky {
                    inner: Filesystem::new(dir.clone()).unwrap(),
                    quirks,
                    control: Arc::clone(&control),
                    refusals: Arc::clone(&counter),
                };
                let mut builder =
                    ServerBuilder::with_authenticator(Box::new(storage), Arc::new(OneUser))
                        .greeting("dipex test server")
                        .binder(AnyPort);
                if let Some((cert, key)) = &tls {
                    builder = builder.ftps(cert.clone(), key.clone());
                }
                let server = builder.build().unwrap();
                tokio::spawn(server.service(server_side));
            }
        });
        TestServer {
            runtime: Some(runtime),
            port,
            root,
            refusals,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The names in the server's root directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn config(&self, security: FtpSecurity) -> FtpConfig {
        let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, security);
        cfg.port = self.port;
        cfg.timeout = Duration::from_secs(10);
        cfg
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Two ends of a fresh loopback TCP connection.
async fn loopback_pair() -> std::io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (connected, accepted) = tokio::join!(
        tokio::net::TcpStream::connect(listener.local_addr()?),
        listener.accept()
    );
    Ok((connected?, accepted?.0))
}

/// Relays a control connection between the client and libunftp, holding back the client's
/// bytes for a moment after the server's `234` reply to `AUTH TLS`.
///
/// libunftp 0.24 switches its control connection to TLS through a message from a spawned task,
/// so a ClientHello that arrives before that message is parsed as an FTP command and answered
/// in plain text (the client then sees "received corrupt message of type InvalidContentType"),
/// a few times in a hundred connections. Real servers switch before reading on; the pause keeps
/// the test server from failing the client for libunftp's race.
async fn relay(client: tokio::net::TcpStream, server: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upgrading = Arc::new(AtomicBool::new(false));
    let upgrade_seen = Arc::clone(&upgrading);
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from_server.read(&mut buf).await {
            if buf[..n].starts_with(b"234 ") {
                upgrade_seen.store(true, Ordering::SeqCst);
            }
            if to_client.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_client.shutdown().await;
    };
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf).await {
            if upgrading.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if to_server.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    };
    tokio::join!(down, up);
}

fn tls_verified(cert: &TestCert) -> FtpSecurity {
    FtpSecurity::ExplicitTls {
        verify: true,
        ca_file: Some(cert.cert.clone()),
    }
}

/// Accepts one user with one password.
#[derive(Debug)]
struct OneUser;

#[async_trait]
impl Authenticator for OneUser {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != USER {
            return Err(AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(PASSWORD) {
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal {
            username: username.to_owned(),
        })
    }
}

/// Passive data ports chosen by the OS, so parallel tests never collide.
#[derive(Debug)]
struct AnyPort;

#[async_trait]
impl libunftp::options::Binder for AnyPort {
    async fn bind(
        &mut self,
        local_addr: IpAddr,
        _passive_ports: RangeInclusive<u16>,
    ) -> std::io::Result<tokio::net::TcpSocket> {
        let socket = match local_addr {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(local_addr, 0))?;
        Ok(socket)
    }
}

/// The filesystem backend with [`Quirks`].
#[derive(Debug)]
struct Quirky {
    inner: Filesystem,
    quirks: Quirks,
    control: Arc<std::net::TcpStream>,
    refusals: Arc<AtomicUsize>,
}

#[async_trait]
impl StorageBackend<DefaultUser> for Quirky {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        StorageBackend::<DefaultUser>::supported_features(&self.inner)
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<Meta> {
        self.inner.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<Vec<Fileinfo<PathBuf, Meta>>>
    where
        Meta: storage::Metadata,
    {
        self.inner.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> storage::Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.inner.get(user, path, start_pos).await
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &DefaultUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> storage::Result<u64> {
        let dot = path
            .as_ref()
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if self.quirks.refuse_dot_files && dot {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            return Err(ErrorKind::PermissionDenied.into());
        }
        let (limit, cut) = match (self.quirks.fail_after, self.quirks.cut_after) {
            (_, Some(n)) => (n, true),
            (Some(n), None) => (n, false),
            (None, None) => return self.inner.put(user, input, path, start_pos).await,
        };
        let input = Limited {
            inner: input,
            left: limit,
            cut: cut.then(|| Arc::clone(&self.control)),
        };
        self.inner.put(user, input, path, start_pos).await
    }

    async fn del<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        self.inner.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        self.inner.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        from: P,
        to: P,
    ) -> storage::Result<()> {
        if self.quirks.refuse_rename_over
            && self
                .inner
                .metadata(user, to.as_ref().to_path_buf())
                .await
                .is_ok()
        {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            return Err(ErrorKind::PermissionDenied.into());
        }
        self.inner.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        self.inner.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> storage::Result<()> {
        self.inner.cwd(user, path).await
    }
}

/// An upload stream that fails after `left` bytes, and with `cut` also drops the control
/// connection: the server "disconnects mid-upload".
struct Limited<R> {
    inner: R,
    left: u64,
    cut: Option<Arc<std::net::TcpStream>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Limited<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            // A local failure (451) unless the connection is to be cut as well.
            let err = match &self.cut {
                Some(control) => {
                    let _ = control.shutdown(Shutdown::Both);
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut mid-upload")
                }
                None => std::io::Error::other("test server fails mid-upload"),
            };
            return Poll::Ready(Err(err));
        }
        let max = buf
            .remaining()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut tmp = vec![0u8; max];
        let mut part = ReadBuf::new(&mut tmp);
        match Pin::new(&mut self.inner).poll_read(cx, &mut part) {
            Poll::Ready(Ok(())) => {
                let n = part.filled().len();
                buf.put_slice(part.filled());
                self.left -= n as u64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// A proxy in front of a plain FTP server that answers `MLSD` with 500 itself, like servers that
/// do not know RFC 3659. Data connections go straight to the server (the client uses the
/// control connection's address with the port from `PASV`).
fn refuse_mlsd_proxy(server_port: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut to_server = server;
                let mut reply = client.try_clone().unwrap();
                let mut lines = BufReader::new(client);
                let mut line = String::new();
                while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                    if line.to_ascii_uppercase().starts_with("MLSD") {
                        let _ = reply.write_all(b"500 MLSD not understood\r\n");
                    } else if to_server.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    line.clear();
                }
                let _ = to_server.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Files like plan2learn's: CRLF lines with Danish letters, an empty file, and a ~1 MB file.
fn local_files(dir: &Path) -> Vec<(PathBuf, String, Vec<u8>)> {
    let csv = "\"BrugerId\";\"Navn\"\r\n\"1\";\"Primær Ærø Øster-Åby\"\r\n"
        .as_bytes()
        .to_vec();
    let big: Vec<u8> = (0..1_048_583u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    [
        ("bruger.csv", csv),
        ("leder.csv", Vec::new()),
        ("engagement.csv", big),
    ]
    .into_iter()
    .map(|(name, bytes)| {
        let path = dir.join(format!("local-{name}"));
        std::fs::write(&path, &bytes).unwrap();
        (path, name.to_owned(), bytes)
    })
    .collect()
}

fn uploads(files: &[(PathBuf, String, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .map(|(p, n, _)| (p.clone(), n.clone()))
        .collect()
}

fn assert_no_password(err: &FtpError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(PASSWORD), "password in error: {shown}");
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Upload over verified FTPS arrives byte-identical (CRLF, UTF-8, empty, 1 MB), leaves no
/// temporary files, and a second upload replaces the files.
#[test]
fn ftps_upload_is_complete_and_replaces_existing_files() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = server.config(tls_verified(&cert));

    ftp::upload_files(&cfg, &uploads(&files)).unwrap();
    for (_, name, bytes) in &files {
        assert_eq!(&std::fs::read(server.path(name)).unwrap(), bytes, "{name}");
    }
    assert_eq!(
        server.names(),
        ["bruger.csv", "engagement.csv", "leder.csv"]
    );

    // Again, with new content: every file is replaced.
    for (path, _, bytes) in &files {
        let mut changed = bytes.clone();
        changed.extend_from_slice(b"second run\r\n");
        std::fs::write(path, &changed).unwrap();
    }
    ftp::upload_files(&cfg, &uploads(&files)).unwrap();
    for (_, name, bytes) in &files {
        let mut expected = bytes.clone();
        expected.extend_from_slice(b"second run\r\n");
        assert_eq!(
            std::fs::read(server.path(name)).unwrap(),
            expected,
            "{name}"
        );
    }
    assert_eq!(
        server.names(),
        ["bruger.csv", "engagement.csv", "leder.csv"]
    );
}

/// Uploading into a directory named in the config (`CWD`), and a missing directory names `CWD`.
#[test]
fn upload_goes_into_the_configured_directory() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    std::fs::create_dir(server.path("inbox")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let mut cfg = server.config(tls_verified(&cert));
    cfg.dir = Some("inbox".to_owned());

    ftp::upload_files(&cfg, &uploads(&files[..1])).unwrap();
    assert_eq!(
        std::fs::read(server.path("inbox/bruger.csv")).unwrap(),
        files[0].2
    );

    cfg.dir = Some("missing".to_owned());
    let err = ftp::upload_files(&cfg, &uploads(&files[..1])).unwrap_err();
    assert_eq!(err.step(), Step::Cwd, "{err}");
    assert_eq!(err.file(), Some("missing"));
    assert_eq!(err.code(), Some(550), "{err}");
}

/// A wrong password names the login step and the server's 530 reply, never the password.
#[test]
fn wrong_password_names_login_and_the_530_reply() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    let mut cfg = server.config(tls_verified(&cert));
    cfg.password = "Forkert-Kodeord-99".to_owned();

    let err = ftp::list(&cfg).unwrap_err();
    assert_eq!(err.step(), Step::Login, "{err}");
    assert_eq!(err.code(), Some(530), "{err}");
    assert_eq!(err.server(), format!("127.0.0.1:{}", server.port));
    let text = err.to_string();
    assert!(text.contains("login"), "{text}");
    assert!(text.contains("530"), "{text}");
    assert!(!text.contains("Forkert-Kodeord-99"), "{text}");
    assert!(!format!("{err:?}").contains("Forkert-Kodeord-99"));
}

/// With verification on, a certificate the client does not trust fails the TLS handshake.
#[test]
fn untrusted_certificate_fails_the_tls_handshake() {
    let cert = test_cert();
    let other = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());

    // Only the webpki roots: a self-signed certificate is unknown.
    let no_ca = FtpSecurity::ExplicitTls {
        verify: true,
        ca_file: None,
    };
    // Trusting some other certificate does not help either.
    for security in [no_ca, tls_verified(&other)] {
        let err = ftp::list(&server.config(security)).unwrap_err();
        assert_eq!(err.step(), Step::TlsHandshake, "{err}");
        let text = err.to_string();
        assert!(text.contains("TLS handshake"), "{text}");
        assert!(text.to_lowercase().contains("certificate"), "{text}");
        assert_no_password(&err);
    }

    // A trusted certificate for another host name: verification checks the name too.
    let elsewhere = cert_for(&["ftp.example.org"]);
    let misnamed = TestServer::start(Some(&elsewhere), Quirks::default());
    let err = ftp::list(&misnamed.config(tls_verified(&elsewhere))).unwrap_err();
    assert_eq!(err.step(), Step::TlsHandshake, "{err}");

    // verify: false accepts the self-signed certificate (legacy servers).
    let cfg = server.config(FtpSecurity::ExplicitTls {
        verify: false,
        ca_file: None,
    });
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    ftp::upload_files(&cfg, &uploads(&files[..1])).unwrap();
    assert_eq!(
        std::fs::read(server.path("bruger.csv")).unwrap(),
        files[0].2
    );
}

/// A server without TLS refuses `AUTH TLS`: the error names that step and the reply.
#[test]
fn server_without_tls_refuses_auth_tls() {
    let cert = test_cert();
    let server = TestServer::start(None, Quirks::default());
    let err = ftp::list(&server.config(tls_verified(&cert))).unwrap_err();
    assert_eq!(err.step(), Step::AuthTls, "{err}");
    let reply = err.reply().expect("a server reply");
    assert!(
        reply.starts_with(&err.code().unwrap().to_string()),
        "{reply}"
    );
    assert!((500..600).contains(&err.code().unwrap()), "{err}");
    assert!(err.to_string().contains("AUTH TLS"), "{err}");
    assert_no_password(&err);
}

/// A CA file that is missing or holds no certificate is reported before connecting.
#[test]
fn bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [dir.path().join("missing.pem"), empty] {
        let mut cfg = FtpConfig::new(
            "127.0.0.1",
            USER,
            PASSWORD,
            FtpSecurity::ExplicitTls {
                verify: true,
                ca_file: Some(path.clone()),
            },
        );
        // Nothing listens here; the CA file must fail first.
        cfg.port = 9;
        let err = ftp::list(&cfg).unwrap_err();
        assert_eq!(err.step(), Step::TlsSetup, "{err}");
        assert_eq!(err.file(), Some(path.display().to_string().as_str()));
    }
}

/// A missing local file or a remote name with a path is reported before connecting.
#[test]
fn bad_upload_list_is_refused_before_connecting() {
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    // Nothing listens here: the checks must fail first.
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, FtpSecurity::Plain);
    cfg.port = 9;
    let missing = local.path().join("organisation.csv");
    let mut list = uploads(&files);
    list.push((missing.clone(), "organisation.csv".to_owned()));
    let err = ftp::upload_files(&cfg, &list).unwrap_err();
    assert_eq!(err.step(), Step::ReadLocal, "{err}");
    assert_eq!(err.file(), Some(missing.display().to_string().as_str()));

    let err =
        ftp::upload_files(&cfg, &[(files[0].0.clone(), "sub/bruger.csv".to_owned())]).unwrap_err();
    assert_eq!(err.step(), Step::Stor, "{err}");
    assert!(matches!(err, FtpError::Setup { .. }), "{err}");
}

/// A server that drops the connection halfway through an upload: the error names the file and
/// `STOR`, the final name never exists, and the partial temporary file is removed.
#[test]
fn disconnect_mid_upload_leaves_no_partial_file() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            cut_after: Some(200_000),
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = server.config(tls_verified(&cert));

    let err = ftp::upload_files(&cfg, &uploads(&files[2..])).unwrap_err();
    assert_eq!(err.step(), Step::Stor, "{err}");
    assert_eq!(err.file(), Some("engagement.csv"), "{err}");
    assert!(err.to_string().contains("engagement.csv"), "{err}");
    assert_no_password(&err);
    assert!(!server.path("engagement.csv").exists());
    assert_eq!(server.names(), Vec::<String>::new(), "temporary file left");
}

/// A server that fails an upload with an error reply: the error carries the reply, the files
/// before it arrived, and no temporary or final file of the failed one exists.
#[test]
fn refused_upload_reports_the_reply_and_cleans_up() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            fail_after: Some(300_000),
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = server.config(tls_verified(&cert));

    let err = ftp::upload_files(&cfg, &uploads(&files)).unwrap_err();
    assert_eq!(err.step(), Step::Stor, "{err}");
    assert_eq!(err.file(), Some("engagement.csv"), "{err}");
    assert_eq!(err.code(), Some(451), "{err}");
    assert!(err.reply().unwrap().starts_with("451"), "{err}");
    assert_eq!(server.names(), ["bruger.csv", "leder.csv"]);
}

/// Servers that refuse dot files and renames over existing files still get atomic replacements.
#[test]
fn quirky_server_without_dot_files_or_rename_over_still_gets_the_files() {
    let cert = test_cert();
    let server = TestServer::start(
        Some(&cert),
        Quirks {
            refuse_dot_files: true,
            refuse_rename_over: true,
            ..Quirks::default()
        },
    );
    let local = tempfile::tempdir().unwrap();
    let files = local_files(local.path());
    let cfg = server.config(tls_verified(&cert));
    for round in 0..2 {
        ftp::upload_files(&cfg, &uploads(&files)).unwrap();
        for (_, name, bytes) in &files {
            assert_eq!(
                &std::fs::read(server.path(name)).unwrap(),
                bytes,
                "{round} {name}"
            );
        }
        assert_eq!(
            server.names(),
            ["bruger.csv", "engagement.csv", "leder.csv"]
        );
    }
    // One refused dot file per run (the client then remembers), and three refused renames over
    // the files of the first round.
    assert_eq!(server.refusals.load(Ordering::SeqCst), 2 + 3);
}

/// `list` gives names, sizes and UTC modification times (directories left out), and `download`
/// streams a file byte-identical; over FTPS and over plain FTP (LOS).
#[test]
fn list_and_download_over_ftps_and_plain_ftp() {
    let cert = test_cert();
    for tls in [true, false] {
        let server = TestServer::start(tls.then_some(&cert), Quirks::default());
        let security = if tls {
            tls_verified(&cert)
        } else {
            FtpSecurity::Plain
        };
        let cfg = server.config(security);
        let expected = seed_listing(&server);

        let mut listed = ftp::list(&cfg).unwrap();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(listed, expected, "tls={tls}");

        let big = std::fs::read(server.path("Pers_nye_20210323.csv")).unwrap();
        let mut got = Vec::new();
        let n = ftp::download(&cfg, "Pers_nye_20210323.csv", &mut got).unwrap();
        assert_eq!(n, big.len() as u64);
        assert!(got == big, "download differs (tls={tls})");

        let err = ftp::download(&cfg, "missing.csv", &mut Vec::new()).unwrap_err();
        assert_eq!(err.step(), Step::Retr, "{err}");
        assert_eq!(err.file(), Some("missing.csv"));
        assert_eq!(err.code(), Some(550), "{err}");
    }
}

/// A server that refuses `MLSD` is listed with `NLST`, `SIZE` and `MDTM` instead.
#[test]
fn list_falls_back_to_nlst_when_mlsd_is_refused() {
    let server = TestServer::start(None, Quirks::default());
    let expected = seed_listing(&server);
    let mut cfg = server.config(FtpSecurity::Plain);
    cfg.port = refuse_mlsd_proxy(server.port);

    let mut listed = ftp::list(&cfg).unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    // NLST cannot tell directories from files: the directory comes back without size or time
    // (libunftp refuses SIZE and MDTM on it).
    let (dirs, files): (Vec<RemoteFile>, Vec<RemoteFile>) =
        listed.into_iter().partition(|f| f.name == "archive");
    assert_eq!(files, expected);
    assert_eq!(dirs.len(), 1);
}

/// Files with known content and modification times, and a directory; returns the expected
/// listing of the files, sorted by name.
fn seed_listing(server: &TestServer) -> Vec<RemoteFile> {
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    let files = [
        (
            "Org_inital_20210101.csv",
            b"a;b\r\n".to_vec(),
            "2021-01-01T00:00:05Z",
        ),
        ("Pers_nye_20210323.csv", big, "2021-03-23T15:32:41Z"),
        ("STAM_tom.csv", Vec::new(), "2024-12-31T23:59:59Z"),
    ];
    std::fs::create_dir(server.path("archive")).unwrap();
    let mut expected = Vec::new();
    for (name, bytes, modified) in files {
        std::fs::write(server.path(name), &bytes).unwrap();
        let modified: jiff::Timestamp = modified.parse().unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(server.path(name))
            .unwrap();
        file.set_modified(SystemTime::from(modified)).unwrap();
        expected.push(RemoteFile {
            name: name.to_owned(),
            size: Some(bytes.len() as u64),
            modified: Some(modified),
        });
    }
    expected
}
