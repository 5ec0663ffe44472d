//! Properties over generated datasets, questions and fault schedules.
//!
//! Case counts: `PROPTEST_CASES` when set (e.g. `PROPTEST_CASES=100000` for a
//! soak), otherwise each property's own default, chosen to keep `cargo test`
//! quick.

use std::path::Path;

use harness::{
    Dataset, Oracle, PlantedBug, Scenario,
    explore::{self, Settings},
    strategies::{self, QuestionSpec},
};
use orchestrator::{Answer, Policy};

pub(crate) use crate::fidelity::ask_plain_in_process;
use proptest::{prelude::*, test_runner::TestCaseError};

use crate::scenarios::{run_in_process_of_its_own, tempfile_dir};

/// `PROPTEST_CASES` if set, else `default`. (`ProptestConfig::with_cases`
/// would ignore the variable.)
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        ..ProptestConfig::default()
    }
}

/// Asks every question of `specs` through the real servers and
/// orchestrator, over in-memory MCP sessions, and compares with the oracle.
fn ask_in_process(dataset: &Dataset, specs: &[QuestionSpec]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let orchestrator = harness::duplex::orchestrator(dataset, Policy::DEFAULT, 1)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let oracle = Oracle::new(dataset.clone());
        for spec in specs {
            let asked = spec.resolve(dataset);
            let expected = oracle.expect(&asked.meaning);
            if expected.answer().is_none() {
                return Err(TestCaseError::fail(format!(
                    "{:?}: {expected:?}",
                    asked.text
                )));
            }
            let mut trace = Vec::new();
            let got: Answer = orchestrator
                .ask(&asked.text, &mut trace)
                .await
                .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", asked.text)))?;
            prop_assert_eq!(
                expected.check(&got, &got.render()),
                Ok(()),
                "{:?}",
                asked.text
            );
            // One hop for a user id or an unknown user, two otherwise.
            prop_assert_eq!(
                trace.len(),
                expected.hops(),
                "{:?}: {:?}",
                asked.text,
                trace
            );
        }
        orchestrator.shutdown().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 1: over real MCP sessions (in-memory pipes, newline
    /// framing), every answer equals the oracle's: order, cut and
    /// formatting included.
    #[test]
    fn in_process_every_answer_is_the_oracles(
        dataset in strategies::dataset(0..=6, 0..=40),
        specs in proptest::collection::vec(strategies::question_spec(0.2), 1..=8),
    ) {
        ask_in_process(&dataset, &specs)?;
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 1b, fidelity: over real MCP sessions, a question in any
    /// form is answered exactly as the oracle answers it, or, when it has
    /// a qualifier the planner does not read, refused with the words it
    /// could not use. Never the answer to a different question.
    #[test]
    fn in_process_every_plain_question_is_answered_as_meant_or_refused(
        dataset in strategies::dataset(0..=6, 0..=40),
        specs in proptest::collection::vec(strategies::plain_spec(0.2), 1..=8),
    ) {
        ask_plain_in_process(&dataset, &specs)?;
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Property 2: under the simulation, for any dataset and any generated
    /// fault schedule, every answer equals the oracle's or is a typed
    /// error, never a wrong, reordered or partial list; after the heal,
    /// every query is right.
    #[test]
    fn simulated_answers_are_right_or_typed_errors_and_heal(case in explore::case(4, harness::Transport::Tcp)) {
        explore::check(&case, None).map_err(|violation| {
            TestCaseError::fail(format!("{violation}\n{}", case.to_toml("failing", None)))
        })?;
    }
}

/// Property 3: with a bug planted around the orchestrator's sessions
/// (`harness::planted`: a retry that re-sends the previous call's arguments
/// after a reconnect), the search finds a failing case, shrinks it, writes
/// it out as a scenario file, and `harness run` replays the same failure in
/// a process of its own.
#[test]
fn a_planted_bug_is_found_shrunk_written_out_and_replayed() {
    let settings = Settings {
        cases: 64,
        planted: Some(PlantedBug::StaleRetryArguments),
        ..Settings::default()
    };
    let exploration = explore::explore(&settings, |_, _| {}).unwrap();
    let found = exploration
        .found
        .expect("64 generated cases must catch the planted bug");
    assert!(
        found.violation.contains("safety broke"),
        "{}",
        found.violation
    );

    // Shrunk: no bigger than the first failure anywhere, and minimal where
    // it matters: one fault, and the questions the stale retry mixes up
    // (two, unless removing one changes the timing that exposes the bug).
    let (original, shrunk) = (&found.original, &found.shrunk);
    assert!(shrunk.dataset.users.len() <= original.dataset.users.len());
    assert!(shrunk.dataset.transactions.len() <= original.dataset.transactions.len());
    assert!(shrunk.faults.len() <= original.faults.len());
    assert_eq!(shrunk.faults.len(), 1, "{}", found.scenario);
    assert!(shrunk.questions.len() <= original.questions.len());
    assert!(
        (2..=3).contains(&shrunk.questions.len()),
        "{}",
        found.scenario
    );

    // The file replays it: same scenario, same failure, in a new process.
    let dir = tempfile_dir("planted");
    let path = explore::output_path(&dir, &settings);
    std::fs::write(&path, &found.scenario).unwrap();
    let scenario = Scenario::from_file(&path).unwrap();
    assert_eq!(scenario.planted_bug, settings.planted);
    let replay = run_in_process_of_its_own(&path, scenario.seed);
    assert_eq!(replay["as_expected"], false, "{replay}");
    let safety = replay["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["invariant"] == "safety")
        .unwrap();
    assert_eq!(safety["held"], false, "{replay}");
    assert!(replay["wrong"].as_u64() > Some(0), "{replay}");

    // And without the bug, the same file passes: the bug was the cause.
    let fixed = found
        .scenario
        .replace("planted_bug = \"stale-retry-arguments\"\n", "");
    let fixed_path = dir.join("fixed.toml");
    std::fs::write(&fixed_path, fixed).unwrap();
    let replay = run_in_process_of_its_own(&fixed_path, scenario.seed);
    assert_eq!(replay["as_expected"], true, "{replay}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_scenario_naming_an_unknown_planted_bug_is_refused() {
    let error = Scenario::from_toml(
        Path::new("x.toml"),
        "name = \"x\"\nduration_ms = 1000\ntick_ms = 1\nplanted_bug = \"nonsense\"\n[workload]\nqueries = 1\ninterval_ms = 1\nquestions = [\"userid for a@b.c\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("x.toml:4: planted_bug: no bug called \"nonsense\""),
        "{error}"
    );
}
