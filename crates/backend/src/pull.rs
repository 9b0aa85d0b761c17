//! `dipex mo pull`: mirror a remote OS2mo, all history, into the embedded store, so exporters
//! can read locally (what the upstream tools' "LoRa cache" was for). The mirror is made equal to
//! MO object by object: new objects are created, changed ones replaced, vanished ones deleted,
//! all in one transaction. A later pull is incremental: it lists every uuid (cheap) to find new
//! and deleted objects, and reads in full only the objects MO registered a change for since the
//! last pull (minus a safety margin for clock differences).

use crate::os2mo::Os2mo;
use crate::{Backend, BackendError, Query, Registration, Store};
use dipex_model::{Kind, Object, Op, Plan};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How far back an incremental pull looks before the last pull's start by default (clocks of
/// dipex's and OS2mo's servers may differ).
pub const MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// How a pull reads.
#[derive(Clone, Copy, Debug)]
pub struct PullOptions {
    /// Read every object, not only those changed since the last pull.
    pub full: bool,
    /// How far before the last pull's start changes are looked for.
    pub margin: jiff::SignedDuration,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            full: false,
            margin: MARGIN,
        }
    }
}

/// What a pull did, per kind and in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullCounts {
    /// Objects read in full from MO.
    pub read: usize,
    pub created: usize,
    pub replaced: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

impl PullCounts {
    fn add(&mut self, o: &PullCounts) {
        self.read += o.read;
        self.created += o.created;
        self.replaced += o.replaced;
        self.deleted += o.deleted;
        self.unchanged += o.unchanged;
    }
}

/// Progress of a pull, for the CLI's progress bar.
#[derive(Clone, Debug)]
pub enum PullEvent {
    /// Starting on a kind (`index` of `of`), `incremental` when only changes are read.
    Kind {
        kind: Kind,
        index: usize,
        of: usize,
        incremental: bool,
    },
    /// A kind is compared.
    Done { kind: Kind, counts: PullCounts },
    /// Writing the mirror.
    Writing { ops: usize },
}

fn meta_key(base: &str) -> String {
    format!("pull.since {base}")
}

/// The operations that make an object in the store equal to `remote`.
fn recreate(remote: Object, exists: bool, plan: &mut Plan) {
    let uuid = remote.uuid;
    if exists {
        plan.ops.push(Op::Delete {
            uuid,
            kind: remote.kind,
        });
    }
    let mut slices = remote.slices.into_iter();
    if let Some(first) = slices.next() {
        plan.ops.push(Op::Create {
            uuid,
            validity: first.validity,
            value: first.value,
        });
    }
    for s in slices {
        plan.ops.push(Op::Update {
            uuid,
            validity: s.validity,
            value: s.value,
        });
    }
}

/// Mirror `mo` into `store`. `reg.at` is the pull's start (the next incremental pull reads
/// changes from then on).
pub fn pull(
    mo: &Os2mo,
    store: &mut Store,
    reg: &Registration,
    opts: PullOptions,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PullCounts, BackendError> {
    let key = meta_key(&mo.config().base);
    let since: Option<jiff::Timestamp> = if opts.full {
        None
    } else {
        store
            .meta(&key)?
            .and_then(|s| s.parse().ok())
            .map(|t: jiff::Timestamp| t - opts.margin)
    };
    let mut plan = Plan::default();
    let mut total = PullCounts::default();
    for (index, kind) in Kind::ALL.into_iter().enumerate() {
        progress(PullEvent::Kind {
            kind,
            index,
            of: Kind::ALL.len(),
            incremental: since.is_some(),
        });
        let mut counts = PullCounts::default();
        let remote_uuids: Vec<Uuid> = if kind == Kind::Organisation {
            mo.read(&Query::all(kind))?.iter().map(|o| o.uuid).collect()
        } else {
            mo.list_uuids(kind)?
        };
        let local_uuids: HashSet<Uuid> = store.uuids(kind)?.into_iter().collect();
        let remote_set: HashSet<Uuid> = remote_uuids.iter().copied().collect();
        let to_read: Vec<Uuid> = match since {
            Some(t) if kind != Kind::Organisation => {
                let mut v: HashSet<Uuid> = mo.changed_since(kind, t)?.into_iter().collect();
                v.extend(remote_uuids.iter().filter(|u| !local_uuids.contains(u)));
                v.retain(|u| remote_set.contains(u));
                v.into_iter().collect()
            }
            _ => remote_uuids.clone(),
        };
        let remote = if to_read.is_empty() {
            Vec::new()
        } else {
            mo.read(&Query::all(kind).uuids(to_read.iter().copied()))?
        };
        let local: HashMap<Uuid, Object> = if to_read.is_empty() {
            HashMap::new()
        } else {
            store
                .read(&Query::all(kind).uuids(to_read))?
                .into_iter()
                .map(|o| (o.uuid, o))
                .collect()
        };
        counts.read = remote.len();
        for r in remote {
            match local.get(&r.uuid) {
                Some(l) if *l == r => counts.unchanged += 1,
                Some(_) => {
                    counts.replaced += 1;
                    recreate(r, true, &mut plan);
                }
                None => {
                    counts.created += 1;
                    recreate(r, false, &mut plan);
                }
            }
        }
        for gone in local_uuids.iter().filter(|u| !remote_set.contains(u)) {
            counts.deleted += 1;
            plan.ops.push(Op::Delete { uuid: *gone, kind });
        }
        progress(PullEvent::Done { kind, counts });
        total.add(&counts);
    }
    progress(PullEvent::Writing { ops: plan.len() });
    store.apply(plan, reg)?;
    store.set_meta(&key, &reg.at.to_string())?;
    Ok(total)
}
