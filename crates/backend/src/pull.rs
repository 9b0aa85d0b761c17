//! `dipex mo pull`: mirror a remote OS2mo, all history, into the embedded store, so exporters
//! can read locally (what the upstream tools' "LoRa cache" was for). The mirror is made equal to
//! MO object by object: new objects are created, changed ones replaced, vanished ones deleted,
//! all in one transaction.
//!
//! A later pull is incremental. OS2mo registers every write to an object (a new registration
//! with its own start time); its `registrations` query lists the open registration of every
//! object (see [`crate::os2mo::read::current_registrations`]). The mirror keeps, per object, the
//! start of the open registration it last saw; a pull lists them again and reads in full only
//! the objects whose open registration is another one (or new). No clock is compared, so clock
//! differences do not matter, and nothing committed while a pull runs is missed: the
//! registrations are listed before anything is read, so the mirror never records a registration
//! newer than the data it holds; a write that lands later shows up as a new registration next
//! time.

use crate::os2mo::Os2mo;
use crate::os2mo::read::registration_model;
use crate::{Backend, BackendError, Query, Registration, Store};
use dipex_model::{Kind, Object, Op, Plan};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How a pull reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct PullOptions {
    /// Read every object, not only those OS2mo registered a write for since the last pull.
    pub full: bool,
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

/// The store's meta key holding the registrations seen by the last pull from `base`.
fn versions_key(base: &str) -> String {
    format!("pull.registrations {base}")
}

/// Open registration per object: one `uuid start` line each, sorted.
type Versions = HashMap<Uuid, jiff::Timestamp>;

fn encode_versions(v: &Versions) -> String {
    let mut lines: Vec<String> = v.iter().map(|(u, t)| format!("{u} {t}")).collect();
    lines.sort();
    lines.join("\n")
}

/// `None` when the text is not what [`encode_versions`] writes (the pull is then full).
fn decode_versions(s: &str) -> Option<Versions> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (u, t) = l.split_once(' ')?;
            Some((u.parse().ok()?, t.parse().ok()?))
        })
        .collect()
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

/// Mirror `mo` into `store`, written as registration `reg`.
pub fn pull(
    mo: &Os2mo,
    store: &mut Store,
    reg: &Registration,
    opts: PullOptions,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PullCounts, BackendError> {
    let key = versions_key(&mo.config().base);
    let previous: Option<Versions> = if opts.full {
        None
    } else {
        store.meta(&key)?.and_then(|s| decode_versions(&s))
    };
    // First the open registrations, then the objects: what is read is at least as new as the
    // registration recorded for it.
    let mut models: Vec<&str> = Kind::ALL
        .iter()
        .filter_map(|k| registration_model(*k))
        .collect();
    models.sort_unstable();
    models.dedup();
    let mut versions: Versions = HashMap::new();
    let mut listed: HashMap<String, HashSet<Uuid>> = HashMap::new();
    for (model, uuid, start) in mo.current_registrations(&models)? {
        let v = versions.entry(uuid).or_insert(start);
        *v = (*v).max(start);
        listed.entry(model).or_default().insert(uuid);
    }
    let mut plan = Plan::default();
    let mut total = PullCounts::default();
    let empty = HashSet::new();
    for (index, kind) in Kind::ALL.into_iter().enumerate() {
        progress(PullEvent::Kind {
            kind,
            index,
            of: Kind::ALL.len(),
            incremental: previous.is_some(),
        });
        let mut counts = PullCounts::default();
        let local_uuids: HashSet<Uuid> = store.uuids(kind)?.into_iter().collect();
        // What to read (`None`: everything), and which local objects MO no longer lists.
        let (to_read, unlisted): (Option<Vec<Uuid>>, Vec<Uuid>) =
            match (registration_model(kind), &previous) {
                (Some(model), Some(prev)) => {
                    let listed = listed.get(model).unwrap_or(&empty);
                    let changed = listed
                        .iter()
                        .filter(|u| prev.get(*u) != versions.get(*u))
                        .copied()
                        .collect();
                    let gone = local_uuids
                        .iter()
                        .filter(|u| !listed.contains(*u))
                        .copied()
                        .collect();
                    (Some(changed), gone)
                }
                _ => (None, Vec::new()),
            };
        let remote = match &to_read {
            None => mo.read(&Query::all(kind))?,
            Some(v) if v.is_empty() => Vec::new(),
            Some(v) => mo.read(&Query::all(kind).uuids(v.iter().copied()))?,
        };
        let read_uuids: Vec<Uuid> = match &to_read {
            Some(v) => v.clone(),
            None => local_uuids
                .iter()
                .chain(remote.iter().map(|o| &o.uuid))
                .copied()
                .collect(),
        };
        let local: HashMap<Uuid, Object> = if read_uuids.is_empty() {
            HashMap::new()
        } else {
            store
                .read(&Query::all(kind).uuids(read_uuids.iter().copied()))?
                .into_iter()
                .map(|o| (o.uuid, o))
                .collect()
        };
        counts.read = remote.len();
        let remote_set: HashSet<Uuid> = remote.iter().map(|o| o.uuid).collect();
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
        // Read but not returned (deleted in MO, or no longer of this kind), or not listed at all.
        let mut gone: Vec<Uuid> = local
            .keys()
            .filter(|u| !remote_set.contains(*u))
            .copied()
            .chain(unlisted)
            .collect();
        gone.sort();
        gone.dedup();
        for uuid in gone {
            counts.deleted += 1;
            plan.ops.push(Op::Delete { uuid, kind });
        }
        progress(PullEvent::Done { kind, counts });
        total.add(&counts);
    }
    progress(PullEvent::Writing { ops: plan.len() });
    store.apply(plan, reg)?;
    // Only after the mirror holds the data: a pull that fails before this point leaves the old
    // registrations, so the next pull reads the same objects again.
    store.set_meta(&key, &encode_versions(&versions))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip() {
        let mut v = Versions::new();
        v.insert(
            Uuid::from_u128(2),
            "2026-12-02T19:03:43.227262Z".parse().unwrap(),
        );
        v.insert(Uuid::from_u128(1), "2024-01-01T00:00:00Z".parse().unwrap());
        let text = encode_versions(&v);
        assert_eq!(
            text,
            "00000000-0000-0000-0000-000000000001 2024-01-01T00:00:00Z\n\
             00000000-0000-0000-0000-000000000002 2026-12-02T19:03:43.227262Z"
        );
        assert_eq!(decode_versions(&text), Some(v));
        assert_eq!(decode_versions("garbage"), None);
        assert_eq!(decode_versions(""), Some(Versions::new()));
    }
}
