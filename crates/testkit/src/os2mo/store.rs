//! The in-memory "database": objects kept the way LoRa keeps them (an attribute timeline plus an
//! active timeline), the visible slices derived from them, a CPR index, and an undo log that makes
//! one request one transaction.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::os2mo::dates::{out_from, out_to};

/// The object types the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Facet,
    Class,
    ItSystem,
    OrgUnit,
    Person,
    Engagement,
    Address,
    ItUser,
    Manager,
    Association,
    Leave,
    Kle,
}

impl Kind {
    pub(crate) const ALL: [Kind; 12] = [
        Kind::Facet,
        Kind::Class,
        Kind::ItSystem,
        Kind::OrgUnit,
        Kind::Person,
        Kind::Engagement,
        Kind::Address,
        Kind::ItUser,
        Kind::Manager,
        Kind::Association,
        Kind::Leave,
        Kind::Kle,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// GraphQL type name of one validity.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Kind::Facet => "Facet",
            Kind::Class => "Class",
            Kind::ItSystem => "ITSystem",
            Kind::OrgUnit => "OrganisationUnit",
            Kind::Person => "Employee",
            Kind::Engagement => "Engagement",
            Kind::Address => "Address",
            Kind::ItUser => "ITUser",
            Kind::Manager => "Manager",
            Kind::Association => "Association",
            Kind::Leave => "Leave",
            Kind::Kle => "KLE",
        }
    }

    /// Collection name in snapshots.
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Kind::Facet => "facets",
            Kind::Class => "classes",
            Kind::ItSystem => "itsystems",
            Kind::OrgUnit => "org_units",
            Kind::Person => "persons",
            Kind::Engagement => "engagements",
            Kind::Address => "addresses",
            Kind::ItUser => "itusers",
            Kind::Manager => "managers",
            Kind::Association => "associations",
            Kind::Leave => "leaves",
            Kind::Kle => "kles",
        }
    }

    /// Whether the object is an "organisationfunktion" (bound to a person and/or a unit).
    pub(crate) fn is_function(self) -> bool {
        matches!(
            self,
            Kind::Engagement
                | Kind::Address
                | Kind::ItUser
                | Kind::Manager
                | Kind::Association
                | Kind::Leave
                | Kind::Kle
        )
    }

    /// LoRa's `funktionsnavn` (used in the `roles` text of unit terminations).
    pub(crate) fn function_name(self) -> &'static str {
        match self {
            Kind::Engagement => "Engagement",
            Kind::Address => "Adresse",
            Kind::ItUser => "IT-system",
            Kind::Manager => "Leder",
            Kind::Association => "Tilknytning",
            Kind::Leave => "Orlov",
            Kind::Kle => "KLE",
            _ => "",
        }
    }
}

/// Attribute values over `[from, to)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Slice {
    pub from: Date,
    pub to: Date,
    pub vals: Map<String, Value>,
}

/// One stored object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Obj {
    /// Sorted, non-overlapping, adjacent equal slices merged.
    pub attrs: Vec<Slice>,
    /// Sorted, non-overlapping, non-adjacent active intervals.
    pub active: Vec<(Date, Date)>,
    /// Registration times (one per write), server clock.
    pub registrations: Vec<jiff::Timestamp>,
}

/// Merge adjacent slices with equal values and drop empty ones.
pub(crate) fn normalize_attrs(attrs: Vec<Slice>) -> Vec<Slice> {
    let mut out: Vec<Slice> = Vec::with_capacity(attrs.len());
    for s in attrs {
        if s.from >= s.to {
            continue;
        }
        if let Some(last) = out.last_mut()
            && last.to == s.from
            && last.vals == s.vals
        {
            last.to = s.to;
            continue;
        }
        out.push(s);
    }
    out
}

/// Union of intervals, sorted and merged.
pub(crate) fn normalize_intervals(mut v: Vec<(Date, Date)>) -> Vec<(Date, Date)> {
    v.retain(|(a, b)| a < b);
    v.sort();
    let mut out: Vec<(Date, Date)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        if let Some(last) = out.last_mut()
            && a <= last.1
        {
            last.1 = last.1.max(b);
            continue;
        }
        out.push((a, b));
    }
    out
}

/// `v` minus `[from, to)`.
pub(crate) fn subtract_interval(v: &[(Date, Date)], from: Date, to: Date) -> Vec<(Date, Date)> {
    let mut out = Vec::new();
    for &(a, b) in v {
        if b <= from || a >= to {
            out.push((a, b));
            continue;
        }
        if a < from {
            out.push((a, from));
        }
        if b > to {
            out.push((to, b));
        }
    }
    normalize_intervals(out)
}

impl Obj {
    /// A new object with `vals` over `[from, to)`, active over the same interval.
    pub(crate) fn new(from: Date, to: Date, vals: Map<String, Value>) -> Obj {
        Obj {
            attrs: normalize_attrs(vec![Slice { from, to, vals }]),
            active: normalize_intervals(vec![(from, to)]),
            registrations: vec![jiff::Timestamp::now()],
        }
    }

    /// The slices a reader sees: attributes ∩ active, adjacent equal slices merged.
    pub(crate) fn visible(&self) -> Vec<Slice> {
        let mut out = Vec::new();
        let mut ai = 0;
        for s in &self.attrs {
            while ai < self.active.len() && self.active[ai].1 <= s.from {
                ai += 1;
            }
            let mut j = ai;
            while j < self.active.len() && self.active[j].0 < s.to {
                let (a, b) = self.active[j];
                let from = a.max(s.from);
                let to = b.min(s.to);
                if from < to {
                    out.push(Slice {
                        from,
                        to,
                        vals: s.vals.clone(),
                    });
                }
                j += 1;
            }
        }
        normalize_attrs(out)
    }

    /// Whether any visible slice overlaps `[from, to)`.
    pub(crate) fn visible_overlaps(&self, from: Date, to: Date) -> bool {
        self.visible()
            .iter()
            .any(|s| overlaps(s.from, s.to, from, to))
    }

    /// The visible covered intervals (slices merged regardless of values).
    pub(crate) fn coverage(&self) -> Vec<(Date, Date)> {
        normalize_intervals(self.visible().iter().map(|s| (s.from, s.to)).collect())
    }

    /// Overwrite `patch` over `[from, to)`; days without attributes take the values of the
    /// nearest earlier slice (or the nearest later one), and the interval becomes active.
    /// `full` replaces the whole value map instead of patching it.
    pub(crate) fn apply_update(
        &mut self,
        from: Date,
        to: Date,
        patch: &Map<String, Value>,
        full: bool,
    ) {
        let base_for = |d: Date, attrs: &[Slice]| -> Map<String, Value> {
            let earlier = attrs.iter().rev().find(|s| s.from <= d);
            let later = attrs.iter().find(|s| s.from > d);
            earlier
                .or(later)
                .map(|s| s.vals.clone())
                .unwrap_or_default()
        };
        let merge = |mut vals: Map<String, Value>| -> Map<String, Value> {
            if full {
                return patch.clone();
            }
            for (k, v) in patch {
                vals.insert(k.clone(), v.clone());
            }
            vals
        };
        let mut out = Vec::new();
        let mut cursor = from;
        for s in &self.attrs {
            if s.to <= from || s.from >= to {
                out.push(s.clone());
                continue;
            }
            if s.from < from {
                out.push(Slice {
                    from: s.from,
                    to: from,
                    vals: s.vals.clone(),
                });
            }
            let a = s.from.max(from);
            if cursor < a {
                out.push(Slice {
                    from: cursor,
                    to: a,
                    vals: merge(base_for(cursor, &self.attrs)),
                });
            }
            let b = s.to.min(to);
            out.push(Slice {
                from: a,
                to: b,
                vals: merge(s.vals.clone()),
            });
            cursor = b;
            if s.to > to {
                out.push(Slice {
                    from: to,
                    to: s.to,
                    vals: s.vals.clone(),
                });
            }
        }
        if cursor < to {
            out.push(Slice {
                from: cursor,
                to,
                vals: merge(base_for(cursor, &self.attrs)),
            });
        }
        out.sort_by_key(|s| s.from);
        self.attrs = normalize_attrs(out);
        let mut act = self.active.clone();
        act.push((from, to));
        self.active = normalize_intervals(act);
    }

    /// Removes `key` from every slice outside `[from, to)`. A real OS2mo keeps some values
    /// (a unit's `org_unit_hierarchy`) as a LoRa zero-to-many relation, and an update that
    /// names one replaces the whole relation with the update's period: the value is left on
    /// the update's days only. `apply_update` has already split the slices at `from` and `to`.
    pub(crate) fn keep_only_within(&mut self, from: Date, to: Date, key: &str) {
        for s in &mut self.attrs {
            if s.to <= from || s.from >= to {
                s.vals.remove(key);
            }
        }
        self.attrs = normalize_attrs(std::mem::take(&mut self.attrs));
    }

    /// Same content (attributes and activity) as `other`.
    pub(crate) fn same_content(&self, other: &Obj) -> bool {
        self.attrs == other.attrs && self.active == other.active
    }

    /// The snapshot form (for debugging and test assertions).
    pub(crate) fn to_json(&self) -> Value {
        let slices: Vec<Value> = self
            .attrs
            .iter()
            .map(|s| serde_json::json!({"from": out_from(s.from), "to": out_to(s.to), "values": s.vals}))
            .collect();
        let active: Vec<Value> = self
            .active
            .iter()
            .map(|&(a, b)| serde_json::json!({"from": out_from(a), "to": out_to(b)}))
            .collect();
        let visible: Vec<Value> = self
            .visible()
            .iter()
            .map(|s| serde_json::json!({"from": out_from(s.from), "to": out_to(s.to), "values": s.vals}))
            .collect();
        serde_json::json!({
            "attributes": slices,
            "active": active,
            "visible": visible,
            "registrations": self.registrations.len(),
        })
    }
}

/// Whether `[a, b)` and `[c, d)` overlap (an empty window `[c, c)` counts as the day `c`).
pub(crate) fn overlaps(a: Date, b: Date, c: Date, d: Date) -> bool {
    if c == d {
        return a <= c && c < b;
    }
    a < d && c < b
}

/// Whether `[from, to)` lies inside the union `cov`.
pub(crate) fn covered(cov: &[(Date, Date)], from: Date, to: Date) -> bool {
    if from >= to {
        return cov.iter().any(|&(a, b)| a <= from && from <= b);
    }
    cov.iter().any(|&(a, b)| a <= from && to <= b)
}

/// All objects, per kind, ordered by uuid.
#[derive(Default)]
pub(crate) struct Store {
    pub objects: [BTreeMap<Uuid, Obj>; 12],
    /// CPR number → person uuid (any CPR appearing in any slice of the person).
    pub cprs: HashMap<String, Uuid>,
}

/// Undo information of one transaction: the first-seen prior state of each touched object.
#[derive(Default)]
pub(crate) struct UndoLog {
    entries: Vec<(Kind, Uuid, Option<Obj>)>,
    seen: std::collections::HashSet<(Kind, Uuid)>,
}

impl Store {
    pub(crate) fn map(&self, kind: Kind) -> &BTreeMap<Uuid, Obj> {
        &self.objects[kind.index()]
    }

    pub(crate) fn get(&self, kind: Kind, uuid: &Uuid) -> Option<&Obj> {
        self.objects[kind.index()].get(uuid)
    }

    fn person_cprs(obj: &Obj) -> Vec<String> {
        let mut v: Vec<String> = obj
            .attrs
            .iter()
            .filter_map(|s| {
                s.vals
                    .get("cpr_number")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Put (or with `None` remove) an object, recording the prior state in `undo`.
    pub(crate) fn put(&mut self, undo: &mut UndoLog, kind: Kind, uuid: Uuid, obj: Option<Obj>) {
        if undo.seen.insert((kind, uuid)) {
            let prior = self.objects[kind.index()].get(&uuid).cloned();
            undo.entries.push((kind, uuid, prior));
        }
        self.set_raw(kind, uuid, obj);
    }

    fn set_raw(&mut self, kind: Kind, uuid: Uuid, obj: Option<Obj>) {
        let map = &mut self.objects[kind.index()];
        if kind == Kind::Person {
            if let Some(old) = map.get(&uuid) {
                for c in Self::person_cprs(old) {
                    if self.cprs.get(&c) == Some(&uuid) {
                        self.cprs.remove(&c);
                    }
                }
            }
            if let Some(new) = &obj {
                for c in Self::person_cprs(new) {
                    self.cprs.insert(c, uuid);
                }
            }
        }
        let map = &mut self.objects[kind.index()];
        match obj {
            Some(o) => {
                map.insert(uuid, o);
            }
            None => {
                map.remove(&uuid);
            }
        }
    }

    /// Undo every change recorded in `undo` (in reverse order).
    pub(crate) fn rollback(&mut self, undo: UndoLog) {
        for (kind, uuid, prior) in undo.entries.into_iter().rev() {
            self.set_raw(kind, uuid, prior);
        }
    }

    /// The whole store as JSON.
    pub(crate) fn snapshot(&self) -> Value {
        let mut out = Map::new();
        for kind in Kind::ALL {
            let objs: Map<String, Value> = self
                .map(kind)
                .iter()
                .map(|(u, o)| (u.to_string(), o.to_json()))
                .collect();
            out.insert(kind.collection().into(), Value::Object(objs));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os2mo::dates::POS_INF;
    use jiff::civil::date;
    use serde_json::json;

    fn vals(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn update_splits_and_slices() {
        let mut o = Obj::new(date(2020, 1, 1), POS_INF, vals(json!({"name": "a"})));
        o.apply_update(
            date(2023, 1, 1),
            date(2024, 1, 1),
            &vals(json!({"name": "b"})),
            false,
        );
        let v = o.visible();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].vals["name"], "b");
        assert_eq!(v[2].vals["name"], "a");
        assert_eq!(v[2].to, POS_INF);
    }

    #[test]
    fn update_reactivates_and_fills_gaps() {
        let mut o = Obj::new(date(2021, 3, 1), POS_INF, vals(json!({"f": 1})));
        o.active = subtract_interval(&o.active, date(2024, 1, 1), POS_INF);
        assert_eq!(o.visible().last().unwrap().to, date(2024, 1, 1));
        o.apply_update(date(2023, 6, 1), POS_INF, &vals(json!({"f": 2})), false);
        let v = o.visible();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].from, v[0].to), (date(2021, 3, 1), date(2023, 6, 1)));
        assert_eq!(v[1].to, POS_INF);
        // An update before the object existed takes the values of the nearest later slice.
        o.apply_update(date(2020, 1, 1), date(2020, 6, 1), &vals(json!({})), false);
        assert_eq!(o.visible()[0].vals["f"], 1);
    }

    #[test]
    fn intervals() {
        let v = normalize_intervals(vec![
            (date(2020, 1, 1), date(2021, 1, 1)),
            (date(2021, 1, 1), date(2022, 1, 1)),
        ]);
        assert_eq!(v, vec![(date(2020, 1, 1), date(2022, 1, 1))]);
        let g = subtract_interval(&v, date(2020, 6, 1), date(2020, 7, 1));
        assert_eq!(g.len(), 2);
        assert!(covered(&g, date(2020, 1, 1), date(2020, 6, 1)));
        assert!(!covered(&g, date(2020, 1, 1), date(2020, 6, 2)));
    }
}
