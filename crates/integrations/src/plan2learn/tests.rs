//! The selection rules of the plan2learn export, one small snapshot each.

use super::map::{Config, Export, export};
use super::read::Snapshot;
use dipex_model::{
    Address, Class, Cpr, Date, Engagement, Extensions, Manager, Object, OrgUnit, Person, Slice,
    Validity, Value,
};
use jiff::civil::date;
use std::collections::HashMap;
use uuid::Uuid;

const TODAY: Date = date(2025, 6, 1);

fn u(n: u128) -> Uuid {
    Uuid::from_u128(0xa000 + n)
}
fn obj(uuid: Uuid, v: Validity, value: Value) -> Object {
    Object::new(uuid, vec![Slice::new(v, value)]).unwrap()
}
fn always() -> Validity {
    Validity::ALWAYS
}
fn from(d: Date) -> Validity {
    Validity::new(Some(d), None)
}

// Classes.
const MONTHLY: u128 = 1;
const HOURLY: u128 = 2;
const TRAINEE: u128 = 3;
const PRIMARY: u128 = 4;
const NON_PRIMARY: u128 = 5;
const TEACHER: u128 = 6;
const NURSE: u128 = 7;
const EMAIL: u128 = 8;
const WORK_EMAIL: u128 = 9;
const MOBILE: u128 = 10;
const LANDLINE: u128 = 11;
const PUBLIC: u128 = 12;
const SECRET: u128 = 13;
const DAR: u128 = 14;
const TOO_DEEP: u128 = 15;
const STAFF: u128 = 16;
const BUDGET: u128 = 17;
const MGR: u128 = 18;
// Units.
const ROOT: u128 = 100;
const SCHOOL: u128 = 101;
const CLASSROOM: u128 = 102;
const UNDER: u128 = 103;
const ARCHIVE: u128 = 104;

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
fn unit(name: &str, parent: Option<u128>, level: Option<u128>) -> Value {
    Value::OrgUnit(OrgUnit {
        user_key: name.into(),
        name: name.into(),
        parent: parent.map(u),
        unit_type: None,
        unit_level: level.map(u),
        unit_hierarchy: None,
        time_planning: None,
    })
}
fn person(given: &str, cpr: &str) -> Value {
    Value::Person(Person {
        user_key: given.into(),
        given_name: given.into(),
        surname: "Testesen".into(),
        nickname_given_name: None,
        nickname_surname: None,
        cpr_number: Some(Cpr::parse(cpr).unwrap()),
        seniority: None,
    })
}
fn eng(
    person: u128,
    unit: u128,
    kind: u128,
    primary: u128,
    job: u128,
    ext: &[(usize, &str)],
) -> Value {
    let mut x = Extensions::default();
    for (n, t) in ext {
        match n {
            2 => x.extension_2 = Some(t.to_string()),
            3 => x.extension_3 = Some(t.to_string()),
            _ => unreachable!(),
        }
    }
    Value::Engagement(Engagement {
        user_key: format!("E{person}-{unit}"),
        person: u(person),
        org_unit: u(unit),
        job_function: u(job),
        engagement_type: u(kind),
        primary: Some(u(primary)),
        fraction: None,
        extensions: Box::new(x),
    })
}
fn addr(
    person: Option<u128>,
    unit: Option<u128>,
    kind: u128,
    value: &str,
    vis: Option<u128>,
) -> Value {
    Value::Address(Address {
        user_key: value.into(),
        value: value.into(),
        address_type: u(kind),
        visibility: vis.map(u),
        person: person.map(u),
        org_unit: unit.map(u),
        engagement: None,
        ituser: None,
    })
}

/// A small municipality: a root with a school (whose classroom level is too deep, with a unit
/// under it) and an archive; Anna (monthly, primary teacher), Bo (hourly, in the too-deep
/// classroom), Cai (trainee: not an allowed type), Dan (starts in the future), Eva (ended).
fn snapshot() -> Snapshot {
    let classes = vec![
        obj(u(MONTHLY), always(), class("månedsløn", "Månedsløn", None)),
        obj(u(HOURLY), always(), class("timeløn", "Timeløn", None)),
        obj(u(TRAINEE), always(), class("elev", "Elev", None)),
        obj(
            u(PRIMARY),
            always(),
            class("primary", "Primær", Some("3000")),
        ),
        obj(
            u(NON_PRIMARY),
            always(),
            class("non-primary", "Ikke primær", Some("0")),
        ),
        obj(u(TEACHER), always(), class("lærer", "Lærer", None)),
        obj(
            u(NURSE),
            always(),
            class("sygeplejerske", "Sygeplejerske", None),
        ),
        obj(
            u(EMAIL),
            always(),
            class("EmailEmployee", "Email", Some("EMAIL")),
        ),
        obj(
            u(WORK_EMAIL),
            always(),
            class("WorkEmail", "Arbejdsmail", Some("EMAIL")),
        ),
        obj(u(MOBILE), always(), class("Mobil", "Mobil", Some("PHONE"))),
        obj(
            u(LANDLINE),
            always(),
            class("Telefon", "Telefon", Some("PHONE")),
        ),
        obj(
            u(PUBLIC),
            always(),
            class("Public", "Må vises eksternt", Some("PUBLIC")),
        ),
        obj(
            u(SECRET),
            always(),
            class("Secret", "Hemmelig", Some("SECRET")),
        ),
        obj(
            u(DAR),
            always(),
            class("AdressePostEnhed", "Postadresse", Some("DAR")),
        ),
        obj(
            u(TOO_DEEP),
            always(),
            class("Afdelings-niveau", "Afdelings-niveau", None),
        ),
        obj(
            u(STAFF),
            always(),
            class("personale", "Personale: ansættelse/afskedigelse", None),
        ),
        obj(u(BUDGET), always(), class("budget", "Budgetansvar", None)),
        obj(u(MGR), always(), class("leder", "Leder", None)),
    ];
    let y2020 = from(date(2020, 1, 1));
    let units = vec![
        obj(u(ROOT), y2020, unit("Kommunen", None, None)),
        obj(u(SCHOOL), y2020, unit("Skolen", Some(ROOT), None)),
        obj(u(ARCHIVE), y2020, unit("Arkivet", Some(ROOT), None)),
        obj(
            u(CLASSROOM),
            y2020,
            unit("Klasse", Some(SCHOOL), Some(TOO_DEEP)),
        ),
        obj(
            u(UNDER),
            y2020,
            unit("Under klassen", Some(CLASSROOM), None),
        ),
    ];
    let persons = vec![
        obj(u(1000), always(), person("Anna", "0101700000")),
        obj(u(1001), always(), person("Bo", "0202800000")),
        obj(u(1002), always(), person("Cai", "0303900000")),
        obj(u(1003), always(), person("Dan", "0404900000")),
        obj(u(1004), always(), person("Eva", "0505900000")),
    ];
    let engagements = vec![
        obj(
            u(2000),
            y2020,
            eng(1000, SCHOOL, MONTHLY, PRIMARY, TEACHER, &[(2, "Lektor")]),
        ),
        obj(
            u(2001),
            y2020,
            eng(1000, ARCHIVE, HOURLY, NON_PRIMARY, NURSE, &[]),
        ),
        obj(
            u(2002),
            y2020,
            eng(1001, CLASSROOM, HOURLY, PRIMARY, NURSE, &[]),
        ),
        obj(
            u(2003),
            y2020,
            eng(1002, SCHOOL, TRAINEE, PRIMARY, TEACHER, &[]),
        ),
        obj(
            u(2004),
            from(date(2025, 8, 1)),
            eng(1003, ARCHIVE, MONTHLY, PRIMARY, NURSE, &[(3, "Arkivar")]),
        ),
        obj(
            u(2005),
            Validity::new(Some(date(2020, 1, 1)), Some(date(2025, 1, 1))),
            eng(1004, ARCHIVE, MONTHLY, PRIMARY, NURSE, &[]),
        ),
    ];
    let person_addresses = vec![
        obj(
            u(3000),
            y2020,
            addr(Some(1000), None, EMAIL, "anna@privat.dk", Some(SECRET)),
        ),
        obj(
            u(3001),
            y2020,
            addr(Some(1000), None, WORK_EMAIL, "anna@skolen.dk", None),
        ),
        obj(
            u(3002),
            y2020,
            addr(Some(1000), None, EMAIL, "anna@kommune.dk", Some(PUBLIC)),
        ),
        obj(
            u(3003),
            y2020,
            addr(Some(1000), None, LANDLINE, "87654321", None),
        ),
        obj(
            u(3004),
            y2020,
            addr(Some(1000), None, MOBILE, "12345678", Some(SECRET)),
        ),
        obj(
            u(3005),
            y2020,
            addr(Some(1001), None, MOBILE, "+4520202020", Some(PUBLIC)),
        ),
        obj(
            u(3006),
            y2020,
            addr(Some(1001), None, LANDLINE, "11111111", None),
        ),
    ];
    let dar_id = "0a3f50a0-23c9-32b8-e044-0003ba298018";
    let unit_addresses = vec![
        obj(u(4000), y2020, addr(None, Some(SCHOOL), DAR, dar_id, None)),
        obj(
            u(4001),
            y2020,
            addr(
                None,
                Some(ROOT),
                DAR,
                "Rådhuspladsen 1, 1550 København V",
                None,
            ),
        ),
    ];
    let managers = vec![
        obj(
            u(5000),
            y2020,
            Value::Manager(Manager {
                user_key: "m1".into(),
                org_unit: u(SCHOOL),
                person: Some(u(1000)),
                engagement: None,
                manager_type: u(MGR),
                manager_level: u(MGR),
                responsibilities: vec![u(STAFF), u(BUDGET)],
            }),
        ),
        obj(
            u(5001),
            y2020,
            Value::Manager(Manager {
                user_key: "vacant".into(),
                org_unit: u(ARCHIVE),
                person: None,
                engagement: None,
                manager_type: u(MGR),
                manager_level: u(MGR),
                responsibilities: vec![],
            }),
        ),
        obj(
            u(5002),
            y2020,
            Value::Manager(Manager {
                user_key: "m3".into(),
                org_unit: u(CLASSROOM),
                person: Some(u(1001)),
                engagement: None,
                manager_type: u(MGR),
                manager_level: u(MGR),
                responsibilities: vec![u(STAFF)],
            }),
        ),
    ];
    Snapshot {
        facets: vec![],
        classes,
        units,
        engagements,
        persons,
        person_addresses,
        unit_addresses,
        managers,
    }
}

fn config() -> Config {
    Config {
        root_unit: u(ROOT),
        allowed_engagement_types: vec!["Månedsløn".into(), u(HOURLY).to_string()],
        too_deep: vec!["Afdelings-niveau".into()],
        email_priority: vec!["WorkEmail".into()],
        phone_priority: vec![u(MOBILE).to_string()],
        job_title_extension: 2,
    }
}

fn texts() -> HashMap<Uuid, String> {
    let mut t = HashMap::new();
    t.insert(
        Uuid::parse_str("0a3f50a0-23c9-32b8-e044-0003ba298018").unwrap(),
        "Skolevej 2, 1. tv, 8000 Aarhus C".into(),
    );
    t
}

fn run(cfg: &Config) -> Export {
    export(&snapshot(), cfg, TODAY, &texts()).unwrap()
}

fn rows<'a>(e: &'a Export, name: &str) -> &'a Vec<Vec<String>> {
    &e.tables.iter().find(|t| t.name == name).unwrap().rows
}

fn col(e: &Export, name: &str, i: usize) -> Vec<String> {
    rows(e, name).iter().map(|r| r[i].clone()).collect()
}

fn id(n: u128) -> String {
    u(n).to_string()
}

#[test]
fn only_allowed_engagement_types_by_uuid_or_user_key() {
    let e = run(&config());
    let engs = col(&e, "engagement.csv", 0);
    assert!(engs.contains(&id(2000)), "Månedsløn by user_key");
    assert!(engs.contains(&id(2001)), "Timeløn by uuid");
    assert!(!engs.contains(&id(2003)), "Elev is not allowed");
    assert!(
        !col(&e, "bruger.csv", 0).contains(&id(1002)),
        "Cai has no allowed engagement"
    );
    let mut cfg = config();
    cfg.allowed_engagement_types.clear();
    let e = run(&cfg);
    assert!(rows(&e, "engagement.csv").is_empty() && rows(&e, "bruger.csv").is_empty());
}

#[test]
fn too_deep_units_are_left_out_but_not_their_people_or_children() {
    let e = run(&config());
    let units = col(&e, "organisation.csv", 0);
    assert_eq!(
        units,
        vec![id(ROOT), id(ARCHIVE), id(SCHOOL), id(UNDER)],
        "pre-order, siblings by name"
    );
    let under = rows(&e, "organisation.csv")
        .iter()
        .find(|r| r[0] == id(UNDER))
        .unwrap();
    assert_eq!(under[2], id(CLASSROOM), "the child keeps its real parent");
    assert!(
        !col(&e, "engagement.csv", 0).contains(&id(2002)),
        "Bo's engagement is in the too-deep unit"
    );
    assert!(
        col(&e, "bruger.csv", 0).contains(&id(1001)),
        "Bo is still a user"
    );
    assert!(
        !col(&e, "leder.csv", 1).contains(&id(CLASSROOM)),
        "no managers of too-deep units"
    );
}

#[test]
fn active_and_future_engagements_and_start_dates() {
    let e = run(&config());
    let row = |n| {
        rows(&e, "engagement.csv")
            .iter()
            .find(|r| r[0] == id(n))
            .cloned()
            .unwrap()
    };
    assert_eq!((row(2000)[3].as_str(), row(2000)[7].as_str()), ("1", ""));
    assert_eq!(
        (row(2004)[3].as_str(), row(2004)[7].as_str()),
        ("0", "2025-08-01"),
        "Dan starts in August"
    );
    assert!(
        !col(&e, "engagement.csv", 0).contains(&id(2005)),
        "Eva's engagement ended"
    );
    assert!(!col(&e, "bruger.csv", 0).contains(&id(1004)));
    assert!(
        col(&e, "bruger.csv", 0).contains(&id(1003)),
        "a future employee is a known user"
    );
}

#[test]
fn primary_and_job_title_with_the_extension_override() {
    let e = run(&config());
    let row = |n| {
        rows(&e, "engagement.csv")
            .iter()
            .find(|r| r[0] == id(n))
            .cloned()
            .unwrap()
    };
    assert_eq!(row(2000)[5], "1");
    assert_eq!(row(2001)[5], "0");
    assert_eq!(row(2000)[6], "Månedsløn");
    let title = |e: &Export, p| {
        rows(e, "bruger.csv")
            .iter()
            .find(|r| r[0] == id(p))
            .unwrap()[5]
            .clone()
    };
    assert_eq!(
        title(&e, 1000),
        "Lektor",
        "extension_2 overrides the job function"
    );
    assert_eq!(
        title(&e, 1001),
        "Sygeplejerske",
        "falls back to the job function"
    );
    assert_eq!(
        title(&e, 1003),
        "Sygeplejerske",
        "extension_3 is not the configured field"
    );
    let mut cfg = config();
    cfg.job_title_extension = 3;
    let e = run(&cfg);
    assert_eq!(title(&e, 1003), "Arkivar");
    assert_eq!(title(&e, 1000), "Lærer");
}

#[test]
fn email_and_mobile_by_priority_and_visibility() {
    let e = run(&config());
    let user = |e: &Export, p| {
        rows(e, "bruger.csv")
            .iter()
            .find(|r| r[0] == id(p))
            .unwrap()
            .clone()
    };
    assert_eq!(
        user(&e, 1000)[3],
        "anna@skolen.dk",
        "the prioritised type wins"
    );
    assert_eq!(
        user(&e, 1000)[4],
        "",
        "the only mobile is secret; a landline is not a mobile"
    );
    assert_eq!(user(&e, 1001)[4], "+4520202020");
    let mut cfg = config();
    cfg.email_priority.clear();
    let e = run(&cfg);
    assert_eq!(
        user(&e, 1000)[3],
        "anna@skolen.dk",
        "no priority: the lowest uuid among public or unset"
    );
    cfg.email_priority = vec![u(EMAIL).to_string()];
    let e = run(&cfg);
    assert_eq!(
        user(&e, 1000)[3],
        "anna@kommune.dk",
        "the secret e-mail is never chosen"
    );
    cfg.phone_priority.clear();
    let e = run(&cfg);
    assert_eq!(user(&e, 1001)[4], "", "no phone priority: no mobile");
}

#[test]
fn managers_with_their_responsibilities() {
    let e = run(&config());
    assert_eq!(
        rows(&e, "leder.csv"),
        &vec![vec![
            id(1000),
            id(SCHOOL),
            "1".into(),
            "Budgetansvar, Personale: ansættelse/afskedigelse".into()
        ]],
        "vacant and too-deep managers are left out"
    );
}

#[test]
fn unit_addresses_root_parent_and_job_codes() {
    let e = run(&config());
    let org = rows(&e, "organisation.csv");
    assert_eq!(
        org[0],
        vec![
            id(ROOT),
            "Kommunen".into(),
            "".into(),
            "Rådhuspladsen 1".into(),
            "1550".into(),
            "København V".into()
        ]
    );
    assert_eq!(org[1][3..], ["", "", ""], "the archive has no address");
    assert_eq!(org[2][3..], ["Skolevej 2, 1. tv", "8000", "Aarhus C"]);
    assert_eq!(org[2][2], id(ROOT));
    // Only the job functions of exported engagements, by name.
    assert_eq!(
        col(&e, "stillingskode.csv", 2),
        vec!["Lærer", "Sygeplejerske"]
    );
    assert_eq!(
        rows(&e, "stillingskode.csv")[0],
        vec![id(TEACHER), "1".into(), "Lærer".into(), id(TEACHER)]
    );
    // An unknown DAR id: empty fields and a warning.
    let e = export(&snapshot(), &config(), TODAY, &HashMap::new()).unwrap();
    assert_eq!(rows(&e, "organisation.csv")[2][3..], ["", "", ""]);
    assert!(
        e.warnings.iter().any(|w| w.contains("0a3f50a0")),
        "{:?}",
        e.warnings
    );
}

#[test]
fn the_root_must_exist_and_rows_are_stable() {
    let mut cfg = config();
    cfg.root_unit = u(999);
    assert!(
        export(&snapshot(), &cfg, TODAY, &texts())
            .unwrap_err()
            .to_string()
            .contains(&id(999))
    );
    let a = run(&config());
    let b = run(&config());
    assert_eq!(a.tables, b.tables);
    assert_eq!(
        col(&a, "bruger.csv", 2),
        vec!["Anna Testesen", "Dan Testesen", "Bo Testesen"],
        "users in unit pre-order (Skolen's subtree after Arkivet), first unit wins"
    );
}

/// Issue 12, case 6: a person whose primary engagement is of a type that is not exported still
/// gets that engagement's job title as `Stilling` (the seed: "Stillingsbetegnelse for brugerens
/// primærengagement"); only the engagement rows are limited to the allowed types.
#[test]
fn job_title_comes_from_the_primary_engagement_even_of_a_type_not_exported() {
    const VIKAR: u128 = 20;
    const PAEDAGOG: u128 = 21;
    let mut snap = snapshot();
    snap.classes
        .push(obj(u(VIKAR), always(), class("vikar", "Vikar", None)));
    snap.classes.push(obj(
        u(PAEDAGOG),
        always(),
        class("pædagog", "Pædagog", None),
    ));
    snap.persons = vec![obj(u(1010), always(), person("Frida", "0606900000"))];
    let mut e10001 = eng(1010, SCHOOL, VIKAR, PRIMARY, TEACHER, &[]);
    let mut e10002 = eng(1010, SCHOOL, MONTHLY, NON_PRIMARY, PAEDAGOG, &[]);
    for (e, key) in [(&mut e10001, "10001"), (&mut e10002, "10002")] {
        if let Value::Engagement(e) = e {
            e.user_key = key.into();
        }
    }
    let y2020 = from(date(2020, 1, 1));
    snap.engagements = vec![obj(u(2010), y2020, e10001), obj(u(2011), y2020, e10002)];
    snap.person_addresses.clear();
    snap.managers.clear();
    let e = export(&snap, &config(), TODAY, &texts()).unwrap();
    let table = |name| e.tables.iter().find(|t| t.name == name).unwrap();
    assert_eq!(
        String::from_utf8(super::write::csv_bytes(table("bruger.csv"))).unwrap(),
        format!(
            "\"BrugerId\";\"CPR\";\"Navn\";\"E-mail\";\"Mobil\";\"Stilling\"\r\n\
             \"{}\";\"0606900000\";\"Frida Testesen\";\"\";\"\";\"Lærer\"\r\n",
            id(1010)
        )
    );
    assert_eq!(
        rows(&e, "engagement.csv"),
        &vec![vec![
            id(2011),
            id(1010),
            id(SCHOOL),
            "1".into(),
            id(PAEDAGOG),
            "0".into(),
            "Månedsløn".into(),
            "".into(),
        ]],
        "only the Månedsløn engagement is a row"
    );
}
