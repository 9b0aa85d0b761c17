//! OS2sync's routes and their semantics: case-insensitive routing, failure injection, the
//! unsupported-media-type filter, `ApiKey`/`CVR` authorisation, the controllers' validation, the
//! "FK ORG" state (replace on post, soft delete), hierarchy jobs, and the request log.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::os2sync::Recorded;
use crate::os2sync::http::{Request, Response, Shared};
use crate::os2sync::model::{self, Stored};

/// Everything the server holds.
#[derive(Default)]
pub(crate) struct State {
    pub ous: BTreeMap<Uuid, Stored>,
    pub users: BTreeMap<Uuid, Stored>,
    pub deleted_ous: BTreeSet<Uuid>,
    pub deleted_users: BTreeSet<Uuid>,
    pub requests: Vec<Recorded>,
    /// (POST/DELETE requests still to fail, status to answer)
    pub fail: (usize, u16),
    jobs: HashMap<String, Job>,
}

/// A hierarchy job: 404s still to give, then the result (read once).
struct Job {
    misses_left: u32,
    created: String,
    result: Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ou,
    User,
}

enum Route<'a> {
    Health,
    Post(Kind),
    All(Kind),
    Read(Kind, &'a str),
    Delete(Kind, &'a str),
    HierarchyStart,
    HierarchyResult(&'a str),
}

/// Match a route as ASP.NET does: segments compared ignoring case, one trailing slash allowed.
/// `Err` is 404 (no route) or 405 (a route for the path, but not for this method).
fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, u16> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let Some(rest) = path.strip_prefix('/') else {
        return Err(404);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let kind = match lower.get(1).copied() {
        Some("orgunit") => Some(Kind::Ou),
        Some("user") => Some(Kind::User),
        _ => None,
    };
    let r = match (method, lower.as_slice(), kind) {
        ("GET", ["manage", "health"], _) => Route::Health,
        (_, ["manage", "health"], _) => return Err(405),
        ("POST", ["api", _], Some(k)) => Route::Post(k),
        ("GET", ["api", _, "all"], Some(k)) => Route::All(k),
        ("GET", ["api", _, _], Some(k)) => Route::Read(k, segs[2]),
        ("DELETE", ["api", _, _], Some(k)) => Route::Delete(k, segs[2]),
        (_, ["api", _] | ["api", _, _], Some(_)) => return Err(405),
        ("GET", ["api", "hierarchy"], _) => Route::HierarchyStart,
        ("GET", ["api", "hierarchy", _], _) => Route::HierarchyResult(segs[2]),
        (_, ["api", "hierarchy"] | ["api", "hierarchy", _], _) => return Err(405),
        _ => return Err(404),
    };
    Ok(r)
}

/// Answer one request and record it.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let resp = answer(shared, &mut st, req);
    st.requests.push(Recorded {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: serde_json::from_slice(&req.body).ok(),
        raw_body: req.body.clone(),
        status: resp.status,
    });
    resp
}

fn answer(shared: &Shared, st: &mut State, req: &Request) -> Response {
    if matches!(req.method.as_str(), "POST" | "DELETE") && st.fail.0 > 0 {
        st.fail.0 -= 1;
        return Response::text(st.fail.1, "injected failure (dipex OS2sync test server)");
    }
    let r = match route(&req.method, &req.path) {
        Ok(r) => r,
        Err(status) => return Response::empty(status),
    };
    match r {
        Route::Health => Response::text(200, "Healthy"),
        Route::Post(kind) => {
            // MVC's UnsupportedContentTypeFilter runs before the action (and its auth check).
            if !is_json_content_type(req.header("content-type")) {
                return Response::empty(415);
            }
            if let Err(r) = authorize(shared, req) {
                return r;
            }
            post(st, kind, &req.body)
        }
        Route::All(kind) => {
            if let Err(r) = authorize(shared, req) {
                return r;
            }
            let ids: Vec<String> = match kind {
                Kind::Ou => st.ous.keys().map(Uuid::to_string).collect(),
                Kind::User => st.users.keys().map(Uuid::to_string).collect(),
            };
            Response::json(200, &json!(ids))
        }
        Route::Read(kind, id) => {
            if let Err(r) = authorize(shared, req) {
                return r;
            }
            let Ok(uuid) = Uuid::parse_str(id) else {
                return Response::empty(404);
            };
            let found = match kind {
                Kind::Ou => st.ous.get(&uuid).map(model::ou_output),
                Kind::User => st.users.get(&uuid).map(model::user_output),
            };
            match found {
                Some(v) => Response::json(200, &v),
                None => Response::empty(404),
            }
        }
        Route::Delete(kind, id) => {
            if let Err(r) = authorize(shared, req) {
                return r;
            }
            // Queued even when unknown (or not a uuid); FK processing would fail later.
            if let Ok(uuid) = Uuid::parse_str(id) {
                match kind {
                    Kind::Ou => {
                        st.ous.remove(&uuid);
                        st.deleted_ous.insert(uuid);
                    }
                    Kind::User => {
                        st.users.remove(&uuid);
                        st.deleted_users.insert(uuid);
                    }
                }
            }
            Response::empty(200)
        }
        Route::HierarchyStart => {
            if let Err(r) = authorize(shared, req) {
                return r;
            }
            let only_ous = req.header("onlyous") == Some("true");
            let result = model::hierarchy(st.ous.values(), st.users.values(), only_ous);
            let id = Uuid::new_v4().to_string();
            st.jobs.insert(
                id.clone(),
                Job {
                    misses_left: shared.opts.hierarchy_delay,
                    created: crate::os2sync::time::now_iso(),
                    result,
                },
            );
            Response::text(200, &id)
        }
        Route::HierarchyResult(id) => {
            // OS2sync checks neither ApiKey nor CVR here; ids are matched exactly.
            match st.jobs.get_mut(id) {
                None => Response::empty(404),
                Some(job) if job.misses_left > 0 => {
                    job.misses_left -= 1;
                    Response::empty(404)
                }
                Some(_) => {
                    let job = st.jobs.remove(id).expect("job present");
                    Response::json(
                        200,
                        &json!({"Created": job.created, "Result": job.result, "Status": 0}),
                    )
                }
            }
        }
    }
}

/// `application/json`, `text/json` or `application/*+json` (Newtonsoft's input formatter).
fn is_json_content_type(ct: Option<&str>) -> bool {
    let Some(ct) = ct else { return false };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json"
        || media == "text/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
}

/// `ApiKey` (when configured) and the effective CVR (configured one wins over the header).
fn authorize(shared: &Shared, req: &Request) -> Result<String, Response> {
    if let Some(key) = &shared.opts.api_key
        && req.header("apikey") != Some(key.as_str())
    {
        return Err(Response::empty(401));
    }
    let configured = shared.opts.cvr.as_deref().filter(|c| !c.is_empty());
    let header = req.header("cvr").filter(|c| !c.is_empty());
    configured
        .or(header)
        .map(str::to_string)
        .ok_or_else(|| Response::empty(401))
}

fn post(st: &mut State, kind: Kind, body: &[u8]) -> Response {
    if body.is_empty() {
        return Response::text(400, "A non-empty request body is required.");
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Response::text(400, &format!("the request body is not JSON: {e}")),
    };
    let parsed = match kind {
        Kind::Ou => model::parse_ou(&value),
        Kind::User => model::parse_user(&value),
    };
    let mut stored = match parsed {
        Ok(s) => s,
        Err(text) => return Response::text(400, &text),
    };
    let echo = match kind {
        Kind::Ou => model::ou_output(&stored),
        Kind::User => stored.json.clone(),
    };
    match kind {
        Kind::Ou => {
            st.deleted_ous.remove(&stored.uuid);
            st.ous.insert(stored.uuid, stored);
        }
        Kind::User => {
            // `Status` is read-side only: a posted user is active.
            stored.status = 1;
            st.deleted_users.remove(&stored.uuid);
            st.users.insert(stored.uuid, stored);
        }
    }
    Response::json(200, &echo)
}
