//! The OPUS import into OS2mo: the same dumps imported into the embedded store and, through the
//! The OPUS import into OS2mo: the same dumps imported into the embedded store and, through the
//! OS2mo GraphQL client, into an OS2mo-protocol server on loopback or a real OS2mo
//! (`OS2MO_URL`/`OS2MO_SESSION`, started by `.ci/run`; SKIPPED without it, a failure under
//! `CI=true`) give the same objects; a second run writes nothing; a run whose OS2mo fails halfway
//! can simply be run again.

use dipex_backend::os2mo::{Auth, Config as MoConfig};
use dipex_backend::{Backend, Os2mo, Query, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Env, Job, Mode, RunError};
use dipex_integrations::opus::state::RunDb;
use dipex_model::Kind;
use dipex_testkit::os2mo::{MoServer, Options};
use jiff::civil::date;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

struct Fixed {
    /// New uuids are `base + 1`, `base + 2`, …
    base: u128,
    n: u128,
}

const BASE: u128 = 0xfeed_0000_0000_0000_0000_0000_0000_0000;

impl Env for Fixed {
    fn now(&self) -> jiff::civil::DateTime {
        date(2026, 1, 1).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH
    }
    fn new_uuid(&mut self) -> Uuid {
        self.n += 1;
        Uuid::from_u128(self.base + self.n)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Import every dump of `dumps` into `backend`, with a run database in `state`.
fn import(
    backend: &mut dyn Backend,
    cfg: &Config,
    dumps: &Path,
    register: &Path,
    state: &Path,
) -> Result<run::ImportReport, RunError> {
    import_with(backend, cfg, dumps, register, state, BASE)
}

/// [`import`] with new uuids from `base` on.
fn import_with(
    backend: &mut dyn Backend,
    cfg: &Config,
    dumps: &Path,
    register: &Path,
    state: &Path,
    base: u128,
) -> Result<run::ImportReport, RunError> {
    let register = OfflineRegister::load(register).unwrap();
    let cpr_map = HashMap::new();
    let job = Job {
        cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let mut db = RunDb::open(&state.join("run_db.sqlite")).unwrap();
    let files = list_dumps(dumps).unwrap().0;
    run::import(
        backend,
        Some(&mut db),
        &job,
        &mut Fixed { base, n: 0 },
        &files,
        Mode::All,
        &mut |_| {},
    )
}

fn dump(b: &dyn Backend) -> Vec<String> {
    let mut kinds = Kind::ALL.to_vec();
    kinds.sort_by_key(|k| k.as_str());
    kinds
        .into_iter()
        .flat_map(|k| b.read(&Query::all(k)).unwrap())
        .map(|o| o.to_dump_json().to_string())
        .collect()
}

fn server_for(cfg: &Config) -> MoServer {
    MoServer::start(Options {
        // OS2mo has its root organisation already; give it the one the embedded store gets.
        org: (
            cfg.uuids.base(),
            cfg.municipality_name.clone(),
            cfg.municipality_name.clone(),
        ),
        ..Options::default()
    })
}

fn client(server: &MoServer, batch: usize) -> Os2mo {
    let mut c = MoConfig::new(
        &server.base_url(),
        Auth::ClientCredentials {
            auth_server: server.auth_server(),
            realm: "mo".into(),
            client_id: "dipex".into(),
            client_secret: "test-secret".into(),
        },
    );
    c.batch_size = batch;
    c.backoff = Duration::from_millis(5);
    Os2mo::new(c).unwrap()
}

fn same_dump_on_both(name: &str, dumps: &Path, register: &Path) {
    let cfg = Config::new(name);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut store = Store::open_in_memory().unwrap();
    let in_store = import(&mut store, &cfg, dumps, register, &a).unwrap();
    let server = server_for(&cfg);
    let mut mo = client(&server, 100);
    let in_mo = import(&mut mo, &cfg, dumps, register, &b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_store.dumps.len(), in_mo.dumps.len());
    let (left, right) = (dump(&store), dump(&mo));
    let differ: Vec<(&String, &String)> = left
        .iter()
        .zip(&right)
        .filter(|(l, r)| l != r)
        .take(3)
        .collect();
    assert!(
        differ.is_empty() && left.len() == right.len(),
        "{} vs {} lines; first differences: {differ:#?}",
        left.len(),
        right.len()
    );
    assert!(left.len() > 20);
    assert_eq!(
        server.stats().rolled_back,
        0,
        "no request was silently dropped"
    );
    let requests = server.stats().graphql_requests;
    let mutations = server.stats().mutations;
    // Nothing new: nothing is written.
    let again = import(&mut mo, &cfg, dumps, register, &b).unwrap();
    assert!(again.dumps.is_empty());
    assert_eq!(server.stats().mutations, mutations);
    assert!(server.stats().graphql_requests - requests < 5);
}

#[test]
fn opus_fixtures_into_os2mo_give_the_same_dump_as_the_embedded_store() {
    let fixtures = root().join("crates/integrations/tests/fixtures/opus");
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "ZLPE20200101220000_delta.xml",
        "ZLPE20200102220000_delta.xml",
    ] {
        std::fs::copy(fixtures.join("ok").join(f), dir.path().join(f)).unwrap();
    }
    same_dump_on_both("Andeby Kommune", dir.path(), &fixtures.join("adresser.csv"));
}

#[test]
fn the_bundled_example_into_os2mo_gives_the_same_dump_as_the_embedded_store() {
    let ex = root().join("examples/opus");
    same_dump_on_both(
        "Aarslev Kommune",
        &ex.join("dumps"),
        &ex.join("adresser.csv"),
    );
}

#[test]
fn a_run_refused_halfway_is_reported_and_a_rerun_finishes_it() {
    let ex = root().join("examples/opus");
    let cfg = Config::new("Aarslev Kommune");
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let first = "ZLPE20240101220000_delta.xml";
    std::fs::copy(ex.join("dumps").join(first), dumps.join(first)).unwrap();
    // How many requests the import takes, on a server that does not fail.
    let probe = server_for(&cfg);
    let probe_dir = tempfile::tempdir().unwrap();
    import(
        &mut client(&probe, 50),
        &cfg,
        &dumps,
        &ex.join("adresser.csv"),
        probe_dir.path(),
    )
    .unwrap();
    let total = probe.stats().graphql_requests;
    // The same import against a server that starts failing before the last three write
    // requests and stays down (the read-backs after the first 503 fail too): the run stops with
    // an error that says what was applied, and the dump stays pending.
    let server = server_for(&cfg);
    let mut mo = client(&server, 50);
    server.fail_after(total - 3, 1000, dipex_testkit::os2mo::Failure::Status(503));
    let err = import(&mut mo, &cfg, &dumps, &ex.join("adresser.csv"), dir.path()).unwrap_err();
    let RunError::Backend(b) = &err else {
        panic!("{err}")
    };
    assert!(b.partly_applied(), "{err}");
    let err = err.to_string();
    assert!(err.contains("503"), "{err}");
    assert!(err.contains("writes were applied ("), "{err}");
    server.fail_next(0, dipex_testkit::os2mo::Failure::Status(503));
    let db = RunDb::open(&dir.path().join("run_db.sqlite")).unwrap();
    assert!(
        db.blocking_row().unwrap().is_none(),
        "a clean failure does not block the next run"
    );
    drop(db);
    // Run again: the import continues from what OS2mo holds and ends equal to the store.
    let report = import(&mut mo, &cfg, &dumps, &ex.join("adresser.csv"), dir.path()).unwrap();
    assert_eq!(report.dumps.len(), 1);
    let mut fresh = Store::open_in_memory().unwrap();
    std::fs::create_dir_all(dir.path().join("y")).unwrap();
    import(
        &mut fresh,
        &cfg,
        &dumps,
        &ex.join("adresser.csv"),
        &dir.path().join("y"),
    )
    .unwrap();
    assert_eq!(dump(&fresh), dump(&mo));
}

/// Copy the dumps of `from` into `to` with every CPR number replaced by a fresh synthetic one
/// (the same for the same person) and every employee number prefixed by `run` (OS2mo finds an
/// employment by its number), so runs never meet on a shared OS2mo.
fn with_fresh_cprs(from: &Path, to: &Path, run: u32) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    let mut map: HashMap<String, String> = HashMap::new();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path())
            .unwrap()
            .replace("<employee id=\"", &format!("<employee id=\"{run}"));
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find("</cpr>") {
            let (head, tail) = rest.split_at(i);
            let cpr = &head[head.len() - 10..];
            assert!(cpr.bytes().all(|b| b.is_ascii_digit()), "{cpr:?}");
            let fresh = map
                .entry(cpr.to_string())
                .or_insert_with(|| crate::earlier_cpr(cpr, Uuid::new_v4().as_u128()));
            out.push_str(&head[..head.len() - 10]);
            out.push_str(fresh);
            out.push_str("</cpr>");
            rest = &tail["</cpr>".len()..];
        }
        out.push_str(rest);
        std::fs::write(to.join(e.file_name()), out).unwrap();
    }
    map.into_values().collect()
}

/// Copy `kind`'s objects from `from` into `store` as they are.
fn copy_kind(from: &dyn Backend, store: &mut Store, kind: Kind) {
    let mut ops = Vec::new();
    for o in from.read(&Query::all(kind)).unwrap() {
        for (i, s) in o.slices.into_iter().enumerate() {
            ops.push(if i == 0 {
                dipex_model::Op::Create {
                    uuid: o.uuid,
                    validity: s.validity,
                    value: s.value,
                }
            } else {
                dipex_model::Op::Update {
                    uuid: o.uuid,
                    validity: s.validity,
                    value: s.value,
                }
            });
        }
    }
    let reg = dipex_backend::Registration {
        at: jiff::Timestamp::UNIX_EPOCH,
        actor: "test".into(),
        note: "copy".into(),
    };
    store.apply(dipex_model::Plan { ops }, &reg).unwrap();
}

#[test]
fn the_bundled_example_into_a_real_os2mo_gives_the_same_objects_as_the_embedded_store() {
    let Some(peer) = dipex_testkit::os2mo::peer::from_env("OPUS import into a real OS2mo") else {
        return;
    };
    let _shared = crate::shared_os2mo();
    let mut c = MoConfig::new(&peer.url, Auth::Session(peer.session));
    c.backoff = Duration::from_millis(50);
    let mut mo = Os2mo::new(c).unwrap();
    // Its own municipality (the unit uuids derive from its name), CPR numbers, employee numbers
    // and person uuids:
    // the real OS2mo's database is shared with other tests and runs.
    let run = Uuid::new_v4();
    let cfg = Config::new(&format!("Prøveby {}", &run.to_string()[..8]));
    let base = run.as_u128() & !0xffff_ffff;
    let ex = root().join("examples/opus");
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    let cprs = with_fresh_cprs(
        &ex.join("dumps"),
        &dumps,
        100_000 + run.as_u128() as u32 % 900_000,
    );
    // The store starts with the facets, classes and IT systems OS2mo already has (the import
    // finds them by user_key), so both imports make the same choices.
    let mut store = Store::open_in_memory().unwrap();
    for kind in [Kind::Facet, Kind::Class, Kind::ItSystem] {
        copy_kind(&mo, &mut store, kind);
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let register = ex.join("adresser.csv");
    let in_store = import_with(&mut store, &cfg, &dumps, &register, &a, base).unwrap();
    let in_mo =
        import_with(&mut mo, &cfg, &dumps, &register, &b, base).unwrap_or_else(|e| panic!("{e}"));
    let refused: Vec<String> = in_mo
        .dumps
        .iter()
        .flat_map(|d| d.refused.iter().map(move |r| format!("{}: {r:?}", d.name)))
        .collect();
    assert_eq!(refused, Vec::<String>::new());
    assert_eq!(in_store.dumps.len(), in_mo.dumps.len());
    assert!(in_store.dumps.len() >= 2);
    // Every object of the store, read from OS2mo by uuid, is the same.
    let mut compared = 0;
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Organisation) {
        let mine = store.read(&Query::all(kind)).unwrap();
        let uuids: Vec<Uuid> = mine.iter().map(|o| o.uuid).collect();
        let there = if uuids.is_empty() {
            vec![]
        } else {
            mo.read(&Query::all(kind).uuids(uuids)).unwrap()
        };
        let lines = |v: &[dipex_model::Object]| -> Vec<String> {
            v.iter().map(|o| o.to_dump_json().to_string()).collect()
        };
        let (left, right) = (lines(&mine), lines(&there));
        let differ: Vec<(&String, &String)> = left
            .iter()
            .zip(&right)
            .filter(|(l, r)| l != r)
            .take(3)
            .collect();
        assert!(
            differ.is_empty() && left.len() == right.len(),
            "{kind}: {} vs {} objects; first differences: {differ:#?}",
            left.len(),
            right.len()
        );
        compared += left.len();
    }
    assert!(compared > 500, "{compared}");
    // OS2mo has no other persons with these CPR numbers.
    let cprs: Vec<dipex_model::Cpr> = cprs
        .iter()
        .map(|c| dipex_model::Cpr::parse(c).unwrap())
        .collect();
    assert_eq!(
        mo.read(&Query::all(Kind::Person).cpr_numbers(cprs.clone()))
            .unwrap()
            .len(),
        store
            .read(&Query::all(Kind::Person).cpr_numbers(cprs))
            .unwrap()
            .len()
    );
    // The exporters give the same from both: plan2learn's five files byte for byte, and what
    // OS2Sync ends up holding.
    let today = date(2024, 1, 3);
    let top = cfg.uuids.unit("1");
    let offline = OfflineRegister::load(&register).unwrap();
    let p2l = dipex_integrations::plan2learn::Config {
        root_unit: top,
        allowed_engagement_types: vec!["Ansat".into(), "Timelønnet".into()],
        too_deep: vec![],
        email_priority: vec!["Email".into()],
        phone_priority: vec!["Telefon".into()],
        job_title_extension: 2,
    };
    let files = |b: &dyn Backend| -> Vec<Vec<u8>> {
        let export = dipex_integrations::plan2learn::run::build(b, &offline, &p2l, today)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(export.warnings.is_empty(), "{:?}", export.warnings);
        export
            .tables
            .iter()
            .map(dipex_integrations::plan2learn::write::csv_bytes)
            .collect()
    };
    let (from_store, from_mo) = (files(&store), files(&mo));
    assert!(from_store.iter().all(|f| f.len() > 200));
    assert!(from_store == from_mo, "plan2learn's files differ");
    let synced = |b: &dyn Backend| {
        let server = dipex_testkit::os2sync::Os2SyncServer::start(Default::default());
        let cache = tempfile::tempdir().unwrap();
        let json = serde_json::json!({
            "municipality.cvr": "29189129",
            "os2sync.api_url": server.api_url(),
            "os2sync.top_unit_uuid": top.to_string(),
            "os2sync.hash_cache": cache.path().join("hashes.sqlite3"),
        });
        let (s, _) = dipex_integrations::settings::Settings::load(
            Some(("settings.json", &json.to_string())),
            [],
        )
        .unwrap();
        let mut c = dipex_integrations::os2sync::Config::from_settings(&s).unwrap();
        c.hierarchy_poll = Duration::from_millis(5);
        let report = dipex_integrations::os2sync::run::export(b, &offline, &c, today, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // (Without the time OS2Sync received each one.)
        let held = |m: std::collections::BTreeMap<Uuid, serde_json::Value>| -> Vec<String> {
            m.into_values()
                .map(|mut v| {
                    v.as_object_mut().unwrap().remove("Timestamp");
                    v.to_string()
                })
                .collect()
        };
        (held(server.org_units()), held(server.users()))
    };
    let (in_store, in_mo) = (synced(&store), synced(&mo));
    assert!(in_store.0.len() > 10 && in_store.1.len() > 100);
    for (mine, there) in [(&in_store.0, &in_mo.0), (&in_store.1, &in_mo.1)] {
        let differ: Vec<_> = mine
            .iter()
            .zip(there)
            .filter(|(a, b)| a != b)
            .take(2)
            .collect();
        assert!(
            differ.is_empty() && mine.len() == there.len(),
            "OS2Sync: {} vs {}; first differences: {differ:#?}",
            mine.len(),
            there.len()
        );
    }
    // Nothing new: nothing is imported, nothing is written.
    let requests = mo.requests();
    let again = import_with(&mut mo, &cfg, &dumps, &register, &b, base).unwrap();
    assert!(again.dumps.is_empty());
    assert!(mo.requests() - requests < 5);
}
