//! Contract test: every GraphQL document the OS2mo client can send, with the variables it sends,
//! validates against the schema a real OS2mo v30 serves. The schema file is named by
//! `DIPEX_OS2MO_SCHEMA` (`.ci/run` points it at `../shared/os2mo/schema-v30.graphql`); without
//! it the test says so and passes.

use dipex_backend::os2mo::{kinds, read, write};
use dipex_backend::{Query, Window};
use dipex_model::{
    Address, Association, Class, Cpr, Engagement, Extensions, Facet, ItSystem, ItUser, Kind, Kle,
    Leave, Manager, OrgUnit, Person, Role, Validity, Value,
};
use serde_json::json;
use uuid::Uuid;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(0x5000 + n)
}

/// One value of every kind dipex writes, with every optional field set.
fn values() -> Vec<Value> {
    vec![
        Value::Facet(Facet {
            user_key: "org_unit_type".into(),
        }),
        Value::Class(Class {
            user_key: "k".into(),
            name: "K".into(),
            facet: u(1),
            scope: Some("TEXT".into()),
            parent: Some(u(2)),
            owner: Some(u(3)),
        }),
        Value::ItSystem(ItSystem {
            user_key: "AD".into(),
            name: "Active Directory".into(),
        }),
        Value::OrgUnit(OrgUnit {
            user_key: "u".into(),
            name: "U".into(),
            parent: Some(u(4)),
            unit_type: Some(u(5)),
            unit_level: Some(u(6)),
            unit_hierarchy: Some(u(7)),
            time_planning: Some(u(8)),
        }),
        Value::OrgUnit(OrgUnit {
            user_key: "top".into(),
            name: "Top".into(),
            parent: None,
            unit_type: Some(u(5)),
            unit_level: None,
            unit_hierarchy: None,
            time_planning: None,
        }),
        Value::Person(Person {
            user_key: "p".into(),
            given_name: "Anna".into(),
            surname: "Testesen".into(),
            nickname_given_name: Some("A".into()),
            nickname_surname: Some("T".into()),
            cpr_number: Some(Cpr::parse("0101700000").unwrap()),
            seniority: Some(jiff::civil::date(2000, 1, 1)),
        }),
        Value::Engagement(Engagement {
            user_key: "1".into(),
            person: u(9),
            org_unit: u(10),
            job_function: u(11),
            engagement_type: u(12),
            primary: Some(u(13)),
            fraction: Some(500_000),
            extensions: Box::new(Extensions {
                extension_1: Some("x".into()),
                ..Extensions::default()
            }),
        }),
        Value::Address(Address {
            user_key: "a".into(),
            value: "a@example.org".into(),
            address_type: u(14),
            visibility: Some(u(15)),
            person: Some(u(9)),
            org_unit: None,
            engagement: Some(u(16)),
            ituser: Some(u(17)),
        }),
        Value::ItUser(ItUser {
            user_key: "anna".into(),
            itsystem: u(18),
            person: Some(u(9)),
            org_unit: None,
            external_id: Some("x".into()),
            engagements: vec![u(16)],
            primary: Some(u(13)),
        }),
        Value::Manager(Manager {
            user_key: "m".into(),
            org_unit: u(10),
            person: None,
            engagement: None,
            manager_type: u(19),
            manager_level: u(20),
            responsibilities: vec![u(21)],
        }),
        Value::Role(Role {
            user_key: "r".into(),
            person: u(9),
            org_unit: u(10),
            role_type: u(22),
        }),
        Value::Association(Association {
            user_key: "as".into(),
            person: u(9),
            org_unit: u(10),
            association_type: u(23),
            primary: Some(u(13)),
            substitute: Some(u(24)),
            job_function: None,
            it_user: None,
            it_association: false,
        }),
        Value::Association(Association {
            user_key: "ita".into(),
            person: u(9),
            org_unit: u(10),
            association_type: Uuid::nil(),
            primary: None,
            substitute: None,
            job_function: Some(u(11)),
            it_user: Some(u(17)),
            it_association: true,
        }),
        Value::Leave(Leave {
            user_key: "l".into(),
            person: u(9),
            engagement: u(16),
            leave_type: u(25),
        }),
        Value::Kle(Kle {
            user_key: "kle".into(),
            org_unit: u(10),
            kle_number: u(26),
            kle_aspects: vec![u(27)],
        }),
    ]
}

/// Every read: each kind with every filter it supports and every window.
fn read_requests() -> Vec<(String, serde_json::Value)> {
    let d = jiff::civil::date(2024, 1, 1);
    let windows = [
        Window::All,
        Window::At(d),
        Window::Range(Validity::new(Some(d), None)),
        Window::Range(Validity::new(None, Some(d))),
        Window::Range(Validity::new(Some(d), Some(jiff::civil::date(2025, 1, 1)))),
    ];
    let cpr = Cpr::parse("0101700000").unwrap();
    let mut out = vec![
        (read::ORG_DOCUMENT.to_string(), json!({})),
        // The exporters' address texts (`Address.resolve`).
        (
            dipex_backend::os2mo::resolve::DOCUMENT.to_string(),
            json!({"filter": {"address_type": {"scope": ["DAR"]}}, "limit": 500, "cursor": null}),
        ),
    ];
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Organisation) {
        let queries = [
            Query::all(kind),
            Query::all(kind).uuids([u(1)]).user_keys(["x"]),
            Query::all(kind).cpr_numbers([cpr.clone()]),
            Query::all(kind).parents([None, Some(u(1))]),
            Query::all(kind).persons([u(1)]).org_units([u(2)]),
            Query::all(kind).itsystems([u(3)]),
        ];
        for q in queries {
            for w in windows {
                for f in read::filters(&q.clone().window(w)).unwrap_or_default() {
                    let vars = json!({"filter": f, "limit": 500, "cursor": null});
                    out.push((read::read_document(kind).unwrap(), vars.clone()));
                    out.push((read::uuids_document(kind).unwrap(), vars));
                }
            }
        }
    }
    // `mo pull`'s listing of open registrations.
    let vars = json!({"filter": {"models": ["employee", "org_unit"], "start": read::OPEN_REGISTRATION}, "limit": 5000, "cursor": "abc"});
    out.push((read::REGISTRATIONS_DOCUMENT.to_string(), vars));
    out
}

/// Every write: each value created, updated (open and closed), ended (from a day and as a gap)
/// and deleted, all in one batch as the client sends them.
fn write_request() -> (String, serde_json::Value) {
    let d = |y| Some(jiff::civil::date(y, 1, 1));
    let mut muts = vec![];
    for (i, v) in values().into_iter().enumerate() {
        let uuid = u(100 + i as u128);
        let from = if kinds::open_from(v.kind()) {
            None
        } else {
            d(2020)
        };
        muts.push(
            write::create_mutation(uuid, &Validity::new(from, None), &v, "c".into()).unwrap(),
        );
        for to in [None, d(2026)] {
            let fields = kinds::encode(&v, kinds::Mode::Update).unwrap();
            let validity = Validity::new(d(2021), to);
            muts.push(write::update_mutation(uuid, &validity, &v, fields, "u".into()).unwrap());
        }
        if v.kind() != Kind::Person {
            for to in [None, d(2026)] {
                muts.push(
                    write::terminate_mutation(uuid, &v, &Validity::new(d(2025), to), "t".into())
                        .unwrap(),
                );
            }
        }
        muts.push(write::delete_mutation(uuid, &v, "d".into()).unwrap());
    }
    (write::batch_document(&muts), write::batch_variables(&muts))
}

#[test]
fn every_document_validates_against_the_v30_schema() {
    let Some(path) = std::env::var_os("DIPEX_OS2MO_SCHEMA") else {
        dipex_testkit::skip(
            "the OS2mo contract test needs DIPEX_OS2MO_SCHEMA=<path to OS2mo's schema.graphql> \
             (.ci/run sets it to ../shared/os2mo/schema-v30.graphql)",
        );
        return;
    };
    let schema = dipex_testkit::os2mo::load_schema(std::path::Path::new(&path)).unwrap();
    let mut requests = read_requests();
    requests.push(write_request());
    assert!(requests.len() > 300, "{}", requests.len());
    let mut failures = vec![];
    for (doc, vars) in &requests {
        if let Err(errors) = dipex_testkit::os2mo::validate_request(&schema, doc, vars) {
            failures.push(format!(
                "{doc}\n  variables {vars}\n  {}",
                errors.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests do not validate:\n{}",
        failures.len(),
        requests.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_schema_check_itself_catches_mistakes() {
    let Some(path) = std::env::var_os("DIPEX_OS2MO_SCHEMA") else {
        dipex_testkit::skip("needs DIPEX_OS2MO_SCHEMA");
        return;
    };
    let schema = dipex_testkit::os2mo::load_schema(std::path::Path::new(&path)).unwrap();
    let bad_limit = "query Q($limit: Int) { org_units(limit: $limit) { objects { uuid } } }";
    assert!(
        dipex_testkit::os2mo::validate_request(&schema, bad_limit, &json!({"limit": 1})).is_err()
    );
    let (doc, mut vars) = write_request();
    vars["v0"]["no_such_field"] = json!(1);
    assert!(dipex_testkit::os2mo::validate_request(&schema, &doc, &vars).is_err());
}
