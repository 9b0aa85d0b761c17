//! Active Directory: the directory the OPUS import enriches persons from (`specs/opus.md` §8.5,
//! §8.7; DESIGN.md ruling 2). This module holds the settings (`integrations.ad`, parsed into
//! [`AdSettings`]) and the pure part: turning the entries of one search into a CPR → [`AdUser`]
//! map ([`Directory`]). [`ldap`] is the LDAP client that runs that search.
//!
//! Privacy: CPR numbers read from AD live only in [`Cpr`] values (masked in `Debug`/`Display`);
//! values that are not CPR numbers are counted, never logged. No uuid is derived from a CPR: the
//! person uuid AD offers is the account's own `objectGUID`.

pub mod ldap;

use crate::settings::Secret;
use dipex_model::Cpr;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use uuid::Uuid;

/// The name of the IT system that holds the AD account names.
pub const IT_SYSTEM: &str = "Active Directory";

/// How the connection to the directory is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (`ldaps://`, port 636). The default.
    Ldaps,
    /// Plain LDAP upgraded with the StartTLS operation before the bind (port 389).
    Starttls,
    /// No TLS: the password crosses the wire in clear text. Only for a server on loopback
    /// (a test server, or an SSH tunnel to the domain controller).
    None,
}

/// One AD configuration (`integrations.ad`, the first entry of the list).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdSettings {
    /// Domain controllers (`host` or `host:port`), tried in order until one answers.
    pub servers: Vec<String>,
    /// A full `ldap://` or `ldaps://` URL; when set, it is the only server used.
    pub ldap_url: Option<String>,
    /// The port for `servers` without one (default 636 for ldaps, else 389).
    pub port: Option<u16>,
    pub tls: Tls,
    /// Extra trusted CA certificates (PEM). Certificates are always verified.
    pub ca_file: Option<PathBuf>,
    /// The bind name: a DN, `user@domain` or `DOMAIN\user` (AD accepts all three).
    pub system_user: String,
    pub password: Secret,
    pub search_base: String,
    /// The attribute that holds the CPR number (`employeeID`, `extensionAttribute1`, …).
    pub cpr_field: String,
    /// Written between birth date and serial number in `cpr_field` (`-`, or empty).
    pub cpr_separator: String,
    /// Only accounts whose `sAMAccountName` starts with this (as AD compares: without regard
    /// to case) count. Empty: all.
    pub sam_filter: String,
    /// An extra LDAP filter the accounts must match, e.g. `(objectClass=user)`.
    pub filter: Option<String>,
    pub timeout_seconds: u64,
    /// Entries per page of the paged search (AD returns at most 1000 per page).
    pub page_size: u32,
    /// How many further AD configurations the list held (dipex uses the first only).
    pub ignored_configs: usize,
}

/// The LDAP filter of the one search: accounts with a CPR value, the configured filter, and the
/// `sam_filter` prefix (escaped per RFC 4515: it is a value, not filter syntax).
pub fn search_filter(s: &AdSettings) -> String {
    let mut f = String::from("(&");
    if let Some(extra) = &s.filter {
        f.push_str(extra);
    }
    f.push_str(&format!("({}=*)", s.cpr_field));
    if !s.sam_filter.is_empty() {
        f.push_str(&format!(
            "(sAMAccountName={}*)",
            ::ldap3::ldap_escape(s.sam_filter.as_str())
        ));
    }
    f.push(')');
    f
}

/// A valid attribute description: a name (`employeeID`) or a numeric OID.
fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => s
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        _ => false,
    }
}

/// The host part of `host`, `host:port` or `[v6]:port`.
fn host_of(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match server.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => server,
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `(scheme, host)` of an `ldap://` / `ldaps://` URL.
fn parse_url(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "ldap" | "ldaps" => Some((scheme, host_of(authority))),
        _ => None,
    }
}

impl AdSettings {
    /// Parse the value of `integrations.ad`. `null`, `false`, `[]` and `{}` mean "no AD"
    /// (`None`); a list uses its first configuration; a single object is accepted too. Errors
    /// name the key, never a value of it.
    pub fn from_json(v: &Value) -> Result<Option<AdSettings>, String> {
        let (first, ignored) = match v {
            Value::Null | Value::Bool(false) => return Ok(None),
            Value::Array(list) if list.is_empty() => return Ok(None),
            Value::Object(m) if m.is_empty() => return Ok(None),
            Value::Array(list) => (&list[0], list.len() - 1),
            Value::Object(_) => (v, 0),
            _ => {
                return Err(
                    "expected a list of AD configurations (or one object with servers, system_user, password, search_base, cpr_field), or false".into(),
                );
            }
        };
        let Value::Object(m) = first else {
            return Err("the first AD configuration is not an object".into());
        };
        let mut s = parse_object(m)?;
        s.ignored_configs = ignored;
        Ok(Some(s))
    }

    /// The connection targets, as LDAP URLs, in the order they are tried.
    pub fn urls(&self) -> Vec<String> {
        if let Some(u) = &self.ldap_url {
            return vec![u.clone()];
        }
        let (scheme, default_port) = match self.tls {
            Tls::Ldaps => ("ldaps", 636),
            Tls::Starttls | Tls::None => ("ldap", 389),
        };
        let port = self.port.unwrap_or(default_port);
        self.servers
            .iter()
            .map(|s| {
                let has_port = if s.starts_with('[') {
                    s.contains("]:")
                } else {
                    host_of(s) != s
                };
                if has_port {
                    format!("{scheme}://{s}")
                } else {
                    format!("{scheme}://{s}:{port}")
                }
            })
            .collect()
    }
}

fn parse_object(m: &Map<String, Value>) -> Result<AdSettings, String> {
    let key_err = |key: &str, what: &str| format!("first AD configuration, key {key:?}: {what}");
    let string = |key: &str| -> Result<Option<String>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(key_err(key, "expected a string")),
        }
    };
    let required = |key: &str| -> Result<String, String> {
        match string(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(key_err(key, "required")),
        }
    };
    let number = |key: &str, min: u64, max: u64| -> Result<Option<u64>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(key_err(
                    key,
                    &format!("expected a number from {min} to {max}"),
                )),
            },
            Some(_) => Err(key_err(
                key,
                &format!("expected a number from {min} to {max}"),
            )),
        }
    };
    let servers: Vec<String> = match m.get("servers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(key_err("servers", "expected a list of host names")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(key_err("servers", "expected a list of host names")),
    };
    let ldap_url = string("ldap_url")?;
    let url_scheme = match &ldap_url {
        Some(u) => Some(
            parse_url(u)
                .ok_or_else(|| {
                    key_err(
                        "ldap_url",
                        "expected ldap://host[:port] or ldaps://host[:port]",
                    )
                })?
                .0
                .to_ascii_lowercase(),
        ),
        None => None,
    };
    if ldap_url.is_none() && servers.is_empty() {
        return Err(key_err(
            "servers",
            "required (a list of domain controllers), unless ldap_url is set",
        ));
    }
    let tls = match string("tls")?
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => match url_scheme.as_deref() {
            Some("ldap") => Tls::Starttls,
            _ => Tls::Ldaps,
        },
        Some("ldaps") => Tls::Ldaps,
        Some("starttls") => Tls::Starttls,
        Some("none") => Tls::None,
        Some(_) => {
            return Err(key_err(
                "tls",
                "expected \"ldaps\", \"starttls\" or \"none\"",
            ));
        }
    };
    match (url_scheme.as_deref(), tls) {
        (Some("ldaps"), Tls::Starttls | Tls::None) | (Some("ldap"), Tls::Ldaps) => {
            return Err(key_err(
                "tls",
                "does not fit the scheme of ldap_url (ldaps:// is \"ldaps\"; ldap:// is \"starttls\" or \"none\")",
            ));
        }
        _ => {}
    }
    if tls == Tls::None {
        let hosts: Vec<&str> = match &ldap_url {
            Some(u) => parse_url(u).map(|p| p.1).into_iter().collect(),
            None => servers.iter().map(|s| host_of(s)).collect(),
        };
        if let Some(h) = hosts.iter().find(|h| !is_loopback(h)) {
            return Err(key_err(
                "tls",
                &format!(
                    "\"none\" would send the password in clear text to {h}; it is only allowed for a server on loopback (use \"ldaps\" or \"starttls\")"
                ),
            ));
        }
    }
    let cpr_field = required("cpr_field")?;
    if !is_attribute_name(&cpr_field) {
        return Err(key_err(
            "cpr_field",
            "expected an attribute name such as employeeID",
        ));
    }
    let filter = match string("filter")? {
        Some(f) if f.trim().is_empty() => None,
        Some(f) => {
            let f = f.trim().to_string();
            if !f.starts_with('(') || ::ldap3::parse_filter(&f).is_err() {
                return Err(key_err(
                    "filter",
                    "not an LDAP filter (RFC 4515), e.g. (objectClass=user)",
                ));
            }
            Some(f)
        }
        None => None,
    };
    let password = match m.get("password") {
        Some(Value::String(p)) if !p.is_empty() => Secret(p.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(key_err("password", "required"));
        }
        Some(_) => return Err(key_err("password", "expected a string")),
    };
    let ca_file = string("ca_file")?
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    Ok(AdSettings {
        servers,
        ldap_url,
        port: number("port", 1, 65535)?.map(|p| p as u16),
        tls,
        ca_file,
        system_user: required("system_user")?,
        password,
        search_base: required("search_base")?,
        cpr_field,
        cpr_separator: string("cpr_separator")?.unwrap_or_default(),
        sam_filter: string("sam_filter")?.unwrap_or_default(),
        filter,
        timeout_seconds: number("timeout_seconds", 1, 3600)?.unwrap_or(30),
        page_size: number("page_size", 1, 1000)?.unwrap_or(500) as u32,
        ignored_configs: 0,
    })
}

/// `deserialize_with` for the `integrations.ad` setting.
pub fn deserialize_settings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<AdSettings>, D::Error> {
    let v = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    AdSettings::from_json(&v).map_err(serde::de::Error::custom)
}

/// An AD account as the OPUS import uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdUser {
    /// `objectGUID`: the uuid a new person gets (unless the cpr map names one).
    pub guid: Uuid,
    /// `sAMAccountName`: the user name in the `Active Directory` IT system.
    pub sam: String,
}

/// One search result entry, as read: the attribute values dipex asked for.
#[derive(Clone, Debug, Default)]
pub struct RawEntry {
    pub cpr: Option<String>,
    pub guid: Option<Vec<u8>>,
    pub sam: Option<String>,
}

/// What AD says about one CPR number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdLookup<'a> {
    /// Exactly one account.
    Found(&'a AdUser),
    /// Several accounts carry the number: none of them is used, and the person's AD IT user is
    /// left as it is.
    Ambiguous,
    /// No account carries it.
    Absent,
}

/// Counts of what the search returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryStats {
    /// Entries returned (references excluded).
    pub entries: usize,
    /// Pages of the paged search.
    pub pages: usize,
    /// Entries whose CPR value is not 10 digits once `cpr_separator` is removed.
    pub bad_cpr: usize,
    /// Entries without a 16-byte `objectGUID` or without a `sAMAccountName`.
    pub incomplete: usize,
}

/// The accounts of the directory by CPR number: the answer of the one search of a run.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    users: HashMap<Cpr, AdUser>,
    ambiguous: HashMap<Cpr, usize>,
    pub stats: DirectoryStats,
}

/// A CPR value from AD: the separator removed, then exactly ten ASCII digits.
pub fn normalise_cpr(raw: &str, separator: &str) -> Option<Cpr> {
    let t = raw.trim();
    let t = if separator.is_empty() {
        t.to_string()
    } else {
        t.replace(separator, "")
    };
    if t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit()) {
        Cpr::parse(&t).ok()
    } else {
        None
    }
}

/// `objectGUID`: 16 bytes in Windows GUID byte order (the first three fields little-endian),
/// so AD's `{33221100-5544-7766-8899-aabbccddeeff}` is stored as `00 11 22 … ff`.
pub fn guid_from_bytes(bytes: &[u8]) -> Option<Uuid> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    Some(Uuid::from_bytes_le(b))
}

impl Directory {
    /// Build the map from the entries of the search. A CPR carried by several accounts is
    /// ambiguous: none of them is used.
    pub fn from_entries(
        entries: impl IntoIterator<Item = RawEntry>,
        cpr_separator: &str,
    ) -> Directory {
        let mut d = Directory::default();
        for e in entries {
            d.stats.entries += 1;
            let Some(cpr) = e
                .cpr
                .as_deref()
                .and_then(|c| normalise_cpr(c, cpr_separator))
            else {
                d.stats.bad_cpr += 1;
                continue;
            };
            let (Some(guid), Some(sam)) = (
                e.guid.as_deref().and_then(guid_from_bytes),
                e.sam.filter(|s| !s.trim().is_empty()),
            ) else {
                d.stats.incomplete += 1;
                continue;
            };
            if let Some(n) = d.ambiguous.get_mut(&cpr) {
                *n += 1;
            } else if d.users.remove(&cpr).is_some() {
                d.ambiguous.insert(cpr, 2);
            } else {
                d.users.insert(cpr, AdUser { guid, sam });
            }
        }
        d
    }

    /// A directory from known accounts (tests, and callers that read AD another way).
    pub fn from_users(users: impl IntoIterator<Item = (Cpr, AdUser)>) -> Directory {
        let users: HashMap<Cpr, AdUser> = users.into_iter().collect();
        Directory {
            stats: DirectoryStats {
                entries: users.len(),
                ..DirectoryStats::default()
            },
            users,
            ambiguous: HashMap::new(),
        }
    }

    pub fn lookup(&self, cpr: &Cpr) -> AdLookup<'_> {
        if let Some(u) = self.users.get(cpr) {
            AdLookup::Found(u)
        } else if self.ambiguous.contains_key(cpr) {
            AdLookup::Ambiguous
        } else {
            AdLookup::Absent
        }
    }

    /// Accounts usable by CPR.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// CPR numbers with several accounts.
    pub fn ambiguous(&self) -> usize {
        self.ambiguous.len()
    }

    /// Warnings about the search (CPR numbers masked), sorted.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .ambiguous
            .iter()
            .map(|(cpr, n)| (cpr.masked(), *n))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(cpr, n)| {
                format!("Active Directory: {n} accounts carry CPR {cpr}; none of them is used (no uuid from AD, the person's AD IT user is left as it is)")
            })
            .collect();
        if self.stats.bad_cpr > 0 {
            out.push(format!(
                "Active Directory: {} accounts have a CPR attribute that is not 10 digits once cpr_separator is removed; they are not used",
                self.stats.bad_cpr
            ));
        }
        if self.stats.incomplete > 0 {
            out.push(format!(
                "Active Directory: {} accounts lack a 16-byte objectGUID or a sAMAccountName; they are not used",
                self.stats.incomplete
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!([{
            "servers": ["dc1.example.org", "dc2.example.org:3269"],
            "system_user": "svc-mo@example.org",
            "password": "hunter2",
            "search_base": "OU=Users,DC=example,DC=org",
            "cpr_field": "employeeID",
            "cpr_separator": "-",
            "properties": ["whatever the AD sync wants"],
            "method": "kerberos"
        }, {"servers": ["other"]}])
    }

    #[test]
    fn guid_byte_order_is_windows() {
        // AD shows {00112233-4455-6677-8899-aabbccddeeff}; objectGUID holds these bytes.
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(
            guid_from_bytes(&bytes).unwrap().to_string(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(guid_from_bytes(&bytes[..15]), None);
        assert_eq!(guid_from_bytes(&[0; 17]), None);
    }

    #[test]
    fn cpr_normalisation() {
        let c = |s| Cpr::parse(s).unwrap();
        assert_eq!(normalise_cpr("010170-1234", "-"), Some(c("0101701234")));
        assert_eq!(normalise_cpr(" 0101701234 ", ""), Some(c("0101701234")));
        assert_eq!(normalise_cpr("010170 1234", " "), Some(c("0101701234")));
        // Strict: the separator must be the configured one.
        assert_eq!(normalise_cpr("010170-1234", ""), None);
        assert_eq!(normalise_cpr("01017012345", ""), None);
        assert_eq!(normalise_cpr("01017O1234", ""), None);
        assert_eq!(normalise_cpr("", "-"), None);
    }

    #[test]
    fn filter_escapes_the_sam_prefix() {
        let mut s = AdSettings::from_json(&minimal()).unwrap().unwrap();
        assert_eq!(search_filter(&s), "(&(employeeID=*))");
        s.filter = Some("(objectClass=user)".into());
        s.sam_filter = "a*(b)\\".into();
        let f = search_filter(&s);
        assert_eq!(
            f,
            "(&(objectClass=user)(employeeID=*)(sAMAccountName=a\\2a\\28b\\29\\5c*))"
        );
        assert!(::ldap3::parse_filter(&f).is_ok());
        // The filters the documentation suggests are accepted.
        for extra in [
            "(objectClass=user)",
            "(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        ] {
            let mut v = minimal()[0].clone();
            v["filter"] = json!(extra);
            assert!(AdSettings::from_json(&v).is_ok(), "{extra}");
        }
    }

    #[test]
    fn settings_first_of_the_list_with_defaults() {
        let s = AdSettings::from_json(&minimal()).unwrap().unwrap();
        assert_eq!(s.tls, Tls::Ldaps);
        assert_eq!(s.ignored_configs, 1);
        assert_eq!(s.page_size, 500);
        assert_eq!(s.timeout_seconds, 30);
        assert_eq!(
            s.urls(),
            [
                "ldaps://dc1.example.org:636",
                "ldaps://dc2.example.org:3269"
            ]
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        // One object instead of a list.
        let one = AdSettings::from_json(&minimal()[0]).unwrap().unwrap();
        assert_eq!(one.ignored_configs, 0);
        let mut v = minimal()[0].clone();
        v["tls"] = json!("starttls");
        v["port"] = json!(1389);
        let s = AdSettings::from_json(&v).unwrap().unwrap();
        assert_eq!(s.urls()[0], "ldap://dc1.example.org:1389");
        for off in [json!(null), json!(false), json!([]), json!({})] {
            assert_eq!(AdSettings::from_json(&off).unwrap(), None, "{off}");
        }
    }

    #[test]
    fn settings_errors_name_the_key_never_the_password() {
        let err = |patch: Value| {
            let mut v = minimal()[0].clone();
            for (k, x) in patch.as_object().unwrap() {
                if x.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = x.clone();
                }
            }
            AdSettings::from_json(&v).unwrap_err()
        };
        assert!(err(json!({"search_base": null})).contains("\"search_base\": required"));
        assert!(err(json!({"cpr_field": "employee ID"})).contains("\"cpr_field\""));
        assert!(err(json!({"tls": "tls1.3"})).contains("\"tls\""));
        assert!(err(json!({"port": 70000})).contains("\"port\""));
        assert!(err(json!({"page_size": 0})).contains("\"page_size\""));
        assert!(err(json!({"filter": "objectClass=user"})).contains("\"filter\""));
        assert!(err(json!({"filter": "(objectClass=user"})).contains("\"filter\""));
        assert!(err(json!({"servers": null})).contains("\"servers\""));
        let e = err(json!({"password": 42}));
        assert!(e.contains("\"password\"") && !e.contains("42"), "{e}");
        assert!(err(json!({"password": null})).contains("\"password\": required"));
        let e = err(json!({"tls": "none"}));
        assert!(
            e.contains("clear text") && e.contains("dc1.example.org"),
            "{e}"
        );
        assert!(err(json!({"ldap_url": "http://x"})).contains("\"ldap_url\""));
        assert!(err(json!({"ldap_url": "ldaps://x", "tls": "starttls"})).contains("\"tls\""));
        assert!(AdSettings::from_json(&json!(true)).is_err());
        assert!(AdSettings::from_json(&json!([1])).is_err());
        for e in [
            err(json!({"search_base": null})),
            err(json!({"tls": "none"})),
            err(json!({"password": ["hunter2"]})),
        ] {
            assert!(!e.contains("hunter2"), "{e}");
        }
        // Loopback without TLS is allowed, by URL or by servers.
        let mut v = minimal()[0].clone();
        v["servers"] = json!(["127.0.0.1:3890", "localhost"]);
        v["tls"] = json!("none");
        assert!(AdSettings::from_json(&v).is_ok());
        v["ldap_url"] = json!("ldap://[::1]:3890");
        let s = AdSettings::from_json(&v).unwrap().unwrap();
        assert_eq!(s.urls(), ["ldap://[::1]:3890"]);
    }

    #[test]
    fn duplicates_are_ambiguous_and_bad_values_are_counted() {
        let e = |cpr: &str, guid: u8, sam: &str| RawEntry {
            cpr: Some(cpr.into()),
            guid: Some(vec![guid; 16]),
            sam: Some(sam.into()),
        };
        let d = Directory::from_entries(
            [
                e("010101-0000", 1, "a"),
                e("030101-0000", 2, "b"),
                e("030101-0000", 3, "b2"),
                e("030101-0000", 4, "b3"),
                e("0401010000", 5, "c"),
                e("not a cpr", 6, "d"),
                RawEntry {
                    cpr: Some("050101-0000".into()),
                    guid: Some(vec![7; 15]),
                    sam: Some("e".into()),
                },
                RawEntry {
                    cpr: Some("060101-0000".into()),
                    guid: Some(vec![8; 16]),
                    sam: None,
                },
            ],
            "-",
        );
        let c = |s| Cpr::parse(s).unwrap();
        assert!(
            matches!(d.lookup(&c("0101010000")), AdLookup::Found(u) if u.sam == "a" && u.guid == Uuid::from_bytes([1; 16]))
        );
        assert_eq!(d.lookup(&c("0301010000")), AdLookup::Ambiguous);
        // A value without the separator is ten digits all the same.
        assert!(matches!(d.lookup(&c("0401010000")), AdLookup::Found(u) if u.sam == "c"));
        assert_eq!(d.lookup(&c("0501010000")), AdLookup::Absent);
        assert_eq!(d.len(), 2);
        assert_eq!(d.ambiguous(), 1);
        assert_eq!(d.stats.entries, 8);
        assert_eq!(d.stats.bad_cpr, 1);
        assert_eq!(d.stats.incomplete, 2);
        let w = d.warnings().join("\n");
        assert!(w.contains("3 accounts carry CPR 030101-xxxx"), "{w}");
        assert!(!w.contains("0301010000") && !w.contains("not a cpr"), "{w}");
    }
}
