//! A small DAWA-like HTTP server on 127.0.0.1 for the tests (on the test kit's HTTP server):
//! answers each request through a handler and records the raw request URLs.

use dipex_testkit::http::{FnServer, Request, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the handler answers.
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering (for timeout tests).
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Self {
        Reply {
            status,
            body: format!("{{\"type\":\"error\",\"status\":{status}}}"),
            delay: Duration::ZERO,
        }
    }
}

/// A datavask answer with `kategori` and one result per id.
pub fn wash(kategori: &str, ids: &[&str]) -> String {
    let results: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({
                "adresse": {"id": id, "status": 1, "vejnavn": "Testvej"},
                "aktueladresse": {"id": id, "status": 1, "vejnavn": "Testvej"},
                "vaskeresultat": {"afstand": 0, "forskelle": {}, "parsetadresse": {}, "ukendtetokens": []}
            })
        })
        .collect();
    serde_json::json!({"kategori": kategori, "resultater": results}).to_string()
}

/// An address object as DAWA's `/adresser/{id}?struktur=mini` answers it (an access address,
/// from `/adgangsadresser/{id}?struktur=mini`, has the same shape without floor and door).
pub fn mini(id: &str, betegnelse: &str) -> String {
    serde_json::json!({
        "id": id,
        "status": 1,
        "darstatus": 3,
        "vejkode": "0042",
        "vejnavn": "Testvej",
        "adresseringsvejnavn": "Testvej",
        "husnr": "1",
        "etage": "2",
        "dør": "tv",
        "supplerendebynavn": null,
        "postnr": "8000",
        "postnrnavn": "Aarhus C",
        "stormodtagerpostnr": null,
        "stormodtagerpostnrnavn": null,
        "kommunekode": "0751",
        "adgangsadresseid": "0a3f5090-48fe-32b8-e044-0003ba298018",
        "x": 10.2,
        "y": 56.15,
        "href": format!("https://dawa.example/adresser/{id}"),
        "betegnelse": betegnelse
    })
    .to_string()
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub base: String,
    requests: Arc<Mutex<Vec<String>>>,
    _server: FnServer,
}

impl TestServer {
    /// Start a server whose `handler(path, decoded betegnelse)` answers every request.
    pub fn start(handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let server = FnServer::start(move |req: &Request| {
            let url = if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            seen.lock().unwrap().push(url);
            let betegnelse = req
                .query
                .split('&')
                .find_map(|p| p.strip_prefix("betegnelse="))
                .map(percent_decode)
                .unwrap_or_default();
            let reply = handler(&req.path, &betegnelse);
            if !reply.delay.is_zero() {
                std::thread::sleep(reply.delay);
            }
            Some(Response {
                status: reply.status,
                content_type: Some("application/json"),
                headers: Vec::new(),
                body: reply.body.into_bytes(),
            })
        });
        TestServer {
            base: server.url(),
            requests,
            _server: server,
        }
    }

    /// The raw request URLs (path and query) received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The paths (without query) received so far.
    pub fn paths(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|u| u.split('?').next().unwrap_or_default().to_string())
            .collect()
    }
}

/// Decode `%XX` escapes (and `+` as space) into UTF-8 text.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 after decoding")
}
