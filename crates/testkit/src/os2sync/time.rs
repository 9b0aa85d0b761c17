//! ISO 8601 timestamps for `Timestamp` and `Created`, written the way Newtonsoft writes a .NET
//! `DateTime` (seven fractional digits and an offset), here always in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, e.g. `2026-11-22T10:15:30.1234567+00:00`.
pub(crate) fn now_iso() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_unix(d.as_secs(), d.subsec_nanos())
}

/// Format seconds and nanoseconds since 1970 (UTC).
pub(crate) fn format_unix(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        nanos / 100
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (the well-known era algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix(0, 0), "1970-01-01T00:00:00.0000000+00:00");
        assert_eq!(
            format_unix(951_782_400 + 3_661, 123_456_789),
            "2000-02-29T01:01:01.1234567+00:00"
        );
        assert_eq!(
            format_unix(1_798_675_200, 0),
            "2026-12-31T00:00:00.0000000+00:00"
        );
    }
}
