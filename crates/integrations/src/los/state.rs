//! The LOS state file (`integrations.aarhus_los.state_file`): the start time of the last
//! successful run, in UTC (DESIGN.md ruling 9). The old importer's naive local format
//! (`2023-03-07T11:57:32.123456`, Europe/Copenhagen) and a bare date are read too. The file is
//! written only after a run succeeded, whole (a temporary file renamed into place).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {reason}")]
    File { path: String, reason: String },
}

/// The last successful run's start; `None` when there is no state file yet (everything is new).
pub fn read(path: &Path) -> Result<Option<jiff::Timestamp>, StateError> {
    let err = |reason: String| StateError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    parse(text.trim())
        .map(Some)
        .ok_or_else(|| err(format!("{:?} is not a timestamp", text.trim())))
}

/// A timestamp with an offset, else a naive local datetime or date (Europe/Copenhagen).
pub fn parse(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let local =
        |dt: jiff::civil::DateTime| dt.in_tz("Europe/Copenhagen").ok().map(|z| z.timestamp());
    if let Ok(dt) = text.replacen(' ', "T", 1).parse::<jiff::civil::DateTime>() {
        // Python's datetime.min: "nothing imported yet".
        if dt.year() <= 1 {
            return Some(jiff::Timestamp::MIN);
        }
        return local(dt);
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return local(d.at(0, 0, 0, 0));
    }
    None
}

/// Record a successful run that started at `started`.
pub fn write(path: &Path, started: jiff::Timestamp) -> Result<(), StateError> {
    let err = |reason: String| StateError::File {
        path: path.display().to_string(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, started.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_formats() {
        assert_eq!(
            parse("2024-03-01T10:00:00Z").unwrap().to_string(),
            "2024-03-01T10:00:00Z"
        );
        // Naive local (winter, +01:00) and with microseconds, as Python wrote it.
        assert_eq!(
            parse("2023-03-07T11:57:32.123456").unwrap().to_string(),
            "2023-03-07T10:57:32.123456Z"
        );
        assert_eq!(
            parse("2023-07-01 12:00:00").unwrap().to_string(),
            "2023-07-01T10:00:00Z"
        );
        assert_eq!(
            parse("2023-07-01").unwrap().to_string(),
            "2023-06-30T22:00:00Z"
        );
        assert_eq!(parse("0001-01-01T00:00:00"), Some(jiff::Timestamp::MIN));
        assert!(parse("yesterday").is_none());
    }

    #[test]
    fn missing_means_never_and_writes_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state");
        assert_eq!(read(&p).unwrap(), None);
        let t: jiff::Timestamp = "2024-05-01T03:00:00Z".parse().unwrap();
        write(&p, t).unwrap();
        assert_eq!(read(&p).unwrap(), Some(t));
        std::fs::write(&p, "garbage").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("garbage"));
    }
}
