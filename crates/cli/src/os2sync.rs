//! `dipex os2sync …`: MO's units and users to OS2Sync (and on to FK Organisation).

use crate::Outcome;
use crate::context::{Context, today};
use anyhow::Result;
use clap::Subcommand;
use dipex_backend::Query;
use dipex_integrations::os2sync::run::{self, Report};
use dipex_integrations::os2sync::{self, Config};
use dipex_model::{Date, Kind};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum Os2syncCommand {
    /// Bring OS2Sync in line with MO: changed units and users, and deletions
    Export {
        /// Print what would be sent; send nothing
        #[arg(long)]
        dry_run: bool,
        /// "Today" (default: today in Europe/Copenhagen)
        #[arg(long, value_name = "DATE")]
        today: Option<Date>,
    },
    /// Send one org unit
    SyncUnit {
        uuid: Uuid,
        #[arg(long)]
        dry_run: bool,
    },
    /// Send one person's users (or delete them when the person has no position)
    SyncUser {
        uuid: Uuid,
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the settings, the top unit in MO and that OS2Sync answers
    Check,
}

pub fn run(ctx: &Context, c: Os2syncCommand) -> Result<Outcome> {
    if let Os2syncCommand::Check = c {
        return check(ctx);
    }
    let cfg = Config::from_settings(&ctx.settings)?;
    let backend = ctx.backend()?;
    let (register, _) = crate::dar::open(ctx, false)?;
    let (report, dry_run) = match c {
        Os2syncCommand::Export {
            dry_run,
            today: day,
        } => (
            run::export(
                &*backend,
                &register,
                &cfg,
                day.unwrap_or_else(today),
                dry_run,
            )?,
            dry_run,
        ),
        Os2syncCommand::SyncUnit { uuid, dry_run } => (
            run::sync_unit(&*backend, &register, &cfg, today(), uuid, dry_run)?,
            dry_run,
        ),
        Os2syncCommand::SyncUser { uuid, dry_run } => (
            run::sync_user(&*backend, &register, &cfg, today(), uuid, dry_run)?,
            dry_run,
        ),
        Os2syncCommand::Check => unreachable!(),
    };
    register.flush()?;
    Ok(report_outcome(&report, dry_run))
}

fn report_outcome(r: &Report, dry_run: bool) -> Outcome {
    for line in &r.requests {
        if dry_run {
            println!("{line}");
        } else {
            tracing::debug!("{line}");
        }
    }
    crate::finish(&r.summary(dry_run))
}

/// `dipex os2sync check`: one line per check.
fn check(ctx: &Context) -> Result<Outcome> {
    let mut failed = false;
    let mut line = |ok: bool, what: &str, detail: String| {
        failed |= !ok;
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    };
    let cfg = match Config::from_settings(&ctx.settings) {
        Ok(c) => {
            line(
                true,
                "settings",
                format!("CVR {}, top unit {}, API {}", c.cvr, c.top_unit, c.api_url),
            );
            Some(c)
        }
        Err(e) => {
            line(false, "settings", e.to_string());
            None
        }
    };
    if let Some(cfg) = &cfg {
        match ctx
            .backend()
            .and_then(|b| Ok(b.read(&Query::all(Kind::OrgUnit).uuids([cfg.top_unit]).at(today()))?))
        {
            Ok(units) if !units.is_empty() => {
                let name = match &units[0].last().value {
                    dipex_model::Value::OrgUnit(u) => u.name.clone(),
                    _ => String::new(),
                };
                line(true, "top unit", format!("{} {name:?}", cfg.top_unit))
            }
            Ok(_) => line(
                false,
                "top unit",
                format!("{} is not an org unit valid today in MO", cfg.top_unit),
            ),
            Err(e) => line(false, "top unit", format!("{e:#}")),
        }
        match os2sync::run::ping(cfg) {
            Ok(job) => line(
                true,
                "OS2Sync",
                format!("{} answers (hierarchy job {job})", cfg.api_url),
            ),
            Err(e) => line(false, "OS2Sync", e.to_string()),
        }
    }
    Ok(if failed {
        Outcome::Rejected
    } else {
        Outcome::Ok
    })
}
