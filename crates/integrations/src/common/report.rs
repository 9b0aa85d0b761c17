//! The one report shape of every job. A run's [`Problem`]s name where (source, line, element,
//! field) and why; its [`Summary`] counts what it read and did, in one line format for every
//! integration, and gives the [`Outcome`] the command line turns into an exit code. Pure.

use std::fmt;

/// How much a problem matters to the run's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look; nothing was left out because of it.
    Warning,
    /// A record (or an operation) that was not imported or sent; the rest of the run went on.
    Rejected,
}

/// One problem of a run. Never carries a CPR number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// The file, dump or system it is about.
    pub source: String,
    pub line: Option<u64>,
    /// The record, as the source names it (`employee id="123"`).
    pub element: Option<String>,
    pub field: Option<String>,
    pub reason: String,
    /// The MO object it is about, when one is known (an operation MO refused). Not rendered:
    /// the reason names it where it matters.
    pub object: Option<uuid::Uuid>,
}

impl Problem {
    pub fn warning(source: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem::new(Severity::Warning, source.into(), reason.into())
    }

    pub fn rejected(source: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem::new(Severity::Rejected, source.into(), reason.into())
    }

    fn new(severity: Severity, source: String, reason: String) -> Problem {
        Problem {
            severity,
            source,
            line: None,
            element: None,
            field: None,
            reason,
            object: None,
        }
    }

    /// At `line` of the source (0 and `None` name no line).
    pub fn at(mut self, line: Option<u64>) -> Problem {
        self.line = line.filter(|l| *l > 0);
        self
    }

    pub fn element(mut self, element: impl Into<String>) -> Problem {
        self.element = Some(element.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    /// About the MO object `uuid`.
    pub fn object(mut self, uuid: uuid::Uuid) -> Problem {
        self.object = Some(uuid);
        self
    }
}

/// `[rejected: ]source[:line][: element][, field F]: reason`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Rejected {
            f.write_str("rejected: ")?;
        }
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(element) = &self.element {
            write!(f, ": {element}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How a run that finished ended; the command line maps it to the exit code (0, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Finished, but records were rejected (each reported).
    Rejected,
    /// Finished, but work is pending (address lookups that failed; tried again next run).
    Pending,
}

/// What a run read and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `opus import`, `os2sync export`, …
    pub job: &'static str,
    pub dry_run: bool,
    /// In the order of the summary line: `(3, "dumps")`, `(12, "created")`, …
    pub counts: Vec<(usize, &'static str)>,
    /// Every problem, in the order they arose.
    pub problems: Vec<Problem>,
    /// Lines about the parts of the run (one per dump or file).
    pub notes: Vec<String>,
    /// Work left for the next run, and what it is (`addresses`, `postal addresses`).
    pub pending: (usize, &'static str),
    /// Pending work of earlier runs this run finished.
    pub settled: usize,
}

impl Summary {
    pub fn new(job: &'static str, dry_run: bool) -> Summary {
        Summary {
            job,
            dry_run,
            counts: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            pending: (0, "items"),
            settled: 0,
        }
    }

    /// The number of rejected records and operations.
    pub fn rejected(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Rejected)
            .count()
    }

    pub fn outcome(&self) -> Outcome {
        if self.pending.0 > 0 {
            Outcome::Pending
        } else if self.rejected() > 0 {
            Outcome::Rejected
        } else {
            Outcome::Ok
        }
    }

    /// `job[ (dry run, nothing written)]: 3 dumps, 12 created, …, 1 rejected`.
    pub fn line(&self) -> String {
        let mut parts: Vec<String> = self
            .counts
            .iter()
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        parts.push(format!("{} rejected", self.rejected()));
        format!(
            "{}{}: {}",
            self.job,
            if self.dry_run {
                " (dry run, nothing written)"
            } else {
                ""
            },
            parts.join(", ")
        )
    }

    /// The line about pending work of earlier runs this run settled, if any.
    pub fn settled_line(&self) -> Option<String> {
        (self.settled > 0).then(|| {
            format!(
                "{}: {} pending {} of earlier runs settled",
                self.job, self.settled, self.pending.1
            )
        })
    }

    /// The line about work left for the next run, if any.
    pub fn pending_line(&self) -> Option<String> {
        (self.pending.0 > 0).then(|| {
            format!(
                "{}: {} {} pending (the address register failed); they are looked up again next run",
                self.job, self.pending.0, self.pending.1
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_where_and_why() {
        let p = Problem::rejected("ZLPE20240101220000_delta.xml", "not a date")
            .at(Some(12))
            .element("employee id=\"10001\"")
            .field("entryDate");
        assert_eq!(
            p.to_string(),
            "rejected: ZLPE20240101220000_delta.xml:12: employee id=\"10001\", field entryDate: not a date"
        );
        assert_eq!(
            Problem::warning("Org_ret.csv", "no name")
                .at(Some(0))
                .to_string(),
            "Org_ret.csv: no name"
        );
    }

    #[test]
    fn the_summary_counts_rejections_and_gives_the_outcome() {
        let mut s = Summary::new("los import", true);
        s.counts = vec![(2, "files"), (5, "created")];
        assert_eq!(s.outcome(), Outcome::Ok);
        s.problems.push(Problem::warning("a.csv", "odd"));
        s.problems
            .push(Problem::rejected("a.csv", "bad").at(Some(3)));
        assert_eq!(
            s.line(),
            "los import (dry run, nothing written): 2 files, 5 created, 1 rejected"
        );
        assert_eq!(s.outcome(), Outcome::Rejected);
        s.pending = (4, "postal addresses");
        assert_eq!(s.outcome(), Outcome::Pending);
        assert_eq!(
            s.pending_line().unwrap(),
            "los import: 4 postal addresses pending (the address register failed); they are looked up again next run"
        );
        assert_eq!(s.settled_line(), None);
    }
}
