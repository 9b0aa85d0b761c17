//! Integration tests of the OS2sync test server over real HTTP (a raw HTTP/1.1 client on
//! `std::net`): authorisation, validation texts, replace and soft-delete semantics, reads,
//! hierarchy polling, case-insensitive routing and binding, keep-alive and failure injection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use dipex_testkit::os2sync::{Options, Os2SyncServer};
use serde_json::{Value, json};
use uuid::Uuid;

const CVR: (&str, &str) = ("CVR", "12345678");
const JSON: (&str, &str) = ("Content-Type", "application/json");

const ROOT: &str = "f06ee470-9f17-566f-acbe-e938112d46d9";
const UNIT: &str = "3094b893-157c-4f20-91ef-bd2e95ee26fe";
const USER: &str = "23d2dfc7-6ceb-47cf-97ed-db6beadcb09b";

/// An answer: status, lower-case headers, body text.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection.
struct Conn {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    fn open(srv: &Os2SyncServer) -> Conn {
        let addr = srv.base_url().strip_prefix("http://").unwrap().to_string();
        let s = TcpStream::connect(&addr).unwrap();
        Conn {
            reader: BufReader::new(s),
            addr,
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut hs = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            hs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let n: usize = hs
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        let mut b = vec![0; n];
        self.reader.read_exact(&mut b).unwrap();
        Resp {
            status,
            headers: hs,
            body: String::from_utf8(b).unwrap(),
        }
    }
}

fn call(
    srv: &Os2SyncServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    Conn::open(srv).send(method, path, headers, body)
}

fn post(srv: &Os2SyncServer, path: &str, body: &Value) -> Resp {
    let b = serde_json::to_vec(body).unwrap();
    call(srv, "POST", path, &[CVR, JSON], &b)
}

fn get(srv: &Os2SyncServer, path: &str) -> Resp {
    call(srv, "GET", path, &[CVR], b"")
}

fn delete(srv: &Os2SyncServer, path: &str) -> Resp {
    call(srv, "DELETE", path, &[CVR], b"")
}

fn server() -> Os2SyncServer {
    Os2SyncServer::start(Options::default())
}

fn unit(uuid: &str, name: &str, parent: Option<&str>) -> Value {
    json!({
        "Uuid": uuid, "ShortKey": null, "Name": name, "ParentOrgUnitUuid": parent,
        "PayoutUnitUuid": null, "ManagerUuid": null, "PhoneNumber": "12345678",
        "Email": "bs@kommune.dk", "Location": null, "LOSShortName": null, "LOSId": null,
        "DtrId": null, "ContactOpenHours": "Man-fre 8-15", "EmailRemarks": null,
        "Contact": null, "PostReturn": null, "PhoneOpenHours": null, "Ean": "5798000000000",
        "Url": null, "Landline": null, "Post": "Rådhustorvet 1, 1234 By", "PostSecondary": null,
        "FOA": null, "PNR": "1003388000", "SOR": null, "Tasks": [], "ItSystems": [],
        "ContactForTasks": [], "ContactPlaces": []
    })
}

fn user(uuid: &str, ou: &str) -> Value {
    json!({
        "Uuid": uuid, "UserId": "SolveigK",
        "Person": {"Name": "Solveig Kuhlenhenke", "Cpr": null},
        "Positions": [{"OrgUnitUuid": ou, "Name": "Bogopsætter", "is_primary": true}],
        "Email": "solveigk@kolding.dk", "PhoneNumber": "55677853", "Landline": "12345678"
    })
}

#[test]
fn cvr_header_is_required_unless_configured() {
    let srv = server();
    let body = serde_json::to_vec(&unit(UNIT, "A", None)).unwrap();
    let r = call(&srv, "POST", "/api/orgUnit", &[JSON], &body);
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    let r = call(&srv, "POST", "/api/orgUnit", &[JSON, ("CVR", "")], &body);
    assert_eq!(r.status, 401);
    for (m, p) in [
        ("GET", format!("/api/orgUnit/{UNIT}")),
        ("DELETE", format!("/api/user/{USER}")),
        ("GET", "/api/hierarchy".to_string()),
    ] {
        assert_eq!(call(&srv, m, &p, &[], b"").status, 401, "{m} {p}");
    }
    assert!(srv.org_units().is_empty() && srv.deleted_users().is_empty());
    assert_eq!(
        call(&srv, "POST", "/api/orgUnit", &[JSON, CVR], &body).status,
        200
    );

    let srv = Os2SyncServer::start(Options {
        cvr: Some("29189994".into()),
        ..Options::default()
    });
    assert_eq!(
        call(&srv, "POST", "/api/orgUnit", &[JSON], &body).status,
        200
    );
    assert_eq!(call(&srv, "GET", "/api/hierarchy", &[], b"").status, 200);
    // Health needs nothing.
    let r = call(&server(), "GET", "/manage/health", &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn api_key_is_checked_except_for_hierarchy_results() {
    let srv = Os2SyncServer::start(Options {
        api_key: Some("s3cret".into()),
        hierarchy_delay: 0,
        ..Options::default()
    });
    let body = serde_json::to_vec(&unit(UNIT, "A", None)).unwrap();
    for key in [None, Some("wrong"), Some("S3CRET")] {
        let mut h = vec![CVR, JSON];
        if let Some(k) = key {
            h.push(("ApiKey", k));
        }
        let r = call(&srv, "POST", "/api/orgUnit", &h, &body);
        assert_eq!((r.status, r.body.as_str()), (401, ""), "{key:?}");
        assert_eq!(
            call(&srv, "GET", "/api/hierarchy", &h[..1], b"").status,
            401
        );
    }
    let ok = [CVR, JSON, ("ApiKey", "s3cret")];
    assert_eq!(call(&srv, "POST", "/api/orgUnit", &ok, &body).status, 200);
    let id = call(&srv, "GET", "/api/hierarchy", &ok, b"").body;
    let r = call(&srv, "GET", &format!("/api/hierarchy/{id}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Result"]["OUs"][0]["Uuid"], UNIT);
}

#[test]
fn org_unit_validation_texts() {
    let srv = server();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not JSON"),
        (b"[1, 2]".to_vec(), "not a JSON object"),
        (b"".to_vec(), "non-empty request body"),
        (
            br#"{"Uuid": "3094b893-157c-4f20-91ef-bd2e95ee26fe"}"#.to_vec(),
            "name is null",
        ),
        (
            br#"{"Uuid": "3094b893-157c-4f20-91ef-bd2e95ee26fe", "Name": ""}"#.to_vec(),
            "name is null",
        ),
        (br#"{"Name": "A"}"#.to_vec(), "uuid is null"),
        (br#"{"Name": "A", "Uuid": ""}"#.to_vec(), "uuid is null"),
        (
            br#"{"Name": "A", "Uuid": "not-a-uuid"}"#.to_vec(),
            "uuid is null",
        ),
        // OS2sync checks the name first.
        (br#"{}"#.to_vec(), "name is null"),
        (
            br#"{"Name": "A", "Uuid": "3094b893-157c-4f20-91ef-bd2e95ee26fe", "Tasks": "x"}"#
                .to_vec(),
            "Tasks",
        ),
        (
            br#"{"Name": {"a": 1}, "Uuid": "3094b893-157c-4f20-91ef-bd2e95ee26fe"}"#.to_vec(),
            "Name",
        ),
    ];
    for (body, want) in cases {
        let r = call(&srv, "POST", "/api/orgUnit", &[CVR, JSON], &body);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(
            r.body.contains(want),
            "{:?} does not contain {want:?}",
            r.body
        );
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    }
    assert!(srv.requests().iter().all(|q| q.status == 400));
    assert!(srv.org_units().is_empty());
    // No JSON content type: MVC answers 415 before the controller runs (even without CVR).
    let body = serde_json::to_vec(&unit(UNIT, "A", None)).unwrap();
    assert_eq!(
        call(&srv, "POST", "/api/orgUnit", &[CVR], &body).status,
        415
    );
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(
        call(&srv, "POST", "/api/orgUnit", &[form], &body).status,
        415
    );
    let ct = ("content-type", "application/json; charset=utf-8");
    assert_eq!(
        call(&srv, "POST", "/api/orgUnit", &[CVR, ct], &body).status,
        200
    );
}

#[test]
fn user_validation_texts() {
    let srv = server();
    let base = user(USER, UNIT);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let cases = [
        (
            with(&|v| v["Person"]["Name"] = json!("")),
            "Person.Name is null or empty",
        ),
        (
            with(&|v| v["Person"] = json!(null)),
            "Person.Name is null or empty",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("Person");
            }),
            "Person.Name is null or empty",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("UserId");
            }),
            "UserId is null or empty",
        ),
        (
            with(&|v| v["UserId"] = json!("")),
            "UserId is null or empty",
        ),
        (with(&|v| v["Uuid"] = json!(null)), "Uuid is null empty"),
        (with(&|v| v["Uuid"] = json!("nope")), "Uuid is null empty"),
        (
            with(&|v| v["Positions"] = json!([])),
            "Positions is null or empty",
        ),
        (
            with(&|v| v["Positions"] = json!(null)),
            "Positions is null or empty",
        ),
        (
            with(&|v| v["Positions"][0]["Name"] = json!(null)),
            "Position Name or OrgUnitUUID is null",
        ),
        (
            with(&|v| {
                v["Positions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("OrgUnitUuid");
            }),
            "Position Name or OrgUnitUUID is null",
        ),
    ];
    for (body, want) in cases {
        let r = post(&srv, "/api/user", &body);
        assert_eq!((r.status, r.body.as_str()), (400, want), "{body}");
    }
    assert!(srv.users().is_empty());
    let r = post(&srv, "/api/user", &base);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["UserId"], "SolveigK");
    let stored = &srv.users()[&USER.parse::<Uuid>().unwrap()];
    assert_eq!(stored["Status"], 1);
    assert_eq!(stored["Positions"][0]["OrgUnitUuid"], UNIT);
    assert!(stored["Positions"][0].get("is_primary").is_none());
}

#[test]
fn reads_give_every_field_and_404_when_unknown() {
    let srv = server();
    assert_eq!(get(&srv, &format!("/api/orgUnit/{UNIT}")).status, 404);
    assert_eq!(get(&srv, &format!("/api/user/{USER}")).status, 404);
    assert_eq!(get(&srv, "/api/orgUnit/not-a-uuid").status, 404);

    let r = post(
        &srv,
        "/api/orgUnit/",
        &json!({"Uuid": UNIT.to_uppercase(), "Name": "A"}),
    );
    assert_eq!(r.status, 200);
    let r = get(&srv, &format!("/api/orgUnit/{UNIT}"));
    assert_eq!(r.status, 200);
    let v = r.json();
    let m = v.as_object().unwrap();
    assert_eq!(m.len(), 25 + 4 + 2, "{v}");
    assert_eq!(v["Uuid"], UNIT);
    assert_eq!(v["Type"], "DEPARTMENT");
    assert_eq!(v["Tasks"], json!([]));
    assert_eq!(v["PostSecondary"], Value::Null);
    let ts = v["Timestamp"].as_str().unwrap();
    assert!(
        ts.len() >= 19 && &ts[4..5] == "-" && &ts[10..11] == "T",
        "{ts}"
    );

    post(&srv, "/api/user", &user(USER, UNIT));
    let u = get(&srv, &format!("/api/user/{USER}")).json();
    assert_eq!(u["Status"], 1);
    assert_eq!(u["Person"]["Name"], "Solveig Kuhlenhenke");
    assert_eq!(u["Location"], Value::Null);
    assert_eq!(u["IsRobot"], false);
    // The list routes.
    assert_eq!(get(&srv, "/api/orgUnit/all").json(), json!([UNIT]));
    assert_eq!(get(&srv, "/api/user/all").json(), json!([USER]));
}

#[test]
fn posting_replaces_and_absent_addresses_are_removed() {
    let srv = server();
    let id: Uuid = UNIT.parse().unwrap();
    let mut first = unit(UNIT, "Borgerservice", Some(ROOT));
    first["Tasks"] = json!(["AB7E0A5B-2C36-4A6E-9B71-6D3A4B5E9F01"]);
    let r = post(&srv, "/api/orgUnit", &first);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Name"], "Borgerservice");
    let held = &srv.org_units()[&id];
    assert_eq!(held["Email"], "bs@kommune.dk");
    assert_eq!(
        held["Tasks"],
        json!(["ab7e0a5b-2c36-4a6e-9b71-6d3a4b5e9f01"])
    );

    // Email absent, Ean null, Tasks null: all gone afterwards.
    let mut second = unit(UNIT, "Borgerservice", Some(ROOT));
    second.as_object_mut().unwrap().remove("Email");
    second["Ean"] = Value::Null;
    second["Tasks"] = Value::Null;
    assert_eq!(post(&srv, "/api/orgUnit", &second).status, 200);
    let held = get(&srv, &format!("/api/orgUnit/{UNIT}")).json();
    assert_eq!(held["Email"], Value::Null);
    assert_eq!(held["Ean"], Value::Null);
    assert_eq!(held["Tasks"], json!([]));
    assert_eq!(held["PhoneNumber"], "12345678");

    // A seeded TEAM becomes a DEPARTMENT when posted without Type (OS2sync's default).
    srv.seed_org_unit(
        json!({"uuid": ROOT, "name": "Kommune", "type": "TEAM", "LOSShortName": "K"}),
    );
    assert_eq!(
        srv.org_units()[&ROOT.parse::<Uuid>().unwrap()]["Type"],
        "TEAM"
    );
    post(
        &srv,
        "/api/orgUnit",
        &json!({"Uuid": ROOT, "Name": "Kommune"}),
    );
    let root = &srv.org_units()[&ROOT.parse::<Uuid>().unwrap()];
    assert_eq!(
        (root["Type"].as_str(), root["LOSShortName"].as_str()),
        (Some("DEPARTMENT"), None)
    );
}

#[test]
fn delete_is_soft_and_a_later_post_undeletes() {
    let srv = server();
    let (ou, us): (Uuid, Uuid) = (UNIT.parse().unwrap(), USER.parse().unwrap());
    post(&srv, "/api/orgUnit", &unit(UNIT, "A", None));
    post(&srv, "/api/user", &user(USER, UNIT));
    let r = delete(&srv, &format!("/api/orgUnit/{UNIT}"));
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(delete(&srv, &format!("/api/user/{USER}")).status, 200);
    assert!(srv.org_units().is_empty() && srv.users().is_empty());
    assert_eq!(srv.deleted_org_units(), [ou].into());
    assert_eq!(srv.deleted_users(), [us].into());
    assert_eq!(get(&srv, &format!("/api/orgUnit/{UNIT}")).status, 404);
    assert_eq!(get(&srv, &format!("/api/user/{USER}")).status, 404);

    // Unknown objects: queued, so 200 as well.
    let other = Uuid::new_v4();
    assert_eq!(delete(&srv, &format!("/api/orgUnit/{other}")).status, 200);
    assert!(srv.deleted_org_units().contains(&other));

    assert_eq!(
        post(&srv, "/api/orgUnit", &unit(UNIT, "A", None)).status,
        200
    );
    assert!(srv.org_units().contains_key(&ou));
    assert!(!srv.deleted_org_units().contains(&ou));
    assert_eq!(get(&srv, &format!("/api/orgUnit/{UNIT}")).status, 200);
}

#[test]
fn hierarchy_is_polled_then_read_once() {
    let srv = server();
    srv.seed_org_unit(
        json!({"Uuid": ROOT, "Name": "Kommune", "LOSShortName": "KOM",
        "Tasks": ["6e3c3c2e-7d5b-4c55-9e55-3b3c1b8c2a10"], "ContactPlaces": [UNIT]}),
    );
    post(
        &srv,
        "/api/orgUnit",
        &unit(UNIT, "Borgerservice", Some(ROOT)),
    );
    post(&srv, "/api/user", &user(USER, UNIT));
    // Not found through any unit: not in the hierarchy.
    let stray = Uuid::new_v4().to_string();
    srv.seed_user(
        json!({"Uuid": stray, "UserId": "x", "Person": {"Name": "X"},
        "Positions": [{"Name": "t", "OrgUnitUuid": Uuid::new_v4().to_string()}]}),
    );

    let r = get(&srv, "/api/hierarchy");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let id = r.body.clone();
    assert!(!id.starts_with('"') && Uuid::parse_str(&id).is_ok() && id == id.to_lowercase());

    // Changes after the request are not in the result.
    delete(&srv, &format!("/api/orgUnit/{UNIT}"));
    let path = format!("/api/hierarchy/{id}");
    assert_eq!(get(&srv, &path).status, 404);
    assert_eq!(get(&srv, &path).status, 404);
    let r = get(&srv, &path);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["Status"], 0);
    assert!(v["Created"].is_string());
    assert_eq!(
        v["Result"]["OUs"],
        json!([
            {"Uuid": UNIT, "Name": "Borgerservice", "ParentOU": ROOT},
            {"Uuid": ROOT, "Name": "Kommune", "ParentOU": null},
        ])
    );
    assert_eq!(
        v["Result"]["Users"],
        json!([{"Uuid": USER, "UserId": "SolveigK", "Name": "Solveig Kuhlenhenke",
            "Positions": [{"Uuid": UNIT, "Name": "Bogopsætter"}],
            "Email": "solveigk@kolding.dk", "Telephone": "55677853", "Status": 1}])
    );
    assert_eq!(get(&srv, &path).status, 404, "read once");
    assert_eq!(
        get(&srv, &format!("/api/hierarchy/{}", Uuid::new_v4())).status,
        404
    );
    assert_eq!(
        get(
            &srv,
            &path
                .to_uppercase()
                .replace("/API/HIERARCHY", "/api/hierarchy")
        )
        .status,
        404
    );

    // onlyOUs: no users; the deleted unit is gone now.
    let srv2 = Os2SyncServer::start(Options {
        hierarchy_delay: 0,
        ..Options::default()
    });
    srv2.seed_org_unit(json!({"Uuid": ROOT, "Name": "Kommune"}));
    srv2.seed_user(user(USER, ROOT));
    let id = call(
        &srv2,
        "GET",
        "/api/hierarchy",
        &[CVR, ("onlyOUs", "true")],
        b"",
    )
    .body;
    let v = get(&srv2, &format!("/api/hierarchy/{id}")).json();
    assert_eq!(v["Result"]["OUs"].as_array().unwrap().len(), 1);
    assert_eq!(v["Result"]["Users"], json!([]));
    let id = get(&srv2, "/api/hierarchy").body;
    let v = get(&srv2, &format!("/api/hierarchy/{id}")).json();
    assert_eq!(v["Result"]["Users"][0]["Uuid"], USER);
}

#[test]
fn routes_and_members_are_case_insensitive_and_requests_are_recorded() {
    let srv = server();
    let body = json!({"uuid": UNIT, "NAME": "A", "parentOrgUnitUuid": ROOT, "email": "a@b.dk",
        "unknownMember": 1, "tasks": null});
    let r = call(
        &srv,
        "POST",
        "/API/OrgUnit/?bypassCache=true&priority=5",
        &[CVR, JSON],
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 200);
    let held = get(&srv, &format!("/api/ORGUNIT/{UNIT}/")).json();
    assert_eq!(
        (held["Name"].as_str(), held["Email"].as_str()),
        (Some("A"), Some("a@b.dk"))
    );
    assert_eq!(held["ParentOrgUnitUuid"], ROOT);
    assert!(held.get("unknownMember").is_none());
    assert_eq!(post(&srv, "/api/USER", &user(USER, UNIT)).status, 200);
    assert_eq!(delete(&srv, &format!("/Api/User/{USER}")).status, 200);
    assert_eq!(get(&srv, "/api/Hierarchy/").status, 200);

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 5);
    let first = &reqs[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/API/OrgUnit/")
    );
    assert_eq!(first.query_param("bypasscache"), Some("true"));
    assert_eq!(first.query_param("priority"), Some("5"));
    assert_eq!(first.header("cvr"), Some("12345678"));
    assert_eq!(
        first
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .unwrap()
            .1,
        "application/json"
    );
    // What was sent, with its casing.
    assert_eq!(first.body.as_ref().unwrap(), &body);
    assert_eq!(first.status, 200);
    assert_eq!(reqs[1].body, None);
    srv.clear_requests();
    assert!(srv.requests().is_empty());

    // Other paths and methods.
    assert_eq!(get(&srv, "/api/orgUnits").status, 404);
    assert_eq!(get(&srv, "/api/v1_1/orgunit").status, 404);
    assert_eq!(get(&srv, "/").status, 404);
    assert_eq!(
        call(&srv, "PUT", "/api/orgUnit", &[CVR, JSON], b"{}").status,
        405
    );
    assert_eq!(get(&srv, "/api/orgUnit").status, 405);
    assert_eq!(
        srv.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [404, 404, 404, 405, 405]
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = server();
    let mut c = Conn::open(&srv);
    let b = serde_json::to_vec(&unit(UNIT, "A", None)).unwrap();
    assert_eq!(c.send("POST", "/api/orgUnit", &[CVR, JSON], &b).status, 200);
    assert_eq!(
        c.send("GET", &format!("/api/orgUnit/{UNIT}"), &[CVR], b"")
            .status,
        200
    );
    assert_eq!(
        c.send("DELETE", &format!("/api/orgUnit/{UNIT}"), &[CVR], b"")
            .status,
        200
    );
    assert_eq!(
        c.send("GET", &format!("/api/orgUnit/{UNIT}"), &[CVR], b"")
            .status,
        404
    );
}

#[test]
fn chunked_request_bodies_are_read() {
    let srv = server();
    let addr = srv.base_url().strip_prefix("http://").unwrap().to_string();
    let body = serde_json::to_vec(&unit(UNIT, "Chunked", None)).unwrap();
    let (a, b) = body.split_at(10);
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut msg = format!(
        "POST /api/orgUnit HTTP/1.1\r\nHost: {addr}\r\nCVR: 1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        a.len()
    )
    .into_bytes();
    msg.extend_from_slice(a);
    msg.extend_from_slice(format!("\r\n{:x}\r\n", b.len()).as_bytes());
    msg.extend_from_slice(b);
    msg.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&msg).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(
        srv.org_units()[&UNIT.parse::<Uuid>().unwrap()]["Name"],
        "Chunked"
    );
}

#[test]
fn injected_failures_hit_the_next_posts_and_deletes() {
    let srv = server();
    srv.fail_next(2, 503);
    // GETs are not affected.
    assert_eq!(get(&srv, "/manage/health").status, 200);
    let r = post(&srv, "/api/orgUnit", &unit(UNIT, "A", None));
    assert_eq!(r.status, 503);
    assert!(!r.body.is_empty());
    assert_eq!(delete(&srv, &format!("/api/user/{USER}")).status, 503);
    assert!(srv.org_units().is_empty() && srv.deleted_users().is_empty());
    assert_eq!(
        post(&srv, "/api/orgUnit", &unit(UNIT, "A", None)).status,
        200
    );
    assert_eq!(srv.org_units().len(), 1);
    let statuses: Vec<u16> = srv.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 503, 503, 200]);
    srv.fail_next(1, 500);
    assert_eq!(post(&srv, "/api/user", &user(USER, UNIT)).status, 500);
    assert_eq!(post(&srv, "/api/user", &user(USER, UNIT)).status, 200);
}
