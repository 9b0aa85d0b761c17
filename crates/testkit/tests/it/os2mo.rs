//! Integration tests of the OS2mo test server over real HTTP: auth, the observed scenario (§4),
//! validity semantics (§5), error shapes (§6), the no-op trap and atomicity (§7), paging, the
//! registration filter, failure injection and schema validation.

use std::time::Duration;

use crate::os2mo_common::*;
use dipex_testkit::os2mo::{Failure, MoServer, Options, load_schema, validate_request};
use serde_json::{Value, json};

const TOKEN: &str = "/auth/realms/mo/protocol/openid-connect/token";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn token(srv: &MoServer, body: &str) -> (u16, Value) {
    let (s, _, b) = http(&srv.base_url(), "POST", TOKEN, &[FORM], body.as_bytes());
    (s, serde_json::from_slice(&b).unwrap())
}

fn gql_bearer(srv: &MoServer, tok: &str, query: &str) -> Value {
    let body = serde_json::to_vec(&json!({"query": query})).unwrap();
    let auth = format!("Bearer {tok}");
    let (s, _, b) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("Authorization", &auth)],
        &body,
    );
    assert_eq!(s, 200);
    serde_json::from_slice(&b).unwrap()
}

#[test]
fn auth_tokens_sessions_and_routes() {
    let srv = MoServer::start(Options {
        token_lifetime: Duration::from_millis(1500),
        legacy_session: Some(SESSION.parse().unwrap()),
        schema: None,
        ..Options::default()
    });
    assert!(srv.auth_server().ends_with("/auth"));
    let unauth = json!({"data": null, "errors": [{"message": "User is not authenticated"}]});
    // No credentials at all.
    let (s, _, b) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[],
        br#"{"query": "{ org { uuid } }"}"#,
    );
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap(), unauth);
    assert_eq!(gql_bearer(&srv, "made-up", "{ org { uuid } }"), unauth);
    // Wrong secret, wrong client, wrong grant.
    let (s, v) = token(
        &srv,
        "grant_type=client_credentials&client_id=dipex&client_secret=nope",
    );
    assert_eq!(s, 401);
    assert_eq!(
        v,
        json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"})
    );
    let (s, _) = token(
        &srv,
        "grant_type=client_credentials&client_id=other&client_secret=test-secret",
    );
    assert_eq!(s, 401);
    let (s, v) = token(
        &srv,
        "grant_type=password&client_id=dipex&client_secret=test-secret",
    );
    assert_eq!(s, 400);
    assert_eq!(v["error"], "unsupported_grant_type");
    // A good token works until it expires.
    let (s, v) = token(
        &srv,
        "grant_type=client_credentials&client_id=dipex&client_secret=test%2Dsecret",
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 1);
    assert_eq!(v["refresh_expires_in"], 0);
    let tok = v["access_token"].as_str().unwrap().to_string();
    let r = gql_bearer(&srv, &tok, "{ org { user_key name } }");
    assert_eq!(
        r,
        json!({"data": {"org": {"user_key": "root", "name": "root"}}})
    );
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(gql_bearer(&srv, &tok, "{ org { uuid } }"), unauth);
    // Legacy session, header name in any case; an unknown session is refused.
    let q = br#"{"query": "{ org { user_key } }"}"#;
    let (_, _, b) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("Session", SESSION)],
        q,
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["data"]["org"]["user_key"],
        "root"
    );
    let other = uuid::Uuid::new_v4().to_string();
    let (_, _, b) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("session", &other)],
        q,
    );
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap(), unauth);
    // Routes.
    let (s, h, _) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30/",
        &[("session", SESSION)],
        q,
    );
    assert_eq!(s, 307);
    assert!(
        h.iter()
            .any(|(k, v)| k == "location" && v == "/graphql/v30")
    );
    assert_eq!(
        http(
            &srv.base_url(),
            "POST",
            "/graphql/v29",
            &[("session", SESSION)],
            q
        )
        .0,
        404
    );
    assert_eq!(
        http(&srv.base_url(), "GET", "/health/live", &[], b"").0,
        204
    );
    assert_eq!(
        http(
            &srv.base_url(),
            "GET",
            "/graphql/v30/schema.graphql",
            &[],
            b""
        )
        .0,
        404
    );
    let st = srv.stats();
    assert_eq!(st.token_requests, 4);
    assert!(
        st.graphql_requests >= 6 && st.failed_requests >= 4,
        "{st:?}"
    );
}

#[test]
fn injected_failures() {
    let srv = server("2025-01-01");
    srv.fail_next(2, Failure::Status(503));
    let q = br#"{"query": "{ org { user_key } }"}"#;
    for _ in 0..2 {
        let (s, _, _) = http(
            &srv.base_url(),
            "POST",
            "/graphql/v30",
            &[("session", SESSION)],
            q,
        );
        assert_eq!(s, 503);
    }
    srv.fail_next(1, Failure::Drop);
    let (s, _, _) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("session", SESSION)],
        q,
    );
    assert_eq!(s, 0, "the connection is closed without an answer");
    let (s, _, _) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("session", SESSION)],
        q,
    );
    assert_eq!(s, 200);
    let st = srv.stats();
    assert_eq!((st.graphql_requests, st.failed_requests), (4, 3));
}

/// The facets and classes of the observed scenario.
struct Classes {
    unit_type: String,
    job: String,
    eng_type: String,
    primary: String,
    email: String,
    public: String,
    mtype: String,
    mlevel: String,
    resp: String,
}

fn bootstrap(srv: &MoServer) -> Classes {
    let facet = |k: &str| {
        create(
            srv,
            "facet_create",
            "FacetCreateInput",
            json!({"user_key": k, "validity": {"from": null}}),
        )
    };
    let class = |f: &str, k: &str, scope: Option<&str>| {
        create(
            srv,
            "class_create",
            "ClassCreateInput",
            json!({"facet_uuid": f, "user_key": k, "name": k, "scope": scope, "validity": {"from": null}}),
        )
    };
    let f_unit = facet("org_unit_type");
    let f_eng = facet("engagement_type");
    let f_job = facet("engagement_job_function");
    let f_prim = facet("primary_type");
    let f_addr = facet("employee_address_type");
    let f_vis = facet("visibility");
    let f_mt = facet("manager_type");
    let f_ml = facet("manager_level");
    let f_resp = facet("responsibility");
    Classes {
        unit_type: class(&f_unit, "Afdeling", None),
        job: class(&f_job, "Udvikler", None),
        eng_type: class(&f_eng, "Ansat", None),
        primary: class(&f_prim, "primary", Some("3000")),
        email: class(&f_addr, "EmailEmployee", Some("EMAIL")),
        public: class(&f_vis, "Public", Some("PUBLIC")),
        mtype: class(&f_mt, "Leder", None),
        mlevel: class(&f_ml, "Niveau 1", None),
        resp: class(&f_resp, "Personale", None),
    }
}

fn unit(srv: &MoServer, c: &Classes, name: &str, parent: Option<&str>, from: &str) -> String {
    create(
        srv,
        "org_unit_create",
        "OrganisationUnitCreateInput",
        json!({"name": name, "user_key": name, "parent": parent, "org_unit_type": c.unit_type, "validity": {"from": from}}),
    )
}

fn person(srv: &MoServer, cpr: &str) -> String {
    create(
        srv,
        "employee_create",
        "EmployeeCreateInput",
        json!({"given_name": "Anna", "surname": "Testesen", "cpr_number": cpr, "user_key": "anna"}),
    )
}

fn engagement(srv: &MoServer, c: &Classes, p: &str, u: &str, validity: Value) -> String {
    create(
        srv,
        "engagement_create",
        "EngagementCreateInput",
        json!({"person": p, "org_unit": u, "job_function": c.job, "engagement_type": c.eng_type, "primary": c.primary,
               "fraction": 1000000, "user_key": "E-0001", "extension_1": "ext one", "validity": validity}),
    )
}

#[test]
fn observed_scenario() {
    let srv = server("2026-03-01");
    let c = bootstrap(&srv);
    let root = unit(&srv, &c, "Testkommune", None, "2020-01-01");
    let child = unit(&srv, &c, "IT-afdeling", Some(&root), "2021-01-01");
    let p = person(&srv, "0101700000");
    let e = engagement(&srv, &c, &p, &child, json!({"from": "2021-03-01"}));
    let a = create(
        &srv,
        "address_create",
        "AddressCreateInput",
        json!({"person": p, "engagement": e, "address_type": c.email, "visibility": c.public,
               "value": "anna@example.org", "validity": {"from": "2021-03-01"}}),
    );
    let sys = create(
        &srv,
        "itsystem_create",
        "ITSystemCreateInput",
        json!({"user_key": "AD", "name": "Active Directory", "validity": {"from": null}}),
    );
    let itu = create(
        &srv,
        "ituser_create",
        "ITUserCreateInput",
        json!({"person": p, "itsystem": sys, "user_key": "annt", "external_id": "7f0c8a8e-0000-4000-8000-000000000001",
               "engagements": [e], "primary": c.primary, "validity": {"from": "2021-03-01"}}),
    );
    let m = create(
        &srv,
        "manager_create",
        "ManagerCreateInput",
        json!({"org_unit": child, "person": p, "engagement": e, "manager_type": c.mtype, "manager_level": c.mlevel,
               "responsibility": [c.resp], "user_key": "M-0001", "validity": {"from": "2021-03-01"}}),
    );
    let r = mutate(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": child, "name": "IT og Digitalisering", "validity": {"from": "2025-01-01"}}),
    );
    assert!(r.get("errors").is_none(), "{r}");
    let r = mutate(
        &srv,
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": e, "to": "2026-01-01"}),
    );
    assert!(r.get("errors").is_none(), "{r}");

    // Org units.
    let q = "query OrgUnits($filter: OrganisationUnitFilter) { org_units(filter: $filter) { page_info { next_cursor }
        objects { uuid current { name validity { from to } } validities { uuid user_key name validity { from to }
        parent_response { uuid } unit_type_response { uuid } } } } }";
    let d = ok(
        &srv,
        q,
        json!({"filter": {"from_date": null, "to_date": null, "uuids": [root, child]}}),
    );
    assert_eq!(d["org_units"]["page_info"]["next_cursor"], Value::Null);
    let objs = d["org_units"]["objects"].as_array().unwrap();
    assert_eq!(objs.len(), 2);
    let child_obj = objs.iter().find(|o| o["uuid"] == child.as_str()).unwrap();
    let root_obj = objs.iter().find(|o| o["uuid"] == root.as_str()).unwrap();
    let v = child_obj["validities"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["name"], "IT-afdeling");
    assert_eq!(
        v[0]["validity"],
        json!({"from": "2021-01-01T00:00:00+01:00", "to": "2025-01-01T00:00:00+01:00"})
    );
    assert_eq!(v[1]["name"], "IT og Digitalisering");
    assert_eq!(
        v[1]["validity"],
        json!({"from": "2025-01-01T00:00:00+01:00", "to": null})
    );
    assert_eq!(v[1]["parent_response"], json!({"uuid": root}));
    assert_eq!(child_obj["current"]["name"], "IT og Digitalisering");
    assert_eq!(root_obj["validities"][0]["parent_response"], Value::Null);
    assert_eq!(
        root_obj["validities"][0]["unit_type_response"],
        json!({"uuid": c.unit_type})
    );

    // Person: valid from the CPR birth date.
    let v = history(
        &srv,
        "persons",
        "EmployeeFilter",
        &p,
        "user_key given_name surname name cpr_number seniority",
    );
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0]["validity"],
        json!({"from": "1970-01-01T00:00:00+01:00", "to": null})
    );
    assert_eq!(v[0]["name"], "Anna Testesen");
    assert_eq!(v[0]["cpr_number"], "0101700000");
    assert_eq!(v[0]["seniority"], Value::Null);

    // Engagement: one validity ending at the termination, current null, is_primary.
    let q = "query E($f: EngagementFilter) { engagements(filter: $f) { objects { uuid current { uuid }
        validities { uuid user_key fraction extension_1 extension_2 is_primary validity { from to } person_response { uuid }
        org_unit_response { uuid } job_function_response { uuid } engagement_type_response { uuid } primary_response { uuid } } } } }";
    let d = ok(
        &srv,
        q,
        json!({"f": {"uuids": [e], "from_date": null, "to_date": null}}),
    );
    let o = &d["engagements"]["objects"][0];
    assert_eq!(o["current"], Value::Null);
    let v = &o["validities"][0];
    assert_eq!(
        v["validity"],
        json!({"from": "2021-03-01T00:00:00+01:00", "to": "2026-01-01T00:00:00+01:00"})
    );
    assert_eq!(o["validities"].as_array().unwrap().len(), 1);
    assert_eq!(v["is_primary"], true);
    assert_eq!(v["fraction"], 1000000);
    assert_eq!(v["extension_1"], "ext one");
    assert_eq!(v["extension_2"], Value::Null);
    assert_eq!(v["person_response"], json!({"uuid": p}));
    assert_eq!(v["org_unit_response"], json!({"uuid": child}));
    assert_eq!(v["primary_response"], json!({"uuid": c.primary}));

    // Address: user_key and name default to the value, value2 null.
    let v = history(
        &srv,
        "addresses",
        "AddressFilter",
        &a,
        "user_key value value2 name address_type_response { uuid } visibility_response { uuid } person_response { uuid } engagement_response { uuid } org_unit_response { uuid }",
    );
    assert_eq!(v[0]["user_key"], "anna@example.org");
    assert_eq!(v[0]["name"], "anna@example.org");
    assert_eq!(v[0]["value2"], Value::Null);
    assert_eq!(v[0]["engagement_response"], json!({"uuid": e}));
    assert_eq!(v[0]["org_unit_response"], Value::Null);

    // Facets, classes, IT system created with from null.
    let d = ok(
        &srv,
        "{ facets(filter: {user_keys: [\"visibility\"]}) { objects { current { user_key published validity { from to } } } }
           itsystems { objects { current { user_key name system_type validity { from to } } } }
           classes(filter: {facet: {user_keys: [\"primary_type\"]}}) { objects { current { user_key name scope published facet_response { uuid } } } } }",
        json!({}),
    );
    assert_eq!(
        d["facets"]["objects"][0]["current"],
        json!({"user_key": "visibility", "published": "Publiceret", "validity": {"from": null, "to": null}})
    );
    assert_eq!(
        d["itsystems"]["objects"][0]["current"]["system_type"],
        Value::Null
    );
    assert_eq!(d["classes"]["objects"][0]["current"]["scope"], "3000");
    assert_eq!(d["classes"]["objects"].as_array().unwrap().len(), 1);

    // IT user: the nested list has its own "now" window; the raw uuids are there.
    let q = "query I($f: ITUserFilter) { itusers(filter: $f) { objects { validities { user_key external_id binding_type
        itsystem_response { uuid } person_response { uuid } primary_response { uuid } engagement_uuids
        now: engagements_responses { objects { uuid } }
        all: engagements_responses(filter: {from_date: null, to_date: null}) { objects { uuid } } } } } }";
    let d = ok(
        &srv,
        q,
        json!({"f": {"uuids": [itu], "from_date": null, "to_date": null}}),
    );
    let v = &d["itusers"]["objects"][0]["validities"][0];
    assert_eq!(v["now"]["objects"], json!([]));
    assert_eq!(v["all"]["objects"], json!([{"uuid": e}]));
    assert_eq!(v["engagement_uuids"], json!([e]));
    assert_eq!(v["binding_type"], Value::Null);

    // Manager: single links are not date-filtered; the responsibility class is valid today.
    let q = "query M($f: ManagerFilter) { managers(filter: $f) { objects { validities { user_key person_response { uuid }
        org_unit_response { uuid } engagement_response { uuid } manager_type_response { uuid } manager_level_response { uuid }
        responsibilities_response { objects { uuid } } responsibility_uuids } } } }";
    let d = ok(
        &srv,
        q,
        json!({"f": {"uuids": [m], "from_date": null, "to_date": null}}),
    );
    let v = &d["managers"]["objects"][0]["validities"][0];
    assert_eq!(v["engagement_response"], json!({"uuid": e}));
    assert_eq!(
        v["responsibilities_response"]["objects"],
        json!([{"uuid": c.resp}])
    );
    assert_eq!(v["responsibility_uuids"], json!([c.resp]));

    // Filters through links.
    let d = ok(
        &srv,
        "query Q($p: UUID!) { engagements(filter: {employee: {uuids: [$p]}, from_date: null, to_date: null}) { objects { uuid } }
           now: engagements(filter: {employee: {uuids: [$p]}}) { objects { uuid } } }",
        json!({"p": p}),
    );
    assert_eq!(d["engagements"]["objects"], json!([{"uuid": e}]));
    assert_eq!(d["now"]["objects"], json!([]));
    let d = ok(
        &srv,
        "{ org_units(filter: {parent: null}) { objects { uuid } } }",
        json!({}),
    );
    assert_eq!(d["org_units"]["objects"], json!([{"uuid": root}]));
    let d = ok(
        &srv,
        "{ persons(filter: {cpr_numbers: [\"0101700000\"]}) { objects { uuid } } }",
        json!({}),
    );
    assert_eq!(d["persons"]["objects"], json!([{"uuid": p}]));
}

fn upd(srv: &MoServer, mutation: &str, ty: &str, input: Value) {
    let r = mutate(srv, mutation, ty, input);
    assert!(r.get("errors").is_none(), "{r:#}");
}

#[test]
fn validity_semantics() {
    let srv = server("2025-06-15");
    let c = bootstrap(&srv);
    let root = unit(&srv, &c, "Root", None, "2020-01-01");
    let other = unit(&srv, &c, "Other", None, "2020-01-01");
    let p = person(&srv, "0101700000");

    // 1. `to` is exclusive and echoed unchanged; from_date finds it on the last day only.
    let e1 = engagement(
        &srv,
        &c,
        &p,
        &root,
        json!({"from": "2022-01-01", "to": "2023-01-01"}),
    );
    assert_eq!(
        spans(&history(
            &srv,
            "engagements",
            "EngagementFilter",
            &e1,
            "uuid"
        )),
        vec![(
            json!("2022-01-01T00:00:00+01:00"),
            json!("2023-01-01T00:00:00+01:00")
        )]
    );
    let at = |d: &str| {
        let r = ok(
            &srv,
            "query Q($f: EngagementFilter) { engagements(filter: $f) { objects { uuid } } }",
            json!({"f": {"uuids": [e1], "from_date": d}}),
        );
        r["engagements"]["objects"].as_array().unwrap().len()
    };
    assert_eq!((at("2022-12-31"), at("2023-01-01")), (1, 0));

    // 2/3. Summer offset; the calendar date as written, whatever the time and offset.
    let e2 = engagement(
        &srv,
        &c,
        &p,
        &root,
        json!({"from": "2024-02-29T23:30:00Z", "to": "2024-07-01T00:00:00+01:00"}),
    );
    assert_eq!(
        spans(&history(
            &srv,
            "engagements",
            "EngagementFilter",
            &e2,
            "uuid"
        )),
        vec![(
            json!("2024-02-29T00:00:00+01:00"),
            json!("2024-07-01T00:00:00+02:00")
        )]
    );

    // 4. Update from a date with `to` omitted splits the history.
    let e = engagement(&srv, &c, &p, &root, json!({"from": "2021-03-01"}));
    upd(
        &srv,
        "engagement_update",
        "EngagementUpdateInput",
        json!({"uuid": e, "fraction": 500000, "validity": {"from": "2023-06-01"}}),
    );
    let v = history(
        &srv,
        "engagements",
        "EngagementFilter",
        &e,
        "fraction user_key extension_1",
    );
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0]["fraction"].clone(), v[1]["fraction"].clone()),
        (json!(1000000), json!(500000))
    );
    assert_eq!(
        v[1]["extension_1"], "ext one",
        "fields not sent keep their values"
    );
    assert_eq!(v[0]["validity"]["to"], "2023-06-01T00:00:00+02:00");

    // 5. Update with from and to is a time slice: the old unit comes back afterwards.
    upd(
        &srv,
        "engagement_update",
        "EngagementUpdateInput",
        json!({"uuid": e, "org_unit": other, "validity": {"from": "2022-01-01", "to": "2022-07-01"}}),
    );
    let v = history(
        &srv,
        "engagements",
        "EngagementFilter",
        &e,
        "org_unit_response { uuid }",
    );
    let units: Vec<&Value> = v.iter().map(|x| &x["org_unit_response"]["uuid"]).collect();
    assert_eq!(
        units,
        vec![&json!(root), &json!(other), &json!(root), &json!(root)]
    );
    assert_eq!(
        v[1]["validity"],
        json!({"from": "2022-01-01T00:00:00+01:00", "to": "2022-07-01T00:00:00+02:00"})
    );

    // 6. Terminate, then an open-ended update re-activates.
    let e3 = engagement(&srv, &c, &p, &root, json!({"from": "2021-03-01"}));
    upd(
        &srv,
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": e3, "to": "2024-01-01"}),
    );
    assert_eq!(
        spans(&history(
            &srv,
            "engagements",
            "EngagementFilter",
            &e3,
            "uuid"
        ))[0]
            .1,
        json!("2024-01-01T00:00:00+01:00")
    );
    upd(
        &srv,
        "engagement_update",
        "EngagementUpdateInput",
        json!({"uuid": e3, "fraction": 500000, "validity": {"from": "2023-06-01"}}),
    );
    let v = history(&srv, "engagements", "EngagementFilter", &e3, "fraction");
    assert_eq!(
        spans(&v),
        vec![
            (
                json!("2021-03-01T00:00:00+01:00"),
                json!("2023-06-01T00:00:00+02:00")
            ),
            (json!("2023-06-01T00:00:00+02:00"), Value::Null)
        ]
    );

    // 7. Terminate with from and to makes a gap.
    let e4 = engagement(&srv, &c, &p, &root, json!({"from": "2021-03-01"}));
    upd(
        &srv,
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": e4, "from": "2022-01-01", "to": "2022-07-01"}),
    );
    assert_eq!(
        spans(&history(
            &srv,
            "engagements",
            "EngagementFilter",
            &e4,
            "uuid"
        )),
        vec![
            (
                json!("2021-03-01T00:00:00+01:00"),
                json!("2022-01-01T00:00:00+01:00")
            ),
            (json!("2022-07-01T00:00:00+02:00"), Value::Null)
        ]
    );

    // 8. Create with an existing uuid replaces the whole object.
    let u = "5b1d0c2e-7e6b-4f43-9d5e-2a9a4c0c0001";
    let mk = |name: &str, from: &str| {
        create(
            &srv,
            "org_unit_create",
            "OrganisationUnitCreateInput",
            json!({"uuid": u, "name": name, "org_unit_type": c.unit_type, "validity": {"from": from}}),
        )
    };
    assert_eq!(mk("A", "2022-01-01"), u);
    upd(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": u, "name": "B", "validity": {"from": "2023-01-01"}}),
    );
    mk("C", "2024-01-01");
    let v = history(
        &srv,
        "org_units",
        "OrganisationUnitFilter",
        u,
        "name user_key",
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["name"], "C");
    assert_eq!(v[0]["user_key"], u, "user_key defaults to the uuid");
    assert_eq!(
        v[0]["validity"],
        json!({"from": "2024-01-01T00:00:00+01:00", "to": null})
    );

    // 9. Read windows (root renamed for 2023 and from 2025-01-01).
    upd(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": root, "name": "R2023", "validity": {"from": "2023-01-01", "to": "2024-01-01"}}),
    );
    upd(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": root, "name": "R2025", "validity": {"from": "2025-01-01"}}),
    );
    let q = "query Q($f: OrganisationUnitFilter) { org_units(filter: $f) { objects { validities { name }
        all: validities(start: null, end: null) { name } current { name } at: current(at: \"2023-06-01\") { name } } } }";
    let names = |f: Value| {
        let d = ok(&srv, q, json!({"f": f}));
        let o = d["org_units"]["objects"][0].clone();
        let list = |k: &str| {
            o[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        (
            list("validities"),
            list("all"),
            o["current"]["name"].clone(),
            o["at"]["name"].clone(),
        )
    };
    let all = vec![
        "Root".to_string(),
        "R2023".into(),
        "Root".into(),
        "R2025".into(),
    ];
    let (now, a, cur, at23) = names(json!({"uuids": [root]}));
    assert_eq!(
        (now, a.clone(), cur, at23),
        (
            vec!["R2025".to_string()],
            all.clone(),
            json!("R2025"),
            json!("R2023")
        )
    );
    let (v, _, _, _) = names(json!({"uuids": [root], "from_date": "2023-06-01"}));
    assert_eq!(v, vec!["R2023"]);
    let (v, _, _, _) =
        names(json!({"uuids": [root], "from_date": "2023-06-01", "to_date": "2024-06-01"}));
    assert_eq!(v, vec!["R2023", "Root"]);
    let (v, _, _, _) = names(json!({"uuids": [root], "from_date": null, "to_date": null}));
    assert_eq!(v, all);
    let (v, _, _, _) = names(json!({"uuids": [root], "to_date": null}));
    assert_eq!(v, vec!["R2025"]);
    let (v, _, _, _) = names(json!({"uuids": [root], "from_date": null, "to_date": "2023-01-01"}));
    assert_eq!(v, vec!["Root"]);
    let e = err(&srv, q, json!({"f": {"uuids": [root], "from_date": null}}));
    assert_eq!(
        e["message"],
        "Cannot infer UNSET to_date from interval starting at -infinity"
    );
    assert_eq!(e["path"], json!(["org_units"]));
    assert!(e.get("extensions").is_none());

    // Manager update without person vacates; association update without substitute clears it.
    let m = create(
        &srv,
        "manager_create",
        "ManagerCreateInput",
        json!({"org_unit": root, "person": p, "manager_type": c.mtype, "manager_level": c.mlevel, "responsibility": [], "validity": {"from": "2021-01-01"}}),
    );
    upd(
        &srv,
        "manager_update",
        "ManagerUpdateInput",
        json!({"uuid": m, "user_key": "boss", "validity": {"from": "2024-01-01"}}),
    );
    let v = history(
        &srv,
        "managers",
        "ManagerFilter",
        &m,
        "user_key person_response { uuid }",
    );
    assert_eq!(v[0]["person_response"], json!({"uuid": p}));
    assert_eq!(
        (v[1]["person_response"].clone(), v[1]["user_key"].clone()),
        (Value::Null, json!("boss"))
    );
    let d = ok(
        &srv,
        "{ managers(filter: {employee: null}) { objects { uuid } } }",
        json!({}),
    );
    assert_eq!(d["managers"]["objects"], json!([{"uuid": m}]));
    // Org unit parent: null moves to top level.
    let ch = unit(&srv, &c, "Child", Some(&other), "2021-01-01");
    upd(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": ch, "parent": null, "validity": {"from": "2024-01-01"}}),
    );
    let v = history(
        &srv,
        "org_units",
        "OrganisationUnitFilter",
        &ch,
        "parent_response { uuid }",
    );
    assert_eq!(
        (
            v[0]["parent_response"].clone(),
            v[1]["parent_response"].clone()
        ),
        (json!({"uuid": other}), Value::Null)
    );
}

#[test]
fn no_op_trap_and_atomicity() {
    let srv = server("2025-06-15");
    let c = bootstrap(&srv);
    let root = unit(&srv, &c, "Root", None, "2020-01-01");
    let p = person(&srv, "0101700000");
    let e = engagement(&srv, &c, &p, &root, json!({"from": "2021-03-01"}));
    let doc = "mutation M($a: EngagementUpdateInput!, $b: OrganisationUnitUpdateInput!) {
        a: engagement_update(input: $a) { uuid } b: org_unit_update(input: $b) { uuid } }";
    let rev = "mutation M($a: EngagementUpdateInput!, $b: OrganisationUnitUpdateInput!) {
        b: org_unit_update(input: $b) { uuid } a: engagement_update(input: $a) { uuid } }";
    let real = json!({"uuid": e, "fraction": 300000, "validity": {"from": "2024-01-01"}});
    let noop = json!({"uuid": root, "name": "Root", "validity": {"from": "2020-01-01"}});
    let fraction = || {
        history(&srv, "engagements", "EngagementFilter", &e, "fraction")
            .last()
            .unwrap()["fraction"]
            .clone()
    };

    // Alone: success, nothing changes.
    let before = srv.snapshot();
    upd(
        &srv,
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        noop.clone(),
    );
    assert_eq!(srv.snapshot(), before);
    assert_eq!(srv.stats().rolled_back, 0);

    // Last: success reported for every alias, nothing written.
    let d = ok(&srv, doc, json!({"a": real, "b": noop}));
    assert_eq!(d, json!({"a": {"uuid": e}, "b": {"uuid": root}}));
    assert_eq!(fraction(), 1000000);
    assert_eq!(srv.stats().rolled_back, 1);

    // First: the next mutation fails with InFailedSqlTransaction, nothing written.
    let x = err(&srv, rev, json!({"a": real, "b": noop}));
    assert_eq!(x["message"], "ErrorCodes.E_UNKNOWN");
    assert_eq!(x["path"], json!(["a"]));
    assert_eq!(context(&x)["status"], 500);
    assert_eq!(
        context(&x)["description"],
        "(psycopg.errors.InFailedSqlTransaction) current transaction is aborted, commands ignored until end of transaction block"
    );
    assert_eq!(fraction(), 1000000);

    // Middle: same failure for the mutation after it.
    let mid = "mutation M($a: EngagementUpdateInput!, $b: OrganisationUnitUpdateInput!, $c: EngagementUpdateInput!) {
        one: engagement_update(input: $a) { uuid } two: org_unit_update(input: $b) { uuid } three: engagement_update(input: $c) { uuid } }";
    let x = err(
        &srv,
        mid,
        json!({"a": real, "b": noop, "c": {"uuid": e, "user_key": "x", "validity": {"from": "2024-01-01"}}}),
    );
    assert_eq!(x["path"], json!(["three"]));
    assert_eq!(fraction(), 1000000);

    // The same real update alone works; repeating it is then a no-op.
    upd(
        &srv,
        "engagement_update",
        "EngagementUpdateInput",
        real.clone(),
    );
    assert_eq!(fraction(), 300000);
    let before = srv.snapshot();
    upd(
        &srv,
        "engagement_update",
        "EngagementUpdateInput",
        real.clone(),
    );
    assert_eq!(srv.snapshot(), before);
    // A termination that changes nothing is a no-op too.
    upd(
        &srv,
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": e, "to": "2030-01-01"}),
    );
    let d = ok(
        &srv,
        "mutation M($e: UUID!, $u: UUID!) { a: org_unit_update(input: {uuid: $u, name: \"X\", validity: {from: \"2024-01-01\"}}) { uuid }
           b: engagement_terminate(input: {uuid: $e, to: \"2030-01-01\"}) { uuid } }",
        json!({"e": e, "u": root}),
    );
    assert_eq!(d["a"]["uuid"], root.as_str());
    let names = history(&srv, "org_units", "OrganisationUnitFilter", &root, "name");
    assert_eq!(names.len(), 1, "the rename was rolled back: {names:?}");
    assert_eq!(srv.stats().rolled_back, 2);

    // Atomic: the second create fails (duplicate CPR), the first is not stored; data is null.
    let q = "mutation M($a: EmployeeCreateInput!, $b: EmployeeCreateInput!) { a: employee_create(input: $a) { uuid } b: employee_create(input: $b) { uuid } }";
    let x = err(
        &srv,
        q,
        json!({"a": {"given_name": "B", "surname": "C", "cpr_number": "0202800000"}, "b": {"given_name": "D", "surname": "E", "cpr_number": "0101700000"}}),
    );
    assert_eq!(x["message"], "ErrorCodes.V_EXISTING_CPR");
    assert_eq!(x["path"], json!(["b"]));
    assert_eq!(context(&x)["status"], 409);
    let d = ok(
        &srv,
        "{ persons(filter: {cpr_numbers: [\"0202800000\"]}) { objects { uuid } } }",
        json!({}),
    );
    assert_eq!(d["persons"]["objects"], json!([]));

    // Objects created earlier in a request are visible to later mutations.
    let u = uuid::Uuid::new_v4().to_string();
    let q = "mutation M($u: OrganisationUnitCreateInput!, $p: EmployeeCreateInput!, $e: [EngagementCreateInput!]!) {
        u: org_unit_create(input: $u) { uuid } p: employee_create(input: $p) { uuid } e: engagements_create(input: $e) { uuid } }";
    let pu = uuid::Uuid::new_v4().to_string();
    let d = ok(
        &srv,
        q,
        json!({"u": {"uuid": u, "name": "New", "org_unit_type": c.unit_type, "validity": {"from": "2024-01-01"}},
               "p": {"uuid": pu, "given_name": "N", "surname": "N", "cpr_number": "0303900000"},
               "e": [{"person": pu, "org_unit": u, "job_function": c.job, "engagement_type": c.eng_type, "validity": {"from": "2024-01-01"}}]}),
    );
    assert_eq!(d["e"].as_array().unwrap().len(), 1);
    assert_eq!(srv.snapshot()["engagements"].as_object().unwrap().len(), 2);
}

#[test]
fn error_shapes() {
    let srv = server("2025-06-15");
    let c = bootstrap(&srv);
    let root = unit(&srv, &c, "Root", None, "2021-01-01");
    let p = person(&srv, "0101700000");
    let random = uuid::Uuid::new_v4().to_string();
    let one = |m: &str, ty: &str, input: Value| {
        let r = mutate(&srv, m, ty, input);
        assert_eq!(r["data"], Value::Null, "{r:#}");
        r["errors"][0].clone()
    };

    // Coercion errors: no path, no extensions, the variable's location.
    let x = one(
        "employee_create",
        "EmployeeCreateInput",
        json!({"given_name": "A", "surname": "B", "cpr_number": "3213700000"}),
    );
    assert_eq!(
        x,
        json!({"message": "Variable '$input' got invalid value '3213700000' at 'input.cpr_number'; Expected type 'CPR'. Birthdate not ok",
               "locations": [{"line": 1, "column": 12}]})
    );
    let x = one(
        "employee_create",
        "EmployeeCreateInput",
        json!({"given_name": "A", "surname": "B", "cpr_number": "01017000"}),
    );
    assert!(
        x["message"]
            .as_str()
            .unwrap()
            .ends_with("Expected type 'CPR'. Invalid length"),
        "{x}"
    );
    let x = one(
        "engagement_create",
        "EngagementCreateInput",
        json!({"name": "x", "person": p}),
    );
    assert_eq!(
        x["message"],
        format!(
            "Variable '$input' got invalid value {{'name': 'x', 'person': '{p}'}}; Field 'validity' of required type 'RAValidityInput!' was not provided."
        )
    );
    let x = one(
        "engagement_create",
        "EngagementCreateInput",
        json!({"person": p, "org_unit": root, "job_function": c.job, "engagement_type": c.eng_type, "validity": {"from": "2022-01-01"}, "name": "x"}),
    );
    assert!(
        x["message"]
            .as_str()
            .unwrap()
            .ends_with("; Field 'name' is not defined by type 'EngagementCreateInput'."),
        "{x}"
    );
    assert!(x.get("path").is_none());
    let x = err(
        &srv,
        "mutation M($u: UUID!) { a: engagement_delete(uuid: $u) { uuid } }",
        json!({"u": "not-a-uuid"}),
    );
    assert!(
        x["message"].as_str().unwrap().contains(
            "Value cannot represent a UUID: \"not-a-uuid\". badly formed hexadecimal UUID string"
        ),
        "{x}"
    );

    // `$limit: Int` is refused (the scalar is `int`); `int` works.
    let x = err(
        &srv,
        "query Q($limit: Int) { org_units(limit: $limit) { objects { uuid } } }",
        json!({"limit": 1}),
    );
    assert_eq!(
        x["message"],
        "Variable '$limit' of type 'Int' used in position expecting type 'int'."
    );
    ok(
        &srv,
        "query Q($limit: int) { org_units(limit: $limit) { objects { uuid } } }",
        json!({"limit": 1}),
    );
    // Syntax error; unknown fields and collections.
    let x = err(
        &srv,
        "query { org_units(filter: ) { objects { uuid } } }",
        json!({}),
    );
    assert!(
        x["message"].as_str().unwrap().starts_with("Syntax Error: "),
        "{x}"
    );
    let x = err(
        &srv,
        "{ org_units { objects { uuid current { nme } } } }",
        json!({}),
    );
    assert_eq!(
        x["message"],
        "Cannot query field 'nme' on type 'OrganisationUnit'."
    );
    let x = err(&srv, "{ widgets { objects { uuid } } }", json!({}));
    assert_eq!(
        x["message"],
        "Cannot query field 'widgets' on type 'Query'."
    );
    let x = err(
        &srv,
        "{ org_units(filter: {colour: \"red\"}) { objects { uuid } } }",
        json!({}),
    );
    assert!(
        x["message"]
            .as_str()
            .unwrap()
            .starts_with("Field 'colour' is not defined by type 'OrganisationUnitFilter'"),
        "{x}"
    );
    // An unknown uuid is not an error.
    let d = ok(
        &srv,
        "query Q($u: UUID!) { engagements(filter: {uuids: [$u]}) { objects { uuid } } }",
        json!({"u": random}),
    );
    assert_eq!(d, json!({"engagements": {"objects": []}}));

    // Pydantic validation: to before from (path, no extensions).
    let x = one(
        "org_unit_create",
        "OrganisationUnitCreateInput",
        json!({"name": "x", "org_unit_type": c.unit_type, "validity": {"from": "2024-01-01", "to": "2023-01-01"}}),
    );
    assert_eq!(
        x["message"],
        "1 validation error for Validity\n__root__\n  from_date 2024-01-01 00:00:00+01:00 must be less than or equal to to_date 2023-01-01 00:00:00+01:00 (type=value_error)"
    );
    assert_eq!(x["path"], json!(["org_unit_create"]));
    assert!(x.get("extensions").is_none());

    // Business errors.
    let x = one(
        "employee_create",
        "EmployeeCreateInput",
        json!({"given_name": "A", "surname": "B", "cpr_number": "0101700000"}),
    );
    assert_eq!(context(&x)["error_key"], "V_EXISTING_CPR");
    let eng = |u: &str, p: &str, from: &str| json!({"person": p, "org_unit": u, "job_function": c.job, "engagement_type": c.eng_type, "validity": {"from": from}});
    let x = one(
        "engagement_create",
        "EngagementCreateInput",
        eng(&root, &p, "2020-01-01"),
    );
    assert_eq!(x["message"], "ErrorCodes.V_DATE_OUTSIDE_ORG_UNIT_RANGE");
    assert_eq!(x["path"], json!(["engagement_create"]));
    assert_eq!(x["locations"], json!([{"line": 1, "column": 46}]));
    let ctx = context(&x);
    assert_eq!(
        (ctx["error"].clone(), ctx["status"].clone()),
        (json!(true), json!(400))
    );
    assert_eq!(
        (
            ctx["org_unit_uuid"].clone(),
            ctx["valid_from"].clone(),
            ctx["valid_to"].clone()
        ),
        (json!(root), json!("2021-01-01"), Value::Null)
    );
    let young = person(&srv, "0101304000");
    let x = one(
        "engagement_create",
        "EngagementCreateInput",
        eng(&root, &young, "2022-01-01"),
    );
    assert_eq!(context(&x)["error_key"], "V_DATE_OUTSIDE_EMPL_RANGE");
    let x = one(
        "engagement_create",
        "EngagementCreateInput",
        eng(&random, &p, "2022-01-01"),
    );
    assert_eq!(context(&x)["error_key"], "E_ORG_UNIT_NOT_FOUND");
    let x = one(
        "org_unit_create",
        "OrganisationUnitCreateInput",
        json!({"name": "x", "parent": random, "org_unit_type": c.unit_type, "validity": {"from": "2022-01-01"}}),
    );
    assert_eq!(
        (
            context(&x)["error_key"].clone(),
            context(&x)["status"].clone(),
            context(&x)["org_unit_uuid"].clone()
        ),
        (json!("E_ORG_UNIT_NOT_FOUND"), json!(404), json!(random))
    );
    let x = one(
        "org_unit_create",
        "OrganisationUnitCreateInput",
        json!({"name": "x", "parent": root, "org_unit_type": c.unit_type, "validity": {"from": "2020-01-01"}}),
    );
    assert_eq!(context(&x)["error_key"], "V_DATE_OUTSIDE_ORG_UNIT_RANGE");
    let x = one(
        "org_unit_update",
        "OrganisationUnitUpdateInput",
        json!({"uuid": random, "name": "x", "validity": {"from": "2022-01-01"}}),
    );
    assert_eq!(context(&x)["error_key"], "E_ORG_UNIT_NOT_FOUND");
    let x = one(
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": random, "to": "2026-01-01"}),
    );
    assert_eq!(
        (
            context(&x)["error_key"].clone(),
            context(&x)["uuid"].clone()
        ),
        (json!("E_NOT_FOUND"), json!(random))
    );
    let x = err(
        &srv,
        "mutation M($u: UUID!) { engagement_delete(uuid: $u) { uuid } }",
        json!({"u": random}),
    );
    assert_eq!(
        context(&x)["description"],
        format!("No OrganisationFunktion with ID {random} found.")
    );
    let x = one(
        "engagement_update",
        "EngagementUpdateInput",
        json!({"uuid": random, "fraction": 1, "validity": {"from": "2022-01-01"}}),
    );
    assert_eq!(
        (
            context(&x)["error_key"].clone(),
            context(&x)["description"].clone()
        ),
        (
            json!("E_INVALID_INPUT"),
            json!("invalid input syntax for type uuid: \"None\"")
        )
    );
    let x = one(
        "employee_update",
        "EmployeeUpdateInput",
        json!({"uuid": random, "given_name": "x", "validity": {"from": "2022-01-01"}}),
    );
    assert_eq!(
        x["message"],
        "one of the hex, bytes, bytes_le, fields, or int arguments must be given"
    );
    assert!(x.get("extensions").is_none() && x["path"] == json!(["employee_update"]));
    let x = one(
        "ituser_create",
        "ITUserCreateInput",
        json!({"person": p, "itsystem": random, "user_key": "u", "validity": {"from": "2022-01-01"}}),
    );
    assert_eq!(
        x["extensions"]["error_context"],
        json!({"error": true, "description": "Not found.", "status": 404, "error_key": "E_NOT_FOUND"})
    );
    let addr = |t: &str, v: &str| json!({"person": p, "address_type": t, "value": v, "validity": {"from": "2022-01-01"}});
    let x = one(
        "address_create",
        "AddressCreateInput",
        addr(&random, "a@b.dk"),
    );
    assert_eq!(context(&x)["error_key"], "V_MISSING_REQUIRED_VALUE");
    assert_eq!(
        (context(&x)["key"].clone(), context(&x)["obj"].clone()),
        (json!("scope"), Value::Null)
    );
    let x = one(
        "address_create",
        "AddressCreateInput",
        addr(&c.email, "not-an-email"),
    );
    assert_eq!(
        x["extensions"]["error_context"],
        json!({"error": true, "description": "Invalid email", "status": 400, "error_key": "V_INVALID_ADDRESS_EMAIL", "value": "not-an-email"})
    );
    // Midnight rule of terminations.
    let e = engagement(&srv, &c, &p, &root, json!({"from": "2022-01-01"}));
    let x = one(
        "engagement_terminate",
        "EngagementTerminateInput",
        json!({"uuid": e, "to": "2026-01-01T12:00:00+01:00"}),
    );
    assert_eq!(
        x["message"],
        "(<ErrorCodes.E_INVALID_INPUT: (400, 'Invalid input.')>, \"'2026-01-01T12:00:00+01:00' is not at midnight!\")"
    );
    assert_eq!(
        context(&x)["description"],
        "'2026-01-01T12:00:00+01:00' is not at midnight!"
    );
    // A unit with children and an engagement cannot be terminated.
    unit(&srv, &c, "Child", Some(&root), "2022-01-01");
    let x = one(
        "org_unit_terminate",
        "OrganisationUnitTerminateInput",
        json!({"uuid": root, "to": "2026-01-01"}),
    );
    let ctx = context(&x);
    assert_eq!(
        (
            ctx["error_key"].clone(),
            ctx["child_count"].clone(),
            ctx["roles"].clone()
        ),
        (
            json!("V_TERMINATE_UNIT_WITH_CHILDREN_AND_ROLES"),
            json!(1),
            json!("Engagement")
        )
    );
    // An unknown job function class is accepted.
    engagement(
        &srv,
        &Classes {
            job: random.clone(),
            ..c
        },
        &p,
        &root,
        json!({"from": "2022-01-01"}),
    );
}

#[test]
fn paging_and_registration() {
    let srv = MoServer::start(Options {
        legacy_session: Some(SESSION.parse().unwrap()),
        today: Some("2025-01-01".parse().unwrap()),
        max_page: Some(3),
        schema: None,
        ..Options::default()
    });
    let mut all = Vec::new();
    for i in 0..10 {
        all.push(create(
            &srv,
            "itsystem_create",
            "ITSystemCreateInput",
            json!({"user_key": format!("S{i}"), "name": "x", "validity": {"from": null}}),
        ));
    }
    all.sort();
    let q = "query Q($limit: int, $cursor: Cursor) { itsystems(limit: $limit, cursor: $cursor) { page_info { next_cursor } objects { uuid } } }";
    let walk = |limit: Value| {
        let (mut seen, mut cursor, mut pages) = (Vec::new(), Value::Null, 0);
        loop {
            let d = ok(&srv, q, json!({"limit": limit, "cursor": cursor}));
            let objs = d["itsystems"]["objects"].as_array().unwrap();
            assert!(objs.len() <= 3);
            seen.extend(objs.iter().map(|o| o["uuid"].as_str().unwrap().to_string()));
            pages += 1;
            cursor = d["itsystems"]["page_info"]["next_cursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        (seen, pages)
    };
    let (seen, pages) = walk(json!(100));
    assert_eq!(seen, all, "ordered by uuid, each once");
    assert_eq!(pages, 4);
    let (seen, pages) = walk(json!(2));
    assert_eq!((seen.len(), pages), (10, 5 + 1));
    let (seen, _) = walk(Value::Null);
    assert_eq!(seen, all);
    let x = err(&srv, q, json!({"cursor": "garbage!"}));
    assert!(x["message"].as_str().unwrap().contains("cursor"), "{x}");

    // Registration filter: an overlap test of each registration's period [written, replaced)
    // with [start, end], as on a real OS2mo (not "written since").
    let srv = server("2025-01-01");
    let t0 = jiff::Timestamp::now();
    let mut all = Vec::new();
    for i in 0..10 {
        all.push(create(
            &srv,
            "itsystem_create",
            "ITSystemCreateInput",
            json!({"user_key": format!("S{i}"), "name": "x", "validity": {"from": null}}),
        ));
    }
    std::thread::sleep(Duration::from_millis(5));
    let t1 = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(5));
    upd(
        &srv,
        "itsystem_update",
        "ITSystemUpdateInput",
        json!({"uuid": all[4], "user_key": "changed", "name": "x", "validity": {"from": null}}),
    );
    let rq = "query Q($f: ITSystemFilter) { itsystems(filter: $f) { objects { uuid } } }";
    let count = |start: jiff::Timestamp, end: Option<jiff::Timestamp>| {
        let d = ok(
            &srv,
            rq,
            json!({"f": {"registration": {"start": start.to_string(), "end": end.map(|e| e.to_string())}}}),
        );
        d["itsystems"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["uuid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        count(t1, None).len(),
        10,
        "every object has an open registration"
    );
    let future: jiff::Timestamp = "9999-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(count(future, None).len(), 10);
    assert_eq!(count(t0, None).len(), 10);
    assert_eq!(
        count(t0, Some(t0)).len(),
        0,
        "nothing was registered before t0"
    );
    assert_eq!(count(t0, Some(t1)).len(), 10);
    // The top-level `registrations`: every registration of the matching objects, paged by
    // object; a start in the future keeps only the open ones.
    let rq = "query Q($f: RegistrationFilter, $l: int, $c: Cursor) { registrations(filter: $f, limit: $l, cursor: $c) { page_info { next_cursor } objects { model uuid start end } } }";
    let d = ok(&srv, rq, json!({"f": {"uuids": [all[4]]}}));
    let regs = d["registrations"]["objects"].as_array().unwrap();
    assert_eq!(regs.len(), 2, "{d}");
    assert_eq!(regs[0]["end"], regs[1]["start"]);
    assert_eq!(regs[1]["end"], Value::Null);
    assert_eq!(regs[0]["model"], "itsystem");
    let d = ok(
        &srv,
        rq,
        json!({"f": {"start": "9999-01-01T00:00:00+00:00", "models": ["itsystem"]}, "l": 4}),
    );
    assert_eq!(d["registrations"]["objects"].as_array().unwrap().len(), 4);
    assert!(d["registrations"]["page_info"]["next_cursor"].is_string());
    let d = ok(
        &srv,
        rq,
        json!({"f": {"start": "9999-01-01T00:00:00+00:00", "models": ["org_unit"]}}),
    );
    assert_eq!(d["registrations"]["objects"], json!([]));
}

#[test]
fn schema_validation() {
    let Some(path) = std::env::var_os("DIPEX_OS2MO_SCHEMA") else {
        println!("skipped: set DIPEX_OS2MO_SCHEMA to the served v30 SDL to run the schema tests");
        return;
    };
    let schema = load_schema(std::path::Path::new(&path)).expect("schema loads");
    let good = "query Q($limit: int, $cursor: Cursor, $f: OrganisationUnitFilter) { org_units(filter: $f, limit: $limit, cursor: $cursor) {
        page_info { next_cursor } objects { uuid validities { name validity { from to } parent_response { uuid } } } } }";
    assert_eq!(
        validate_request(
            &schema,
            good,
            &json!({"limit": 10, "f": {"from_date": null, "to_date": null}})
        ),
        Ok(())
    );
    let bad_limit = good.replace("$limit: int", "$limit: Int");
    let errs = validate_request(&schema, &bad_limit, &json!({})).unwrap_err();
    assert_eq!(
        errs,
        vec!["Variable '$limit' of type 'Int' used in position expecting type 'int'.".to_string()]
    );
    let m =
        "mutation M($input: EngagementCreateInput!) { engagement_create(input: $input) { uuid } }";
    let errs = validate_request(&schema, m, &json!({"input": {"name": "x", "org_unit": "3b866d97-0b1f-48e0-8078-686d96f430b3",
        "engagement_type": "3b866d97-0b1f-48e0-8078-686d96f430b3", "job_function": "3b866d97-0b1f-48e0-8078-686d96f430b3",
        "validity": {"from": "2020-01-01"}}})).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with("; Field 'name' is not defined by type 'EngagementCreateInput'."),
        "{errs:?}"
    );
    let p = "mutation M($input: EmployeeCreateInput!) { employee_create(input: $input) { uuid } }";
    let errs = validate_request(
        &schema,
        p,
        &json!({"input": {"given_name": "a", "surname": "b", "cpr_number": "3213700000"}}),
    )
    .unwrap_err();
    assert_eq!(errs, vec!["Variable '$input' got invalid value '3213700000' at 'input.cpr_number'; Expected type 'CPR'. Birthdate not ok".to_string()]);
    let errs = validate_request(&schema, p, &json!({})).unwrap_err();
    assert_eq!(
        errs,
        vec![
            "Variable '$input' of required type 'EmployeeCreateInput!' was not provided."
                .to_string()
        ]
    );
    let errs = validate_request(
        &schema,
        "{ org_units { objects { uuid current { nme } } } }",
        &json!({}),
    )
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e == "Cannot query field 'nme' on type 'OrganisationUnit'."),
        "{errs:?}"
    );
    let errs = validate_request(
        &schema,
        "{ engagements(filter: {uuids: [\"nope\"]}) { objects { uuid } } }",
        &json!({}),
    )
    .unwrap_err();
    assert!(errs[0].contains("UUID"), "{errs:?}");

    // A server with the schema validates before executing, with locations.
    let srv = MoServer::start(Options {
        legacy_session: Some(SESSION.parse().unwrap()),
        schema: Some(path.into()),
        ..Options::default()
    });
    let x = err(&srv, &bad_limit, json!({}));
    assert_eq!(
        x["message"],
        "Variable '$limit' of type 'Int' used in position expecting type 'int'."
    );
    assert!(x["locations"].as_array().is_some_and(|l| !l.is_empty()));
    let (s, _, body) = http(
        &srv.base_url(),
        "GET",
        "/graphql/v30/schema.graphql",
        &[],
        b"",
    );
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&body).contains("scalar CPR"));
    ok(&srv, "{ facets { objects { uuid } } }", json!({}));
}

// ---------------------------------------------------------------------------------------------
// The same probe against this server and a real OS2mo, to keep them in step.

/// A GraphQL endpoint with a legacy session.
struct Target {
    base: String,
    session: String,
}

impl Target {
    fn call(&self, query: &str, variables: Value) -> Value {
        let body = serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap();
        let (status, _, body) = http(
            &self.base,
            "POST",
            "/graphql/v30",
            &[
                ("content-type", "application/json"),
                ("session", &self.session),
            ],
            &body,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// `null` when the request succeeded, else each error's path, `error_key` and status.
    fn outcome(&self, query: &str, variables: Value) -> Value {
        let r = self.call(query, variables);
        match r.get("errors") {
            None => Value::Null,
            Some(errors) => Value::Array(
                errors
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        json!({"path": e["path"], "error_key": context(e)["error_key"],
                               "status": context(e)["status"]})
                    })
                    .collect(),
            ),
        }
    }

    fn data(&self, query: &str, variables: Value) -> Value {
        let r = self.call(query, variables);
        assert!(r.get("errors").is_none(), "{r:#}");
        r["data"].clone()
    }
}

/// No-op updates, the registration filter and `registrations`, clearing an IT user's
/// engagements, an error shape, and what an update does to a unit's hierarchy, as
/// `(what, observation)` pairs.
fn probe(t: &Target) -> Vec<(&'static str, Value)> {
    let fresh = || uuid::Uuid::new_v4().to_string();
    let (a, b) = (fresh(), fresh());
    let key = |u: &str, n: u32| format!("probe-{}-{n}", &u[..8]);
    let facet = "mutation M($u: UUID!, $k: String!) { x: facet_update(input: {uuid: $u, user_key: $k, validity: {from: \"2020-01-01\"}}) { uuid } }";
    for u in [&a, &b] {
        t.data(
            "mutation M($u: UUID!, $k: String!) { facet_create(input: {uuid: $u, user_key: $k, validity: {from: \"2020-01-01\"}}) { uuid } }",
            json!({"u": u, "k": key(u, 0)}),
        );
        // (On a real OS2mo the first update after a create is never a no-op.)
        t.data(facet, json!({"u": u, "k": key(u, 1)}));
    }
    let user_key = |u: &str| {
        let d = t.data(
            "query Q($u: UUID!) { facets(filter: {uuids: [$u]}) { objects { current { user_key } } } }",
            json!({"u": u}),
        );
        d["facets"]["objects"][0]["current"]["user_key"].clone()
    };
    let two = |first: (&str, String), second: (&str, String)| {
        t.outcome(
            "mutation M($a: UUID!, $ak: String!, $b: UUID!, $bk: String!) { \
             a: facet_update(input: {uuid: $a, user_key: $ak, validity: {from: \"2020-01-01\"}}) { uuid } \
             b: facet_update(input: {uuid: $b, user_key: $bk, validity: {from: \"2020-01-01\"}}) { uuid } }",
            json!({"a": first.0, "ak": first.1, "b": second.0, "bk": second.1}),
        )
    };
    let mut out = vec![];
    out.push((
        "a no-op alone",
        t.outcome(facet, json!({"u": b, "k": key(&b, 1)})),
    ));
    out.push((
        "a no-op, then a change",
        two((b.as_str(), key(&b, 1)), (a.as_str(), key(&a, 2))),
    ));
    out.push(("… the change", user_key(&a)));
    out.push((
        "a change, then a no-op",
        two((a.as_str(), key(&a, 3)), (b.as_str(), key(&b, 1))),
    ));
    out.push(("… the change", user_key(&a)));
    let regs = |f: Value| {
        let d = t.data(
            "query Q($f: RegistrationFilter) { registrations(filter: $f) { objects { model uuid end } } }",
            json!({"f": f}),
        );
        let mut v: Vec<Value> = d["registrations"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                json!([
                    if r["uuid"] == a { "a" } else { "b" },
                    r["model"],
                    r["end"].is_null()
                ])
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        Value::Array(v)
    };
    out.push(("registrations, all", regs(json!({"uuids": [a, b]}))));
    out.push((
        "registrations from the future: the open ones",
        regs(json!({"uuids": [a, b], "start": "9999-01-01T00:00:00+00:00"})),
    ));
    out.push((
        "registrations until 2000: none",
        regs(json!({"uuids": [a, b], "end": "2000-01-01T00:00:00+00:00"})),
    ));
    let filtered = |r: Value| -> Value {
        let d = t.data(
            "query Q($f: FacetFilter) { facets(filter: $f) { objects { uuid } } }",
            json!({"f": {"uuids": [a, b], "registration": r}}),
        );
        d["facets"]["objects"].as_array().unwrap().len().into()
    };
    out.push((
        "registration filter with a future start",
        filtered(json!({"start": "9999-01-01T00:00:00+00:00"})),
    ));
    out.push((
        "registration filter ending in 2000",
        filtered(json!({"end": "2000-01-01T00:00:00+00:00"})),
    ));

    // An IT user linked to an engagement; `engagements: null` keeps the link, `[]` clears it.
    let (sys, unit, person, eng, it) = (fresh(), fresh(), fresh(), fresh(), fresh());
    let n = uuid::Uuid::new_v4().as_u128();
    let cpr = format!(
        "{:02}0{}6{}{:04}",
        1 + n % 28,
        1 + (n >> 8) % 9,
        (n >> 16) % 10,
        (n >> 24) % 4000
    );
    t.data(
        "mutation M($s: UUID!, $k: String!, $u: UUID!, $t: UUID!, $p: UUID!, $cpr: CPR!) { \
         s: itsystem_create(input: {uuid: $s, user_key: $k, name: $k, validity: {from: null}}) { uuid } \
         u: org_unit_create(input: {uuid: $u, name: $k, user_key: $k, org_unit_type: $t, validity: {from: \"2020-01-01\"}}) { uuid } \
         p: employee_create(input: {uuid: $p, given_name: \"Probe\", surname: \"Testesen\", cpr_number: $cpr}) { uuid } }",
        json!({"s": sys, "k": key(&sys, 0), "u": unit, "t": fresh(), "p": person, "cpr": cpr}),
    );
    let engagement = "mutation M($e: UUID!, $u: UUID!, $p: UUID!, $j: UUID!, $from: DateTime!) { \
         engagement_create(input: {uuid: $e, org_unit: $u, person: $p, job_function: $j, engagement_type: $j, validity: {from: $from}}) { uuid } }";
    out.push((
        "an engagement before its unit",
        t.outcome(
            engagement,
            json!({"e": eng, "u": unit, "p": person, "j": fresh(), "from": "2019-01-01"}),
        ),
    ));
    t.data(
        engagement,
        json!({"e": eng, "u": unit, "p": person, "j": fresh(), "from": "2021-01-01"}),
    );
    t.data(
        "mutation M($i: UUID!, $s: UUID!, $p: UUID!, $e: UUID!, $k: String!) { \
         ituser_create(input: {uuid: $i, itsystem: $s, person: $p, engagements: [$e], user_key: $k, validity: {from: \"2021-01-01\"}}) { uuid } }",
        json!({"i": it, "s": sys, "p": person, "e": eng, "k": key(&it, 0)}),
    );
    let links = || {
        let d = t.data(
            "query Q($i: UUID!) { itusers(filter: {uuids: [$i]}) { objects { current { user_key engagements_responses(filter: {from_date: null, to_date: null}) { objects { uuid } } } } } }",
            json!({"i": it}),
        );
        let c = &d["itusers"]["objects"][0]["current"];
        json!([
            c["user_key"] == key(&it, 1) || c["user_key"] == key(&it, 2),
            c["engagements_responses"]["objects"]
                .as_array()
                .unwrap()
                .len()
        ])
    };
    let update = |k: u32, engagements: Value| {
        t.outcome(
            "mutation M($i: UUID!, $s: UUID!, $p: UUID!, $e: [UUID!], $k: String!) { \
             ituser_update(input: {uuid: $i, itsystem: $s, person: $p, engagements: $e, user_key: $k, validity: {from: \"2021-01-01\"}}) { uuid } }",
            json!({"i": it, "s": sys, "p": person, "e": engagements, "k": key(&it, k)}),
        )
    };
    out.push((
        "an IT user update with engagements: null",
        update(1, Value::Null),
    ));
    out.push(("… its engagements", links()));
    out.push((
        "an IT user update with engagements: []",
        update(2, json!([])),
    ));
    out.push(("… its engagements", links()));

    // A unit's hierarchy: an update naming one leaves it on the update's days only; an update
    // without one keeps it as it is.
    let (unit, hierarchy) = (fresh(), fresh());
    t.data(
        "mutation M($u: UUID!, $k: String!, $t: UUID!, $h: UUID!) { \
         org_unit_create(input: {uuid: $u, name: $k, user_key: $k, org_unit_type: $t, org_unit_hierarchy: $h, validity: {from: \"2020-01-01\"}}) { uuid } }",
        json!({"u": unit, "k": key(&unit, 0), "t": fresh(), "h": hierarchy}),
    );
    let rename = |n: u32, from: &str, h: Value| {
        t.outcome(
            "mutation M($u: UUID!, $k: String!, $h: UUID, $from: DateTime!) { \
             org_unit_update(input: {uuid: $u, name: $k, org_unit_hierarchy: $h, validity: {from: $from}}) { uuid } }",
            json!({"u": unit, "k": key(&unit, n), "h": h, "from": from}),
        )
    };
    let hierarchies = || {
        let d = t.data(
            "query Q($u: UUID!) { org_units(filter: {uuids: [$u], from_date: null, to_date: null}) { objects { validities { name validity { from } unit_hierarchy_response { uuid } } } } }",
            json!({"u": unit}),
        );
        let mut v: Vec<Value> = d["org_units"]["objects"][0]["validities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                json!([
                    s["validity"]["from"].as_str().unwrap_or("")[..10],
                    s["name"].as_str().unwrap().rsplit('-').next(),
                    !s["unit_hierarchy_response"].is_null()
                ])
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        Value::Array(v)
    };
    out.push((
        "a unit renamed from 2022 without its hierarchy",
        rename(1, "2022-01-01", Value::Null),
    ));
    out.push(("… its hierarchy by day", hierarchies()));
    out.push((
        "a unit renamed from 2023 with the same hierarchy",
        rename(2, "2023-01-01", json!(hierarchy)),
    ));
    out.push(("… its hierarchy by day", hierarchies()));
    out
}

#[test]
fn the_probe_gives_the_same_answers_here_and_on_a_real_os2mo() {
    let srv = server("2025-01-01");
    let here = probe(&Target {
        base: srv.base_url(),
        session: SESSION.into(),
    });
    let expected = json!([
        ["a no-op alone", null],
        ["a no-op, then a change", [{"path": ["b"], "error_key": "E_UNKNOWN", "status": 500}]],
        ["… the change", "probe-A-1"],
        ["a change, then a no-op", null],
        ["… the change", "probe-A-1"],
        ["registrations, all", [["a", "facet", false], ["a", "facet", true], ["b", "facet", false], ["b", "facet", true]]],
        ["registrations from the future: the open ones", [["a", "facet", true], ["b", "facet", true]]],
        ["registrations until 2000: none", []],
        ["registration filter with a future start", 2],
        ["registration filter ending in 2000", 0],
        ["an engagement before its unit", [{"path": ["engagement_create"], "error_key": "V_DATE_OUTSIDE_ORG_UNIT_RANGE", "status": 400}]],
        ["an IT user update with engagements: null", null],
        ["… its engagements", [true, 1]],
        ["an IT user update with engagements: []", null],
        ["… its engagements", [true, 0]],
        ["a unit renamed from 2022 without its hierarchy", null],
        ["… its hierarchy by day", [["2020-01-01", "0", true], ["2022-01-01", "1", true]]],
        ["a unit renamed from 2023 with the same hierarchy", null],
        ["… its hierarchy by day", [["2020-01-01", "0", false], ["2022-01-01", "1", false], ["2023-01-01", "2", true]]],
    ]);
    // The facet's user_key names its uuid; compare without it.
    let normal = |obs: Vec<(&str, Value)>| -> Value {
        let re = |v: &Value| match v.as_str() {
            Some(s) if s.starts_with("probe-") => {
                Value::String(format!("probe-A-{}", s.rsplit('-').next().unwrap()))
            }
            _ => v.clone(),
        };
        Value::Array(obs.iter().map(|(w, v)| json!([w, re(v)])).collect())
    };
    assert_eq!(normal(here), expected, "this server");
    let Some(peer) = dipex_testkit::os2mo::peer::from_env("the probe against a real OS2mo") else {
        return;
    };
    let there = probe(&Target {
        base: peer.url,
        session: peer.session,
    });
    assert_eq!(normal(there), expected, "the real OS2mo");
}
