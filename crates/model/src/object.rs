//! MO's object kinds as plain values, and [`Object`]: one MO object (a uuid) with its validity
//! slices. Every kind that dipex's integrations read or write is here; the field names follow
//! OS2mo GraphQL v30 (`specs/os2mo-api.md` §3) so the OS2mo backend maps them one to one.

use crate::{Cpr, Validity, validity};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The kinds of MO objects, in the order a plan must create them (dependencies first).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Organisation,
    Facet,
    Class,
    ItSystem,
    OrgUnit,
    Person,
    Engagement,
    Address,
    ItUser,
    Manager,
    Role,
    Association,
    Leave,
    Kle,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Organisation,
        Kind::Facet,
        Kind::Class,
        Kind::ItSystem,
        Kind::OrgUnit,
        Kind::Person,
        Kind::Engagement,
        Kind::Address,
        Kind::ItUser,
        Kind::Manager,
        Kind::Role,
        Kind::Association,
        Kind::Leave,
        Kind::Kle,
    ];

    /// The stable name used in the store, in `mo dump` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organisation => "organisation",
            Kind::Facet => "facet",
            Kind::Class => "class",
            Kind::ItSystem => "it_system",
            Kind::OrgUnit => "org_unit",
            Kind::Person => "person",
            Kind::Engagement => "engagement",
            Kind::Address => "address",
            Kind::ItUser => "it_user",
            Kind::Manager => "manager",
            Kind::Role => "role",
            Kind::Association => "association",
            Kind::Leave => "leave",
            Kind::Kle => "kle",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The single root organisation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Organisation {
    pub user_key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<u32>,
}

/// A code list (`org_unit_type`, `engagement_type`, …); its user_key is its identity.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Facet {
    pub user_key: String,
}

/// A value of a facet.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Class {
    pub user_key: String,
    pub name: String,
    pub facet: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Uuid>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OrgUnit {
    pub user_key: String,
    pub name: String,
    /// `None` for a top-level unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_type: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_level: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_hierarchy: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_planning: Option<Uuid>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Person {
    pub user_key: String,
    pub given_name: String,
    pub surname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname_given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname_surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpr_number: Option<Cpr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seniority: Option<jiff::civil::Date>,
}

/// `extension_1` … `extension_10` of an engagement.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Extensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_7: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_8: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_9: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_10: Option<String>,
}

impl Extensions {
    /// Extension field `n` (1-based), e.g. for a configurable job-title override.
    pub fn get(&self, n: usize) -> Option<&str> {
        let f = match n {
            1 => &self.extension_1,
            2 => &self.extension_2,
            3 => &self.extension_3,
            4 => &self.extension_4,
            5 => &self.extension_5,
            6 => &self.extension_6,
            7 => &self.extension_7,
            8 => &self.extension_8,
            9 => &self.extension_9,
            10 => &self.extension_10,
            _ => return None,
        };
        f.as_deref()
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Engagement {
    pub user_key: String,
    pub person: Uuid,
    pub org_unit: Uuid,
    pub job_function: Uuid,
    pub engagement_type: Uuid,
    /// A class of the `primary_type` facet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Uuid>,
    /// 0 ..= 1_000_000 (parts per million of full time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<u32>,
    /// Boxed: most engagements have none, and it would make every `Value` large.
    #[serde(flatten)]
    pub extensions: Box<Extensions>,
}

/// A typed contact value of a person or an org unit (exactly one of them).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Address {
    pub user_key: String,
    pub value: String,
    pub address_type: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ituser: Option<Uuid>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ItSystem {
    pub user_key: String,
    pub name: String,
}

/// An account in an IT system, owned by a person or an org unit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ItUser {
    pub user_key: String,
    pub itsystem: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engagements: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Uuid>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Manager {
    pub user_key: String,
    pub org_unit: Uuid,
    /// `None` is a vacant position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Uuid>,
    pub manager_type: Uuid,
    pub manager_level: Uuid,
    #[serde(default)]
    pub responsibilities: Vec<Uuid>,
}

/// A person's role in an org unit (OPUS `<function>`), typed by a `role_type` class.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Role {
    pub user_key: String,
    pub person: Uuid,
    pub org_unit: Uuid,
    pub role_type: Uuid,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Association {
    pub user_key: String,
    pub person: Uuid,
    pub org_unit: Uuid,
    pub association_type: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_function: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub it_user: Option<Uuid>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub it_association: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Leave {
    pub user_key: String,
    pub person: Uuid,
    pub engagement: Uuid,
    pub leave_type: Uuid,
}

/// A KLE subject number with its aspects on an org unit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Kle {
    pub user_key: String,
    pub org_unit: Uuid,
    pub kle_number: Uuid,
    pub kle_aspects: Vec<Uuid>,
}

/// The value of one validity slice of any kind.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    Organisation(Organisation),
    Facet(Facet),
    Class(Class),
    ItSystem(ItSystem),
    OrgUnit(OrgUnit),
    Person(Person),
    Engagement(Engagement),
    Address(Address),
    ItUser(ItUser),
    Manager(Manager),
    Role(Role),
    Association(Association),
    Leave(Leave),
    Kle(Kle),
}

/// Index keys a backend may look objects up by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    /// Parent unit (org unit), facet (class).
    pub parent: Option<Uuid>,
    pub person: Option<Uuid>,
    pub org_unit: Option<Uuid>,
    /// IT system of an IT user.
    pub itsystem: Option<Uuid>,
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Organisation(_) => Kind::Organisation,
            Value::Facet(_) => Kind::Facet,
            Value::Class(_) => Kind::Class,
            Value::ItSystem(_) => Kind::ItSystem,
            Value::OrgUnit(_) => Kind::OrgUnit,
            Value::Person(_) => Kind::Person,
            Value::Engagement(_) => Kind::Engagement,
            Value::Address(_) => Kind::Address,
            Value::ItUser(_) => Kind::ItUser,
            Value::Manager(_) => Kind::Manager,
            Value::Role(_) => Kind::Role,
            Value::Association(_) => Kind::Association,
            Value::Leave(_) => Kind::Leave,
            Value::Kle(_) => Kind::Kle,
        }
    }

    pub fn user_key(&self) -> &str {
        match self {
            Value::Organisation(v) => &v.user_key,
            Value::Facet(v) => &v.user_key,
            Value::Class(v) => &v.user_key,
            Value::ItSystem(v) => &v.user_key,
            Value::OrgUnit(v) => &v.user_key,
            Value::Person(v) => &v.user_key,
            Value::Engagement(v) => &v.user_key,
            Value::Address(v) => &v.user_key,
            Value::ItUser(v) => &v.user_key,
            Value::Manager(v) => &v.user_key,
            Value::Role(v) => &v.user_key,
            Value::Association(v) => &v.user_key,
            Value::Leave(v) => &v.user_key,
            Value::Kle(v) => &v.user_key,
        }
    }

    /// The CPR number, for persons that have one.
    pub fn cpr(&self) -> Option<&Cpr> {
        match self {
            Value::Person(p) => p.cpr_number.as_ref(),
            _ => None,
        }
    }

    /// The references a backend indexes.
    pub fn refs(&self) -> Refs {
        let mut r = Refs::default();
        match self {
            Value::Organisation(_) | Value::Facet(_) | Value::ItSystem(_) | Value::Person(_) => {}
            Value::Class(c) => r.parent = Some(c.facet),
            Value::OrgUnit(u) => r.parent = u.parent,
            Value::Engagement(e) => {
                r.person = Some(e.person);
                r.org_unit = Some(e.org_unit);
            }
            Value::Address(a) => {
                r.person = a.person;
                r.org_unit = a.org_unit;
            }
            Value::ItUser(i) => {
                r.person = i.person;
                r.org_unit = i.org_unit;
                r.itsystem = Some(i.itsystem);
            }
            Value::Manager(m) => {
                r.person = m.person;
                r.org_unit = Some(m.org_unit);
            }
            Value::Role(x) => {
                r.person = Some(x.person);
                r.org_unit = Some(x.org_unit);
            }
            Value::Association(x) => {
                r.person = Some(x.person);
                r.org_unit = Some(x.org_unit);
            }
            Value::Leave(x) => r.person = Some(x.person),
            Value::Kle(x) => r.org_unit = Some(x.org_unit),
        }
        r
    }

    /// The value's fields as a JSON object without the `type` tag.
    pub fn fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("type");
                m
            }
            _ => unreachable!("a Value always serialises to a JSON object"),
        }
    }
}

/// One validity slice of an object.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Slice {
    pub validity: Validity,
    pub value: Value,
}

impl Slice {
    pub fn new(validity: Validity, value: Value) -> Slice {
        Slice { validity, value }
    }
}

/// The invariant of an object's slices was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("object {uuid} has no validity slices")]
    Empty { uuid: Uuid },
    #[error("object {uuid}: slice {validity} is empty")]
    EmptySlice { uuid: Uuid, validity: Validity },
    #[error("object {uuid}: slices {a} and {b} are unsorted or overlap")]
    Overlap {
        uuid: Uuid,
        a: Validity,
        b: Validity,
    },
    #[error("object {uuid}: slice {validity} is a {found}, expected {expected}")]
    MixedKinds {
        uuid: Uuid,
        validity: Validity,
        expected: Kind,
        found: Kind,
    },
}

/// One MO object: a uuid and its validity slices, sorted by `from`, non-overlapping, all of one
/// kind. Gaps between slices are periods where the object is inactive (terminated).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Object {
    pub uuid: Uuid,
    pub kind: Kind,
    pub slices: Vec<Slice>,
}

impl Object {
    pub fn new(uuid: Uuid, slices: Vec<Slice>) -> Result<Object, ObjectError> {
        let kind = slices
            .first()
            .map(|s| s.value.kind())
            .ok_or(ObjectError::Empty { uuid })?;
        let o = Object { uuid, kind, slices };
        o.check()?;
        Ok(o)
    }

    /// Check the slice invariant.
    pub fn check(&self) -> Result<(), ObjectError> {
        let uuid = self.uuid;
        if self.slices.is_empty() {
            return Err(ObjectError::Empty { uuid });
        }
        for s in &self.slices {
            if s.validity.is_empty() {
                return Err(ObjectError::EmptySlice {
                    uuid,
                    validity: s.validity,
                });
            }
            if s.value.kind() != self.kind {
                return Err(ObjectError::MixedKinds {
                    uuid,
                    validity: s.validity,
                    expected: self.kind,
                    found: s.value.kind(),
                });
            }
        }
        for w in self.slices.windows(2) {
            if validity::hi(w[0].validity.to) > validity::lo(w[1].validity.from) {
                return Err(ObjectError::Overlap {
                    uuid,
                    a: w[0].validity,
                    b: w[1].validity,
                });
            }
        }
        Ok(())
    }

    /// The slice valid on `day`.
    pub fn at(&self, day: jiff::civil::Date) -> Option<&Slice> {
        self.slices.iter().find(|s| s.validity.contains(day))
    }

    /// The latest slice (the current or last known state).
    pub fn last(&self) -> &Slice {
        self.slices
            .last()
            .expect("an object has at least one slice")
    }

    /// The slice valid on `day`, else the next one starting after it, else the last one.
    pub fn at_or_latest(&self, day: jiff::civil::Date) -> &Slice {
        self.at(day)
            .or_else(|| {
                self.slices
                    .iter()
                    .find(|s| validity::lo(s.validity.from) > day)
            })
            .unwrap_or_else(|| self.last())
    }

    /// Is the object active on any day of `window`?
    pub fn active_in(&self, window: &Validity) -> bool {
        self.slices.iter().any(|s| s.validity.overlaps(window))
    }

    /// The stable `mo dump` line: `{"type", "uuid", "validities": [{"from", "to", fields…}]}`.
    pub fn to_dump_json(&self) -> serde_json::Value {
        let validities: Vec<serde_json::Value> = self
            .slices
            .iter()
            .map(|s| {
                let mut m = s.value.fields_json();
                m.insert(
                    "from".into(),
                    serde_json::to_value(s.validity.from).unwrap(),
                );
                m.insert("to".into(), serde_json::to_value(s.validity.to).unwrap());
                serde_json::Value::Object(m)
            })
            .collect();
        serde_json::json!({"type": self.kind.as_str(), "uuid": self.uuid, "validities": validities})
    }
}
