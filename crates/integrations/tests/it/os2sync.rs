//! The OS2Sync export end to end: MO in a real embedded store, the exporter over HTTP against
//! the loopback OS2Sync server (which enforces the API's rules), the hash cache in a real file.

use dipex_backend::{Backend, Query, Registration, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::os2sync::Config;
use dipex_integrations::os2sync::run::{self, Report};
use dipex_integrations::settings::Settings;
use dipex_model::{
    Address, Class, Cpr, Engagement, Facet, Kind, Op, OrgUnit, Person, Plan, Validity, Value,
};
use dipex_testkit::os2sync::{Options, Os2SyncServer};
use jiff::civil::date;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(0xd000 + n)
}
fn reg() -> Registration {
    Registration {
        at: jiff::Timestamp::UNIX_EPOCH,
        actor: "test".into(),
        note: "test".into(),
    }
}
fn create(n: u128, value: Value) -> Op {
    Op::Create {
        uuid: u(n),
        validity: Validity::new(Some(date(2020, 1, 1)), None),
        value,
    }
}
fn class(key: &str, facet: u128, scope: Option<&str>) -> Value {
    Value::Class(Class {
        user_key: key.into(),
        name: key.into(),
        facet: u(facet),
        scope: scope.map(Into::into),
        parent: None,
        owner: None,
    })
}
fn unit(name: &str, parent: Option<u128>) -> Value {
    Value::OrgUnit(OrgUnit {
        user_key: name.into(),
        name: name.into(),
        parent: parent.map(u),
        unit_type: Some(u(20)),
        unit_level: None,
        unit_hierarchy: None,
        time_planning: None,
    })
}
fn person(given: &str, cpr: &str) -> Value {
    Value::Person(Person {
        user_key: given.to_lowercase(),
        given_name: given.into(),
        surname: "Testesen".into(),
        nickname_given_name: None,
        nickname_surname: None,
        cpr_number: Some(Cpr::parse(cpr).unwrap()),
        seniority: None,
    })
}
fn eng(p: u128, unit: u128) -> Value {
    Value::Engagement(Engagement {
        user_key: format!("E{p}"),
        person: u(p),
        org_unit: u(unit),
        job_function: u(21),
        engagement_type: u(22),
        primary: None,
        fraction: None,
        extensions: Box::default(),
    })
}
fn phone(p: u128, value: &str) -> Value {
    Value::Address(Address {
        user_key: value.into(),
        value: value.into(),
        address_type: u(23),
        visibility: None,
        person: Some(u(p)),
        org_unit: None,
        engagement: None,
        ituser: None,
    })
}

const TOP: u128 = 100;
const A: u128 = 101;
const B: u128 = 102;
const B1: u128 = 103;

/// A top unit with two children, one of which has a child (created children first, so that
/// "parents first" is the exporter's doing); three persons.
fn mo() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let ops = vec![
        create(
            10,
            Value::Facet(Facet {
                user_key: "org_unit_type".into(),
            }),
        ),
        create(20, class("Enhed", 10, None)),
        create(21, class("Lærer", 10, None)),
        create(22, class("Ansat", 10, None)),
        create(23, class("Mobil", 10, Some("PHONE"))),
        create(B1, unit("Team", Some(B))),
        create(B, unit("Skole", Some(TOP))),
        create(A, unit("Rådhus", Some(TOP))),
        create(TOP, unit("Kommune", None)),
        create(1000, person("Anna", "0101700000")),
        create(1001, person("Bo", "0202800000")),
        create(1002, person("Cai", "0303900000")),
        create(2000, eng(1000, A)),
        create(2001, eng(1001, B1)),
        create(2002, eng(1002, B)),
        create(3000, phone(1000, "12345678")),
    ];
    s.apply(Plan { ops }, &reg()).unwrap();
    s
}

fn config(server: &Os2SyncServer, cache: &Path, extra: serde_json::Value) -> Config {
    let mut json = serde_json::json!({
        "municipality.cvr": "29189129",
        "os2sync.api_url": server.api_url(),
        "os2sync.top_unit_uuid": u(TOP).to_string(),
        "os2sync.hash_cache": cache,
        "os2sync.phone_scope_classes": [u(23).to_string()],
    });
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    let (s, _) = Settings::load(Some(("settings.json", &json.to_string())), []).unwrap();
    let mut c = Config::from_settings(&s).unwrap();
    c.hierarchy_poll = Duration::from_millis(5);
    c
}

fn register() -> OfflineRegister {
    OfflineRegister::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/opus/adresser.csv"),
    )
    .unwrap()
}

fn export(store: &Store, cfg: &Config, dry_run: bool) -> Report {
    run::export(store, &register(), cfg, date(2025, 6, 1), dry_run).unwrap()
}

/// The (method, kind, uuid) of every write the server received.
fn writes(server: &Os2SyncServer) -> Vec<(String, String, Uuid)> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" || r.method == "DELETE")
        .map(|r| {
            let kind = if r.path.to_lowercase().contains("orgunit") {
                "orgUnit"
            } else {
                "user"
            };
            let uuid = match &r.body {
                Some(b) => b["Uuid"].as_str().unwrap().parse().unwrap(),
                None => r.path.rsplit('/').next().unwrap().parse().unwrap(),
            };
            (r.method, kind.to_string(), uuid)
        })
        .collect()
}

#[test]
fn units_parents_first_then_users_and_a_second_run_sends_nothing() {
    let server = Os2SyncServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({}),
    );
    let store = mo();
    let r = export(&store, &cfg, false);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let w = writes(&server);
    let order: Vec<Uuid> = w.iter().filter(|x| x.1 == "orgUnit").map(|x| x.2).collect();
    assert_eq!(order[0], u(TOP));
    let pos = |n| order.iter().position(|x| *x == u(n)).unwrap();
    assert!(pos(B) < pos(B1), "a parent before its child: {order:?}");
    assert_eq!(order.len(), 4);
    assert_eq!(w.iter().filter(|x| x.1 == "user").count(), 3);
    assert!(
        w.iter().position(|x| x.1 == "user").unwrap() > 3,
        "units before users"
    );
    // Exactly the PascalCase shapes, and the CVR header on every request.
    for req in server.requests() {
        assert_eq!(
            req.headers
                .iter()
                .find(|(k, _)| k == "cvr")
                .map(|(_, v)| v.as_str()),
            Some("29189129")
        );
        assert!(
            req.status < 300 || req.status == 404,
            "{} {} → {}",
            req.method,
            req.path,
            req.status
        );
    }
    // What was sent, exactly (the server itself reads members in any case).
    let sent = server.requests();
    let unit_body = sent
        .iter()
        .find(|r| r.method == "POST" && r.path.contains("orgUnit"))
        .unwrap()
        .body
        .clone()
        .unwrap();
    for key in [
        "Uuid",
        "Name",
        "ParentOrgUnitUuid",
        "PhoneNumber",
        "Post",
        "PNR",
        "Tasks",
        "ItSystems",
        "ContactPlaces",
    ] {
        assert!(unit_body.get(key).is_some(), "{key} in {unit_body}");
    }
    let user_body = sent
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("user"))
        .unwrap()
        .body
        .clone()
        .unwrap();
    assert!(
        user_body["Positions"][0].get("OrgUnitUuid").is_some()
            && user_body["Person"].get("Name").is_some(),
        "{user_body}"
    );
    let users = server.users();
    let anna = &users[&u(1000)];
    assert_eq!(anna["Person"]["Name"], "Anna Testesen");
    assert_eq!(anna["PhoneNumber"], "12345678");
    assert!(anna["Person"]["Cpr"].is_null(), "no CPR without xfer_cpr");
    assert_eq!(anna["Positions"][0]["OrgUnitUuid"], u(A).to_string());
    assert_eq!(
        server.org_units()[&u(B1)]["ParentOrgUnitUuid"],
        u(B).to_string()
    );
    // Nothing changed: nothing is sent.
    server.clear_requests();
    let r = export(&store, &cfg, false);
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));
    assert_eq!(r.unchanged, 7);
    assert!(dir.path().join("cache.json").exists());
}

#[test]
fn a_changed_phone_number_sends_exactly_that_user_and_a_removed_person_is_deleted() {
    let server = Os2SyncServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({}),
    );
    let mut store = mo();
    export(&store, &cfg, false);
    server.clear_requests();
    let change = Op::Update {
        uuid: u(3000),
        validity: Validity::new(Some(date(2025, 1, 1)), None),
        value: phone(1000, "87654321"),
    };
    store.apply(Plan { ops: vec![change] }, &reg()).unwrap();
    export(&store, &cfg, false);
    assert_eq!(
        writes(&server),
        vec![("POST".to_string(), "user".to_string(), u(1000))]
    );
    assert_eq!(server.users()[&u(1000)]["PhoneNumber"], "87654321");
    // Bo leaves: his engagement ends, so he has no position; he is deleted, not posted.
    server.clear_requests();
    let end = Op::Terminate {
        uuid: u(2001),
        kind: Kind::Engagement,
        range: Validity::new(Some(date(2025, 3, 1)), None),
    };
    store.apply(Plan { ops: vec![end] }, &reg()).unwrap();
    export(&store, &cfg, false);
    assert_eq!(
        writes(&server),
        vec![("DELETE".to_string(), "user".to_string(), u(1001))]
    );
    assert!(server.deleted_users().contains(&u(1001)));
    // Once deleted, not again.
    server.clear_requests();
    export(&store, &cfg, false);
    assert!(writes(&server).is_empty());
}

#[test]
fn a_dry_run_sends_nothing_and_says_what_it_would_send() {
    let server = Os2SyncServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({}),
    );
    let r = export(&mo(), &cfg, true);
    assert!(writes(&server).is_empty());
    assert_eq!(r.requests.len(), 7, "{:?}", r.requests);
    assert!(
        r.requests[0].starts_with(&format!("POST orgUnit {}", u(TOP))),
        "{:?}",
        r.requests
    );
    assert!(
        !dir.path().join("cache.json").exists(),
        "a dry run writes no cache"
    );
}

#[test]
fn a_refused_request_is_counted_and_the_run_goes_on() {
    let server = Os2SyncServer::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({}),
    );
    let store = mo();
    server.fail_next(1, 500);
    let r = export(&store, &cfg, false);
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(
        r.failures[0].contains("500") && r.failures[0].contains(&u(TOP).to_string()),
        "{:?}",
        r.failures
    );
    assert_eq!(server.users().len(), 3, "the rest went through");
    // Not recorded in the cache: the next run sends the top unit again, and only it.
    server.clear_requests();
    let r = export(&store, &cfg, false);
    assert!(r.failures.is_empty());
    assert_eq!(
        writes(&server),
        vec![("POST".to_string(), "orgUnit".to_string(), u(TOP))]
    );
}

#[test]
fn autowash_deletes_units_mo_does_not_have_but_never_the_top_and_keeps_fk_only_fields() {
    let server = Os2SyncServer::start(Options {
        api_key: Some("nøgle-123".into()),
        ..Options::default()
    });
    let stray = Uuid::from_u128(0xeeee);
    server.seed_org_unit(
        serde_json::json!({"Uuid": stray.to_string(), "Name": "Fra et andet system"}),
    );
    server.seed_org_unit(serde_json::json!({"Uuid": u(A).to_string(), "Name": "Rådhus", "ParentOrgUnitUuid": u(TOP).to_string(), "LOSShortName": "RH", "Tasks": [Uuid::from_u128(7).to_string()]}));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({"os2sync.autowash": true, "os2sync.api_key": "nøgle-123"}),
    );
    let store = mo();
    let r = export(&store, &cfg, false);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(server.deleted_org_units().contains(&stray));
    assert!(!server.deleted_org_units().contains(&u(TOP)));
    let a = &server.org_units()[&u(A)];
    assert_eq!(
        a["LOSShortName"], "RH",
        "what only FK Organisation knows is kept"
    );
    assert_eq!(a["Tasks"][0], Uuid::from_u128(7).to_string());
    // A wrong ApiKey: every request is refused, the run stops at the hierarchy job.
    let bad = config(
        &server,
        &dir.path().join("cache2.json"),
        serde_json::json!({"os2sync.api_key": "wrong"}),
    );
    let err = run::export(&store, &register(), &bad, date(2025, 6, 1), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && !err.contains("wrong"), "{err}");
    // Single objects.
    server.clear_requests();
    let r = run::sync_unit(&store, &register(), &cfg, date(2025, 6, 1), u(B1), false).unwrap();
    assert!(r.failures.is_empty());
    assert!(run::sync_unit(&store, &register(), &cfg, date(2025, 6, 1), stray, false).is_err());
    let r = run::sync_user(&store, &register(), &cfg, date(2025, 6, 1), u(1002), false).unwrap();
    assert_eq!(r.users_posted, 1);
    assert_eq!(store.read(&Query::all(Kind::Person)).unwrap().len(), 3);
}

/// Issue 12, case 7: with the top unit's own type ignored (`Enhed`, the type of every unit here)
/// the whole tree is pruned, the top included; the run says so, posts nothing, and autowash
/// deletes nothing although OS2Sync holds units and a user MO does not yield. The request log is
/// exactly the hierarchy job.
#[test]
fn an_ignored_type_of_the_top_unit_syncs_nothing_and_autowash_deletes_nothing() {
    let server = Os2SyncServer::start(Options::default());
    let stray = Uuid::from_u128(0xeeee);
    server.seed_org_unit(
        serde_json::json!({"Uuid": stray.to_string(), "Name": "Fra et andet system"}),
    );
    server.seed_org_unit(serde_json::json!({"Uuid": u(A).to_string(), "Name": "Rådhus", "ParentOrgUnitUuid": u(TOP).to_string()}));
    server.seed_user(serde_json::json!({"Uuid": u(1000).to_string(), "UserId": "anna", "Person": {"Name": "Anna Testesen"}, "Positions": [{"Name": "Lærer", "OrgUnitUuid": u(A).to_string()}]}));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &server,
        &dir.path().join("cache.json"),
        serde_json::json!({"os2sync.autowash": true, "os2sync.ignored.unit_types": ["Enhed"]}),
    );
    let r = export(&mo(), &cfg, false);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(r.requests.is_empty(), "{:?}", r.requests);
    assert_eq!((r.units_posted, r.users_posted, r.deleted), (0, 0, 0));
    assert_eq!(
        r.warnings,
        vec![
            format!(
                "the top unit {} (Kommune) has a level or type in os2sync.ignored.unit_levels/unit_types; no unit is synced",
                u(TOP)
            ),
            "autowash: MO yields no units; nothing is deleted".to_string(),
            "MO yields no users; no user is deleted in OS2Sync".to_string(),
        ]
    );
    let log: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            let path = match r.path.strip_prefix("/api/hierarchy/") {
                Some(_) => "/api/hierarchy/{job}",
                None => r.path.as_str(),
            };
            format!("{} {} → {}", r.method, path, r.status)
        })
        .collect();
    assert_eq!(
        log,
        vec![
            "GET /api/hierarchy → 200",
            "GET /api/hierarchy/{job} → 404",
            "GET /api/hierarchy/{job} → 404",
            "GET /api/hierarchy/{job} → 200",
        ]
    );
    assert!(server.deleted_org_units().is_empty());
    assert!(server.deleted_users().is_empty());
    assert_eq!(server.org_units().keys().copied().collect::<Vec<_>>(), {
        let mut v = vec![u(A), stray];
        v.sort();
        v
    });
}
