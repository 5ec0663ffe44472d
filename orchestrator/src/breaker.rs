//! A per-server circuit breaker: after `failures_max` transient failures in a
//! row, calls to that server fail at once for `open_for`, then one probe is
//! let through (half-open); its success closes the breaker, its failure
//! opens it again. Time is passed in, so the state machine is pure.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

use crate::{error::Failure, event::EventKind, policy::Policy};

/// The breaker of one remote dependency (a server, the LLM planner's
/// model), shared by every call to it.
#[derive(Debug)]
pub(crate) struct SharedBreaker {
    name: String,
    inner: Mutex<Breaker>,
}

impl SharedBreaker {
    /// The breaker `policy` sets for the dependency called `name`.
    pub(crate) fn new(name: impl Into<String>, policy: &Policy) -> Self {
        let settings = policy.settings();
        Self {
            name: name.into(),
            inner: Mutex::new(Breaker::new(
                settings.breaker_failures,
                settings.breaker_open,
            )),
        }
    }

    /// Lets a request through, or says how long the breaker stays open.
    pub(crate) fn admit(&self) -> Result<(), Failure> {
        let mut breaker = self.inner.lock().expect("breaker lock");
        breaker
            .admit(Instant::now())
            .map_err(|wait| Failure::CircuitOpen {
                retry_after_ms: wait.as_millis(),
            })
    }

    /// Tells the breaker how a request went; returns the transition it
    /// made, if it opened or closed.
    pub(crate) fn report(&self, healthy: bool) -> Option<EventKind> {
        let mut breaker = self.inner.lock().expect("breaker lock");
        let was_open = breaker.trips();
        if healthy {
            return breaker.succeeded().then_some(EventKind::BreakerClosed);
        }
        breaker.failed(Instant::now());
        if breaker.trips() > was_open {
            tracing::warn!(dependency = %self.name, "circuit breaker opened");
            return Some(EventKind::BreakerOpened);
        }
        None
    }

    /// Times the breaker has opened.
    pub(crate) fn trips(&self) -> u64 {
        self.inner.lock().expect("breaker lock").trips()
    }

    /// The dependency answered 429 with `Retry-After: after`: no call goes
    /// to it until that has passed (the wait is the client's, not one
    /// request's).
    pub(crate) fn hold_for(&self, after: Duration) {
        let mut breaker = self.inner.lock().expect("breaker lock");
        breaker.hold_until(Instant::now() + after);
    }

    /// How long calls must still wait out a `Retry-After`, if at all.
    pub(crate) fn held_for(&self) -> Option<Duration> {
        let breaker = self.inner.lock().expect("breaker lock");
        breaker.held_for(Instant::now())
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everyone else is refused until it reports,
    /// or until `probe_until`, when another probe may go (the first one's
    /// caller may have given up without reporting).
    HalfOpen {
        probe_until: Instant,
    },
}

/// The breaker of one server.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    state: State,
    /// 0 disables the breaker.
    failures_max: u32,
    open_for: Duration,
    trips: u64,
    /// No call before this: the dependency asked to be left alone
    /// (`Retry-After`).
    held_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(failures_max: u32, open_for: Duration) -> Self {
        Self {
            state: State::Closed { failures: 0 },
            failures_max,
            open_for,
            trips: 0,
            held_until: None,
        }
    }

    /// Holds calls until `until` (the later of two holds wins).
    pub(crate) fn hold_until(&mut self, until: Instant) {
        self.held_until = Some(self.held_until.map_or(until, |held| held.max(until)));
    }

    /// How long a call at `now` must wait before it may go, if at all.
    pub(crate) fn held_for(&self, now: Instant) -> Option<Duration> {
        self.held_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// May a call go out now? `Err` carries how long the breaker stays open.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } | State::HalfOpen { probe_until: until } if now >= until => {
                self.state = State::HalfOpen {
                    probe_until: now + self.open_for,
                };
                Ok(())
            }
            State::Open { until } | State::HalfOpen { probe_until: until } => Err(until - now),
        }
    }

    /// The server answered (even with a tool error: it is alive). Returns
    /// whether that closed an open or half-open breaker.
    pub(crate) fn succeeded(&mut self) -> bool {
        let was_closed = matches!(self.state, State::Closed { .. });
        self.state = State::Closed { failures: 0 };
        !was_closed
    }

    /// A transient failure: timeout, broken connection, refused connect.
    pub(crate) fn failed(&mut self, now: Instant) {
        if self.failures_max == 0 {
            return;
        }
        let failures = match self.state {
            State::Closed { failures } => failures + 1,
            State::HalfOpen { .. } | State::Open { .. } => self.failures_max,
        };
        if failures >= self.failures_max {
            if !matches!(self.state, State::Open { .. }) {
                self.trips += 1;
            }
            self.state = State::Open {
                until: now + self.open_for,
            };
        } else {
            self.state = State::Closed { failures };
        }
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Times the breaker has opened.
    pub(crate) fn trips(&self) -> u64 {
        self.trips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_probes_and_closes() {
        let start = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(1));
        breaker.failed(start);
        breaker.failed(start);
        assert!(
            !breaker.succeeded(),
            "a success resets the count, closing nothing"
        );
        breaker.failed(start);
        breaker.failed(start);
        assert_eq!(breaker.admit(start), Ok(()));
        breaker.failed(start);
        assert_eq!(breaker.trips(), 1);
        assert_eq!(
            breaker.admit(start + Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );

        let later = start + Duration::from_secs(1);
        assert_eq!(
            breaker.admit(later),
            Ok(()),
            "one probe after the cool-down"
        );
        assert_eq!(
            breaker.admit(later),
            Err(Duration::from_secs(1)),
            "only one probe"
        );
        assert_eq!(
            breaker.admit(later + Duration::from_secs(1)),
            Ok(()),
            "a probe that never reported is replaced"
        );
        let later = later + Duration::from_secs(1);
        breaker.failed(later);
        assert_eq!(
            breaker.state(),
            State::Open {
                until: later + Duration::from_secs(1)
            }
        );
        assert_eq!(breaker.trips(), 2);

        let much_later = later + Duration::from_secs(1);
        assert_eq!(breaker.admit(much_later), Ok(()));
        assert!(breaker.succeeded(), "the probe's success closes it");
        assert_eq!(breaker.state(), State::Closed { failures: 0 });
    }

    #[test]
    fn a_retry_after_holds_every_call_until_it_ends_the_later_hold_winning() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(1));
        assert_eq!(breaker.held_for(now), None);
        breaker.hold_until(now + Duration::from_secs(2));
        breaker.hold_until(now + Duration::from_secs(1));
        assert_eq!(
            breaker.held_for(now + Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(breaker.held_for(now + Duration::from_secs(2)), None);
        // A hold is not a failure: the breaker stays closed.
        assert!(breaker.admit(now).is_ok());
        assert_eq!(breaker.state(), State::Closed { failures: 0 });
    }

    #[test]
    fn zero_disables_it() {
        let now = Instant::now();
        let mut breaker = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            breaker.failed(now);
        }
        assert_eq!(breaker.admit(now), Ok(()));
        assert_eq!(breaker.trips(), 0);
    }
}
