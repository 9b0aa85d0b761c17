//! The caching wrapper over a counting fake register, with a real SQLite file (opus.md §18 item 34).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dar::{AddressRegister, CachedRegister, DarError, Lookup};

const ID_1: &str = "3ceaaf30-8142-48ea-91d9-3080f9b439fc";
const ID_2: &str = "9dfb369b-ab13-4fae-a276-55daa05f1119";
const ID_ERR: &str = "66080f17-4c96-48e2-9cbd-0ba3a1a6bcde";
const ID_NONE: &str = "6301bbfc-a0c5-454e-8ff9-bb510944fe0c";
const TEXT_1: &str = "Testvej 1, 2. tv, Tillægsby, 2345 Testby";
const TEXT_2: &str = "Anden Allé 7, 2345 Testby";

fn id(text: &str) -> uuid::Uuid {
    text.parse().unwrap()
}

/// Answers "Test" → ID_1, "Anden" → ID_2, "Fejl" → a transport error, anything else → NotFound;
/// describes ID_1 and ID_2, fails on ID_ERR and knows no other id; counts its calls.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
}

impl Fake {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl AddressRegister for Fake {
    fn lookup(&self, street: &str, _postal_code: &str) -> Result<Lookup, DarError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match street {
            "Test" => Ok(Lookup::Found(ID_1.parse().unwrap())),
            "Anden" => Ok(Lookup::Found(ID_2.parse().unwrap())),
            "Fejl" => Err(DarError::Transport {
                url: "http://127.0.0.1:9/datavask/adresser".into(),
                message: "connection refused".into(),
            }),
            _ => Ok(Lookup::NotFound),
        }
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match id.hyphenated().to_string().as_str() {
            ID_1 => Ok(Some(TEXT_1.to_string())),
            ID_2 => Ok(Some(TEXT_2.to_string())),
            ID_ERR => Err(DarError::Status {
                url: "http://127.0.0.1:9/adresser/x?struktur=mini".into(),
                status: 500,
            }),
            _ => Ok(None),
        }
    }

    fn probe(&self) -> Result<String, DarError> {
        Ok("fake".into())
    }
}

/// All rows of `dar_cache`, sorted.
fn rows(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT street, postal_code, result FROM dar_cache ORDER BY street, postal_code")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// All rows of `dar_text`, sorted.
fn text_rows(path: &Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, text FROM dar_text ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn dar_cache_counts_calls_like_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    assert!(reg.is_empty());
    assert_eq!(reg.stats(), (0, 0, 0));

    let first = reg.lookup("Test", "2345").unwrap();
    let second = reg.lookup("Test", "2345").unwrap();
    assert_eq!(first, Lookup::Found(ID_1.parse().unwrap()));
    assert_eq!(first, second);
    assert_eq!(reg.inner().calls(), 1);
    assert_eq!(reg.len(), 1);

    reg.lookup("Anden", "2345").unwrap();
    assert_eq!(reg.inner().calls(), 2);
    assert_eq!(reg.len(), 2);
    assert_eq!(reg.stats(), (1, 2, 2));
}

#[test]
fn dar_cache_misses_are_cached_too() {
    let dir = tempfile::tempdir().unwrap();
    let reg = CachedRegister::new(Fake::default(), dir.path().join("s.db"), false).unwrap();
    assert_eq!(reg.lookup("Ingen", "2345").unwrap(), Lookup::NotFound);
    assert_eq!(reg.lookup("Ingen", "2345").unwrap(), Lookup::NotFound);
    assert_eq!(reg.inner().calls(), 1);
    // The key includes the postal code.
    assert_eq!(reg.lookup("Ingen", "2346").unwrap(), Lookup::NotFound);
    assert_eq!(reg.inner().calls(), 2);
}

#[test]
fn dar_cache_persists_and_is_read_back_without_inner_calls() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.lookup("Test", "2345").unwrap();
        reg.lookup("Ingen", "2345").unwrap();
        // Dropped here: flushed.
    }
    assert_eq!(
        rows(&db),
        [
            ("Ingen".into(), "2345".into(), None),
            ("Test".into(), "2345".into(), Some(ID_1.into())),
        ]
    );

    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    assert!(reg.is_empty());
    assert_eq!(
        reg.lookup("Test", "2345").unwrap(),
        Lookup::Found(ID_1.parse().unwrap())
    );
    assert_eq!(reg.lookup("Ingen", "2345").unwrap(), Lookup::NotFound);
    assert_eq!(
        reg.lookup("Test", "2345").unwrap(),
        Lookup::Found(ID_1.parse().unwrap())
    );
    assert_eq!(reg.inner().calls(), 0);
    assert_eq!(reg.stats(), (3, 0, 0));
    assert_eq!(reg.len(), 2);
}

#[test]
fn dar_cache_writes_only_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    reg.lookup("Test", "2345").unwrap();
    reg.lookup("Anden", "2345").unwrap();
    assert!(rows(&db).is_empty(), "nothing written before flush");
    reg.flush().unwrap();
    assert_eq!(rows(&db).len(), 2);
    reg.flush().unwrap();
    assert_eq!(rows(&db).len(), 2);
    reg.lookup("Ingen", "9999").unwrap();
    drop(reg);
    assert_eq!(rows(&db).len(), 3);
}

#[test]
fn dar_cache_does_not_cache_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    assert!(matches!(
        reg.lookup("Fejl", "2345"),
        Err(DarError::Transport { .. })
    ));
    assert!(reg.lookup("Fejl", "2345").is_err());
    assert_eq!(reg.inner().calls(), 2, "an error is asked again");
    assert!(reg.is_empty());
    reg.flush().unwrap();
    assert!(rows(&db).is_empty());
}

#[test]
fn dar_cache_read_only_never_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        reg.lookup("Test", "2345").unwrap();
        reg.lookup("Test", "2345").unwrap();
        assert_eq!(reg.inner().calls(), 1, "the in-memory cache still works");
        reg.flush().unwrap();
    }
    assert!(!db.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn dar_cache_read_only_uses_but_never_modifies_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.lookup("Test", "2345").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        assert_eq!(
            reg.lookup("Test", "2345").unwrap(),
            Lookup::Found(ID_1.parse().unwrap())
        );
        assert_eq!(reg.inner().calls(), 0, "answered from the file");
        reg.lookup("Anden", "2345").unwrap();
        reg.lookup("Ingen", "2345").unwrap();
        assert_eq!(reg.inner().calls(), 2);
        reg.flush().unwrap();
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&db).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(rows(&db).len(), 1);
}

#[test]
fn dar_cache_read_only_on_a_file_without_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.sqlite3");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("CREATE TABLE runs (id INTEGER)", [])
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        reg.lookup("Test", "2345").unwrap();
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn dar_cache_shares_a_state_file_with_other_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("CREATE TABLE runs (id INTEGER, status TEXT)", [])
        .unwrap();
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.lookup("Test", "2345").unwrap();
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(rows(&db).len(), 1);
}

#[test]
fn dar_cache_wraps_a_boxed_register() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Box<dyn AddressRegister> = Box::new(Fake::default());
    let reg = CachedRegister::new(inner, dir.path().join("s.db"), false).unwrap();
    reg.lookup("Test", "2345").unwrap();
    reg.lookup("Test", "2345").unwrap();
    assert_eq!(reg.stats(), (1, 1, 1));
}

#[test]
fn dar_cache_unusable_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Missing folders are created; a folder that is a file cannot be.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let db = dir.path().join("file/state.sqlite3");
    let err = CachedRegister::new(Fake::default(), &db, false).unwrap_err();
    assert!(matches!(err, DarError::Cache { .. }), "{err:?}");
    assert!(err.to_string().contains("state.sqlite3"), "{err}");
}

#[test]
fn dar_cache_describe_asks_the_inner_register_once() {
    let dir = tempfile::tempdir().unwrap();
    let reg = CachedRegister::new(Fake::default(), dir.path().join("s.db"), false).unwrap();
    assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
    assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
    assert_eq!(reg.inner().calls(), 1);
    // Misses are cached too.
    assert_eq!(reg.describe(id(ID_NONE)).unwrap(), None);
    assert_eq!(reg.describe(id(ID_NONE)).unwrap(), None);
    assert_eq!(reg.inner().calls(), 2);
    // Lookups and descriptions are separate questions, counted together.
    reg.lookup("Test", "2345").unwrap();
    assert_eq!(reg.inner().calls(), 3);
    assert_eq!(reg.stats(), (2, 3, 3));
    assert_eq!(reg.len(), 3);
}

#[test]
fn dar_cache_describe_persists_and_is_read_back_without_inner_calls() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.describe(id(ID_1)).unwrap();
        reg.describe(id(ID_NONE)).unwrap();
        reg.lookup("Test", "2345").unwrap();
        assert!(text_rows(&db).is_empty(), "nothing written before flush");
        // Dropped here: flushed, both tables.
    }
    assert_eq!(
        text_rows(&db),
        [(ID_1.into(), Some(TEXT_1.into())), (ID_NONE.into(), None)]
    );
    assert_eq!(rows(&db).len(), 1);

    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
    assert_eq!(reg.describe(id(ID_NONE)).unwrap(), None);
    assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
    assert_eq!(reg.inner().calls(), 0);
    assert_eq!(reg.stats(), (3, 0, 0));

    // A new answer is added to the stored ones on flush.
    reg.describe(id(ID_2)).unwrap();
    reg.flush().unwrap();
    assert_eq!(text_rows(&db).len(), 3);
}

#[test]
fn dar_cache_describe_does_not_cache_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
    assert!(matches!(
        reg.describe(id(ID_ERR)),
        Err(DarError::Status { status: 500, .. })
    ));
    assert!(reg.describe(id(ID_ERR)).is_err());
    assert_eq!(reg.inner().calls(), 2, "an error is asked again");
    assert!(reg.is_empty());
    reg.flush().unwrap();
    assert!(text_rows(&db).is_empty());
}

#[test]
fn dar_cache_describe_read_only_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    // No file: none is created.
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        reg.describe(id(ID_1)).unwrap();
        reg.describe(id(ID_1)).unwrap();
        assert_eq!(reg.inner().calls(), 1, "the in-memory cache still works");
        reg.flush().unwrap();
    }
    assert!(!db.exists());

    // An existing file is read, never modified.
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.describe(id(ID_1)).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
        assert_eq!(reg.inner().calls(), 0, "answered from the file");
        reg.describe(id(ID_2)).unwrap();
        reg.describe(id(ID_NONE)).unwrap();
        assert_eq!(reg.inner().calls(), 2);
        reg.flush().unwrap();
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&db).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(text_rows(&db).len(), 1);
}

#[test]
fn dar_cache_read_only_on_a_file_from_before_dar_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "CREATE TABLE dar_cache (street TEXT, postal_code TEXT, result TEXT NULL,
                 PRIMARY KEY (street, postal_code))",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO dar_cache VALUES ('Test', '2345', ?1)", [ID_1])
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    {
        let reg = CachedRegister::new(Fake::default(), &db, true).unwrap();
        assert_eq!(reg.lookup("Test", "2345").unwrap(), Lookup::Found(id(ID_1)));
        assert_eq!(reg.inner().calls(), 0, "the lookup table is still used");
        assert_eq!(reg.describe(id(ID_1)).unwrap().as_deref(), Some(TEXT_1));
        assert_eq!(reg.inner().calls(), 1);
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // Opened for writing, the new table is added and the old rows stay.
    {
        let reg = CachedRegister::new(Fake::default(), &db, false).unwrap();
        reg.describe(id(ID_1)).unwrap();
    }
    assert_eq!(rows(&db).len(), 1);
    assert_eq!(text_rows(&db), [(ID_1.into(), Some(TEXT_1.into()))]);
}

#[test]
fn dar_cache_describe_through_a_boxed_register() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Box<dyn AddressRegister> = Box::new(Fake::default());
    let reg = CachedRegister::new(inner, dir.path().join("s.db"), false).unwrap();
    let by_ref: &dyn AddressRegister = &reg;
    assert_eq!(by_ref.describe(id(ID_2)).unwrap().as_deref(), Some(TEXT_2));
    assert_eq!(
        (&by_ref).describe(id(ID_2)).unwrap().as_deref(),
        Some(TEXT_2)
    );
    assert_eq!(reg.stats(), (1, 1, 1));
}
