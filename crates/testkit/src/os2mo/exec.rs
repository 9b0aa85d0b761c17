//! The executor: runs one GraphQL request against the store. Queries resolve collections with
//! MO's filters, windows and paging and project any selection of supported fields; mutations
//! (see `mutate.rs`) run in order on one transaction.

use std::collections::HashSet;

use apollo_compiler::Node;
use apollo_compiler::ast::{self, OperationType};
use jiff::civil::Date;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::os2mo::dates::{
    NEG_INF, POS_INF, format_python, next_day, out_from, out_to, parse_datetime,
};
use crate::os2mo::gql::{GqlError, Request, error_response, key, parse_document};
use crate::os2mo::model::{FilterField, Read, filter_field, filter_type, read_field};
use crate::os2mo::store::{Kind, Obj, Slice, Store, overlaps};

/// Everything the executor works on (kept under one mutex, like one database).
pub(crate) struct Engine {
    pub store: Store,
    pub org: (Uuid, String, String),
    pub max_page: Option<usize>,
    pub today: Option<Date>,
}

/// What one request did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub response: Value,
    pub mutations: usize,
    pub failed: bool,
    pub silently_rolled_back: bool,
}

/// A parsed collection filter.
#[derive(Debug)]
pub(crate) struct Filter {
    uuids: Option<Vec<Uuid>>,
    user_keys: Option<HashSet<String>>,
    pub window: (Date, Date),
    registration: Option<(jiff::Timestamp, jiff::Timestamp)>,
    preds: Vec<Pred>,
}

#[derive(Debug)]
enum Pred {
    /// The link (or any element of a link list) under `key` is in the set; `None`: it is null.
    Link(&'static str, Option<HashSet<Uuid>>),
    Strings(&'static str, HashSet<String>),
    ItAssociation(bool),
}

pub(crate) fn collection_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "facets" => Kind::Facet,
        "classes" => Kind::Class,
        "itsystems" => Kind::ItSystem,
        "org_units" => Kind::OrgUnit,
        "persons" | "employees" => Kind::Person,
        "engagements" => Kind::Engagement,
        "addresses" => Kind::Address,
        "itusers" => Kind::ItUser,
        "managers" => Kind::Manager,
        "associations" => Kind::Association,
        "leaves" => Kind::Leave,
        "kles" => Kind::Kle,
        _ => return None,
    })
}

fn unknown_field(name: &str, ty: &str) -> GqlError {
    GqlError::new(format!("Cannot query field '{name}' on type '{ty}'.")).request()
}

fn unsupported(what: &str) -> GqlError {
    GqlError::new(format!(
        "{what} is not supported by the dipex OS2mo test server."
    ))
}

/// Parse a `UUID` value the way MO's scalar does.
pub(crate) fn parse_uuid(v: &Value) -> Result<Uuid, String> {
    match v {
        Value::String(s) => Uuid::parse_str(s).map_err(|_| {
            format!("Value cannot represent a UUID: \"{s}\". badly formed hexadecimal UUID string")
        }),
        other => Err(format!("Value cannot represent a UUID: {other}.")),
    }
}

fn str_list(v: &Value, what: &str) -> Result<Vec<String>, GqlError> {
    let items = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    items
        .into_iter()
        .map(|x| match x {
            Value::String(s) => Ok(s),
            other => Err(GqlError::new(format!(
                "String cannot represent a non string value: {other} (in '{what}')"
            ))),
        })
        .collect()
}

fn uuid_list(v: &Value) -> Result<Vec<Uuid>, GqlError> {
    let items = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|x| parse_uuid(x).map_err(GqlError::new))
        .collect()
}

/// A filter date (`None` = null, i.e. infinity).
fn filter_date(v: &Value, name: &str) -> Result<Option<Date>, GqlError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_datetime(s).map(|d| Some(d.date)).map_err(|e| {
            GqlError::new(format!(
                "Value cannot represent a DateTime: \"{s}\". {e} (in '{name}')"
            ))
        }),
        other => Err(GqlError::new(format!(
            "Value cannot represent a DateTime: {other}."
        ))),
    }
}

/// The window of a filter: MO's three-state `from_date`/`to_date` rules.
pub(crate) fn window(
    from: Option<&Value>,
    to: Option<&Value>,
    today: Date,
    path: &str,
) -> Result<(Date, Date), GqlError> {
    let from = from.map(|v| filter_date(v, "from_date")).transpose()?;
    let to = to.map(|v| filter_date(v, "to_date")).transpose()?;
    let (a, b) = match (from, to) {
        (None, None) => (today, next_day(today)),
        (Some(Some(d)), None) => (d, next_day(d)),
        (Some(None), None) => {
            return Err(GqlError::new(
                "Cannot infer UNSET to_date from interval starting at -infinity",
            )
            .with_path(path));
        }
        (None, Some(None)) => (today, POS_INF),
        (None, Some(Some(t))) => (today, t),
        (Some(None), Some(None)) => (NEG_INF, POS_INF),
        (Some(None), Some(Some(t))) => (NEG_INF, t),
        (Some(Some(d)), Some(None)) => (d, POS_INF),
        (Some(Some(d)), Some(Some(t))) => (d, t),
    };
    if b < a {
        return Err(GqlError::new(format!(
            "from_date {} must be less than or equal to to_date {}",
            format_python(a),
            format_python(b)
        ))
        .with_path(path));
    }
    Ok((a, b))
}

fn parse_timestamp(v: &Value) -> Result<Option<jiff::Timestamp>, GqlError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            if let Ok(t) = s.parse::<jiff::Timestamp>() {
                return Ok(Some(t));
            }
            let dt: jiff::civil::DateTime = if s.len() == 10 {
                s.parse::<Date>()
                    .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            } else {
                s.parse()
            }
            .map_err(|_| GqlError::new(format!("Value cannot represent a DateTime: \"{s}\".")))?;
            let z = dt
                .to_zoned(jiff::tz::TimeZone::get("Europe/Copenhagen").expect("bundled tzdb"))
                .map_err(|e| GqlError::new(e.to_string()))?;
            Ok(Some(z.timestamp()))
        }
        other => Err(GqlError::new(format!(
            "Value cannot represent a DateTime: {other}."
        ))),
    }
}

fn encode_cursor(u: &Uuid) -> String {
    crate::os2mo::b64::encode(format!("after:{u}").as_bytes())
}

fn decode_cursor(s: &str) -> Result<Uuid, GqlError> {
    crate::os2mo::b64::decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| {
            t.strip_prefix("after:")
                .and_then(|u| Uuid::parse_str(u).ok())
        })
        .ok_or_else(|| GqlError::new(format!("Invalid cursor: '{s}'")))
}

fn link_uuids(v: Option<&Value>) -> Vec<Uuid> {
    match v {
        Some(Value::String(s)) => Uuid::parse_str(s).ok().into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The registration periods of an object: each write opens one, the next write closes it; the
/// last is open (`None`).
fn registration_periods(
    obj: &Obj,
) -> impl Iterator<Item = (jiff::Timestamp, Option<jiff::Timestamp>)> + '_ {
    obj.registrations
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, obj.registrations.get(i + 1).copied()))
}

/// MO's registration filter: the period `[a, b)` overlaps `[start, end]` (an overlap test, not
/// "written since").
fn overlaps_registration(
    a: jiff::Timestamp,
    b: Option<jiff::Timestamp>,
    start: jiff::Timestamp,
    end: jiff::Timestamp,
) -> bool {
    a <= end && b.is_none_or(|b| b > start)
}

/// The model name of a kind in the `registrations` query.
fn registration_model(kind: Kind) -> &'static str {
    match kind {
        Kind::Facet => "facet",
        Kind::Class => "class",
        Kind::ItSystem => "itsystem",
        Kind::OrgUnit => "org_unit",
        Kind::Person => "employee",
        Kind::Engagement => "engagement",
        Kind::Address => "address",
        Kind::ItUser => "ituser",
        Kind::Manager => "manager",
        Kind::Association => "association",
        Kind::Leave => "leave",
        Kind::Kle => "kle",
    }
}

fn registration_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Facet => "FacetRegistration",
        Kind::Class => "ClassRegistration",
        Kind::ItSystem => "ITSystemRegistration",
        Kind::OrgUnit => "OrganisationUnitRegistration",
        Kind::Person => "PersonRegistration",
        Kind::Engagement => "EngagementRegistration",
        Kind::Address => "AddressRegistration",
        Kind::ItUser => "ITUserRegistration",
        Kind::Manager => "ManagerRegistration",
        Kind::Association => "AssociationRegistration",
        Kind::Leave => "LeaveRegistration",
        Kind::Kle => "KLERegistration",
    }
}

impl Engine {
    pub(crate) fn today(&self) -> Date {
        self.today
            .unwrap_or_else(crate::os2mo::dates::today_copenhagen)
    }

    /// Run one request.
    pub(crate) fn execute(
        &mut self,
        query: &str,
        variables: &Value,
        operation_name: Option<&str>,
    ) -> Outcome {
        let fail = |errors: Vec<GqlError>| Outcome {
            response: error_response(&errors),
            failed: true,
            ..Outcome::default()
        };
        let doc = match parse_document(query) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let empty = Map::new();
        let vars = match variables {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => {
                return fail(vec![GqlError::new(
                    "Variables must be provided as a JSON object.",
                )]);
            }
        };
        let req = match Request::new(&doc, operation_name, vars) {
            Ok(r) => r,
            Err(e) => return fail(vec![e]),
        };
        if let Err(e) = check_int_rule(&req) {
            return fail(vec![e]);
        }
        match req.op.operation_type {
            OperationType::Query => match self.run_query(&req) {
                Ok(data) => Outcome {
                    response: json!({ "data": data }),
                    ..Outcome::default()
                },
                Err(e) => fail(vec![e]),
            },
            OperationType::Mutation => self.run_mutation(&req),
            OperationType::Subscription => fail(vec![unsupported("Subscription")]),
        }
    }

    fn run_query(&self, req: &Request) -> Result<Value, GqlError> {
        let today = self.today();
        let mut out = Map::new();
        for f in req.fields(&req.op.selection_set)? {
            let name = f.name.as_str();
            let alias = key(f);
            let value = if let Some(kind) = collection_kind(name) {
                self.collection(req, f, kind, today)
                    .map_err(|e| e.with_path(alias))?
            } else {
                match name {
                    "org" => {
                        check_args(req, f, "Query", &[])?;
                        let (u, uk, n) = &self.org;
                        let obj = json!({"uuid": u.to_string(), "user_key": uk, "name": n, "municipality_code": null, "__typename": "Organisation"});
                        project_plain(req, f, &obj, "Organisation")?
                    }
                    "version" => {
                        check_args(req, f, "Query", &[])?;
                        let obj = json!({"mo_version": null, "mo_hash": null, "dipex_test_server": true, "__typename": "Version"});
                        project_plain(req, f, &obj, "Version")?
                    }
                    "registrations" => self.registrations(req, f)?,
                    "__typename" => Value::String("Query".into()),
                    _ => return Err(unknown_field(name, "Query").at(req.loc(f))),
                }
            };
            out.insert(alias.to_string(), value);
        }
        Ok(Value::Object(out))
    }

    /// Parse a filter value of collection `kind` (`None`/null = no restriction, window "now").
    pub(crate) fn parse_filter(
        &self,
        kind: Kind,
        filter: Option<&Value>,
        today: Date,
        path: &str,
    ) -> Result<Filter, GqlError> {
        let empty = Map::new();
        let m = match filter {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(GqlError::new(format!(
                    "Expected type '{}' to be a dict, got {other}.",
                    filter_type(kind)
                )));
            }
        };
        let mut f = Filter {
            uuids: None,
            user_keys: None,
            window: window(m.get("from_date"), m.get("to_date"), today, path)?,
            registration: None,
            preds: Vec::new(),
        };
        for (k, v) in m {
            match k.as_str() {
                "from_date" | "to_date" => {}
                "uuids" => {
                    if !v.is_null() {
                        let mut l = uuid_list(v)?;
                        l.sort();
                        l.dedup();
                        f.uuids = Some(l);
                    }
                }
                "user_keys" => {
                    if !v.is_null() {
                        f.user_keys = Some(str_list(v, k)?.into_iter().collect());
                    }
                }
                "registration_time" => {
                    if !v.is_null() {
                        return Err(
                            unsupported("The filter field 'registration_time'").with_path(path)
                        );
                    }
                }
                "registration" => {
                    if let Value::Object(r) = v {
                        for rk in r.keys() {
                            if !matches!(rk.as_str(), "start" | "end" | "actors") {
                                return Err(GqlError::new(format!(
                                    "Field '{rk}' is not defined by type '{}RegistrationFilter'.",
                                    kind.type_name()
                                )));
                            }
                        }
                        if r.get("actors").is_some_and(|a| !a.is_null()) {
                            return Err(unsupported("The registration filter field 'actors'")
                                .with_path(path));
                        }
                        let start = r.get("start").map(parse_timestamp).transpose()?.flatten();
                        let end = r.get("end").map(parse_timestamp).transpose()?.flatten();
                        f.registration = Some((
                            start.unwrap_or(jiff::Timestamp::MIN),
                            end.unwrap_or(jiff::Timestamp::MAX),
                        ));
                    }
                }
                other => match filter_field(kind, other) {
                    Some(FilterField::Strings(key)) => {
                        if !v.is_null() {
                            f.preds.push(Pred::Strings(
                                key,
                                str_list(v, other)?.into_iter().collect(),
                            ));
                        }
                    }
                    Some(FilterField::ItAssociation) => {
                        if let Some(b) = v.as_bool() {
                            f.preds.push(Pred::ItAssociation(b));
                        }
                    }
                    Some(FilterField::Nested {
                        key,
                        target,
                        null_is_none,
                    }) => {
                        if v.is_null() {
                            if null_is_none {
                                f.preds.push(Pred::Link(key, None));
                            }
                        } else {
                            let set = self.nested_set(target, v, today, path)?;
                            f.preds.push(Pred::Link(key, Some(set)));
                        }
                    }
                    None => {
                        return Err(GqlError::new(format!(
                            "Field '{other}' is not defined by type '{}' (or not supported by the dipex OS2mo test server).",
                            filter_type(kind)
                        ))
                        .with_path(path));
                    }
                },
            }
        }
        Ok(f)
    }

    /// The uuids a nested filter selects. Explicit `uuids` alone are a pure link list.
    fn nested_set(
        &self,
        kind: Kind,
        v: &Value,
        today: Date,
        path: &str,
    ) -> Result<HashSet<Uuid>, GqlError> {
        if let Value::Object(m) = v
            && let Some(u) = m.get("uuids").filter(|u| !u.is_null())
            && m.keys()
                .all(|k| matches!(k.as_str(), "uuids" | "from_date" | "to_date"))
        {
            return Ok(uuid_list(u)?.into_iter().collect());
        }
        let mut f = self.parse_filter(kind, Some(v), today, path)?;
        if f.uuids.is_some() {
            f.window = (NEG_INF, POS_INF);
        }
        Ok(self
            .matching(kind, &f, None, usize::MAX)
            .0
            .into_iter()
            .collect())
    }

    fn slice_matches(&self, s: &Slice, f: &Filter) -> bool {
        if !overlaps(s.from, s.to, f.window.0, f.window.1) {
            return false;
        }
        if let Some(keys) = &f.user_keys
            && !s
                .vals
                .get("user_key")
                .and_then(Value::as_str)
                .is_some_and(|k| keys.contains(k))
        {
            return false;
        }
        f.preds.iter().all(|p| match p {
            Pred::Link(key, None) => s.vals.get(*key).is_none_or(Value::is_null),
            Pred::Link(key, Some(set)) => {
                link_uuids(s.vals.get(*key)).iter().any(|u| set.contains(u))
            }
            Pred::Strings(key, set) => s
                .vals
                .get(*key)
                .and_then(Value::as_str)
                .is_some_and(|x| set.contains(x)),
            Pred::ItAssociation(b) => s.vals.get("it_user").is_some_and(|x| !x.is_null()) == *b,
        })
    }

    fn obj_matches(&self, obj: &Obj, f: &Filter) -> bool {
        if let Some((start, end)) = f.registration
            && !registration_periods(obj).any(|(a, b)| overlaps_registration(a, b, start, end))
        {
            return false;
        }
        obj.visible().iter().any(|s| self.slice_matches(s, f))
    }

    /// Matching uuids in order, starting after `after`, at most `max`; plus whether the scan
    /// stopped because the page was full.
    pub(crate) fn matching(
        &self,
        kind: Kind,
        f: &Filter,
        after: Option<Uuid>,
        max: usize,
    ) -> (Vec<Uuid>, bool) {
        let map = self.store.map(kind);
        let mut out = Vec::new();
        if max == 0 {
            return (out, false);
        }
        let mut consider = |u: &Uuid, o: &Obj| -> bool {
            if self.obj_matches(o, f) {
                out.push(*u);
                if out.len() >= max {
                    return true;
                }
            }
            false
        };
        match &f.uuids {
            Some(list) => {
                for u in list {
                    if after.is_some_and(|a| *u <= a) {
                        continue;
                    }
                    if let Some(o) = map.get(u)
                        && consider(u, o)
                    {
                        return (out, true);
                    }
                }
            }
            None => {
                let iter: Box<dyn Iterator<Item = (&Uuid, &Obj)>> = match after {
                    Some(a) => Box::new(
                        map.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
                    ),
                    None => Box::new(map.iter()),
                };
                for (u, o) in iter {
                    if consider(u, o) {
                        return (out, true);
                    }
                }
            }
        }
        (out, false)
    }

    /// The top-level `registrations` query: the registrations matching the filter (`uuids`,
    /// `models`, and `start`/`end` as an overlap test), paged by object uuid.
    fn registrations(&self, req: &Request, f: &Node<ast::Field>) -> Result<Value, GqlError> {
        check_args(req, f, "Query", &["filter", "limit", "cursor"])?;
        let filter = req.arg(f, "filter").unwrap_or(Value::Null);
        let empty = Map::new();
        let m = match &filter {
            Value::Null => &empty,
            Value::Object(m) => m,
            other => {
                return Err(GqlError::new(format!(
                    "Expected type 'RegistrationFilter' to be a dict, got {other}."
                ))
                .at(req.loc(f)));
            }
        };
        let mut uuids: Option<HashSet<Uuid>> = None;
        let mut models: Option<HashSet<String>> = None;
        let (mut start, mut end) = (None, None);
        for (k, v) in m {
            match k.as_str() {
                "uuids" if !v.is_null() => uuids = Some(uuid_list(v)?.into_iter().collect()),
                "models" if !v.is_null() => models = Some(str_list(v, k)?.into_iter().collect()),
                "start" => start = parse_timestamp(v)?,
                "end" => end = parse_timestamp(v)?,
                "actors" if v.is_null() => {}
                "actors" => {
                    return Err(unsupported("The registration filter field 'actors'")
                        .with_path(key(f))
                        .at(req.loc(f)));
                }
                "uuids" | "models" => {}
                other => {
                    return Err(GqlError::new(format!(
                        "Field '{other}' is not defined by type 'RegistrationFilter'."
                    ))
                    .at(req.loc(f)));
                }
            }
        }
        let bounded = start.is_some() || end.is_some();
        let (start, end) = (
            start.unwrap_or(jiff::Timestamp::MIN),
            end.unwrap_or(jiff::Timestamp::MAX),
        );
        let (size, after) = self.paging_args(req, f).map_err(|e| e.at(req.loc(f)))?;
        // Every matching registration, by object uuid.
        let mut by_uuid: std::collections::BTreeMap<Uuid, Vec<Value>> = Default::default();
        for kind in Kind::ALL {
            let model = registration_model(kind);
            if models.as_ref().is_some_and(|ms| !ms.contains(model)) {
                continue;
            }
            for (u, obj) in self.store.map(kind) {
                if uuids.as_ref().is_some_and(|us| !us.contains(u))
                    || after.is_some_and(|a| *u <= a)
                {
                    continue;
                }
                for (i, (a, b)) in registration_periods(obj).enumerate() {
                    if bounded && !overlaps_registration(a, b, start, end) {
                        continue;
                    }
                    by_uuid.entry(*u).or_default().push(json!({
                        "__typename": registration_type(kind),
                        "model": model,
                        "uuid": u.to_string(),
                        "registration_id": i,
                        "start": crate::os2mo::dates::format_timestamp(a),
                        "end": b.map(crate::os2mo::dates::format_timestamp),
                        "actor": "42c432e8-9c4a-11e6-9f62-873cf34a735f",
                        "note": null,
                    }));
                }
            }
        }
        let full = by_uuid.len() > size;
        let page: Vec<(Uuid, Vec<Value>)> = by_uuid.into_iter().take(size).collect();
        let next = if full {
            page.last().map(|(u, _)| encode_cursor(u))
        } else {
            None
        };
        let ty = "IRegistrationPaged";
        let mut out = Map::new();
        for sub in req.fields(&f.selection_set)? {
            let v = match sub.name.as_str() {
                "objects" => {
                    check_args(req, sub, ty, &[])?;
                    let mut list = Vec::new();
                    for r in page.iter().flat_map(|(_, rs)| rs) {
                        let t = r["__typename"]
                            .as_str()
                            .unwrap_or("IRegistration")
                            .to_string();
                        list.push(project_plain(req, sub, r, &t)?);
                    }
                    Value::Array(list)
                }
                "page_info" => {
                    check_args(req, sub, ty, &[])?;
                    let obj = json!({"next_cursor": next, "__typename": "PageInfo"});
                    project_plain(req, sub, &obj, "PageInfo")?
                }
                "__typename" => Value::String(ty.into()),
                other => return Err(unknown_field(other, ty).at(req.loc(sub))),
            };
            out.insert(key(sub).to_string(), v);
        }
        Ok(Value::Object(out))
    }

    fn page_size(&self, limit: Option<usize>) -> usize {
        match (limit, self.max_page) {
            (Some(l), Some(m)) => l.min(m),
            (Some(l), None) => l,
            (None, Some(m)) => m,
            (None, None) => usize::MAX,
        }
    }

    fn paging_args(
        &self,
        req: &Request,
        f: &ast::Field,
    ) -> Result<(usize, Option<Uuid>), GqlError> {
        let limit = match req.arg(f, "limit") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n as usize),
                None => {
                    return Err(GqlError::new(format!(
                        "Expected type 'int'. {v} is not a non-negative integer."
                    )));
                }
            },
        };
        let cursor = match req.arg(f, "cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(decode_cursor(&s)?),
            Some(other) => return Err(GqlError::new(format!("Invalid cursor: {other}"))),
        };
        Ok((self.page_size(limit), cursor))
    }

    fn collection(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        kind: Kind,
        today: Date,
    ) -> Result<Value, GqlError> {
        let allowed: &[&str] = if kind == Kind::Manager {
            &["filter", "limit", "cursor", "inherit"]
        } else {
            &["filter", "limit", "cursor"]
        };
        check_args(req, f, "Query", allowed)?;
        if req.arg(f, "inherit").and_then(|v| v.as_bool()) == Some(true) {
            return Err(unsupported("managers(inherit: true)"));
        }
        let filter = req.arg(f, "filter");
        let parsed = self
            .parse_filter(kind, filter.as_ref(), today, key(f))
            .map_err(|e| e.at(req.loc(f)))?;
        let (size, after) = self.paging_args(req, f).map_err(|e| e.at(req.loc(f)))?;
        let (uuids, full) = self.matching(kind, &parsed, after, size);
        let next = if full {
            uuids.last().map(encode_cursor)
        } else {
            None
        };
        self.project_paged(req, f, kind, &uuids, next, parsed.window, today)
    }

    #[allow(clippy::too_many_arguments)]
    fn project_paged(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        kind: Kind,
        uuids: &[Uuid],
        next: Option<String>,
        window: (Date, Date),
        today: Date,
    ) -> Result<Value, GqlError> {
        let ty = format!("{}ResponsePaged", kind.type_name());
        let mut out = Map::new();
        for sub in req.fields(&f.selection_set)? {
            let v = match sub.name.as_str() {
                "objects" => {
                    check_args(req, sub, &ty, &[])?;
                    let mut list = Vec::with_capacity(uuids.len());
                    for u in uuids {
                        list.push(self.project_response(req, sub, kind, *u, window, today)?);
                    }
                    Value::Array(list)
                }
                "page_info" => {
                    check_args(req, sub, &ty, &[])?;
                    let obj = json!({"next_cursor": next, "__typename": "PageInfo"});
                    project_plain(req, sub, &obj, "PageInfo")?
                }
                "__typename" => Value::String(ty.clone()),
                other => return Err(unknown_field(other, &ty).at(req.loc(sub))),
            };
            out.insert(key(sub).to_string(), v);
        }
        Ok(Value::Object(out))
    }

    /// Project an `XResponse` object (uuid, current, validities).
    pub(crate) fn project_response(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        kind: Kind,
        uuid: Uuid,
        window: (Date, Date),
        today: Date,
    ) -> Result<Value, GqlError> {
        let ty = format!("{}Response", kind.type_name());
        let obj = self.store.get(kind, &uuid);
        let visible = obj.map(Obj::visible).unwrap_or_default();
        let mut out = Map::new();
        for sub in req.fields(&f.selection_set)? {
            let v = match sub.name.as_str() {
                "uuid" => Value::String(uuid.to_string()),
                "__typename" => Value::String(ty.clone()),
                "current" => {
                    check_args(req, sub, &ty, &["at", "registration_time"])?;
                    no_registration_time(req, sub)?;
                    let at = match req.arg(sub, "at") {
                        None | Some(Value::Null) => today,
                        Some(v) => filter_date(&v, "at")?.unwrap_or(today),
                    };
                    match visible.iter().find(|s| s.from <= at && at < s.to) {
                        Some(s) => self.project_slice(req, sub, kind, uuid, s, window, today)?,
                        None => Value::Null,
                    }
                }
                "validities" | "objects" => {
                    check_args(req, sub, &ty, &["start", "end", "registration_time"])?;
                    no_registration_time(req, sub)?;
                    let start = req.arg(sub, "start");
                    let end = req.arg(sub, "end");
                    let (a, b) = if start.is_none() && end.is_none() {
                        window
                    } else {
                        let a = start
                            .map(|v| filter_date(&v, "start"))
                            .transpose()?
                            .flatten()
                            .unwrap_or(NEG_INF);
                        let b = end
                            .map(|v| filter_date(&v, "end"))
                            .transpose()?
                            .flatten()
                            .unwrap_or(POS_INF);
                        (a, b)
                    };
                    let mut list = Vec::new();
                    for s in visible.iter().filter(|s| overlaps(s.from, s.to, a, b)) {
                        list.push(self.project_slice(req, sub, kind, uuid, s, window, today)?);
                    }
                    Value::Array(list)
                }
                "registrations" => {
                    return Err(unsupported("The field 'registrations'").at(req.loc(sub)));
                }
                other => return Err(unknown_field(other, &ty).at(req.loc(sub))),
            };
            out.insert(key(sub).to_string(), v);
        }
        Ok(Value::Object(out))
    }

    #[allow(clippy::too_many_arguments)]
    fn project_slice(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        kind: Kind,
        uuid: Uuid,
        s: &Slice,
        window: (Date, Date),
        today: Date,
    ) -> Result<Value, GqlError> {
        let ty = kind.type_name();
        let mut out = Map::new();
        for sub in req.fields(&f.selection_set)? {
            let read = read_field(kind, sub.name.as_str())
                .ok_or_else(|| unknown_field(&sub.name, ty).at(req.loc(sub)))?;
            if !matches!(read, Read::Paged(..)) {
                check_args(req, sub, ty, &[])?;
            }
            let v = match read {
                Read::Uuid => Value::String(uuid.to_string()),
                Read::Typename => Value::String(ty.to_string()),
                Read::Null => Value::Null,
                Read::Val(k) | Read::List(k) => s.vals.get(k).cloned().unwrap_or(Value::Null),
                Read::Validity => {
                    let obj = json!({"from": out_from(s.from), "to": out_to(s.to), "__typename": "Validity"});
                    project_plain(req, sub, &obj, "Validity")?
                }
                Read::FullName(a, b) => {
                    let parts: Vec<&str> = [a, b]
                        .iter()
                        .filter_map(|k| s.vals.get(*k).and_then(Value::as_str))
                        .filter(|x| !x.is_empty())
                        .collect();
                    Value::String(parts.join(" "))
                }
                Read::IsPrimary => Value::Bool(self.is_primary(s.vals.get("primary"), today)),
                Read::Link(k, target) | Read::FirstOf(k, target) => {
                    match link_uuids(s.vals.get(k)).first() {
                        Some(u) => self.project_response(req, sub, target, *u, window, today)?,
                        None => Value::Null,
                    }
                }
                Read::Paged(k, target) => {
                    self.nested_paged(req, sub, target, &link_uuids(s.vals.get(k)), today)?
                }
            };
            out.insert(key(sub).to_string(), v);
        }
        Ok(Value::Object(out))
    }

    /// A nested paged list of linked objects, with its own "now" window (observed §5.10).
    fn nested_paged(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        target: Kind,
        linked: &[Uuid],
        today: Date,
    ) -> Result<Value, GqlError> {
        check_args(req, f, target.type_name(), &["filter", "limit", "cursor"])?;
        let filter = req.arg(f, "filter");
        let (mut win, mut only): (Option<(Date, Date)>, Option<HashSet<Uuid>>) = (None, None);
        if let Some(Value::Object(m)) = &filter {
            for (k, v) in m {
                match k.as_str() {
                    "from_date" | "to_date" => {}
                    "uuids" if !v.is_null() => only = Some(uuid_list(v)?.into_iter().collect()),
                    "uuids" | "user_keys" | "registration_time" if v.is_null() => {}
                    other => {
                        return Err(GqlError::new(format!(
                            "The nested filter field '{other}' is not supported by the dipex OS2mo test server."
                        ))
                        .at(req.loc(f)));
                    }
                }
            }
            win = Some(
                window(m.get("from_date"), m.get("to_date"), today, key(f))
                    .map_err(|e| e.at(req.loc(f)))?,
            );
        }
        let window = win.unwrap_or((today, next_day(today)));
        let (size, after) = self.paging_args(req, f)?;
        let mut uuids: Vec<Uuid> = linked.to_vec();
        uuids.sort();
        uuids.dedup();
        let mut page = Vec::new();
        let mut full = false;
        for u in uuids {
            if after.is_some_and(|a| u <= a) || only.as_ref().is_some_and(|o| !o.contains(&u)) {
                continue;
            }
            if self
                .store
                .get(target, &u)
                .is_some_and(|o| o.visible_overlaps(window.0, window.1))
            {
                if page.len() >= size {
                    full = true;
                    break;
                }
                page.push(u);
            }
        }
        let next = if full || (size != usize::MAX && page.len() == size) {
            page.last().map(encode_cursor)
        } else {
            None
        };
        self.project_paged(req, f, target, &page, next, window, today)
    }

    fn is_primary(&self, primary: Option<&Value>, today: Date) -> bool {
        let Some(u) = link_uuids(primary).first().copied() else {
            return false;
        };
        let Some(obj) = self.store.get(Kind::Class, &u) else {
            return false;
        };
        let vis = obj.visible();
        let slice = vis
            .iter()
            .find(|s| s.from <= today && today < s.to)
            .or(vis.last());
        slice
            .and_then(|s| s.vals.get("user_key").and_then(Value::as_str))
            .is_some_and(|k| k == "primary" || k == "explicitly-primary")
    }
}

fn no_registration_time(req: &Request, f: &Node<ast::Field>) -> Result<(), GqlError> {
    match req.arg(f, "registration_time") {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(unsupported("The argument 'registration_time'").at(req.loc(f))),
    }
}

/// Reject arguments a field does not have.
pub(crate) fn check_args(
    req: &Request,
    f: &Node<ast::Field>,
    parent: &str,
    allowed: &[&str],
) -> Result<(), GqlError> {
    for a in &f.arguments {
        if !allowed.contains(&a.name.as_str()) {
            return Err(GqlError::new(format!(
                "Unknown argument '{}' on field '{parent}.{}'.",
                a.name, f.name
            ))
            .at(req.loc(a))
            .request());
        }
    }
    Ok(())
}

/// Project a selection on a plain JSON object whose keys are its fields.
pub(crate) fn project_plain(
    req: &Request,
    f: &Node<ast::Field>,
    obj: &Value,
    ty: &str,
) -> Result<Value, GqlError> {
    let mut out = Map::new();
    for sub in req.fields(&f.selection_set)? {
        check_args(req, sub, ty, &[])?;
        let v = obj
            .get(sub.name.as_str())
            .ok_or_else(|| unknown_field(&sub.name, ty).at(req.loc(sub)))?;
        out.insert(key(sub).to_string(), v.clone());
    }
    Ok(Value::Object(out))
}

/// Every variable used as a `limit` argument must be declared with the scalar `int`.
fn check_int_rule(req: &Request) -> Result<(), GqlError> {
    fn walk(req: &Request, set: &[ast::Selection], depth: usize) -> Result<(), GqlError> {
        if depth > 30 {
            return Ok(());
        }
        for sel in set {
            match sel {
                ast::Selection::Field(f) => {
                    for a in &f.arguments {
                        if a.name.as_str() != "limit" {
                            continue;
                        }
                        if let ast::Value::Variable(v) = a.value.as_ref()
                            && let Some(def) = req.op.variables.iter().find(|d| d.name == *v)
                            && def.ty.inner_named_type().as_str() != "int"
                        {
                            let mut locs = req.loc(def);
                            locs.extend(req.loc(&a.value));
                            return Err(GqlError::new(format!(
                                "Variable '${v}' of type '{}' used in position expecting type 'int'.",
                                def.ty
                            ))
                            .at(locs));
                        }
                    }
                    walk(req, &f.selection_set, depth + 1)?;
                }
                ast::Selection::InlineFragment(i) => walk(req, &i.selection_set, depth + 1)?,
                ast::Selection::FragmentSpread(s) => {
                    if let Some(fr) = req.frags.get(s.fragment_name.as_str()) {
                        walk(req, &fr.selection_set, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
    walk(req, &req.op.selection_set, 0)
}
