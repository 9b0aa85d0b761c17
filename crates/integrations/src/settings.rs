//! Settings: `settings.json` with flat dotted keys exactly as the seed documents name them, plus
//! environment overrides (`DIPEX_<KEY>` with `.` written as `__`, e.g. `DIPEX_MORA__BASE`).
//! Pure: the CLI reads the file and the environment and hands both in. An unknown key in a
//! namespace dipex implements is a warning naming the nearest known key; keys of other tools
//! (real files carry many) stay quiet. A known key with a wrong type is an error naming the key.
//! Secrets are never part of an error message.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

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
    /// OS2mo base URL. When set, dipex talks to that OS2mo; otherwise to the embedded store.
    #[serde(rename = "mora.base")]
    pub mora_base: Option<String>,
    /// The GraphQL API version path (`/graphql/v30`).
    #[serde(rename = "mora.graphql_version")]
    pub mora_graphql_version: u32,
    /// A fixed `session` header for development servers (`OS2MO_LEGACY_SESSIONS`), instead of
    /// Keycloak tokens.
    #[serde(rename = "mora.session")]
    pub mora_session: Option<Secret>,
    /// Extra trusted CA certificates (PEM) for OS2mo and Keycloak.
    #[serde(rename = "mora.ca_file")]
    pub mora_ca_file: Option<PathBuf>,
    #[serde(rename = "mora.timeout_seconds")]
    pub mora_timeout_seconds: u64,
    #[serde(rename = "mora.retries")]
    pub mora_retries: u32,
    /// Mutations per GraphQL request.
    #[serde(rename = "mora.batch_size")]
    pub mora_batch_size: usize,
    /// Objects per page when reading.
    #[serde(rename = "mora.page_size")]
    pub mora_page_size: usize,
    /// Read requests in flight at once.
    #[serde(rename = "mora.concurrency")]
    pub mora_concurrency: usize,
    /// Write requests in flight at once (independent writes of one dependency layer).
    #[serde(rename = "mora.write_concurrency")]
    pub mora_write_concurrency: usize,
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

    #[serde(rename = "integrations.opus.import.run_db")]
    pub opus_run_db: Option<PathBuf>,
    #[serde(rename = "integrations.opus.import.xml_path")]
    pub opus_xml_path: Option<PathBuf>,
    #[serde(rename = "integrations.opus.unit_user_key")]
    pub opus_unit_user_key: String,
    #[serde(
        rename = "integrations.opus.units.filter_ids",
        deserialize_with = "string_list"
    )]
    pub opus_filter_ids: Vec<String>,
    #[serde(rename = "integrations.opus.skip_employees")]
    pub opus_skip_employees: bool,
    #[serde(rename = "integrations.opus.skip_employee_email")]
    pub opus_skip_employee_email: bool,
    #[serde(rename = "integrations.opus.skip_employee_phone")]
    pub opus_skip_employee_phone: bool,
    #[serde(rename = "integrations.opus.skip_employee_address")]
    pub opus_skip_employee_address: bool,
    /// Engagement type classes (user_keys or uuids), most primary first.
    #[serde(
        rename = "integrations.opus.eng_types_primary_order",
        deserialize_with = "string_list"
    )]
    pub opus_eng_types_primary_order: Vec<String>,
    /// The cpr→uuid mapping CSV; used when the file exists.
    #[serde(rename = "integrations.opus.cpr_uuid_map")]
    pub opus_cpr_uuid_map: PathBuf,
    #[serde(rename = "integrations.opus.gcloud_bucket_name")]
    pub opus_gcloud_bucket_name: Option<String>,
    /// The Google Cloud Storage JSON API endpoint (tests point it at loopback).
    #[serde(rename = "integrations.opus.gcloud_endpoint")]
    pub opus_gcloud_endpoint: String,
    /// The metadata server's token URL, used without `GOOGLE_APPLICATION_CREDENTIALS`.
    #[serde(rename = "integrations.opus.gcloud_metadata_url")]
    pub opus_gcloud_metadata_url: String,
    #[serde(rename = "integrations.opus.smb_host")]
    pub opus_smb_host: Option<String>,
    #[serde(rename = "integrations.opus.smb_user")]
    pub opus_smb_user: Option<String>,
    #[serde(rename = "integrations.opus.smb_password")]
    pub opus_smb_password: Option<Secret>,
    /// Active Directory (the OPUS import's enrichment): a list of AD configurations, of which
    /// dipex uses the first (one object is accepted too). Absent, `false`, `[]` or `{}`: no AD.
    #[serde(
        rename = "integrations.ad",
        deserialize_with = "crate::ad::deserialize_settings"
    )]
    pub ad: Option<crate::ad::AdSettings>,

    /// plan2learn: the unit whose tree is exported.
    #[serde(rename = "exporters.plan2learn.root_unit")]
    pub p2l_root_unit: Option<String>,
    /// Engagement type classes (uuids or user_keys) whose engagements are exported.
    #[serde(
        rename = "exporters.plan2learn.allowed_engagement_types",
        deserialize_with = "string_list"
    )]
    pub p2l_allowed_engagement_types: Vec<String>,
    /// Unit level class names that are left out of organisation.csv.
    #[serde(
        rename = "integrations.SD_Lon.import.too_deep",
        deserialize_with = "string_list"
    )]
    pub p2l_too_deep: Vec<String>,
    /// E-mail address type classes (uuids or user_keys), most wanted first.
    #[serde(rename = "plan2learn.email.priority", deserialize_with = "string_list")]
    pub p2l_email_priority: Vec<String>,
    /// Phone address type classes (uuids or user_keys) that count as mobile, most wanted first.
    #[serde(rename = "plan2learn.phone.priority", deserialize_with = "string_list")]
    pub p2l_phone_priority: Vec<String>,
    /// The engagement extension field that overrides the job title (`extension_1`…`extension_10`).
    #[serde(rename = "exporters.plan2learn.job_title_field")]
    pub p2l_job_title_field: String,
    /// The FTPS server the five files are shipped to (`host` or `host:port`).
    #[serde(rename = "exporters.plan2learn.host")]
    pub p2l_host: Option<String>,
    #[serde(rename = "exporters.plan2learn.port")]
    pub p2l_port: u16,
    #[serde(rename = "exporters.plan2learn.user")]
    pub p2l_user: Option<String>,
    #[serde(rename = "exporters.plan2learn.password")]
    pub p2l_password: Option<Secret>,
    /// Verify the FTPS server's certificate (off only for legacy servers).
    #[serde(rename = "exporters.plan2learn.verify_tls")]
    pub p2l_verify_tls: bool,
    /// Extra trusted CA certificates (PEM) for the FTPS server.
    #[serde(rename = "exporters.plan2learn.ca_file")]
    pub p2l_ca_file: Option<PathBuf>,
    /// A folder on the FTPS server to upload into (default: where the login lands).
    #[serde(rename = "exporters.plan2learn.remote_dir")]
    pub p2l_remote_dir: Option<String>,

    /// Aarhus LOS: the FTP/SFTP server's host name (not a URL).
    #[serde(rename = "integrations.aarhus_los.ftp_url")]
    pub los_ftp_url: Option<String>,
    /// The SFTP port (plain FTP always uses 21).
    #[serde(rename = "integrations.aarhus_los.ftp_port")]
    pub los_ftp_port: u16,
    #[serde(rename = "integrations.aarhus_los.ftp_user")]
    pub los_ftp_user: Option<String>,
    #[serde(rename = "integrations.aarhus_los.ftp_pass")]
    pub los_ftp_pass: Option<Secret>,
    /// A private key: SFTP is used when set.
    #[serde(rename = "integrations.aarhus_los.ftp_ssh_key_path")]
    pub los_ssh_key_path: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_ssh_key_pass")]
    pub los_ssh_key_pass: Option<Secret>,
    /// The SFTP server's host keys (OpenSSH known_hosts); checked unless `ftp_insecure_host_key`.
    #[serde(rename = "integrations.aarhus_los.ftp_known_hosts")]
    pub los_known_hosts: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_insecure_host_key")]
    pub los_insecure_host_key: bool,
    /// Explicit FTPS instead of plain FTP.
    #[serde(rename = "integrations.aarhus_los.ftps")]
    pub los_ftps: bool,
    /// Verify the FTPS server's certificate (off only for legacy servers), as plan2learn's.
    #[serde(rename = "integrations.aarhus_los.verify_tls")]
    pub los_verify_tls: bool,
    /// Extra trusted CA certificates (PEM) for the FTPS server, as plan2learn's.
    #[serde(rename = "integrations.aarhus_los.ca_file")]
    pub los_ca_file: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_folder")]
    pub los_ftp_folder: String,
    #[serde(rename = "integrations.aarhus_los.state_file")]
    pub los_state_file: Option<PathBuf>,
    /// Read the files from this local folder instead of a server.
    #[serde(rename = "integrations.aarhus_los.import_csv_folder")]
    pub los_csv_folder: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.azid_it_system_uuid")]
    pub los_azid_it_system: Option<String>,

    /// The municipality's CVR number (OS2Sync's `CVR` header).
    #[serde(rename = "municipality.cvr", deserialize_with = "opt_string_or_number")]
    pub municipality_cvr: Option<String>,
    /// OS2Sync's API (`…/api`).
    #[serde(rename = "os2sync.api_url")]
    pub os2sync_api_url: String,
    /// OS2Sync's `ApiKey` header, when it has one configured.
    #[serde(rename = "os2sync.api_key")]
    pub os2sync_api_key: Option<Secret>,
    #[serde(rename = "os2sync.ca_verify_os2sync")]
    pub os2sync_ca_verify: bool,
    /// Accepted for old settings files; dipex reaches MO through its own backend settings.
    #[serde(rename = "os2sync.ca_verify_os2mo")]
    pub os2sync_ca_verify_os2mo: bool,
    #[serde(rename = "os2sync.top_unit_uuid")]
    pub os2sync_top_unit_uuid: Option<String>,
    #[serde(rename = "os2sync.hash_cache")]
    pub os2sync_hash_cache: PathBuf,
    #[serde(rename = "os2sync.xfer_cpr")]
    pub os2sync_xfer_cpr: bool,
    #[serde(rename = "os2sync.autowash")]
    pub os2sync_autowash: bool,
    #[serde(
        rename = "os2sync.phone_scope_classes",
        deserialize_with = "string_list"
    )]
    pub os2sync_phone_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.landline_scope_classes",
        deserialize_with = "string_list"
    )]
    pub os2sync_landline_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.email_scope_classes",
        deserialize_with = "string_list"
    )]
    pub os2sync_email_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.ignored.unit_levels",
        deserialize_with = "string_list"
    )]
    pub os2sync_ignored_unit_levels: Vec<String>,
    #[serde(
        rename = "os2sync.ignored.unit_types",
        deserialize_with = "string_list"
    )]
    pub os2sync_ignored_unit_types: Vec<String>,
    /// Jinja templates by field key (`person.name`, `person.user_id`).
    #[serde(rename = "os2sync.templates")]
    pub os2sync_templates: std::collections::BTreeMap<String, String>,
    #[serde(rename = "os2sync.sync_managers")]
    pub os2sync_sync_managers: bool,
    #[serde(rename = "os2sync.use_contact_for_tasks")]
    pub os2sync_use_contact_for_tasks: bool,
    #[serde(rename = "os2sync.enable_kle")]
    pub os2sync_enable_kle: bool,
    #[serde(
        rename = "os2sync.employee_engagement_address",
        deserialize_with = "string_list"
    )]
    pub os2sync_employee_engagement_address: Vec<String>,
    #[serde(
        rename = "os2sync.uuid_from_it_systems",
        deserialize_with = "string_list"
    )]
    pub os2sync_uuid_from_it_systems: Vec<String>,
    #[serde(rename = "os2sync.truncate_length")]
    pub os2sync_truncate_length: usize,
    #[serde(rename = "os2sync.user_key_it_system_name")]
    pub os2sync_user_key_it_system_name: String,
    #[serde(
        rename = "os2sync.filter_hierarchy_names",
        deserialize_with = "string_list"
    )]
    pub os2sync_filter_hierarchy_names: Vec<String>,
    #[serde(rename = "os2sync.filter_users_by_it_system")]
    pub os2sync_filter_users_by_it_system: bool,
    #[serde(rename = "os2sync.use_extension_field_as_job_function")]
    pub os2sync_use_extension_field_as_job_function: bool,
    /// Accepted for old settings files (the LoRa cache database); dipex reads MO or a mirror.
    #[serde(rename = "os2sync.use_lc_db")]
    pub os2sync_use_lc_db: bool,

    /// The address register's web service: Adressevælger (default) or a DAWA mirror.
    #[serde(rename = "integrations.dar.base_url")]
    pub dar_base_url: Option<String>,
    /// `adressevaelger` or `dawa`; unset: DAWA when `base_url` is set (and not the closed
    /// public DAWA), else Adressevælger.
    #[serde(rename = "integrations.dar.protocol")]
    pub dar_protocol: Option<String>,
    /// Adressevælger's token (default `adressevaelger123`).
    #[serde(rename = "integrations.dar.token")]
    pub dar_token: Option<Secret>,
    /// Concurrent connections to the web service.
    #[serde(rename = "integrations.dar.connections")]
    pub dar_connections: usize,
    /// The register's state database (cache and pending lookups).
    #[serde(rename = "integrations.dar.state_db")]
    pub dar_state_db: Option<PathBuf>,
    /// Consecutive failures after which the register is not asked any more this run.
    #[serde(rename = "integrations.dar.max_failures")]
    pub dar_max_failures: u32,
    /// Seconds after the first lookup of a run after which the register is not asked any more.
    #[serde(rename = "integrations.dar.time_budget_seconds")]
    pub dar_time_budget_seconds: u64,
    /// An offline address register (CSV in DAWA's export format); wins over `base_url`.
    #[serde(rename = "integrations.dar.address_file")]
    pub dar_address_file: Option<PathBuf>,
    #[serde(rename = "integrations.dar.timeout_seconds")]
    pub dar_timeout_seconds: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            mora_base: None,
            mora_graphql_version: 30,
            mora_session: None,
            mora_ca_file: None,
            mora_timeout_seconds: 300,
            mora_retries: 3,
            mora_batch_size: 100,
            mora_page_size: 500,
            mora_concurrency: 4,
            mora_write_concurrency: 4,
            client_id: "dipex".into(),
            client_secret: None,
            auth_server: None,
            auth_realm: "mo".into(),
            store: PathBuf::from("dipex.sqlite3"),
            municipality_name: None,
            municipality_code: None,
            opus_run_db: None,
            opus_xml_path: None,
            opus_unit_user_key: "@id".into(),
            opus_filter_ids: Vec::new(),
            opus_skip_employees: false,
            opus_skip_employee_email: false,
            opus_skip_employee_phone: false,
            opus_skip_employee_address: false,
            opus_eng_types_primary_order: Vec::new(),
            opus_cpr_uuid_map: PathBuf::from("settings/cpr_uuid_map.csv"),
            opus_gcloud_bucket_name: None,
            opus_gcloud_endpoint: crate::transport::gcs::DEFAULT_ENDPOINT.into(),
            opus_gcloud_metadata_url: crate::transport::gcs::DEFAULT_METADATA_URL.into(),
            opus_smb_host: None,
            opus_smb_user: None,
            opus_smb_password: None,
            ad: None,
            los_ftp_url: None,
            los_ftp_port: 22,
            los_ftp_user: None,
            los_ftp_pass: None,
            los_ssh_key_path: None,
            los_ssh_key_pass: None,
            los_known_hosts: None,
            los_insecure_host_key: false,
            los_ftps: false,
            los_verify_tls: true,
            los_ca_file: None,
            los_ftp_folder: "TEST".into(),
            los_state_file: None,
            los_csv_folder: None,
            los_azid_it_system: None,
            municipality_cvr: None,
            os2sync_api_url: "http://localhost:8081/api".into(),
            os2sync_api_key: None,
            os2sync_ca_verify: true,
            os2sync_ca_verify_os2mo: true,
            os2sync_top_unit_uuid: None,
            os2sync_hash_cache: PathBuf::from("os2sync_hash_cache"),
            os2sync_xfer_cpr: false,
            os2sync_autowash: false,
            os2sync_phone_scope_classes: Vec::new(),
            os2sync_landline_scope_classes: Vec::new(),
            os2sync_email_scope_classes: Vec::new(),
            os2sync_ignored_unit_levels: Vec::new(),
            os2sync_ignored_unit_types: Vec::new(),
            os2sync_templates: std::collections::BTreeMap::new(),
            os2sync_sync_managers: false,
            os2sync_use_contact_for_tasks: false,
            os2sync_enable_kle: false,
            os2sync_employee_engagement_address: Vec::new(),
            os2sync_uuid_from_it_systems: Vec::new(),
            os2sync_truncate_length: 200,
            os2sync_user_key_it_system_name: "Active Directory".into(),
            os2sync_filter_hierarchy_names: Vec::new(),
            os2sync_filter_users_by_it_system: false,
            os2sync_use_extension_field_as_job_function: false,
            os2sync_use_lc_db: false,
            p2l_root_unit: None,
            p2l_allowed_engagement_types: Vec::new(),
            p2l_too_deep: Vec::new(),
            p2l_email_priority: Vec::new(),
            p2l_phone_priority: Vec::new(),
            p2l_job_title_field: "extension_2".into(),
            p2l_host: None,
            p2l_port: 21,
            p2l_user: None,
            p2l_password: None,
            p2l_verify_tls: true,
            p2l_ca_file: None,
            p2l_remote_dir: None,
            dar_base_url: None,
            dar_protocol: None,
            dar_token: None,
            dar_connections: 10,
            dar_state_db: None,
            dar_max_failures: 5,
            dar_time_budget_seconds: 3600,
            dar_address_file: None,
            dar_timeout_seconds: 10,
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
    match serde_json::to_value(Settings::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => unreachable!(),
    }
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
        let settings: Settings =
            serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
                let key = e.path().to_string();
                let reason = if SECRET_KEYS.contains(&key.as_str()) {
                    "expected a string".to_string()
                } else {
                    e.inner().to_string()
                };
                SettingsError::WrongType {
                    source_name: source_name.clone(),
                    key,
                    reason,
                }
            })?;
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
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
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
        assert_eq!(s.opus_filter_ids, vec!["350", "12"]);
        assert_eq!(s.opus_unit_user_key, "@id");
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
        assert_eq!(s.mora_base.as_deref(), Some("http://env"));
        assert!(s.opus_skip_employees);
        assert_eq!(s.opus_xml_path, Some(PathBuf::from("/opt/customer")));
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
        assert_eq!(s.mora_graphql_version, 30);
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
        assert!(known_keys().iter().all(|k| k.contains('.')));
    }
}
