//! How each dipex kind maps onto OS2mo GraphQL v30: the collection and its filter type, the
//! fields read inside `validities { … }`, the mutations and input types, and the conversions
//! between dipex values and MO's JSON in both directions (`specs/os2mo-api.md` §3).
//!
//! Rulings that are not one-to-one (documented in `docs/os2mo.md`):
//! * a `role` (OPUS `<function>`) is an MO association whose association type is a class of the
//!   `role_type` facet (v30 has no role object);
//! * persons have no validity in MO (they start at the CPR birth date); dipex reports a person's
//!   first slice as starting at minus infinity;
//! * empty engagement extension fields read as absent, and an absent one is written as `""`.

use super::error::Os2moError;
use dipex_model::{
    Address, Association, Class, Cpr, Engagement, Extensions, Facet, ItSystem, ItUser, Kind, Kle,
    Leave, Manager, OrgUnit, Person, Role, Validity, Value,
};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

/// The facet whose classes mark an association as a dipex `role`.
pub const ROLE_FACET: &str = "role_type";

/// The GraphQL names of one kind.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// Top-level query collection.
    pub collection: &'static str,
    pub filter_type: &'static str,
    /// Mutation prefix (`org_unit` → `org_unit_create`, …).
    pub mutation: &'static str,
    /// Input type prefix (`OrganisationUnit` → `OrganisationUnitCreateInput`, …).
    pub input: &'static str,
    /// The fields read for each validity.
    pub fields: &'static str,
}

pub fn names(kind: Kind) -> Option<Names> {
    let n = |collection, filter_type, mutation, input, fields| {
        Some(Names {
            collection,
            filter_type,
            mutation,
            input,
            fields,
        })
    };
    match kind {
        Kind::Organisation => None,
        Kind::Facet => n(
            "facets",
            "FacetFilter",
            "facet",
            "Facet",
            "user_key validity { from to }",
        ),
        Kind::Class => n(
            "classes",
            "ClassFilter",
            "class",
            "Class",
            "user_key name scope owner facet_response { uuid } parent_response { uuid } validity { from to }",
        ),
        Kind::ItSystem => n(
            "itsystems",
            "ITSystemFilter",
            "itsystem",
            "ITSystem",
            "user_key name validity { from to }",
        ),
        Kind::OrgUnit => n(
            "org_units",
            "OrganisationUnitFilter",
            "org_unit",
            "OrganisationUnit",
            "user_key name parent_response { uuid } unit_type_response { uuid } unit_level_response { uuid } \
             unit_hierarchy_response { uuid } time_planning_response { uuid } validity { from to }",
        ),
        Kind::Person => n(
            "persons",
            "EmployeeFilter",
            "employee",
            "Employee",
            "user_key given_name surname nickname_given_name nickname_surname cpr_number seniority validity { from to }",
        ),
        Kind::Engagement => n(
            "engagements",
            "EngagementFilter",
            "engagement",
            "Engagement",
            "user_key fraction extension_1 extension_2 extension_3 extension_4 extension_5 extension_6 extension_7 \
             extension_8 extension_9 extension_10 person_response { uuid } org_unit_response { uuid } \
             job_function_response { uuid } engagement_type_response { uuid } primary_response { uuid } validity { from to }",
        ),
        Kind::Address => n(
            "addresses",
            "AddressFilter",
            "address",
            "Address",
            "user_key value address_type_response { uuid } visibility_response { uuid } person_response { uuid } \
             org_unit_response { uuid } engagement_response { uuid } ituser_response { uuid } validity { from to }",
        ),
        Kind::ItUser => n(
            "itusers",
            "ITUserFilter",
            "ituser",
            "ITUser",
            "user_key external_id itsystem_response { uuid } person_response { uuid } org_unit_response { uuid } \
             primary_response { uuid } engagements_responses(filter: {from_date: null, to_date: null}) { objects { uuid } } \
             validity { from to }",
        ),
        Kind::Manager => n(
            "managers",
            "ManagerFilter",
            "manager",
            "Manager",
            "user_key person_response { uuid } org_unit_response { uuid } engagement_response { uuid } \
             manager_type_response { uuid } manager_level_response { uuid } \
             responsibilities_response(filter: {from_date: null, to_date: null}) { objects { uuid } } validity { from to }",
        ),
        Kind::Role | Kind::Association => n(
            "associations",
            "AssociationFilter",
            "association",
            "Association",
            "user_key person_response { uuid } org_unit_response { uuid } association_type_response { uuid } \
             primary_response { uuid } substitute_response { uuid } job_function_response { uuid } \
             it_user_response { uuid } validity { from to }",
        ),
        Kind::Leave => n(
            "leaves",
            "LeaveFilter",
            "leave",
            "Leave",
            "user_key person_response { uuid } engagement_response { uuid } leave_type_response { uuid } validity { from to }",
        ),
        Kind::Kle => n(
            "kles",
            "KLEFilter",
            "kle",
            "KLE",
            "user_key org_unit_response { uuid } kle_number_response { uuid } \
             kle_aspects_response(filter: {from_date: null, to_date: null}) { objects { uuid } } validity { from to }",
        ),
    }
}

/// The mutation prefix and input type prefix for writing `value` (IT associations have their
/// own mutations).
pub fn write_names(value: &Value) -> Option<(&'static str, &'static str)> {
    match value {
        Value::Association(a) if a.it_association => Some(("itassociation", "ITAssociation")),
        v => names(v.kind()).map(|n| (n.mutation, n.input)),
    }
}

// ---------------------------------------------------------------------------------------------
// Dates

/// A plain `YYYY-MM-DD`, as MO must be sent (`specs/os2mo-observed.md` §5.3).
pub fn date_text(d: jiff::civil::Date) -> String {
    d.to_string()
}

fn opt_date(d: Option<jiff::civil::Date>) -> Json {
    d.map_or(Json::Null, |d| Json::String(date_text(d)))
}

/// The validity input of a create or update.
pub fn validity_input(v: &Validity) -> Json {
    json!({"from": opt_date(v.from), "to": opt_date(v.to)})
}

/// A returned boundary: `YYYY-MM-DDT00:00:00+01:00` (or `+02:00`, or a pre-1894 offset with
/// seconds); only the calendar date counts.
pub fn parse_boundary(v: &Json, what: &str) -> Result<Option<jiff::civil::Date>, Os2moError> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => {
            let day = s.get(..10).unwrap_or(s);
            day.parse::<jiff::civil::Date>()
                .map(Some)
                .map_err(|e| Os2moError::Decode {
                    what: what.to_string(),
                    reason: format!("bad date {s:?}: {e}"),
                })
        }
        other => Err(Os2moError::Decode {
            what: what.to_string(),
            reason: format!("bad date {other}"),
        }),
    }
}

pub fn parse_validity(v: &Json, what: &str) -> Result<Validity, Os2moError> {
    let Some(o) = v.get("validity") else {
        return Err(Os2moError::Decode {
            what: what.to_string(),
            reason: "no validity".into(),
        });
    };
    Ok(Validity::new(
        parse_boundary(o.get("from").unwrap_or(&Json::Null), what)?,
        parse_boundary(o.get("to").unwrap_or(&Json::Null), what)?,
    ))
}

/// The calendar date a CPR number gives as birth date, by MO's century rule (digit 7).
pub fn birth_date(cpr: &Cpr) -> Option<jiff::civil::Date> {
    let d = cpr.expose().as_bytes();
    let num = |i: usize| i16::from(d[i] - b'0') * 10 + i16::from(d[i + 1] - b'0');
    let (day, month, yy, c) = (num(0), num(2), num(4), d[6] - b'0');
    let century = match c {
        0..=3 => 1900,
        4 | 9 => {
            if yy <= 36 {
                2000
            } else {
                1900
            }
        }
        _ => {
            if yy <= 57 {
                2000
            } else {
                1800
            }
        }
    };
    jiff::civil::Date::new(century + yy, month as i8, day as i8).ok()
}

// ---------------------------------------------------------------------------------------------
// Reading

fn link(v: &Json, field: &str) -> Option<Uuid> {
    v.get(field)
        .and_then(|l| l.get("uuid"))
        .and_then(Json::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn links(v: &Json, field: &str) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = v
        .get(field)
        .and_then(|l| l.get("objects"))
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("uuid")?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

fn text(v: &Json, field: &str) -> Option<String> {
    v.get(field).and_then(Json::as_str).map(str::to_string)
}

/// Text that dipex treats as absent when empty (extension fields).
fn text_nonempty(v: &Json, field: &str) -> Option<String> {
    text(v, field).filter(|s| !s.is_empty())
}

struct Reader<'a> {
    v: &'a Json,
    what: String,
}

impl Reader<'_> {
    fn s(&self, field: &str) -> String {
        text(self.v, field).unwrap_or_default()
    }
    /// A link dipex's model requires; a missing one (inconsistent data in MO) reads as the nil
    /// uuid, with a warning, so one odd object cannot stop a whole read.
    fn required(&self, field: &str) -> Uuid {
        link(self.v, field).unwrap_or_else(|| {
            tracing::warn!("{}: {field} is empty in OS2mo", self.what);
            Uuid::nil()
        })
    }
}

/// One validity of `kind` (JSON as selected by [`names`]) → a dipex value.
pub fn decode(kind: Kind, uuid: Uuid, v: &Json) -> Result<(Validity, Value), Os2moError> {
    let what = format!("{kind} {uuid}");
    let validity = parse_validity(v, &what)?;
    let r = Reader {
        v,
        what: what.clone(),
    };
    let value = match kind {
        Kind::Organisation => {
            return Err(Os2moError::Decode {
                what,
                reason: "the organisation has no validities".into(),
            });
        }
        Kind::Facet => Value::Facet(Facet {
            user_key: r.s("user_key"),
        }),
        Kind::Class => Value::Class(Class {
            user_key: r.s("user_key"),
            name: r.s("name"),
            facet: r.required("facet_response"),
            scope: text(v, "scope"),
            parent: link(v, "parent_response"),
            owner: text(v, "owner").and_then(|s| s.parse().ok()),
        }),
        Kind::ItSystem => Value::ItSystem(ItSystem {
            user_key: r.s("user_key"),
            name: r.s("name"),
        }),
        Kind::OrgUnit => Value::OrgUnit(OrgUnit {
            user_key: r.s("user_key"),
            name: r.s("name"),
            parent: link(v, "parent_response"),
            unit_type: link(v, "unit_type_response"),
            unit_level: link(v, "unit_level_response"),
            unit_hierarchy: link(v, "unit_hierarchy_response"),
            time_planning: link(v, "time_planning_response"),
        }),
        Kind::Person => Value::Person(Person {
            user_key: r.s("user_key"),
            given_name: r.s("given_name"),
            surname: r.s("surname"),
            nickname_given_name: text_nonempty(v, "nickname_given_name"),
            nickname_surname: text_nonempty(v, "nickname_surname"),
            cpr_number: match text(v, "cpr_number") {
                Some(c) => Some(Cpr::parse(&c).map_err(|e| Os2moError::Decode {
                    what: what.clone(),
                    reason: e.to_string(),
                })?),
                None => None,
            },
            seniority: match text(v, "seniority") {
                Some(s) => parse_boundary(&Json::String(s), &what)?,
                None => None,
            },
        }),
        Kind::Engagement => Value::Engagement(Engagement {
            user_key: r.s("user_key"),
            person: r.required("person_response"),
            org_unit: r.required("org_unit_response"),
            job_function: r.required("job_function_response"),
            engagement_type: r.required("engagement_type_response"),
            primary: link(v, "primary_response"),
            fraction: v.get("fraction").and_then(Json::as_u64).map(|f| f as u32),
            extensions: Box::new(Extensions {
                extension_1: text_nonempty(v, "extension_1"),
                extension_2: text_nonempty(v, "extension_2"),
                extension_3: text_nonempty(v, "extension_3"),
                extension_4: text_nonempty(v, "extension_4"),
                extension_5: text_nonempty(v, "extension_5"),
                extension_6: text_nonempty(v, "extension_6"),
                extension_7: text_nonempty(v, "extension_7"),
                extension_8: text_nonempty(v, "extension_8"),
                extension_9: text_nonempty(v, "extension_9"),
                extension_10: text_nonempty(v, "extension_10"),
            }),
        }),
        Kind::Address => Value::Address(Address {
            user_key: r.s("user_key"),
            value: r.s("value"),
            address_type: r.required("address_type_response"),
            visibility: link(v, "visibility_response"),
            person: link(v, "person_response"),
            org_unit: link(v, "org_unit_response"),
            engagement: link(v, "engagement_response"),
            ituser: link(v, "ituser_response"),
        }),
        Kind::ItUser => Value::ItUser(ItUser {
            user_key: r.s("user_key"),
            itsystem: r.required("itsystem_response"),
            person: link(v, "person_response"),
            org_unit: link(v, "org_unit_response"),
            external_id: text(v, "external_id"),
            engagements: links(v, "engagements_responses"),
            primary: link(v, "primary_response"),
        }),
        Kind::Manager => Value::Manager(Manager {
            user_key: r.s("user_key"),
            org_unit: r.required("org_unit_response"),
            person: link(v, "person_response"),
            engagement: link(v, "engagement_response"),
            manager_type: r.required("manager_type_response"),
            manager_level: r.required("manager_level_response"),
            responsibilities: links(v, "responsibilities_response"),
        }),
        Kind::Role => Value::Role(Role {
            user_key: r.s("user_key"),
            person: r.required("person_response"),
            org_unit: r.required("org_unit_response"),
            role_type: r.required("association_type_response"),
        }),
        Kind::Association => {
            let it_user = link(v, "it_user_response");
            Value::Association(Association {
                user_key: r.s("user_key"),
                person: r.required("person_response"),
                org_unit: r.required("org_unit_response"),
                association_type: if it_user.is_some() {
                    link(v, "association_type_response").unwrap_or_default()
                } else {
                    r.required("association_type_response")
                },
                primary: link(v, "primary_response"),
                substitute: link(v, "substitute_response"),
                job_function: link(v, "job_function_response"),
                it_user,
                it_association: it_user.is_some(),
            })
        }
        Kind::Leave => Value::Leave(Leave {
            user_key: r.s("user_key"),
            person: r.required("person_response"),
            engagement: r.required("engagement_response"),
            leave_type: r.required("leave_type_response"),
        }),
        Kind::Kle => Value::Kle(Kle {
            user_key: r.s("user_key"),
            org_unit: r.required("org_unit_response"),
            kle_number: r.required("kle_number_response"),
            kle_aspects: links(v, "kle_aspects_response"),
        }),
    };
    Ok((validity, value))
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Create or update: an update must say what to clear where MO allows clearing, and must leave
/// out what MO cannot clear (for most inputs an omitted field and `null` both mean "unchanged").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Create,
    Update,
}

struct Fields {
    map: Map<String, Json>,
    mode: Mode,
}

impl Fields {
    fn new(mode: Mode) -> Fields {
        Fields {
            map: Map::new(),
            mode,
        }
    }
    fn s(&mut self, k: &str, v: &str) {
        self.map.insert(k.into(), Json::String(v.to_string()));
    }
    fn u(&mut self, k: &str, v: Uuid) {
        self.map.insert(k.into(), Json::String(v.to_string()));
    }
    /// Optional, and MO cannot clear it: sent only when set.
    fn opt<T: ToString>(&mut self, k: &str, v: &Option<T>) {
        if let Some(v) = v {
            self.map.insert(k.into(), Json::String(v.to_string()));
        }
    }
    /// Optional, and `null` clears it on update.
    fn clearable(&mut self, k: &str, v: &Option<Uuid>) {
        match v {
            Some(v) => self.u(k, *v),
            None if self.mode == Mode::Update => {
                self.map.insert(k.into(), Json::Null);
            }
            None => {}
        }
    }
    /// Always sent; `null` is meaningful on create and update alike.
    fn always(&mut self, k: &str, v: &Option<Uuid>) {
        self.map.insert(
            k.into(),
            v.map_or(Json::Null, |u| Json::String(u.to_string())),
        );
    }
    fn list(&mut self, k: &str, v: &[Uuid]) {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        self.map.insert(
            k.into(),
            Json::Array(v.into_iter().map(|u| Json::String(u.to_string())).collect()),
        );
    }
}

/// The fields of a create or update input for `value` (without `uuid` and `validity`).
/// `role_type` is not needed: a role's class goes into `association_type`.
pub fn encode(value: &Value, mode: Mode) -> Result<Map<String, Json>, Os2moError> {
    let mut f = Fields::new(mode);
    match value {
        Value::Organisation(_) => {
            return Err(Os2moError::Unsupported(
                "OS2mo has exactly one root organisation, created by OS2mo itself; dipex cannot create or change it".into(),
            ));
        }
        Value::Facet(v) => f.s("user_key", &v.user_key),
        Value::Class(v) => {
            // Classes are restated in full on update.
            f.s("user_key", &v.user_key);
            f.s("name", &v.name);
            f.u("facet_uuid", v.facet);
            f.opt("scope", &v.scope);
            f.opt("parent_uuid", &v.parent);
            f.opt("owner", &v.owner);
        }
        Value::ItSystem(v) => {
            f.s("user_key", &v.user_key);
            f.s("name", &v.name);
        }
        Value::OrgUnit(v) => {
            f.s("user_key", &v.user_key);
            f.s("name", &v.name);
            // `parent: null` moves a unit to the top level.
            f.clearable("parent", &v.parent);
            match (mode, v.unit_type) {
                (_, Some(t)) => f.u("org_unit_type", t),
                (Mode::Create, None) => {
                    return Err(Os2moError::Unsupported(format!(
                        "org unit {:?} has no unit type, which OS2mo requires",
                        v.user_key
                    )));
                }
                (Mode::Update, None) => {}
            }
            f.opt("org_unit_level", &v.unit_level);
            f.opt("org_unit_hierarchy", &v.unit_hierarchy);
            f.opt("time_planning", &v.time_planning);
        }
        Value::Person(v) => {
            f.s("user_key", &v.user_key);
            f.s("given_name", &v.given_name);
            f.s("surname", &v.surname);
            f.opt("nickname_given_name", &v.nickname_given_name);
            f.opt("nickname_surname", &v.nickname_surname);
            if let Some(c) = &v.cpr_number {
                f.s("cpr_number", c.expose());
            }
            f.opt("seniority", &v.seniority);
        }
        Value::Engagement(v) => {
            f.s("user_key", &v.user_key);
            f.u("person", v.person);
            f.u("org_unit", v.org_unit);
            f.u("job_function", v.job_function);
            f.u("engagement_type", v.engagement_type);
            f.opt("primary", &v.primary);
            if let Some(x) = v.fraction {
                f.map.insert("fraction".into(), json!(x));
            }
            for n in 1..=10 {
                match (v.extensions.get(n), mode) {
                    (Some(x), _) => f.s(&format!("extension_{n}"), x),
                    // An extension field cannot be nulled; "" blanks it.
                    (None, Mode::Update) => f.s(&format!("extension_{n}"), ""),
                    (None, Mode::Create) => {}
                }
            }
        }
        Value::Address(v) => {
            f.s("user_key", &v.user_key);
            f.s("value", &v.value);
            f.u("address_type", v.address_type);
            f.opt("visibility", &v.visibility);
            f.opt("person", &v.person);
            f.opt("org_unit", &v.org_unit);
            f.opt("engagement", &v.engagement);
            f.opt("ituser", &v.ituser);
        }
        Value::ItUser(v) => {
            f.s("user_key", &v.user_key);
            f.u("itsystem", v.itsystem);
            f.opt("person", &v.person);
            f.opt("org_unit", &v.org_unit);
            f.opt("external_id", &v.external_id);
            if !v.engagements.is_empty() || mode == Mode::Update {
                f.list("engagements", &v.engagements);
            }
            f.opt("primary", &v.primary);
        }
        Value::Manager(v) => {
            f.s("user_key", &v.user_key);
            f.u("org_unit", v.org_unit);
            // Omitted or null both make the position vacant: always say who holds it.
            f.always("person", &v.person);
            f.clearable("engagement", &v.engagement);
            f.u("manager_type", v.manager_type);
            f.u("manager_level", v.manager_level);
            f.list("responsibility", &v.responsibilities);
        }
        Value::Role(v) => {
            f.s("user_key", &v.user_key);
            f.u("person", v.person);
            f.u("org_unit", v.org_unit);
            f.u("association_type", v.role_type);
        }
        Value::Association(v) => {
            f.s("user_key", &v.user_key);
            // An IT association's person cannot be changed (no `person` in its update input).
            if !(v.it_association && mode == Mode::Update) {
                f.u("person", v.person);
            }
            f.u("org_unit", v.org_unit);
            f.opt("primary", &v.primary);
            if v.it_association {
                f.opt("it_user", &v.it_user);
                f.opt("job_function", &v.job_function);
            } else {
                f.u("association_type", v.association_type);
                // Omitting the substitute clears it, so this is exact on update.
                f.opt("substitute", &v.substitute);
            }
        }
        Value::Leave(v) => {
            f.s("user_key", &v.user_key);
            f.u("person", v.person);
            f.u("engagement", v.engagement);
            f.u("leave_type", v.leave_type);
        }
        Value::Kle(v) => {
            f.s("user_key", &v.user_key);
            f.u("org_unit", v.org_unit);
            f.u("kle_number", v.kle_number);
            f.list("kle_aspects", &v.kle_aspects);
        }
    }
    Ok(f.map)
}

/// Whether MO takes a validity for this kind at all (persons have none on create).
pub fn create_takes_validity(kind: Kind) -> bool {
    kind != Kind::Person
}

/// Whether `validity.from` may be null (`ValidityInput` / `RAOpenValidityInput`).
pub fn open_from(kind: Kind) -> bool {
    matches!(kind, Kind::Facet | Kind::Class | Kind::ItSystem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_follow_the_century_digit() {
        let b = |s: &str| birth_date(&Cpr::parse(s).unwrap()).map(|d| d.to_string());
        assert_eq!(b("0101700000").as_deref(), Some("1970-01-01"));
        assert_eq!(b("0101054000").as_deref(), Some("2005-01-01"));
        assert_eq!(b("0101554000").as_deref(), Some("1955-01-01"));
        assert_eq!(b("0101555000").as_deref(), Some("2055-01-01"));
        assert_eq!(b("0101905000").as_deref(), Some("1890-01-01"));
        assert_eq!(b("3102700000"), None);
    }

    #[test]
    fn boundaries_parse_leniently() {
        let d = |s: &str| {
            parse_boundary(&Json::String(s.into()), "t")
                .unwrap()
                .unwrap()
                .to_string()
        };
        assert_eq!(d("2024-07-01T00:00:00+02:00"), "2024-07-01");
        assert_eq!(d("1880-01-01T00:00:00+00:50:20"), "1880-01-01");
        assert_eq!(d("2024-01-01"), "2024-01-01");
        assert!(parse_boundary(&Json::Null, "t").unwrap().is_none());
    }

    #[test]
    fn updates_say_what_to_clear_and_leave_out_what_mo_cannot_clear() {
        let m = Value::Manager(Manager {
            user_key: "m".into(),
            org_unit: Uuid::nil(),
            person: None,
            engagement: None,
            manager_type: Uuid::nil(),
            manager_level: Uuid::nil(),
            responsibilities: vec![],
        });
        let create = encode(&m, Mode::Create).unwrap();
        assert_eq!(create.get("person"), Some(&Json::Null));
        assert!(!create.contains_key("engagement"));
        let update = encode(&m, Mode::Update).unwrap();
        assert_eq!(update.get("engagement"), Some(&Json::Null));
        let u = Value::OrgUnit(OrgUnit {
            user_key: "u".into(),
            name: "U".into(),
            parent: None,
            unit_type: None,
            unit_level: None,
            unit_hierarchy: None,
            time_planning: None,
        });
        assert!(
            encode(&u, Mode::Create).is_err(),
            "OS2mo requires a unit type"
        );
        let upd = encode(&u, Mode::Update).unwrap();
        assert_eq!(upd.get("parent"), Some(&Json::Null));
        assert!(!upd.contains_key("org_unit_level"));
    }
}
