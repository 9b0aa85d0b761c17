//! The OPUS oracle tests: generated dump sequences go through the real importer (library API,
//! embedded store in a real SQLite file, run database, offline address register) one dump per
//! night, and the resulting history must equal the oracle's, object by object, up to random
//! uuids (persons are named by CPR, units by OPUS id, engagements by employment number, classes
//! by user_key). Also: an interrupted run, re-run, ends in the same history.
//!
//! On a difference the test names the seed, the first dump after which importer and oracle
//! disagree, and the object, with both histories; `DIPEX_ORACLE_SEEDS=<seed>` replays it.

use super::opus_gen::{self, Day, Emp, Home, PersonData, Rec, Unit};
use super::opus_model::{Oracle, PRIMARY_ORDER};
use super::{Canon, Fields, Span, compress, differences, seeds_and_days};
use crate::pseudonym;
use dipex_backend::{Applied, Backend, BackendError, Query, Registration, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, ImportReport, Job, Mode, RunError};
use dipex_integrations::opus::state::RunDb;
use dipex_model::plan::ApplyError;
use dipex_model::{Kind, Plan, Value};
use jiff::civil::date;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use uuid::Uuid;

/// The importer's world: dump folder, run database, store, register.
struct Importer {
    _dir: tempfile::TempDir,
    dumps: PathBuf,
    run_db: PathBuf,
    store: Store,
    cfg: Config,
    register: OfflineRegister,
    env: crate::FixedEnv,
}

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

impl Importer {
    fn new() -> Importer {
        let dir = tempfile::tempdir().unwrap();
        let dumps = dir.path().join("dumps");
        std::fs::create_dir(&dumps).unwrap();
        let mut cfg = Config::new("Orakel Kommune");
        cfg.primary_order = PRIMARY_ORDER.iter().map(|s| s.to_string()).collect();
        Importer {
            dumps,
            run_db: dir.path().join("run_db.sqlite"),
            store: Store::open(&dir.path().join("store.sqlite3")).unwrap(),
            cfg,
            register: OfflineRegister::from_bytes(
                "adresser.csv",
                opus_gen::register_csv().as_bytes(),
            )
            .unwrap(),
            env: crate::FixedEnv::new(0x0ac1_e000_0000_4000_9000_0000_0000_0000),
            _dir: dir,
        }
    }

    /// Put the day's dump in the folder and run the nightly import; with `interrupt`, the
    /// run's write is cut in half first and the run then started again.
    fn night(&mut self, day: &Day, interrupt: bool) -> Result<ImportReport, String> {
        std::fs::write(self.dumps.join(day.file_name()), opus_gen::write_xml(day)).unwrap();
        let dumps = list_dumps(&self.dumps).unwrap().0;
        let job = Job {
            cfg: &self.cfg,
            register: &self.register,
            cpr_map: &HashMap::new(),
            ad: None,
            dry_run: false,
            only: None,
        };
        let mut db = RunDb::open(&self.run_db).unwrap();
        if interrupt {
            let mut cutting = Interrupting {
                inner: &mut self.store,
                nth: 1,
                seen: 0,
                cut: false,
            };
            let r = run::import(
                &mut cutting,
                Some(&mut db),
                &job,
                &mut self.env,
                &dumps,
                Mode::All,
                &mut |_| {},
            );
            if cutting.cut {
                match r {
                    Err(RunError::Backend(_)) => {}
                    other => return Err(format!("the interrupted run did not fail: {other:?}")),
                }
            } else {
                r.map_err(|e| e.to_string())?;
            }
        }
        run::import(
            &mut self.store,
            Some(&mut db),
            &job,
            &mut self.env,
            &dumps,
            Mode::All,
            &mut |_| {},
        )
        .map_err(|e| e.to_string())
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
                label.insert(o.uuid, pseudonym(c.expose()));
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
            format!("org_unit {}", u.user_key)
        }
        Value::Person(p) => {
            f.insert("given_name", p.given_name.clone());
            f.insert("surname", p.surname.clone());
            format!(
                "person {}",
                p.cpr_number
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |c| pseudonym(c.expose()))
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
            if let Some(x) = e.fraction {
                f.insert("fraction", x.to_string());
            }
            format!("engagement {}", e.user_key)
        }
        Value::Manager(m) => {
            if let Some(p) = &m.person {
                f.insert("person", name(p));
            }
            f.insert("org_unit", name(&m.org_unit));
            if let Some(e) = &m.engagement {
                f.insert("engagement", name(e));
            }
            f.insert("manager_type", name(&m.manager_type));
            f.insert("manager_level", name(&m.manager_level));
            let r: Vec<String> = m.responsibilities.iter().map(name).collect();
            f.insert("responsibilities", r.join(","));
            format!("manager {}", m.user_key)
        }
        Value::ItUser(u) => {
            f.insert("itsystem", name(&u.itsystem));
            let owner = u.person.as_ref().map_or("?".into(), name);
            format!("it_user {owner} {}", u.user_key)
        }
        Value::Address(a) => {
            f.insert("value", a.value.clone());
            if let Some(v) = &a.visibility {
                f.insert("visibility", name(v));
            }
            let owner = match (&a.person, &a.org_unit) {
                (Some(p), _) => format!("person {}", name(p)),
                (None, Some(u)) => format!("org_unit {}", name(u)),
                _ => "?".into(),
            };
            format!("address {owner} {}", name(&a.address_type))
        }
        other => (format!("{:?}", other.kind()), Fields::new()).0,
    };
    (key, f)
}

/// Runs one generated sequence through the oracle and the importer; `Err` describes the first
/// difference (seed, dump, object) and the events that led to it.
fn check(seed: u64, days: usize, interrupt_every: Option<usize>) -> Result<(), String> {
    let seq = opus_gen::generate(seed, days);
    let mut oracle = Oracle::default();
    let mut imp = Importer::new();
    for (i, day) in seq.iter().enumerate() {
        oracle.replay(day);
        let interrupt = interrupt_every.is_some_and(|n| i % n == n - 1);
        let r = imp.night(day, interrupt).map_err(|e| {
            format!(
                "seed {seed}, dump {i} ({}): the import failed: {e}",
                day.date
            )
        })?;
        let rejected: Vec<String> = r
            .dumps
            .iter()
            .flat_map(|d| d.rejected.iter().map(ToString::to_string))
            .collect();
        if !rejected.is_empty() {
            return Err(format!(
                "seed {seed}, dump {i}: records rejected: {rejected:#?}"
            ));
        }
        let diffs = differences(&oracle.expected(), &imp.canon());
        if let Some(first) = diffs.first() {
            let mut log = String::new();
            for (j, d) in seq[..=i].iter().enumerate() {
                for e in &d.events {
                    log.push_str(&format!("    dump {j} ({}): {e}\n", d.date));
                }
            }
            return Err(format!(
                "seed {seed}: after dump {i} ({}), {} objects differ from the oracle; the first:\n{first}\n  events so far:\n{log}",
                day.date,
                diffs.len()
            ));
        }
    }
    Ok(())
}

fn run_seeds(
    interrupt_every: Option<usize>,
    default_seeds: std::ops::Range<u64>,
    default_days: usize,
) {
    let (seeds, days) = seeds_and_days(default_seeds, default_days);
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(e) = check(*seed, days, interrupt_every) {
            failures.push((*seed, e));
        }
    }
    if let Some((_, first)) = failures.first() {
        let failed: Vec<u64> = failures.iter().map(|f| f.0).collect();
        panic!(
            "{} of {} sequences ({days} dumps each) differ from the oracle: seeds {failed:?}\n\n{first}\n\nothers:\n{}",
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

/// The importer over 20 generated sequences of 20 nightly dumps: the history must equal the
/// oracle's after every dump.
#[test]
fn opus_importer_matches_the_oracle() {
    run_seeds(None, 1..21, 20);
}

/// The same with every third night's write cut in half and the run started again: the
/// history must be the one an uninterrupted run gives (the oracle's). 10 sequences of 20.
#[test]
fn opus_interrupted_runs_end_like_uninterrupted_ones() {
    run_seeds(Some(3), 101..111, 20);
}

// --- Self-tests of the generator and the oracle (they do not run the importer). ---

#[test]
fn opus_generator_is_reproducible_parses_and_covers_every_event_kind() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for seed in 1..21 {
        let a = opus_gen::generate(seed, 20);
        let b = opus_gen::generate(seed, 20);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                opus_gen::write_xml(x),
                opus_gen::write_xml(y),
                "seed {seed}"
            );
        }
        for d in &a {
            let xml = opus_gen::write_xml(d);
            dipex_integrations::opus::parse::parse_dump(xml.as_bytes(), &d.file_name())
                .unwrap_or_else(|e| panic!("seed {seed} {}: {e}", d.file_name()));
            for e in &d.events {
                seen.insert(e.split(':').next().unwrap().to_string());
            }
        }
    }
    let missing: Vec<&&str> = opus_gen::KINDS
        .iter()
        .filter(|k| !seen.contains(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?} (deliberately avoided: {:?})",
        opus_gen::AVOIDED
    );
}

fn person(first: &str) -> PersonData {
    PersonData {
        first: first.into(),
        last: "Holm".into(),
        home: Home::Plain(3),
        phone: Some("20000001".into()),
        email: None,
    }
}

fn emp(id: u32, user_id: Option<&str>, lc: jiff::civil::Date) -> Emp {
    Emp {
        id,
        cpr: "0101701234".into(),
        person: person("Anne"),
        entry: Some(date(2019, 1, 1)),
        leave: None,
        user_id: user_id.map(str::to_string),
        contract: Some("Vikar".into()),
        position: "Lærer".into(),
        manager: false,
        sup: "1".into(),
        sub: "01".into(),
        unit: 1,
        num: 37,
        den: 37,
        last_changed: lc,
    }
}

fn unit() -> Unit {
    Unit {
        id: 1,
        parent: None,
        name: "Rod".into(),
        typ: None,
        phone: None,
        se: None,
        cvr: None,
        street: None,
        start: date(2018, 6, 1),
        last_changed: date(2018, 6, 1),
    }
}

fn spans(c: &Canon, key: &str) -> Vec<(Option<jiff::civil::Date>, Option<jiff::civil::Date>)> {
    c.spans
        .get(key)
        .map(|v| v.iter().map(|s| (s.from, s.to)).collect())
        .unwrap_or_default()
}

/// The rules' own examples, worked by hand: userId u → x → u; a second employment that wins
/// the primary by type and is then cancelled; a leave marker that later disappears; a
/// protected period of the home address; a name change with `lastChanged` in the past.
#[test]
fn opus_oracle_follows_the_rules_examples() {
    let d = |n: i8| date(2020, 3, n);
    let day = |n: i8, employees: Vec<(u32, Rec)>| Day {
        date: d(n),
        units: vec![unit()],
        employees,
        events: vec![],
    };
    let mut e1 = emp(1001, Some("u"), d(1));
    let mut days = vec![day(1, vec![(1001, Rec::Active(e1.clone()))])];
    e1.user_id = Some("x".into());
    e1.last_changed = d(2);
    let mut e2 = emp(1002, None, d(2));
    e2.contract = Some("Ansat".into());
    e2.entry = Some(d(2));
    days.push(day(
        2,
        vec![(1001, Rec::Active(e1.clone())), (1002, Rec::Active(e2))],
    ));
    e1.user_id = Some("u".into());
    e1.last_changed = date(2020, 4, 1); // in the future: from the dump date
    days.push(day(3, vec![(1001, Rec::Active(e1.clone()))])); // 1002 cancelled
    e1.person.home = Home::Protected;
    e1.last_changed = d(4);
    days.push(day(4, vec![(1001, Rec::Active(e1.clone()))]));
    e1.person.home = Home::Plain(5);
    e1.person.first = "Anna".into();
    e1.last_changed = d(2); // in the past
    days.push(day(5, vec![(1001, Rec::Active(e1.clone()))]));
    days.push(day(6, vec![(1001, Rec::Leave)]));
    days.push(day(7, vec![])); // the leave marker disappears: not a cancellation
    let mut o = Oracle::default();
    for x in &days {
        o.replay(x);
    }
    let c = o.expected();
    let cpr = "0101701234";
    assert_eq!(
        spans(&c, &format!("it_user {} u", pseudonym(cpr))),
        [(Some(d(1)), Some(d(2))), (Some(d(3)), Some(d(7)))]
    );
    assert_eq!(
        spans(&c, &format!("it_user {} x", pseudonym(cpr))),
        [(Some(d(2)), Some(d(3)))]
    );
    assert_eq!(
        spans(&c, "engagement 1001"),
        [(Some(date(2019, 1, 1)), Some(d(7)))]
    );
    assert!(
        !c.spans.contains_key("engagement 1002"),
        "cancelled: gone with its history"
    );
    assert_eq!(c.spans["engagement 1001"][0].fields["primary"], "primary");
    // The protected period: the home address ends on day 4, the new one starts on its own
    // change date (day 2, in the past), which overwrites from there.
    assert_eq!(
        spans(&c, &format!("address person {} Adresse", pseudonym(cpr))),
        [(Some(d(1)), Some(d(2))), (Some(d(2)), None)]
    );
    assert_eq!(
        spans(&c, &format!("person {}", pseudonym(cpr))),
        [(None, Some(d(2))), (Some(d(2)), None)]
    );
}
