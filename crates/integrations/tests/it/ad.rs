//! Active Directory enrichment against a real LDAP server: OpenLDAP's `slapd` on loopback.
//!
//! Each test starts its own `/usr/sbin/slapd -d 0` on free ports of 127.0.0.1 with an old-style
//! `slapd.conf` in a temporary directory: the core schemas plus a small schema written here that
//! defines AD's `objectGUID` (octet string), `sAMAccountName` and `employeeID` (the CPR attribute)
//! and an auxiliary object class carrying them, an mdb database in the temporary directory loaded
//! with `slapadd` from LDIF (binary GUIDs as `objectGUID:: <base64>`), a bind user with a
//! password, and AD's habit of refusing more than a few entries without paging (a size limit of
//! 2 that paged searches are exempt from). With `tls`, it also listens on `ldaps://` with an
//! rcgen certificate, and StartTLS works on the plain port.
//!
//! Without `/usr/sbin/slapd` (Debian: `apt-get install slapd`) every test prints `SKIPPED` and
//! passes (under `CI=true` it fails: `dipex_testkit::skip`); `.ci/run` installs it. Root is
//! not needed.

use crate::opus::{DAY1, DAY2, World, fixtures};
use dipex_backend::{Backend, Query};
use dipex_integrations::ad::ldap::{AdError, read_directory};
use dipex_integrations::ad::{AdLookup, AdSettings, AdUser, Directory, IT_SYSTEM, RawEntry};
use dipex_integrations::opus::run::{self, Mode};
use dipex_model::{Cpr, Kind, Object, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SUFFIX: &str = "dc=andeby,dc=test";
const BIND_DN: &str = "cn=dipex,ou=service,dc=andeby,dc=test";
const PASSWORD: &str = "bind-Secret-4711";

macro_rules! require_slapd {
    () => {
        if !Path::new(SLAPD).exists() || !Path::new(SLAPADD).exists() {
            dipex_testkit::skip(&format!("{SLAPD} not found: install Debian's slapd"));
            return;
        }
    };
}

/// An AD account in the test directory.
struct Account {
    cn: &'static str,
    /// The raw value of `employeeID`.
    cpr: Option<&'static str>,
    guid: Option<Uuid>,
    sam: &'static str,
}

fn account(cn: &'static str, cpr: &'static str, guid: u128, sam: &'static str) -> Account {
    Account {
        cn,
        cpr: Some(cpr),
        guid: Some(Uuid::from_u128(guid)),
        sam,
    }
}

const SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.99999.4711.1.1 NAME 'objectGUID'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.4711.1.2 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.4711.1.3 NAME 'employeeID'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.4711.2.1 NAME 'dipexAdAccount' SUP top AUXILIARY
    MAY ( objectGUID $ sAMAccountName $ employeeID ) )
";

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

fn ldif(accounts: &[Account]) -> String {
    let mut out = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Andeby\ndc: andeby\n\n\
         dn: ou=service,{SUFFIX}\nobjectClass: organizationalUnit\nou: service\n\n\
         dn: {BIND_DN}\nobjectClass: person\ncn: dipex\nsn: dipex\nuserPassword: {PASSWORD}\n\n\
         dn: ou=users,{SUFFIX}\nobjectClass: organizationalUnit\nou: users\n\n"
    );
    for a in accounts {
        out.push_str(&format!(
            "dn: cn={},ou=users,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: dipexAdAccount\ncn: {}\nsn: {}\nsAMAccountName: {}\n",
            a.cn, a.cn, a.cn, a.sam
        ));
        if let Some(c) = a.cpr {
            out.push_str(&format!("employeeID: {c}\n"));
        }
        if let Some(g) = a.guid {
            // Windows GUID byte order, as AD stores objectGUID.
            out.push_str(&format!("objectGUID:: {}\n", b64(&g.to_bytes_le())));
        }
        out.push('\n');
    }
    out
}

/// A running slapd; stopped when dropped.
struct Slapd {
    child: Child,
    port: u16,
    tls_port: Option<u16>,
    ca_file: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn start(accounts: &[Account], tls: bool) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::create_dir(p("db")).unwrap();
        std::fs::write(p("ad.schema"), SCHEMA).unwrap();
        let mut tls_conf = String::new();
        let mut ca_file = None;
        if tls {
            let generated =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                    .unwrap();
            std::fs::write(p("cert.pem"), generated.cert.pem()).unwrap();
            std::fs::write(p("key.pem"), generated.signing_key.serialize_pem()).unwrap();
            tls_conf = format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                p("cert.pem").display(),
                p("key.pem").display()
            );
            ca_file = Some(p("cert.pem"));
        }
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include {schema}\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {pid}\n\
             {tls_conf}\
             sizelimit size.soft=2 size.hard=2 size.prtotal=unlimited\n\
             database mdb\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"cn=admin,{SUFFIX}\"\n\
             directory {db}\n",
            schema = p("ad.schema").display(),
            pid = p("slapd.pid").display(),
            db = p("db").display(),
        );
        std::fs::write(p("slapd.conf"), conf).unwrap();
        std::fs::write(p("data.ldif"), ldif(accounts)).unwrap();
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(p("slapd.conf"))
            .arg("-l")
            .arg(p("data.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::free_port();
        let tls_port = tls.then(crate::free_port);
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some(t) = tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{t}/"));
        }
        let child = Command::new(SLAPD)
            .args(["-d", "0", "-h", &urls, "-f"])
            .arg(p("slapd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("slapd.log")).unwrap())
            .spawn()
            .unwrap();
        let mut s = Slapd {
            child,
            port,
            tls_port,
            ca_file,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in std::iter::once(port).chain(tls_port) {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                if let Some(status) = s.child.try_wait().unwrap() {
                    panic!(
                        "slapd exited ({status}): {}",
                        std::fs::read_to_string(s.dir.path().join("slapd.log")).unwrap_or_default()
                    );
                }
                assert!(Instant::now() < deadline, "slapd did not start listening");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        s
    }

    /// Settings for this server: plain LDAP on loopback, the accounts under `ou=users`.
    fn settings(&self) -> AdSettings {
        settings(&format!("127.0.0.1:{}", self.port), "none")
    }
}

fn settings(server: &str, tls: &str) -> AdSettings {
    AdSettings::from_json(&serde_json::json!([{
        "servers": [server],
        "tls": tls,
        "system_user": BIND_DN,
        "password": PASSWORD,
        "search_base": format!("ou=users,{SUFFIX}"),
        "cpr_field": "employeeID",
        "cpr_separator": "-",
        "timeout_seconds": 10,
    }]))
    .unwrap()
    .unwrap()
}

fn cpr(s: &str) -> Cpr {
    Cpr::parse(s).unwrap()
}

fn found(d: &Directory, c: &str) -> Option<AdUser> {
    match d.lookup(&cpr(c)) {
        AdLookup::Found(u) => Some(u.clone()),
        _ => None,
    }
}

/// Synthetic CPRs of the OPUS fixtures (persons of employments 1000/1006, 1001 and 1002).
const P1: &str = "0101010000";
const P3: &str = "0301010000";
const P4: &str = "0401010000";
const G1: u128 = 0x0a0a_0001_0000_4000_8000_0000_0000_0001;
const G3: u128 = 0x0a0a_0003_0000_4000_8000_0000_0000_0003;

fn fixture_accounts() -> Vec<Account> {
    vec![
        account("one", "010101-0000", G1, "aoe1000"),
        account("three", "030101-0000", G3, "bbb1001"),
        // Not in the OPUS dumps.
        account("other", "111111-1111", 0x77, "other"),
    ]
}

#[test]
fn one_paged_search_reads_every_account() {
    require_slapd!();
    let mut accounts = vec![
        account("a", "010101-0000", 1, "a1"),
        account("b", "020101-0000", 2, "b1"),
        account("c", "030101-0000", 3, "c1"),
        account("c-admin", "030101-0000", 4, "adm-c1"),
        account("d", "0401010000", 5, "d1"),
        account("e", "050101-00x0", 6, "e1"),
        account("f", "060101-0000", 7, "f1"),
        account("star", "070101-0000", 8, "x*(y)"),
    ];
    accounts.push(Account {
        cn: "no-guid",
        cpr: Some("080101-0000"),
        guid: None,
        sam: "g1",
    });
    accounts.push(Account {
        cn: "no-cpr",
        cpr: None,
        guid: Some(Uuid::from_u128(9)),
        sam: "h1",
    });
    let server = Slapd::start(&accounts, false);
    // The server refuses more than 2 entries to a search without paging, like AD above 1000.
    let mut raw = ldap3::LdapConn::new(&format!("ldap://127.0.0.1:{}", server.port)).unwrap();
    raw.simple_bind(BIND_DN, PASSWORD)
        .unwrap()
        .success()
        .unwrap();
    let unpaged = raw
        .search(
            &format!("ou=users,{SUFFIX}"),
            ldap3::Scope::Subtree,
            "(employeeID=*)",
            vec!["cn"],
        )
        .unwrap();
    assert_eq!(unpaged.1.rc, 4, "sizeLimitExceeded");
    let mut s = server.settings();
    s.page_size = 1000;
    let d = read_directory(&s).unwrap();
    assert_eq!(d.stats.entries, 9, "every account with a CPR value");
    s.page_size = 2;
    let d = read_directory(&s).unwrap();
    assert_eq!(d.stats.entries, 9);
    assert!(d.stats.pages >= 5, "{:?}", d.stats);
    let a = found(&d, "0101010000").unwrap();
    assert_eq!(a.sam, "a1");
    assert_eq!(
        a.guid,
        Uuid::from_u128(1),
        "objectGUID in Windows byte order"
    );
    assert_eq!(found(&d, "0201010000").unwrap().guid, Uuid::from_u128(2));
    // Two accounts with one CPR: neither is used.
    assert_eq!(d.lookup(&cpr("0301010000")), AdLookup::Ambiguous);
    // Without the separator: ten digits all the same. Not a CPR: skipped and counted.
    assert_eq!(found(&d, "0401010000").unwrap().sam, "d1");
    assert_eq!(d.lookup(&cpr("0501010000")), AdLookup::Absent);
    assert_eq!(d.stats.bad_cpr, 1);
    assert_eq!(d.stats.incomplete, 1);
    assert_eq!(d.len(), 5);
    let w = d.warnings().join("\n");
    assert!(
        w.contains("030101-xxxx") && !w.contains("0301010000"),
        "{w}"
    );
    assert!(!w.contains("050101"), "{w}");

    // sam_filter is a value inside the filter: escaped, so `*`, `(` and `)` match literally.
    let mut s = server.settings();
    s.sam_filter = "x*(".into();
    let d = read_directory(&s).unwrap();
    assert_eq!(d.stats.entries, 1);
    assert_eq!(found(&d, "0701010000").unwrap().sam, "x*(y)");
    s.sam_filter = "ADM-".into();
    let d = read_directory(&s).unwrap();
    assert_eq!(found(&d, "0301010000").unwrap().sam, "adm-c1");
    // The configured extra filter.
    let mut s = server.settings();
    s.filter = Some("(|(cn=a)(cn=b))".into());
    assert_eq!(read_directory(&s).unwrap().stats.entries, 2);
}

#[test]
fn a_wrong_password_is_a_bind_error_without_the_password() {
    require_slapd!();
    let server = Slapd::start(&fixture_accounts(), false);
    let mut s = server.settings();
    s.password = dipex_integrations::settings::Secret("not-the-Password-0815".into());
    let e = read_directory(&s).unwrap_err();
    assert!(matches!(e, AdError::Bind { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port))
            && text.contains("bind")
            && text.contains(BIND_DN)
            && text.contains("invalidCredentials"),
        "{text}"
    );
    assert!(!text.contains("not-the-Password-0815") && !format!("{e:?}").contains("0815"));
    // A bad search base is a search error naming the base.
    let mut s = server.settings();
    s.search_base = format!("ou=nowhere,{SUFFIX}");
    let e = read_directory(&s).unwrap_err();
    assert!(matches!(e, AdError::Search { .. }), "{e:?}");
    assert!(e.to_string().contains("ou=nowhere"), "{e}");
}

#[test]
fn a_directory_that_is_down_names_every_server_tried() {
    let (a, b) = (crate::free_port(), crate::free_port());
    let mut s = settings(&format!("127.0.0.1:{a}"), "none");
    s.servers.push(format!("localhost:{b}"));
    s.timeout_seconds = 2;
    let e = read_directory(&s).unwrap_err();
    assert!(matches!(e, AdError::Connect { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("ldap://127.0.0.1:{a}"))
            && text.contains(&format!("ldap://localhost:{b}"))
            && text.contains("could not connect to any server"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn ldaps_and_starttls_verify_the_certificate_against_ca_file() {
    require_slapd!();
    let server = Slapd::start(&fixture_accounts(), true);
    let tls_port = server.tls_port.unwrap();
    let mut s = settings(&format!("127.0.0.1:{tls_port}"), "ldaps");
    s.ca_file = server.ca_file.clone();
    let d = read_directory(&s).unwrap();
    assert_eq!(found(&d, P1).unwrap().sam, "aoe1000");
    let mut s = settings(&format!("127.0.0.1:{}", server.port), "starttls");
    s.ca_file = server.ca_file.clone();
    assert_eq!(read_directory(&s).unwrap().len(), 3);
    // Without the test CA the certificate is not trusted: nothing is sent, not even the bind.
    for (port, tls) in [(tls_port, "ldaps"), (server.port, "starttls")] {
        let s = settings(&format!("127.0.0.1:{port}"), tls);
        let e = read_directory(&s).unwrap_err();
        assert!(matches!(e, AdError::Connect { .. }), "{tls}: {e:?}");
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    }
    // A CA file that holds no certificate.
    let mut s = settings(&format!("127.0.0.1:{tls_port}"), "ldaps");
    let empty = server.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    s.ca_file = Some(empty);
    assert!(matches!(
        read_directory(&s).unwrap_err(),
        AdError::CaFile { .. }
    ));
}

fn person(w: &World, c: &str) -> Object {
    let mut v = w
        .store
        .read(&Query::all(Kind::Person).cpr_numbers([cpr(c)]))
        .unwrap();
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

/// The person's IT users in `system`: (user_key, validity.to of the last slice).
fn it_users(w: &World, person: Uuid, system: &str) -> Vec<(String, Option<jiff::civil::Date>)> {
    let systems: Vec<Uuid> = w
        .all(Kind::ItSystem)
        .iter()
        .filter(|o| o.last().value.user_key() == system)
        .map(|o| o.uuid)
        .collect();
    let mut out: Vec<_> = w
        .store
        .read(&Query::all(Kind::ItUser).persons([person]))
        .unwrap()
        .into_iter()
        .filter_map(|o| match &o.last().value {
            Value::ItUser(i) if systems.contains(&i.itsystem) => {
                Some((i.user_key.clone(), o.last().validity.to))
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn opus_import_takes_uuid_and_account_name_from_ad_and_the_cpr_map_wins() {
    require_slapd!();
    let server = Slapd::start(&fixture_accounts(), false);
    let mut w = World::new(&[DAY1]);
    let mapped = Uuid::from_u128(0x3333);
    w.cpr_map.insert(cpr(P3), mapped);
    w.ad = Some(read_directory(&server.settings()).unwrap());
    // A dry run shows the AD IT users and writes nothing.
    let r = w.run(Mode::All, true).unwrap();
    let plan = r.dumps[0].plan.as_ref().unwrap();
    let lines: Vec<String> = plan.ops.iter().map(|o| o.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("it_user") && l.contains("user_key=\"aoe1000\"")),
        "{lines:#?}"
    );
    assert!(w.all(Kind::Person).is_empty());
    let r = w.import();
    assert_eq!(r.rejected(), 0);

    // New person in AD: the objectGUID is the uuid, the account name an IT user.
    let p1 = person(&w, P1);
    assert_eq!(p1.uuid, Uuid::from_u128(G1));
    assert_eq!(
        it_users(&w, p1.uuid, IT_SYSTEM),
        [("aoe1000".to_string(), None)]
    );
    // In the cpr map and in AD: the map's uuid, AD's account name.
    let p3 = person(&w, P3);
    assert_eq!(p3.uuid, mapped);
    assert_eq!(
        it_users(&w, p3.uuid, IT_SYSTEM),
        [("bbb1001".to_string(), None)]
    );
    // Not in AD: a random uuid and no AD IT user.
    let p4 = person(&w, P4);
    assert_ne!(p4.uuid, Uuid::from_u128(G1));
    assert!(it_users(&w, p4.uuid, IT_SYSTEM).is_empty());
    // The Opus IT system is separate.
    assert_eq!(
        it_users(&w, p1.uuid, "Opus"),
        [("AOE1000".to_string(), None)]
    );
    assert_eq!(
        w.all(Kind::ItSystem)
            .iter()
            .filter(|o| o.last().value.user_key() == IT_SYSTEM)
            .count(),
        1
    );

    // Later: person 1's account is renamed, person 3 left AD, person 4 got an account. The
    // persons are recomputed when OPUS changes them (here: a re-import of their employments).
    w.add(
        DAY2,
        &std::fs::read_to_string(fixtures().join("ok").join(DAY2)).unwrap(),
    );
    w.ad = Some(Directory::from_users([
        (
            cpr(P1),
            AdUser {
                guid: Uuid::from_u128(G1),
                sam: "aoe-renamed".into(),
            },
        ),
        (
            cpr(P4),
            AdUser {
                guid: Uuid::from_u128(0x4444),
                sam: "ddd1002".into(),
            },
        ),
    ]));
    reimport(&mut w, &["1000", "1001", "1002"]);
    let day2_date = jiff::civil::date(2020, 1, 2);
    let renamed = it_users(&w, p1.uuid, IT_SYSTEM);
    assert_eq!(
        renamed,
        [("aoe-renamed".to_string(), None)],
        "edited, not a second one"
    );
    let ended = it_users(&w, p3.uuid, IT_SYSTEM);
    assert_eq!(ended.len(), 1);
    assert!(
        ended[0]
            .1
            .is_some_and(|to| to <= day2_date.tomorrow().unwrap()),
        "{ended:?}"
    );
    // An existing person keeps its uuid; the account name is added.
    assert_eq!(person(&w, P4).uuid, p4.uuid);
    assert_eq!(
        it_users(&w, p4.uuid, IT_SYSTEM),
        [("ddd1002".to_string(), None)]
    );

    // Two accounts carry person 1's CPR: neither is used, and the IT user is left as it is.
    let entry = |guid: u8, sam: &str| RawEntry {
        cpr: Some("010101-0000".into()),
        guid: Some(vec![guid; 16]),
        sam: Some(sam.into()),
    };
    w.ad = Some(Directory::from_entries(
        [entry(1, "aoe-one"), entry(2, "aoe-two")],
        "-",
    ));
    reimport(&mut w, &["1000"]);
    assert_eq!(
        it_users(&w, p1.uuid, IT_SYSTEM),
        [("aoe-renamed".to_string(), None)]
    );
}

/// Replay the given employments through the newest dump (a person is recomputed when OPUS
/// changes it; a re-import forces that).
fn reimport(w: &mut World, ids: &[&str]) {
    let dumps = w.list();
    let newest = vec![dumps.last().unwrap().clone()];
    for id in ids {
        let job = run::Job {
            cfg: &w.cfg,
            register: &w.register,
            cpr_map: &w.cpr_map,
            ad: w.ad.as_ref(),
            dry_run: false,
            only: None,
        };
        run::reimport(
            &mut w.store,
            &job,
            &mut w.env,
            &newest,
            id,
            newest[0].timestamp,
            &mut |_| {},
        )
        .unwrap();
    }
}

#[test]
fn an_ad_guid_that_mo_already_uses_is_not_taken() {
    // A person without a CPR number (made by another tool) already has the uuid of person 1's
    // AD account; the dump does not mention it.
    let mut w = World::new(&[DAY1]);
    let other = Value::Person(dipex_model::Person {
        user_key: "made elsewhere".into(),
        given_name: "Anden".into(),
        surname: "Person".into(),
        nickname_given_name: None,
        nickname_surname: None,
        cpr_number: None,
        seniority: None,
    });
    let plan = dipex_model::Plan {
        ops: vec![dipex_model::plan::Op::Create {
            uuid: Uuid::from_u128(G1),
            validity: dipex_model::Validity::new(None, None),
            value: other,
        }],
    };
    let reg = dipex_backend::Registration {
        at: jiff::Timestamp::UNIX_EPOCH,
        actor: "test".into(),
        note: "test".into(),
    };
    w.store.apply(plan, &reg).unwrap();
    w.ad = Some(Directory::from_users([(
        cpr(P1),
        AdUser {
            guid: Uuid::from_u128(G1),
            sam: "aoe1000".into(),
        },
    )]));
    let r = w.import();
    let warnings: Vec<String> = r.dumps[0]
        .warnings
        .iter()
        .map(|n| n.reason.clone())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|t| t.contains("aoe1000") && t.contains("random uuid")),
        "{warnings:#?}"
    );
    let p1 = person(&w, P1);
    assert_ne!(p1.uuid, Uuid::from_u128(G1));
    let kept = w
        .store
        .read(&Query::all(Kind::Person).uuids([Uuid::from_u128(G1)]))
        .unwrap();
    assert_eq!(kept[0].last().value.user_key(), "made elsewhere");
    assert_eq!(
        it_users(&w, p1.uuid, IT_SYSTEM),
        [("aoe1000".to_string(), None)]
    );
}
