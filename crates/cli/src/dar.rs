//! The address register as every command gets it: the settings (`integrations.dar.*`), the
//! register's own state database, the legacy cache copied over once, and `dipex check`'s probe.

use crate::context::Context;
use anyhow::{Context as _, Result, bail};
use dipex_integrations::dar::{self, AddressRegister, DarSettings, Protocol, Register};
use std::path::PathBuf;
use std::time::Duration;

/// The register's settings.
pub fn settings(ctx: &Context) -> Result<DarSettings> {
    let s = &ctx.settings;
    let protocol = match s.dar.protocol.as_deref() {
        None => None,
        Some(p) => Some(Protocol::parse(p).with_context(|| {
            format!("setting integrations.dar.protocol: {p:?} is neither \"adressevaelger\" nor \"dawa\"")
        })?),
    };
    if s.dar.connections == 0 {
        bail!("setting integrations.dar.connections must be at least 1");
    }
    Ok(DarSettings {
        protocol,
        base_url: s.dar.base_url.clone(),
        address_file: s.dar.address_file.clone(),
        timeout: Duration::from_secs(s.dar.timeout_seconds.max(1)),
        token: s.dar.token.as_ref().map(|t| t.expose().to_string()),
        connections: s.dar.connections,
        max_failures: s.dar.max_failures,
        time_budget: Duration::from_secs(s.dar.time_budget_seconds),
    })
}

/// The register's state database: `integrations.dar.state_db`, else `dar.sqlite3` beside the
/// OPUS run database, else beside the LOS state file, else beside the embedded store.
pub fn state_path(ctx: &Context) -> PathBuf {
    let s = &ctx.settings;
    if let Some(p) = &s.dar.state_db {
        return p.clone();
    }
    let beside = s
        .opus
        .run_db
        .clone()
        .or_else(|| s.los.state_file.clone())
        .unwrap_or_else(|| ctx.store_path());
    beside.with_file_name("dar.sqlite3")
}

/// Files that held the cache before the register had its own database.
fn legacy_paths(ctx: &Context) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ctx.settings.opus.run_db.iter().cloned().collect();
    out.push(ctx.store_path().with_file_name("dar_cache.sqlite3"));
    out
}

/// The register the settings ask for, with its state database, and a description of it.
/// Read-only (dry runs) never creates or changes the file.
pub fn open(ctx: &Context, read_only: bool) -> Result<(Register, String)> {
    let settings = settings(ctx)?;
    if settings.names_closed_dawa() {
        tracing::warn!(
            "integrations.dar.base_url names the public DAWA, which closed in 2026: using Adressevælger at {} instead (remove the setting to silence this)",
            dar::DEFAULT_BASE_URL
        );
    }
    let path = state_path(ctx);
    let fresh = !path.exists();
    let register = dar::open(&settings, &path, read_only)?;
    if fresh && !read_only {
        for legacy in legacy_paths(ctx) {
            let copied = register.import_legacy(&legacy)?;
            if copied > 0 {
                tracing::info!(
                    "address register: copied {copied} cached answers from {} into {}",
                    legacy.display(),
                    path.display()
                );
            }
        }
    }
    Ok((register, settings.describe()))
}

/// A line about the register after a run: questions asked, and why it stopped being asked.
pub fn log_stats(register: &Register) {
    let (hits, misses, _) = register.stats();
    tracing::info!("address register: {hits} answers from the cache, {misses} asked");
    if let Some(reason) = register.inner().tripped() {
        tracing::warn!("address register stopped for this run: {reason}");
    }
}

/// `dipex check`'s line: the register asked for real.
pub fn check(ctx: &Context) -> Result<String> {
    let settings = settings(ctx)?;
    let register = dar::register_from_settings(&settings)?;
    let answer = register
        .probe()
        .with_context(|| format!("{} does not answer", settings.describe()))?;
    Ok(format!("{answer}; state {}", state_path(ctx).display()))
}
