//! `dipex los import`: the Aarhus LOS CSV files from a folder, FTP/FTPS or SFTP into MO.

use crate::Outcome;
use crate::context::{Context, SystemEnv};
use anyhow::Result;
use clap::Subcommand;
use dipex_integrations::los::run;
use dipex_model::Date;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum LosCommand {
    /// Import the files that arrived since the last successful run
    Import {
        /// Show what would change; write nothing (not even the state file)
        #[arg(long)]
        dry_run: bool,
        /// Import files modified since this day (the state file is not read)
        #[arg(long, value_name = "DATE")]
        from_date: Option<Date>,
        /// The IT system of the `AZID` column (overrides
        /// integrations.aarhus_los.azid_it_system_uuid; not the default: then it is not seeded)
        #[arg(long, value_name = "UUID")]
        azid_it_system_uuid: Option<Uuid>,
    },
}

/// `dipex check`'s line for the LOS import: the source is listed for real (FTP/SFTP: connect,
/// log in, list) and the files an import would read now are counted.
pub fn check(ctx: &Context) -> Result<String> {
    let s = &ctx.settings.los;
    Ok(run::check(&s.source()?, &s.state_file()?)?)
}

pub fn run(ctx: &Context, c: LosCommand) -> Result<Outcome> {
    let LosCommand::Import {
        dry_run,
        from_date,
        azid_it_system_uuid,
    } = c;
    let s = &ctx.settings.los;
    let state_file = s.state_file()?;
    let source = s.source()?;
    let azid_system = s.azid_system(azid_it_system_uuid)?;
    let mut backend = ctx.backend()?;
    let (register, what) = crate::dar::open(ctx, dry_run)?;
    tracing::info!(
        "los import from {} into {}; addresses from {what}",
        source.describe(),
        backend.describe()
    );
    let job = run::Job {
        source: &source,
        register: &register,
        state_file: &state_file,
        azid_system,
        from_date,
        dry_run,
    };
    let report = run::import(&mut *backend, &job, &mut SystemEnv);
    crate::dar::log_stats(&register);
    let report = report.inspect_err(|_| register.discard())?;
    // The register's state (its cache) advances only after the import succeeded; a failed
    // run discards the answers it got (the next run asks again).
    if !dry_run {
        register.flush()?;
    }
    if dry_run {
        for op in &report.seed.ops {
            println!("{op}");
        }
        for f in &report.files {
            for op in &f.plan.ops {
                println!("{op}");
            }
        }
    }
    Ok(crate::finish(&report.summary(dry_run)))
}
