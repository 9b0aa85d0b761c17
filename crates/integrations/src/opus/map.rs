//! OPUS records → the facts MO should hold (pure). Given the parsed dump, what changed, the
//! current MO objects the runner read, and the answers of the address register, it produces
//! [`Fact`]s in dependency order (classes, units parents first, persons, engagements, addresses,
//! IT users, managers, roles, then ends and deletions) plus the records it had to reject.
//!
//! Dates: OPUS speaks inclusive last days (`leaveDate`, `endDate`); MO validities are half-open,
//! so a last day D becomes `to = D + 1`. "Ended at the dump date" means the dump date is the
//! last valid day. A change takes effect from the record's `lastChanged` when that is on or
//! before the dump date, otherwise from the dump date (ruling 1).

use super::diff::{Changes, Tree};
use super::parse::{AddressField, Dump, Employee, EmployeeData, Unit};
use super::primary::{self, PrimaryClasses};
use super::uuids::OpusUuids;
use crate::ad::{self, AdLookup, Directory};
use crate::common::report::Problem;
use dipex_model::{
    Address, Class, Cpr, Date, Engagement, Facet, Fact, ItSystem, ItUser, Kind, Manager, Object,
    OrgUnit, Organisation, Person, Role, Validity, Value,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Settings that shape the mapping.
#[derive(Clone, Debug)]
pub struct Config {
    pub uuids: OpusUuids,
    pub municipality_name: String,
    /// Which unit field becomes the MO user_key (`@id`, `shortName`, `costCenter`, …).
    pub unit_user_key: String,
    pub filter_ids: Vec<String>,
    pub skip_employees: bool,
    pub skip_email: bool,
    pub skip_phone: bool,
    pub skip_address: bool,
    /// Engagement type classes (user_keys or uuids), most primary first.
    pub primary_order: Vec<String>,
}

impl Config {
    /// The defaults of the settings, for a municipality.
    pub fn new(municipality_name: &str) -> Config {
        Config {
            uuids: OpusUuids::new(municipality_name),
            municipality_name: municipality_name.to_string(),
            unit_user_key: "@id".into(),
            filter_ids: Vec::new(),
            skip_employees: false,
            skip_email: false,
            skip_phone: false,
            skip_address: false,
            primary_order: Vec::new(),
        }
    }
}

/// A record that was not imported, and why. Never carries a CPR number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub element: String,
    pub field: &'static str,
    pub reason: String,
}

impl Rejection {
    /// The rejection in the one report shape, in dump `file`.
    pub fn problem(&self, file: &str) -> Problem {
        Problem::rejected(file, self.reason.as_str())
            .at(Some(self.line))
            .element(self.element.as_str())
            .field(self.field)
    }
}

/// A warning about one record (`line`) or the whole dump. Never carries a CPR number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub line: Option<u64>,
    pub text: String,
}

impl Notice {
    pub fn at(line: u64, text: String) -> Notice {
        Notice {
            line: Some(line),
            text,
        }
    }
    pub fn general(text: String) -> Notice {
        Notice { line: None, text }
    }
    /// The warning in the one report shape, in dump `file`.
    pub fn problem(&self, file: &str) -> Problem {
        Problem::warning(file, self.text.as_str()).at(self.line)
    }
}

/// A fatal mapping error: nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error(
        "{line}: orgUnit id=\"{id}\": setting integrations.opus.unit_user_key names {key:?}, which this unit does not have"
    )]
    UnitUserKey { line: u64, id: String, key: String },
}

/// The answers of the address register: `(street, postal code)` → DAR uuid (`Ok(None)` = no
/// unambiguous match, `Err` = the lookup failed, with a reason that names no address).
pub type DarAnswers = HashMap<(String, String), Result<Option<Uuid>, String>>;

/// What the mapping produced.
#[derive(Debug, Default)]
pub struct Mapped {
    pub facts: Vec<Fact>,
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<Notice>,
}

/// Lookups over the current MO objects.
struct Index<'a> {
    current: &'a HashMap<Uuid, Object>,
    by_user_key: HashMap<Kind, HashMap<&'a str, Vec<Uuid>>>,
    person_by_cpr: HashMap<&'a Cpr, Uuid>,
    by_owner: HashMap<(Kind, Uuid), Vec<Uuid>>,
}

impl<'a> Index<'a> {
    fn new(current: &'a HashMap<Uuid, Object>) -> Index<'a> {
        let mut ix = Index {
            current,
            by_user_key: HashMap::new(),
            person_by_cpr: HashMap::new(),
            by_owner: HashMap::new(),
        };
        let mut sorted: Vec<&Object> = current.values().collect();
        sorted.sort_by_key(|o| o.uuid);
        for o in sorted {
            let last = &o.last().value;
            let mut keys: BTreeSet<&str> = BTreeSet::new();
            for s in &o.slices {
                keys.insert(s.value.user_key());
            }
            for k in keys {
                ix.by_user_key
                    .entry(o.kind)
                    .or_default()
                    .entry(k)
                    .or_default()
                    .push(o.uuid);
            }
            if let Some(c) = last.cpr() {
                ix.person_by_cpr.insert(c, o.uuid);
            }
            let refs = last.refs();
            if let Some(owner) = refs.person.or(refs.org_unit)
                && matches!(o.kind, Kind::Address | Kind::ItUser | Kind::Engagement)
            {
                ix.by_owner.entry((o.kind, owner)).or_default().push(o.uuid);
            }
        }
        ix
    }

    fn get(&self, uuid: &Uuid) -> Option<&'a Object> {
        self.current.get(uuid)
    }

    fn user_key(&self, kind: Kind, key: &str) -> &[Uuid] {
        self.by_user_key
            .get(&kind)
            .and_then(|m| m.get(key))
            .map_or(&[], Vec::as_slice)
    }

    fn owned(&self, kind: Kind, owner: Uuid) -> impl Iterator<Item = &'a Object> + '_ {
        self.by_owner
            .get(&(kind, owner))
            .into_iter()
            .flatten()
            .filter_map(|u| self.current.get(u))
    }

    fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &'a Object> + '_ {
        self.current.values().filter(move |o| o.kind == kind)
    }
}

/// Facets, classes and IT systems: found in MO or created (ruling 5: matched by user_key,
/// case-insensitively, then by title).
struct Classes {
    facets: HashMap<String, Uuid>,
    classes: HashMap<Uuid, Vec<(Uuid, String, String)>>,
    itsystems: Vec<(Uuid, String, String)>,
    facts: Vec<Fact>,
    uuids: OpusUuids,
    /// Answers already given: facet → user_key → title → class (lookups without allocation).
    memo: HashMap<String, HashMap<String, HashMap<String, Uuid>>>,
}

impl Classes {
    fn new(ix: &Index<'_>, uuids: OpusUuids) -> Classes {
        let mut c = Classes {
            facets: HashMap::new(),
            classes: HashMap::new(),
            itsystems: Vec::new(),
            facts: Vec::new(),
            uuids,
            memo: HashMap::new(),
        };
        let mut facets: Vec<&Object> = ix.of_kind(Kind::Facet).collect();
        facets.sort_by_key(|o| o.uuid);
        for f in facets {
            c.facets
                .entry(f.last().value.user_key().to_string())
                .or_insert(f.uuid);
        }
        let mut classes: Vec<&Object> = ix.of_kind(Kind::Class).collect();
        classes.sort_by_key(|o| o.uuid);
        for o in classes {
            if let Value::Class(cl) = &o.last().value {
                c.classes.entry(cl.facet).or_default().push((
                    o.uuid,
                    cl.user_key.clone(),
                    cl.name.clone(),
                ));
            }
        }
        let mut systems: Vec<&Object> = ix.of_kind(Kind::ItSystem).collect();
        systems.sort_by_key(|o| o.uuid);
        for o in systems {
            if let Value::ItSystem(s) = &o.last().value {
                c.itsystems
                    .push((o.uuid, s.user_key.clone(), s.name.clone()));
            }
        }
        c
    }

    fn facet(&mut self, user_key: &str) -> Uuid {
        if let Some(u) = self.facets.get(user_key) {
            return *u;
        }
        let uuid = self.uuids.derived("facet", &[user_key]);
        let value = Value::Facet(Facet {
            user_key: user_key.into(),
        });
        self.facts
            .push(Fact::state(uuid, value, Validity::ALWAYS, None));
        self.facets.insert(user_key.into(), uuid);
        uuid
    }

    fn class(&mut self, facet_key: &str, user_key: &str, title: &str, scope: Option<&str>) -> Uuid {
        if let Some(u) = self
            .memo
            .get(facet_key)
            .and_then(|m| m.get(user_key))
            .and_then(|m| m.get(title))
        {
            return *u;
        }
        let uuid = self.find_or_create_class(facet_key, user_key, title, scope);
        self.memo
            .entry(facet_key.to_string())
            .or_default()
            .entry(user_key.to_string())
            .or_default()
            .insert(title.to_string(), uuid);
        uuid
    }

    fn find_or_create_class(
        &mut self,
        facet_key: &str,
        user_key: &str,
        title: &str,
        scope: Option<&str>,
    ) -> Uuid {
        let facet = self.facet(facet_key);
        let list = self.classes.entry(facet).or_default();
        let found = list
            .iter()
            .find(|(_, k, _)| k.to_lowercase() == user_key.to_lowercase())
            .or_else(|| {
                list.iter()
                    .find(|(_, _, n)| n.to_lowercase() == title.to_lowercase())
            });
        if let Some((u, _, _)) = found {
            return *u;
        }
        let uuid = self.uuids.derived("class", &[facet_key, user_key]);
        let value = Value::Class(Class {
            user_key: user_key.into(),
            name: title.into(),
            facet,
            scope: scope.map(str::to_string),
            parent: None,
            owner: None,
        });
        self.facts
            .push(Fact::state(uuid, value, Validity::ALWAYS, None));
        list.push((uuid, user_key.into(), title.into()));
        uuid
    }

    fn user_key_of(&self, class: Uuid) -> Option<String> {
        self.classes
            .values()
            .flatten()
            .find(|(u, _, _)| *u == class)
            .map(|(_, k, _)| k.clone())
    }

    fn itsystem(&mut self, name: &str) -> Uuid {
        if let Some((u, _, _)) = self
            .itsystems
            .iter()
            .find(|(_, k, n)| n == name || k == name)
        {
            return *u;
        }
        let uuid = self.uuids.derived("itsystem", &[name]);
        let value = Value::ItSystem(ItSystem {
            user_key: name.into(),
            name: name.into(),
        });
        self.facts
            .push(Fact::state(uuid, value, Validity::ALWAYS, None));
        self.itsystems.push((uuid, name.into(), name.into()));
        uuid
    }
}

fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(d)
}

/// A lower bound as a day (`None` is the earliest day).
fn lo(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MIN)
}

/// An upper bound as a day (`None` is the last day).
fn hi(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MAX)
}

/// The day a record's change takes effect (ruling 1).
pub fn effective(last_changed: Option<Date>, dump_date: Date) -> Date {
    match last_changed {
        Some(d) if d <= dump_date => d,
        _ => dump_date,
    }
}

/// An employee's phone number as upstream normalises it (`specs/opus.md` §8.6): 8 characters
/// as is; 9 or 11 without spaces; 4 or 5 prefixed with `0000`; anything else is dropped.
pub fn normalise_phone(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| *c != ' ').collect();
    match raw.chars().count() {
        8 => Some(raw.to_string()),
        9 | 11 => Some(compact),
        4 | 5 => Some(format!("0000{compact}")),
        _ => None,
    }
}

/// `numerator / denominator` as parts per million, when both are numbers and the
/// denominator is positive.
pub fn fraction(numerator: Option<&str>, denominator: Option<&str>) -> Option<u32> {
    let n: f64 = numerator?.trim().replace(',', ".").parse().ok()?;
    let d: f64 = denominator?.trim().replace(',', ".").parse().ok()?;
    if d <= 0.0 || !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(((n / d) * 1_000_000.0).round().clamp(0.0, 1_000_000.0) as u32)
}

fn element(e: &Employee) -> String {
    format!("employee id=\"{}\"", e.id)
}

/// An employment that passed validation, with its derived dates.
struct Employment<'a> {
    rec: &'a Employee,
    data: &'a EmployeeData,
    life: Validity,
    effective: Date,
    changed: bool,
    /// New to the source (the previous dump did not have it): the input speaks about its whole
    /// life.
    new: bool,
}

/// The mapping of one dump.
pub struct Mapper<'a> {
    cfg: &'a Config,
    dump: &'a Dump,
    tree: &'a Tree<'a>,
    dump_date: Date,
    ix: Index<'a>,
    classes: Classes,
    dar: &'a DarAnswers,
    cpr_map: &'a HashMap<Cpr, Uuid>,
    /// The Active Directory accounts, when AD enrichment is on.
    ad: Option<&'a Directory>,
    /// Uuids an AD guid must not take: those the cpr map hands out (only with AD).
    reserved: HashSet<Uuid>,
    out: Mapped,
    /// Facts per stage, concatenated at the end in dependency order.
    units: Vec<Fact>,
    persons: Vec<Fact>,
    engagements: Vec<Fact>,
    details: Vec<Fact>,
    managers: Vec<Fact>,
    ends: Vec<Fact>,
    /// Engagements this dump deletes (cancellations): they take no part in primary classes.
    deleted: HashSet<Uuid>,
}

impl<'a> Mapper<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &'a Config,
        dump: &'a Dump,
        tree: &'a Tree<'a>,
        dump_date: Date,
        current: &'a HashMap<Uuid, Object>,
        dar: &'a DarAnswers,
        cpr_map: &'a HashMap<Cpr, Uuid>,
        ad: Option<&'a Directory>,
    ) -> Mapper<'a> {
        let ix = Index::new(current);
        let classes = Classes::new(&ix, cfg.uuids);
        Mapper {
            cfg,
            dump,
            tree,
            dump_date,
            ix,
            classes,
            dar,
            cpr_map,
            ad,
            reserved: match ad {
                Some(_) => cpr_map.values().copied().collect(),
                None => HashSet::new(),
            },
            out: Mapped::default(),
            units: Vec::new(),
            persons: Vec::new(),
            engagements: Vec::new(),
            details: Vec::new(),
            managers: Vec::new(),
            ends: Vec::new(),
            deleted: HashSet::new(),
        }
    }

    /// Map the changes. `new_uuid` gives the uuid of a new person that neither MO, the cpr map
    /// nor AD knows (random in production; deterministic in tests).
    pub fn map(
        mut self,
        changes: &Changes,
        new_uuid: &mut dyn FnMut() -> Uuid,
    ) -> Result<Mapped, MapError> {
        self.organisation();
        let primary = PrimaryClasses::ensure(&mut |f, k, t, s| self.classes.class(f, k, t, s));
        for id in &changes.units {
            let unit = self.tree.by_id[id.as_str()];
            self.unit(unit, changes.is_new(id))?;
        }
        let end = next_day(self.dump_date);
        for id in changes.vanished_units.iter().chain(&changes.filtered_units) {
            let uuid = self.cfg.uuids.unit(id);
            if self.ix.get(&uuid).is_some() {
                // Its addresses end with it, first (a real OS2mo refuses to end a unit that
                // still has addresses: V_TERMINATE_UNIT_WITH_ROLES).
                let addresses: Vec<Uuid> =
                    self.ix.owned(Kind::Address, uuid).map(|o| o.uuid).collect();
                for address in addresses {
                    self.ends.push(Fact::End {
                        uuid: address,
                        kind: Kind::Address,
                        at: end,
                    });
                }
                self.ends.push(Fact::End {
                    uuid,
                    kind: Kind::OrgUnit,
                    at: end,
                });
            }
        }
        if !self.cfg.skip_employees {
            self.employees(changes, &primary, new_uuid);
        }
        let classes = std::mem::take(&mut self.classes.facts);
        let total = classes.len()
            + self.units.len()
            + self.persons.len()
            + self.engagements.len()
            + self.details.len()
            + self.managers.len()
            + self.ends.len();
        // Each stage's buffer is freed as soon as it is copied (peak memory of large imports).
        let mut facts = Vec::with_capacity(total);
        facts.extend(classes);
        for stage in [
            &mut self.units,
            &mut self.persons,
            &mut self.engagements,
            &mut self.details,
            &mut self.managers,
            &mut self.ends,
        ] {
            facts.extend(std::mem::take(stage));
        }
        self.out.facts = facts;
        Ok(self.out)
    }

    fn organisation(&mut self) {
        if self.ix.of_kind(Kind::Organisation).next().is_none() {
            let value = Value::Organisation(Organisation {
                user_key: self.cfg.municipality_name.clone(),
                name: self.cfg.municipality_name.clone(),
                municipality_code: None,
            });
            self.classes.facts.push(Fact::state(
                self.cfg.uuids.base(),
                value,
                Validity::ALWAYS,
                None,
            ));
        }
    }

    fn unit(&mut self, unit: &Unit, new: bool) -> Result<(), MapError> {
        let uuid = self.cfg.uuids.unit(&unit.id);
        let type_key = unit
            .org_type
            .as_deref()
            .or(unit.org_type_txt.as_deref())
            .unwrap_or("Enhed");
        let type_title = unit.org_type_txt.as_deref().unwrap_or("Enhed");
        let unit_type = self
            .classes
            .class("org_unit_type", type_key, type_title, Some("TEXT"));
        let user_key =
            unit.field(&self.cfg.unit_user_key)
                .ok_or_else(|| MapError::UnitUserKey {
                    line: unit.line,
                    id: unit.id.clone(),
                    key: self.cfg.unit_user_key.clone(),
                })?;
        let start = unit.start_date.unwrap_or(jiff::civil::date(1900, 1, 1));
        let life = Validity::new(
            Some(start),
            unit.end_date.filter(|d| *d < Date::MAX).map(next_day),
        );
        let eff = effective(unit.last_changed, self.dump_date);
        let value = Value::OrgUnit(OrgUnit {
            user_key: user_key.to_string(),
            name: unit.long_name.clone(),
            parent: unit.parent.as_deref().map(|p| self.cfg.uuids.unit(p)),
            unit_type: Some(unit_type),
            unit_level: None,
            unit_hierarchy: None,
            time_planning: None,
        });
        // A unit new to the source is described over its whole life; a changed one from the
        // change on. Whether MO already has it does not matter (an interrupted first import).
        let since = if new { start } else { eff };
        self.units.push(Fact::state(uuid, value, life, Some(since)));
        // Addresses start with the unit when it is new, else at the change.
        let addr_start = since;
        let ean = unit.ean.as_deref().filter(|v| *v != "9999999999999");
        let pnr = unit
            .p_nr
            .as_deref()
            .filter(|v| !v.bytes().all(|b| b == b'0'));
        let fields: [(&str, &str, Option<&str>); 5] = [
            ("SE", "TEXT", unit.se.as_deref()),
            ("CVR", "TEXT", unit.cvr.as_deref()),
            ("EAN", "EAN", ean),
            ("Pnummer", "TEXT", pnr),
            ("Telefon", "PHONE", unit.phone_number.as_deref()),
        ];
        for (key, scope, value) in fields {
            self.address(
                Owner::Unit(uuid),
                "org_unit_address_type",
                key,
                scope,
                value.map(str::to_string).into(),
                addr_start,
                eff,
                life.to,
            );
        }
        let dar = match (unit.street.as_deref(), unit.zip_code.as_deref()) {
            (Some(street), Some(zip)) => self.dar_lookup(
                street,
                zip,
                &format!("orgUnit id=\"{}\"", unit.id),
                unit.line,
            ),
            _ => Wanted::No,
        };
        self.address(
            Owner::Unit(uuid),
            "org_unit_address_type",
            "Adresse",
            "DAR",
            dar,
            addr_start,
            eff,
            life.to,
        );
        Ok(())
    }

    fn dar_lookup(&mut self, street: &str, zip: &str, element: &str, line: u64) -> Wanted {
        let why = match self.dar.get(&(street.to_string(), zip.to_string())) {
            Some(Ok(Some(u))) => return Wanted::Yes(u.to_string()),
            Some(Ok(None)) => "no unambiguous DAR match".to_string(),
            Some(Err(reason)) => format!("the DAR lookup failed ({reason})"),
            None => "the address was not looked up".to_string(),
        };
        self.out.warnings.push(Notice::at(
            line,
            format!("{element}: {why} for the postal address; it is left as it was"),
        ));
        Wanted::Keep
    }

    /// One address of a unit or person: create, change or end it so it holds `wanted`.
    #[allow(clippy::too_many_arguments)]
    fn address(
        &mut self,
        owner: Owner,
        facet: &str,
        type_key: &str,
        scope: &str,
        wanted: Wanted,
        start: Date,
        eff: Date,
        end: Option<Date>,
    ) {
        if matches!(wanted, Wanted::Keep) {
            return;
        }
        let address_type = self.classes.class(facet, type_key, type_key, Some(scope));
        let owner_uuid = owner.uuid();
        let existing: Vec<&Object> = self
            .ix
            .owned(Kind::Address, owner_uuid)
            .filter(
                |o| matches!(&o.last().value, Value::Address(a) if a.address_type == address_type),
            )
            .collect();
        // A unit's addresses are part of the unit's record: from the change on they are what
        // the record says. A person's are facts of their own: one MO still holds at the end
        // is current; one that ended before (a protected address, a removed phone) is history
        // and stays as it is.
        let person = owner.person().is_some();
        let open: Vec<&Object> = existing
            .iter()
            .copied()
            .filter(|o| !person || o.last().validity.to.is_none() || o.last().validity.to == end)
            .collect();
        let current = open
            .iter()
            .min_by_key(|o| o.uuid)
            .or_else(|| existing.iter().min_by_key(|o| o.uuid));
        match wanted {
            Wanted::Keep => {}
            Wanted::No => {
                for o in open {
                    self.details.push(Fact::End {
                        uuid: o.uuid,
                        kind: Kind::Address,
                        at: eff,
                    });
                }
            }
            Wanted::Yes(value) => {
                let visibility = match owner {
                    Owner::Person(_) if scope == "DAR" => Some(self.classes.class(
                        "visibility",
                        "Intern",
                        "Må vises internt",
                        Some("INTERNAL"),
                    )),
                    _ => None,
                };
                let uuid = current.map_or_else(
                    || {
                        self.cfg
                            .uuids
                            .derived("address", &[&owner_uuid.to_string(), type_key])
                    },
                    |o| o.uuid,
                );
                let v = Value::Address(Address {
                    user_key: value.clone(),
                    value,
                    address_type,
                    visibility,
                    person: owner.person(),
                    org_unit: owner.unit(),
                    engagement: None,
                    ituser: None,
                });
                // A person's address MO already holds with this value is not written again: a
                // change of another field, dated earlier, must not move its start.
                if person
                    && current.is_some_and(|o| o.last().validity.to == end && o.last().value == v)
                {
                    return;
                }
                // From `start` on (the unit's start for a new unit, else the change); what MO
                // holds before it stays, also when the address existed once and ended.
                self.details.push(Fact::from_date(uuid, v, start, end));
            }
        }
    }

    /// Validate a changed or sibling employment; `None` (and a rejection when it changed) if it
    /// cannot be imported.
    fn employment(
        &mut self,
        rec: &'a Employee,
        changed: bool,
        filtered: &HashSet<&str>,
    ) -> Option<Employment<'a>> {
        let data = rec.data.as_deref()?;
        if filtered.contains(data.org_unit.as_str()) {
            return None;
        }
        let reject = |field: &'static str, reason: String| Rejection {
            line: rec.line,
            element: element(rec),
            field,
            reason,
        };
        let problem = if data.position.is_none() {
            Some(reject(
                "position",
                "empty: the job function is unknown, so the employment is not imported".into(),
            ))
        } else if !self.tree.by_id.contains_key(data.org_unit.as_str()) {
            Some(reject(
                "orgUnit",
                format!("unknown unit {:?}", data.org_unit),
            ))
        } else if data.entry_date.is_none() && rec.last_changed.is_none() {
            Some(reject(
                "entryDate",
                "empty, and there is no lastChanged to fall back on".into(),
            ))
        } else {
            None
        };
        if let Some(r) = problem {
            if changed {
                self.out.rejected.push(r);
            }
            return None;
        }
        // Without an entryDate the start is the one MO has (the lastChanged it was hired
        // with); only a new employment starts at its lastChanged.
        let known_start = self
            .ix
            .user_key(Kind::Engagement, &rec.id)
            .iter()
            .filter_map(|u| self.ix.get(u))
            .find_map(|o| o.slices[0].validity.from);
        let entry = match data.entry_date.or(known_start) {
            Some(d) => d,
            None => {
                if changed {
                    self.out.warnings.push(Notice::at(
                        rec.line,
                        format!(
                            "{}: entryDate is empty; using lastChanged as the start",
                            element(rec)
                        ),
                    ));
                }
                rec.last_changed.expect("checked above")
            }
        };
        let end = data.leave_date.map(next_day);
        if end.is_some_and(|e| e <= entry) {
            if changed {
                self.out
                    .rejected
                    .push(reject("leaveDate", "before entryDate".into()));
            }
            return None;
        }
        Some(Employment {
            rec,
            data,
            life: Validity::new(Some(entry), end),
            effective: effective(rec.last_changed, self.dump_date),
            changed,
            new: false,
        })
    }

    fn employees(
        &mut self,
        changes: &Changes,
        primary: &PrimaryClasses,
        new_uuid: &mut dyn FnMut() -> Uuid,
    ) {
        let dump = self.dump;
        let filtered: HashSet<&str> = changes.filtered_units.iter().map(String::as_str).collect();
        let by_id: HashMap<&str, &Employee> =
            dump.employees.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut by_cpr: HashMap<&Cpr, Vec<&Employee>> = HashMap::new();
        for e in &dump.employees {
            if let Some(d) = &e.data {
                by_cpr.entry(&d.cpr).or_default().push(e);
            }
        }
        let changed: HashSet<&str> = changes.employees.iter().map(String::as_str).collect();
        // Persons to (re)compute, in dump order: those with a changed employment, and those whose
        // engagement a leave marker ends or a cancellation deletes.
        let mut touched: Vec<&Cpr> = Vec::new();
        let mut seen: HashSet<&Cpr> = HashSet::new();
        for id in &changes.employees {
            if let Some(d) = by_id.get(id.as_str()).and_then(|e| e.data.as_deref())
                && seen.insert(&d.cpr)
            {
                touched.push(&d.cpr);
            }
        }
        let end = next_day(self.dump_date);
        let mut ended: HashMap<&Cpr, Vec<(Uuid, Engagement, Validity)>> = HashMap::new();
        // Per person, the earliest day a leave marker or a cancellation changes the set of
        // engagements (a cancellation: the engagement's whole life).
        let mut set_changed: HashMap<&Cpr, Date> = HashMap::new();
        // Persons with no employment left in the dump that can be imported.
        let mut left: std::collections::BTreeMap<Uuid, Left> = Default::default();
        for (id, cancelled) in changes
            .leaves
            .iter()
            .map(|i| (i, false))
            .chain(changes.cancelled.iter().map(|i| (i, true)))
        {
            let engagements = self.ix.user_key(Kind::Engagement, id).to_vec();
            if cancelled && engagements.len() > 1 {
                self.out.warnings.push(Notice::general(format!(
                    "employment {id} vanished from the dump, but {} engagements carry it as user_key; none deleted",
                    engagements.len()
                )));
                continue;
            }
            for uuid in engagements {
                if cancelled {
                    self.deleted.insert(uuid);
                    self.ends.push(Fact::Delete {
                        uuid,
                        kind: Kind::Engagement,
                    });
                } else {
                    self.ends.push(Fact::End {
                        uuid,
                        kind: Kind::Engagement,
                        at: end,
                    });
                }
                // The person's other engagements may need a new primary; the ended one still
                // counts up to its end.
                if let Some(obj) = self.ix.get(&uuid)
                    && let Value::Engagement(e) = &obj.last().value
                    && let Some(cpr) = self.ix.get(&e.person).and_then(|p| p.last().value.cpr())
                    && let Some((k, _)) = by_cpr.get_key_value(cpr)
                {
                    let day = if cancelled {
                        obj.slices[0].validity.from.unwrap_or(Date::MIN)
                    } else {
                        end
                    };
                    let at = set_changed.entry(*k).or_insert(day);
                    *at = (*at).min(day);
                    if !cancelled {
                        let life = Validity::new(obj.slices[0].validity.from, Some(end));
                        if !life.is_empty() {
                            ended.entry(*k).or_default().push((uuid, e.clone(), life));
                        }
                    }
                    if seen.insert(k) {
                        touched.push(k);
                    }
                } else if let Some(obj) = self.ix.get(&uuid)
                    && let Value::Engagement(e) = &obj.last().value
                {
                    // The person has no employment left in the dump: their Opus IT users end
                    // after the dump date, and their other engagements get their primary class
                    // again from the day the set changed.
                    let l = left.entry(e.person).or_default();
                    let day = if cancelled {
                        obj.slices[0].validity.from.unwrap_or(Date::MIN)
                    } else {
                        l.ended.push((uuid, end));
                        end
                    };
                    l.since = Some(l.since.map_or(day, |s| s.min(day)));
                    l.it_end = Some(l.it_end.map_or(end, |s| s.min(end)));
                }
            }
            for kind in [Kind::Manager, Kind::Role] {
                for uuid in self.ix.user_key(kind, id).to_vec() {
                    if cancelled {
                        self.ends.push(Fact::Delete { uuid, kind });
                    } else {
                        self.ends.push(Fact::End {
                            uuid,
                            kind,
                            at: end,
                        });
                    }
                }
            }
        }
        for cpr in touched {
            let records = &by_cpr[cpr];
            let mut employments: Vec<Employment<'a>> = Vec::new();
            for rec in records {
                let is_changed = changed.contains(rec.id.as_str());
                if let Some(mut e) = self.employment(rec, is_changed, &filtered) {
                    e.new = is_changed && changes.is_new(&rec.id);
                    employments.push(e);
                }
            }
            if employments.is_empty() {
                // No employment that can be imported is left: the person's Opus IT users end
                // with the engagements that ended, and the primary classes are computed again.
                if let Some(person) = self.ix.person_by_cpr.get(cpr).copied() {
                    let l = left.entry(person).or_default();
                    for (uuid, _, life) in ended.get(cpr).map_or(&[][..], Vec::as_slice) {
                        if let Some(to) = life.to {
                            l.ended.push((*uuid, to));
                            l.it_end = Some(l.it_end.map_or(to, |s| s.min(to)));
                        }
                    }
                    if let Some(day) = set_changed.get(cpr).copied() {
                        l.since = Some(l.since.map_or(day, |s| s.min(day)));
                    }
                }
                continue;
            }
            employments.sort_by(|a, b| {
                primary::employment_number(&a.rec.id)
                    .cmp(&primary::employment_number(&b.rec.id))
                    .then(a.rec.id.cmp(&b.rec.id))
            });
            let ended = ended.get(cpr).map_or(&[][..], Vec::as_slice);
            let set_changed = set_changed.get(cpr).copied();
            self.person(cpr, &employments, ended, set_changed, primary, new_uuid);
        }
        for (person, l) in left {
            if let Some(at) = l.it_end {
                self.it_users(&[], person, at);
            }
            if let Some(since) = l.since {
                let cands =
                    self.mo_candidates(person, &HashSet::new(), since, &l.ended, true, primary);
                for fact in primary::facts(&cands, primary) {
                    self.engagements.push(fact);
                }
            }
        }
    }

    /// The engagements MO holds for `person` (but those in `skip` and those deleted by this
    /// dump) as candidates of the primary calculation from `since`, with MO's values; `ended`
    /// cuts the life of ones a leave marker ends. With `emit`, they get their primary classes
    /// again; without, they only take part.
    fn mo_candidates(
        &self,
        person: Uuid,
        skip: &HashSet<Uuid>,
        since: Date,
        ended: &[(Uuid, Date)],
        emit: bool,
        primary: &PrimaryClasses,
    ) -> Vec<primary::Candidate> {
        let mut out = Vec::new();
        for o in self.ix.owned(Kind::Engagement, person) {
            if skip.contains(&o.uuid) || self.deleted.contains(&o.uuid) {
                continue;
            }
            let Value::Engagement(value) = &o.last().value else {
                continue;
            };
            let mut to = o.last().validity.to;
            if let Some((_, end)) = ended.iter().find(|(u, _)| *u == o.uuid) {
                to = Some(hi(to).min(*end));
            }
            let life = Validity::new(o.slices[0].validity.from, to);
            if life.is_empty() {
                continue;
            }
            out.push(primary::Candidate {
                uuid: o.uuid,
                value: value.clone(),
                life,
                since,
                value_since: Date::MAX,
                old: o.slices.clone(),
                rank: self.engagement_rank(&o.last().value),
                old_ranks: o
                    .slices
                    .iter()
                    .map(|s| self.engagement_rank(&s.value))
                    .collect(),
                number: primary::employment_number(&value.user_key),
                explicit: value.primary == Some(primary.explicit),
                emit,
            });
        }
        out
    }

    fn person(
        &mut self,
        cpr: &Cpr,
        employments: &[Employment<'a>],
        ended: &[(Uuid, Engagement, Validity)],
        set_changed: Option<Date>,
        primary: &PrimaryClasses,
        new_uuid: &mut dyn FnMut() -> Uuid,
    ) {
        let existing = self.ix.person_by_cpr.get(cpr).copied();
        let ad = self.ad.map(|d| d.lookup(cpr));
        // A new person's uuid: the cpr map, else the AD account's objectGUID, else random. An
        // AD guid that MO already uses for another object, or that the cpr map gives someone
        // else, is not taken.
        let ad_guid = match ad {
            Some(AdLookup::Found(u)) if existing.is_none() && !self.cpr_map.contains_key(cpr) => {
                if self.ix.get(&u.guid).is_some() || self.reserved.contains(&u.guid) {
                    self.out.warnings.push(Notice::at(
                        employments[0].rec.line,
                        format!(
                            "{}: the objectGUID of AD account {:?} ({}) is already the uuid of another MO object (or the cpr map gives it to another person); the new person gets a random uuid",
                            element(employments[0].rec),
                            u.sam,
                            u.guid
                        ),
                    ));
                    None
                } else {
                    Some(u.guid)
                }
            }
            _ => None,
        };
        let person_uuid = existing
            .or_else(|| self.cpr_map.get(cpr).copied())
            .or(ad_guid)
            .unwrap_or_else(new_uuid);
        // The person's name and contact data come from the lowest employment number, so a person
        // with several employments does not flip between them.
        let rep = &employments[0];
        let (given, surname) = match (
            rep.data.first_name.as_deref(),
            rep.data.last_name.as_deref(),
        ) {
            (None, None) => ("Ukendt", "Ukendt"),
            (g, s) => (g.unwrap_or(""), s.unwrap_or("")),
        };
        let user_key = existing.and_then(|u| self.ix.get(&u)).map_or_else(
            || person_uuid.to_string(),
            |o| o.last().value.user_key().to_string(),
        );
        let value = Value::Person(Person {
            user_key,
            given_name: given.into(),
            surname: surname.into(),
            nickname_given_name: None,
            nickname_surname: None,
            cpr_number: Some(cpr.clone()),
            seniority: None,
        });
        // Person data MO already holds is not written again (a change of another field, dated
        // earlier, must not date the name back).
        if existing
            .and_then(|u| self.ix.get(&u))
            .is_none_or(|o| o.last().value != value || o.last().validity.to.is_some())
        {
            self.persons.push(Fact::state(
                person_uuid,
                value,
                Validity::ALWAYS,
                Some(rep.effective),
            ));
        }

        // Engagements, with the primary calculated over all of the person's employments. Each
        // engagement's own value holds from the day the input dates it: a new one from its
        // entryDate, a changed one from its effective date (its whole life when that lies after
        // its end). The primary classes are computed again from the earliest day the person's
        // set of engagements changes; before that day nothing changes.
        let mut own: Vec<(Uuid, Option<Date>)> = Vec::with_capacity(employments.len());
        let mut person_since = set_changed.unwrap_or(Date::MAX);
        for e in employments {
            let uuid = self.engagement_uuid(&e.rec.id, person_uuid);
            let mut from = None;
            if e.new {
                from = Some(lo(e.life.from));
            } else if e.changed {
                // A change dated after the engagement's end changes none of its days (only a
                // moved start or end changes its life).
                let d = e.effective;
                from = Some(d);
                // A changed entryDate or leaveDate changes the set from the earlier of its
                // old and new value on.
                if let Some(o) = self.ix.get(&uuid) {
                    let (of, ot) = (lo(o.slices[0].validity.from), hi(o.last().validity.to));
                    if of != lo(e.life.from) {
                        person_since = person_since.min(of.min(lo(e.life.from)));
                    }
                    if ot != hi(e.life.to) {
                        person_since = person_since.min(ot.min(hi(e.life.to)));
                    }
                }
            }
            if let Some(d) = from {
                person_since = person_since.min(d);
            }
            own.push((uuid, from));
        }
        if person_since == Date::MAX {
            person_since = next_day(self.dump_date);
        }
        let mut plans = Vec::with_capacity(employments.len());
        for (e, (uuid, from)) in employments.iter().zip(own) {
            let d = e.data;
            let position = d.position.as_deref().expect("validated");
            let job_function =
                self.classes
                    .class("engagement_job_function", position, position, Some("TEXT"));
            let type_key = d.work_contract_text.as_deref().unwrap_or("Ansat");
            let engagement_type =
                self.classes
                    .class("engagement_type", type_key, type_key, Some("TEXT"));
            let explicit = self.ix.get(&uuid).is_some_and(|o| {
                matches!(&o.at_or_latest(self.dump_date).value, Value::Engagement(x) if x.primary == Some(primary.explicit))
            });
            let value = Engagement {
                user_key: e.rec.id.clone(),
                person: person_uuid,
                org_unit: self.cfg.uuids.unit(&d.org_unit),
                job_function,
                engagement_type,
                primary: None,
                fraction: fraction(d.numerator.as_deref(), d.denominator.as_deref()),
                extensions: Box::default(),
            };
            // An unchanged engagement (a sibling of a changed one) keeps MO's values; only its
            // primary class is computed again.
            let value_since = match from {
                Some(d) => d,
                None if self.ix.get(&uuid).is_some() => Date::MAX,
                None => person_since,
            };
            // MO's values before the engagement's own change are kept (only the primary class
            // is computed again for them).
            let old: Vec<dipex_model::Slice> = match self.ix.get(&uuid) {
                Some(o) if person_since < value_since => {
                    let window = Validity::new(
                        (person_since != Date::MIN).then_some(person_since),
                        (value_since != Date::MAX).then_some(value_since),
                    );
                    o.slices
                        .iter()
                        .filter_map(|s| {
                            s.validity
                                .intersect(&window)
                                .map(|v| dipex_model::Slice::new(v, s.value.clone()))
                        })
                        .collect()
                }
                _ => Vec::new(),
            };
            let rank = primary::rank(&self.cfg.primary_order, engagement_type, type_key);
            let old_ranks = old.iter().map(|s| self.engagement_rank(&s.value)).collect();
            plans.push(primary::Candidate {
                uuid,
                value,
                life: e.life,
                since: person_since,
                value_since,
                old,
                rank,
                old_ranks,
                number: primary::employment_number(&e.rec.id),
                explicit,
                emit: true,
            });
        }
        // Every other engagement MO holds for the person (one a leave marker ends, one that
        // left earlier, one made in MO) takes part too, with MO's values; only its primary
        // class is computed again.
        let taking_part: HashSet<Uuid> = plans.iter().map(|c| c.uuid).collect();
        let cuts: Vec<(Uuid, Date)> = ended
            .iter()
            .filter_map(|(u, _, life)| Some((*u, life.to?)))
            .collect();
        let others = self.mo_candidates(
            person_uuid,
            &taking_part,
            person_since,
            &cuts,
            true,
            primary,
        );
        plans.extend(others);
        for fact in primary::facts(&plans, primary) {
            self.engagements.push(fact);
        }

        for (e, plan) in employments.iter().zip(&plans) {
            self.manager(e, person_uuid, plan.uuid);
            self.roles(e, person_uuid);
        }
        // The day the input changes the person: its earliest changed employment, or the end a
        // leave marker gives (IT users that disappear end then, never before).
        let change = employments
            .iter()
            .filter(|e| e.changed)
            .map(|e| e.effective)
            .chain(ended.iter().filter_map(|(_, _, life)| life.to))
            .min()
            .unwrap_or_else(|| next_day(self.dump_date));
        self.it_users(employments, person_uuid, change);
        if let Some(lookup) = ad {
            self.ad_it_user(lookup, person_uuid, change, rep.rec.line);
        }
        self.person_addresses(rep, person_uuid);
    }

    /// The rank of an engagement value's type in `integrations.opus.eng_types_primary_order`.
    fn engagement_rank(&self, v: &Value) -> usize {
        match v {
            Value::Engagement(x) => {
                let key = self
                    .classes
                    .user_key_of(x.engagement_type)
                    .unwrap_or_default();
                primary::rank(&self.cfg.primary_order, x.engagement_type, &key)
            }
            _ => usize::MAX,
        }
    }

    fn engagement_uuid(&self, id: &str, person: Uuid) -> Uuid {
        let found = self.ix.user_key(Kind::Engagement, id);
        found
            .iter()
            .find(|u| matches!(self.ix.get(u).map(|o| &o.last().value), Some(Value::Engagement(e)) if e.person == person))
            .or(found.first())
            .copied()
            .unwrap_or_else(|| self.cfg.uuids.derived("engagement", &[id]))
    }

    fn manager(&mut self, e: &Employment<'a>, person: Uuid, engagement: Uuid) {
        // An unchanged employment (a sibling of a changed one) says nothing new about it.
        if !e.changed {
            return;
        }
        let d = e.data;
        let existing = self.ix.user_key(Kind::Manager, &e.rec.id).to_vec();
        if d.is_manager.as_deref() != Some("true") {
            if d.is_manager.as_deref() == Some("false") {
                for uuid in existing {
                    self.managers.push(Fact::End {
                        uuid,
                        kind: Kind::Manager,
                        at: e.effective,
                    });
                }
            }
            return;
        }
        let level = match (d.superior_level.as_deref(), d.subordinate_level.as_deref()) {
            (Some(a), Some(b)) => format!("{a}.{b}"),
            (Some(a), None) | (None, Some(a)) => a.to_string(),
            (None, None) => "Ukendt".to_string(),
        };
        let position = d.position.as_deref().expect("validated");
        let manager_level = self
            .classes
            .class("manager_level", &level, &level, Some("TEXT"));
        let manager_type = self
            .classes
            .class("manager_type", position, position, Some("TEXT"));
        let responsibility =
            self.classes
                .class("responsibility", "Lederansvar", "Lederansvar", Some("TEXT"));
        let uuid = existing
            .first()
            .copied()
            .unwrap_or_else(|| self.cfg.uuids.derived("manager", &[&e.rec.id]));
        // The manager function is the employment's flag per day: a new employment describes it
        // over its whole life; a change only from its date on (the days before, when the
        // person may or may not have been a manager, stay as MO has them), and a change dated
        // after the employment's end only ends it there.
        // A moved entryDate moves the function's start with the engagement's, from the
        // earlier of the old and new start.
        let mut since = e.effective;
        let old_start = self
            .ix
            .get(&engagement)
            .map(|o| lo(o.slices[0].validity.from));
        if let Some(old) = old_start
            && old != lo(e.life.from)
        {
            since = since.min(old).min(lo(e.life.from));
        }
        let life = if e.new {
            since = lo(e.life.from);
            e.life
        } else if since >= hi(e.life.to) {
            if !existing.is_empty()
                && let Some(at) = e.life.to
            {
                self.managers.push(Fact::End {
                    uuid,
                    kind: Kind::Manager,
                    at,
                });
            }
            return;
        } else {
            Validity::new(Some(lo(e.life.from).max(since)), e.life.to)
        };
        for extra in existing.iter().skip(1) {
            self.out.warnings.push(Notice::at(
                e.rec.line,
                format!(
                    "employment {}: more than one manager function ({extra} left as is)",
                    e.rec.id
                ),
            ));
        }
        let value = Value::Manager(Manager {
            user_key: e.rec.id.clone(),
            org_unit: self.cfg.uuids.unit(&d.org_unit),
            person: Some(person),
            engagement: Some(engagement),
            manager_type,
            manager_level,
            responsibilities: vec![responsibility],
        });
        self.managers
            .push(Fact::state(uuid, value, life, Some(since)));
    }

    fn roles(&mut self, e: &Employment<'a>, person: Uuid) {
        let d = e.data;
        let mut wanted: HashSet<Uuid> = HashSet::new();
        for (i, f) in d.functions.iter().enumerate() {
            let Some(art) = f.art_text.as_deref() else {
                if e.changed {
                    self.out.warnings.push(Notice::at(
                        e.rec.line,
                        format!(
                            "{}: function {} has no artText; not imported as a role",
                            element(e.rec),
                            i + 1
                        ),
                    ));
                }
                continue;
            };
            let name = match f.role_text.as_deref() {
                Some(r) => format!("{art} - {r}"),
                None => art.to_string(),
            };
            let role_type = self.classes.class("role_type", &name, &name, Some("TEXT"));
            let start = f.start_date.or(e.life.from);
            let uuid = self.cfg.uuids.derived(
                "role",
                &[
                    &e.rec.id,
                    &name,
                    &start.map(|d| d.to_string()).unwrap_or_default(),
                ],
            );
            let life = Validity::new(start, f.end_date.filter(|d| *d < Date::MAX).map(next_day));
            if life.is_empty() {
                continue;
            }
            wanted.insert(uuid);
            let value = Value::Role(Role {
                user_key: e.rec.id.clone(),
                person,
                org_unit: self.cfg.uuids.unit(&d.org_unit),
                role_type,
            });
            self.managers
                .push(Fact::state(uuid, value, life, Some(e.effective)));
        }
        for uuid in self.ix.user_key(Kind::Role, &e.rec.id).to_vec() {
            if !wanted.contains(&uuid) {
                self.managers.push(Fact::End {
                    uuid,
                    kind: Kind::Role,
                    at: e.effective,
                });
            }
        }
    }

    /// One IT user in `Opus` per distinct `userId` of the person's employments, from the
    /// effective date of the (earliest changed) employment that carries it; nothing before that
    /// day changes. One that disappears is ended at `change`.
    fn it_users(&mut self, employments: &[Employment<'a>], person: Uuid, change: Date) {
        // userId → the day the input speaks about it from.
        let mut wanted: std::collections::BTreeMap<&str, (bool, Date)> = Default::default();
        for e in employments {
            let Some(user) = e.data.user_id.as_deref() else {
                continue;
            };
            let key = (!e.changed, e.effective);
            wanted
                .entry(user)
                .and_modify(|k| *k = (*k).min(key))
                .or_insert(key);
        }
        let existing = self.person_it_users(person, "Opus", None);
        if wanted.is_empty() && existing.is_empty() {
            return;
        }
        let itsystem = self.classes.itsystem("Opus");
        for (user, (_, since)) in &wanted {
            // The active one when MO holds several with this name.
            let found = existing
                .iter()
                .filter(|(_, k, _, _)| k == user)
                .max_by_key(|f| f.3);
            let uuid = found.map_or_else(
                || {
                    self.cfg
                        .uuids
                        .derived("ituser", &[&person.to_string(), "Opus", user])
                },
                |f| f.0,
            );
            let value = person_it_user(user, itsystem, person);
            // One MO holds already, unchanged and still active, is not written again.
            if found.is_some_and(|f| f.3)
                && self.ix.get(&uuid).is_some_and(|o| o.last().value == value)
            {
                continue;
            }
            self.details
                .push(Fact::from_date(uuid, value, *since, None));
        }
        for (uuid, key, _, open) in existing {
            if open && !wanted.contains_key(key.as_str()) {
                self.details.push(Fact::End {
                    uuid,
                    kind: Kind::ItUser,
                    at: change,
                });
            }
        }
    }

    /// The person's IT users in the IT system named (or keyed) `system` that MO holds, as
    /// (uuid, user name, first day, active with no end); with `active_after`, only those still
    /// active after that day.
    fn person_it_users(
        &self,
        person: Uuid,
        system: &str,
        active_after: Option<Date>,
    ) -> Vec<(Uuid, String, Option<Date>, bool)> {
        let system = self
            .classes
            .itsystems
            .iter()
            .find(|(_, k, n)| n == system || k == system)
            .map(|s| s.0);
        self.ix
            .owned(Kind::ItUser, person)
            .filter_map(|o| match &o.last().value {
                Value::ItUser(i)
                    if Some(i.itsystem) == system
                        && active_after
                            .is_none_or(|d| o.last().validity.to.is_none_or(|t| t > d)) =>
                {
                    Some((
                        o.uuid,
                        i.user_key.clone(),
                        o.slices[0].validity.from,
                        o.last().validity.to.is_none(),
                    ))
                }
                _ => None,
            })
            .collect()
    }

    /// The person's IT user in `Active Directory` (`specs/opus.md` §8.7): none in AD and none in
    /// MO → nothing; none current → create; the account name differs → edit from `eff`; the
    /// person no longer has an AD account → end it at `eff`; several current → warning, no
    /// change. An ambiguous CPR (several accounts) leaves the IT user as it is.
    fn ad_it_user(&mut self, lookup: AdLookup<'_>, person: Uuid, eff: Date, line: u64) {
        let wanted = match lookup {
            AdLookup::Found(u) => Some(u.sam.as_str()),
            AdLookup::Absent => None,
            AdLookup::Ambiguous => return,
        };
        let current = self.person_it_users(person, ad::IT_SYSTEM, Some(eff));
        if current.len() > 1 {
            self.out.warnings.push(Notice::at(
                line,
                format!(
                    "person {person}: more than one current {} IT user; left as they are",
                    ad::IT_SYSTEM
                ),
            ));
            return;
        }
        match (wanted, current.first()) {
            (None, None) => {}
            (None, Some((uuid, _, _, _))) => self.details.push(Fact::End {
                uuid: *uuid,
                kind: Kind::ItUser,
                at: eff,
            }),
            (Some(sam), found) => {
                let itsystem = self.classes.itsystem(ad::IT_SYSTEM);
                let uuid = match found {
                    Some((uuid, _, _, _)) => *uuid,
                    None => self
                        .cfg
                        .uuids
                        .derived("ituser", &[&person.to_string(), ad::IT_SYSTEM, sam]),
                };
                let value = person_it_user(sam, itsystem, person);
                if found.is_some_and(|f| f.3)
                    && self.ix.get(&uuid).is_some_and(|o| o.last().value == value)
                {
                    return;
                }
                self.details.push(Fact::from_date(uuid, value, eff, None));
            }
        }
    }

    fn person_addresses(&mut self, rep: &Employment<'a>, person: Uuid) {
        let d = rep.data;
        let eff = rep.effective;
        let owner = Owner::Person(person);
        if !self.cfg.skip_phone {
            let phone = match d.work_phone.as_deref() {
                None => Wanted::No,
                Some(raw) => match normalise_phone(raw) {
                    Some(p) => Wanted::Yes(p),
                    None => {
                        if rep.changed {
                            self.out.warnings.push(Notice::at(
                                rep.rec.line,
                                format!(
                                "{}, field workPhone: not a phone number dipex understands; left as it was",
                                element(rep.rec)
                            )));
                        }
                        Wanted::Keep
                    }
                },
            };
            self.address(
                owner,
                "employee_address_type",
                "Telefon",
                "PHONE",
                phone,
                eff,
                eff,
                None,
            );
        }
        if !self.cfg.skip_email {
            let email = d.email.clone().into();
            self.address(
                owner,
                "employee_address_type",
                "Email",
                "EMAIL",
                email,
                eff,
                eff,
                None,
            );
        }
        if !self.cfg.skip_address {
            let home = match (&d.address, d.postal_code.as_deref()) {
                // Address protection: never imported, and an earlier address is ended.
                (Some(AddressField::Protected), _) => Wanted::No,
                (Some(AddressField::Plain(street)), Some(zip)) => {
                    self.dar_lookup(street, zip, &element(rep.rec), rep.rec.line)
                }
                _ => Wanted::No,
            };
            self.address(
                owner,
                "employee_address_type",
                "Adresse",
                "DAR",
                home,
                eff,
                eff,
                None,
            );
        }
    }
}

/// A person with no employment left in the dump that can be imported.
#[derive(Default)]
struct Left {
    /// The day their Opus IT users end (after the dump date, or an ended engagement's end).
    it_end: Option<Date>,
    /// The earliest day the set of engagements changed: primary classes are computed again.
    since: Option<Date>,
    /// Engagements a leave marker ends, and the day.
    ended: Vec<(Uuid, Date)>,
}

/// What an address should be.
enum Wanted {
    /// This value.
    Yes(String),
    /// No address of this type.
    No,
    /// Leave whatever MO has (the register had no answer, or the value was unusable).
    Keep,
}

impl From<Option<String>> for Wanted {
    fn from(v: Option<String>) -> Wanted {
        v.map_or(Wanted::No, Wanted::Yes)
    }
}

#[derive(Clone, Copy)]
enum Owner {
    Unit(Uuid),
    Person(Uuid),
}

impl Owner {
    fn uuid(self) -> Uuid {
        match self {
            Owner::Unit(u) | Owner::Person(u) => u,
        }
    }
    fn person(self) -> Option<Uuid> {
        match self {
            Owner::Person(u) => Some(u),
            Owner::Unit(_) => None,
        }
    }
    fn unit(self) -> Option<Uuid> {
        match self {
            Owner::Unit(u) => Some(u),
            Owner::Person(_) => None,
        }
    }
}

/// The DAR queries a mapping will ask: unit addresses of changed units, and home addresses of
/// the given employments.
pub fn dar_queries(
    dump: &Dump,
    changes: &Changes,
    tree: &Tree<'_>,
    skip_address: bool,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for id in &changes.units {
        let u = tree.by_id[id.as_str()];
        if let (Some(s), Some(z)) = (&u.street, &u.zip_code) {
            out.insert((s.clone(), z.clone()));
        }
    }
    if !skip_address {
        let changed: HashSet<&str> = changes.employees.iter().map(String::as_str).collect();
        let cprs: HashSet<&Cpr> = dump
            .employees
            .iter()
            .filter(|e| changed.contains(e.id.as_str()))
            .filter_map(|e| e.data.as_ref().map(|d| &d.cpr))
            .collect();
        for e in &dump.employees {
            if let Some(d) = &e.data
                && cprs.contains(&d.cpr)
                && let (Some(AddressField::Plain(s)), Some(z)) = (&d.address, &d.postal_code)
            {
                out.insert((s.clone(), z.clone()));
            }
        }
    }
    out
}

/// A person's account `user_key` in the IT system `itsystem`.
fn person_it_user(user_key: &str, itsystem: Uuid, person: Uuid) -> Value {
    Value::ItUser(ItUser {
        user_key: user_key.to_string(),
        itsystem,
        person: Some(person),
        org_unit: None,
        external_id: None,
        engagements: Vec::new(),
        primary: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_normalisation_follows_upstream() {
        assert_eq!(normalise_phone("12345678").as_deref(), Some("12345678"));
        assert_eq!(normalise_phone("12 34 567").as_deref(), Some("1234567"));
        assert_eq!(
            normalise_phone("+4512345678").as_deref(),
            Some("+4512345678")
        );
        assert_eq!(normalise_phone("1234").as_deref(), Some("00001234"));
        assert_eq!(normalise_phone("12 34").as_deref(), Some("00001234"));
        assert_eq!(normalise_phone("123"), None);
        assert_eq!(normalise_phone("1234567890"), None);
    }

    #[test]
    fn fraction_from_numerator_and_denominator() {
        assert_eq!(fraction(Some("1"), Some("1")), Some(1_000_000));
        assert_eq!(fraction(Some("30"), Some("37")), Some(810_811));
        assert_eq!(fraction(Some("18,5"), Some("37")), Some(500_000));
        assert_eq!(fraction(Some("1"), Some("0")), None);
        assert_eq!(fraction(None, Some("1")), None);
        assert_eq!(fraction(Some("x"), Some("1")), None);
    }

    #[test]
    fn effective_date_rule() {
        let d = |m, day| jiff::civil::date(2020, m, day);
        assert_eq!(effective(Some(d(1, 1)), d(2, 1)), d(1, 1));
        assert_eq!(effective(Some(d(3, 1)), d(2, 1)), d(2, 1));
        assert_eq!(effective(None, d(2, 1)), d(2, 1));
    }
}
