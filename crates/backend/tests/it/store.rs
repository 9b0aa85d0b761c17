//! End-to-end tests of the embedded store through the `Backend` trait: reads by every filter and
//! window, atomic plans, bitemporal history, and reconcile idempotence against real SQLite.

use dipex_backend::{Backend, Query, Registration, Store, Window};
use dipex_model::{
    Cpr, Engagement, Fact, Kind, Object, Op, OrgUnit, Person, Plan, Slice, Validity, Value,
    reconcile,
};
use jiff::civil::{Date, date};
use proptest::prelude::*;
use std::collections::HashMap;
use uuid::Uuid;

fn reg() -> Registration {
    Registration {
        at: jiff::Timestamp::UNIX_EPOCH,
        actor: "test".into(),
        note: "test".into(),
    }
}
fn u(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}
fn unit(name: &str, parent: Option<Uuid>) -> Value {
    Value::OrgUnit(OrgUnit {
        user_key: name.to_lowercase(),
        name: name.into(),
        parent,
        unit_type: None,
        unit_level: None,
        unit_hierarchy: None,
        time_planning: None,
    })
}
fn person(cpr: &str) -> Value {
    Value::Person(Person {
        user_key: "p".into(),
        given_name: "Anna".into(),
        surname: "Testesen".into(),
        nickname_given_name: None,
        nickname_surname: None,
        cpr_number: Some(Cpr::parse(cpr).unwrap()),
        seniority: None,
    })
}
fn engagement(key: &str, person: Uuid, org_unit: Uuid) -> Value {
    Value::Engagement(Engagement {
        user_key: key.into(),
        person,
        org_unit,
        job_function: u(90),
        engagement_type: u(91),
        primary: None,
        fraction: None,
        extensions: Box::default(),
    })
}
fn create(uuid: Uuid, from: Date, value: Value) -> Op {
    Op::Create {
        uuid,
        validity: Validity::from_day(from),
        value,
    }
}

fn sample() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let plan = Plan {
        ops: vec![
            create(u(1), date(2020, 1, 1), unit("Root", None)),
            create(u(2), date(2020, 1, 1), unit("Child", Some(u(1)))),
            create(u(3), date(2020, 1, 1), person("0101700000")),
            create(u(4), date(2021, 1, 1), engagement("1000", u(3), u(2))),
            Op::Update {
                uuid: u(2),
                validity: Validity::from_day(date(2022, 1, 1)),
                value: unit("Renamed", Some(u(1))),
            },
            Op::Terminate {
                uuid: u(4),
                kind: Kind::Engagement,
                range: Validity::from_day(date(2023, 1, 1)),
            },
        ],
    };
    s.apply(plan, &reg()).unwrap();
    s
}

fn uuids(objs: &[Object]) -> Vec<Uuid> {
    objs.iter().map(|o| o.uuid).collect()
}

#[test]
fn reads_by_every_filter() {
    let s = sample();
    assert_eq!(
        uuids(&s.read(&Query::all(Kind::OrgUnit)).unwrap()),
        vec![u(1), u(2)]
    );
    assert_eq!(
        uuids(&s.read(&Query::all(Kind::OrgUnit).uuids([u(2)])).unwrap()),
        vec![u(2)]
    );
    assert_eq!(
        uuids(
            &s.read(&Query::all(Kind::OrgUnit).user_keys(["root"]))
                .unwrap()
        ),
        vec![u(1)]
    );
    assert_eq!(
        uuids(&s.read(&Query::all(Kind::OrgUnit).parents([None])).unwrap()),
        vec![u(1)]
    );
    assert_eq!(
        uuids(
            &s.read(&Query::all(Kind::OrgUnit).parents([Some(u(1))]))
                .unwrap()
        ),
        vec![u(2)]
    );
    let cpr = Cpr::parse("0101700000").unwrap();
    assert_eq!(
        uuids(
            &s.read(&Query::all(Kind::Person).cpr_numbers([cpr]))
                .unwrap()
        ),
        vec![u(3)]
    );
    assert_eq!(
        uuids(
            &s.read(&Query::all(Kind::Engagement).persons([u(3)]))
                .unwrap()
        ),
        vec![u(4)]
    );
    assert_eq!(
        uuids(
            &s.read(&Query::all(Kind::Engagement).org_units([u(2)]))
                .unwrap()
        ),
        vec![u(4)]
    );
    assert!(
        s.read(&Query::all(Kind::Engagement).org_units([u(1)]))
            .unwrap()
            .is_empty()
    );
    assert!(
        s.read(&Query::all(Kind::Engagement).org_units([]))
            .unwrap()
            .is_empty(),
        "empty list matches nothing"
    );
}

#[test]
fn windows_select_slices() {
    let s = sample();
    let child = Query::all(Kind::OrgUnit).uuids([u(2)]);
    let all = s.read(&child).unwrap();
    assert_eq!(all[0].slices.len(), 2, "rename cut the history in two");
    let at = s.read(&child.clone().at(date(2021, 6, 1))).unwrap();
    assert_eq!(at[0].slices.len(), 1);
    assert!(matches!(&at[0].slices[0].value, Value::OrgUnit(o) if o.name == "Child"));
    let later = s.read(&child.clone().at(date(2022, 1, 1))).unwrap();
    assert!(matches!(&later[0].slices[0].value, Value::OrgUnit(o) if o.name == "Renamed"));
    // The engagement ends 2023-01-01 (exclusive): found the day before, not on the day.
    let eng = Query::all(Kind::Engagement);
    assert_eq!(
        s.read(&eng.clone().at(date(2022, 12, 31))).unwrap().len(),
        1
    );
    assert!(
        s.read(&eng.clone().at(date(2023, 1, 1)))
            .unwrap()
            .is_empty()
    );
    let w = Window::Range(Validity::new(
        Some(date(2019, 1, 1)),
        Some(date(2021, 1, 1)),
    ));
    assert!(
        s.read(&eng.clone().window(w)).unwrap().is_empty(),
        "to is exclusive on reads too"
    );
    // A filter on a value that only held in the past matches only in a window covering it.
    assert!(
        s.read(&child.clone().user_keys(["child"]).at(date(2024, 1, 1)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.read(&child.user_keys(["child"])).unwrap()[0].slices.len(),
        2
    );
}

#[test]
fn a_failing_plan_writes_nothing() {
    let mut s = sample();
    let before = s.read(&Query::all(Kind::OrgUnit)).unwrap();
    let plan = Plan {
        ops: vec![
            Op::Update {
                uuid: u(1),
                validity: Validity::from_day(date(2024, 1, 1)),
                value: unit("New", None),
            },
            create(u(2), date(2020, 1, 1), unit("Dup", None)), // exists: fails
        ],
    };
    let err = s.apply(plan, &reg()).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(s.read(&Query::all(Kind::OrgUnit)).unwrap(), before);
}

#[test]
fn history_of_writes_is_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    {
        let mut s = Store::open(&path).unwrap();
        s.apply(
            Plan {
                ops: vec![create(u(1), date(2020, 1, 1), unit("A", None))],
            },
            &reg(),
        )
        .unwrap();
        let upd = Op::Update {
            uuid: u(1),
            validity: Validity::from_day(date(2021, 1, 1)),
            value: unit("B", None),
        };
        s.apply(Plan { ops: vec![upd] }, &reg()).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.read(&Query::all(Kind::OrgUnit)).unwrap()[0].slices.len(),
        2
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let closed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM slice WHERE reg_to IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let regs: i64 = conn
        .query_row("SELECT COUNT(*) FROM registration", [], |r| r.get(0))
        .unwrap();
    assert_eq!((closed, regs), (1, 2));
    assert_eq!(s.counts().unwrap().get(&Kind::OrgUnit), Some(&1));
}

fn day(n: i32) -> Date {
    date(2020, 1, 1)
        .checked_add(jiff::Span::new().days(n))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Reconcile → apply to SQLite → reconcile again gives an empty plan.
    #[test]
    fn reconcile_apply_reconcile_is_empty(
        steps in proptest::collection::vec(
            proptest::collection::vec((0u8..4, -10i32..10, proptest::option::of(1i32..20), proptest::option::of(-10i32..30), 0u8..3, 0u8..5), 1..6),
            1..4)
    ) {
        let mut s = Store::open_in_memory().unwrap();
        for step in steps {
            let facts: Vec<Fact> = step.iter().map(|&(id, from, len, eff, name, what)| match what {
                0 => Fact::End { uuid: u(id), kind: Kind::OrgUnit, at: day(from) },
                1 => Fact::Delete { uuid: u(id), kind: Kind::OrgUnit },
                _ => Fact::state(u(id), unit(&format!("U{name}"), None),
                                 Validity::new(Some(day(from)), len.map(|l| day(from + l))), eff.map(day)),
            }).collect();
            let current: HashMap<Uuid, Object> = s.read(&Query::all(Kind::OrgUnit)).unwrap()
                .into_iter().map(|o| (o.uuid, o)).collect();
            let plan = reconcile(facts.clone(), &current);
            s.apply(plan, &reg()).unwrap();
            let mut last: HashMap<Uuid, Fact> = HashMap::new();
            for f in facts { last.insert(f.uuid(), f); }
            let current: HashMap<Uuid, Object> = s.read(&Query::all(Kind::OrgUnit)).unwrap()
                .into_iter().map(|o| (o.uuid, o)).collect();
            for o in current.values() { o.check().unwrap(); }
            let again = reconcile(last.into_values().collect::<Vec<_>>(), &current);
            prop_assert!(again.is_empty(), "{:?}", again.ops);
        }
    }
}

#[test]
fn dump_line_is_stable() {
    let s = sample();
    let o = &s.read(&Query::all(Kind::OrgUnit).uuids([u(2)])).unwrap()[0];
    let line = o.to_dump_json().to_string();
    assert_eq!(
        line,
        r#"{"type":"org_unit","uuid":"02020202-0202-0202-0202-020202020202","validities":[{"from":"2020-01-01","name":"Child","parent":"01010101-0101-0101-0101-010101010101","to":"2022-01-01","user_key":"child"},{"from":"2022-01-01","name":"Renamed","parent":"01010101-0101-0101-0101-010101010101","to":null,"user_key":"renamed"}]}"#
    );
    let _ = Slice::new(Validity::ALWAYS, unit("x", None));
}
