//! Test helpers: a raw HTTP/1.1 client on std::net and GraphQL shortcuts for the server tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use dipex_testkit::os2mo::{MoServer, Options};
use serde_json::{Value, json};

pub const SESSION: &str = "3b866d97-0b1f-48e0-8078-686d96f430b3";

/// One HTTP request on a fresh connection: (status, lower-case headers, body).
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap() == 0 {
        return (0, vec![], vec![]);
    }
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut hs = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        hs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body).unwrap();
    (status, hs, body)
}

pub fn server(today: &str) -> MoServer {
    MoServer::start(Options {
        legacy_session: Some(SESSION.parse().unwrap()),
        today: Some(today.parse().unwrap()),
        schema: None,
        ..Options::default()
    })
}

/// POST a GraphQL request with the legacy session; returns the JSON answer (asserting HTTP 200).
pub fn gql(srv: &MoServer, query: &str, variables: Value) -> Value {
    let body = serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap();
    let (status, _, body) = http(
        &srv.base_url(),
        "POST",
        "/graphql/v30",
        &[("content-type", "application/json"), ("session", SESSION)],
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// `gql` that must succeed; returns `data`.
pub fn ok(srv: &MoServer, query: &str, variables: Value) -> Value {
    let r = gql(srv, query, variables);
    assert!(r.get("errors").is_none(), "unexpected errors: {r:#}");
    r["data"].clone()
}

/// `gql` that must fail with exactly one error; returns it (and asserts `data: null`).
pub fn err(srv: &MoServer, query: &str, variables: Value) -> Value {
    let r = gql(srv, query, variables);
    assert_eq!(r["data"], Value::Null, "{r:#}");
    let errors = r["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {r:#}"));
    assert_eq!(errors.len(), 1, "{r:#}");
    errors[0].clone()
}

/// Run `<name>_create(input: $input) { uuid }` and return the uuid.
pub fn create(srv: &MoServer, mutation: &str, input_type: &str, input: Value) -> String {
    let q = format!("mutation M($input: {input_type}!) {{ {mutation}(input: $input) {{ uuid }} }}");
    let d = ok(srv, &q, json!({"input": input}));
    d[mutation]["uuid"].as_str().unwrap().to_string()
}

pub fn mutate(srv: &MoServer, mutation: &str, input_type: &str, input: Value) -> Value {
    let q = format!("mutation M($input: {input_type}!) {{ {mutation}(input: $input) {{ uuid }} }}");
    gql(srv, &q, json!({"input": input}))
}

pub fn context(e: &Value) -> &Value {
    &e["extensions"]["error_context"]
}

/// The validities (all time) of one object of a collection, with the given selection.
pub fn history(
    srv: &MoServer,
    collection: &str,
    filter_type: &str,
    uuid: &str,
    fields: &str,
) -> Vec<Value> {
    let q = format!(
        "query Q($f: {filter_type}) {{ {collection}(filter: $f) {{ objects {{ uuid validities {{ {fields} validity {{ from to }} }} }} }} }}"
    );
    let d = ok(
        srv,
        &q,
        json!({"f": {"uuids": [uuid], "from_date": null, "to_date": null}}),
    );
    let objs = d[collection]["objects"].as_array().unwrap();
    if objs.is_empty() {
        return vec![];
    }
    objs[0]["validities"].as_array().unwrap().clone()
}

/// Validity pairs as (from, to) strings for compact assertions.
pub fn spans(v: &[Value]) -> Vec<(Value, Value)> {
    v.iter()
        .map(|x| (x["validity"]["from"].clone(), x["validity"]["to"].clone()))
        .collect()
}
