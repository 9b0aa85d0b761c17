//! Synthetic OPUS dumps for tests and benchmarks.
//!
//! [`write_dumps`] writes one complete dump per day, `ZLPE<YYYYMMDD>220000_delta.xml`, starting at
//! [`SynthSpec::start`]. Day 0 holds exactly `units` org units and `employees` employments (no
//! leave markers). Every following day applies the kind of changes a municipality sees overnight:
//! about 0.5 % of the employments change (position, name, unit, phone), about 0.1 % new
//! employments appear, about 0.1 % end and become leave markers (which stay in later dumps), a
//! few units are renamed or moved, and now and then a unit is created or a leaf unit is removed
//! (its employments move to the parent).
//!
//! Everything is derived from [`SynthSpec::seed`] through a small splitmix64 generator, so the
//! same spec always gives byte-identical files. Files are streamed through a `BufWriter`; only the
//! model of the organisation is kept in memory, never a document.
//!
//! **CPR numbers are synthetic**: the first six digits are a real birth date (`DDMMYY`), and the
//! four-digit serial is chosen so that the classic modulus-11 check fails
//! (weights 4,3,2,7,6,5,4,3,2,1; a real CPR issued before 2007 has a weighted sum divisible by
//! 11). They look like CPR numbers to every parser but can never be taken for an old-style real
//! one, and no real person's number is used on purpose.
//!
//! [`write_address_file`] writes the matching offline address register: a CSV file with header
//! `id,vejnavn,husnr,etage,dør,postnr,postnrnavn` holding every address used by the dumps (unit
//! `street`+`zipCode`, employee `address`+`postalCode`). A dump's street text is always
//! `"<vejnavn> <husnr>"`; the `id` is a UUID v5 of `"<vejnavn> <husnr>, <postnr> <postnrnavn>"` in
//! the URL namespace.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::ToSpan;
use jiff::civil::Date;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSpec {
    /// Org units on day 0 (at least 1: the root, id `1`).
    pub units: usize,
    /// Employments (`<employee>` records) on day 0.
    pub employees: usize,
    /// Number of daily dumps to write (day 0 is `start`).
    pub days: usize,
    pub seed: u64,
    pub start: Date,
}

/// Write `spec.days` dumps into `dir` (which must exist); returns their paths in day order.
pub fn write_dumps(spec: &SynthSpec, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut sim = Sim::new(spec);
    let mut paths = Vec::with_capacity(spec.days);
    for day in 0..spec.days {
        if day > 0 {
            sim.advance();
        }
        let d = sim.today;
        let path = dir.join(format!(
            "ZLPE{:04}{:02}{:02}220000_delta.xml",
            d.year(),
            d.month(),
            d.day()
        ));
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&path)?);
        sim.write_dump(&mut out)?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        paths.push(path);
    }
    Ok(paths)
}

/// Write the offline address register for the dumps of `spec` (see the module documentation).
pub fn write_address_file(spec: &SynthSpec, path: &Path) -> io::Result<()> {
    let mut sim = Sim::new(spec);
    let mut used = BTreeSet::new();
    for day in 0..spec.days {
        if day > 0 {
            sim.advance();
        }
        sim.collect_addresses(&mut used);
    }
    let mut csv = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
    csv.write_record([
        "id",
        "vejnavn",
        "husnr",
        "etage",
        "dør",
        "postnr",
        "postnrnavn",
    ])?;
    for addr in used {
        let street = STREETS[addr.street];
        let (zip, town) = POSTCODES[addr.zip];
        let number = addr.number.to_string();
        let id = address_uuid(street, &number, zip, town).to_string();
        csv.write_record([id.as_str(), street, &number, "", "", zip, town])?;
    }
    csv.flush()
}

/// The register id of an address: UUID v5 (URL namespace) of `"<vejnavn> <husnr>, <postnr> <by>"`.
pub fn address_uuid(street: &str, number: &str, zip: &str, town: &str) -> uuid::Uuid {
    let text = format!("{street} {number}, {zip} {town}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, text.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/// splitmix64: tiny, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `rate * n` rounded up or down at random, so small populations still see changes.
    fn amount(&mut self, n: usize, rate: f64) -> usize {
        let exact = n as f64 * rate;
        let whole = exact.floor();
        whole as usize + usize::from(self.chance(exact - whole))
    }
}

// ---------------------------------------------------------------------------------------------
// Word lists

const FIRST_NAMES: &[&str] = &[
    "Anne", "Mette", "Kirsten", "Hanne", "Helle", "Susanne", "Lone", "Camilla", "Marianne",
    "Louise", "Pia", "Tina", "Maria", "Ida", "Sofie", "Freja", "Astrid", "Signe", "Birgitte",
    "Åse", "Søs", "Jens", "Peter", "Lars", "Michael", "Henrik", "Søren", "Niels", "Thomas",
    "Jesper", "Rasmus", "Mads", "Anders", "Morten", "Jørgen", "Bjørn", "Kåre", "Frederik",
    "Mikkel", "Ulrik", "Poul", "Torben", "Ørjan", "Mathias",
];

const LAST_NAMES: &[&str] = &[
    "Nielsen",
    "Jensen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Christiansen",
    "Poulsen",
    "Johansen",
    "Møller",
    "Mortensen",
    "Østergaard",
    "Kjær",
    "Lauridsen",
    "Bæk",
    "Holm",
    "Dahl",
    "Skov",
    "Lund",
    "Due",
    "Brøndum",
    "Højgaard",
    "Mølgaard",
    "Vestergård",
    "Søgaard",
    "Ærenlund",
    "Frølund",
    "Bech",
    "Krogh",
    "Thygesen",
    "Dalgaard",
];

/// (title, short form)
const POSITIONS: &[(&str, &str)] = &[
    ("Lærer", "LÆR"),
    ("Pædagog", "PÆD"),
    ("Pædagogmedhjælper", "PÆDMH"),
    ("Social- og sundhedshjælper", "SOSUH"),
    ("Social- og sundhedsassistent", "SOSUA"),
    ("Sygeplejerske", "SYGPL"),
    ("Ergoterapeut", "ERGO"),
    ("Fysioterapeut", "FYS"),
    ("Socialrådgiver", "SOCR"),
    ("Administrativ medarbejder", "ADM"),
    ("Kontorassistent", "KONT"),
    ("Sagsbehandler", "SAGSB"),
    ("Specialkonsulent", "SPKON"),
    ("Konsulent", "KONS"),
    ("Fuldmægtig", "FULDM"),
    ("Økonom", "ØKO"),
    ("Jurist", "JUR"),
    ("IT-medarbejder", "IT"),
    ("Systemadministrator", "SYSADM"),
    ("Softwaretester", "TESTER"),
    ("Projektleder", "PROJL"),
    ("Ingeniør", "ING"),
    ("Landinspektør", "LANDI"),
    ("Arkitekt", "ARK"),
    ("Vejmand", "VEJM"),
    ("Gartner", "GART"),
    ("Servicemedarbejder", "SERV"),
    ("Pedel", "PEDEL"),
    ("Rengøringsassistent", "RENG"),
    ("Køkkenleder", "KØKL"),
    ("Køkkenassistent", "KØKA"),
    ("Dagplejer", "DAGPL"),
    ("Tandplejer", "TANDP"),
    ("Psykolog", "PSYK"),
    ("Bibliotekar", "BIBL"),
    ("Musikskolelærer", "MUSL"),
    ("Chauffør", "CHAUF"),
    ("Elev", "ELEV"),
    ("Studentermedhjælp", "STUD"),
    ("Skoleleder", "SKLED"),
    ("Afdelingsleder", "AFDL"),
    ("Centerchef", "CCHEF"),
];

/// (workContract, workContractText, weight)
const CONTRACTS: &[(&str, &str, usize)] = &[
    ("01", "Ansat", 70),
    ("03", "Timelønnet", 12),
    ("05", "Elev", 5),
    ("06", "Tjenestemand", 8),
    ("08", "Vikar", 5),
];

const ROLES: &[&str] = &[
    "Tillidsrepræsentant",
    "Arbejdsmiljørepræsentant",
    "Fællestillidsrepræsentant",
    "Førstehjælper",
];

const STREETS: &[&str] = &[
    "Søndergade",
    "Vestergade",
    "Østergade",
    "Nørregade",
    "Algade",
    "Torvet",
    "Skolevej",
    "Kirkevej",
    "Møllevej",
    "Engvej",
    "Skovvej",
    "Birkevej",
    "Egevej",
    "Bøgevej",
    "Lærkevej",
    "Ahornvej",
    "Rosenvænget",
    "Kløvervænget",
    "Æblehaven",
    "Højvangen",
    "Fælledvej",
    "Stationsvej",
    "Havnegade",
    "Strandvejen",
    "Åboulevarden",
    "Rådhuspladsen",
    "Grønnegade",
    "Bakkedraget",
    "Tværgade",
    "Præstegårdsvej",
    "Ringvejen",
    "Industrivej",
    "Solsikkevej",
    "Kornblomstvej",
    "Møntergade",
    "Vænget",
    "Hedevej",
    "Fjordvej",
    "Bredgade",
    "Parkvej",
];

const POSTCODES: &[(&str, &str)] = &[
    ("8000", "Aarhus C"),
    ("8200", "Aarhus N"),
    ("8210", "Aarhus V"),
    ("8220", "Brabrand"),
    ("8230", "Åbyhøj"),
    ("8240", "Risskov"),
    ("8250", "Egå"),
    ("8260", "Viby J"),
    ("8270", "Højbjerg"),
    ("8300", "Odder"),
    ("8310", "Tranbjerg J"),
    ("8320", "Mårslet"),
    ("8330", "Beder"),
    ("8340", "Malling"),
    ("8355", "Solbjerg"),
    ("8361", "Hasselager"),
    ("8380", "Trige"),
    ("8381", "Tilst"),
];

const DEPARTMENTS: &[&str] = &[
    "Børn og Unge",
    "Sundhed og Omsorg",
    "Sociale Forhold og Beskæftigelse",
    "Teknik og Miljø",
    "Kultur og Borgerservice",
    "Økonomi og Personale",
    "Borgmesterens Afdeling",
];

const AREAS: &[&str] = &[
    "Nord", "Syd", "Øst", "Vest", "Midt", "Centrum", "Land", "By",
];

const PLACES: &[&str] = &[
    "Egebjerg",
    "Skovbrynet",
    "Solsikken",
    "Ålykke",
    "Højvang",
    "Møllebakken",
    "Kærgården",
    "Søholm",
    "Fjordglimt",
    "Bøgely",
    "Lindegården",
    "Rosenhøj",
    "Engdal",
    "Nørreå",
    "Tåstrup",
    "Kildevang",
    "Hørgården",
    "Lærkereden",
    "Bakkely",
    "Strandgården",
];

const INSTITUTIONS: &[&str] = &[
    "Skole",
    "Børnehus",
    "Vuggestue",
    "Plejecenter",
    "Bibliotek",
    "Sundhedscenter",
    "Ungdomsskole",
    "Dagtilbud",
    "Bosted",
    "Genoptræning",
    "Materielgård",
    "Jobcenter",
];

const SECTIONS: &[&str] = &[
    "Indskoling",
    "Mellemtrin",
    "Udskoling",
    "Administration",
    "Køkken",
    "Teknisk service",
    "Hjemmepleje",
    "Sygepleje",
    "Visitation",
    "Stab",
    "Drift",
    "Projekter",
];

/// (orgType, orgTypeTxt) by depth.
const ORG_TYPES: &[(&str, &str)] = &[
    ("00000", "Organisation"),
    ("00001", "Forvaltning"),
    ("00002", "Område"),
    ("00003", "Institution"),
    ("00004", "Afdeling"),
    ("00005", "Team"),
];

/// The deepest level of the generated unit tree (the root is level 0).
pub const MAX_DEPTH: usize = 5;
const CLIENT: &str = "751";
const MUNICIPALITY_CVR: &str = "55133018";

// ---------------------------------------------------------------------------------------------
// Model

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Addr {
    street: usize,
    number: u32,
    zip: usize,
}

impl Addr {
    fn random(rng: &mut Rng) -> Addr {
        Addr {
            street: rng.below(STREETS.len()),
            number: 1 + rng.below(120) as u32,
            zip: rng.below(POSTCODES.len()),
        }
    }

    fn street_text(&self) -> String {
        format!("{} {}", STREETS[self.street], self.number)
    }
}

struct SUnit {
    id: u32,
    parent: Option<u32>,
    depth: usize,
    /// Index into `ORG_TYPES`, fixed at creation (a move does not change a unit's type).
    org_type: usize,
    short_name: String,
    /// The name without a rename suffix.
    base_name: String,
    long_name: String,
    addr: Option<Addr>,
    phone: String,
    ean: String,
    se: String,
    p_nr: String,
    cost_center: String,
    start_date: Date,
    last_changed: Date,
}

struct Person {
    cpr: String,
    first: String,
    last: String,
    /// `None`: no address in OPUS; `Some(None)`: address protection.
    addr: Option<Option<Addr>>,
    user_id: Option<String>,
    email: Option<String>,
}

struct Emp {
    id: u32,
    person: usize,
    entry: Date,
    leave: Option<Date>,
    unit: u32,
    position: usize,
    contract: usize,
    manager: Option<(u8, u8)>,
    phone: Option<String>,
    fraction: Option<(u32, u32)>,
    role: Option<(usize, Date)>,
    pay_grade: u32,
    last_changed: Date,
    /// Ended: written as a leave marker from now on.
    left: bool,
}

struct Sim {
    rng: Rng,
    today: Date,
    units: BTreeMap<u32, SUnit>,
    persons: Vec<Person>,
    cprs: HashSet<String>,
    emps: Vec<Emp>,
    /// (id, depth) of every unit; emptied whenever the tree changes.
    unit_cache: Vec<(u32, usize)>,
    next_unit_id: u32,
    next_emp_id: u32,
}

/// How many of `total` units sit at each depth (root, forvaltning, område, institution,
/// afdeling, team).
fn level_sizes(total: usize) -> [usize; MAX_DEPTH + 1] {
    let rest = total.saturating_sub(1);
    let departments = rest.min(DEPARTMENTS.len());
    let r = rest - departments;
    let areas = if r > 0 { (r * 3 / 100).max(1) } else { 0 };
    let institutions = r * 14 / 100;
    let sections = r * 45 / 100;
    let teams = r - areas - institutions - sections;
    [1, departments, areas, institutions, sections, teams]
}

fn add_days(date: Date, days: i64) -> Date {
    date.checked_add(days.days()).unwrap_or(date)
}

fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'æ' => out.push_str("ae"),
            'ø' => out.push_str("oe"),
            'å' => out.push_str("aa"),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// A synthetic CPR: real `DDMMYY` birth date, a century digit (the 7th) that gives that birth
/// year by the CPR rule OS2mo applies (0–3: 19xx; 4–9: 20xx up to 2036), and a serial chosen so
/// the modulus-11 check fails.
fn synthetic_cpr(rng: &mut Rng) -> String {
    let year = rng.range(1950, 2005) as i16;
    let month = rng.range(1, 12) as i8;
    let last_day = Date::new(year, month, 1).map_or(28, |d| d.days_in_month());
    let day = rng.range(1, i64::from(last_day)) as i8;
    let (base, span) = if year < 2000 { (0, 4000) } else { (4000, 6000) };
    let mut serial = rng.below(span);
    loop {
        let cpr = format!("{day:02}{month:02}{:02}{:04}", year % 100, base + serial);
        if !passes_mod11(&cpr) {
            return cpr;
        }
        serial = (serial + 1) % span;
    }
}

/// The birth year of a CPR number made by [`synthetic_cpr`].
fn birth_year(cpr: &str) -> i64 {
    let yy: i64 = cpr[4..6].parse().unwrap_or(0);
    if cpr.as_bytes()[6] < b'4' {
        1900 + yy
    } else {
        2000 + yy
    }
}

/// The old CPR modulus-11 check (every synthetic CPR number fails it).
pub fn passes_mod11(cpr: &str) -> bool {
    const WEIGHTS: [u32; 10] = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    let sum: u32 = cpr
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    sum.is_multiple_of(11)
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|i| {
            let d = if i == 0 {
                rng.range(1, 9)
            } else {
                rng.range(0, 9)
            };
            char::from(b'0' + d as u8)
        })
        .collect()
}

impl Sim {
    fn new(spec: &SynthSpec) -> Sim {
        let mut sim = Sim {
            rng: Rng(spec.seed ^ 0x6f70_7573_6469_7078),
            today: spec.start,
            units: BTreeMap::new(),
            persons: Vec::new(),
            cprs: HashSet::new(),
            emps: Vec::new(),
            unit_cache: Vec::new(),
            next_unit_id: 1,
            next_emp_id: 10_000,
        };
        let origin = Date::constant(1900, 1, 1);
        // The shape of a municipality: a few forvaltninger, some områder, many institutions,
        // afdelinger and teams. Created level by level so every unit has its parent.
        for (depth, count) in level_sizes(spec.units.max(1)).into_iter().enumerate() {
            for _ in 0..count {
                sim.new_unit(origin, depth);
            }
        }
        let persons = (spec.employees * 5)
            .div_ceil(6)
            .max(usize::from(spec.employees > 0));
        for _ in 0..persons {
            sim.new_person();
        }
        for i in 0..spec.employees {
            // The first `persons` employments give everyone a job; the rest (~20 %) are second
            // employments of existing persons, so those share a CPR number.
            let person = if i < persons {
                i
            } else {
                sim.rng.below(persons)
            };
            // Hired at 18 at the earliest (OS2mo refuses an engagement before the birth date).
            let earliest = (birth_year(&sim.persons[person].cpr) + 18).max(1985);
            let entry = Date::new(
                sim.rng.range(earliest, i64::from(spec.start.year()) - 1) as i16,
                sim.rng.range(1, 12) as i8,
                sim.rng.range(1, 28) as i8,
            )
            .unwrap_or(origin);
            sim.new_emp(person, entry);
        }
        // Employment numbers are handed out over the years, so the dump is ordered by them but
        // not by person.
        sim
    }

    /// Add a unit `depth` levels below the root (the first unit is the root itself).
    fn new_unit(&mut self, start_date: Date, depth: usize) -> u32 {
        let id = self.next_unit_id;
        self.next_unit_id += 1;
        let (parent, depth) = if self.units.is_empty() {
            (None, 0)
        } else {
            // A parent one level up; if that level is empty, the deepest level above.
            let target = depth.clamp(1, MAX_DEPTH);
            let level = self
                .units
                .values()
                .map(|u| u.depth)
                .filter(|&d| d < target)
                .max()
                .unwrap_or(0);
            let candidates: Vec<u32> = self
                .units
                .values()
                .filter(|u| u.depth == level)
                .map(|u| u.id)
                .collect();
            (Some(*self.rng.pick(&candidates)), level + 1)
        };
        let rng = &mut self.rng;
        let (long_name, short_name) = match depth {
            0 => ("Aarslev Kommune".to_string(), "AAK".to_string()),
            1 => {
                let name = rng.pick(DEPARTMENTS).to_string();
                let short = name
                    .split_whitespace()
                    .map(|w| w.chars().next().unwrap_or('X'))
                    .collect();
                (name, short)
            }
            2 => {
                let name = format!("Område {}", rng.pick(AREAS));
                (name, format!("OMR{id}"))
            }
            3 => {
                let name = format!("{} {}", rng.pick(PLACES), rng.pick(INSTITUTIONS));
                let short: String = name.chars().filter(|c| c.is_alphabetic()).take(4).collect();
                (name, format!("{}{id}", short.to_uppercase()))
            }
            4 => (rng.pick(SECTIONS).to_string(), format!("AFD{id}")),
            _ => (format!("Team {}", rng.range(1, 20)), format!("TEAM{id}")),
        };
        let addr = (depth <= 3 || rng.chance(0.5)).then(|| Addr::random(rng));
        let unit = SUnit {
            id,
            parent,
            depth,
            org_type: depth.min(ORG_TYPES.len() - 1),
            short_name,
            base_name: long_name.clone(),
            long_name,
            addr,
            phone: format!("8{}", digits(rng, 7)),
            ean: format!("579800{}", digits(rng, 7)),
            se: digits(rng, 8),
            p_nr: if depth == 0 {
                "0000000000".to_string()
            } else {
                digits(rng, 10)
            },
            cost_center: digits(rng, 8),
            start_date,
            last_changed: add_days(self.today, -rng.range(1, 2000)),
        };
        self.units.insert(id, unit);
        self.unit_cache.clear();
        id
    }

    fn new_person(&mut self) -> usize {
        let rng = &mut self.rng;
        let cpr = loop {
            let c = synthetic_cpr(rng);
            if self.cprs.insert(c.clone()) {
                break c;
            }
        };
        let first = rng.pick(FIRST_NAMES).to_string();
        let last = rng.pick(LAST_NAMES).to_string();
        let n = self.persons.len();
        let addr = if rng.chance(0.01) {
            Some(None)
        } else if rng.chance(0.88) {
            Some(Some(Addr::random(rng)))
        } else {
            None
        };
        let user_id = rng.chance(0.85).then(|| {
            let initials: String = ascii_fold(&first)
                .chars()
                .take(2)
                .chain(ascii_fold(&last).chars().take(2))
                .collect();
            format!("{}{n}", initials.to_uppercase())
        });
        let email = rng.chance(0.85).then(|| {
            format!(
                "{}.{}{n}@aarslev.example",
                ascii_fold(&first),
                ascii_fold(&last)
            )
        });
        self.persons.push(Person {
            cpr,
            first,
            last,
            addr,
            user_id,
            email,
        });
        n
    }

    fn random_unit(&mut self) -> u32 {
        // Employments sit mostly in the deeper units.
        if self.unit_cache.is_empty() {
            self.unit_cache = self.units.values().map(|u| (u.id, u.depth)).collect();
        }
        let ids = &self.unit_cache;
        let mut best = *self.rng.pick(ids);
        let other = *self.rng.pick(ids);
        if other.1 > best.1 {
            best = other;
        }
        best.0
    }

    fn weighted_contract(&mut self) -> usize {
        let total: usize = CONTRACTS.iter().map(|c| c.2).sum();
        let mut x = self.rng.below(total);
        for (i, c) in CONTRACTS.iter().enumerate() {
            if x < c.2 {
                return i;
            }
            x -= c.2;
        }
        0
    }

    fn new_emp(&mut self, person: usize, entry: Date) {
        let id = self.next_emp_id;
        self.next_emp_id += 1 + self.rng.below(3) as u32;
        let unit = self.random_unit();
        let contract = self.weighted_contract();
        let rng = &mut self.rng;
        let manager = rng
            .chance(0.03)
            .then(|| (rng.range(1, 3) as u8, rng.range(1, 4) as u8));
        let position = if manager.is_some() {
            POSITIONS.len() - 1 - rng.below(3)
        } else {
            rng.below(POSITIONS.len() - 3)
        };
        let today = self.today;
        let emp = Emp {
            id,
            person,
            entry,
            leave: rng
                .chance(0.04)
                .then(|| add_days(today, rng.range(30, 400))),
            unit,
            position,
            contract,
            manager,
            phone: rng
                .chance(0.8)
                .then(|| format!("{}", rng.range(20_000_000, 99_999_999))),
            fraction: rng.chance(0.4).then(|| (rng.range(15, 37) as u32, 37)),
            role: rng.chance(0.03).then(|| {
                (
                    rng.below(ROLES.len()),
                    add_days(today, -rng.range(10, 3000)),
                )
            }),
            pay_grade: rng.range(11, 52) as u32,
            last_changed: add_days(today, -rng.range(0, 1500)).max(entry),
            left: false,
        };
        self.emps.push(emp);
    }

    fn active_indices(&self) -> Vec<usize> {
        (0..self.emps.len())
            .filter(|&i| !self.emps[i].left)
            .collect()
    }

    /// Apply one night's changes and move to the next day.
    fn advance(&mut self) {
        self.today = add_days(self.today, 1);
        let today = self.today;
        let active = self.active_indices();

        // Changed employments (at least one a day).
        let changes = self
            .rng
            .amount(active.len(), 0.005)
            .max(usize::from(!active.is_empty()));
        for _ in 0..changes {
            let i = *self.rng.pick(&active);
            match self.rng.below(4) {
                0 => {
                    let e = &mut self.emps[i];
                    e.position = if e.manager.is_some() {
                        POSITIONS.len() - 1 - self.rng.below(3)
                    } else {
                        self.rng.below(POSITIONS.len() - 3)
                    };
                    e.pay_grade = self.rng.range(11, 52) as u32;
                }
                1 => {
                    // A new surname shows in every employment of the person.
                    let p = self.emps[i].person;
                    self.persons[p].last = self.rng.pick(LAST_NAMES).to_string();
                    for e in self.emps.iter_mut().filter(|e| e.person == p && !e.left) {
                        e.last_changed = today;
                    }
                }
                2 => {
                    let unit = self.random_unit();
                    self.emps[i].unit = unit;
                }
                _ => {
                    let phone = format!("{}", self.rng.range(20_000_000, 99_999_999));
                    self.emps[i].phone = Some(phone);
                }
            }
            self.emps[i].last_changed = today;
        }

        // Ended employments become leave markers.
        for _ in 0..self.rng.amount(active.len(), 0.001) {
            let i = *self.rng.pick(&active);
            self.emps[i].left = true;
        }

        // New employments: mostly new people, some second jobs.
        for _ in 0..self.rng.amount(active.len(), 0.001) {
            let person = if self.persons.is_empty() || self.rng.chance(0.7) {
                self.new_person()
            } else {
                self.rng.below(self.persons.len())
            };
            let entry = add_days(today, self.rng.range(-5, 30));
            self.new_emp(person, entry);
            if let Some(e) = self.emps.last_mut() {
                e.last_changed = today;
            }
        }

        // A few units renamed or moved.
        for _ in 0..self.rng.below(3) {
            let ids: Vec<u32> = self.units.keys().copied().filter(|&id| id != 1).collect();
            if ids.is_empty() {
                break;
            }
            let id = *self.rng.pick(&ids);
            if self.rng.chance(0.5) {
                let suffix = self.rng.pick(AREAS);
                if let Some(u) = self.units.get_mut(&id) {
                    let renamed = format!("{} {suffix}", u.base_name);
                    if renamed != u.long_name {
                        u.long_name = renamed;
                        u.last_changed = today;
                    }
                }
            } else {
                self.move_unit(id);
            }
        }

        // Now and then a unit appears or a leaf unit is closed.
        if self.rng.chance(0.15) {
            let depth = self.rng.range(3, MAX_DEPTH as i64) as usize;
            self.new_unit(today, depth);
        }
        if self.rng.chance(0.1) {
            self.remove_leaf_unit();
        }
    }

    fn depth_of(&self, mut id: u32) -> usize {
        let mut depth = 0;
        while let Some(p) = self.units.get(&id).and_then(|u| u.parent) {
            depth += 1;
            id = p;
            if depth > self.units.len() {
                break;
            }
        }
        depth
    }

    fn subtree_height(&self, id: u32) -> usize {
        self.units
            .values()
            .filter(|u| u.parent == Some(id))
            .map(|u| 1 + self.subtree_height(u.id))
            .max()
            .unwrap_or(0)
    }

    fn is_ancestor(&self, ancestor: u32, mut id: u32) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.units.get(&id).and_then(|u| u.parent) {
                Some(p) => id = p,
                None => return false,
            }
        }
    }

    /// Move a unit under another unit outside its own subtree, keeping the tree shallow.
    fn move_unit(&mut self, id: u32) {
        let height = self.subtree_height(id);
        let candidates: Vec<u32> = self
            .units
            .keys()
            .copied()
            .filter(|&p| !self.is_ancestor(id, p) && self.depth_of(p) + 1 + height <= MAX_DEPTH)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let parent = *self.rng.pick(&candidates);
        let today = self.today;
        if let Some(u) = self.units.get_mut(&id)
            && u.parent != Some(parent)
        {
            u.parent = Some(parent);
            u.last_changed = today;
        }
        self.refresh_depths();
    }

    fn refresh_depths(&mut self) {
        let depths: Vec<(u32, usize)> = self
            .units
            .keys()
            .map(|&id| (id, self.depth_of(id)))
            .collect();
        for (id, depth) in depths {
            if let Some(u) = self.units.get_mut(&id) {
                u.depth = depth;
            }
        }
        self.unit_cache.clear();
    }

    fn remove_leaf_unit(&mut self) {
        let leaves: Vec<u32> = self
            .units
            .keys()
            .copied()
            .filter(|&id| id != 1 && !self.units.values().any(|u| u.parent == Some(id)))
            .collect();
        if leaves.is_empty() {
            return;
        }
        let id = *self.rng.pick(&leaves);
        let Some(removed) = self.units.remove(&id) else {
            return;
        };
        self.unit_cache.clear();
        let parent = removed.parent.unwrap_or(1);
        let today = self.today;
        for e in self.emps.iter_mut().filter(|e| e.unit == id) {
            e.unit = parent;
            if !e.left {
                e.last_changed = today;
            }
        }
    }

    fn collect_addresses(&self, out: &mut BTreeSet<Addr>) {
        out.extend(self.units.values().filter_map(|u| u.addr));
        for e in self.emps.iter().filter(|e| !e.left) {
            if let Some(Some(a)) = self.persons[e.person].addr {
                out.insert(a);
            }
        }
    }

    fn write_dump(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, r#"<?xml version="1.0" encoding="utf-8"?>"#)?;
        writeln!(
            w,
            "<!-- Synthetic OPUS dump written by dipex; all CPR numbers are synthetic. -->"
        )?;
        writeln!(w, "<kmd>")?;
        for u in self.units.values() {
            self.write_unit(w, u)?;
        }
        for e in &self.emps {
            self.write_emp(w, e)?;
        }
        writeln!(w, "</kmd>")
    }

    fn write_unit(&self, w: &mut impl Write, u: &SUnit) -> io::Result<()> {
        writeln!(
            w,
            r#"  <orgUnit id="{}" client="{CLIENT}" lastChanged="{}">"#,
            u.id, u.last_changed
        )?;
        field(w, "startDate", &u.start_date.to_string())?;
        field(w, "endDate", "9999-12-31")?;
        field(
            w,
            "parentOrgUnit",
            &u.parent.map(|p| p.to_string()).unwrap_or_default(),
        )?;
        field(w, "shortName", &u.short_name)?;
        field(w, "longName", &u.long_name)?;
        if let Some(a) = u.addr {
            field(w, "street", &a.street_text())?;
            field(w, "zipCode", POSTCODES[a.zip].0)?;
            field(w, "city", POSTCODES[a.zip].1)?;
        }
        field(w, "phoneNumber", &u.phone)?;
        field(w, "cvrNr", MUNICIPALITY_CVR)?;
        field(w, "eanNr", &u.ean)?;
        field(w, "seNr", &u.se)?;
        field(w, "pNr", &u.p_nr)?;
        field(w, "costCenter", &u.cost_center)?;
        let (code, text) = ORG_TYPES[u.org_type];
        field(w, "orgType", code)?;
        field(w, "orgTypeTxt", text)?;
        writeln!(w, "  </orgUnit>")
    }

    fn write_emp(&self, w: &mut impl Write, e: &Emp) -> io::Result<()> {
        if e.left {
            return writeln!(
                w,
                r#"  <employee id="{}" client="{CLIENT}" action="leave"/>"#,
                e.id
            );
        }
        let p = &self.persons[e.person];
        writeln!(
            w,
            r#"  <employee id="{}" client="{CLIENT}" lastChanged="{}">"#,
            e.id, e.last_changed
        )?;
        field(w, "entryDate", &e.entry.to_string())?;
        field(
            w,
            "leaveDate",
            &e.leave.map(|d| d.to_string()).unwrap_or_default(),
        )?;
        writeln!(w, r#"    <cpr suppId="0">{}</cpr>"#, p.cpr)?;
        field(w, "firstName", &p.first)?;
        field(w, "lastName", &p.last)?;
        match p.addr {
            Some(Some(a)) => {
                field(w, "address", &a.street_text())?;
                field(w, "postalCode", POSTCODES[a.zip].0)?;
                field(w, "city", POSTCODES[a.zip].1)?;
            }
            Some(None) => {
                writeln!(w, r#"    <address protected="true"/>"#)?;
                field(w, "postalCode", "")?;
                field(w, "city", "")?;
            }
            None => {
                field(w, "address", "")?;
                field(w, "postalCode", "")?;
                field(w, "city", "")?;
            }
        }
        field(w, "country", "DK")?;
        field(w, "workPhone", e.phone.as_deref().unwrap_or(""))?;
        if let Some(email) = &p.email {
            field(w, "email", email)?;
        }
        if let Some(user_id) = &p.user_id {
            field(w, "userId", user_id)?;
        }
        let (code, text, _) = CONTRACTS[e.contract];
        field(w, "workContract", code)?;
        field(w, "workContractText", text)?;
        let (title, short) = POSITIONS[e.position];
        field(w, "positionId", &(500 + e.position).to_string())?;
        field(w, "position", title)?;
        field(w, "positionShort", short)?;
        match e.manager {
            Some((sup, sub)) => {
                field(w, "isManager", "true")?;
                field(w, "superiorLevel", &sup.to_string())?;
                field(w, "subordinateLevel", &format!("{sub:02}"))?;
            }
            None => {
                field(w, "isManager", "false")?;
                field(w, "superiorLevel", "0")?;
                field(w, "subordinateLevel", "00")?;
            }
        }
        field(w, "orgUnit", &e.unit.to_string())?;
        field(w, "payGradeText", &format!("LØN {}", e.pay_grade))?;
        if let Some((num, den)) = e.fraction {
            field(w, "numerator", &num.to_string())?;
            field(w, "denominator", &den.to_string())?;
        }
        if let Some((role, from)) = e.role {
            writeln!(
                w,
                r#"    <function startDate="{from}" endDate="9999-12-31">"#
            )?;
            writeln!(w, "      <artText>Rolle</artText>")?;
            writeln!(w, "      <roleText>{}</roleText>", escape(ROLES[role]))?;
            writeln!(w, "    </function>")?;
        }
        writeln!(w, "  </employee>")
    }
}

/// One indented `<name>text</name>` line (`<name/>` when empty).
fn field(w: &mut impl Write, name: &str, text: &str) -> io::Result<()> {
    if text.is_empty() {
        writeln!(w, "    <{name}/>")
    } else {
        writeln!(w, "    <{name}>{}</{name}>", escape(text))
    }
}

fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_sizes_add_up() {
        for total in [1, 2, 8, 9, 80, 3000] {
            assert_eq!(level_sizes(total).iter().sum::<usize>(), total, "{total}");
        }
        assert_eq!(level_sizes(3000), [1, 7, 89, 418, 1346, 1139]);
    }

    #[test]
    fn generator_helpers() {
        assert!(passes_mod11("0707614285"), "a textbook example passes");
        let mut rng = Rng(1);
        for _ in 0..1000 {
            let cpr = synthetic_cpr(&mut rng);
            assert_eq!(cpr.len(), 10);
            assert!(!passes_mod11(&cpr));
        }
        assert_eq!(ascii_fold("Søren Ærø-Åby"), "soerenaeroeaaby");
        assert_eq!(escape("A & <B>"), "A &amp; &lt;B&gt;");
        let mut rng = Rng(5);
        let n: usize = (0..1000).map(|_| rng.amount(100, 0.005)).sum();
        assert!((300..700).contains(&n), "{n}");
    }
}
