//! The breaker in front of a register: after a few consecutive failures, or once the run's time
//! budget is used up, it stops calling the register for the rest of the run and answers every
//! further question with [`DarError::Unavailable`] at once. A dead register (connections
//! refused) so costs a few failed connects, a hanging one one timeout per connection, instead of
//! one timeout per address; everything not looked up becomes pending for the next run.
//!
//! Any `Err` of the register counts as a failure (transport, timeout, non-2xx, unreadable
//! answer); any definitive answer resets the count.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AddressRegister, DarError, Lookup};

/// A register that stops being asked once it failed too often or too long.
pub struct Breaker<R> {
    inner: R,
    max_failures: u32,
    budget: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    consecutive: u32,
    started: Option<Instant>,
    tripped: Option<String>,
}

impl<R: AddressRegister> Breaker<R> {
    /// Wrap `inner`: trip after `max_failures` consecutive failures (at least 1), or once
    /// `budget` has passed since the first question.
    pub fn new(inner: R, max_failures: u32, budget: Duration) -> Self {
        Breaker {
            inner,
            max_failures: max_failures.max(1),
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The wrapped register.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Why the register is not asked any more, once tripped.
    pub fn tripped(&self) -> Option<String> {
        self.lock().tripped.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask `f` of the register unless tripped, and count the outcome.
    fn call<T>(&self, f: impl FnOnce(&R) -> Result<T, DarError>) -> Result<T, DarError> {
        {
            let mut state = self.lock();
            let started = *state.started.get_or_insert_with(Instant::now);
            if state.tripped.is_none() && started.elapsed() > self.budget {
                state.tripped = Some(format!(
                    "the time budget of {} s for this run is used up",
                    self.budget.as_secs()
                ));
            }
            if let Some(reason) = &state.tripped {
                return Err(DarError::Unavailable {
                    reason: reason.clone(),
                });
            }
        }
        let result = f(&self.inner);
        let mut state = self.lock();
        match &result {
            Ok(_) => state.consecutive = 0,
            Err(e) => {
                state.consecutive += 1;
                if state.consecutive >= self.max_failures && state.tripped.is_none() {
                    state.tripped = Some(format!(
                        "{} consecutive failures, the last: {}",
                        state.consecutive,
                        e.reason()
                    ));
                }
            }
        }
        result
    }
}

impl<R: AddressRegister> AddressRegister for Breaker<R> {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        self.call(|r| r.lookup(street, postal_code))
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        self.call(|r| r.describe(id))
    }

    fn describe_many(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
        self.call(|r| r.describe_many(ids))
    }

    /// The probe is never refused by the breaker, and never counted.
    fn probe(&self) -> Result<String, DarError> {
        self.inner.probe()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }
}

impl<R> std::fmt::Debug for Breaker<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Breaker")
            .field("max_failures", &self.max_failures)
            .field("budget", &self.budget)
            .field("tripped", &state.tripped)
            .finish_non_exhaustive()
    }
}
