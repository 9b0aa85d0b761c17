//! What changed between the last imported dump and this one (DESIGN ruling 1): records are
//! compared by digest, so `lastChanged`, `numerator` and `denominator` alone never count. Also
//! the checks on the whole unit tree (unknown parents, cycles) and unit filtering
//! (`integrations.opus.units.filter_ids`) on the full hierarchy of the dump (ruling 3).

use super::parse::{Dump, Unit};
use super::state::Digests;
use std::collections::{HashMap, HashSet};

/// A unit tree that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error(
        "{source_name}:{line}: orgUnit id=\"{id}\", field parentOrgUnit: unknown parent unit {parent:?}"
    )]
    UnknownParent {
        source_name: String,
        line: u64,
        id: String,
        parent: String,
    },
    #[error("{source_name}:{line}: orgUnit id=\"{id}\", field parentOrgUnit: the unit tree has a cycle: {}", cycle.join(" → "))]
    Cycle {
        source_name: String,
        line: u64,
        id: String,
        cycle: Vec<String>,
    },
    #[error("{source_name}:{line}: orgUnit id=\"{id}\" appears twice (first at line {first})")]
    Duplicate {
        source_name: String,
        line: u64,
        id: String,
        first: u64,
    },
}

/// The checked unit tree of a dump.
pub struct Tree<'a> {
    pub by_id: HashMap<&'a str, &'a Unit>,
    /// Depth of each unit (roots 0), for parents-first ordering.
    pub depth: HashMap<&'a str, usize>,
}

impl<'a> Tree<'a> {
    /// Check that every parent exists and there are no cycles or duplicate ids.
    pub fn check(dump: &'a Dump, source_name: &str) -> Result<Tree<'a>, TreeError> {
        let mut by_id: HashMap<&str, &Unit> = HashMap::with_capacity(dump.units.len());
        for u in &dump.units {
            if let Some(first) = by_id.insert(u.id.as_str(), u) {
                return Err(TreeError::Duplicate {
                    source_name: source_name.into(),
                    line: u.line,
                    id: u.id.clone(),
                    first: first.line,
                });
            }
        }
        for u in &dump.units {
            if let Some(p) = &u.parent
                && !by_id.contains_key(p.as_str())
            {
                return Err(TreeError::UnknownParent {
                    source_name: source_name.into(),
                    line: u.line,
                    id: u.id.clone(),
                    parent: p.clone(),
                });
            }
        }
        let mut depth: HashMap<&str, usize> = HashMap::with_capacity(by_id.len());
        for u in &dump.units {
            let mut chain: Vec<&str> = Vec::new();
            let mut cur: &str = &u.id;
            let base = loop {
                if let Some(d) = depth.get(cur) {
                    break *d + 1;
                }
                if chain.contains(&cur) {
                    let start = chain.iter().position(|c| *c == cur).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        chain[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(cur.to_string());
                    let unit = by_id[cur];
                    return Err(TreeError::Cycle {
                        source_name: source_name.into(),
                        line: unit.line,
                        id: unit.id.clone(),
                        cycle,
                    });
                }
                chain.push(cur);
                match &by_id[cur].parent {
                    Some(p) => cur = p.as_str(),
                    None => break 0,
                }
            };
            for (i, id) in chain.iter().rev().enumerate() {
                depth.insert(id, base + i);
            }
        }
        Ok(Tree { by_id, depth })
    }

    /// Ids of the units in the subtrees of `filter_ids` (the listed units included).
    pub fn filtered(&self, filter_ids: &[String]) -> HashSet<&'a str> {
        let mut out = HashSet::new();
        if filter_ids.is_empty() {
            return out;
        }
        for (&id, _) in self.by_id.iter() {
            let mut cur = Some(id);
            while let Some(c) = cur {
                if filter_ids.iter().any(|f| f == c) {
                    out.insert(id);
                    break;
                }
                cur = self.by_id[c].parent.as_deref();
            }
        }
        out
    }
}

/// The unit tree as text, `<longName> (<id>)` indented by level, children in dump order
/// (`dipex opus tree`).
pub fn tree_lines(dump: &Dump) -> Vec<String> {
    let mut children: HashMap<Option<&str>, Vec<&Unit>> = HashMap::new();
    for u in &dump.units {
        children.entry(u.parent.as_deref()).or_default().push(u);
    }
    let mut out = Vec::with_capacity(dump.units.len());
    let mut stack: Vec<(&Unit, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|u| (*u, 0))
        .collect();
    while let Some((u, level)) = stack.pop() {
        out.push(format!(
            "{}{} ({})",
            "    ".repeat(level),
            u.long_name,
            u.id
        ));
        if out.len() > dump.units.len() {
            break; // a cycle; Tree::check reports it
        }
        for c in children
            .get(&Some(u.id.as_str()))
            .into_iter()
            .flatten()
            .rev()
        {
            stack.push((c, level + 1));
        }
    }
    out
}

/// The records of one dump that need work, by id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New or changed units, not filtered, parents first.
    pub units: Vec<String>,
    /// Units in the previous dump that are gone from this one.
    pub vanished_units: Vec<String>,
    /// Units filtered away (with their subtrees), from the full hierarchy.
    pub filtered_units: Vec<String>,
    /// New or changed employments with data (not leave markers).
    pub employees: Vec<String>,
    /// New or changed leave markers.
    pub leaves: Vec<String>,
    /// Employments in the previous dump (not as leave markers) that are gone: cancelled.
    pub cancelled: Vec<String>,
    /// True when nothing was imported before: every record is new to the source. (The runner
    /// clears it when a previous import exists but its digests are unknown: then every record
    /// counts as changed, not as new.)
    pub first: bool,
    /// Units and employments the previous dump did not have (empty when `first`).
    pub new: HashSet<String>,
}

impl Changes {
    /// Whether the source has this unit or employment for the first time: then it speaks
    /// about its whole life, not only from the change on.
    pub fn is_new(&self, id: &str) -> bool {
        self.first || self.new.contains(id)
    }
}

/// Compare a dump with the digests of the previous one. `only` restricts everything to the
/// records with that OPUS id.
pub fn changes(
    dump: &Dump,
    tree: &Tree<'_>,
    previous: Option<&Digests>,
    filter_ids: &[String],
    only: Option<&str>,
) -> Changes {
    let keep = |id: &str| only.is_none_or(|o| o == id);
    let filtered = tree.filtered(filter_ids);
    let mut out = Changes {
        first: previous.is_none(),
        ..Changes::default()
    };
    let mut units: Vec<&Unit> = dump
        .units
        .iter()
        .filter(|u| keep(&u.id) && !filtered.contains(u.id.as_str()))
        .filter(|u| previous.is_none_or(|p| p.units.get(&u.id) != Some(&u.digest)))
        .collect();
    units.sort_by_key(|u| tree.depth[u.id.as_str()]);
    if let Some(p) = previous {
        out.new.extend(
            units
                .iter()
                .filter(|u| !p.units.contains_key(&u.id))
                .map(|u| u.id.clone()),
        );
    }
    out.units = units.into_iter().map(|u| u.id.clone()).collect();
    let mut filtered: Vec<String> = filtered
        .into_iter()
        .filter(|id| keep(id))
        .map(str::to_string)
        .collect();
    filtered.sort_by_key(|id| std::cmp::Reverse(tree.depth[id.as_str()]));
    out.filtered_units = filtered;
    let mut seen_emp: HashSet<&str> = HashSet::with_capacity(dump.employees.len());
    for e in &dump.employees {
        seen_emp.insert(&e.id);
        if !keep(&e.id) {
            continue;
        }
        let changed =
            previous.is_none_or(|p| p.employees.get(&e.id).map(|(d, _)| d) != Some(&e.digest));
        if !changed {
            continue;
        }
        if e.is_leave_marker() {
            out.leaves.push(e.id.clone());
        } else {
            if previous.is_some_and(|p| !p.employees.contains_key(&e.id)) {
                out.new.insert(e.id.clone());
            }
            out.employees.push(e.id.clone());
        }
    }
    if let Some(prev) = previous {
        let mut vanished: Vec<&String> = prev
            .units
            .keys()
            .filter(|id| keep(id) && !tree.by_id.contains_key(id.as_str()))
            .collect();
        vanished.sort();
        out.vanished_units = vanished.into_iter().cloned().collect();
        let mut cancelled: Vec<&String> = prev
            .employees
            .iter()
            .filter(|(id, (_, leave))| !leave && keep(id) && !seen_emp.contains(id.as_str()))
            .map(|(id, _)| id)
            .collect();
        cancelled.sort();
        out.cancelled = cancelled.into_iter().cloned().collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opus::parse::parse_dump;

    fn dump(units: &[(&str, &str)]) -> Dump {
        let mut xml = String::from("<kmd>");
        for (id, parent) in units {
            xml.push_str(&format!(
                "<orgUnit id=\"{id}\" client=\"1\" lastChanged=\"2020-01-01\"><parentOrgUnit>{parent}</parentOrgUnit><longName>U{id}</longName></orgUnit>\n"
            ));
        }
        xml.push_str("</kmd>");
        parse_dump(xml.as_bytes(), "t.xml").unwrap()
    }

    fn filtered(d: &Dump, ids: &[&str]) -> Vec<String> {
        let t = Tree::check(d, "t.xml").unwrap();
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let mut f: Vec<String> = t.filtered(&ids).into_iter().map(str::to_string).collect();
        f.sort();
        f
    }

    #[test]
    fn filtering_takes_whole_subtrees() {
        // The upstream examples (opus.md §5).
        let d = dump(&[
            ("1", ""),
            ("2", "1"),
            ("3", "1"),
            ("4", "2"),
            ("5", "2"),
            ("6", "3"),
            ("7", "5"),
        ]);
        assert_eq!(filtered(&d, &["1"]), ["1", "2", "3", "4", "5", "6", "7"]);
        assert_eq!(filtered(&d, &["2"]), ["2", "4", "5", "7"]);
        assert_eq!(filtered(&d, &["3"]), ["3", "6"]);
        assert_eq!(filtered(&d, &["3", "5"]), ["3", "5", "6", "7"]);
        assert_eq!(filtered(&d, &["3", "7"]), ["3", "6", "7"]);
        assert!(filtered(&d, &[]).is_empty());
    }

    #[test]
    fn unknown_parents_and_cycles_are_errors() {
        let d = dump(&[("1", ""), ("2", "9")]);
        let e = Tree::check(&d, "t.xml").err().unwrap().to_string();
        assert!(
            e.contains("orgUnit id=\"2\"")
                && e.contains("parentOrgUnit")
                && e.contains("\"9\"")
                && e.contains("t.xml:2:"),
            "{e}"
        );
        let d = dump(&[("1", ""), ("2", "3"), ("3", "4"), ("4", "2")]);
        let e = Tree::check(&d, "t.xml").err().unwrap().to_string();
        assert!(e.contains("cycle") && e.contains("2 → 3 → 4 → 2"), "{e}");
        let d = dump(&[("1", ""), ("1", "")]);
        assert!(
            Tree::check(&d, "t.xml")
                .err()
                .unwrap()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn tree_is_rendered_depth_first() {
        let d = dump(&[("1", ""), ("2", "1"), ("3", "2"), ("4", "1")]);
        assert_eq!(
            tree_lines(&d),
            ["U1 (1)", "    U2 (2)", "        U3 (3)", "    U4 (4)"]
        );
    }

    #[test]
    fn changes_order_parents_first() {
        let d = dump(&[("3", "2"), ("2", "1"), ("1", "")]);
        let t = Tree::check(&d, "t.xml").unwrap();
        let c = changes(&d, &t, None, &[], None);
        assert_eq!(c.units, ["1", "2", "3"]);
        assert!(c.first);
    }
}
