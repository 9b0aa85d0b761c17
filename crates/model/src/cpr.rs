//! The CPR number newtype. It is personal data: `Debug` and `Display` mask it as `DDMMYY-xxxx`,
//! so a CPR can never reach a log line, error message or panic by accident. Only serialisation
//! (to the store and to `mo dump`) and [`Cpr::expose`] give the full number.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A Danish CPR number: exactly ten ASCII digits, leading zeros kept.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpr(String);

/// Why a text is not a CPR number. Never contains the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CPR number: expected 10 digits, got {len} characters{}", if *.digits { "" } else { " with non-digits" })]
pub struct CprError {
    pub len: usize,
    pub digits: bool,
}

impl Cpr {
    /// Parse a CPR number; surrounding whitespace and one `-` after the birth date are accepted.
    pub fn parse(text: &str) -> Result<Cpr, CprError> {
        let t = text.trim();
        let t: String = if t.len() == 11 && t.as_bytes()[6] == b'-' {
            format!("{}{}", &t[..6], &t[7..])
        } else {
            t.to_string()
        };
        let digits = t.bytes().all(|b| b.is_ascii_digit());
        if t.len() == 10 && digits {
            Ok(Cpr(t))
        } else {
            Err(CprError {
                len: t.chars().count(),
                digits,
            })
        }
    }

    /// The full number, for the store, the MO API and exports that must carry it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form `DDMMYY-xxxx` used wherever a human may read it.
    pub fn masked(&self) -> String {
        format!("{}-xxxx", &self.0[..6])
    }
}

impl fmt::Debug for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cpr({})", self.masked())
    }
}

impl fmt::Display for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Cpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cpr, D::Error> {
        let s = String::deserialize(d)?;
        Cpr::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_number() {
        let c = Cpr::parse("0101709999").unwrap();
        assert_eq!(format!("{c}"), "010170-xxxx");
        assert_eq!(format!("{c:?}"), "Cpr(010170-xxxx)");
        assert!(!format!("{c:?}{c}").contains("9999"));
        assert_eq!(c.expose(), "0101709999");
    }

    #[test]
    fn parse_accepts_dash_and_rejects_garbage_without_echo() {
        assert_eq!(Cpr::parse("010170-9999").unwrap().expose(), "0101709999");
        let e = Cpr::parse("01017O9999").unwrap_err();
        assert!(!e.to_string().contains("01017"));
        assert!(Cpr::parse("123").is_err());
    }
}
