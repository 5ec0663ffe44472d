//! Deliberately planted bugs, for proving that the property tests find,
//! shrink and replay a real defect. The buggy code is compiled only with
//! the `planted-bug` feature, and even then runs only when a caller plants
//! it with [`Orchestrator::plant`](crate::Orchestrator::plant); release
//! builds of the binaries never contain it.

use std::{collections::BTreeMap, sync::Mutex};

use serde_json::{Map, Value};

/// Whether this build can plant bugs (the `planted-bug` feature).
pub const BUILT_IN: bool = cfg!(feature = "planted-bug");

/// A bug that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// After a failed attempt (and so a reconnect), the retry re-sends the
    /// arguments of the previous call to that server instead of this one's:
    /// a stale request cache. The payment server then returns another
    /// user's transactions.
    StaleRetryArguments,
}

impl PlantedBug {
    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::StaleRetryArguments => "stale-retry-arguments",
        }
    }

    /// The bug a scenario file names, if any is called that.
    pub fn from_name(name: &str) -> Option<Self> {
        [PlantedBug::StaleRetryArguments]
            .into_iter()
            .find(|bug| bug.name() == name)
    }
}

/// Why a bug could not be planted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this build has no planted bugs: build with the `planted-bug` feature \
     (e.g. `cargo run -p harness --features planted-bug -- run FILE`)"
)]
pub struct NotBuiltIn;

/// The state a planted bug needs: the last arguments sent to each server.
#[derive(Debug, Default)]
pub(crate) struct Planted {
    bug: Option<PlantedBug>,
    last: Mutex<BTreeMap<String, Map<String, Value>>>,
}

impl Planted {
    pub(crate) fn plant(&mut self, bug: PlantedBug) -> Result<(), NotBuiltIn> {
        if BUILT_IN {
            self.bug = Some(bug);
            Ok(())
        } else {
            Err(NotBuiltIn)
        }
    }

    /// Remembers `arguments` as the last ones sent to `server`, and returns
    /// what the planted bug would send on a retry instead: the previous
    /// call's arguments. `None` when no bug is planted (always, without the
    /// feature).
    pub(crate) fn stale_arguments(
        &self,
        server: &str,
        arguments: &Map<String, Value>,
    ) -> Option<Map<String, Value>> {
        if !BUILT_IN || self.bug != Some(PlantedBug::StaleRetryArguments) {
            return None;
        }
        let mut last = self.last.lock().expect("planted-bug lock");
        last.insert(server.to_owned(), arguments.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let bug = PlantedBug::StaleRetryArguments;
        assert_eq!(PlantedBug::from_name(bug.name()), Some(bug));
        assert_eq!(PlantedBug::from_name("nonsense"), None);
    }

    #[test]
    fn nothing_is_planted_unless_asked() {
        let planted = Planted::default();
        let args = Map::from_iter([("userId".to_owned(), Value::from("a"))]);
        assert_eq!(planted.stale_arguments("payment", &args), None);
        assert_eq!(planted.stale_arguments("payment", &args), None);
    }

    #[test]
    fn a_planted_bug_replays_the_previous_call_or_says_it_is_not_built_in() {
        let mut planted = Planted::default();
        let result = planted.plant(PlantedBug::StaleRetryArguments);
        if BUILT_IN {
            assert_eq!(result, Ok(()));
            let a = Map::from_iter([("userId".to_owned(), Value::from("a"))]);
            let b = Map::from_iter([("userId".to_owned(), Value::from("b"))]);
            assert_eq!(planted.stale_arguments("payment", &a), None);
            assert_eq!(planted.stale_arguments("payment", &b), Some(a));
        } else {
            assert_eq!(result, Err(NotBuiltIn));
        }
    }
}
