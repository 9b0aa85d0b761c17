//! The small HTTP/1.1 server under dipex's loopback test servers (OS2mo, OS2sync): `std::net`, a
//! thread per connection, keep-alive, `Content-Length` or chunked request bodies, answers with
//! `Content-Length`. A server supplies a [`Handler`] for routing and semantics; this crate only
//! speaks HTTP.
//!
//! A malformed request (bad header bytes, `Content-Length` or chunk size) is answered `400` and
//! the connection closed. A handler answering `None` makes the server close the connection
//! without an answer, which is how the servers inject transport failures.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a test server does with requests.
pub trait Handler: Send + Sync + 'static {
    /// The answer, or `None` to drop the connection without one.
    fn handle(&self, req: &Request) -> Option<Response>;
    /// True once the server should stop accepting and serving.
    fn stopped(&self) -> bool;
    /// A `server:` header for every answer (e.g. `Kestrel`), if the real server sends one.
    fn server_header(&self) -> Option<&'static str> {
        None
    }
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path as sent, without the query.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// Lower-case names, trimmed values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client asked to close the connection after this request.
    pub close: bool,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// No body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain-text body.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            content_type: Some("text/plain; charset=utf-8"),
            body: body.as_bytes().to_vec(),
            ..Response::empty(status)
        }
    }

    /// A JSON body, `content-type: application/json`.
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response {
            content_type: Some("application/json"),
            body: serde_json::to_vec(v).expect("serialise JSON"),
            ..Response::empty(status)
        }
    }

    /// The same answer with another content type.
    pub fn with_content_type(self, content_type: &'static str) -> Response {
        Response {
            content_type: Some(content_type),
            ..self
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Accept connections until the handler says it stopped; each connection gets a thread named
/// `thread_name`.
pub fn accept_loop<H: Handler>(listener: TcpListener, handler: Arc<H>, thread_name: &str) {
    for stream in listener.incoming() {
        if handler.stopped() {
            break;
        }
        let Ok(stream) = stream else { continue };
        let handler = handler.clone();
        let _ = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                let _ = serve_connection(stream, &*handler);
            });
    }
}

fn serve_connection<H: Handler>(stream: TcpStream, handler: &H) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        // Wait for the next request, looking at the stop flag now and then.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        loop {
            if handler.stopped() {
                return Ok(());
            }
            match reader.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        let server = handler.server_header();
        let req = match read_request(&mut reader) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let resp = Response::text(400, &e.to_string());
                write_response(&mut writer, &resp, server, true)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match handler.handle(&req) {
            Some(resp) => {
                write_response(&mut writer, &resp, server, req.close)?;
                if req.close {
                    return Ok(());
                }
            }
            None => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut buf = Vec::new();
    reader
        .by_ref()
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "header is not UTF-8"))
}

fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Request> {
    let line = read_line(reader)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let mut headers = Vec::new();
    loop {
        let h = read_line(reader)?;
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        read_chunked(reader, &mut body)?;
    } else if let Some(v) = get("content-length") {
        let n = v
            .parse::<usize>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    let conn = get("connection").unwrap_or_default().to_ascii_lowercase();
    let close = conn.contains("close") || (version == "HTTP/1.0" && !conn.contains("keep-alive"));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Ok(Request {
        method,
        path,
        query,
        headers,
        body,
        close,
    })
}

/// A chunked body, with its trailers.
fn read_chunked(reader: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunk size");
    loop {
        let size_line = read_line(reader)?;
        let size = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(bad());
        }
    }
}

fn write_response(
    w: &mut TcpStream,
    r: &Response,
    server: Option<&str>,
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    // 204 and 304 answers have no body and no length.
    let has_body = !matches!(r.status, 204 | 304);
    if has_body {
        if let Some(ct) = r.content_type {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n", r.body.len()));
    }
    if let Some(s) = server {
        head.push_str(&format!("server: {s}\r\n"));
    }
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(if close {
        "connection: close\r\n\r\n"
    } else {
        "\r\n"
    });
    w.write_all(head.as_bytes())?;
    if has_body {
        w.write_all(&r.body)?;
    }
    w.flush()
}

/// A server that answers every request with one function: for tests that need a route or two
/// (the function answers `None` to drop the connection). Stops when dropped.
pub struct FnServer {
    addr: SocketAddr,
    handler: Arc<FnHandler>,
    accept: Option<std::thread::JoinHandle<()>>,
}

type AnswerFn = dyn Fn(&Request) -> Option<Response> + Send + Sync;

struct FnHandler {
    answer: Box<AnswerFn>,
    stop: AtomicBool,
}

impl Handler for FnHandler {
    fn handle(&self, req: &Request) -> Option<Response> {
        (self.answer)(req)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl FnServer {
    pub fn start(
        answer: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
    ) -> FnServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let handler = Arc::new(FnHandler {
            answer: Box::new(answer),
            stop: AtomicBool::new(false),
        });
        let h = handler.clone();
        let accept = std::thread::Builder::new()
            .name("fn-server-accept".into())
            .spawn(move || accept_loop(listener, h, "fn-server-conn"))
            .expect("spawn accept thread");
        FnServer {
            addr,
            handler,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FnServer {
    fn drop(&mut self) {
        self.handler.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Echo(AtomicBool);

    impl Handler for Echo {
        fn handle(&self, req: &Request) -> Option<Response> {
            match req.path.as_str() {
                "/drop" => None,
                _ => Some(Response::text(
                    200,
                    &format!(
                        "{} {} {} {}",
                        req.method,
                        req.path,
                        req.query,
                        String::from_utf8_lossy(&req.body)
                    ),
                )),
            }
        }
        fn stopped(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
        fn server_header(&self) -> Option<&'static str> {
            Some("Test")
        }
    }

    fn exchange(port: u16, raw: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn bodies_keep_alive_bad_requests_and_dropped_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let echo = Arc::new(Echo(AtomicBool::new(false)));
        let h = echo.clone();
        std::thread::spawn(move || accept_loop(listener, h, "test-http"));

        // Two requests on one connection (keep-alive), the second chunked and closing.
        let out = exchange(
            port,
            "POST /a?x=1 HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc\
             POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             2\r\nde\r\n1\r\nf\r\n0\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains("server: Test\r\n"), "{out}");
        assert!(out.contains("POST /a x=1 abc"), "{out}");
        assert!(out.ends_with("POST /b  def"), "{out}");

        let out = exchange(port, "POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request"), "{out}");
        assert!(out.contains("bad Content-Length"), "{out}");

        assert_eq!(exchange(port, "GET /drop HTTP/1.1\r\n\r\n"), "");
        echo.0.store(true, Ordering::SeqCst);
    }
}
