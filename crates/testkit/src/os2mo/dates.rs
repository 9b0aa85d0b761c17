//! Dates as MO sees them: input parsing (calendar date as written, time and offset ignored),
//! Copenhagen-midnight output, the CPR birth-date rule, and the −∞/+∞ sentinels of the timelines.

use std::sync::OnceLock;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// −∞ as a day boundary (`from: null`).
pub(crate) const NEG_INF: Date = Date::MIN;
/// +∞ as a day boundary (`to: null`).
pub(crate) const POS_INF: Date = Date::MAX;

fn copenhagen() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| {
        TimeZone::get("Europe/Copenhagen").expect("bundled tzdb has Europe/Copenhagen")
    })
}

/// Today's calendar date in Copenhagen.
pub(crate) fn today_copenhagen() -> Date {
    jiff::Timestamp::now().to_zoned(copenhagen().clone()).date()
}

/// The UTC offset of Copenhagen at local midnight of `d`, as `+01:00` (or `+00:50:20` before 1894).
fn offset_text(d: Date) -> String {
    let secs = match d.to_zoned(copenhagen().clone()) {
        Ok(z) => z.offset().seconds(),
        Err(_) => 3600,
    };
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// `YYYY-MM-DDT00:00:00+01:00`, the way MO prints a validity boundary.
pub(crate) fn format_boundary(d: Date) -> String {
    format!("{}T00:00:00{}", d, offset_text(d))
}

/// A registration time the way MO prints it: Copenhagen wall time with microseconds and offset
/// (`2026-12-02T20:03:43.227262+01:00`).
pub(crate) fn format_timestamp(t: jiff::Timestamp) -> String {
    t.to_zoned(copenhagen().clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        .to_string()
}

/// `YYYY-MM-DD 00:00:00+01:00`, Python's `str(datetime)`, used in pydantic messages.
pub(crate) fn format_python(d: Date) -> String {
    format!("{} 00:00:00{}", d, offset_text(d))
}

/// A validity `from` for output: `null` for −∞.
pub(crate) fn out_from(d: Date) -> serde_json::Value {
    if d == NEG_INF {
        serde_json::Value::Null
    } else {
        format_boundary(d).into()
    }
}

/// A validity `to` for output: `null` for +∞.
pub(crate) fn out_to(d: Date) -> serde_json::Value {
    if d == POS_INF {
        serde_json::Value::Null
    } else {
        format_boundary(d).into()
    }
}

/// A parsed `DateTime` input: the calendar date as written and whether the time was midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InputDate {
    pub date: Date,
    pub midnight: bool,
}

/// Parse an ISO 8601 date or date-time the way MO's write handlers use it: the calendar date
/// as written is kept, the time and offset are only checked for shape (and for midnight).
pub(crate) fn parse_datetime(s: &str) -> Result<InputDate, String> {
    let bad = || format!("Invalid isoformat string: '{s}'");
    if s.len() < 10 || !s.is_char_boundary(10) {
        return Err(bad());
    }
    let date: Date = s[..10].parse().map_err(|_| bad())?;
    if s.as_bytes()[4] != b'-' {
        return Err(bad());
    }
    let rest = &s[10..];
    if rest.is_empty() {
        return Ok(InputDate {
            date,
            midnight: true,
        });
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    // Split off an offset: `Z`, or `+HH:MM[:SS]` / `-HH:MM` after the time.
    let (time_text, offset) =
        if let Some(t) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
            (t, Some(""))
        } else if let Some(pos) = rest.rfind(['+', '-']) {
            (&rest[..pos], Some(&rest[pos + 1..]))
        } else {
            (rest, None)
        };
    if let Some(off) = offset
        && !off.is_empty()
    {
        let ok = off
            .split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
            || (off.len() == 4 && off.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(bad());
        }
    }
    let time: Time = if time_text.len() == 2 && time_text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{time_text}:00").parse().map_err(|_| bad())?
    } else {
        time_text.parse().map_err(|_| bad())?
    };
    Ok(InputDate {
        date,
        midnight: time == Time::midnight(),
    })
}

/// Parse a `Date` scalar (`YYYY-MM-DD`).
pub(crate) fn parse_date(s: &str) -> Result<Date, String> {
    if s.len() != 10 {
        return Err(format!("Invalid isoformat string: '{s}'"));
    }
    s.parse()
        .map_err(|_| format!("Invalid isoformat string: '{s}'"))
}

/// Check a CPR number and return the birth date it encodes (Danish century rule from digit 7,
/// no modulus-11 check). The error texts are those of MO's `CPR` scalar.
pub(crate) fn cpr_birth_date(cpr: &str) -> Result<Date, &'static str> {
    if cpr.chars().count() != 10 {
        return Err("Invalid length");
    }
    let b = cpr.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return Err("Birthdate not ok");
    }
    let num = |i: usize| i16::from(b[i] - b'0') * 10 + i16::from(b[i + 1] - b'0');
    let (day, month, yy) = (num(0), num(2), num(4));
    let century = match b[6] - b'0' {
        0..=3 => 1900,
        4 | 9 => {
            if yy <= 36 {
                2000
            } else {
                1900
            }
        }
        _ => {
            if yy <= 57 {
                2000
            } else {
                1800
            }
        }
    };
    Date::new(century + yy, month as i8, day as i8).map_err(|_| "Birthdate not ok")
}

/// The day after `d` (saturating at +∞).
pub(crate) fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(POS_INF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn input_dates_keep_the_calendar_date() {
        for s in [
            "2024-03-01",
            "2024-03-01T00:00:00+01:00",
            "2024-03-01T00:00:00Z",
            "2024-03-01T12:00:00",
        ] {
            assert_eq!(parse_datetime(s).unwrap().date, date(2024, 3, 1), "{s}");
        }
        assert_eq!(
            parse_datetime("2024-02-29T23:30:00Z").unwrap().date,
            date(2024, 2, 29)
        );
        assert!(
            !parse_datetime("2026-01-01T12:00:00+01:00")
                .unwrap()
                .midnight
        );
        assert!(
            parse_datetime("2026-01-01T00:00:00.000+01:00")
                .unwrap()
                .midnight
        );
        assert!(parse_datetime("2026-13-01").is_err());
        assert!(parse_datetime("tomorrow").is_err());
        assert!(parse_datetime("2026-01-01Tnoon").is_err());
    }

    #[test]
    fn output_uses_the_copenhagen_offset_of_the_day() {
        assert_eq!(
            format_boundary(date(2024, 1, 1)),
            "2024-01-01T00:00:00+01:00"
        );
        assert_eq!(
            format_boundary(date(2024, 7, 1)),
            "2024-07-01T00:00:00+02:00"
        );
        assert_eq!(
            format_boundary(date(1850, 1, 1)),
            "1850-01-01T00:00:00+00:50:20"
        );
    }

    #[test]
    fn cpr_rule() {
        assert_eq!(cpr_birth_date("0101700000"), Ok(date(1970, 1, 1)));
        assert_eq!(cpr_birth_date("0101104000"), Ok(date(2010, 1, 1)));
        assert_eq!(cpr_birth_date("0101504000"), Ok(date(1950, 1, 1)));
        assert_eq!(cpr_birth_date("0101105000"), Ok(date(2010, 1, 1)));
        assert_eq!(cpr_birth_date("0101605000"), Ok(date(1860, 1, 1)));
        assert_eq!(cpr_birth_date("3213700000"), Err("Birthdate not ok"));
        assert_eq!(cpr_birth_date("010170000"), Err("Invalid length"));
        assert_eq!(cpr_birth_date("3002700000"), Err("Birthdate not ok"));
    }
}
