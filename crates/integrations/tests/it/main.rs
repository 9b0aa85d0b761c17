//! End-to-end tests of dipex's integrations: real files, the real embedded store (SQLite), the
//! real state database, address registers on real files or loopback servers, the FTP/FTPS
//! transport against in-process servers, the SFTP transport against OpenSSH on loopback, the SMB
//! transport against Samba on loopback, and the GCS transport against a loopback GCS JSON API.

mod ad;
mod dar;
mod gcs;
mod history;
mod los;
mod los_import;
mod opus;
mod oracle;
mod os2mo;
mod os2mo_peer_write;
mod os2sync;
mod plan2learn;
mod pureftpd;
mod sftp;
mod smb;
mod synth;
mod transport;
mod vsftpd;

/// A stand-in for a CPR number in test labels and messages (`P` and eight hex digits of an
/// FNV-1a hash): test output names persons without showing their CPR, even a synthetic one.
fn pseudonym(cpr: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in cpr.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("P{h:08x}")
}

/// A synthetic CPR number born up to five years before `cpr` (`r` random): OS2mo starts a
/// person at the birth date in the CPR number, and the person's employments must still fall
/// within its life.
fn earlier_cpr(cpr: &str, r: u128) -> String {
    let digit = |i: usize| i16::from(cpr.as_bytes()[i] - b'0');
    let two = |i: usize| digit(i) * 10 + digit(i + 1);
    let (dd, mm, yy, d7) = (two(0), two(2), two(4), digit(6));
    // The century from the seventh digit (the CPR office's table).
    let century = |d7: i16, yy: i16| match d7 {
        0..=3 => 1900,
        4 | 9 if yy <= 36 => 2000,
        4 | 9 => 1900,
        _ if yy <= 57 => 2000,
        _ => 1800,
    };
    let born = jiff::civil::date(century(d7, yy) + yy, mm as i8, dd as i8);
    let day = born
        .checked_sub(jiff::Span::new().days((r % 1826) as i64))
        .unwrap();
    let yy = day.year() % 100;
    let d7s: Vec<i16> = (0..10)
        .filter(|d| century(*d, yy) + yy == day.year())
        .collect();
    format!(
        "{:02}{:02}{:02}{}{:03}",
        day.day(),
        day.month(),
        yy,
        d7s[((r >> 16) % d7s.len() as u128) as usize],
        (r >> 32) % 1000
    )
}

/// Held by the tests that import into the shared real OS2mo (`OS2MO_URL`): they share its
/// facets and classes, and a LOS import ends classes an OPUS import reads at its start.
static SHARED_OS2MO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lock on the shared real OS2mo (a test that failed while holding it does not poison it).
fn shared_os2mo() -> std::sync::MutexGuard<'static, ()> {
    SHARED_OS2MO
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fixed clock (2026-01-01 12:00; registrations at the Unix epoch) and numbered uuids for new
/// persons, `base + 1`, `base + 2`, …: a run's `Env` for tests that compare histories.
struct FixedEnv {
    base: u128,
    n: u128,
}

impl FixedEnv {
    fn new(base: u128) -> FixedEnv {
        FixedEnv { base, n: 0 }
    }
}

impl dipex_integrations::common::env::Env for FixedEnv {
    fn now(&self) -> jiff::civil::DateTime {
        jiff::civil::date(2026, 1, 1).at(12, 0, 0, 0)
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH
    }
    fn new_uuid(&mut self) -> uuid::Uuid {
        self.n += 1;
        uuid::Uuid::from_u128(self.base + self.n)
    }
}

/// A loopback port nobody listens on right now, for the daemons the tests start.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
