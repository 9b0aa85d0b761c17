//! The upstream uuid derivation the OPUS and Aarhus LOS importers share. Org units keep it
//! exactly (`specs/opus.md` §8.1: MD5 of a base name, e.g. the municipality's, then MD5 of its
//! canonical text plus the unit id), so MO data written by the old importers keeps its uuids.
//! Objects the old importers let MO number (engagements, managers, addresses, IT users, classes)
//! get name-based v5 UUIDs under the same base, so re-imports are idempotent. Nothing is ever
//! derived from a CPR number.

use md5::{Digest, Md5};
use uuid::Uuid;

/// The namespace of one base name (a municipality's OPUS data, Aarhus LOS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivedUuids {
    base: Uuid,
}

fn md5_uuid(data: &[u8]) -> Uuid {
    let d: [u8; 16] = Md5::digest(data).into();
    Uuid::from_bytes(d)
}

impl DerivedUuids {
    pub fn new(base_name: &str) -> DerivedUuids {
        DerivedUuids {
            base: md5_uuid(base_name.as_bytes()),
        }
    }

    /// The base UUID (also the uuid of the root organisation dipex creates).
    pub fn base(&self) -> Uuid {
        self.base
    }

    /// Upstream `generate_uuid(x)`: the uuid of the org unit with id `x`.
    pub fn unit(&self, id: &str) -> Uuid {
        let mut text = self.base.hyphenated().to_string();
        text.push_str(id);
        md5_uuid(text.as_bytes())
    }

    /// A name-based uuid for an object the importer creates: `kind` plus identifying parts.
    pub fn derived(&self, kind: &str, parts: &[&str]) -> Uuid {
        let mut name = String::from(kind);
        for p in parts {
            name.push('\u{1f}');
            name.push_str(p);
        }
        Uuid::new_v5(&self.base, name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values_of_the_upstream_derivation() {
        let g = DerivedUuids::new("Andeby Kommune");
        assert_eq!(g.base().to_string(), "2f59dc1f-b38c-111b-0a61-31dfed95e1a3");
        let cases = [
            ("1", "0e9c456f-f2e6-0596-4442-1b4a66a6b168"),
            ("2", "203cccd3-c678-062c-14d4-50961660add1"),
            ("3", "a5d35020-4e49-1870-f92e-51fa42620d26"),
            ("4", "522068c9-28e4-0dbb-2b1a-4b619ccf319f"),
            ("5", "055c38f5-bec2-82a4-a123-6f35e6242f10"),
            ("Testenhed", "3f4f3172-be0f-44fb-f1d3-e9446b3c8e9d"),
        ];
        for (id, want) in cases {
            assert_eq!(g.unit(id).to_string(), want, "unit {id}");
        }
        assert_eq!(
            g.unit("1"),
            DerivedUuids::new("Andeby Kommune").unit("1"),
            "deterministic"
        );
        assert_ne!(g.unit("1"), DerivedUuids::new("Other").unit("1"));
    }

    #[test]
    fn derived_uuids_separate_kinds_and_parts() {
        let g = DerivedUuids::new("Andeby Kommune");
        assert_ne!(
            g.derived("engagement", &["1"]),
            g.derived("manager", &["1"])
        );
        assert_ne!(g.derived("a", &["b", "c"]), g.derived("a", &["bc"]));
        assert_eq!(
            g.derived("engagement", &["1"]),
            g.derived("engagement", &["1"])
        );
    }
}
