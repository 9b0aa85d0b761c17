//! KDS' Adressevælger / Adressevask (`specs/dar.md`), the address register that replaced the
//! public DAWA API in 2026, and dipex's default.
//!
//! * A lookup of street `S` in postal code `P` is one wash:
//!   `GET {base}/vask/?adresse=<"S, P">&token=…` answering
//!   `{"vaskestatus": {"kode": k}, "vaskeresultat": {"adresse_id_lokalid": id}}`. `k > 0` with an
//!   id is a unique match (`Found`); `k <= 0`, or a null id, is a definitive `NotFound`. An empty
//!   text is never sent (the service refuses it with 400): it is `NotFound` without a request.
//! * The text of ids is read in bulk, at most [`CHUNK`] ids a request:
//!   `GET {base}/adresser?id_lokalids=a,b,…&token=…` (`{"adresser": […]}`, or HTTP 404 when none
//!   of them is found), then the ids not found there from `GET {base}/husnumre?id_lokalids=…`
//!   (access addresses). An id found in neither is a definitive `None`. The text is built from
//!   the structured fields in DAWA's `betegnelse` form ("Vejnavn 12, 2. tv, Tillægsby, 8000
//!   Bynavn"), so exports read the same as with DAWA; `adressebetegnelse` is the fallback.
//! * The health probe is `GET {base}/adresser/soeg?tekst=test&maksimum=1&token=…`.
//!
//! No HTTP answer, any other status (5xx, but also 401/403/429/431) or a body that is not the
//! expected JSON is an `Err`: a failure, never a miss. The token is sent with every request and
//! never shown: messages show `token=***`.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::http::{BaseUrl, agent, get, percent_encode};
use super::offline::{Parts, push_betegnelse};
use super::{AddressRegister, DarError, Lookup};

/// Ids per bulk request (the service refuses headers over about 16 KB; `specs/dar.md` §2).
pub const CHUNK: usize = 100;

/// A client of Adressevælger.
#[derive(Debug)]
pub struct Adressevaelger {
    agent: ureq::Agent,
    base: BaseUrl,
    token: String,
    connections: usize,
}

impl Adressevaelger {
    /// A client for the service at `base_url` (normally [`super::DEFAULT_BASE_URL`]) with this
    /// `token`; `timeout` bounds each request; up to `connections` requests at once.
    pub fn new(
        base_url: &str,
        token: &str,
        timeout: Duration,
        connections: usize,
    ) -> Result<Self, DarError> {
        Ok(Adressevaelger {
            agent: agent(timeout, connections),
            base: BaseUrl::parse(base_url)?,
            token: token.to_string(),
            connections: connections.max(1),
        })
    }

    /// The base URL as shown in messages.
    pub fn base_url(&self) -> &str {
        &self.base.shown
    }

    /// GET `path?params&token=…`: the status and body of the answer.
    fn call(&self, path: &str, params: &str) -> Result<(u16, Vec<u8>, String), DarError> {
        let (url, _) = self.base.url_with(
            path,
            &format!("{params}&token={}", percent_encode(&self.token)),
        );
        let (_, shown) = self.base.url_with(path, &format!("{params}&token=***"));
        let (status, body) = get(&self.agent, &url, &shown)?;
        Ok((status, body, shown))
    }

    /// One bulk request of `ids` at `path` (`/adresser` or `/husnumre`), whose answer lists the
    /// objects under `member`: their texts by id (404: none found).
    fn bulk(
        &self,
        path: &str,
        member: &str,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, String>, DarError> {
        let list = ids
            .iter()
            .map(|id| id.hyphenated().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let (status, body, shown) = self.call(path, &format!("id_lokalids={list}"))?;
        match status {
            404 => return Ok(HashMap::new()),
            200..=299 => {}
            _ => return Err(DarError::Status { url: shown, status }),
        }
        let bad = |message: String| DarError::BadResponse {
            url: shown.clone(),
            message,
        };
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let objects = answer
            .get(member)
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad(format!("no list {member:?}")))?;
        let mut out = HashMap::new();
        for o in objects {
            let o: Object = serde_json::from_value(o.clone()).map_err(|e| bad(e.to_string()))?;
            let id = uuid::Uuid::parse_str(o.id_lokalid.trim())
                .map_err(|_| bad(format!("id_lokalid {:?} is not a UUID", o.id_lokalid)))?;
            let text = o
                .text()
                .ok_or_else(|| bad(format!("{member}: {id} has no address text")))?;
            out.insert(id, text);
        }
        Ok(out)
    }

    /// Texts of at most [`CHUNK`] ids: addresses first, then access addresses.
    fn describe_chunk(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
        let mut found = self.bulk("/adresser", "adresser", ids)?;
        let rest: Vec<uuid::Uuid> = ids
            .iter()
            .copied()
            .filter(|id| !found.contains_key(id))
            .collect();
        if !rest.is_empty() {
            found.extend(self.bulk("/husnumre", "husnumre", &rest)?);
        }
        Ok(ids.iter().map(|id| (*id, found.get(id).cloned())).collect())
    }
}

impl AddressRegister for Adressevaelger {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        let (street, postal_code) = (street.trim(), postal_code.trim());
        let text = match (street.is_empty(), postal_code.is_empty()) {
            (true, true) => return Ok(Lookup::NotFound),
            (false, false) => format!("{street}, {postal_code}"),
            (false, true) => street.to_string(),
            (true, false) => postal_code.to_string(),
        };
        let (status, body, shown) =
            self.call("/vask/", &format!("adresse={}", percent_encode(&text)))?;
        if !(200..300).contains(&status) {
            return Err(DarError::Status { url: shown, status });
        }
        let answer: Wash = serde_json::from_slice(&body).map_err(|e| DarError::BadResponse {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        if answer.vaskestatus.kode <= 0 {
            return Ok(Lookup::NotFound);
        }
        match answer.vaskeresultat.and_then(|r| r.adresse_id_lokalid) {
            None => Ok(Lookup::NotFound),
            Some(id) => uuid::Uuid::parse_str(id.trim())
                .map(Lookup::Found)
                .map_err(|_| DarError::BadResponse {
                    url: shown,
                    message: format!("adresse_id_lokalid {id:?} is not a UUID"),
                }),
        }
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        Ok(self.describe_chunk(&[id])?.remove(&id).flatten())
    }

    fn describe_many(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let chunks: Vec<&[uuid::Uuid]> = ids.chunks(CHUNK).collect();
        let mut out = HashMap::with_capacity(ids.len());
        for part in super::parallel(chunks, self.connections, |c| self.describe_chunk(c)) {
            out.extend(part?);
        }
        Ok(out)
    }

    fn probe(&self) -> Result<String, DarError> {
        let (status, _, shown) = self.call("/adresser/soeg", "tekst=test&maksimum=1")?;
        if !(200..300).contains(&status) {
            return Err(DarError::Status { url: shown, status });
        }
        Ok(format!("Adressevælger at {} answers", self.base.shown))
    }

    fn connections(&self) -> usize {
        self.connections
    }
}

/// The part of a wash answer that is used.
#[derive(Debug, Deserialize)]
struct Wash {
    vaskestatus: WashStatus,
    vaskeresultat: Option<WashResult>,
}

#[derive(Debug, Deserialize)]
struct WashStatus {
    kode: i64,
}

#[derive(Debug, Deserialize)]
struct WashResult {
    adresse_id_lokalid: Option<String>,
}

/// An `adresse` or a `husnummer` object, the fields used.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Object {
    id_lokalid: String,
    etagebetegnelse: Option<String>,
    doerbetegnelse: Option<String>,
    adressebetegnelse: Option<String>,
    adgangsadressebetegnelse: Option<String>,
    husnummer: Option<Box<Object>>,
    vejnavn: Option<String>,
    husnummertekst: Option<String>,
    postnummer: Option<PostalCode>,
    supplerendebynavn: Option<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostalCode {
    postnr: Option<serde_json::Value>,
    navn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    navn: Option<String>,
}

impl Object {
    /// The address text, in DAWA's `betegnelse` form when the structured fields are there.
    fn text(&self) -> Option<String> {
        let access = self.husnummer.as_deref().unwrap_or(self);
        let s = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
        let street = s(&access.vejnavn);
        if !street.is_empty() {
            let postal = access
                .postnummer
                .as_ref()
                .and_then(|p| p.postnr.as_ref())
                .map(|v| match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            let postal_name = s(&access.postnummer.as_ref().and_then(|p| p.navn.clone()));
            let town = s(&access
                .supplerendebynavn
                .as_ref()
                .and_then(|t| t.navn.clone()));
            let (number, floor, door) = (
                s(&access.husnummertekst),
                s(&self.etagebetegnelse),
                s(&self.doerbetegnelse),
            );
            let mut out = String::new();
            push_betegnelse(
                &mut out,
                &Parts {
                    street: &street,
                    number: &number,
                    floor: &floor,
                    door: &door,
                    town: &town,
                    postal: &postal,
                    postal_name: &postal_name,
                },
            );
            return Some(out);
        }
        [&self.adressebetegnelse, &self.adgangsadressebetegnelse]
            .into_iter()
            .flatten()
            .map(|t| t.trim())
            .find(|t| !t.is_empty())
            .map(str::to_string)
    }
}
