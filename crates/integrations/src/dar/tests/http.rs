//! The HTTP register against a loopback server speaking the datavask JSON shape, and DAWA's
//! address objects (`/adresser/{id}?struktur=mini`) for `describe`.

use std::time::Duration;

use super::server::{Reply, TestServer, mini, wash};
use crate::dar::{
    AddressRegister, CachedRegister, DarError, DarSettings, HttpRegister, Lookup,
    register_from_settings,
};

const ID_A: &str = "0a3f50a0-73bf-32b8-e044-0003ba298018";
const ID_B: &str = "4210f8ff-cfca-4b3d-b5c4-ca1c795c14dd";
const ADDRESSES: &str = "/datavask/adresser";
const ENTRANCES: &str = "/datavask/adgangsadresser";

fn register(server: &TestServer) -> HttpRegister {
    HttpRegister::new(&server.base, Duration::from_secs(5)).unwrap()
}

fn found(id: &str) -> Lookup {
    Lookup::Found(id.parse().unwrap())
}

#[test]
fn dar_http_category_a_is_found() {
    let server = TestServer::start(|_, _| Reply::json(wash("A", &[ID_A])));
    let answer = register(&server).lookup("Testvej 1", "8000").unwrap();
    assert_eq!(answer, found(ID_A));
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_http_category_b_is_found() {
    let server = TestServer::start(|_, _| Reply::json(wash("B", &[ID_B])));
    let answer = register(&server).lookup("Testvje 1", "8000").unwrap();
    assert_eq!(answer, found(ID_B));
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_http_category_c_falls_back_to_access_addresses() {
    let server = TestServer::start(|path, _| match path {
        ADDRESSES => Reply::json(wash("C", &[ID_A, ID_B])),
        _ => Reply::json(wash("A", &[ID_B])),
    });
    let answer = register(&server).lookup("Testvej 1", "8000").unwrap();
    assert_eq!(answer, found(ID_B));
    assert_eq!(server.paths(), [ADDRESSES, ENTRANCES]);
}

#[test]
fn dar_http_404_falls_back_to_access_addresses() {
    let server = TestServer::start(|path, _| match path {
        ADDRESSES => Reply::status(404),
        _ => Reply::json(wash("B", &[ID_A])),
    });
    let answer = register(&server).lookup("Testvej 1", "8000").unwrap();
    assert_eq!(answer, found(ID_A));
    assert_eq!(server.paths(), [ADDRESSES, ENTRANCES]);
}

#[test]
fn dar_http_category_c_on_both_is_not_found() {
    let server = TestServer::start(|_, _| Reply::json(wash("C", &[ID_A])));
    let answer = register(&server).lookup("Noget 1", "8000").unwrap();
    assert_eq!(answer, Lookup::NotFound);
    assert_eq!(server.paths(), [ADDRESSES, ENTRANCES]);
}

#[test]
fn dar_http_404_on_both_is_not_found() {
    let server = TestServer::start(|_, _| Reply::status(404));
    let answer = register(&server).lookup("Noget 1", "8000").unwrap();
    assert_eq!(answer, Lookup::NotFound);
    assert_eq!(server.paths(), [ADDRESSES, ENTRANCES]);
}

#[test]
fn dar_http_zero_results_is_not_found_without_retry() {
    let server = TestServer::start(|_, _| Reply::json(wash("A", &[])));
    let answer = register(&server).lookup("Testvej 1", "8000").unwrap();
    assert_eq!(answer, Lookup::NotFound);
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_http_two_results_is_not_found() {
    let server = TestServer::start(|_, _| Reply::json(wash("B", &[ID_A, ID_B])));
    let answer = register(&server).lookup("Testvej 1", "8000").unwrap();
    assert_eq!(answer, Lookup::NotFound);
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_http_server_error_is_an_error() {
    let server = TestServer::start(|_, _| Reply::status(500));
    let err = register(&server).lookup("Testvej 1", "8000").unwrap_err();
    match &err {
        DarError::Status { url, status } => {
            assert_eq!(*status, 500);
            assert!(url.starts_with(&format!("{}{ADDRESSES}?betegnelse=", server.base)));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(err.to_string().contains(&server.base), "{err}");
    // A failure on the first endpoint is not a reason to ask the second.
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_http_server_error_on_fallback_is_an_error() {
    let server = TestServer::start(|path, _| match path {
        ADDRESSES => Reply::json(wash("C", &[ID_A])),
        _ => Reply::status(503),
    });
    let err = register(&server).lookup("Testvej 1", "8000").unwrap_err();
    assert!(
        matches!(err, DarError::Status { status: 503, .. }),
        "{err:?}"
    );
}

#[test]
fn dar_http_unauthorised_is_an_error_not_a_miss() {
    let server = TestServer::start(|_, _| Reply::status(401));
    let err = register(&server).lookup("Testvej 1", "8000").unwrap_err();
    assert!(
        matches!(err, DarError::Status { status: 401, .. }),
        "{err:?}"
    );
}

#[test]
fn dar_http_invalid_json_is_an_error() {
    let server = TestServer::start(|_, _| Reply::json("<html>not json</html>"));
    let err = register(&server).lookup("Testvej 1", "8000").unwrap_err();
    assert!(matches!(err, DarError::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains(ADDRESSES), "{err}");
}

#[test]
fn dar_http_wrong_json_shape_is_an_error() {
    for body in [
        r#"{"resultater": []}"#.to_string(),
        r#"{"kategori": "X", "resultater": []}"#.to_string(),
        r#"{"kategori": "A", "resultater": [{"adresse": {"id": "not-a-uuid"}}]}"#.to_string(),
        r#"{"kategori": "A", "resultater": [{"aktueladresse": {}}]}"#.to_string(),
    ] {
        let server = TestServer::start(move |_, _| Reply::json(body.clone()));
        let err = register(&server).lookup("Testvej 1", "8000").unwrap_err();
        assert!(matches!(err, DarError::BadResponse { .. }), "{err:?}");
    }
}

#[test]
fn dar_http_server_not_listening_is_an_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let reg = HttpRegister::new(&base, Duration::from_secs(5)).unwrap();
    let err = reg.lookup("Testvej 1", "8000").unwrap_err();
    assert!(matches!(err, DarError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&base), "{err}");
}

#[test]
fn dar_http_timeout_is_an_error() {
    let server = TestServer::start(|_, _| Reply {
        delay: Duration::from_millis(1500),
        ..Reply::json(wash("A", &[ID_A]))
    });
    let reg = HttpRegister::new(&server.base, Duration::from_millis(200)).unwrap();
    let err = reg.lookup("Testvej 1", "8000").unwrap_err();
    assert!(matches!(err, DarError::Transport { .. }), "{err:?}");
}

#[test]
fn dar_http_query_is_url_encoded() {
    let server = TestServer::start(|_, betegnelse| {
        if betegnelse == "Paradisæblevej 1, 2. tv, 8880" {
            Reply::json(wash("A", &[ID_A]))
        } else {
            Reply::json(wash("A", &[]))
        }
    });
    let reg = register(&server);
    assert_eq!(
        reg.lookup("Paradisæblevej 1, 2. tv", "8880").unwrap(),
        found(ID_A)
    );
    reg.lookup(" Søndergård Allé 7 ", " 8000 ").unwrap();
    let requests = server.requests();
    assert_eq!(
        requests[0],
        "/datavask/adresser?betegnelse=Paradis%C3%A6blevej%201%2C%202.%20tv%2C%208880"
    );
    assert_eq!(
        requests[1],
        "/datavask/adresser?betegnelse=S%C3%B8nderg%C3%A5rd%20All%C3%A9%207%2C%208000"
    );
}

#[test]
fn dar_http_base_url_path_query_and_credentials() {
    let server = TestServer::start(|_, _| Reply::status(500));
    let authority = server.base.trim_start_matches("http://");
    let base = format!("http://user:s3cret@{authority}/mirror/?token=t0ken");
    let reg = HttpRegister::new(&base, Duration::from_secs(5)).unwrap();
    assert_eq!(reg.base_url(), format!("{}/mirror?token=***", server.base));
    let err = reg.lookup("Testvej 1", "8000").unwrap_err().to_string();
    assert!(!err.contains("s3cret") && !err.contains("t0ken"), "{err}");
    assert!(
        err.contains("/mirror/datavask/adresser?token=***&betegnelse="),
        "{err}"
    );
    assert_eq!(
        server.requests(),
        ["/mirror/datavask/adresser?token=t0ken&betegnelse=Testvej%201%2C%208000"]
    );
}

#[test]
fn dar_settings_choose_http_with_base_url() {
    let server = TestServer::start(|_, _| Reply::json(wash("A", &[ID_A])));
    let settings = DarSettings {
        base_url: Some(server.base.clone()),
        ..DarSettings::default()
    };
    assert_eq!(settings.timeout, Duration::from_secs(10));
    let reg = register_from_settings(&settings).unwrap();
    assert_eq!(reg.lookup("Testvej 1", "8000").unwrap(), found(ID_A));
    assert_eq!(server.paths(), [ADDRESSES]);
}

#[test]
fn dar_settings_reject_bad_base_url() {
    let settings = DarSettings {
        // Not the closed public DAWA's host: that one is replaced by Adressevælger.
        base_url: Some("dawa.mirror.example".into()),
        ..DarSettings::default()
    };
    let err = register_from_settings(&settings).err().unwrap();
    assert!(matches!(err, DarError::InvalidBaseUrl { .. }), "{err:?}");
}

const TEXT: &str = "Testvej 1, 2. tv, Tillægsby, 8000 Aarhus C";

fn object_paths(id: &str) -> [String; 2] {
    [format!("/adresser/{id}"), format!("/adgangsadresser/{id}")]
}

#[test]
fn dar_http_describe_found_as_address() {
    let server = TestServer::start(|path, _| {
        if path.starts_with("/adresser/") {
            Reply::json(mini(ID_A, TEXT))
        } else {
            Reply::status(500)
        }
    });
    let text = register(&server).describe(ID_A.parse().unwrap()).unwrap();
    assert_eq!(text.as_deref(), Some(TEXT));
    assert_eq!(
        server.requests(),
        [format!("/adresser/{ID_A}?struktur=mini")]
    );
}

#[test]
fn dar_http_describe_falls_back_to_access_addresses() {
    let server = TestServer::start(|path, _| {
        if path.starts_with("/adgangsadresser/") {
            Reply::json(mini(ID_B, "Testvej 1, 8000 Aarhus C"))
        } else {
            Reply::status(404)
        }
    });
    // Upper case in, lower case in the URL.
    let id: uuid::Uuid = ID_B.to_uppercase().parse().unwrap();
    let text = register(&server).describe(id).unwrap();
    assert_eq!(text.as_deref(), Some("Testvej 1, 8000 Aarhus C"));
    assert_eq!(server.paths(), object_paths(ID_B));
    assert_eq!(
        server.requests()[1],
        format!("/adgangsadresser/{ID_B}?struktur=mini")
    );
}

#[test]
fn dar_http_describe_404_on_both_is_none() {
    let server = TestServer::start(|_, _| Reply::status(404));
    let text = register(&server).describe(ID_A.parse().unwrap()).unwrap();
    assert_eq!(text, None);
    assert_eq!(server.paths(), object_paths(ID_A));
}

#[test]
fn dar_http_describe_server_error_is_an_error() {
    let server = TestServer::start(|_, _| Reply::status(500));
    let err = register(&server)
        .describe(ID_A.parse().unwrap())
        .unwrap_err();
    match &err {
        DarError::Status { url, status } => {
            assert_eq!(*status, 500);
            assert_eq!(
                url,
                &format!("{}/adresser/{ID_A}?struktur=mini", server.base)
            );
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    // A failure on the first endpoint is not a reason to ask the second.
    assert_eq!(server.paths(), [format!("/adresser/{ID_A}")]);
}

#[test]
fn dar_http_describe_server_error_on_fallback_is_an_error() {
    let server = TestServer::start(|path, _| {
        if path.starts_with("/adresser/") {
            Reply::status(404)
        } else {
            Reply::status(503)
        }
    });
    let err = register(&server)
        .describe(ID_A.parse().unwrap())
        .unwrap_err();
    assert!(
        matches!(err, DarError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/adgangsadresser/"), "{err}");
}

#[test]
fn dar_http_describe_bad_json_is_an_error() {
    for body in [
        "<html>not json</html>".to_string(),
        r#"{"id": "x"}"#.to_string(),
        r#"{"betegnelse": null}"#.to_string(),
        r#"{"betegnelse": 12}"#.to_string(),
        r#"{"betegnelse": "  "}"#.to_string(),
        r#"[{"betegnelse": "Testvej 1, 8000 Aarhus C"}]"#.to_string(),
    ] {
        let server = TestServer::start(move |_, _| Reply::json(body.clone()));
        let err = register(&server)
            .describe(ID_A.parse().unwrap())
            .unwrap_err();
        assert!(matches!(err, DarError::BadResponse { .. }), "{err:?}");
        assert!(err.to_string().contains("/adresser/"), "{err}");
        assert_eq!(server.paths(), [format!("/adresser/{ID_A}")]);
    }
}

#[test]
fn dar_http_describe_never_shows_credentials() {
    let server = TestServer::start(|_, _| Reply::status(500));
    let authority = server.base.trim_start_matches("http://");
    let base = format!("http://user:s3cret@{authority}/mirror/?token=t0ken");
    let reg = HttpRegister::new(&base, Duration::from_secs(5)).unwrap();
    let err = reg.describe(ID_A.parse().unwrap()).unwrap_err().to_string();
    assert!(!err.contains("s3cret") && !err.contains("t0ken"), "{err}");
    assert!(
        err.contains(&format!("/mirror/adresser/{ID_A}?token=***&struktur=mini")),
        "{err}"
    );
    assert_eq!(
        server.requests(),
        [format!("/mirror/adresser/{ID_A}?token=t0ken&struktur=mini")]
    );

    // No HTTP answer at all: the transport message is scrubbed too.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://user:s3cret@127.0.0.1:{port}/?token=t0ken");
    let reg = HttpRegister::new(&base, Duration::from_secs(5)).unwrap();
    let err = reg.describe(ID_A.parse().unwrap()).unwrap_err();
    assert!(matches!(err, DarError::Transport { .. }), "{err:?}");
    let err = err.to_string();
    assert!(!err.contains("s3cret") && !err.contains("t0ken"), "{err}");
}

#[test]
fn dar_http_describe_through_settings_and_cache() {
    let server = TestServer::start(|path, _| {
        if path.starts_with("/adresser/") {
            Reply::json(mini(ID_A, TEXT))
        } else {
            Reply::status(404)
        }
    });
    let settings = DarSettings {
        base_url: Some(server.base.clone()),
        ..DarSettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(register_from_settings(&settings).unwrap(), &db, false).unwrap();
    let id: uuid::Uuid = ID_A.parse().unwrap();
    assert_eq!(reg.describe(id).unwrap().as_deref(), Some(TEXT));
    assert_eq!(reg.describe(id).unwrap().as_deref(), Some(TEXT));
    assert_eq!(server.paths(), [format!("/adresser/{ID_A}")]);
}

#[test]
fn dar_http_describe_errors_are_never_cached() {
    let server = TestServer::start(|_, _| Reply::status(500));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(register(&server), &db, false).unwrap();
    let id: uuid::Uuid = ID_A.parse().unwrap();
    assert!(reg.describe(id).is_err());
    assert!(reg.describe(id).is_err());
    assert_eq!(server.paths().len(), 2, "asked again after an error");
    reg.flush().unwrap();
    drop(reg);
    let n: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM dar_text", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}
