//! The synthetic OPUS data of the test kit (`dipex_testkit::synth`) read by dipex's own OPUS
//! parser: the dumps parse, match their spec, change a little each day, and the address file
//! covers every address they use.

use dipex_integrations::opus::parse::{AddressField, Digest, Dump, parse_file};
use dipex_testkit::synth::{
    MAX_DEPTH, SynthSpec, address_uuid, passes_mod11, write_address_file, write_dumps,
};
use jiff::civil::Date;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

fn spec(seed: u64) -> SynthSpec {
    SynthSpec {
        units: 80,
        employees: 1200,
        days: 4,
        seed,
        start: Date::constant(2024, 3, 1),
    }
}

fn generate(spec: &SynthSpec) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_dumps(spec, dir.path()).unwrap();
    (dir, paths)
}

fn digests_by_id<'a>(items: impl Iterator<Item = (&'a String, Digest)>) -> HashMap<String, Digest> {
    items.map(|(id, d)| (id.clone(), d)).collect()
}

fn changed(a: &HashMap<String, Digest>, b: &HashMap<String, Digest>) -> usize {
    b.iter().filter(|(id, d)| a.get(*id) != Some(d)).count()
        + a.keys().filter(|id| !b.contains_key(*id)).count()
}

#[test]
fn dumps_parse_and_match_the_spec() {
    let spec = spec(7);
    let (_dir, paths) = generate(&spec);
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "ZLPE20240301220000_delta.xml",
            "ZLPE20240302220000_delta.xml",
            "ZLPE20240303220000_delta.xml",
            "ZLPE20240304220000_delta.xml"
        ]
    );
    let dumps: Vec<Dump> = paths.iter().map(|p| parse_file(p).unwrap()).collect();
    let day0 = &dumps[0];
    assert_eq!(day0.units.len(), spec.units);
    assert_eq!(day0.employees.len(), spec.employees);
    assert!(day0.employees.iter().all(|e| e.data.is_some()));

    for dump in &dumps {
        // A proper tree: one root `1`, every parent present, no cycles, shallow.
        let parents: HashMap<&str, Option<&str>> = dump
            .units
            .iter()
            .map(|u| (u.id.as_str(), u.parent.as_deref()))
            .collect();
        assert_eq!(dump.units[0].id, "1");
        assert_eq!(dump.units[0].parent, None);
        for u in &dump.units {
            let mut depth = 0;
            let mut at = u.id.as_str();
            while let Some(Some(p)) = parents.get(at) {
                at = p;
                depth += 1;
                assert!(depth <= MAX_DEPTH, "unit {} too deep or in a cycle", u.id);
            }
            assert_eq!(at, "1", "unit {} does not reach the root", u.id);
        }
        // Every employment points at an existing unit.
        for e in dump.employees.iter().filter_map(|e| e.data.as_ref()) {
            assert!(parents.contains_key(e.org_unit.as_str()), "{}", e.org_unit);
        }
    }

    let data: Vec<_> = day0
        .employees
        .iter()
        .filter_map(|e| e.data.as_ref())
        .collect();
    let share = |f: &dyn Fn(&&Box<dipex_integrations::opus::parse::EmployeeData>) -> bool| {
        data.iter().filter(|d| f(d)).count() as f64 / data.len() as f64
    };
    assert!(share(&|d| d.email.is_some()) > 0.7);
    assert!(share(&|d| d.work_phone.is_some()) > 0.6);
    assert!(share(&|d| d.user_id.is_some()) > 0.7);
    assert!(share(&|d| matches!(d.address, Some(AddressField::Plain(_)))) > 0.7);
    let managers = share(&|d| d.is_manager.as_deref() == Some("true"));
    assert!((0.01..0.06).contains(&managers), "{managers}");
    assert!(share(&|d| d.numerator.is_some()) > 0.2);
    assert!(share(&|d| d.entry_date.is_some()) == 1.0);
    assert!(data.iter().any(|d| !d.functions.is_empty()));
    let positions: HashSet<_> = data.iter().filter_map(|d| d.position.as_deref()).collect();
    assert!(positions.len() >= 30, "{}", positions.len());

    // About 1.2 employments per person: some CPR numbers occur twice.
    let mut per_cpr: HashMap<&str, usize> = HashMap::new();
    for d in &data {
        *per_cpr.entry(d.cpr.expose()).or_default() += 1;
    }
    let ratio = data.len() as f64 / per_cpr.len() as f64;
    assert!((1.1..1.3).contains(&ratio), "{ratio}");

    // Synthetic CPR numbers: a real birth date, and the modulus-11 check fails.
    for cpr in per_cpr.keys() {
        assert!(!passes_mod11(cpr), "{}", &cpr[..6]);
        let (d, m, y) = (&cpr[0..2], &cpr[2..4], &cpr[4..6]);
        let year = 1900 + y.parse::<i16>().unwrap();
        let ok = Date::new(year, m.parse().unwrap(), d.parse().unwrap()).is_ok()
            || Date::new(year + 100, m.parse().unwrap(), d.parse().unwrap()).is_ok();
        assert!(ok, "{}", &cpr[..6]);
    }
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    let one_day = SynthSpec {
        days: 2,
        ..spec(99)
    };
    let (_a, first) = generate(&one_day);
    let (_b, second) = generate(&one_day);
    for (a, b) in first.iter().zip(&second) {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{a:?}"
        );
    }
    let (_c, other) = generate(&SynthSpec {
        seed: 100,
        ..one_day
    });
    assert!(std::fs::read(&first[0]).unwrap() != std::fs::read(&other[0]).unwrap());
}

#[test]
fn each_day_changes_only_a_few_records() {
    let spec = spec(3);
    let (_dir, paths) = generate(&spec);
    let dumps: Vec<Dump> = paths.iter().map(|p| parse_file(p).unwrap()).collect();
    for pair in dumps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ua = digests_by_id(a.units.iter().map(|u| (&u.id, u.digest)));
        let ub = digests_by_id(b.units.iter().map(|u| (&u.id, u.digest)));
        let ea = digests_by_id(a.employees.iter().map(|e| (&e.id, e.digest)));
        let eb = digests_by_id(b.employees.iter().map(|e| (&e.id, e.digest)));
        let (units, emps) = (changed(&ua, &ub), changed(&ea, &eb));
        assert!(units <= 6, "{units} units changed");
        assert!((1..=40).contains(&emps), "{emps} employments changed");
    }
    // Over the days, leave markers appear.
    let total_leaves: usize = dumps
        .iter()
        .map(|d| d.employees.iter().filter(|e| e.is_leave_marker()).count())
        .sum();
    let bigger = SynthSpec {
        employees: 5000,
        units: 200,
        days: 3,
        ..spec
    };
    let (_d2, paths) = generate(&bigger);
    let last = parse_file(paths.last().unwrap()).unwrap();
    assert!(
        total_leaves > 0 || last.employees.iter().any(|e| e.is_leave_marker()),
        "no leave markers at all"
    );
}

#[test]
fn address_file_covers_every_address_in_the_dumps() {
    let spec = spec(11);
    let (dir, paths) = generate(&spec);
    let csv_path = dir.path().join("adresser.csv");
    write_address_file(&spec, &csv_path).unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    assert!(text.starts_with("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n"));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let mut known: HashSet<(String, String)> = HashSet::new();
    let mut ids = HashSet::new();
    for row in reader.records() {
        let row = row.unwrap();
        let id: uuid::Uuid = row[0].parse().unwrap();
        assert_eq!(id.get_version_num(), 5);
        assert_eq!(id, address_uuid(&row[1], &row[2], &row[5], &row[6]));
        assert!(ids.insert(id));
        known.insert((format!("{} {}", &row[1], &row[2]), row[5].to_string()));
    }
    let mut used = 0;
    for path in &paths {
        let dump = parse_file(path).unwrap();
        for u in &dump.units {
            if let (Some(street), Some(zip)) = (&u.street, &u.zip_code) {
                assert!(
                    known.contains(&(street.clone(), zip.clone())),
                    "{street} {zip}"
                );
                used += 1;
            }
        }
        for d in dump.employees.iter().filter_map(|e| e.data.as_ref()) {
            if let (Some(AddressField::Plain(street)), Some(zip)) = (&d.address, &d.postal_code) {
                assert!(
                    known.contains(&(street.clone(), zip.clone())),
                    "{street} {zip}"
                );
                used += 1;
            }
        }
    }
    assert!(used > 1000);
}
