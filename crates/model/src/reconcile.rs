//! Reconcile: desired facts plus the current state give the minimal plan. Pure and shared by
//! every importer, so "no change, no write" and "a change cuts history at its effective date"
//! hold everywhere. Reconcile never emits an operation that would leave an object as it was.

use crate::plan::{Op, Plan, apply};
use crate::validity::{hi, hi_opt, lo, lo_opt};
use crate::{Kind, Object, Slice, Validity, Value};
use jiff::civil::Date;
use std::collections::HashMap;
use uuid::Uuid;

/// What an importer wants MO to hold.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fact {
    /// What the input says about an object from `since` on (`None`: all of its history).
    ///
    /// The guarantee of [`reconcile`] (DESIGN.md §2 "History", property-tested by
    /// `reconcile_keeps_history_before_since`):
    /// * from `since` on, the object is exactly `timeline` inside `life` and inactive outside it;
    /// * before `since` nothing changes, except when the input dates the object's start before
    ///   `since` (`life.from < since`): then only activity changes, to match `life` (inactive
    ///   days of `life` become active with the first timeline value, active days before
    ///   `life.from` become inactive). The value of a day that stays active never changes.
    ///
    /// `timeline` is contiguous, starts at the later of `since` and `life.from`, and ends with
    /// `life` (use [`Fact::state`] or [`Fact::from_date`]).
    State {
        uuid: Uuid,
        life: Validity,
        since: Option<Date>,
        timeline: Vec<Slice>,
    },
    /// The object is inactive from `at` on (it may not exist at all).
    End { uuid: Uuid, kind: Kind, at: Date },
    /// The object must not exist, history included.
    Delete { uuid: Uuid, kind: Kind },
}

impl Fact {
    /// An object whose life the source dates: `value` holds over `life`, said from `effective`
    /// on (`since`; `None`: the input speaks about the whole history). When `effective` lies
    /// after the end of `life`, the value describes the whole life (a correction of something
    /// already ended), from `life.from`.
    pub fn state(uuid: Uuid, value: Value, life: Validity, effective: Option<Date>) -> Fact {
        let mut since = effective;
        if lo(since) >= hi(life.to) {
            since = life.from;
        }
        let start = lo(life.from).max(lo(since));
        let timeline = vec![Slice::new(Validity::new(lo_opt(start), life.to), value)];
        Fact::State {
            uuid,
            life,
            since,
            timeline,
        }
    }

    /// An object whose start the source does not date (an IT user, an address): from `since`
    /// on it is `value` until `end` (`None`: forever); nothing before `since` changes. When
    /// `end` is not after `since`, the object is inactive from `end` on.
    pub fn from_date(uuid: Uuid, value: Value, since: Date, end: Option<Date>) -> Fact {
        if let Some(end) = end
            && end <= since
        {
            return Fact::End {
                uuid,
                kind: value.kind(),
                at: end,
            };
        }
        let life = Validity::new(Some(since), end);
        Fact::State {
            uuid,
            life,
            since: Some(since),
            timeline: vec![Slice::new(life, value)],
        }
    }

    pub fn uuid(&self) -> Uuid {
        match self {
            Fact::State { uuid, .. } | Fact::End { uuid, .. } | Fact::Delete { uuid, .. } => *uuid,
        }
    }
}

/// Sub-ranges of `range` where `slices` is not active.
fn gaps(slices: &[Slice], range: Validity) -> Vec<Validity> {
    let (rf, rt) = (lo(range.from), hi(range.to));
    let mut pos = rf;
    let mut out = Vec::new();
    for s in slices {
        let (sf, st) = (lo(s.validity.from), hi(s.validity.to));
        if st <= pos || sf >= rt {
            continue;
        }
        if sf > pos {
            out.push(Validity::new(lo_opt(pos), hi_opt(sf)));
        }
        pos = pos.max(st);
    }
    if pos < rt {
        out.push(Validity::new(lo_opt(pos), hi_opt(rt)));
    }
    out
}

/// The smallest range covering every day of `range` where `slices` is not `value`.
fn differing(slices: &[Slice], range: Validity, value: &Value) -> Option<Validity> {
    let (rf, rt) = (lo(range.from), hi(range.to));
    let mut first: Option<Date> = None;
    let mut last = rf;
    let mut mark = |a: Date, b: Date| {
        if first.is_none() {
            first = Some(a);
        }
        last = b;
    };
    let mut pos = rf;
    for s in slices {
        let (sf, st) = (lo(s.validity.from), hi(s.validity.to));
        if st <= pos || sf >= rt {
            continue;
        }
        if sf > pos {
            mark(pos, sf);
        }
        if &s.value != value {
            mark(sf.max(pos), st.min(rt));
        }
        pos = pos.max(st);
    }
    if pos < rt {
        mark(pos, rt);
    }
    first.map(|f| Validity::new(lo_opt(f), hi_opt(last)))
}

/// The operations that bring `current` to the fact (values are moved, not copied).
fn ops_for(fact: Fact, current: Option<&Object>) -> Vec<Op> {
    let mut ops = Vec::new();
    match fact {
        Fact::State {
            uuid,
            life,
            since,
            timeline,
        } => {
            let Some(first) = timeline.first() else {
                return ops;
            };
            let Some(cur) = current else {
                // New object: one create over the start of its life, then the rest of the timeline.
                let mut slices = timeline.into_iter();
                let first = slices.next().expect("checked above");
                ops.push(Op::Create {
                    uuid,
                    validity: Validity::new(life.from, first.validity.to),
                    value: first.value,
                });
                for s in slices {
                    ops.push(Op::Update {
                        uuid,
                        validity: s.validity,
                        value: s.value,
                    });
                }
                return ops;
            };
            let kind = cur.kind;
            // Terminations go last: a termination before the updates could leave no active
            // day, and the object would be gone for them.
            let mut ends = Vec::new();
            let cur_from = cur.slices.first().map(|s| lo(s.validity.from));
            if lo(life.from) < lo(since) {
                // The input dates the start before `since`: before it, only activity changes.
                // Inactive days of the life get the first value ...
                let before = Validity::new(life.from, since);
                for gap in gaps(&cur.slices, before) {
                    ops.push(Op::Update {
                        uuid,
                        validity: gap,
                        value: first.value.clone(),
                    });
                }
                // ... and active days before the life end.
                if let (Some(start), Some(f)) = (life.from, cur_from)
                    && f < start
                {
                    ends.push(Op::Terminate {
                        uuid,
                        kind,
                        range: Validity::new(lo_opt(f), Some(start)),
                    });
                }
            } else if let Some(start) = life.from {
                // From `since` on, nothing is active before the life.
                let from = lo(since).max(cur_from.unwrap_or(Date::MAX));
                let range = Validity::new(lo_opt(from), Some(start));
                if !range.is_empty() && cur.active_in(&range) {
                    ends.push(Op::Terminate { uuid, kind, range });
                }
            }
            for s in timeline {
                if let Some(range) = differing(&cur.slices, s.validity, &s.value) {
                    ops.push(Op::Update {
                        uuid,
                        validity: range,
                        value: s.value,
                    });
                }
            }
            // Nothing active after the life.
            if let Some(end) = life.to
                && cur.active_in(&Validity::from_day(end))
            {
                ends.push(Op::Terminate {
                    uuid,
                    kind,
                    range: Validity::from_day(end),
                });
            }
            ops.append(&mut ends);
        }
        Fact::End { uuid, kind, at } => {
            if let Some(cur) = current
                && cur.active_in(&Validity::from_day(at))
            {
                ops.push(Op::Terminate {
                    uuid,
                    kind,
                    range: Validity::from_day(at),
                });
            }
        }
        Fact::Delete { uuid, kind } => {
            if current.is_some() {
                ops.push(Op::Delete { uuid, kind });
            }
        }
    }
    ops
}

/// Compute the minimal plan that makes `current` satisfy `facts`. Facts are taken in order and
/// each sees the effect of the ones before it (a later fact about the same object wins where
/// they disagree). `current` must hold every object the facts name that exists.
pub fn reconcile(facts: Vec<Fact>, current: &HashMap<Uuid, Object>) -> Plan {
    // Only objects named by several facts need their intermediate state kept (counted for
    // those only: a map over every fact of a large import would cost more than the plan).
    let mut remaining: HashMap<Uuid, usize> = {
        let mut uuids: Vec<Uuid> = facts.iter().map(Fact::uuid).collect();
        uuids.sort_unstable();
        let mut dups = HashMap::new();
        for w in uuids.windows(2) {
            if w[0] == w[1] {
                *dups.entry(w[0]).or_insert(1) += 1;
            }
        }
        dups
    };
    let mut overlay: HashMap<Uuid, Option<Object>> = HashMap::new();
    // Usually one operation per fact: reserving avoids copying a large plan while it grows.
    let mut plan = Plan {
        ops: Vec::with_capacity(facts.len() + facts.len() / 64),
    };
    // Facts are taken from the back of the reversed list, and its buffer shrinks as the plan
    // grows, so the two large buffers are not both held in full.
    let mut facts = facts;
    facts.reverse();
    while let Some(fact) = facts.pop() {
        if facts.capacity() > 4096 && facts.len() < facts.capacity() / 2 {
            facts.shrink_to_fit();
        }
        let uuid = fact.uuid();
        let more = match remaining.get_mut(&uuid) {
            Some(left) => {
                *left -= 1;
                *left > 0
            }
            None => false,
        };
        let cur = match overlay.get(&uuid) {
            Some(o) => o.as_ref(),
            None => current.get(&uuid),
        };
        let ops = ops_for(fact, cur);
        if ops.is_empty() {
            continue;
        }
        if more {
            let mut obj = cur.cloned();
            for op in &ops {
                // The ops were computed from this very state, so applying them cannot fail.
                obj = apply(obj, op).expect("reconcile produced an inapplicable operation");
            }
            overlay.insert(uuid, obj);
        }
        plan.ops.extend(ops);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Facet;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn v(name: &str) -> Value {
        Value::Facet(Facet {
            user_key: name.into(),
        })
    }
    fn day(n: i32) -> Date {
        date(2020, 1, 1)
            .checked_add(jiff::Span::new().days(n))
            .unwrap()
    }
    fn u(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn new_object_is_created_once() {
        let f = Fact::state(u(1), v("a"), Validity::from_day(day(0)), Some(day(10)));
        let plan = reconcile(vec![f], &HashMap::new());
        assert_eq!(
            plan.ops,
            vec![Op::Create {
                uuid: u(1),
                validity: Validity::from_day(day(0)),
                value: v("a")
            }]
        );
    }

    #[test]
    fn change_cuts_history_at_effective_date() {
        let cur = Object::new(u(1), vec![Slice::new(Validity::from_day(day(0)), v("a"))]).unwrap();
        let current = HashMap::from([(u(1), cur)]);
        let f = Fact::state(u(1), v("b"), Validity::from_day(day(0)), Some(day(10)));
        let plan = reconcile(vec![f], &current);
        assert_eq!(
            plan.ops,
            vec![Op::Update {
                uuid: u(1),
                validity: Validity::from_day(day(10)),
                value: v("b")
            }]
        );
        let same = Fact::state(u(1), v("a"), Validity::from_day(day(0)), Some(day(10)));
        assert!(
            reconcile(vec![same], &current).is_empty(),
            "no change, no write"
        );
    }

    #[test]
    fn later_start_and_earlier_end_terminate_outside_the_life() {
        let cur = Object::new(u(1), vec![Slice::new(Validity::from_day(day(0)), v("a"))]).unwrap();
        let current = HashMap::from([(u(1), cur)]);
        let f = Fact::state(
            u(1),
            v("a"),
            Validity::new(Some(day(5)), Some(day(20))),
            Some(day(10)),
        );
        let plan = reconcile(vec![f], &current);
        assert_eq!(
            plan.ops,
            vec![
                Op::Terminate {
                    uuid: u(1),
                    kind: Kind::Facet,
                    range: Validity::new(Some(day(0)), Some(day(5)))
                },
                Op::Terminate {
                    uuid: u(1),
                    kind: Kind::Facet,
                    range: Validity::from_day(day(20))
                },
            ]
        );
    }

    #[test]
    fn end_and_delete_are_noops_when_already_true() {
        let cur = Object::new(
            u(1),
            vec![Slice::new(
                Validity::new(Some(day(0)), Some(day(5))),
                v("a"),
            )],
        )
        .unwrap();
        let current = HashMap::from([(u(1), cur)]);
        assert!(
            reconcile(
                vec![Fact::End {
                    uuid: u(1),
                    kind: Kind::Facet,
                    at: day(5)
                }],
                &current
            )
            .is_empty()
        );
        assert_eq!(
            reconcile(
                vec![Fact::End {
                    uuid: u(1),
                    kind: Kind::Facet,
                    at: day(3)
                }],
                &current
            )
            .len(),
            1
        );
        assert!(
            reconcile(
                vec![Fact::Delete {
                    uuid: u(2),
                    kind: Kind::Facet
                }],
                &current
            )
            .is_empty()
        );
        assert_eq!(
            reconcile(
                vec![Fact::Delete {
                    uuid: u(1),
                    kind: Kind::Facet
                }],
                &current
            )
            .len(),
            1
        );
    }

    fn arb_object(id: u8) -> impl Strategy<Value = Option<Object>> {
        proptest::collection::vec((0i32..6, 1i32..6, 0u8..3, any::<bool>()), 0..5).prop_map(
            move |parts| {
                let mut pos = -10;
                let mut slices = Vec::new();
                for (gap, len, name, open) in parts {
                    let from = pos + gap;
                    let to = from + len;
                    slices.push(Slice::new(
                        Validity::new(Some(day(from)), Some(day(to))),
                        v(&name.to_string()),
                    ));
                    pos = to;
                    if open {
                        slices.last_mut().unwrap().validity.to = None;
                        break;
                    }
                }
                Object::new(u(id), slices).ok()
            },
        )
    }

    /// A `State` fact: a life, a `since`, and a timeline of one to three values from the later
    /// of them to the end of the life; or a [`Fact::from_date`].
    fn arb_state(id: u8) -> impl Strategy<Value = Fact> {
        prop_oneof![
            (
                -12i32..12,
                proptest::option::of(1i32..15),
                proptest::option::of(-12i32..20),
                proptest::collection::vec((1i32..6, 0u8..3), 1..4),
                any::<bool>()
            )
                .prop_map(move |(from, len, since, parts, open_start)| {
                    let life =
                        Validity::new((!open_start).then(|| day(from)), len.map(|l| day(from + l)));
                    let mut since = since.map(day);
                    if lo(since) >= hi(life.to) {
                        since = life.from;
                    }
                    let start = lo(since).max(lo(life.from));
                    let mut timeline: Vec<Slice> = Vec::new();
                    let mut pos = start;
                    for (i, (len, name)) in parts.iter().enumerate() {
                        let last = i + 1 == parts.len();
                        let to = if last {
                            life.to
                        } else {
                            let base = if pos == Date::MIN { day(-20) } else { pos };
                            Some(base.checked_add(jiff::Span::new().days(*len)).unwrap())
                        };
                        if hi(to) >= hi(life.to) && !last {
                            continue;
                        }
                        timeline.push(Slice::new(
                            Validity::new(lo_opt(pos), to),
                            v(&name.to_string()),
                        ));
                        pos = hi(to);
                    }
                    let timeline = crate::plan::normalise(timeline);
                    Fact::State {
                        uuid: u(id),
                        life,
                        since,
                        timeline,
                    }
                }),
            (-12i32..20, proptest::option::of(-12i32..25), 0u8..3).prop_map(
                move |(since, end, name)| {
                    Fact::from_date(u(id), v(&name.to_string()), day(since), end.map(day))
                }
            ),
        ]
    }

    fn arb_fact(id: u8) -> impl Strategy<Value = Fact> {
        prop_oneof![
            (
                -12i32..12,
                proptest::option::of(1i32..15),
                proptest::option::of(-12i32..20),
                0u8..3,
                any::<bool>()
            )
                .prop_map(move |(from, len, eff, name, open_start)| {
                    let from_d = if open_start { None } else { Some(day(from)) };
                    let life = Validity::new(from_d, len.map(|l| day(from + l)));
                    Fact::state(u(id), v(&name.to_string()), life, eff.map(day))
                }),
            arb_state(id),
            (-12i32..20).prop_map(move |at| Fact::End {
                uuid: u(id),
                kind: Kind::Facet,
                at: day(at)
            }),
            Just(Fact::Delete {
                uuid: u(id),
                kind: Kind::Facet
            }),
        ]
    }

    /// The value of an object on a day (`None`: inactive or no object).
    fn value_at(o: Option<&Object>, d: Date) -> Option<&Value> {
        o?.slices
            .iter()
            .find(|s| s.validity.contains(d))
            .map(|s| &s.value)
    }

    fn run(plan: &Plan, current: &HashMap<Uuid, Object>) -> HashMap<Uuid, Object> {
        let mut state = current.clone();
        for op in &plan.ops {
            let next = apply(state.remove(&op.uuid()), op).unwrap();
            if let Some(o) = next {
                o.check().unwrap();
                state.insert(o.uuid, o);
            }
        }
        state
    }

    proptest! {
        /// apply(plan(desired, current)) then plan again → empty, for any state and facts.
        #[test]
        fn reconcile_is_idempotent(a in arb_object(1), b in arb_object(2),
                                   facts in proptest::collection::vec(prop_oneof![arb_fact(1), arb_fact(2)], 0..4)) {
            let current: HashMap<Uuid, Object> = [a, b].into_iter().flatten().map(|o| (o.uuid, o)).collect();
            // Facts about one object may contradict each other; the last one must hold.
            let mut last: HashMap<Uuid, Fact> = HashMap::new();
            for f in &facts { last.insert(f.uuid(), f.clone()); }
            let plan = reconcile(facts.clone(), &current);
            let after = run(&plan, &current);
            let final_facts: Vec<Fact> = last.into_values().collect();
            let again = reconcile(final_facts, &after);
            prop_assert!(again.is_empty(), "second plan not empty: {:?}", again.ops);
            // No operation is a no-op.
            let mut state = current.clone();
            for op in &plan.ops {
                let before = state.remove(&op.uuid());
                let next = apply(before.clone(), op).unwrap();
                prop_assert_ne!(&before, &next, "no-op operation {}", op);
                if let Some(o) = next { state.insert(o.uuid, o); }
            }
        }

        /// The history guarantee of `Fact::State` (DESIGN.md §2 "History"): applying the plan
        /// leaves every day before `since` as it was, except that when the fact dates the
        /// object's start before `since`, days may change activity (never value) to match the
        /// life. From `since` on the object is exactly the timeline inside the life. The plan
        /// reconciled again is empty and no operation is a no-op. Facts are applied one after
        /// the other, each checked against the state the ones before it left.
        #[test]
        fn reconcile_keeps_history_before_since(a in arb_object(1), b in arb_object(2),
                                                facts in proptest::collection::vec(prop_oneof![arb_state(1), arb_state(2)], 1..4)) {
            let mut state: HashMap<Uuid, Object> = [a, b].into_iter().flatten().map(|o| (o.uuid, o)).collect();
            for fact in facts {
                let plan = reconcile(vec![fact.clone()], &state);
                let after = run(&plan, &state);
                let uuid = fact.uuid();
                let (old, new) = (state.get(&uuid), after.get(&uuid));
                match &fact {
                    Fact::State { life, since, timeline, .. } => {
                        let dated_earlier = lo(life.from) < lo(*since);
                        for n in -25..30 {
                            let d = day(n);
                            let (was, is) = (value_at(old, d), value_at(new, d));
                            if d < lo(*since) {
                                if !dated_earlier {
                                    prop_assert_eq!(was, is, "day {} before since {:?} changed", d, since);
                                } else if !life.contains(d) {
                                    prop_assert_eq!(is, None, "day {} before the life stays active", d);
                                } else if was.is_some() {
                                    prop_assert_eq!(was, is, "value of day {} before since changed", d);
                                } else {
                                    prop_assert_eq!(is, Some(&timeline[0].value), "day {} of the life not activated", d);
                                }
                            } else {
                                let want = timeline.iter().find(|s| s.validity.contains(d)).map(|s| &s.value);
                                let want = if life.contains(d) { want } else { None };
                                prop_assert_eq!(is, want, "day {} from since {:?} is not the timeline", d, since);
                            }
                        }
                    }
                    Fact::End { at, .. } => {
                        for n in -25..30 {
                            let d = day(n);
                            let want = if d < *at { value_at(old, d) } else { None };
                            prop_assert_eq!(value_at(new, d), want);
                        }
                    }
                    Fact::Delete { .. } => prop_assert!(new.is_none()),
                }
                let again = reconcile(vec![fact.clone()], &after);
                prop_assert!(again.is_empty(), "second plan not empty: {:?}", again.ops);
                let mut s = state.clone();
                for op in &plan.ops {
                    let before = s.remove(&op.uuid());
                    let next = apply(before.clone(), op).unwrap();
                    prop_assert_ne!(&before, &next, "no-op operation {}", op);
                    if let Some(o) = next { s.insert(o.uuid, o); }
                }
                state = after;
            }
        }
    }
}
