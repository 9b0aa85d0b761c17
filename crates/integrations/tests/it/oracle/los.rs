//! The LOS oracle tests: generated sequences of daily LOS deliveries go through the real
//! importer (library API `dipex_integrations::los::run`, embedded store in a real SQLite file,
//! offline address register, fixed clock) one delivery per night, and the resulting history
//! must equal the oracle's, object by object, up to random uuids (persons are named by a
//! pseudonym of their CPR, units by user_key, engagements by user_key, classes by user_key).
//! Also: an interrupted run, re-run, ends in the same history.
//!
//! On a difference the test names the seed, the first day after which importer and oracle
//! disagree, and the object, with both histories; `DIPEX_ORACLE_SEEDS=<seed>` replays it, and
//! `DIPEX_ORACLE_ALL=1` prints every difference of that day, not only the first.

use super::los_gen::{self, Day, File};
use super::los_model::Oracle;
use super::{Canon, Fields, Span, compress, differences, seeds_and_days};
use dipex_backend::{Applied, Backend, BackendError, Query, Registration, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::los::run::{self, Job, Report, RunError};
use dipex_integrations::los::uuids;
use dipex_integrations::transport::source::Source;
use dipex_model::plan::ApplyError;
use dipex_model::{Kind, Plan, Value};
use jiff::civil::date;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use uuid::Uuid;

/// A backend that writes only the first half of the `nth` plan it gets, then fails: a run
/// interrupted in the middle of its writes (as on a real OS2mo, where a plan is many requests).
struct Interrupting<'a> {
    inner: &'a mut Store,
    nth: usize,
    seen: usize,
    cut: bool,
}

impl Backend for Interrupting<'_> {
    fn read(&self, query: &Query) -> Result<Vec<dipex_model::Object>, BackendError> {
        self.inner.read(query)
    }
    fn apply(&mut self, plan: Plan, reg: &Registration) -> Result<Applied, BackendError> {
        self.seen += 1;
        if self.seen != self.nth || plan.len() < 2 {
            return self.inner.apply(plan, reg);
        }
        let keep = plan.len() / 2;
        let next = plan.ops[keep].clone();
        self.inner.apply(
            Plan {
                ops: plan.ops[..keep].to_vec(),
            },
            reg,
        )?;
        self.cut = true;
        Err(BackendError::Apply {
            path: "interrupted".into(),
            error: ApplyError::Missing {
                op: "interrupted before",
                uuid: next.uuid(),
                kind: next.kind(),
            },
        })
    }
    fn describe(&self) -> String {
        "interrupting store".into()
    }
}

/// The importer's world: a folder per night, state file, store, register.
struct Importer {
    dir: tempfile::TempDir,
    store: Store,
    register: OfflineRegister,
    env: crate::FixedEnv,
    nights: usize,
}

impl Importer {
    fn new() -> Importer {
        let dir = tempfile::tempdir().unwrap();
        Importer {
            store: Store::open(&dir.path().join("store.sqlite3")).unwrap(),
            register: OfflineRegister::from_bytes(
                "adresser.csv",
                los_gen::register_csv().as_bytes(),
            )
            .unwrap(),
            env: crate::FixedEnv::new(0x0ac1_e000_0000_4000_9100_0000_0000_0000),
            nights: 0,
            dir,
        }
    }

    /// Deliver the day's files (the STAM files with the first) into a folder of their own
    /// and run the nightly import over it; with `interrupt`, the run's first write is cut in
    /// half first and the run then started again.
    fn night(&mut self, day: &Day, interrupt: bool) -> Result<Report, String> {
        let folder: PathBuf = self.dir.path().join(format!("night{:03}", self.nights));
        std::fs::create_dir_all(&folder).unwrap();
        if self.nights == 0 {
            for (name, text) in los_gen::stam_files() {
                std::fs::write(folder.join(name), text).unwrap();
            }
        }
        self.nights += 1;
        for f in &day.files {
            std::fs::write(folder.join(f.name(day.date)), f.csv()).unwrap();
        }
        let source = Source::Local(folder);
        let state = self.dir.path().join("state/los_state");
        let job = Job {
            source: &source,
            register: &self.register,
            state_file: &state,
            azid_system: Uuid::parse_str(uuids::AZID_SYSTEM).unwrap(),
            // Every file of the night's folder is new.
            from_date: Some(date(2000, 1, 1)),
            dry_run: false,
        };
        if interrupt {
            let mut cutting = Interrupting {
                inner: &mut self.store,
                nth: 1,
                seen: 0,
                cut: false,
            };
            let r = run::import(&mut cutting, &job, &mut self.env);
            if cutting.cut {
                match r {
                    Err(RunError::Backend(_)) => {}
                    other => return Err(format!("the interrupted run did not fail: {other:?}")),
                }
            } else {
                r.map_err(|e| e.to_string())?;
            }
        }
        run::import(&mut self.store, &job, &mut self.env).map_err(|e| e.to_string())
    }

    /// The history in the store, in the oracle's terms.
    fn canon(&self) -> Canon {
        let read = |k: Kind| self.store.read(&Query::all(k)).unwrap();
        let mut label: HashMap<Uuid, String> = HashMap::new();
        for k in [Kind::Class, Kind::ItSystem, Kind::OrgUnit, Kind::Engagement] {
            for o in read(k) {
                label.insert(o.uuid, o.last().value.user_key().to_string());
            }
        }
        for o in read(Kind::Person) {
            if let Some(c) = o.last().value.cpr() {
                label.insert(o.uuid, crate::pseudonym(c.expose()));
            }
        }
        let name = |u: &Uuid| label.get(u).cloned().unwrap_or_else(|| format!("?{u}"));
        let mut spans: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        let mut objects: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for kind in [
            Kind::OrgUnit,
            Kind::Person,
            Kind::Engagement,
            Kind::Manager,
            Kind::ItUser,
            Kind::Address,
        ] {
            for o in read(kind) {
                for s in &o.slices {
                    let (key, fields) = project(&s.value, &name);
                    spans.entry(key.clone()).or_default().push(Span {
                        from: s.validity.from,
                        to: s.validity.to,
                        fields,
                    });
                    objects.entry(key).or_default().insert(o.uuid);
                }
            }
        }
        Canon {
            spans: spans.into_iter().map(|(k, v)| (k, compress(v))).collect(),
            objects: objects.into_iter().map(|(k, v)| (k, v.len())).collect(),
        }
    }
}

/// One slice of an MO object → its natural key and the fields the oracle models.
fn project(v: &Value, name: &dyn Fn(&Uuid) -> String) -> (String, Fields) {
    let mut f = Fields::new();
    let key = match v {
        Value::OrgUnit(u) => {
            f.insert("user_key", u.user_key.clone());
            f.insert("name", u.name.clone());
            if let Some(p) = &u.parent {
                f.insert("parent", name(p));
            }
            if let Some(t) = &u.unit_type {
                f.insert("unit_type", name(t));
            }
            if let Some(h) = &u.unit_hierarchy {
                f.insert("hierarchy", name(h));
            }
            format!("org_unit {}", u.user_key)
        }
        Value::Person(p) => {
            f.insert(
                "name",
                format!("{} {}", p.given_name, p.surname).trim().to_string(),
            );
            format!(
                "person {}",
                p.cpr_number
                    .as_ref()
                    .map_or("?".into(), |c| crate::pseudonym(c.expose()))
            )
        }
        Value::Engagement(e) => {
            f.insert("person", name(&e.person));
            f.insert("org_unit", name(&e.org_unit));
            f.insert("job_function", name(&e.job_function));
            f.insert("engagement_type", name(&e.engagement_type));
            if let Some(p) = &e.primary {
                f.insert("primary", name(p));
            }
            format!("engagement {}", e.user_key)
        }
        Value::Manager(m) => {
            f.insert("manager_type", name(&m.manager_type));
            f.insert("manager_level", name(&m.manager_level));
            let r: Vec<String> = m.responsibilities.iter().map(name).collect();
            f.insert("responsibilities", r.join(","));
            let person = m.person.as_ref().map_or("(vacant)".into(), name);
            format!("manager {} {person}", name(&m.org_unit))
        }
        Value::ItUser(u) => {
            f.insert("user_key", u.user_key.clone());
            let owner = u.person.as_ref().map_or("?".into(), name);
            format!("it_user {owner} {}", name(&u.itsystem))
        }
        Value::Address(a) => {
            f.insert("value", a.value.clone());
            let owner = match (&a.person, &a.org_unit) {
                (Some(p), _) => format!("person {}", name(p)),
                (None, Some(u)) => format!("org_unit {}", name(u)),
                _ => "?".into(),
            };
            format!("address {owner} {}", name(&a.address_type))
        }
        other => format!("{:?}", other.kind()),
    };
    (key, f)
}

/// Runs one generated sequence through the oracle and the importer; `Err` describes the first
/// difference (seed, day, object) and the events that led to it.
fn check(seed: u64, days: usize, interrupt_every: Option<usize>, gaps: bool) -> Result<(), String> {
    let seq = los_gen::generate_with(seed, days, gaps);
    let mut oracle = Oracle::default();
    let mut imp = Importer::new();
    for (i, day) in seq.iter().enumerate() {
        oracle.replay(day);
        let interrupt = interrupt_every.is_some_and(|n| i % n == n - 1);
        let r = imp.night(day, interrupt).map_err(|e| {
            format!(
                "seed {seed}, day {i} ({}): the import failed: {e}",
                day.date
            )
        })?;
        let rejected: Vec<String> = r
            .files
            .iter()
            .flat_map(|f| f.rejected.iter().map(ToString::to_string))
            .collect();
        if !rejected.is_empty() {
            return Err(format!(
                "seed {seed}, day {i}: rows rejected: {rejected:#?}"
            ));
        }
        let diffs = differences(&oracle.expected(), &imp.canon());
        if std::env::var("DIPEX_ORACLE_ALL").is_ok() && !diffs.is_empty() {
            eprintln!("ALL seed {seed} day {i}:\n{}", diffs.join("\n"));
        }
        if let Some(first) = diffs.first() {
            let mut log = String::new();
            for (j, d) in seq[..=i].iter().enumerate() {
                for e in &d.events {
                    log.push_str(&format!("    day {j} ({}): {e}\n", d.date));
                }
            }
            return Err(format!(
                "seed {seed}: after day {i} ({}), {} objects differ from the oracle; the first:\n{first}\n  events so far:\n{log}",
                day.date,
                diffs.len()
            ));
        }
    }
    Ok(())
}

fn run_seeds(
    interrupt_every: Option<usize>,
    gaps: bool,
    default_seeds: std::ops::Range<u64>,
    default_days: usize,
) {
    let (seeds, days) = seeds_and_days(default_seeds, default_days);
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(e) = check(*seed, days, interrupt_every, gaps) {
            failures.push((*seed, e));
        }
    }
    if let Some((_, first)) = failures.first() {
        let failed: Vec<u64> = failures.iter().map(|f| f.0).collect();
        panic!(
            "{} of {} sequences ({days} days each) differ from the oracle: seeds {failed:?}\n\n{first}\n\nothers:\n{}",
            failures.len(),
            seeds.len(),
            failures[1..]
                .iter()
                .map(|(_, e)| e.lines().take(12).collect::<Vec<_>>().join("\n"))
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}

/// The importer over 8 generated sequences of 30 nightly deliveries: the history must equal
/// the oracle's after every night.
#[test]
fn los_importer_matches_the_oracle() {
    run_seeds(None, false, 1..9, 30);
}

/// The same with unit histories that have gaps between rows (an `Org_inital`/`Org_nye` unit
/// that does not exist for a while, with its addresses).
#[test]
fn los_importer_matches_the_oracle_with_gaps_in_unit_histories() {
    run_seeds(None, true, 1..5, 30);
}

/// The same with every third night's first write cut in half and the run started again: the
/// history must be the one an uninterrupted run gives (the oracle's).
#[test]
fn los_interrupted_runs_end_like_uninterrupted_ones() {
    run_seeds(Some(3), false, 101..103, 20);
}

// --- Self-tests of the generator and the oracle (they do not run the importer). ---

#[test]
fn los_generator_is_reproducible_parses_and_covers_every_event_kind() {
    use dipex_integrations::los::{files, parse};
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for seed in 1..21 {
        let a = los_gen::generate(seed, 30);
        let b = los_gen::generate(seed, 30);
        for (x, y) in a.iter().zip(&b) {
            let files = |d: &Day| -> Vec<(String, String)> {
                d.files.iter().map(|f| (f.name(d.date), f.csv())).collect()
            };
            assert_eq!(files(x), files(y), "seed {seed}");
            assert_eq!(x.events, y.events, "seed {seed}");
        }
        for d in &a {
            for f in &d.files {
                let name = f.name(d.date);
                let (kind, file_date) = files::classify(&name)
                    .unwrap_or_else(|| panic!("seed {seed}: {name} is not a LOS file name"));
                assert_eq!(file_date.map(|t| t.date()), Some(d.date), "{name}");
                let rows = parse::parse(kind, &name, &f.csv())
                    .unwrap_or_else(|e| panic!("seed {seed} {name}: {e}"));
                let expected = match f {
                    File::OrgInital(r) | File::OrgNye(r) | File::OrgRet(r) => r.len(),
                    File::PersNye(r) | File::PersRet(r) => r.len(),
                    File::PersLuk(r) => r.len(),
                    File::LederNye(r) | File::LederRet(r) => r.len(),
                    File::LederLuk(r) => r.len(),
                };
                assert_eq!(rows.len(), expected, "seed {seed} {name}");
            }
            for e in &d.events {
                seen.insert(e.split(':').next().unwrap().to_string());
            }
        }
        // No CPR number in the events (they end up in failure messages).
        let cprs: BTreeSet<&str> = a
            .iter()
            .flat_map(|d| &d.files)
            .flat_map(|f| match f {
                File::PersNye(r) | File::PersRet(r) => r.iter().map(|x| x.cpr.as_str()).collect(),
                _ => Vec::new(),
            })
            .collect();
        for e in a.iter().flat_map(|d| &d.events) {
            assert!(
                cprs.iter().all(|c| !e.contains(c)),
                "seed {seed}: an event shows a CPR number"
            );
        }
    }
    for (name, text) in los_gen::stam_files() {
        let (kind, _) = files::classify(&name).unwrap();
        parse::parse(kind, &name, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let missing: Vec<&&str> = los_gen::KINDS
        .iter()
        .filter(|k| !seen.contains(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?} (deliberately avoided: {:?})",
        los_gen::AVOIDED
    );
}

fn spans(c: &Canon, key: &str) -> Vec<(Option<jiff::civil::Date>, Option<jiff::civil::Date>)> {
    c.spans
        .get(key)
        .map(|v| v.iter().map(|s| (s.from, s.to)).collect())
        .unwrap_or_default()
}

/// The rules' own examples, worked by hand: the e-mail and AZ user of `docs/los.md` (an
/// identical `Pers_ret` changes nothing, a changed one from its file date only); `Pers_luk`
/// (last day = file date); a manager ended and named again; an `Org_ret` without a name;
/// `Org_inital` rows with a gap and rows that merge.
#[test]
fn los_oracle_follows_the_rules_examples() {
    use super::los_gen::{LederRow, PersRow, UnitRow};
    let d = |m: i8, n: i8| date(2020, m, n);
    let cpr = "0101701234";
    let unit = |start, end, name: Option<&str>| UnitRow {
        id: 1,
        name: name.map(str::to_string),
        typ: 0,
        parent: None,
        linje: false,
        addresses: [Some("1000".into()), None, None, None, None, None, None],
        post: None,
        start,
        end,
    };
    let row = |email: &str, azid: &str| PersRow {
        eng: 5001,
        cpr: cpr.into(),
        name: "Anne Holm".into(),
        start: d(1, 1),
        end: None,
        email: Some(email.into()),
        primary: true,
        unit: 1,
        eng_type: 0,
        azid: Some(azid.into()),
        job: 0,
    };
    let leder = LederRow {
        unit: 1,
        cpr: cpr.into(),
        typ: 0,
        level: 0,
        resp: 0,
    };
    let day = |date, files| Day {
        date,
        files,
        events: vec![],
    };
    let days = [
        day(
            d(1, 15),
            vec![
                File::OrgInital(vec![
                    unit(d(1, 1), Some(d(1, 31)), Some("A")),
                    unit(d(2, 1), Some(d(2, 9)), Some("A")),
                    unit(d(2, 20), None, Some("B")),
                ]),
                File::PersNye(vec![row("anne@x.example", "az1")]),
                File::LederNye(vec![leder.clone()]),
            ],
        ),
        day(
            d(3, 1),
            vec![
                File::OrgRet(vec![unit(d(3, 1), None, None)]),
                File::PersRet(vec![row("anne@x.example", "az1")]),
                File::LederLuk(vec![(1, cpr.into())]),
            ],
        ),
        day(
            d(4, 1),
            vec![
                File::PersRet(vec![row("anne.h@x.example", "az1")]),
                File::LederNye(vec![leder]),
            ],
        ),
        day(
            d(5, 1),
            vec![File::PersLuk(vec![super::los_gen::LukRow {
                eng: 5001,
                cpr: cpr.into(),
                name: "Anne Holm".into(),
            }])],
        ),
    ];
    let mut o = Oracle::default();
    for x in &days {
        o.replay(x);
    }
    let c = o.expected();
    let p = crate::pseudonym(cpr);
    assert_eq!(
        spans(&c, &format!("address person {p} EmailEmployee")),
        [(Some(d(1, 15)), Some(d(4, 1))), (Some(d(4, 1)), None)]
    );
    assert_eq!(
        spans(&c, &format!("it_user {p} AZ")),
        [(Some(d(1, 15)), None)]
    );
    assert_eq!(
        spans(&c, "engagement 5001"),
        [(Some(d(1, 1)), Some(d(5, 2)))]
    );
    assert_eq!(
        spans(&c, &format!("manager LOS001 {p}")),
        [(Some(d(1, 15)), Some(d(3, 2))), (Some(d(4, 1)), None)]
    );
    // Rows that touch merge; the gap stays; Org_ret without a name keeps "B".
    assert_eq!(
        spans(&c, "org_unit LOS001"),
        [(Some(d(1, 1)), Some(d(2, 10))), (Some(d(2, 20)), None)]
    );
    assert_eq!(c.spans["org_unit LOS001"][1].fields["name"], "B");
    assert_eq!(
        spans(&c, "address org_unit LOS001 LOSID"),
        [(Some(d(1, 1)), Some(d(2, 10))), (Some(d(2, 20)), None)]
    );
    assert_eq!(spans(&c, &format!("person {p}")), [(None, None)]);
}
