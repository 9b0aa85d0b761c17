//! `dipex-bench`: benchmarks on synthetic data (never timed tests), and the generator of the
//! bundled example data. Each measured step runs in a child process, so its peak memory
//! (`VmHWM`) is its own.
//!
//! ```text
//! cargo run --release -p dipex-bench -- opus --units 3000 --employees 50000 --days 2
//! cargo run --release -p dipex-bench -- los --units 3000 --engagements 30000
//! cargo run --release -p dipex-bench -- dar --latency-ms 20 --connections 10
//! OS2MO_URL=… OS2MO_SESSION=… cargo run --release -p dipex-bench -- os2mo --peer --dir /tmp/b
//! OS2MO_PEER_ROOT=/tmp/os2mo-peer cargo run --release -p dipex-bench -- os2mo-peer --employees 1000
//! cargo run --release -p dipex-bench -- generate --units 12 --employees 40 --days 3 --out examples/opus
//! ```

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dipex_backend::Store;
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Env, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_testkit::synth::{SynthSpec, write_address_file, write_dumps};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Instant;

mod dar;
mod los;
mod peer;

#[derive(Parser)]
#[command(name = "dipex-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Size {
    #[arg(long, default_value_t = 3000)]
    units: usize,
    #[arg(long, default_value_t = 50_000)]
    employees: usize,
    #[arg(long, default_value_t = 2)]
    days: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate synthetic dumps, the matching address file and a settings.json into a folder
    Generate {
        #[command(flatten)]
        size: Size,
        #[arg(long)]
        out: PathBuf,
    },
    /// Benchmark the OPUS import: first import, then each daily diff
    Opus {
        #[command(flatten)]
        size: Size,
        /// Keep the generated data here instead of a temporary folder
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Show the time of each stage of each step
        #[arg(long, short)]
        verbose: bool,
    },
    /// Benchmark the OS2mo backend against the OS2mo-protocol server on loopback: objects written
    /// per second and requests per object for a first import and each daily diff, then `mo pull`
    Os2mo {
        #[arg(long, default_value_t = 300)]
        units: usize,
        #[arg(long, default_value_t = 5000)]
        employees: usize,
        #[arg(long, default_value_t = 2)]
        days: usize,
        /// Mutations per request
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Against the real OS2mo at OS2MO_URL (session OS2MO_SESSION) instead of the loopback
        /// server: import the first dump (unless `--dir` holds a run that did), then a full
        /// `mo pull`, an incremental one with nothing changed, and one after a one-object change
        #[arg(long)]
        peer: bool,
        /// Keep the data, run history and mirror here (with `--peer`: re-use them)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Benchmark the OPUS import into a real OS2mo (OS2MO_URL, OS2MO_SESSION, OS2MO_PEER_ROOT for
    /// the server's CPU time): writes per second, and OS2mo's and PostgreSQL's CPU time
    #[command(name = "os2mo-peer")]
    Os2moPeer(peer::PeerArgs),
    /// Benchmark the plan2learn export: the first dump imported into the embedded store, then the
    /// export (read, map, write) measured in a fresh child process
    Plan2learn {
        #[command(flatten)]
        size: Size,
    },
    /// Benchmark the Aarhus LOS import: the first import of a synthetic data set into a fresh
    /// embedded store, measured in a child process
    Los {
        #[command(flatten)]
        size: los::LosSize,
    },
    /// Benchmark the OPUS first import with the address register on loopback: healthy with a
    /// latency, refusing connections, hanging
    Dar {
        #[command(flatten)]
        args: dar::DarArgs,
    },
    /// (internal) import the LOS files of DIR, in this process
    #[command(hide = true)]
    ImportLos { dir: PathBuf },
    /// (internal) run the plan2learn export of DIR, in this process
    #[command(hide = true)]
    ExportP2l { dir: PathBuf },
    /// (internal) import the next pending dump of DIR, in this process
    #[command(hide = true)]
    ImportNext { dir: PathBuf },
}

fn spec(s: &Size) -> SynthSpec {
    SynthSpec {
        units: s.units,
        employees: s.employees,
        days: s.days,
        seed: s.seed,
        start: jiff::civil::date(2024, 1, 1),
    }
}

fn generate(s: &Size, out: &Path) -> Result<()> {
    let dumps = out.join("dumps");
    std::fs::create_dir_all(&dumps)?;
    let spec = spec(s);
    write_dumps(&spec, &dumps).context("writing dumps")?;
    write_address_file(&spec, &out.join("adresser.csv")).context("writing the address file")?;
    Ok(())
}

struct BenchEnv;

impl Env for BenchEnv {
    fn now(&self) -> jiff::civil::DateTime {
        jiff::Zoned::now().datetime()
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }
}

/// Peak resident memory of this process so far in KB (Linux `VmHWM`).
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident and peak memory of this process so far, from /proc (Linux).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    format!("[rss {} MB, peak {} MB]", field("VmRSS:"), field("VmHWM:"))
}

/// One import step in this process: the next pending dump of `dir`.
fn import_next(dir: &Path) -> Result<()> {
    let cfg = Config::new("Benchby Kommune");
    let register = OfflineRegister::load(dir.join("adresser.csv"))?;
    let cpr_map = HashMap::new();
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let (dumps, _) = list_dumps(&dir.join("dumps"))?;
    let mut store = Store::open(&dir.join("store.sqlite3"))?;
    let mut db = RunDb::open(&dir.join("run_db.sqlite"))?;
    let mut last = (Instant::now(), "start");
    let mut stages = Vec::new();
    let mut events = |e: run::Event<'_>| {
        if let run::Event::Stage(s) = e {
            stages.push(format!(
                "{} {:.2}s {}",
                last.1,
                last.0.elapsed().as_secs_f64(),
                memory()
            ));
            last = (Instant::now(), s);
        }
    };
    let r = run::import(
        &mut store,
        Some(&mut db),
        &job,
        &mut BenchEnv,
        &dumps,
        Mode::Next,
        &mut events,
    )?;
    stages.push(format!("{} {:.2}s", last.1, last.0.elapsed().as_secs_f64()));
    eprintln!("{}", stages.join(", "));
    let c = r.counts();
    println!(
        "{} {} {} {} {} {}",
        r.dumps.len(),
        c.created,
        c.updated,
        c.terminated,
        c.deleted,
        peak_kb()
    );
    Ok(())
}

/// Run the hidden subcommand `step` on `dir` as a child process; its wall time, its stdout
/// (counts and its own peak RSS) and its stderr (stage timings).
fn measured_child(step: &str, dir: &Path) -> Result<(f64, String, String)> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let out = Process::new(exe).arg(step).arg(dir).output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{step} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stages = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Ok((
        secs,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stages,
    ))
}

/// A scratch folder removed when dropped (also when the benchmark fails).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opus(s: &Size, dir: Option<PathBuf>, verbose: bool) -> Result<()> {
    let mut scratch = None;
    let dir = match dir {
        Some(d) => d,
        None => {
            let tmp = std::env::temp_dir().join(format!("dipex-bench-{}", std::process::id()));
            scratch = Some(Scratch(tmp.clone()));
            tmp
        }
    };
    let _scratch = scratch;
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    generate(s, &dir)?;
    let size: u64 = std::fs::read_dir(dir.join("dumps"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "generated {} dumps ({:.1} MB) of {} units / {} employments in {:.1} s",
        s.days,
        size as f64 / 1e6,
        s.units,
        s.employees,
        t.elapsed().as_secs_f64()
    );
    println!(
        "{:<14} {:>9} {:>12} {:>9} {:>9} {:>11} {:>8}",
        "step", "wall (s)", "peak RSS MB", "created", "updated", "terminated", "deleted"
    );
    for day in 0..s.days {
        let (secs, out, stages) = measured_child("import-next", &dir)?;
        let f: Vec<&str> = out.split_whitespace().collect();
        let kb: u64 = f[5].parse()?;
        let step = if day == 0 {
            "first import".to_string()
        } else {
            format!("diff day {day}")
        };
        println!(
            "{step:<14} {secs:>9.2} {:>12.1} {:>9} {:>9} {:>11} {:>8}",
            kb as f64 / 1024.0,
            f[1],
            f[2],
            f[3],
            f[4]
        );
        if verbose {
            println!("    {stages}");
        }
    }
    println!("(each step is a fresh child process; peak RSS is that process's own VmHWM)");
    Ok(())
}

/// The plan2learn export of the store in `dir`, in this process (run as a child).
fn export_p2l(dir: &Path) -> Result<()> {
    let store = Store::open(&dir.join("store.sqlite3"))?;
    let register = OfflineRegister::load(dir.join("adresser.csv"))?;
    let root = dipex_integrations::opus::uuids::OpusUuids::new("Benchby Kommune").unit("1");
    let types: Vec<String> = ["Ansat", "Timelønnet", "Tjenestemand", "Vikar", "Elev"]
        .map(String::from)
        .to_vec();
    let cfg = dipex_integrations::plan2learn::Config {
        root_unit: root,
        allowed_engagement_types: types,
        too_deep: vec![],
        email_priority: vec!["Email".into()],
        phone_priority: vec!["Telefon".into()],
        job_title_extension: 2,
    };
    let t = Instant::now();
    let today = jiff::civil::date(2024, 1, 2);
    let r =
        dipex_integrations::plan2learn::run::run(&store, &register, &cfg, today, &dir.join("p2l"))?;
    let rows: Vec<String> = r
        .export
        .tables
        .iter()
        .map(|t| format!("{} {}", t.rows.len(), t.name))
        .collect();
    println!(
        "{:.2} {} {}",
        t.elapsed().as_secs_f64(),
        peak_kb(),
        rows.join(", ")
    );
    Ok(())
}

fn plan2learn(s: &Size) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dipex-bench-p2l-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    generate(
        &Size {
            days: 1,
            ..s.clone()
        },
        &dir,
    )?;
    measured_child("import-next", &dir)?;
    println!(
        "plan2learn export of {} units / {} employments from the embedded store",
        s.units, s.employees
    );
    for run in 1..=3 {
        let (secs, stdout, _) = measured_child("export-p2l", &dir)?;
        let f: Vec<&str> = stdout.splitn(3, ' ').collect();
        let kb: u64 = f[1].parse()?;
        println!(
            "run {run}: export {} s (process {secs:.2} s), peak RSS {:.0} MB: {}",
            f[0],
            kb as f64 / 1024.0,
            f[2]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The OPUS import into an OS2mo-protocol server in this process, over loopback HTTP.
fn os2mo(s: &Size, batch: usize) -> Result<()> {
    use dipex_backend::os2mo::{Auth, Config as MoConfig};
    let dir = std::env::temp_dir().join(format!("dipex-bench-os2mo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    generate(s, &dir)?;
    let cfg = Config::new("Benchby Kommune");
    let server = dipex_testkit::os2mo::MoServer::start(dipex_testkit::os2mo::Options {
        org: (
            cfg.uuids.base(),
            cfg.municipality_name.clone(),
            cfg.municipality_name.clone(),
        ),
        schema: None,
        ..Default::default()
    });
    let mut mc = MoConfig::new(
        &server.base_url(),
        Auth::ClientCredentials {
            auth_server: server.auth_server(),
            realm: "mo".into(),
            client_id: "dipex".into(),
            client_secret: "test-secret".into(),
        },
    );
    mc.batch_size = batch;
    let mut mo = dipex_backend::Os2mo::new(mc)?;
    let register = OfflineRegister::load(dir.join("adresser.csv"))?;
    let cpr_map = HashMap::new();
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let (dumps, _) = list_dumps(&dir.join("dumps"))?;
    let mut db = RunDb::open(&dir.join("run_db.sqlite"))?;
    println!(
        "OPUS import of {} units / {} employments into OS2mo on loopback ({batch} mutations per request)",
        s.units, s.employees
    );
    println!(
        "{:<14} {:>9} {:>9} {:>10} {:>10} {:>10} {:>12}",
        "step", "wall (s)", "writes", "writes/s", "requests", "mutations", "requests/obj"
    );
    for day in 0..s.days {
        let before = server.stats();
        let t = Instant::now();
        let r = run::import(
            &mut mo,
            Some(&mut db),
            &job,
            &mut BenchEnv,
            &dumps,
            Mode::Next,
            &mut |_| {},
        )?;
        let secs = t.elapsed().as_secs_f64();
        let after = server.stats();
        let c = r.counts();
        let writes = c.created + c.updated + c.terminated + c.deleted;
        let requests = after.graphql_requests - before.graphql_requests;
        let step = if day == 0 {
            "first import".to_string()
        } else {
            format!("diff day {day}")
        };
        println!(
            "{step:<14} {secs:>9.2} {writes:>9} {:>10.0} {requests:>10} {:>10} {:>12.3}",
            writes as f64 / secs,
            after.mutations - before.mutations,
            requests as f64 / writes.max(1) as f64
        );
    }
    let mut mirror = Store::open(&dir.join("mirror.sqlite3"))?;
    let steps = [
        (
            "mo pull (first)",
            dipex_backend::pull::PullOptions::default(),
        ),
        (
            "mo pull (incremental)",
            dipex_backend::pull::PullOptions::default(),
        ),
    ];
    for (step, opts) in steps {
        let before = server.stats().graphql_requests;
        let reg = dipex_backend::Registration {
            at: jiff::Timestamp::now(),
            actor: "bench".into(),
            note: "pull".into(),
        };
        let t = Instant::now();
        let c = dipex_backend::pull::pull(&mo, &mut mirror, &reg, opts, &mut |_| {})?;
        println!(
            "{step:<22} {:>6.2} s, {} objects read in full, {} requests",
            t.elapsed().as_secs_f64(),
            c.read,
            server.stats().graphql_requests - before
        );
    }
    println!(
        "(client and server share this process and its 2 cores; the server keeps everything in memory)"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The OPUS import and `mo pull` against a real OS2mo (OS2MO_URL, OS2MO_SESSION).
fn os2mo_peer(s: &Size, batch: usize, dir: Option<PathBuf>) -> Result<()> {
    use dipex_backend::os2mo::{Auth, Config as MoConfig};
    use dipex_backend::pull::{PullOptions, pull};
    use dipex_backend::{Backend, Query, Registration};
    use dipex_model::{Kind, Op, Plan, Value};
    let url = std::env::var("OS2MO_URL").context("OS2MO_URL (the real OS2mo's base URL)")?;
    let session = std::env::var("OS2MO_SESSION").context("OS2MO_SESSION")?;
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dipex-bench-peer-{}", std::process::id()))
    });
    if !dir.join("dumps").exists() {
        generate(s, &dir)?;
    }
    let cfg = Config::new("Benchby Kommune");
    let mut mc = MoConfig::new(&url, Auth::Session(session));
    mc.batch_size = batch;
    let mut mo = dipex_backend::Os2mo::new(mc)?;
    let register = OfflineRegister::load(dir.join("adresser.csv"))?;
    let cpr_map = HashMap::new();
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let (dumps, _) = list_dumps(&dir.join("dumps"))?;
    let mut db = RunDb::open(&dir.join("run_db.sqlite"))?;
    println!(
        "{} units / {} employments, real OS2mo at {url} ({batch} mutations per request)",
        s.units, s.employees
    );
    let requests = mo.requests();
    let t = Instant::now();
    let r = run::import(
        &mut mo,
        Some(&mut db),
        &job,
        &mut BenchEnv,
        &dumps,
        Mode::Next,
        &mut |_| {},
    )?;
    let c = r.counts();
    let writes = c.created + c.updated + c.terminated + c.deleted;
    println!(
        "{:<34} {:>8.1} s, {writes} writes, {} requests",
        if r.dumps.is_empty() {
            "import (already done)"
        } else {
            "import of the first dump"
        },
        t.elapsed().as_secs_f64(),
        mo.requests() - requests
    );
    let mut mirror = Store::open(&dir.join("mirror.sqlite3"))?;
    let reg = |note: &str| Registration {
        at: jiff::Timestamp::now(),
        actor: "bench".into(),
        note: note.into(),
    };
    let mut step = |name: &str, full: bool, mo: &dipex_backend::Os2mo| -> Result<()> {
        let requests = mo.requests();
        let t = Instant::now();
        let c = pull(
            mo,
            &mut mirror,
            &reg("pull"),
            PullOptions { full },
            &mut |_| {},
        )?;
        println!(
            "{name:<34} {:>8.1} s, {} objects read in full ({} new, {} changed, {} deleted), {} requests",
            t.elapsed().as_secs_f64(),
            c.read,
            c.created,
            c.replaced,
            c.deleted,
            mo.requests() - requests
        );
        Ok(())
    };
    step("mo pull --full", true, &mo)?;
    step("mo pull, nothing changed", false, &mo)?;
    // One change: rename one unit from today.
    let units = mo.read(&Query::all(Kind::OrgUnit).user_keys(["1"]))?;
    let unit = match units.first() {
        Some(u) => u.clone(),
        None => mo
            .read(&Query::all(Kind::OrgUnit))?
            .into_iter()
            .next()
            .context("no unit in OS2mo")?,
    };
    let Value::OrgUnit(mut value) = unit.last().value.clone() else {
        bail!("not a unit");
    };
    value.name = format!("{} (renamed {})", value.name, jiff::Timestamp::now());
    let today = jiff::Zoned::now().date();
    let plan = Plan {
        ops: vec![Op::Update {
            uuid: unit.uuid,
            validity: dipex_model::Validity::new(Some(today), None),
            value: Value::OrgUnit(value),
        }],
    };
    mo.apply(plan, &reg("bench change"))?;
    step("mo pull, one unit renamed", false, &mo)?;
    println!("(OS2mo and dipex share this machine; its PostgreSQL is OS2mo's own)");
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Generate { size, out } => generate(&size, &out),
        Cmd::Opus { size, dir, verbose } => opus(&size, dir, verbose),
        Cmd::Os2mo {
            units,
            employees,
            days,
            batch,
            peer,
            dir,
        } => {
            let size = Size {
                units,
                employees,
                days,
                seed: 1,
            };
            if peer {
                os2mo_peer(&size, batch, dir)
            } else {
                os2mo(&size, batch)
            }
        }
        Cmd::Os2moPeer(a) => peer::bench(&a),
        Cmd::Plan2learn { size } => plan2learn(&size),
        Cmd::ExportP2l { dir } => export_p2l(&dir),
        Cmd::ImportNext { dir } => import_next(&dir),
        Cmd::Los { size } => los::bench(&size),
        Cmd::Dar { args } => dar::bench(&args),
        Cmd::ImportLos { dir } => los::import(&dir),
    }
}
