//! What the OS2Sync export reads from MO through the backend trait, for one day: classes and IT
//! systems, the units valid that day with their addresses, KLE annotations, managers and IT
//! accounts, and the engagements, persons, person addresses and IT accounts of that day.

use dipex_backend::{Backend, BackendError, Query};
use dipex_model::{Date, Kind, Object, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub classes: Vec<Object>,
    pub itsystems: Vec<Object>,
    pub units: Vec<Object>,
    pub unit_addresses: Vec<Object>,
    pub kles: Vec<Object>,
    pub managers: Vec<Object>,
    pub itusers: Vec<Object>,
    pub engagements: Vec<Object>,
    pub persons: Vec<Object>,
    pub person_addresses: Vec<Object>,
}

impl Snapshot {
    /// Everything for `today`; `persons` limits the persons read (single-person sync), `None` =
    /// every person with an engagement that day.
    pub fn read(
        backend: &dyn Backend,
        today: Date,
        persons: Option<&[Uuid]>,
    ) -> Result<Snapshot, BackendError> {
        let classes = backend.read(&Query::all(Kind::Class))?;
        let itsystems = backend.read(&Query::all(Kind::ItSystem))?;
        let units = backend.read(&Query::all(Kind::OrgUnit).at(today))?;
        let unit_ids: Vec<Uuid> = units.iter().map(|o| o.uuid).collect();
        let unit_addresses = backend.read(
            &Query::all(Kind::Address)
                .org_units(unit_ids.iter().copied())
                .at(today),
        )?;
        let kles = backend.read(
            &Query::all(Kind::Kle)
                .org_units(unit_ids.iter().copied())
                .at(today),
        )?;
        let managers = backend.read(
            &Query::all(Kind::Manager)
                .org_units(unit_ids.iter().copied())
                .at(today),
        )?;
        let mut itusers = backend.read(&Query::all(Kind::ItUser).org_units(unit_ids).at(today))?;
        let engagements = match persons {
            Some(p) => backend.read(
                &Query::all(Kind::Engagement)
                    .persons(p.iter().copied())
                    .at(today),
            )?,
            None => backend.read(&Query::all(Kind::Engagement).at(today))?,
        };
        let mut person_ids: BTreeSet<Uuid> = engagements
            .iter()
            .flat_map(|o| &o.slices)
            .filter_map(|s| {
                if let Value::Engagement(e) = &s.value {
                    Some(e.person)
                } else {
                    None
                }
            })
            .collect();
        if let Some(p) = persons {
            person_ids.extend(p.iter().copied());
        }
        let persons = backend.read(&Query::all(Kind::Person).uuids(person_ids.iter().copied()))?;
        let person_addresses = backend.read(
            &Query::all(Kind::Address)
                .persons(person_ids.iter().copied())
                .at(today),
        )?;
        itusers.extend(backend.read(&Query::all(Kind::ItUser).persons(person_ids).at(today))?);
        Ok(Snapshot {
            classes,
            itsystems,
            units,
            unit_addresses,
            kles,
            managers,
            itusers,
            engagements,
            persons,
            person_addresses,
        })
    }
}
