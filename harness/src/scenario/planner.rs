//! `[planner]` and `[model]`: which planner the orchestrators use and, for
//! the LLM planner, how the simulated model host plays (`sim/model.rs`).
//!
//! The model host is an adversary, not a model: it plays the worst planner
//! it can, drawn from the seed, to check the orchestrator's guards. It does
//! not stand in for a real model.

use std::time::Duration;

use orchestrator::{LlmMode, LlmSettings};
use serde::{Deserialize, Serialize};

/// Which planner chooses the orchestrators' calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PlannerSetup {
    /// The deterministic planner; every answer is checked against the
    /// oracle's.
    #[default]
    Rules,
    /// A model chooses the calls, under the orchestrator's guards; every
    /// answer is checked for truthfulness.
    Llm(LlmSetup),
}

impl PlannerSetup {
    /// The LLM planner's setup, if a model chooses the calls.
    pub fn llm(&self) -> Option<&LlmSetup> {
        match self {
            PlannerSetup::Rules => None,
            PlannerSetup::Llm(setup) => Some(setup),
        }
    }

    /// Whether a model host plays some turns adversarially. Its refusals
    /// never stop, so liveness (every query right after the heal) is not
    /// checked then.
    pub fn is_adversarial(&self) -> bool {
        self.llm().is_some_and(|l| l.model.is_adversarial())
    }
}

/// The LLM planner as every client's orchestrator runs it, and the model
/// host it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSetup {
    pub mode: LlmMode,
    /// Most model turns per question.
    pub steps_max: u32,
    /// Longest wait for one model reply.
    pub request_timeout: Duration,
    pub model: ModelSettings,
}

/// How the simulated model host plays.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// The share of turns played adversarially; the rest are faithful.
    pub adversity: f64,
    /// Every answer takes between these two.
    pub think_min: Duration,
    pub think_max: Duration,
    /// The adversarial plays drawn from, each equally likely.
    pub plays: Vec<Play>,
}

impl ModelSettings {
    /// Whether some turns are played adversarially.
    pub fn is_adversarial(&self) -> bool {
        self.adversity > 0.0 && !self.plays.is_empty()
    }
}

/// One adversarial move of the model host (`[model] plays`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Play {
    /// An offered call, its values drawn at random from the menu.
    RandomCall,
    /// Done now, whatever is still unanswered.
    DoneEarly,
    /// A lookup of an address the question does not contain.
    StrangerEmail,
    /// A value from an earlier question's conversation: stale arguments.
    StaleValue,
    /// A user id nobody returned.
    InventedId,
    /// A tool no server offers.
    UnknownTool,
    /// An argument of the wrong JSON type, or out of range.
    WrongType,
    /// An argument the tool does not take.
    ExtraArgument,
    /// A call already made, again.
    Repeat,
    /// Content that is not a step: not JSON, cut short, no step.
    Malformed,
    /// A completion with no choices.
    EmptyChoices,
    /// A 200 whose body is not a chat completion.
    NotACompletion,
    /// The answer comes after the request timeout.
    Slow,
    /// The connection closes without an answer.
    Drop,
    /// HTTP 500.
    ServerError,
    /// HTTP 429, half of the time with `Retry-After`.
    RateLimited,
}

impl Play {
    /// Its name in a scenario file (`stale_value`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Every play, in the order they are drawn from.
    pub const ALL: [Play; 16] = [
        Play::RandomCall,
        Play::DoneEarly,
        Play::StrangerEmail,
        Play::StaleValue,
        Play::InventedId,
        Play::UnknownTool,
        Play::WrongType,
        Play::ExtraArgument,
        Play::Repeat,
        Play::Malformed,
        Play::EmptyChoices,
        Play::NotACompletion,
        Play::Slow,
        Play::Drop,
        Play::ServerError,
        Play::RateLimited,
    ];
}

/// `[planner] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PlannerKind {
    Rules,
    Llm,
}

/// `[planner] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModeName {
    JsonSchema,
    Tools,
}

/// `[planner]`, as in the orchestrator's config file, but for the model's
/// address, which is the simulation's `model` host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlannerTable {
    pub kind: PlannerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `[model]`: the simulated model host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_min_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_max_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plays: Option<Vec<Play>>,
}

/// Default share of adversarial turns.
const ADVERSITY_DEFAULT: f64 = 0.5;
/// Default thinking time of the model host, per answer.
const THINK_MIN_DEFAULT_MS: u64 = 20;
const THINK_MAX_DEFAULT_MS: u64 = 200;
/// Longest thinking time a scenario may set.
const THINK_LIMIT_MS: u64 = 60_000;
/// Longest model request timeout a scenario may set.
const TIMEOUT_LIMIT_MS: u64 = 600_000;

/// The `[planner]` table's setup.
pub(crate) fn validate_planner(table: &PlannerTable) -> Result<PlannerSetup, String> {
    if table.kind == PlannerKind::Rules {
        let extra = table.mode.is_some() || table.steps_max.is_some() || table.timeout_ms.is_some();
        return match extra {
            true => Err("mode, steps_max and timeout_ms are for kind = \"llm\"".into()),
            false => Ok(PlannerSetup::Rules),
        };
    }
    let defaults = LlmSettings::new("http://model/v1", "model");
    let steps_max = table.steps_max.unwrap_or(defaults.steps_max);
    if !(1..=LlmSettings::STEPS_LIMIT).contains(&steps_max) {
        return Err(format!(
            "steps_max must be between 1 and {}, got {steps_max}",
            LlmSettings::STEPS_LIMIT
        ));
    }
    let request_timeout = match table.timeout_ms {
        None => defaults.request_timeout,
        Some(ms @ 1..=TIMEOUT_LIMIT_MS) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(format!(
                "timeout_ms must be between 1 and {TIMEOUT_LIMIT_MS}, got {ms}"
            ));
        }
    };
    Ok(PlannerSetup::Llm(LlmSetup {
        mode: match table.mode {
            None | Some(ModeName::JsonSchema) => LlmMode::JsonSchema,
            Some(ModeName::Tools) => LlmMode::Tools,
        },
        steps_max,
        request_timeout,
        model: validate_model(&ModelTable::default())?,
    }))
}

/// The `[model]` table's settings.
pub(crate) fn validate_model(table: &ModelTable) -> Result<ModelSettings, String> {
    let adversity = table.adversity.unwrap_or(ADVERSITY_DEFAULT);
    if !(0.0..=1.0).contains(&adversity) {
        return Err(format!(
            "adversity must be between 0 and 1, got {adversity}"
        ));
    }
    let think_min = table.think_min_ms.unwrap_or(THINK_MIN_DEFAULT_MS);
    let think_max = table
        .think_max_ms
        .unwrap_or(THINK_MAX_DEFAULT_MS.max(think_min));
    if think_min > think_max {
        return Err(format!(
            "think_min_ms ({think_min}) must not exceed think_max_ms ({think_max})"
        ));
    }
    if think_max > THINK_LIMIT_MS {
        return Err(format!("think_max_ms must be at most {THINK_LIMIT_MS}"));
    }
    let plays = table.plays.clone().unwrap_or_else(|| Play::ALL.to_vec());
    if plays.is_empty() && adversity > 0.0 {
        return Err("plays is empty: name at least one play, or set adversity = 0".into());
    }
    Ok(ModelSettings {
        adversity,
        think_min: Duration::from_millis(think_min),
        think_max: Duration::from_millis(think_max),
        plays,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Invariant, Scenario, topology::Host};

    const BASE: &str = "name = \"t\"\nduration_ms = 60000\ntick_ms = 1\n[workload]\nqueries = 3\ninterval_ms = 100\n";

    fn parse(extra: &str) -> Result<Scenario, String> {
        Scenario::from_toml(Path::new("s.toml"), &format!("{BASE}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn without_a_planner_table_the_rules_plan_and_no_model_host_runs() {
        let s = parse("").unwrap();
        assert_eq!(s.planner, PlannerSetup::Rules);
        assert!(!s.topology.has_model());
        let named = parse("[[faults]]\nat_ms = 1\nkind = \"bounce\"\nhost = \"model\"\n");
        assert_eq!(
            named.unwrap_err(),
            "s.toml:7: faults[0]: unknown host \"model\"; hosts are client, user, payment"
        );
        let rules = parse("[planner]\nkind = \"rules\"\n").unwrap();
        assert_eq!(rules.planner, PlannerSetup::Rules);
    }

    #[test]
    fn an_llm_planner_gets_the_model_host_with_defaults_or_its_settings() {
        let s = parse("[planner]\nkind = \"llm\"\n").unwrap();
        let llm = s.planner.llm().unwrap();
        let defaults = LlmSettings::new("http://m/v1", "m");
        assert_eq!(
            (llm.mode, llm.steps_max, llm.request_timeout),
            (
                LlmMode::JsonSchema,
                defaults.steps_max,
                defaults.request_timeout
            )
        );
        assert_eq!(llm.model.adversity, 0.5);
        assert_eq!(llm.model.plays, Play::ALL);
        assert!(s.planner.is_adversarial());
        assert_eq!(s.topology.resolve("model"), Ok(Host::Model));
        let tools = parse(
            "[planner]\nkind = \"llm\"\nmode = \"tools\"\nsteps_max = 4\ntimeout_ms = 900\n\
             [model]\nadversity = 0.25\nthink_min_ms = 5\nthink_max_ms = 9\nplays = [\"drop\", \"stale_value\"]\n\
             [[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"model\"\ntoxic = \"drop\"\n",
        )
        .unwrap();
        let llm = tools.planner.llm().unwrap();
        assert_eq!(
            (llm.mode, llm.steps_max, llm.request_timeout),
            (LlmMode::Tools, 4, Duration::from_millis(900))
        );
        assert_eq!(
            llm.model,
            ModelSettings {
                adversity: 0.25,
                think_min: Duration::from_millis(5),
                think_max: Duration::from_millis(9),
                plays: vec![Play::Drop, Play::StaleValue],
            }
        );
        assert_eq!(tools.faults[0].kind.toxic_target(), Some(Host::Model));
        assert_eq!(Play::StaleValue.name(), "stale_value");
    }

    #[test]
    fn bad_planner_and_model_tables_are_named_with_their_line() {
        let llm = "[planner]\nkind = \"llm\"\n";
        let cases = [
            (
                "[planner]\nkind = \"gpt\"\n".to_owned(),
                "s.toml:8: unknown variant `gpt`, expected `rules` or `llm`",
            ),
            (
                format!("{llm}mode = \"chat\"\n"),
                "s.toml:9: unknown variant `chat`, expected `json_schema` or `tools`",
            ),
            (
                format!("{llm}steps_max = 0\n"),
                "s.toml:7: [planner]: steps_max must be between 1 and 32, got 0",
            ),
            (
                format!("{llm}timeout_ms = 0\n"),
                "s.toml:7: [planner]: timeout_ms must be between 1 and 600000, got 0",
            ),
            (
                "[planner]\nkind = \"rules\"\nmode = \"tools\"\n".to_owned(),
                "s.toml:7: [planner]: mode, steps_max and timeout_ms are for kind = \"llm\"",
            ),
            (
                "[model]\nadversity = 0.5\n".to_owned(),
                "s.toml:7: [model]: the model host serves the LLM planner: set [planner] kind = \"llm\"",
            ),
            (
                format!("{llm}[model]\nadversity = 1.5\n"),
                "s.toml:9: [model]: adversity must be between 0 and 1, got 1.5",
            ),
            (
                format!("{llm}[model]\nthink_min_ms = 9\nthink_max_ms = 5\n"),
                "s.toml:9: [model]: think_min_ms (9) must not exceed think_max_ms (5)",
            ),
            (
                format!("{llm}[model]\nplays = []\n"),
                "s.toml:9: [model]: plays is empty: name at least one play, or set adversity = 0",
            ),
            (
                format!(
                    "{llm}[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"stall\"\nhost = \"model\"\ndelay_ms = 5\n"
                ),
                "s.toml:9: faults[0]: stall applies to a server; \"model\" is not one",
            ),
            (
                format!(
                    "{llm}[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"client\"\ntoxic = \"drop\"\n"
                ),
                "s.toml:9: faults[0]: proxy drop applies to a server or the model host; \"client\" is not one",
            ),
        ];
        for (extra, expected) in cases {
            assert_eq!(parse(&extra).unwrap_err(), expected, "{extra}");
        }
        let unknown = parse(&format!("{llm}[model]\nplays = [\"bribe\"]\n")).unwrap_err();
        assert!(
            unknown
                .starts_with("s.toml:10: unknown variant `bribe`, expected one of `random_call`"),
            "{unknown}"
        );
        let stray = parse(&format!("{llm}[model]\ncolour = 1\n")).unwrap_err();
        assert!(
            stray.starts_with("s.toml:10: unknown field `colour`"),
            "{stray}"
        );
    }

    #[test]
    fn liveness_is_checked_only_against_a_faithful_model() {
        let file = |model: &str| {
            format!(
                "expect = \"fail\"\n{BASE}[planner]\nkind = \"llm\"\n{model}\
                 [invariants]\nexpected_to_break = \"liveness\"\n"
            )
        };
        let error = Scenario::from_toml(Path::new("s.toml"), &file(""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expected_to_break = \"liveness\" but [invariants] does not set it up"),
            "{error}"
        );
        let faithful =
            Scenario::from_toml(Path::new("s.toml"), &file("[model]\nadversity = 0\n")).unwrap();
        assert!(!faithful.planner.is_adversarial());
        assert_eq!(faithful.expect_fail, Some(Invariant::Liveness));
    }
}
