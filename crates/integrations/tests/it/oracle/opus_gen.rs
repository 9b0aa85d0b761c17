//! A seeded generator of daily OPUS dump sequences for the oracle: a small municipality (a
//! handful of units, a few persons) that lives through hires with and without `entryDate`,
//! `lastChanged` in the past and the future, second employments, leave dates, leave markers that
//! later disappear, cancellations, moves, renames, `userId` changes and rename-backs, protected
//! addresses, contract and job changes, manager flags and unit changes.
//!
//! Every day is kept as plain records ([`Day`]) for the oracle, and [`write_xml`] writes it in
//! the real dump format. The generator keeps away from the corners the rules leave open (listed
//! in [`AVOIDED`]) so that the oracle's expectation is determined by the rules alone.

use super::{Rng, W0, add_days};
use jiff::civil::{Date, date};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Corners of the rules the generated sequences stay out of, because the rules do not settle them.
pub(crate) const AVOIDED: &[&str] = &[
    "several events for one person on one day (which change's date would person data take?)",
    "person data differing between the employments of one person (a person's data is the same on all its records)",
    "a cancelled employment that carries a userId (is its IT user deleted or ended?)",
    "an entryDate change together with, or after, another change of the employment",
    "an entryDate change of an employment with a userId, or of a person's first employment (do IT users and addresses move with the start?)",
    "a numerator/denominator change without another change of the same record",
    "person, userId or manager changes of an employment that has not started yet",
    "a leaveDate removed after the engagement has ended; a leave marker that turns active again",
    "a vanishing unit that has addresses, employments or children",
];

pub(crate) const POSTAL: &str = "8000";
pub(crate) const STREET: &str = "Orakelvej";
pub(crate) const STREETS: usize = 12;

/// The register id of `Orakelvej <n>, 8000`.
pub(crate) fn dar_uuid(n: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0ac1_e000_0000_4000_8000_0000_0000_0000 | n as u128)
}

/// The offline address register for the generated streets.
pub(crate) fn register_csv() -> String {
    let mut s = String::from("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n");
    for n in 1..=STREETS {
        writeln!(s, "{},{STREET},{n},,,{POSTAL},Aarhus C", dar_uuid(n)).unwrap();
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    None,
    Plain(usize),
    Protected,
}

/// What every record of a person says about the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonData {
    pub(crate) first: String,
    pub(crate) last: String,
    pub(crate) home: Home,
    pub(crate) phone: Option<String>,
    pub(crate) email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) id: u32,
    pub(crate) parent: Option<u32>,
    pub(crate) name: String,
    /// (orgType, orgTypeTxt)
    pub(crate) typ: Option<(String, String)>,
    pub(crate) phone: Option<String>,
    pub(crate) se: Option<String>,
    pub(crate) cvr: Option<String>,
    pub(crate) street: Option<usize>,
    pub(crate) start: Date,
    pub(crate) last_changed: Date,
}

impl Unit {
    /// The record without the fields change detection ignores.
    pub(crate) fn content(&self) -> Unit {
        Unit {
            last_changed: W0,
            ..self.clone()
        }
    }
    fn bare(&self) -> bool {
        self.typ.is_none()
            && self.phone.is_none()
            && self.se.is_none()
            && self.cvr.is_none()
            && self.street.is_none()
    }
}

/// One `<employee>` record with data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Emp {
    pub(crate) id: u32,
    pub(crate) cpr: String,
    pub(crate) person: PersonData,
    pub(crate) entry: Option<Date>,
    pub(crate) leave: Option<Date>,
    pub(crate) user_id: Option<String>,
    pub(crate) contract: Option<String>,
    pub(crate) position: String,
    pub(crate) manager: bool,
    pub(crate) sup: String,
    pub(crate) sub: String,
    pub(crate) unit: u32,
    pub(crate) num: u32,
    pub(crate) den: u32,
    pub(crate) last_changed: Date,
}

impl Emp {
    /// The record without the fields change detection ignores.
    pub(crate) fn content(&self) -> Emp {
        Emp {
            last_changed: W0,
            num: 0,
            den: 0,
            ..self.clone()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // test data, a few hundred records
pub(crate) enum Rec {
    Active(Emp),
    /// `<employee id=".." action="leave"/>`
    Leave,
}

/// One dump.
#[derive(Clone, Debug)]
pub(crate) struct Day {
    pub(crate) date: Date,
    pub(crate) units: Vec<Unit>,
    pub(crate) employees: Vec<(u32, Rec)>,
    /// What happened since the day before, for failure reports.
    pub(crate) events: Vec<String>,
}

impl Day {
    pub(crate) fn file_name(&self) -> String {
        format!(
            "ZLPE{:04}{:02}{:02}220000_delta.xml",
            self.date.year(),
            self.date.month(),
            self.date.day()
        )
    }
}

/// The first dump's date.
pub(crate) const START: Date = date(2020, 3, 2);

const FIRST: &[&str] = &[
    "Anne", "Bjørn", "Cæcilie", "Dorte", "Erik", "Frida", "Gustav", "Hanne",
];
const LAST: &[&str] = &[
    "Ærø",
    "Bæk",
    "Dahl",
    "Holm",
    "Lund",
    "Møller",
    "Skov",
    "Østergård",
];
const POSITIONS: &[&str] = &["Lærer", "Pædagog", "Sygeplejerske", "Leder", "Konsulent"];
const CONTRACTS: &[Option<&str>] = &[Some("Ansat"), Some("Vikar"), Some("Timelønnet"), None];
const FRACTIONS: &[u32] = &[37, 30, 20];

/// The event kinds, for the coverage self-test.
pub(crate) const KINDS: &[&str] = &[
    "hire",
    "hire-no-entry",
    "hire-future",
    "second",
    "job",
    "contract",
    "move",
    "manager",
    "leave-date",
    "leave-marker",
    "marker-gone",
    "cancel",
    "entry-date",
    "rename",
    "userid",
    "userid-back",
    "userid-remove",
    "protect",
    "unprotect",
    "home",
    "phone",
    "email",
    "touch",
    "unit-rename",
    "unit-move",
    "unit-phone",
    "unit-new",
    "unit-vanish",
    "past",
    "future",
];

#[allow(clippy::large_enum_variant)]
enum Slot {
    Active(Emp),
    Marker,
    Gone,
}

struct Gen {
    rng: Rng,
    today: Date,
    units: BTreeMap<u32, Unit>,
    /// Units made bare by the generator, which may vanish.
    vanishable: BTreeSet<u32>,
    emps: BTreeMap<u32, Slot>,
    persons: BTreeMap<String, PersonData>,
    /// Per employment: its start (entryDate, or lastChanged at hire) and its number of versions.
    start: BTreeMap<u32, Date>,
    versions: BTreeMap<u32, u32>,
    past_user_ids: BTreeMap<u32, Vec<String>>,
    touched: BTreeSet<String>,
    next_unit: u32,
    next_emp: u32,
    next_person: u32,
    next_user: u32,
    events: Vec<String>,
}

/// A synthetic CPR number: a real birth date, a serial that fails the modulus-11 check.
fn cpr(n: u32) -> String {
    let (d, m, y) = (1 + n % 28, 1 + (n / 28) % 12, 50 + (n / 336) % 40);
    let head = format!("{d:02}{m:02}{y:02}");
    let w = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    let mut serial = 1000 + (n * 37) % 8000;
    loop {
        let s = format!("{head}{serial:04}");
        let sum: u32 = s.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
        if !sum.is_multiple_of(11) {
            return s;
        }
        serial += 1;
    }
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            today: START,
            units: BTreeMap::new(),
            vanishable: BTreeSet::new(),
            emps: BTreeMap::new(),
            persons: BTreeMap::new(),
            start: BTreeMap::new(),
            versions: BTreeMap::new(),
            past_user_ids: BTreeMap::new(),
            touched: BTreeSet::new(),
            next_unit: 1,
            next_emp: 1001,
            next_person: 1,
            next_user: 1,
            events: Vec::new(),
        }
    }

    fn log(&mut self, kind: &str, text: String) {
        self.events.push(format!("{kind}: {text}"));
    }

    /// A `lastChanged` for a change: in the past (not before `min`), the dump date, or later.
    fn last_changed(&mut self, min: Date) -> Date {
        let t = self.today;
        match self.rng.below(10) {
            0..=3 => {
                let d = add_days(t, -self.rng.range(0, 10)).max(min).min(t);
                self.events.push(format!("past: lastChanged {d}"));
                d
            }
            4..=5 => t,
            _ => {
                let d = add_days(t, self.rng.range(1, 30));
                self.events.push(format!("future: lastChanged {d}"));
                d
            }
        }
    }

    fn new_unit(&mut self, parent: Option<u32>, bare: bool, start: Date) -> u32 {
        let id = self.next_unit;
        self.next_unit += 1;
        let full = !bare;
        let unit = Unit {
            id,
            parent,
            name: format!("Enhed {id}"),
            typ: full.then(|| (format!("0000{}", id % 3), format!("Type {}", id % 3))),
            phone: full.then(|| format!("8700{id:04}")),
            se: full.then(|| format!("3100{id:04}")),
            cvr: full.then(|| "29189846".to_string()),
            street: full.then(|| 1 + (id as usize % STREETS)),
            start,
            last_changed: start,
        };
        self.units.insert(id, unit);
        if bare {
            self.vanishable.insert(id);
        }
        id
    }

    fn person_data(&mut self) -> PersonData {
        let n = self.next_person;
        PersonData {
            first: self.rng.pick(FIRST).to_string(),
            last: self.rng.pick(LAST).to_string(),
            home: match self.rng.below(10) {
                0..=5 => Home::Plain(1 + self.rng.below(STREETS)),
                6..=7 => Home::Protected,
                _ => Home::None,
            },
            phone: self
                .rng
                .percent(70)
                .then(|| format!("2{:07}", self.rng.below(10_000_000))),
            email: self.rng.percent(60).then(|| format!("p{n}@orakel.example")),
        }
    }

    fn fresh_user_id(&mut self) -> String {
        self.next_user += 1;
        format!("U{:04}", self.next_user)
    }

    fn pick_unit(&mut self) -> u32 {
        let ids: Vec<u32> = self.units.keys().copied().collect();
        *self.rng.pick(&ids)
    }

    fn active(&self) -> Vec<u32> {
        self.emps
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Active(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    fn emp(&self, id: u32) -> &Emp {
        match &self.emps[&id] {
            Slot::Active(e) => e,
            _ => unreachable!("employment {id} is not active"),
        }
    }

    fn started(&self, id: u32) -> bool {
        self.start[&id] <= self.today
    }

    fn person_of(&self, id: u32) -> String {
        self.emp(id).cpr.clone()
    }

    fn person_emps(&self, cpr: &str) -> Vec<u32> {
        self.active()
            .into_iter()
            .filter(|id| self.emp(*id).cpr == cpr)
            .collect()
    }

    /// An active, started employment of a person not touched today.
    fn pick_started(&mut self) -> Option<u32> {
        let c: Vec<u32> = self
            .active()
            .into_iter()
            .filter(|id| self.started(*id) && !self.touched.contains(&self.emp(*id).cpr))
            .collect();
        (!c.is_empty()).then(|| *self.rng.pick(&c))
    }

    /// A person (CPR) not touched today whose active employments have all started.
    fn pick_person(&mut self) -> Option<String> {
        let mut c: Vec<String> = self
            .active()
            .into_iter()
            .map(|id| self.emp(id).cpr.clone())
            .filter(|cpr| !self.touched.contains(cpr))
            .collect();
        c.sort();
        c.dedup();
        c.retain(|cpr| self.person_emps(cpr).iter().all(|id| self.started(*id)));
        (!c.is_empty()).then(|| self.rng.pick(&c).clone())
    }

    /// Apply `f` to an employment as a change dated `lastChanged`.
    fn change(&mut self, id: u32, lc: Date, f: impl FnOnce(&mut Emp)) {
        let cpr = self.person_of(id);
        self.touched.insert(cpr);
        if let Some(Slot::Active(e)) = self.emps.get_mut(&id) {
            let before = e.content();
            f(e);
            e.last_changed = lc;
            if e.content() != before {
                *self.versions.entry(id).or_default() += 1;
            }
        }
    }

    /// Apply `f` to a person's data on all its active records, as one change.
    fn change_person(&mut self, cpr: &str, f: impl FnOnce(&mut PersonData)) {
        let ids = self.person_emps(cpr);
        let min = ids.iter().map(|id| self.start[id]).max().unwrap_or(W0);
        let lc = self.last_changed(min);
        let mut data = self.persons[cpr].clone();
        f(&mut data);
        self.persons.insert(cpr.to_string(), data.clone());
        for id in ids {
            let d = data.clone();
            self.change(id, lc, |e| e.person = d);
        }
    }

    fn hire(&mut self, cpr: String, kind: &str) -> u32 {
        let id = self.next_emp;
        self.next_emp += 1;
        let t = self.today;
        let (entry, lc) = match kind {
            "hire-no-entry" => (None, add_days(t, -self.rng.range(0, 10))),
            "hire-future" => (Some(add_days(t, self.rng.range(1, 40))), t),
            "second" => (Some(add_days(t, self.rng.range(-10, 20))), t),
            _ => (Some(add_days(t, -self.rng.range(1, 400))), t),
        };
        let lc = if entry.is_some() && self.rng.percent(50) {
            self.last_changed(W0)
        } else {
            lc
        };
        let start = entry.unwrap_or(lc);
        // A second employment may share a userId the person has had for a while.
        let shared: Vec<String> = self
            .person_emps(&cpr)
            .into_iter()
            .filter(|e| self.start[e] <= add_days(t, -11) && start >= add_days(t, -10))
            .filter_map(|e| self.emp(e).user_id.clone())
            .collect();
        let user_id = match self.rng.below(10) {
            0..=5 => Some(self.fresh_user_id()),
            6..=7 if !shared.is_empty() => Some(self.rng.pick(&shared).clone()),
            _ => None,
        };
        let manager = self.rng.percent(20);
        let unit = self.pick_unit();
        let num = *self.rng.pick(FRACTIONS);
        let e = Emp {
            id,
            cpr: cpr.clone(),
            person: self.persons[&cpr].clone(),
            entry,
            leave: None,
            user_id,
            contract: self.rng.pick(CONTRACTS).map(str::to_string),
            position: self.rng.pick(POSITIONS).to_string(),
            manager,
            sup: self.rng.range(1, 3).to_string(),
            sub: format!("0{}", self.rng.range(1, 4)),
            unit,
            num,
            den: 37,
            last_changed: lc,
        };
        self.log(
            kind,
            format!(
                "employment {id} (person {}), entryDate {:?}, lastChanged {lc}, userId {:?}",
                masked(&cpr),
                entry.map(|d| d.to_string()),
                e.user_id
            ),
        );
        self.emps.insert(id, Slot::Active(e));
        self.start.insert(id, start);
        self.versions.insert(id, 1);
        self.touched.insert(cpr);
        id
    }

    fn hire_new_person(&mut self, kind: &str) {
        let c = cpr(self.next_person);
        let data = self.person_data();
        self.next_person += 1;
        self.persons.insert(c.clone(), data);
        self.hire(c, kind);
    }

    fn day0(&mut self) {
        let root = self.new_unit(None, false, date(2018, 6, 1));
        let a = self.new_unit(Some(root), false, date(2018, 6, 1));
        self.new_unit(Some(root), false, date(2018, 6, 1));
        self.new_unit(Some(a), false, date(2019, 2, 1));
        let n = 6 + self.rng.below(5);
        for _ in 0..n {
            let kind = *self
                .rng
                .pick(&["hire", "hire", "hire", "hire-future", "hire-no-entry"]);
            self.hire_new_person(kind);
        }
    }

    /// One random event; false when its preconditions do not hold today.
    fn event(&mut self) -> bool {
        let t = self.today;
        match self.rng.below(27) {
            0 => self.hire_new_person("hire"),
            1 => self.hire_new_person("hire-no-entry"),
            2 => self.hire_new_person("hire-future"),
            3 => {
                let Some(cpr) = self.pick_person() else {
                    return false;
                };
                self.hire(cpr, "second");
            }
            4 | 5 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = self.last_changed(self.start[&id]);
                let pos = self.rng.pick(POSITIONS).to_string();
                let num = self.rng.percent(30).then(|| *self.rng.pick(FRACTIONS));
                self.change(id, lc, |e| {
                    e.position = pos;
                    if let Some(n) = num {
                        e.num = n;
                    }
                });
                self.log("job", format!("employment {id}"));
            }
            6 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = self.last_changed(self.start[&id]);
                let c = self.rng.pick(CONTRACTS).map(str::to_string);
                let num = *self.rng.pick(FRACTIONS);
                self.change(id, lc, |e| {
                    e.contract = c;
                    e.num = num;
                });
                self.log("contract", format!("employment {id}"));
            }
            7 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = self.last_changed(self.start[&id]);
                let u = self.pick_unit();
                self.change(id, lc, |e| e.unit = u);
                self.log("move", format!("employment {id} to unit {u}"));
            }
            8 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = self.last_changed(self.start[&id]);
                let flip = self.rng.percent(70);
                let sub = format!("0{}", self.rng.range(1, 4));
                self.change(id, lc, |e| {
                    if flip {
                        e.manager = !e.manager;
                    } else {
                        e.sub = sub;
                    }
                });
                self.log("manager", format!("employment {id}"));
            }
            9 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = self.last_changed(self.start[&id]);
                let leave = match self.emp(id).leave {
                    None => Some(add_days(t, self.rng.range(1, 60))),
                    Some(l) if l >= t => None,
                    Some(_) => return false,
                };
                self.change(id, lc, |e| e.leave = leave);
                self.log(
                    "leave-date",
                    format!("employment {id}: leaveDate {leave:?}"),
                );
            }
            10 | 11 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let cpr = self.person_of(id);
                self.touched.insert(cpr);
                self.emps.insert(id, Slot::Marker);
                self.log("leave-marker", format!("employment {id}"));
            }
            12 => {
                let markers: Vec<u32> = self
                    .emps
                    .iter()
                    .filter(|(_, s)| matches!(s, Slot::Marker))
                    .map(|(id, _)| *id)
                    .collect();
                if markers.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&markers);
                self.emps.insert(id, Slot::Gone);
                self.log("marker-gone", format!("employment {id}"));
            }
            13 => {
                let c: Vec<u32> = self
                    .active()
                    .into_iter()
                    .filter(|id| {
                        self.emp(*id).user_id.is_none()
                            && !self.touched.contains(&self.emp(*id).cpr)
                    })
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                let cpr = self.person_of(id);
                self.touched.insert(cpr);
                self.emps.insert(id, Slot::Gone);
                self.log("cancel", format!("employment {id}"));
            }
            14 => {
                let c: Vec<u32> = self
                    .active()
                    .into_iter()
                    .filter(|id| {
                        let e = self.emp(*id);
                        self.versions[id] == 1
                            && e.entry.is_some()
                            && e.leave.is_none()
                            && e.user_id.is_none()
                            && !self.touched.contains(&e.cpr)
                    })
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                let mut delta = self.rng.range(-30, 29);
                if delta >= 0 {
                    delta += 1;
                }
                let old = self.emp(id).entry.unwrap();
                let entry = add_days(old, delta);
                // Only where another employment of the person carries the person data from
                // before both dates, so that no person fact depends on the moved start.
                let cpr = self.person_of(id);
                let covered = self
                    .person_emps(&cpr)
                    .into_iter()
                    .any(|e| e != id && self.start[&e] <= old.min(entry));
                if !covered {
                    return false;
                }
                let lc = self.last_changed(W0);
                self.change(id, lc, |e| e.entry = Some(entry));
                self.start.insert(id, entry);
                self.log("entry-date", format!("employment {id}: entryDate {entry}"));
            }
            15 | 16 => {
                let Some(cpr) = self.pick_person() else {
                    return false;
                };
                let (f, l) = (
                    self.rng.pick(FIRST).to_string(),
                    self.rng.pick(LAST).to_string(),
                );
                self.change_person(&cpr, |p| {
                    p.first = f;
                    p.last = l;
                });
                self.log("rename", format!("person {}", masked(&cpr)));
            }
            17..=19 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let cur = self.emp(id).user_id.clone();
                let back: Vec<String> = self.past_user_ids.get(&id).cloned().unwrap_or_default();
                let held: Vec<String> = self
                    .person_emps(&self.person_of(id))
                    .into_iter()
                    .filter_map(|e| self.emp(e).user_id.clone())
                    .collect();
                let back: Vec<String> = back
                    .into_iter()
                    .filter(|u| Some(u) != cur.as_ref() && !held.contains(u))
                    .collect();
                let (kind, new) = match self.rng.below(3) {
                    0 if !back.is_empty() => ("userid-back", Some(self.rng.pick(&back).clone())),
                    1 if cur.is_some() => ("userid-remove", None),
                    _ => ("userid", Some(self.fresh_user_id())),
                };
                if let Some(c) = &cur {
                    self.past_user_ids.entry(id).or_default().push(c.clone());
                }
                let lc = self.last_changed(self.start[&id]);
                let n = new.clone();
                self.change(id, lc, |e| e.user_id = n);
                self.log(kind, format!("employment {id}: {cur:?} → {new:?}"));
            }
            20 => {
                let Some(cpr) = self.pick_person() else {
                    return false;
                };
                let protect = self.persons[&cpr].home != Home::Protected;
                let n = 1 + self.rng.below(STREETS);
                self.change_person(&cpr, |p| {
                    p.home = if protect {
                        Home::Protected
                    } else {
                        Home::Plain(n)
                    }
                });
                let kind = if protect { "protect" } else { "unprotect" };
                self.log(kind, format!("person {}", masked(&cpr)));
            }
            21 => {
                let Some(cpr) = self.pick_person() else {
                    return false;
                };
                let n = 1 + self.rng.below(STREETS);
                let home = if self.rng.percent(15) {
                    Home::None
                } else {
                    Home::Plain(n)
                };
                self.change_person(&cpr, |p| p.home = home);
                self.log("home", format!("person {}", masked(&cpr)));
            }
            22 => {
                let Some(cpr) = self.pick_person() else {
                    return false;
                };
                let phone = self
                    .rng
                    .percent(80)
                    .then(|| format!("3{:07}", self.rng.below(10_000_000)));
                let email_kind = self.rng.below(3);
                let n = self.rng.below(1000);
                if email_kind == 0 {
                    self.change_person(&cpr, |p| p.phone = phone);
                    self.log("phone", format!("person {}", masked(&cpr)));
                } else {
                    self.change_person(&cpr, |p| {
                        p.email = (email_kind == 1).then(|| format!("ny{n}@orakel.example"))
                    });
                    self.log("email", format!("person {}", masked(&cpr)));
                }
            }
            23 => {
                let Some(id) = self.pick_started() else {
                    return false;
                };
                let lc = add_days(t, self.rng.range(-20, 20));
                self.change(id, lc, |_| {});
                self.log("touch", format!("employment {id}: only lastChanged {lc}"));
            }
            24 => {
                let ids: Vec<u32> = self.units.keys().copied().collect();
                let id = *self.rng.pick(&ids);
                let unit = self.units[&id].clone();
                let branch = self.rng.below(3);
                // A new parent that is not the unit itself or one of its descendants.
                let allowed: Vec<u32> = self
                    .units
                    .keys()
                    .copied()
                    .filter(|cand| {
                        let mut p = Some(*cand);
                        while let Some(x) = p {
                            if x == id {
                                return false;
                            }
                            p = self.units[&x].parent;
                        }
                        true
                    })
                    .collect();
                let mut u = unit.clone();
                let kind = match branch {
                    0 => {
                        u.name = format!("Enhed {id} ({t})");
                        "unit-rename"
                    }
                    1 if !unit.bare() => {
                        u.phone = Some(format!("86{:06}", u32::from(t.day() as u8) * 1000 + id));
                        "unit-phone"
                    }
                    _ if unit.parent.is_some() && !allowed.is_empty() => {
                        u.parent = Some(*self.rng.pick(&allowed));
                        "unit-move"
                    }
                    _ => return false,
                };
                u.last_changed = self.last_changed(unit.start);
                self.log(
                    kind,
                    format!("unit {id}: parent {:?}, name {:?}", u.parent, u.name),
                );
                self.units.insert(id, u);
            }
            25 => {
                let parent = self.pick_unit();
                let bare = self.rng.percent(50);
                let start = add_days(t, -self.rng.range(11, 40));
                let id = self.new_unit(Some(parent), bare, start);
                self.log(
                    "unit-new",
                    format!("unit {id} (startDate {start}, bare {bare})"),
                );
            }
            _ => {
                let used: BTreeSet<u32> = self
                    .active()
                    .into_iter()
                    .map(|e| self.emp(e).unit)
                    .chain(self.units.values().filter_map(|u| u.parent))
                    .collect();
                let c: Vec<u32> = self
                    .vanishable
                    .iter()
                    .copied()
                    .filter(|u| !used.contains(u) && self.units[u].bare())
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                self.units.remove(&id);
                self.vanishable.remove(&id);
                self.log("unit-vanish", format!("unit {id}"));
            }
        }
        true
    }

    fn snapshot(&mut self) -> Day {
        Day {
            date: self.today,
            units: self.units.values().cloned().collect(),
            employees: self
                .emps
                .iter()
                .filter_map(|(id, s)| match s {
                    Slot::Active(e) => Some((*id, Rec::Active(e.clone()))),
                    Slot::Marker => Some((*id, Rec::Leave)),
                    Slot::Gone => None,
                })
                .collect(),
            events: std::mem::take(&mut self.events),
        }
    }
}

fn masked(cpr: &str) -> String {
    crate::pseudonym(cpr)
}

/// `days` daily dumps from `seed`, the first on [`START`].
pub(crate) fn generate(seed: u64, days: usize) -> Vec<Day> {
    let mut g = Gen::new(seed);
    let mut out = Vec::with_capacity(days);
    g.day0();
    out.push(g.snapshot());
    for _ in 1..days {
        g.today = add_days(g.today, 1);
        g.touched.clear();
        let wanted = 1 + g.rng.below(4);
        let mut done = 0;
        for _ in 0..wanted * 4 {
            if done == wanted {
                break;
            }
            if g.event() {
                done += 1;
            }
        }
        out.push(g.snapshot());
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn el(out: &mut String, name: &str, value: Option<&str>) {
    match value {
        Some(v) => writeln!(out, "    <{name}>{}</{name}>", esc(v)).unwrap(),
        None => writeln!(out, "    <{name}/>").unwrap(),
    }
}

/// The dump of one day, in the format of OPUS Løn's `ZLPE…_delta.xml` files.
pub(crate) fn write_xml(day: &Day) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    s.push_str(
        "<!-- Generated by the dipex history oracle; all CPR numbers are synthetic. -->\n<kmd>\n",
    );
    for u in &day.units {
        writeln!(
            s,
            "  <orgUnit id=\"{}\" client=\"813\" lastChanged=\"{}\">",
            u.id, u.last_changed
        )
        .unwrap();
        el(&mut s, "startDate", Some(&u.start.to_string()));
        el(&mut s, "endDate", Some("9999-12-31"));
        let parent = u.parent.map(|p| p.to_string());
        writeln!(
            s,
            "    <parentOrgUnit>{}</parentOrgUnit>",
            parent.unwrap_or_default()
        )
        .unwrap();
        el(&mut s, "shortName", Some(&format!("E{}", u.id)));
        el(&mut s, "longName", Some(&u.name));
        if let Some(n) = u.street {
            el(&mut s, "street", Some(&format!("{STREET} {n}")));
            el(&mut s, "zipCode", Some(POSTAL));
            el(&mut s, "city", Some("Aarhus C"));
        }
        if let Some(p) = &u.phone {
            el(&mut s, "phoneNumber", Some(p));
        }
        if let Some(c) = &u.cvr {
            el(&mut s, "cvrNr", Some(c));
            el(&mut s, "eanNr", Some("9999999999999"));
        }
        if let Some(se) = &u.se {
            el(&mut s, "seNr", Some(se));
            el(&mut s, "pNr", Some("0000000000"));
        }
        if let Some((code, text)) = &u.typ {
            el(&mut s, "orgType", Some(code));
            el(&mut s, "orgTypeTxt", Some(text));
        }
        s.push_str("  </orgUnit>\n");
    }
    for (id, rec) in &day.employees {
        let Rec::Active(e) = rec else {
            writeln!(
                s,
                "  <employee id=\"{id}\" client=\"813\" action=\"leave\"/>"
            )
            .unwrap();
            continue;
        };
        writeln!(
            s,
            "  <employee id=\"{id}\" client=\"813\" lastChanged=\"{}\">",
            e.last_changed
        )
        .unwrap();
        el(
            &mut s,
            "entryDate",
            e.entry.map(|d| d.to_string()).as_deref(),
        );
        el(
            &mut s,
            "leaveDate",
            e.leave.map(|d| d.to_string()).as_deref(),
        );
        writeln!(s, "    <cpr suppId=\"0\">{}</cpr>", e.cpr).unwrap();
        el(&mut s, "firstName", Some(&e.person.first));
        el(&mut s, "lastName", Some(&e.person.last));
        match e.person.home {
            Home::Plain(n) => {
                el(&mut s, "address", Some(&format!("{STREET} {n}")));
                el(&mut s, "postalCode", Some(POSTAL));
                el(&mut s, "city", Some("Aarhus C"));
            }
            Home::Protected => {
                s.push_str("    <address>\n      <protectedAddress>true</protectedAddress>\n    </address>\n");
                el(&mut s, "postalCode", None);
                el(&mut s, "city", None);
            }
            Home::None => {
                el(&mut s, "address", None);
                el(&mut s, "postalCode", None);
                el(&mut s, "city", None);
            }
        }
        el(&mut s, "country", Some("DK"));
        el(&mut s, "workPhone", e.person.phone.as_deref());
        if let Some(m) = &e.person.email {
            el(&mut s, "email", Some(m));
        }
        if let Some(u) = &e.user_id {
            el(&mut s, "userId", Some(u));
        }
        el(&mut s, "workContract", Some("08"));
        if let Some(c) = &e.contract {
            el(&mut s, "workContractText", Some(c));
        }
        el(&mut s, "positionId", Some("500"));
        el(&mut s, "position", Some(&e.position));
        el(&mut s, "positionShort", Some("POS"));
        el(
            &mut s,
            "isManager",
            Some(if e.manager { "true" } else { "false" }),
        );
        el(&mut s, "superiorLevel", Some(&e.sup));
        el(&mut s, "subordinateLevel", Some(&e.sub));
        el(&mut s, "orgUnit", Some(&e.unit.to_string()));
        el(&mut s, "payGradeText", Some("LØN 31"));
        el(&mut s, "numerator", Some(&e.num.to_string()));
        el(&mut s, "denominator", Some(&e.den.to_string()));
        s.push_str("  </employee>\n");
    }
    s.push_str("</kmd>\n");
    s
}
