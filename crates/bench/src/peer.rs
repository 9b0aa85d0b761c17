//! `dipex-bench os2mo-peer`: the OPUS import of synthetic data into a real OS2mo (the peer at
//! `OS2MO_URL`, `session: $OS2MO_SESSION`), first import then daily diffs: writes per second, and
//! the CPU time OS2mo (its uvicorn processes) and PostgreSQL spent meanwhile, read from
//! `/proc/<pid>/stat` of the processes under the peer's pid files (`$OS2MO_PEER_ROOT/run/os2mo.pid`,
//! `$OS2MO_PEER_ROOT/pgdata/postmaster.pid`) and their children. "Saturated" compares the
//! import's wall time with the server's CPU seconds divided by its cores (`--server-cores`): a
//! server kept busy all the time gives 1.0.

use anyhow::{Context, Result};
use dipex_backend::os2mo::{Auth, Config as MoConfig};
use dipex_integrations::dar::OfflineRegister;
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct PeerArgs {
    #[arg(long, default_value_t = 60)]
    units: usize,
    #[arg(long, default_value_t = 1000)]
    employees: usize,
    #[arg(long, default_value_t = 2)]
    days: usize,
    /// Mutations per request
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Write requests in flight
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The cores the server may use (default: this machine's)
    #[arg(long)]
    server_cores: Option<f64>,
    /// Keep the generated data here instead of a temporary folder
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the synthetic data (default: this process's id); the same seed gives the same
    /// data, so runs with other settings can be compared
    #[arg(long)]
    seed: Option<u64>,
}

/// CPU seconds (user + system) per process of a set of process trees.
fn cpu_of(roots: &[u32]) -> HashMap<u32, f64> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut cpu: HashMap<u32, f64> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return cpu;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces: fields start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] = state, f[1] = ppid, f[11] = utime, f[12] = stime (clock ticks of 1/100 s).
        let (Some(ppid), Some(ut), Some(st)) = (
            f.get(1).and_then(|v| v.parse().ok()),
            f.get(11).and_then(|v| v.parse::<f64>().ok()),
            f.get(12).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        parent.insert(pid, ppid);
        cpu.insert(pid, (ut + st) / 100.0);
    }
    let in_tree = |mut p: u32| {
        for _ in 0..64 {
            if roots.contains(&p) {
                return true;
            }
            match parent.get(&p) {
                Some(&pp) if pp > 1 => p = pp,
                _ => return false,
            }
        }
        false
    };
    cpu.retain(|pid, _| in_tree(*pid));
    cpu
}

fn pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// CPU seconds the processes used between two samples (processes started since count whole).
fn used(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, a)| a - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

pub fn bench(a: &PeerArgs) -> Result<()> {
    let url = std::env::var("OS2MO_URL")
        .context("OS2MO_URL is not set (source the peer's run/peer.env)")?;
    let session = std::env::var("OS2MO_SESSION").context("OS2MO_SESSION is not set")?;
    let root = PathBuf::from(
        std::env::var("OS2MO_PEER_ROOT").unwrap_or_else(|_| "/tmp/os2mo-peer".into()),
    );
    let os2mo_pid = pid_file(&root.join("run/os2mo.pid"));
    let pg_pid = pid_file(&root.join("pgdata/postmaster.pid"));
    if os2mo_pid.is_none() || pg_pid.is_none() {
        eprintln!(
            "warning: no pid files under {} (set OS2MO_PEER_ROOT); server CPU is not measured",
            root.display()
        );
    }
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("dipex-bench-peer-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let size = crate::Size {
        units: a.units,
        employees: a.employees,
        days: a.days,
        seed: a.seed.unwrap_or(std::process::id() as u64),
    };
    crate::generate(&size, &dir)?;
    let cfg = Config::new("Benchby Kommune");
    let mut mc = MoConfig::new(&url, Auth::Session(session));
    mc.batch_size = a.batch;
    mc.write_concurrency = a.concurrency;
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
    let cores = a
        .server_cores
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64));
    println!(
        "OPUS import of {} units / {} employments into the OS2mo at {url} ({} mutations per request, {} requests in flight; server cores {cores})",
        a.units, a.employees, a.batch, a.concurrency
    );
    println!(
        "{:<13} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10}",
        "step",
        "wall (s)",
        "writes",
        "writes/s",
        "requests",
        "MO cpu",
        "PG cpu",
        "dipex cpu",
        "saturated"
    );
    let self_cpu = || cpu_of(&[std::process::id()]).values().sum::<f64>();
    for day in 0..a.days {
        let (mo0, pg0) = (
            cpu_of(&os2mo_pid.into_iter().collect::<Vec<_>>()),
            cpu_of(&pg_pid.into_iter().collect::<Vec<_>>()),
        );
        let me0 = self_cpu();
        let req0 = mo.requests();
        let t = Instant::now();
        let r = run::import(
            &mut mo,
            Some(&mut db),
            &job,
            &mut crate::BenchEnv,
            &dumps,
            Mode::Next,
            &mut |_| {},
        )?;
        let secs = t.elapsed().as_secs_f64();
        let (mo1, pg1) = (
            cpu_of(&os2mo_pid.into_iter().collect::<Vec<_>>()),
            cpu_of(&pg_pid.into_iter().collect::<Vec<_>>()),
        );
        let me = self_cpu() - me0;
        let (mo_cpu, pg_cpu) = (used(&mo0, &mo1), used(&pg0, &pg1));
        let c = r.counts();
        let writes = c.created + c.updated + c.terminated + c.deleted;
        let step = if day == 0 {
            "first import".to_string()
        } else {
            format!("diff day {day}")
        };
        println!(
            "{step:<13} {secs:>8.1} {writes:>7} {:>8.1} {:>9} {mo_cpu:>8.1} {pg_cpu:>8.1} {me:>9.1} {:>10.2}",
            writes as f64 / secs,
            mo.requests() - req0,
            (mo_cpu + pg_cpu) / cores / secs,
        );
        if r.rejected() > 0 {
            println!("  ({} records rejected)", r.rejected());
            // The renderings name file, line, element and reason; never a CPR number.
            for d in &r.dumps {
                for rej in &d.rejected {
                    println!("  {rej}");
                }
                for m in &d.refused {
                    println!("  {m}");
                }
            }
        }
    }
    println!(
        "(saturated = (MO cpu + PG cpu) / server cores / wall; 1.0 = the server busy all the time, \
         0.8 = the issue's target of wall <= 1.25 x CPU / cores)"
    );
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
