//! An FTP/FTPS server on loopback for tests: libunftp in its own tokio runtime, explicit FTPS
//! with an rcgen certificate (or plain FTP), one user ([`USER`] / [`PASSWORD`]), passive ports
//! chosen by the OS, and storage that can misbehave like real servers do ([`Quirks`]: refusing dot
//! files, renames over existing files or of one name, failing or dropping the connection
//! halfway through an upload). [`vsftpd`] and [`pureftpd`] run the real Debian vsftpd and pure-ftpd for
//! the tests that must agree with a real server. Control connections reach libunftp through a relay that works around a race in its
//! `AUTH TLS` handling (see [`relay`]). Used by dipex's transport, plan2learn and CLI tests.

pub mod pureftpd;
pub mod vsftpd;

use std::fmt::Debug;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use libunftp::ServerBuilder;
use tempfile::TempDir;
use tokio::io::{AsyncRead, ReadBuf};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, DefaultUser, Principal};
use unftp_core::storage::{self, ErrorKind, Fileinfo, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

/// The one user the server accepts.
pub const USER: &str = "plan2learn";
pub const PASSWORD: &str = "Hemmeligt-Kodeord-42";

/// A self-signed certificate for `localhost` and `127.0.0.1`, as PEM files.
pub struct TestCert {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn test_cert() -> TestCert {
    cert_for(&["localhost", "127.0.0.1"])
}

/// A self-signed end-entity certificate (not a CA, which webpki would refuse) for `names`.
pub fn cert_for(names: &[&str]) -> TestCert {
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
pub struct Quirks {
    /// Refuse to store files whose names start with a dot (550).
    pub refuse_dot_files: bool,
    /// Refuse to rename onto an existing file (550), like servers on Windows.
    pub refuse_rename_over: bool,
    /// Refuse every rename of the file with this name (550), e.g. of one upload's temporary
    /// name, as a server that will not let that file be put in place.
    pub refuse_rename_from: Option<&'static str>,
    /// Fail an upload after this many bytes; the server answers 451.
    pub fail_after: Option<u64>,
    /// After this many bytes of an upload, drop the control connection and the data connection.
    pub cut_after: Option<u64>,
    /// After this many bytes of a download, drop the control connection and the data connection.
    pub cut_download_after: Option<u64>,
}

pub struct TestServer {
    runtime: Option<tokio::runtime::Runtime>,
    pub port: u16,
    root: TempDir,
    /// How often a quirk made the storage refuse something.
    pub refusals: Arc<AtomicUsize>,
}

impl TestServer {
    /// A libunftp server on 127.0.0.1; with `tls`, explicit FTPS with that certificate.
    pub fn start(tls: Option<&TestCert>, quirks: Quirks) -> TestServer {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The names in the server's root directory, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
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
        let reader = self.inner.get(user, path, start_pos).await?;
        Ok(match self.quirks.cut_download_after {
            Some(left) => Box::new(Limited {
                inner: reader,
                left,
                cut: Some(Arc::clone(&self.control)),
            }),
            None => reader,
        })
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
        let refused_name = self
            .quirks
            .refuse_rename_from
            .is_some_and(|n| from.as_ref().file_name().is_some_and(|f| f == n));
        let over = self.quirks.refuse_rename_over
            && self
                .inner
                .metadata(user, to.as_ref().to_path_buf())
                .await
                .is_ok();
        if refused_name || over {
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
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut mid-transfer")
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
