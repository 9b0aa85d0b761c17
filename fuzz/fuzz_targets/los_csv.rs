//! Feed arbitrary bytes to the Aarhus LOS CSV reader: the first byte picks the kind of file
//! (one of the nine STAM files or the nine delta kinds), the rest is the file. Decoding (UTF-8,
//! BOM, Latin-1) and parsing must return rows or an error, never panic or hang, and an error
//! must render.

#![no_main]

use dipex_integrations::los::files::{FileKind, StamKind};
use dipex_integrations::los::parse::{decode, parse};
use libfuzzer_sys::fuzz_target;

const DELTA: [FileKind; 9] = [
    FileKind::OrgInitial,
    FileKind::OrgNew,
    FileKind::OrgEdit,
    FileKind::PersonNew,
    FileKind::PersonEdit,
    FileKind::PersonEnd,
    FileKind::ManagerNew,
    FileKind::ManagerEdit,
    FileKind::ManagerEnd,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let pick = usize::from(pick) % (StamKind::ALL.len() + DELTA.len());
    let kind = match StamKind::ALL.get(pick) {
        Some(stam) => FileKind::Stam(*stam),
        None => DELTA[pick - StamKind::ALL.len()],
    };
    let (text, _warning) = decode("fuzz.csv", bytes);
    if let Err(e) = parse(kind, "fuzz.csv", &text) {
        let _ = e.to_string();
    }
});
