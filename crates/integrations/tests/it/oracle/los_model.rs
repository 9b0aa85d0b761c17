//! The LOS oracle: replays a sequence of daily LOS deliveries (as plain rows) file by file, row
//! by row, and yields the MO history the rules demand. Written from the rules (DESIGN.md §2
//! "History", §5 rulings 7–8, `docs/los.md`, `specs/los.md` §10–§12), day by day, without dipex's
//! mapping code:
//!
//! * Files go in the order of a run: `Org_inital`, `Org_nye`, `Org_ret`, `Pers_nye`,
//!   `Pers_ret`, `Pers_luk`, `Leder_nye`, `Leder_ret`, `Leder_luk`. The file date is the day.
//! * `Org_inital` and `Org_nye` rows describe a unit's whole life: each row holds its unit (and
//!   one address per non-empty column, the postal address when the register knows the text)
//!   over `[StartDato, SlutDato]`.
//! * A `*_ret` row changes MO from its file date only; what MO holds before stays. An
//!   `Org_ret` row without a name keeps the unit's name; a unit `Org_ret` does not know is
//!   created from the file date.
//! * `Pers_nye` rows describe the engagement's whole life `[StartTid, SlutTid]`; a `Pers_ret`
//!   row changes a known engagement from the file date, and an unknown one is created with its
//!   own life. A person is found by CPR; a new person's name holds since always, a `Pers_ret`
//!   name changes it from the file date.
//! * The e-mail and the AZ IT user (one each per person) hold from the file date, or the row's
//!   later `StartTid`, through `SlutTid`: a row identical to MO writes nothing and an existing
//!   start never moves; a new value holds from that date, the old one before it.
//! * `Pers_luk`: the engagement's last day is the file date; nothing else changes.
//! * Managers (one per unit and person): `Leder_nye`/`Leder_ret` from the file date, open-ended;
//!   `Leder_luk` ends them with the file date as the last day.

use super::los_gen::{
    ADDRESS_COLUMNS, Day, ENG_TYPE, File, JOB, LederRow, MGR_LEVEL, MGR_RESP, MGR_TYPE, PersRow,
    Post, UNIT_TYPE, UnitRow, class_title, dar_uuid, unit_key,
};
use super::{Canon, Fields, Timeline, W0, add_days};
use jiff::civil::Date;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
struct UnitFacts {
    name: String,
    typ: usize,
    parent: Option<u32>,
    linje: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct EngFacts {
    cpr: String,
    unit: u32,
    job: usize,
    typ: usize,
    primary: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct MgrFacts {
    typ: usize,
    level: usize,
    resp: usize,
}

#[derive(Default)]
pub(crate) struct Oracle {
    units: BTreeMap<u32, Timeline<UnitFacts>>,
    /// (unit, address type user_key) → value.
    unit_addresses: BTreeMap<(u32, &'static str), Timeline<String>>,
    /// CPR → name.
    persons: BTreeMap<String, Timeline<String>>,
    emails: BTreeMap<String, Timeline<String>>,
    az_users: BTreeMap<String, Timeline<String>>,
    engagements: BTreeMap<u32, Timeline<EngFacts>>,
    managers: BTreeMap<(u32, String), Timeline<MgrFacts>>,
}

/// The day after an inclusive last day (`None`: open-ended).
fn after(end: Option<Date>) -> Option<Date> {
    end.map(|d| add_days(d, 1))
}

impl Oracle {
    /// Replay one day's files.
    pub(crate) fn replay(&mut self, day: &Day) {
        let d = day.date;
        for f in &day.files {
            match f {
                File::OrgInital(rows) | File::OrgNye(rows) => {
                    for r in rows {
                        self.unit_life(r);
                    }
                }
                File::OrgRet(rows) => {
                    for r in rows {
                        self.unit_edit(r, d);
                    }
                }
                File::PersNye(rows) => {
                    for r in rows {
                        self.person_row(r, d, false);
                    }
                }
                File::PersRet(rows) => {
                    for r in rows {
                        self.person_row(r, d, true);
                    }
                }
                File::PersLuk(rows) => {
                    for r in rows {
                        self.engagements
                            .get_mut(&r.eng)
                            .expect("Pers_luk of a known engagement")
                            .set(add_days(d, 1), None, None);
                    }
                }
                File::LederNye(rows) | File::LederRet(rows) => {
                    for r in rows {
                        self.manager(r, d);
                    }
                }
                File::LederLuk(rows) => {
                    for (unit, cpr) in rows {
                        self.managers
                            .get_mut(&(*unit, cpr.clone()))
                            .expect("Leder_luk of a known manager")
                            .set(add_days(d, 1), None, None);
                    }
                }
            }
        }
    }

    /// The addresses a unit row holds: (address type user_key, value).
    fn row_addresses(r: &UnitRow) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = ADDRESS_COLUMNS
            .iter()
            .zip(&r.addresses)
            .filter_map(|((_, class), v)| Some((*class, v.clone()?)))
            .collect();
        if let Some(Post::Known(n)) = r.post {
            out.push(("AddressMailUnit", dar_uuid(n).to_string()));
        }
        out
    }

    /// An `Org_inital`/`Org_nye` row: the unit over the row's period.
    fn unit_life(&mut self, r: &UnitRow) {
        let (from, to) = (r.start, after(r.end));
        let facts = UnitFacts {
            name: r.name.clone().expect("a new unit has a name"),
            typ: r.typ,
            parent: r.parent,
            linje: r.linje,
        };
        self.units
            .entry(r.id)
            .or_insert_with(Timeline::new)
            .set(from, to, Some(facts));
        for (class, value) in Self::row_addresses(r) {
            self.unit_addresses
                .entry((r.id, class))
                .or_insert_with(Timeline::new)
                .set(from, to, Some(value));
        }
    }

    /// An `Org_ret` row: the unit and its addresses from the file date.
    fn unit_edit(&mut self, r: &UnitRow, d: Date) {
        let tl = self.units.entry(r.id).or_insert_with(Timeline::new);
        let now = tl.at(super::index(d)).cloned();
        let facts = UnitFacts {
            name: r
                .name
                .clone()
                .or_else(|| now.as_ref().map(|u| u.name.clone()))
                .expect("a unit Org_ret creates has a name"),
            typ: r.typ,
            parent: r.parent,
            linje: r.linje || now.is_some_and(|u| u.linje),
        };
        tl.set(d, None, Some(facts));
        for (class, value) in Self::row_addresses(r) {
            self.unit_addresses
                .entry((r.id, class))
                .or_insert_with(Timeline::new)
                .set(d, None, Some(value));
        }
    }

    /// A `Pers_nye` (`edit` false) or `Pers_ret` row.
    fn person_row(&mut self, r: &PersRow, d: Date, edit: bool) {
        match self.persons.get_mut(&r.cpr) {
            None => {
                let mut tl = Timeline::new();
                tl.set(W0, None, Some(r.name.clone()));
                self.persons.insert(r.cpr.clone(), tl);
            }
            Some(tl) => {
                if tl.last() != Some(&r.name) {
                    assert!(edit, "the generator never renames in Pers_nye");
                    tl.set(d, None, Some(r.name.clone()));
                }
            }
        }
        let facts = EngFacts {
            cpr: r.cpr.clone(),
            unit: r.unit,
            job: r.job,
            typ: r.eng_type,
            primary: r.primary,
        };
        let end = after(r.end);
        match self.engagements.get_mut(&r.eng) {
            Some(tl) if edit => tl.set(d, end, Some(facts)),
            Some(_) => panic!("the generator never repeats an engagement in Pers_nye"),
            None => {
                let mut tl = Timeline::new();
                tl.set(r.start, end, Some(facts));
                self.engagements.insert(r.eng, tl);
            }
        }
        // E-mail and AZ user: from the file date or the row's later start.
        let since = d.max(r.start);
        for (map, value) in [(&mut self.emails, &r.email), (&mut self.az_users, &r.azid)] {
            if let Some(v) = value {
                map.entry(r.cpr.clone()).or_insert_with(Timeline::new).set(
                    since,
                    end,
                    Some(v.clone()),
                );
            }
        }
    }

    fn manager(&mut self, r: &LederRow, d: Date) {
        self.managers
            .entry((r.unit, r.cpr.clone()))
            .or_insert_with(Timeline::new)
            .set(
                d,
                None,
                Some(MgrFacts {
                    typ: r.typ,
                    level: r.level,
                    resp: r.resp,
                }),
            );
    }

    /// The expected history of every modelled object.
    pub(crate) fn expected(&self) -> Canon {
        let mut c = Canon::default();
        for (id, tl) in &self.units {
            let days = tl.project(|_, u| {
                let mut f = Fields::from([
                    ("user_key", unit_key(*id)),
                    ("name", u.name.clone()),
                    ("unit_type", class_title(UNIT_TYPE, u.typ).to_string()),
                ]);
                if let Some(p) = u.parent {
                    f.insert("parent", unit_key(p));
                }
                if u.linje {
                    f.insert("hierarchy", "linjeorg".to_string());
                }
                Some(f)
            });
            c.insert_days(format!("org_unit {}", unit_key(*id)), &days, false);
        }
        let value = |v: &String| Some(Fields::from([("value", v.clone())]));
        for ((id, class), tl) in &self.unit_addresses {
            c.insert_days(
                format!("address org_unit {} {class}", unit_key(*id)),
                &tl.project(|_, v| value(v)),
                false,
            );
        }
        for (cpr, tl) in &self.persons {
            let p = crate::pseudonym(cpr);
            c.insert_days(
                format!("person {p}"),
                &tl.project(|_, n| Some(Fields::from([("name", n.clone())]))),
                true,
            );
        }
        for (cpr, tl) in &self.emails {
            c.insert_days(
                format!("address person {} EmailEmployee", crate::pseudonym(cpr)),
                &tl.project(|_, v| value(v)),
                false,
            );
        }
        for (cpr, tl) in &self.az_users {
            c.insert_days(
                format!("it_user {} AZ", crate::pseudonym(cpr)),
                &tl.project(|_, v| Some(Fields::from([("user_key", v.clone())]))),
                false,
            );
        }
        for (id, tl) in &self.engagements {
            let days = tl.project(|_, e| {
                Some(Fields::from([
                    ("person", crate::pseudonym(&e.cpr)),
                    ("org_unit", unit_key(e.unit)),
                    ("job_function", class_title(JOB, e.job).to_string()),
                    ("engagement_type", class_title(ENG_TYPE, e.typ).to_string()),
                    (
                        "primary",
                        if e.primary { "primary" } else { "non-primary" }.to_string(),
                    ),
                ]))
            });
            c.insert_days(format!("engagement {id}"), &days, false);
        }
        for ((unit, cpr), tl) in &self.managers {
            let days = tl.project(|_, m| {
                Some(Fields::from([
                    ("manager_type", class_title(MGR_TYPE, m.typ).to_string()),
                    ("manager_level", class_title(MGR_LEVEL, m.level).to_string()),
                    (
                        "responsibilities",
                        class_title(MGR_RESP, m.resp).to_string(),
                    ),
                ]))
            });
            c.insert_days(
                format!("manager {} {}", unit_key(*unit), crate::pseudonym(cpr)),
                &days,
                false,
            );
        }
        c
    }
}
