//! Validity: half-open intervals of calendar days `[from, to)`. `from = None` is minus
//! infinity, `to = None` is "forever", as in OS2mo GraphQL v29+. Inclusive end dates (what users
//! and CSV files speak) are converted only at the edges with [`Validity::from_inclusive`] and
//! [`Validity::last_day`].

use serde::{Deserialize, Serialize};
use std::fmt;

pub use jiff::civil::Date;

/// A half-open day interval `[from, to)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Validity {
    pub from: Option<Date>,
    pub to: Option<Date>,
}

/// The internal key of a lower bound (`None` sorts first).
pub(crate) fn lo(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MIN)
}

/// The internal key of an upper bound (`None` sorts last).
pub(crate) fn hi(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MAX)
}

pub(crate) fn lo_opt(d: Date) -> Option<Date> {
    (d != Date::MIN).then_some(d)
}

pub(crate) fn hi_opt(d: Date) -> Option<Date> {
    (d != Date::MAX).then_some(d)
}

impl Validity {
    pub const ALWAYS: Validity = Validity {
        from: None,
        to: None,
    };

    pub fn new(from: Option<Date>, to: Option<Date>) -> Validity {
        Validity { from, to }
    }

    /// `[from, forever)`.
    pub fn from_day(from: Date) -> Validity {
        Validity {
            from: Some(from),
            to: None,
        }
    }

    /// From a first and a last valid day (inclusive), as OPUS and CSV files give them.
    /// A last day of 9999-12-31 means "forever".
    pub fn from_inclusive(first: Option<Date>, last: Option<Date>) -> Validity {
        let to = last.and_then(|d| {
            if d >= Date::MAX {
                None
            } else {
                d.tomorrow().ok()
            }
        });
        Validity { from: first, to }
    }

    /// The last valid day (inclusive), `None` when open-ended.
    pub fn last_day(&self) -> Option<Date> {
        self.to.and_then(|d| d.yesterday().ok())
    }

    /// Empty when `to <= from`.
    pub fn is_empty(&self) -> bool {
        hi(self.to) <= lo(self.from)
    }

    pub fn contains(&self, day: Date) -> bool {
        lo(self.from) <= day && day < hi(self.to)
    }

    pub fn overlaps(&self, other: &Validity) -> bool {
        lo(self.from) < hi(other.to) && lo(other.from) < hi(self.to)
    }

    /// The intersection, `None` when empty.
    pub fn intersect(&self, other: &Validity) -> Option<Validity> {
        let from = lo(self.from).max(lo(other.from));
        let to = hi(self.to).min(hi(other.to));
        (from < to).then(|| Validity {
            from: lo_opt(from),
            to: hi_opt(to),
        })
    }
}

impl fmt::Debug for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(d) => write!(f, "[{d}, ")?,
            None => write!(f, "[-inf, ")?,
        }
        match self.to {
            Some(d) => write!(f, "{d})"),
            None => write!(f, "inf)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn inclusive_edges_convert_to_half_open() {
        let v = Validity::from_inclusive(Some(date(2024, 1, 1)), Some(date(2024, 12, 31)));
        assert_eq!(v.to, Some(date(2025, 1, 1)));
        assert_eq!(v.last_day(), Some(date(2024, 12, 31)));
        assert!(v.contains(date(2024, 12, 31)));
        assert!(!v.contains(date(2025, 1, 1)));
        let open = Validity::from_inclusive(Some(date(2024, 1, 1)), Some(date(9999, 12, 31)));
        assert_eq!(open.to, None);
    }

    #[test]
    fn intersect_and_overlap() {
        let a = Validity::new(Some(date(2020, 1, 1)), Some(date(2021, 1, 1)));
        let b = Validity::from_day(date(2020, 6, 1));
        assert_eq!(
            a.intersect(&b),
            Some(Validity::new(
                Some(date(2020, 6, 1)),
                Some(date(2021, 1, 1))
            ))
        );
        let c = Validity::from_day(date(2021, 1, 1));
        assert!(!a.overlaps(&c));
        assert_eq!(a.intersect(&c), None);
        assert!(Validity::ALWAYS.overlaps(&a));
    }
}
