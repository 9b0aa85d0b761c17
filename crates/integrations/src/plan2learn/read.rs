//! What the plan2learn export needs from MO, read through the backend trait (the embedded
//! store, a `mo pull` mirror, or OS2mo itself): classes and facets, the units valid today,
//! current and future engagements, the persons who hold them and their addresses, the units'
//! addresses and today's managers.

use dipex_backend::{Backend, BackendError, Query, Window};
use dipex_model::{Date, Kind, Object, Validity};
use std::collections::BTreeSet;
use uuid::Uuid;

/// MO as the export sees it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub facets: Vec<Object>,
    pub classes: Vec<Object>,
    /// Units valid today.
    pub units: Vec<Object>,
    /// Engagements with a slice from today on (current and future).
    pub engagements: Vec<Object>,
    pub persons: Vec<Object>,
    /// Addresses of those persons, from today on.
    pub person_addresses: Vec<Object>,
    /// Addresses of the units, today.
    pub unit_addresses: Vec<Object>,
    /// Managers of the units, today.
    pub managers: Vec<Object>,
}

impl Snapshot {
    /// Read everything the export needs, for `today`.
    pub fn read(backend: &dyn Backend, today: Date) -> Result<Snapshot, BackendError> {
        let from_today = Window::Range(Validity::new(Some(today), None));
        let facets = backend.read(&Query::all(Kind::Facet))?;
        let classes = backend.read(&Query::all(Kind::Class))?;
        let units = backend.read(&Query::all(Kind::OrgUnit).at(today))?;
        let unit_ids: Vec<Uuid> = units.iter().map(|o| o.uuid).collect();
        let engagements = backend.read(&Query::all(Kind::Engagement).window(from_today))?;
        let managers = backend.read(
            &Query::all(Kind::Manager)
                .org_units(unit_ids.iter().copied())
                .at(today),
        )?;
        let mut person_ids: BTreeSet<Uuid> = engagements
            .iter()
            .flat_map(|o| &o.slices)
            .filter_map(|s| match &s.value {
                dipex_model::Value::Engagement(e) => Some(e.person),
                _ => None,
            })
            .collect();
        let engaged = person_ids.clone();
        person_ids.extend(
            managers
                .iter()
                .flat_map(|o| &o.slices)
                .filter_map(|s| match &s.value {
                    dipex_model::Value::Manager(m) => m.person,
                    _ => None,
                }),
        );
        let persons = backend.read(&Query::all(Kind::Person).uuids(person_ids))?;
        let person_addresses = backend.read(
            &Query::all(Kind::Address)
                .persons(engaged)
                .window(from_today),
        )?;
        let unit_addresses =
            backend.read(&Query::all(Kind::Address).org_units(unit_ids).at(today))?;
        Ok(Snapshot {
            facets,
            classes,
            units,
            engagements,
            persons,
            person_addresses,
            unit_addresses,
            managers,
        })
    }
}
