//! LOS's deterministic UUIDs (`specs/los.md` §7): the upstream generator (MD5 of a seed's
//! canonical text plus a value; no version bits) under the namespaces `aarhus-los` (constants,
//! facets) and `AAK` (units' addresses). DESIGN.md §6 forbids deriving anything from a CPR
//! number, so where upstream used the CPR (person e-mail, AZ IT user, manager) dipex uses the
//! person's uuid in its place; persons themselves get random uuids (found by CPR later).

use crate::common::uuids::DerivedUuids;
use uuid::Uuid;

/// The two namespaces.
pub fn ns_los(value: &str) -> Uuid {
    DerivedUuids::new("aarhus-los").unit(value)
}

pub fn ns_aak(value: &str) -> Uuid {
    DerivedUuids::new("AAK").unit(value)
}

/// A constant of §7.1 (value = the constant's name).
pub fn constant(name: &str) -> Uuid {
    ns_los(name)
}

/// The facet with this user_key (STAM and seed facets).
pub fn facet(user_key: &str) -> Uuid {
    ns_los(user_key)
}

/// A unit's address of one kind (`los`, `cvr`, `ean`, `pnr`, `senr`, `debitornr`, `mag_id`,
/// `postaddr`).
pub fn unit_address(unit: Uuid, suffix: &str) -> Uuid {
    ns_aak(&format!("{}{suffix}", unit.hyphenated()))
}

/// A person's detail (`email`, `azid`), from the person's uuid (never the CPR).
pub fn person_detail(person: Uuid, suffix: &str) -> Uuid {
    ns_aak(&format!("{}{suffix}", person.hyphenated()))
}

/// The manager function of a person in a unit (from both uuids, never the CPR).
pub fn manager(unit: Uuid, person: Uuid) -> Uuid {
    ns_aak(&format!(
        "{}{}manager",
        unit.hyphenated(),
        person.hyphenated()
    ))
}

pub const ORG_UUID: &str = "266a7532-40d2-8de3-cd0f-1a94de5ad1fb";
pub const AZID_SYSTEM: &str = "c750b872-3760-6f4a-f599-7b3b8ef5255c";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_test_vectors() {
        assert_eq!(constant("AZID_SYSTEM").to_string(), AZID_SYSTEM);
        assert_eq!(constant("ORG_UUID").to_string(), ORG_UUID);
        assert_eq!(
            constant("UNIT_POSTADDR").to_string(),
            "f20299dd-a57b-0b47-ce79-6f11e8a0362f"
        );
        assert_eq!(
            constant("PRIMARY").to_string(),
            "84d8c1a2-63aa-9fcb-fef9-ad71d2145951"
        );
        assert_eq!(
            facet("engagement_type").to_string(),
            "d4e006c8-a6be-a9ed-4781-ac407f8c527a"
        );
        assert_eq!(
            facet("association_type").to_string(),
            "706c7cb0-4873-0005-bd9a-3227e3c4b33f"
        );
        let u = Uuid::parse_str("11111111-1111-1111-1111-111111111111").unwrap();
        assert_eq!(
            unit_address(u, "los").to_string(),
            "c936a487-1700-96da-cce7-ed6ad9ff088a"
        );
        assert_eq!(
            unit_address(u, "postaddr").to_string(),
            "05c8bee5-3cb7-dd8e-ce57-47ded562c276"
        );
        assert_eq!(
            unit_address(u, "mag_id").to_string(),
            "66cfb4cb-bb46-1c6f-ecb1-be5325f92bec"
        );
        // The upstream vectors derived from a CPR still hold for the generator itself.
        assert_eq!(
            ns_aak("0101012222email").to_string(),
            "10c6f1a8-556c-4a3c-baf5-470a9482d11f"
        );
    }
}
