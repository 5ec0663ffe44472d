//! Resilience policy as data: timeouts, attempts, backoff and a retry
//! budget, validated when built. The loop that applies it lives in
//! [`crate::Orchestrator`]; this module only decides.

use std::{sync::Mutex, time::Duration};

use rand::Rng;
use tokio::time::Instant;

/// Most retry tokens a policy may refill per second.
const RETRY_RATE_LIMIT: f64 = 10_000.0;
/// Largest retry-token bucket a policy may set.
const RETRY_BURST_LIMIT: u32 = 100_000;
/// Most attempts a policy may allow for one call.
const ATTEMPTS_MAX_LIMIT: u32 = 10;
/// Longest deadline a policy may set for one question.
const DEADLINE_LIMIT: Duration = Duration::from_secs(600);

/// How hard the orchestrator tries, and for how long: [`PolicySettings`]
/// that [`Policy::new`] found consistent. There is no other way to build
/// one, so an orchestrator never runs with an inconsistent policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    settings: PolicySettings,
}

/// The settings of a [`Policy`], as given; [`Policy::new`] validates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicySettings {
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
    /// The retry budget is a token bucket: a retry takes a token; every
    /// first attempt puts back this fraction of one…
    pub retry_budget_ratio: f64,
    /// …and this many come back every second, so a quiet client can still
    /// retry…
    pub retry_budget_per_s: f64,
    /// …up to this many (the bucket starts full).
    pub retry_budget_burst: u32,
    /// A read-only call that has not answered after this long is sent again
    /// on a second connection, and the first reply wins ("hedged read").
    /// The hedge takes a token from the retry budget. `None`: no hedging.
    pub hedge_after: Option<Duration>,
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

impl PolicySettings {
    /// Values for a local or LAN deployment: a healthy round trip is well
    /// under a millisecond, a restart takes about a second.
    pub const DEFAULT: PolicySettings = PolicySettings {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(10),
        attempts_max: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(1),
        retry_budget_ratio: 0.2,
        retry_budget_per_s: 1.0,
        retry_budget_burst: 10,
        hedge_after: None,
        breaker_failures: 5,
        breaker_open: Duration::from_secs(2),
    };
}

impl Policy {
    /// [`PolicySettings::DEFAULT`], which are consistent (a unit test says so).
    pub const DEFAULT: Policy = Policy {
        settings: PolicySettings::DEFAULT,
    };

    /// The policy `settings` describe, if they are consistent; otherwise
    /// the error names the first setting that is not.
    pub fn new(settings: PolicySettings) -> Result<Self, PolicyError> {
        check_timeouts(&settings)?;
        check_retries(&settings)?;
        check_budget(&settings)?;
        Ok(Self { settings })
    }

    /// The settings, read-only.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// The pause before retry number `retry` (1 for the first retry), drawn
    /// from `rng` with full jitter.
    pub(crate) fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let s = &self.settings;
        let exp = s
            .backoff_base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let ceiling = exp.min(s.backoff_max);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.random_range(0..=micros))
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn refuse<T>(message: String) -> Result<T, PolicyError> {
    Err(PolicyError(message))
}

/// Timeouts and the deadline: positive, bounded, and each within the deadline.
fn check_timeouts(s: &PolicySettings) -> Result<(), PolicyError> {
    for (name, value) in [
        ("connect_timeout_ms", s.connect_timeout),
        ("call_timeout_ms", s.call_timeout),
        ("deadline_ms", s.deadline),
    ] {
        if value.is_zero() || value > DEADLINE_LIMIT {
            return refuse(format!(
                "{name} must be between 1 and {}, got {}",
                ms(DEADLINE_LIMIT),
                ms(value)
            ));
        }
    }
    if s.call_timeout > s.deadline || s.connect_timeout > s.deadline {
        return refuse(format!(
            "call_timeout_ms ({}) and connect_timeout_ms ({}) must not exceed deadline_ms ({})",
            ms(s.call_timeout),
            ms(s.connect_timeout),
            ms(s.deadline)
        ));
    }
    Ok(())
}

/// Attempts, backoff and the breaker.
fn check_retries(s: &PolicySettings) -> Result<(), PolicyError> {
    if !(1..=ATTEMPTS_MAX_LIMIT).contains(&s.attempts_max) {
        return refuse(format!(
            "attempts_max must be between 1 and {ATTEMPTS_MAX_LIMIT}, got {}",
            s.attempts_max
        ));
    }
    if s.backoff_base > s.backoff_max {
        return refuse(format!(
            "backoff_base_ms ({}) must not exceed backoff_max_ms ({})",
            ms(s.backoff_base),
            ms(s.backoff_max)
        ));
    }
    if s.backoff_max > s.deadline {
        return refuse(format!(
            "backoff_max_ms ({}) must not exceed deadline_ms ({})",
            ms(s.backoff_max),
            ms(s.deadline)
        ));
    }
    if s.breaker_open > DEADLINE_LIMIT {
        return refuse(format!(
            "breaker_open_ms must be at most {}, got {}",
            ms(DEADLINE_LIMIT),
            ms(s.breaker_open)
        ));
    }
    Ok(())
}

/// The retry budget and hedging, which spends it.
fn check_budget(s: &PolicySettings) -> Result<(), PolicyError> {
    if !(0.0..=1.0).contains(&s.retry_budget_ratio) {
        return refuse(format!(
            "retry_budget_ratio must be between 0 and 1, got {}",
            s.retry_budget_ratio
        ));
    }
    if !(0.0..=RETRY_RATE_LIMIT).contains(&s.retry_budget_per_s) {
        return refuse(format!(
            "retry_budget_per_s must be between 0 and {RETRY_RATE_LIMIT}, got {}",
            s.retry_budget_per_s
        ));
    }
    if s.retry_budget_burst > RETRY_BURST_LIMIT {
        return refuse(format!(
            "retry_budget_burst must be at most {RETRY_BURST_LIMIT}, got {}",
            s.retry_budget_burst
        ));
    }
    if let Some(hedge) = s.hedge_after
        && (hedge.is_zero() || hedge >= s.call_timeout)
    {
        return refuse(format!(
            "hedge_after_ms must be above 0 and below call_timeout_ms ({}), got {}",
            ms(s.call_timeout),
            ms(hedge)
        ));
    }
    Ok(())
}

/// The retry budget, shared across all calls of one orchestrator: a token
/// bucket holding at most `retry_budget_burst` tokens, refilled by
/// `retry_budget_per_s` every second and by `retry_budget_ratio` per first
/// attempt. Each retry or hedge takes one token. During an outage first
/// attempts keep coming but each refills only a fraction of a token, so the
/// servers see at most about `1 + ratio` times the load, not `attempts_max`
/// times (a retry storm). Time is `tokio::time`, so it replays under
/// simulation.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RetryBudget {
    /// A full bucket for `policy`.
    pub(crate) fn new(policy: &Policy) -> Self {
        Self {
            state: Mutex::new(Bucket {
                tokens: f64::from(policy.settings.retry_budget_burst),
                refilled_at: Instant::now(),
            }),
        }
    }

    fn refill(bucket: &mut Bucket, policy: &Policy, extra: f64) {
        let policy = &policy.settings;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.refilled_at = now;
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * policy.retry_budget_per_s + extra)
            .min(f64::from(policy.retry_budget_burst));
    }

    /// Records a first attempt.
    pub(crate) fn deposit(&self, policy: &Policy) {
        let mut bucket = self.state.lock().expect("budget lock");
        Self::refill(&mut bucket, policy, policy.settings.retry_budget_ratio);
    }

    /// Takes one token for a retry or a hedge, or says there is none left.
    pub(crate) fn try_withdraw(&self, policy: &Policy) -> bool {
        let mut bucket = self.state.lock().expect("budget lock");
        Self::refill(&mut bucket, policy, 0.0);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Policy::new(PolicySettings::DEFAULT), Ok(Policy::DEFAULT));
    }

    #[test]
    fn refuses_inconsistent_settings() {
        type Change = fn(&mut PolicySettings);
        let cases: [(Change, &str); 6] = [
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
            (
                |s| s.hedge_after = Some(Duration::from_secs(2)),
                "hedge_after_ms must be above 0 and below call_timeout_ms (2000), got 2000",
            ),
        ];
        for (change, message) in cases {
            let mut settings = PolicySettings::DEFAULT;
            change(&mut settings);
            assert_eq!(Policy::new(settings).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn backoff_is_full_jitter_capped_and_seeded() {
        let policy = Policy::DEFAULT;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut again = rand::rngs::SmallRng::seed_from_u64(7);
        for retry in 1..=12 {
            let pause = policy.backoff(retry, &mut rng);
            let s = policy.settings();
            let cap = (s.backoff_base * (1 << (retry - 1))).min(s.backoff_max);
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

    #[tokio::test(start_paused = true)]
    async fn retry_budget_is_a_token_bucket_refilled_by_traffic_and_time() {
        let policy = Policy::new(PolicySettings {
            retry_budget_burst: 2,
            retry_budget_ratio: 0.5,
            retry_budget_per_s: 1.0,
            ..PolicySettings::DEFAULT
        })
        .unwrap();
        let budget = RetryBudget::new(&policy);
        assert!(budget.try_withdraw(&policy));
        assert!(budget.try_withdraw(&policy));
        assert!(!budget.try_withdraw(&policy), "burst spent, no traffic yet");
        for _ in 0..4 {
            budget.deposit(&policy);
        }
        assert!(budget.try_withdraw(&policy));
        assert!(budget.try_withdraw(&policy));
        assert!(
            !budget.try_withdraw(&policy),
            "0.5 × 4 = 2 tokens, capped by the burst"
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!budget.try_withdraw(&policy), "not yet a whole token");
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(budget.try_withdraw(&policy), "one token a second");
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(budget.try_withdraw(&policy));
        assert!(budget.try_withdraw(&policy));
        assert!(!budget.try_withdraw(&policy), "never more than the burst");
    }
}
