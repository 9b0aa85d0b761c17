//! From parsed LOS rows to MO facts, pure (`specs/los.md` §9–§12, DESIGN.md rulings 8–9):
//! STAM classes and IT systems; org units with their address columns and postal address (from
//! the DAR answers the runner got); persons with engagements, e-mail and AZ IT user; managers;
//! endings. `*_nye`/`Org_inital` rows describe whole lives (several rows of one unit become its
//! history, consecutive identical rows one validity); `*_ret` rows change objects from the file
//! date (unknown objects are created); `*_luk` rows end them after the file date.

use super::files::StamKind;
use super::parse::{
    ClassRow, DarFailure, ItSystemRow, ManagerEndRow, ManagerRow, OrgUnitRow, PersonEndRow,
    PersonRow,
};
use super::seed::class_uuid;
use super::uuids;
use dipex_model::{
    Address, Class, Cpr, Date, Engagement, Facet, Fact, ItSystem, ItUser, Kind, Manager, Object,
    OrgUnit, Person, Slice, Validity, Value,
};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What the mapping of one file needs besides its rows.
pub struct Ctx<'a> {
    /// The MO objects the file's facts concern (by uuid).
    pub current: &'a HashMap<Uuid, Object>,
    /// Persons in MO by CPR number.
    pub persons: &'a HashMap<Cpr, Uuid>,
    /// The date in the file's name.
    pub file_date: Date,
    /// The day of the run.
    pub today: Date,
    pub azid_system: Uuid,
    /// DAR answers for postal address texts (`None`: no unambiguous match). A text that is
    /// not a key had a *failed* lookup: the unit's postal address is pending, not a miss.
    pub dar: &'a HashMap<String, Option<Uuid>>,
}

/// The facts of one file and what to report.
#[derive(Debug, Default)]
pub struct Mapped {
    pub facts: Vec<Fact>,
    /// Rows that could not be imported (file line and why; never a CPR number).
    pub rejected: Vec<(u64, String)>,
    pub dar_failures: Vec<DarFailure>,
    /// Units whose postal address could not be looked up (the register failed): their rows'
    /// postal addresses, to be mapped again by [`post_addresses`] in a later run.
    pub dar_pending: Vec<PendingAddress>,
    /// Units whose postal address this file settled (looked up, found or a definitive miss).
    pub dar_settled: Vec<Uuid>,
    pub warnings: Vec<String>,
}

/// The postal addresses of one unit's rows in one file, waiting for the register.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingAddress {
    pub unit: Uuid,
    /// Each row's validity and `PostAdresse` text, in file order.
    pub rows: Vec<(Validity, String)>,
}

fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(Date::MAX)
}

/// `[start, end]` inclusive → half-open.
fn life(start: Date, end: Option<Date>) -> Validity {
    Validity::new(Some(start), end.filter(|d| *d < Date::MAX).map(next_day))
}

/// A fact whose value changes over time: `rows` of (validity, value) sorted by start; gaps
/// between rows are closed by the earlier row.
fn history(uuid: Uuid, mut rows: Vec<(Validity, Value)>) -> Option<Fact> {
    rows.sort_by_key(|(v, _)| v.from);
    let first = rows.first()?.0.from;
    let last_to = rows.last()?.0.to;
    let mut timeline: Vec<Slice> = Vec::new();
    for (i, (v, value)) in rows.iter().enumerate() {
        let to = rows.get(i + 1).map(|(n, _)| n.from).unwrap_or(last_to);
        let to = if i + 1 < rows.len() { to } else { v.to };
        if let Some(prev) = timeline.last_mut()
            && prev.value == *value
        {
            prev.validity.to = to;
            continue;
        }
        timeline.push(Slice::new(Validity::new(v.from, to), value.clone()));
    }
    timeline.retain(|s| !s.validity.is_empty());
    // Rows with the same start leave empty slices behind; merge what became neighbours.
    let timeline = dipex_model::plan::normalise(timeline);
    if timeline.is_empty() {
        return None;
    }
    // The rows describe the whole life: the input speaks about all of the history.
    Some(Fact::State {
        uuid,
        life: Validity::new(first, last_to),
        since: None,
        timeline,
    })
}

/// STAM class file: the facet, its classes, and an end (from today) for classes gone from it.
pub fn stam_classes(kind: StamKind, rows: &[ClassRow], existing: &[Object], today: Date) -> Mapped {
    let mut m = Mapped::default();
    let Some(facet_key) = kind.facet() else {
        return m;
    };
    let facet = uuids::facet(facet_key);
    m.facts.push(Fact::state(
        facet,
        Value::Facet(Facet {
            user_key: facet_key.into(),
        }),
        Validity::ALWAYS,
        None,
    ));
    let mut listed = std::collections::HashSet::new();
    for r in rows {
        listed.insert(r.uuid);
        let value = Value::Class(Class {
            user_key: r.title.clone(),
            name: r.title.clone(),
            facet,
            scope: Some("TEXT".into()),
            parent: None,
            owner: None,
        });
        m.facts
            .push(Fact::state(r.uuid, value, Validity::ALWAYS, None));
    }
    for o in existing {
        let of_facet = matches!(&o.last().value, Value::Class(c) if c.facet == facet);
        if of_facet && !listed.contains(&o.uuid) && o.active_in(&Validity::new(Some(today), None)) {
            m.facts.push(Fact::End {
                uuid: o.uuid,
                kind: Kind::Class,
                at: today,
            });
        }
    }
    m
}

/// STAM IT systems: created or renamed; ones gone from the file are only reported.
pub fn stam_itsystems(rows: &[ItSystemRow], existing: &[Object]) -> Mapped {
    let mut m = Mapped::default();
    let mut listed = std::collections::HashSet::new();
    for r in rows {
        listed.insert(r.uuid);
        let value = Value::ItSystem(ItSystem {
            user_key: r.user_key.clone(),
            name: r.name.clone(),
        });
        m.facts
            .push(Fact::state(r.uuid, value, Validity::ALWAYS, None));
    }
    for o in existing.iter().filter(|o| !listed.contains(&o.uuid)) {
        m.warnings.push(format!(
            "IT system {} is in MO but not in STAM_UUID_ITSystem.csv; it is left as it is",
            o.uuid
        ));
    }
    m
}

/// The address columns of a unit row: (suffix, class constant, value).
fn address_columns(r: &OrgUnitRow) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    for (suffix, class, v) in [
        ("los", "UNIT_LOS", &r.los_id),
        ("cvr", "UNIT_CVR", &r.cvr),
        ("ean", "UNIT_EAN", &r.ean),
        ("pnr", "UNIT_PNR", &r.p_number),
        ("senr", "UNIT_SENR", &r.se_number),
        ("debitornr", "UNIT_DEBITORNR", &r.int_debitor),
        ("mag_id", "UNIT_MAG_ID", &r.mag_id),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
            out.push((suffix, class, v.clone()));
        }
    }
    out
}

fn unit_address(unit: Uuid, class: &str, value: String) -> Value {
    Value::Address(Address {
        user_key: value.clone(),
        value,
        address_type: class_uuid(class),
        visibility: None,
        person: None,
        org_unit: Some(unit),
        engagement: None,
        ituser: None,
    })
}

/// Org unit files. `edit`: an `Org_ret` file (changes from the file date).
pub fn org_units(rows: &[OrgUnitRow], edit: bool, ctx: &Ctx<'_>) -> Mapped {
    let mut m = Mapped::default();
    let current_unit = |u: Uuid| -> Option<OrgUnit> {
        ctx.current
            .get(&u)
            .and_then(|o| match &o.at_or_latest(ctx.file_date).value {
                Value::OrgUnit(x) => Some(x.clone()),
                _ => None,
            })
    };
    let unit_value = |r: &OrgUnitRow| {
        let cur = current_unit(r.uuid);
        Value::OrgUnit(OrgUnit {
            user_key: r.user_key.clone(),
            name: r
                .name
                .clone()
                .or_else(|| cur.as_ref().map(|c| c.name.clone()))
                .unwrap_or_else(|| r.user_key.clone()),
            parent: (r.parent != r.uuid).then_some(r.parent),
            unit_type: r.unit_type.or(cur.as_ref().and_then(|c| c.unit_type)),
            unit_level: cur.as_ref().and_then(|c| c.unit_level),
            unit_hierarchy: if r.line_org {
                Some(class_uuid("LINJE_ORG_HIERARCHY"))
            } else {
                cur.as_ref().and_then(|c| c.unit_hierarchy)
            },
            time_planning: cur.as_ref().and_then(|c| c.time_planning),
        })
    };
    // (uuid) → rows of (validity, value), in file order per uuid.
    let mut groups: BTreeMap<Uuid, Vec<(Validity, Value)>> = BTreeMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    let mut push = |uuid: Uuid,
                    v: Validity,
                    value: Value,
                    groups: &mut BTreeMap<Uuid, Vec<(Validity, Value)>>| {
        if !groups.contains_key(&uuid) {
            order.push(uuid);
        }
        groups.entry(uuid).or_default().push((v, value));
    };
    // Units with a postal address whose lookup failed: none of their postal address rows is
    // mapped now (no partial history); they are pending as a whole.
    let post_text = |r: &OrgUnitRow| {
        r.post_address
            .as_ref()
            .filter(|t| !t.trim().is_empty())
            .cloned()
    };
    let waiting: std::collections::HashSet<Uuid> = rows
        .iter()
        .filter(|r| post_text(r).is_some_and(|t| !ctx.dar.contains_key(t.trim())))
        .map(|r| r.uuid)
        .collect();
    let mut pending: BTreeMap<Uuid, Vec<(Validity, String)>> = BTreeMap::new();
    for r in rows {
        let v = life(r.start, r.end);
        push(r.uuid, v, unit_value(r), &mut groups);
        for (suffix, class, value) in address_columns(r) {
            push(
                uuids::unit_address(r.uuid, suffix),
                v,
                unit_address(r.uuid, class, value),
                &mut groups,
            );
        }
        if let Some(text) = post_text(r) {
            if waiting.contains(&r.uuid) {
                pending.entry(r.uuid).or_default().push((v, text));
                continue;
            }
            match ctx.dar.get(text.trim()).copied().flatten() {
                Some(id) => push(
                    uuids::unit_address(r.uuid, "postaddr"),
                    v,
                    unit_address(r.uuid, "UNIT_POSTADDR", id.to_string()),
                    &mut groups,
                ),
                None => m.dar_failures.push(DarFailure {
                    org_unit: r.uuid,
                    post_address: text.clone(),
                }),
            }
        }
    }
    let mut settled: Vec<Uuid> = rows
        .iter()
        .filter(|r| post_text(r).is_some() && !waiting.contains(&r.uuid))
        .map(|r| r.uuid)
        .collect();
    settled.sort();
    settled.dedup();
    m.dar_settled = settled;
    m.dar_pending = pending
        .into_iter()
        .map(|(unit, rows)| PendingAddress { unit, rows })
        .collect();
    facts_of(order, groups, edit, ctx, &mut m);
    m
}

/// The facts of grouped rows: whole histories, or (`edit`) each object changed from the file
/// date by its last row.
fn facts_of(
    order: Vec<Uuid>,
    mut groups: BTreeMap<Uuid, Vec<(Validity, Value)>>,
    edit: bool,
    ctx: &Ctx<'_>,
    m: &mut Mapped,
) {
    for uuid in order {
        let rows = groups.remove(&uuid).unwrap_or_default();
        if edit {
            // Each row changes the object from the file date (the last row of an object wins).
            if let Some((v, value)) = rows.into_iter().last() {
                let start = ctx
                    .current
                    .get(&uuid)
                    .and_then(|o| o.slices.first())
                    .map_or(v.from, |s| s.validity.from);
                m.facts.push(Fact::state(
                    uuid,
                    value,
                    Validity::new(start.min(v.from), v.to),
                    Some(ctx.file_date),
                ));
            }
        } else if let Some(f) = history(uuid, rows) {
            m.facts.push(f);
        }
    }
}

/// The postal addresses of units that were pending, mapped as their file would have mapped
/// them (`edit`: an `Org_ret` file; `ctx.file_date`: that file's date). Units whose lookups fail
/// again stay pending; definitive misses go to the failure list.
pub fn post_addresses(pending: &[PendingAddress], edit: bool, ctx: &Ctx<'_>) -> Mapped {
    let mut m = Mapped::default();
    let mut groups: BTreeMap<Uuid, Vec<(Validity, Value)>> = BTreeMap::new();
    let mut order = Vec::new();
    for p in pending {
        if p.rows.iter().any(|(_, t)| !ctx.dar.contains_key(t.trim())) {
            m.dar_pending.push(p.clone());
            continue;
        }
        m.dar_settled.push(p.unit);
        let uuid = uuids::unit_address(p.unit, "postaddr");
        for (v, text) in &p.rows {
            match ctx.dar.get(text.trim()).copied().flatten() {
                Some(id) => {
                    if !groups.contains_key(&uuid) {
                        order.push(uuid);
                    }
                    groups
                        .entry(uuid)
                        .or_default()
                        .push((*v, unit_address(p.unit, "UNIT_POSTADDR", id.to_string())));
                }
                None => m.dar_failures.push(DarFailure {
                    org_unit: p.unit,
                    post_address: text.clone(),
                }),
            }
        }
    }
    facts_of(order, groups, edit, ctx, &mut m);
    m
}

/// "Fornavn Efternavn" → (given name, surname): the last word is the surname.
fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.rsplit_once(' ') {
        Some((given, surname)) => (given.trim().to_string(), surname.to_string()),
        None => (String::new(), name.to_string()),
    }
}

/// Person files. `edit`: a `Pers_ret` file. `new_uuid` numbers persons MO does not have.
pub fn persons(
    rows: &[PersonRow],
    edit: bool,
    ctx: &Ctx<'_>,
    new_uuid: &mut dyn FnMut() -> Uuid,
) -> Mapped {
    let mut m = Mapped::default();
    let effective = edit.then_some(ctx.file_date);
    let mut uuids_by_cpr: HashMap<Cpr, Uuid> = HashMap::new();
    let mut latest: BTreeMap<Uuid, Fact> = BTreeMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    let mut keep = |f: Fact, latest: &mut BTreeMap<Uuid, Fact>| {
        let u = f.uuid();
        if latest.insert(u, f).is_none() {
            order.push(u);
        }
    };
    for r in rows {
        let person = *uuids_by_cpr.entry(r.cpr.clone()).or_insert_with(|| {
            ctx.persons
                .get(&r.cpr)
                .copied()
                .unwrap_or_else(&mut *new_uuid)
        });
        if !latest.contains_key(&person) {
            let cur = ctx
                .current
                .get(&person)
                .and_then(|o| match &o.last().value {
                    Value::Person(p) => Some(p.clone()),
                    _ => None,
                });
            let (given, surname) = split_name(&r.name);
            let value = Value::Person(Person {
                user_key: cur
                    .as_ref()
                    .map_or_else(|| person.to_string(), |c| c.user_key.clone()),
                given_name: given,
                surname,
                nickname_given_name: cur.as_ref().and_then(|c| c.nickname_given_name.clone()),
                nickname_surname: cur.as_ref().and_then(|c| c.nickname_surname.clone()),
                cpr_number: Some(r.cpr.clone()),
                seniority: cur.as_ref().and_then(|c| c.seniority),
            });
            keep(
                Fact::state(person, value, Validity::ALWAYS, effective),
                &mut latest,
            );
        }
        let primary = class_uuid(if r.primary { "PRIMARY" } else { "NOT_PRIMARY" });
        let engagement = Value::Engagement(Engagement {
            user_key: r.user_key.clone(),
            person,
            org_unit: r.org_unit,
            job_function: r.job_function,
            engagement_type: r.engagement_type,
            primary: Some(primary),
            fraction: None,
            extensions: Box::default(),
        });
        keep(
            Fact::state(r.engagement, engagement, life(r.start, r.end), effective),
            &mut latest,
        );
        // E-mail and AZ user are not dated by LOS: the row speaks about them from the file date
        // (or its own later start) on, and what MO holds before that day stays (§11.4, §13.1).
        let detail_since = ctx.file_date.max(r.start);
        let detail_end = life(r.start, r.end).to;
        if let Some(email) = r.email.as_ref().filter(|e| !e.trim().is_empty()) {
            let value = Value::Address(Address {
                user_key: email.clone(),
                value: email.clone(),
                address_type: class_uuid("PERSON_EMAIL"),
                visibility: None,
                person: Some(person),
                org_unit: None,
                engagement: None,
                ituser: None,
            });
            keep(
                Fact::from_date(
                    uuids::person_detail(person, "email"),
                    value,
                    detail_since,
                    detail_end,
                ),
                &mut latest,
            );
        }
        if let Some(azid) = r.azid.as_ref().filter(|a| !a.trim().is_empty()) {
            let value = Value::ItUser(ItUser {
                user_key: azid.clone(),
                itsystem: ctx.azid_system,
                person: Some(person),
                org_unit: None,
                external_id: None,
                engagements: Vec::new(),
                primary: None,
            });
            keep(
                Fact::from_date(
                    uuids::person_detail(person, "azid"),
                    value,
                    detail_since,
                    detail_end,
                ),
                &mut latest,
            );
        }
    }
    for u in order {
        if let Some(f) = latest.remove(&u) {
            m.facts.push(f);
        }
    }
    m
}

/// `Pers_luk`: each engagement's last day is the file date (unknown engagements are skipped).
pub fn person_ends(rows: &[PersonEndRow], ctx: &Ctx<'_>) -> Mapped {
    let mut m = Mapped::default();
    for r in rows {
        if ctx.current.contains_key(&r.engagement) {
            m.facts.push(Fact::End {
                uuid: r.engagement,
                kind: Kind::Engagement,
                at: next_day(ctx.file_date),
            });
        } else {
            m.warnings.push(format!(
                "line {}: engagement {} is not in MO; nothing to end",
                r.line, r.engagement
            ));
        }
    }
    m
}

/// The person of a manager row, or `None` with the row rejected (masked CPR) when no person in
/// MO has its CPR number.
fn manager_person(ctx: &Ctx<'_>, m: &mut Mapped, line: u64, cpr: &Cpr, unit: Uuid) -> Option<Uuid> {
    let person = ctx.persons.get(cpr).copied();
    if person.is_none() {
        m.rejected.push((
            line,
            format!("no person in MO has the CPR number {cpr} (unit {unit})"),
        ));
    }
    person
}

/// Manager files, from the file date; a row whose CPR is not in MO is rejected.
pub fn managers(rows: &[ManagerRow], edit: bool, ctx: &Ctx<'_>) -> Mapped {
    let mut m = Mapped::default();
    for r in rows {
        let Some(person) = manager_person(ctx, &mut m, r.line, &r.cpr, r.org_unit) else {
            continue;
        };
        let uuid = uuids::manager(r.org_unit, person);
        let value = Value::Manager(Manager {
            user_key: uuid.to_string(),
            org_unit: r.org_unit,
            person: Some(person),
            engagement: None,
            manager_type: r.manager_type,
            manager_level: r.manager_level,
            responsibilities: vec![r.responsibility],
        });
        let start = if edit {
            ctx.current
                .get(&uuid)
                .and_then(|o| o.slices.first())
                .and_then(|s| s.validity.from)
                .unwrap_or(ctx.file_date)
        } else {
            ctx.file_date
        };
        m.facts.push(Fact::state(
            uuid,
            value,
            Validity::new(Some(start), None),
            edit.then_some(ctx.file_date),
        ));
    }
    m
}

/// `Leder_luk`: the manager's last day is the file date.
pub fn manager_ends(rows: &[ManagerEndRow], ctx: &Ctx<'_>) -> Mapped {
    let mut m = Mapped::default();
    for r in rows {
        let Some(person) = manager_person(ctx, &mut m, r.line, &r.cpr, r.org_unit) else {
            continue;
        };
        let uuid = uuids::manager(r.org_unit, person);
        if ctx.current.contains_key(&uuid) {
            m.facts.push(Fact::End {
                uuid,
                kind: Kind::Manager,
                at: next_day(ctx.file_date),
            });
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(n: i32) -> Date {
        jiff::civil::date(2020, 1, 1)
            .checked_add(jiff::Span::new().days(n))
            .unwrap()
    }

    fn unit(name: u8) -> Value {
        Value::OrgUnit(OrgUnit {
            user_key: "u".into(),
            name: format!("U{name}"),
            parent: None,
            unit_type: None,
            unit_level: None,
            unit_hierarchy: None,
            time_planning: None,
        })
    }

    proptest! {
        /// Any rows of one unit (in any order, overlapping or with gaps) become a valid history:
        /// sorted, non-overlapping, non-empty slices, with no two neighbours equal, covering from
        /// the earliest start to the last row's end.
        #[test]
        fn unit_histories_merge_into_valid_slices(
            rows in proptest::collection::vec((0i32..400, proptest::option::of(1i32..200), 0u8..3), 1..12)
        ) {
            let rows: Vec<(Validity, Value)> = rows
                .into_iter()
                .map(|(start, len, name)| (Validity::new(Some(day(start)), len.map(|l| day(start + l))), unit(name)))
                .collect();
            let earliest = rows.iter().map(|(v, _)| v.from).min().unwrap();
            let Some(Fact::State { uuid, life, timeline, .. }) = history(Uuid::nil(), rows) else {
                return Err(TestCaseError::fail("no fact"));
            };
            prop_assert_eq!(life.from, earliest);
            prop_assert_eq!(timeline.first().unwrap().validity.from, earliest);
            let obj = Object::new(uuid, timeline.clone());
            prop_assert!(obj.is_ok(), "{:?}", obj);
            for w in timeline.windows(2) {
                prop_assert!(w[0].value != w[1].value || w[0].validity.to != w[1].validity.from, "{timeline:?}");
            }
        }
    }

    #[test]
    fn consecutive_identical_rows_are_one_validity() {
        let rows = vec![
            (Validity::new(Some(day(0)), Some(day(10))), unit(1)),
            (Validity::new(Some(day(10)), Some(day(20))), unit(1)),
            (Validity::new(Some(day(20)), None), unit(2)),
        ];
        let Some(Fact::State { timeline, .. }) = history(Uuid::nil(), rows) else {
            panic!()
        };
        assert_eq!(timeline.len(), 2);
        assert_eq!(
            timeline[0].validity,
            Validity::new(Some(day(0)), Some(day(20)))
        );
    }

    // ----- §14.2 checklist items, one by one -----

    fn consolidated(rows: Vec<(i32, i32, u8)>) -> Vec<(Validity, String)> {
        let rows = rows
            .into_iter()
            .map(|(from, to, name)| (Validity::new(Some(day(from)), Some(day(to))), unit(name)))
            .collect();
        let Some(Fact::State { timeline, .. }) = history(Uuid::nil(), rows) else {
            panic!()
        };
        timeline
            .into_iter()
            .map(|s| match s.value {
                Value::OrgUnit(u) => (s.validity, u.name),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn checklist_32_to_37_consolidation() {
        // 32: five identical consecutive years → one validity.
        let years: Vec<(i32, i32, u8)> = (0..5).map(|y| (y * 365, (y + 1) * 365, 1)).collect();
        assert_eq!(
            consolidated(years),
            vec![(Validity::new(Some(day(0)), Some(day(5 * 365))), "U1".into())]
        );
        // 33: consecutive but different → unchanged.
        assert_eq!(consolidated(vec![(0, 10, 1), (10, 20, 2)]).len(), 2);
        // 35: a mix.
        let mixed = consolidated(vec![
            (0, 10, 1),
            (10, 20, 1),
            (20, 30, 2),
            (30, 40, 3),
            (40, 50, 3),
        ]);
        let names: Vec<&str> = mixed.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, vec!["U1", "U2", "U3"]);
        assert_eq!(mixed[0].0, Validity::new(Some(day(0)), Some(day(20))));
        // 37: a single row is unchanged; no rows, no fact.
        assert_eq!(consolidated(vec![(0, 10, 1)]).len(), 1);
        assert!(history(Uuid::nil(), vec![]).is_none());
    }

    fn class_row(uuid: u128, title: &str) -> ClassRow {
        ClassRow {
            line: 2,
            uuid: Uuid::from_u128(uuid),
            title: title.into(),
            loaded: None,
        }
    }

    fn stored_class(uuid: u128, title: &str, facet: Uuid, to: Option<Date>) -> (Uuid, Object) {
        let value = Value::Class(Class {
            user_key: title.into(),
            name: title.into(),
            facet,
            scope: Some("TEXT".into()),
            parent: None,
            owner: None,
        });
        let slice = Slice::new(Validity::new(None, to), value);
        let uuid = Uuid::from_u128(uuid);
        (uuid, Object::new(uuid, vec![slice]).unwrap())
    }

    #[test]
    fn checklist_26_to_30_stam_classes() {
        use dipex_model::{Op, reconcile};
        let today = day(100);
        let facet = uuids::facet("association_type");
        let plan = |rows: &[ClassRow], current: &HashMap<Uuid, Object>| {
            let existing: Vec<Object> = current.values().cloned().collect();
            let m = stam_classes(StamKind::Tilknytningsrolle, rows, &existing, today);
            reconcile(m.facts, current)
        };
        // 28/29: the facet has the deterministic uuid of its user key: created when missing,
        // left alone when it is there.
        assert_eq!(facet, uuids::ns_los("association_type"));
        let empty = HashMap::new();
        // 26: no classes in MO, one row: the facet and exactly one class in it.
        let first = plan(&[class_row(0xc1, "Test-assoc-type-1")], &empty);
        let created: Vec<(Uuid, &Value)> = first
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Create { uuid, value, .. } => Some((*uuid, value)),
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), 2, "{first:?}");
        assert!(
            created
                .iter()
                .any(|(u, v)| *u == facet && matches!(v, Value::Facet(_)))
        );
        assert!(created.iter().any(|(u, v)| *u == Uuid::from_u128(0xc1)
            && matches!(v, Value::Class(c) if c.facet == facet && c.name == "Test-assoc-type-1")));

        let mut current: HashMap<Uuid, Object> = HashMap::new();
        let f = Object::new(
            facet,
            vec![Slice::new(
                Validity::ALWAYS,
                Value::Facet(Facet {
                    user_key: "association_type".into(),
                }),
            )],
        )
        .unwrap();
        current.insert(facet, f);
        current.extend([stored_class(0xc1, "Test-assoc-type-1", facet, None)]);
        // 30: a new title for a class MO has: one update of that class, nothing else.
        let renamed = plan(&[class_row(0xc1, "Test-assoc-type-1 UPDATED")], &current);
        assert_eq!(renamed.ops.len(), 1, "{renamed:?}");
        assert!(matches!(&renamed.ops[0],
            Op::Update { uuid, value: Value::Class(c), .. }
                if *uuid == Uuid::from_u128(0xc1) && c.name == "Test-assoc-type-1 UPDATED"));
        // The same title again: nothing.
        assert!(plan(&[class_row(0xc1, "Test-assoc-type-1")], &current).is_empty());
        // 27: MO has the class, the file is empty: it ends today (LoRa's "unpublish"). A class
        // that has already ended is left alone, without an error.
        let removed = plan(&[], &current);
        assert_eq!(removed.ops.len(), 1, "{removed:?}");
        assert!(matches!(&removed.ops[0],
            Op::Terminate { uuid, kind: Kind::Class, range }
                if *uuid == Uuid::from_u128(0xc1) && range.from == Some(today)));
        current.extend([stored_class(
            0xc1,
            "Test-assoc-type-1",
            facet,
            Some(day(50)),
        )]);
        assert!(plan(&[], &current).is_empty());
        // A class of another facet is never touched.
        current.extend([stored_class(
            0xc2,
            "Formand",
            uuids::facet("manager_type"),
            None,
        )]);
        assert!(plan(&[], &current).is_empty());
    }

    fn ctx<'a>(
        current: &'a HashMap<Uuid, Object>,
        persons: &'a HashMap<Cpr, Uuid>,
        dar: &'a HashMap<String, Option<Uuid>>,
    ) -> Ctx<'a> {
        Ctx {
            current,
            persons,
            file_date: jiff::civil::date(2021, 3, 1),
            today: jiff::civil::date(2021, 3, 10),
            azid_system: Uuid::from_u128(0xa21d),
            dar,
        }
    }

    fn person_row(azid: Option<&str>) -> PersonRow {
        PersonRow {
            line: 2,
            engagement: Uuid::from_u128(0xe),
            user_key: "100001".into(),
            cpr: Cpr::parse("0101700000").unwrap(),
            name: "Anna Marie Testesen".into(),
            start: jiff::civil::date(2021, 1, 1),
            end: None,
            email: Some("anna@aarhus.dk".into()),
            primary: true,
            org_unit: Uuid::from_u128(0x0),
            engagement_type: Uuid::from_u128(0x7),
            job_function: Uuid::from_u128(0x8),
            azid: azid.map(Into::into),
        }
    }

    #[test]
    fn checklist_45_to_49_persons() {
        let (current, dar) = (HashMap::new(), HashMap::new());
        let mut persons = HashMap::new();
        // 47: a CPR MO knows gives that person; an unknown one a fresh (random) uuid.
        let known = Uuid::from_u128(0x9e50);
        persons.insert(Cpr::parse("0101700000").unwrap(), known);
        let m = persons_facts(&[person_row(Some("az1"))], &ctx(&current, &persons, &dar));
        assert_eq!(m.facts[0].uuid(), known);
        let m = persons_facts(
            &[person_row(Some("az1"))],
            &ctx(&current, &HashMap::new(), &dar),
        );
        assert_eq!(
            m.facts[0].uuid(),
            Uuid::from_u128(0xf00d),
            "the new uuid, not one from the CPR"
        );
        // 45/46: one AZ IT user in the configured system with the AZID as user_key; none without.
        let its: Vec<ItUser> = m
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::State { timeline, .. } => match &timeline[0].value {
                    Value::ItUser(i) => Some(i.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(its.len(), 1);
        assert_eq!(
            (its[0].user_key.as_str(), its[0].itsystem),
            ("az1", Uuid::from_u128(0xa21d))
        );
        let m = persons_facts(&[person_row(None)], &ctx(&current, &persons, &dar));
        assert_eq!(m.facts.len(), 3, "person, engagement, e-mail; no IT user");
        // 48: every detail points at the person.
        for f in &m.facts {
            if let Fact::State { timeline, .. } = f {
                match &timeline[0].value {
                    Value::Engagement(e) => assert_eq!(e.person, known),
                    Value::Address(a) => assert_eq!(a.person, Some(known)),
                    Value::Person(p) => assert_eq!(
                        (p.given_name.as_str(), p.surname.as_str()),
                        ("Anna Marie", "Testesen")
                    ),
                    v => panic!("{v:?}"),
                }
            }
        }
    }

    fn persons_facts(rows: &[PersonRow], ctx: &Ctx<'_>) -> Mapped {
        persons(rows, false, ctx, &mut || Uuid::from_u128(0xf00d))
    }

    #[test]
    fn checklist_51_to_55_managers() {
        let (dar, mut persons) = (HashMap::new(), HashMap::new());
        let e = Uuid::from_u128(0xe1);
        let unit = Uuid::from_u128(0x11);
        persons.insert(Cpr::parse("0101700000").unwrap(), e);
        let row = ManagerRow {
            line: 2,
            org_unit: unit,
            cpr: Cpr::parse("0101700000").unwrap(),
            manager_type: Uuid::from_u128(1),
            manager_level: Uuid::from_u128(2),
            responsibility: Uuid::from_u128(3),
        };
        // 51: a new manager of person E, from the file date (ruling 8), open-ended.
        let current = HashMap::new();
        let m = managers(
            std::slice::from_ref(&row),
            false,
            &ctx(&current, &persons, &dar),
        );
        let Fact::State {
            uuid,
            life,
            timeline,
            ..
        } = &m.facts[0]
        else {
            panic!()
        };
        assert_eq!(*uuid, uuids::manager(unit, e));
        assert_eq!(
            *life,
            Validity::new(Some(jiff::civil::date(2021, 3, 1)), None)
        );
        assert!(
            matches!(&timeline[0].value, Value::Manager(x) if x.person == Some(e) && x.responsibilities == vec![Uuid::from_u128(3)])
        );
        // 54: Leder_luk ends the existing manager: last day = the file date.
        let mut current = HashMap::new();
        current.insert(*uuid, Object::new(*uuid, timeline.clone()).unwrap());
        let end = ManagerEndRow {
            line: 2,
            org_unit: unit,
            cpr: row.cpr.clone(),
        };
        let m = manager_ends(&[end], &ctx(&current, &persons, &dar));
        assert!(matches!(m.facts[0], Fact::End { at, .. } if at == jiff::civil::date(2021, 3, 2)));
        // 55: an unknown CPR rejects the row (masked), nothing is sent for it.
        let m = managers(&[row], false, &ctx(&current, &HashMap::new(), &dar));
        assert!(m.facts.is_empty());
        assert!(
            m.rejected[0].1.contains("010170-xxxx") && !m.rejected[0].1.contains("0101700000"),
            "{:?}",
            m.rejected
        );
    }

    #[test]
    fn checklist_39_and_42_org_rows_and_dar_misses() {
        let (current, persons) = (HashMap::new(), HashMap::new());
        let u = Uuid::from_u128(0x123);
        let row = OrgUnitRow {
            line: 2,
            uuid: u,
            user_key: "BVN".into(),
            name: None,
            unit_type: None,
            parent: Uuid::from_u128(0x1),
            line_org: false,
            los_id: None,
            cvr: None,
            ean: None,
            p_number: None,
            se_number: None,
            int_debitor: None,
            mag_id: None,
            post_address: Some("Ukendt Vej 1, 8000 Aarhus C".into()),
            start: jiff::civil::date(2020, 1, 1),
            end: Some(jiff::civil::date(2020, 12, 31)),
        };
        let mut dar = HashMap::new();
        dar.insert("Ukendt Vej 1, 8000 Aarhus C".to_string(), None);
        let m = org_units(&[row], false, &ctx(&current, &persons, &dar));
        // 39: only the unit (no address facts), with parent and validity [start, end + 1 day).
        assert_eq!(m.facts.len(), 1);
        let Fact::State { life, timeline, .. } = &m.facts[0] else {
            panic!()
        };
        assert_eq!(
            *life,
            Validity::new(
                Some(jiff::civil::date(2020, 1, 1)),
                Some(jiff::civil::date(2021, 1, 1))
            )
        );
        assert!(
            matches!(&timeline[0].value, Value::OrgUnit(x) if x.parent == Some(Uuid::from_u128(1)) && x.unit_hierarchy.is_none())
        );
        // 42: the DAR miss is listed with the unit and the text.
        assert_eq!(m.dar_failures.len(), 1);
        assert_eq!(
            (
                m.dar_failures[0].org_unit,
                m.dar_failures[0].post_address.as_str()
            ),
            (u, "Ukendt Vej 1, 8000 Aarhus C")
        );
    }
}
