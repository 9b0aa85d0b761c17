//! Writing a plan to OS2mo. First the current state of every object the plan touches is read
//! (one paged read per kind), so that
//! * a create is only sent for a uuid that does not exist (on MO a create with a known uuid
//!   replaces the object's whole history),
//! * an update or termination that would leave MO as it is, is never sent (on a real MO a no-op
//!   update makes the mutations after it in the same request fail with `E_UNKNOWN`, or, sent
//!   last, the whole request is dropped while MO reports success: `docs/os2mo.md`, "Observed on
//!   a real OS2mo").
//!
//! Then the operations are put in dependency layers (classes → units top-down → persons →
//! engagements → addresses, IT users, managers, roles …; endings afterwards, children first).
//! Operations of one layer do not depend on each other, so a layer's writes are sent as aliased
//! mutations, `batch_size` per request, `write_concurrency` requests in flight; an object's own
//! operations stay in one request, in order. MO applies a request completely or not at all.
//!
//! * A request MO refuses for reasons tied to objects (an `error_key` naming the alias) is sent
//!   again without the refused operations (in halves when MO does not say which); the refused
//!   operations, and every later operation on those objects or on objects referring to an
//!   object that was not created, come back as [`Refused`]. Everything else is written.
//! * A request whose answer was lost (transport error, 5xx) is never sent again as it was: the
//!   objects it touches are read back and its operations planned again against what MO holds
//!   (a create whose object exists went through, with the rest of its request).
//! * Any other failure stops the write with [`Os2moError::Partial`], which says what was applied.

use super::error::Os2moError;
use super::error::{ErrorKey, GqlError};
use super::http::Transport;
use super::kinds::{self, Mode};
use super::read::read_raw;
use crate::{Applied, Query, Refused};
use dipex_model::plan::{Counts, apply as apply_op};
use dipex_model::{Date, Kind, Object, Op, Plan, Validity, Value};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
pub fn batch_document<M: std::borrow::Borrow<Mutation>>(muts: &[M]) -> String {
    let mut doc = String::from("mutation Write(");
    for (i, m) in muts.iter().enumerate() {
        if i > 0 {
            doc.push_str(", ");
        }
        doc.push_str(&format!("$v{i}: {}", m.borrow().var_type));
    }
    doc.push_str(") {");
    for (i, m) in muts.iter().enumerate() {
        let m = m.borrow();
        doc.push_str(&format!(" m{i}: {}({}: $v{i}) {{ uuid }}", m.field, m.arg));
    }
    doc.push_str(" }");
    doc
}

pub fn batch_variables<M: std::borrow::Borrow<Mutation>>(muts: &[M]) -> Json {
    let mut vars = Map::new();
    for (i, m) in muts.iter().enumerate() {
        vars.insert(format!("v{i}"), m.borrow().value.clone());
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

/// A dependency layer: (phase, kind rank, depth in the unit or class tree). The operations of
/// one layer do not depend on each other, except an object's own operations, which keep their
/// order.
pub type Layer = (u8, i64, i64);

/// Dependency order: creates and updates first (by kind, org units and classes parents first),
/// then terminations and deletes (reverse kind order, org units children first). An object's
/// own operations keep their order.
pub fn order(ops: Vec<Op>, state: &HashMap<Uuid, Object>) -> Vec<Op> {
    layered(ops, state).into_iter().map(|(_, op)| op).collect()
}

/// [`order`], with each operation's [`Layer`].
pub fn layered(ops: Vec<Op>, state: &HashMap<Uuid, Object>) -> Vec<(Layer, Op)> {
    fn parent_of(v: &Value) -> Option<Option<Uuid>> {
        match v {
            Value::OrgUnit(u) => Some(u.parent),
            Value::Class(c) => Some(c.parent),
            _ => None,
        }
    }
    let mut parent: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    for o in state.values() {
        if let Some(p) = parent_of(&o.last().value) {
            parent.insert(o.uuid, p);
        }
    }
    for op in &ops {
        if let Op::Create { uuid, value, .. } | Op::Update { uuid, value, .. } = op
            && let Some(p) = parent_of(value)
        {
            parent.insert(*uuid, p);
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
            let d = if matches!(op.kind(), Kind::OrgUnit | Kind::Class) {
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
    keyed
        .into_iter()
        .map(|((p, r, d, _), op)| ((p, r, d), op))
        .collect()
}

/// Read the current state of every object `ops` touch.
fn current_state<'a>(
    t: &Transport,
    ops: impl IntoIterator<Item = &'a Op>,
) -> Result<HashMap<Uuid, Object>, Os2moError> {
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

/// One write to send: the mutation, the operation it comes from (planned again after a lost
/// answer) and its layer.
#[derive(Clone, Debug)]
pub struct Write {
    pub m: Mutation,
    pub op: Op,
    pub layer: Layer,
}

/// The writes that bring MO to a plan, and how many operations MO already holds.
pub struct Prepared {
    pub writes: Vec<Write>,
    pub skipped: usize,
}

/// The mutation for one operation on an object in state `cur` (`None` when MO already holds
/// what it asks for), and the object after it. With `resent` (planning again after a lost
/// answer), a create of an object that exists went through in the lost request.
fn plan_op(
    op: &Op,
    cur: Option<Object>,
    resent: bool,
) -> Result<(Option<Mutation>, Option<Object>), Os2moError> {
    let what = op.to_string();
    let uuid = op.uuid();
    let mut adjusted = None;
    let m = match op {
        Op::Create {
            validity, value, ..
        } => {
            if cur.is_some() {
                if resent {
                    return Ok((None, cur));
                }
                return Err(Os2moError::Unsupported(format!(
                    "{what}: the object already exists in OS2mo, and a create would replace its whole history"
                )));
            }
            Some(create_mutation(uuid, validity, value, what)?)
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
                adjusted = Some(Op::Update {
                    uuid,
                    validity,
                    value: value.clone(),
                });
            }
            let mut sent = kinds::encode(value, Mode::Update)?;
            let hierarchy = unit_hierarchy_rule(c, &validity, value, &what);
            if hierarchy == HierarchyRule::Keep {
                sent.remove("org_unit_hierarchy");
            }
            let e = effect(c, &validity, &sent)?;
            if !e.uncleared.is_empty() && !resent {
                let wanted = kinds::encode(value, Mode::Create)?;
                let lost: Vec<&String> = e
                    .uncleared
                    .iter()
                    .filter(|k| !wanted.contains_key(*k))
                    .collect();
                if !lost.is_empty() {
                    tracing::warn!("{what}: OS2mo cannot clear {lost:?}; they keep their values");
                }
            }
            if e.changes {
                Some(update_mutation(uuid, &validity, value, sent, what)?)
            } else {
                tracing::debug!("{what}: OS2mo already holds this; not sent");
                None
            }
        }
        Op::Terminate { range, .. } => match cur.as_ref() {
            Some(c) if c.active_in(range) => {
                Some(terminate_mutation(uuid, &c.last().value, range, what)?)
            }
            _ => {
                tracing::debug!("{what}: already inactive in OS2mo; not sent");
                None
            }
        },
        Op::Delete { .. } => match cur.as_ref() {
            Some(c) => Some(delete_mutation(uuid, &c.last().value, what)?),
            None => {
                tracing::debug!("{what}: not in OS2mo; not sent");
                None
            }
        },
    };
    let mut next = match cur {
        // A skipped termination of an unknown object stays unknown.
        None if matches!(op, Op::Terminate { .. } | Op::Delete { .. }) => None,
        cur => apply_op(cur, adjusted.as_ref().unwrap_or(op)).map_err(Os2moError::Plan)?,
    };
    if let (Some(Mutation { value, .. }), Some(n), Op::Update { validity, .. }) =
        (&m, &mut next, op)
        && value.get("org_unit_hierarchy").is_some()
    {
        // What OS2mo does with it: the hierarchy is left on the update's days only.
        for s in n
            .slices
            .iter_mut()
            .filter(|s| !s.validity.overlaps(validity))
        {
            if let Value::OrgUnit(u) = &mut s.value {
                u.unit_hierarchy = None;
            }
        }
    }
    Ok((m, next))
}

/// What to do with a unit's `org_unit_hierarchy` in an update.
#[derive(Debug, PartialEq)]
enum HierarchyRule {
    /// Leave it out: OS2mo already holds it on every day of the update.
    Keep,
    /// Send it (when the value has one).
    Send,
}

/// A real OS2mo keeps a unit's hierarchy as a LoRa zero-to-many relation, and an update that
/// names a hierarchy replaces the whole relation with the update's period: the hierarchy of
/// every other day is erased (`docs/os2mo.md`, "Observed on a real OS2mo"). So an update leaves
/// it out when OS2mo already holds it on every day of the update, and otherwise sends it and
/// warns when that erases the hierarchy of other days.
fn unit_hierarchy_rule(
    current: &Object,
    validity: &Validity,
    value: &Value,
    what: &str,
) -> HierarchyRule {
    let Value::OrgUnit(v) = value else {
        return HierarchyRule::Send;
    };
    let hierarchy = |s: &dipex_model::Slice| match &s.value {
        Value::OrgUnit(u) => u.unit_hierarchy,
        _ => None,
    };
    let mut covered = lo(validity.from);
    let mut same = true;
    for s in current
        .slices
        .iter()
        .filter(|s| s.validity.overlaps(validity))
    {
        same &= lo(s.validity.from) <= covered && hierarchy(s) == v.unit_hierarchy;
        covered = covered.max(hi(s.validity.to));
    }
    if same && covered >= hi(validity.to) {
        return HierarchyRule::Keep;
    }
    if v.unit_hierarchy.is_some() {
        let erased: Vec<String> = current
            .slices
            .iter()
            .filter(|s| !s.validity.overlaps(validity) && hierarchy(s).is_some())
            .map(|s| s.validity.to_string())
            .collect();
        if !erased.is_empty() {
            tracing::warn!(
                "{what}: OS2mo keeps one period of a unit's hierarchy; setting it for {validity} erases it on {}",
                erased.join(", ")
            );
        }
    }
    HierarchyRule::Send
}

/// A unit created with a hierarchy and then changed by updates from the end of the create on
/// (a unit's history in one plan) is created over the whole chain, so that its hierarchy
/// covers it: OS2mo cannot extend a hierarchy period by an update without erasing the days
/// before (see [`unit_hierarchy_rule`]). The updates that follow still set every other value
/// from their own dates.
fn created_over_its_history(ops: &mut [Op]) {
    for i in 0..ops.len() {
        let Op::Create {
            uuid,
            validity,
            value: Value::OrgUnit(unit),
        } = &ops[i]
        else {
            continue;
        };
        let (uuid, mut end) = (*uuid, validity.to);
        let Some(hierarchy) = unit.unit_hierarchy else {
            continue;
        };
        for later in &ops[i + 1..] {
            if later.uuid() != uuid {
                continue;
            }
            match later {
                Op::Update {
                    validity,
                    value: Value::OrgUnit(u),
                    ..
                } if end.is_some()
                    && validity.from == end
                    && u.unit_hierarchy == Some(hierarchy) =>
                {
                    end = validity.to;
                }
                _ => break,
            }
        }
        if let Op::Create { validity, .. } = &mut ops[i] {
            validity.to = end;
        }
    }
}

/// Turn a plan into the writes that bring MO there, skipping what MO already holds.
pub fn prepare(t: &Transport, plan: Plan) -> Result<Prepared, Os2moError> {
    let mut state = current_state(t, &plan.ops)?;
    let mut ops = plan.ops;
    created_over_its_history(&mut ops);
    let ops = layered(ops, &state);
    let mut writes = Vec::with_capacity(ops.len());
    let mut skipped = 0;
    for (layer, op) in ops {
        let uuid = op.uuid();
        let (m, next) = plan_op(&op, state.remove(&uuid), false)?;
        match m {
            Some(m) => writes.push(Write { m, op, layer }),
            None => skipped += 1,
        }
        if let Some(n) = next {
            state.insert(uuid, n);
        }
    }
    Ok(Prepared { writes, skipped })
}

/// Turn a plan into the mutations that bring MO there, in order (tests and tools).
pub fn mutations(t: &Transport, plan: Plan) -> Result<(Vec<Mutation>, usize), Os2moError> {
    let p = prepare(t, plan)?;
    Ok((p.writes.into_iter().map(|w| w.m).collect(), p.skipped))
}

/// Every uuid an operation's value refers to (units, persons, classes, engagements, …).
fn refers_to(op: &Op) -> Vec<Uuid> {
    fn walk(v: &Json, out: &mut Vec<Uuid>) {
        match v {
            Json::String(s) if s.len() == 36 => {
                if let Ok(u) = s.parse() {
                    out.push(u);
                }
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Json::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Op::Create { value, .. } | Op::Update { value, .. } = op {
        for v in value.fields_json().values() {
            walk(v, &mut out);
        }
    }
    out
}

/// An error MO gives for a reason tied to the object of one mutation: a validation or
/// not-found `error_key` (not `E_UNKNOWN`, MO's catch-all for server faults).
fn tied_to_object(e: &GqlError) -> bool {
    e.error_key
        .as_ref()
        .is_some_and(|k| *k != ErrorKey::Unknown)
}

/// The alias index (`m3` → 3) an error names.
fn alias_of(e: &GqlError) -> Option<usize> {
    e.path.first()?.strip_prefix('m')?.parse().ok()
}

/// What happened to the writes of one request (and the requests it was split into).
#[derive(Default)]
struct Settled {
    written: Vec<Write>,
    refused: Vec<(Write, GqlError)>,
    /// Later operations on a refused object, with its uuid.
    skipped: Vec<(Write, Uuid)>,
}

impl Settled {
    /// Refuse `chain[pos]`; the operations after it on the same object are skipped, those
    /// before it go into the next request.
    fn refuse(&mut self, chain: Vec<Write>, pos: usize, e: GqlError) -> Option<Vec<Write>> {
        let mut it = chain.into_iter();
        let before: Vec<Write> = it.by_ref().take(pos).collect();
        let Some(refused) = it.next() else {
            return Some(before);
        };
        let uuid = refused.op.uuid();
        tracing::warn!("OS2mo refused {}: {e}", refused.m.what.trim());
        self.refused.push((refused, e));
        for w in it {
            self.skipped.push((w, uuid));
        }
        (!before.is_empty()).then_some(before)
    }
}

/// Send one request of whole object chains, and settle it: refused operations are taken out
/// and the rest sent again; a lost answer is resolved by reading back and planning again.
fn settle(
    t: &Transport,
    chains: Vec<Vec<Write>>,
    out: &mut Settled,
    attempt: u32,
) -> Result<(), Os2moError> {
    let flat: Vec<&Mutation> = chains.iter().flatten().map(|w| &w.m).collect();
    if flat.is_empty() {
        return Ok(());
    }
    let n = flat.len();
    let sent = t.graphql_write("write", &batch_document(&flat), batch_variables(&flat));
    drop(flat);
    match sent {
        Ok(_) => {
            out.written.extend(chains.into_iter().flatten());
            Ok(())
        }
        Err(Os2moError::GraphQl { what, errors }) => {
            // The chain and position of each alias.
            let at: Vec<(usize, usize)> = chains
                .iter()
                .enumerate()
                .flat_map(|(c, ch)| (0..ch.len()).map(move |p| (c, p)))
                .collect();
            let named: Vec<(usize, &GqlError)> = errors
                .0
                .iter()
                .filter(|e| tied_to_object(e))
                .filter_map(|e| Some((alias_of(e).filter(|i| *i < n)?, e)))
                .collect();
            if !named.is_empty() && named.len() == errors.0.len() {
                let mut cut: HashMap<usize, (usize, GqlError)> = HashMap::new();
                for (i, e) in named {
                    let (c, p) = at[i];
                    let entry = cut.entry(c).or_insert((p, e.clone()));
                    if p < entry.0 {
                        *entry = (p, e.clone());
                    }
                }
                let mut again = Vec::new();
                for (c, chain) in chains.into_iter().enumerate() {
                    match cut.remove(&c) {
                        None => again.push(chain),
                        Some((p, e)) => again.extend(out.refuse(chain, p, e)),
                    }
                }
                return settle(t, again, out, attempt);
            }
            if chains.len() > 1 {
                tracing::info!(
                    "OS2mo refused a request of {n} writes ({errors}); nothing of it was written; sending it in halves to find the refused objects"
                );
                let mut a = chains;
                let b = a.split_off(a.len() / 2);
                settle(t, a, out, attempt)?;
                return settle(t, b, out, attempt);
            }
            let chain = chains.into_iter().next().expect("one chain");
            if let Some(e) = errors.0.iter().find(|e| tied_to_object(e)) {
                let p = alias_of(e).filter(|i| *i < chain.len()).unwrap_or(0);
                let again: Vec<Vec<Write>> = out.refuse(chain, p, e.clone()).into_iter().collect();
                return settle(t, again, out, attempt);
            }
            Err(Os2moError::GraphQl { what, errors })
        }
        Err(e) if e.answer_lost() && attempt < t.config().retries => {
            let wait = t.config().backoff * 2u32.saturating_pow(attempt);
            tracing::warn!(
                "{e}: the answer to a request of {n} writes was lost; it is not sent again as it was: in {} ms dipex reads back what OS2mo holds for its objects and plans them again",
                wait.as_millis()
            );
            std::thread::sleep(wait);
            let again = replan(t, chains, out)?;
            settle(t, again, out, attempt + 1)
        }
        Err(e) => Err(e),
    }
}

/// After a lost answer: read back the objects of a request and plan its operations again against
/// what MO holds. Writes MO already holds count as written.
fn replan(
    t: &Transport,
    chains: Vec<Vec<Write>>,
    out: &mut Settled,
) -> Result<Vec<Vec<Write>>, Os2moError> {
    let mut state = current_state(t, chains.iter().flatten().map(|w| &w.op))?;
    let mut again = Vec::new();
    let (mut held, mut resend) = (0, 0);
    for chain in chains {
        let mut next_chain = Vec::new();
        for mut w in chain {
            let uuid = w.op.uuid();
            let (m, next) = plan_op(&w.op, state.remove(&uuid), true)?;
            if let Some(n) = next {
                state.insert(uuid, n);
            }
            match m {
                Some(m) => {
                    w.m = m;
                    resend += 1;
                    next_chain.push(w);
                }
                None => {
                    held += 1;
                    out.written.push(w);
                }
            }
        }
        if !next_chain.is_empty() {
            again.push(next_chain);
        }
    }
    tracing::warn!("OS2mo holds {held} of those writes already; {resend} are sent again");
    Ok(again)
}

/// One request's chains.
type Batch = Vec<Vec<Write>>;

/// What one started batch did, with the batch's description and its error when it failed.
type Outcome = (Settled, Option<(String, Os2moError)>);

/// Settle `batches` with up to `concurrency` requests in flight. After a failure no new batch is
/// started; the ones in flight finish. Returns what each started batch did (with its error), and
/// the batches never started.
fn run_batches(
    t: &Transport,
    batches: Vec<Batch>,
    concurrency: usize,
) -> (Vec<Outcome>, Vec<Batch>) {
    let describe = |b: &Batch| {
        let n: usize = b.iter().map(Vec::len).sum();
        let first = b
            .first()
            .and_then(|c| c.first())
            .map_or(String::new(), |w| {
                w.m.what.split_whitespace().collect::<Vec<_>>().join(" ")
            });
        if n == 1 {
            first
        } else {
            format!("a request of {n} writes starting with {first}")
        }
    };
    let run = |b: Batch| {
        let name = describe(&b);
        let mut s = Settled::default();
        let err = settle(t, b, &mut s, 0).err().map(|e| (name, e));
        (s, err)
    };
    if batches.len() <= 1 || concurrency <= 1 {
        let mut done = Vec::new();
        let mut rest = batches.into_iter();
        for b in rest.by_ref() {
            let r = run(b);
            let failed = r.1.is_some();
            done.push(r);
            if failed {
                break;
            }
        }
        return (done, rest.collect());
    }
    let n = batches.len();
    let jobs: Vec<Mutex<Option<Batch>>> =
        batches.into_iter().map(|b| Mutex::new(Some(b))).collect();
    let done: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(n) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let job = jobs[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(b) = job {
                        let r = run(b);
                        if r.1.is_some() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        done.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                }
            });
        }
    });
    let rest = jobs
        .into_iter()
        .filter_map(|j| j.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect();
    (done.into_inner().unwrap_or_else(|p| p.into_inner()), rest)
}

/// Pack an object's chains into requests of about `size` writes (a chain is never split).
fn pack(chains: Vec<Vec<Write>>, size: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut cur: Batch = Vec::new();
    let mut len = 0;
    for c in chains {
        if len > 0 && len + c.len() > size {
            out.push(std::mem::take(&mut cur));
            len = 0;
        }
        len += c.len();
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn refusal(w: &Write, e: &GqlError) -> Refused {
    let mut reason = e.description.clone().unwrap_or_else(|| e.message.clone());
    for (k, v) in &e.context {
        reason.push_str(&format!(" {k}={v}"));
    }
    Refused {
        uuid: w.op.uuid(),
        kind: w.op.kind(),
        op: w.m.what.clone(),
        error_key: e.error_key.as_ref().map(|k| k.as_str().to_string()),
        reason,
        because: None,
    }
}

fn skipped(w: &Write, because: Uuid, kind: Option<Kind>) -> Refused {
    let reason = match kind {
        Some(k) if because != w.op.uuid() => {
            format!("depends on {k} {because}, which OS2mo refused or which was not written")
        }
        _ => format!("an earlier operation on {because} was refused"),
    };
    Refused {
        uuid: w.op.uuid(),
        kind: w.op.kind(),
        op: w.m.what.clone(),
        error_key: None,
        reason,
        because: Some(because),
    }
}

/// Send the writes layer by layer, `write_concurrency` requests in flight within a layer.
pub fn send(t: &Transport, writes: Vec<Write>) -> Result<Applied, Os2moError> {
    let total = writes.len();
    let mut total_by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for w in &writes {
        *total_by_kind.entry(w.op.kind()).or_default() += 1;
    }
    let mut written_by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut counts = Counts::default();
    let mut refused: Vec<Refused> = Vec::new();
    // Objects with a refused operation, and objects that do not exist because their create was
    // refused or skipped (with their kind).
    let mut blocked: HashSet<Uuid> = HashSet::new();
    let mut absent: HashMap<Uuid, Kind> = HashMap::new();
    let mut written = 0;
    let cfg = t.config();
    let mut rest = writes.into_iter().peekable();
    while let Some(first) = rest.next() {
        let layer = first.layer;
        let mut chains: Vec<Vec<Write>> = Vec::new();
        let mut pos: HashMap<Uuid, usize> = HashMap::new();
        for w in
            std::iter::once(first).chain(std::iter::from_fn(|| rest.next_if(|w| w.layer == layer)))
        {
            let i = *pos.entry(w.op.uuid()).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[i].push(w);
        }
        let mut ready = Vec::with_capacity(chains.len());
        for chain in chains {
            let uuid = chain[0].op.uuid();
            let because = if blocked.contains(&uuid) {
                Some((uuid, None))
            } else {
                chain
                    .iter()
                    .flat_map(|w| refers_to(&w.op))
                    .find_map(|r| absent.get(&r).map(|k| (r, Some(*k))))
            };
            let Some((b, kind)) = because else {
                ready.push(chain);
                continue;
            };
            blocked.insert(uuid);
            for w in &chain {
                if matches!(w.op, Op::Create { .. }) {
                    absent.insert(uuid, w.op.kind());
                }
                let r = skipped(w, b, kind);
                tracing::warn!("{r}");
                refused.push(r);
            }
        }
        let batches = pack(ready, cfg.batch_size.max(1));
        let (done, not_started) = run_batches(t, batches, cfg.write_concurrency.max(1));
        let mut failure = None;
        for (s, err) in done {
            for w in s.written {
                written += 1;
                *written_by_kind.entry(w.op.kind()).or_default() += 1;
                match w.m.kind {
                    OpKind::Create => counts.created += 1,
                    OpKind::Update => counts.updated += 1,
                    OpKind::Terminate => counts.terminated += 1,
                    OpKind::Delete => counts.deleted += 1,
                }
            }
            for (w, e) in s.refused {
                let uuid = w.op.uuid();
                blocked.insert(uuid);
                if matches!(w.op, Op::Create { .. }) {
                    absent.insert(uuid, w.op.kind());
                }
                refused.push(refusal(&w, &e));
            }
            for (w, b) in s.skipped {
                let r = skipped(&w, b, None);
                tracing::warn!("{r}");
                refused.push(r);
            }
            if failure.is_none() {
                failure = err;
            }
        }
        if let Some((failed, cause)) = failure {
            drop(not_started);
            let applied = total_by_kind
                .iter()
                .map(|(k, n)| {
                    format!(
                        "{k} {} of {n}",
                        written_by_kind.get(k).copied().unwrap_or(0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Os2moError::Partial {
                written,
                total,
                applied,
                failed,
                cause: Box::new(cause),
                refused: refused.len(),
            });
        }
        tracing::debug!("OS2mo: {written} of {total} writes done");
    }
    Ok(Applied { counts, refused })
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

    fn in_hierarchy(h: Option<u128>, name: &str) -> Value {
        let Value::OrgUnit(mut v) = unit(None) else {
            unreachable!()
        };
        v.unit_hierarchy = h.map(u);
        v.name = name.into();
        Value::OrgUnit(v)
    }

    fn days(from: (i16, i8), to: Option<(i16, i8)>) -> Validity {
        let d = |(y, m): (i16, i8)| jiff::civil::date(y, m, 1);
        Validity::new(Some(d(from)), to.map(d))
    }

    #[test]
    fn a_unit_created_with_its_history_is_created_over_all_of_it() {
        let mut ops = vec![
            Op::Create {
                uuid: u(1),
                validity: days((2010, 1), Some((2012, 1))),
                value: in_hierarchy(Some(9), "a"),
            },
            Op::Create {
                uuid: u(2),
                validity: days((2010, 1), Some((2011, 1))),
                value: in_hierarchy(Some(9), "x"),
            },
            Op::Update {
                uuid: u(1),
                validity: days((2012, 1), Some((2013, 1))),
                value: in_hierarchy(Some(9), "b"),
            },
            Op::Update {
                uuid: u(2),
                validity: days((2011, 1), None),
                value: in_hierarchy(Some(8), "y"),
            },
            Op::Update {
                uuid: u(1),
                validity: days((2013, 1), None),
                value: in_hierarchy(Some(9), "c"),
            },
        ];
        created_over_its_history(&mut ops);
        let validities: Vec<String> = ops
            .iter()
            .map(|o| match o {
                Op::Create { validity, .. } | Op::Update { validity, .. } => validity.to_string(),
                _ => unreachable!(),
            })
            .collect();
        // Unit 1 keeps one hierarchy: its create spans the chain; unit 2 changes it: unchanged.
        assert_eq!(
            validities,
            [
                "[2010-01-01, inf)",
                "[2010-01-01, 2011-01-01)",
                "[2012-01-01, 2013-01-01)",
                "[2011-01-01, inf)",
                "[2013-01-01, inf)"
            ]
        );
    }

    #[test]
    fn a_hierarchy_os2mo_holds_on_every_day_of_an_update_is_left_out() {
        let current = Object::new(
            u(1),
            vec![
                Slice::new(days((2010, 1), Some((2015, 1))), in_hierarchy(Some(9), "a")),
                Slice::new(days((2015, 1), None), in_hierarchy(Some(9), "b")),
            ],
        )
        .unwrap();
        let rule = |from: (i16, i8), h: Option<u128>| {
            unit_hierarchy_rule(&current, &days(from, None), &in_hierarchy(h, "c"), "test")
        };
        assert_eq!(rule((2016, 1), Some(9)), HierarchyRule::Keep);
        assert_eq!(rule((2016, 1), Some(8)), HierarchyRule::Send);
        // Days before the unit are not held by OS2mo yet.
        assert_eq!(rule((2009, 1), Some(9)), HierarchyRule::Send);
    }
}
