//! `dipex`: the command line. The only part of dipex that reads the environment and the clock,
//! prints, and exits. Every command ends with a one-line summary on stderr; data goes to stdout.
//! Exit codes: 0 success, 1 finished but some records were rejected (each reported; a record
//! OS2mo refuses is one) or some work is pending (address lookups that failed, counted on one
//! line), 2 failed and nothing was written, 3 failed after part of the work was applied (the
//! message names what was; a re-run continues safely).

#[cfg(test)]
mod chain_tests;
mod context;
mod dar;
mod los;
mod mo;
mod opus;
mod os2sync;
mod plan2learn;
#[cfg(test)]
mod tidy_tests;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dipex",
    version,
    about = "Moves organisation and HR data between Danish municipal systems and OS2mo"
)]
struct Cli {
    /// settings.json (default: $DIPEX_SETTINGS, else ./settings.json when it exists)
    #[arg(long, global = true, value_name = "PATH")]
    settings: Option<PathBuf>,
    /// Use the embedded store at PATH, even when `mora.base` is set
    #[arg(long, global = true, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Only warnings and errors on stderr
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// OPUS Løn XML dumps into MO
    #[command(subcommand)]
    Opus(opus::OpusCommand),
    /// Aarhus LOS CSV files into MO
    #[command(subcommand)]
    Los(los::LosCommand),
    /// OS2Sync: MO's units and users to FK Organisation
    #[command(subcommand)]
    Os2sync(os2sync::Os2syncCommand),
    /// plan2learn: five CSV files from MO, shipped over FTPS
    #[command(subcommand)]
    Plan2learn(plan2learn::Plan2learnCommand),
    /// Look at MO's data
    #[command(subcommand)]
    Mo(mo::MoCommand),
    /// The cpr→uuid mapping file
    #[command(subcommand, name = "cpr-map")]
    CprMap(mo::CprMapCommand),
    /// Check the settings, the backend and the sources
    Check,
}

/// The outcome of a command that finished (the one report shape's).
pub use dipex_integrations::common::report::Outcome;

/// Prints a finished run the one way every job does: each problem (a warning; rejected ones
/// say so), the notes on its parts, the summary line, and the lines on pending work; gives
/// the outcome for the exit code.
pub fn finish(s: &dipex_integrations::common::report::Summary) -> Outcome {
    for p in &s.problems {
        tracing::warn!("{p}");
    }
    for n in &s.notes {
        tracing::info!("{n}");
    }
    tracing::info!("{}", s.line());
    if let Some(line) = s.settled_line() {
        tracing::info!("{line}");
    }
    if let Some(line) = s.pending_line() {
        tracing::warn!("{line}");
    }
    s.outcome()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("DIPEX_LOG").unwrap_or_else(|_| {
        if cli.quiet {
            "warn".into()
        } else {
            "info".into()
        }
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    let result =
        context::Context::new(cli.settings.as_deref(), cli.store.as_deref()).and_then(|ctx| {
            match cli.command {
                Command::Opus(c) => opus::run(&ctx, c),
                Command::Los(c) => los::run(&ctx, c),
                Command::Os2sync(c) => os2sync::run(&ctx, c),
                Command::Plan2learn(c) => plan2learn::run(&ctx, c),
                Command::Mo(c) => mo::run(&ctx, c),
                Command::CprMap(c) => mo::cpr_map(&ctx, c),
                Command::Check => context::check(&ctx),
            }
        });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected | Outcome::Pending) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e:#}");
            if partly_applied(&e) {
                ExitCode::from(3)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Whether a failure came after part of the work was applied: a plan partly written to OS2mo,
/// or earlier dumps or files of the run imported (exit code 3).
fn partly_applied(e: &anyhow::Error) -> bool {
    use dipex_backend::BackendError;
    use dipex_backend::os2mo::Os2moError;
    use dipex_integrations::{los, opus};
    e.chain().any(|c| {
        c.downcast_ref::<Os2moError>()
            .is_some_and(Os2moError::partly_applied)
            || c.downcast_ref::<BackendError>()
                .is_some_and(BackendError::partly_applied)
            || c.downcast_ref::<opus::run::RunError>()
                .is_some_and(opus::run::RunError::partly_applied)
            || c.downcast_ref::<los::run::RunError>()
                .is_some_and(los::run::RunError::partly_applied)
    })
}
