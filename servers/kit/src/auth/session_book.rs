//! Which token opened which HTTP session, and when each was last used: the
//! bookkeeping behind binding a session to its token and the per-token
//! session cap. Pure: it is given the time.
//!
//! The cap protects *other* tokens, so a token at its cap is never refused
//! because of its own sessions: the least recently used one makes room. A
//! client that lost a connection, or was killed before it could send a
//! DELETE, abandons a session; with a plain refusal, [`SESSIONS_PER_TOKEN_MAX`]
//! of those would lock its token out until they idled away.

use std::collections::{BTreeMap, HashMap};

use tokio::time::{Duration, Instant};

use super::{Denial, SESSION_IDLE, SESSIONS_PER_TOKEN_MAX, TRACKED_TOKENS_MAX};

/// A token's SHA-256 digest: what the book keys tokens by.
pub(super) type Digest = [u8; 32];

/// Sessions by token: at most [`TRACKED_TOKENS_MAX`] tokens of
/// [`SESSIONS_PER_TOKEN_MAX`] sessions each (open or being opened).
#[derive(Debug, Default)]
pub(super) struct SessionBook {
    tokens: HashMap<Digest, Own>,
    /// Uses so far: the order of uses, without ties (two uses can share an
    /// instant, and always do under a paused clock).
    uses: u64,
}

/// One token's sessions.
#[derive(Debug, Default)]
struct Own {
    /// Open sessions by id, with their last use.
    open: BTreeMap<String, LastUse>,
    /// `initialize` requests admitted and not answered yet: each holds a
    /// place under the cap, so that a burst cannot overshoot it.
    opening: usize,
}

#[derive(Debug, Clone, Copy)]
struct LastUse {
    at: Instant,
    order: u64,
}

impl Own {
    fn places_taken(&self) -> usize {
        self.open.len() + self.opening
    }

    fn forget_idle(&mut self, now: Instant) {
        self.open.retain(|_, last| is_live(last, now));
    }

    /// The id of the least recently used open session.
    fn least_recent(&self) -> Option<String> {
        self.open
            .iter()
            .min_by_key(|(_, last)| last.order)
            .map(|(id, _)| id.clone())
    }

    /// When the last of its sessions goes idle, if it is not opening one.
    fn idle_at(&self) -> Option<Instant> {
        if self.opening > 0 {
            return None;
        }
        Some(self.open.values().map(|l| l.at).max()? + SESSION_IDLE)
    }
}

fn is_live(last: &LastUse, now: Instant) -> bool {
    now.duration_since(last.at) < SESSION_IDLE
}

impl SessionBook {
    /// A request of token `digest` on session `id`: it must be that token's
    /// and not idle for [`SESSION_IDLE`]. Anything else is, to the client,
    /// an unknown session.
    pub(super) fn use_session(
        &mut self,
        id: &str,
        digest: &Digest,
        now: Instant,
    ) -> Result<(), Denial> {
        let order = self.next_use();
        let own = self.tokens.get_mut(digest).ok_or(Denial::ForeignSession)?;
        let last = own.open.get_mut(id).ok_or(Denial::ForeignSession)?;
        if !is_live(last, now) {
            own.open.remove(id);
            return Err(Denial::ForeignSession);
        }
        *last = LastUse { at: now, order };
        Ok(())
    }

    /// Holds a place for one more session of `digest` until [`Self::opened`]
    /// or [`Self::abandoned`]. At the token's cap the least recently used
    /// open session is dropped from the book and its id returned: the
    /// caller must close it. Refused only when every place is an
    /// `initialize` still in flight, or when [`TRACKED_TOKENS_MAX`] other
    /// tokens hold sessions.
    pub(super) fn reserve(
        &mut self,
        digest: &Digest,
        now: Instant,
    ) -> Result<Option<String>, Denial> {
        self.make_room_for_token(digest, now)?;
        let own = self.tokens.entry(*digest).or_default();
        let mut evicted = None;
        if own.places_taken() >= SESSIONS_PER_TOKEN_MAX {
            own.forget_idle(now);
        }
        if own.places_taken() >= SESSIONS_PER_TOKEN_MAX {
            let Some(oldest) = own.least_recent() else {
                return Err(Denial::TooManySessions { retry_after_s: 1 });
            };
            own.open.remove(&oldest);
            evicted = Some(oldest);
        }
        own.opening += 1;
        debug_assert!(own.places_taken() <= SESSIONS_PER_TOKEN_MAX);
        Ok(evicted)
    }

    /// The `initialize` that held a place of `digest` opened session `id`.
    pub(super) fn opened(&mut self, digest: &Digest, id: &str, now: Instant) {
        let order = self.next_use();
        let own = self.tokens.entry(*digest).or_default();
        own.opening = own.opening.saturating_sub(1);
        own.open.insert(id.to_owned(), LastUse { at: now, order });
    }

    /// The `initialize` that held a place of `digest` opened nothing.
    pub(super) fn abandoned(&mut self, digest: &Digest) {
        if let Some(own) = self.tokens.get_mut(digest) {
            own.opening = own.opening.saturating_sub(1);
            self.forget_if_empty(digest);
        }
    }

    /// Token `digest` closed its session `id` (DELETE).
    pub(super) fn closed(&mut self, digest: &Digest, id: &str) {
        if let Some(own) = self.tokens.get_mut(digest) {
            own.open.remove(id);
            self.forget_if_empty(digest);
        }
    }

    /// Open sessions of `digest`, as the book counts them.
    #[cfg(test)]
    pub(super) fn open_of(&self, digest: &Digest) -> usize {
        self.tokens.get(digest).map_or(0, |own| own.open.len())
    }

    fn next_use(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }

    fn forget_if_empty(&mut self, digest: &Digest) {
        if self
            .tokens
            .get(digest)
            .is_some_and(|own| own.places_taken() == 0)
        {
            self.tokens.remove(digest);
        }
    }

    /// Makes sure `digest` may be tracked: a known token, room for one more,
    /// or room after forgetting idle sessions. Otherwise a 429 that says
    /// when the first tracked token goes idle.
    fn make_room_for_token(&mut self, digest: &Digest, now: Instant) -> Result<(), Denial> {
        if self.tokens.contains_key(digest) || self.tokens.len() < TRACKED_TOKENS_MAX {
            return Ok(());
        }
        self.tokens.retain(|_, own| {
            own.forget_idle(now);
            own.places_taken() > 0
        });
        if self.tokens.len() < TRACKED_TOKENS_MAX {
            return Ok(());
        }
        let first_idle = self.tokens.values().filter_map(Own::idle_at).min();
        let wait = first_idle.map_or(Duration::from_secs(1), |at| at - now);
        Err(Denial::TooManySessions {
            retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINE: Digest = [1; 32];
    const THEIRS: Digest = [2; 32];

    fn open(book: &mut SessionBook, digest: &Digest, id: &str) -> Option<String> {
        let now = Instant::now();
        let evicted = book.reserve(digest, now).expect("room for a session");
        book.opened(digest, id, now);
        evicted
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_least_recently_used_session_makes_room() {
        let mut book = SessionBook::default();
        for n in 0..SESSIONS_PER_TOKEN_MAX {
            assert_eq!(open(&mut book, &MINE, &format!("s{n}")), None);
        }
        // s0 is used again: s1 is now the least recently used.
        book.use_session("s0", &MINE, Instant::now()).unwrap();
        assert_eq!(open(&mut book, &MINE, "new1"), Some("s1".into()));
        assert_eq!(open(&mut book, &MINE, "new2"), Some("s2".into()));
        assert_eq!(book.open_of(&MINE), SESSIONS_PER_TOKEN_MAX);
        assert_eq!(
            book.use_session("s1", &MINE, Instant::now()),
            Err(Denial::ForeignSession),
            "an evicted session is unknown"
        );
        book.use_session("s0", &MINE, Instant::now()).unwrap();
        assert_eq!(open(&mut book, &THEIRS, "t0"), None, "no other token pays");
    }

    #[tokio::test(start_paused = true)]
    async fn initializes_in_flight_hold_their_places() {
        let mut book = SessionBook::default();
        let now = Instant::now();
        for _ in 0..SESSIONS_PER_TOKEN_MAX {
            assert_eq!(book.reserve(&MINE, now), Ok(None));
        }
        assert_eq!(
            book.reserve(&MINE, now),
            Err(Denial::TooManySessions { retry_after_s: 1 }),
            "nothing open to evict: every place is an initialize in flight"
        );
        book.abandoned(&MINE);
        assert_eq!(
            book.reserve(&MINE, now),
            Ok(None),
            "a failed one frees its place"
        );
        book.opened(&MINE, "s0", now);
        assert_eq!(book.reserve(&MINE, now), Ok(Some("s0".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_are_bound_to_their_token_and_expire_when_idle() {
        let mut book = SessionBook::default();
        open(&mut book, &MINE, "s1");
        assert_eq!(book.use_session("s1", &MINE, Instant::now()), Ok(()));
        assert_eq!(
            book.use_session("s1", &THEIRS, Instant::now()),
            Err(Denial::ForeignSession)
        );
        book.closed(&MINE, "s1");
        assert_eq!(
            book.use_session("s1", &MINE, Instant::now()),
            Err(Denial::ForeignSession),
            "a closed session is gone"
        );
        open(&mut book, &MINE, "s2");
        tokio::time::advance(SESSION_IDLE).await;
        assert_eq!(
            book.use_session("s2", &MINE, Instant::now()),
            Err(Denial::ForeignSession),
            "an idle session is gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_token_past_the_tracked_maximum_is_told_when_to_return() {
        let mut book = SessionBook::default();
        for n in 0..TRACKED_TOKENS_MAX {
            let digest: Digest = std::array::from_fn(|i| (n >> (8 * (i % 4))) as u8);
            open(&mut book, &digest, "s");
        }
        tokio::time::advance(Duration::from_secs(100)).await;
        let stranger = [0xff; 32];
        assert_eq!(
            book.reserve(&stranger, Instant::now()),
            Err(Denial::TooManySessions {
                retry_after_s: SESSION_IDLE.as_secs() - 100
            })
        );
        tokio::time::advance(SESSION_IDLE).await;
        assert_eq!(
            book.reserve(&stranger, Instant::now()),
            Ok(None),
            "idle tokens are forgotten"
        );
    }
}
