//! The LOS benchmark: a synthetic Aarhus LOS data set (STAM files, one `Org_inital` file with
//! the unit tree, one `Pers_nye` file with the engagements, one `Leder_nye` file with a manager
//! per unit, and the matching offline address file), and its first import into a fresh embedded
//! store, measured in a child process.
//!
//! The data is synthetic: CPR numbers are `ddmmyy` of a made-up birthday followed by a running
//! number, names come from short fixed lists.

use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

/// Size of the generated data set.
#[derive(clap::Args, Clone)]
pub struct LosSize {
    #[arg(long, default_value_t = 3000)]
    pub units: usize,
    #[arg(long, default_value_t = 30_000)]
    pub engagements: usize,
}

const GIVEN: [&str; 8] = [
    "Anne",
    "Bo",
    "Camilla",
    "Dorte Ærø",
    "Erik",
    "Frida",
    "Gustav",
    "Hanne",
];
const SURNAMES: [&str; 6] = [
    "Jensen",
    "Nielsen",
    "Hansen",
    "Bækgaard",
    "Sørensen",
    "Østergaard",
];
const STREETS: [&str; 5] = [
    "Rådhuspladsen",
    "Solbakken",
    "Vejlby Centervej",
    "Hack Kampmanns Plads",
    "Søndergade",
];

/// A uuid of class `class` (1..=15) and number `n`, readable in dumps.
fn id(class: u32, n: usize) -> Uuid {
    Uuid::from_u128((u128::from(class) << 96) | 0x4000_8000_0000_0000_0000 | n as u128)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::write(dir.join(name), text)?;
    Ok(())
}

/// Write the data set into `dir/files` and the address file `dir/adresser.csv`.
pub fn generate(s: &LosSize, dir: &Path) -> Result<()> {
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let stam = |name: &str, header: &str, class: u32, values: &[&str]| -> Result<()> {
        let mut t = format!("{header}\n");
        for (i, v) in values.iter().enumerate() {
            // Files whose header ends in `;Loadtime` carry the export time in every row.
            let loadtime = if header.ends_with(";Loadtime") {
                ";2021-02-01 06:00:00"
            } else {
                ""
            };
            writeln!(t, "{};{v}{loadtime}", id(class, i + 1))?;
        }
        write(&files, name, &t)
    };
    stam(
        "STAM_UUID_Enhedstype.csv",
        "EnhedstypeUUID;Enhedstype",
        1,
        &["Forvaltning", "Afdeling", "Institution"],
    )?;
    stam(
        "STAM_UUID_Engagementstype.csv",
        "EngagementstypeUUID;Engagementstype",
        2,
        &["Månedslønnet", "Timelønnet"],
    )?;
    let titles: Vec<String> = (1..=50).map(|i| format!("Stilling {i}")).collect();
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    stam(
        "STAM_UUID_Stillingsbetegnelse.csv",
        "StillingBetUUID;Stillingsbetegnelse",
        3,
        &titles,
    )?;
    stam(
        "STAM_UUID_Lederansvar.csv",
        "LederansvarUUID;Lederansvar;Loadtime",
        5,
        &["Personaleansvar", "Budgetansvar"],
    )?;
    stam(
        "STAM_UUID_Lederniveau.csv",
        "LederniveauUUID;Lederniveau;Loadtime",
        6,
        &["Niveau 1", "Niveau 2", "Niveau 3"],
    )?;
    stam(
        "STAM_UUID_Ledertype.csv",
        "LedertypeUUID;Ledertype;Loadtime",
        7,
        &["Direktør", "Afdelingsleder"],
    )?;

    // Units: a tree with eight children per unit. Every tenth unit was renamed in 2020, so its
    // history has two rows.
    let mut org = String::from(
        "OrgUUID;BrugervendtNøgle;OrgEnhedsNavn;OrgEnhedsTypeUUID;ParentUUID;Med-i-LinjeOrg;\
         LOSID;CVR;EAN;P-Nr;SE-Nr;IntDebitor-Nr;MagID;PostAdresse;StartDato;SlutDato\n",
    );
    let mut addresses = String::from("id,vejnavn,husnr,etage,dør,postnr,postnrnavn\n");
    for u in 0..s.units {
        let parent = if u == 0 { 0 } else { (u - 1) / 8 };
        let street = STREETS[u % STREETS.len()];
        let number = u + 1;
        let address = format!("{street} {number}, 8000 Aarhus C");
        writeln!(
            addresses,
            "{},{street},{number},,,8000,Aarhus C",
            id(10, u + 1)
        )?;
        let row = |name: &str, from: &str, to: &str| {
            format!(
                "{};U{u};{name};{};{};True;{};55133018;{};{};55133018;;;{address};{from};{to}\n",
                id(11, u + 1),
                id(1, 1 + (u % 3)),
                id(11, parent + 1),
                1000 + u,
                5_798_000_000_000u64 + u as u64,
                1_000_000_000u64 + u as u64,
            )
        };
        if u % 10 == 9 {
            org.push_str(&row(&format!("Enhed {u}"), "01-01-2010", "31-12-2019"));
            org.push_str(&row(&format!("Enhed {u} (ny)"), "01-01-2020", "31-12-9999"));
        } else {
            org.push_str(&row(&format!("Enhed {u}"), "01-01-2010", "31-12-9999"));
        }
    }
    write(&files, "Org_inital_20210101_010000.csv", &org)?;
    std::fs::write(dir.join("adresser.csv"), addresses)?;

    // Engagements: nine persons in ten have one, the tenth a second one in another unit.
    let mut pers = String::from(
        "UUID;BrugervendtNøgle;CPR;CPRNavn;StartTid;SlutTid;Email;PrimærAnsættelse;OrgenhedUUID;\
         EngagementTypeUUID;AZID;ADITSystemUUID;ADkonto;ADkontoUUID;StillingsBetegnelseUUID\n",
    );
    let person_of = |e: usize| if e % 10 == 9 { e - 1 } else { e };
    let cpr = |p: usize| {
        format!(
            "{:02}{:02}{:02}{:04}",
            1 + p % 28,
            1 + (p / 28) % 12,
            50 + (p / 336) % 50,
            p % 10_000
        )
    };
    for e in 0..s.engagements {
        let p = person_of(e);
        let given = GIVEN[p % GIVEN.len()];
        let surname = SURNAMES[(p / GIVEN.len()) % SURNAMES.len()];
        writeln!(
            pers,
            "{};{};{};{given} {surname};2015-03-01 00:00:00;9999-12-31 00:00:00;p{p}@aarhus.example;{};{};{};az{p};;;;{}",
            id(12, e + 1),
            100_000 + e,
            cpr(p),
            if e % 10 == 9 { "Nej" } else { "Ja" },
            id(11, 1 + (e * 7919) % s.units),
            id(2, 1 + e % 2),
            id(3, 1 + e % 50),
        )?;
    }
    write(&files, "Pers_nye_20210303_020000.csv", &pers)?;

    // A manager for every unit: the person of the unit's first engagement, or of engagement u.
    let mut leder = String::from("OrgUUID;CPR;LedertypeUUID;LederniveauUUID;LederansvarUUID\n");
    for u in 0..s.units.min(s.engagements) {
        writeln!(
            leder,
            "{};{};{};{};{}",
            id(11, u + 1),
            cpr(person_of(u)),
            id(7, 1 + usize::from(u != 0)),
            id(6, 1 + u % 3),
            id(5, 1 + u % 2),
        )?;
    }
    write(&files, "Leder_nye_20210306_020000.csv", &leder)?;
    Ok(())
}

/// The first import of `dir/files` into `dir/store.sqlite3`, in this process (run as a child).
pub fn import(dir: &Path) -> Result<()> {
    use dipex_integrations::los::{run, uuids};
    use dipex_integrations::transport::source::Source;
    let register = dipex_integrations::dar::OfflineRegister::load(dir.join("adresser.csv"))?;
    let mut store = dipex_backend::Store::open(&dir.join("store.sqlite3"))?;
    let source = Source::Local(dir.join("files"));
    let job = run::Job {
        source: &source,
        register: &register,
        state_file: &dir.join("state"),
        azid_system: Uuid::parse_str(uuids::AZID_SYSTEM)?,
        from_date: None,
        dry_run: false,
    };
    let t = Instant::now();
    let report = run::import(&mut store, &job, &mut crate::BenchEnv)?;
    let writes: usize =
        report.seed.len() + report.files.iter().map(|f| f.plan.len()).sum::<usize>();
    let rows: usize = report.files.iter().map(|f| f.rows).sum();
    let dar_failures: usize = report.files.iter().map(|f| f.dar_failures).sum();
    println!(
        "{:.2} {} {} {} {} {} {}",
        t.elapsed().as_secs_f64(),
        crate::peak_kb(),
        report.files.len(),
        rows,
        writes,
        report.rejected(),
        dar_failures
    );
    Ok(())
}

/// Generate the data set and measure its first import in a fresh child process.
pub fn bench(s: &LosSize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dipex-bench-los-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    generate(s, &dir)?;
    let bytes: u64 = std::fs::read_dir(dir.join("files"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "generated {} units / {} engagements ({:.1} MB of CSV) in {:.1} s",
        s.units,
        s.engagements,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let (wall, stdout, _) = crate::measured_child("import-los", &dir)?;
    let f: Vec<&str> = stdout.split_whitespace().collect();
    let kb: u64 = f[1].parse()?;
    println!(
        "first LOS import into the embedded store: {wall:.2} s wall ({} s in the import), \
         peak RSS {:.1} MB; {} files, {} rows, {} writes, {} rejected rows, {} addresses not found",
        f[0],
        kb as f64 / 1024.0,
        f[2],
        f[3],
        f[4],
        f[5],
        f[6]
    );
    println!("(a fresh child process; peak RSS is that process's own VmHWM)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
