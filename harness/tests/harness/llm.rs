//! The LLM planner under the simulation, against the adversarial model
//! host (`scenarios/llm-adversary*.toml`): only true answers and typed
//! refusals, the adversary's plays really made, and the truthfulness check
//! able to fail.

use std::path::Path;

use harness::{Invariant, Outcome, PlantedBug, RunReport, Scenario};

fn scenario(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn count(report: &RunReport, f: impl Fn(&Outcome) -> bool) -> usize {
    report.queries.iter().filter(|q| f(&q.outcome)).count()
}

#[test]
fn an_adversarial_model_gets_only_true_answers_and_typed_refusals() {
    for file in ["llm-adversary.toml", "llm-adversary-tools.toml"] {
        let report = harness::run(&scenario(file), 1).unwrap();
        assert!(report.as_expected, "{file}: {:#?}", report.verdicts);
        let right = count(&report, |o| *o == Outcome::Right);
        let refused = count(&report, |o| matches!(o, Outcome::Error(_)));
        assert_eq!(
            right + refused,
            report.queries.len(),
            "{file}: a wrong answer"
        );
        assert!(
            right > 0 && refused > 0,
            "{file}: {right} right, {refused} refused"
        );
        // The adversary played: the trace counts its answers by play.
        let totals = report
            .trace
            .lines()
            .find(|l| l.starts_with("model: ") && l.contains(" answers: "))
            .unwrap_or_else(|| panic!("{file}: no model totals in the trace"));
        let plays = totals.matches(", ").count() + 1;
        assert!(plays >= 10, "{file}: only {plays} kinds of play: {totals}");
        assert!(totals.contains("faithful"), "{totals}");
        assert!(
            report.wire.contains("model < POST /v1/chat/completions"),
            "{file}: the wire log holds the model's conversation"
        );
        assert!(
            report
                .verdicts
                .iter()
                .all(|v| v.invariant != Invariant::Liveness),
            "{file}: liveness is not judged against an adversary"
        );
    }
}

/// The guards cannot be switched off from outside the orchestrator, and
/// no bug is planted in it; what a missing grounding guard would let
/// through, a user id from another question reaching a server, is planted
/// instead around its sessions (`stale-retry-arguments`: a retried call
/// re-sends the previous call's arguments). The truthfulness check then
/// finds an answer that is not true about the dataset.
#[test]
fn stale_arguments_planted_under_the_llm_planner_break_safety() {
    let mut scenario = scenario("llm-adversary.toml");
    scenario.planted_bug = Some(PlantedBug::StaleRetryArguments);
    let found = (1..=40).find_map(|seed| {
        let report = harness::run(&scenario, seed).unwrap();
        let wrong = report.queries.iter().find_map(|q| match &q.outcome {
            Outcome::Wrong { got, expected } => Some((got.clone(), expected.clone())),
            _ => None,
        });
        wrong.map(|w| (seed, report, w))
    });
    let (seed, report, (got, why)) = found.expect("the planted bug is caught within 40 seeds");
    assert!(!report.as_expected, "seed {seed}: safety must break");
    let safety = report
        .verdicts
        .iter()
        .find(|v| v.invariant == Invariant::Safety)
        .unwrap();
    assert!(!safety.held, "seed {seed}: {safety:?}");
    assert!(why.starts_with("a true answer, but "), "{why}\n{got}");
}
