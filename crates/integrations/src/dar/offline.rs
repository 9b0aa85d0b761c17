//! An offline address register, loaded from a local CSV file in the format of DAWA's CSV export.
//!
//! The file is UTF-8 (a byte order mark is allowed), comma separated, with a header row. Column
//! names are matched case-insensitively and in any order; the file must have `id`, `vejnavn`,
//! `husnr` and `postnr`, and may have `etage`, `dør`, `supplerendebynavn` and `postnrnavn` (other
//! columns are ignored).
//! An export of *adresser* (units, with floor and door) and one of *adgangsadresser* (entrances,
//! without them) both fit.
//!
//! Each row is indexed under its postal code and these street texts:
//!
//! * `"<vejnavn> <husnr>"`, always;
//! * `"<vejnavn> <husnr>, <etage>."` when the row has a floor;
//! * `"<vejnavn> <husnr>, <etage>. <dør>"` when it has a floor and a door.
//!
//! Texts are compared after [`normalise`]: case, runs of whitespace, dots and the spacing around
//! commas do not matter. A text that leads to exactly one id is `Found`; to none, or to several
//! distinct ids (say "Vej 1" of a building with several flats), `NotFound`.
//!
//! For [`AddressRegister::describe`] each id also keeps its address text, built from the row as
//! DAWA builds `betegnelse`: `"<vejnavn> <husnr>"`, then `", <etage>."` and/or `" <dør>"` (after
//! one comma) when the row has a floor or a door, then `", <supplerendebynavn>"` when it has one,
//! then `", <postnr> <postnrnavn>"` (`", <postnr>"` without a postnrnavn). The texts live in one
//! string with a sorted `(id, start, end)` table beside it (24 bytes a row plus the text), not a
//! map of small strings. When an id occurs on several rows, the first row's text is kept.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

use super::{AddressRegister, DarError, Lookup};

/// What one normalised (postal code, street text) key leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    One(uuid::Uuid),
    Several,
}

/// An address register held in memory, loaded from a CSV file.
#[derive(Debug, Clone)]
pub struct OfflineRegister {
    path: PathBuf,
    rows: usize,
    /// Key: `"<postnr>\u{1f}<normalised street text>"`.
    index: HashMap<String, Target>,
    /// Every row's address text, one after the other.
    texts: String,
    /// `(id, start, end)` of each id's text in `texts`, sorted by id, one entry per id.
    text_spans: Vec<(uuid::Uuid, u32, u32)>,
}

impl OfflineRegister {
    /// Load the address file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DarError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DarError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Load address data already in memory; `path` is used in messages.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Self, DarError> {
        let path = path.as_ref().to_path_buf();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let file_error = |line: u64, message: String| DarError::File {
            path: path.clone(),
            line,
            message,
        };
        let csv_error = |e: csv::Error| {
            let line = e.position().map(|p| p.line()).unwrap_or(1);
            let message = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("has {len} fields, the header has {expected_len}"),
                _ => e.to_string(),
            };
            file_error(line, message)
        };

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let header = reader.headers().map_err(csv_error)?.clone();
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(file_error(1, "no header row".to_string()));
        }
        let find = |name: &str| header.iter().position(|h| h.trim().to_lowercase() == name);
        let required = |name: &str| {
            find(name).ok_or_else(|| {
                file_error(
                    1,
                    format!(
                        "header has no `{name}` column (needs id, vejnavn, husnr, postnr; has {})",
                        header.iter().collect::<Vec<_>>().join(",")
                    ),
                )
            })
        };
        let col_id = required("id")?;
        let col_street = required("vejnavn")?;
        let col_number = required("husnr")?;
        let col_postal = required("postnr")?;
        let col_floor = find("etage");
        let col_door = find("dør");
        let col_town = find("supplerendebynavn");
        let col_postal_name = find("postnrnavn");

        // Up to three keys per row; most rows of an export of flats get two.
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        let mut index: HashMap<String, Target> = HashMap::with_capacity(lines * 2);
        // The id and the field separators are about half of a row; the text is the rest.
        let mut texts = String::with_capacity(bytes.len() / 2);
        let mut text_spans: Vec<(uuid::Uuid, u32, u32)> = Vec::with_capacity(lines);
        let mut rows = 0usize;
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(csv_error)? {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let field = |i: usize| record.get(i).unwrap_or("").trim();
            let raw_id = field(col_id);
            let id = uuid::Uuid::parse_str(raw_id)
                .map_err(|_| file_error(line, format!("id {raw_id:?} is not a UUID")))?;
            let postal = field(col_postal);
            let (street, number) = (field(col_street), field(col_number));
            let floor = col_floor.map(field).unwrap_or("");
            let door = col_door.map(field).unwrap_or("");
            rows += 1;

            let start = texts.len();
            push_betegnelse(
                &mut texts,
                &Parts {
                    street,
                    number,
                    floor,
                    door,
                    town: col_town.map(field).unwrap_or(""),
                    postal,
                    postal_name: col_postal_name.map(field).unwrap_or(""),
                },
            );
            let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(texts.len())) else {
                return Err(file_error(
                    line,
                    "the address texts exceed 4 GiB; the file is too large".to_string(),
                ));
            };
            text_spans.push((id, start, end));

            let mut add = |key: String| match index.entry(key) {
                Entry::Vacant(v) => {
                    v.insert(Target::One(id));
                }
                Entry::Occupied(mut o) => {
                    if *o.get() != Target::One(id) {
                        o.insert(Target::Several);
                    }
                }
            };
            add(index_key(postal, &[street, " ", number]));
            if !floor.is_empty() {
                add(index_key(postal, &[street, " ", number, ", ", floor, "."]));
                if !door.is_empty() {
                    add(index_key(
                        postal,
                        &[street, " ", number, ", ", floor, ". ", door],
                    ));
                }
            }
        }
        // Stable: of several rows with one id, the first stays.
        text_spans.sort_by_key(|&(id, _, _)| id);
        text_spans.dedup_by_key(|&mut (id, _, _)| id);
        text_spans.shrink_to_fit();
        texts.shrink_to_fit();
        Ok(OfflineRegister {
            path,
            rows,
            index,
            texts,
            text_spans,
        })
    }

    /// The file this register was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many address rows were loaded.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held for [`AddressRegister::describe`]: the texts and the id table (for sizing).
    pub fn text_bytes(&self) -> usize {
        self.texts.capacity()
            + self.text_spans.capacity() * std::mem::size_of::<(uuid::Uuid, u32, u32)>()
    }
}

impl AddressRegister for OfflineRegister {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        let key = index_key(postal_code.trim(), &[street]);
        Ok(match self.index.get(&key) {
            Some(Target::One(id)) => Lookup::Found(*id),
            Some(Target::Several) | None => Lookup::NotFound,
        })
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        Ok(self
            .text_spans
            .binary_search_by_key(&id, |&(id, _, _)| id)
            .ok()
            .map(|i| {
                let (_, start, end) = self.text_spans[i];
                self.texts[start as usize..end as usize].to_string()
            }))
    }

    fn probe(&self) -> Result<String, DarError> {
        Ok(format!(
            "offline address file {}: {} addresses",
            self.path().display(),
            self.rows()
        ))
    }
}

/// The fields of one row that make up its address text (each trimmed, `""` when absent).
pub(crate) struct Parts<'a> {
    pub(crate) street: &'a str,
    pub(crate) number: &'a str,
    pub(crate) floor: &'a str,
    pub(crate) door: &'a str,
    pub(crate) town: &'a str,
    pub(crate) postal: &'a str,
    pub(crate) postal_name: &'a str,
}

/// Append the address text of `p` to `out`, in DAWA's `betegnelse` form:
/// `"Vejnavn 12, 2. tv, Tillægsby, 8000 Bynavn"`.
pub(crate) fn push_betegnelse(out: &mut String, p: &Parts<'_>) {
    out.push_str(p.street);
    if !p.number.is_empty() {
        out.push(' ');
        out.push_str(p.number);
    }
    if !p.floor.is_empty() || !p.door.is_empty() {
        out.push(',');
        if !p.floor.is_empty() {
            out.push(' ');
            out.push_str(p.floor);
            out.push('.');
        }
        if !p.door.is_empty() {
            out.push(' ');
            out.push_str(p.door);
        }
    }
    if !p.town.is_empty() {
        out.push_str(", ");
        out.push_str(p.town);
    }
    if !p.postal.is_empty() || !p.postal_name.is_empty() {
        out.push_str(", ");
        out.push_str(p.postal);
        if !p.postal_name.is_empty() {
            if !p.postal.is_empty() {
                out.push(' ');
            }
            out.push_str(p.postal_name);
        }
    }
}

/// The form street texts are compared in: lower case; dots count as spaces; runs of whitespace
/// become one space; each comma-separated part is trimmed, empty parts dropped, and the parts
/// joined with `", "`. So `"Æblevej  1 ,2. TV."` and `"æblevej 1, 2 tv"` are the same.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalise_into(&mut out, &[text]);
    out
}

/// Append the normalised form of the concatenation of `parts` to `out`.
fn normalise_into(out: &mut String, parts: &[&str]) {
    let start = out.len();
    // Separators seen since the last kept character; emitted only before the next one, so
    // leading, trailing and repeated separators vanish.
    let mut comma = false;
    let mut space = false;
    for c in parts.iter().flat_map(|p| p.chars()) {
        if c == ',' {
            comma = true;
        } else if c == '.' || c.is_whitespace() {
            space = true;
        } else {
            if out.len() > start {
                if comma {
                    out.push_str(", ");
                } else if space {
                    out.push(' ');
                }
            }
            comma = false;
            space = false;
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
}

/// The index key of a street text (given in parts) in a postal code.
fn index_key(postal_code: &str, street_parts: &[&str]) -> String {
    let mut key = String::with_capacity(postal_code.len() + 48);
    key.push_str(postal_code);
    key.push('\u{1f}');
    normalise_into(&mut key, street_parts);
    key
}

#[cfg(test)]
mod unit_tests {
    use super::{Parts, normalise, push_betegnelse};

    fn text(floor: &str, door: &str, town: &str, postal_name: &str) -> String {
        let mut out = String::from("(before)");
        push_betegnelse(
            &mut out,
            &Parts {
                street: "Vejnavn",
                number: "12",
                floor,
                door,
                town,
                postal: "8000",
                postal_name,
            },
        );
        out.strip_prefix("(before)").unwrap().to_string()
    }

    #[test]
    fn betegnelse_examples() {
        assert_eq!(
            text("2", "tv", "Tillægsby", "Bynavn"),
            "Vejnavn 12, 2. tv, Tillægsby, 8000 Bynavn"
        );
        assert_eq!(text("", "", "", "Bynavn"), "Vejnavn 12, 8000 Bynavn");
        assert_eq!(text("st", "", "", "Bynavn"), "Vejnavn 12, st., 8000 Bynavn");
        assert_eq!(text("", "3", "", "Bynavn"), "Vejnavn 12, 3, 8000 Bynavn");
        assert_eq!(text("1", "mf", "", ""), "Vejnavn 12, 1. mf, 8000");
        assert_eq!(text("", "", "Tillægsby", ""), "Vejnavn 12, Tillægsby, 8000");
    }

    #[test]
    fn normalise_examples() {
        assert_eq!(normalise("Æblevej  1 ,2. TV."), "æblevej 1, 2 tv");
        assert_eq!(normalise("  ØSTERGADE 12B "), "østergade 12b");
        assert_eq!(normalise("Vej 1,"), "vej 1");
        assert_eq!(
            normalise("H.C. Andersens Vej 3, st."),
            "h c andersens vej 3, st"
        );
        assert_eq!(normalise(""), "");
        assert_eq!(normalise(", ,Vej\t1 ,, st ,"), "vej 1, st");
    }
}
