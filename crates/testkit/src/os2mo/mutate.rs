//! Mutations with MO's semantics: input coercion against the v30 input types, create (with
//! replace-on-known-uuid), time-sliced update, terminate, delete, the business validations and
//! their error shapes, one transaction per request, and the no-op trap of a real server.

use apollo_compiler::Node;
use apollo_compiler::ast;
use jiff::civil::Date;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::os2mo::dates::{
    NEG_INF, POS_INF, cpr_birth_date, format_python, next_day, parse_date, parse_datetime,
};
use crate::os2mo::exec::{Engine, Outcome, check_args, parse_uuid};
use crate::os2mo::gql::{GqlError, Request, error_response, inspect, key};
use crate::os2mo::model::{Mutation, Op, Ty, input_fields, input_type, mutation, value_keys};
use crate::os2mo::store::{Kind, Obj, UndoLog, covered, overlaps, subtract_interval};

/// A value that failed coercion: where, what, why.
struct InputErr {
    path: Vec<String>,
    value: Value,
    message: String,
}

fn join_path(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if p.starts_with('[') || s.is_empty() {
            s.push_str(p);
        } else {
            s.push('.');
            s.push_str(p);
        }
    }
    s
}

/// Check one scalar of an input (the messages graphql-core/strawberry give).
pub(crate) fn check_scalar(ty: Ty, v: &Value) -> Result<(), String> {
    match ty {
        Ty::Uuid => parse_uuid(v).map(|_| ()),
        Ty::Str => match v {
            Value::String(_) => Ok(()),
            other => Err(format!(
                "String cannot represent a non string value: {}",
                inspect(other)
            )),
        },
        Ty::Int => match v.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            Some(_) => Err(format!(
                "Int cannot represent non 32-bit signed integer value: {v}"
            )),
            None => Err(format!(
                "Int cannot represent non-integer value: {}",
                inspect(v)
            )),
        },
        Ty::Bool => match v {
            Value::Bool(_) => Ok(()),
            other => Err(format!(
                "Boolean cannot represent a non boolean value: {}",
                inspect(other)
            )),
        },
        Ty::Cpr => match v {
            Value::String(s) => cpr_birth_date(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'CPR'. {e}")),
            _ => Err("Expected type 'CPR'. Invalid length".into()),
        },
        Ty::Date => match v {
            Value::String(s) => parse_date(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'Date'. {e}")),
            other => Err(format!(
                "Expected type 'Date'. Invalid isoformat string: {}",
                inspect(other)
            )),
        },
        Ty::DateTime => match v {
            Value::String(s) => parse_datetime(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'DateTime'. {e}")),
            other => Err(format!(
                "Expected type 'DateTime'. Invalid isoformat string: {}",
                inspect(other)
            )),
        },
        Ty::UuidList | Ty::RaValidity | Ty::OpenValidity(_) => Ok(()),
    }
}

/// Coerce an input object against a field table; lists and validities are handled here too.
fn coerce_object(
    fields: &[(&'static str, Ty, bool)],
    type_name: &str,
    v: &Value,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, InputErr> {
    let err = |path: &Vec<String>, value: &Value, message: String| InputErr {
        path: path.clone(),
        value: value.clone(),
        message,
    };
    let Value::Object(m) = v else {
        return Err(err(
            path,
            v,
            format!("Expected type '{type_name}' to be a dict."),
        ));
    };
    for (name, ty, required) in fields {
        match m.get(*name) {
            None if *required => {
                let t = ty.type_name();
                return Err(err(
                    path,
                    v,
                    format!("Field '{name}' of required type '{t}!' was not provided."),
                ));
            }
            Some(Value::Null) if *required => {
                path.push(name.to_string());
                let e = err(
                    path,
                    &Value::Null,
                    format!(
                        "Expected non-nullable type '{}!' not to be null.",
                        ty.type_name()
                    ),
                );
                path.pop();
                return Err(e);
            }
            None | Some(Value::Null) => {}
            Some(x) => {
                path.push(name.to_string());
                let r = coerce_field(*ty, x, path);
                path.pop();
                r?;
            }
        }
    }
    for k in m.keys() {
        if !fields.iter().any(|(n, _, _)| n == k) {
            return Err(err(
                path,
                v,
                format!("Field '{k}' is not defined by type '{type_name}'."),
            ));
        }
    }
    Ok(m.clone())
}

fn coerce_field(ty: Ty, x: &Value, path: &mut Vec<String>) -> Result<(), InputErr> {
    match ty {
        Ty::UuidList => {
            let items = match x {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            for (i, it) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                let r = if it.is_null() {
                    Err("Expected non-nullable type 'UUID!' not to be null.".to_string())
                } else {
                    check_scalar(Ty::Uuid, it)
                };
                let r = r.map_err(|message| InputErr {
                    path: path.clone(),
                    value: it.clone(),
                    message,
                });
                path.pop();
                r?;
            }
            Ok(())
        }
        Ty::RaValidity => coerce_object(
            &[("from", Ty::DateTime, true), ("to", Ty::DateTime, false)],
            "RAValidityInput",
            x,
            path,
        )
        .map(|_| ()),
        Ty::OpenValidity(name) => coerce_object(
            &[("from", Ty::DateTime, false), ("to", Ty::DateTime, false)],
            name,
            x,
            path,
        )
        .map(|_| ()),
        _ => check_scalar(ty, x).map_err(|message| InputErr {
            path: path.clone(),
            value: x.clone(),
            message,
        }),
    }
}

fn lora_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Facet => "Facet",
        Kind::Class => "Klasse",
        Kind::ItSystem => "Itsystem",
        Kind::OrgUnit => "Organisationenhed",
        Kind::Person => "Bruger",
        _ => "OrganisationFunktion",
    }
}

fn date_text(d: Date, inf: Date) -> Value {
    if d == inf {
        Value::Null
    } else {
        Value::String(d.to_string())
    }
}

fn get_uuid(m: &Map<String, Value>, k: &str) -> Option<Uuid> {
    m.get(k)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn get_str<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn invalid_input(description: impl Into<String>) -> GqlError {
    GqlError::mo("E_INVALID_INPUT", 400, description, json!({}))
}

/// The validity interval of an input (`open`: `from` may be null = −∞).
fn validity_of(input: &Map<String, Value>) -> Result<(Date, Date), GqlError> {
    let v = input.get("validity").and_then(Value::as_object);
    let get = |k: &str| -> Option<Date> {
        v.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .and_then(|s| parse_datetime(s).ok())
            .map(|d| d.date)
    };
    let from = get("from").unwrap_or(NEG_INF);
    let to = get("to").unwrap_or(POS_INF);
    if to < from {
        return Err(GqlError::new(format!(
            "1 validation error for Validity\n__root__\n  from_date {} must be less than or equal to to_date {} (type=value_error)",
            format_python(from),
            format_python(to)
        )));
    }
    Ok((from, to))
}

/// A termination boundary: a date at midnight (MO rejects other times).
fn midnight(v: &Value) -> Result<Date, GqlError> {
    let s = v.as_str().unwrap_or_default();
    let d = parse_datetime(s).map_err(invalid_input)?;
    if !d.midnight {
        let desc = format!("'{s}' is not at midnight!");
        let mut e = invalid_input(desc.clone());
        e.message = format!("(<ErrorCodes.E_INVALID_INPUT: (400, 'Invalid input.')>, \"{desc}\")");
        return Err(e);
    }
    Ok(d.date)
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

impl Engine {
    /// Run the mutation operation of a request on one transaction.
    pub(crate) fn run_mutation(&mut self, req: &Request) -> Outcome {
        let today = self.today();
        let fail = |errors: Vec<GqlError>, mutations: usize| Outcome {
            response: error_response(&errors),
            mutations,
            failed: true,
            silently_rolled_back: false,
        };
        let fields = match req.fields(&req.op.selection_set) {
            Ok(f) => f,
            Err(e) => return fail(vec![e], 0),
        };
        // Unknown mutation fields are a validation error: nothing runs.
        for f in &fields {
            if f.name.as_str() != "__typename" && mutation(f.name.as_str()).is_none() {
                let e = GqlError::new(format!(
                    "Cannot query field '{}' on type 'Mutation'.",
                    f.name
                ))
                .at(req.loc(f));
                return fail(vec![e], 0);
            }
        }
        let mut undo = UndoLog::default();
        let mut data = Map::new();
        let mut poisoned = false;
        let mut count = 0;
        for f in fields {
            let alias = key(f).to_string();
            if f.name.as_str() == "__typename" {
                data.insert(alias, Value::String("Mutation".into()));
                continue;
            }
            let m = mutation(f.name.as_str()).expect("checked above");
            count += 1;
            if poisoned {
                self.store.rollback(undo);
                let e = GqlError::mo(
                    "E_UNKNOWN",
                    500,
                    "(psycopg.errors.InFailedSqlTransaction) current transaction is aborted, commands ignored until end of transaction block",
                    json!({}),
                );
                return fail(vec![e.with_path(&alias).at(req.loc(f))], count);
            }
            let result = self
                .mutate(req, f, m, &mut undo, today)
                .and_then(|(uuids, noop)| {
                    if noop {
                        poisoned = true;
                    }
                    let window = (today, next_day(today));
                    let mut out = Vec::new();
                    for u in &uuids {
                        out.push(self.project_response(req, f, m.kind, *u, window, today)?);
                    }
                    Ok(if m.bulk {
                        Value::Array(out)
                    } else {
                        out.pop().unwrap_or(Value::Null)
                    })
                });
            match result {
                Ok(v) => {
                    data.insert(alias, v);
                }
                Err(e) => {
                    self.store.rollback(undo);
                    return fail(vec![e.with_path(&alias).at(req.loc(f))], count);
                }
            }
        }
        let silently = poisoned && count > 1;
        if poisoned {
            // The storage layer's swallowed error aborted the transaction: nothing is committed.
            self.store.rollback(undo);
        }
        Outcome {
            response: json!({ "data": data }),
            mutations: count,
            failed: false,
            silently_rolled_back: silently,
        }
    }

    /// Run one mutation field; returns the affected uuids and whether it was a no-op.
    fn mutate(
        &mut self,
        req: &Request,
        f: &Node<ast::Field>,
        m: Mutation,
        undo: &mut UndoLog,
        today: Date,
    ) -> Result<(Vec<Uuid>, bool), GqlError> {
        if m.op == Op::Delete {
            check_args(req, f, "Mutation", &["uuid"])?;
            let v = req.arg(f, "uuid").unwrap_or(Value::Null);
            if v.is_null() {
                return Err(GqlError::new(format!(
                    "Field '{}' argument 'uuid' of type 'UUID!' is required, but it was not provided.",
                    f.name
                ))
                .at(req.loc(f))
                .request());
            }
            let uuid =
                parse_uuid(&v).map_err(|e| self.coercion_error(req, f, "uuid", vec![], &v, e))?;
            if self.store.get(m.kind, &uuid).is_none() {
                let desc = format!("No {} with ID {uuid} found.", lora_name(m.kind));
                return Err(GqlError::mo("E_NOT_FOUND", 404, desc, json!({})));
            }
            self.store.put(undo, m.kind, uuid, None);
            return Ok((vec![uuid], false));
        }
        check_args(req, f, "Mutation", &["input"])?;
        let ty = input_type(m);
        let Some(input) = req.arg(f, "input").filter(|v| !v.is_null()) else {
            let t = if m.bulk {
                format!("[{ty}!]!")
            } else {
                format!("{ty}!")
            };
            return Err(GqlError::new(format!(
                "Field '{}' argument 'input' of type '{t}' is required, but it was not provided.",
                f.name
            ))
            .at(req.loc(f))
            .request());
        };
        let fields = input_fields(m);
        let items: Vec<(Value, Vec<String>)> = if m.bulk {
            match &input {
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (x.clone(), vec![format!("[{i}]")]))
                    .collect(),
                other => vec![(other.clone(), vec![])],
            }
        } else {
            vec![(input.clone(), vec![])]
        };
        let mut coerced = Vec::new();
        for (item, mut path) in items {
            match coerce_object(&fields, &ty, &item, &mut path) {
                Ok(map) => coerced.push(map),
                Err(e) => {
                    return Err(self.coercion_error(req, f, "input", e.path, &e.value, e.message));
                }
            }
        }
        let mut uuids = Vec::new();
        let mut noop = false;
        for input in coerced {
            let (u, n) = match m.op {
                Op::Create => (self.create(m, &input, undo)?, false),
                Op::Update => self.update(m, &input, undo)?,
                Op::Terminate => self.terminate(m, &input, undo, today)?,
                Op::Delete => unreachable!("handled above"),
            };
            noop |= n;
            uuids.push(u);
        }
        Ok((uuids, noop))
    }

    /// The coercion error of an argument: variable form when bound to a variable.
    fn coercion_error(
        &self,
        req: &Request,
        f: &Node<ast::Field>,
        arg: &str,
        path: Vec<String>,
        value: &Value,
        message: String,
    ) -> GqlError {
        match req.arg_variable(f, arg) {
            Some(var) => {
                let mut full = vec![var.clone()];
                full.extend(path);
                let at = if full.len() > 1 {
                    format!(" at '{}'", join_path(&full))
                } else {
                    String::new()
                };
                GqlError::new(format!(
                    "Variable '${var}' got invalid value {}{at}; {message}",
                    inspect(value)
                ))
                .at(req.var_loc(&var))
                .request()
            }
            None => GqlError::new(format!(
                "Expected value of type '{}', found {}; {message}",
                arg,
                inspect(value)
            ))
            .at(req.loc(f))
            .request(),
        }
    }

    fn create(
        &mut self,
        m: Mutation,
        input: &Map<String, Value>,
        undo: &mut UndoLog,
    ) -> Result<Uuid, GqlError> {
        let kind = m.kind;
        let uuid = get_uuid(input, "uuid").unwrap_or_else(Uuid::new_v4);
        let mut vals = Map::new();
        for k in value_keys(kind) {
            vals.insert(k.to_string(), input.get(k).cloned().unwrap_or(Value::Null));
        }
        if input.get("person").is_none_or(Value::is_null)
            && let Some(e) = input.get("employee").filter(|v| !v.is_null())
        {
            vals.insert("person".into(), e.clone());
        }
        match kind {
            Kind::Facet | Kind::Class if vals["published"].is_null() => {
                vals.insert("published".into(), "Publiceret".into());
            }
            Kind::ItUser => {
                let single = input.get("engagement").filter(|v| !v.is_null());
                let list = input.get("engagements").filter(|v| !v.is_null());
                match (single, list) {
                    (Some(_), Some(_)) => {
                        return Err(invalid_input("Cannot set both engagement and engagements"));
                    }
                    (Some(e), None) => {
                        vals.insert("engagements".into(), json!([e]));
                    }
                    (None, Some(l)) => {
                        vals.insert("engagements".into(), l.clone());
                    }
                    (None, None) => {
                        vals.insert("engagements".into(), json!([]));
                    }
                }
            }
            _ => {}
        }
        if vals.get("user_key").is_some_and(Value::is_null) {
            let default = match kind {
                Kind::Address => vals.get("value").cloned().unwrap_or(Value::Null),
                _ => Value::String(uuid.to_string()),
            };
            vals.insert("user_key".into(), default);
        }
        let (from, to) = if kind == Kind::Person {
            let birth = get_str(input, "cpr_number").and_then(|c| cpr_birth_date(c).ok());
            (birth.unwrap_or(NEG_INF), POS_INF)
        } else {
            validity_of(input)?
        };
        // Kind-specific checks before anything is written.
        match kind {
            Kind::Person => self.check_cpr(uuid, get_str(&vals, "cpr_number"))?,
            Kind::ItUser => {
                let sys = get_uuid(&vals, "itsystem");
                if sys.is_none_or(|s| self.store.get(Kind::ItSystem, &s).is_none()) {
                    return Err(GqlError::mo("E_NOT_FOUND", 404, "Not found.", json!({})));
                }
                self.check_owner(&vals, true)?;
            }
            Kind::Address => {
                self.check_owner(&vals, true)?;
                self.check_address(
                    get_uuid(&vals, "address_type"),
                    get_str(&vals, "value").unwrap_or_default(),
                )?;
            }
            Kind::Engagement | Kind::Association | Kind::Leave if vals["person"].is_null() => {
                return Err(invalid_input("A person (or employee) must be given."));
            }
            _ => {}
        }
        let obj = Obj::new(from, to, vals);
        self.check_ranges(kind, &obj, from, to)?;
        self.store.put(undo, kind, uuid, Some(obj));
        Ok(uuid)
    }

    fn update(
        &mut self,
        m: Mutation,
        input: &Map<String, Value>,
        undo: &mut UndoLog,
    ) -> Result<(Uuid, bool), GqlError> {
        let kind = m.kind;
        let uuid = get_uuid(input, "uuid").expect("coerced");
        let Some(old) = self.store.get(kind, &uuid) else {
            return Err(match kind {
                Kind::Engagement => invalid_input("invalid input syntax for type uuid: \"None\""),
                Kind::Person => GqlError::new(
                    "one of the hex, bytes, bytes_le, fields, or int arguments must be given",
                ),
                Kind::OrgUnit => GqlError::mo(
                    "E_ORG_UNIT_NOT_FOUND",
                    404,
                    "Organisational unit not found.",
                    json!({"org_unit_uuid": uuid.to_string()}),
                ),
                _ => GqlError::mo(
                    "E_NOT_FOUND",
                    404,
                    "Not found.",
                    json!({"uuid": uuid.to_string()}),
                ),
            });
        };
        let (from, to) = validity_of(input)?;
        let full = matches!(kind, Kind::Facet | Kind::Class | Kind::ItSystem);
        let mut patch = Map::new();
        if full {
            for k in value_keys(kind) {
                patch.insert(k.to_string(), input.get(k).cloned().unwrap_or(Value::Null));
            }
            if patch.get("published").is_some_and(Value::is_null) {
                patch.insert("published".into(), "Publiceret".into());
            }
        } else {
            for (name, _, _) in input_fields(m) {
                if matches!(name, "uuid" | "validity" | "note") {
                    continue;
                }
                let Some(v) = input.get(name).filter(|v| !v.is_null()) else {
                    continue;
                };
                match (kind, name) {
                    (_, "employee") => {
                        patch.entry("person").or_insert_with(|| v.clone());
                    }
                    (Kind::ItUser, "engagement") => {
                        patch.insert("engagements".into(), json!([v]));
                    }
                    (Kind::Kle, "kle_aspects") if v.as_array().is_some_and(Vec::is_empty) => {}
                    _ => {
                        patch.insert(name.to_string(), v.clone());
                    }
                }
            }
            match kind {
                Kind::OrgUnit if input.get("parent") == Some(&Value::Null) => {
                    patch.insert("parent".into(), Value::Null);
                }
                Kind::Manager => {
                    patch.entry("person").or_insert(Value::Null);
                    if input.get("engagement") == Some(&Value::Null) {
                        patch.insert("engagement".into(), Value::Null);
                    }
                }
                Kind::Association if !m.it_association => {
                    patch.entry("substitute").or_insert(Value::Null);
                }
                _ => {}
            }
        }
        let mut new = old.clone();
        new.apply_update(from, to, &patch, full);
        if kind == Kind::OrgUnit && patch.contains_key("org_unit_hierarchy") {
            new.keep_only_within(from, to, "org_unit_hierarchy");
        }
        if new.same_content(old) {
            return Ok((uuid, true));
        }
        match kind {
            Kind::Person => {
                if let Some(c) = get_str(&patch, "cpr_number") {
                    self.check_cpr(uuid, Some(c))?;
                }
            }
            Kind::Address if patch.contains_key("value") || patch.contains_key("address_type") => {
                for s in new
                    .visible()
                    .iter()
                    .filter(|s| overlaps(s.from, s.to, from, to))
                {
                    let value = get_str(&s.vals, "value").unwrap_or_default();
                    self.check_address(get_uuid(&s.vals, "address_type"), value)?;
                }
            }
            Kind::ItUser if patch.contains_key("itsystem") => {
                let sys = get_uuid(&patch, "itsystem");
                if sys.is_none_or(|s| self.store.get(Kind::ItSystem, &s).is_none()) {
                    return Err(GqlError::mo("E_NOT_FOUND", 404, "Not found.", json!({})));
                }
            }
            _ => {}
        }
        self.check_ranges(kind, &new, from, to)?;
        new.registrations.push(jiff::Timestamp::now());
        self.store.put(undo, kind, uuid, Some(new));
        Ok((uuid, false))
    }

    fn terminate(
        &mut self,
        m: Mutation,
        input: &Map<String, Value>,
        undo: &mut UndoLog,
        today: Date,
    ) -> Result<(Uuid, bool), GqlError> {
        let kind = m.kind;
        let uuid = get_uuid(input, "uuid").expect("coerced");
        let to = midnight(input.get("to").expect("coerced"))?;
        let from = match input.get("from").filter(|v| !v.is_null()) {
            Some(v) => Some(midnight(v)?),
            None => None,
        };
        let Some(old) = self.store.get(kind, &uuid) else {
            return Err(GqlError::mo(
                "E_NOT_FOUND",
                404,
                "Not found.",
                json!({"uuid": uuid.to_string()}),
            ));
        };
        let (a, b) = match from {
            Some(f) => (f, to),
            None => (to, POS_INF),
        };
        if b < a {
            return Err(GqlError::new(format!(
                "1 validation error for Validity\n__root__\n  from_date {} must be less than or equal to to_date {} (type=value_error)",
                format_python(a),
                format_python(b)
            )));
        }
        if kind == Kind::Person {
            // Ends the person's functions, not the person.
            let _ = today;
            for fk in Kind::ALL.into_iter().filter(|k| k.is_function()) {
                let hits: Vec<(Uuid, Obj)> = self
                    .store
                    .map(fk)
                    .iter()
                    .filter(|(_, o)| {
                        o.visible().iter().any(|s| {
                            get_uuid(&s.vals, "person") == Some(uuid)
                                && overlaps(s.from, s.to, a, b)
                        })
                    })
                    .map(|(u, o)| (*u, o.clone()))
                    .collect();
                for (u, mut o) in hits {
                    o.active = subtract_interval(&o.active, a, b);
                    o.registrations.push(jiff::Timestamp::now());
                    self.store.put(undo, fk, u, Some(o));
                }
            }
            return Ok((uuid, false));
        }
        if kind == Kind::OrgUnit {
            self.check_unit_termination(uuid, a, b)?;
        }
        let mut new = old.clone();
        new.active = subtract_interval(&new.active, a, b);
        if new.same_content(old) {
            return Ok((uuid, true));
        }
        new.registrations.push(jiff::Timestamp::now());
        self.store.put(undo, kind, uuid, Some(new));
        Ok((uuid, false))
    }

    fn check_unit_termination(&self, unit: Uuid, a: Date, b: Date) -> Result<(), GqlError> {
        let active_link = |o: &Obj, k: &str| {
            o.visible()
                .iter()
                .any(|s| get_uuid(&s.vals, k) == Some(unit) && overlaps(s.from, s.to, a, b))
        };
        let children = self
            .store
            .map(Kind::OrgUnit)
            .values()
            .filter(|o| active_link(o, "parent"))
            .count();
        let mut roles: Vec<&str> = Kind::ALL
            .into_iter()
            .filter(|k| {
                k.is_function()
                    && self
                        .store
                        .map(*k)
                        .values()
                        .any(|o| active_link(o, "org_unit"))
            })
            .map(Kind::function_name)
            .collect();
        roles.sort();
        let roles = roles.join(", ");
        match (children > 0, !roles.is_empty()) {
            (true, true) => Err(GqlError::mo(
                "V_TERMINATE_UNIT_WITH_CHILDREN_AND_ROLES",
                400,
                "Cannot terminate unit with active children and roles.",
                json!({"child_count": children, "roles": roles}),
            )),
            (true, false) => Err(GqlError::mo(
                "V_TERMINATE_UNIT_WITH_CHILDREN",
                400,
                "Cannot terminate unit with active children.",
                json!({"child_count": children}),
            )),
            (false, true) => Err(GqlError::mo(
                "V_TERMINATE_UNIT_WITH_ROLES",
                400,
                "Cannot terminate unit with active roles.",
                json!({"roles": roles}),
            )),
            (false, false) => Ok(()),
        }
    }

    fn check_cpr(&self, uuid: Uuid, cpr: Option<&str>) -> Result<(), GqlError> {
        if let Some(c) = cpr
            && let Some(other) = self.store.cprs.get(c)
            && *other != uuid
        {
            return Err(GqlError::mo(
                "V_EXISTING_CPR",
                409,
                "Person with CPR number already exists.",
                json!({}),
            ));
        }
        Ok(())
    }

    /// Exactly one of `person` / `org_unit`.
    fn check_owner(&self, vals: &Map<String, Value>, exactly_one: bool) -> Result<(), GqlError> {
        let p = !vals.get("person").is_none_or(Value::is_null);
        let u = !vals.get("org_unit").is_none_or(Value::is_null);
        if exactly_one && p == u {
            return Err(invalid_input(
                "Must supply exactly one of org_unit or person (employee).",
            ));
        }
        Ok(())
    }

    /// The address type class decides (through its scope) how the value is checked.
    fn check_address(&self, address_type: Option<Uuid>, value: &str) -> Result<(), GqlError> {
        let today = self.today();
        let scope = address_type
            .and_then(|u| self.store.get(Kind::Class, &u))
            .and_then(|o| {
                let vis = o.visible();
                let s = vis
                    .iter()
                    .find(|s| s.from <= today && today < s.to)
                    .or(vis.last())
                    .cloned();
                s.and_then(|s| get_str(&s.vals, "scope").map(String::from))
            });
        let Some(scope) = scope else {
            return Err(GqlError::mo(
                "V_MISSING_REQUIRED_VALUE",
                400,
                "Missing scope",
                json!({"key": "scope", "obj": null}),
            ));
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let bad =
            |key: &str, desc: &str| Err(GqlError::mo(key, 400, desc, json!({"value": value})));
        match scope.as_str() {
            "EMAIL" if !valid_email(value) => bad("V_INVALID_ADDRESS_EMAIL", "Invalid email"),
            "PHONE" if !digits(value.strip_prefix('+').unwrap_or(value)) => {
                bad("V_INVALID_ADDRESS_PHONE", "Invalid phone number")
            }
            "EAN" if !(value.len() == 13 && digits(value)) => {
                bad("V_INVALID_ADDRESS_EAN", "Invalid EAN")
            }
            "PNUMBER" if !(value.len() == 10 && digits(value)) => {
                bad("V_INVALID_ADDRESS_P_NUMBER", "Invalid P-number")
            }
            "WWW"
                if !(value
                    .strip_prefix("https://")
                    .or_else(|| value.strip_prefix("http://")))
                .is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace)) =>
            {
                bad("V_INVALID_ADDRESS_WWW", "Invalid web address")
            }
            "DAR" | "UUID" if Uuid::parse_str(value).is_err() => {
                bad("E_INVALID_INPUT", "Invalid UUID")
            }
            "EMAIL" | "PHONE" | "EAN" | "PNUMBER" | "WWW" | "DAR" | "UUID" | "TEXT"
            | "MULTIFIELD_TEXT" => Ok(()),
            other => Err(invalid_input(format!(
                "Invalid address type scope: {other}"
            ))),
        }
    }

    /// A function (or unit) must lie inside the validity of its unit (or parent) and person.
    fn check_ranges(&self, kind: Kind, obj: &Obj, from: Date, to: Date) -> Result<(), GqlError> {
        let unit_key = match kind {
            Kind::OrgUnit => Some("parent"),
            k if k.is_function() => Some("org_unit"),
            _ => None,
        };
        let person_key = if kind.is_function() && kind != Kind::Kle {
            Some("person")
        } else {
            None
        };
        let slices = if from == to {
            obj.attrs
                .iter()
                .filter(|s| s.from <= from && from <= s.to)
                .cloned()
                .collect()
        } else {
            obj.visible()
        };
        for s in slices
            .iter()
            .filter(|s| from == to || overlaps(s.from, s.to, from, to))
        {
            let (a, b) = (s.from.max(from), s.to.min(to));
            if let Some(k) = unit_key
                && let Some(u) = get_uuid(&s.vals, k)
            {
                let Some(unit) = self.store.get(Kind::OrgUnit, &u) else {
                    return Err(GqlError::mo(
                        "E_ORG_UNIT_NOT_FOUND",
                        404,
                        "Organisational unit not found.",
                        json!({"org_unit_uuid": u.to_string()}),
                    ));
                };
                let cov = unit.coverage();
                if !covered(&cov, a, b) {
                    let (vf, vt) = nearest(&cov, a);
                    return Err(GqlError::mo(
                        "V_DATE_OUTSIDE_ORG_UNIT_RANGE",
                        400,
                        "Date range exceeds validity range of the organisation unit.",
                        json!({"org_unit_uuid": u.to_string(), "valid_from": date_text(vf, NEG_INF), "valid_to": date_text(vt, POS_INF)}),
                    ));
                }
            }
            if let Some(k) = person_key
                && let Some(p) = get_uuid(&s.vals, k)
            {
                let Some(person) = self.store.get(Kind::Person, &p) else {
                    return Err(GqlError::mo(
                        "E_USER_NOT_FOUND",
                        404,
                        "User not found.",
                        json!({"employee_uuid": p.to_string()}),
                    ));
                };
                let cov = person.coverage();
                if !covered(&cov, a, b) {
                    let (vf, vt) = nearest(&cov, a);
                    return Err(GqlError::mo(
                        "V_DATE_OUTSIDE_EMPL_RANGE",
                        400,
                        "Date range exceeds validity range of the employee.",
                        json!({"employee_uuid": p.to_string(), "valid_from": date_text(vf, NEG_INF), "valid_to": date_text(vt, POS_INF)}),
                    ));
                }
            }
            if kind == Kind::Leave
                && let Some(e) = get_uuid(&s.vals, "engagement")
                && !self
                    .store
                    .get(Kind::Engagement, &e)
                    .is_some_and(|o| covered(&o.coverage(), a, b))
            {
                return Err(GqlError::mo(
                    "V_NO_ACTIVE_ENGAGEMENT",
                    400,
                    "Employee must have an active engagement.",
                    json!({"engagement_uuid": e.to_string()}),
                ));
            }
        }
        Ok(())
    }
}

/// The covered interval containing `d`, else the first one (for error details).
fn nearest(cov: &[(Date, Date)], d: Date) -> (Date, Date) {
    cov.iter()
        .copied()
        .find(|&(a, b)| a <= d && d < b)
        .or_else(|| cov.first().copied())
        .unwrap_or((NEG_INF, POS_INF))
}
