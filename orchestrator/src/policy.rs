//! Resilience policy as data: timeouts, attempts, backoff and a retry
//! budget, validated when built. The loop that applies it lives in
//! [`crate::Orchestrator`]; this module only decides.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rand::Rng;

/// Most attempts a policy may allow for one call.
pub const ATTEMPTS_MAX_LIMIT: u32 = 10;
/// Longest deadline a policy may set for one question.
pub const DEADLINE_LIMIT: Duration = Duration::from_secs(600);

/// How hard the orchestrator tries, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Budget for connecting and completing the MCP `initialize` handshake.
    pub connect_timeout: Duration,
    /// Budget for one `tools/call` attempt.
    pub call_timeout: Duration,
    /// Budget for a whole question, all steps and retries included.
    pub deadline: Duration,
    /// Attempts per call, the first included.
    pub attempts_max: u32,
    /// Backoff before retry n is uniform in `[0, min(backoff_max, backoff_base·2ⁿ⁻¹)]`
    /// ("full jitter").
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Retries may be at most this fraction of first attempts…
    pub retry_budget_ratio: f64,
    /// …plus this many, so a quiet client can still retry.
    pub retry_budget_min: u32,
    /// Transient failures in a row that open a server's circuit breaker
    /// (0: no breaker).
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before one probe.
    pub breaker_open: Duration,
}

/// A setting out of range; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

impl Policy {
    /// Values for a local or LAN deployment: a healthy round trip is well
    /// under a millisecond, a restart takes about a second.
    pub const DEFAULT: Policy = Policy {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(10),
        attempts_max: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(1),
        retry_budget_ratio: 0.2,
        retry_budget_min: 10,
        breaker_failures: 5,
        breaker_open: Duration::from_secs(2),
    };

    /// Returns this policy if its settings are consistent, or names the
    /// first that is not. Configs are validated this way when loaded.
    pub fn validated(self) -> Result<Self, PolicyError> {
        let s = self;
        let err = |m: String| Err(PolicyError(m));
        let ms = |d: Duration| d.as_millis();
        for (name, value) in [
            ("connect_timeout_ms", s.connect_timeout),
            ("call_timeout_ms", s.call_timeout),
            ("deadline_ms", s.deadline),
        ] {
            if value.is_zero() || value > DEADLINE_LIMIT {
                return err(format!(
                    "{name} must be between 1 and {}, got {}",
                    ms(DEADLINE_LIMIT),
                    ms(value)
                ));
            }
        }
        if s.call_timeout > s.deadline || s.connect_timeout > s.deadline {
            return err(format!(
                "call_timeout_ms ({}) and connect_timeout_ms ({}) must not exceed deadline_ms ({})",
                ms(s.call_timeout),
                ms(s.connect_timeout),
                ms(s.deadline)
            ));
        }
        if !(1..=ATTEMPTS_MAX_LIMIT).contains(&s.attempts_max) {
            return err(format!(
                "attempts_max must be between 1 and {ATTEMPTS_MAX_LIMIT}, got {}",
                s.attempts_max
            ));
        }
        if s.backoff_base > s.backoff_max {
            return err(format!(
                "backoff_base_ms ({}) must not exceed backoff_max_ms ({})",
                ms(s.backoff_base),
                ms(s.backoff_max)
            ));
        }
        if s.backoff_max > s.deadline {
            return err(format!(
                "backoff_max_ms ({}) must not exceed deadline_ms ({})",
                ms(s.backoff_max),
                ms(s.deadline)
            ));
        }
        if s.breaker_open > DEADLINE_LIMIT {
            return err(format!(
                "breaker_open_ms must be at most {}, got {}",
                ms(DEADLINE_LIMIT),
                ms(s.breaker_open)
            ));
        }
        if !(0.0..=1.0).contains(&s.retry_budget_ratio) {
            return err(format!(
                "retry_budget_ratio must be between 0 and 1, got {}",
                s.retry_budget_ratio
            ));
        }
        Ok(self)
    }

    /// The pause before retry number `retry` (1 for the first retry), drawn
    /// from `rng` with full jitter.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let ceiling = exp.min(self.backoff_max);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.random_range(0..=micros))
    }
}

/// Shared across all calls of one orchestrator: retries are allowed while
/// `retries ≤ retry_budget_min + retry_budget_ratio × first attempts`, so a
/// failing server sees at most ~20% extra load, not 3× (a retry storm).
#[derive(Debug, Default)]
pub struct RetryBudget {
    first_attempts: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    /// Records a first attempt.
    pub fn deposit(&self) {
        self.first_attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget, or says there is none left.
    pub fn try_withdraw(&self, policy: &Policy) -> bool {
        let first = self.first_attempts.load(Ordering::Relaxed) as f64;
        let allowed = f64::from(policy.retry_budget_min) + policy.retry_budget_ratio * first;
        self.retries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |retries| {
                ((retries as f64) < allowed).then_some(retries + 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Policy::DEFAULT.validated(), Ok(Policy::DEFAULT));
    }

    #[test]
    fn refuses_inconsistent_settings() {
        type Change = fn(&mut Policy);
        let cases: [(Change, &str); 5] = [
            (
                |s| s.attempts_max = 0,
                "attempts_max must be between 1 and 10, got 0",
            ),
            (
                |s| s.call_timeout = Duration::ZERO,
                "call_timeout_ms must be between 1 and 600000, got 0",
            ),
            (
                |s| s.backoff_base = Duration::from_secs(2),
                "backoff_base_ms (2000) must not exceed backoff_max_ms (1000)",
            ),
            (
                |s| s.call_timeout = Duration::from_secs(11),
                "call_timeout_ms (11000) and connect_timeout_ms (5000) must not exceed deadline_ms (10000)",
            ),
            (
                |s| s.retry_budget_ratio = 1.5,
                "retry_budget_ratio must be between 0 and 1, got 1.5",
            ),
        ];
        for (change, message) in cases {
            let mut policy = Policy::DEFAULT;
            change(&mut policy);
            assert_eq!(policy.validated().unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn backoff_is_full_jitter_capped_and_seeded() {
        let policy = Policy::DEFAULT;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut again = rand::rngs::SmallRng::seed_from_u64(7);
        for retry in 1..=12 {
            let pause = policy.backoff(retry, &mut rng);
            let cap = (policy.backoff_base * (1 << (retry - 1))).min(policy.backoff_max);
            assert!(pause <= cap, "retry {retry}: {pause:?} > {cap:?}");
            assert_eq!(
                pause,
                policy.backoff(retry, &mut again),
                "same seed, same pause"
            );
        }
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|_| policy.backoff(5, &mut rng)).collect();
        assert!(spread.len() > 40, "jitter spreads pauses: {}", spread.len());
    }

    #[test]
    fn retry_budget_caps_retries_to_a_fraction_of_traffic() {
        let policy = Policy {
            retry_budget_min: 2,
            retry_budget_ratio: 0.5,
            ..Policy::DEFAULT
        };
        let budget = RetryBudget::default();
        assert!(budget.try_withdraw(&policy));
        assert!(budget.try_withdraw(&policy));
        assert!(
            !budget.try_withdraw(&policy),
            "min exhausted, no traffic yet"
        );
        for _ in 0..4 {
            budget.deposit();
        }
        assert!(budget.try_withdraw(&policy));
        assert!(budget.try_withdraw(&policy));
        assert!(!budget.try_withdraw(&policy), "2 + 0.5 × 4 = 4 retries");
    }
}
