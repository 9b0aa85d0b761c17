//! The hash cache (`os2sync.hash_cache`): for every unit and user dipex has sent, the digest of
//! what was sent (`/orgUnit/<uuid>`, `/user/<uuid>` → digest), so a run only sends what changed.
//! An entry is recorded only after OS2Sync accepted the request; the file is written whole (a
//! temporary file renamed into place) at the end of a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("hash cache {path}: {reason}")]
    File { path: String, reason: String },
}

pub struct HashCache {
    path: PathBuf,
    entries: BTreeMap<String, String>,
    changed: bool,
}

impl HashCache {
    /// Load the cache; a missing file is an empty cache.
    pub fn load(path: &Path) -> Result<HashCache, CacheError> {
        let err = |reason: String| CacheError::File {
            path: path.display().to_string(),
            reason,
        };
        let entries = match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => BTreeMap::new(),
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                err(format!(
                    "not a JSON object of digests ({e}); delete it to send everything again"
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(HashCache {
            path: path.to_path_buf(),
            entries,
            changed: false,
        })
    }

    /// Was exactly this sent last time?
    pub fn is_current(&self, key: &str, digest: &str) -> bool {
        self.entries.get(key).is_some_and(|d| d == digest)
    }

    /// Record a request OS2Sync accepted.
    pub fn record(&mut self, key: String, digest: String) {
        if self.entries.get(&key) != Some(&digest) {
            self.entries.insert(key, digest);
            self.changed = true;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the file when anything changed.
    pub fn save(&mut self) -> Result<(), CacheError> {
        if !self.changed {
            return Ok(());
        }
        let err = |reason: String| CacheError::File {
            path: self.path.display().to_string(),
            reason,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.entries).expect("serialises");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| err(e.to_string()))?;
        self.changed = false;
        Ok(())
    }
}
