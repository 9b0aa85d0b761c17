//! `OrgUnitRegistration` and `UserRegistration`: binding a posted JSON body the way OS2sync's
//! Newtonsoft binder does (case-insensitive member names, unknown members ignored, scalars
//! converted to strings, `null` lists as empty), the controllers' validation texts, and the
//! canonical PascalCase shapes that GET answers.

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// String members of `OrgUnitRegistration` besides `Uuid`, in OS2sync's order.
const OU_STRINGS: [&str; 24] = [
    "ShortKey",
    "Name",
    "ParentOrgUnitUuid",
    "PayoutUnitUuid",
    "ManagerUuid",
    "PhoneNumber",
    "Email",
    "Location",
    "LOSShortName",
    "LOSId",
    "DtrId",
    "ContactOpenHours",
    "EmailRemarks",
    "Contact",
    "PostReturn",
    "PhoneOpenHours",
    "Ean",
    "Url",
    "Landline",
    "Post",
    "PostSecondary",
    "FOA",
    "PNR",
    "SOR",
];

/// String members that reference FK objects by uuid (stored lower-cased, as FK ORG gives them).
const OU_UUID_REFS: [&str; 3] = ["ParentOrgUnitUuid", "PayoutUnitUuid", "ManagerUuid"];

/// List members of `OrgUnitRegistration` (uuids; `null` binds as an empty list).
const OU_LISTS: [&str; 4] = ["Tasks", "ItSystems", "ContactForTasks", "ContactPlaces"];

/// String members of `UserRegistration` besides `Uuid`.
const USER_STRINGS: [&str; 8] = [
    "ShortKey",
    "UserId",
    "PhoneNumber",
    "Landline",
    "Email",
    "Location",
    "RacfID",
    "FMKID",
];

/// An object as "FK ORG" holds it: its uuid and its canonical registration JSON.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub uuid: Uuid,
    /// Canonical PascalCase registration, every member present.
    pub json: Value,
    /// Users only: the `Status` enum FK reports (1 = ACTIVE).
    pub status: i64,
}

/// Look a member up as Newtonsoft binds it: name compared ignoring case, the last one wins.
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
}

/// A string member: `null`/absent → `None`, numbers and booleans converted like Newtonsoft.
fn string_member(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<String>, String> {
    match member(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_string(v).map(Some).ok_or_else(|| {
            format!("Error converting value to type 'System.String'. Path '{path}{name}'.")
        }),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        _ => None,
    }
}

/// A uuid-valued string, lower-cased when it parses as a uuid (FK ORG answers lower case).
fn lower_uuid(s: String) -> String {
    match Uuid::parse_str(s.trim()) {
        Ok(u) => u.to_string(),
        Err(_) => s,
    }
}

fn opt(v: Option<String>) -> Value {
    v.map(Value::String).unwrap_or(Value::Null)
}

fn object<'a>(body: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    body.as_object()
        .ok_or_else(|| format!("the request body is not a JSON object ({what} expected)"))
}

/// Bind and validate an `OrgUnitRegistration`; `Err` is the 400 text.
pub(crate) fn parse_ou(body: &Value) -> Result<Stored, String> {
    let obj = object(body, "OrgUnitRegistration")?;
    let uuid_s = string_member(obj, "Uuid", "")?;
    let mut out = Map::new();
    let mut strings = Vec::with_capacity(OU_STRINGS.len());
    for name in OU_STRINGS {
        let mut v = string_member(obj, name, "")?;
        if OU_UUID_REFS.contains(&name) {
            v = v.map(lower_uuid);
        }
        strings.push((name, v));
    }
    let mut lists = Vec::with_capacity(OU_LISTS.len());
    for name in OU_LISTS {
        let items = match member(obj, name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    scalar_string(v).map(lower_uuid).ok_or_else(|| {
                        format!(
                            "Error converting value to type 'System.String'. Path '{name}[{i}]'."
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(format!(
                    "Cannot deserialize the current JSON value into type \
                     'System.Collections.Generic.List`1[System.String]'. Path '{name}'."
                ));
            }
        };
        lists.push((name, items));
    }
    let typ = match member(obj, "Type") {
        None | Some(Value::Null) => "DEPARTMENT".to_string(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("DEPARTMENT") => "DEPARTMENT".into(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("TEAM") => "TEAM".into(),
        Some(v) if v.as_i64() == Some(0) => "DEPARTMENT".into(),
        Some(v) if v.as_i64() == Some(1) => "TEAM".into(),
        Some(_) => return Err("Error converting value to type 'OrgUnitType'. Path 'Type'.".into()),
    };
    let timestamp = timestamp_member(obj)?;

    // The controller's validation, in its order.
    let name_ok = strings
        .iter()
        .any(|(n, v)| *n == "Name" && v.as_deref().is_some_and(|s| !s.is_empty()));
    if !name_ok {
        return Err("name is null".into());
    }
    let uuid = uuid_s
        .as_deref()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .ok_or("uuid is null")?;

    out.insert("Uuid".into(), Value::String(uuid.to_string()));
    for (name, v) in strings {
        out.insert(name.into(), opt(v));
    }
    for (name, items) in lists {
        out.insert(name.into(), json!(items));
    }
    out.insert("Type".into(), Value::String(typ));
    out.insert("Timestamp".into(), Value::String(timestamp));
    Ok(Stored {
        uuid,
        json: Value::Object(out),
        status: 1,
    })
}

fn timestamp_member(obj: &Map<String, Value>) -> Result<String, String> {
    match member(obj, "Timestamp") {
        None | Some(Value::Null) => Ok(crate::os2sync::time::now_iso()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => {
            Err("Error converting value to type 'System.DateTime'. Path 'Timestamp'.".into())
        }
    }
}

/// Bind and validate a `UserRegistration`; `Err` is the 400 text.
pub(crate) fn parse_user(body: &Value) -> Result<Stored, String> {
    let obj = object(body, "UserRegistration")?;
    let uuid_s = string_member(obj, "Uuid", "")?;
    let mut strings = Vec::with_capacity(USER_STRINGS.len());
    for name in USER_STRINGS {
        strings.push((name, string_member(obj, name, "")?));
    }
    let is_robot = match member(obj, "IsRobot") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err("Error converting value to type 'System.Boolean'. Path 'IsRobot'.".into());
        }
    };
    // A missing Person binds as an empty one.
    let empty = Map::new();
    let person = match member(obj, "Person") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err("Error converting value to type 'Person'. Path 'Person'.".into()),
    };
    let person_name = string_member(person, "Name", "Person.")?;
    let cpr = string_member(person, "Cpr", "Person.")?.map(|c| c.replace('-', ""));
    let person_uuid = string_member(person, "Uuid", "Person.")?.map(lower_uuid);
    let positions = match member(obj, "Positions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            let mut ps = Vec::with_capacity(a.len());
            for (i, p) in a.iter().enumerate() {
                let path = format!("Positions[{i}].");
                let p = match p {
                    Value::Object(p) => p,
                    Value::Null => &empty,
                    _ => {
                        return Err(format!(
                            "Error converting value to type 'Position'. Path 'Positions[{i}]'."
                        ));
                    }
                };
                ps.push((
                    string_member(p, "Name", &path)?,
                    string_member(p, "OrgUnitUuid", &path)?,
                    string_member(p, "StartDate", &path)?,
                    string_member(p, "StopDate", &path)?,
                ));
            }
            Some(ps)
        }
        Some(_) => {
            return Err(
                "Cannot deserialize the current JSON value into type 'List`1[Position]'. \
                 Path 'Positions'."
                    .into(),
            );
        }
    };
    let timestamp = timestamp_member(obj)?;

    // The controller's validation, in its order.
    if person_name.as_deref().is_none_or(str::is_empty) {
        return Err("Person.Name is null or empty".into());
    }
    let user_id_ok = strings
        .iter()
        .any(|(n, v)| *n == "UserId" && v.as_deref().is_some_and(|s| !s.is_empty()));
    if !user_id_ok {
        return Err("UserId is null or empty".into());
    }
    let uuid = uuid_s
        .as_deref()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .ok_or("Uuid is null empty")?;
    let positions = match positions {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Positions is null or empty".into()),
    };
    let mut pos_json = Vec::with_capacity(positions.len());
    for (name, ou, start, stop) in positions {
        let ou = ou.as_deref().and_then(|s| Uuid::parse_str(s.trim()).ok());
        let (Some(name), Some(ou)) = (name.filter(|n| !n.is_empty()), ou) else {
            return Err("Position Name or OrgUnitUUID is null".into());
        };
        pos_json.push(json!({
            "Name": name,
            "OrgUnitUuid": ou.to_string(),
            "StartDate": start,
            "StopDate": stop,
        }));
    }

    let mut out = Map::new();
    out.insert("Uuid".into(), Value::String(uuid.to_string()));
    for (name, v) in strings {
        out.insert(name.into(), opt(v));
    }
    out.insert("IsRobot".into(), Value::Bool(is_robot));
    out.insert(
        "Person".into(),
        json!({"Name": person_name, "Cpr": cpr, "Uuid": person_uuid}),
    );
    out.insert("Positions".into(), Value::Array(pos_json));
    out.insert("Timestamp".into(), Value::String(timestamp));
    let status = member(obj, "Status").and_then(Value::as_i64).unwrap_or(1);
    Ok(Stored {
        uuid,
        json: Value::Object(out),
        status,
    })
}

/// What `GET /api/orgUnit/{uuid}` answers for a stored unit.
pub(crate) fn ou_output(s: &Stored) -> Value {
    s.json.clone()
}

/// What `GET /api/user/{uuid}` answers for a stored user (the registration plus `Status`).
pub(crate) fn user_output(s: &Stored) -> Value {
    let mut v = s.json.clone();
    if let Value::Object(m) = &mut v {
        m.insert("Status".into(), json!(s.status));
    }
    v
}

fn str_of<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The `Result` of a hierarchy job: every unit, and (unless `only_ous`) every user that has a
/// position in one of those units and a `Person.Name`, with the positions in those units.
pub(crate) fn hierarchy<'a>(
    ous: impl Iterator<Item = &'a Stored> + Clone,
    users: impl Iterator<Item = &'a Stored>,
    only_ous: bool,
) -> Value {
    let ou_ids: std::collections::BTreeSet<&str> = ous
        .clone()
        .filter_map(|o| str_of(&o.json, "Uuid"))
        .collect();
    let ous_json: Vec<Value> = ous
        .map(|o| {
            json!({
                "Uuid": str_of(&o.json, "Uuid"),
                "Name": str_of(&o.json, "Name"),
                "ParentOU": str_of(&o.json, "ParentOrgUnitUuid"),
            })
        })
        .collect();
    let mut users_json = Vec::new();
    if !only_ous {
        for u in users {
            let Some(name) = u.json["Person"]["Name"].as_str().filter(|n| !n.is_empty()) else {
                continue;
            };
            let positions: Vec<Value> = u.json["Positions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| str_of(p, "OrgUnitUuid").is_some_and(|o| ou_ids.contains(o)))
                .map(|p| json!({"Uuid": str_of(p, "OrgUnitUuid"), "Name": str_of(p, "Name")}))
                .collect();
            if positions.is_empty() {
                continue;
            }
            users_json.push(json!({
                "Uuid": str_of(&u.json, "Uuid"),
                "UserId": str_of(&u.json, "UserId"),
                "Name": name,
                "Positions": positions,
                "Email": str_of(&u.json, "Email"),
                "Telephone": str_of(&u.json, "PhoneNumber"),
                "Status": u.status,
            }));
        }
    }
    json!({"OUs": ous_json, "Users": users_json})
}
