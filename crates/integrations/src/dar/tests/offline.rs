//! The offline register on the CSV fixtures (`tests/fixtures/dar/`).

use std::path::PathBuf;

use crate::dar::{
    AddressRegister, DarError, DarSettings, Lookup, OfflineRegister, register_from_settings,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dar")
        .join(name)
}

fn found(id: &str) -> Lookup {
    Lookup::Found(id.parse().unwrap())
}

/// Lookups every variant of the fixture must answer the same way.
fn check_fixture_answers(reg: &OfflineRegister) {
    let cases: &[(&str, &str, Lookup)] = &[
        (
            "Paradisæblevej 1",
            "8880",
            found("3ceaaf30-8142-48ea-91d9-3080f9b439fc"),
        ),
        (
            "paradisÆBLEVEJ   1",
            " 8880 ",
            found("3ceaaf30-8142-48ea-91d9-3080f9b439fc"),
        ),
        (
            "Paradisæblevej 1.",
            "8880",
            found("3ceaaf30-8142-48ea-91d9-3080f9b439fc"),
        ),
        // Same street and number in another postal code is another address.
        (
            "Paradisæblevej 1",
            "8800",
            found("c1acc990-6424-450a-a36b-f9b3ddcb369d"),
        ),
        ("Paradisæblevej 1", "1000", Lookup::NotFound),
        (
            "Søndergårdsvej 12b",
            "8000",
            found("9dfb369b-ab13-4fae-a276-55daa05f1119"),
        ),
        ("Søndergårdsvej 12", "8000", Lookup::NotFound),
        (
            "ØSTRE ALLÉ 3",
            "9000",
            found("6301bbfc-a0c5-454e-8ff9-bb510944fe0c"),
        ),
        (
            "Åbyhøjvej 7",
            "8230",
            found("6fced11d-2bd8-41e6-847a-8387cdde8d51"),
        ),
        // Floor and door, with varying commas, dots, case and spacing.
        (
            "Ærøgade 14, 2. tv",
            "8000",
            found("3a124c64-7e02-4f05-b7c1-dce27f7695f5"),
        ),
        (
            "ærøgade 14,2.TV",
            "8000",
            found("3a124c64-7e02-4f05-b7c1-dce27f7695f5"),
        ),
        (
            "Ærøgade 14 , 2. th.",
            "8000",
            found("66080f17-4c96-48e2-9cbd-0ba3a1a6bcde"),
        ),
        // Two flats behind one entrance: the entrance alone, or the floor alone, is ambiguous.
        ("Ærøgade 14", "8000", Lookup::NotFound),
        ("Ærøgade 14, 2.", "8000", Lookup::NotFound),
        // A floor without door.
        (
            "Testvej 1, st.",
            "2345",
            found("b120a366-f0bb-49cf-82f2-dc05873f9bd0"),
        ),
        (
            "Testvej 1, st",
            "2345",
            found("b120a366-f0bb-49cf-82f2-dc05873f9bd0"),
        ),
        (
            "Testvej 1",
            "2345",
            found("b120a366-f0bb-49cf-82f2-dc05873f9bd0"),
        ),
        // Two rows for one address text: ambiguous.
        ("Dobbeltgade 5", "5000", Lookup::NotFound),
        (
            "H.C. Andersens Vej 9",
            "7400",
            found("9ad9b9a2-5e78-454d-b065-a1c284cc4549"),
        ),
        (
            "H. C. Andersens vej 9",
            "7400",
            found("9ad9b9a2-5e78-454d-b065-a1c284cc4549"),
        ),
        ("Ukendtvej 1", "8000", Lookup::NotFound),
        ("", "8000", Lookup::NotFound),
    ];
    for (street, postal, expected) in cases {
        let answer = reg.lookup(street, postal).unwrap();
        assert_eq!(answer, *expected, "lookup({street:?}, {postal:?})");
    }
}

/// Descriptions every variant of the fixture must give.
fn check_fixture_texts(reg: &OfflineRegister) {
    let cases: &[(&str, Option<&str>)] = &[
        (
            "3ceaaf30-8142-48ea-91d9-3080f9b439fc",
            Some("Paradisæblevej 1, 8880 Tjele"),
        ),
        (
            "6301bbfc-a0c5-454e-8ff9-bb510944fe0c",
            Some("Østre Allé 3, 9000 Aalborg"),
        ),
        // Floor and door.
        (
            "3a124c64-7e02-4f05-b7c1-dce27f7695f5",
            Some("Ærøgade 14, 2. tv, 8000 Aarhus C"),
        ),
        // A floor without door.
        (
            "b120a366-f0bb-49cf-82f2-dc05873f9bd0",
            Some("Testvej 1, st., 2345 Testby"),
        ),
        // A supplementary town name.
        (
            "9ad9b9a2-5e78-454d-b065-a1c284cc4549",
            Some("H.C. Andersens Vej 9, Bjergby, 7400 Herning"),
        ),
        // Ambiguous as a text, but the id is precise.
        (
            "2330fcf1-562a-44b8-8866-8d77e827062c",
            Some("Dobbeltgade 5, 5000 Odense C"),
        ),
        ("00000000-0000-4000-8000-000000000000", None),
        ("ffffffff-ffff-4fff-bfff-ffffffffffff", None),
    ];
    for (id, expected) in cases {
        let text = reg.describe(id.parse().unwrap()).unwrap();
        assert_eq!(text.as_deref(), *expected, "describe({id})");
    }
}

#[test]
fn dar_offline_fixture_without_bom() {
    let reg = OfflineRegister::load(fixture("adresser.csv")).unwrap();
    assert_eq!(reg.rows(), 11);
    check_fixture_answers(&reg);
    check_fixture_texts(&reg);
}

#[test]
fn dar_offline_fixture_with_bom_and_crlf() {
    let bytes = std::fs::read(fixture("adresser_bom.csv")).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let reg = OfflineRegister::load(fixture("adresser_bom.csv")).unwrap();
    assert_eq!(reg.rows(), 11);
    check_fixture_answers(&reg);
    check_fixture_texts(&reg);
}

#[test]
fn dar_offline_describe_floor_door_and_postal_name_combinations() {
    let csv = "id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n\
               10000000-0000-4000-8000-000000000001,Bygade,3,,,8000,Aarhus C\n\
               10000000-0000-4000-8000-000000000002,Bygade,3,1,,8000,Aarhus C\n\
               10000000-0000-4000-8000-000000000003,Bygade,3,1,th,8000,Aarhus C\n\
               10000000-0000-4000-8000-000000000004,Bygade,3,,12,8000,Aarhus C\n\
               10000000-0000-4000-8000-000000000005,Bygade,3,kl,,8000,\n\
               10000000-0000-4000-8000-000000000006,Bygade,3,,,8000,\n\
               10000000-0000-4000-8000-000000000007, Bygade , 3B , 2 , mf , 8000 , Aarhus C \n";
    let reg = OfflineRegister::from_bytes("combinations.csv", csv.as_bytes()).unwrap();
    let expected = [
        "Bygade 3, 8000 Aarhus C",
        "Bygade 3, 1., 8000 Aarhus C",
        "Bygade 3, 1. th, 8000 Aarhus C",
        // A door without a floor, as DAWA writes it.
        "Bygade 3, 12, 8000 Aarhus C",
        "Bygade 3, kl., 8000",
        "Bygade 3, 8000",
        // Fields are trimmed.
        "Bygade 3B, 2. mf, 8000 Aarhus C",
    ];
    for (i, text) in expected.iter().enumerate() {
        let id = uuid::Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0001 + i as u128);
        assert_eq!(reg.describe(id).unwrap().as_deref(), Some(*text), "{id}");
    }
    let unknown = uuid::Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000);
    assert_eq!(reg.describe(unknown).unwrap(), None);
}

#[test]
fn dar_offline_describe_without_postal_name_column_and_with_repeated_ids() {
    let csv = "PostNr,HusNr,VejNavn,ID,SupplerendeBynavn\n\
               8000,3,Bygade,6301bbfc-a0c5-454e-8ff9-bb510944fe0c,\n\
               8000,5,Bygade,9dfb369b-ab13-4fae-a276-55daa05f1119,Lilleby\n\
               8000,7,Bygade,6301bbfc-a0c5-454e-8ff9-bb510944fe0c,\n";
    let reg = OfflineRegister::from_bytes("minimal.csv", csv.as_bytes()).unwrap();
    assert_eq!(reg.rows(), 3);
    // Of two rows with one id, the first is kept.
    assert_eq!(
        reg.describe("6301bbfc-a0c5-454e-8ff9-bb510944fe0c".parse().unwrap())
            .unwrap()
            .as_deref(),
        Some("Bygade 3, 8000")
    );
    assert_eq!(
        reg.describe("9dfb369b-ab13-4fae-a276-55daa05f1119".parse().unwrap())
            .unwrap()
            .as_deref(),
        Some("Bygade 5, Lilleby, 8000")
    );
}

#[test]
fn dar_offline_minimal_columns_in_any_order() {
    let csv = "PostNr,HusNr,VejNavn,ID\n8000,3,Bygade,6301bbfc-a0c5-454e-8ff9-bb510944fe0c\n";
    let reg = OfflineRegister::from_bytes("minimal.csv", csv.as_bytes()).unwrap();
    assert_eq!(
        reg.lookup("bygade 3", "8000").unwrap(),
        found("6301bbfc-a0c5-454e-8ff9-bb510944fe0c")
    );
}

#[test]
fn dar_offline_missing_id_column_names_file_and_line() {
    let path = fixture("mangler_id.csv");
    let err = OfflineRegister::load(&path).unwrap_err();
    match &err {
        DarError::File {
            path: p,
            line,
            message,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 1);
            assert!(message.contains("`id`"), "{message}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("mangler_id.csv") && text.contains("line 1"),
        "{text}"
    );
}

#[test]
fn dar_offline_bad_rows_name_their_line() {
    let bad_id = "id,vejnavn,husnr,postnr\n\
                  6301bbfc-a0c5-454e-8ff9-bb510944fe0c,Bygade,3,8000\n\
                  ikke-en-uuid,Bygade,5,8000\n";
    let err = OfflineRegister::from_bytes("x.csv", bad_id.as_bytes()).unwrap_err();
    assert!(matches!(err, DarError::File { line: 3, .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("DAR address file x.csv, line 3:"),
        "{err}"
    );

    let short_row = "id,vejnavn,husnr,postnr\n6301bbfc-a0c5-454e-8ff9-bb510944fe0c,Bygade,3\n";
    let err = OfflineRegister::from_bytes("y.csv", short_row.as_bytes()).unwrap_err();
    assert!(matches!(err, DarError::File { line: 2, .. }), "{err:?}");

    let latin1 =
        b"id,vejnavn,husnr,postnr\n6301bbfc-a0c5-454e-8ff9-bb510944fe0c,\xC6blevej,3,8000\n";
    let err = OfflineRegister::from_bytes("z.csv", latin1).unwrap_err();
    assert!(matches!(err, DarError::File { line: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("UTF-8"), "{err}");

    let err = OfflineRegister::from_bytes("empty.csv", b"").unwrap_err();
    assert!(matches!(err, DarError::File { line: 1, .. }), "{err:?}");
}

#[test]
fn dar_offline_missing_file_is_an_io_error() {
    let path = fixture("findes_ikke.csv");
    let err = OfflineRegister::load(&path).unwrap_err();
    assert!(matches!(err, DarError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("findes_ikke.csv"), "{err}");
}

#[test]
fn dar_settings_prefer_the_offline_file() {
    let settings = DarSettings {
        // Never asked: the file wins.
        base_url: Some("http://127.0.0.1:9".into()),
        address_file: Some(fixture("adresser.csv")),
        ..DarSettings::default()
    };
    let reg = register_from_settings(&settings).unwrap();
    assert_eq!(
        reg.lookup("Testvej 1", "2345").unwrap(),
        found("b120a366-f0bb-49cf-82f2-dc05873f9bd0")
    );
    assert_eq!(
        reg.describe("b120a366-f0bb-49cf-82f2-dc05873f9bd0".parse().unwrap())
            .unwrap()
            .as_deref(),
        Some("Testvej 1, st., 2345 Testby")
    );
}

/// 100,000 synthetic rows (a mid-sized municipality) load and answer correctly. Timing is for
/// the benchmark, not this test: run `cargo test --release -p dipex-integrations dar_offline_large
/// -- --ignored --nocapture` to see it.
#[test]
#[ignore = "large; run by hand with --release to see the load time"]
fn dar_offline_large_file() {
    let mut csv = String::from("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n");
    for i in 0..100_000u32 {
        let id = uuid::Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + u128::from(i));
        let street = format!("Gådevej {}", i / 100);
        let postal = 1000 + i % 50;
        csv.push_str(&format!(
            "{id},{street},{},{},tv,{postal},By\n",
            i % 100,
            i % 3
        ));
    }
    let start = std::time::Instant::now();
    let reg = OfflineRegister::from_bytes("large.csv", csv.as_bytes()).unwrap();
    let elapsed = start.elapsed();
    println!("loaded {} rows in {elapsed:?}", reg.rows());
    assert_eq!(reg.rows(), 100_000);
    let id = uuid::Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + 12_345);
    assert_eq!(
        reg.lookup("gådevej 123 45, 0. TV", "1045").unwrap(),
        Lookup::Found(id)
    );
    assert_eq!(
        reg.describe(id).unwrap().as_deref(),
        Some("Gådevej 123 45, 0. tv, 1045 By")
    );
}

/// A kB field (`VmRSS:`, `VmHWM:`) of `/proc/self/status`; 0 where there is none.
fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One million synthetic rows with realistic text lengths (two in three with a floor, one in
/// three with a door): load time, the bytes kept for `describe`, and the process's resident
/// memory. Run alone: `cargo test --release -p dipex-integrations --lib dar_offline_million --
/// --ignored --nocapture`.
#[test]
#[ignore = "large; run by hand with --release to see time and memory"]
fn dar_offline_million_rows_time_and_memory() {
    const STREETS: [&str; 4] = [
        "Paradisæblevej",
        "H.C. Andersens Boulevard",
        "Søndergårdsvej",
        "Østre Allé",
    ];
    const TOWNS: [&str; 3] = ["Aarhus C", "Frederiksberg C", "Ikast"];
    let rows = 1_000_000u32;
    let mut csv = String::from("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n");
    for i in 0..rows {
        let id = uuid::Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0000 + u128::from(i));
        let street = format!("{} {}", STREETS[(i % 4) as usize], i / 400);
        let number = format!("{}{}", 1 + (i / 4) % 100, if i % 7 == 0 { "B" } else { "" });
        let floor = if i % 3 == 0 {
            String::new()
        } else {
            (i % 5).to_string()
        };
        let door = if i % 3 == 1 { "tv" } else { "" };
        let postal = 1000 + i % 8000;
        let town = TOWNS[(i % 3) as usize];
        csv.push_str(&format!(
            "{id},{street},{number},{floor},{door},{postal},{town}\n"
        ));
    }
    let csv_bytes = csv.len();
    let rss_before = proc_status_kb("VmRSS:");
    let start = std::time::Instant::now();
    let reg = OfflineRegister::from_bytes("million.csv", csv.as_bytes()).unwrap();
    let elapsed = start.elapsed();
    let rss_loaded = proc_status_kb("VmRSS:");
    let peak = proc_status_kb("VmHWM:");
    drop(csv);
    let rss_after = proc_status_kb("VmRSS:");
    println!(
        "{} rows ({} MB of CSV) loaded in {elapsed:?}; describe keeps {} MB; \
         resident: {} MB before load, {} MB loaded, {} MB after dropping the CSV, peak {} MB",
        reg.rows(),
        csv_bytes / 1_000_000,
        reg.text_bytes() / 1_000_000,
        rss_before / 1000,
        rss_loaded / 1000,
        rss_after / 1000,
        peak / 1000,
    );
    assert_eq!(reg.rows(), rows as usize);
    let id = uuid::Uuid::from_u128(0x2000_0000_0000_4000_8000_0000_0000_0000 + 397);
    assert_eq!(
        reg.describe(id).unwrap().as_deref(),
        Some("H.C. Andersens Boulevard 0 100, 2. tv, 1397 Frederiksberg C")
    );
    assert_eq!(
        reg.lookup("H.C. Andersens Boulevard 0 100, 2. tv", "1397")
            .unwrap(),
        Lookup::Found(id)
    );
}
