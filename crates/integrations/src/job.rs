//! The one shape of a job, shared by every integration (DESIGN.md §2).
//!
//! An **import** runs its input as units (an OPUS dump, a LOS file, the seed, the pending
//! address lookups of earlier runs) through [`import`]. For each unit the connector maps
//! ([`Import::map`]: parse → read current MO → lookups → map to facts), the driver reconciles
//! the facts with what MO holds and applies the plan in one call (or, in a dry run, only plans
//! it), and only then does the connector commit the unit's state ([`Import::commit`]: run
//! history, digests, pending lookups). When every unit went through, the connector commits the
//! run's state ([`Import::finish`]: LOS's state file). A unit that fails stops the run; the
//! error names the units imported before it ([`Import::after_imported`], exit code 3).
//!
//! An **export** runs through [`export`]: read MO → the texts of the DAR addresses the
//! snapshot names → map (pure) → sink (files, an upload, requests).
//!
//! Only this module reconciles and applies plans (`layering_tests::only_the_driver_writes`).

use crate::common::env::Env;
use crate::dar::{AddressRegister, DarError};
use dipex_backend::{Backend, BackendError, Refused, Registration};
use dipex_model::plan::Counts;
use dipex_model::{Fact, Object, Plan, reconcile};
use std::collections::HashMap;
use uuid::Uuid;

/// Progress of a run, for the command line's progress display.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// Unit `index` of `total` starts.
    Unit {
        index: usize,
        total: usize,
        name: &'a str,
    },
    /// A stage of the current unit starts (`parse`, `read MO`, `reconcile`, `write`, …).
    Stage(&'static str),
}

/// What a connector mapped one unit to.
pub struct Mapped<C> {
    /// What the unit's input says about MO.
    pub facts: Vec<Fact>,
    /// What MO holds of the objects the facts are about (reconcile compares with it).
    pub current: HashMap<Uuid, Object>,
    /// What the connector needs to commit the unit after the write.
    pub carry: C,
}

/// What the driver did with a unit's plan.
#[derive(Debug)]
pub struct Written {
    /// The operations planned (and, unless in a dry run, sent), by what they do; the ones MO
    /// refused are counted here too and listed in `refused`.
    pub counts: Counts,
    /// The number of operations planned.
    pub operations: usize,
    /// The plan itself: in a dry run, or when the connector keeps it ([`Import::keeps_plan`]).
    pub plan: Option<Plan>,
    /// Operations MO refused (or did not get because they depend on a refused object).
    pub refused: Vec<Refused>,
    /// Whether the plan was applied (false in a dry run).
    pub applied: bool,
}

/// One importer: what it supplies to the driver.
pub trait Import {
    /// A unit of input: the driver maps, writes and commits one at a time.
    type Unit;
    /// What `map` hands to `commit` of the same unit.
    type Carry;
    /// The report of a finished unit.
    type Done;
    type Error: From<BackendError>;

    /// The registration's actor (`dipex opus import`).
    fn actor(&self) -> &'static str;

    /// The unit's name, for progress, the registration note and error messages.
    fn name(&self, unit: &Self::Unit) -> String;

    /// Before the unit is mapped (OPUS writes its `Running` row).
    fn begin(&mut self, _unit: &Self::Unit, _env: &mut dyn Env) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Parse the unit, read what MO holds, ask the lookups and map to facts. Writes nothing.
    fn map(
        &mut self,
        backend: &dyn Backend,
        env: &mut dyn Env,
        unit: &Self::Unit,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Mapped<Self::Carry>, Self::Error>;

    /// After the plan was written (in a dry run: planned): advance the unit's state, report it.
    fn commit(
        &mut self,
        unit: &Self::Unit,
        carry: Self::Carry,
        written: Written,
        env: &mut dyn Env,
    ) -> Result<Self::Done, Self::Error>;

    /// The unit failed with nothing of it written: undo what `begin` did.
    fn abandon(&mut self, _unit: &Self::Unit) -> Result<(), Self::Error> {
        Ok(())
    }

    /// When every unit went through (not in a dry run): advance the run's state.
    fn finish(&mut self, _done: &[Self::Done]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Whether the plan of a written unit is kept in [`Written::plan`] (small plans only: the
    /// driver copies it before the write).
    fn keeps_plan(&self) -> bool {
        false
    }

    /// The name of a finished unit's input, when it counts as imported input (an error later in
    /// the run names it).
    fn imported(&self, done: &Self::Done) -> Option<String>;

    /// What the units are called in an error message (`dumps`, `files`).
    const UNITS: &'static str;

    /// What a re-run does after a failure (`continues with`: then the failed unit's name).
    const RERUN: &'static str;

    /// Whether part of the work behind `error` was written.
    fn partly_applied(error: &Self::Error) -> bool;

    /// The connector's error for a unit that failed after earlier units were written.
    fn after_imported(error: AfterImported<Self::Error>) -> Self::Error;
}

/// An import whose unit `failed` failed after the units `imported` were written (exit code 3):
/// `<error>; the dumps before it were imported: A, B (a re-run continues with C)`.
#[derive(Debug)]
pub struct AfterImported<E> {
    pub units: &'static str,
    pub rerun: &'static str,
    pub imported: Vec<String>,
    pub failed: String,
    /// Not a `source()`: the message shows it, and error chains are printed once.
    pub error: Box<E>,
}

impl<E: std::fmt::Display> std::fmt::Display for AfterImported<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; the {} before it were imported: {} (a re-run {} {})",
            self.error,
            self.units,
            self.imported.join(", "),
            self.rerun,
            self.failed
        )
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for AfterImported<E> {}

/// Run `units` through `importer`, oldest first: map, reconcile, apply (unless `dry_run`),
/// commit; then the run's state. State advances only after the write it records succeeded.
pub fn import<I: Import>(
    importer: &mut I,
    backend: &mut dyn Backend,
    env: &mut dyn Env,
    units: &[I::Unit],
    dry_run: bool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<I::Done>, I::Error> {
    let mut done: Vec<I::Done> = Vec::with_capacity(units.len());
    let total = units.len();
    for (index, unit) in units.iter().enumerate() {
        let name = importer.name(unit);
        events(Event::Unit {
            index,
            total,
            name: &name,
        });
        match unit_through(importer, backend, env, unit, &name, dry_run, events) {
            Ok(d) => done.push(d),
            Err((e, wrote)) => {
                let mut imported: Vec<String> = if dry_run {
                    Vec::new()
                } else {
                    done.iter().filter_map(|d| importer.imported(d)).collect()
                };
                if wrote {
                    // Its plan was written, and committing its state failed.
                    imported.push(name.clone());
                }
                if imported.is_empty() || I::partly_applied(&e) {
                    return Err(e);
                }
                return Err(I::after_imported(AfterImported {
                    units: I::UNITS,
                    rerun: I::RERUN,
                    imported,
                    failed: name,
                    error: Box::new(e),
                }));
            }
        }
    }
    if !dry_run {
        importer.finish(&done)?;
    }
    Ok(done)
}

/// One unit: begin, map, reconcile, write, commit. On failure: the error, and whether the
/// unit's plan was written (the commit of its state failed).
fn unit_through<I: Import>(
    importer: &mut I,
    backend: &mut dyn Backend,
    env: &mut dyn Env,
    unit: &I::Unit,
    name: &str,
    dry_run: bool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<I::Done, (I::Error, bool)> {
    importer.begin(unit, env).map_err(|e| (e, false))?;
    let written = (|| {
        let Mapped {
            facts,
            current,
            carry,
        } = importer.map(&*backend, env, unit, events)?;
        events(Event::Stage("reconcile"));
        let plan = reconcile(facts, &current);
        drop(current);
        let written = write(
            backend,
            plan,
            dry_run,
            importer.keeps_plan(),
            &Registration {
                at: env.timestamp(),
                actor: importer.actor().into(),
                note: name.to_string(),
            },
            events,
        )?;
        Ok((carry, written))
    })();
    match written {
        Ok((carry, written)) => {
            let wrote = written.applied && written.operations > 0;
            events(Event::Stage("commit"));
            importer
                .commit(unit, carry, written, env)
                .map_err(|e| (e, wrote))
        }
        Err(e) => {
            // The unit's own state did not advance; a plan partly written to OS2mo is planned
            // again against what OS2mo holds by the re-run.
            importer.abandon(unit).map_err(|e| (e, false))?;
            Err((e, false))
        }
    }
}

/// Apply `plan` (or only count it in a dry run).
fn write(
    backend: &mut dyn Backend,
    plan: Plan,
    dry_run: bool,
    keep: bool,
    reg: &Registration,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Written, BackendError> {
    let counts = plan.counts();
    let operations = plan.len();
    if dry_run {
        return Ok(Written {
            counts,
            operations,
            plan: Some(plan),
            refused: Vec::new(),
            applied: false,
        });
    }
    let kept = keep.then(|| plan.clone());
    let refused = if plan.is_empty() {
        Vec::new()
    } else {
        events(Event::Stage("write"));
        backend.apply(plan, reg)?.refused
    };
    Ok(Written {
        counts,
        operations,
        plan: kept,
        refused,
        applied: true,
    })
}

/// One exporter: what it supplies to the driver.
pub trait Export {
    /// What is read from MO.
    type Snapshot;
    /// What the mapping makes of it (tables, payloads).
    type Output;
    type Report;
    type Error: From<BackendError> + From<DarError>;

    /// Read what the export needs from MO.
    fn read(&mut self, backend: &dyn Backend) -> Result<Self::Snapshot, Self::Error>;

    /// The DAR addresses whose texts the mapping needs.
    fn addresses(&self, snapshot: &Self::Snapshot) -> Vec<Uuid>;

    /// Map the snapshot (pure), with the texts of its DAR addresses.
    fn map(
        &mut self,
        snapshot: Self::Snapshot,
        texts: &HashMap<Uuid, String>,
    ) -> Result<Self::Output, Self::Error>;

    /// Put the output where it goes (files, an upload, requests), all of it or none where the
    /// sink allows.
    fn sink(&mut self, output: Self::Output) -> Result<Self::Report, Self::Error>;
}

/// Read MO, look up the address texts, map, sink.
pub fn export<E: Export>(
    exporter: &mut E,
    backend: &dyn Backend,
    register: &dyn AddressRegister,
) -> Result<E::Report, E::Error> {
    let snapshot = exporter.read(backend)?;
    let texts = crate::dar::texts_for_export(backend, register, exporter.addresses(&snapshot))?;
    let output = exporter.map(snapshot, &texts)?;
    exporter.sink(output)
}
