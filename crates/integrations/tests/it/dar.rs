//! The Adressevælger client, the breaker, the cache's state database and the concurrent lookups
//! against a loopback server speaking the protocol of `specs/dar.md` (`dipex_testkit::dar`).

use dipex_integrations::dar::{
    self, AddressRegister, Adressevaelger, Breaker, CachedRegister, DarError, Lookup, Pending,
};
use dipex_testkit::dar::{DarServer, Mode};
use std::time::Duration;
use uuid::Uuid;

const TOKEN: &str = "adressevaelger123";

fn server() -> (DarServer, Uuid, Uuid) {
    let s = DarServer::empty().unwrap();
    let flat = s.add(
        Uuid::from_u128(1),
        "Testvej",
        "12B",
        "2",
        "tv",
        "8000",
        "Aarhus C",
        "Tillægsby",
    );
    let house = s.add(
        Uuid::from_u128(2),
        "Skovvej",
        "3",
        "",
        "",
        "8210",
        "Aarhus V",
        "",
    );
    (s, flat, house)
}

fn client(s: &DarServer, timeout: Duration) -> Adressevaelger {
    Adressevaelger::new(&s.url(), TOKEN, timeout, 4).unwrap()
}

#[test]
fn wash_matches_misses_and_never_sends_an_empty_text() {
    let (s, flat, house) = server();
    let c = client(&s, Duration::from_secs(5));
    assert_eq!(
        c.lookup("Testvej 12B, 2. tv", "8000").unwrap(),
        Lookup::Found(flat)
    );
    assert_eq!(
        c.lookup("skovvej 3", " 8210 ").unwrap(),
        Lookup::Found(house)
    );
    assert_eq!(c.lookup("Ukendt Vej 1", "8000").unwrap(), Lookup::NotFound);
    assert_eq!(c.lookup("  ", "").unwrap(), Lookup::NotFound);
    assert_eq!(
        s.log(),
        [
            "GET /vask/?adresse=Testvej%2012B%2C%202.%20tv%2C%208000&token=***",
            "GET /vask/?adresse=skovvej%203%2C%208210&token=***",
            "GET /vask/?adresse=Ukendt%20Vej%201%2C%208000&token=***",
        ]
    );
}

#[test]
fn an_ambiguous_wash_is_a_miss() {
    let (s, _, _) = server();
    s.add(
        Uuid::from_u128(7),
        "Dobbeltvej",
        "1",
        "",
        "",
        "8000",
        "Aarhus C",
        "",
    );
    s.add(
        Uuid::from_u128(8),
        "Dobbeltvej",
        "1",
        "",
        "",
        "8000",
        "Aarhus C",
        "",
    );
    let c = client(&s, Duration::from_secs(5));
    assert_eq!(c.lookup("Dobbeltvej 1", "8000").unwrap(), Lookup::NotFound);
}

#[test]
fn describe_in_bulk_chunks_falls_back_to_access_addresses() {
    let (s, flat, house) = server();
    let access = DarServer::access_id("Skovvej", "3", "8210");
    let unknown = Uuid::from_u128(99);
    let c = client(&s, Duration::from_secs(5));
    let texts = c.describe_many(&[flat, house, access, unknown]).unwrap();
    assert_eq!(
        texts[&flat].as_deref(),
        Some("Testvej 12B, 2. tv, Tillægsby, 8000 Aarhus C")
    );
    assert_eq!(texts[&house].as_deref(), Some("Skovvej 3, 8210 Aarhus V"));
    assert_eq!(texts[&access].as_deref(), Some("Skovvej 3, 8210 Aarhus V"));
    assert_eq!(texts[&unknown], None);
    // 404 on a bulk lookup that finds nothing is "none of them", not a failure.
    assert_eq!(c.describe(unknown).unwrap(), None);
    // 250 ids: three chunks of at most 100 to /adresser, and the ones not found to /husnumre.
    let many: Vec<Uuid> = (1000..1250).map(Uuid::from_u128).collect();
    let before = s.log().len();
    let texts = c.describe_many(&many).unwrap();
    assert_eq!(texts.len(), 250);
    assert!(texts.values().all(Option::is_none));
    let log = s.log()[before..].to_vec();
    assert_eq!(log.len(), 6, "{log:?}");
    for l in &log {
        let ids = l
            .split("id_lokalids=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert!(
            ids.split("%2C").count() <= 100 || ids.split(',').count() <= 100,
            "{l}"
        );
    }
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("GET /adresser?"))
            .count(),
        3
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("GET /husnumre?"))
            .count(),
        3
    );
}

#[test]
fn failures_are_errors_and_never_show_the_token() {
    let (s, flat, _) = server();
    let c = client(&s, Duration::from_secs(5));
    s.set_mode(Mode::Status(503));
    let e = c.lookup("Testvej 12B", "8000").unwrap_err();
    assert!(matches!(e, DarError::Status { status: 503, .. }), "{e}");
    assert!(
        e.to_string().contains("token=***") && !e.to_string().contains(TOKEN),
        "{e}"
    );
    assert!(matches!(
        c.describe(flat),
        Err(DarError::Status { status: 503, .. })
    ));
    assert!(c.probe().is_err());
    s.set_mode(Mode::Drop);
    assert!(matches!(
        c.lookup("Testvej 12B", "8000"),
        Err(DarError::Transport { .. })
    ));
    s.set_mode(Mode::Normal);
    assert!(c.probe().unwrap().contains("answers"));
    // A short token is refused by the service: an error, not a miss.
    let bad = Adressevaelger::new(&s.url(), "kort", Duration::from_secs(5), 1).unwrap();
    assert!(matches!(
        bad.lookup("Testvej 12B", "8000"),
        Err(DarError::Status { status: 401, .. })
    ));
}

#[test]
fn the_breaker_stops_asking_after_consecutive_failures() {
    let (s, _, _) = server();
    s.set_mode(Mode::Status(500));
    let b = Breaker::new(
        client(&s, Duration::from_secs(5)),
        3,
        Duration::from_secs(3600),
    );
    for i in 0..10 {
        let e = b.lookup(&format!("Vej {i}"), "8000").unwrap_err();
        if i >= 3 {
            assert!(matches!(e, DarError::Unavailable { .. }), "{i}: {e}");
        }
    }
    assert_eq!(s.requests(), 3);
    assert_eq!(
        b.tripped().unwrap(),
        "3 consecutive failures, the last: address register answered HTTP 500"
    );
    // A success in between resets the count.
    let (s, _, _) = server();
    let b = Breaker::new(
        client(&s, Duration::from_secs(5)),
        2,
        Duration::from_secs(3600),
    );
    s.set_mode(Mode::Status(500));
    assert!(b.lookup("A 1", "8000").is_err());
    s.set_mode(Mode::Normal);
    assert!(b.lookup("A 1", "8000").is_ok());
    s.set_mode(Mode::Status(500));
    assert!(b.lookup("A 1", "8000").is_err());
    assert!(b.tripped().is_none());
}

#[test]
fn a_hanging_register_costs_one_timeout_per_connection() {
    let (s, _, _) = server();
    s.set_mode(Mode::Hang);
    let b = Breaker::new(
        client(&s, Duration::from_millis(300)),
        3,
        Duration::from_secs(3600),
    );
    let queries: Vec<(String, String)> = (0..200)
        .map(|i| (format!("Vej {i}"), "8000".into()))
        .collect();
    let answers = dar::lookup_all(&b, queries);
    assert_eq!(answers.len(), 200);
    assert!(answers.values().all(|a| a.is_err()));
    // The 4 connections' first requests time out together; no new request is sent until they
    // are all answered, so the breaker trips on them and everything after is refused at once:
    // one timeout in all.
    assert_eq!(s.requests(), 4);
    assert!(b.tripped().is_some());
}

#[test]
fn lookups_run_concurrently_and_each_distinct_text_once() {
    let s = DarServer::empty().unwrap().accept_all();
    s.set_latency(Duration::from_millis(30));
    let c = Adressevaelger::new(&s.url(), TOKEN, Duration::from_secs(5), 8).unwrap();
    let queries: Vec<(String, String)> = (0..64)
        .flat_map(|i| std::iter::repeat_n((format!("Vej {i}"), "8000".to_string()), 3))
        .collect();
    let answers = dar::lookup_all(&c, queries);
    assert_eq!(answers.len(), 64);
    assert!(answers.values().all(|a| matches!(a, Ok(Lookup::Found(_)))));
    assert_eq!(s.washes(), 64);
    assert!(s.max_concurrent() > 1, "{}", s.max_concurrent());
    assert!(s.max_concurrent() <= 8, "{}", s.max_concurrent());
}

#[test]
fn the_state_database_caches_answers_and_keeps_pending_objects() {
    let (s, flat, _) = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/dar.sqlite3");
    {
        let r = CachedRegister::new(client(&s, Duration::from_secs(5)), &path, false).unwrap();
        assert_eq!(
            r.lookup("Testvej 12B, 2. tv", "8000").unwrap(),
            Lookup::Found(flat)
        );
        assert_eq!(r.lookup("Ukendt 1", "8000").unwrap(), Lookup::NotFound);
        s.set_mode(Mode::Status(503));
        assert!(r.lookup("Skovvej 3", "8210").is_err());
        r.update_pending(
            "opus",
            &[],
            &[Pending {
                object: "unit:7".into(),
                data: "{}".into(),
            }],
        )
        .unwrap();
    }
    s.set_mode(Mode::Normal);
    let washes = s.washes();
    let r = CachedRegister::new(client(&s, Duration::from_secs(5)), &path, true).unwrap();
    // Definitive answers come from the file; the failure was not cached.
    assert_eq!(
        r.lookup("Testvej 12B, 2. tv", "8000").unwrap(),
        Lookup::Found(flat)
    );
    assert_eq!(r.lookup("Ukendt 1", "8000").unwrap(), Lookup::NotFound);
    assert_eq!(s.washes(), washes);
    assert_eq!(
        r.lookup("Skovvej 3", "8210").unwrap(),
        Lookup::Found(Uuid::from_u128(2))
    );
    assert_eq!(
        r.pending("opus").unwrap(),
        [Pending {
            object: "unit:7".into(),
            data: "{}".into()
        }]
    );
    assert!(r.pending("los").unwrap().is_empty());
}

#[test]
fn answers_of_the_old_run_database_are_copied_once() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("run_db.sqlite");
    // The cache tables as earlier dipex versions kept them in the OPUS run database.
    let conn = rusqlite::Connection::open(&old).unwrap();
    conn.execute_batch(
        "CREATE TABLE dar_cache (street TEXT, postal_code TEXT, result TEXT NULL,
                                 PRIMARY KEY (street, postal_code));
         CREATE TABLE dar_text (id TEXT PRIMARY KEY, text TEXT NULL);
         INSERT INTO dar_cache VALUES ('Gammel Vej 1', '8000', '00000000-0000-0000-0000-00000000002a');
         INSERT INTO dar_text VALUES ('00000000-0000-0000-0000-00000000002a', 'Gammel Vej 1, 8000 Aarhus C');",
    )
    .unwrap();
    drop(conn);
    let (s, _, _) = server();
    let r = CachedRegister::new(
        client(&s, Duration::from_secs(5)),
        dir.path().join("dar.sqlite3"),
        false,
    )
    .unwrap();
    assert_eq!(r.import_legacy(&old).unwrap(), 2);
    assert_eq!(
        r.lookup("Gammel Vej 1", "8000").unwrap(),
        Lookup::Found(Uuid::from_u128(42))
    );
    assert_eq!(
        r.describe(Uuid::from_u128(42)).unwrap().as_deref(),
        Some("Gammel Vej 1, 8000 Aarhus C")
    );
    assert_eq!(s.requests(), 0);
}
