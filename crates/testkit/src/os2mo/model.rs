//! MO's v30 vocabulary as tables: which read fields each type has and where their values live,
//! which filter fields each collection understands, and the input fields of every mutation.

use crate::os2mo::store::Kind;

/// How a read field of a validity is produced.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Read {
    Uuid,
    /// A stored value, verbatim (`null` when unset).
    Val(&'static str),
    /// A single link `{uuid}` (or `null`) to an object of the given kind; not date-filtered.
    Link(&'static str, Kind),
    /// The first element of a stored uuid list as a single link.
    FirstOf(&'static str, Kind),
    /// A nested paged list of links, with its own "now" window.
    Paged(&'static str, Kind),
    /// A stored uuid list, verbatim.
    List(&'static str),
    Validity,
    Typename,
    /// `given_name surname` (or the nickname pair).
    FullName(&'static str, &'static str),
    IsPrimary,
    Null,
}

const FUNCTION_LINKS: &[(&str, Read)] = &[
    ("person_response", Read::Link("person", Kind::Person)),
    ("employee_uuid", Read::Val("person")),
    ("org_unit_response", Read::Link("org_unit", Kind::OrgUnit)),
    ("org_unit_uuid", Read::Val("org_unit")),
];

/// The read field `name` of type `kind`.
pub(crate) fn read_field(kind: Kind, name: &str) -> Option<Read> {
    use Read::*;
    match name {
        "uuid" => return Some(Uuid),
        "user_key" => return Some(Val("user_key")),
        "validity" => return Some(Validity),
        "__typename" => return Some(Typename),
        _ => {}
    }
    let table: &[(&str, Read)] = match kind {
        Kind::Facet => &[
            ("published", Val("published")),
            ("description", Val("description")),
        ],
        Kind::Class => &[
            ("name", Val("name")),
            ("full_name", Val("name")),
            ("scope", Val("scope")),
            ("published", Val("published")),
            ("owner", Val("owner")),
            ("example", Val("example")),
            ("description", Val("description")),
            ("facet_response", Link("facet_uuid", Kind::Facet)),
            ("facet_uuid", Val("facet_uuid")),
            ("parent_response", Link("parent_uuid", Kind::Class)),
            ("parent_uuid", Val("parent_uuid")),
            ("it_system_response", Link("it_system_uuid", Kind::ItSystem)),
            ("it_system_uuid", Val("it_system_uuid")),
            ("owner_response", Link("owner", Kind::OrgUnit)),
        ],
        Kind::ItSystem => &[("name", Val("name")), ("system_type", Val("system_type"))],
        Kind::OrgUnit => &[
            ("name", Val("name")),
            ("parent_response", Link("parent", Kind::OrgUnit)),
            ("parent_uuid", Val("parent")),
            ("unit_type_response", Link("org_unit_type", Kind::Class)),
            ("unit_type_uuid", Val("org_unit_type")),
            ("unit_level_response", Link("org_unit_level", Kind::Class)),
            ("org_unit_level_uuid", Val("org_unit_level")),
            (
                "unit_hierarchy_response",
                Link("org_unit_hierarchy", Kind::Class),
            ),
            ("org_unit_hierarchy", Val("org_unit_hierarchy")),
            ("time_planning_response", Link("time_planning", Kind::Class)),
            ("time_planning_uuid", Val("time_planning")),
        ],
        Kind::Person => &[
            ("given_name", Val("given_name")),
            ("surname", Val("surname")),
            ("name", FullName("given_name", "surname")),
            ("nickname_given_name", Val("nickname_given_name")),
            ("nickname_surname", Val("nickname_surname")),
            (
                "nickname",
                FullName("nickname_given_name", "nickname_surname"),
            ),
            ("cpr_number", Val("cpr_number")),
            ("seniority", Val("seniority")),
        ],
        Kind::Engagement => &[
            ("fraction", Val("fraction")),
            ("extension_1", Val("extension_1")),
            ("extension_2", Val("extension_2")),
            ("extension_3", Val("extension_3")),
            ("extension_4", Val("extension_4")),
            ("extension_5", Val("extension_5")),
            ("extension_6", Val("extension_6")),
            ("extension_7", Val("extension_7")),
            ("extension_8", Val("extension_8")),
            ("extension_9", Val("extension_9")),
            ("extension_10", Val("extension_10")),
            ("is_primary", IsPrimary),
            ("job_function_response", Link("job_function", Kind::Class)),
            ("job_function_uuid", Val("job_function")),
            (
                "engagement_type_response",
                Link("engagement_type", Kind::Class),
            ),
            ("engagement_type_uuid", Val("engagement_type")),
            ("primary_response", Link("primary", Kind::Class)),
            ("primary_uuid", Val("primary")),
        ],
        Kind::Address => &[
            ("value", Val("value")),
            ("value2", Null),
            ("name", Val("value")),
            ("address_type_response", Link("address_type", Kind::Class)),
            ("address_type_uuid", Val("address_type")),
            ("visibility_response", Link("visibility", Kind::Class)),
            ("visibility_uuid", Val("visibility")),
            ("engagement_response", Link("engagement", Kind::Engagement)),
            ("engagement_uuid", Val("engagement")),
            ("ituser_response", Link("ituser", Kind::ItUser)),
            ("ituser_uuid", Val("ituser")),
        ],
        Kind::ItUser => &[
            ("external_id", Val("external_id")),
            ("binding_type", Val("binding_type")),
            ("itsystem_response", Link("itsystem", Kind::ItSystem)),
            ("itsystem_uuid", Val("itsystem")),
            ("primary_response", Link("primary", Kind::Class)),
            ("primary_uuid", Val("primary")),
            ("engagement_uuids", List("engagements")),
            (
                "engagements_responses",
                Paged("engagements", Kind::Engagement),
            ),
            (
                "engagement_response",
                FirstOf("engagements", Kind::Engagement),
            ),
        ],
        Kind::Manager => &[
            ("engagement_response", Link("engagement", Kind::Engagement)),
            ("manager_type_response", Link("manager_type", Kind::Class)),
            ("manager_type_uuid", Val("manager_type")),
            ("manager_level_response", Link("manager_level", Kind::Class)),
            ("manager_level_uuid", Val("manager_level")),
            (
                "responsibilities_response",
                Paged("responsibility", Kind::Class),
            ),
            ("responsibility_uuids", List("responsibility")),
        ],
        Kind::Association => &[
            (
                "association_type_response",
                Link("association_type", Kind::Class),
            ),
            ("association_type_uuid", Val("association_type")),
            ("primary_response", Link("primary", Kind::Class)),
            ("primary_uuid", Val("primary")),
            ("substitute_response", Link("substitute", Kind::Person)),
            ("substitute_uuid", Val("substitute")),
            ("job_function_response", Link("job_function", Kind::Class)),
            ("job_function_uuid", Val("job_function")),
            ("it_user_response", Link("it_user", Kind::ItUser)),
            ("it_user_uuid", Val("it_user")),
            ("trade_union_response", Link("trade_union", Kind::Class)),
        ],
        Kind::Leave => &[
            ("engagement_response", Link("engagement", Kind::Engagement)),
            ("engagement_uuid", Val("engagement")),
            ("leave_type_response", Link("leave_type", Kind::Class)),
            ("leave_type_uuid", Val("leave_type")),
        ],
        Kind::Kle => &[
            ("kle_number_response", Link("kle_number", Kind::Class)),
            ("kle_number_uuid", Val("kle_number")),
            ("kle_aspects_response", Paged("kle_aspects", Kind::Class)),
            ("kle_aspect_uuids", List("kle_aspects")),
        ],
    };
    if let Some((_, r)) = table.iter().find(|(n, _)| *n == name) {
        return Some(*r);
    }
    let links = match kind {
        Kind::Engagement | Kind::Address | Kind::ItUser | Kind::Manager | Kind::Association => {
            FUNCTION_LINKS
        }
        Kind::Leave => &FUNCTION_LINKS[..2],
        Kind::Kle => &FUNCTION_LINKS[2..],
        _ => &[],
    };
    links.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// GraphQL name of the filter input of a collection.
pub(crate) fn filter_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Facet => "FacetFilter",
        Kind::Class => "ClassFilter",
        Kind::ItSystem => "ITSystemFilter",
        Kind::OrgUnit => "OrganisationUnitFilter",
        Kind::Person => "EmployeeFilter",
        Kind::Engagement => "EngagementFilter",
        Kind::Address => "AddressFilter",
        Kind::ItUser => "ITUserFilter",
        Kind::Manager => "ManagerFilter",
        Kind::Association => "AssociationFilter",
        Kind::Leave => "LeaveFilter",
        Kind::Kle => "KLEFilter",
    }
}

/// A filter field beyond the common ones (`uuids`, `user_keys`, dates, `registration`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FilterField {
    /// A nested filter on the linked object(s) stored under the key.
    Nested {
        key: &'static str,
        target: Kind,
        null_is_none: bool,
    },
    /// Exact string match on a stored value.
    Strings(&'static str),
    /// `it_association: Boolean` on associations.
    ItAssociation,
}

/// The extra filter field `name` of collection `kind`.
pub(crate) fn filter_field(kind: Kind, name: &str) -> Option<FilterField> {
    use FilterField::*;
    let nested = |key, target| {
        Some(Nested {
            key,
            target,
            null_is_none: false,
        })
    };
    match (kind, name) {
        (Kind::Class, "facet") => nested("facet_uuid", Kind::Facet),
        (Kind::Class, "parent") => nested("parent_uuid", Kind::Class),
        (Kind::Class, "it_system") => nested("it_system_uuid", Kind::ItSystem),
        (Kind::Class, "name") => Some(Strings("name")),
        (Kind::Class, "scope") => Some(Strings("scope")),
        (Kind::OrgUnit, "parent") => Some(Nested {
            key: "parent",
            target: Kind::OrgUnit,
            null_is_none: true,
        }),
        (Kind::OrgUnit, "names") => Some(Strings("name")),
        (Kind::Person, "cpr_numbers") => Some(Strings("cpr_number")),
        (Kind::Engagement, "job_function") => nested("job_function", Kind::Class),
        (Kind::Engagement, "engagement_type") => nested("engagement_type", Kind::Class),
        (Kind::Address, "address_type") => nested("address_type", Kind::Class),
        (Kind::Address, "visibility") => nested("visibility", Kind::Class),
        (Kind::Address, "engagement") => nested("engagement", Kind::Engagement),
        (Kind::Address, "ituser") => nested("ituser", Kind::ItUser),
        (Kind::ItUser, "itsystem") => nested("itsystem", Kind::ItSystem),
        (Kind::ItUser, "engagement") => nested("engagements", Kind::Engagement),
        (Kind::ItUser, "external_ids") => Some(Strings("external_id")),
        (Kind::ItUser, "primary") => Some(Nested {
            key: "primary",
            target: Kind::Class,
            null_is_none: true,
        }),
        (Kind::Manager, "employee") => Some(Nested {
            key: "person",
            target: Kind::Person,
            null_is_none: true,
        }),
        (Kind::Manager, "engagement") => nested("engagement", Kind::Engagement),
        (Kind::Manager, "responsibility") => nested("responsibility", Kind::Class),
        (Kind::Manager, "manager_type") => nested("manager_type", Kind::Class),
        (Kind::Association, "association_type") => nested("association_type", Kind::Class),
        (Kind::Association, "it_association") => Some(ItAssociation),
        (
            Kind::Engagement | Kind::Address | Kind::ItUser | Kind::Association | Kind::Leave,
            "employee",
        ) => nested("person", Kind::Person),
        (
            Kind::Engagement
            | Kind::Address
            | Kind::ItUser
            | Kind::Manager
            | Kind::Association
            | Kind::Kle,
            "org_unit",
        ) => nested("org_unit", Kind::OrgUnit),
        _ => None,
    }
}

/// Scalar/input kinds of mutation input fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Uuid,
    Str,
    Int,
    Bool,
    Cpr,
    Date,
    DateTime,
    UuidList,
    /// `RAValidityInput` (`from` required).
    RaValidity,
    /// `ValidityInput` / `RAOpenValidityInput` (both optional).
    OpenValidity(&'static str),
}

impl Ty {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Ty::Uuid => "UUID",
            Ty::Str => "String",
            Ty::Int => "Int",
            Ty::Bool => "Boolean",
            Ty::Cpr => "CPR",
            Ty::Date => "Date",
            Ty::DateTime => "DateTime",
            Ty::UuidList => "[UUID!]",
            Ty::RaValidity => "RAValidityInput",
            Ty::OpenValidity(n) => n,
        }
    }
}

/// What a mutation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Update,
    Terminate,
    Delete,
}

/// A mutation field: its object kind, operation, input type and whether it takes a list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mutation {
    pub kind: Kind,
    pub op: Op,
    pub it_association: bool,
    pub bulk: bool,
}

/// Look up a mutation field by name.
pub(crate) fn mutation(name: &str) -> Option<Mutation> {
    let (bulk, base) = match name {
        "engagements_create" => (true, "engagement_create"),
        "engagements_update" => (true, "engagement_update"),
        "addresses_create" => (true, "address_create"),
        "itusers_create" => (true, "ituser_create"),
        "managers_create" => (true, "manager_create"),
        other => (false, other),
    };
    let (obj, op) = base.rsplit_once('_')?;
    let op = match op {
        "create" => Op::Create,
        "update" => Op::Update,
        "terminate" => Op::Terminate,
        "delete" => Op::Delete,
        _ => return None,
    };
    let (kind, it_association) = match obj {
        "facet" => (Kind::Facet, false),
        "class" => (Kind::Class, false),
        "itsystem" => (Kind::ItSystem, false),
        "org_unit" => (Kind::OrgUnit, false),
        "employee" => (Kind::Person, false),
        "engagement" => (Kind::Engagement, false),
        "address" => (Kind::Address, false),
        "ituser" => (Kind::ItUser, false),
        "manager" => (Kind::Manager, false),
        "association" => (Kind::Association, false),
        "itassociation" if op != Op::Delete => (Kind::Association, true),
        "leave" => (Kind::Leave, false),
        "kle" => (Kind::Kle, false),
        _ => return None,
    };
    Some(Mutation {
        kind,
        op,
        it_association,
        bulk,
    })
}

/// The GraphQL input type name of a mutation.
pub(crate) fn input_type(m: Mutation) -> String {
    let obj = if m.it_association {
        "ITAssociation"
    } else {
        match m.kind {
            Kind::Facet => "Facet",
            Kind::Class => "Class",
            Kind::ItSystem => "ITSystem",
            Kind::OrgUnit => "OrganisationUnit",
            Kind::Person => "Employee",
            Kind::Engagement => "Engagement",
            Kind::Address => "Address",
            Kind::ItUser => "ITUser",
            Kind::Manager => "Manager",
            Kind::Association => "Association",
            Kind::Leave => "Leave",
            Kind::Kle => "KLE",
        }
    };
    let op = match m.op {
        Op::Create => "CreateInput",
        Op::Update => "UpdateInput",
        Op::Terminate => "TerminateInput",
        Op::Delete => "",
    };
    format!("{obj}{op}")
}

const EXTENSIONS: [&str; 10] = [
    "extension_1",
    "extension_2",
    "extension_3",
    "extension_4",
    "extension_5",
    "extension_6",
    "extension_7",
    "extension_8",
    "extension_9",
    "extension_10",
];

/// The input fields `(name, type, required)` of a create/update/terminate input.
pub(crate) fn input_fields(m: Mutation) -> Vec<(&'static str, Ty, bool)> {
    use Ty::*;
    let create = m.op == Op::Create;
    if m.op == Op::Terminate {
        let mut v = vec![
            ("uuid", Uuid, true),
            ("to", DateTime, true),
            ("from", DateTime, false),
        ];
        if m.kind == Kind::Person {
            v.push(("vacate", Bool, false));
        }
        return v;
    }
    let mut v: Vec<(&'static str, Ty, bool)> = vec![("uuid", Uuid, !create)];
    let req = create;
    match m.kind {
        Kind::Facet => {
            v.extend([
                ("user_key", Str, true),
                ("published", Str, false),
                ("validity", OpenValidity("ValidityInput"), true),
            ]);
        }
        Kind::Class => {
            v.extend([
                ("name", Str, true),
                ("user_key", Str, true),
                ("facet_uuid", Uuid, true),
                ("scope", Str, false),
                ("published", Str, false),
                ("parent_uuid", Uuid, false),
                ("example", Str, false),
                ("owner", Uuid, false),
                ("validity", OpenValidity("ValidityInput"), true),
                ("it_system_uuid", Uuid, false),
                ("description", Str, false),
            ]);
        }
        Kind::ItSystem => {
            v.extend([
                ("user_key", Str, true),
                ("name", Str, true),
                ("validity", OpenValidity("RAOpenValidityInput"), true),
            ]);
        }
        Kind::OrgUnit => {
            v.extend([
                ("validity", RaValidity, true),
                ("name", Str, req),
                ("user_key", Str, false),
                ("parent", Uuid, false),
                ("org_unit_type", Uuid, req),
                ("time_planning", Uuid, false),
                ("org_unit_level", Uuid, false),
                ("org_unit_hierarchy", Uuid, false),
            ]);
        }
        Kind::Person => {
            v.extend([
                ("user_key", Str, false),
                ("nickname_given_name", Str, false),
                ("nickname_surname", Str, false),
                ("seniority", Date, false),
                ("cpr_number", Cpr, false),
                ("given_name", Str, req),
                ("surname", Str, req),
            ]);
            if !create {
                v.push(("validity", RaValidity, true));
            }
        }
        Kind::Engagement => {
            v.extend([
                ("user_key", Str, false),
                ("primary", Uuid, false),
                ("validity", RaValidity, true),
                ("fraction", Int, false),
            ]);
            v.extend(EXTENSIONS.iter().map(|e| (*e, Str, false)));
            v.extend([
                ("employee", Uuid, false),
                ("person", Uuid, false),
                ("org_unit", Uuid, req),
                ("engagement_type", Uuid, req),
                ("job_function", Uuid, req),
            ]);
        }
        Kind::Address => {
            v.extend([
                ("org_unit", Uuid, false),
                ("person", Uuid, false),
                ("employee", Uuid, false),
                ("engagement", Uuid, false),
                ("ituser", Uuid, false),
                ("visibility", Uuid, false),
                ("validity", RaValidity, true),
                ("user_key", Str, false),
                ("value", Str, req),
                ("address_type", Uuid, req),
            ]);
        }
        Kind::ItUser => {
            v.extend([
                ("external_id", Str, false),
                ("binding_type", Str, false),
                ("primary", Uuid, false),
                ("person", Uuid, false),
                ("org_unit", Uuid, false),
                ("engagement", Uuid, false),
                ("engagements", UuidList, false),
                ("validity", RaValidity, true),
                ("user_key", Str, req),
                ("itsystem", Uuid, req),
                ("note", Str, false),
            ]);
        }
        Kind::Manager => {
            v.extend([
                ("user_key", Str, false),
                ("person", Uuid, false),
                ("responsibility", UuidList, req),
                ("engagement", Uuid, false),
                ("org_unit", Uuid, req),
                ("manager_level", Uuid, req),
                ("manager_type", Uuid, req),
                ("validity", RaValidity, true),
            ]);
        }
        Kind::Association if m.it_association => {
            v.extend([
                ("user_key", Str, false),
                ("primary", Uuid, false),
                ("validity", RaValidity, true),
                ("org_unit", Uuid, req),
                ("it_user", Uuid, req),
                ("job_function", Uuid, req),
            ]);
            if create {
                v.push(("person", Uuid, true));
            }
        }
        Kind::Association => {
            v.extend([
                ("user_key", Str, false),
                ("primary", Uuid, false),
                ("validity", RaValidity, true),
                ("person", Uuid, false),
                ("employee", Uuid, false),
                ("substitute", Uuid, false),
                ("trade_union", Uuid, false),
                ("org_unit", Uuid, req),
                ("association_type", Uuid, req),
            ]);
        }
        Kind::Leave => {
            v.extend([
                ("user_key", Str, false),
                ("person", Uuid, req),
                ("engagement", Uuid, req),
                ("leave_type", Uuid, req),
                ("validity", RaValidity, true),
            ]);
        }
        Kind::Kle => {
            v.extend([
                ("user_key", Str, false),
                ("org_unit", Uuid, req),
                ("kle_aspects", UuidList, req),
                ("kle_number", Uuid, req),
                ("validity", RaValidity, true),
            ]);
        }
    }
    v
}

/// The stored value keys of a kind (every stored slice has all of them, `null` when unset).
pub(crate) fn value_keys(kind: Kind) -> Vec<&'static str> {
    let m = Mutation {
        kind,
        op: Op::Create,
        it_association: false,
        bulk: false,
    };
    let mut keys: Vec<&'static str> = input_fields(m)
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| !matches!(*n, "uuid" | "validity" | "employee" | "engagement" | "note"))
        .collect();
    match kind {
        Kind::Address | Kind::Manager | Kind::Leave => keys.push("engagement"),
        Kind::ItSystem => keys.push("system_type"),
        Kind::Association => keys.extend(["it_user", "job_function"]),
        Kind::Facet | Kind::Class => {}
        _ => {}
    }
    keys
}
