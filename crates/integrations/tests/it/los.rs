//! The LOS parsing layer on the fixture files in `fixtures/los/`: every file of the `ok` set is
//! classified, planned, decoded and parsed to the rows it really holds, and the set is coherent
//! (every unit, class and person it refers to is defined in it); every file of the `err` set fails
//! with an error naming the file, line and column, and never a CPR number.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use dipex_integrations::los::files::{FileKind, RemoteFile, StamKind, classify, plan};
use dipex_integrations::los::parse::{
    self, OrgUnitRow, ParseError, Rows, decode, parse_classes, parse_managers, parse_org_units,
    parse_person_ends, parse_persons,
};
use dipex_model::Cpr;
use jiff::civil::date;
use uuid::Uuid;

fn dir(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/los")
        .join(set)
}

fn uuid(prefix: &str, n: u64) -> Uuid {
    Uuid::parse_str(&format!("{prefix}-0000-4000-8000-{n:012}")).unwrap()
}

fn unit(n: u64) -> Uuid {
    uuid("a1000000", n)
}

/// Every `ok` file: name → (kind, warning, rows).
fn parse_ok_set() -> BTreeMap<String, (FileKind, Option<String>, Rows)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir("ok")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let (kind, _) = classify(&name).unwrap_or_else(|| panic!("{name} is no LOS file"));
        let (text, warning) = decode(&name, &std::fs::read(&path).unwrap());
        let rows = parse::parse(kind, &name, &text).unwrap_or_else(|e| panic!("{e}"));
        out.insert(name, (kind, warning.map(|w| w.to_string()), rows));
    }
    out
}

#[test]
fn the_ok_set_is_planned_in_run_order() {
    let mut listing: Vec<RemoteFile> = std::fs::read_dir(dir("ok"))
        .unwrap()
        .map(|e| RemoteFile {
            name: e.unwrap().file_name().into_string().unwrap(),
            modified: Some("2021-04-01T00:00:00Z".parse().unwrap()),
        })
        .collect();
    listing.push(RemoteFile {
        name: "failed_addr_Org_nye_20210301_020000.csv".into(),
        modified: None,
    });
    let planned = plan(&listing, Some("2021-01-01T00:00:00Z".parse().unwrap()));
    let names: Vec<_> = planned.files.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "STAM_UUID_Engagementstype.csv",
            "STAM_UUID_Enhedstype.csv",
            "STAM_UUID_Stillingsbetegnelse.csv",
            "STAM_UUID_BVN_Stillingsbetegnelse.csv",
            "STAM_UUID_Lederansvar.csv",
            "STAM_UUID_Lederniveau.csv",
            "STAM_UUID_Ledertype.csv",
            "STAM_UUID_Tilknytningsrolle.csv",
            "STAM_UUID_ITSystem.csv",
            "Org_inital_20210101_010000.csv",
            "Org_initial_20210102_010000.csv",
            "Org_nye_20210301_020000.csv",
            "Org_ret_20210302_020000.csv",
            "Pers_nye_20210303_020000.csv",
            "Pers_ret_20210304_020000.csv",
            "Pers_luk_20210305_020000.csv",
            "Leder_nye_20210306_020000.csv",
            "Leder_ret_20210307_020000.csv",
            "Leder_luk_20210308_020000.csv",
        ]
    );
    assert_eq!(
        planned.unrecognised,
        ["failed_addr_Org_nye_20210301_020000.csv"]
    );
    assert_eq!(
        planned.files[14].file_date,
        Some(date(2021, 3, 4).at(2, 0, 0, 0))
    );
    // Nothing is new for a run that started a second after the files were modified (one that
    // started in the same second reads them: equal is new).
    let later = plan(&listing, Some("2021-04-01T00:00:01Z".parse().unwrap()));
    assert!(later.files.is_empty());
    assert_eq!(later.unchanged.len(), 19);
}

#[test]
fn every_ok_file_parses_to_its_rows() {
    let set = parse_ok_set();
    assert_eq!(set.len(), 19);
    let counts: BTreeMap<_, _> = set
        .iter()
        .map(|(n, (_, _, r))| (n.as_str(), r.len()))
        .collect();
    let want = [
        ("Leder_luk_20210308_020000.csv", 1),
        ("Leder_nye_20210306_020000.csv", 3),
        ("Leder_ret_20210307_020000.csv", 1),
        ("Org_inital_20210101_010000.csv", 9),
        ("Org_initial_20210102_010000.csv", 1),
        ("Org_nye_20210301_020000.csv", 1),
        ("Org_ret_20210302_020000.csv", 1),
        ("Pers_luk_20210305_020000.csv", 1),
        ("Pers_nye_20210303_020000.csv", 4),
        ("Pers_ret_20210304_020000.csv", 2),
        ("STAM_UUID_BVN_Stillingsbetegnelse.csv", 2),
        ("STAM_UUID_Engagementstype.csv", 2),
        ("STAM_UUID_Enhedstype.csv", 3),
        ("STAM_UUID_ITSystem.csv", 2),
        ("STAM_UUID_Lederansvar.csv", 2),
        ("STAM_UUID_Lederniveau.csv", 2),
        ("STAM_UUID_Ledertype.csv", 2),
        ("STAM_UUID_Stillingsbetegnelse.csv", 4),
        ("STAM_UUID_Tilknytningsrolle.csv", 2),
    ];
    assert_eq!(counts, BTreeMap::from(want));
    // Only the Latin-1 file warns; the BOM file does not.
    let warned: Vec<_> = set
        .iter()
        .filter_map(|(n, (_, w, _))| w.as_ref().map(|w| (n.as_str(), w.as_str())))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, "Pers_ret_20210304_020000.csv");
    assert!(
        warned[0].1.starts_with("Pers_ret_20210304_020000.csv: "),
        "{warned:?}"
    );
}

fn org_rows(name: &str) -> Vec<OrgUnitRow> {
    let path = dir("ok").join(name);
    let (text, _) = decode(name, &std::fs::read(path).unwrap());
    parse_org_units(name, &text).unwrap()
}

#[test]
fn org_initial_holds_history_with_mergeable_periods() {
    let rows = org_rows("Org_inital_20210101_010000.csv");
    let root = &rows[0];
    assert_eq!(
        (root.line, root.uuid, root.user_key.as_str()),
        (2, unit(1), "AAK")
    );
    assert!(root.is_root() && root.line_org);
    assert_eq!(root.name.as_deref(), Some("Aarhus Kommune"));
    assert_eq!(root.unit_type, Some(uuid("b1000000", 1)));
    assert_eq!(root.los_id.as_deref(), Some("1000"));
    assert_eq!(root.cvr.as_deref(), Some("55133018"));
    assert_eq!(root.ean.as_deref(), Some("5798000000001"));
    assert_eq!(root.p_number.as_deref(), Some("1000000001"));
    assert_eq!(root.se_number.as_deref(), Some("55133018"));
    assert_eq!(
        (root.int_debitor.as_deref(), root.mag_id.as_deref()),
        (None, None)
    );
    assert_eq!(
        root.post_address.as_deref(),
        Some("Rådhuspladsen 2, 8000 Aarhus C")
    );
    assert_eq!((root.start, root.end), (date(2010, 1, 1), None));

    // Magistraten: two identical consecutive years, then a new name.
    let mag: Vec<_> = rows.iter().filter(|r| r.uuid == unit(2)).collect();
    assert_eq!(mag.len(), 3);
    assert_eq!(mag[0].end, Some(date(2010, 12, 31)));
    assert_eq!(mag[1].start, date(2011, 1, 1));
    assert!(mag[0].same_content(mag[1]));
    assert!(!mag[1].same_content(mag[2]));
    assert_eq!(mag[2].name.as_deref(), Some("Borgmesterens Afdeling"));
    assert_eq!(mag[0].int_debitor.as_deref(), Some("4711"));
    assert_eq!(mag[0].parent, unit(1));

    // Borgerservice: one-digit day and month dates, `1` as true, a Magkort.
    let bs: Vec<_> = rows.iter().filter(|r| r.uuid == unit(3)).collect();
    assert_eq!(
        (bs[0].start, bs[0].end),
        (date(2015, 3, 1), Some(date(2018, 6, 30)))
    );
    assert_eq!((bs[1].start, bs[1].end), (date(2018, 7, 1), None));
    assert!(bs[0].same_content(bs[1]) && bs[0].line_org);
    assert_eq!(bs[0].mag_id.as_deref(), Some("MAG-12"));
    // Sundhed og Omsorg: `Ja` as true, an empty address.
    let mso = rows.iter().find(|r| r.uuid == unit(4)).unwrap();
    assert!(mso.line_org);
    assert_eq!(mso.post_address, None);
    // Solbakken: the address changes, so the periods do not merge.
    let solb: Vec<_> = rows.iter().filter(|r| r.uuid == unit(5)).collect();
    assert!(!solb[0].same_content(solb[1]));
    assert_eq!(
        solb[1].post_address.as_deref(),
        Some("Solbakkevej 3, 8240 Risskov")
    );
    assert_eq!(solb[1].line, 10);

    // The correct spelling, with ISO datetimes.
    let kult = &org_rows("Org_initial_20210102_010000.csv")[0];
    assert_eq!(
        (kult.uuid, kult.start, kult.end),
        (unit(7), date(2019, 1, 1), None)
    );
    assert!(!kult.line_org);
}

#[test]
fn org_delta_files_by_name_any_order_and_case() {
    // With a BOM, columns in another order, optional columns left out.
    let new = &org_rows("Org_nye_20210301_020000.csv")[0];
    assert_eq!(new.uuid, unit(6));
    assert_eq!(new.parent, unit(4));
    assert_eq!(new.user_key, "HJN");
    assert_eq!(new.name.as_deref(), Some("Hjemmeplejen Nord"));
    assert!(!new.line_org);
    assert_eq!(new.los_id.as_deref(), Some("1005"));
    assert_eq!(new.ean.as_deref(), Some("5798000000006"));
    assert_eq!((new.cvr.as_deref(), new.mag_id.as_deref()), (None, None));
    assert_eq!(
        new.post_address.as_deref(),
        Some("Vejlby Centervej 46, 8240 Risskov")
    );
    assert_eq!((new.start, new.end), (date(2021, 3, 1), None));
    // `Med-i-Linjeorg` in the header; ISO dates; a new parent.
    let edit = &org_rows("Org_ret_20210302_020000.csv")[0];
    assert_eq!((edit.uuid, edit.parent), (unit(3), unit(7)));
    assert_eq!(edit.name.as_deref(), Some("Borgerservice og Biblioteker"));
    assert_eq!(
        (edit.start, edit.end, edit.line_org),
        (date(2021, 3, 2), None, false)
    );
}

#[test]
fn person_and_manager_files() {
    let set = parse_ok_set();
    let Rows::Persons(new) = &set["Pers_nye_20210303_020000.csv"].2 else {
        panic!()
    };
    let anne = &new[0];
    assert_eq!((anne.line, anne.engagement), (2, uuid("c1000000", 1)));
    assert_eq!(anne.user_key, "100001");
    assert_eq!(anne.cpr, Cpr::parse("0101700000").unwrap());
    assert_eq!(anne.name, "Anne Jensen");
    assert_eq!((anne.start, anne.end), (date(2015, 3, 1), None));
    assert_eq!(anne.email.as_deref(), Some("anne.jensen@aarhus.example"));
    assert!(anne.primary);
    assert_eq!(anne.org_unit, unit(3));
    assert_eq!(anne.engagement_type, uuid("b2000000", 1));
    assert_eq!(anne.job_function, uuid("b3000000", 1));
    assert_eq!(anne.azid.as_deref(), Some("az100001"));
    let bo2 = &new[2];
    assert!(!bo2.primary);
    assert_eq!(
        (bo2.end, bo2.email.as_deref(), bo2.azid.as_deref()),
        (Some(date(2021, 12, 31)), None, None)
    );
    assert_eq!(bo2.cpr, new[1].cpr);

    // Latin-1: the Danish letters come through.
    let Rows::Persons(edit) = &set["Pers_ret_20210304_020000.csv"].2 else {
        panic!()
    };
    assert_eq!(edit[1].name, "Dorte Ærø Bækgaard");
    assert_eq!(edit[0].job_function, uuid("b3000000", 4));
    assert_eq!(edit[0].email.as_deref(), Some("bo.nielsen@aarhus.example"));
    assert_eq!((edit[1].start, edit[1].end), (date(2021, 4, 1), None));

    let Rows::PersonEnds(end) = &set["Pers_luk_20210305_020000.csv"].2 else {
        panic!()
    };
    assert_eq!(end[0].engagement, uuid("c1000000", 3));
    assert_eq!(
        end[0].cpr,
        Cpr::parse("0202800000").unwrap(),
        "DDMMYY-NNNN form"
    );

    let Rows::Managers(managers) = &set["Leder_nye_20210306_020000.csv"].2 else {
        panic!()
    };
    assert_eq!(managers[0].org_unit, unit(2));
    assert_eq!(managers[0].cpr, Cpr::parse("0303900000").unwrap());
    assert_eq!(managers[0].manager_type, uuid("b7000000", 1));
    assert_eq!(managers[0].manager_level, uuid("b6000000", 1));
    assert_eq!(managers[0].responsibility, uuid("b5000000", 1));
    let Rows::ManagerEnds(ends) = &set["Leder_luk_20210308_020000.csv"].2 else {
        panic!()
    };
    assert_eq!((ends[0].org_unit, ends[0].line), (unit(3), 2));

    let Rows::Classes(kind, roles) = &set["STAM_UUID_Tilknytningsrolle.csv"].2 else {
        panic!()
    };
    assert_eq!(*kind, StamKind::Tilknytningsrolle);
    assert_eq!(roles[0].title, "Formand");
    assert_eq!(
        roles[0].loaded,
        Some(date(2023, 4, 1).at(14, 37, 22, 643_000_000))
    );
    let Rows::Classes(_, bvn) = &set["STAM_UUID_BVN_Stillingsbetegnelse.csv"].2 else {
        panic!()
    };
    assert_eq!(
        (bvn[1].title.as_str(), bvn[1].loaded),
        ("Leder; daglig", None)
    );
    let Rows::ItSystems(systems) = &set["STAM_UUID_ITSystem.csv"].2 else {
        panic!()
    };
    assert_eq!(
        (systems[1].name.as_str(), systems[1].user_key.as_str()),
        ("OPUS", "Opus")
    );
}

/// Whether a CPR number passes the old modulus-11 check (synthetic ones must not).
fn mod11(cpr: &Cpr) -> bool {
    let weights = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    let sum: u32 = cpr
        .expose()
        .bytes()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    sum.is_multiple_of(11)
}

#[test]
fn the_ok_set_is_coherent_and_synthetic() {
    let set = parse_ok_set();
    let (mut units, mut classes, mut persons) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut cprs = Vec::new();
    for (_, _, rows) in set.values() {
        match rows {
            Rows::OrgUnits(r) => units.extend(r.iter().map(|r| r.uuid)),
            Rows::Classes(_, r) => classes.extend(r.iter().map(|r| r.uuid)),
            Rows::Persons(r) => persons.extend(r.iter().map(|r| r.cpr.clone())),
            _ => {}
        }
    }
    for (name, (_, _, rows)) in &set {
        match rows {
            Rows::OrgUnits(r) => {
                for r in r {
                    assert!(units.contains(&r.parent), "{name}:{}: parent", r.line);
                    assert!(
                        r.unit_type.is_none_or(|t| classes.contains(&t)),
                        "{name}:{}",
                        r.line
                    );
                }
            }
            Rows::Persons(r) => {
                for r in r {
                    assert!(units.contains(&r.org_unit), "{name}:{}: unit", r.line);
                    for class in [r.engagement_type, r.job_function] {
                        assert!(classes.contains(&class), "{name}:{}: class", r.line);
                    }
                    cprs.push(r.cpr.clone());
                }
            }
            Rows::PersonEnds(r) => cprs.extend(r.iter().map(|r| r.cpr.clone())),
            Rows::Managers(r) => {
                for r in r {
                    assert!(units.contains(&r.org_unit), "{name}:{}: unit", r.line);
                    assert!(persons.contains(&r.cpr), "{name}:{}: person", r.line);
                    for class in [r.manager_type, r.manager_level, r.responsibility] {
                        assert!(classes.contains(&class), "{name}:{}: class", r.line);
                    }
                    cprs.push(r.cpr.clone());
                }
            }
            Rows::ManagerEnds(r) => {
                for r in r {
                    assert!(units.contains(&r.org_unit) && persons.contains(&r.cpr));
                }
            }
            _ => {}
        }
    }
    assert_eq!(cprs.len(), 11);
    assert!(
        cprs.iter().all(|c| !mod11(c)),
        "a fixture CPR passes modulus 11"
    );
}

#[test]
fn every_err_file_names_file_line_and_column() {
    type Parser = fn(&str, &str) -> Result<usize, ParseError>;
    let org: Parser = |f, t| parse_org_units(f, t).map(|r| r.len());
    let pers: Parser = |f, t| parse_persons(f, t).map(|r| r.len());
    let pers_end: Parser = |f, t| parse_person_ends(f, t).map(|r| r.len());
    let mgr: Parser = |f, t| parse_managers(f, t).map(|r| r.len());
    let stam: Parser = |f, t| parse_classes(StamKind::Enhedstype, f, t).map(|r| r.len());
    let cases: [(&str, Parser, &str); 7] = [
        (
            "missing_column.csv",
            org,
            "missing_column.csv:1: missing columns: ParentUUID, SlutDato; the header has: \
             OrgUUID, BrugervendtNøgle, OrgEnhedsNavn, StartDato",
        ),
        (
            "bad_date.csv",
            pers,
            "bad_date.csv:3: column 5 (StartTid): \"2021-02-31 00:00:00\": not a date \
             (DD-MM-YYYY or YYYY-MM-DD, optionally with a time such as 12:00:00)",
        ),
        (
            "bad_boolean.csv",
            org,
            "bad_boolean.csv:3: column 6 (Med-i-LinjeOrg): \"Måske\": not a boolean \
             (True/False, Ja/Nej or 1/0)",
        ),
        (
            "bad_cpr.csv",
            mgr,
            "bad_cpr.csv:3: column 2 (CPR): not a CPR number: expected 10 digits, got 10 \
             characters with non-digits",
        ),
        (
            "unterminated_quote.csv",
            org,
            "unterminated_quote.csv:3: column 7 (PostAdresse): a quoted field starts here and \
             is never closed",
        ),
        (
            "wrong_field_count.csv",
            pers_end,
            "wrong_field_count.csv:3: column 4: the row has 4 fields, the header 3",
        ),
        (
            "bad_uuid.csv",
            stam,
            "bad_uuid.csv:3: column 1 (EnhedstypeUUID): \
             \"b1000000-0000-4000-8000-00000000000g\": not a UUID",
        ),
    ];
    let files: Vec<_> = std::fs::read_dir(dir("err"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), cases.len(), "a case for every err file");
    for (file, parser, want) in cases {
        let (text, warning) = decode(file, &std::fs::read(dir("err").join(file)).unwrap());
        assert_eq!(warning, None);
        let err = parser(file, &text).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert_eq!(err.file, file);
        assert!(err.line >= 1);
        assert!(
            err.column.is_some() || file == "missing_column.csv",
            "{err}"
        );
        for cpr in ["0101700000", "0202800000", "0303900000", "01017O0000"] {
            assert!(!want.contains(cpr), "{file}: CPR in {want}");
        }
    }
}
