//! `dipex-bench dar`: the OPUS first import with the address register on loopback — the offline
//! register (the import's own time), a healthy Adressevælger answering after a latency, one that
//! refuses connections, and one that hangs. Reports wall times against the floor
//! `distinct addresses / connections × latency`.

use crate::{BenchEnv, Size, generate};
use anyhow::Result;
use dipex_backend::Store;
use dipex_integrations::dar::{self, AddressRegister, DarSettings, OfflineRegister, Protocol};
use dipex_integrations::opus::files::list_dumps;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_testkit::dar::{DarServer, Mode as ServerMode};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct DarArgs {
    #[command(flatten)]
    size: Size,
    /// The healthy register answers every request after this many milliseconds
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Concurrent connections to the register (`integrations.dar.connections`)
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Request timeout in seconds (`integrations.dar.timeout_seconds`), which is what a hanging
    /// register costs
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
}

/// One first import of the dumps in `dir` into a fresh store named `name`, with `register`:
/// wall seconds and the number of addresses left pending.
fn first_import(dir: &Path, name: &str, register: &dyn AddressRegister) -> Result<(f64, usize)> {
    let cfg = Config::new("Benchby Kommune");
    let cpr_map = HashMap::new();
    let job = Job {
        cfg: &cfg,
        register,
        cpr_map: &cpr_map,
        ad: None,
        dry_run: false,
        only: None,
    };
    let (dumps, _) = list_dumps(&dir.join("dumps"))?;
    let mut store = Store::open(&dir.join(format!("{name}.sqlite3")))?;
    let mut db = RunDb::open(&dir.join(format!("{name}-run_db.sqlite")))?;
    let t = Instant::now();
    let r = run::import(
        &mut store,
        Some(&mut db),
        &job,
        &mut BenchEnv,
        &dumps,
        Mode::Next,
        &mut |_| {},
    )?;
    Ok((t.elapsed().as_secs_f64(), r.pending))
}

fn settings(url: &str, a: &DarArgs) -> DarSettings {
    DarSettings {
        protocol: Some(Protocol::Adressevaelger),
        base_url: Some(url.to_string()),
        timeout: Duration::from_secs(a.timeout_seconds),
        connections: a.connections,
        ..DarSettings::default()
    }
}

pub fn bench(a: &DarArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dipex-bench-dar-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    generate(
        &Size {
            days: 1,
            ..a.size.clone()
        },
        &dir,
    )?;
    println!(
        "OPUS first import of {} units / {} employments, address register on loopback ({} connections, timeout {} s)",
        a.size.units, a.size.employees, a.connections, a.timeout_seconds
    );
    let offline = OfflineRegister::load(dir.join("adresser.csv"))?;
    let (own, _) = first_import(&dir, "offline", &offline)?;
    println!("{:<34} {own:>8.2} s", "offline register (import's own)");

    let csv = std::fs::read(dir.join("adresser.csv"))?;
    let server = DarServer::from_csv(&csv)?;
    server.set_latency(Duration::from_millis(a.latency_ms));
    let register = dar::open(
        &settings(&server.url(), a),
        &dir.join("dar-healthy.sqlite3"),
        false,
    )?;
    let (secs, pending) = first_import(&dir, "healthy", &register)?;
    let distinct = server.washes();
    let floor = distinct as f64 / a.connections as f64 * a.latency_ms as f64 / 1000.0;
    println!(
        "{:<34} {secs:>8.2} s  ({distinct} distinct addresses asked, floor {floor:.2} s + own {own:.2} s = {:.2} s, ratio {:.2}; {pending} pending; at most {} requests at once)",
        format!("healthy, {} ms latency", a.latency_ms),
        floor + own,
        secs / (floor + own),
        server.max_concurrent()
    );
    drop(register);

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://127.0.0.1:{}", l.local_addr()?.port())
    };
    let register = dar::open(&settings(&dead, a), &dir.join("dar-dead.sqlite3"), false)?;
    let (secs, pending) = first_import(&dir, "dead", &register)?;
    println!(
        "{:<34} {secs:>8.2} s  ({pending} addresses pending; {})",
        "dead (connections refused)",
        register.inner().tripped().unwrap_or_default()
    );
    drop(register);

    let hanging = DarServer::from_csv(&csv)?;
    hanging.set_mode(ServerMode::Hang);
    let register = dar::open(
        &settings(&hanging.url(), a),
        &dir.join("dar-hang.sqlite3"),
        false,
    )?;
    let (secs, pending) = first_import(&dir, "hanging", &register)?;
    println!(
        "{:<34} {secs:>8.2} s  ({pending} addresses pending; {} requests reached it; {})",
        "hanging (never answers)",
        hanging.requests(),
        register.inner().tripped().unwrap_or_default()
    );
    drop(register);
    drop(hanging);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
