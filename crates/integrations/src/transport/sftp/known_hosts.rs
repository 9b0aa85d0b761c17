//! An OpenSSH `known_hosts` file, read once, and the check of a server's host key against it.
//!
//! Supported, as `ssh` reads them (see `sshd(8)`, "SSH_KNOWN_HOSTS FILE FORMAT"):
//!
//! * lines `hostpatterns keytype base64-key [comment]`; blank lines and `#` comments;
//! * host patterns: comma-separated names or addresses, `[host]:port` for a port other than 22,
//!   the wildcards `*` and `?`, negation with `!`, and hashed names (`|1|salt|hash`, as written by
//!   `ssh-keygen -H` or `HashKnownHosts yes`); names are compared without regard to ASCII case;
//! * the `@revoked` marker: a listed key is refused for the hosts it names.
//!
//! `@cert-authority` lines are skipped: host certificates are not accepted. Lines whose key type
//! this client does not know (e.g. `sk-ssh-ed25519@openssh.com`) or that cannot be read are
//! skipped too, with a debug message. Only the name as configured is looked up (as with `ssh`'s
//! default `CheckHostIP no`), not the address it resolves to.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::{Algorithm, PublicKey};

/// The parsed file.
#[derive(Debug, Clone)]
pub(super) struct KnownHosts {
    pub(super) path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// 1-based line number in the file.
    line: usize,
    revoked: bool,
    patterns: Vec<Pattern>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum Pattern {
    /// A name, address or wildcard pattern, lower-cased; `negated` for `!pattern`.
    Plain { glob: String, negated: bool },
    /// `|1|salt|hash`: HMAC-SHA1 of the name with the salt as key.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// The outcome of looking a server's key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A line for this host holds this key.
    Known,
    /// No line for this host holds a key of this type; `other_types` are the key types the file
    /// does hold for the host.
    Unknown { other_types: Vec<String> },
    /// A line for this host holds a different key of the same type.
    Changed { line: usize },
    /// An `@revoked` line lists this key.
    Revoked { line: usize },
}

impl KnownHosts {
    /// Read and parse the file.
    pub(super) fn read(path: &Path) -> std::io::Result<KnownHosts> {
        let text = std::fs::read_to_string(path)?;
        Ok(KnownHosts::parse(path, &text))
    }

    pub(super) fn parse(path: &Path, text: &str) -> KnownHosts {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let parsed = parse_line(i + 1, line);
                if let Err(why) = &parsed {
                    tracing::debug!(file = %path.display(), line = i + 1, why, "known_hosts line skipped");
                }
                parsed.ok().flatten()
            })
            .collect();
        KnownHosts {
            path: path.to_owned(),
            entries,
        }
    }

    /// Look up `key` for `host` on `port`.
    pub(super) fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = lookup_name(host, port);
        let mut changed = None;
        let mut other_types = Vec::new();
        for entry in self.entries.iter().filter(|e| e.matches(&name)) {
            // Compare the key data only: `PublicKey ==` also compares the comment.
            let same = entry.key.key_data() == key.key_data();
            if entry.revoked {
                if same {
                    return Verdict::Revoked { line: entry.line };
                }
            } else if same {
                return Verdict::Known;
            } else if same_type(&entry.key.algorithm(), &key.algorithm()) {
                changed.get_or_insert(entry.line);
            } else {
                let name = entry.key.algorithm().as_str().to_owned();
                if !other_types.contains(&name) {
                    other_types.push(name);
                }
            }
        }
        match changed {
            Some(line) => Verdict::Changed { line },
            None => Verdict::Unknown { other_types },
        }
    }

    /// The key algorithms the file holds for `host` on `port`, so the client can ask the server
    /// for a key it can check (as `ssh` does).
    pub(super) fn algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(host, port);
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| !e.revoked && e.matches(&name))
        {
            let algorithm = entry.key.algorithm();
            if !algorithms.iter().any(|a| same_type(a, &algorithm)) {
                algorithms.push(algorithm);
            }
        }
        algorithms
    }
}

/// RSA keys sign with SHA-1, SHA-256 or SHA-512 (`ssh-rsa`, `rsa-sha2-*`); all are one key type.
pub(super) fn same_type(a: &Algorithm, b: &Algorithm) -> bool {
    let rsa = |x: &Algorithm| matches!(x, Algorithm::Rsa { .. });
    (rsa(a) && rsa(b)) || a == b
}

/// `host` for port 22, `[host]:port` otherwise, lower-cased, as `ssh` looks it up.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    name.to_ascii_lowercase()
}

impl Entry {
    fn matches(&self, name: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            match pattern {
                Pattern::Plain { glob, negated } => {
                    if wildcard_match(glob.as_bytes(), name.as_bytes()) {
                        if *negated {
                            return false;
                        }
                        matched = true;
                    }
                }
                Pattern::Hashed { salt, hash } => {
                    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                    if ring::hmac::verify(&key, name.as_bytes(), hash).is_ok() {
                        matched = true;
                    }
                }
            }
        }
        matched
    }
}

/// One line: `Ok(None)` for blank, comment and `@cert-authority` lines.
fn parse_line(line: usize, text: &str) -> Result<Option<Entry>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut fields = text.split_ascii_whitespace();
    let mut first = fields.next().unwrap_or_default();
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            "cert-authority" => return Ok(None),
            other => return Err(format!("unknown marker @{other}")),
        }
        first = fields.next().ok_or("no host patterns")?;
    }
    let patterns = first
        .split(',')
        .filter(|p| !p.is_empty())
        .map(parse_pattern)
        .collect::<Result<Vec<_>, _>>()?;
    let key_type = fields.next().ok_or("no key type")?;
    let base64 = fields.next().ok_or("no key")?;
    let key = PublicKey::from_openssh(&format!("{key_type} {base64}"))
        .map_err(|e| format!("key of type {key_type} not readable: {e}"))?;
    Ok(Some(Entry {
        line,
        revoked,
        patterns,
        key,
    }))
}

fn parse_pattern(pattern: &str) -> Result<Pattern, String> {
    if let Some(rest) = pattern.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("hashed host without a hash")?;
        let decode = |s: &str| {
            data_encoding::BASE64
                .decode(s.as_bytes())
                .map_err(|e| format!("hashed host: {e}"))
        };
        return Ok(Pattern::Hashed {
            salt: decode(salt)?,
            hash: decode(hash)?,
        });
    }
    let (glob, negated) = match pattern.strip_prefix('!') {
        Some(rest) => (rest, true),
        None => (pattern, false),
    };
    Ok(Pattern::Plain {
        glob: glob.to_ascii_lowercase(),
        negated,
    })
}

/// `*` matches any run of bytes, `?` exactly one byte.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two ed25519 keys and an RSA key, generated by `ssh-keygen` for these tests only.
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICBXpfBK/y/NiwswhvWj7st33HV6haIp1Bup3ddi3Laa";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdpOmCkhJ3lTlMIRS00TP0Bq0pbGjNpmiZRNbR6wjwZ";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    fn file(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("known_hosts"), text)
    }

    #[test]
    fn wildcards_match_like_ssh() {
        assert!(wildcard_match(b"*.example.dk", b"sftp.example.dk"));
        assert!(wildcard_match(b"10.0.0.?", b"10.0.0.7"));
        assert!(!wildcard_match(b"10.0.0.?", b"10.0.0.17"));
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"a*b*c", b"axxbyyc"));
        assert!(!wildcard_match(b"a*b*c", b"axxbyy"));
        assert!(wildcard_match(b"[sftp]:*", b"[sftp]:2222"));
    }

    #[test]
    fn plain_and_port_entries() {
        let hosts = file(&format!(
            "# comment\n\nsftp.example.dk,10.0.0.1 {ED_A} old key\n[sftp.example.dk]:2222 {ED_B}\n"
        ));
        assert_eq!(
            hosts.check("SFTP.example.dk", 22, &key(ED_A)),
            Verdict::Known
        );
        assert_eq!(hosts.check("10.0.0.1", 22, &key(ED_A)), Verdict::Known);
        assert_eq!(
            hosts.check("sftp.example.dk", 2222, &key(ED_B)),
            Verdict::Known
        );
        assert_eq!(
            hosts.check("sftp.example.dk", 2222, &key(ED_A)),
            Verdict::Changed { line: 4 }
        );
        assert_eq!(
            hosts.check("other.example.dk", 22, &key(ED_A)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn hashed_entries_match_the_name() {
        // As `ssh-keygen -H` writes "[127.0.0.1]:2222 <ED_A>", with a fixed salt.
        let salt = [7u8; 20];
        let sign_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let hash = ring::hmac::sign(&sign_key, b"[127.0.0.1]:2222");
        let b64 = |b: &[u8]| data_encoding::BASE64.encode(b);
        let line = format!("|1|{}|{} {ED_A}\n", b64(&salt), b64(hash.as_ref()));
        let hosts = file(&line);
        assert_eq!(hosts.check("127.0.0.1", 2222, &key(ED_A)), Verdict::Known);
        assert_eq!(
            hosts.check("127.0.0.1", 2222, &key(ED_B)),
            Verdict::Changed { line: 1 }
        );
        assert!(matches!(
            hosts.check("127.0.0.1", 22, &key(ED_A)),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn negation_revocation_and_markers() {
        let hosts = file(&format!(
            "*.example.dk,!bad.example.dk {ED_A}\n@revoked * {ED_B}\n@cert-authority * {ED_B}\n\
             garbage line\nhost ssh-unknown AAAA\n"
        ));
        assert_eq!(
            hosts.check("good.example.dk", 22, &key(ED_A)),
            Verdict::Known
        );
        assert!(matches!(
            hosts.check("bad.example.dk", 22, &key(ED_A)),
            Verdict::Unknown { .. }
        ));
        assert_eq!(
            hosts.check("good.example.dk", 22, &key(ED_B)),
            Verdict::Revoked { line: 2 }
        );
    }

    #[test]
    fn other_key_types_are_reported_and_preferred() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCf5F7F9JsMedeaLA4nvZ2Cl3NfkRJRPVfW7M0rCESQVjTFm57vtPeArGE/AJ31pMsHgDcwnSqZDIXNuMhzdxiS6m+TEGnsI8RJ9Pv8/4xf0EU11GgzhuNI4eq+X3z6Jd3XfNCf771hUCdYwMQ9fjPZxtNnt+/82c0/oUT3PcNZ9Q==";
        let hosts = file(&format!("h {rsa}\n"));
        assert_eq!(
            hosts.check("h", 22, &key(ED_A)),
            Verdict::Unknown {
                other_types: vec!["ssh-rsa".to_owned()]
            }
        );
        let algorithms = hosts.algorithms("h", 22);
        assert_eq!(algorithms.len(), 1);
        assert!(matches!(algorithms[0], Algorithm::Rsa { .. }));
        assert!(hosts.algorithms("other", 22).is_empty());
    }
}
