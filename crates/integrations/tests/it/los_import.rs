//! The LOS import end to end: the fixture files from a local folder and from a real FTP server
//! on loopback, into a real embedded store, with the state file and the DAR failure list.

use dipex_backend::{Backend, Query, Store};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::los::run::{self, Job};
use dipex_integrations::los::uuids;
use dipex_integrations::opus::run::Env;
use dipex_integrations::transport::ftp::{FtpConfig, FtpSecurity};
use dipex_integrations::transport::source::Source;
use dipex_model::{Kind, Value};
use dipex_testkit::ftp::{PASSWORD, Quirks, TestServer, USER};
use jiff::civil::date;
use std::path::{Path, PathBuf};
use uuid::Uuid;

struct Clock(u128);

impl Env for Clock {
    fn now(&self) -> jiff::civil::DateTime {
        date(2021, 3, 10).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0x1e55_0000_0000_4000_8000_0000_0000_0000 + self.0)
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/los")
}

/// A copy of the fixture files (the import writes its DAR failure list into the source),
/// delivered an hour ago.
fn copy_of_fixtures(dir: &Path) -> PathBuf {
    let to = dir.join("files");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        delivered_an_hour_ago(&to.join(e.file_name()));
    }
    to
}

/// Files are new when modified in the second a run starts or later (`docs/los.md`), so files a
/// test means to be old get a modified time well before the run.
fn delivered_an_hour_ago(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

fn register() -> OfflineRegister {
    OfflineRegister::load(fixtures().join("adresser.csv")).unwrap()
}

fn dump(store: &Store) -> Vec<String> {
    Kind::ALL
        .iter()
        .flat_map(|k| store.read(&Query::all(*k)).unwrap())
        .map(|o| o.to_dump_json().to_string())
        .collect()
}

/// A run of `source` with the default AZ IT system, since the state file's time.
fn job<'a>(source: &'a Source, register: &'a OfflineRegister, state: &'a Path) -> Job<'a> {
    Job {
        source,
        register,
        state_file: state,
        azid_system: Uuid::parse_str(uuids::AZID_SYSTEM).unwrap(),
        from_date: None,
        dry_run: false,
    }
}

fn run(store: &mut Store, source: &Source, state: &Path, dry_run: bool) -> run::Report {
    let register = register();
    let job = Job {
        dry_run,
        ..job(source, &register, state)
    };
    run::import(store, &job, &mut Clock(0)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_first_run_imports_everything_and_a_second_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/los_state");
    let source = Source::Local(copy_of_fixtures(dir.path()));
    let mut store = Store::open(&dir.path().join("store.sqlite3")).unwrap();
    // A dry run writes nothing: no objects, no state file.
    let dry = run(&mut store, &source, &state, true);
    assert!(!dry.files.is_empty() && dump(&store).is_empty() && !state.exists());
    let r = run(&mut store, &source, &state, false);
    assert_eq!(
        r.files.len(),
        19,
        "{:?}",
        r.files.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    assert!(state.exists());
    assert_eq!(
        r.rejected(),
        0,
        "{:?}",
        r.files.iter().flat_map(|f| &f.rejected).collect::<Vec<_>>()
    );
    // Seed: the organisation, the hierarchy classes, the AZ IT system, with the spec's uuids.
    let org = store.read(&Query::all(Kind::Organisation)).unwrap();
    assert_eq!(org[0].uuid.to_string(), uuids::ORG_UUID);
    let linje = store
        .read(&Query::all(Kind::Class).uuids([uuids::constant("LINJE_ORG_HIERARCHY")]))
        .unwrap();
    assert!(matches!(&linje[0].last().value, Value::Class(c) if c.name == "Linjeorganisation"));
    assert_eq!(
        store
            .read(&Query::all(Kind::ItSystem).uuids([Uuid::parse_str(uuids::AZID_SYSTEM).unwrap()]))
            .unwrap()
            .len(),
        1
    );
    // Units, persons found by CPR with random (not CPR-derived) uuids, engagements, managers.
    let units = store.read(&Query::all(Kind::OrgUnit)).unwrap();
    assert!(units.len() >= 5, "{}", units.len());
    let persons = store.read(&Query::all(Kind::Person)).unwrap();
    assert!(!persons.is_empty());
    assert!(
        persons
            .iter()
            .all(|p| p.uuid.to_string().starts_with("1e550000")),
        "new persons get fresh uuids"
    );
    assert!(
        !store
            .read(&Query::all(Kind::Engagement))
            .unwrap()
            .is_empty()
    );
    assert!(!store.read(&Query::all(Kind::Manager)).unwrap().is_empty());
    // The postal address that the register does not know is listed next to the state file.
    assert!(!r.dar_lists.is_empty());
    let list = std::fs::read_to_string(&r.dar_lists[0]).unwrap();
    assert!(list.contains("Hack Kampmanns Plads 2"), "{list}");
    let name = r.dar_lists[0].file_name().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("files/DARfejlliste").join(name)).unwrap(),
        list,
        "and in the source"
    );
    let before = dump(&store);
    // Nothing new since the last run: nothing is read, nothing changes.
    let again = run(&mut store, &source, &state, false);
    assert!(
        again.files.is_empty(),
        "{:?}",
        again.files.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    assert!(
        again.seed.is_empty(),
        "the seed is asserted again without changes"
    );
    assert_eq!(dump(&store), before);
    // Processing every file again (an old state file) replays them in order and ends in the same
    // MO: a failed run can simply be run again.
    std::fs::write(&state, "0001-01-01T00:00:00").unwrap();
    let forced = run(&mut store, &source, &state, false);
    assert_eq!(forced.files.len(), 19);
    assert_eq!(dump(&store), before);
}

#[test]
fn the_same_import_over_plain_ftp_gives_the_same_mo() {
    let server = TestServer::start(None, Quirks::default());
    for e in std::fs::read_dir(fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), server.path(&e.file_name().to_string_lossy())).unwrap();
    }
    std::fs::create_dir(server.path("DARfejlliste")).unwrap();
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, FtpSecurity::Plain);
    cfg.port = server.port;
    let dir = tempfile::tempdir().unwrap();
    let mut over_ftp = Store::open_in_memory().unwrap();
    let r = run(
        &mut over_ftp,
        &Source::Ftp(cfg),
        &dir.path().join("a/state"),
        false,
    );
    assert_eq!(r.files.len(), 19);
    let mut local = Store::open_in_memory().unwrap();
    run(
        &mut local,
        &Source::Local(copy_of_fixtures(dir.path())),
        &dir.path().join("b/state"),
        false,
    );
    assert_eq!(dump(&over_ftp), dump(&local));
}

#[test]
fn a_failing_file_stops_the_run_without_advancing_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for name in ["STAM_UUID_Enhedstype.csv", "Org_inital_20210101_010000.csv"] {
        std::fs::copy(fixtures().join("ok").join(name), files.join(name)).unwrap();
    }
    std::fs::copy(
        fixtures().join("err/bad_date.csv"),
        files.join("Org_nye_20210301_020000.csv"),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut store = Store::open_in_memory().unwrap();
    let register = register();
    let source = Source::Local(files.clone());
    let job = job(&source, &register, &state);
    let err = run::import(&mut store, &job, &mut Clock(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Org_nye_20210301_020000.csv"), "{err}");
    assert!(!state.exists(), "a failed run does not advance the state");
    // Fixed, the run goes through and writes the state.
    std::fs::copy(
        fixtures().join("ok/Org_nye_20210301_020000.csv"),
        files.join("Org_nye_20210301_020000.csv"),
    )
    .unwrap();
    run::import(&mut store, &job, &mut Clock(0)).unwrap();
    assert!(state.exists());
}

#[test]
fn files_arriving_after_a_run_are_exactly_the_ones_the_next_run_reads() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let copy =
        |name: &str| std::fs::copy(fixtures().join("ok").join(name), files.join(name)).unwrap();
    for name in [
        "STAM_UUID_Enhedstype.csv",
        "STAM_UUID_Engagementstype.csv",
        "STAM_UUID_Stillingsbetegnelse.csv",
        "Org_inital_20210101_010000.csv",
    ] {
        copy(name);
        delivered_an_hour_ago(&files.join(name));
    }
    let state = dir.path().join("state");
    let mut store = Store::open_in_memory().unwrap();
    let source = Source::Local(files.clone());
    let first = run(&mut store, &source, &state, false);
    assert_eq!(first.files.len(), 4);
    std::thread::sleep(std::time::Duration::from_millis(20));
    for name in [
        "Org_nye_20210301_020000.csv",
        "Pers_nye_20210303_020000.csv",
        "Pers_ret_20210304_020000.csv",
        "Pers_luk_20210305_020000.csv",
    ] {
        copy(name);
    }
    let second = run(&mut store, &source, &state, false);
    let names: Vec<&str> = second.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Org_nye_20210301_020000.csv",
            "Pers_nye_20210303_020000.csv",
            "Pers_ret_20210304_020000.csv",
            "Pers_luk_20210305_020000.csv"
        ]
    );
    assert!(
        second.files.iter().all(|f| !f.plan.is_empty()),
        "each new file changed something"
    );
    let ended = store
        .read(&Query::all(Kind::Engagement).at(date(2021, 3, 6)))
        .unwrap();
    let all = store.read(&Query::all(Kind::Engagement)).unwrap();
    assert!(ended.len() < all.len(), "Pers_luk ended an engagement");
}

/// A plain FTP server that drops the connection in the middle of a download: the run fails
/// naming the file, the state file is not written, and the next run (connection fine again)
/// reads every file.
#[test]
fn a_connection_dropped_mid_download_fails_the_run_without_advancing_the_state() {
    let server = TestServer::start(
        None,
        Quirks {
            cut_download_after: Some(64 * 1024),
            ..Quirks::default()
        },
    );
    for e in std::fs::read_dir(fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), server.path(&e.file_name().to_string_lossy())).unwrap();
    }
    // One file bigger than what the server sends before it hangs up.
    let big = "x".repeat(256 * 1024);
    std::fs::write(server.path("Pers_nye_20210309_020000.csv"), &big).unwrap();
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, FtpSecurity::Plain);
    cfg.port = server.port;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let register = register();
    let source = Source::Ftp(cfg);
    let job = job(&source, &register, &state);
    let mut store = Store::open_in_memory().unwrap();
    let err = run::import(&mut store, &job, &mut Clock(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Pers_nye_20210309_020000.csv"), "{err}");
    assert!(
        err.contains("RETR of Pers_nye_20210309_020000.csv failed: the server closed"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    assert!(!state.exists(), "a failed run does not advance the state");

    // The same files from a server that keeps the connection: the rerun reads every file
    // again, from the first, and ends where a clean first run ends (persons the failed run
    // created keep their uuids, so the rerun's new persons get fresh ones).
    let files = copy_of_fixtures(dir.path());
    let source = Source::Local(files.clone());
    let again = run::import(
        &mut store,
        &Job {
            source: &source,
            ..job
        },
        &mut Clock(100),
    )
    .unwrap();
    assert_eq!(again.files.len(), 19);
    assert!(state.exists());
    let mut fine = Store::open_in_memory().unwrap();
    run(
        &mut fine,
        &Source::Local(files),
        &dir.path().join("fine"),
        false,
    );
    assert_eq!(
        same_up_to_person_uuids(&store),
        same_up_to_person_uuids(&fine)
    );
}

/// The store's dump with every person uuid replaced by the person's first CPR number, and the
/// uuids derived from person uuids (addresses, IT users, managers) left out, sorted: two runs
/// that created the same persons under different random uuids give the same text.
fn same_up_to_person_uuids(store: &Store) -> Vec<String> {
    let dumped: Vec<serde_json::Value> = dump(store)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut names = std::collections::HashMap::new();
    for o in dumped.iter().filter(|o| o["type"] == "person") {
        let cpr = o["validities"][0]["cpr_number"].as_str().unwrap();
        names.insert(
            o["uuid"].as_str().unwrap().to_owned(),
            format!("person {}", crate::pseudonym(cpr)),
        );
    }
    fn rename(v: &mut serde_json::Value, names: &std::collections::HashMap<String, String>) {
        match v {
            serde_json::Value::String(s) => {
                if let Some(n) = names.get(s.as_str()) {
                    *s = n.clone();
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rename(x, names)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|x| rename(x, names)),
            _ => {}
        }
    }
    let mut out: Vec<String> = dumped
        .into_iter()
        .map(|mut o| {
            let uuid = o["uuid"].clone();
            if let Some(m) = o.as_object_mut()
                && m["type"] != "person"
                && m["validities"].to_string().contains("\"person\"")
            {
                m.remove("uuid");
                for v in m["validities"].as_array_mut().unwrap() {
                    if v["user_key"] == uuid {
                        v.as_object_mut().unwrap().remove("user_key");
                    }
                }
            }
            rename(&mut o, &names);
            o.to_string()
        })
        .collect();
    out.sort();
    out
}

/// An FTP error of a LOS run is printed once: the run's message shows the transport's message
/// (protocol, server, step) and is not chained to it again as a `source()` (the CLI prints the
/// chain with `{:#}`, which used to repeat it after ": ").
#[test]
fn an_ftp_error_is_printed_once() {
    // Nothing listens on the discard port.
    let mut cfg = FtpConfig::new("127.0.0.1", USER, PASSWORD, FtpSecurity::Plain);
    cfg.port = 9;
    let source = Source::Ftp(cfg);
    let register = register();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let err = run::import(
        &mut Store::open_in_memory().unwrap(),
        &job(&source, &register, &state),
        &mut Clock(0),
    )
    .unwrap_err();
    assert!(std::error::Error::source(&err).is_none(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("reading the files: FTP 127.0.0.1:9: connect failed: "),
        "{text}"
    );
    assert_eq!(text.matches("127.0.0.1:9").count(), 1, "{text}");
}

/// New person uuids from `base` on, the clock of [`Clock`].
struct Fresh(u128, u128);

impl Env for Fresh {
    fn now(&self) -> jiff::civil::DateTime {
        Clock(0).now()
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> Uuid {
        self.1 += 1;
        Uuid::from_u128(self.0 + self.1)
    }
}

/// A copy of the fixture files in which every uuid and every CPR number is replaced by one of
/// this run's own (the same for the same original), so runs never meet on a shared OS2mo.
fn fixtures_of_this_run(dir: &Path, run: Uuid) -> PathBuf {
    let to = dir.join("files");
    std::fs::create_dir_all(&to).unwrap();
    let mut cprs: std::collections::HashMap<String, String> = Default::default();
    for e in std::fs::read_dir(fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        // Byte for byte as chars (some files are Latin-1; uuids and digits are ASCII).
        let text: String = std::fs::read(e.path())
            .unwrap()
            .into_iter()
            .map(char::from)
            .collect();
        let mut lines = text.split('\n');
        let header = lines.next().unwrap();
        let cpr_col = header
            .trim_end_matches('\r')
            .split(';')
            .position(|h| h == "CPR");
        let mut out = vec![header.to_string()];
        for line in lines {
            let (body, cr) = match line.strip_suffix('\r') {
                Some(b) => (b, "\r"),
                None => (line, ""),
            };
            let fields: Vec<String> = body
                .split(';')
                .enumerate()
                .map(|(i, f)| {
                    if let Ok(u) = Uuid::parse_str(f) {
                        Uuid::new_v5(&run, u.as_bytes()).to_string()
                    } else if Some(i) == cpr_col && f.len() == 10 {
                        cprs.entry(f.to_string())
                            .or_insert_with(|| crate::earlier_cpr(f, Uuid::new_v4().as_u128()))
                            .clone()
                    } else {
                        f.to_string()
                    }
                })
                .collect();
            out.push(fields.join(";") + cr);
        }
        let bytes: Vec<u8> = out.join("\n").chars().map(|c| c as u8).collect();
        std::fs::write(to.join(e.file_name()), bytes).unwrap();
    }
    to
}

/// The fixture files imported into a real OS2mo (`OS2MO_URL`/`OS2MO_SESSION`; SKIPPED without
/// it, a failure under `CI=true`) give the same objects as in the embedded store, and a second
/// run changes nothing.
#[test]
fn the_fixtures_into_a_real_os2mo_give_the_same_objects_as_the_embedded_store() {
    use dipex_backend::Os2mo;
    use dipex_backend::os2mo::{Auth, Config};
    let Some(peer) = dipex_testkit::os2mo::peer::from_env("LOS import into a real OS2mo") else {
        return;
    };
    let _shared = crate::shared_os2mo();
    let mut c = Config::new(&peer.url, Auth::Session(peer.session));
    c.backoff = std::time::Duration::from_millis(50);
    let mut mo = Os2mo::new(c).unwrap();
    let run = Uuid::new_v4();
    let base = run.as_u128() & !0xffff_ffff;
    let dir = tempfile::tempdir().unwrap();
    let source = Source::Local(fixtures_of_this_run(dir.path(), run));
    let register = register();
    let (a, b) = (dir.path().join("a/state"), dir.path().join("b/state"));
    let mut store = Store::open_in_memory().unwrap();
    let in_store = run::import(
        &mut store,
        &job(&source, &register, &a),
        &mut Fresh(base, 0),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let in_mo = run::import(&mut mo, &job(&source, &register, &b), &mut Fresh(base, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_store.files.len(), 19);
    assert_eq!(in_mo.files.len(), 19);
    assert_eq!((in_store.rejected(), in_mo.rejected()), (0, 0));
    // The store's objects, and the same uuids read from OS2mo, as `mo dump` lines.
    let both = |mo: &Os2mo| -> Vec<(Vec<String>, Vec<String>)> {
        let lines = |v: &[dipex_model::Object]| -> Vec<String> {
            v.iter().map(|o| o.to_dump_json().to_string()).collect()
        };
        Kind::ALL
            .into_iter()
            .filter(|k| *k != Kind::Organisation)
            .map(|kind| {
                let mine = store.read(&Query::all(kind)).unwrap();
                let uuids: Vec<Uuid> = mine.iter().map(|o| o.uuid).collect();
                let there = if uuids.is_empty() {
                    vec![]
                } else {
                    mo.read(&Query::all(kind).uuids(uuids)).unwrap()
                };
                (lines(&mine), lines(&there))
            })
            .collect()
    };
    let first = both(&mo);
    for (mine, there) in &first {
        assert_eq!(mine, there);
    }
    assert!(first.iter().map(|(m, _)| m.len()).sum::<usize>() > 30);
    // Every file again (an old state file): OS2mo ends the same.
    std::fs::write(&b, "0001-01-01T00:00:00").unwrap();
    let again = run::import(&mut mo, &job(&source, &register, &b), &mut Fresh(base, 0)).unwrap();
    assert_eq!(again.files.len(), 19);
    assert_eq!(both(&mo), first);
}
