//! The plan2learn export itself, pure: an MO snapshot, the settings, "today" and the texts of
//! the units' DAR addresses in; the rows of the five files out. The rules (the seed document,
//! `specs/plan2learn.md` §1 and DESIGN.md ruling 11) are described in `docs/plan2learn.md`.

use super::read::Snapshot;
use crate::common::address;
use dipex_model::{Address, Class, Date, Engagement, Manager, Object, OrgUnit, Person, Value};
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// The export's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `exporters.plan2learn.root_unit`.
    pub root_unit: Uuid,
    /// `exporters.plan2learn.allowed_engagement_types`: class uuids or user_keys.
    pub allowed_engagement_types: Vec<String>,
    /// `integrations.SD_Lon.import.too_deep`: unit level class names.
    pub too_deep: Vec<String>,
    /// `plan2learn.email.priority`: address type classes (uuids or user_keys).
    pub email_priority: Vec<String>,
    /// `plan2learn.phone.priority`: the address type classes that are mobile numbers.
    pub phone_priority: Vec<String>,
    /// `exporters.plan2learn.job_title_field`: which `extension_N` overrides the job title.
    pub job_title_extension: usize,
}

/// One CSV file: its name, header and rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub header: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

/// The five files and what the operator should know.
#[derive(Clone, Debug)]
pub struct Export {
    pub tables: Vec<Table>,
    pub warnings: Vec<String>,
}

/// Why there is no export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("exporters.plan2learn.root_unit {uuid} is not an org unit valid on {today}")]
    NoRoot { uuid: Uuid, today: Date },
}

pub const BRUGER: &[&str] = &["BrugerId", "CPR", "Navn", "E-mail", "Mobil", "Stilling"];
pub const ORGANISATION: &[&str] = &[
    "AfdelingsID",
    "Afdelingsnavn",
    "Parentid",
    "Gade",
    "Postnr",
    "By",
];
pub const ENGAGEMENT: &[&str] = &[
    "EngagementId",
    "BrugerId",
    "AfdelingsId",
    "AktivStatus",
    "StillingskodeId",
    "Primær",
    "Engagementstype",
    "StartdatoEngagement",
];
pub const STILLINGSKODE: &[&str] = &[
    "StillingskodeID",
    "AktivStatus",
    "Stillingskode",
    "Stillingskode#",
];
pub const LEDER: &[&str] = &["BrugerId", "AfdelingsID", "AktivStatus", "Titel"];

/// The DAR ids of the units' addresses, whose texts the export needs.
pub fn dar_ids(snap: &Snapshot, today: Date) -> Vec<Uuid> {
    let classes = class_index(snap, today);
    let mut ids: BTreeSet<Uuid> = BTreeSet::new();
    for o in &snap.unit_addresses {
        if let Value::Address(a) = &o.at_or_latest(today).value
            && scope(&classes, a.address_type) == "DAR"
            && let Ok(id) = Uuid::parse_str(a.value.trim())
        {
            ids.insert(id);
        }
    }
    ids.into_iter().collect()
}

fn class_index(snap: &Snapshot, today: Date) -> HashMap<Uuid, Class> {
    snap.classes
        .iter()
        .filter_map(|o| match &o.at_or_latest(today).value {
            Value::Class(c) => Some((o.uuid, c.clone())),
            _ => None,
        })
        .collect()
}

fn scope(classes: &HashMap<Uuid, Class>, class: Uuid) -> String {
    classes
        .get(&class)
        .and_then(|c| c.scope.clone())
        .unwrap_or_default()
        .to_uppercase()
}

/// The position of a class in a list of class uuids or user_keys.
fn rank(list: &[String], uuid: Uuid, class: Option<&Class>) -> Option<usize> {
    let text = uuid.to_string();
    list.iter().position(|k| {
        let k = k.trim();
        k.eq_ignore_ascii_case(&text) || class.is_some_and(|c| c.user_key.eq_ignore_ascii_case(k))
    })
}

/// Primary when the class is `primary`/`explicitly-primary` or its scope is at least 3000 (MO's
/// rule for `is_primary`).
fn is_primary(classes: &HashMap<Uuid, Class>, class: Option<Uuid>) -> bool {
    let Some(c) = class.and_then(|u| classes.get(&u)) else {
        return false;
    };
    let key = c.user_key.to_lowercase();
    key == "primary"
        || key == "explicitly-primary"
        || c.scope
            .as_deref()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .is_some_and(|s| s >= 3000)
}

fn value_at<'a, T>(
    o: &'a Object,
    today: Date,
    pick: impl Fn(&'a Value) -> Option<&'a T>,
) -> Option<&'a T> {
    pick(&o.at_or_latest(today).value)
}

fn full_name(p: &Person) -> String {
    format!("{} {}", p.given_name, p.surname).trim().to_string()
}

fn yes(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// An address slice of a person: address uuid, its start, the value.
type Candidate<'a> = (Uuid, Option<Date>, &'a Address);

/// An engagement as the export sees it: its first slice from today on.
struct Eng<'a> {
    uuid: Uuid,
    e: &'a Engagement,
    from: Option<Date>,
    /// Every unit it is in from today on (for bruger.csv).
    units: Vec<Uuid>,
}

pub fn export(
    snap: &Snapshot,
    cfg: &Config,
    today: Date,
    dar_texts: &HashMap<Uuid, String>,
) -> Result<Export, ExportError> {
    let mut warnings = Vec::new();
    let classes = class_index(snap, today);
    let class_name = |u: Uuid| classes.get(&u).map(|c| c.name.clone());

    // The unit tree under the root, in pre-order; siblings by name, then uuid.
    let units: HashMap<Uuid, &OrgUnit> = snap
        .units
        .iter()
        .filter_map(|o| {
            value_at(o, today, |v| {
                if let Value::OrgUnit(u) = v {
                    Some(u)
                } else {
                    None
                }
            })
            .map(|u| (o.uuid, u))
        })
        .collect();
    if !units.contains_key(&cfg.root_unit) {
        return Err(ExportError::NoRoot {
            uuid: cfg.root_unit,
            today,
        });
    }
    let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (uuid, u) in &units {
        if let Some(p) = u.parent {
            children.entry(p).or_default().push(*uuid);
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| (&units[a].name, a).cmp(&(&units[b].name, b)));
    }
    let mut tree: Vec<Uuid> = Vec::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut stack = vec![cfg.root_unit];
    while let Some(u) = stack.pop() {
        if !seen.insert(u) {
            continue;
        }
        tree.push(u);
        if let Some(c) = children.get(&u) {
            stack.extend(c.iter().rev());
        }
    }
    let order: HashMap<Uuid, usize> = tree.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    let too_deep = |u: &OrgUnit| {
        u.unit_level.and_then(|l| classes.get(&l)).is_some_and(|c| {
            cfg.too_deep
                .iter()
                .any(|t| t.trim() == c.name || t.trim() == c.user_key)
        })
    };
    let exported: Vec<Uuid> = tree
        .iter()
        .copied()
        .filter(|u| !too_deep(units[u]))
        .collect();
    let exported_set: HashSet<Uuid> = exported.iter().copied().collect();

    // Persons.
    let persons: HashMap<Uuid, &Person> = snap
        .persons
        .iter()
        .filter_map(|o| {
            value_at(o, today, |v| {
                if let Value::Person(p) = v {
                    Some(p)
                } else {
                    None
                }
            })
            .map(|p| (o.uuid, p))
        })
        .collect();
    let name_of = |p: &Uuid| persons.get(p).map(|p| full_name(p)).unwrap_or_default();

    // Engagements of an allowed type, current or future.
    let allowed = |t: Uuid| rank(&cfg.allowed_engagement_types, t, classes.get(&t)).is_some();
    let mut engs: Vec<Eng> = Vec::new();
    // Every current or future engagement, of any type: a person's job title comes from their
    // primary engagement even when its type is not exported (only the rows are limited).
    let mut every: Vec<Eng> = Vec::new();
    for o in &snap.engagements {
        let Some(first) = o
            .slices
            .iter()
            .find(|s| s.validity.to.is_none_or(|to| to > today))
        else {
            continue;
        };
        let Value::Engagement(e) = &first.value else {
            continue;
        };
        every.push(Eng {
            uuid: o.uuid,
            e,
            from: first.validity.from,
            units: Vec::new(),
        });
        if !allowed(e.engagement_type) {
            continue;
        }
        let units: Vec<Uuid> = o
            .slices
            .iter()
            .filter(|s| s.validity.to.is_none_or(|to| to > today))
            .filter_map(|s| match &s.value {
                Value::Engagement(x) if allowed(x.engagement_type) => Some(x.org_unit),
                _ => None,
            })
            .collect();
        engs.push(Eng {
            uuid: o.uuid,
            e,
            from: first.validity.from,
            units,
        });
    }
    let active = |from: Option<Date>| from.is_none_or(|f| f <= today);

    // The job title of a person: their primary engagement (an active one before a future one),
    // whatever its type.
    let title = |e: &Engagement| {
        e.extensions
            .get(cfg.job_title_extension)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string)
            .or_else(|| class_name(e.job_function))
            .unwrap_or_default()
    };
    let mut primary_of: HashMap<Uuid, &Eng> = HashMap::new();
    for g in every.iter().filter(|g| is_primary(&classes, g.e.primary)) {
        let better = |old: &Eng| {
            (!active(g.from), &g.e.user_key, g.uuid)
                < (!active(old.from), &old.e.user_key, old.uuid)
        };
        match primary_of.get(&g.e.person) {
            Some(old) if !better(old) => {}
            _ => {
                primary_of.insert(g.e.person, g);
            }
        }
    }

    // E-mail and mobile per person.
    let mut addrs: HashMap<Uuid, Vec<Candidate>> = HashMap::new();
    for o in &snap.person_addresses {
        for s in &o.slices {
            if let Value::Address(a) = &s.value
                && let Some(p) = a.person
            {
                addrs
                    .entry(p)
                    .or_default()
                    .push((o.uuid, s.validity.from, a));
            }
        }
    }
    let public = |a: &Address| a.visibility.is_none_or(|v| scope(&classes, v) == "PUBLIC");
    let email = |p: Uuid| -> String {
        let list = &cfg.email_priority;
        addrs
            .get(&p)
            .into_iter()
            .flatten()
            .filter(|(_, _, a)| scope(&classes, a.address_type) == "EMAIL" && public(a))
            .min_by_key(|(u, from, a)| {
                let r =
                    rank(list, a.address_type, classes.get(&a.address_type)).unwrap_or(list.len());
                (r, u.to_string(), Reverse(*from))
            })
            .map(|(_, _, a)| a.value.clone())
            .unwrap_or_default()
    };
    let mobile = |p: Uuid| -> String {
        let list = &cfg.phone_priority;
        addrs
            .get(&p)
            .into_iter()
            .flatten()
            .filter(|(_, _, a)| scope(&classes, a.address_type) == "PHONE" && public(a))
            .filter_map(|(u, from, a)| {
                rank(list, a.address_type, classes.get(&a.address_type))
                    .map(|r| (r, Reverse(*from), u.to_string(), a))
            })
            .min_by(|x, y| (x.0, x.1, &x.2).cmp(&(y.0, y.1, &y.2)))
            .map(|(_, _, _, a)| a.value.clone())
            .unwrap_or_default()
    };

    // bruger.csv: the persons with an allowed engagement in the tree, unit by unit.
    let mut by_unit: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for g in &engs {
        for u in &g.units {
            by_unit.entry(*u).or_default().push(g.e.person);
        }
    }
    let mut bruger = Vec::new();
    let mut listed: HashSet<Uuid> = HashSet::new();
    for u in &tree {
        let mut ps: Vec<Uuid> = by_unit.get(u).cloned().unwrap_or_default();
        ps.sort_by_cached_key(|p| (name_of(p), *p));
        ps.dedup();
        for p in ps {
            if !listed.insert(p) {
                continue;
            }
            let Some(person) = persons.get(&p) else {
                warnings.push(format!(
                    "person {p} of an engagement is not in MO; left out of bruger.csv"
                ));
                continue;
            };
            bruger.push(vec![
                p.to_string(),
                person
                    .cpr_number
                    .as_ref()
                    .map(|c| c.expose().to_string())
                    .unwrap_or_default(),
                full_name(person),
                email(p),
                mobile(p),
                primary_of.get(&p).map(|g| title(g.e)).unwrap_or_default(),
            ]);
        }
    }

    // organisation.csv: the tree minus the too-deep levels.
    let mut unit_addr: HashMap<Uuid, &Address> = HashMap::new();
    let mut by_uuid: Vec<(&Object, &Address)> = snap
        .unit_addresses
        .iter()
        .filter_map(|o| match &o.at_or_latest(today).value {
            Value::Address(a) if scope(&classes, a.address_type) == "DAR" => Some((o, a)),
            _ => None,
        })
        .collect();
    by_uuid.sort_by_key(|(o, _)| o.uuid);
    for (_, a) in by_uuid.iter().rev() {
        if let Some(u) = a.org_unit {
            unit_addr.insert(u, a); // the smallest uuid wins
        }
    }
    let mut organisation = Vec::new();
    for u in &exported {
        let unit = units[u];
        let text = match unit_addr.get(u) {
            None => String::new(),
            Some(a) => match Uuid::parse_str(a.value.trim()) {
                Ok(id) => dar_texts.get(&id).cloned().unwrap_or_else(|| {
                    warnings.push(format!("unit {u} ({}): DAR address {id} is unknown to the address register; address left empty", unit.name));
                    String::new()
                }),
                Err(_) => a.value.clone(),
            },
        };
        let split = address::split(&text);
        organisation.push(vec![
            u.to_string(),
            unit.name.clone(),
            if *u == cfg.root_unit {
                String::new()
            } else {
                unit.parent.map(|p| p.to_string()).unwrap_or_default()
            },
            split.street,
            split.postcode,
            split.town,
        ]);
    }

    // engagement.csv: engagements in exported units.
    let mut rows: Vec<(usize, String, Uuid, &Eng)> = engs
        .iter()
        .filter(|g| exported_set.contains(&g.e.org_unit))
        .map(|g| (order[&g.e.org_unit], name_of(&g.e.person), g.e.person, g))
        .collect();
    rows.sort_by(|a, b| {
        (a.0, &a.1, a.2, &a.3.e.user_key, a.3.uuid).cmp(&(
            b.0,
            &b.1,
            b.2,
            &b.3.e.user_key,
            b.3.uuid,
        ))
    });
    let mut used_jobs: BTreeSet<Uuid> = BTreeSet::new();
    let mut engagement = Vec::new();
    for (_, _, _, g) in rows {
        let is_active = active(g.from);
        used_jobs.insert(g.e.job_function);
        engagement.push(vec![
            g.uuid.to_string(),
            g.e.person.to_string(),
            g.e.org_unit.to_string(),
            yes(is_active),
            g.e.job_function.to_string(),
            yes(is_primary(&classes, g.e.primary)),
            class_name(g.e.engagement_type).unwrap_or_default(),
            if is_active {
                String::new()
            } else {
                g.from.map(|d| d.to_string()).unwrap_or_default()
            },
        ]);
    }

    // stillingskode.csv: the job functions in use.
    let mut jobs: Vec<(String, Uuid)> = Vec::new();
    for j in used_jobs {
        match class_name(j) {
            Some(n) => jobs.push((n, j)),
            None => warnings.push(format!(
                "job function {j} is not a class in MO; left out of stillingskode.csv"
            )),
        }
    }
    jobs.sort();
    let stillingskode = jobs
        .into_iter()
        .map(|(n, j)| vec![j.to_string(), "1".into(), n, j.to_string()])
        .collect();

    // leder.csv: today's managers of exported units.
    let mut managers: HashMap<Uuid, Vec<(Uuid, &Manager)>> = HashMap::new();
    for o in &snap.managers {
        if let Some(Value::Manager(m)) = o.at(today).map(|s| &s.value) {
            managers.entry(m.org_unit).or_default().push((o.uuid, m));
        }
    }
    let mut leder = Vec::new();
    for u in &exported {
        let mut ms: Vec<(String, Uuid, Uuid, &Manager)> = managers
            .get(u)
            .into_iter()
            .flatten()
            .filter_map(|(id, m)| m.person.map(|p| (name_of(&p), p, *id, *m)))
            .collect();
        ms.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        for (_, p, _, m) in ms {
            let mut names: Vec<String> = m
                .responsibilities
                .iter()
                .filter_map(|r| class_name(*r))
                .collect();
            names.sort();
            leder.push(vec![
                p.to_string(),
                u.to_string(),
                "1".into(),
                names.join(", "),
            ]);
        }
    }

    Ok(Export {
        tables: vec![
            Table {
                name: "bruger.csv",
                header: BRUGER,
                rows: bruger,
            },
            Table {
                name: "organisation.csv",
                header: ORGANISATION,
                rows: organisation,
            },
            Table {
                name: "engagement.csv",
                header: ENGAGEMENT,
                rows: engagement,
            },
            Table {
                name: "stillingskode.csv",
                header: STILLINGSKODE,
                rows: stillingskode,
            },
            Table {
                name: "leder.csv",
                header: LEDER,
                rows: leder,
            },
        ],
        warnings,
    })
}
