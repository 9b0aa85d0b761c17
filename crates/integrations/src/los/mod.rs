//! Aarhus LOS: the municipality's organisation and HR master data, delivered as `;`-separated
//! CSV files on an FTP/SFTP server (or in a local folder) and imported into MO.
//!
//! The file kinds (see [`files::FileKind`]):
//!
//! * nine **STAM** files with fixed names (`STAM_UUID_Engagementstype.csv`, ...): master data,
//!   eight class lists (one per facet) and the IT systems;
//! * **org unit** files `Org_inital_<date>.csv` (also spelled `Org_initial_`; the full history of
//!   each unit, several rows per unit), `Org_nye_<date>.csv` (new units) and
//!   `Org_ret_<date>.csv` (changed units);
//! * **person** files `Pers_nye_`, `Pers_ret_` (one row per engagement) and `Pers_luk_`
//!   (engagements that end);
//! * **manager** files `Leder_nye_`, `Leder_ret_` and `Leder_luk_`.
//!
//! A run processes the files whose modified time is later than the last successful import, in
//! this order, each phase finishing before the next starts: the STAM files; then every
//! `Org_inital`, every `Org_nye`, every `Org_ret` file; then `Pers_nye`, `Pers_ret`, `Pers_luk`;
//! then `Leder_nye`, `Leder_ret`, `Leder_luk`. Within one kind the files go by the date in their
//! name. Files are grouped by kind, never merged by date: every `Org_nye` file comes before any
//! `Org_ret` file, even one with an earlier date.
//!
//! [`files`] recognises file names and plans a run, [`parse`] decodes and reads the CSV files
//! into typed rows, [`map`] (pure) turns rows into MO facts, [`seed`] holds the seed data,
//! [`uuids`] the deterministic uuids and [`state`] the state file.

pub mod config;
pub mod files;
pub mod map;
pub mod parse;
pub mod run;
pub mod seed;
pub mod state;
pub mod uuids;
