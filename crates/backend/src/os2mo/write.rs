//! Writing a plan to OS2mo. First the current state of every object the plan touches is read
//! (one paged read per kind), so that
//! * a create is only sent for a uuid that does not exist (on MO a create with a known uuid
//!   replaces the object's whole history),
//! * an update or termination that would leave MO as it is, is never sent (a no-op update makes
//!   a real MO silently drop the whole request it is in: `specs/os2mo-observed.md` §7.1).
//!
//! Then the operations are put in dependency order (classes → units top-down → persons →
//! engagements → addresses, IT users, managers, roles …; endings afterwards, children first) and
//! sent as aliased mutations, `batch_size` per request. MO applies a request completely or not
//! at all; a refused request is split in halves until the refused operation is found, and the run
//! stops there with an error that says how many writes went through and which one was refused.

use super::error::Os2moError;
use super::http::Transport;
use super::kinds::{self, Mode};
use super::read::read_raw;
use crate::Query;
use dipex_model::plan::{Counts, apply as apply_op};
use dipex_model::{Date, Kind, Object, Op, Plan, Validity, Value};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One mutation of a request.
#[derive(Clone, Debug)]
pub struct Mutation {
    /// `engagement_create`, `org_unit_terminate`, …
    pub field: String,
    /// The variable's GraphQL type (`EngagementCreateInput!`, `UUID!`).
    pub var_type: String,
    /// `input`, or `uuid` for deletes.
    pub arg: &'static str,
    pub value: Json,
    /// The operation, for messages (never a CPR).
    pub what: String,
    kind: OpKind,
}

#[derive(Clone, Copy, Debug)]
enum OpKind {
    Create,
    Update,
    Terminate,
    Delete,
}

/// The request document for a batch of mutations (aliases `m0`, `m1`, … and variables `v0`, …).
pub fn batch_document(muts: &[Mutation]) -> String {
    let mut doc = String::from("mutation Write(");
    for (i, m) in muts.iter().enumerate() {
        if i > 0 {
            doc.push_str(", ");
        }
        doc.push_str(&format!("$v{i}: {}", m.var_type));
    }
    doc.push_str(") {");
    for (i, m) in muts.iter().enumerate() {
        doc.push_str(&format!(" m{i}: {}({}: $v{i}) {{ uuid }}", m.field, m.arg));
    }
    doc.push_str(" }");
    doc
}

pub fn batch_variables(muts: &[Mutation]) -> Json {
    let mut vars = Map::new();
    for (i, m) in muts.iter().enumerate() {
        vars.insert(format!("v{i}"), m.value.clone());
    }
    Json::Object(vars)
}

fn lo(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MIN)
}
fn hi(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MAX)
}

/// The MO names for writing an object whose (current or new) value is `value`.
fn write_names(value: &Value) -> Result<(&'static str, &'static str), Os2moError> {
    kinds::write_names(value).ok_or_else(|| {
        Os2moError::Unsupported("OS2mo has exactly one root organisation, created by OS2mo itself; dipex cannot change it".into())
    })
}

fn validity_json(kind: Kind, v: &Validity, what: &str) -> Result<Json, Os2moError> {
    if v.from.is_none() && !kinds::open_from(kind) {
        return Err(Os2moError::Unsupported(format!(
            "{what}: OS2mo needs a start date for a {kind}"
        )));
    }
    Ok(kinds::validity_input(v))
}

/// The mutation for a create.
pub fn create_mutation(
    uuid: Uuid,
    validity: &Validity,
    value: &Value,
    what: String,
) -> Result<Mutation, Os2moError> {
    let (m, input) = write_names(value)?;
    let mut fields = kinds::encode(value, Mode::Create)?;
    fields.insert("uuid".into(), Json::String(uuid.to_string()));
    if kinds::create_takes_validity(value.kind()) {
        fields.insert(
            "validity".into(),
            validity_json(value.kind(), validity, &what)?,
        );
    }
    Ok(Mutation {
        field: format!("{m}_create"),
        var_type: format!("{input}CreateInput!"),
        arg: "input",
        value: Json::Object(fields),
        what,
        kind: OpKind::Create,
    })
}

/// The mutation for an update with the already encoded fields.
pub fn update_mutation(
    uuid: Uuid,
    validity: &Validity,
    value: &Value,
    mut fields: Map<String, Json>,
    what: String,
) -> Result<Mutation, Os2moError> {
    let (m, input) = write_names(value)?;
    fields.insert("uuid".into(), Json::String(uuid.to_string()));
    fields.insert(
        "validity".into(),
        validity_json(value.kind(), validity, &what)?,
    );
    Ok(Mutation {
        field: format!("{m}_update"),
        var_type: format!("{input}UpdateInput!"),
        arg: "input",
        value: Json::Object(fields),
        what,
        kind: OpKind::Update,
    })
}

/// The mutation that makes `range` inactive (`to = None`: from `range.from` on).
pub fn terminate_mutation(
    uuid: Uuid,
    current: &Value,
    range: &Validity,
    what: String,
) -> Result<Mutation, Os2moError> {
    let (m, input) = write_names(current)?;
    if current.kind() == Kind::Person {
        return Err(Os2moError::Unsupported(format!(
            "{what}: OS2mo persons cannot be ended (employee_terminate ends their engagements and other functions instead)"
        )));
    }
    let Some(from) = range.from else {
        return Err(Os2moError::Unsupported(format!(
            "{what}: OS2mo cannot end an object from the beginning of time"
        )));
    };
    let value = match range.to {
        None => json!({"uuid": uuid, "to": kinds::date_text(from)}),
        Some(to) => {
            json!({"uuid": uuid, "from": kinds::date_text(from), "to": kinds::date_text(to)})
        }
    };
    Ok(Mutation {
        field: format!("{m}_terminate"),
        var_type: format!("{input}TerminateInput!"),
        arg: "input",
        value,
        what,
        kind: OpKind::Terminate,
    })
}

pub fn delete_mutation(uuid: Uuid, current: &Value, what: String) -> Result<Mutation, Os2moError> {
    let (m, _) = match current {
        // IT associations are deleted as associations.
        Value::Association(_) => ("association", ""),
        v => write_names(v)?,
    };
    Ok(Mutation {
        field: format!("{m}_delete"),
        var_type: "UUID!".into(),
        arg: "uuid",
        value: Json::String(uuid.to_string()),
        what,
        kind: OpKind::Delete,
    })
}

/// What an update would change on MO, which merges the sent fields into each slice.
struct Effect {
    changes: bool,
    /// Fields dipex wants cleared but MO cannot clear (they keep their value).
    uncleared: Vec<String>,
}

fn effect(
    current: &Object,
    validity: &Validity,
    sent: &Map<String, Json>,
) -> Result<Effect, Os2moError> {
    let mut changes = false;
    let mut uncleared = Vec::new();
    let mut covered = lo(validity.from);
    for s in current
        .slices
        .iter()
        .filter(|s| s.validity.overlaps(validity))
    {
        if lo(s.validity.from) > covered {
            changes = true; // inactive days in the range are activated
        }
        covered = covered.max(hi(s.validity.to));
        let have = kinds::encode(&s.value, Mode::Update)?;
        for (k, v) in sent {
            if have.get(k) != Some(v) {
                changes = true;
            }
        }
        for k in have.keys() {
            if !sent.contains_key(k) && !uncleared.contains(k) {
                uncleared.push(k.clone());
            }
        }
    }
    if covered < hi(validity.to) {
        changes = true;
    }
    Ok(Effect { changes, uncleared })
}

/// Dependency order: creates and updates first (by kind, org units parents first), then
/// terminations and deletes (reverse kind order, org units children first). An object's own
/// operations keep their order.
pub fn order(ops: Vec<Op>, state: &HashMap<Uuid, Object>) -> Vec<Op> {
    let mut parent: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    for o in state.values() {
        if let Value::OrgUnit(u) = &o.last().value {
            parent.insert(o.uuid, u.parent);
        }
    }
    for op in &ops {
        if let Op::Create {
            uuid,
            value: Value::OrgUnit(u),
            ..
        }
        | Op::Update {
            uuid,
            value: Value::OrgUnit(u),
            ..
        } = op
        {
            parent.insert(*uuid, u.parent);
        }
    }
    let depth = |u: Uuid| {
        let (mut d, mut cur) = (0i64, u);
        while let Some(Some(p)) = parent.get(&cur) {
            d += 1;
            cur = *p;
            if d > 10_000 {
                break; // a cycle: MO refuses it anyway
            }
        }
        d
    };
    let mut phase_of: HashMap<Uuid, u8> = HashMap::new();
    let mut keyed: Vec<((u8, i64, i64, usize), Op)> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let natural = match op {
                Op::Create { .. } | Op::Update { .. } => 0,
                Op::Terminate { .. } | Op::Delete { .. } => 1,
            };
            let p = phase_of.entry(op.uuid()).or_insert(0);
            *p = (*p).max(natural);
            let phase = *p;
            let rank = op.kind() as i64;
            let d = if op.kind() == Kind::OrgUnit {
                depth(op.uuid())
            } else {
                0
            };
            let key = if phase == 0 {
                (0, rank, d, i)
            } else {
                (1, -rank, -d, i)
            };
            (key, op)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, op)| op).collect()
}

/// Read the current state of every object `ops` touch.
fn current_state(t: &Transport, ops: &[Op]) -> Result<HashMap<Uuid, Object>, Os2moError> {
    let mut by_kind: BTreeMap<Kind, Vec<Uuid>> = BTreeMap::new();
    for op in ops {
        by_kind.entry(op.kind()).or_default().push(op.uuid());
    }
    let mut state = HashMap::new();
    for (kind, mut uuids) in by_kind {
        uuids.sort();
        uuids.dedup();
        for o in read_raw(t, &Query::all(kind).uuids(uuids))? {
            state.insert(o.uuid, o);
        }
    }
    Ok(state)
}

/// Turn a plan into the mutations that bring MO there, skipping what MO already holds.
pub fn mutations(t: &Transport, plan: Plan) -> Result<(Vec<Mutation>, usize), Os2moError> {
    let mut state = current_state(t, &plan.ops)?;
    let ops = order(plan.ops, &state);
    let mut out = Vec::with_capacity(ops.len());
    let mut skipped = 0;
    for op in ops {
        let what = op.to_string();
        let uuid = op.uuid();
        let cur = state.remove(&uuid);
        let mut applied = op.clone();
        match &op {
            Op::Create {
                validity, value, ..
            } => {
                if cur.is_some() {
                    return Err(Os2moError::Unsupported(format!(
                        "{what}: the object already exists in OS2mo, and a create would replace its whole history"
                    )));
                }
                out.push(create_mutation(uuid, validity, value, what)?);
            }
            Op::Update {
                validity, value, ..
            } => {
                let Some(c) = cur.as_ref() else {
                    return Err(Os2moError::Plan(dipex_model::plan::ApplyError::Missing {
                        op: "update",
                        uuid,
                        kind: value.kind(),
                    }));
                };
                let mut validity = *validity;
                if value.kind() == Kind::Person && validity.from.is_none() {
                    // MO starts a person at the CPR birth date and takes no earlier date.
                    validity.from = c.slices.first().and_then(|s| s.validity.from);
                    if validity.from.is_none() {
                        return Err(Os2moError::Unsupported(format!(
                            "{what}: the person has no start date in OS2mo (no CPR number), and OS2mo needs one to update from"
                        )));
                    }
                    applied = Op::Update {
                        uuid,
                        validity,
                        value: value.clone(),
                    };
                }
                let sent = kinds::encode(value, Mode::Update)?;
                let e = effect(c, &validity, &sent)?;
                if !e.uncleared.is_empty() {
                    let wanted = kinds::encode(value, Mode::Create)?;
                    let lost: Vec<&String> = e
                        .uncleared
                        .iter()
                        .filter(|k| !wanted.contains_key(*k))
                        .collect();
                    if !lost.is_empty() {
                        tracing::warn!(
                            "{what}: OS2mo cannot clear {lost:?}; they keep their values"
                        );
                    }
                }
                if e.changes {
                    out.push(update_mutation(uuid, &validity, value, sent, what)?);
                } else {
                    tracing::debug!("{what}: OS2mo already holds this; not sent");
                    skipped += 1;
                }
            }
            Op::Terminate { range, .. } => match cur.as_ref() {
                Some(c) if c.active_in(range) => {
                    out.push(terminate_mutation(uuid, &c.last().value, range, what)?)
                }
                _ => {
                    tracing::debug!("{what}: already inactive in OS2mo; not sent");
                    skipped += 1;
                }
            },
            Op::Delete { .. } => match cur.as_ref() {
                Some(c) => out.push(delete_mutation(uuid, &c.last().value, what)?),
                None => {
                    tracing::debug!("{what}: not in OS2mo; not sent");
                    skipped += 1;
                }
            },
        }
        let next = match cur {
            // A skipped termination of an unknown object stays unknown.
            None if matches!(op, Op::Terminate { .. } | Op::Delete { .. }) => None,
            cur => apply_op(cur, &applied).map_err(Os2moError::Plan)?,
        };
        if let Some(n) = next {
            state.insert(uuid, n);
        }
    }
    Ok((out, skipped))
}

/// Send mutations in batches; on a refused batch find the refused mutation by halving.
pub fn send(t: &Transport, muts: &[Mutation]) -> Result<Counts, Os2moError> {
    let total = muts.len();
    let mut written = 0;
    for batch in muts.chunks(t.config().batch_size.max(1)) {
        send_batch(t, batch, &mut written, total)?;
        tracing::debug!("OS2mo: {written} of {total} writes done");
    }
    let mut c = Counts::default();
    for m in muts {
        match m.kind {
            OpKind::Create => c.created += 1,
            OpKind::Update => c.updated += 1,
            OpKind::Terminate => c.terminated += 1,
            OpKind::Delete => c.deleted += 1,
        }
    }
    Ok(c)
}

fn send_batch(
    t: &Transport,
    muts: &[Mutation],
    written: &mut usize,
    total: usize,
) -> Result<(), Os2moError> {
    match t.graphql("write", &batch_document(muts), batch_variables(muts)) {
        Ok(_) => {
            *written += muts.len();
            Ok(())
        }
        Err(Os2moError::GraphQl { errors, .. }) if muts.len() > 1 => {
            tracing::warn!(
                "OS2mo refused a request of {} writes ({errors}); nothing of it was written; sending it in halves to find the refused object",
                muts.len()
            );
            let (a, b) = muts.split_at(muts.len() / 2);
            send_batch(t, a, written, total)?;
            send_batch(t, b, written, total)
        }
        Err(e) => Err(Os2moError::Partial {
            written: *written,
            total,
            failed: if muts.len() == 1 {
                muts[0].what.clone()
            } else {
                format!(
                    "a request of {} writes starting with {}",
                    muts.len(),
                    muts[0].what
                )
            },
            cause: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dipex_model::{OrgUnit, Slice};

    fn unit(parent: Option<Uuid>) -> Value {
        Value::OrgUnit(OrgUnit {
            user_key: "u".into(),
            name: "U".into(),
            parent,
            unit_type: Some(Uuid::nil()),
            unit_level: None,
            unit_hierarchy: None,
            time_planning: None,
        })
    }
    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn units_are_created_parents_first_and_ended_children_first() {
        let v = Validity::from_day(jiff::civil::date(2020, 1, 1));
        let end = Validity::from_day(jiff::civil::date(2024, 1, 1));
        let ops = vec![
            Op::Terminate {
                uuid: u(1),
                kind: Kind::OrgUnit,
                range: end,
            },
            Op::Create {
                uuid: u(3),
                validity: v,
                value: unit(Some(u(2))),
            },
            Op::Create {
                uuid: u(2),
                validity: v,
                value: unit(Some(u(1))),
            },
            Op::Terminate {
                uuid: u(5),
                kind: Kind::OrgUnit,
                range: end,
            },
        ];
        let mut state = HashMap::new();
        state.insert(
            u(1),
            Object::new(u(1), vec![Slice::new(v, unit(None))]).unwrap(),
        );
        state.insert(
            u(5),
            Object::new(u(5), vec![Slice::new(v, unit(Some(u(1))))]).unwrap(),
        );
        let got: Vec<Uuid> = order(ops, &state).iter().map(Op::uuid).collect();
        assert_eq!(got, vec![u(2), u(3), u(5), u(1)]);
    }

    #[test]
    fn batch_documents_use_aliases_and_typed_variables() {
        let v = Validity::from_day(jiff::civil::date(2020, 1, 1));
        let a = create_mutation(u(1), &v, &unit(None), "a".into()).unwrap();
        let d = delete_mutation(u(1), &unit(None), "d".into()).unwrap();
        let doc = batch_document(&[a, d]);
        assert_eq!(
            doc,
            "mutation Write($v0: OrganisationUnitCreateInput!, $v1: UUID!) { m0: org_unit_create(input: $v0) { uuid } m1: org_unit_delete(uuid: $v1) { uuid } }"
        );
    }
}
