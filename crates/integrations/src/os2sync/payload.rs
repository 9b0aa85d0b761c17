//! The OS2Sync REST payloads (`specs/os2sync.md` §1.3, §1.4), spelled exactly as OS2sync ≥ 3
//! expects them (PascalCase, explicit renames), and the digests of the hash cache. Reading an
//! answer of OS2sync is tolerant: unknown members are ignored, `null` lists are empty, an empty
//! uuid is none.

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha224};
use uuid::Uuid;

fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Uuid>, D::Error> {
    Ok(Option::<Vec<Uuid>>::deserialize(d)?.unwrap_or_default())
}

fn opt_uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) if !s.trim().is_empty() => Uuid::parse_str(s.trim())
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// `OrgUnitRegistration`: every field is sent, absent values as `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgUnit {
    #[serde(rename = "Uuid")]
    pub uuid: Uuid,
    #[serde(rename = "ShortKey")]
    pub short_key: Option<String>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "ParentOrgUnitUuid", deserialize_with = "opt_uuid")]
    pub parent: Option<Uuid>,
    #[serde(rename = "PayoutUnitUuid", deserialize_with = "opt_uuid")]
    pub payout_unit: Option<Uuid>,
    #[serde(rename = "ManagerUuid", deserialize_with = "opt_uuid")]
    pub manager: Option<Uuid>,
    #[serde(rename = "PhoneNumber")]
    pub phone_number: Option<String>,
    #[serde(rename = "Email")]
    pub email: Option<String>,
    #[serde(rename = "Location")]
    pub location: Option<String>,
    #[serde(rename = "LOSShortName")]
    pub los_short_name: Option<String>,
    #[serde(rename = "LOSId")]
    pub los_id: Option<String>,
    #[serde(rename = "DtrId")]
    pub dtr_id: Option<String>,
    #[serde(rename = "ContactOpenHours")]
    pub contact_open_hours: Option<String>,
    #[serde(rename = "EmailRemarks")]
    pub email_remarks: Option<String>,
    #[serde(rename = "Contact")]
    pub contact: Option<String>,
    #[serde(rename = "PostReturn")]
    pub post_return: Option<String>,
    #[serde(rename = "PhoneOpenHours")]
    pub phone_open_hours: Option<String>,
    #[serde(rename = "Ean")]
    pub ean: Option<String>,
    #[serde(rename = "Url")]
    pub url: Option<String>,
    #[serde(rename = "Landline")]
    pub landline: Option<String>,
    #[serde(rename = "Post")]
    pub post: Option<String>,
    #[serde(rename = "PostSecondary")]
    pub post_secondary: Option<String>,
    #[serde(rename = "FOA")]
    pub foa: Option<String>,
    #[serde(rename = "PNR")]
    pub pnr: Option<String>,
    #[serde(rename = "SOR")]
    pub sor: Option<String>,
    #[serde(rename = "Tasks", deserialize_with = "list")]
    pub tasks: Vec<Uuid>,
    #[serde(rename = "ItSystems", deserialize_with = "list")]
    pub it_systems: Vec<Uuid>,
    #[serde(rename = "ContactForTasks", deserialize_with = "list")]
    pub contact_for_tasks: Vec<Uuid>,
    #[serde(rename = "ContactPlaces", deserialize_with = "list")]
    pub contact_places: Vec<Uuid>,
}

impl OrgUnit {
    /// The text fields, by name, for stripping and truncating.
    pub fn texts_mut(&mut self) -> Vec<(&'static str, &mut Option<String>)> {
        vec![
            ("ShortKey", &mut self.short_key),
            ("PhoneNumber", &mut self.phone_number),
            ("Email", &mut self.email),
            ("Location", &mut self.location),
            ("LOSShortName", &mut self.los_short_name),
            ("LOSId", &mut self.los_id),
            ("DtrId", &mut self.dtr_id),
            ("ContactOpenHours", &mut self.contact_open_hours),
            ("EmailRemarks", &mut self.email_remarks),
            ("Contact", &mut self.contact),
            ("PostReturn", &mut self.post_return),
            ("PhoneOpenHours", &mut self.phone_open_hours),
            ("Ean", &mut self.ean),
            ("Url", &mut self.url),
            ("Landline", &mut self.landline),
            ("Post", &mut self.post),
            ("PostSecondary", &mut self.post_secondary),
            ("FOA", &mut self.foa),
            ("PNR", &mut self.pnr),
            ("SOR", &mut self.sor),
        ]
    }

    /// Keep what only FK Organisation knows (`specs/os2sync.md` §2.10): `LOSShortName` always;
    /// tasks, short key, payout unit, contact places, opening hours and SOR when MO has none.
    pub fn merge_from_fk(&mut self, fk: &OrgUnit) {
        self.los_short_name.clone_from(&fk.los_short_name);
        if self.tasks.is_empty() {
            self.tasks.clone_from(&fk.tasks);
        }
        if self.short_key.is_none() {
            self.short_key.clone_from(&fk.short_key);
        }
        if self.payout_unit.is_none() {
            self.payout_unit = fk.payout_unit;
        }
        if self.contact_places.is_empty() {
            self.contact_places.clone_from(&fk.contact_places);
        }
        if self.contact_open_hours.is_none() {
            self.contact_open_hours.clone_from(&fk.contact_open_hours);
        }
        if self.sor.is_none() {
            self.sor.clone_from(&fk.sor);
        }
    }

    /// Equal as FK Organisation sees it: lists as sets.
    pub fn same_as(&self, other: &OrgUnit) -> bool {
        let norm = |u: &OrgUnit| {
            let mut u = u.clone();
            for l in [
                &mut u.tasks,
                &mut u.it_systems,
                &mut u.contact_for_tasks,
                &mut u.contact_places,
            ] {
                l.sort();
                l.dedup();
            }
            u
        };
        norm(self) == norm(other)
    }
}

/// `Person` of a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Cpr")]
    pub cpr: Option<String>,
}

/// One position of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(rename = "OrgUnitUuid")]
    pub org_unit: Uuid,
    #[serde(rename = "Name")]
    pub name: String,
}

/// `UserRegistration`: address keys are left out when nothing was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "Uuid")]
    pub uuid: Uuid,
    #[serde(rename = "UserId")]
    pub user_id: String,
    #[serde(rename = "Person")]
    pub person: Person,
    #[serde(rename = "Positions")]
    pub positions: Vec<Position>,
    #[serde(rename = "Email", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "PhoneNumber", skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(rename = "Landline", skip_serializing_if = "Option::is_none")]
    pub landline: Option<String>,
    #[serde(rename = "Location", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The hash-cache digest of a request: SHA-224 (lower-case hex) of the payload's JSON with its
/// keys sorted, followed by the method (`upsert` or `delete`).
pub fn digest(payload: &impl Serialize, method: &str) -> String {
    // serde_json's `Value` keeps object keys sorted (no `preserve_order`), so this is canonical.
    let value = serde_json::to_value(payload).expect("payloads serialise");
    let mut h = Sha224::new();
    h.update(value.to_string().as_bytes());
    h.update(method.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_units_are_sent_with_every_field_and_read_tolerantly() {
        let u = OrgUnit {
            uuid: Uuid::nil(),
            name: "Borgerservice".into(),
            ..OrgUnit::default()
        };
        let j = serde_json::to_value(&u).unwrap();
        assert_eq!(j.as_object().unwrap().len(), 29);
        assert_eq!(j["ParentOrgUnitUuid"], serde_json::Value::Null);
        assert_eq!(j["Tasks"], serde_json::json!([]));
        let fk: OrgUnit = serde_json::from_value(serde_json::json!({
            "Uuid": "00000000-0000-0000-0000-000000000000", "Name": "Borgerservice", "Type": "DEPARTMENT",
            "Timestamp": "2024-01-01T00:00:00", "Tasks": null, "ParentOrgUnitUuid": "", "LOSShortName": "BS"
        }))
        .unwrap();
        assert!(fk.tasks.is_empty() && fk.parent.is_none());
        let mut merged = u.clone();
        merged.merge_from_fk(&fk);
        assert_eq!(merged.los_short_name.as_deref(), Some("BS"));
    }

    #[test]
    fn users_leave_out_unchosen_addresses_and_digests_are_stable() {
        let u = User {
            uuid: Uuid::nil(),
            user_id: "anna".into(),
            person: Person {
                name: "Anna".into(),
                cpr: None,
            },
            positions: vec![Position {
                org_unit: Uuid::nil(),
                name: "Lærer".into(),
            }],
            email: Some("a@x.dk".into()),
            phone_number: None,
            landline: None,
            location: None,
        };
        let j = serde_json::to_value(&u).unwrap();
        assert!(
            j.get("PhoneNumber").is_none()
                && j["Email"] == "a@x.dk"
                && j["Person"]["Cpr"].is_null()
        );
        assert_eq!(digest(&u, "upsert"), digest(&u.clone(), "upsert"));
        assert_ne!(digest(&u, "upsert"), digest(&u, "delete"));
        assert_eq!(digest(&u, "upsert").len(), 56);
    }
}
