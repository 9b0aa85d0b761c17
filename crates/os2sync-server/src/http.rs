//! A small HTTP/1.1 server on `std::net`: a thread per connection, keep-alive, `Content-Length`
//! or chunked request bodies, answers with `Content-Length`. Routing and semantics live in `api`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Options;
use crate::api::State;

/// State shared by all connection threads.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub opts: Options,
    pub stop: AtomicBool,
}

/// A parsed request.
pub(crate) struct Request {
    pub method: String,
    /// Path as sent, without the query.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// Lower-case names, trimmed values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
pub(crate) struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Response {
    /// No body (`Ok()`, `Unauthorized()`, `NotFound()` in ASP.NET).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// A plain-text body (a `string` result in ASP.NET).
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A JSON body.
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: Some("application/json; charset=utf-8"),
            body: serde_json::to_vec(v).expect("serialise JSON"),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
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

/// Accept connections until `stop` is set; each connection gets its own thread.
pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("os2sync-server-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &shared);
            });
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        // Wait for the next request, looking at the stop flag now and then.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        loop {
            if shared.stop.load(Ordering::SeqCst) {
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
        let req = match read_request(&mut reader) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                write_response(&mut writer, &Response::text(400, &e.to_string()), true)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let resp = crate::api::handle(shared, &req);
        write_response(&mut writer, &resp, req.close)?;
        if req.close {
            return Ok(());
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

/// A chunked body (Kestrel accepts them, and some clients send them for streamed bodies).
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

fn write_response(w: &mut TcpStream, r: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if let Some(ct) = r.content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nserver: Kestrel\r\n",
        r.body.len()
    ));
    head.push_str(if close {
        "connection: close\r\n\r\n"
    } else {
        "\r\n"
    });
    w.write_all(head.as_bytes())?;
    w.write_all(&r.body)?;
    w.flush()
}
