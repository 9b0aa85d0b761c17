//! History regressions (issue 12, DESIGN.md §2 "History"): the plan for an input that takes
//! effect on day D never changes MO before D unless the input itself dates something earlier.
//! Each case runs against the embedded store and, through the OS2mo GraphQL client, against the
//! loopback OS2mo imitation; both must end with the exact expected slices and the same `mo
//! dump`, and running the last input again must write nothing.

use dipex_backend::os2mo::{Auth, Config as MoConfig};
use dipex_backend::{Backend, Os2mo, Query, Registration, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::los::run as los_run;
use dipex_integrations::los::uuids as los_uuids;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Env, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_integrations::transport::source::Source;
use dipex_model::{Kind, Op, Plan, Value};
use dipex_testkit::os2mo::{MoServer, Options};
use jiff::civil::date;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

struct Fixed {
    n: u128,
}

impl Env for Fixed {
    fn now(&self) -> jiff::civil::DateTime {
        date(2026, 1, 1).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> Uuid {
        self.n += 1;
        Uuid::from_u128(0x4157_0000_0000_4000_8000_0000_0000_0000 + self.n)
    }
}

/// One of the two backends every case runs against.
#[allow(clippy::large_enum_variant)] // one per test
enum Mo {
    Store(Store),
    Server(MoServer, Os2mo),
}

impl Mo {
    fn both(org: (Uuid, &str)) -> [(&'static str, Mo); 2] {
        let server = MoServer::start(Options {
            org: (org.0, org.1.to_string(), org.1.to_string()),
            ..Options::default()
        });
        let mut c = MoConfig::new(
            &server.base_url(),
            Auth::ClientCredentials {
                auth_server: server.auth_server(),
                realm: "mo".into(),
                client_id: "dipex".into(),
                client_secret: "test-secret".into(),
            },
        );
        c.backoff = Duration::from_millis(5);
        let client = Os2mo::new(c).unwrap();
        [
            (
                "embedded store",
                Mo::Store(Store::open_in_memory().unwrap()),
            ),
            ("os2mo imitation", Mo::Server(server, client)),
        ]
    }

    fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Mo::Store(s) => s,
            Mo::Server(_, c) => c,
        }
    }

    fn read(&self) -> &dyn Backend {
        match self {
            Mo::Store(s) => s,
            Mo::Server(_, c) => c,
        }
    }

    /// Mutations the OS2mo imitation executed (0 for the store).
    fn mutations(&self) -> usize {
        match self {
            Mo::Store(_) => 0,
            Mo::Server(s, _) => s.stats().mutations,
        }
    }

    /// The whole `mo dump`.
    fn dump(&self) -> Vec<String> {
        let mut kinds = Kind::ALL.to_vec();
        kinds.sort_by_key(|k| k.as_str());
        kinds
            .into_iter()
            .flat_map(|k| self.read().read(&Query::all(k)).unwrap())
            .map(|o| o.to_dump_json().to_string())
            .collect()
    }

    /// The slices of every object of `kinds`, one line per object: `kind: what [from, to), …`
    /// (engagements: user_key and primary class; addresses: type and value; IT users and the
    /// rest: user_key). Sorted.
    fn view(&self, kinds: &[Kind]) -> Vec<String> {
        let b = self.read();
        let classes: HashMap<Uuid, String> = b
            .read(&Query::all(Kind::Class))
            .unwrap()
            .into_iter()
            .filter_map(|o| match &o.last().value {
                Value::Class(c) => Some((o.uuid, c.user_key.clone())),
                _ => None,
            })
            .collect();
        let class = |u: Option<Uuid>| u.map_or("-".to_string(), |u| classes[&u].clone());
        let mut out = Vec::new();
        for k in kinds {
            for o in b.read(&Query::all(*k)).unwrap() {
                let slices: Vec<String> = o
                    .slices
                    .iter()
                    .map(|s| {
                        let what = match &s.value {
                            Value::Engagement(e) => format!("{} {}", e.user_key, class(e.primary)),
                            Value::Address(a) => {
                                format!("{} {}", class(Some(a.address_type)), a.value)
                            }
                            v => v.user_key().to_string(),
                        };
                        format!("{what} {}", s.validity)
                    })
                    .collect();
                out.push(format!("{k}: {}", slices.join(", ")));
            }
        }
        out.sort();
        out
    }
}

// ----- OPUS -----

const MUNICIPALITY: &str = "Historik Kommune";

fn opus_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/opus")
}

/// A unit record.
fn unit(id: &str, parent: &str, start: &str, last_changed: &str, street: &str) -> String {
    format!(
        r#"<orgUnit id="{id}" client="813" lastChanged="{last_changed}">
    <startDate>{start}</startDate><endDate>9999-12-31</endDate>
    <parentOrgUnit>{parent}</parentOrgUnit><longName>Enhed {id}</longName>
    <street>{street}</street><zipCode>8880</zipCode><phoneNumber>8765{id:0>4}</phoneNumber>
    <orgType>00001</orgType><orgTypeTxt>Afdeling</orgTypeTxt>
  </orgUnit>
"#
    )
}

/// An employment in unit 1. `address`: the raw `<address>`/`<postalCode>` elements.
fn employee(
    id: &str,
    cpr: &str,
    last_changed: &str,
    entry: &str,
    user_id: &str,
    address: &str,
) -> String {
    format!(
        r#"<employee id="{id}" client="813" lastChanged="{last_changed}">
    <entryDate>{entry}</entryDate><leaveDate/>
    <cpr suppId="0">{cpr}</cpr><firstName>Test</firstName><lastName>Person</lastName>
    {address}
    <userId>{user_id}</userId>
    <workContractText>Ansat</workContractText><position>Pædagog</position>
    <orgUnit>1</orgUnit>
  </employee>
"#
    )
}

fn dump_xml(records: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- Synthetic; CPR numbers are synthetic. -->\n<kmd>\n{}</kmd>\n",
        records.concat()
    )
}

/// The root unit every employment sits in.
fn root_unit() -> String {
    unit("1", "", "1900-01-01", "2019-01-01", "Rådhuspladsen 1")
}

fn dump_name(day: &str) -> String {
    format!("ZLPE{}220000_delta.xml", day.replace('-', ""))
}

/// An OPUS import world: dumps folder, run database, offline register.
struct Opus {
    _dir: tempfile::TempDir,
    dumps: PathBuf,
    run_db: PathBuf,
    cfg: Config,
    register: OfflineRegister,
}

impl Opus {
    fn new() -> Opus {
        let dir = tempfile::tempdir().unwrap();
        let dumps = dir.path().join("dumps");
        std::fs::create_dir(&dumps).unwrap();
        Opus {
            dumps,
            run_db: dir.path().join("run_db.sqlite"),
            cfg: Config::new(MUNICIPALITY),
            register: OfflineRegister::load(opus_fixtures().join("adresser.csv")).unwrap(),
            _dir: dir,
        }
    }

    fn import(&self, mo: &mut Mo, dry_run: bool) -> run::ImportReport {
        let cpr_map = HashMap::new();
        let job = Job {
            cfg: &self.cfg,
            register: &self.register,
            cpr_map: &cpr_map,
            ad: None,
            dry_run,
            only: None,
        };
        let mut db = RunDb::open(&self.run_db).unwrap();
        let files = list_dumps(&self.dumps).unwrap().0;
        run::import(
            mo.backend(),
            Some(&mut db),
            &job,
            &mut Fixed { n: 0 },
            &files,
            Mode::All,
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Add the dump of `day` and import it.
    fn day(&self, mo: &mut Mo, day: &str, records: &[String]) {
        std::fs::write(self.dumps.join(dump_name(day)), dump_xml(records)).unwrap();
        let r = self.import(mo, false);
        assert_eq!(r.dumps.len(), 1);
        assert_eq!(r.rejected(), 0, "{:?}", r.dumps[0].rejected);
    }

    /// Import the last dump once more (its run rows removed, so it is pending again, compared
    /// with the dump before it): nothing is written.
    fn again_writes_nothing(&self, mo: &mut Mo, name: &str) {
        let db = rusqlite::Connection::open(&self.run_db).unwrap();
        db.execute(
            "DELETE FROM runs WHERE id IN (SELECT id FROM runs ORDER BY id DESC LIMIT 2)",
            [],
        )
        .unwrap();
        drop(db);
        let (before, mutations) = (mo.dump(), mo.mutations());
        let r = self.import(mo, false);
        assert_eq!(r.dumps.len(), 1, "{name}: the last dump is imported again");
        assert_eq!(
            r.counts(),
            Default::default(),
            "{name}: a second run writes nothing"
        );
        assert_eq!(mo.mutations(), mutations, "{name}: no mutation sent");
        assert_eq!(mo.dump(), before, "{name}");
    }
}

/// Run `days` (dump date, records) through both backends; each must end with `expected` for
/// `kinds`, both with the same `mo dump`, and the last dump imported again writes nothing.
fn opus_case(days: &[(&str, Vec<String>)], kinds: &[Kind], expected: &[&str]) {
    let cfg = Config::new(MUNICIPALITY);
    let mut dumps = Vec::new();
    for (name, mut mo) in Mo::both((cfg.uuids.base(), MUNICIPALITY)) {
        let w = Opus::new();
        for (day, records) in days {
            w.day(&mut mo, day, records);
        }
        assert_eq!(mo.view(kinds), expected, "{name}");
        w.again_writes_nothing(&mut mo, name);
        dumps.push(mo.dump());
    }
    assert_eq!(dumps[0], dumps[1], "the store and OS2mo hold the same");
}

const CPR1: &str = "1111119001";
const CPR2: &str = "1111119002";
const CPR3: &str = "1111119003";
const CPR4: &str = "1111119004";
const CPR5: &str = "1111119005";
const CPR6: &str = "1111119006";
const CPR7: &str = "1111119007";
const CPR8: &str = "1111119008";
const CPR9: &str = "1111119009";

/// Case 1: the primary engagement holds per period, past and future, and changes exactly where
/// the person's set of engagements changes.
#[test]
fn opus_primary_is_computed_for_every_period() {
    let day1 = vec![
        root_unit(),
        employee("1001", CPR1, "2023-06-01", "2020-01-01", "p1", ""),
        employee("1000", CPR1, "2023-06-01", "2022-01-01", "p1", ""),
    ];
    // Day 2: a third employment from 2023-01-01 with the lowest number takes over from then;
    // the history before that day stays.
    let mut day2 = day1.clone();
    day2.push(employee("999", CPR1, "2024-01-02", "2023-01-01", "p1", ""));
    opus_case(
        &[("2024-01-01", day1.clone())],
        &[Kind::Engagement],
        &[
            "engagement: 1000 primary [2022-01-01, inf)",
            "engagement: 1001 primary [2020-01-01, 2022-01-01), 1001 non-primary [2022-01-01, inf)",
        ],
    );
    opus_case(
        &[("2024-01-01", day1), ("2024-01-02", day2)],
        &[Kind::Engagement],
        &[
            "engagement: 1000 primary [2022-01-01, 2023-01-01), 1000 non-primary [2023-01-01, inf)",
            "engagement: 1001 primary [2020-01-01, 2022-01-01), 1001 non-primary [2022-01-01, inf)",
            "engagement: 999 primary [2023-01-01, inf)",
        ],
    );
}

/// Case 2a: a second employment with a new userId: the new IT user starts at that employment's
/// change (lastChanged = day 2), not at the person's first day.
#[test]
fn opus_new_it_user_starts_with_its_employment_change() {
    let day1 = vec![
        root_unit(),
        employee("2001", CPR2, "2023-01-01", "2020-01-01", "u1", ""),
    ];
    let mut day2 = day1.clone();
    day2.push(employee("2002", CPR2, "2024-01-02", "2021-01-01", "u2", ""));
    opus_case(
        &[("2024-01-01", day1), ("2024-01-02", day2)],
        &[Kind::ItUser],
        &[
            "it_user: u1 [2023-01-01, inf)",
            "it_user: u2 [2024-01-02, inf)",
        ],
    );
}

/// Case 2b: the IT user of an employment that leaves keeps its history and ends with the
/// engagement (the dump date is its last day).
#[test]
fn opus_it_user_of_a_leaving_employment_keeps_its_history() {
    let day1 = vec![
        root_unit(),
        employee("3001", CPR3, "2023-01-01", "2020-01-01", "u3a", ""),
        employee("3002", CPR3, "2023-01-01", "2021-01-01", "u3b", ""),
    ];
    let day2 = vec![
        day1[0].clone(),
        day1[1].clone(),
        "<employee id=\"3002\" client=\"813\" action=\"leave\"/>\n".to_string(),
    ];
    opus_case(
        &[("2024-01-01", day1), ("2024-01-02", day2)],
        &[Kind::ItUser, Kind::Engagement],
        &[
            "engagement: 3001 primary [2020-01-01, inf)",
            "engagement: 3002 non-primary [2021-01-01, 2024-01-03)",
            "it_user: u3a [2023-01-01, inf)",
            "it_user: u3b [2023-01-01, 2024-01-03)",
        ],
    );
}

/// Case 2c: userId u → x → u on three days: u, then x, then u again; one Opus IT user a day.
#[test]
fn opus_it_user_that_comes_back_keeps_the_gap() {
    let rec = |lc: &str, user: &str| {
        vec![
            root_unit(),
            employee("4001", CPR4, lc, "2020-01-01", user, ""),
        ]
    };
    opus_case(
        &[
            ("2024-01-01", rec("2024-01-01", "u")),
            ("2024-01-02", rec("2024-01-02", "x")),
            ("2024-01-03", rec("2024-01-03", "u")),
        ],
        &[Kind::ItUser],
        &[
            "it_user: u [2024-01-01, 2024-01-02), u [2024-01-03, inf)",
            "it_user: x [2024-01-02, 2024-01-03)",
        ],
    );
}

/// Case 3: address A, then protected (A ends), then address B from its lastChanged: B starts
/// on day 3, the protected day stays without an address.
#[test]
fn opus_address_after_protection_starts_at_its_change() {
    let a = "<address>Østergade 10</address><postalCode>9900</postalCode>";
    let protected = "<address><protectedAddress>true</protectedAddress></address><postalCode/>";
    let b = "<address>Havnevej 4, 2. tv</address><postalCode>9900</postalCode>";
    let rec = |lc: &str, addr: &str| {
        vec![
            root_unit(),
            employee("5001", CPR5, lc, "2020-01-01", "e5", addr),
        ]
    };
    let cfg = Config::new(MUNICIPALITY);
    let mut view = Vec::new();
    for (name, mut mo) in Mo::both((cfg.uuids.base(), MUNICIPALITY)) {
        let w = Opus::new();
        w.day(&mut mo, "2024-01-01", &rec("2024-01-01", a));
        w.day(&mut mo, "2024-01-02", &rec("2024-01-02", protected));
        w.day(&mut mo, "2024-01-03", &rec("2024-01-03", b));
        let persons: Vec<String> = mo
            .view(&[Kind::Address])
            .into_iter()
            .filter(|l| l.contains("Adresse"))
            .collect();
        assert_eq!(
            persons,
            [
                "address: Adresse 0a3f50a0-0001-4e1c-9a6b-000000000001 [1900-01-01, inf)",
                "address: Adresse 0a3f50a0-0010-4e1c-9a6b-000000000010 [2024-01-01, 2024-01-02), Adresse 0a3f50a0-0011-4e1c-9a6b-000000000011 [2024-01-03, inf)",
            ],
            "{name}"
        );
        w.again_writes_nothing(&mut mo, name);
        view.push(mo.dump());
    }
    assert_eq!(view[0], view[1]);
}

/// Case 4: a first import cut off after the units were written but before their addresses;
/// the re-run dates the addresses from the units' start (the source says they are new), and
/// ends with the same history as an uninterrupted import.
#[test]
fn opus_interrupted_first_import_dates_unit_addresses_by_the_source() {
    let records = vec![
        unit("1", "", "2010-01-01", "2023-05-01", "Rådhuspladsen 1"),
        unit("2", "1", "2015-03-01", "2023-05-01", "Skolegade 2"),
    ];
    let cfg = Config::new(MUNICIPALITY);
    let expected = [
        "address: Adresse 0a3f50a0-0001-4e1c-9a6b-000000000001 [2010-01-01, inf)",
        "address: Adresse 0a3f50a0-0002-4e1c-9a6b-000000000002 [2015-03-01, inf)",
        "address: Telefon 87650001 [2010-01-01, inf)",
        "address: Telefon 87650002 [2015-03-01, inf)",
        "org_unit: 1 [2010-01-01, inf)",
        "org_unit: 2 [2015-03-01, inf)",
    ];
    let mut dumps = Vec::new();
    for (name, mut mo) in Mo::both((cfg.uuids.base(), MUNICIPALITY)) {
        // The uninterrupted import, for comparison.
        let (_, mut clean) = Mo::both((cfg.uuids.base(), MUNICIPALITY))
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap();
        let whole = Opus::new();
        whole.day(&mut clean, "2024-01-01", &records);
        // The interrupted one: what the plan writes before the first address, then a re-run.
        let w = Opus::new();
        std::fs::write(w.dumps.join(dump_name("2024-01-01")), dump_xml(&records)).unwrap();
        let dry = w.import(&mut mo, true);
        let plan = dry.dumps[0].plan.clone().unwrap();
        let cut = plan
            .ops
            .iter()
            .position(|op| op.kind() == Kind::Address)
            .unwrap();
        assert!(
            plan.ops[..cut].iter().any(|op| matches!(
                op,
                Op::Create {
                    value: Value::OrgUnit(_),
                    ..
                }
            )),
            "the units come before the cut"
        );
        let reg = Registration {
            at: jiff::Timestamp::now(),
            actor: "test".into(),
            note: "interrupted".into(),
        };
        mo.backend()
            .apply(
                Plan {
                    ops: plan.ops[..cut].to_vec(),
                },
                &reg,
            )
            .unwrap();
        let r = w.import(&mut mo, false);
        assert_eq!(r.dumps.len(), 1);
        assert_eq!(mo.view(&[Kind::Address, Kind::OrgUnit]), expected, "{name}");
        assert_eq!(mo.dump(), clean.dump(), "{name}: same as uninterrupted");
        w.again_writes_nothing(&mut mo, name);
        dumps.push(mo.dump());
    }
    assert_eq!(dumps[0], dumps[1]);
}

// ----- LOS -----

/// Found by the oracle: a person who becomes a manager is one from that change on, not from
/// the employment's `entryDate`.
#[test]
fn opus_manager_starts_when_the_flag_turns_true() {
    let plain = employee("6001", CPR6, "2024-01-01", "2020-01-01", "m6", "");
    let manager = plain
        .replace("2024-01-01", "2024-01-02")
        .replace(
            "<orgUnit>1</orgUnit>",
            "<orgUnit>1</orgUnit><isManager>true</isManager><superiorLevel>1</superiorLevel><subordinateLevel>02</subordinateLevel>",
        );
    opus_case(
        &[
            ("2024-01-01", vec![root_unit(), plain]),
            ("2024-01-02", vec![root_unit(), manager]),
        ],
        &[Kind::Manager, Kind::Engagement],
        &[
            "engagement: 6001 primary [2020-01-01, inf)",
            "manager: 6001 [2024-01-02, inf)",
        ],
    );
}

/// Found by the oracle: an employment hired without `entryDate` starts at the `lastChanged` it
/// was hired with, and keeps that start when a later change brings a newer `lastChanged`.
#[test]
fn opus_employment_without_entry_date_keeps_its_start() {
    let day1 = employee("7001", CPR7, "2024-01-01", "", "u7", "");
    let day2 = employee("7001", CPR7, "2024-01-02", "", "u7", "").replace("Pædagog", "Lærer");
    opus_case(
        &[
            ("2024-01-01", vec![root_unit(), day1]),
            ("2024-01-02", vec![root_unit(), day2]),
        ],
        &[Kind::Engagement, Kind::ItUser],
        &[
            "engagement: 7001 primary [2024-01-01, 2024-01-02), 7001 primary [2024-01-02, inf)",
            "it_user: u7 [2024-01-01, inf)",
        ],
    );
}

/// Found by the oracle: a change of the job dated in the past (`lastChanged` before the day the
/// person's IT user and address were written) leaves the facts it does not change where they
/// are: the IT user and the postal address keep their start (the unit's own addresses are
/// listed too).
#[test]
fn opus_unchanged_person_facts_keep_their_dates() {
    let address = "<address>Rådhuspladsen 1</address><postalCode>8880</postalCode>";
    let day1 = employee("8001", CPR8, "2024-01-01", "2020-01-01", "u8", address);
    let day2 = employee("8001", CPR8, "2023-06-01", "2020-01-01", "u8", address)
        .replace("Pædagog", "Lærer");
    opus_case(
        &[
            ("2024-01-01", vec![root_unit(), day1]),
            ("2024-01-02", vec![root_unit(), day2]),
        ],
        &[Kind::ItUser, Kind::Address],
        &[
            "address: Adresse 0a3f50a0-0001-4e1c-9a6b-000000000001 [1900-01-01, inf)",
            "address: Adresse 0a3f50a0-0001-4e1c-9a6b-000000000001 [2024-01-01, inf)",
            "address: Telefon 87650001 [1900-01-01, inf)",
            "it_user: u8 [2024-01-01, inf)",
        ],
    );
}

/// Found by the oracle: when a person's last employment leaves (a leave marker), the Opus IT
/// user ends with it (the dump date is its last day).
#[test]
fn opus_it_user_ends_when_the_last_employment_leaves() {
    opus_case(
        &[
            (
                "2024-01-01",
                vec![
                    root_unit(),
                    employee("9001", CPR9, "2023-01-01", "2020-01-01", "u9", ""),
                ],
            ),
            (
                "2024-01-02",
                vec![
                    root_unit(),
                    "<employee id=\"9001\" client=\"813\" action=\"leave\"/>\n".to_string(),
                ],
            ),
        ],
        &[Kind::ItUser, Kind::Engagement],
        &[
            "engagement: 9001 primary [2020-01-01, 2024-01-03)",
            "it_user: u9 [2023-01-01, 2024-01-03)",
        ],
    );
}

/// Found on a real OS2mo (it refuses to end a unit that still has addresses,
/// `V_TERMINATE_UNIT_WITH_ROLES`): a unit that vanishes from the dump ends with its addresses,
/// the dump date being the last day of both.
#[test]
fn opus_a_vanished_unit_ends_with_its_addresses() {
    let day1 = vec![
        root_unit(),
        unit("2", "1", "2020-01-01", "2023-01-01", "Skolegade 2"),
    ];
    let day2 = vec![root_unit()];
    opus_case(
        &[("2024-01-01", day1), ("2024-01-02", day2)],
        &[Kind::OrgUnit, Kind::Address],
        &[
            "address: Adresse 0a3f50a0-0001-4e1c-9a6b-000000000001 [1900-01-01, inf)",
            "address: Adresse 0a3f50a0-0002-4e1c-9a6b-000000000002 [2020-01-01, 2024-01-03)",
            "address: Telefon 87650001 [1900-01-01, inf)",
            "address: Telefon 87650002 [2020-01-01, 2024-01-03)",
            "org_unit: 1 [1900-01-01, inf)",
            "org_unit: 2 [2020-01-01, 2024-01-03)",
        ],
    );
}

fn los_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/los")
}

const LOS_UNIT: &str = "a7000000-0000-4000-8000-000000000001";
const LOS_ENGAGEMENT: &str = "c7000000-0000-4000-8000-000000000001";

fn los_org_nye() -> String {
    format!(
        "StartDato;SlutDato;OrgUUID;ParentUUID;BrugervendtNøgle;OrgEnhedsNavn;OrgEnhedsTypeUUID;Med-i-LinjeOrg;LOSID;EAN;PostAdresse\n\
         01-01-2020;31-12-9999;{LOS_UNIT};{LOS_UNIT};HIS;Historik;b1000000-0000-4000-8000-000000000002;Nej;9001;;\n"
    )
}

fn los_person(email: &str, azid: &str) -> String {
    format!(
        "UUID;BrugervendtNøgle;CPR;CPRNavn;StartTid;SlutTid;Email;PrimærAnsættelse;OrgenhedUUID;EngagementTypeUUID;AZID;ADITSystemUUID;ADkonto;ADkontoUUID;StillingsBetegnelseUUID\n\
         {LOS_ENGAGEMENT};700001;1111119006;Hanne Historik;01-01-2020;31-12-9999;{email};Ja;{LOS_UNIT};b2000000-0000-4000-8000-000000000001;{azid};;;;b3000000-0000-4000-8000-000000000001\n"
    )
}

/// Case 5: a `Pers_ret` row keeps the e-mail and AZ user of `Pers_nye` before its file date:
/// an identical row writes nothing, a changed one changes them from the file date only.
#[test]
fn los_pers_ret_changes_email_and_az_from_its_file_date_only() {
    for (name, mut mo) in Mo::both((
        Uuid::parse_str(los_uuids::ORG_UUID).unwrap(),
        "Århus Kommune",
    )) {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir(&files).unwrap();
        let state = dir.path().join("los_state");
        let register = OfflineRegister::load(los_fixtures().join("adresser.csv")).unwrap();
        // The classes the rows name come from the fixtures' STAM files.
        for e in std::fs::read_dir(los_fixtures().join("ok")).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("STAM_") {
                std::fs::copy(e.path(), files.join(e.file_name())).unwrap();
            }
        }
        let source = Source::Local(files.clone());
        let run = |mo: &mut Mo, new_files: &[(&str, String)]| {
            // Files count by modification time, to the second (a file of the same second as the
            // last run's start is read again): files already delivered are made an hour older.
            let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
            for e in std::fs::read_dir(&files).unwrap() {
                let f = std::fs::File::options()
                    .write(true)
                    .open(e.unwrap().path())
                    .unwrap();
                f.set_modified(hour_ago).unwrap();
            }
            for (f, text) in new_files {
                std::fs::write(files.join(f), text).unwrap();
            }
            let job = los_run::Job {
                source: &source,
                register: &register,
                state_file: &state,
                azid_system: Uuid::parse_str(los_uuids::AZID_SYSTEM).unwrap(),
                from_date: None,
                dry_run: false,
            };
            let r = los_run::import(mo.backend(), &job, &mut Fixed { n: 0 })
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.rejected(), 0, "{name}");
            r
        };
        run(
            &mut mo,
            &[
                ("Org_nye_20240101_020000.csv", los_org_nye()),
                (
                    "Pers_nye_20240115_020000.csv",
                    los_person("hanne@aarhus.example", "az700001"),
                ),
            ],
        );
        // The person's e-mail and AZ user (the unit has its LOS ID address too).
        let view = |mo: &Mo| -> Vec<String> {
            mo.view(&[Kind::Address, Kind::ItUser])
                .into_iter()
                .filter(|l| l.contains("hanne") || l.contains("az7"))
                .collect()
        };
        assert_eq!(
            view(&mo),
            [
                "address: EmailEmployee hanne@aarhus.example [2024-01-15, inf)",
                "it_user: az700001 [2024-01-15, inf)",
            ],
            "{name}"
        );
        // An identical Pers_ret: nothing is written, the start stays.
        let (before, mutations) = (mo.dump(), mo.mutations());
        let r = run(
            &mut mo,
            &[(
                "Pers_ret_20240301_020000.csv",
                los_person("hanne@aarhus.example", "az700001"),
            )],
        );
        assert_eq!(r.files.len(), 1, "{name}");
        assert!(r.files[0].plan.is_empty(), "{name}: {:?}", r.files[0].plan);
        assert_eq!(mo.mutations(), mutations, "{name}");
        assert_eq!(mo.dump(), before, "{name}");
        // A changed Pers_ret: the old values stay before its file date.
        let changed = los_person("hanne.h@aarhus.example", "az700002");
        run(
            &mut mo,
            &[("Pers_ret_20240401_020000.csv", changed.clone())],
        );
        assert_eq!(
            view(&mo),
            [
                "address: EmailEmployee hanne@aarhus.example [2024-01-15, 2024-04-01), EmailEmployee hanne.h@aarhus.example [2024-04-01, inf)",
                "it_user: az700001 [2024-01-15, 2024-04-01), az700002 [2024-04-01, inf)",
            ],
            "{name}"
        );
        // The same file delivered again: nothing is written.
        let (before, mutations) = (mo.dump(), mo.mutations());
        let r = run(&mut mo, &[("Pers_ret_20240401_020000.csv", changed)]);
        assert_eq!(r.files.len(), 1, "{name}");
        assert!(r.files[0].plan.is_empty(), "{name}: {:?}", r.files[0].plan);
        assert_eq!(mo.mutations(), mutations, "{name}");
        assert_eq!(mo.dump(), before, "{name}");
    }
}

/// A LOS source folder with the fixtures' STAM files, a state file and the fixtures' register;
/// each run delivers new files (the ones already there made an hour older, so only the new ones
/// are read).
struct LosFolder {
    _dir: tempfile::TempDir,
    files: PathBuf,
    state: PathBuf,
    register: OfflineRegister,
}

impl LosFolder {
    fn new() -> LosFolder {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir(&files).unwrap();
        for e in std::fs::read_dir(los_fixtures().join("ok")).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("STAM_") {
                std::fs::copy(e.path(), files.join(e.file_name())).unwrap();
            }
        }
        LosFolder {
            state: dir.path().join("los_state"),
            register: OfflineRegister::load(los_fixtures().join("adresser.csv")).unwrap(),
            files,
            _dir: dir,
        }
    }

    fn run(&self, mo: &mut Mo, name: &str, new_files: &[(&str, String)]) -> los_run::Report {
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for e in std::fs::read_dir(&self.files).unwrap() {
            let path = e.unwrap().path();
            if path.is_file() {
                let f = std::fs::File::options().write(true).open(path).unwrap();
                f.set_modified(hour_ago).unwrap();
            }
        }
        for (f, text) in new_files {
            std::fs::write(self.files.join(f), text).unwrap();
        }
        let source = Source::Local(self.files.clone());
        let job = los_run::Job {
            source: &source,
            register: &self.register,
            state_file: &self.state,
            azid_system: Uuid::parse_str(los_uuids::AZID_SYSTEM).unwrap(),
            from_date: None,
            dry_run: false,
        };
        let r = los_run::import(mo.backend(), &job, &mut Fixed { n: 0 })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.rejected(), 0, "{name}");
        r
    }

    /// The last run's files, delivered again: nothing is written.
    fn again_writes_nothing(&self, mo: &mut Mo, name: &str, files: &[(&str, String)]) {
        let (before, mutations) = (mo.dump(), mo.mutations());
        let r = self.run(mo, name, files);
        assert_eq!(r.files.len(), files.len(), "{name}");
        for f in &r.files {
            assert!(f.plan.is_empty(), "{name}: {}: {:?}", f.name, f.plan);
        }
        assert_eq!(mo.mutations(), mutations, "{name}");
        assert_eq!(mo.dump(), before, "{name}");
    }
}

fn los_person_row(engagement: &str, user_key: &str, name: &str) -> String {
    format!(
        "UUID;BrugervendtNøgle;CPR;CPRNavn;StartTid;SlutTid;Email;PrimærAnsættelse;OrgenhedUUID;EngagementTypeUUID;AZID;ADITSystemUUID;ADkonto;ADkontoUUID;StillingsBetegnelseUUID\n\
         {engagement};{user_key};1111119006;{name};01-01-2020;31-12-9999;;Ja;{LOS_UNIT};b2000000-0000-4000-8000-000000000001;;;;;b3000000-0000-4000-8000-000000000001\n"
    )
}

/// Persons as `given surname [from, to)` and managers as `level [from, to)`, one line per
/// object.
fn los_people_view(mo: &Mo) -> Vec<String> {
    let b = mo.read();
    let classes: HashMap<Uuid, String> = b
        .read(&Query::all(Kind::Class))
        .unwrap()
        .into_iter()
        .map(|o| (o.uuid, o.last().value.user_key().to_string()))
        .collect();
    let mut out = Vec::new();
    for k in [Kind::Person, Kind::Manager] {
        for o in b.read(&Query::all(k)).unwrap() {
            let slices: Vec<String> = o
                .slices
                .iter()
                .map(|s| match &s.value {
                    Value::Person(p) => format!("{} {} {}", p.given_name, p.surname, s.validity),
                    Value::Manager(m) => format!("{} {}", classes[&m.manager_level], s.validity),
                    v => format!("{} {}", v.user_key(), s.validity),
                })
                .collect();
            out.push(format!("{k}: {}", slices.join(", ")));
        }
    }
    out
}

/// Found by the LOS oracle: a `Pers_nye` row of a person MO already has (a second engagement)
/// wrote the person's name since always, wiping the name history a `Pers_ret` had made. LOS
/// does not date a name: such a row speaks from its file date, and an unchanged name writes
/// nothing.
#[test]
fn los_pers_nye_of_a_known_person_keeps_the_name_history() {
    const SECOND: &str = "c7000000-0000-4000-8000-000000000002";
    for (name, mut mo) in Mo::both((
        Uuid::parse_str(los_uuids::ORG_UUID).unwrap(),
        "Århus Kommune",
    )) {
        let los = LosFolder::new();
        los.run(
            &mut mo,
            name,
            &[
                ("Org_nye_20240101_020000.csv", los_org_nye()),
                (
                    "Pers_nye_20240115_020000.csv",
                    los_person_row(LOS_ENGAGEMENT, "700001", "Hanne Historik"),
                ),
            ],
        );
        los.run(
            &mut mo,
            name,
            &[(
                "Pers_ret_20240301_020000.csv",
                los_person_row(LOS_ENGAGEMENT, "700001", "Hanne Hansen"),
            )],
        );
        let expected =
            ["person: Hanne Historik [-inf, 2024-03-01), Hanne Hansen [2024-03-01, inf)"];
        assert_eq!(los_people_view(&mo), expected, "{name}");
        let second = [(
            "Pers_nye_20240401_020000.csv",
            los_person_row(SECOND, "700002", "Hanne Hansen"),
        )];
        let r = los.run(&mut mo, name, &second);
        assert_eq!(r.files.len(), 1, "{name}");
        let written: Vec<(Kind, Uuid)> = r.files[0]
            .plan
            .ops
            .iter()
            .map(|op| (op.kind(), op.uuid()))
            .collect();
        assert_eq!(
            written,
            [(Kind::Engagement, Uuid::parse_str(SECOND).unwrap())],
            "{name}: only the new engagement is written"
        );
        assert_eq!(los_people_view(&mo), expected, "{name}");
        los.again_writes_nothing(&mut mo, name, &second);
    }
}

/// Found by the LOS oracle: a manager ended by `Leder_luk` and named again by a later
/// `Leder_nye` lost the earlier period (the new row was taken as the manager's whole life), and
/// a `Leder_ret` would fill the gap. Both write from the file date only.
#[test]
fn los_manager_that_comes_back_keeps_its_earlier_period() {
    let leder = |level: u8| {
        format!(
            "OrgUUID;CPR;LedertypeUUID;LederniveauUUID;LederansvarUUID\n\
             {LOS_UNIT};1111119006;b7000000-0000-4000-8000-000000000001;b6000000-0000-4000-8000-00000000000{level};b5000000-0000-4000-8000-000000000001\n"
        )
    };
    for (name, mut mo) in Mo::both((
        Uuid::parse_str(los_uuids::ORG_UUID).unwrap(),
        "Århus Kommune",
    )) {
        let los = LosFolder::new();
        los.run(
            &mut mo,
            name,
            &[
                ("Org_nye_20240101_020000.csv", los_org_nye()),
                (
                    "Pers_nye_20240115_020000.csv",
                    los_person_row(LOS_ENGAGEMENT, "700001", "Hanne Historik"),
                ),
                ("Leder_nye_20240201_020000.csv", leder(1)),
            ],
        );
        los.run(
            &mut mo,
            name,
            &[(
                "Leder_luk_20240301_020000.csv",
                format!("OrgUUID;CPR\n{LOS_UNIT};1111119006\n"),
            )],
        );
        los.run(
            &mut mo,
            name,
            &[("Leder_nye_20240401_020000.csv", leder(1))],
        );
        assert_eq!(
            los_people_view(&mo),
            [
                "person: Hanne Historik [-inf, inf)",
                "manager: Niveau 1 [2024-02-01, 2024-03-02), Niveau 1 [2024-04-01, inf)",
            ],
            "{name}"
        );
        let ret = [("Leder_ret_20240501_020000.csv", leder(2))];
        los.run(&mut mo, name, &ret);
        assert_eq!(
            los_people_view(&mo),
            [
                "person: Hanne Historik [-inf, inf)",
                "manager: Niveau 1 [2024-02-01, 2024-03-02), Niveau 1 [2024-04-01, 2024-05-01), Niveau 2 [2024-05-01, inf)",
            ],
            "{name}"
        );
        los.again_writes_nothing(&mut mo, name, &ret);
    }
}
