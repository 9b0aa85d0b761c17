//! Primary engagement calculation (DESIGN ruling 2, `specs/opus.md` §8.13). OPUS has no notion
//! of a primary engagement, so for every stretch of time where a person's set of engagements is
//! constant, one of them is primary: a manually primary one (`explicitly-primary`, set in MO's
//! UI) always wins; otherwise the engagement type that comes first in
//! `integrations.opus.eng_types_primary_order`, then the lowest employment number. The winner
//! gets `primary`, the others `non-primary`.

use dipex_model::validity::Validity;
use dipex_model::{Date, Engagement, Fact, Slice, Value};
use uuid::Uuid;

/// The three classes of the `primary_type` facet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryClasses {
    pub explicit: Uuid,
    pub primary: Uuid,
    pub non_primary: Uuid,
}

/// Finds or creates a class: `(facet, user_key, title, scope) -> uuid`.
pub type EnsureClass<'a> = dyn FnMut(&str, &str, &str, Option<&str>) -> Uuid + 'a;

impl PrimaryClasses {
    /// Find or create the three classes.
    pub fn ensure(class: &mut EnsureClass<'_>) -> PrimaryClasses {
        PrimaryClasses {
            explicit: class(
                "primary_type",
                "explicitly-primary",
                "Manuelt primær ansættelse",
                Some("5000"),
            ),
            primary: class("primary_type", "primary", "Ansat", Some("3000")),
            non_primary: class(
                "primary_type",
                "non-primary",
                "Ikke-primær ansat",
                Some("0"),
            ),
        }
    }
}

/// An engagement taking part in the calculation.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub uuid: Uuid,
    /// Its value apart from `primary`.
    pub value: Engagement,
    pub life: Validity,
    /// From this day on the fact speaks (the earliest day the input changes the person's set
    /// of engagements or this engagement); nothing before it changes.
    pub since: Date,
    /// From this day on the engagement holds `value`; before it (and from `since`), MO's
    /// values in `old` are kept and only their primary class is computed again.
    pub value_since: Date,
    /// MO's slices of the engagement in `[since, value_since)` (empty when there are none).
    pub old: Vec<Slice>,
    /// Position of `value`'s engagement type in the priority list (`usize::MAX` when unlisted).
    pub rank: usize,
    /// The same for each slice of `old` (its engagement type may differ from `value`'s).
    pub old_ranks: Vec<usize>,
    pub number: (u64, String),
    /// Set to explicitly primary in MO: keeps that and wins.
    pub explicit: bool,
    /// False for engagements that only take part (e.g. one a leave marker ends): no fact.
    pub emit: bool,
}

/// Sort key of an employment number: numeric when it is a number, else after all numbers.
pub fn employment_number(id: &str) -> (u64, String) {
    (id.trim().parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

/// Rank of an engagement type in the priority list, matched by class uuid or user_key.
pub fn rank(order: &[String], class: Uuid, user_key: &str) -> usize {
    order
        .iter()
        .position(|o| {
            o.eq_ignore_ascii_case(user_key) || Uuid::parse_str(o).is_ok_and(|u| u == class)
        })
        .unwrap_or(usize::MAX)
}

fn lo(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MIN)
}
fn hi(d: Option<Date>) -> Date {
    d.unwrap_or(Date::MAX)
}

impl Candidate {
    /// The engagement's value apart from `primary` on `day`, and its rank: MO's before
    /// `value_since` where MO has one, else `value`.
    fn on(&self, day: Date) -> (&Engagement, usize) {
        if day < self.value_since
            && let Some((i, Value::Engagement(e))) = self
                .old
                .iter()
                .enumerate()
                .find(|(_, s)| s.validity.contains(day))
                .map(|(i, s)| (i, &s.value))
        {
            return (e, self.old_ranks.get(i).copied().unwrap_or(usize::MAX));
        }
        (&self.value, self.rank)
    }
}

/// The winner among the candidates active on `day` (each ranked by its type on that day).
fn winner(cands: &[Candidate], day: Date) -> Option<usize> {
    let active = cands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.life.contains(day))
        .map(|(i, c)| (i, (!c.explicit, c.on(day).1, &c.number)));
    active.min_by(|(_, a), (_, b)| a.cmp(b)).map(|(i, _)| i)
}

/// One fact per candidate, its timeline split wherever its primary class changes.
pub fn facts(cands: &[Candidate], classes: &PrimaryClasses) -> Vec<Fact> {
    let mut cuts: Vec<Date> = cands
        .iter()
        .flat_map(|c| [lo(c.life.from), hi(c.life.to)])
        .collect();
    cuts.sort();
    cuts.dedup();
    let mut out = Vec::with_capacity(cands.len());
    for (i, c) in cands.iter().enumerate() {
        if !c.emit {
            continue;
        }
        let start = lo(c.life.from).max(c.since);
        let end = hi(c.life.to);
        if start >= end {
            continue;
        }
        let mut points: Vec<Date> = cuts
            .iter()
            .copied()
            // A sibling's type may change inside the window: the winner may change there.
            .chain(cands.iter().flat_map(|o| {
                o.old
                    .iter()
                    .flat_map(|s| [lo(s.validity.from), hi(s.validity.to)])
                    .chain([o.value_since])
            }))
            .chain(
                c.old
                    .iter()
                    .flat_map(|s| [lo(s.validity.from), hi(s.validity.to)]),
            )
            .chain([c.value_since])
            .filter(|d| *d > start && *d < end)
            .collect();
        points.sort();
        points.dedup();
        points.insert(0, start);
        points.push(end);
        let mut timeline: Vec<Slice> = Vec::new();
        for w in points.windows(2) {
            let class = if c.explicit {
                classes.explicit
            } else if winner(cands, w[0]) == Some(i) {
                classes.primary
            } else {
                classes.non_primary
            };
            let mut v = c.on(w[0]).0.clone();
            v.primary = Some(class);
            let v = Value::Engagement(v);
            let to = (w[1] != Date::MAX).then_some(w[1]);
            match timeline.last_mut() {
                Some(prev) if prev.value == v => prev.validity.to = to,
                _ => {
                    let from = (w[0] != Date::MIN).then_some(w[0]);
                    timeline.push(Slice::new(Validity::new(from, to), v));
                }
            }
        }
        out.push(Fact::State {
            uuid: c.uuid,
            life: c.life,
            since: (c.since != Date::MIN).then_some(c.since),
            timeline,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn classes() -> PrimaryClasses {
        PrimaryClasses {
            explicit: Uuid::from_u128(1),
            primary: Uuid::from_u128(2),
            non_primary: Uuid::from_u128(3),
        }
    }

    fn cand(
        n: u128,
        number: &str,
        rank: usize,
        from: Date,
        to: Option<Date>,
        explicit: bool,
    ) -> Candidate {
        Candidate {
            uuid: Uuid::from_u128(100 + n),
            value: Engagement {
                user_key: number.into(),
                person: Uuid::nil(),
                org_unit: Uuid::nil(),
                job_function: Uuid::nil(),
                engagement_type: Uuid::nil(),
                primary: None,
                fraction: None,
                extensions: Box::default(),
            },
            life: Validity::new(Some(from), to),
            since: from,
            value_since: from,
            old: Vec::new(),
            rank,
            old_ranks: Vec::new(),
            number: employment_number(number),
            explicit,
            emit: true,
        }
    }

    fn primaries(f: &Fact) -> Vec<(Option<Date>, Option<Date>, Uuid)> {
        let Fact::State { timeline, .. } = f else {
            panic!()
        };
        timeline
            .iter()
            .map(|s| match &s.value {
                Value::Engagement(e) => (s.validity.from, s.validity.to, e.primary.unwrap()),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn type_rank_then_lowest_number() {
        let c = classes();
        let a = cand(1, "20", 1, date(2020, 1, 1), None, false);
        let b = cand(2, "10", 1, date(2020, 1, 1), None, false);
        let f = facts(&[a.clone(), b.clone()], &c);
        assert_eq!(primaries(&f[0])[0].2, c.non_primary);
        assert_eq!(
            primaries(&f[1])[0].2,
            c.primary,
            "same type: lowest number wins"
        );
        let a = cand(1, "20", 0, date(2020, 1, 1), None, false);
        let f = facts(&[a, b], &c);
        assert_eq!(
            primaries(&f[0])[0].2,
            c.primary,
            "better type wins over a lower number"
        );
    }

    #[test]
    fn primary_moves_when_an_engagement_ends() {
        let c = classes();
        let a = cand(1, "1", 0, date(2020, 1, 1), Some(date(2021, 1, 1)), false);
        let b = cand(2, "2", 0, date(2020, 1, 1), None, false);
        let f = facts(&[a, b], &c);
        assert_eq!(
            primaries(&f[0]),
            vec![(Some(date(2020, 1, 1)), Some(date(2021, 1, 1)), c.primary)]
        );
        assert_eq!(
            primaries(&f[1]),
            vec![
                (
                    Some(date(2020, 1, 1)),
                    Some(date(2021, 1, 1)),
                    c.non_primary
                ),
                (Some(date(2021, 1, 1)), None, c.primary)
            ]
        );
    }

    #[test]
    fn manual_primary_always_wins() {
        let c = classes();
        let a = cand(1, "1", 0, date(2020, 1, 1), None, false);
        let b = cand(2, "9", 5, date(2020, 1, 1), None, true);
        let f = facts(&[a, b], &c);
        assert_eq!(primaries(&f[0])[0].2, c.non_primary);
        assert_eq!(primaries(&f[1])[0].2, c.explicit);
    }

    #[test]
    fn rank_by_user_key_or_uuid() {
        let u = Uuid::from_u128(7);
        let order = vec!["Månedsløn".to_string(), u.to_string()];
        assert_eq!(rank(&order, Uuid::nil(), "månedsløn"), 0);
        assert_eq!(rank(&order, u, "x"), 1);
        assert_eq!(rank(&order, Uuid::nil(), "x"), usize::MAX);
    }
}
