//! The address register end to end through the `dipex` binary: Adressevælger on loopback
//! (`dipex_testkit::dar`), a register that refuses connections or hangs, the pending lookups in
//! the register's state database, exit code 1 with the pending count, and `dipex check`.

use dipex_testkit::dar::{DarServer, Mode};
use dipex_testkit::synth::{SynthSpec, write_address_file, write_dumps};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

/// A loopback URL nobody listens on: connections are refused.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// A site with synthetic OPUS dumps (`days` of them, in `all/`), their address file, and an
/// empty `dumps/` folder the import reads.
struct Site {
    dir: tempfile::TempDir,
    dumps: Vec<PathBuf>,
}

impl Site {
    fn new(employees: usize) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let all = dir.path().join("all");
        std::fs::create_dir_all(&all).unwrap();
        std::fs::create_dir_all(dir.path().join("dumps")).unwrap();
        let spec = SynthSpec {
            units: 12,
            employees,
            days: 2,
            seed: 13,
            start: jiff::civil::date(2024, 1, 1),
        };
        let dumps = write_dumps(&spec, &all).unwrap();
        write_address_file(&spec, &dir.path().join("adresser.csv")).unwrap();
        Site { dir, dumps }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Make dump `day` (0-based) arrive.
    fn arrive(&self, day: usize) {
        let d = &self.dumps[day];
        std::fs::copy(d, self.path("dumps").join(d.file_name().unwrap())).unwrap();
    }

    fn server(&self) -> DarServer {
        DarServer::from_csv(&std::fs::read(self.path("adresser.csv")).unwrap()).unwrap()
    }

    /// settings.json with the register at `url`.
    fn settings(&self, url: &str, timeout: u64) {
        let settings = serde_json::json!({
            "municipality.name": "Registerby Kommune",
            "dipex.store": self.path("store.sqlite3"),
            "integrations.opus.import.xml_path": self.path("dumps"),
            "integrations.opus.import.run_db": self.path("state/run_db.sqlite"),
            "integrations.opus.cpr_uuid_map": self.path("map.csv"),
            "integrations.dar.base_url": url,
            "integrations.dar.protocol": "adressevaelger",
            "integrations.dar.timeout_seconds": timeout,
        });
        std::fs::write(self.path("settings.json"), settings.to_string()).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dipex"))
            .current_dir(self.dir.path())
            .env_remove("DIPEX_SETTINGS")
            .env_remove("DIPEX_LOG")
            .args(args)
            .output()
            .unwrap()
    }

    /// The DAR addresses MO holds now: the DAR id of every address whose value is a uuid, one
    /// per owner, sorted. (Owners are left out: the two sites give people different uuids.)
    fn dar_addresses(&self) -> Vec<String> {
        let o = self.run(&["mo", "dump", "--type", "address"]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let mut ids: Vec<String> = text(&o.stdout)
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let last = v["validities"].as_array()?.last()?.clone();
                let value = last["value"].as_str()?.to_string();
                uuid::Uuid::parse_str(&value).ok()?;
                last["person"].as_str().or(last["org_unit"].as_str())?;
                Some(value)
            })
            .collect();
        ids.sort();
        ids
    }

    /// Rows of the register's pending table (beside the run database).
    fn pending_rows(&self, importer: &str) -> i64 {
        let db = rusqlite::Connection::open(self.path("state/dar.sqlite3")).unwrap();
        db.query_row(
            "SELECT count(*) FROM dar_pending WHERE importer = ?1",
            [importer],
            |r| r.get(0),
        )
        .unwrap()
    }
}

/// The number in `"<what>: N addresses pending"`.
fn pending_count(stderr: &str, what: &str) -> Option<usize> {
    let line = stderr
        .lines()
        .find(|l| l.contains(what) && l.contains("pending (the address register failed)"))?;
    let rest = &line[line.find(what)? + what.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_refused_register_on_day_one_delays_addresses_to_day_two_and_loses_none() {
    // The reference: the register works both days.
    let good = Site::new(300);
    let server = good.server();
    good.settings(&server.url(), 10);
    for day in 0..2 {
        good.arrive(day);
        let o = good.run(&["opus", "import"]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
    let expected = good.dar_addresses();
    // Owners (12 units, 300 employees) with a register address; seed 13 is fixed.
    assert_eq!(expected.len(), 226);

    // Day 1: connections refused. The import finishes, says how many addresses are pending,
    // and exits 1; the pending objects are in the register's state database.
    let site = Site::new(300);
    site.settings(&dead_url(), 10);
    site.arrive(0);
    let o = site.run(&["opus", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    let pending = pending_count(&err, "opus import: ").unwrap_or_else(|| panic!("{err}"));
    // Units and employments whose address failed (a person with two employments counts twice).
    assert_eq!(pending, 268, "{err}");
    assert_eq!(site.pending_rows("opus"), pending as i64);
    assert!(
        err.contains("address register stopped for this run"),
        "{err}"
    );
    assert!(site.dar_addresses().is_empty());

    // Day 2: the register is back. Every address of day 1 that the day-2 dump does not change
    // is tried again, and MO ends with the same addresses as the reference.
    let server = site.server();
    site.settings(&server.url(), 10);
    site.arrive(1);
    let o = site.run(&["opus", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains(&format!(
            "opus import: {pending} pending addresses of earlier runs settled"
        )),
        "{err}"
    );
    assert_eq!(site.pending_rows("opus"), 0);
    assert_eq!(site.dar_addresses(), expected);
}

#[test]
fn pending_addresses_are_retried_even_when_no_new_dump_arrives() {
    let site = Site::new(40);
    site.settings(&dead_url(), 10);
    site.arrive(0);
    let o = site.run(&["opus", "import"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let server = site.server();
    site.settings(&server.url(), 10);
    let o = site.run(&["opus", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("pending addresses of earlier runs settled"),
        "{err}"
    );
    assert_eq!(site.pending_rows("opus"), 0);
    assert!(!site.dar_addresses().is_empty());
    // Nothing new, nothing pending: nothing to do.
    let o = site.run(&["opus", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("nothing to do"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_hanging_register_trips_the_breaker_and_leaves_the_addresses_pending() {
    let site = Site::new(300);
    let server = site.server();
    server.set_mode(Mode::Hang);
    site.settings(&server.url(), 1);
    site.arrive(0);
    let o = site.run(&["opus", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    let pending = pending_count(&err, "opus import: ").unwrap_or_else(|| panic!("{err}"));
    assert_eq!(site.pending_rows("opus"), pending as i64);
    assert!(
        err.contains("address register stopped for this run"),
        "{err}"
    );
    // The breaker stopped asking: at most one round of requests on the 10 connections (and the
    // few that were already queued) reached the server, not one per address.
    assert!(server.requests() <= 20, "{} requests", server.requests());
    // The units and persons are there; only their postal addresses wait.
    let o = site.run(&["mo", "dump", "--type", "person"]);
    // Seed 13: 300 employments of 250 persons.
    assert_eq!(text(&o.stdout).lines().count(), 250);
}

#[test]
fn check_probes_the_register_for_real() {
    let site = Site::new(5);
    site.settings(&dead_url(), 2);
    let o = site.run(&["check"]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 2, "{out}{}", text(&o.stderr));
    let line = out
        .lines()
        .find(|l| l.contains("address register"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("FAIL address register: Adressevælger at http://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("does not answer"), "{line}");
    assert!(
        !line.contains("adressevaelger123"),
        "the token is never shown: {line}"
    );

    let server = site.server();
    site.settings(&server.url(), 2);
    let o = site.run(&["check"]);
    let out = text(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("address register"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        line,
        format!(
            "ok   address register: Adressevælger at {} answers; state {}",
            server.url(),
            site.path("state/dar.sqlite3").display()
        )
    );
    assert_eq!(
        server.log(),
        ["GET /adresser/soeg?tekst=test&maksimum=1&token=***"]
    );
}

fn los_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations/tests/fixtures/los")
}

#[test]
fn los_postal_addresses_wait_for_the_register_and_are_never_listed_as_misses() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    std::fs::create_dir(p("losfiles")).unwrap();
    for e in std::fs::read_dir(los_fixtures().join("ok")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p("losfiles").join(e.file_name())).unwrap();
    }
    // A later Org_ret moves unit 5 (whose Org_inital rows give it two postal addresses in
    // turn) to a third address: with the register down, both files' rows of the unit wait.
    let header = std::fs::read_to_string(los_fixtures().join("ok/Org_ret_20210302_020000.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        p("losfiles/Org_ret_20210309_020000.csv"),
        format!(
            "{header}\r\na1000000-0000-4000-8000-000000000005;SOLB;Plejehjemmet Solbakken;b1000000-0000-4000-8000-000000000003;a1000000-0000-4000-8000-000000000004;1;1004;55133018;5798000000005;1000000005;55133018;4712;;Vejlby Centervej 46, 8240 Risskov;2021-03-09;9999-12-31\r\n"
        ),
    )
    .unwrap();
    let settings = |url: &str| {
        let s = serde_json::json!({
            "dipex.store": p("store.sqlite3"),
            "integrations.aarhus_los.import_csv_folder": p("losfiles"),
            "integrations.aarhus_los.state_file": p("los/state"),
            "integrations.dar.base_url": url,
            "integrations.dar.protocol": "adressevaelger",
            "integrations.dar.timeout_seconds": 2,
        });
        std::fs::write(p("settings.json"), s.to_string()).unwrap();
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dipex"))
            .current_dir(dir.path())
            .env_remove("DIPEX_SETTINGS")
            .env_remove("DIPEX_LOG")
            .args(args)
            .output()
            .unwrap()
    };
    let failure_lists = || -> Vec<String> {
        let mut out = Vec::new();
        for d in [p("los"), p("losfiles/DARfejlliste")] {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd {
                    let e = e.unwrap();
                    if e.file_name().to_string_lossy().starts_with("failed_addr_") {
                        out.push(std::fs::read_to_string(e.path()).unwrap());
                    }
                }
            }
        }
        out
    };
    let postal = || -> usize {
        let o = run(&["mo", "dump", "--type", "address"]);
        text(&o.stdout)
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["validities"]
                    .as_array()
                    .and_then(|s| s.last())
                    .and_then(|s| s["value"].as_str())
                    .is_some_and(|v| uuid::Uuid::parse_str(v).is_ok())
            })
            .count()
    };

    // Day 1: refused. Exit 1 with the count; no failure list (a failure is not a miss).
    settings(&dead_url());
    let o = run(&["los", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    let pending = pending_count(&err, "los import: ").unwrap_or_else(|| panic!("{err}"));
    assert!(pending > 0, "{err}");
    assert!(failure_lists().is_empty(), "{:?}", failure_lists());
    assert_eq!(postal(), 0);

    // Day 2: no new files, the register is back: the pending units get their addresses, and
    // only the definitive misses are listed.
    let server =
        DarServer::from_csv(&std::fs::read(los_fixtures().join("adresser.csv")).unwrap()).unwrap();
    settings(&server.url());
    let o = run(&["los", "import"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains(&format!(
            "los import: {pending} pending postal addresses of earlier runs settled"
        )),
        "{err}"
    );
    assert!(postal() > 0);
    assert!(server.washes() > 0);

    // Nothing was lost: the units' addresses, with their history, are those of a run that had
    // the register from the start (every file's pending rows were kept and mapped again in
    // file order, also where two files mention the same unit).
    let addresses = |run: &dyn Fn(&[&str]) -> Output| -> Vec<String> {
        let o = run(&["mo", "dump", "--type", "address"]);
        // Units' addresses (persons get random uuids, and their addresses uuids from them).
        let mut lines: Vec<String> = text(&o.stdout)
            .lines()
            .filter(|l| l.contains("\"org_unit\""))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let delayed = addresses(&run);
    let healthy = tempfile::tempdir().unwrap();
    let q = |s: &str| healthy.path().join(s);
    std::fs::create_dir(q("losfiles")).unwrap();
    for e in std::fs::read_dir(p("losfiles")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file()
            && !e.file_name().to_string_lossy().starts_with("failed_addr_")
        {
            std::fs::copy(e.path(), q("losfiles").join(e.file_name())).unwrap();
        }
    }
    let s = serde_json::json!({
        "dipex.store": q("store.sqlite3"),
        "integrations.aarhus_los.import_csv_folder": q("losfiles"),
        "integrations.aarhus_los.state_file": q("los/state"),
        "integrations.dar.base_url": server.url(),
        "integrations.dar.protocol": "adressevaelger",
        "integrations.dar.state_db": q("dar.sqlite3"),
    });
    std::fs::write(q("settings.json"), s.to_string()).unwrap();
    let run_healthy = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dipex"))
            .current_dir(healthy.path())
            .env_remove("DIPEX_SETTINGS")
            .env_remove("DIPEX_LOG")
            .args(args)
            .output()
            .unwrap()
    };
    let o = run_healthy(&["los", "import"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(delayed, addresses(&run_healthy));
}
