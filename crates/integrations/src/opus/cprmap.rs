//! The cpr→uuid mapping CSV (`specs/opus.md` §10): `cpr;mo_uuid;ad_guid;sam_account_name`,
//! `;`-separated, fields optionally quoted. When present it fixes the uuid a new person gets, so
//! a fresh import keeps the uuids of an earlier one. `dipex cpr-map export` writes one from MO.

use dipex_model::{Cpr, Object, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum CprMapError {
    #[error("{file}: {error}")]
    Io {
        file: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: std::io::Error,
    },
    #[error("{file}: line {line}: {reason}")]
    Csv {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: line {line}, field {field}: {reason}")]
    Field {
        file: String,
        line: u64,
        field: &'static str,
        reason: String,
    },
    #[error("{file}: the header must name the columns cpr and mo_uuid")]
    Header { file: String },
}

/// Read a mapping. Later rows win for a repeated CPR; rows without a uuid are ignored.
pub fn read_cpr_map(reader: impl Read, file: &str) -> Result<HashMap<Cpr, Uuid>, CprMapError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_reader(reader);
    let csv_err = |e: csv::Error| CprMapError::Csv {
        file: file.into(),
        line: e.position().map_or(0, |p| p.line()),
        reason: match e.kind() {
            csv::ErrorKind::Io(io) => io.to_string(),
            _ => "malformed CSV".into(),
        },
    };
    let headers = rdr.byte_headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                == name
        })
    };
    let (Some(c_cpr), Some(c_uuid)) = (col("cpr"), col("mo_uuid")) else {
        return Err(CprMapError::Header { file: file.into() });
    };
    let mut out = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut rec).map_err(csv_err)? {
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize| {
            String::from_utf8_lossy(rec.get(i).unwrap_or_default())
                .trim()
                .to_string()
        };
        let (cpr, uuid) = (field(c_cpr), field(c_uuid));
        if cpr.is_empty() || uuid.is_empty() {
            continue;
        }
        let cpr = Cpr::parse(&cpr).map_err(|e| CprMapError::Field {
            file: file.into(),
            line,
            field: "cpr",
            reason: e.to_string(),
        })?;
        let uuid = Uuid::parse_str(&uuid).map_err(|_| CprMapError::Field {
            file: file.into(),
            line,
            field: "mo_uuid",
            reason: format!("not a uuid: {uuid:?}"),
        })?;
        out.insert(cpr, uuid);
    }
    Ok(out)
}

/// Write a mapping of every person with a CPR number, every field quoted, sorted by uuid.
pub fn write_cpr_map(
    persons: &[Object],
    out: impl Write,
    file: &str,
) -> Result<usize, CprMapError> {
    let io = |source| CprMapError::Io {
        file: file.into(),
        error: source,
    };
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(out);
    let mut rows: Vec<(Uuid, &Cpr)> = persons
        .iter()
        .filter_map(|p| match &p.last().value {
            Value::Person(v) => v.cpr_number.as_ref().map(|c| (p.uuid, c)),
            _ => None,
        })
        .collect();
    rows.sort();
    let to_io = |e: csv::Error| io(std::io::Error::other(e.to_string()));
    w.write_record(["cpr", "mo_uuid", "ad_guid", "sam_account_name"])
        .map_err(to_io)?;
    for (uuid, cpr) in &rows {
        w.write_record([cpr.expose(), &uuid.to_string(), "", ""])
            .map_err(to_io)?;
    }
    w.flush().map_err(io)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_plain_rows_last_wins() {
        let text = "\"cpr\";\"mo_uuid\";\"ad_guid\";\"sam_account_name\"\n\
                    \"0101010000\";\"11111111-1111-1111-1111-111111111111\";\"\";\"\"\n\
                    0202020000;22222222-2222-2222-2222-222222222222;;\n\
                    0101010000;33333333-3333-3333-3333-333333333333;;\n\
                    ;44444444-4444-4444-4444-444444444444;;\n";
        let m = read_cpr_map(text.as_bytes(), "map.csv").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[&Cpr::parse("0101010000").unwrap()].to_string(),
            "33333333-3333-3333-3333-333333333333"
        );
    }

    #[test]
    fn errors_name_line_and_field_but_not_the_cpr() {
        let text = "cpr;mo_uuid\n0101010000;11111111-1111-1111-1111-111111111111\n01010100x0;11111111-1111-1111-1111-111111111111\n";
        let e = read_cpr_map(text.as_bytes(), "map.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("map.csv") && e.contains("line 3") && e.contains("cpr"),
            "{e}"
        );
        assert!(!e.contains("01010100x0"), "{e}");
        assert!(
            read_cpr_map("a;b\n".as_bytes(), "m")
                .unwrap_err()
                .to_string()
                .contains("header")
        );
    }
}
