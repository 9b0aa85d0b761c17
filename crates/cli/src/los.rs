//! `dipex los import`: the Aarhus LOS CSV files from a folder, FTP/FTPS or SFTP into MO.

use crate::Outcome;
use crate::context::{Context, SystemEnv};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use dipex_integrations::los::{run, uuids};
use dipex_integrations::settings::Settings;
use dipex_integrations::transport::ftp::{FtpConfig, FtpSecurity};
use dipex_integrations::transport::sftp::{HostKeyCheck, SftpAuth, SftpConfig};
use dipex_integrations::transport::source::Source;
use dipex_model::Date;
use std::time::Duration;
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

fn require<'a>(v: Option<&'a str>, key: &str) -> Result<&'a str> {
    v.filter(|s| !s.trim().is_empty())
        .with_context(|| format!("setting integrations.aarhus_los.{key} is required"))
}

/// Where the files are: a local folder, SFTP (with a key) or FTP/FTPS.
fn source(s: &Settings) -> Result<Source> {
    if let Some(dir) = &s.los.csv_folder {
        return Ok(Source::Local(dir.clone()));
    }
    let host = require(s.los.ftp_url.as_deref(), "ftp_url")?.to_string();
    let user = require(s.los.ftp_user.as_deref(), "ftp_user")?.to_string();
    let password = s.los.ftp_pass.as_ref().map(|p| p.expose().to_string());
    let dir = Some(s.los.ftp_folder.clone()).filter(|d| !d.is_empty());
    if let Some(key) = &s.los.ssh_key_path {
        let passphrase = s.los.ssh_key_pass.as_ref().map(|p| p.expose().to_string());
        let auth = match password {
            Some(password) => SftpAuth::KeyThenPassword {
                path: key.clone(),
                passphrase,
                password,
            },
            None => SftpAuth::Key {
                path: key.clone(),
                passphrase,
            },
        };
        let host_keys = match (&s.los.known_hosts, s.los.insecure_host_key) {
            (Some(k), _) => HostKeyCheck::KnownHosts(k.clone()),
            (None, true) => HostKeyCheck::Insecure,
            (None, false) => bail!(
                "SFTP needs the server's host key: set integrations.aarhus_los.ftp_known_hosts to a known_hosts file \
                 (or integrations.aarhus_los.ftp_insecure_host_key to true to skip the check)"
            ),
        };
        let mut cfg = SftpConfig::new(&host, &user, auth, host_keys);
        cfg.port = s.los.ftp_port;
        cfg.dir = dir;
        return Ok(Source::Sftp(cfg));
    }
    let password = password.context("setting integrations.aarhus_los.ftp_pass is required")?;
    let security = if s.los.ftps {
        crate::context::explicit_tls(
            "integrations.aarhus_los",
            s.los.verify_tls,
            s.los.ca_file.clone(),
        )
    } else {
        FtpSecurity::Plain
    };
    let mut cfg = FtpConfig::new(&host, &user, &password, security);
    cfg.dir = dir;
    cfg.timeout = Duration::from_secs(60);
    Ok(Source::Ftp(cfg))
}

/// `dipex check`'s line for the LOS import: the source is listed for real (FTP/SFTP: connect,
/// log in, list) and the files an import would read now are counted.
pub fn check(ctx: &Context) -> Result<String> {
    let s = &ctx.settings;
    let state_file = s
        .los
        .state_file
        .clone()
        .context("setting integrations.aarhus_los.state_file is required")?;
    let source = source(s)?;
    Ok(run::check(&source, &state_file)?)
}

pub fn run(ctx: &Context, c: LosCommand) -> Result<Outcome> {
    let LosCommand::Import {
        dry_run,
        from_date,
        azid_it_system_uuid,
    } = c;
    let s = &ctx.settings;
    let state_file = s
        .los
        .state_file
        .clone()
        .context("setting integrations.aarhus_los.state_file is required")?;
    let source = source(s)?;
    let azid_system = match (azid_it_system_uuid, &s.los.azid_it_system) {
        (Some(u), _) => u,
        (None, Some(u)) => Uuid::parse_str(u.trim()).with_context(|| {
            format!("setting integrations.aarhus_los.azid_it_system_uuid: {u:?} is not a uuid")
        })?,
        (None, None) => Uuid::parse_str(uuids::AZID_SYSTEM).expect("a uuid"),
    };
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
    if !dry_run {
        register.flush()?;
    }
    crate::dar::log_stats(&register);
    let report = report?;
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
