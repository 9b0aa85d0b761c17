//! Reading from OS2mo: a dipex [`Query`] becomes one or more GraphQL filters (long lists are cut
//! into chunks), each read page by page until `next_cursor` is null, several at once up to the
//! configured concurrency. Windows map onto `from_date`/`to_date` exactly
//! (`specs/os2mo-api.md` §2.3); `validities` without arguments then returns the slices in the
//! window, as the embedded store does.

use super::error::Os2moError;
use super::http::Transport;
use super::kinds::{self, ROLE_FACET};
use crate::{Query, Window};
use dipex_model::plan::normalise;
use dipex_model::{Kind, Object, Slice, Validity};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// Values per list filter in one request.
const CHUNK: usize = 500;

/// The document that reads `kind` (every slice's fields, paged).
pub fn read_document(kind: Kind) -> Option<String> {
    let n = kinds::names(kind)?;
    Some(format!(
        "query Read($filter: {ft}, $limit: int, $cursor: Cursor) {{ {c}(filter: $filter, limit: $limit, cursor: $cursor) \
         {{ page_info {{ next_cursor }} objects {{ uuid validities {{ {f} }} }} }} }}",
        ft = n.filter_type,
        c = n.collection,
        f = n.fields
    ))
}

/// The document that lists only the uuids of `kind` (for `mo pull`).
pub fn uuids_document(kind: Kind) -> Option<String> {
    let n = kinds::names(kind)?;
    Some(format!(
        "query Uuids($filter: {ft}, $limit: int, $cursor: Cursor) {{ {c}(filter: $filter, limit: $limit, cursor: $cursor) \
         {{ page_info {{ next_cursor }} objects {{ uuid }} }} }}",
        ft = n.filter_type,
        c = n.collection
    ))
}

/// OS2mo's `registrations` query: one entry per registration (a write) of an object, with the
/// object's model (`employee`, `org_unit`, …), uuid and the registration's start.
pub const REGISTRATIONS_DOCUMENT: &str = "query Registrations($filter: RegistrationFilter, $limit: int, $cursor: Cursor) \
     { registrations(filter: $filter, limit: $limit, cursor: $cursor) \
     { page_info { next_cursor } objects { model uuid start } } }";

/// The model name OS2mo's `registrations` query gives a kind's objects (roles are associations).
pub fn registration_model(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Facet => "facet",
        Kind::Class => "class",
        Kind::ItSystem => "itsystem",
        Kind::OrgUnit => "org_unit",
        Kind::Person => "employee",
        Kind::Engagement => "engagement",
        Kind::Address => "address",
        Kind::ItUser => "ituser",
        Kind::Manager => "manager",
        Kind::Role | Kind::Association => "association",
        Kind::Leave => "leave",
        Kind::Kle => "kle",
        Kind::Organisation => return None,
    })
}

/// The current registration of every object of the given models, as `(model, uuid, start)`.
///
/// OS2mo's registration filter is an overlap test (`start <= registration end` and
/// `registration start <= end`), not "written since": a `start` far in the future therefore
/// selects exactly the registrations still open, one per object, deleted objects included (their
/// open registration is the deletion). Its start changes with every write to the object.
pub fn current_registrations(
    t: &Transport,
    models: &[&str],
) -> Result<Vec<(String, Uuid, jiff::Timestamp)>, Os2moError> {
    let mut filter = Map::new();
    filter.insert("models".into(), json!(models));
    filter.insert("start".into(), json!(OPEN_REGISTRATION));
    // Entries are small: pages ten times the configured size.
    let limit = t.config().page_size.saturating_mul(10).max(1);
    let mut out = Vec::new();
    let mut cursor = Json::Null;
    loop {
        let vars = json!({"filter": filter, "limit": limit, "cursor": cursor});
        let data = t.graphql("list registrations", REGISTRATIONS_DOCUMENT, vars)?;
        let page = data
            .get("registrations")
            .ok_or_else(|| Os2moError::Decode {
                what: "list registrations".into(),
                reason: "no registrations in the answer".into(),
            })?;
        for o in page
            .get("objects")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let bad = |what: &str| Os2moError::Decode {
                what: "list registrations".into(),
                reason: format!("an entry without a valid {what}: {o}"),
            };
            let model = o
                .get("model")
                .and_then(Json::as_str)
                .ok_or_else(|| bad("model"))?;
            let uuid: Uuid = o
                .get("uuid")
                .and_then(Json::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("uuid"))?;
            let start: jiff::Timestamp = o
                .get("start")
                .and_then(Json::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("start"))?;
            out.push((model.to_string(), uuid, start));
        }
        match page.pointer("/page_info/next_cursor") {
            Some(Json::Null) | None => return Ok(out),
            Some(c) => cursor = c.clone(),
        }
    }
}

/// A registration `start` no registration reaches: the filter then keeps only open ones.
pub const OPEN_REGISTRATION: &str = "9999-01-01T00:00:00+00:00";

/// The root organisation.
pub const ORG_DOCUMENT: &str = "query Org { org { uuid user_key name municipality_code } }";

fn date(d: Option<jiff::civil::Date>) -> Json {
    d.map_or(Json::Null, |d| Json::String(kinds::date_text(d)))
}

/// `from_date`/`to_date` for a window. "At a day" leaves `to_date` out (MO: the day itself).
pub fn window_filter(w: &Window, m: &mut Map<String, Json>) {
    match w {
        Window::At(d) => {
            m.insert("from_date".into(), Json::String(kinds::date_text(*d)));
        }
        Window::Range(v) => {
            m.insert("from_date".into(), date(v.from));
            m.insert("to_date".into(), date(v.to));
        }
        Window::All => {
            m.insert("from_date".into(), Json::Null);
            m.insert("to_date".into(), Json::Null);
        }
    }
}

fn strings<T: ToString>(v: &[T]) -> Vec<Json> {
    v.iter().map(|x| Json::String(x.to_string())).collect()
}

fn by_uuids(v: Vec<Json>) -> Json {
    json!({ "uuids": v })
}

/// The filters of a query; `None` when it can match nothing (an empty list, or a filter that
/// does not apply to the kind: the embedded store matches nothing there either).
pub fn filters(q: &Query) -> Option<Vec<Map<String, Json>>> {
    if q.is_void() {
        return None;
    }
    let k = q.kind;
    let has_person = matches!(
        k,
        Kind::Engagement
            | Kind::Address
            | Kind::ItUser
            | Kind::Manager
            | Kind::Role
            | Kind::Association
            | Kind::Leave
    );
    let has_unit = matches!(
        k,
        Kind::Engagement
            | Kind::Address
            | Kind::ItUser
            | Kind::Manager
            | Kind::Role
            | Kind::Association
            | Kind::Kle
    );
    let mut base = Map::new();
    window_filter(&q.window, &mut base);
    if k == Kind::Role {
        base.insert(
            "association_type".into(),
            json!({"facet": {"user_keys": [ROLE_FACET]}}),
        );
    }
    // (key, values, how a chunk of values becomes the filter's value)
    type Wrap = fn(Vec<Json>) -> Json;
    let mut lists: Vec<(&str, Vec<Json>, Wrap)> = Vec::new();
    if let Some(v) = &q.uuids {
        lists.push(("uuids", strings(v), Json::Array));
    }
    if let Some(v) = &q.user_keys {
        lists.push(("user_keys", strings(v), Json::Array));
    }
    if let Some(v) = &q.cpr_numbers {
        if k != Kind::Person {
            return None;
        }
        lists.push((
            "cpr_numbers",
            v.iter()
                .map(|c| Json::String(c.expose().to_string()))
                .collect(),
            Json::Array,
        ));
    }
    if let Some(v) = &q.persons {
        if !has_person {
            return None;
        }
        lists.push(("employee", strings(v), by_uuids));
    }
    if let Some(v) = &q.org_units {
        if !has_unit {
            return None;
        }
        lists.push(("org_unit", strings(v), by_uuids));
    }
    if let Some(v) = &q.itsystems {
        if k != Kind::ItUser {
            return None;
        }
        lists.push(("itsystem", strings(v), by_uuids));
    }
    // Parents: top level (`parent: null`) and named parents are two reads.
    let mut variants: Vec<Map<String, Json>> = vec![base];
    if let Some(parents) = &q.parents {
        let named: Vec<Uuid> = parents.iter().flatten().copied().collect();
        let top = parents.iter().any(Option::is_none);
        match k {
            Kind::OrgUnit => {
                let mut out = Vec::new();
                for b in &variants {
                    if top {
                        let mut m = b.clone();
                        m.insert("parent".into(), Json::Null);
                        out.push(m);
                    }
                    if !named.is_empty() {
                        let mut m = b.clone();
                        m.insert("parent".into(), by_uuids(strings(&named)));
                        out.push(m);
                    }
                }
                variants = out;
            }
            Kind::Class if !named.is_empty() => {
                for m in &mut variants {
                    m.insert("facet".into(), by_uuids(strings(&named)));
                }
            }
            _ => return None,
        }
    }
    // Cut the longest list into chunks; the others go whole into every request.
    let longest = lists
        .iter()
        .enumerate()
        .max_by_key(|(_, l)| l.1.len())
        .map(|(i, _)| i);
    let mut out = Vec::new();
    for v in variants {
        let mut m = v;
        let mut chunked: Option<(&str, &Vec<Json>, Wrap)> = None;
        for (i, (key, values, wrap)) in lists.iter().enumerate() {
            if Some(i) == longest && values.len() > CHUNK {
                chunked = Some((key, values, *wrap));
            } else {
                m.insert((*key).into(), wrap(values.clone()));
            }
        }
        match chunked {
            None => out.push(m),
            Some((key, values, wrap)) => {
                for c in values.chunks(CHUNK) {
                    let mut mc = m.clone();
                    mc.insert(key.into(), wrap(c.to_vec()));
                    out.push(mc);
                }
            }
        }
    }
    Some(out)
}

/// Run `jobs` on up to `concurrency` threads; the first error wins.
pub fn run_parallel<T: Send, R: Send>(
    jobs: Vec<T>,
    concurrency: usize,
    f: impl Fn(T) -> Result<R, Os2moError> + Sync,
) -> Result<Vec<R>, Os2moError> {
    if jobs.len() <= 1 || concurrency <= 1 {
        return jobs.into_iter().map(f).collect();
    }
    let n = jobs.len();
    let jobs: Vec<Mutex<Option<T>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<Result<R, Os2moError>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let job = jobs[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(job) = job {
                        let r = f(job);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(n);
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if out.len() < n {
        return Err(Os2moError::Decode {
            what: "read".into(),
            reason: "a parallel read did not finish".into(),
        });
    }
    Ok(out)
}

/// Every page of one filter: the raw `objects` entries.
pub fn pages(
    t: &Transport,
    what: &str,
    document: &str,
    collection: &str,
    filter: &Map<String, Json>,
) -> Result<Vec<Json>, Os2moError> {
    let mut out = Vec::new();
    let mut cursor = Json::Null;
    loop {
        let vars = json!({"filter": filter, "limit": t.config().page_size, "cursor": cursor});
        let data = t.graphql(what, document, vars)?;
        let page = data.get(collection).ok_or_else(|| Os2moError::Decode {
            what: what.to_string(),
            reason: format!("no {collection} in the answer"),
        })?;
        if let Some(objs) = page.get("objects").and_then(Json::as_array) {
            out.extend(objs.iter().cloned());
        }
        match page.pointer("/page_info/next_cursor") {
            Some(Json::Null) | None => return Ok(out),
            Some(c) => cursor = c.clone(),
        }
    }
}

/// One returned object (`{uuid, validities: [...]}`) → a dipex object; `None` when it has no
/// slices in the window.
pub fn decode_object(kind: Kind, o: &Json) -> Result<Option<Object>, Os2moError> {
    let uuid: Uuid = o
        .get("uuid")
        .and_then(Json::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Os2moError::Decode {
            what: format!("{kind}"),
            reason: "an object without a uuid".into(),
        })?;
    let mut slices = Vec::new();
    for v in o
        .get("validities")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (validity, value) = kinds::decode(kind, uuid, v)?;
        if !validity.is_empty() {
            slices.push(Slice::new(validity, value));
        }
    }
    if slices.is_empty() {
        return Ok(None);
    }
    slices.sort_by_key(|s| (s.validity.from, s.validity.to.is_none(), s.validity.to));
    let slices = normalise(slices);
    Object::new(uuid, slices)
        .map(Some)
        .map_err(|e| Os2moError::Decode {
            what: format!("{kind} {uuid}"),
            reason: e.to_string(),
        })
}

/// Read the objects of a query as MO holds them (persons with their real start).
pub fn read_raw(t: &Transport, q: &Query) -> Result<Vec<Object>, Os2moError> {
    if q.kind == Kind::Organisation {
        return read_org(t, q);
    }
    let Some(filters) = filters(q) else {
        return Ok(Vec::new());
    };
    let names = kinds::names(q.kind).expect("every kind but the organisation has names");
    let doc = read_document(q.kind).expect("names exist");
    let what = format!("read {}", q.kind);
    let pages = run_parallel(filters, t.config().concurrency, |f| {
        pages(t, &what, &doc, names.collection, &f)
    })?;
    let exclude: HashSet<Uuid> = if q.kind == Kind::Association {
        role_classes(t)?
    } else {
        HashSet::new()
    };
    let mut out: BTreeMap<Uuid, Object> = BTreeMap::new();
    for o in pages.iter().flatten() {
        if let Some(obj) = decode_object(q.kind, o)? {
            if let Some(dipex_model::Value::Association(a)) = obj.slices.first().map(|s| &s.value)
                && exclude.contains(&a.association_type)
            {
                continue;
            }
            out.insert(obj.uuid, obj);
        }
    }
    Ok(out.into_values().collect())
}

/// The classes of the `role_type` facet: associations typed by them are dipex roles.
fn role_classes(t: &Transport) -> Result<HashSet<Uuid>, Os2moError> {
    let doc = uuids_document(Kind::Class).expect("classes have names");
    let filter = json!({"facet": {"user_keys": [ROLE_FACET]}, "from_date": null, "to_date": null});
    let filter = filter.as_object().cloned().unwrap_or_default();
    let objs = pages(t, "read role classes", &doc, "classes", &filter)?;
    Ok(objs
        .iter()
        .filter_map(|o| o.get("uuid")?.as_str()?.parse().ok())
        .collect())
}

fn read_org(t: &Transport, q: &Query) -> Result<Vec<Object>, Os2moError> {
    let data = t.graphql("read organisation", ORG_DOCUMENT, json!({}))?;
    let Some(org) = data.get("org").filter(|o| !o.is_null()) else {
        return Ok(Vec::new());
    };
    let uuid: Uuid = org
        .get("uuid")
        .and_then(Json::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Os2moError::Decode {
            what: "organisation".into(),
            reason: "no uuid".into(),
        })?;
    let value = dipex_model::Value::Organisation(dipex_model::Organisation {
        user_key: org
            .get("user_key")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        name: org
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        municipality_code: org
            .get("municipality_code")
            .and_then(Json::as_u64)
            .map(|c| c as u32),
    });
    if q.uuids.as_ref().is_some_and(|u| !u.contains(&uuid))
        || q.user_keys
            .as_ref()
            .is_some_and(|k| !k.iter().any(|k| k == value.user_key()))
        || q.cpr_numbers.is_some()
        || q.parents.is_some()
        || q.persons.is_some()
        || q.org_units.is_some()
        || q.itsystems.is_some()
    {
        return Ok(Vec::new());
    }
    Ok(vec![Object {
        uuid,
        kind: Kind::Organisation,
        slices: vec![Slice::new(Validity::ALWAYS, value)],
    }])
}

/// Persons as dipex sees them: MO starts a person at the CPR birth date, which is no fact of
/// the source systems; the first slice starts at minus infinity.
pub fn normalise_person(mut o: Object) -> Object {
    if o.kind == Kind::Person
        && let Some(first) = o.slices.first_mut()
    {
        first.validity.from = None;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use dipex_model::Cpr;

    #[test]
    fn queries_become_filters() {
        let q = Query::all(Kind::OrgUnit)
            .parents([None, Some(Uuid::nil())])
            .at(jiff::civil::date(2024, 1, 1));
        let f = filters(&q).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(
            Json::Object(f[0].clone()),
            json!({"from_date": "2024-01-01", "parent": null})
        );
        assert_eq!(
            Json::Object(f[1].clone()),
            json!({"from_date": "2024-01-01", "parent": {"uuids": ["00000000-0000-0000-0000-000000000000"]}})
        );
        let many: Vec<Uuid> = (0..1200u128).map(Uuid::from_u128).collect();
        let q = Query::all(Kind::Engagement).persons(many).user_keys(["a"]);
        let f = filters(&q).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[2]["employee"]["uuids"].as_array().unwrap().len(), 200);
        assert_eq!(f[0]["user_keys"], json!(["a"]));
        assert_eq!(f[0]["from_date"], Json::Null);
        assert!(
            filters(&Query::all(Kind::OrgUnit).cpr_numbers([Cpr::parse("0101700000").unwrap()]))
                .is_none()
        );
        assert!(filters(&Query::all(Kind::Person).uuids([])).is_none());
        let r = filters(&Query::all(Kind::Role).window(Window::Range(Validity::new(
            None,
            Some(jiff::civil::date(2020, 1, 1)),
        ))))
        .unwrap();
        assert_eq!(
            Json::Object(r[0].clone()),
            json!({"from_date": null, "to_date": "2020-01-01", "association_type": {"facet": {"user_keys": ["role_type"]}}})
        );
    }
}
