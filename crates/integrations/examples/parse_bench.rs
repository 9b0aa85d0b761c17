//! Time `opus::parse::parse_file` on a large synthetic dump.
//!
//! ```text
//! cargo run --release -p dipex-integrations --example parse_bench -- [DIR] [RUNS] [UNITS] [EMPLOYEES]
//! ```
//!
//! Generates the dump into `DIR` (default `/tmp/dipex-parse-bench`) unless it is already there,
//! then parses it `RUNS` times (default 5) and prints each time; then once more for the record
//! counts and a fingerprint of the whole result (every field, digests and CPR numbers
//! included), so that two builds of the parser can be compared for identical output (skipped
//! when `NO_FINGERPRINT` is set). `RUNS=0` only generates.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use dipex_integrations::opus::parse::{Dump, parse_file};
use dipex_testkit::synth::{SynthSpec, write_dumps};
use md5::{Digest as _, Md5};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/dipex-parse-bench".to_string()),
    );
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS"));
    let units: usize = args.next().map_or(3000, |a| a.parse().expect("UNITS"));
    let employees: usize = args
        .next()
        .map_or(50_000, |a| a.parse().expect("EMPLOYEES"));
    let spec = SynthSpec {
        units,
        employees,
        days: 1,
        seed: 1,
        start: jiff::civil::date(2024, 1, 1),
    };
    std::fs::create_dir_all(&dir).expect("create dir");
    let path = dir.join("ZLPE20240101220000_delta.xml");
    if !path.exists() {
        let t = Instant::now();
        write_dumps(&spec, &dir).expect("write dump");
        eprintln!("generated {} in {:.2?}", path.display(), t.elapsed());
    }
    let size = std::fs::metadata(&path).expect("dump").len();
    eprintln!("{}: {:.1} MB", path.display(), size as f64 / 1e6);
    let mut times = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        let dump = parse_file(&path).expect("parse");
        let elapsed = t.elapsed();
        times.push(elapsed.as_secs_f64());
        println!("run {run}: {:.3} s", elapsed.as_secs_f64());
        drop(dump);
    }
    if runs > 0 && std::env::var_os("NO_FINGERPRINT").is_none() {
        let dump = parse_file(&path).expect("parse");
        println!(
            "units {} employees {} fingerprint {}",
            dump.units.len(),
            dump.employees.len(),
            fingerprint(&dump)
        );
    }
    if !times.is_empty() {
        times.sort_by(f64::total_cmp);
        println!(
            "min {:.3} s, median {:.3} s",
            times[0],
            times[times.len() / 2]
        );
    }
}

/// MD5 over the debug rendering of every record plus the exposed CPR numbers.
fn fingerprint(dump: &Dump) -> String {
    let mut h = Md5::new();
    let mut line = String::new();
    for u in &dump.units {
        line.clear();
        write!(line, "{u:?}").unwrap();
        h.update(line.as_bytes());
    }
    for e in &dump.employees {
        line.clear();
        write!(line, "{e:?}").unwrap();
        if let Some(d) = &e.data {
            line.push_str(d.cpr.expose());
        }
        h.update(line.as_bytes());
    }
    h.finalize().iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").unwrap();
        s
    })
}
