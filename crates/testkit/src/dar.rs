//! Test support: a server on 127.0.0.1 speaking KDS' Adressevælger / Adressevask protocol as
//! `specs/dar.md` describes it, on `dipex_testkit::http`.
//!
//! * `GET /vask/?adresse=<text>&token=…`: `{"vaskestatus": {"kode", "tekst"}, "vaskeresultat":
//!   {…, "adresse_id_lokalid"}}`; kode 1 for a unique match, 0 for none (null id), -1 for several;
//!   HTTP 400 on an empty `adresse`.
//! * `GET /adresser?id_lokalids=a,b,…`, `GET /husnumre?id_lokalids=…`: the objects found, HTTP
//!   404 when none is found, 400 on an empty list, 431 on a request line over 16 KB or more than
//!   400 ids. `GET /adresser/{id}`, `GET /husnumre/{id}`: one object or 404.
//! * `GET /adresser/soeg?tekst=…&maksimum=1`: the health probe, 200.
//! * Every request needs `token` of at least 10 characters (else 401).
//!
//! The addresses come from a CSV in DAWA's export format (`id,vejnavn,husnr,etage,dør,postnr,
//! postnrnavn[,supplerendebynavn]`), the file dipex's offline register reads; an address's
//! access address (husnummer) id is derived from its street, number and postal code. Texts are
//! matched after normalising case, dots, commas and spaces, as `"<street> <number>[, <floor>.
//! <door>], <postal code>"`. With [`DarServer::accept_all`], every text that has no match in the
//! file washes to a derived id instead (for benchmarks on synthetic data), and the id is known
//! afterwards.
//!
//! Knobs, changeable while running: a latency before every answer, a failure mode
//! ([`Mode::Status`], [`Mode::Drop`], [`Mode::Hang`]), and counters of requests and of the most
//! requests served at once.

use crate::http::{Handler, Request, Response, accept_loop};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers as the protocol says.
    Normal,
    /// Every request is answered with this HTTP status (e.g. 503).
    Status(u16),
    /// Every connection is dropped without an answer.
    Drop,
    /// Requests are read but never answered (until the server stops).
    Hang,
}

/// One address of the register.
#[derive(Debug, Clone)]
struct Addr {
    id: uuid::Uuid,
    access_id: uuid::Uuid,
    street: String,
    number: String,
    floor: String,
    door: String,
    postal: String,
    postal_name: String,
    town: String,
}

#[derive(Default)]
struct Data {
    by_id: HashMap<uuid::Uuid, Addr>,
    by_access_id: HashMap<uuid::Uuid, Addr>,
    /// Normalised text → ids (several: ambiguous).
    index: HashMap<String, Vec<uuid::Uuid>>,
}

struct State {
    data: Mutex<Data>,
    accept_all: AtomicBool,
    mode: Mutex<Mode>,
    latency_us: AtomicU64,
    stopped: AtomicBool,
    requests: AtomicU64,
    washes: AtomicU64,
    busy: AtomicUsize,
    max_busy: AtomicUsize,
    log: Mutex<Vec<String>>,
}

/// A running server; stopped when dropped.
pub struct DarServer {
    state: Arc<State>,
    port: u16,
}

/// Lower case; dots and commas as spaces; one space between words.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace(['.', ','], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn key(street_and_number: &str, floor: &str, door: &str, postal: &str) -> String {
    normalise(&format!("{street_and_number} {floor} {door} {postal}"))
}

/// Percent-decoding of a query value (`+` as space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request) -> HashMap<String, String> {
    req.query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn access_id(street: &str, number: &str, postal: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("husnummer {street} {number} {postal}").as_bytes(),
    )
}

impl Data {
    fn add(&mut self, a: Addr) {
        let street_number = format!("{} {}", a.street, a.number);
        self.index
            .entry(key(&street_number, &a.floor, &a.door, &a.postal))
            .or_default()
            .push(a.id);
        self.by_access_id
            .entry(a.access_id)
            .or_insert_with(|| a.clone());
        self.by_id.insert(a.id, a);
    }
}

impl Addr {
    fn husnummer(&self) -> serde_json::Value {
        let mut h = serde_json::json!({
            "id_lokalid": self.access_id.to_string(),
            "status": "3",
            "vejnavn": self.street,
            "husnummertekst": self.number,
            "postnummer": {"postnr": self.postal, "navn": self.postal_name},
            "navngivenvejkommunedel": {"vejkode": "0042", "kommune": "0751"},
            "adgangsadressebetegnelse": format!("{} {}, {} {}", self.street, self.number, self.postal, self.postal_name),
        });
        if !self.town.is_empty() {
            h["supplerendebynavn"] = serde_json::json!({"navn": self.town});
        }
        h
    }

    fn adresse(&self) -> serde_json::Value {
        let mut a = serde_json::json!({
            "id_lokalid": self.id.to_string(),
            "status": "3",
            "adressebetegnelse": format!("{} {}, {} {}", self.street, self.number, self.postal, self.postal_name),
            "husnummer": self.husnummer(),
        });
        if !self.floor.is_empty() {
            a["etagebetegnelse"] = serde_json::json!(self.floor);
        }
        if !self.door.is_empty() {
            a["doerbetegnelse"] = serde_json::json!(self.door);
        }
        a
    }
}

impl DarServer {
    /// A server with the addresses of a CSV in DAWA's export format.
    pub fn from_csv(csv: &[u8]) -> std::io::Result<DarServer> {
        let mut data = Data::default();
        let mut reader = csv::Reader::from_reader(csv);
        let headers = reader.headers().map_err(std::io::Error::other)?.clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let get = |r: &csv::StringRecord, name: &str| {
            col(name)
                .and_then(|i| r.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        for r in reader.records() {
            let r = r.map_err(std::io::Error::other)?;
            let Ok(id) = uuid::Uuid::parse_str(&get(&r, "id")) else {
                continue;
            };
            let (street, number, postal) =
                (get(&r, "vejnavn"), get(&r, "husnr"), get(&r, "postnr"));
            data.add(Addr {
                id,
                access_id: access_id(&street, &number, &postal),
                floor: get(&r, "etage"),
                door: get(&r, "dør"),
                postal_name: get(&r, "postnrnavn"),
                town: get(&r, "supplerendebynavn"),
                street,
                number,
                postal,
            });
        }
        Self::start(data)
    }

    /// A server without addresses (use [`DarServer::accept_all`] or add some with
    /// [`DarServer::add`]).
    pub fn empty() -> std::io::Result<DarServer> {
        Self::start(Data::default())
    }

    fn start(data: Data) -> std::io::Result<DarServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            data: Mutex::new(data),
            accept_all: AtomicBool::new(false),
            mode: Mutex::new(Mode::Normal),
            latency_us: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            washes: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            max_busy: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let handler = Arc::new(Server(state.clone()));
        std::thread::Builder::new()
            .name("dar-server".into())
            .spawn(move || accept_loop(listener, handler, "dar-server-conn"))?;
        Ok(DarServer { state, port })
    }

    /// Add one address (`floor`, `door`, `town` may be empty); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        id: uuid::Uuid,
        street: &str,
        number: &str,
        floor: &str,
        door: &str,
        postal: &str,
        postal_name: &str,
        town: &str,
    ) -> uuid::Uuid {
        self.state.data.lock().unwrap().add(Addr {
            id,
            access_id: access_id(street, number, postal),
            street: street.into(),
            number: number.into(),
            floor: floor.into(),
            door: door.into(),
            postal: postal.into(),
            postal_name: postal_name.into(),
            town: town.into(),
        });
        id
    }

    /// The access address (husnummer) id of an address added or loaded.
    pub fn access_id(street: &str, number: &str, postal: &str) -> uuid::Uuid {
        access_id(street, number, postal)
    }

    /// Texts without a match wash to an id derived from the text (`kode` 1) instead of none.
    pub fn accept_all(self) -> DarServer {
        self.state.accept_all.store(true, Ordering::SeqCst);
        self
    }

    /// The base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Wait this long before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    /// How the server answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requests received so far (all paths).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// `/vask/` requests received so far.
    pub fn washes(&self) -> u64 {
        self.state.washes.load(Ordering::SeqCst)
    }

    /// The most requests that were being served at once.
    pub fn max_concurrent(&self) -> usize {
        self.state.max_busy.load(Ordering::SeqCst)
    }

    /// The paths and queries of the requests so far, with the token masked.
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for DarServer {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Server(Arc<State>);

struct Busy<'a>(&'a State);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler for Server {
    fn handle(&self, req: &Request) -> Option<Response> {
        let s = &*self.0;
        s.requests.fetch_add(1, Ordering::SeqCst);
        let now = s.busy.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_busy.fetch_max(now, Ordering::SeqCst);
        let _busy = Busy(s);
        {
            let masked: Vec<&str> = req
                .query
                .split('&')
                .map(|p| {
                    if p.starts_with("token=") {
                        "token=***"
                    } else {
                        p
                    }
                })
                .collect();
            s.log
                .lock()
                .unwrap()
                .push(format!("{} {}?{}", req.method, req.path, masked.join("&")));
        }
        let mode = *s.mode.lock().unwrap();
        match mode {
            Mode::Drop => return None,
            Mode::Hang => {
                while !s.stopped.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return None;
            }
            _ => {}
        }
        let latency = s.latency_us.load(Ordering::SeqCst);
        if latency > 0 {
            std::thread::sleep(Duration::from_micros(latency));
        }
        if let Mode::Status(status) = mode {
            return Some(Response::json(
                status,
                &serde_json::json!({"type": "error", "status": status}),
            ));
        }
        Some(self.answer(req))
    }

    fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }
}

impl Server {
    fn answer(&self, req: &Request) -> Response {
        let s = &*self.0;
        if req.method != "GET" {
            return Response::empty(405);
        }
        if req.path.len() + req.query.len() > 16 * 1024 {
            return Response::text(431, "Request Header Fields Too Large");
        }
        let q = query(req);
        if q.get("token").is_none_or(|t| t.chars().count() < 10) {
            return Response::json(
                401,
                &serde_json::json!({"detail": "token mangler eller er ugyldig"}),
            );
        }
        let path = req.path.trim_end_matches('/');
        match path {
            "/vask" => {
                s.washes.fetch_add(1, Ordering::SeqCst);
                let text = q.get("adresse").map(|t| t.trim()).unwrap_or("");
                if text.is_empty() {
                    return Response::json(400, &serde_json::json!({"detail": "adresse mangler"}));
                }
                self.wash(text)
            }
            "/adresser/soeg" => Response::json(200, &serde_json::json!([])),
            "/adresser" | "/husnumre" => {
                let ids: Vec<&str> = q
                    .get("id_lokalids")
                    .map(|v| {
                        v.split(',')
                            .map(str::trim)
                            .filter(|i| !i.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.is_empty() {
                    return Response::json(
                        400,
                        &serde_json::json!({"detail": "id_lokalids mangler"}),
                    );
                }
                if ids.len() > 400 {
                    return Response::text(431, "Request Header Fields Too Large");
                }
                let data = s.data.lock().unwrap();
                let found: Vec<serde_json::Value> = ids
                    .iter()
                    .filter_map(|i| uuid::Uuid::parse_str(i).ok())
                    .filter_map(|id| {
                        if path == "/adresser" {
                            data.by_id.get(&id).map(Addr::adresse)
                        } else {
                            data.by_access_id.get(&id).map(Addr::husnummer)
                        }
                    })
                    .collect();
                if found.is_empty() {
                    return Response::json(404, &serde_json::json!({"detail": "ikke fundet"}));
                }
                let mut answer = serde_json::Map::new();
                answer.insert(path[1..].to_string(), serde_json::Value::Array(found));
                Response::json(200, &serde_json::Value::Object(answer))
            }
            _ => {
                let one = |prefix: &str| {
                    path.strip_prefix(prefix)
                        .and_then(|i| uuid::Uuid::parse_str(i).ok())
                };
                let data = s.data.lock().unwrap();
                if let Some(id) = one("/adresser/") {
                    return match data.by_id.get(&id) {
                        Some(a) => {
                            Response::json(200, &serde_json::json!({"adresse": a.adresse()}))
                        }
                        None => Response::json(404, &serde_json::json!({"detail": "ikke fundet"})),
                    };
                }
                if let Some(id) = one("/husnumre/") {
                    return match data.by_access_id.get(&id) {
                        Some(a) => {
                            Response::json(200, &serde_json::json!({"husnummer": a.husnummer()}))
                        }
                        None => Response::json(404, &serde_json::json!({"detail": "ikke fundet"})),
                    };
                }
                Response::json(404, &serde_json::json!({"detail": "ukendt sti"}))
            }
        }
    }

    fn wash(&self, text: &str) -> Response {
        let s = &*self.0;
        let mut data = s.data.lock().unwrap();
        let k = normalise(text);
        let ids = data.index.get(&k).cloned().unwrap_or_default();
        let (kode, id) = match ids.as_slice() {
            [one] => (1, Some(*one)),
            [] if s.accept_all.load(Ordering::SeqCst) => {
                // "<street> <number>, <postal code>": a derived address, known from now on.
                let (street_number, postal) = text.rsplit_once(',').unwrap_or((text, ""));
                let (street, number) = street_number
                    .trim()
                    .rsplit_once(' ')
                    .unwrap_or((street_number.trim(), ""));
                let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, k.as_bytes());
                data.add(Addr {
                    id,
                    access_id: access_id(street, number, postal.trim()),
                    street: street.into(),
                    number: number.into(),
                    floor: String::new(),
                    door: String::new(),
                    postal: postal.trim().into(),
                    postal_name: "Synthby".into(),
                    town: String::new(),
                });
                (1, Some(id))
            }
            [] => (0, None),
            _ => (-1, None),
        };
        let tekst = match kode {
            1 => "Adressen er entydigt fundet",
            0 => "Adressen blev ikke fundet",
            _ => "Adressen er ikke entydig",
        };
        let mut result = serde_json::json!({
            "adresse_id_lokalid": id.map(|i| i.to_string()),
            "status": if id.is_some() { serde_json::json!(3) } else { serde_json::Value::Null },
        });
        if let Some(a) = id.and_then(|i| data.by_id.get(&i)) {
            result["adressebetegnelse"] = serde_json::json!(format!(
                "{} {}, {} {}",
                a.street, a.number, a.postal, a.postal_name
            ));
        }
        Response::json(
            200,
            &serde_json::json!({
                "vaskestatus": {"kode": kode, "tekst": tekst},
                "vaskeresultat": result,
            }),
        )
    }
}
