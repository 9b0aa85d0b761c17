//! Read queries: which kind, which objects, which time window. Shaped like OS2mo GraphQL's
//! filters (`uuids`, `user_keys`, `cpr_numbers`, `parents`, `employees`, `org_units`, with
//! `from_date`/`to_date`) so an OS2mo backend translates them one to one.

use dipex_model::{Cpr, Date, Kind, Validity};
use uuid::Uuid;

/// The time window of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The slice valid on one day.
    At(Date),
    /// Slices overlapping `[from, to)`.
    Range(Validity),
    /// All history and future.
    All,
}

impl Window {
    pub fn as_validity(&self) -> Validity {
        match *self {
            Window::At(d) => Validity::new(Some(d), d.tomorrow().ok()),
            Window::Range(v) => v,
            Window::All => Validity::ALWAYS,
        }
    }
}

/// A read: one kind, optional filters (all given filters must match, within a filter any value
/// may match), and a window. An empty filter list matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub kind: Kind,
    pub uuids: Option<Vec<Uuid>>,
    pub user_keys: Option<Vec<String>>,
    pub cpr_numbers: Option<Vec<Cpr>>,
    /// Parent unit of org units (`None` in the list = top level), facet of classes.
    pub parents: Option<Vec<Option<Uuid>>>,
    pub persons: Option<Vec<Uuid>>,
    pub org_units: Option<Vec<Uuid>>,
    pub itsystems: Option<Vec<Uuid>>,
    pub window: Window,
}

impl Query {
    /// Every object of a kind, all history.
    pub fn all(kind: Kind) -> Query {
        Query {
            kind,
            uuids: None,
            user_keys: None,
            cpr_numbers: None,
            parents: None,
            persons: None,
            org_units: None,
            itsystems: None,
            window: Window::All,
        }
    }
    pub fn uuids(mut self, v: impl IntoIterator<Item = Uuid>) -> Query {
        self.uuids = Some(v.into_iter().collect());
        self
    }
    pub fn user_keys<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Query {
        self.user_keys = Some(v.into_iter().map(Into::into).collect());
        self
    }
    pub fn cpr_numbers(mut self, v: impl IntoIterator<Item = Cpr>) -> Query {
        self.cpr_numbers = Some(v.into_iter().collect());
        self
    }
    pub fn parents(mut self, v: impl IntoIterator<Item = Option<Uuid>>) -> Query {
        self.parents = Some(v.into_iter().collect());
        self
    }
    pub fn persons(mut self, v: impl IntoIterator<Item = Uuid>) -> Query {
        self.persons = Some(v.into_iter().collect());
        self
    }
    pub fn org_units(mut self, v: impl IntoIterator<Item = Uuid>) -> Query {
        self.org_units = Some(v.into_iter().collect());
        self
    }
    pub fn itsystems(mut self, v: impl IntoIterator<Item = Uuid>) -> Query {
        self.itsystems = Some(v.into_iter().collect());
        self
    }
    pub fn at(mut self, day: Date) -> Query {
        self.window = Window::At(day);
        self
    }
    pub fn window(mut self, w: Window) -> Query {
        self.window = w;
        self
    }
    /// True when some list filter is present but empty (the query matches nothing).
    pub fn is_void(&self) -> bool {
        self.uuids.as_ref().is_some_and(Vec::is_empty)
            || self.user_keys.as_ref().is_some_and(Vec::is_empty)
            || self.cpr_numbers.as_ref().is_some_and(Vec::is_empty)
            || self.parents.as_ref().is_some_and(Vec::is_empty)
            || self.persons.as_ref().is_some_and(Vec::is_empty)
            || self.org_units.as_ref().is_some_and(Vec::is_empty)
            || self.itsystems.as_ref().is_some_and(Vec::is_empty)
    }
}
