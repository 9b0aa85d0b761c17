//! Settings: `settings.json` with flat dotted keys exactly as the seed documents name them, plus
//! environment overrides (`DIPEX_<KEY>` with `.` written as `__`, e.g. `DIPEX_MORA__BASE`).
//! Pure: the CLI reads the file and the environment and hands both in. An unknown key in a
//! namespace dipex implements is a warning naming the nearest known key; keys of other tools
//! (real files carry many) stay quiet. A known key with a wrong type is an error naming the key.
//! Secrets are never part of an error message.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

pub use crate::dar::config::DarSettings;
pub use crate::los::config::LosSettings;
pub use crate::opus::config::OpusSettings;
pub use crate::os2sync::config::Os2syncSettings;
pub use crate::plan2learn::config::Plan2learnSettings;

/// A secret setting (password, client secret, session): serialises as itself but never shows
/// in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Every setting dipex knows. Field names are the dotted keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Keycloak client credentials (the upstream keys; `CLIENT_ID`, `CLIENT_SECRET`,
    /// `AUTH_SERVER`, `AUTH_REALM` in the environment win).
    #[serde(rename = "crontab.CLIENT_ID")]
    pub client_id: String,
    #[serde(rename = "crontab.CLIENT_SECRET")]
    pub client_secret: Option<Secret>,
    #[serde(rename = "crontab.AUTH_SERVER")]
    pub auth_server: Option<String>,
    #[serde(rename = "crontab.AUTH_REALM")]
    pub auth_realm: String,
    /// The embedded store file.
    #[serde(rename = "dipex.store")]
    pub store: PathBuf,
    #[serde(rename = "municipality.name")]
    pub municipality_name: Option<String>,
    #[serde(
        rename = "municipality.code",
        deserialize_with = "opt_string_or_number"
    )]
    pub municipality_code: Option<String>,
    /// Active Directory (the OPUS import's enrichment): a list of AD configurations, of which
    /// dipex uses the first (one object is accepted too). Absent, `false`, `[]` or `{}`: no AD.
    #[serde(
        rename = "integrations.ad",
        deserialize_with = "crate::ad::deserialize_settings"
    )]
    pub ad: Option<crate::ad::AdSettings>,

    /// The municipality's CVR number (OS2Sync's `CVR` header).
    #[serde(rename = "municipality.cvr", deserialize_with = "opt_string_or_number")]
    pub municipality_cvr: Option<String>,
    /// `mora.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub mora: MoraSettings,
    /// `integrations.opus.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub opus: crate::opus::config::OpusSettings,
    /// `integrations.aarhus_los.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub los: crate::los::config::LosSettings,
    /// `integrations.dar.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub dar: crate::dar::config::DarSettings,
    /// `os2sync.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub os2sync: crate::os2sync::config::Os2syncSettings,
    /// `exporters.plan2learn.*`: read from the same keys by its own struct.
    #[serde(skip)]
    pub plan2learn: crate::plan2learn::config::Plan2learnSettings,
}

/// The `mora.*` settings: the OS2mo backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoraSettings {
    /// OS2mo base URL. When set, dipex talks to that OS2mo; otherwise to the embedded store.
    #[serde(rename = "mora.base")]
    pub base: Option<String>,
    /// The GraphQL API version path (`/graphql/v30`).
    #[serde(rename = "mora.graphql_version")]
    pub graphql_version: u32,
    /// A fixed `session` header for development servers (`OS2MO_LEGACY_SESSIONS`), instead of
    /// Keycloak tokens.
    #[serde(rename = "mora.session")]
    pub session: Option<Secret>,
    /// Extra trusted CA certificates (PEM) for OS2mo and Keycloak.
    #[serde(rename = "mora.ca_file")]
    pub ca_file: Option<PathBuf>,
    #[serde(rename = "mora.timeout_seconds")]
    pub timeout_seconds: u64,
    #[serde(rename = "mora.retries")]
    pub retries: u32,
    /// Mutations per GraphQL request.
    #[serde(rename = "mora.batch_size")]
    pub batch_size: usize,
    /// Objects per page when reading.
    #[serde(rename = "mora.page_size")]
    pub page_size: usize,
    /// Read requests in flight at once.
    #[serde(rename = "mora.concurrency")]
    pub concurrency: usize,
    /// Write requests in flight at once (independent writes of one dependency layer).
    #[serde(rename = "mora.write_concurrency")]
    pub write_concurrency: usize,
}

impl Default for MoraSettings {
    fn default() -> MoraSettings {
        MoraSettings {
            base: None,
            graphql_version: 30,
            session: None,
            ca_file: None,
            timeout_seconds: 300,
            retries: 3,
            batch_size: 100,
            page_size: 500,
            concurrency: 4,
            write_concurrency: 4,
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            client_id: "dipex".into(),
            client_secret: None,
            auth_server: None,
            auth_realm: "mo".into(),
            store: PathBuf::from("dipex.sqlite3"),
            municipality_name: None,
            municipality_code: None,
            ad: None,
            municipality_cvr: None,
            mora: Default::default(),
            opus: Default::default(),
            los: Default::default(),
            dar: Default::default(),
            os2sync: Default::default(),
            plan2learn: Default::default(),
        }
    }
}

/// Keys whose values are secrets: never shown.
pub const SECRET_KEYS: &[&str] = &[
    "integrations.aarhus_los.ftp_pass",
    "integrations.aarhus_los.ftp_ssh_key_pass",
    "os2sync.api_key",
    "exporters.plan2learn.password",
    "integrations.opus.smb_password",
    "crontab.CLIENT_SECRET",
    "mora.session",
    "integrations.dar.token",
];

/// Environment variables without the `DIPEX_` prefix that set a key, as the upstream tools read
/// them.
const PLAIN_ENV: &[(&str, &str)] = &[
    ("CLIENT_ID", "crontab.CLIENT_ID"),
    ("CLIENT_SECRET", "crontab.CLIENT_SECRET"),
    ("AUTH_SERVER", "crontab.AUTH_SERVER"),
    ("AUTH_REALM", "crontab.AUTH_REALM"),
    // The OS2Sync exporter's name for the CVR number.
    ("MUNICIPALITY", "municipality.cvr"),
];

/// Namespaces that hold keys dipex reads but that belong to many tools (the crontab's keys, SD's
/// import): an unknown key there is reported only when it is a near miss of a key dipex knows.
const SHARED_PREFIXES: &[&str] = &["crontab.", "integrations.SD_Lon."];

/// The namespace of a dotted key: `integrations.<name>.` and `exporters.<name>.` for keys under
/// them, else the first segment and its dot. `None` for keys without a namespace of their own
/// (`integrations.ad`, `mox`).
fn prefix(key: &str) -> Option<&str> {
    let segments = if key.starts_with("integrations.") || key.starts_with("exporters.") {
        2
    } else {
        1
    };
    let end = key.match_indices('.').nth(segments - 1)?.0;
    Some(&key[..=end])
}

/// The optimal string alignment distance (Damerau–Levenshtein where no substring is edited
/// twice): insertions, deletions, substitutions and swaps of two neighbours count one each.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate nearest to `name`, when it is close enough to be a typo of it: at most two
/// edits and at most a third of its length. Ties go to the first candidate.
fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (osa_distance(name, c), c))
        .filter(|(d, c)| *d <= 2 && *d * 3 <= c.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The warning for a key of the settings file dipex does not know, or `None` when it belongs to
/// another tool: every unknown key in a namespace dipex implements (one in which it knows a key,
/// except the shared ones) is reported; elsewhere only near misses of known keys in the same
/// namespace are.
fn unknown_key_warning(key: &str, known: &[String]) -> Option<Warning> {
    let implemented = prefix(key)
        .is_some_and(|p| !SHARED_PREFIXES.contains(&p) && known.iter().any(|k| k.starts_with(p)));
    // Candidates share the key's namespace: across namespaces short names are near by chance
    // (`mox.base`, another tool's key, is two edits from `mora.base`).
    let suggestion = nearest(
        key,
        known
            .iter()
            .map(String::as_str)
            .filter(|k| prefix(k) == prefix(key)),
    );
    match suggestion {
        Some(s) => Some(Warning(format!(
            "unknown setting {key:?} (did you mean {s:?}?)"
        ))),
        None if implemented => Some(Warning(format!("unknown setting {key:?}"))),
        None => None,
    }
}

/// The environment variable that sets a known key: `DIPEX_` + the key in capitals with `.`
/// written as `__`.
fn dipex_env_name(key: &str) -> String {
    format!("DIPEX_{}", key.replace('.', "__").to_uppercase())
}

/// The warning for an environment variable in dipex's own `DIPEX_` or `OS2SYNC_` namespace that
/// sets no setting, with the nearest variable that does.
fn unknown_env_warning(var: &str, known: &[String]) -> Warning {
    let upper = var.to_uppercase();
    let names: Vec<(String, &str)> = if upper.starts_with("OS2SYNC_") {
        known
            .iter()
            .filter(|k| k.starts_with("os2sync."))
            .map(|k| (k.replace('.', "_").to_uppercase(), k.as_str()))
            .collect()
    } else {
        known
            .iter()
            .map(|k| (dipex_env_name(k), k.as_str()))
            .collect()
    };
    let near = nearest(&upper, names.iter().map(|(n, _)| n.as_str()))
        .and_then(|n| names.iter().find(|(m, _)| m == n));
    Warning(match near {
        Some((name, key)) => {
            format!("unknown environment variable {var} (did you mean {name}, setting {key:?}?)")
        }
        None => format!("unknown environment variable {var}: no such setting"),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{source_name}: not a JSON object with dotted keys: {reason}")]
    NotJson { source_name: String, reason: String },
    #[error("{source_name}: setting {key:?} has the wrong type: {reason}")]
    WrongType {
        source_name: String,
        key: String,
        reason: String,
    },
    #[error("setting {key:?} is required{why}")]
    Missing { key: String, why: String },
}

/// Where a setting came from, for warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning(pub String);

fn known_keys() -> Vec<String> {
    fn keys(v: Result<Value, serde_json::Error>) -> Vec<String> {
        match v {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!(),
        }
    }
    let mut out = keys(serde_json::to_value(Settings::default()));
    out.extend(keys(serde_json::to_value(MoraSettings::default())));
    out.extend(keys(serde_json::to_value(OpusSettings::default())));
    out.extend(keys(serde_json::to_value(LosSettings::default())));
    out.extend(keys(serde_json::to_value(DarSettings::default())));
    out.extend(keys(serde_json::to_value(Os2syncSettings::default())));
    out.extend(keys(serde_json::to_value(Plan2learnSettings::default())));
    out.sort();
    out
}

/// One namespace's settings from the whole map of keys (the others' keys are left alone); a
/// wrong type names its key.
fn part<T: serde::de::DeserializeOwned>(
    map: &Map<String, Value>,
    source_name: &str,
) -> Result<T, SettingsError> {
    serde_path_to_error::deserialize(Value::Object(map.clone())).map_err(|e| {
        let key = e.path().to_string();
        let reason = if SECRET_KEYS.contains(&key.as_str()) {
            "expected a string".to_string()
        } else {
            e.inner().to_string()
        };
        SettingsError::WrongType {
            source_name: source_name.to_string(),
            key,
            reason,
        }
    })
}

/// The dotted key an environment variable `DIPEX_A__B__C` overrides (`a.b.c`), matched
/// case-insensitively against the known keys.
fn env_key(var: &str, known: &[String]) -> Option<String> {
    let rest = var.strip_prefix("DIPEX_")?;
    let dotted = rest.replace("__", ".").to_lowercase();
    known.iter().find(|k| k.to_lowercase() == dotted).cloned()
}

/// The `os2sync.*` key an environment variable `OS2SYNC_…` sets, as the upstream exporter
/// read them: the key with dots written as underscores, any case (`OS2SYNC_IGNORED_UNIT_LEVELS`).
fn os2sync_env_key(var: &str, known: &[String]) -> Option<String> {
    if !var.to_uppercase().starts_with("OS2SYNC_") {
        return None;
    }
    known
        .iter()
        .find(|k| k.starts_with("os2sync.") && k.replace('.', "_").eq_ignore_ascii_case(var))
        .cloned()
}

impl Settings {
    /// Build settings from the JSON text of a settings file (`None`: no file) and environment
    /// variables. Returns the settings and warnings about ignored keys.
    pub fn load(
        json: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Settings, Vec<Warning>), SettingsError> {
        let known = known_keys();
        let mut warnings = Vec::new();
        let mut map: Map<String, Value> = Map::new();
        let mut source_name = "environment".to_string();
        if let Some((name, text)) = json {
            source_name = name.to_string();
            let v: Value = serde_json::from_str(text).map_err(|e| SettingsError::NotJson {
                source_name: name.into(),
                reason: e.to_string(),
            })?;
            let Value::Object(m) = v else {
                return Err(SettingsError::NotJson {
                    source_name: name.into(),
                    reason: "top level is not an object".into(),
                });
            };
            for (k, v) in m {
                if known.contains(&k) {
                    map.insert(k, v);
                } else {
                    warnings.extend(unknown_key_warning(&k, &known));
                }
            }
        }
        for (var, raw) in env {
            if let Some(key) = os2sync_env_key(&var, &known) {
                let lower = raw.trim().to_lowercase();
                let v = match lower.as_str() {
                    "yes" | "on" => Value::Bool(true),
                    "no" | "off" => Value::Bool(false),
                    _ => serde_json::from_str::<Value>(&raw).unwrap_or(Value::String(raw)),
                };
                map.insert(key, v);
                continue;
            }
            if var.to_uppercase().starts_with("OS2SYNC_") {
                warnings.push(unknown_env_warning(&var, &known));
                continue;
            }
            if let Some((_, key)) = PLAIN_ENV.iter().find(|(v, _)| *v == var) {
                map.insert((*key).to_string(), Value::String(raw));
                continue;
            }
            if !var.starts_with("DIPEX_") || var == "DIPEX_SETTINGS" || var == "DIPEX_LOG" {
                continue;
            }
            match env_key(&var, &known) {
                Some(key) => {
                    let v = serde_json::from_str::<Value>(&raw).unwrap_or(Value::String(raw));
                    // A plain word like `true` or `42` parses as JSON; a path or URL stays a string.
                    map.insert(key, v);
                }
                // Only the form that names a setting (dots written `__`) can be a typo of one;
                // other `DIPEX_*` variables (`DIPEX_OS2MO_SCHEMA` of the tests, …) are not settings.
                None if var.contains("__") => warnings.push(unknown_env_warning(&var, &known)),
                None => {}
            }
        }
        let mut settings: Settings = part(&map, &source_name)?;
        settings.mora = part(&map, &source_name)?;
        settings.opus = part(&map, &source_name)?;
        settings.los = part(&map, &source_name)?;
        settings.dar = part(&map, &source_name)?;
        settings.os2sync = part(&map, &source_name)?;
        settings.plan2learn = part(&map, &source_name)?;
        Ok((settings, warnings))
    }

    /// A required setting.
    pub fn require<'a, T: ?Sized>(
        value: Option<&'a T>,
        key: &str,
        why: &str,
    ) -> Result<&'a T, SettingsError> {
        value.ok_or_else(|| SettingsError::Missing {
            key: key.into(),
            why: why.into(),
        })
    }
}

/// A list of strings; numbers are accepted and written as text (`[350]` = `["350"]`).
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    v.into_iter()
        .map(|x| match x {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "expected a list of strings, found {other}"
            ))),
        })
        .collect()
}

pub(crate) fn opt_string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or number, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_and_defaults() {
        let json = r#"{"municipality.name": "Andeby Kommune", "integrations.opus.units.filter_ids": [350, "12"],
                       "crontab.SAML_TOKEN": "x", "some.other.tool": 1}"#;
        let (s, w) = Settings::load(Some(("settings.json", json)), []).unwrap();
        assert_eq!(s.municipality_name.as_deref(), Some("Andeby Kommune"));
        assert_eq!(s.opus.filter_ids, vec!["350", "12"]);
        assert_eq!(s.opus.unit_user_key, "@id");
        // Keys of other tools stay quiet.
        assert!(w.is_empty(), "{w:?}");
    }

    fn warnings(json: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let (_, w) = Settings::load(Some(("settings.json", json)), env).unwrap();
        w.into_iter().map(|w| w.0).collect()
    }

    #[test]
    fn unknown_keys_in_dipex_namespaces_warn_with_the_nearest_key() {
        let w = warnings(
            r#"{"os2sync.top_unit_uid": "x", "mora.bsae": "http://mo", "integrations.opus.skip_employes": true,
                "integrations.dar.nothing_like_it": 1, "exporters.plan2learn.hots": "h",
                "integrations.aarhus_los.ftp_usr": "u", "dipex.stor": "s", "municipality.nmae": "n",
                "plan2learn.email.priorty": [], "integrations.opus.import.xml_pth": "/x",
                "os2sync.api_key": "k", "crontab.CLIENT_ID": "c"}"#,
            &[],
        );
        // One warning per key, in key order.
        assert_eq!(
            w,
            [
                r#"unknown setting "dipex.stor" (did you mean "dipex.store"?)"#,
                r#"unknown setting "exporters.plan2learn.hots" (did you mean "exporters.plan2learn.host"?)"#,
                r#"unknown setting "integrations.aarhus_los.ftp_usr" (did you mean "integrations.aarhus_los.ftp_user"?)"#,
                r#"unknown setting "integrations.dar.nothing_like_it""#,
                r#"unknown setting "integrations.opus.import.xml_pth" (did you mean "integrations.opus.import.xml_path"?)"#,
                r#"unknown setting "integrations.opus.skip_employes" (did you mean "integrations.opus.skip_employees"?)"#,
                r#"unknown setting "mora.bsae" (did you mean "mora.base"?)"#,
                r#"unknown setting "municipality.nmae" (did you mean "municipality.name"?)"#,
                r#"unknown setting "os2sync.top_unit_uid" (did you mean "os2sync.top_unit_uuid"?)"#,
                r#"unknown setting "plan2learn.email.priorty" (did you mean "plan2learn.email.priority"?)"#,
            ]
        );
    }

    #[test]
    fn other_tools_keys_stay_quiet_and_shared_namespaces_warn_only_for_near_misses() {
        let w = warnings(
            r#"{"integrations.SD_Lon.import.manager_file": "m", "exporters.os2phonebook.host": "h",
                "crontab.RUN_OPUS_DIFF_IMPORT": true, "crontab.SAML_TOKEN": "t", "mox.base": "b",
                "integrations.ad.winrm_host": "w", "integrations.ad.write.uuid_field": "u",
                "integrations.SD_Lon.import.to_deep": [], "crontab.CLIENT_IDS": "c",
                "crontab.AUTH_REALMS": "r", "some.other.tool": 1}"#,
            &[],
        );
        assert_eq!(
            w,
            [
                r#"unknown setting "crontab.AUTH_REALMS" (did you mean "crontab.AUTH_REALM"?)"#,
                r#"unknown setting "crontab.CLIENT_IDS" (did you mean "crontab.CLIENT_ID"?)"#,
                r#"unknown setting "integrations.SD_Lon.import.to_deep" (did you mean "integrations.SD_Lon.import.too_deep"?)"#,
            ]
        );
    }

    #[test]
    fn unknown_environment_variables_warn_with_the_nearest_variable() {
        let w = warnings(
            "{}",
            &[
                ("DIPEX_OS2SYNC__TOP_UNIT_UID", "x"),
                ("DIPEX_NOPE__X", "1"),
                ("DIPEX_OS2MO_SCHEMA", "/tmp/schema.graphql"),
                ("OS2SYNC_TOP_UNIT_UID", "x"),
                ("OS2SYNC_SOMETHING_ELSE", "x"),
                (
                    "OS2SYNC_TOP_UNIT_UUID",
                    "6f2f4b7e-3c1a-4d4e-9a55-0c0ffee0b0b0",
                ),
                ("DIPEX_MORA__BASE", "http://mo"),
                ("PATH", "/bin"),
                ("SD_LON_THING", "1"),
            ],
        );
        assert_eq!(
            w,
            [
                r#"unknown environment variable DIPEX_OS2SYNC__TOP_UNIT_UID (did you mean DIPEX_OS2SYNC__TOP_UNIT_UUID, setting "os2sync.top_unit_uuid"?)"#,
                "unknown environment variable DIPEX_NOPE__X: no such setting",
                r#"unknown environment variable OS2SYNC_TOP_UNIT_UID (did you mean OS2SYNC_TOP_UNIT_UUID, setting "os2sync.top_unit_uuid"?)"#,
                "unknown environment variable OS2SYNC_SOMETHING_ELSE: no such setting",
            ]
        );
    }

    #[test]
    fn distance_counts_swaps_as_one_edit() {
        assert_eq!(osa_distance("mora.base", "mora.bsae"), 1);
        assert_eq!(osa_distance("abc", "abc"), 0);
        assert_eq!(osa_distance("", "abc"), 3);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
        assert_eq!(osa_distance("ca", "abc"), 3);
        assert_eq!(nearest("ab", ["ac"]), None, "a third of the length at most");
        assert_eq!(nearest("abcdef", ["abcdxy", "abcdez"]), Some("abcdez"));
        assert_eq!(prefix("integrations.ad"), None);
        assert_eq!(
            prefix("integrations.ad.winrm_host"),
            Some("integrations.ad.")
        );
        assert_eq!(prefix("mora.base"), Some("mora."));
    }

    #[test]
    fn env_overrides_file() {
        let json = r#"{"mora.base": "http://file", "integrations.opus.skip_employees": false}"#;
        let env = [
            ("DIPEX_MORA__BASE".to_string(), "http://env".to_string()),
            (
                "DIPEX_INTEGRATIONS__OPUS__SKIP_EMPLOYEES".to_string(),
                "true".to_string(),
            ),
            (
                "DIPEX_INTEGRATIONS__OPUS__IMPORT__XML_PATH".to_string(),
                "/opt/customer".to_string(),
            ),
            ("DIPEX_NOPE__X".to_string(), "1".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let (s, w) = Settings::load(Some(("s.json", json)), env).unwrap();
        assert_eq!(s.mora.base.as_deref(), Some("http://env"));
        assert!(s.opus.skip_employees);
        assert_eq!(s.opus.xml_path, Some(PathBuf::from("/opt/customer")));
        assert_eq!(
            w,
            [Warning(
                "unknown environment variable DIPEX_NOPE__X: no such setting".into()
            )]
        );
    }

    #[test]
    fn wrong_type_names_the_key_and_hides_secrets() {
        let e = Settings::load(
            Some(("s.json", r#"{"integrations.opus.skip_employees": "yes"}"#)),
            [],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("integrations.opus.skip_employees"),
            "{e}"
        );
        let e = Settings::load(
            Some((
                "s.json",
                r#"{"integrations.opus.smb_password": ["hunter2"]}"#,
            )),
            [],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("smb_password") && !e.to_string().contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn keycloak_credentials_from_file_and_plain_environment() {
        let json = r#"{"crontab.CLIENT_ID": "file-client", "crontab.CLIENT_SECRET": "file-secret", "crontab.AUTH_SERVER": "http://kc/auth"}"#;
        let env = [
            ("CLIENT_SECRET".to_string(), "env-secret".to_string()),
            ("AUTH_REALM".to_string(), "mo2".to_string()),
        ];
        let (s, w) = Settings::load(Some(("s.json", json)), env).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.client_id, "file-client");
        assert_eq!(
            s.client_secret.as_ref().map(Secret::expose),
            Some("env-secret")
        );
        assert_eq!(s.auth_server.as_deref(), Some("http://kc/auth"));
        assert_eq!(s.auth_realm, "mo2");
        assert_eq!(s.mora.graphql_version, 30);
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("env-secret") && debug.contains("Secret(***)"),
            "{debug}"
        );
        let e =
            Settings::load(Some(("s.json", r#"{"crontab.CLIENT_SECRET": 42}"#)), []).unwrap_err();
        assert!(
            e.to_string().contains("crontab.CLIENT_SECRET") && !e.to_string().contains("42"),
            "{e}"
        );
    }

    #[test]
    fn active_directory_settings_are_typed_and_hide_the_password() {
        let json = r#"{"integrations.ad": [{"servers": ["dc1"], "system_user": "svc@kommune.local",
            "password": "ad-secret", "search_base": "DC=kommune,DC=local", "cpr_field": "employeeID",
            "properties": ["Name"]}], "integrations.ad.winrm_host": "x", "integrations.ad.write.uuid_field": "y"}"#;
        let (s, w) = Settings::load(Some(("s.json", json)), []).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let ad = s.ad.as_ref().unwrap();
        assert_eq!(ad.search_base, "DC=kommune,DC=local");
        assert_eq!(ad.password.expose(), "ad-secret");
        assert!(!format!("{s:?}").contains("ad-secret"));
        for off in ["false", "[]", "null"] {
            let (s, _) = Settings::load(
                Some(("s.json", &format!(r#"{{"integrations.ad": {off}}}"#))),
                [],
            )
            .unwrap();
            assert_eq!(s.ad, None, "{off}");
        }
        // The environment can give the whole setting as JSON.
        let env = [(
            "DIPEX_INTEGRATIONS__AD".to_string(),
            r#"{"servers": "dc1", "system_user": "u", "password": "p", "search_base": "b", "cpr_field": "employeeID"}"#.to_string(),
        )];
        let (s, _) = Settings::load(None, env).unwrap();
        assert_eq!(s.ad.unwrap().servers, ["dc1"]);
        let e = Settings::load(
            Some((
                "s.json",
                r#"{"integrations.ad": [{"servers": ["dc1"], "password": "ad-secret", "search_base": "b", "cpr_field": "employeeID"}]}"#,
            )),
            [],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("integrations.ad") && e.contains("system_user") && !e.contains("ad-secret"),
            "{e}"
        );
    }

    #[test]
    fn every_field_is_a_known_key() {
        let keys = known_keys();
        assert!(keys.iter().all(|k| k.contains('.')));
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(unique, keys, "no key is owned by two namespaces");
        // Each namespace's keys are its own struct's (a key under another prefix would be
        // read by the wrong connector).
        for (part, prefix) in [
            (
                serde_json::to_value(OpusSettings::default()),
                "integrations.opus.",
            ),
            (
                serde_json::to_value(LosSettings::default()),
                "integrations.aarhus_los.",
            ),
            (
                serde_json::to_value(DarSettings::default()),
                "integrations.dar.",
            ),
            (serde_json::to_value(MoraSettings::default()), "mora."),
        ] {
            let Ok(Value::Object(m)) = part else {
                unreachable!()
            };
            let foreign: Vec<&String> = m.keys().filter(|k| !k.starts_with(prefix)).collect();
            assert!(foreign.is_empty(), "{prefix}: {foreign:?}");
        }
    }

    #[test]
    fn each_namespace_is_read_into_its_connectors_settings() {
        let (s, w) = Settings::load(
            Some((
                "settings.json",
                r#"{"integrations.aarhus_los.ftp_port": 2222, "exporters.plan2learn.port": 990,
                    "integrations.dar.connections": 3, "mora.page_size": 7,
                    "integrations.opus.skip_employees": true}"#,
            )),
            [],
        )
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(
            (
                s.los.ftp_port,
                s.plan2learn.port,
                s.dar.connections,
                s.mora.page_size
            ),
            (2222, 990, 3, 7)
        );
        assert!(s.opus.skip_employees);
    }
}
