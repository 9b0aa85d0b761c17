//! The OPUS import end to end: fixture dumps from `fixtures/opus/`, the embedded store in a real
//! SQLite file, the run database, and the offline address register on a real CSV file.

use dipex_backend::{Backend, Query, Store};
use dipex_integrations::ad::Directory;
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::diff::{self, Tree};
use dipex_integrations::opus::files::{DumpFile, list_dumps};
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::parse::parse_file;
use dipex_integrations::opus::run::{self, Env, ImportReport, Job, Mode, RunError};
use dipex_integrations::opus::state::RunDb;
use dipex_integrations::opus::uuids::OpusUuids;
use dipex_integrations::opus::{cprmap, run::persons};
use dipex_model::{Cpr, Date, Kind, Object, Validity, Value};
use jiff::civil::date;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub(crate) const DAY1: &str = "ZLPE20200101220000_delta.xml";
pub(crate) const DAY2: &str = "ZLPE20200102220000_delta.xml";

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/opus")
}

/// A fixed clock and numbered uuids for new persons.
pub(crate) struct Fixed {
    n: u128,
}

impl Env for Fixed {
    fn now(&self) -> jiff::civil::DateTime {
        date(2026, 1, 1).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH
    }
    fn new_uuid(&mut self) -> Uuid {
        self.n += 1;
        Uuid::from_u128(0xfeed_0000_0000_0000_0000_0000_0000_0000 + self.n)
    }
}

pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) dumps: PathBuf,
    pub(crate) run_db: PathBuf,
    pub(crate) store: Store,
    pub(crate) cfg: Config,
    pub(crate) register: OfflineRegister,
    pub(crate) cpr_map: HashMap<Cpr, Uuid>,
    /// The Active Directory accounts (AD enrichment on when set).
    pub(crate) ad: Option<Directory>,
    pub(crate) env: Fixed,
}

fn config() -> Config {
    Config::new("Andeby Kommune")
}

impl World {
    pub(crate) fn new(files: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let dumps = dir.path().join("dumps");
        std::fs::create_dir(&dumps).unwrap();
        for f in files {
            std::fs::copy(fixtures().join("ok").join(f), dumps.join(f)).unwrap();
        }
        World {
            dumps,
            run_db: dir.path().join("run_db.sqlite"),
            store: Store::open(&dir.path().join("store.sqlite3")).unwrap(),
            cfg: config(),
            register: OfflineRegister::load(fixtures().join("adresser.csv")).unwrap(),
            cpr_map: HashMap::new(),
            ad: None,
            env: Fixed { n: 0 },
            _dir: dir,
        }
    }

    pub(crate) fn add(&self, name: &str, content: &str) {
        std::fs::write(self.dumps.join(name), content).unwrap();
    }

    pub(crate) fn list(&self) -> Vec<DumpFile> {
        list_dumps(&self.dumps).unwrap().0
    }

    pub(crate) fn run(&mut self, mode: Mode, dry_run: bool) -> Result<ImportReport, RunError> {
        let dumps = self.list();
        let job = Job {
            cfg: &self.cfg,
            register: &self.register,
            cpr_map: &self.cpr_map,
            ad: self.ad.as_ref(),
            dry_run,
            only: None,
        };
        let mut db = RunDb::open(&self.run_db).unwrap();
        run::import(
            &mut self.store,
            Some(&mut db),
            &job,
            &mut self.env,
            &dumps,
            mode,
            &mut |_| {},
        )
    }

    pub(crate) fn import(&mut self) -> ImportReport {
        self.run(Mode::All, false).unwrap()
    }

    pub(crate) fn dump(&self) -> String {
        let mut kinds = Kind::ALL.to_vec();
        kinds.sort_by_key(|k| k.as_str());
        let mut out = String::new();
        for k in kinds {
            for o in self.store.read(&Query::all(k)).unwrap() {
                out.push_str(&o.to_dump_json().to_string());
                out.push('\n');
            }
        }
        out
    }

    pub(crate) fn all(&self, kind: Kind) -> Vec<Object> {
        self.store.read(&Query::all(kind)).unwrap()
    }

    pub(crate) fn one(&self, kind: Kind, user_key: &str) -> Object {
        let mut v = self
            .store
            .read(&Query::all(kind).user_keys([user_key]))
            .unwrap();
        assert_eq!(v.len(), 1, "{kind} {user_key}: {v:?}");
        v.pop().unwrap()
    }

    fn class(&self, uuid: Uuid) -> String {
        match &self
            .store
            .read(&Query::all(Kind::Class).uuids([uuid]))
            .unwrap()[0]
            .last()
            .value
        {
            Value::Class(c) => c.user_key.clone(),
            _ => unreachable!(),
        }
    }

    pub(crate) fn rows(&self) -> Vec<String> {
        RunDb::open(&self.run_db)
            .unwrap()
            .rows()
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect()
    }
}

fn unit(g: &OpusUuids, id: &str) -> Uuid {
    g.unit(id)
}

fn v(o: &Object) -> Spans {
    o.slices
        .iter()
        .map(|s| (s.validity.from, s.validity.to))
        .collect()
}

#[test]
fn first_import_then_daily_diff_snapshot() {
    let mut w = World::new(&[DAY1]);
    let r = w.import();
    assert_eq!(r.dumps.len(), 1);
    assert_eq!(r.rejected(), 0, "{:?}", r.dumps[0].rejected);
    insta::assert_snapshot!("opus_day1", w.dump());
    w.add(
        DAY2,
        &std::fs::read_to_string(fixtures().join("ok").join(DAY2)).unwrap(),
    );
    let r = w.import();
    assert_eq!(r.dumps.len(), 1);
    insta::assert_snapshot!("opus_day2", w.dump());
    // Nothing pending: nothing happens.
    let before = w.dump();
    assert!(w.import().dumps.is_empty());
    assert_eq!(w.dump(), before);
    assert_eq!(
        w.rows()
            .iter()
            .map(|s| s.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["Running", "Diff", "Running", "Diff"]
    );
}

#[test]
fn units_keep_upstream_uuids_parents_and_addresses() {
    let mut w = World::new(&[DAY1, DAY2]);
    let r = w.import();
    assert_eq!(r.dumps.len(), 2);
    let g = &w.cfg.uuids;
    let units = w.all(Kind::OrgUnit);
    let uuids: Vec<Uuid> = units.iter().map(|o| o.uuid).collect();
    for id in ["1", "2", "3", "4", "5"] {
        assert!(uuids.contains(&unit(g, id)), "unit {id}");
    }
    assert_eq!(
        unit(g, "1").to_string(),
        "0e9c456f-f2e6-0596-4442-1b4a66a6b168"
    );
    let root = units.iter().find(|o| o.uuid == unit(g, "1")).unwrap();
    assert!(
        matches!(&root.last().value, Value::OrgUnit(u) if u.parent.is_none()),
        "the root has no parent"
    );
    // Unit 3 moved from 2 to 1; its lastChanged (2015-01-16) is before the dump date, so the
    // move takes effect then (ruling 1), splitting its history there.
    let u3 = units.iter().find(|o| o.uuid == unit(g, "3")).unwrap();
    let parents: Vec<Option<Uuid>> = u3
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::OrgUnit(u) => u.parent,
            _ => None,
        })
        .collect();
    assert_eq!(parents, [Some(unit(g, "2")), Some(unit(g, "1"))]);
    assert_eq!(u3.slices[1].validity.from, Some(date(2015, 1, 16)));
    // Unit 5 starts at its startDate, and has no address and the default type `Enhed`.
    let u5 = units.iter().find(|o| o.uuid == unit(g, "5")).unwrap();
    assert_eq!(v(u5), [(Some(date(2022, 3, 1)), None)]);
    let Value::OrgUnit(u) = &u5.last().value else {
        panic!()
    };
    assert_eq!(w.class(u.unit_type.unwrap()), "Enhed");
    // Unit 4's type 00002/TestCenter matches the existing class by user_key.
    let u4 = units.iter().find(|o| o.uuid == unit(g, "4")).unwrap();
    let Value::OrgUnit(u) = &u4.last().value else {
        panic!()
    };
    assert_eq!(w.class(u.unit_type.unwrap()), "00002");
    let unit_types = w
        .all(Kind::Class)
        .into_iter()
        .filter(|c| matches!(&c.last().value, Value::Class(c) if c.name == "TestCenter"))
        .count();
    assert_eq!(unit_types, 0);

    // Addresses of unit 2: the SE change cuts at the dump date (its lastChanged is after it).
    let addrs = w
        .store
        .read(&Query::all(Kind::Address).org_units([unit(g, "2")]))
        .unwrap();
    let by_type: HashMap<String, &Object> = addrs
        .iter()
        .map(|o| match &o.last().value {
            Value::Address(a) => (w.class(a.address_type), o),
            _ => unreachable!(),
        })
        .collect();
    let mut types: Vec<&String> = by_type.keys().collect();
    types.sort();
    assert_eq!(types, ["Adresse", "CVR", "EAN", "Pnummer", "SE", "Telefon"]);
    let se = by_type["SE"];
    let values: Vec<&str> = se
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::Address(a) => a.value.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(values, ["22334455", "22334456"]);
    assert_eq!(se.slices[1].validity.from, Some(date(2020, 1, 2)));
    let Value::Address(dar) = &by_type["Adresse"].last().value else {
        panic!()
    };
    assert_eq!(
        dar.value, "0a3f50a0-0002-4e1c-9a6b-000000000002",
        "DAR uuid from the register"
    );
    assert_eq!(dar.visibility, None);
    // The placeholder P-number of the root is not imported.
    let root_addrs = w
        .store
        .read(&Query::all(Kind::Address).org_units([unit(g, "1")]))
        .unwrap();
    let root_types: Vec<String> = root_addrs
        .iter()
        .map(|o| match &o.last().value {
            Value::Address(a) => w.class(a.address_type),
            _ => unreachable!(),
        })
        .collect();
    assert!(
        !root_types.contains(&"Pnummer".to_string()),
        "{root_types:?}"
    );
}

#[test]
fn employees_engagements_managers_roles_and_addresses() {
    let mut w = World::new(&[DAY1]);
    w.import();
    let g = w.cfg.uuids;
    // 1000 and 1006 share a CPR: one person, two engagements.
    let persons = w.all(Kind::Person);
    assert_eq!(persons.len(), 3);
    let e1000 = w.one(Kind::Engagement, "1000");
    let e1006 = w.one(Kind::Engagement, "1006");
    let (Value::Engagement(a), Value::Engagement(b)) = (&e1000.last().value, &e1006.last().value)
    else {
        panic!()
    };
    assert_eq!(a.person, b.person);
    assert_eq!(a.org_unit, unit(&g, "3"));
    assert_eq!(
        v(&e1000),
        [(Some(date(2019, 5, 1)), None)],
        "engagements start at entryDate"
    );
    assert_eq!(w.class(a.job_function), "Skoleleder");
    assert_eq!(w.class(a.engagement_type), "Ansat");
    // Primary: same type rank (none configured), lowest employment number wins.
    assert_eq!(w.class(a.primary.unwrap()), "primary");
    assert_eq!(w.class(b.primary.unwrap()), "non-primary");
    assert_eq!(a.fraction, Some(1_000_000));
    let e1001 = w.one(Kind::Engagement, "1001");
    let Value::Engagement(c) = &e1001.last().value else {
        panic!()
    };
    assert_eq!(c.fraction, Some(810_811), "30/37 of full time");
    // Manager of 1000: level sup.sub, type = position, responsibility Lederansvar.
    let m = w.one(Kind::Manager, "1000");
    let Value::Manager(m) = &m.last().value else {
        panic!()
    };
    assert_eq!(w.class(m.manager_level), "1.02");
    assert_eq!(w.class(m.manager_type), "Skoleleder");
    assert_eq!(
        m.responsibilities
            .iter()
            .map(|r| w.class(*r))
            .collect::<Vec<_>>(),
        ["Lederansvar"]
    );
    assert_eq!(m.org_unit, unit(&g, "3"));
    assert_eq!(m.person, Some(a.person));
    assert!(
        w.store
            .read(&Query::all(Kind::Manager).user_keys(["1001"]))
            .unwrap()
            .is_empty()
    );
    // Role of 1001 from its <function>.
    let role = w.one(Kind::Role, "1001");
    let Value::Role(r) = &role.last().value else {
        panic!()
    };
    assert_eq!(w.class(r.role_type), "Rolle - Tillidsrepræsentant");
    assert_eq!(v(&role), [(Some(date(2019, 8, 1)), None)]);
    // IT users in Opus from userId.
    let users: Vec<String> = w
        .all(Kind::ItUser)
        .iter()
        .map(|o| o.last().value.user_key().to_string())
        .collect();
    assert_eq!(users.len(), 2);
    assert!(users.contains(&"AOE1000".to_string()) && users.contains(&"CDA1002".to_string()));
    let systems = w.all(Kind::ItSystem);
    assert_eq!(systems.len(), 1);
    assert!(matches!(&systems[0].last().value, Value::ItSystem(s) if s.name == "Opus"));
    // Person addresses: 1000 phone, e-mail and a DAR home address with visibility Intern.
    let addrs = w
        .store
        .read(&Query::all(Kind::Address).persons([a.person]))
        .unwrap();
    let mut kinds: Vec<(String, String, Option<String>)> = addrs
        .iter()
        .map(|o| match &o.last().value {
            Value::Address(x) => (
                w.class(x.address_type),
                x.value.clone(),
                x.visibility.map(|u| w.class(u)),
            ),
            _ => unreachable!(),
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            (
                "Adresse".into(),
                "0a3f50a0-0010-4e1c-9a6b-000000000010".into(),
                Some("Intern".into())
            ),
            (
                "Email".into(),
                "aase.oestergaard@andeby.example".into(),
                None
            ),
            ("Telefon".into(), "87651000".into(), None),
        ]
    );
    // 1002 has address protection: no home address, but the phone is imported.
    let e1002 = w.one(Kind::Engagement, "1002");
    let Value::Engagement(d) = &e1002.last().value else {
        panic!()
    };
    let addrs = w
        .store
        .read(&Query::all(Kind::Address).persons([d.person]))
        .unwrap();
    let types: Vec<String> = addrs
        .iter()
        .map(|o| match &o.last().value {
            Value::Address(x) => w.class(x.address_type),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(types, ["Telefon"]);
    // Person names and CPRs.
    let p = persons.iter().find(|p| p.uuid == a.person).unwrap();
    let Value::Person(p) = &p.last().value else {
        panic!()
    };
    assert_eq!(
        (p.given_name.as_str(), p.surname.as_str()),
        ("Åse", "Østergård")
    );
    assert_eq!(p.cpr_number.as_ref().unwrap().expose(), "0101010000");
}

#[test]
fn diff_day_two_changes_cancels_and_cuts_history() {
    let mut w = World::new(&[DAY1]);
    w.import();
    w.add(
        DAY2,
        &std::fs::read_to_string(fixtures().join("ok").join(DAY2)).unwrap(),
    );
    let r = w.import();
    let ch = &r.dumps[0].changes;
    assert_eq!(
        ch.units,
        ["1", "2", "3", "4", "5"]
            .iter()
            .filter(|u| **u != "1")
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(ch.employees, ["1000", "1001"]);
    assert_eq!(ch.leaves, ["9991"]);
    assert_eq!(ch.cancelled, ["1006"]);
    assert!(ch.vanished_units.is_empty());
    // 1006 vanished: its engagement is deleted, history included.
    assert!(
        w.store
            .read(&Query::all(Kind::Engagement).user_keys(["1006"]))
            .unwrap()
            .is_empty()
    );
    // 1000 changed job: history cut at its lastChanged (2020-10-02 is after the dump date, so
    // the dump date 2020-01-02).
    let e = w.one(Kind::Engagement, "1000");
    let jobs: Vec<(Option<Date>, String)> = e
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::Engagement(x) => (s.validity.from, w.class(x.job_function)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        jobs,
        [
            (Some(date(2019, 5, 1)), "Skoleleder".into()),
            (Some(date(2020, 1, 2)), "Viceskoleleder".into())
        ]
    );
    // The manager follows the position change.
    let m = w.one(Kind::Manager, "1000");
    assert_eq!(m.slices.len(), 2);
    // 1001's new name from lastChanged 2021-01-19 > dump date → from the dump date.
    let e1001 = w.one(Kind::Engagement, "1001");
    let Value::Engagement(x) = &e1001.last().value else {
        panic!()
    };
    let p = &w
        .store
        .read(&Query::all(Kind::Person).uuids([x.person]))
        .unwrap()[0];
    let names: Vec<String> = p
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::Person(p) => format!("{} {}", p.given_name, p.surname),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(names, ["Bjørn Mølgaard", "Bjørk Møller-Ærø"]);
    assert_eq!(p.slices[1].validity.from, Some(date(2020, 1, 2)));
    // 1002 only changed indentation: nothing about it was written.
    assert_eq!(w.one(Kind::Engagement, "1002").slices.len(), 1);
}

#[test]
fn leave_marker_ends_engagement_and_manager_at_the_dump_date() {
    let mut w = World::new(&[DAY1]);
    w.import();
    let day2 = std::fs::read_to_string(fixtures().join("ok").join(DAY1))
        .unwrap()
        .replace(
            "<employee id=\"999\" client=\"813\" action=\"leave\"/>",
            "<employee id=\"1000\" client=\"813\" action=\"leave\"/>",
        );
    // Remove the full 1000 record, replace it by the leave marker above.
    let start = day2
        .find("<employee id=\"1000\" client=\"813\" lastChanged")
        .unwrap();
    let end = day2[start..].find("</employee>").unwrap() + start + "</employee>".len();
    let day2 = format!("{}{}", &day2[..start], &day2[end..]);
    w.add(DAY2, &day2);
    let r = w.import();
    assert_eq!(r.dumps[0].changes.leaves, ["1000"]);
    assert!(
        r.dumps[0].changes.cancelled.is_empty(),
        "a leave marker is not a cancellation"
    );
    let e = w.one(Kind::Engagement, "1000");
    assert_eq!(
        v(&e),
        [(Some(date(2019, 5, 1)), Some(date(2020, 1, 3)))],
        "valid through the dump date"
    );
    let m = w.one(Kind::Manager, "1000");
    assert_eq!(v(&m).last().unwrap().1, Some(date(2020, 1, 3)));
    // The other engagement of the person becomes primary from then on.
    let e1006 = w.one(Kind::Engagement, "1006");
    let primaries: Vec<(Option<Date>, String)> = e1006
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::Engagement(x) => (s.validity.from, w.class(x.primary.unwrap())),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        primaries.last().unwrap(),
        &(Some(date(2020, 1, 3)), "primary".to_string())
    );
    // A third dump without the leave marker: that is not a cancellation, nothing is deleted.
    let day3 = day2.replace(
        "<employee id=\"1000\" client=\"813\" action=\"leave\"/>",
        "",
    );
    w.add("ZLPE20200103220000_delta.xml", &day3);
    let r = w.import();
    assert!(r.dumps[0].changes.cancelled.is_empty());
    assert_eq!(
        w.store
            .read(&Query::all(Kind::Engagement).user_keys(["1000"]))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn vanished_and_ended_units_are_terminated() {
    let mut w = World::new(&[DAY1]);
    w.import();
    let day1 = std::fs::read_to_string(fixtures().join("ok").join(DAY1)).unwrap();
    // Unit 2 gets an endDate; unit 3 (and its employees) vanish.
    let start = day1.find("<orgUnit id=\"3\"").unwrap();
    let end = day1[start..].find("</orgUnit>").unwrap() + start + "</orgUnit>".len();
    let mut day2 = format!("{}{}", &day1[..start], &day1[end..]);
    let first_end = day2.find("<endDate>9999-12-31</endDate>").unwrap();
    let second_end = day2[first_end + 1..]
        .find("<endDate>9999-12-31</endDate>")
        .unwrap()
        + first_end
        + 1;
    day2.replace_range(
        second_end..second_end + "<endDate>9999-12-31</endDate>".len(),
        "<endDate>2020-06-30</endDate>",
    );
    let day2 = day2.replace("<orgUnit>3</orgUnit>", "<orgUnit>2</orgUnit>");
    w.add(DAY2, &day2);
    let r = w.import();
    assert_eq!(r.dumps[0].changes.vanished_units, ["3"]);
    let g = w.cfg.uuids;
    let u3 = &w
        .store
        .read(&Query::all(Kind::OrgUnit).uuids([unit(&g, "3")]))
        .unwrap()[0];
    assert_eq!(v(u3).last().unwrap().1, Some(date(2020, 1, 3)));
    let u2 = &w
        .store
        .read(&Query::all(Kind::OrgUnit).uuids([unit(&g, "2")]))
        .unwrap()[0];
    assert_eq!(
        v(u2).last().unwrap().1,
        Some(date(2020, 7, 1)),
        "endDate is the last valid day"
    );
}

#[test]
fn filtered_units_and_their_employees_are_not_imported_and_later_removed() {
    let mut w = World::new(&[DAY1]);
    w.cfg.filter_ids = vec!["2".into()];
    w.import();
    let g = w.cfg.uuids;
    let uuids: Vec<Uuid> = w.all(Kind::OrgUnit).iter().map(|o| o.uuid).collect();
    assert_eq!(uuids, [unit(&g, "1")], "2 and its subtree (3) are filtered");
    assert!(
        w.all(Kind::Engagement).is_empty(),
        "all employees sit in 2 or 3"
    );
    // Without the filter, the next dump brings them in; with it again, they end.
    let mut w = World::new(&[DAY1]);
    w.import();
    w.cfg.filter_ids = vec!["3".into()];
    w.add(
        DAY2,
        &std::fs::read_to_string(fixtures().join("ok").join(DAY2))
            .unwrap()
            .replace(
                "<parentOrgUnit>1</parentOrgUnit>\n    <shortName>SKØ",
                "<parentOrgUnit>2</parentOrgUnit>\n    <shortName>SKØ",
            ),
    );
    let r = w.import();
    assert_eq!(r.dumps[0].changes.filtered_units, ["3"]);
    let u3 = &w
        .store
        .read(&Query::all(Kind::OrgUnit).uuids([unit(&g, "3")]))
        .unwrap()[0];
    assert_eq!(
        v(u3).last().unwrap().1,
        Some(date(2020, 1, 3)),
        "terminated at the dump date"
    );
}

#[test]
fn skip_flags() {
    let mut w = World::new(&[DAY1]);
    w.cfg.skip_employees = true;
    w.import();
    assert!(w.all(Kind::Person).is_empty());
    assert_eq!(w.all(Kind::OrgUnit).len(), 3);
    for (email, phone, address, want) in [
        (true, false, false, vec!["Adresse", "Telefon"]),
        (false, true, false, vec!["Adresse", "Email"]),
        (false, false, true, vec!["Email", "Telefon"]),
    ] {
        let mut w = World::new(&[DAY1]);
        (w.cfg.skip_email, w.cfg.skip_phone, w.cfg.skip_address) = (email, phone, address);
        w.import();
        let e = w.one(Kind::Engagement, "1000");
        let Value::Engagement(x) = &e.last().value else {
            panic!()
        };
        let mut types: Vec<String> = w
            .store
            .read(&Query::all(Kind::Address).persons([x.person]))
            .unwrap()
            .iter()
            .map(|o| match &o.last().value {
                Value::Address(a) => w.class(a.address_type),
                _ => unreachable!(),
            })
            .collect();
        types.sort();
        assert_eq!(types, want);
    }
}

#[test]
fn dry_run_writes_nothing_anywhere() {
    let mut w = World::new(&[DAY1, DAY2]);
    let dumps = w.list();
    let job = Job {
        cfg: &w.cfg,
        register: &w.register,
        cpr_map: &w.cpr_map,
        ad: None,
        dry_run: true,
        only: None,
    };
    let r = run::import(
        &mut w.store,
        None,
        &job,
        &mut w.env,
        &dumps,
        Mode::All,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.dumps.len(), 1);
    assert_eq!(r.not_processed, [DAY2]);
    assert!(r.dumps[0].plan.as_ref().unwrap().len() > 20);
    assert!(w.dump().is_empty());
    assert!(!w.run_db.exists());
}

#[test]
fn malformed_dumps_fail_cleanly_and_a_rerun_after_fixing_works() {
    for (file, needles) in [
        (
            "malformed_unclosed_tag.xml",
            vec!["malformed XML", "orgUnit id="],
        ),
        ("missing_longname.xml", vec!["longName", "orgUnit id="]),
        ("missing_cpr.xml", vec!["cpr", "employee id="]),
        ("invalid_cpr.xml", vec!["CPR", "employee id="]),
        ("invalid_date.xml", vec!["Date"]),
        ("wrong_root.xml", vec!["kmd"]),
        ("not_utf8_encoding.xml", vec!["encoding"]),
        (
            "unknown_parent.xml",
            vec!["parentOrgUnit", "unknown parent"],
        ),
        ("cycle.xml", vec!["cycle", "parentOrgUnit"]),
    ] {
        let mut w = World::new(&[DAY1]);
        w.import();
        let before = w.dump();
        let rows = w.rows();
        std::fs::copy(fixtures().join("err").join(file), w.dumps.join(DAY2)).unwrap();
        let err = w.import_err();
        for n in &needles {
            assert!(err.contains(n), "{file}: {n:?} not in {err}");
        }
        // file:line[:column]: like a compiler.
        let at = err
            .find(&format!("{DAY2}:"))
            .unwrap_or_else(|| panic!("{file}: no file:line in {err}"));
        let rest = &err[at + DAY2.len() + 1..];
        assert!(
            rest.starts_with(|c: char| c.is_ascii_digit()),
            "{file}: no line number in {err}"
        );
        assert!(
            !err.contains("0101010000") && !err.contains("0301010000"),
            "{file}: CPR in {err}"
        );
        assert_eq!(w.dump(), before, "{file}: nothing written");
        assert_eq!(
            w.rows(),
            rows,
            "{file}: the run history did not advance and is not blocked"
        );
        // Fixed: the same run now imports the dump.
        w.add(
            DAY2,
            &std::fs::read_to_string(fixtures().join("ok").join(DAY2)).unwrap(),
        );
        assert_eq!(w.import().dumps.len(), 1, "{file}");
    }
}

impl World {
    fn import_err(&mut self) -> String {
        self.run(Mode::All, false).unwrap_err().to_string()
    }
}

#[test]
fn a_running_row_blocks_until_unblocked() {
    let mut w = World::new(&[DAY1, DAY2]);
    w.run(Mode::Next, false).unwrap();
    let db = RunDb::open(&w.run_db).unwrap();
    db.begin(
        date(2020, 1, 2).at(22, 0, 0, 0),
        date(2026, 1, 1).at(0, 0, 0, 0),
    )
    .unwrap();
    let err = w.import_err();
    assert!(
        err.contains("did not finish") && err.contains("dipex opus unblock"),
        "{err}"
    );
    assert_eq!(db.unblock().unwrap(), "Deleted last row");
    assert_eq!(w.import().dumps.len(), 1);
}

#[test]
fn modes_next_and_last() {
    let mut w = World::new(&[DAY1, DAY2]);
    assert_eq!(w.run(Mode::Next, false).unwrap().dumps[0].name, DAY1);
    assert_eq!(w.run(Mode::Next, false).unwrap().dumps[0].name, DAY2);
    assert!(w.run(Mode::Next, false).unwrap().dumps.is_empty());
    let mut w = World::new(&[DAY1, DAY2]);
    let r = w.run(Mode::Last, false).unwrap();
    assert_eq!(
        r.dumps.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        [DAY2]
    );
}

#[test]
fn old_dumps_may_be_deleted_and_python_history_is_read() {
    // Digests live in the state database: day 1's file can go before day 2 is imported.
    let mut w = World::new(&[DAY1]);
    w.import();
    std::fs::remove_file(w.dumps.join(DAY1)).unwrap();
    w.add(
        DAY2,
        &std::fs::read_to_string(fixtures().join("ok").join(DAY2)).unwrap(),
    );
    let r = w.import();
    assert_eq!(
        r.dumps[0].changes.cancelled,
        ["1006"],
        "vanished records are still found"
    );
    // A run_db written by the old importer (no digests): the previous dump is parsed instead.
    let mut w = World::new(&[DAY1, DAY2]);
    {
        let c = rusqlite::Connection::open(&w.run_db).unwrap();
        c.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, dump_date timestamp, status text);
             INSERT INTO runs (dump_date, status) VALUES ('2020-01-01 22:00:00', 'Running diff update since 2020-01-02 08:00:00.5');
             INSERT INTO runs (dump_date, status) VALUES ('2020-01-01 22:00:00', 'Diff update ended: 2020-01-02 08:01:00.25');",
        )
        .unwrap();
    }
    let r = w.import();
    assert_eq!(r.dumps.len(), 1);
    assert_eq!(
        r.dumps[0].changes.employees,
        ["1000", "1001"],
        "compared with day 1, not with nothing"
    );
}

#[test]
fn cpr_map_gives_new_persons_their_uuid_and_export_round_trips() {
    let mut w = World::new(&[DAY1]);
    let fixed = Uuid::parse_str("11111111-2222-3333-4444-555555555555").unwrap();
    w.cpr_map.insert(Cpr::parse("0301010000").unwrap(), fixed);
    w.import();
    let e = w.one(Kind::Engagement, "1001");
    let Value::Engagement(x) = &e.last().value else {
        panic!()
    };
    assert_eq!(x.person, fixed);
    let mut out = Vec::new();
    let n = cprmap::write_cpr_map(&persons(&w.store).unwrap(), &mut out, "map.csv").unwrap();
    assert_eq!(n, 3);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("\"cpr\";\"mo_uuid\";\"ad_guid\";\"sam_account_name\"\n"),
        "{text}"
    );
    let back = cprmap::read_cpr_map(text.as_bytes(), "map.csv").unwrap();
    assert_eq!(back[&Cpr::parse("0301010000").unwrap()], fixed);
    assert_eq!(back.len(), 3);
}

#[test]
fn primary_follows_the_configured_type_order() {
    let mut w = World::new(&[DAY1]);
    w.cfg.primary_order = vec!["Annulleret".into(), "Ansat".into()];
    w.import();
    let e1006 = w.one(Kind::Engagement, "1006");
    let Value::Engagement(x) = &e1006.last().value else {
        panic!()
    };
    assert_eq!(
        w.class(x.primary.unwrap()),
        "primary",
        "its type ranks first"
    );
}

#[test]
fn reimport_replays_one_employment() {
    let mut w = World::new(&[DAY1, DAY2]);
    let dumps = w.list();
    let job = Job {
        cfg: &w.cfg,
        register: &w.register,
        cpr_map: &w.cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let r = run::reimport(
        &mut w.store,
        &job,
        &mut w.env,
        &dumps,
        "1000",
        date(2019, 1, 1).at(0, 0, 0, 0),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.dumps.len(), 2);
    let engagements = w.all(Kind::Engagement);
    assert_eq!(
        engagements.len(),
        2,
        "1000 plus its sibling 1006 of the same person"
    );
    assert_eq!(
        w.one(Kind::Engagement, "1000").slices.len(),
        2,
        "both versions of 1000 replayed"
    );
    assert_eq!(w.all(Kind::OrgUnit).len(), 0, "units are not touched");
    assert!(!w.run_db.exists(), "the run history is not touched");
    let err = run::reimport(
        &mut w.store,
        &job,
        &mut w.env,
        &dumps,
        "4242",
        date(2019, 1, 1).at(0, 0, 0, 0),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("4242"), "{err}");
}

// --- The upstream acceptance checklist (specs/opus.md §18), as real assertions. ---

fn parsed(name: &str) -> dipex_integrations::opus::parse::Dump {
    parse_file(&fixtures().join("ok").join(name)).unwrap()
}

fn digests(d: &dipex_integrations::opus::parse::Dump) -> dipex_integrations::opus::state::Digests {
    dipex_integrations::opus::state::Digests {
        units: d.units.iter().map(|u| (u.id.clone(), u.digest)).collect(),
        employees: d
            .employees
            .iter()
            .map(|e| (e.id.clone(), (e.digest, e.is_leave_marker())))
            .collect(),
    }
}

#[test]
fn checklist_diffs_filters_and_counts() {
    let (d1, d2) = (parsed(DAY1), parsed(DAY2));
    let (t1, t2) = (
        Tree::check(&d1, DAY1).unwrap(),
        Tree::check(&d2, DAY2).unwrap(),
    );
    // 2. A dump compared with itself: nothing changed.
    for (d, t) in [(&d1, &t1), (&d2, &t2)] {
        let c = diff::changes(d, t, Some(&digests(d)), &[], None);
        assert!(
            c.units.is_empty()
                && c.employees.is_empty()
                && c.leaves.is_empty()
                && c.cancelled.is_empty()
        );
    }
    // 3, 9, 13. Day 1 → day 2.
    let c = diff::changes(&d2, &t2, Some(&digests(&d1)), &[], None);
    assert_eq!(c.units.len(), 4);
    assert_eq!(c.employees.len(), 2);
    assert_eq!(c.leaves.len(), 1);
    assert_eq!(c.cancelled.len(), 1);
    // 4. Parsing gives units and employees.
    assert!(!d1.units.is_empty() && !d1.employees.is_empty());
    // 5. Filtered unit sets.
    let ids = |t: &Tree<'_>, f: &[&str]| {
        let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        let mut v: Vec<String> = t.filtered(&f).into_iter().map(str::to_string).collect();
        v.sort();
        v
    };
    assert!(ids(&t1, &[]).is_empty() && ids(&t2, &[]).is_empty());
    assert_eq!(ids(&t1, &["1"]), ["1", "2", "3"]);
    assert_eq!(ids(&t2, &["1"]), ["1", "2", "3", "4", "5"]);
    assert_eq!(ids(&t2, &["2"]), ["2"], "unit 3 moved under 1");
    // 6. Leave markers on a full read.
    assert_eq!(diff::changes(&d1, &t1, None, &[], None).leaves.len(), 1);
    assert_eq!(diff::changes(&d2, &t2, None, &[], None).leaves.len(), 2);
    // 7. Counts of a full read of day 1 with and without filters and a single id.
    let count = |f: &[&str], only: Option<&str>| {
        let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        let c = diff::changes(&d1, &t1, None, &f, only);
        (
            c.units.len(),
            c.filtered_units.len(),
            c.employees.len(),
            c.leaves.len(),
            c.cancelled.len(),
        )
    };
    assert_eq!(count(&[], None), (3, 0, 4, 1, 0));
    assert_eq!(count(&["1"], None).0, 0);
    assert_eq!(count(&["1"], None).1, 3);
    assert_eq!(count(&[], Some("1")), (1, 0, 0, 0, 0));
    // 8. Only the parent of the third unit changed: exactly that unit.
    let text = std::fs::read_to_string(fixtures().join("ok").join(DAY1)).unwrap();
    let moved = text.replacen(
        "<parentOrgUnit>2</parentOrgUnit>",
        "<parentOrgUnit>1</parentOrgUnit>",
        1,
    );
    let d = dipex_integrations::opus::parse::parse_dump(moved.as_bytes(), "moved.xml").unwrap();
    let t = Tree::check(&d, "moved.xml").unwrap();
    assert_eq!(
        diff::changes(&d, &t, Some(&digests(&d1)), &[], None).units,
        ["3"]
    );
    // 35. lastChanged alone is not a change.
    let touched = text
        .replace("lastChanged=\"2020-10-01\"", "lastChanged=\"2021-12-24\"")
        .replace("<numerator>30</numerator>", "<numerator>20</numerator>");
    let d = dipex_integrations::opus::parse::parse_dump(touched.as_bytes(), "t.xml").unwrap();
    let t = Tree::check(&d, "t.xml").unwrap();
    let c = diff::changes(&d, &t, Some(&digests(&d1)), &[], None);
    assert!(
        c.employees.is_empty(),
        "lastChanged and numerator do not count: {c:?}"
    );
}

#[test]
fn effective_dates_and_inclusive_ends() {
    // The validity rules in one place: entryDate starts, leaveDate is the last day.
    let mut w = World::new(&[DAY1]);
    let text = std::fs::read_to_string(fixtures().join("ok").join(DAY1))
        .unwrap()
        .replacen(
            "<leaveDate></leaveDate>",
            "<leaveDate>2024-06-30</leaveDate>",
            1,
        );
    std::fs::write(w.dumps.join(DAY1), text).unwrap();
    w.import();
    let e = w.one(Kind::Engagement, "1001");
    assert_eq!(v(&e), [(Some(date(2019, 5, 1)), Some(date(2024, 7, 1)))]);
    assert_eq!(
        Validity::new(Some(date(2019, 5, 1)), Some(date(2024, 7, 1))).last_day(),
        Some(date(2024, 6, 30))
    );
}

/// Day 1 imported, then day 2 = day 1 with `edit` applied to its text.
fn day1_then(edit: impl Fn(String) -> String) -> (World, ImportReport) {
    let mut w = World::new(&[DAY1]);
    w.import();
    let day1 = std::fs::read_to_string(fixtures().join("ok").join(DAY1)).unwrap();
    let day2 = edit(day1.clone());
    assert_ne!(day1, day2, "the edit changed nothing");
    w.add(DAY2, &day2);
    let r = w.import();
    (w, r)
}

/// The text of one `<employee id=..>` record in a dump.
fn record(text: &str, id: &str) -> (usize, usize) {
    let start = text.find(&format!("<employee id=\"{id}\"")).unwrap();
    let end = text[start..].find("</employee>").unwrap() + start + "</employee>".len();
    (start, end)
}

fn edit_record(text: String, id: &str, f: impl Fn(&str) -> String) -> String {
    let (a, b) = record(&text, id);
    format!("{}{}{}", &text[..a], f(&text[a..b]), &text[b..])
}

/// Validity bounds of an object's slices.
type Spans = Vec<(Option<Date>, Option<Date>)>;

fn it_users(w: &World) -> Vec<(String, Spans)> {
    let mut v: Vec<_> = w
        .all(Kind::ItUser)
        .iter()
        .map(|o| (o.last().value.user_key().to_string(), v(o)))
        .collect();
    v.sort();
    v
}

#[test]
fn it_users_follow_user_id_changes() {
    // Renamed: the old account ends at the change, the new one starts there (lastChanged
    // 2020-10-01 is after the dump date 2020-01-02, so the change is effective on the dump date).
    let (w, _) = day1_then(|t| edit_record(t, "1000", |r| r.replace("AOE1000", "AOE2000")));
    let users = it_users(&w);
    assert!(
        users.contains(&(
            "AOE1000".into(),
            vec![(Some(date(2020, 1, 1)), Some(date(2020, 1, 2)))]
        )),
        "{users:?}"
    );
    assert!(
        users.contains(&("AOE2000".into(), vec![(Some(date(2020, 1, 2)), None)])),
        "{users:?}"
    );
    // Removed: the account ends.
    let (w, _) =
        day1_then(|t| edit_record(t, "1002", |r| r.replace("<userId>CDA1002</userId>", "")));
    let users = it_users(&w);
    assert!(
        users.contains(&(
            "CDA1002".into(),
            vec![(Some(date(2020, 1, 1)), Some(date(2020, 1, 2)))]
        )),
        "{users:?}"
    );
}

#[test]
fn manager_ends_when_is_manager_turns_false() {
    let (w, _) = day1_then(|t| {
        edit_record(t, "1000", |r| {
            r.replace(
                "<isManager>true</isManager>",
                "<isManager>false</isManager>",
            )
        })
    });
    let m = w.one(Kind::Manager, "1000");
    assert_eq!(
        v(&m),
        [(Some(date(2019, 5, 1)), Some(date(2020, 1, 2)))],
        "ended from the change"
    );
    // The manager's level change cuts its history at the change.
    let (w, _) = day1_then(|t| {
        edit_record(t, "1000", |r| {
            r.replace(
                "<subordinateLevel>02</subordinateLevel>",
                "<subordinateLevel>03</subordinateLevel>",
            )
        })
    });
    let m = w.one(Kind::Manager, "1000");
    let levels: Vec<String> = m
        .slices
        .iter()
        .map(|s| match &s.value {
            Value::Manager(x) => w.class(x.manager_level),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(levels, ["1.02", "1.03"]);
}

#[test]
fn entry_date_moves_earlier_and_later() {
    // Earlier: the engagement now starts at the new date (history extended, not cut).
    let (w, _) = day1_then(|t| {
        edit_record(t, "1001", |r| {
            r.replace(
                "<entryDate>2019-05-01</entryDate>",
                "<entryDate>2010-03-11</entryDate>",
            )
        })
    });
    assert_eq!(
        v(&w.one(Kind::Engagement, "1001")),
        [(Some(date(2010, 3, 11)), None)]
    );
    // Later: the days before the new start are no longer part of the engagement.
    let (w, _) = day1_then(|t| {
        edit_record(t, "1001", |r| {
            r.replace(
                "<entryDate>2019-05-01</entryDate>",
                "<entryDate>2020-03-11</entryDate>",
            )
        })
    });
    assert_eq!(
        v(&w.one(Kind::Engagement, "1001")),
        [(Some(date(2020, 3, 11)), None)]
    );
    // Nothing else of 1001 changed, so nothing else was written for it: one slice each.
    let e = w.one(Kind::Engagement, "1001");
    assert_eq!(e.slices.len(), 1);
}

#[test]
fn empty_entry_date_falls_back_to_last_changed_with_a_warning() {
    let mut w = World::new(&[]);
    let day1 = std::fs::read_to_string(fixtures().join("ok").join(DAY1)).unwrap();
    w.add(
        DAY1,
        &edit_record(day1, "1001", |r| {
            r.replace("<entryDate>2019-05-01</entryDate>", "<entryDate/>")
        }),
    );
    let r = w.import();
    assert_eq!(
        v(&w.one(Kind::Engagement, "1001")),
        [(Some(date(2020, 1, 19)), None)]
    );
    let warnings: Vec<String> = r.dumps[0].warnings.iter().map(|n| n.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("employee id=\"1001\"") && w.contains("entryDate")),
        "{warnings:?}"
    );
}

#[test]
fn a_dar_miss_keeps_the_old_address_and_warns() {
    let (w, r) = day1_then(|t| {
        edit_record(t, "1000", |r| {
            r.replace(
                "<address>Østergade 10</address>",
                "<address>Ukendtvej 99</address>",
            )
        })
    });
    let e = w.one(Kind::Engagement, "1000");
    let Value::Engagement(x) = &e.last().value else {
        panic!()
    };
    let addrs = w
        .store
        .read(&Query::all(Kind::Address).persons([x.person]))
        .unwrap();
    let dar: Vec<&Object> = addrs.iter().filter(|o| matches!(&o.last().value, Value::Address(a) if w.class(a.address_type) == "Adresse")).collect();
    assert_eq!(dar.len(), 1);
    assert_eq!(
        v(dar[0]),
        [(Some(date(2020, 1, 1)), None)],
        "left as it was"
    );
    let warnings: Vec<String> = r.dumps[0].warnings.iter().map(|n| n.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("employee id=\"1000\"") && w.contains("no unambiguous DAR match")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("Ukendtvej")),
        "home addresses are not logged: {warnings:?}"
    );
}

#[test]
fn visibility_class_and_unit_user_key_setting() {
    let mut w = World::new(&[DAY1]);
    w.cfg.unit_user_key = "shortName".into();
    w.import();
    let vis = w
        .all(Kind::Class)
        .into_iter()
        .find_map(|c| match c.last().value.clone() {
            Value::Class(c) if c.user_key == "Intern" => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (vis.name.as_str(), vis.scope.as_deref()),
        ("Må vises internt", Some("INTERNAL"))
    );
    let g = w.cfg.uuids;
    let root = &w
        .store
        .read(&Query::all(Kind::OrgUnit).uuids([unit(&g, "1")]))
        .unwrap()[0];
    assert_eq!(root.last().value.user_key(), "AND.K");
    // A unit without the named field stops the run, naming unit, line and setting.
    let mut w = World::new(&[DAY1]);
    w.cfg.unit_user_key = "costCenter".into();
    let err = w.import_err();
    assert!(
        err.contains("orgUnit id=\"1\"")
            && err.contains("integrations.opus.unit_user_key")
            && err.contains(&format!("{DAY1}:4")),
        "{err}"
    );
    assert!(w.dump().is_empty());
}
