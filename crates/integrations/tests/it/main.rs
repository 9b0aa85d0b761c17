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
mod sftp;
mod smb;
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
