//! The OS2Sync payload rules, one small MO snapshot each.

use super::config::Config;
use super::map::Ix;
use super::payload::User;
use super::read::Snapshot;
use crate::settings::Settings;
use dipex_model::{
    Address, Class, Cpr, Date, Engagement, Extensions, ItSystem, ItUser, Kle, Manager, Object,
    OrgUnit, Person, Slice, Validity, Value,
};
use jiff::civil::date;
use std::collections::HashMap;
use uuid::Uuid;

const TODAY: Date = date(2025, 6, 1);

fn u(n: u128) -> Uuid {
    Uuid::from_u128(0xc000 + n)
}
fn obj(uuid: Uuid, value: Value) -> Object {
    Object::new(
        uuid,
        vec![Slice::new(
            Validity::new(Some(date(2020, 1, 1)), None),
            value,
        )],
    )
    .unwrap()
}
fn class(key: &str, name: &str, scope: Option<&str>) -> Value {
    Value::Class(Class {
        user_key: key.into(),
        name: name.into(),
        facet: Uuid::nil(),
        scope: scope.map(Into::into),
        parent: None,
        owner: None,
    })
}
fn unit(name: &str, parent: Option<u128>, level: Option<u128>, hierarchy: Option<u128>) -> Value {
    Value::OrgUnit(OrgUnit {
        user_key: name.into(),
        name: name.into(),
        parent: parent.map(u),
        unit_type: None,
        unit_level: level.map(u),
        unit_hierarchy: hierarchy.map(u),
        time_planning: None,
    })
}
fn addr(
    person: Option<u128>,
    unit: Option<u128>,
    kind: u128,
    value: &str,
    vis: Option<u128>,
    eng: Option<u128>,
) -> Value {
    Value::Address(Address {
        user_key: value.into(),
        value: value.into(),
        address_type: u(kind),
        visibility: vis.map(u),
        person: person.map(u),
        org_unit: unit.map(u),
        engagement: eng.map(u),
        ituser: None,
    })
}
fn ituser(
    person: Option<u128>,
    unit: Option<u128>,
    system: u128,
    key: &str,
    eng: Option<u128>,
) -> Value {
    Value::ItUser(ItUser {
        user_key: key.into(),
        itsystem: u(system),
        person: person.map(u),
        org_unit: unit.map(u),
        external_id: None,
        engagements: eng.map(u).into_iter().collect(),
        primary: None,
    })
}
fn eng(person: u128, unit: u128, job: u128, ext3: Option<&str>) -> Value {
    Value::Engagement(Engagement {
        user_key: format!("{person}-{unit}"),
        person: u(person),
        org_unit: u(unit),
        job_function: u(job),
        engagement_type: u(EMAIL),
        primary: Some(u(PRIMARY)),
        fraction: None,
        extensions: Box::new(Extensions {
            extension_3: ext3.map(Into::into),
            ..Extensions::default()
        }),
    })
}

// Classes.
const EMAIL: u128 = 1;
const PHONE: u128 = 2;
const LANDLINE: u128 = 3;
const EAN: u128 = 4;
const DAR: u128 = 5;
const CONTACT: u128 = 6;
const PNR: u128 = 7;
const OPEN: u128 = 8;
const DTR: u128 = 9;
const WWW: u128 = 10;
const PUBLIC: u128 = 11;
const SECRET: u128 = 12;
const LINE: u128 = 13;
const SAFETY: u128 = 14;
const TEAM_LEVEL: u128 = 15;
const TEACHER: u128 = 16;
const PRIMARY: u128 = 17;
const UDF: u128 = 18;
const ANSV: u128 = 19;
const KLE1: u128 = 20;
const KLE2: u128 = 21;
const MOBILE: u128 = 22;
// IT systems.
const AD: u128 = 30;
const FK: u128 = 31;
const SBSYS: u128 = 32;
// Units.
const TOP: u128 = 100;
const SCHOOL: u128 = 101;
const TEAM: u128 = 102;
const UNDER_TEAM: u128 = 103;
const SAFETY_UNIT: u128 = 104;

fn snapshot() -> Snapshot {
    let c = |n, key: &str, scope| obj(u(n), class(key, key, scope));
    Snapshot {
        classes: vec![
            c(EMAIL, "EmailUnit", Some("EMAIL")),
            c(PHONE, "PhoneUnit", Some("PHONE")),
            c(LANDLINE, "Fastnet", Some("PHONE")),
            c(EAN, "EAN", Some("EAN")),
            c(DAR, "AdressePost", Some("DAR")),
            c(CONTACT, "Contact", Some("DAR")),
            c(PNR, "Pnummer", Some("PNUMBER")),
            c(OPEN, "ContactOpenHours", Some("TEXT")),
            c(DTR, "DtrId", Some("TEXT")),
            c(WWW, "Hjemmeside", Some("WWW")),
            c(PUBLIC, "Public", Some("PUBLIC")),
            c(SECRET, "Secret", Some("SECRET")),
            c(LINE, "Linjeorganisation", None),
            c(SAFETY, "Sikkerhedsorganisation", None),
            c(TEAM_LEVEL, "Team", None),
            c(TEACHER, "Lærer", None),
            c(PRIMARY, "primary", Some("3000")),
            c(UDF, "Udførende", None),
            c(ANSV, "Ansvarlig", None),
            c(KLE1, "00.01", None),
            c(KLE2, "00.02", None),
            c(MOBILE, "Mobil", Some("PHONE")),
        ],
        itsystems: vec![
            obj(
                u(AD),
                Value::ItSystem(ItSystem {
                    user_key: "AD".into(),
                    name: "Active Directory".into(),
                }),
            ),
            obj(
                u(FK),
                Value::ItSystem(ItSystem {
                    user_key: "FK".into(),
                    name: "FK-ORG UUID".into(),
                }),
            ),
            obj(
                u(SBSYS),
                Value::ItSystem(ItSystem {
                    user_key: "SBSYS".into(),
                    name: "SBSYS".into(),
                }),
            ),
        ],
        units: vec![
            obj(u(TOP), unit("Kommune", None, None, Some(LINE))),
            obj(u(SCHOOL), unit("Skole", Some(TOP), None, Some(LINE))),
            obj(
                u(TEAM),
                unit("Team", Some(SCHOOL), Some(TEAM_LEVEL), Some(LINE)),
            ),
            obj(
                u(UNDER_TEAM),
                unit("Under team", Some(TEAM), None, Some(LINE)),
            ),
            obj(
                u(SAFETY_UNIT),
                unit("Sikkerhed", Some(TOP), None, Some(SAFETY)),
            ),
        ],
        unit_addresses: vec![
            obj(
                u(200),
                addr(None, Some(SCHOOL), EMAIL, "skole@k.dk", None, None),
            ),
            obj(
                u(201),
                addr(None, Some(SCHOOL), PHONE, "11111111", Some(PUBLIC), None),
            ),
            obj(
                u(202),
                addr(None, Some(SCHOOL), LANDLINE, "22222222", None, None),
            ),
            obj(
                u(203),
                addr(None, Some(SCHOOL), EAN, "5798000000000", None, None),
            ),
            obj(
                u(204),
                addr(
                    None,
                    Some(SCHOOL),
                    DAR,
                    "0a3f50a0-23c9-32b8-e044-0003ba298018",
                    None,
                    None,
                ),
            ),
            obj(
                u(205),
                addr(
                    None,
                    Some(SCHOOL),
                    CONTACT,
                    "Skolevej 1, 8000 Aarhus C",
                    None,
                    None,
                ),
            ),
            obj(
                u(206),
                addr(None, Some(SCHOOL), PNR, "1003388000", None, None),
            ),
            obj(
                u(207),
                addr(None, Some(SCHOOL), OPEN, "Man-fre: 11-13.30", None, None),
            ),
            obj(u(208), addr(None, Some(SCHOOL), DTR, "G123456", None, None)),
            obj(
                u(209),
                addr(
                    None,
                    Some(SCHOOL),
                    WWW,
                    "https://skole.dk",
                    Some(SECRET),
                    None,
                ),
            ),
        ],
        kles: vec![
            obj(
                u(300),
                Value::Kle(Kle {
                    user_key: "k1".into(),
                    org_unit: u(SCHOOL),
                    kle_number: u(KLE1),
                    kle_aspects: vec![u(UDF)],
                }),
            ),
            obj(
                u(301),
                Value::Kle(Kle {
                    user_key: "k2".into(),
                    org_unit: u(SCHOOL),
                    kle_number: u(KLE2),
                    kle_aspects: vec![u(ANSV)],
                }),
            ),
        ],
        managers: vec![obj(
            u(400),
            Value::Manager(Manager {
                user_key: "m".into(),
                org_unit: u(SCHOOL),
                person: Some(u(1000)),
                engagement: None,
                manager_type: u(TEACHER),
                manager_level: u(TEACHER),
                responsibilities: vec![],
            }),
        )],
        itusers: vec![
            obj(
                u(500),
                ituser(None, Some(SCHOOL), SBSYS, "sbsys-skole", None),
            ),
            obj(
                u(501),
                ituser(
                    None,
                    Some(SCHOOL),
                    FK,
                    "5c5c5c5c-0000-4000-8000-000000000001",
                    None,
                ),
            ),
            obj(u(502), ituser(Some(1000), None, AD, "anna", None)),
            obj(u(503), ituser(Some(1001), None, AD, "bo-a", Some(2001))),
            obj(
                u(504),
                ituser(
                    Some(1001),
                    None,
                    FK,
                    "5c5c5c5c-0000-4000-8000-0000000000b1",
                    Some(2001),
                ),
            ),
            obj(u(505), ituser(Some(1001), None, AD, "bo-b", Some(2002))),
        ],
        engagements: vec![
            obj(u(2000), eng(1000, SCHOOL, TEACHER, Some("Lektor"))),
            obj(u(2001), eng(1001, SCHOOL, TEACHER, None)),
            obj(u(2002), eng(1001, TOP, TEACHER, None)),
            obj(u(2003), eng(1002, TEAM, TEACHER, None)),
            obj(u(2004), eng(1003, SAFETY_UNIT, TEACHER, None)),
        ],
        persons: vec![
            obj(
                u(1000),
                person("Anna", "Testesen", Some("Nanna"), "0101700000"),
            ),
            obj(u(1001), person("Bo", "Hansen", None, "0202800000")),
            obj(u(1002), person("Cai", "Jensen", None, "0303900000")),
            obj(u(1003), person("Dan", "Olsen", None, "0404900000")),
        ],
        person_addresses: vec![
            obj(
                u(600),
                addr(
                    Some(1000),
                    None,
                    EMAIL,
                    "anna@privat.dk",
                    Some(SECRET),
                    None,
                ),
            ),
            obj(
                u(601),
                addr(Some(1000), None, EMAIL, "anna@k.dk", Some(PUBLIC), None),
            ),
            obj(
                u(602),
                addr(Some(1000), None, MOBILE, "12345678", None, None),
            ),
            obj(
                u(603),
                addr(Some(1000), None, PHONE, "87654321", None, None),
            ),
            obj(
                u(604),
                addr(Some(1000), None, LANDLINE, "33333333", None, None),
            ),
            obj(
                u(605),
                addr(Some(1001), None, EMAIL, "bo-a@k.dk", None, Some(2001)),
            ),
            obj(
                u(606),
                addr(Some(1001), None, EMAIL, "bo-b@k.dk", None, Some(2002)),
            ),
        ],
    }
}

fn person(given: &str, surname: &str, nick: Option<&str>, cpr: &str) -> Value {
    Value::Person(Person {
        user_key: given.to_lowercase(),
        given_name: given.into(),
        surname: surname.into(),
        nickname_given_name: nick.map(Into::into),
        nickname_surname: None,
        cpr_number: Some(Cpr::parse(cpr).unwrap()),
        seniority: None,
    })
}

fn config(extra: serde_json::Value) -> Config {
    let mut json = serde_json::json!({
        "municipality.cvr": "12345678",
        "os2sync.top_unit_uuid": u(TOP).to_string(),
        "os2sync.landline_scope_classes": [u(LANDLINE).to_string()],
    });
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    let (s, _) = Settings::load(Some(("settings.json", &json.to_string())), []).unwrap();
    Config::from_settings(&s).unwrap()
}

fn texts() -> HashMap<Uuid, String> {
    [(
        Uuid::parse_str("0a3f50a0-23c9-32b8-e044-0003ba298018").unwrap(),
        "Skolevej 2, 8000 Aarhus C".to_string(),
    )]
    .into()
}

fn build(cfg: &Config) -> (Vec<super::payload::OrgUnit>, Vec<User>, Vec<String>) {
    let snap = snapshot();
    let t = texts();
    let mut ix = Ix::new(&snap, cfg, TODAY, &t).unwrap();
    let units = ix.units();
    let users = ix.users().unwrap();
    (units, users, ix.warnings.clone())
}

fn user<'a>(users: &'a [User], id: &str) -> &'a User {
    users
        .iter()
        .find(|x| x.user_id == id)
        .unwrap_or_else(|| panic!("{id} in {users:?}"))
}

#[test]
fn units_under_the_top_in_the_hierarchy_minus_ignored_subtrees_parents_first() {
    let (units, _, _) = build(&config(serde_json::json!({})));
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["Kommune", "Skole", "Sikkerhed", "Team", "Under team"]
    );
    let cfg = config(
        serde_json::json!({"os2sync.filter_hierarchy_names": ["Linjeorganisation"], "os2sync.ignored.unit_levels": [u(TEAM_LEVEL).to_string()]}),
    );
    let (units, users, _) = build(&cfg);
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["Kommune", "Skole"],
        "the team's whole subtree and the other hierarchy are left out"
    );
    assert!(
        users.iter().all(|x| x.user_id != "c"),
        "Cai's only position is in the ignored team"
    );
    assert_eq!(units[0].parent, None);
}

#[test]
fn unit_addresses_by_scope_and_user_key_never_secret_ones() {
    let (units, _, _) = build(&config(serde_json::json!({})));
    let school = units.iter().find(|x| x.name == "Skole").unwrap();
    assert_eq!(school.email.as_deref(), Some("skole@k.dk"));
    assert_eq!(school.phone_number.as_deref(), Some("11111111"));
    assert_eq!(school.landline.as_deref(), Some("22222222"));
    assert_eq!(school.ean.as_deref(), Some("5798000000000"));
    assert_eq!(
        school.post.as_deref(),
        Some("Skolevej 2, 8000 Aarhus C"),
        "a DAR address as its text"
    );
    assert_eq!(school.contact.as_deref(), Some("Skolevej 1, 8000 Aarhus C"));
    assert_eq!(school.pnr.as_deref(), Some("1003388000"), "P-number to PNR");
    assert_eq!(
        school.contact_open_hours.as_deref(),
        Some("Man-fre: 11-13.30")
    );
    assert_eq!(school.dtr_id.as_deref(), Some("G123456"));
    assert_eq!(school.url, None, "a secret address is never sent");
    assert_eq!(school.location, None);
}

#[test]
fn kle_it_systems_manager_and_fk_uuids() {
    let (units, _, _) = build(&config(serde_json::json!({})));
    let school = units.iter().find(|x| x.name == "Skole").unwrap();
    assert!(
        school.tasks.is_empty() && school.manager.is_none(),
        "KLE and managers are off by default"
    );
    assert_eq!(school.it_systems, vec![u(FK), u(SBSYS)]);
    let cfg = config(serde_json::json!({
        "os2sync.enable_kle": true, "os2sync.sync_managers": true,
        "os2sync.uuid_from_it_systems": ["FK-ORG UUID"]
    }));
    let (units, users, _) = build(&cfg);
    let school = units.iter().find(|x| x.name == "Skole").unwrap();
    assert_eq!(school.tasks, vec![u(KLE1), u(KLE2)]);
    assert_eq!(school.manager, Some(u(1000)));
    let fk_school = Uuid::parse_str("5c5c5c5c-0000-4000-8000-000000000001").unwrap();
    assert_eq!(
        school.uuid, fk_school,
        "the unit's FK uuid from its IT account"
    );
    assert_eq!(
        school.it_systems,
        vec![u(SBSYS)],
        "the uuid-carrying system is not an IT system in use"
    );
    let team = units.iter().find(|x| x.name == "Team").unwrap();
    assert_eq!(team.parent, Some(fk_school), "and the child's parent too");
    assert_eq!(
        user(&users, "anna").positions[0].org_unit,
        fk_school,
        "and positions"
    );
    let cfg = config(
        serde_json::json!({"os2sync.enable_kle": true, "os2sync.use_contact_for_tasks": true}),
    );
    let (units, _, _) = build(&cfg);
    let school = units.iter().find(|x| x.name == "Skole").unwrap();
    assert_eq!(
        (school.tasks.clone(), school.contact_for_tasks.clone()),
        (vec![u(KLE1)], vec![u(KLE2)])
    );
}

#[test]
fn one_user_per_it_account_group_with_user_id_and_addresses() {
    let cfg = config(serde_json::json!({"os2sync.uuid_from_it_systems": ["FK-ORG UUID"]}));
    let (_, users, _) = build(&cfg);
    let a = user(&users, "bo-a");
    let b = user(&users, "bo-b");
    assert_eq!(
        a.uuid,
        Uuid::parse_str("5c5c5c5c-0000-4000-8000-0000000000b1").unwrap(),
        "uuid from the FK account of the engagement"
    );
    assert_eq!(b.uuid, u(1001), "no FK account: the MO uuid");
    assert_eq!(a.positions.len(), 1);
    assert_eq!(
        a.positions[0].org_unit,
        Uuid::parse_str("5c5c5c5c-0000-4000-8000-000000000001").unwrap(),
        "the school's FK uuid"
    );
    assert_eq!(b.positions[0].org_unit, u(TOP));
    assert_eq!(
        (a.email.as_deref(), b.email.as_deref()),
        (Some("bo-a@k.dk"), Some("bo-b@k.dk")),
        "addresses of each engagement"
    );
    // Persons without an AD account get their uuid as user id (or a template's).
    let cai = users.iter().find(|x| x.uuid == u(1002)).unwrap();
    assert_eq!(cai.user_id, u(1002).to_string());
    let cfg =
        config(serde_json::json!({"os2sync.templates": {"person.user_id": "{{ user_key }}"}}));
    let (_, users, _) = build(&cfg);
    assert!(users.iter().any(|x| x.user_id == "cai"));
    assert!(
        users.iter().any(|x| x.user_id == "anna"),
        "an AD account wins over the template"
    );
    let cfg = config(serde_json::json!({"os2sync.filter_users_by_it_system": true}));
    let (_, users, _) = build(&cfg);
    assert!(
        users.iter().all(|x| x.uuid != u(1002)),
        "no AD account, no user"
    );
}

#[test]
fn names_cpr_positions_and_contact_details() {
    let cfg = config(serde_json::json!({
        "os2sync.templates": {"person.name": "{% if nickname -%}{{ nickname }}{%- else %}{{ name }}{%- endif %}"},
        "os2sync.phone_scope_classes": [u(MOBILE).to_string()],
        "os2sync.use_extension_field_as_job_function": true
    }));
    let (_, users, _) = build(&cfg);
    let anna = user(&users, "anna");
    assert_eq!(anna.person.name, "Nanna");
    assert_eq!(anna.person.cpr, None, "no CPR without xfer_cpr");
    assert_eq!(
        anna.email.as_deref(),
        Some("anna@k.dk"),
        "the secret one is never sent"
    );
    assert_eq!(
        anna.phone_number.as_deref(),
        Some("12345678"),
        "the prioritised mobile"
    );
    assert_eq!(anna.landline.as_deref(), Some("33333333"));
    assert_eq!(anna.positions[0].name, "Lektor", "extension_3 as the title");
    assert_eq!(user(&users, "bo-a").person.name, "Bo Hansen");
    assert!(
        users.iter().any(|x| x.uuid == u(1003)),
        "Dan's position is in another hierarchy, which is not filtered here"
    );
    let cfg = config(serde_json::json!({"os2sync.xfer_cpr": true}));
    let (_, users, _) = build(&cfg);
    assert_eq!(
        user(&users, "anna").person.cpr.as_deref(),
        Some("0101700000")
    );
    assert_eq!(user(&users, "anna").positions[0].name, "Lærer");
}

#[test]
fn template_errors_name_the_key_and_the_person_never_the_cpr() {
    let cfg =
        config(serde_json::json!({"os2sync.templates": {"person.name": "{{ unknown_variable }}"}}));
    let snap = snapshot();
    let t = texts();
    let mut ix = Ix::new(&snap, &cfg, TODAY, &t).unwrap();
    let err = ix.users().unwrap_err().to_string();
    assert!(
        err.contains("person.name") && err.contains(&u(1000).to_string()),
        "{err}"
    );
    let cfg = config(
        serde_json::json!({"os2sync.templates": {"person.name": "{{ cpr_no | int + 'x' }}"}}),
    );
    let mut ix = Ix::new(&snap, &cfg, TODAY, &t).unwrap();
    let err = ix.users().unwrap_err().to_string();
    assert!(!err.contains("0101700000"), "{err}");
    let json = serde_json::json!({"municipality.cvr": "1", "os2sync.top_unit_uuid": u(TOP).to_string(), "os2sync.templates": {"person.name": "{% invalid %}"}});
    let (s, _) = Settings::load(Some(("s", &json.to_string())), []).unwrap();
    let err = Config::from_settings(&s).unwrap_err().to_string();
    assert!(
        err.contains("person.name") && err.contains("syntax"),
        "{err}"
    );
}

#[test]
fn settings_from_the_environment_win_and_are_checked() {
    let json = serde_json::json!({"municipality.cvr": "1", "os2sync.top_unit_uuid": u(TOP).to_string(), "os2sync.xfer_cpr": false});
    let env = [
        ("OS2SYNC_XFER_CPR".to_string(), "yes".to_string()),
        (
            "OS2SYNC_IGNORED_UNIT_LEVELS".to_string(),
            format!("[\"{}\"]", u(TEAM_LEVEL)),
        ),
        (
            "OS2SYNC_API_URL".to_string(),
            "http://os2sync:5000/api/".to_string(),
        ),
    ];
    let (s, w) = Settings::load(Some(("s", &json.to_string())), env).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let c = Config::from_settings(&s).unwrap();
    assert!(c.xfer_cpr);
    assert_eq!(c.ignored_levels, vec![u(TEAM_LEVEL).to_string()]);
    assert_eq!(c.api_url, "http://os2sync:5000/api");
    let bad = serde_json::json!({"municipality.cvr": "1", "os2sync.top_unit_uuid": u(TOP).to_string(), "os2sync.api_url": "Not a URL"});
    let (s, _) = Settings::load(Some(("s", &bad.to_string())), []).unwrap();
    assert!(
        Config::from_settings(&s)
            .unwrap_err()
            .to_string()
            .contains("os2sync.api_url")
    );
    let bad = serde_json::json!({"os2sync.autowash": "No"});
    assert!(
        Settings::load(Some(("s", &bad.to_string())), []).is_err(),
        "a bool must be a JSON bool"
    );
    let (s, _) = Settings::load(None, []).unwrap();
    assert!(
        Config::from_settings(&s)
            .unwrap_err()
            .to_string()
            .contains("municipality.cvr")
    );
}

/// Issue 12, case 7: an ignored level or type prunes the whole subtree, the top unit included
/// (DESIGN.md ruling 10); only `filter_hierarchy_names` spares the top.
#[test]
fn an_ignored_level_of_the_top_unit_leaves_nothing_to_sync_and_says_so() {
    let mut snap = snapshot();
    snap.units[0] = obj(u(TOP), unit("Kommune", None, Some(TEAM_LEVEL), Some(LINE)));
    let t = texts();
    let cfg = config(serde_json::json!({"os2sync.ignored.unit_levels": ["Team"]}));
    let mut ix = Ix::new(&snap, &cfg, TODAY, &t).unwrap();
    assert!(ix.units().is_empty());
    assert!(ix.users().unwrap().is_empty());
    assert_eq!(
        ix.warnings,
        vec![format!(
            "the top unit {} (Kommune) has a level or type in os2sync.ignored.unit_levels/unit_types; no unit is synced",
            u(TOP)
        )]
    );
    // The hierarchy filter alone still spares the top.
    let cfg =
        config(serde_json::json!({"os2sync.filter_hierarchy_names": ["Sikkerhedsorganisation"]}));
    let (units, _, _) = build(&cfg);
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, vec!["Kommune", "Sikkerhed"]);
}
