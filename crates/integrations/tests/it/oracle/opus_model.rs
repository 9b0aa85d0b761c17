//! The OPUS oracle: replays a sequence of dumps (as plain records) fact by fact and yields the
//! MO history the rules demand. Written from the rules, day by day, without dipex's mapping code:
//!
//! * A record is compared with the same record of the day before by content: every field but
//!   `lastChanged`, `numerator` and `denominator` (ruling 1). An unchanged record writes nothing.
//! * A changed record takes effect from its `lastChanged` when that is on or before the dump
//!   date, otherwise from the dump date; the days before stay as they were (DESIGN §2 History).
//! * A new unit holds from its `startDate`, with its addresses; a vanished unit ends at the dump
//!   date (its last valid day).
//! * A new employment holds for its whole life, `entryDate` (else `lastChanged`, ruling 4)
//!   through `leaveDate`; a change rewrites the days from its date within the (new) life. The
//!   engagement and the manager function (`isManager`) are views of the employment per day.
//! * A leave marker ends the employment at the dump date; a vanished active employment is
//!   cancelled: gone with its whole history; a leave marker that disappears changes nothing.
//! * The primary engagement is computed per day from the engagements the person has that day:
//!   the first type of the priority list, then the lowest employment number.
//! * Person data (name, phone, e-mail, home address) is what the person's records say; it is
//!   written from the date of the record change that brought it (a new record is a change too:
//!   from its `lastChanged`, or the dump date; the name holds since always). A protected address (structured `<address>`)
//!   is never imported, so it ends the earlier one. With no record left, it stays as it was.
//! * One Opus IT user per distinct `userId` of the person's active records: a new one from the
//!   date of the record that brought it (a new record too), one that disappears ends
//!   at the date of that change (a leave marker or a cancellation: after the dump date).

use super::opus_gen::{Day, Emp, Home, Rec, Unit, dar_uuid};
use super::{Canon, Fields, Timeline, W0, add_days};
use crate::pseudonym;
use jiff::civil::Date;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The `integrations.opus.eng_types_primary_order` the oracle and the importer use.
pub(crate) const PRIMARY_ORDER: &[&str] = &["Ansat", "Vikar"];

struct Employment {
    cpr: String,
    /// The start the employment has: `entryDate`, or `lastChanged` when it was hired without one.
    start: Date,
    /// The record valid on each day (the engagement's life).
    record: Timeline<Rc<Emp>>,
}

/// The person data facts: name (`first\0last`), phone, e-mail, home address (DAR uuid).
struct Person {
    seen: bool,
    name: Timeline<String>,
    phone: Timeline<String>,
    email: Timeline<String>,
    home: Timeline<String>,
}

impl Default for Person {
    fn default() -> Person {
        Person {
            seen: false,
            name: Timeline::new(),
            phone: Timeline::new(),
            email: Timeline::new(),
            home: Timeline::new(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Oracle {
    prev_units: BTreeMap<u32, Unit>,
    prev_emps: BTreeMap<u32, Rec>,
    units: BTreeMap<u32, Timeline<Rc<Unit>>>,
    emps: BTreeMap<u32, Employment>,
    persons: BTreeMap<String, Person>,
    it_users: BTreeMap<(String, String), Timeline<()>>,
}

/// The effective date of a changed record (ruling 1).
fn effective(last_changed: Date, dump: Date) -> Date {
    last_changed.min(dump)
}

fn active_of<'a>(emps: &'a BTreeMap<u32, Rec>, cpr: &str) -> Vec<&'a Emp> {
    emps.values()
        .filter_map(|r| match r {
            Rec::Active(e) if e.cpr == cpr => Some(e),
            _ => None,
        })
        .collect()
}

impl Oracle {
    /// Replay one dump.
    pub(crate) fn replay(&mut self, day: &Day) {
        let t = day.date;
        let after = add_days(t, 1);
        let units: BTreeMap<u32, Unit> = day.units.iter().map(|u| (u.id, u.clone())).collect();
        let emps: BTreeMap<u32, Rec> = day.employees.iter().cloned().collect();

        // Units.
        for (id, u) in &units {
            match self.prev_units.get(id) {
                None => {
                    let mut tl = Timeline::new();
                    tl.set(u.start, None, Some(Rc::new(u.clone())));
                    self.units.insert(*id, tl);
                }
                Some(p) if p.content() != u.content() => {
                    let d = effective(u.last_changed, t);
                    self.units
                        .get_mut(id)
                        .unwrap()
                        .set(d, None, Some(Rc::new(u.clone())));
                }
                Some(_) => {}
            }
        }
        for id in self.prev_units.keys() {
            if !units.contains_key(id) {
                self.units.get_mut(id).unwrap().set(after, None, None);
            }
        }

        // Employments. `dates`: per employment that is new or changed today, the date its
        // change takes effect; `gone`: per employment no longer active, the date it ends from.
        let mut dates: BTreeMap<u32, Date> = BTreeMap::new();
        let mut gone: BTreeMap<u32, Option<Date>> = BTreeMap::new();
        for (id, rec) in &emps {
            match (self.prev_emps.get(id), rec) {
                (None, Rec::Active(e)) => {
                    let start = e.entry.unwrap_or(e.last_changed);
                    let mut tl = Timeline::new();
                    tl.set(
                        start,
                        e.leave.map(|l| add_days(l, 1)),
                        Some(Rc::new(e.clone())),
                    );
                    self.emps.insert(
                        *id,
                        Employment {
                            cpr: e.cpr.clone(),
                            start,
                            record: tl,
                        },
                    );
                    // Facts of the person it brings (data, IT user) take effect like any
                    // change of a record; only the engagement's life starts at entryDate.
                    dates.insert(*id, effective(e.last_changed, t));
                }
                (Some(Rec::Active(p)), Rec::Active(e)) if p.content() != e.content() => {
                    let d = effective(e.last_changed, t);
                    let emp = self.emps.get_mut(id).unwrap();
                    if let Some(entry) = e.entry {
                        emp.start = entry;
                    }
                    let (start, end) = (emp.start, e.leave.map(|l| add_days(l, 1)));
                    let new = Rc::new(e.clone());
                    emp.record.map(|day, old| {
                        if day < start || end.is_some_and(|end| day >= end) {
                            None
                        } else if day >= d {
                            Some(new.clone())
                        } else {
                            old.or_else(|| Some(new.clone()))
                        }
                    });
                    dates.insert(*id, d);
                }
                (Some(Rec::Active(_)), Rec::Leave) => {
                    let emp = self.emps.get_mut(id).unwrap();
                    emp.record.set(after, None, None);
                    gone.insert(*id, Some(after));
                }
                (Some(Rec::Leave), Rec::Active(_)) => {
                    panic!("the generator never turns a leave marker active again ({id})")
                }
                _ => {}
            }
        }
        for (id, rec) in &self.prev_emps {
            if matches!(rec, Rec::Active(_)) && !emps.contains_key(id) {
                // Cancelled: the engagement never was.
                self.emps.remove(id);
                gone.insert(*id, None);
            }
        }

        // Persons: their data and their IT users.
        let mut cprs: BTreeSet<String> = BTreeSet::new();
        for r in self.prev_emps.values().chain(emps.values()) {
            if let Rec::Active(e) = r {
                cprs.insert(e.cpr.clone());
            }
        }
        for cpr in cprs {
            let (old, new) = (active_of(&self.prev_emps, &cpr), active_of(&emps, &cpr));
            let changed: Vec<&Emp> = new
                .iter()
                .copied()
                .filter(|e| dates.contains_key(&e.id))
                .collect();
            if let Some(first) = new.first() {
                // Each piece of person data is its own fact: only what changed is written.
                let data = &first.person;
                let p = self.persons.entry(cpr.clone()).or_default();
                let fields: [(&mut Timeline<String>, Option<String>); 4] = [
                    (
                        &mut p.name,
                        Some(format!("{}\u{0}{}", data.first, data.last)),
                    ),
                    (&mut p.phone, data.phone.clone()),
                    (&mut p.email, data.email.clone()),
                    (
                        &mut p.home,
                        match data.home {
                            Home::Plain(n) => Some(dar_uuid(n).to_string()),
                            Home::Protected | Home::None => None,
                        },
                    ),
                ];
                for (i, (tl, value)) in fields.into_iter().enumerate() {
                    let known = tl.last().cloned();
                    if known != value || !p.seen {
                        let d = if i == 0 && !p.seen {
                            W0 // a new person's name holds since always
                        } else {
                            one_date(&changed, &dates, &cpr, "person data")
                        };
                        tl.set(d, None, value);
                    }
                }
                p.seen = true;
            }
            let ids = |v: &[&Emp]| -> BTreeSet<String> {
                v.iter().filter_map(|e| e.user_id.clone()).collect()
            };
            let (was, is) = (ids(&old), ids(&new));
            for u in is.difference(&was) {
                let carriers: Vec<&Emp> = changed
                    .iter()
                    .copied()
                    .filter(|e| e.user_id.as_ref() == Some(u))
                    .collect();
                let d = carriers
                    .iter()
                    .map(|e| dates[&e.id])
                    .min()
                    .unwrap_or_else(|| panic!("userId {u} appeared without a changed record"));
                self.it_users
                    .entry((cpr.clone(), u.clone()))
                    .or_insert_with(Timeline::new)
                    .set(d, None, Some(()));
            }
            for u in was.difference(&is) {
                let d = old
                    .iter()
                    .filter(|e| e.user_id.as_ref() == Some(u))
                    .map(|e| match (dates.get(&e.id), gone.get(&e.id)) {
                        (Some(d), _) => *d,
                        (None, Some(Some(d))) => *d,
                        // Cancelled: the IT user existed; it ends after the dump date.
                        (None, Some(None)) => after,
                        (None, None) => {
                            unreachable!("userId {u} vanished from an unchanged record")
                        }
                    })
                    .min()
                    .unwrap();
                self.it_users
                    .get_mut(&(cpr.clone(), u.clone()))
                    .unwrap()
                    .set(d, None, None);
            }
        }

        self.prev_units = units;
        self.prev_emps = emps;
    }

    /// The expected history of every modelled object.
    pub(crate) fn expected(&self) -> Canon {
        let mut c = Canon::default();
        for (id, tl) in &self.units {
            c.insert_days(
                format!("org_unit {id}"),
                &tl.project(|_, u| Some(unit_fields(u))),
                false,
            );
            for typ in ["Adresse", "CVR", "SE", "Telefon"] {
                let days = tl.project(|_, u| {
                    let value = match typ {
                        "Adresse" => u.street.map(|n| dar_uuid(n).to_string()),
                        "CVR" => u.cvr.clone(),
                        "SE" => u.se.clone(),
                        _ => u.phone.clone(),
                    }?;
                    Some(Fields::from([("value", value)]))
                });
                c.insert_days(format!("address org_unit {id} {typ}"), &days, false);
            }
        }
        for (cpr, p) in &self.persons {
            let names = p.name.project(|_, n| {
                let (first, last) = n.split_once('\0').unwrap();
                Some(Fields::from([
                    ("given_name", first.to_string()),
                    ("surname", last.to_string()),
                ]))
            });
            c.insert_days(format!("person {}", pseudonym(cpr)), &names, true);
            let value = |v: &String| Some(Fields::from([("value", v.clone())]));
            let home = p.home.project(|_, v| {
                Some(Fields::from([
                    ("value", v.clone()),
                    ("visibility", "Intern".to_string()),
                ]))
            });
            c.insert_days(
                format!("address person {} Adresse", pseudonym(cpr)),
                &home,
                false,
            );
            c.insert_days(
                format!("address person {} Email", pseudonym(cpr)),
                &p.email.project(|_, v| value(v)),
                false,
            );
            c.insert_days(
                format!("address person {} Telefon", pseudonym(cpr)),
                &p.phone.project(|_, v| value(v)),
                false,
            );
        }
        for ((cpr, user), tl) in &self.it_users {
            let days = tl.project(|_, _| Some(Fields::from([("itsystem", "Opus".to_string())])));
            c.insert_days(format!("it_user {} {user}", pseudonym(cpr)), &days, false);
        }
        // The primary engagement per person and day.
        let mut by_person: BTreeMap<&str, Vec<(u32, &Employment)>> = BTreeMap::new();
        for (id, e) in &self.emps {
            by_person.entry(&e.cpr).or_default().push((*id, e));
        }
        for emps in by_person.values() {
            let n = emps[0].1.record.len();
            let winner: Vec<Option<u32>> = (0..n)
                .map(|i| {
                    emps.iter()
                        .filter_map(|(id, e)| {
                            let r = e.record.at(i)?;
                            let ty = r.contract.as_deref().unwrap_or("Ansat");
                            let rank = PRIMARY_ORDER
                                .iter()
                                .position(|x| *x == ty)
                                .unwrap_or(usize::MAX);
                            Some((rank, *id))
                        })
                        .min()
                        .map(|(_, id)| id)
                })
                .collect();
            for (id, e) in emps {
                let eng = e.record.project(|i, r| {
                    let p = if winner[i] == Some(*id) {
                        "primary"
                    } else {
                        "non-primary"
                    };
                    Some(engagement_fields(r, p))
                });
                c.insert_days(format!("engagement {id}"), &eng, false);
                let man = e
                    .record
                    .project(|_, r| r.manager.then(|| manager_fields(r)));
                c.insert_days(format!("manager {id}"), &man, false);
            }
        }
        c
    }
}

/// The one date the changed records of a person take effect on (the generator makes at most
/// one change per person and day).
fn one_date(changed: &[&Emp], dates: &BTreeMap<u32, Date>, cpr: &str, what: &str) -> Date {
    let set: BTreeSet<Date> = changed.iter().map(|e| dates[&e.id]).collect();
    assert_eq!(
        set.len(),
        1,
        "{what} of person {} changed with {} dates: the generator should avoid that",
        pseudonym(cpr),
        set.len()
    );
    *set.first().unwrap()
}

fn unit_fields(u: &Unit) -> Fields {
    let mut f = Fields::from([("user_key", u.id.to_string()), ("name", u.name.clone())]);
    if let Some(p) = u.parent {
        f.insert("parent", p.to_string());
    }
    let typ = match &u.typ {
        Some((code, _)) => code.clone(),
        None => "Enhed".into(),
    };
    f.insert("unit_type", typ);
    f
}

fn engagement_fields(e: &Emp, primary: &str) -> Fields {
    let fraction = (u64::from(e.num) * 1_000_000 + u64::from(e.den) / 2) / u64::from(e.den);
    Fields::from([
        ("person", pseudonym(&e.cpr)),
        ("org_unit", e.unit.to_string()),
        ("job_function", e.position.clone()),
        (
            "engagement_type",
            e.contract.clone().unwrap_or_else(|| "Ansat".into()),
        ),
        ("primary", primary.to_string()),
        ("fraction", fraction.to_string()),
    ])
}

fn manager_fields(e: &Emp) -> Fields {
    Fields::from([
        ("person", pseudonym(&e.cpr)),
        ("org_unit", e.unit.to_string()),
        ("engagement", e.id.to_string()),
        ("manager_type", e.position.clone()),
        ("manager_level", format!("{}.{}", e.sup, e.sub)),
        ("responsibilities", "Lederansvar".to_string()),
    ])
}
