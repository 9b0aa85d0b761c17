//! The history oracle (issue 12): generated sequences of daily source files, an independent and
//! deliberately simple model that replays them fact by fact into the MO history they should
//! produce, and a comparison with what the real importer writes into the embedded store.
//!
//! The model is written from the rules (DESIGN.md §2 "History", §5 rulings 1–4, `docs/opus.md`),
//! not from dipex's mapping code. It works day by day: every object is a [`Timeline`] holding one
//! value (or nothing) per calendar day of a fixed window, each input overwrites the days from its
//! effective date on, and the timelines are compressed into validity slices at the end.
//!
//! Shared here: the random numbers, the timeline, the comparable form of an MO history
//! ([`Canon`]) and the readable first difference. `opus_gen` generates OPUS dump sequences,
//! `opus_model` is the oracle for them, `opus` runs the importer and compares.
//!
//! Run only these tests: `cargo test -p dipex-integrations --test it oracle::`. Choose seeds and
//! length with `DIPEX_ORACLE_SEEDS=3,17` and `DIPEX_ORACLE_DAYS=30`.

mod opus;
mod opus_gen;
mod opus_model;

use jiff::ToSpan;
use jiff::civil::{Date, date};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The first day a timeline holds. Every generated date lies well inside the window.
pub(crate) const W0: Date = date(2018, 1, 1);
/// The day after the last day a timeline holds; the value of its last day lasts forever.
pub(crate) const W1: Date = date(2021, 7, 1);

pub(crate) fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(n.days()).expect("date in range")
}

fn index(d: Date) -> usize {
    assert!(W0 <= d && d < W1, "{d} is outside the oracle's window");
    d.since(W0).expect("days").get_days() as usize
}

fn day_at(i: usize) -> Date {
    add_days(W0, i as i64)
}

fn days_in_window() -> usize {
    index(add_days(W1, -1)) + 1
}

/// splitmix64: small, fast, reproducible from a seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
    /// True with probability `percent` / 100.
    pub(crate) fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One value (or nothing) per day of the window [`W0`, [`W1`]); the last day's value lasts
/// forever.
#[derive(Clone, Debug)]
pub(crate) struct Timeline<V> {
    days: Vec<Option<V>>,
}

impl<V: Clone + PartialEq> Timeline<V> {
    pub(crate) fn new() -> Timeline<V> {
        Timeline {
            days: vec![None; days_in_window()],
        }
    }

    /// Make the days `[from, to)` hold `value` (`to = None`: forever).
    pub(crate) fn set(&mut self, from: Date, to: Option<Date>, value: Option<V>) {
        let a = index(from);
        let b = to.map_or(self.days.len(), |t| index(t).max(a));
        for d in &mut self.days[a..b] {
            *d = value.clone();
        }
    }

    /// Recompute every day from its date and its old value.
    pub(crate) fn map(&mut self, mut f: impl FnMut(Date, Option<V>) -> Option<V>) {
        for (i, d) in self.days.iter_mut().enumerate() {
            *d = f(day_at(i), d.take());
        }
    }

    /// The value of the `i`-th day of the window.
    pub(crate) fn at(&self, i: usize) -> Option<&V> {
        self.days[i].as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        self.days.len()
    }

    /// The value from the end of the window on ("now and forever").
    pub(crate) fn last(&self) -> Option<&V> {
        self.days.last().and_then(Option::as_ref)
    }

    /// Per day, a projection of the value (by day index).
    pub(crate) fn project<F>(&self, mut f: F) -> Vec<Option<Fields>>
    where
        F: FnMut(usize, &V) -> Option<Fields>,
    {
        self.days
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_ref().and_then(|v| f(i, v)))
            .collect()
    }
}

/// The fields of one slice the oracle models, references already turned into natural keys
/// (unit ids, CPR numbers, employment numbers, class user_keys).
pub(crate) type Fields = BTreeMap<&'static str, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) from: Option<Date>,
    pub(crate) to: Option<Date>,
    pub(crate) fields: Fields,
}

/// Every modelled MO object by natural key (`engagement 1003`, `address person <cpr> Email`,
/// …), with its slices sorted and adjacent equal slices merged. `objects` counts how many MO
/// objects carry the key (the oracle expects one each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Canon {
    pub(crate) spans: BTreeMap<String, Vec<Span>>,
    pub(crate) objects: BTreeMap<String, usize>,
}

impl Canon {
    pub(crate) fn insert_days(&mut self, key: String, days: &[Option<Fields>], open_start: bool) {
        let spans = spans_of_days(days, open_start);
        if !spans.is_empty() {
            self.spans.insert(key.clone(), spans);
            self.objects.insert(key, 1);
        }
    }
}

/// Runs of equal values → slices. `open_start`: the first slice holds since always.
pub(crate) fn spans_of_days(days: &[Option<Fields>], open_start: bool) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let Some(v) = &days[i] else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < days.len() && days[j].as_ref() == Some(v) {
            j += 1;
        }
        out.push(Span {
            from: Some(day_at(i)),
            to: (j < days.len()).then(|| day_at(j)),
            fields: v.clone(),
        });
        i = j;
    }
    if open_start && let Some(first) = out.first_mut() {
        first.from = None;
    }
    out
}

/// Sort slices and merge touching ones with equal fields.
pub(crate) fn compress(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.from);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if let Some(p) = out.last_mut()
            && p.to.is_some()
            && p.to == s.from
            && p.fields == s.fields
        {
            p.to = s.to;
            continue;
        }
        out.push(s);
    }
    out
}

fn show_date(d: Option<Date>) -> String {
    d.map_or("-".into(), |d| d.to_string())
}

pub(crate) fn show_spans(spans: Option<&Vec<Span>>) -> String {
    let Some(spans) = spans else {
        return "    (no object)\n".into();
    };
    let mut s = String::new();
    for sp in spans {
        let fields: Vec<String> = sp.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(
            s,
            "    [{} .. {}) {}",
            show_date(sp.from),
            show_date(sp.to),
            fields.join(" ")
        )
        .unwrap();
    }
    s
}

/// The differences between the expected and the actual history, first difference first; empty
/// when they agree.
pub(crate) fn differences(expected: &Canon, actual: &Canon) -> Vec<String> {
    let mut keys: Vec<&String> = expected.spans.keys().chain(actual.spans.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (e, a) = (expected.spans.get(k), actual.spans.get(k));
        if e != a {
            out.push(format!(
                "{k}\n  expected:\n{}  actual:\n{}",
                show_spans(e),
                show_spans(a)
            ));
        } else if let Some(n) = actual.objects.get(k).filter(|n| **n > 1) {
            out.push(format!(
                "{k}: {n} MO objects carry it, expected one\n{}",
                show_spans(a)
            ));
        }
    }
    out
}

/// Seeds and days per sequence: the defaults, or `DIPEX_ORACLE_SEEDS` / `DIPEX_ORACLE_DAYS`.
pub(crate) fn seeds_and_days(
    default_seeds: std::ops::Range<u64>,
    default_days: usize,
) -> (Vec<u64>, usize) {
    let seeds = match std::env::var("DIPEX_ORACLE_SEEDS") {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .expect("DIPEX_ORACLE_SEEDS: comma-separated numbers")
            })
            .collect(),
        _ => default_seeds.collect(),
    };
    let days = std::env::var("DIPEX_ORACLE_DAYS")
        .ok()
        .map(|d| d.trim().parse().expect("DIPEX_ORACLE_DAYS: a number"))
        .unwrap_or(default_days);
    (seeds, days)
}

#[test]
fn timeline_overwrites_from_a_day_and_compresses_into_slices() {
    let mut t: Timeline<u8> = Timeline::new();
    t.set(date(2020, 1, 1), None, Some(1));
    t.set(date(2020, 1, 5), None, Some(2));
    t.set(date(2020, 1, 3), Some(date(2020, 1, 4)), None);
    let f = |v: &u8| Some(Fields::from([("v", v.to_string())]));
    let days = t.project(|_, v| f(v));
    let spans = spans_of_days(&days, false);
    let shown: Vec<(Option<Date>, Option<Date>, String)> = spans
        .iter()
        .map(|s| (s.from, s.to, s.fields["v"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (Some(date(2020, 1, 1)), Some(date(2020, 1, 3)), "1".into()),
            (Some(date(2020, 1, 4)), Some(date(2020, 1, 5)), "1".into()),
            (Some(date(2020, 1, 5)), None, "2".into()),
        ]
    );
    assert_eq!(spans_of_days(&days, true)[0].from, None);
    let merged = compress(vec![
        Span {
            from: Some(date(2020, 1, 2)),
            to: None,
            fields: Fields::new(),
        },
        Span {
            from: Some(date(2020, 1, 1)),
            to: Some(date(2020, 1, 2)),
            fields: Fields::new(),
        },
    ]);
    assert_eq!(merged.len(), 1);
    assert_eq!(
        (merged[0].from, merged[0].to),
        (Some(date(2020, 1, 1)), None)
    );
}
