//! Errors are printed once: the CLI prints a failure as anyhow's `{:#}` chain (each message,
//! then each `source()`), so an error whose message shows its cause must not also give it as
//! `source()`. Representative errors of every crate, wrapped as the commands wrap them.

use dipex_backend::BackendError;
use dipex_integrations::dar::DarError;
use dipex_integrations::opus::cprmap::CprMapError;
use dipex_integrations::opus::files::FilesError;
use dipex_integrations::opus::parse::{ParseError, ParseErrorKind};
use dipex_integrations::opus::run::RunError as OpusRunError;
use dipex_integrations::opus::state::StateError;
use dipex_integrations::os2sync::run::RunError as Os2syncRunError;
use dipex_integrations::transport::source::SourceError;
use std::sync::Arc;

const IO_CAUSE: &str = "disk on fire";
const SQL_CAUSE: &str = "Invalid column name: kolonne_x";

fn io() -> std::io::Error {
    std::io::Error::other(IO_CAUSE)
}

fn sql() -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName("kolonne_x".into())
}

/// The line the CLI prints, and how often `cause` is in it.
fn printed(e: impl Into<anyhow::Error>, cause: &str) -> (String, usize) {
    let line = format!("{:#}", e.into());
    let n = line.matches(cause).count();
    (line, n)
}

#[test]
fn every_cause_is_printed_exactly_once() {
    let cases: Vec<(anyhow::Error, &str, &str)> = vec![
        (
            StateError::Sqlite {
                path: "run_db.sqlite".into(),
                error: sql(),
            }
            .into(),
            SQL_CAUSE,
            "run database run_db.sqlite: Invalid column name: kolonne_x",
        ),
        (
            OpusRunError::State(StateError::Sqlite {
                path: "run_db.sqlite".into(),
                error: sql(),
            })
            .into(),
            SQL_CAUSE,
            "run database run_db.sqlite: Invalid column name: kolonne_x",
        ),
        (
            FilesError::List {
                path: "/dumps".into(),
                error: io(),
            }
            .into(),
            IO_CAUSE,
            "cannot list OPUS dumps in /dumps: disk on fire",
        ),
        (
            FilesError::Fetch {
                name: "ZLPE20200101220000_delta.xml".into(),
                source_name: "smb://share".into(),
                error: Box::new(SourceError::Unsupported("no such share".into())),
            }
            .into(),
            "no such share",
            "cannot download OPUS dump ZLPE20200101220000_delta.xml from smb://share: no such share",
        ),
        (
            CprMapError::Io {
                file: "map.csv".into(),
                error: io(),
            }
            .into(),
            IO_CAUSE,
            "map.csv: disk on fire",
        ),
        (
            DarError::Io {
                path: "adresser.csv".into(),
                error: io(),
            }
            .into(),
            IO_CAUSE,
            "cannot read DAR address file adresser.csv: disk on fire",
        ),
        (
            Os2syncRunError::from(DarError::Io {
                path: "adresser.csv".into(),
                error: io(),
            })
            .into(),
            IO_CAUSE,
            "the address register: cannot read DAR address file adresser.csv: disk on fire",
        ),
        (
            ParseError {
                source: "dump.xml".into(),
                line: 3,
                column: 7,
                element: None,
                field: None,
                kind: ParseErrorKind::Io(Arc::new(io())),
            }
            .into(),
            IO_CAUSE,
            "dump.xml:3:7: I/O error: disk on fire",
        ),
        (
            BackendError::Sqlite {
                path: "store.sqlite3".into(),
                error: sql(),
            }
            .into(),
            SQL_CAUSE,
            "store store.sqlite3: Invalid column name: kolonne_x",
        ),
    ];
    for (e, cause, expected) in cases {
        let (line, n) = printed(e, cause);
        assert_eq!(line, expected);
        assert_eq!(n, 1, "{line}");
    }
}
