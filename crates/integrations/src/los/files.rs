//! LOS file names: which kind of file a name is, the date in a delta file's name, and which
//! files one run processes in which order.
//!
//! Delta files are named `<Prefix>_YYYYMMDD_HHMMSS.<ext>` (`Org_nye_20210128_123742.csv`); the
//! prefix is case-sensitive and the extension any three letters or digits. The timestamp in the
//! name is the *file date*: the order of files within a kind, and the effective date of edits
//! and terminations. The nine STAM files have fixed names and no date. Both `Org_inital` (the
//! spelling LOS uses) and `Org_initial` are recognised.
//!
//! Files are *selected* by their modified time (to the second, the same as or later than the
//! start of the last import; see [`plan`]), never by the date in the name, and *ordered* by kind (see [`FileKind`]), then file date, then name.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;

/// The nine STAM (master data) files, in the order a run reads them (the order does not matter
/// to the result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StamKind {
    /// `STAM_UUID_Engagementstype.csv`: classes of facet `engagement_type`.
    Engagementstype,
    /// `STAM_UUID_Enhedstype.csv`: classes of facet `org_unit_type`.
    Enhedstype,
    /// `STAM_UUID_Stillingsbetegnelse.csv`: classes of facet `engagement_job_function`.
    Stillingsbetegnelse,
    /// `STAM_UUID_BVN_Stillingsbetegnelse.csv`: classes of facet `engagement_job_function_bvn`.
    BvnStillingsbetegnelse,
    /// `STAM_UUID_Lederansvar.csv`: classes of facet `responsibility`.
    Lederansvar,
    /// `STAM_UUID_Lederniveau.csv`: classes of facet `manager_level`.
    Lederniveau,
    /// `STAM_UUID_Ledertype.csv`: classes of facet `manager_type`.
    Ledertype,
    /// `STAM_UUID_Tilknytningsrolle.csv`: classes of facet `association_type`.
    Tilknytningsrolle,
    /// `STAM_UUID_ITSystem.csv`: MO IT systems (not classes).
    ItSystem,
}

impl StamKind {
    /// Every STAM kind, in reading order.
    pub const ALL: [StamKind; 9] = [
        StamKind::Engagementstype,
        StamKind::Enhedstype,
        StamKind::Stillingsbetegnelse,
        StamKind::BvnStillingsbetegnelse,
        StamKind::Lederansvar,
        StamKind::Lederniveau,
        StamKind::Ledertype,
        StamKind::Tilknytningsrolle,
        StamKind::ItSystem,
    ];

    /// The exact file name.
    pub fn file_name(self) -> &'static str {
        match self {
            StamKind::Engagementstype => "STAM_UUID_Engagementstype.csv",
            StamKind::Enhedstype => "STAM_UUID_Enhedstype.csv",
            StamKind::Stillingsbetegnelse => "STAM_UUID_Stillingsbetegnelse.csv",
            StamKind::BvnStillingsbetegnelse => "STAM_UUID_BVN_Stillingsbetegnelse.csv",
            StamKind::Lederansvar => "STAM_UUID_Lederansvar.csv",
            StamKind::Lederniveau => "STAM_UUID_Lederniveau.csv",
            StamKind::Ledertype => "STAM_UUID_Ledertype.csv",
            StamKind::Tilknytningsrolle => "STAM_UUID_Tilknytningsrolle.csv",
            StamKind::ItSystem => "STAM_UUID_ITSystem.csv",
        }
    }

    /// The user key of the MO facet the file's classes belong to; `None` for the IT systems.
    pub fn facet(self) -> Option<&'static str> {
        match self {
            StamKind::Engagementstype => Some("engagement_type"),
            StamKind::Enhedstype => Some("org_unit_type"),
            StamKind::Stillingsbetegnelse => Some("engagement_job_function"),
            StamKind::BvnStillingsbetegnelse => Some("engagement_job_function_bvn"),
            StamKind::Lederansvar => Some("responsibility"),
            StamKind::Lederniveau => Some("manager_level"),
            StamKind::Ledertype => Some("manager_type"),
            StamKind::Tilknytningsrolle => Some("association_type"),
            StamKind::ItSystem => None,
        }
    }

    /// The STAM kind with exactly this file name.
    pub fn from_file_name(name: &str) -> Option<StamKind> {
        StamKind::ALL.into_iter().find(|k| k.file_name() == name)
    }
}

/// The kind of a LOS file. The variants are declared in processing order, so sorting by
/// `FileKind` sorts files as a run processes them: STAM, org units, persons, managers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A STAM master-data file (fixed name, no file date).
    Stam(StamKind),
    /// `Org_inital_*` or `Org_initial_*`: org units with their full history.
    OrgInitial,
    /// `Org_nye_*`: new org units.
    OrgNew,
    /// `Org_ret_*`: changed org units.
    OrgEdit,
    /// `Pers_nye_*`: new persons and engagements.
    PersonNew,
    /// `Pers_ret_*`: changed persons and engagements.
    PersonEdit,
    /// `Pers_luk_*`: engagements that end.
    PersonEnd,
    /// `Leder_nye_*`: new managers.
    ManagerNew,
    /// `Leder_ret_*`: changed managers.
    ManagerEdit,
    /// `Leder_luk_*`: managers that end.
    ManagerEnd,
}

/// Name prefixes of the delta files. `Org_inital` (sic) is the spelling LOS delivers.
const PREFIXES: [(&str, FileKind); 10] = [
    ("Org_inital", FileKind::OrgInitial),
    ("Org_initial", FileKind::OrgInitial),
    ("Org_nye", FileKind::OrgNew),
    ("Org_ret", FileKind::OrgEdit),
    ("Pers_nye", FileKind::PersonNew),
    ("Pers_ret", FileKind::PersonEdit),
    ("Pers_luk", FileKind::PersonEnd),
    ("Leder_nye", FileKind::ManagerNew),
    ("Leder_ret", FileKind::ManagerEdit),
    ("Leder_luk", FileKind::ManagerEnd),
];

impl FileKind {
    /// The name prefix of a delta kind (`Org_inital` for [`FileKind::OrgInitial`]), the file
    /// name of a STAM kind.
    pub fn prefix(self) -> &'static str {
        match self {
            FileKind::Stam(stam) => stam.file_name(),
            kind => PREFIXES
                .iter()
                .find(|(_, k)| *k == kind)
                .map(|(p, _)| *p)
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// What a file name is: its kind and, for a delta file, the file date from the name (`None` for
/// STAM files). `None` when the name is no LOS file: an unknown prefix (`xxxxOrg_nye_…`,
/// `failed_addr_…`), or a known prefix without a valid `_YYYYMMDD_HHMMSS.<ext>` ending.
pub fn classify(name: &str) -> Option<(FileKind, Option<DateTime>)> {
    if let Some(stam) = StamKind::from_file_name(name) {
        return Some((FileKind::Stam(stam), None));
    }
    PREFIXES.iter().find_map(|(prefix, kind)| {
        let rest = name.strip_prefix(prefix)?;
        Some((*kind, Some(file_date(rest)?)))
    })
}

/// The date in `_<anything>_YYYYMMDD_HHMMSS.<ext>`, the part of a name after its prefix.
fn file_date(rest: &str) -> Option<DateTime> {
    if !rest.starts_with('_') || !rest.is_ascii() || rest.len() < 20 {
        return None;
    }
    let (head, ext) = rest.split_at(rest.len() - 4);
    let ext = ext.strip_prefix('.')?;
    if !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (sep, stamp) = head.split_at(head.len() - 15);
    if !sep.ends_with('_') {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (day, time) = stamp.split_once('_')?;
    if day.len() != 8 || time.len() != 6 || !digits(day) || !digits(time) {
        return None;
    }
    DateTime::strptime("%Y%m%d_%H%M%S", stamp).ok()
}

/// One entry of a folder listing (FTP, SFTP or local), the input of [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// The file name, without any folder.
    pub name: String,
    /// The modified time the server or file system reports; `None` when it reports none.
    pub modified: Option<Timestamp>,
}

/// A file a run processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub kind: FileKind,
    /// The date in the name; `None` for STAM files. The effective date of `*_ret` edits and
    /// `*_luk` terminations.
    pub file_date: Option<DateTime>,
    pub modified: Option<Timestamp>,
}

/// The files of one run, and the rest of the listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The files to process, in processing order.
    pub files: Vec<Planned>,
    /// LOS files not modified since the last import, sorted by name.
    pub unchanged: Vec<String>,
    /// Names that are no LOS file (see [`classify`]), sorted: to be reported, not an error.
    pub unrecognised: Vec<String>,
}

/// Choose and order the files of a run.
///
/// A LOS file is selected when its modified time, to the whole second, is the same as or later
/// than `last_import` (the start of the last successful run) to the whole second, or when there
/// is no `last_import` (first run) or no modified time (it cannot be shown to be old). Servers
/// report modified times to the second (FTP's `MLSD` and `MDTM`, SFTP) while the start is kept
/// to the microsecond, so comparing at the listing's precision with "equal is new" never misses
/// a file that arrived during the second a run started, after it; a file modified in that second
/// just *before* the start is read once more by the next run, which changes nothing (every
/// import step is idempotent: reconcile turns facts MO already holds into an empty plan). The selected files are ordered by kind (STAM first, then
/// `Org_inital`, `Org_nye`, `Org_ret`, `Pers_nye`, `Pers_ret`, `Pers_luk`, `Leder_nye`,
/// `Leder_ret`, `Leder_luk`), within a kind by file date, then by name.
pub fn plan(listing: &[RemoteFile], last_import: Option<Timestamp>) -> Plan {
    let mut plan = Plan::default();
    for file in listing {
        let Some((kind, file_date)) = classify(&file.name) else {
            plan.unrecognised.push(file.name.clone());
            continue;
        };
        let fresh = match (last_import, file.modified) {
            (Some(last), Some(modified)) => modified.as_second() >= last.as_second(),
            _ => true,
        };
        if fresh {
            plan.files.push(Planned {
                name: file.name.clone(),
                kind,
                file_date,
                modified: file.modified,
            });
        } else {
            plan.unchanged.push(file.name.clone());
        }
    }
    plan.files
        .sort_by(|a, b| (a.kind, a.file_date, &a.name).cmp(&(b.kind, b.file_date, &b.name)));
    plan.unchanged.sort();
    plan.unrecognised.sort();
    plan
}

/// The name of the DAR failure list written for the source file `source`:
/// `failed_addr_<source>`.
pub fn dar_failure_file_name(source: &str) -> String {
    format!("failed_addr_{source}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_delta_names() {
        let at = |y, m, d, h, mi, s| Some(date(y, m, d).at(h, mi, s, 0));
        assert_eq!(
            classify("Org_nye_20210128_123742.csv"),
            Some((FileKind::OrgNew, at(2021, 1, 28, 12, 37, 42)))
        );
        assert_eq!(
            classify("Org_inital_20200101_000000.csv"),
            Some((FileKind::OrgInitial, at(2020, 1, 1, 0, 0, 0)))
        );
        assert_eq!(
            classify("Org_initial_20200101_000000.csv"),
            Some((FileKind::OrgInitial, at(2020, 1, 1, 0, 0, 0)))
        );
        for (name, kind) in [
            ("Org_ret_20210101_000000.csv", FileKind::OrgEdit),
            ("Pers_nye_20210101_000000.csv", FileKind::PersonNew),
            ("Pers_ret_20210101_000000.csv", FileKind::PersonEdit),
            ("Pers_luk_20210101_000000.csv", FileKind::PersonEnd),
            ("Leder_nye_20210101_000000.csv", FileKind::ManagerNew),
            ("Leder_ret_20210101_000000.csv", FileKind::ManagerEdit),
            ("Leder_luk_20210101_000000.csv", FileKind::ManagerEnd),
            // Any three-character extension, and extra text before the date, as upstream.
            ("Pers_nye_20210101_000000.CSV", FileKind::PersonNew),
            ("Pers_nye_x_20210101_000000.txt", FileKind::PersonNew),
        ] {
            assert_eq!(classify(name).map(|c| c.0), Some(kind), "{name}");
        }
        for name in [
            "xxxxOrg_nye_20210128_123742.csv",
            "garbagebagasdasdads",
            "Org_nye_2021012_123742.csv",
            "Org_nye_20211328_123742.csv",
            "Org_nye_20210128_123742.csvx",
            "Org_nye20210128_123742.csv",
            "Org_nyeste_20210128_123742.csv",
            "org_nye_20210128_123742.csv",
            "Org_luk_20210128_123742.csv",
            "failed_addr_Org_nye_20210128_123742.csv",
            "Org_nye_20210128_12374ø.csv",
            "",
        ] {
            assert_eq!(classify(name), None, "{name}");
        }
    }

    #[test]
    fn classifies_stam_names() {
        for stam in StamKind::ALL {
            assert_eq!(
                classify(stam.file_name()),
                Some((FileKind::Stam(stam), None))
            );
            assert_eq!(FileKind::Stam(stam).prefix(), stam.file_name());
        }
        assert_eq!(classify("stam_uuid_enhedstype.csv"), None);
        assert_eq!(StamKind::ItSystem.facet(), None);
        assert_eq!(
            StamKind::Tilknytningsrolle.facet(),
            Some("association_type")
        );
        assert_eq!(FileKind::OrgInitial.to_string(), "Org_inital");
        assert_eq!(FileKind::ManagerEnd.to_string(), "Leder_luk");
    }

    fn file(name: &str, modified: &str) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            modified: Some(ts(modified)),
        }
    }

    #[test]
    fn selects_by_modified_time_not_name_date() {
        let listing = [
            file("Org_nye_20200128_123742.csv", "2020-01-28T12:37:42Z"),
            file("Org_nye_20201028_123742.csv", "2020-10-28T12:37:42Z"),
            file("Org_nye_20210128_123742.csv", "2021-01-28T12:37:42Z"),
            // Newer name, older modified time: not selected.
            file("Org_nye_20210129_000000.csv", "2020-01-28T00:00:00Z"),
            // Older name, newer modified time: selected, with the name's date.
            file("Org_nye_20190128_123742.csv", "2021-01-28T00:00:00Z"),
            // The same second as the last import's start (listed to the second, the start
            // stored with a fraction): selected, equal is new.
            file("STAM_UUID_Enhedstype.csv", "2020-06-01T00:00:00Z"),
            // The second before: not selected.
            file("STAM_UUID_Lederniveau.csv", "2020-05-31T23:59:59.999Z"),
            file("STAM_UUID_Ledertype.csv", "2020-06-01T00:00:01Z"),
            RemoteFile {
                name: "Pers_nye_20200101_000000.csv".into(),
                modified: None,
            },
            file("garbage", "2021-01-01T00:00:00Z"),
        ];
        let plan = plan(&listing, Some(ts("2020-06-01T00:00:00.4Z")));
        let got: Vec<_> = plan
            .files
            .iter()
            .map(|p| (p.name.as_str(), p.file_date.map(|d| d.to_string())))
            .collect();
        assert_eq!(
            got,
            [
                ("STAM_UUID_Enhedstype.csv", None),
                ("STAM_UUID_Ledertype.csv", None),
                (
                    "Org_nye_20190128_123742.csv",
                    Some("2019-01-28T12:37:42".into())
                ),
                (
                    "Org_nye_20201028_123742.csv",
                    Some("2020-10-28T12:37:42".into())
                ),
                (
                    "Org_nye_20210128_123742.csv",
                    Some("2021-01-28T12:37:42".into())
                ),
                (
                    "Pers_nye_20200101_000000.csv",
                    Some("2020-01-01T00:00:00".into())
                ),
            ]
        );
        assert_eq!(
            plan.unchanged,
            [
                "Org_nye_20200128_123742.csv",
                "Org_nye_20210129_000000.csv",
                "STAM_UUID_Lederniveau.csv"
            ]
        );
        assert_eq!(plan.unrecognised, ["garbage"]);
    }

    #[test]
    fn orders_by_kind_then_date_then_name() {
        let m = "2021-06-01T00:00:00Z";
        let listing = [
            file("Leder_luk_20200101_000000.csv", m),
            file("Org_ret_20190101_000000.csv", m),
            file("Pers_luk_20200101_000000.csv", m),
            file("Org_nye_20210101_000000.csv", m),
            file("Org_nye_20200101_000000.csv", m),
            file("Leder_ret_20200101_000000.csv", m),
            file("Pers_ret_20200101_000000.csv", m),
            file("Org_initial_20200101_000000.csv", m),
            file("Org_inital_20200101_000000.csv", m),
            file("Leder_nye_20200101_000000.csv", m),
            file("Pers_nye_20200101_000000.csv", m),
            file("STAM_UUID_ITSystem.csv", m),
            file("STAM_UUID_Engagementstype.csv", m),
        ];
        let names: Vec<_> = plan(&listing, None)
            .files
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [
                "STAM_UUID_Engagementstype.csv",
                "STAM_UUID_ITSystem.csv",
                "Org_inital_20200101_000000.csv",
                "Org_initial_20200101_000000.csv",
                "Org_nye_20200101_000000.csv",
                "Org_nye_20210101_000000.csv",
                // Grouped by kind: after every Org_nye file despite its earlier date.
                "Org_ret_20190101_000000.csv",
                "Pers_nye_20200101_000000.csv",
                "Pers_ret_20200101_000000.csv",
                "Pers_luk_20200101_000000.csv",
                "Leder_nye_20200101_000000.csv",
                "Leder_ret_20200101_000000.csv",
                "Leder_luk_20200101_000000.csv",
            ]
        );
    }

    #[test]
    fn any_listing_order_gives_the_same_plan() {
        let m = "2020-05-01T00:00:00Z";
        let mut listing = vec![
            file("Org_nye_20210101_000000.csv", m),
            file("Org_nye_20200101_000000.csv", m),
            file("Org_nye_20190101_000000.csv", m),
            file("Org_nye_20180101_000000.csv", m),
        ];
        let want = plan(&listing, None);
        let years: Vec<_> = want
            .files
            .iter()
            .map(|p| p.file_date.unwrap().year())
            .collect();
        assert_eq!(years, [2018, 2019, 2020, 2021]);
        for _ in 0..4 {
            listing.rotate_left(1);
            listing.swap(0, 2);
            assert_eq!(plan(&listing, None), want);
        }
    }

    #[test]
    fn failure_list_name() {
        assert_eq!(
            dar_failure_file_name("Org_nye_20210101_000000.csv"),
            "failed_addr_Org_nye_20210101_000000.csv"
        );
    }
}
