//! The change plan: what reconcile decides and a backend applies atomically. The operations
//! mirror MO's write semantics (`specs/os2mo-api.md` §2.6), and [`apply`] is their exact meaning
//! on an object's slices, shared by the embedded store and the tests.

use crate::validity::{hi, hi_opt, lo, lo_opt};
use crate::{Kind, Object, Slice, Validity, Value};
use std::fmt;
use uuid::Uuid;

/// One write.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    /// A new object with one slice. Only for uuids that do not exist (on a real MO a create with
    /// a known uuid replaces the object's whole history).
    Create {
        uuid: Uuid,
        validity: Validity,
        value: Value,
    },
    /// Write `value` over `validity`; before and after are untouched. Re-activates inactive days.
    Update {
        uuid: Uuid,
        validity: Validity,
        value: Value,
    },
    /// Make the object inactive over `range` (`to = None`: from `range.from` on, i.e. an end).
    Terminate {
        uuid: Uuid,
        kind: Kind,
        range: Validity,
    },
    /// Remove the object and its whole history.
    Delete { uuid: Uuid, kind: Kind },
}

impl Op {
    pub fn uuid(&self) -> Uuid {
        match self {
            Op::Create { uuid, .. } | Op::Update { uuid, .. } => *uuid,
            Op::Terminate { uuid, .. } | Op::Delete { uuid, .. } => *uuid,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Op::Create { value, .. } | Op::Update { value, .. } => value.kind(),
            Op::Terminate { kind, .. } | Op::Delete { kind, .. } => *kind,
        }
    }
}

/// One line per operation, for `--dry-run` and logs. Never contains a CPR number: values are
/// shown by kind and user_key only.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Create {
                uuid,
                validity,
                value,
            } => {
                write!(
                    f,
                    "create    {} {uuid} {validity} user_key={:?}",
                    value.kind(),
                    value.user_key()
                )
            }
            Op::Update {
                uuid,
                validity,
                value,
            } => {
                write!(
                    f,
                    "update    {} {uuid} {validity} user_key={:?}",
                    value.kind(),
                    value.user_key()
                )
            }
            Op::Terminate { uuid, kind, range } => write!(f, "terminate {kind} {uuid} {range}"),
            Op::Delete { uuid, kind } => write!(f, "delete    {kind} {uuid}"),
        }
    }
}

/// Counts of a plan, for the one-line summary.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub terminated: usize,
    pub deleted: usize,
}

/// An ordered list of writes; dependencies come first.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Plan {
    pub ops: Vec<Op>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for op in &self.ops {
            match op {
                Op::Create { .. } => c.created += 1,
                Op::Update { .. } => c.updated += 1,
                Op::Terminate { .. } => c.terminated += 1,
                Op::Delete { .. } => c.deleted += 1,
            }
        }
        c
    }

    pub fn extend(&mut self, other: Plan) {
        self.ops.extend(other.ops);
    }
}

/// Why an operation cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("create {kind} {uuid}: the object already exists")]
    Exists { uuid: Uuid, kind: Kind },
    #[error("{op} {kind} {uuid}: no such object")]
    Missing {
        op: &'static str,
        uuid: Uuid,
        kind: Kind,
    },
    #[error("{kind} {uuid}: the operation is a {found}, but the object is a {kind}")]
    WrongKind { uuid: Uuid, kind: Kind, found: Kind },
    #[error("{kind} {uuid}: empty validity {validity}")]
    EmptyValidity {
        uuid: Uuid,
        kind: Kind,
        validity: Validity,
    },
}

/// Remove `range` from a list of slices (splitting slices at its edges).
fn cut(slices: Vec<Slice>, range: &Validity) -> Vec<Slice> {
    let (rf, rt) = (lo(range.from), hi(range.to));
    let mut out = Vec::with_capacity(slices.len() + 1);
    for s in slices {
        let (sf, st) = (lo(s.validity.from), hi(s.validity.to));
        if st <= rf || sf >= rt {
            out.push(s);
            continue;
        }
        if sf < rf {
            out.push(Slice::new(
                Validity::new(lo_opt(sf), hi_opt(rf)),
                s.value.clone(),
            ));
        }
        if st > rt {
            out.push(Slice::new(Validity::new(lo_opt(rt), hi_opt(st)), s.value));
        }
    }
    out
}

/// Merge adjacent slices with equal values, so equal states have one representation.
pub fn normalise(slices: Vec<Slice>) -> Vec<Slice> {
    let mut out: Vec<Slice> = Vec::with_capacity(slices.len());
    for s in slices {
        if let Some(prev) = out.last_mut()
            && prev.validity.to.is_some()
            && prev.validity.to == s.validity.from
            && prev.value == s.value
        {
            prev.validity.to = s.validity.to;
            continue;
        }
        out.push(s);
    }
    out
}

/// The meaning of one operation: the object after it (`None` = no object).
pub fn apply(current: Option<Object>, op: &Op) -> Result<Option<Object>, ApplyError> {
    apply_owned(current, op.clone())
}

/// [`apply`], taking the operation by value (its value moves into the object, no copy).
pub fn apply_owned(current: Option<Object>, op: Op) -> Result<Option<Object>, ApplyError> {
    let (uuid, kind) = (op.uuid(), op.kind());
    if let Some(obj) = &current
        && obj.kind != kind
    {
        return Err(ApplyError::WrongKind {
            uuid,
            kind: obj.kind,
            found: kind,
        });
    }
    match op {
        Op::Create {
            validity, value, ..
        } => {
            if current.is_some() {
                return Err(ApplyError::Exists { uuid, kind });
            }
            if validity.is_empty() {
                return Err(ApplyError::EmptyValidity {
                    uuid,
                    kind,
                    validity,
                });
            }
            Ok(Some(Object {
                uuid,
                kind,
                slices: vec![Slice::new(validity, value)],
            }))
        }
        Op::Update {
            validity, value, ..
        } => {
            let Some(obj) = current else {
                return Err(ApplyError::Missing {
                    op: "update",
                    uuid,
                    kind,
                });
            };
            if validity.is_empty() {
                return Err(ApplyError::EmptyValidity {
                    uuid,
                    kind,
                    validity,
                });
            }
            let mut slices = cut(obj.slices, &validity);
            let at = slices.partition_point(|s| lo(s.validity.from) < lo(validity.from));
            slices.insert(at, Slice::new(validity, value));
            Ok(Some(Object {
                uuid,
                kind,
                slices: normalise(slices),
            }))
        }
        Op::Terminate { range, .. } => {
            let Some(obj) = current else {
                return Err(ApplyError::Missing {
                    op: "terminate",
                    uuid,
                    kind,
                });
            };
            let slices = cut(obj.slices, &range);
            // An object with no active day left is invisible to every MO read: no slices.
            if slices.is_empty() {
                Ok(None)
            } else {
                Ok(Some(Object { uuid, kind, slices }))
            }
        }
        Op::Delete { .. } => {
            if current.is_none() {
                return Err(ApplyError::Missing {
                    op: "delete",
                    uuid,
                    kind,
                });
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Facet;
    use jiff::civil::{Date, date};

    fn v(name: &str) -> Value {
        Value::Facet(Facet {
            user_key: name.into(),
        })
    }
    fn d(y: i16) -> Option<Date> {
        Some(date(y, 1, 1))
    }
    fn obj(slices: &[(Option<Date>, Option<Date>, &str)]) -> Object {
        let slices = slices
            .iter()
            .map(|(f, t, n)| Slice::new(Validity::new(*f, *t), v(n)))
            .collect();
        Object::new(Uuid::nil(), slices).unwrap()
    }

    #[test]
    fn update_splits_and_merges() {
        let o = obj(&[(d(2020), None, "a")]);
        let op = Op::Update {
            uuid: Uuid::nil(),
            validity: Validity::new(d(2021), d(2022)),
            value: v("b"),
        };
        let o = apply(Some(o), &op).unwrap().unwrap();
        assert_eq!(
            o,
            obj(&[
                (d(2020), d(2021), "a"),
                (d(2021), d(2022), "b"),
                (d(2022), None, "a")
            ])
        );
        let back = Op::Update {
            uuid: Uuid::nil(),
            validity: Validity::new(d(2021), d(2022)),
            value: v("a"),
        };
        assert_eq!(
            apply(Some(o), &back).unwrap().unwrap(),
            obj(&[(d(2020), None, "a")])
        );
    }

    #[test]
    fn terminate_ends_or_cuts_a_gap() {
        let o = obj(&[(d(2020), None, "a")]);
        let end = Op::Terminate {
            uuid: Uuid::nil(),
            kind: Kind::Facet,
            range: Validity::from_day(date(2023, 1, 1)),
        };
        assert_eq!(
            apply(Some(o.clone()), &end).unwrap().unwrap(),
            obj(&[(d(2020), d(2023), "a")])
        );
        let gap = Op::Terminate {
            uuid: Uuid::nil(),
            kind: Kind::Facet,
            range: Validity::new(d(2021), d(2022)),
        };
        assert_eq!(
            apply(Some(o), &gap).unwrap().unwrap(),
            obj(&[(d(2020), d(2021), "a"), (d(2022), None, "a")])
        );
    }

    #[test]
    fn update_reactivates_and_create_refuses_existing() {
        let o = obj(&[(d(2020), d(2021), "a")]);
        let op = Op::Update {
            uuid: Uuid::nil(),
            validity: Validity::from_day(date(2022, 1, 1)),
            value: v("a"),
        };
        let o = apply(Some(o), &op).unwrap().unwrap();
        assert_eq!(o, obj(&[(d(2020), d(2021), "a"), (d(2022), None, "a")]));
        let c = Op::Create {
            uuid: Uuid::nil(),
            validity: Validity::ALWAYS,
            value: v("x"),
        };
        assert!(matches!(apply(Some(o), &c), Err(ApplyError::Exists { .. })));
    }
}
