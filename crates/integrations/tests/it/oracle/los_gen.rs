//! A seeded generator of daily Aarhus LOS delta sequences for the oracle: a small municipality
//! (an `Org_inital` file with a tree of units and their histories on the first day, then per day
//! a few of `Org_nye`/`Org_ret`, `Pers_nye`/`Pers_ret`/`Pers_luk` and
//! `Leder_nye`/`Leder_ret`/`Leder_luk` rows) with synthetic CPR numbers.
//!
//! Every day is kept as plain typed rows ([`Day`], [`File`]) for the oracle, and [`File::csv`]
//! writes each file in the real LOS format. The generator keeps away from the corners the rules
//! leave open (listed in [`AVOIDED`]) so that the oracle's expectation is determined by the rules
//! alone.

use super::{Rng, W0, add_days};
use jiff::civil::{Date, date};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use uuid::Uuid;

/// Corners of the rules the generated sequences stay out of, because the rules do not settle them.
pub(crate) const AVOIDED: &[&str] = &[
    "two events for one object (unit, person, engagement, manager) on one day",
    "an Org_ret row that is not open-ended from its file date, or that empties an address column, or that changes Med-i-LinjeOrg or BrugervendtNøgle",
    "an Org_ret row for a unit whose history has rows starting after the file date, or that has ended",
    "an Org_ret postal address the register does not know (does the old one end?)",
    "a Pers_nye row that changes a known person's name, e-mail or AZ user (Pers_nye is not dated: would it rewrite them since always?)",
    "rows of one person that differ in name, e-mail or AZ user; a row that drops a known e-mail or AZ user",
    "a Pers_ret row that changes StartTid/SlutTid or the CPR of a known engagement, or that changes an engagement not yet started or already ended",
    "a finite SlutTid on any but a new person's first engagement (the e-mail and AZ user end with it), and any later e-mail/AZ event of such a person",
    "a Pers_ret row for an unknown person; Pers_luk of an engagement not yet started or already ended",
    "managers of units not yet started, or with CPR numbers not in MO; Leder_nye for an active manager; Leder_luk on the day the manager started",
];

pub(crate) const POSTAL: &str = "8000";
pub(crate) const STREET: &str = "Losvej";
pub(crate) const STREETS: usize = 9;

/// The register id of `Losvej <n>, 8000`.
pub(crate) fn dar_uuid(n: usize) -> Uuid {
    Uuid::from_u128(0x0ac1_e000_0000_4000_8100_0000_0000_0000 | n as u128)
}

/// The offline address register for the generated streets (`Ukendtvej` is not in it).
pub(crate) fn register_csv() -> String {
    let mut s = String::from("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n");
    for n in 1..=STREETS {
        writeln!(s, "{},{STREET},{n},,,{POSTAL},Aarhus C", dar_uuid(n)).unwrap();
    }
    s
}

pub(crate) fn unit_uuid(id: u32) -> Uuid {
    Uuid::from_u128(0x0ac1_e000_0000_4000_a000_0000_0000_0000 + u128::from(id))
}

pub(crate) fn unit_key(id: u32) -> String {
    format!("LOS{id:03}")
}

pub(crate) fn engagement_uuid(id: u32) -> Uuid {
    Uuid::from_u128(0x0ac1_e000_0000_4000_b000_0000_0000_0000 + u128::from(id))
}

/// The STAM class lists: (file, uuid column, title column, with `Loadtime`, titles).
pub(crate) const STAM: &[(&str, &str, &str, bool, &[&str])] = &[
    (
        "STAM_UUID_Enhedstype.csv",
        "EnhedstypeUUID",
        "Enhedstype",
        false,
        &["Forvaltning", "Afdeling"],
    ),
    (
        "STAM_UUID_Engagementstype.csv",
        "EngagementstypeUUID",
        "Engagementstype",
        false,
        &["Månedslønnet", "Timelønnet"],
    ),
    (
        "STAM_UUID_Stillingsbetegnelse.csv",
        "StillingBetUUID",
        "Stillingsbetegnelse",
        false,
        &["Sagsbehandler", "Pædagog", "Lærer"],
    ),
    (
        "STAM_UUID_Ledertype.csv",
        "LedertypeUUID",
        "Ledertype",
        true,
        &["Direktør", "Afdelingsleder"],
    ),
    (
        "STAM_UUID_Lederniveau.csv",
        "LederniveauUUID",
        "Lederniveau",
        true,
        &["Niveau 1", "Niveau 2"],
    ),
    (
        "STAM_UUID_Lederansvar.csv",
        "LederansvarUUID",
        "Lederansvar",
        true,
        &["Personaleansvar", "Budgetansvar"],
    ),
];

/// Indexes into [`STAM`].
pub(crate) const UNIT_TYPE: usize = 0;
pub(crate) const ENG_TYPE: usize = 1;
pub(crate) const JOB: usize = 2;
pub(crate) const MGR_TYPE: usize = 3;
pub(crate) const MGR_LEVEL: usize = 4;
pub(crate) const MGR_RESP: usize = 5;

pub(crate) fn class_uuid(facet: usize, n: usize) -> Uuid {
    Uuid::from_u128(0x0ac1_e000_0000_4000_c000_0000_0000_0000 + ((facet as u128) << 8) + n as u128)
}

pub(crate) fn class_title(facet: usize, n: usize) -> &'static str {
    STAM[facet].4[n]
}

/// The STAM files, delivered with the first day's files.
pub(crate) fn stam_files() -> Vec<(String, String)> {
    STAM.iter()
        .enumerate()
        .map(|(f, (name, id, title, loadtime, titles))| {
            let mut s = format!("{id};{title}");
            if *loadtime {
                s.push_str(";Loadtime");
            }
            s.push('\n');
            for (n, t) in titles.iter().enumerate() {
                write!(s, "{};{t}", class_uuid(f, n)).unwrap();
                if *loadtime {
                    s.push_str(";2020-01-01 06:00:00");
                }
                s.push('\n');
            }
            (name.to_string(), s)
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Post {
    /// `Losvej <n>, 8000 Aarhus C`: in the register.
    Known(usize),
    /// A text the register does not know.
    Unknown,
}

/// One org unit row: the unit in one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnitRow {
    pub(crate) id: u32,
    /// `None`: the column is empty (only in `Org_ret`: the name stays).
    pub(crate) name: Option<String>,
    pub(crate) typ: usize,
    /// `None`: a top-level unit (`ParentUUID` = `OrgUUID`).
    pub(crate) parent: Option<u32>,
    pub(crate) linje: bool,
    /// The address columns, in the order of [`ADDRESS_COLUMNS`].
    pub(crate) addresses: [Option<String>; 7],
    pub(crate) post: Option<Post>,
    pub(crate) start: Date,
    /// The last day (inclusive); `None`: open-ended.
    pub(crate) end: Option<Date>,
}

/// The address columns of a unit row, with the user_key of their address type class.
pub(crate) const ADDRESS_COLUMNS: [(&str, &str); 7] = [
    ("LOSID", "LOSID"),
    ("CVR", "CVRUnit"),
    ("EAN", "EANUnit"),
    ("P-Nr", "PNumber"),
    ("SE-Nr", "SENumber"),
    ("IntDebitor-Nr", "intdebit"),
    ("MagID", "UnitMagID"),
];

/// One `Pers_nye`/`Pers_ret` row: one engagement of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersRow {
    pub(crate) eng: u32,
    pub(crate) cpr: String,
    pub(crate) name: String,
    pub(crate) start: Date,
    /// The last day (inclusive); `None`: open-ended.
    pub(crate) end: Option<Date>,
    pub(crate) email: Option<String>,
    pub(crate) primary: bool,
    pub(crate) unit: u32,
    pub(crate) eng_type: usize,
    pub(crate) azid: Option<String>,
    pub(crate) job: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LukRow {
    pub(crate) eng: u32,
    pub(crate) cpr: String,
    pub(crate) name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LederRow {
    pub(crate) unit: u32,
    pub(crate) cpr: String,
    pub(crate) typ: usize,
    pub(crate) level: usize,
    pub(crate) resp: usize,
}

/// One delta file of a day.
#[derive(Clone, Debug)]
pub(crate) enum File {
    OrgInital(Vec<UnitRow>),
    OrgNye(Vec<UnitRow>),
    OrgRet(Vec<UnitRow>),
    PersNye(Vec<PersRow>),
    PersRet(Vec<PersRow>),
    PersLuk(Vec<LukRow>),
    LederNye(Vec<LederRow>),
    LederRet(Vec<LederRow>),
    LederLuk(Vec<(u32, String)>),
}

/// One day's delivery.
#[derive(Clone, Debug)]
pub(crate) struct Day {
    pub(crate) date: Date,
    /// In the order a run processes them (`Org_inital`, `Org_nye`, … `Leder_luk`).
    pub(crate) files: Vec<File>,
    /// What happened, for failure reports (no CPR numbers).
    pub(crate) events: Vec<String>,
}

fn ymd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn org_date(d: Option<Date>) -> String {
    match d {
        Some(d) => format!("{:02}-{:02}-{:04}", d.day(), d.month(), d.year()),
        None => "31-12-9999".into(),
    }
}

fn time(d: Option<Date>) -> String {
    match d {
        Some(d) => format!("{d} 00:00:00"),
        None => "9999-12-31 00:00:00".into(),
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

impl File {
    pub(crate) fn prefix(&self) -> &'static str {
        match self {
            File::OrgInital(_) => "Org_inital",
            File::OrgNye(_) => "Org_nye",
            File::OrgRet(_) => "Org_ret",
            File::PersNye(_) => "Pers_nye",
            File::PersRet(_) => "Pers_ret",
            File::PersLuk(_) => "Pers_luk",
            File::LederNye(_) => "Leder_nye",
            File::LederRet(_) => "Leder_ret",
            File::LederLuk(_) => "Leder_luk",
        }
    }

    pub(crate) fn name(&self, day: Date) -> String {
        format!("{}_{}_020000.csv", self.prefix(), ymd(day))
    }

    /// The file in the LOS format.
    pub(crate) fn csv(&self) -> String {
        let mut s = String::new();
        match self {
            File::OrgInital(rows) | File::OrgNye(rows) | File::OrgRet(rows) => {
                s.push_str("OrgUUID;BrugervendtNøgle;OrgEnhedsNavn;OrgEnhedsTypeUUID;ParentUUID;Med-i-LinjeOrg;LOSID;CVR;EAN;P-Nr;SE-Nr;IntDebitor-Nr;MagID;PostAdresse;StartDato;SlutDato\n");
                for r in rows {
                    let post = match &r.post {
                        Some(Post::Known(n)) => format!("\"{STREET} {n}, {POSTAL} Aarhus C\""),
                        Some(Post::Unknown) => format!("\"Ukendtvej 1, {POSTAL} Aarhus C\""),
                        None => String::new(),
                    };
                    writeln!(
                        s,
                        "{};{};{};{};{};{};{};{post};{};{}",
                        unit_uuid(r.id),
                        unit_key(r.id),
                        opt(&r.name),
                        class_uuid(UNIT_TYPE, r.typ),
                        unit_uuid(r.parent.unwrap_or(r.id)),
                        if r.linje { "True" } else { "False" },
                        r.addresses
                            .iter()
                            .map(|a| opt(a).to_string())
                            .collect::<Vec<_>>()
                            .join(";"),
                        org_date(Some(r.start)),
                        org_date(r.end),
                    )
                    .unwrap();
                }
            }
            File::PersNye(rows) | File::PersRet(rows) => {
                s.push_str("UUID;BrugervendtNøgle;CPR;CPRNavn;StartTid;SlutTid;Email;PrimærAnsættelse;OrgenhedUUID;EngagementTypeUUID;AZID;ADITSystemUUID;ADkonto;ADkontoUUID;StillingsBetegnelseUUID\n");
                for r in rows {
                    writeln!(
                        s,
                        "{};{};{};{};{};{};{};{};{};{};{};;;;{}",
                        engagement_uuid(r.eng),
                        r.eng,
                        r.cpr,
                        r.name,
                        time(Some(r.start)),
                        time(r.end),
                        opt(&r.email),
                        if r.primary { "Ja" } else { "Nej" },
                        unit_uuid(r.unit),
                        class_uuid(ENG_TYPE, r.eng_type),
                        opt(&r.azid),
                        class_uuid(JOB, r.job),
                    )
                    .unwrap();
                }
            }
            File::PersLuk(rows) => {
                s.push_str("UUID;CPR;CPRNavn\n");
                for r in rows {
                    writeln!(s, "{};{};{}", engagement_uuid(r.eng), r.cpr, r.name).unwrap();
                }
            }
            File::LederNye(rows) | File::LederRet(rows) => {
                s.push_str("OrgUUID;CPR;LedertypeUUID;LederniveauUUID;LederansvarUUID\n");
                for r in rows {
                    writeln!(
                        s,
                        "{};{};{};{};{}",
                        unit_uuid(r.unit),
                        r.cpr,
                        class_uuid(MGR_TYPE, r.typ),
                        class_uuid(MGR_LEVEL, r.level),
                        class_uuid(MGR_RESP, r.resp),
                    )
                    .unwrap();
                }
            }
            File::LederLuk(rows) => {
                s.push_str("OrgUUID;CPR\n");
                for (unit, cpr) in rows {
                    writeln!(s, "{};{cpr}", unit_uuid(*unit)).unwrap();
                }
            }
        }
        s
    }
}

/// The first day's date.
pub(crate) const START: Date = date(2020, 3, 2);

const FIRST: &[&str] = &[
    "Anne", "Bjørn", "Cæcilie", "Dorte", "Erik", "Frida", "Gustav", "Hanne",
];
const LAST: &[&str] = &["Ærø", "Bæk", "Dahl", "Holm", "Lund", "Møller", "Skov"];
const UNIT_NAMES: &[&str] = &[
    "Borgerservice",
    "Kultur",
    "Skoler",
    "Hjemmepleje",
    "Teknik",
    "Miljø",
    "Sundhed",
    "Dagtilbud",
];

/// The event kinds, for the coverage self-test.
pub(crate) const KINDS: &[&str] = &[
    "unit-initial",
    "unit-history",
    "unit-gap",
    "unit-closed",
    "dar-miss",
    "unit-new",
    "unit-new-history",
    "unit-rename",
    "unit-no-name",
    "unit-retype",
    "unit-move",
    "unit-address",
    "unit-post",
    "unit-touch",
    "unit-ret-new",
    "hire",
    "hire-future",
    "hire-ends",
    "second",
    "pers-ret-unit",
    "pers-ret-job",
    "pers-ret-type",
    "pers-ret-primary",
    "pers-ret-email",
    "pers-ret-azid",
    "pers-ret-name",
    "pers-touch",
    "pers-ret-new",
    "pers-luk",
    "leder-nye",
    "leder-again",
    "leder-ret",
    "leder-touch",
    "leder-ret-new",
    "leder-luk",
];

/// A synthetic CPR number: a real birth date, a serial that fails the modulus-11 check.
fn cpr(n: u32) -> String {
    let (d, m, y) = (1 + n % 28, 1 + (n / 28) % 12, 50 + (n / 336) % 40);
    let head = format!("{d:02}{m:02}{y:02}");
    let w = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    let mut serial = 2000 + (n * 53) % 7000;
    loop {
        let s = format!("{head}{serial:04}");
        let sum: u32 = s.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
        if !sum.is_multiple_of(11) {
            return s;
        }
        serial += 1;
    }
}

struct GUnit {
    /// The row that holds from `since` on, open-ended; `None` once the unit has ended.
    cur: Option<UnitRow>,
    /// The start of the unit's last row.
    since: Date,
}

struct GPerson {
    name: String,
    email: Option<String>,
    azid: Option<String>,
    /// The person's first engagement ends (and with it the e-mail and AZ user).
    ends: bool,
}

struct GEng {
    row: PersRow,
    ended: bool,
}

struct Gen {
    rng: Rng,
    /// Whether unit histories may have gaps between rows.
    gaps: bool,
    today: Date,
    units: BTreeMap<u32, GUnit>,
    persons: BTreeMap<String, GPerson>,
    engs: BTreeMap<u32, GEng>,
    /// (unit, cpr) → the manager row while active, `None` once ended; with the day it started.
    managers: BTreeMap<(u32, String), (Option<LederRow>, Date)>,
    touched: BTreeSet<String>,
    next_unit: u32,
    next_eng: u32,
    next_person: u32,
    next_value: u32,
    files: BTreeMap<usize, File>,
    events: Vec<String>,
}

fn order(f: &File) -> usize {
    match f {
        File::OrgInital(_) => 0,
        File::OrgNye(_) => 1,
        File::OrgRet(_) => 2,
        File::PersNye(_) => 3,
        File::PersRet(_) => 4,
        File::PersLuk(_) => 5,
        File::LederNye(_) => 6,
        File::LederRet(_) => 7,
        File::LederLuk(_) => 8,
    }
}

impl Gen {
    fn new(seed: u64, gaps: bool) -> Gen {
        Gen {
            rng: Rng::new(seed),
            gaps,
            today: START,
            units: BTreeMap::new(),
            persons: BTreeMap::new(),
            engs: BTreeMap::new(),
            managers: BTreeMap::new(),
            touched: BTreeSet::new(),
            next_unit: 1,
            next_eng: 5001,
            next_person: 1,
            next_value: 1,
            files: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn log(&mut self, kind: &str, text: String) {
        self.events.push(format!("{kind}: {text}"));
    }

    fn touch(&mut self, key: String) -> bool {
        self.touched.insert(key)
    }

    fn fresh(&mut self) -> u32 {
        self.next_value += 1;
        self.next_value
    }

    /// Add rows to the day's file of the kind of `file`.
    fn add(&mut self, file: File) {
        let k = order(&file);
        match (self.files.get_mut(&k), file) {
            (None, f) => {
                self.files.insert(k, f);
            }
            (Some(File::OrgInital(a)), File::OrgInital(b))
            | (Some(File::OrgNye(a)), File::OrgNye(b))
            | (Some(File::OrgRet(a)), File::OrgRet(b)) => a.extend(b),
            (Some(File::PersNye(a)), File::PersNye(b))
            | (Some(File::PersRet(a)), File::PersRet(b)) => a.extend(b),
            (Some(File::PersLuk(a)), File::PersLuk(b)) => a.extend(b),
            (Some(File::LederNye(a)), File::LederNye(b))
            | (Some(File::LederRet(a)), File::LederRet(b)) => a.extend(b),
            (Some(File::LederLuk(a)), File::LederLuk(b)) => a.extend(b),
            _ => unreachable!("one kind per key"),
        }
    }

    fn address_values(&mut self) -> [Option<String>; 7] {
        let mut a: [Option<String>; 7] = Default::default();
        for (i, slot) in a.iter_mut().enumerate() {
            if self.rng.percent(if i == 0 { 90 } else { 35 }) {
                *slot = Some(self.address_value(i));
            }
        }
        a
    }

    fn address_value(&mut self, column: usize) -> String {
        let n = self.fresh();
        match column {
            0 => format!("{}", 1000 + n),
            1 => format!("{}", 55_000_000 + n),
            2 => format!("{}", 5_798_000_000_000_u64 + u64::from(n)),
            3 => format!("{}", 1_000_000_000 + n),
            4 => format!("{}", 66_000_000 + n),
            5 => format!("D{n}"),
            _ => format!("MAG-{n}"),
        }
    }

    fn post(&mut self, known_only: bool) -> Option<Post> {
        match self.rng.below(10) {
            0..=5 => Some(Post::Known(1 + self.rng.below(STREETS))),
            6 if !known_only => Some(Post::Unknown),
            _ => None,
        }
    }

    fn unit_name(&mut self) -> String {
        let n = self.fresh();
        format!("{} {n}", self.rng.pick(UNIT_NAMES))
    }

    /// A new unit's rows: one to three periods from `start`; the last open unless `closed`.
    fn unit_rows(
        &mut self,
        id: u32,
        parent: Option<u32>,
        start: Date,
        history: bool,
    ) -> Vec<UnitRow> {
        let post = self.post(false);
        if post == Some(Post::Unknown) {
            self.log("dar-miss", format!("unit {}", unit_key(id)));
        }
        let name = self.unit_name();
        let first = UnitRow {
            id,
            name: Some(name),
            typ: self.rng.below(2),
            parent,
            linje: self.rng.percent(60),
            addresses: self.address_values(),
            post,
            start,
            end: None,
        };
        let mut rows = vec![first];
        if history {
            let periods = 1 + self.rng.below(2);
            for _ in 0..periods {
                let prev = rows.last_mut().unwrap();
                let len = self.rng.range(20, 200);
                let end = add_days(prev.start, len);
                prev.end = Some(end);
                let mut next = prev.clone();
                next.end = None;
                // A gap sometimes; the same content sometimes (rows that merge).
                let gap = if self.gaps && self.rng.percent(20) {
                    self.log("unit-gap", format!("unit {}", unit_key(id)));
                    self.rng.range(1, 30)
                } else {
                    0
                };
                next.start = add_days(end, 1 + gap);
                match self.rng.below(4) {
                    0 => {}
                    1 => next.name = Some(self.unit_name()),
                    2 => next.typ = 1 - next.typ,
                    _ => {
                        let c = self.rng.below(7);
                        next.addresses[c] = Some(self.address_value(c));
                    }
                }
                rows.push(next);
            }
        }
        rows
    }

    /// Day 0: the `Org_inital` file (a root, its children, grandchildren, histories).
    fn day0(&mut self) {
        let n = 6 + self.rng.below(4) as u32;
        let mut rows = Vec::new();
        for id in 1..=n {
            let parent = match id {
                1 => None,
                2..=3 => Some(1),
                _ => Some(1 + self.rng.below(id as usize - 1) as u32),
            };
            let start = if id == 1 {
                date(2018, 1, 1)
            } else {
                add_days(date(2018, 2, 1), self.rng.range(0, 400))
            };
            let history = id > 1 && self.rng.percent(50);
            let mut r = self.unit_rows(id, parent, start, history);
            if history {
                self.log(
                    "unit-history",
                    format!("unit {} with {} rows", unit_key(id), r.len()),
                );
            }
            // Some leaves of the tree close for good.
            let closed = id > 3 && self.rng.percent(10);
            let last = r.last_mut().unwrap();
            if closed {
                last.end = Some(add_days(last.start, self.rng.range(30, 300)));
                self.log("unit-closed", format!("unit {}", unit_key(id)));
            }
            self.units.insert(
                id,
                GUnit {
                    cur: (!closed).then(|| last.clone()),
                    since: last.start,
                },
            );
            rows.extend(r);
            self.log("unit-initial", format!("unit {}", unit_key(id)));
        }
        self.next_unit = n + 1;
        self.add(File::OrgInital(rows));
        // A few persons to start with.
        for _ in 0..(3 + self.rng.below(3)) {
            self.hire();
        }
    }

    /// Units open now and started (their last row started on or before today).
    fn live_units(&self) -> Vec<u32> {
        self.units
            .iter()
            .filter(|(_, u)| u.cur.is_some() && u.since <= self.today)
            .map(|(id, _)| *id)
            .collect()
    }

    fn pick_live_unit(&mut self) -> Option<u32> {
        let c = self.live_units();
        (!c.is_empty()).then(|| *self.rng.pick(&c))
    }

    fn new_person(&mut self) -> String {
        let c = cpr(self.next_person);
        self.next_person += 1;
        let name = format!("{} {}", self.rng.pick(FIRST), self.rng.pick(LAST));
        let n = self.fresh();
        let email = self.rng.percent(70).then(|| format!("p{n}@orakel.example"));
        let azid = self.rng.percent(70).then(|| format!("az{n}"));
        self.persons.insert(
            c.clone(),
            GPerson {
                name,
                email,
                azid,
                ends: false,
            },
        );
        c
    }

    fn eng_row(&mut self, cpr: &str, unit: u32, start: Date, end: Option<Date>) -> PersRow {
        let p = &self.persons[cpr];
        let (name, email, azid) = (p.name.clone(), p.email.clone(), p.azid.clone());
        let eng = self.next_eng;
        self.next_eng += 1;
        PersRow {
            eng,
            cpr: cpr.to_string(),
            name,
            start,
            end,
            email,
            primary: self.rng.percent(70),
            unit,
            eng_type: self.rng.below(2),
            azid,
            job: self.rng.below(3),
        }
    }

    /// A new person with a first engagement (`Pers_nye`).
    fn hire(&mut self) -> bool {
        let Some(unit) = self.pick_live_unit() else {
            return false;
        };
        let c = self.new_person();
        let t = self.today;
        let start = match self.rng.below(10) {
            0..=5 => add_days(t, -self.rng.range(0, 400)),
            6..=7 => add_days(t, self.rng.range(1, 20)),
            _ => t,
        }
        .max(add_days(W0, 30));
        let end = self
            .rng
            .percent(20)
            .then(|| add_days(start.max(t), self.rng.range(30, 200)));
        let row = self.eng_row(&c, unit, start, end);
        self.touch(format!("person {}", crate::pseudonym(&c)));
        self.touch(format!("eng {}", row.eng));
        let p = crate::pseudonym(&c);
        if start > t {
            self.log("hire-future", format!("person {p} from {start}"));
        }
        if let Some(end) = end {
            self.persons.get_mut(&c).unwrap().ends = true;
            self.log("hire-ends", format!("person {p} until {end}"));
        }
        self.log(
            "hire",
            format!(
                "person {p}, engagement {} in {}",
                row.eng,
                unit_key(row.unit)
            ),
        );
        self.engs.insert(
            row.eng,
            GEng {
                row: row.clone(),
                ended: false,
            },
        );
        self.add(File::PersNye(vec![row]));
        true
    }

    /// Persons whose e-mail and AZ user may change: every engagement started and open-ended,
    /// not touched today.
    fn settled_persons(&self) -> Vec<String> {
        self.persons
            .iter()
            .filter(|(c, p)| {
                !p.ends
                    && !self
                        .touched
                        .contains(&format!("person {}", crate::pseudonym(c)))
                    && self
                        .engs
                        .values()
                        .filter(|e| &e.row.cpr == *c)
                        .all(|e| e.row.start <= self.today)
            })
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Engagements a `Pers_ret` or `Pers_luk` may concern.
    fn changeable_engs(&self) -> Vec<u32> {
        self.engs
            .iter()
            .filter(|(id, e)| {
                !e.ended
                    && e.row.start <= self.today
                    && e.row.end.is_none_or(|end| end > self.today)
                    && !self.touched.contains(&format!("eng {id}"))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    fn event(&mut self) -> bool {
        let t = self.today;
        match self.rng.below(20) {
            0 => self.hire(),
            1 => {
                // Org_nye: a new unit (sometimes with history rows).
                let Some(parent) = self.pick_live_unit() else {
                    return false;
                };
                let id = self.next_unit;
                self.next_unit += 1;
                let start = add_days(t, self.rng.range(-60, 15)).max(self.units[&parent].since);
                let history = self.rng.percent(30);
                let rows = self.unit_rows(id, Some(parent), start, history);
                let last = rows.last().unwrap().clone();
                self.units.insert(
                    id,
                    GUnit {
                        since: last.start,
                        cur: Some(last),
                    },
                );
                self.touch(format!("unit {id}"));
                if history {
                    self.log(
                        "unit-new-history",
                        format!("unit {} with {} rows", unit_key(id), rows.len()),
                    );
                }
                self.log(
                    "unit-new",
                    format!(
                        "unit {} from {start} under {}",
                        unit_key(id),
                        unit_key(parent)
                    ),
                );
                self.add(File::OrgNye(rows));
                true
            }
            2..=3 => {
                // Org_ret of a live unit.
                let c: Vec<u32> = self
                    .live_units()
                    .into_iter()
                    .filter(|id| !self.touched.contains(&format!("unit {id}")))
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                let mut row = self.units[&id].cur.clone().unwrap();
                let kind = match self.rng.below(7) {
                    0 => {
                        row.name = Some(self.unit_name());
                        "unit-rename"
                    }
                    1 => {
                        row.typ = 1 - row.typ;
                        "unit-retype"
                    }
                    2 if id > 1 => {
                        // Parents always have smaller ids: no cycles.
                        let p: Vec<u32> = self
                            .live_units()
                            .into_iter()
                            .filter(|p| *p < id && Some(*p) != row.parent)
                            .collect();
                        if p.is_empty() {
                            return false;
                        }
                        row.parent = Some(*self.rng.pick(&p));
                        "unit-move"
                    }
                    3 => {
                        let col = self.rng.below(7);
                        row.addresses[col] = Some(self.address_value(col));
                        "unit-address"
                    }
                    4 => {
                        row.post = Some(Post::Known(1 + self.rng.below(STREETS)));
                        "unit-post"
                    }
                    5 => "unit-touch",
                    _ => {
                        row.typ = 1 - row.typ;
                        "unit-no-name"
                    }
                };
                self.touch(format!("unit {id}"));
                row.start = t;
                row.end = None;
                self.units.insert(
                    id,
                    GUnit {
                        cur: Some(row.clone()),
                        since: t,
                    },
                );
                self.log(kind, format!("unit {}", unit_key(id)));
                if kind == "unit-no-name" {
                    row.name = None;
                }
                // A known postal address is written again as it is (never dropped).
                if row.post == Some(Post::Unknown) {
                    row.post = None;
                }
                self.add(File::OrgRet(vec![row]));
                true
            }
            4 => {
                // Org_ret of a unit MO does not know: created from the file date.
                let Some(parent) = self.pick_live_unit() else {
                    return false;
                };
                let id = self.next_unit;
                self.next_unit += 1;
                let name = self.unit_name();
                let row = UnitRow {
                    id,
                    name: Some(name),
                    typ: self.rng.below(2),
                    parent: Some(parent),
                    linje: self.rng.percent(50),
                    addresses: self.address_values(),
                    post: self.post(true),
                    start: t,
                    end: None,
                };
                self.touch(format!("unit {id}"));
                self.units.insert(
                    id,
                    GUnit {
                        cur: Some(row.clone()),
                        since: t,
                    },
                );
                self.log("unit-ret-new", format!("unit {}", unit_key(id)));
                self.add(File::OrgRet(vec![row]));
                true
            }
            5..=6 => self.hire(),
            7..=8 => {
                // A second engagement (Pers_nye, or Pers_ret of an unknown engagement).
                let c = self.settled_persons();
                let Some(unit) = self.pick_live_unit() else {
                    return false;
                };
                if c.is_empty() {
                    return false;
                }
                let cpr = self.rng.pick(&c).clone();
                let start = add_days(t, self.rng.range(-90, 20)).max(add_days(W0, 30));
                let row = self.eng_row(&cpr, unit, start, None);
                self.touch(format!("person {}", crate::pseudonym(&cpr)));
                self.touch(format!("eng {}", row.eng));
                let ret = self.rng.percent(40);
                self.log(
                    if ret { "pers-ret-new" } else { "second" },
                    format!(
                        "person {}, engagement {} from {start}",
                        crate::pseudonym(&cpr),
                        row.eng
                    ),
                );
                self.engs.insert(
                    row.eng,
                    GEng {
                        row: row.clone(),
                        ended: false,
                    },
                );
                self.add(if ret {
                    File::PersRet(vec![row])
                } else {
                    File::PersNye(vec![row])
                });
                true
            }
            9..=12 => {
                // Pers_ret of a known engagement.
                let c: Vec<u32> = self
                    .changeable_engs()
                    .into_iter()
                    .filter(|id| self.engs[id].row.end.is_none())
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                let cpr = self.engs[&id].row.cpr.clone();
                if self
                    .touched
                    .contains(&format!("person {}", crate::pseudonym(&cpr)))
                {
                    return false;
                }
                let settled = self.settled_persons().contains(&cpr);
                let mut row = self.engs[&id].row.clone();
                let kind = match self.rng.below(8) {
                    0 => {
                        let Some(u) = self.pick_live_unit() else {
                            return false;
                        };
                        if u == row.unit {
                            return false;
                        }
                        row.unit = u;
                        "pers-ret-unit"
                    }
                    1 => {
                        row.job = (row.job + 1 + self.rng.below(2)) % 3;
                        "pers-ret-job"
                    }
                    2 => {
                        row.eng_type = 1 - row.eng_type;
                        "pers-ret-type"
                    }
                    3 => {
                        row.primary = !row.primary;
                        "pers-ret-primary"
                    }
                    4 if settled => {
                        let n = self.fresh();
                        row.email = Some(format!("p{n}@orakel.example"));
                        "pers-ret-email"
                    }
                    5 if settled => {
                        let n = self.fresh();
                        row.azid = Some(format!("az{n}"));
                        "pers-ret-azid"
                    }
                    6 if settled => {
                        row.name = format!("{} {}", self.rng.pick(FIRST), self.rng.pick(LAST));
                        if row.name == self.persons[&cpr].name {
                            return false;
                        }
                        "pers-ret-name"
                    }
                    7 => "pers-touch",
                    _ => return false,
                };
                if kind.ends_with("email") || kind.ends_with("azid") || kind.ends_with("name") {
                    let p = self.persons.get_mut(&cpr).unwrap();
                    p.email = row.email.clone();
                    p.azid = row.azid.clone();
                    p.name = row.name.clone();
                    // Every engagement row of the person carries the person's data.
                    for e in self.engs.values_mut().filter(|e| e.row.cpr == cpr) {
                        e.row.email = row.email.clone();
                        e.row.azid = row.azid.clone();
                        e.row.name = row.name.clone();
                    }
                }
                self.touch(format!("person {}", crate::pseudonym(&cpr)));
                self.touch(format!("eng {id}"));
                self.engs.get_mut(&id).unwrap().row = row.clone();
                self.log(
                    kind,
                    format!("engagement {id} of person {}", crate::pseudonym(&cpr)),
                );
                self.add(File::PersRet(vec![row]));
                true
            }
            13..=14 => {
                // Pers_luk: the engagement's last day is today.
                let c = self.changeable_engs();
                if c.is_empty() {
                    return false;
                }
                let id = *self.rng.pick(&c);
                self.touch(format!("eng {id}"));
                let e = self.engs.get_mut(&id).unwrap();
                e.ended = true;
                let row = LukRow {
                    eng: id,
                    cpr: e.row.cpr.clone(),
                    name: e.row.name.clone(),
                };
                self.log(
                    "pers-luk",
                    format!("engagement {id} of person {}", crate::pseudonym(&row.cpr)),
                );
                self.add(File::PersLuk(vec![row]));
                true
            }
            15..=16 => {
                // Leder_nye (or Leder_ret of an unknown manager): from the file date.
                let Some(unit) = self.pick_live_unit() else {
                    return false;
                };
                let persons: Vec<String> = self.persons.keys().cloned().collect();
                let cpr = self.rng.pick(&persons).clone();
                let key = (unit, cpr.clone());
                let again = match self.managers.get(&key) {
                    Some((Some(_), _)) => return false,
                    Some((None, _)) => true,
                    None => false,
                };
                if !self.touch(format!("manager {unit} {cpr}")) {
                    return false;
                }
                let row = LederRow {
                    unit,
                    cpr: cpr.clone(),
                    typ: self.rng.below(2),
                    level: self.rng.below(2),
                    resp: self.rng.below(2),
                };
                self.managers.insert(key, (Some(row.clone()), t));
                // Leder_ret of a manager MO does not hold now (never, or not since
                // Leder_luk) writes it from the file date like Leder_nye.
                let ret = self.rng.percent(30);
                let kind = if again {
                    "leder-again"
                } else if ret {
                    "leder-ret-new"
                } else {
                    "leder-nye"
                };
                self.log(
                    kind,
                    format!(
                        "manager of {} person {}",
                        unit_key(unit),
                        crate::pseudonym(&cpr)
                    ),
                );
                self.add(if ret {
                    File::LederRet(vec![row])
                } else {
                    File::LederNye(vec![row])
                });
                true
            }
            _ => {
                // Leder_ret or Leder_luk of an active manager.
                let c: Vec<(u32, String)> = self
                    .managers
                    .iter()
                    .filter(|(k, (row, since))| {
                        row.is_some()
                            && *since < t
                            && !self.touched.contains(&format!("manager {} {}", k.0, k.1))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if c.is_empty() {
                    return false;
                }
                let key = self.rng.pick(&c).clone();
                self.touch(format!("manager {} {}", key.0, key.1));
                let who = format!(
                    "manager of {} person {}",
                    unit_key(key.0),
                    crate::pseudonym(&key.1)
                );
                let mut row = self.managers[&key].0.clone().unwrap();
                match self.rng.below(5) {
                    0..=1 => {
                        self.managers.insert(key.clone(), (None, t));
                        self.log("leder-luk", who);
                        self.add(File::LederLuk(vec![key]));
                    }
                    2 => {
                        self.log("leder-touch", who);
                        self.add(File::LederRet(vec![row]));
                    }
                    _ => {
                        match self.rng.below(3) {
                            0 => row.typ = 1 - row.typ,
                            1 => row.level = 1 - row.level,
                            _ => row.resp = 1 - row.resp,
                        }
                        self.managers.get_mut(&key).unwrap().0 = Some(row.clone());
                        self.log("leder-ret", who);
                        self.add(File::LederRet(vec![row]));
                    }
                }
                true
            }
        }
    }

    fn snapshot(&mut self) -> Day {
        Day {
            date: self.today,
            files: std::mem::take(&mut self.files).into_values().collect(),
            events: std::mem::take(&mut self.events),
        }
    }
}

/// `days` daily deliveries from `seed`, the first on [`START`] (with the `Org_inital` file).
pub(crate) fn generate(seed: u64, days: usize) -> Vec<Day> {
    generate_with(seed, days, true)
}

/// [`generate`], with `gaps` false: no unit history has a gap between two of its rows.
pub(crate) fn generate_with(seed: u64, days: usize, gaps: bool) -> Vec<Day> {
    let mut g = Gen::new(seed, gaps);
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
