//! `dipex plan2learn …`: the five CSV files for plan2learn, and shipping them over FTPS.

use crate::Outcome;
use crate::context::{Context, today};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use dipex_integrations::plan2learn::{self, Config};
use dipex_integrations::transport::ftp::{self, FtpConfig};
use dipex_model::Date;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Plan2learnCommand {
    /// Write bruger.csv, organisation.csv, engagement.csv, stillingskode.csv and leder.csv
    Export {
        /// The folder to write the files into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// "Today" for the export (default: today in Europe/Copenhagen)
        #[arg(long, value_name = "DATE")]
        today: Option<Date>,
        /// Ship the files to plan2learn over FTPS afterwards
        #[arg(long)]
        ship: bool,
    },
    /// Upload the five files of DIR to plan2learn over explicit FTPS
    Ship { dir: PathBuf },
}

pub fn run(ctx: &Context, c: Plan2learnCommand) -> Result<Outcome> {
    match c {
        Plan2learnCommand::Export {
            out,
            today: day,
            ship: and_ship,
        } => {
            let outcome = export(ctx, &out, day.unwrap_or_else(today))?;
            if and_ship {
                ship(ctx, &out)?;
            }
            Ok(outcome)
        }
        Plan2learnCommand::Ship { dir } => {
            ship(ctx, &dir)?;
            Ok(Outcome::Ok)
        }
    }
}

fn export(ctx: &Context, out: &Path, today: Date) -> Result<Outcome> {
    let cfg = Config::from_settings(&ctx.settings)?;
    let backend = ctx.backend()?;
    let (register, what) = crate::dar::open(ctx, false)?;
    tracing::info!(
        "plan2learn export for {today} from {}; addresses from {what}",
        backend.describe()
    );
    let report = plan2learn::run::run(&*backend, &register, &cfg, today, out)?;
    register.flush()?;
    tracing::info!("plan2learn export: written to {}", out.display());
    Ok(crate::finish(&report.summary()))
}

/// The FTPS connection from `exporters.plan2learn.*`.
/// `dipex check`'s line for plan2learn's upload: connect, log in and list the target folder
/// over FTPS, as `ship` would.
pub fn check(ctx: &Context) -> Result<String> {
    let cfg = ftps(ctx)?;
    let source = dipex_integrations::transport::source::Source::Ftp(cfg);
    let files = source.list()?;
    Ok(format!(
        "{}: logged in, {} files in the target folder",
        source.describe(),
        files.len()
    ))
}

fn ftps(ctx: &Context) -> Result<FtpConfig> {
    Ok(ctx.settings.plan2learn.upload()?)
}

fn ship(ctx: &Context, dir: &Path) -> Result<()> {
    let cfg = ftps(ctx)?;
    let mut files = Vec::new();
    for name in plan2learn::FILES {
        let path = dir.join(name);
        if !path.is_file() {
            bail!(
                "{}: missing; run `dipex plan2learn export --out {}` first",
                path.display(),
                dir.display()
            );
        }
        files.push((path, name.to_string()));
    }
    // All five or none: the error names protocol, server, step and file, and what the server
    // holds now.
    ftp::put_all(&cfg, &files).with_context(|| format!("shipping {}", dir.display()))?;
    tracing::info!(
        "plan2learn ship: {} files put in place on {}:{}",
        files.len(),
        cfg.host,
        cfg.port
    );
    Ok(())
}
