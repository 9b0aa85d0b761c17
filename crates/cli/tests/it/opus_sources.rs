//! `dipex opus` with its dumps in a local folder, on an SMB share (a real Samba on loopback) and
//! in a Google Cloud Storage bucket (the loopback GCS JSON API server): the bundled example dumps
//! give the same `dipex mo dump` from all three; remote dumps are downloaded into `opus-dumps/`
//! next to the run database only when a run needs them, and old ones are removed afterwards.
//! The Samba part prints `SKIPPED` without root, smbd or libsmbclient.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dipex_testkit::gcs::GcsServer;
use dipex_testkit::samba::{self, Samba};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_dumps() -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("examples/opus/dumps");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 3);
    v
}

/// A folder with settings.json: the example's settings with its files in the folder, plus
/// `extra`.
fn site(extra: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mut settings = serde_json::json!({
        "municipality.name": "Aarslev Kommune",
        "dipex.store": p.join("dipex.sqlite3"),
        "integrations.opus.import.run_db": p.join("state/run_db.sqlite"),
        "integrations.opus.cpr_uuid_map": p.join("cpr_uuid_map.csv"),
        "integrations.dar.address_file": repo().join("examples/opus/adresser.csv"),
    });
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    std::fs::create_dir(p.join("state")).unwrap();
    std::fs::write(p.join("settings.json"), settings.to_string()).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dipex"));
    c.current_dir(dir)
        .env_remove("DIPEX_SETTINGS")
        .env_remove("DIPEX_LOG")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: Output) -> (String, String) {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "stderr: {err}\nstdout: {out}");
    (out, err)
}

fn spooled(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir.join("state/opus-dumps")) {
        Ok(r) => r
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Import everything, then the `mo dump`.
fn import_and_dump(dir: &Path, env: &[(&str, &Path)]) -> String {
    let (_, err) = ok(run(dir, &["opus", "import"], env));
    assert!(err.contains("opus import: 3 dumps,"), "{err}");
    ok(run(dir, &["mo", "dump"], env)).0
}

#[test]
fn the_example_from_a_folder_a_bucket_and_a_share_gives_the_same_mo() {
    let dumps = example_dumps();
    let local = site(serde_json::json!({
        "integrations.opus.import.xml_path": repo().join("examples/opus/dumps"),
    }));
    let expected = import_and_dump(local.path(), &[]);
    assert!(expected.lines().count() > 20);
    assert!(
        spooled(local.path()).is_empty(),
        "a folder is read in place"
    );
    // New persons get random uuids: the other runs use this run's cpr map to get the same.
    let map = local.path().join("persons.csv");
    ok(run(
        local.path(),
        &["cpr-map", "export", map.to_str().unwrap()],
        &[],
    ));

    // Google Cloud Storage: under production/, two objects per listing page, a key file.
    let server = GcsServer::start();
    server.set_page_size(2);
    for (name, bytes) in &dumps {
        server.put("opus-bucket", &format!("production/{name}"), bytes.clone());
    }
    server.put("opus-bucket", "production/README.txt", "not a dump");
    let gcs = site(serde_json::json!({
        "integrations.opus.gcloud_bucket_name": "opus-bucket",
        "integrations.opus.gcloud_endpoint": server.endpoint(),
        // Wins over the folder (spec §2.2).
        "integrations.opus.import.xml_path": gcs_nothing(),
        "integrations.opus.cpr_uuid_map": map,
    }));
    let key = server.key_file(gcs.path());
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", key.as_path())];
    assert_eq!(import_and_dump(gcs.path(), &env), expected);
    // Only the last imported dump stays in the spool folder.
    assert_eq!(spooled(gcs.path()), [dumps[2].0.clone()]);
    let (out, _) = ok(run(gcs.path(), &["opus", "files"], &env));
    assert_eq!(out.matches("imported").count(), 3, "{out}");
    assert!(
        out.contains("ZLPE20240103220000_delta.xml"),
        "dump names without production/: {out}"
    );

    // SMB: a real Samba share.
    if let Some(reason) = samba_skip() {
        dipex_testkit::skip(&format!("the SMB part: {reason}"));
        return;
    }
    let smbd = Samba::start();
    std::fs::create_dir(smbd.share_dir().join("OPUS")).unwrap();
    for (name, bytes) in &dumps {
        std::fs::write(smbd.share_dir().join("OPUS").join(name), bytes).unwrap();
    }
    let share = site(serde_json::json!({
        "integrations.opus.smb_host": format!("{}/OPUS", smbd.host()),
        "integrations.opus.smb_user": samba::USER,
        "integrations.opus.smb_password": samba::PASSWORD,
        "integrations.opus.cpr_uuid_map": map,
    }));
    let (_, err) = ok(run(share.path(), &["opus", "import"], &[]));
    assert!(err.contains("opus import: 3 dumps,"), "{err}");
    assert!(!err.contains(samba::PASSWORD), "{err}");
    assert_eq!(ok(run(share.path(), &["mo", "dump"], &[])).0, expected);
    assert_eq!(spooled(share.path()), [dumps[2].0.clone()]);

    // A wrong password: exit code 2 at once, a clear message, no password.
    let wrong = site(serde_json::json!({
        "integrations.opus.smb_host": format!("{}/OPUS", smbd.host()),
        "integrations.opus.smb_user": samba::USER,
        "integrations.opus.smb_password": "not-the-Password-9",
    }));
    let o = run(wrong.path(), &["opus", "import"], &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(!err.contains("not-the-Password-9"), "{err}");
}

/// A folder setting that must not be used.
fn gcs_nothing() -> &'static str {
    "/nonexistent/dipex-test/xml_path"
}

fn samba_skip() -> Option<String> {
    if let Some(r) = samba::skip_reason() {
        return Some(r);
    }
    let lib = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/lib",
    ]
    .iter()
    .any(|d| Path::new(d).join("libsmbclient.so.0").exists());
    if !lib {
        return Some("libsmbclient.so.0 not found: install libsmbclient".into());
    }
    None
}

#[test]
fn remote_runs_download_only_what_they_need_and_dry_runs_write_nothing() {
    let dumps = example_dumps();
    let server = GcsServer::start();
    for (name, bytes) in &dumps {
        server.put("b", name, bytes.clone());
    }
    let s = site(serde_json::json!({
        "integrations.opus.gcloud_bucket_name": "b",
        "integrations.opus.gcloud_endpoint": server.endpoint(),
        "integrations.opus.gcloud_metadata_url": server.metadata_url(),
    }));
    // Metadata-server credentials (no GOOGLE_APPLICATION_CREDENTIALS).
    let o = run(s.path(), &["check"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("ok   opus dumps") && out.contains("gs://b at ") && out.contains(": 3 dumps"),
        "{out}"
    );
    let (out, _) = ok(run(s.path(), &["opus", "files"], &[]));
    assert_eq!(out.matches("pending").count(), 3, "{out}");
    assert!(spooled(s.path()).is_empty(), "listing downloads nothing");

    ok(run(s.path(), &["opus", "import", "--next"], &[]));
    assert_eq!(spooled(s.path()), [dumps[0].0.clone()]);

    // A dry run downloads the dump it shows, but the run history stays.
    let (out, _) = ok(run(s.path(), &["opus", "import", "--dry-run"], &[]));
    assert!(!out.is_empty(), "the dry run shows its changes");
    assert_eq!(spooled(s.path()), [dumps[0].0.clone(), dumps[1].0.clone()]);
    let (out, _) = ok(run(s.path(), &["opus", "files"], &[]));
    assert_eq!(out.matches("pending").count(), 2, "{out}");

    // tree: the newest dump.
    let (out, _) = ok(run(s.path(), &["opus", "tree"], &[]));
    assert!(!out.is_empty());
    assert_eq!(spooled(s.path()).len(), 3);
    // check-dar reads the newest dump from the spool folder (misses give exit code 1).
    let o = run(s.path(), &["opus", "check-dar"], &[]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The rest; the spool keeps only the last imported dump.
    ok(run(s.path(), &["opus", "import"], &[]));
    assert_eq!(spooled(s.path()), [dumps[2].0.clone()]);
    let downloads = server
        .requests()
        .iter()
        .filter(|r| r.contains("alt=media"))
        .count();
    assert_eq!(
        downloads,
        3,
        "each dump downloaded once: {:?}",
        server.requests()
    );

    // reimport reads the dumps of its days (all three here): the two pruned ones come back.
    let o = run(
        s.path(),
        &[
            "opus",
            "reimport",
            "--employee",
            "10000",
            "--days",
            "100000",
            "--dry-run",
        ],
        &[],
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(spooled(s.path()).len(), 3);

    // A bucket that does not exist: exit code 2, the bucket named.
    let bad = site(serde_json::json!({
        "integrations.opus.gcloud_bucket_name": "nope",
        "integrations.opus.gcloud_endpoint": server.endpoint(),
        "integrations.opus.gcloud_metadata_url": server.metadata_url(),
    }));
    let o = run(bad.path(), &["opus", "import"], &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nope") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("ya29."), "{err}");
    // Printed once: the listing error shows the bucket's answer, not chained again as a cause.
    assert_eq!(
        err,
        format!(
            "ERROR cannot list OPUS dumps in gs://nope at {}: Google Cloud Storage bucket nope: \
             listing: HTTP 404: The specified bucket does not exist.\n",
            server.endpoint()
        )
    );
}
