//! From an MO snapshot to OS2Sync payloads, pure (`specs/os2sync.md` §2, §3; DESIGN.md ruling
//! 10): which units are synced, their addresses, KLE, IT systems and manager; one user per
//! person or per IT account bound to an engagement, with name and user id by template, CPR only
//! when asked, e-mail/mobile/landline by priority, positions in the synced units. Only addresses
//! that may be shown externally (visibility unset or `PUBLIC`) are ever sent.

use super::config::Config;
use super::payload::{OrgUnit, Person, Position, User};
use super::read::Snapshot;
use dipex_model::{
    Address, Class, Date, Engagement, ItUser, Kle, Manager, OrgUnit as MoUnit, Person as MoPerson,
    Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("os2sync.top_unit_uuid {0} is not an org unit valid today in MO")]
    NoTopUnit(Uuid),
    #[error("os2sync.filter_hierarchy_names: no org_unit_hierarchy class is named {0:?}")]
    NoHierarchy(Vec<String>),
    #[error("os2sync.templates: template {key:?} failed for person {person}: {reason}")]
    Template {
        key: String,
        person: Uuid,
        reason: String,
    },
}

/// MO, indexed for building payloads.
pub struct Ix<'a> {
    cfg: &'a Config,
    classes: HashMap<Uuid, &'a Class>,
    itsystem_names: HashMap<Uuid, String>,
    units: HashMap<Uuid, &'a MoUnit>,
    unit_addresses: HashMap<Uuid, Vec<(Uuid, &'a Address)>>,
    kles: HashMap<Uuid, Vec<&'a Kle>>,
    managers: HashMap<Uuid, Vec<(Uuid, &'a Manager)>>,
    unit_itusers: HashMap<Uuid, Vec<&'a ItUser>>,
    person_itusers: HashMap<Uuid, Vec<&'a ItUser>>,
    engagements: HashMap<Uuid, Vec<(Uuid, &'a Engagement)>>,
    persons: HashMap<Uuid, &'a MoPerson>,
    person_addresses: HashMap<Uuid, Vec<(Uuid, &'a Address)>>,
    dar_texts: &'a HashMap<Uuid, String>,
    /// The synced units, parents before children.
    synced: Vec<Uuid>,
    synced_set: HashSet<Uuid>,
    pub warnings: Vec<String>,
}

fn current<'a, T>(
    objs: &'a [dipex_model::Object],
    today: Date,
    f: impl Fn(&'a Value) -> Option<&'a T>,
) -> Vec<(Uuid, &'a T)> {
    objs.iter()
        .filter_map(|o| f(&o.at_or_latest(today).value).map(|v| (o.uuid, v)))
        .collect()
}

/// Does `list` (uuids, user_keys or names) name this class?
fn names(list: &[String], uuid: Uuid, class: Option<&Class>) -> Option<usize> {
    let text = uuid.to_string();
    list.iter().position(|k| {
        let k = k.trim();
        k.eq_ignore_ascii_case(&text) || class.is_some_and(|c| c.user_key == k || c.name == k)
    })
}

impl<'a> Ix<'a> {
    pub fn new(
        snap: &'a Snapshot,
        cfg: &'a Config,
        today: Date,
        dar_texts: &'a HashMap<Uuid, String>,
    ) -> Result<Ix<'a>, BuildError> {
        let classes: HashMap<Uuid, &Class> = current(&snap.classes, today, |v| {
            if let Value::Class(c) = v {
                Some(c)
            } else {
                None
            }
        })
        .into_iter()
        .collect();
        let itsystem_names = current(&snap.itsystems, today, |v| {
            if let Value::ItSystem(s) = v {
                Some(s)
            } else {
                None
            }
        })
        .into_iter()
        .map(|(u, s)| (u, s.name.clone()))
        .collect();
        let units: HashMap<Uuid, &MoUnit> = current(&snap.units, today, |v| {
            if let Value::OrgUnit(u) = v {
                Some(u)
            } else {
                None
            }
        })
        .into_iter()
        .collect();
        let mut ix = Ix {
            cfg,
            classes,
            itsystem_names,
            units,
            unit_addresses: HashMap::new(),
            kles: HashMap::new(),
            managers: HashMap::new(),
            unit_itusers: HashMap::new(),
            person_itusers: HashMap::new(),
            engagements: HashMap::new(),
            persons: HashMap::new(),
            person_addresses: HashMap::new(),
            dar_texts,
            synced: Vec::new(),
            synced_set: HashSet::new(),
            warnings: Vec::new(),
        };
        for (u, a) in current(&snap.unit_addresses, today, |v| {
            if let Value::Address(a) = v {
                Some(a)
            } else {
                None
            }
        }) {
            if let Some(o) = a.org_unit {
                ix.unit_addresses.entry(o).or_default().push((u, a));
            }
        }
        for (_, k) in current(&snap.kles, today, |v| {
            if let Value::Kle(k) = v { Some(k) } else { None }
        }) {
            ix.kles.entry(k.org_unit).or_default().push(k);
        }
        for (u, m) in current(&snap.managers, today, |v| {
            if let Value::Manager(m) = v {
                Some(m)
            } else {
                None
            }
        }) {
            ix.managers.entry(m.org_unit).or_default().push((u, m));
        }
        let mut seen = HashSet::new();
        for o in &snap.itusers {
            if !seen.insert(o.uuid) {
                continue;
            }
            if let Value::ItUser(i) = &o.at_or_latest(today).value {
                if let Some(u) = i.org_unit {
                    ix.unit_itusers.entry(u).or_default().push(i);
                }
                if let Some(p) = i.person {
                    ix.person_itusers.entry(p).or_default().push(i);
                }
            }
        }
        for (u, e) in current(&snap.engagements, today, |v| {
            if let Value::Engagement(e) = v {
                Some(e)
            } else {
                None
            }
        }) {
            ix.engagements.entry(e.person).or_default().push((u, e));
        }
        ix.persons = current(&snap.persons, today, |v| {
            if let Value::Person(p) = v {
                Some(p)
            } else {
                None
            }
        })
        .into_iter()
        .collect();
        for (u, a) in current(&snap.person_addresses, today, |v| {
            if let Value::Address(a) = v {
                Some(a)
            } else {
                None
            }
        }) {
            if let Some(p) = a.person {
                ix.person_addresses.entry(p).or_default().push((u, a));
            }
        }
        for list in ix
            .unit_addresses
            .values_mut()
            .chain(ix.person_addresses.values_mut())
        {
            list.sort_by_key(|(u, _)| *u);
        }
        ix.select_units()?;
        Ok(ix)
    }

    /// The units under the top unit, breadth first (parents before children, siblings by uuid),
    /// limited to the hierarchies named in `filter_hierarchy_names`, minus the subtrees of
    /// ignored levels and types. Only the hierarchy filter spares the top unit: an ignored level
    /// or type prunes its subtree wherever it is, the top included (DESIGN.md ruling 10), and
    /// then nothing is synced (with a warning).
    fn select_units(&mut self) -> Result<(), BuildError> {
        let top = self.cfg.top_unit;
        if !self.units.contains_key(&top) {
            return Err(BuildError::NoTopUnit(top));
        }
        let hierarchies: Option<HashSet<Uuid>> = if self.cfg.hierarchy_names.is_empty() {
            None
        } else {
            let found: HashSet<Uuid> = self
                .classes
                .iter()
                .filter(|(u, c)| names(&self.cfg.hierarchy_names, **u, Some(c)).is_some())
                .map(|(u, _)| *u)
                .collect();
            if found.is_empty() {
                return Err(BuildError::NoHierarchy(self.cfg.hierarchy_names.clone()));
            }
            Some(found)
        };
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (u, unit) in &self.units {
            if let Some(p) = unit.parent {
                children.entry(p).or_default().push(*u);
            }
        }
        let ignored = |u: &MoUnit| {
            let hit = |c: Option<Uuid>, list: &[String]| {
                c.is_some_and(|c| names(list, c, self.classes.get(&c).copied()).is_some())
            };
            hit(u.unit_level, &self.cfg.ignored_levels) || hit(u.unit_type, &self.cfg.ignored_types)
        };
        let mut queue = std::collections::VecDeque::from([top]);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        while let Some(u) = queue.pop_front() {
            if !seen.insert(u) {
                continue;
            }
            let unit = self.units[&u];
            if ignored(unit) {
                if u == top {
                    self.warnings.push(format!(
                        "the top unit {top} ({}) has a level or type in os2sync.ignored.unit_levels/unit_types; no unit is synced",
                        unit.name.trim()
                    ));
                }
                continue; // the whole subtree
            }
            let in_hierarchy = u == top
                || hierarchies
                    .as_ref()
                    .is_none_or(|h| unit.unit_hierarchy.is_some_and(|c| h.contains(&c)));
            if in_hierarchy {
                out.push(u);
            }
            let mut c = children.get(&u).cloned().unwrap_or_default();
            c.sort();
            queue.extend(c);
        }
        self.synced_set = out.iter().copied().collect();
        self.synced = out;
        Ok(())
    }

    /// The MO uuids of the synced units, parents first.
    pub fn synced_units(&self) -> &[Uuid] {
        &self.synced
    }

    pub fn is_synced(&self, unit: Uuid) -> bool {
        self.synced_set.contains(&unit)
    }

    fn scope(&self, class: Uuid) -> String {
        self.classes
            .get(&class)
            .and_then(|c| c.scope.clone())
            .unwrap_or_default()
            .to_uppercase()
    }

    fn public(&self, a: &Address) -> bool {
        a.visibility.is_none_or(|v| self.scope(v) == "PUBLIC")
    }

    /// The FK uuid of an owner from its IT accounts in `uuid_from_it_systems` (by the list's
    /// order), else its MO uuid.
    fn fk_uuid(&self, accounts: Option<&Vec<&ItUser>>, mo: Uuid) -> Uuid {
        let list = &self.cfg.uuid_from_it_systems;
        let mut best: Option<(usize, &ItUser)> = None;
        for a in accounts.into_iter().flatten() {
            let Some(name) = self.itsystem_names.get(&a.itsystem) else {
                continue;
            };
            if let Some(rank) = list.iter().position(|n| n == name)
                && best.is_none_or(|(r, _)| rank < r)
            {
                best = Some((rank, a));
            }
        }
        best.and_then(|(_, a)| Uuid::parse_str(a.user_key.trim()).ok())
            .unwrap_or(mo)
    }

    fn text_of(&self, a: &Address) -> String {
        if self.scope(a.address_type) == "DAR"
            && let Ok(id) = Uuid::parse_str(a.value.trim())
        {
            return self
                .dar_texts
                .get(&id)
                .cloned()
                .unwrap_or_else(|| a.value.clone());
        }
        a.value.clone()
    }

    fn truncate(&mut self, field: &str, owner: Uuid, v: &mut Option<String>, limit: usize) {
        if let Some(s) = v {
            let t = s.trim();
            if t.chars().count() > limit {
                self.warnings.push(format!(
                    "{owner}: {field} is longer than {limit} characters and was cut"
                ));
                *s = t.chars().take(limit).collect();
            } else if t.len() != s.len() {
                *s = t.to_string();
            }
        }
    }

    /// The payload of one synced unit.
    pub fn unit(&mut self, u: Uuid) -> Option<OrgUnit> {
        if !self.is_synced(u) {
            return None;
        }
        let mo = self.units[&u];
        let mut p = OrgUnit {
            uuid: self.fk_uuid(self.unit_itusers.get(&u), u),
            name: mo.name.trim().to_string(),
            parent: mo
                .parent
                .map(|parent| self.fk_uuid(self.unit_itusers.get(&parent), parent)),
            ..OrgUnit::default()
        };
        // IT systems in use, except those that only carry FK uuids.
        let mut systems: Vec<Uuid> = self
            .unit_itusers
            .get(&u)
            .into_iter()
            .flatten()
            .filter(|a| {
                self.itsystem_names
                    .get(&a.itsystem)
                    .is_none_or(|n| !self.cfg.uuid_from_it_systems.contains(n))
            })
            .map(|a| a.itsystem)
            .collect();
        systems.sort();
        systems.dedup();
        p.it_systems = systems;
        // Addresses: the first rule that matches; a later address of the same field wins.
        for (_, a) in self.unit_addresses.get(&u).cloned().unwrap_or_default() {
            if !self.public(a) {
                continue;
            }
            let key = self
                .classes
                .get(&a.address_type)
                .map(|c| c.user_key.clone())
                .unwrap_or_default();
            let landline = names(
                &self.cfg.landline_classes,
                a.address_type,
                self.classes.get(&a.address_type).copied(),
            )
            .is_some();
            let value = Some(self.text_of(a));
            match (self.scope(a.address_type).as_str(), key.as_str()) {
                ("EMAIL", _) => p.email = value,
                ("EAN", _) => p.ean = value,
                ("PHONE", _) if landline => p.landline = value,
                ("PHONE", _) => p.phone_number = value,
                ("DAR", "Contact") => p.contact = value,
                ("DAR", "Location") => p.location = value,
                ("DAR", _) => p.post = value,
                ("PNUMBER", _) => p.pnr = value,
                ("TEXT", "ContactOpenHours") => p.contact_open_hours = value,
                ("TEXT", "PhoneOpenHours") => p.phone_open_hours = value,
                ("TEXT", "DtrId") => p.dtr_id = value,
                ("WWW", _) => p.url = value,
                _ => {}
            }
        }
        if self.cfg.sync_managers {
            let mut ms: Vec<(Uuid, &Manager)> = self.managers.get(&u).cloned().unwrap_or_default();
            ms.sort_by_key(|(id, _)| *id);
            if ms.len() > 1 {
                self.warnings.push(format!(
                    "unit {u} has {} managers; the first (by uuid) is sent",
                    ms.len()
                ));
            }
            p.manager = ms.first().and_then(|(_, m)| m.person);
        }
        if self.cfg.enable_kle {
            let aspect = |c: &Uuid| {
                self.classes
                    .get(c)
                    .map(|c| c.name.to_lowercase())
                    .unwrap_or_default()
            };
            let mut tasks = Vec::new();
            let mut contact = Vec::new();
            for k in self.kles.get(&u).into_iter().flatten() {
                if self.cfg.use_contact_for_tasks {
                    if k.kle_aspects.iter().any(|a| aspect(a) == "udførende") {
                        tasks.push(k.kle_number);
                    }
                    if k.kle_aspects.iter().any(|a| aspect(a) == "ansvarlig") {
                        contact.push(k.kle_number);
                    }
                } else {
                    tasks.push(k.kle_number);
                }
            }
            for l in [&mut tasks, &mut contact] {
                l.sort();
                l.dedup();
            }
            p.tasks = tasks;
            p.contact_for_tasks = contact;
        }
        let limit = self.cfg.truncate;
        let owner = p.uuid;
        let mut name = Some(std::mem::take(&mut p.name));
        self.truncate("Name", owner, &mut name, limit);
        p.name = name.unwrap_or_default();
        let mut fields: Vec<(&'static str, Option<String>)> = p
            .texts_mut()
            .into_iter()
            .map(|(k, v)| (k, v.take()))
            .collect();
        for (k, v) in &mut fields {
            self.truncate(k, owner, v, limit);
        }
        for ((_, slot), (_, v)) in p.texts_mut().into_iter().zip(fields) {
            *slot = v;
        }
        Some(p)
    }

    /// Every synced unit's payload, parents first.
    pub fn units(&mut self) -> Vec<OrgUnit> {
        self.synced
            .clone()
            .into_iter()
            .filter_map(|u| self.unit(u))
            .collect()
    }

    /// The persons to build users for: everyone with an engagement today, by uuid.
    pub fn persons(&self) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self.engagements.keys().copied().collect();
        v.sort();
        v
    }

    /// The FK users of one person (none when it has no position in the synced units).
    pub fn users_of(&mut self, person: Uuid) -> Result<Vec<User>, BuildError> {
        let Some(mo) = self.persons.get(&person).copied() else {
            return Ok(Vec::new());
        };
        let accounts: Vec<&ItUser> = self
            .person_itusers
            .get(&person)
            .cloned()
            .unwrap_or_default();
        let system = |a: &ItUser| {
            self.itsystem_names
                .get(&a.itsystem)
                .cloned()
                .unwrap_or_default()
        };
        let first_engagement = |a: &ItUser| a.engagements.first().copied();
        // One group per engagement the accounts are bound to ("flere brugere pr. person").
        let mut groups: Vec<Option<Uuid>> = accounts.iter().map(|a| first_engagement(a)).collect();
        groups.sort();
        groups.dedup();
        let mut built: Vec<(Option<Uuid>, Option<Uuid>, Option<String>)> = Vec::new();
        let mut ambiguous = false;
        for g in &groups {
            let bound: Vec<&&ItUser> = accounts
                .iter()
                .filter(|a| first_engagement(a) == *g)
                .collect();
            let fk: Vec<&&ItUser> = bound
                .iter()
                .copied()
                .filter(|a| self.cfg.uuid_from_it_systems.contains(&system(a)))
                .collect();
            let keys: Vec<&&ItUser> = bound
                .iter()
                .copied()
                .filter(|a| system(a) == self.cfg.user_key_it_system)
                .collect();
            if fk.len() > 1 || keys.len() > 1 {
                ambiguous = true;
                break;
            }
            let fk_uuid = match fk.first() {
                Some(a) => {
                    match Uuid::parse_str(a.user_key.trim()) {
                        Ok(u) => Some(u),
                        Err(_) => {
                            self.warnings.push(format!("person {person}: IT account {:?} is not a uuid; the MO uuid is used", a.user_key));
                            None
                        }
                    }
                }
                None => None,
            };
            built.push((*g, fk_uuid, keys.first().map(|a| a.user_key.clone())));
        }
        if ambiguous || built.is_empty() {
            if ambiguous {
                self.warnings.push(format!("person {person}: more than one IT account of a system per engagement; one user is sent"));
            }
            built = vec![(None, None, None)];
        }
        let mut out = Vec::new();
        for (engagement, fk_uuid, user_key) in built {
            if let Some(u) = self.user(person, mo, engagement, fk_uuid, user_key)? {
                out.push(u);
            }
        }
        Ok(out)
    }

    fn user(
        &mut self,
        person: Uuid,
        mo: &MoPerson,
        engagement: Option<Uuid>,
        fk_uuid: Option<Uuid>,
        user_key: Option<String>,
    ) -> Result<Option<User>, BuildError> {
        if self.cfg.filter_users_by_it_system && user_key.is_none() {
            return Ok(None);
        }
        let uuid = fk_uuid.unwrap_or(person);
        let full = format!("{} {}", mo.given_name, mo.surname)
            .trim()
            .to_string();
        let nickname = format!(
            "{} {}",
            mo.nickname_given_name.as_deref().unwrap_or(""),
            mo.nickname_surname.as_deref().unwrap_or("")
        )
        .trim()
        .to_string();
        let employee = serde_json::json!({
            "uuid": person,
            "user_key": mo.user_key,
            "name": full,
            "givenname": mo.given_name,
            "surname": mo.surname,
            "nickname": nickname,
            "nickname_givenname": mo.nickname_given_name.clone().unwrap_or_default(),
            "nickname_surname": mo.nickname_surname.clone().unwrap_or_default(),
            "cpr_no": mo.cpr_number.as_ref().map(|c| c.expose().to_string()),
            "seniority": mo.seniority.map(|d| d.to_string()),
        });
        let render = |key: &str, ctx: &serde_json::Value| -> Result<Option<String>, BuildError> {
            match self.cfg.templates.render(key, ctx) {
                None => Ok(None),
                Some(Ok(s)) => Ok(Some(s)),
                Some(Err(reason)) => Err(BuildError::Template {
                    key: key.into(),
                    person,
                    reason: dipex_backend::os2mo::error::redact(&reason),
                }),
            }
        };
        let name = render("person.name", &employee)?.unwrap_or(full);
        let user_id = match user_key {
            Some(k) => k,
            None => {
                let ctx = serde_json::json!({"uuid": uuid, "user_key": mo.user_key, "candidate_user_id": null, "person": employee});
                render("person.user_id", &ctx)?.unwrap_or_else(|| uuid.to_string())
            }
        };
        // Positions: today's engagements in synced units (only the group's engagement if bound).
        let mut engs: Vec<(Uuid, &Engagement)> =
            self.engagements.get(&person).cloned().unwrap_or_default();
        if let Some(e) = engagement {
            engs.retain(|(u, _)| *u == e);
        }
        let mut positions: Vec<(String, Uuid, Uuid)> = Vec::new();
        for (id, e) in &engs {
            if !self.is_synced(e.org_unit) {
                continue;
            }
            let title = e
                .extensions
                .extension_3
                .clone()
                .filter(|t| self.cfg.extension_as_job_function && !t.trim().is_empty())
                .or_else(|| self.classes.get(&e.job_function).map(|c| c.name.clone()))
                .unwrap_or_default();
            positions.push((title, *id, e.org_unit));
        }
        if positions.is_empty() {
            return Ok(None);
        }
        positions.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        let primary_unit = engs
            .iter()
            .find(|(_, e)| {
                self.is_synced(e.org_unit) && e.primary.is_some_and(|p| self.is_primary(p))
            })
            .map(|(_, e)| e.org_unit)
            .unwrap_or(positions[0].2);
        let positions: Vec<Position> = positions
            .into_iter()
            .map(|(name, _, unit)| Position {
                org_unit: self.fk_uuid(self.unit_itusers.get(&unit), unit),
                name,
            })
            .collect();
        // Addresses that may be shown externally, by bucket and priority.
        let mut addrs: Vec<(Uuid, &Address)> = self
            .person_addresses
            .get(&person)
            .cloned()
            .unwrap_or_default();
        if let Some(e) = engagement {
            addrs.retain(|(_, a)| a.engagement == Some(e));
        }
        addrs.retain(|(_, a)| self.public(a));
        let class = |a: &Address| self.classes.get(&a.address_type).copied();
        let pick = |bucket: &dyn Fn(&Address) -> bool, list: &[String]| -> Option<String> {
            addrs
                .iter()
                .filter(|(_, a)| bucket(a))
                .min_by_key(|(u, a)| {
                    (
                        names(list, a.address_type, class(a)).unwrap_or(list.len()),
                        *u,
                    )
                })
                .map(|(_, a)| self.text_of(a))
        };
        let is_landline =
            |a: &Address| names(&self.cfg.landline_classes, a.address_type, class(a)).is_some();
        let landline = pick(&is_landline, &self.cfg.landline_classes);
        let email = pick(
            &|a: &Address| !is_landline(a) && self.scope(a.address_type) == "EMAIL",
            &self.cfg.email_classes,
        );
        let phone = pick(
            &|a: &Address| !is_landline(a) && self.scope(a.address_type) == "PHONE",
            &self.cfg.phone_classes,
        );
        let location = if self.cfg.engagement_address.is_empty() {
            None
        } else {
            let list = &self.cfg.engagement_address;
            self.unit_addresses
                .get(&primary_unit)
                .into_iter()
                .flatten()
                .filter(|(_, a)| self.public(a))
                .filter_map(|(_, a)| {
                    let c = self.classes.get(&a.address_type)?;
                    list.iter().position(|n| *n == c.name).map(|r| (r, *a))
                })
                .min_by_key(|(r, _)| *r)
                .map(|(_, a)| self.text_of(a))
        };
        let mut user = User {
            uuid,
            user_id,
            person: Person { name, cpr: None },
            positions,
            email,
            phone_number: phone,
            landline,
            location,
        };
        if self.cfg.xfer_cpr {
            user.person.cpr = mo.cpr_number.as_ref().map(|c| c.expose().to_string());
            if user.person.cpr.is_none() {
                self.warnings
                    .push(format!("person {person} has no CPR number to transfer"));
            }
        }
        let limit = self.cfg.truncate.max(36);
        let mut id = Some(std::mem::take(&mut user.user_id));
        self.truncate("UserId", uuid, &mut id, limit);
        user.user_id = id.unwrap_or_default();
        let mut name = Some(std::mem::take(&mut user.person.name));
        self.truncate("Person.Name", uuid, &mut name, limit);
        user.person.name = name.unwrap_or_default();
        for (k, v) in [
            ("Email", &mut user.email),
            ("PhoneNumber", &mut user.phone_number),
            ("Landline", &mut user.landline),
            ("Location", &mut user.location),
        ] {
            let mut x = v.take();
            self.truncate(k, uuid, &mut x, limit);
            *v = x;
        }
        Ok(Some(user))
    }

    fn is_primary(&self, class: Uuid) -> bool {
        self.classes.get(&class).is_some_and(|c| {
            let k = c.user_key.to_lowercase();
            k == "primary"
                || k == "explicitly-primary"
                || c.scope
                    .as_deref()
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_some_and(|s| s >= 3000)
        })
    }

    /// Every user of every person, first one wins on a duplicate uuid.
    pub fn users(&mut self) -> Result<Vec<User>, BuildError> {
        let mut seen: BTreeMap<Uuid, Uuid> = BTreeMap::new();
        let mut out = Vec::new();
        for p in self.persons() {
            for u in self.users_of(p)? {
                if let Some(first) = seen.get(&u.uuid) {
                    self.warnings.push(format!(
                        "person {p}: user {} is already sent for person {first}; left out",
                        u.uuid
                    ));
                    continue;
                }
                seen.insert(u.uuid, p);
                out.push(u);
            }
        }
        Ok(out)
    }

    /// The DAR ids whose texts the payloads need.
    pub fn dar_ids(snap: &Snapshot, today: Date) -> Vec<Uuid> {
        let dar: HashSet<Uuid> = snap
            .classes
            .iter()
            .filter(|o| matches!(&o.at_or_latest(today).value, Value::Class(c) if c.scope.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("DAR"))))
            .map(|o| o.uuid)
            .collect();
        let mut ids: Vec<Uuid> = snap
            .unit_addresses
            .iter()
            .chain(&snap.person_addresses)
            .filter_map(|o| match &o.at_or_latest(today).value {
                Value::Address(a) if dar.contains(&a.address_type) => {
                    Uuid::parse_str(a.value.trim()).ok()
                }
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
