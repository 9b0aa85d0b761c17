//! The plan2learn export end to end: the bundled OPUS example imported into a real embedded
//! store, then exported with the offline address register; the five files are compared byte for
//! byte with snapshots (CRLF shown as `␍`).

use dipex_backend::Store;
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config as OpusConfig;
use dipex_integrations::opus::run::{self as opus_run, Env, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_integrations::plan2learn::{self, Config};
use jiff::civil::date;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

struct Fixed(u128);

impl Env for Fixed {
    fn now(&self) -> jiff::civil::DateTime {
        date(2024, 1, 4).at(6, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH
    }
    fn new_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0xbeef_0000_0000_0000_0000_0000_0000_0000 + self.0)
    }
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/opus")
}

/// The example imported into a fresh store.
fn imported(dir: &Path) -> (Store, OfflineRegister) {
    let cfg = OpusConfig::new("Aarslev Kommune");
    let register = OfflineRegister::load(example().join("adresser.csv")).unwrap();
    let mut store = Store::open(&dir.join("store.sqlite3")).unwrap();
    let mut db = RunDb::open(&dir.join("run_db.sqlite")).unwrap();
    let cpr_map = HashMap::new();
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let dumps = list_dumps(&example().join("dumps")).unwrap().0;
    opus_run::import(
        &mut store,
        Some(&mut db),
        &job,
        &mut Fixed(0),
        &dumps,
        Mode::All,
        &mut |_| {},
    )
    .unwrap();
    (store, register)
}

fn config(root: Uuid) -> Config {
    Config {
        root_unit: root,
        allowed_engagement_types: vec!["Ansat".into(), "Timelønnet".into()],
        too_deep: vec![],
        email_priority: vec!["Email".into()],
        phone_priority: vec!["Telefon".into()],
        job_title_extension: 2,
    }
}

#[test]
fn the_example_exports_to_five_files_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (store, register) = imported(dir.path());
    let root = dipex_integrations::opus::uuids::OpusUuids::new("Aarslev Kommune").unit("1");
    let out = dir.path().join("out");
    let report =
        plan2learn::run::run(&store, &register, &config(root), date(2024, 1, 3), &out).unwrap();
    assert!(
        report.export.warnings.is_empty(),
        "{:?}",
        report.export.warnings
    );
    for name in plan2learn::FILES {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert!(!bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\r'));
        assert!(
            text.lines().all(|l| l.starts_with('"') && l.ends_with('"')),
            "every field quoted"
        );
        assert!(text.lines().count() > 1, "{name} has rows");
        insta::assert_snapshot!(format!("plan2learn_{name}"), text.replace("\r\n", "␍\n"));
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5, "no temporary files: {names:?}");
    // The same data, the same bytes.
    let again = dir.path().join("again");
    plan2learn::run::run(&store, &register, &config(root), date(2024, 1, 3), &again).unwrap();
    for name in plan2learn::FILES {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap()
        );
    }
}

#[test]
fn an_unknown_root_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, register) = imported(dir.path());
    let out = dir.path().join("out");
    let err = plan2learn::run::run(
        &store,
        &register,
        &config(Uuid::nil()),
        date(2024, 1, 3),
        &out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("root_unit"), "{err}");
    assert!(!out.exists());
}
