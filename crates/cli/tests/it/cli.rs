//! The `dipex` binary end to end: real processes, real files, exit codes and output as an
//! operator sees them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo()
        .join("crates/integrations/tests/fixtures/opus")
        .join(name)
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// A folder with a settings.json, a dumps folder and the fixture address register.
    fn new(dumps: &[&str]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dumps")).unwrap();
        for d in dumps {
            std::fs::copy(
                fixture(&format!("ok/{d}")),
                dir.path().join("dumps").join(d),
            )
            .unwrap();
        }
        let settings = serde_json::json!({
            "municipality.name": "Andeby Kommune",
            "dipex.store": dir.path().join("store.sqlite3"),
            "integrations.opus.import.xml_path": dir.path().join("dumps"),
            "integrations.opus.import.run_db": dir.path().join("run_db.sqlite"),
            "integrations.opus.cpr_uuid_map": dir.path().join("map.csv"),
            "integrations.dar.address_file": fixture("adresser.csv"),
            "crontab.RUN_OPUS_DIFF_IMPORT": true,
        });
        std::fs::write(dir.path().join("settings.json"), settings.to_string()).unwrap();
        Site { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dipex"));
        c.current_dir(self.dir.path())
            .env_remove("DIPEX_SETTINGS")
            .env_remove("DIPEX_LOG")
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

const DAY1: &str = "ZLPE20200101220000_delta.xml";
const DAY2: &str = "ZLPE20200102220000_delta.xml";

#[test]
fn a_dump_that_fails_after_earlier_ones_were_imported_gives_exit_code_three_naming_them() {
    let s = Site::new(&[DAY1, DAY2]);
    let broken = s.path("dumps").join(DAY2);
    let text2 = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, &text2[..text2.len() / 2]).unwrap();
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "ERROR {}:82:3: malformed XML: syntax error: tag not closed: `>` not found before end of input; \
             the dumps before it were imported: {DAY1} (a re-run continues with {DAY2})",
            broken.display()
        ),
        "{err}"
    );
    // A re-run with the dump repaired imports the second dump only.
    std::fs::write(&broken, &text2).unwrap();
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("opus import: 1 dumps,"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn import_then_dump_tree_status_and_nothing_to_do() {
    let s = Site::new(&[DAY1, DAY2]);
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("opus import: 2 dumps,") && err.contains("0 rejected"),
        "{err}"
    );
    // The stable dump: one object per line, sorted by type then uuid.
    let o = s.run(&["mo", "dump"]);
    assert_eq!(code(&o), 0);
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 50);
    let keys: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_string(),
                l["uuid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for l in &lines {
        assert_eq!(l.as_object().unwrap().len(), 3);
        for v in l["validities"].as_array().unwrap() {
            assert!(v.get("from").is_some() && v.get("to").is_some());
        }
    }
    let o = s.run(&["mo", "dump", "--type", "org_unit", "--at", "2020-06-01"]);
    assert_eq!(
        text(&o.stdout).lines().count(),
        4,
        "unit 5 starts 2022-03-01"
    );
    let o = s.run(&["mo", "tree"]);
    assert!(
        text(&o.stdout).starts_with("Andeby Kommune (1) 0e9c456f-f2e6-0596-4442-1b4a66a6b168\n"),
        "{}",
        text(&o.stdout)
    );
    let o = s.run(&["opus", "status"]);
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 5);
    assert!(
        out.lines().next().unwrap().starts_with(
            "id: 1, dump date: 2020-01-01 22:00:00, status: Running diff update since "
        )
    );
    assert_eq!(out.lines().last().unwrap(), "(True, 'Status ok')");
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 0);
    assert!(text(&o.stderr).contains("nothing to do"));
    // The address answers of the first run were cached in the register's state database
    // (`dar.sqlite3` beside the run database).
    let c = rusqlite::Connection::open(s.path("dar.sqlite3")).unwrap();
    let cached: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM dar_cache WHERE result IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(cached >= 6, "{cached}");
    let o = s.run(&["opus", "files"]);
    assert_eq!(text(&o.stdout).matches("imported").count(), 2);
}

#[test]
fn dry_run_writes_nothing_anywhere() {
    let s = Site::new(&[DAY1]);
    let o = s.run(&["opus", "import", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("create    org_unit 0e9c456f-f2e6-0596-4442-1b4a66a6b168"));
    assert!(text(&o.stderr).contains("dry run, nothing written"));
    assert!(
        !s.path("store.sqlite3").exists() || {
            // Opening the store may create an empty file; it must hold no objects.
            let o = s.run(&["mo", "dump"]);
            text(&o.stdout).is_empty()
        }
    );
    assert!(!s.path("run_db.sqlite").exists());
}

#[test]
fn rejected_records_give_exit_code_one_and_are_named() {
    let s = Site::new(&[]);
    let day = std::fs::read_to_string(fixture(&format!("ok/{DAY1}")))
        .unwrap()
        .replace("<position>Lærer</position>", "<position/>");
    std::fs::write(s.path("dumps").join(DAY1), day).unwrap();
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("rejected: {DAY1}:"))
            && err.contains("employee id=\"1001\", field position"),
        "{err}"
    );
    assert!(err.contains("1 rejected"));
    // Everything else was imported.
    let o = s.run(&["mo", "dump", "--type", "engagement"]);
    assert_eq!(text(&o.stdout).lines().count(), 3);
}

#[test]
fn a_bad_dump_gives_exit_code_two_names_the_place_and_writes_nothing() {
    let s = Site::new(&[DAY1]);
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let before = text(&s.run(&["mo", "dump"]).stdout);
    std::fs::copy(fixture("err/invalid_cpr.xml"), s.path("dumps").join(DAY2)).unwrap();
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{DAY2}:")) && err.contains("cpr"),
        "{err}"
    );
    let bad = std::fs::read_to_string(fixture("err/invalid_cpr.xml")).unwrap();
    for cpr in bad
        .split("<cpr")
        .skip(1)
        .map(|c| c.split('>').nth(1).unwrap().split('<').next().unwrap())
    {
        assert!(!err.contains(cpr), "CPR {cpr:?} in {err}");
    }
    assert_eq!(text(&s.run(&["mo", "dump"]).stdout), before);
    assert!(
        text(&s.run(&["opus", "status"]).stdout).ends_with("(True, 'Status ok')\n"),
        "a clean failure does not block"
    );
    // Fixed, the same command runs.
    std::fs::copy(fixture(&format!("ok/{DAY2}")), s.path("dumps").join(DAY2)).unwrap();
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
}

#[test]
fn a_running_row_blocks_until_unblock() {
    let s = Site::new(&[DAY1]);
    let c = rusqlite::Connection::open(s.path("run_db.sqlite")).unwrap();
    c.execute_batch(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, dump_date timestamp, status text);
         INSERT INTO runs (dump_date, status) VALUES ('2019-12-31 22:00:00', 'Running diff update since 2020-01-01 08:00:00.123456');",
    )
    .unwrap();
    drop(c);
    let o = s.run(&["opus", "import"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("dipex opus unblock"));
    assert!(text(&s.run(&["opus", "status"]).stdout).ends_with("(False, 'Not ready to run')\n"));
    assert_eq!(
        text(&s.run(&["opus", "unblock"]).stdout),
        "Deleted last row\n"
    );
    assert_eq!(
        text(&s.run(&["opus", "unblock"]).stdout),
        "Status ok, no delete\n"
    );
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
}

#[test]
fn settings_typos_warn_with_the_nearest_key_and_other_tools_keys_stay_quiet() {
    let s = Site::new(&[DAY1]);
    let mut settings: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(s.path("settings.json")).unwrap()).unwrap();
    settings.insert("os2sync.top_unit_uid".into(), "x".into());
    settings.insert("exporters.os2phonebook.host".into(), "x".into());
    settings.insert("integrations.SD_Lon.import.manager_file".into(), "x".into());
    std::fs::write(
        s.path("typo.json"),
        serde_json::Value::Object(settings).to_string(),
    )
    .unwrap();
    let o = s.run(&["--settings", "typo.json", "--quiet", "opus", "status"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        " WARN unknown setting \"os2sync.top_unit_uid\" (did you mean \"os2sync.top_unit_uuid\"?)\n"
    );
}

#[test]
fn settings_errors_and_environment_overrides() {
    let s = Site::new(&[DAY1]);
    // A wrong type names the key.
    std::fs::write(
        s.path("bad.json"),
        r#"{"integrations.opus.skip_employees": "maybe"}"#,
    )
    .unwrap();
    let o = s.run(&["--settings", "bad.json", "opus", "status"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("integrations.opus.skip_employees"));
    // mora.base without credentials is refused (naming what to set), unless --store is given.
    let o = s.run_env(
        &["opus", "import", "--dry-run"],
        &[("DIPEX_MORA__BASE", "https://mo.example")],
    );
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("--store") && err.contains("crontab.CLIENT_SECRET"),
        "{err}"
    );
    let o = s.run_env(
        &["--store", "other.sqlite3", "opus", "import"],
        &[("DIPEX_MORA__BASE", "https://mo.example")],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(s.path("other.sqlite3").exists());
    // An environment variable overrides the file: skip employees.
    let s = Site::new(&[DAY1]);
    let o = s.run_env(
        &["opus", "import"],
        &[("DIPEX_INTEGRATIONS__OPUS__SKIP_EMPLOYEES", "true")],
    );
    assert_eq!(code(&o), 0);
    assert!(text(&s.run(&["mo", "dump", "--type", "person"]).stdout).is_empty());
    // A missing required setting names it.
    std::fs::write(s.path("empty.json"), "{}").unwrap();
    let o = s.run(&["--settings", "empty.json", "opus", "import"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("municipality.name"));
}

#[test]
fn cpr_map_export_and_use() {
    let s = Site::new(&[DAY1]);
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let o = s.run(&["cpr-map", "export", "map.csv"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let map = std::fs::read_to_string(s.path("map.csv")).unwrap();
    assert_eq!(map.lines().count(), 4);
    assert!(!text(&o.stderr).contains("0101010000"));
    // A fresh import with the map gives the persons the same uuids.
    let persons = text(&s.run(&["mo", "dump", "--type", "person"]).stdout);
    std::fs::remove_file(s.path("store.sqlite3")).unwrap();
    std::fs::remove_file(s.path("run_db.sqlite")).unwrap();
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    assert_eq!(
        text(&s.run(&["mo", "dump", "--type", "person"]).stdout),
        persons
    );
}

#[test]
fn opus_import_with_active_directory_down_or_misconfigured_writes_nothing() {
    let s = Site::new(&[DAY1]);
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let before = text(&s.run(&["mo", "dump"]).stdout);
    let status = text(&s.run(&["opus", "status"]).stdout);
    std::fs::copy(fixture(&format!("ok/{DAY2}")), s.path("dumps").join(DAY2)).unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ad = serde_json::json!([{
        "servers": [format!("127.0.0.1:{port}")],
        "tls": "none",
        "system_user": "cn=dipex,dc=andeby,dc=test",
        "password": "ad-Password-0042",
        "search_base": "dc=andeby,dc=test",
        "cpr_field": "employeeID",
        "cpr_separator": "-",
        "timeout_seconds": 2,
    }]);
    with_settings(&s, "ad.json", serde_json::json!({ "integrations.ad": ad }));
    for args in [
        &["--settings", "ad.json", "opus", "import"][..],
        &["--settings", "ad.json", "opus", "import", "--dry-run"],
    ] {
        let o = s.run(args);
        assert_eq!(code(&o), 2, "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains("Active Directory")
                && err.contains(&format!("ldap://127.0.0.1:{port}"))
                && err.contains("nothing was imported"),
            "{err}"
        );
        assert!(!err.contains("ad-Password-0042"), "{err}");
        assert_eq!(text(&s.run(&["mo", "dump"]).stdout), before);
        assert_eq!(text(&s.run(&["opus", "status"]).stdout), status);
    }
    let o = s.run(&["--settings", "ad.json", "check"]);
    assert_eq!(code(&o), 2);
    let out = text(&o.stdout);
    assert!(
        out.contains("FAIL active directory: Active Directory: could not connect to any server"),
        "{out}"
    );
    // A misconfigured AD names the key, never the password.
    ad[0]["search_base"] = serde_json::Value::Null;
    with_settings(&s, "bad.json", serde_json::json!({ "integrations.ad": ad }));
    let o = s.run(&["--settings", "bad.json", "opus", "import"]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("integrations.ad") && err.contains("search_base"),
        "{err}"
    );
    assert!(!err.contains("ad-Password-0042"), "{err}");
    // `false` (or an empty list) switches the enrichment off.
    with_settings(
        &s,
        "off.json",
        serde_json::json!({ "integrations.ad": false }),
    );
    let o = s.run(&["--settings", "off.json", "opus", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_ne!(text(&s.run(&["mo", "dump"]).stdout), before);
}

#[test]
fn check_tree_show_and_check_dar() {
    let s = Site::new(&[DAY1]);
    let o = s.run(&["check"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("ok   opus dumps"));
    let o = s.run(&["opus", "tree"]);
    assert_eq!(
        text(&o.stdout),
        "Andeby Kommune (1)\n    Børn & Unge (2)\n        Skovsøen Skole (3)\n"
    );
    let o = s.run(&["opus", "check-dar"]);
    assert_eq!(
        code(&o),
        0,
        "every unit address is in the register: {}",
        text(&o.stdout)
    );
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let o = s.run(&["mo", "show", "0e9c456f-f2e6-0596-4442-1b4a66a6b168"]);
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("\"name\": \"Andeby Kommune\""));
    let dump = text(&s.run(&["mo", "dump", "--type", "person"]).stdout);
    let person: serde_json::Value = serde_json::from_str(dump.lines().next().unwrap()).unwrap();
    let o = s.run(&["mo", "show", person["uuid"].as_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(
        out.contains("-xxxx")
            && !out.contains(person["validities"][0]["cpr_number"].as_str().unwrap()),
        "CPR masked: {out}"
    );
}

#[test]
fn opus_import_into_os2mo_then_dump_and_pull_a_mirror() {
    let server = dipex_testkit::os2mo::MoServer::start(dipex_testkit::os2mo::Options::default());
    let s = Site::new(&[DAY1, DAY2]);
    let base = server.base_url();
    let auth = server.auth_server();
    let env = [
        ("DIPEX_MORA__BASE", base.as_str()),
        ("CLIENT_ID", "dipex"),
        ("CLIENT_SECRET", "test-secret"),
        ("AUTH_SERVER", auth.as_str()),
    ];
    let o = s.run_env(&["check"], &env);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("root organisation"),
        "{}",
        text(&o.stdout)
    );
    let o = s.run_env(&["opus", "import"], &env);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(server.stats().mutations > 20);
    assert!(
        !s.path("store.sqlite3").exists(),
        "nothing went to the embedded store"
    );
    let dump = s.run_env(&["mo", "dump"], &env);
    assert_eq!(code(&dump), 0, "{}", text(&dump.stderr));
    assert!(text(&dump.stdout).lines().count() > 20);
    // Nothing new: nothing written.
    let mutations = server.stats().mutations;
    assert_eq!(code(&s.run_env(&["opus", "import"], &env)), 0);
    assert_eq!(server.stats().mutations, mutations);
    // A mirror of OS2mo in the embedded store dumps the same.
    let o = s.run_env(&["--store", "mirror.sqlite3", "mo", "pull"], &env);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("mo pull:"), "{}", text(&o.stderr));
    let mirror = s.run(&["--store", "mirror.sqlite3", "mo", "dump"]);
    assert_eq!(text(&mirror.stdout), text(&dump.stdout));
    // A wrong secret fails clearly and never shows the secret.
    let bad = [
        env[0],
        env[1],
        ("CLIENT_SECRET", "not-the-secret-4711"),
        env[3],
    ];
    let o = s.run_env(&["check"], &bad);
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_ne!(code(&o), 0, "{all}");
    assert!(
        all.contains("401") && !all.contains("not-the-secret-4711"),
        "{all}"
    );
}

#[test]
fn an_os2mo_that_fails_after_part_of_the_import_gives_exit_code_three_and_a_rerun_finishes() {
    let server = dipex_testkit::os2mo::MoServer::start(dipex_testkit::os2mo::Options::default());
    let s = Site::new(&[DAY1]);
    let base = server.base_url();
    let auth = server.auth_server();
    let env = [
        ("DIPEX_MORA__BASE", base.as_str()),
        ("CLIENT_ID", "dipex"),
        ("CLIENT_SECRET", "test-secret"),
        ("AUTH_SERVER", auth.as_str()),
        ("DIPEX_MORA__BATCH_SIZE", "5"),
        ("DIPEX_MORA__WRITE_CONCURRENCY", "1"),
        ("DIPEX_MORA__RETRIES", "1"),
    ];
    // Three write requests go through, then every write is answered 503.
    server.fail_writes_after(3, 1000, dipex_testkit::os2mo::Failure::Status(503));
    let o = s.run_env(&["opus", "import"], &env);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 3, "{err}");
    let error: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(
        error,
        vec![format!(
            "ERROR OS2mo: the plan was only partly written: 11 of 75 writes were applied (facet 11 \
             of 11, class 0 of 26, it_system 0 of 1, org_unit 0 of 3, person 0 of 3, engagement 0 \
             of 4, address 0 of 23, it_user 0 of 2, manager 0 of 1, role 0 of 1). Failed: a \
             request of 5 writes starting with create class 505b2a9a-ca59-5380-b95f-ef6cadb67f87 \
             [-inf, inf) user_key=\"explicitly-primary\": OS2mo {base}/graphql/v30: HTTP 503: \
             503 Service Unavailable (injected by the test server). The other 64 writes were not \
             applied; re-running continues from what OS2mo now holds"
        )],
        "{err}"
    );
    // OS2mo is back: the re-run finishes the import, and the next one has nothing to do.
    server.fail_writes_after(0, 0, dipex_testkit::os2mo::Failure::Status(503));
    let o = s.run_env(&["opus", "import"], &env);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let mutations = server.stats().mutations;
    assert_eq!(code(&s.run_env(&["opus", "import"], &env)), 0);
    assert_eq!(server.stats().mutations, mutations);
}

/// The engagement type classes in the store.
fn engagement_types(s: &Site) -> Vec<String> {
    let facets = text(&s.run(&["mo", "dump", "--type", "facet"]).stdout);
    let facet = facets
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|f| f["validities"][0]["user_key"] == "engagement_type")
        .unwrap()["uuid"]
        .clone();
    text(&s.run(&["mo", "dump", "--type", "class"]).stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|c| c["validities"][0]["facet"] == facet)
        .map(|c| c["uuid"].as_str().unwrap().to_string())
        .collect()
}

/// settings.json of the site plus `extra`.
fn with_settings(s: &Site, name: &str, extra: serde_json::Value) {
    let mut settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("settings.json")).unwrap()).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    std::fs::write(s.path(name), settings.to_string()).unwrap();
}

#[test]
fn plan2learn_export_then_ship_over_ftps_and_the_failures_that_give_exit_code_two() {
    use dipex_testkit::ftp::{PASSWORD, Quirks, TestServer, USER, cert_for, test_cert};
    let s = Site::new(&[DAY1, DAY2]);
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let cert = test_cert();
    let server = TestServer::start(Some(&cert), Quirks::default());
    let settings = |port: u16, password: &str, ca: &Path| {
        serde_json::json!({
            "exporters.plan2learn.root_unit": "0e9c456f-f2e6-0596-4442-1b4a66a6b168",
            "exporters.plan2learn.allowed_engagement_types": engagement_types(&s),
            "exporters.plan2learn.host": format!("127.0.0.1:{port}"),
            "exporters.plan2learn.user": USER,
            "exporters.plan2learn.password": password,
            "exporters.plan2learn.ca_file": ca,
        })
    };
    with_settings(&s, "p2l.json", settings(server.port, PASSWORD, &cert.cert));
    let o = s.run(&[
        "--settings",
        "p2l.json",
        "plan2learn",
        "export",
        "--out",
        "out",
        "--today",
        "2020-01-03",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("plan2learn export:"),
        "{}",
        text(&o.stderr)
    );
    let files = [
        "bruger.csv",
        "organisation.csv",
        "engagement.csv",
        "stillingskode.csv",
        "leder.csv",
    ];
    let engagements = std::fs::read_to_string(s.path("out/engagement.csv")).unwrap();
    assert!(engagements.lines().count() > 1, "{engagements}");
    let o = s.run(&["--settings", "p2l.json", "plan2learn", "ship", "out"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // `dipex check` logs in and lists the target folder, as `ship` would.
    let o = s.run(&["--settings", "p2l.json", "check"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!(
            "ok   plan2learn upload: ftps://{USER}@127.0.0.1:{}/: logged in, 5 files in the target folder\n",
            server.port
        )),
        "{}",
        text(&o.stdout)
    );
    for f in files {
        assert_eq!(
            std::fs::read(server.path(f)).unwrap(),
            std::fs::read(s.path("out").join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        server.names(),
        files
            .iter()
            .map(|f| f.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    // A wrong password.
    with_settings(
        &s,
        "bad.json",
        settings(server.port, "not-the-password-17", &cert.cert),
    );
    let o = s.run(&["--settings", "bad.json", "plan2learn", "ship", "out"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("530") && !err.contains("not-the-password-17"),
        "{err}"
    );
    let o = s.run(&["--settings", "bad.json", "check"]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 2, "{out}");
    assert!(
        out.contains("FAIL plan2learn upload: ")
            && out.contains("530")
            && !out.contains("not-the-password-17"),
        "{out}"
    );
    // A certificate the client does not trust: the TLS handshake is refused.
    let other = cert_for(&["localhost", "127.0.0.1"]);
    with_settings(&s, "tls.json", settings(server.port, PASSWORD, &other.cert));
    let o = s.run(&["--settings", "tls.json", "plan2learn", "ship", "out"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.to_lowercase().contains("tls"), "{err}");
    // A server that drops the connection in the middle of an upload.
    let cutting = TestServer::start(
        Some(&cert),
        Quirks {
            cut_after: Some(100),
            ..Quirks::default()
        },
    );
    with_settings(&s, "cut.json", settings(cutting.port, PASSWORD, &cert.cert));
    let o = s.run(&[
        "--settings",
        "cut.json",
        "plan2learn",
        "export",
        "--out",
        "out2",
        "--ship",
    ]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("bruger.csv"), "{err}");
    assert_eq!(
        err.matches(&format!("FTPS 127.0.0.1:{}", cutting.port))
            .count(),
        1,
        "the error is printed once: {err}"
    );
    assert!(
        !cutting.path("bruger.csv").exists(),
        "never a half file under the real name"
    );
    // Missing settings name the keys.
    let o = s.run(&["plan2learn", "export", "--out", "out3"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("exporters.plan2learn.root_unit"),
        "{}",
        text(&o.stderr)
    );
    assert!(!s.path("out3").exists());
}

#[test]
fn os2sync_check_dry_run_export_and_a_refused_request_gives_exit_code_one() {
    let s = Site::new(&[DAY1, DAY2]);
    assert_eq!(code(&s.run(&["opus", "import"])), 0);
    let server = dipex_testkit::os2sync::Os2SyncServer::start(dipex_testkit::os2sync::Options {
        hierarchy_delay: 0,
        ..Default::default()
    });
    with_settings(
        &s,
        "sync.json",
        serde_json::json!({
            "municipality.cvr": "29189129",
            "os2sync.api_url": server.api_url(),
            "os2sync.top_unit_uuid": "0e9c456f-f2e6-0596-4442-1b4a66a6b168",
            "os2sync.hash_cache": s.path("os2sync_cache.json"),
            "os2sync.xfer_cpr": false,
        }),
    );
    let run = |args: &[&str]| {
        let mut all = vec!["--settings", "sync.json", "os2sync"];
        all.extend_from_slice(args);
        s.run(&all)
    };
    let o = run(&["check"]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", text(&o.stderr));
    assert!(
        out.contains("ok   top unit") && out.contains("ok   OS2Sync"),
        "{out}"
    );
    let o = run(&["export", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("POST orgUnit 0e9c456f-f2e6-0596-4442-1b4a66a6b168"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        server.org_units().is_empty() && server.users().is_empty(),
        "a dry run sends nothing"
    );
    server.fail_next(1, 400);
    let o = run(&["export"]);
    assert_eq!(
        code(&o),
        1,
        "one refused request: exit code 1: {}",
        text(&o.stderr)
    );
    // The one report shape: the refused request, then the summary line.
    let err = text(&o.stderr).replace(&server.api_url(), "API");
    let rejected: Vec<&str> = err.lines().filter(|l| l.contains("rejected")).collect();
    assert_eq!(
        rejected,
        [
            " WARN rejected: OS2Sync: unit 0e9c456f-f2e6-0596-4442-1b4a66a6b168 (Andeby Kommune): OS2Sync POST API/orgUnit: HTTP 400: injected failure (dipex OS2sync test server)",
            " INFO os2sync: 8 requests, 4 units posted, 3 users posted, 0 deleted, 0 unchanged, 1 rejected"
        ]
    );
    assert!(!server.users().is_empty());
    let o = run(&["export"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // Missing settings name the key.
    let o = s.run(&["os2sync", "check"]);
    assert_ne!(code(&o), 0);
    assert!(
        text(&o.stdout).contains("municipality.cvr"),
        "{}",
        text(&o.stdout)
    );
}

/// A copy of the LOS fixture files in `losfiles` (the import writes its DAR failure list into
/// the source folder), delivered an hour ago (a file modified in the second a run starts counts
/// as new, docs/los.md), with `replace` written over some of them, and `los.json` to import
/// them.
fn los_site(s: &Site, replace: &[(&str, &str)]) {
    let los = repo().join("crates/integrations/tests/fixtures/los");
    std::fs::create_dir(s.path("losfiles")).unwrap();
    for e in std::fs::read_dir(los.join("ok")).unwrap() {
        let e = e.unwrap();
        let to = s.path("losfiles").join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
    }
    for (name, text) in replace {
        std::fs::write(s.path("losfiles").join(name), text).unwrap();
    }
    for e in std::fs::read_dir(s.path("losfiles")).unwrap() {
        std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    with_settings(
        s,
        "los.json",
        serde_json::json!({
            "integrations.aarhus_los.import_csv_folder": s.path("losfiles"),
            "integrations.aarhus_los.state_file": s.path("los/state"),
            "integrations.dar.address_file": los.join("adresser.csv"),
        }),
    );
}

#[test]
fn a_los_file_that_fails_after_earlier_ones_were_imported_gives_exit_code_three_naming_them() {
    let s = Site::new(&[]);
    los_site(&s, &[("Pers_luk_20210305_020000.csv", "nonsense\n")]);
    let o = s.run(&["--settings", "los.json", "los", "import"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr).lines().last().unwrap(),
        "ERROR Pers_luk_20210305_020000.csv:1: missing columns: UUID, CPR, CPRNavn; the header has: nonsense; \
         the files before it were imported: STAM_UUID_Engagementstype.csv, STAM_UUID_Enhedstype.csv, \
         STAM_UUID_Stillingsbetegnelse.csv, STAM_UUID_BVN_Stillingsbetegnelse.csv, STAM_UUID_Lederansvar.csv, \
         STAM_UUID_Lederniveau.csv, STAM_UUID_Ledertype.csv, STAM_UUID_Tilknytningsrolle.csv, \
         STAM_UUID_ITSystem.csv, Org_inital_20210101_010000.csv, Org_initial_20210102_010000.csv, \
         Org_nye_20210301_020000.csv, Org_ret_20210302_020000.csv, Pers_nye_20210303_020000.csv, \
         Pers_ret_20210304_020000.csv (a re-run reads them again and continues with Pers_luk_20210305_020000.csv)"
    );
    assert!(!s.path("los/state").exists(), "the state does not move");
    let asked = |o: &Output| -> String {
        text(&o.stderr)
            .lines()
            .find(|l| l.contains("address register:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        asked(&o),
        " INFO address register: 1 answers from the cache, 5 asked"
    );
    // Repaired, the run imports everything; the register's state did not advance with the
    // failed run, so it asks the same again.
    std::fs::copy(
        repo().join("crates/integrations/tests/fixtures/los/ok/Pers_luk_20210305_020000.csv"),
        s.path("losfiles/Pers_luk_20210305_020000.csv"),
    )
    .unwrap();
    let o = s.run(&["--settings", "los.json", "los", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        asked(&o),
        " INFO address register: 1 answers from the cache, 5 asked"
    );
    let o = s.run(&["--settings", "los.json", "los", "import"]);
    assert_eq!(
        asked(&o),
        " INFO address register: 0 answers from the cache, 0 asked"
    );
}

#[test]
fn los_import_from_a_local_folder_then_nothing_new() {
    let s = Site::new(&[]);
    los_site(&s, &[]);
    // `dipex check` lists the source and counts what an import would read.
    let o = s.run(&["--settings", "los.json", "check"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let los_line = |o: &std::process::Output| {
        text(&o.stdout)
            .lines()
            .find(|l| l.contains("los source"))
            .map(str::to_string)
    };
    assert_eq!(
        los_line(&o),
        Some(format!(
            "ok   los source: folder {}: 19 LOS files to import (no import yet), 0 already imported, 0 other files",
            s.path("losfiles").display()
        ))
    );
    // A dry run writes nothing, so the managers of persons the run would create are rejected
    // there (exit code 1), never a failure.
    let o = s.run(&["--settings", "los.json", "los", "import", "--dry-run"]);
    assert_ne!(code(&o), 2, "{}", text(&o.stderr));
    assert!(!s.path("los/state").exists(), "a dry run writes no state");
    let o = s.run(&["--settings", "los.json", "los", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("los import: 19 files"), "{err}");
    assert!(s.path("los/state").exists());
    let o = s.run(&["--settings", "los.json", "los", "import"]);
    assert!(
        text(&o.stderr).contains("los import: 0 files"),
        "{}",
        text(&o.stderr)
    );
    let o = s.run(&["--settings", "los.json", "check"]);
    let line = los_line(&o).unwrap();
    assert!(
        line.starts_with(&format!(
            "ok   los source: folder {}: 0 LOS files to import since the last import (",
            s.path("losfiles").display()
        )) && line.ends_with("), 19 already imported, 0 other files"),
        "{line}"
    );
    // Without the server settings, the missing key is named.
    with_settings(
        &s,
        "bad.json",
        serde_json::json!({"integrations.aarhus_los.state_file": "x"}),
    );
    let o = s.run(&["--settings", "bad.json", "los", "import"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("integrations.aarhus_los.ftp_url"),
        "{}",
        text(&o.stderr)
    );
    // Checklist 1: no state file setting, the key is named and nothing runs.
    with_settings(&s, "nostate.json", serde_json::json!({}));
    let o = s.run(&["--settings", "nostate.json", "los", "import"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("integrations.aarhus_los.state_file is required"),
        "{}",
        text(&o.stderr)
    );
    // Checklist 4: a uuid that is not one is named with its key.
    with_settings(
        &s,
        "badaz.json",
        serde_json::json!({
            "integrations.aarhus_los.import_csv_folder": s.path("losfiles"),
            "integrations.aarhus_los.state_file": s.path("los/state2"),
            "integrations.aarhus_los.azid_it_system_uuid": "AZ",
        }),
    );
    let o = s.run(&["--settings", "badaz.json", "los", "import"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr)
            .contains("integrations.aarhus_los.azid_it_system_uuid: \"AZ\" is not a uuid"),
        "{}",
        text(&o.stderr)
    );
}

/// Checklist 3–8 of specs/los.md §14.2: the AZ IT system is the default one (seeded) unless the
/// setting or `--azid-it-system-uuid` names another (then it is not seeded, and the AZ users are
/// put in that system).
#[test]
fn los_import_az_it_system_default_setting_and_option() {
    let los = repo().join("crates/integrations/tests/fixtures/los");
    let default_az = "c750b872-3760-6f4a-f599-7b3b8ef5255c";
    let custom = "b9000000-0000-4000-8000-000000000001"; // "Active Directory" in STAM_UUID_ITSystem
    for (name, setting, option) in [
        ("default", None, None),
        ("setting", Some(custom), None),
        ("option", Some(default_az), Some(custom)),
    ] {
        let s = Site::new(&[]);
        std::fs::create_dir(s.path("losfiles")).unwrap();
        for e in std::fs::read_dir(los.join("ok")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), s.path("losfiles").join(e.file_name())).unwrap();
        }
        let mut settings = serde_json::json!({
            "integrations.aarhus_los.import_csv_folder": s.path("losfiles"),
            "integrations.aarhus_los.state_file": s.path("los/state"),
            "integrations.dar.address_file": los.join("adresser.csv"),
        });
        if let Some(u) = setting {
            settings["integrations.aarhus_los.azid_it_system_uuid"] = u.into();
        }
        with_settings(&s, "los.json", settings);
        let mut args = vec!["--settings", "los.json", "los", "import"];
        if let Some(u) = option {
            args.extend(["--azid-it-system-uuid", u]);
        }
        let o = s.run(&args);
        assert_eq!(code(&o), 0, "{name}: {}", text(&o.stderr));
        let o = s.run(&["--settings", "los.json", "mo", "dump"]);
        assert_eq!(code(&o), 0, "{name}: {}", text(&o.stderr));
        let dump = text(&o.stdout);
        let it_users: Vec<serde_json::Value> = dump
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|o| o["type"] == "it_user")
            .collect();
        assert!(!it_users.is_empty(), "{name}");
        let system = if name == "default" {
            default_az
        } else {
            custom
        };
        for u in &it_users {
            assert_eq!(u["validities"][0]["itsystem"], system, "{name}: {u}");
        }
        assert_eq!(
            dump.contains(&format!("\"uuid\":\"{default_az}\"")),
            name == "default",
            "{name}: the default AZ IT system is seeded only when it is used"
        );
    }
}
