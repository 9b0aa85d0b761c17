//! The LOS seed (`specs/los.md` §8): the organisation and the default facets when MO has none
//! yet, and on every run the fixed classes (address types, primary types, the two unit
//! hierarchies, placeholders) and the AZ IT system — all with deterministic uuids, so asserting
//! them again changes nothing. dipex gives the default facets uuids from their user_keys (the
//! same rule STAM uses) where upstream let them be random.

use super::uuids::{self, constant, facet};
use dipex_model::{Class, Facet, Fact, ItSystem, Organisation, Validity, Value};
use uuid::Uuid;

/// The default facets (user_keys).
pub const FACETS: [&str; 18] = [
    "org_unit_address_type",
    "employee_address_type",
    "manager_address_type",
    "address_property",
    "engagement_job_function",
    "org_unit_type",
    "engagement_type",
    "association_type",
    "role_type",
    "leave_type",
    "manager_type",
    "responsibility",
    "manager_level",
    "visibility",
    "time_planning",
    "org_unit_level",
    "primary_type",
    "org_unit_hierarchy",
];

/// (title, facet, scope, user_key, uuid constant or literal uuid)
pub const CLASSES: [(&str, &str, &str, &str, &str); 25] = [
    (
        "Postadresse",
        "org_unit_address_type",
        "DAR",
        "AddressMailUnit",
        "UNIT_POSTADDR",
    ),
    (
        "LOS ID",
        "org_unit_address_type",
        "TEXT",
        "LOSID",
        "UNIT_LOS",
    ),
    (
        "CVR nummer",
        "org_unit_address_type",
        "TEXT",
        "CVRUnit",
        "UNIT_CVR",
    ),
    (
        "EAN nummer",
        "org_unit_address_type",
        "EAN",
        "EANUnit",
        "UNIT_EAN",
    ),
    (
        "P-nummer",
        "org_unit_address_type",
        "PNUMBER",
        "PNumber",
        "UNIT_PNR",
    ),
    (
        "SE-nummer",
        "org_unit_address_type",
        "TEXT",
        "SENumber",
        "UNIT_SENR",
    ),
    (
        "IntDebitor-Nr",
        "org_unit_address_type",
        "TEXT",
        "intdebit",
        "UNIT_DEBITORNR",
    ),
    ("WWW", "org_unit_address_type", "WWW", "UnitWeb", "UNIT_WWW"),
    (
        "Ekspeditionstid",
        "org_unit_address_type",
        "TEXT",
        "UnitHours",
        "UNIT_HOURS",
    ),
    (
        "Telefontid",
        "org_unit_address_type",
        "TEXT",
        "UnitPhoneHours",
        "UNIT_PHONEHOURS",
    ),
    (
        "Telefon",
        "org_unit_address_type",
        "PHONE",
        "UnitPhone",
        "UNIT_PHONE",
    ),
    (
        "Fax",
        "org_unit_address_type",
        "PHONE",
        "UnitFax",
        "UNIT_FAX",
    ),
    (
        "Email",
        "org_unit_address_type",
        "EMAIL",
        "UnitEmail",
        "UNIT_EMAIL",
    ),
    (
        "Magkort",
        "org_unit_address_type",
        "TEXT",
        "UnitMagID",
        "UNIT_MAG_ID",
    ),
    (
        "Alternativt navn",
        "org_unit_address_type",
        "TEXT",
        "UnitNameAlt",
        "UNIT_NAME_ALT",
    ),
    (
        "Phone",
        "employee_address_type",
        "PHONE",
        "PhoneEmployee",
        "PERSON_PHONE",
    ),
    (
        "Email",
        "employee_address_type",
        "EMAIL",
        "EmailEmployee",
        "PERSON_EMAIL",
    ),
    (
        "Lokale",
        "employee_address_type",
        "TEXT",
        "RoomEmployee",
        "PERSON_ROOM",
    ),
    ("Primær", "primary_type", "100000", "primary", "PRIMARY"),
    (
        "Ikke-primær",
        "primary_type",
        "0",
        "non-primary",
        "NOT_PRIMARY",
    ),
    (
        "Linjeorganisation",
        "org_unit_hierarchy",
        "TEXT",
        "linjeorg",
        "LINJE_ORG_HIERARCHY",
    ),
    (
        "Sikkerhedsorganisation",
        "org_unit_hierarchy",
        "TEXT",
        "sikkerhedsorg",
        "SIKKERHEDS_ORG_HIERARCHY",
    ),
    (
        "Rolletype",
        "role_type",
        "TEXT",
        "role_type",
        "964c31a2-6267-4388-bff5-42d6f3c5f708",
    ),
    (
        "Orlovstype",
        "leave_type",
        "TEXT",
        "leave_type",
        "d2892fa6-bc56-4c14-bd24-74ae0c71fa3a",
    ),
    (
        "Alternativ stillingsbetegnelse",
        "employee_address_type",
        "TEXT",
        "AltJobTitle",
        "PERSON_JOB_TITLE_ALT",
    ),
];

/// The uuid of a seed class by its constant name (or literal uuid).
pub fn class_uuid(constant_or_uuid: &str) -> Uuid {
    Uuid::parse_str(constant_or_uuid).unwrap_or_else(|_| constant(constant_or_uuid))
}

/// The seed facts. `organisation_exists`: MO has a root organisation already (then neither it
/// nor the default facets are created). `az_system`: the configured AZ IT system, created only
/// when it is the default one.
pub fn facts(organisation_exists: bool, az_system: Uuid) -> Vec<Fact> {
    let mut out = Vec::new();
    let always = Validity::ALWAYS;
    if !organisation_exists {
        let org = Value::Organisation(Organisation {
            user_key: "Århus Kommune".into(),
            name: "Århus Kommune".into(),
            municipality_code: Some(751),
        });
        out.push(Fact::state(class_uuid("ORG_UUID"), org, always, None));
    }
    // Facets are asserted every run too (cheap, idempotent): the seed classes need them.
    for f in FACETS {
        out.push(Fact::state(
            facet(f),
            Value::Facet(Facet { user_key: f.into() }),
            always,
            None,
        ));
    }
    for (title, f, scope, key, id) in CLASSES {
        let value = Value::Class(Class {
            user_key: key.into(),
            name: title.into(),
            facet: facet(f),
            scope: Some(scope.into()),
            parent: None,
            owner: None,
        });
        out.push(Fact::state(class_uuid(id), value, always, None));
    }
    if az_system.to_string() == uuids::AZID_SYSTEM {
        out.push(Fact::state(
            az_system,
            Value::ItSystem(ItSystem {
                user_key: "AZ".into(),
                name: "AZ".into(),
            }),
            always,
            None,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_uuids_are_the_spec_constants() {
        assert_eq!(
            class_uuid("UNIT_LOS").to_string(),
            "00aab355-193d-9cd2-7b34-b484a36ea27b"
        );
        assert_eq!(
            class_uuid("NOT_PRIMARY").to_string(),
            "b871a5d2-e75b-596e-ee81-3e4e9609823c"
        );
        assert_eq!(
            class_uuid("LINJE_ORG_HIERARCHY").to_string(),
            "4cb165f1-3997-3e43-c964-6bdd8ce39844"
        );
        let f = facts(false, class_uuid("AZID_SYSTEM"));
        assert_eq!(f.len(), 1 + 18 + 25 + 1);
        // Checklist 9: the non-primary class has the user_key `non-primary`.
        assert!(
            CLASSES
                .iter()
                .any(|c| c.3 == "non-primary" && c.1 == "primary_type")
        );
        let custom = facts(true, Uuid::nil());
        assert_eq!(
            custom.len(),
            18 + 25,
            "no organisation, no AZ system when it is customised"
        );
    }
}
