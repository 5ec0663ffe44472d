//! Fidelity of the default planner: a question is answered exactly as the
//! oracle answers it, or refused; never another question's answer. And the
//! figures: for each form, how many questions the planner answers and how
//! many it refuses (`cargo test -p harness --test harness fidelity --
//! --nocapture` prints them).

use std::collections::BTreeMap;

use harness::{
    Dataset, Meaning, Oracle,
    strategies::{self, PlainSpec},
};
use orchestrator::{AskError, Orchestrator, PlanError, Policy};
use proptest::test_runner::TestCaseError;

/// What became of one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answered,
    /// Refused, naming a qualifier the planner does not read.
    Unread,
    /// Refused where the oracle expects no answer for another reason (a
    /// count the server refuses, a history longer than a listing).
    Refused,
}

/// Asks one generated question and checks the reply against the oracle:
/// an answer must be the oracle's, a question the planner cannot read must
/// be refused naming what it could not use, and one it can read must be
/// answered (or refused where the oracle expects no answer).
async fn ask_one(
    orchestrator: &Orchestrator,
    oracle: &Oracle,
    spec: &PlainSpec,
) -> Result<(Fate, Vec<&'static str>), TestCaseError> {
    let asked = spec.resolve(oracle.dataset());
    let expected = oracle.expect(&asked.meaning);
    let mut trace = Vec::new();
    let result = orchestrator.ask(&asked.text, &mut trace).await;
    let text = &asked.text;
    let fate = match (&result, &asked.meaning) {
        (Ok(got), _) => {
            expected
                .check(got, &got.render())
                .map_err(|m| TestCaseError::fail(format!("{text:?}: {m:?}")))?;
            if trace.len() != expected.hops() {
                return Err(TestCaseError::fail(format!("{text:?}: {trace:?}")));
            }
            Fate::Answered
        }
        (Err(AskError::Plan(PlanError::NotUnderstood { unused })), Meaning::Unreadable { .. })
            if !unused.is_empty() =>
        {
            Fate::Unread
        }
        (Err(AskError::Tool { .. } | AskError::Incomplete { .. }), Meaning::Asked { .. })
            if expected.answer().is_none() =>
        {
            Fate::Refused
        }
        (Err(error), _) => {
            return Err(TestCaseError::fail(format!(
                "{text:?} ({:?}) got {error}, expected {expected:?}",
                asked.meaning
            )));
        }
    };
    Ok((fate, asked.forms))
}

/// Asks every question of `specs` about `dataset` through the real servers
/// and orchestrator over in-memory MCP sessions.
pub(crate) fn ask_plain_in_process(
    dataset: &Dataset,
    specs: &[PlainSpec],
) -> Result<(), TestCaseError> {
    tally(dataset, specs).map(|_| ())
}

/// What became of each question, with its forms.
fn tally(
    dataset: &Dataset,
    specs: &[PlainSpec],
) -> Result<Vec<(Fate, Vec<&'static str>)>, TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let orchestrator = harness::duplex::orchestrator(dataset, Policy::DEFAULT, 1)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let oracle = Oracle::new(dataset.clone());
        let mut fates = Vec::with_capacity(specs.len());
        for spec in specs {
            fates.push(ask_one(&orchestrator, &oracle, spec).await?);
        }
        orchestrator.shutdown().await;
        Ok(fates)
    })
}

/// Datasets drawn with these seeds, and this many questions about each.
const DATASETS: u64 = 20;
const QUESTIONS_EACH: usize = 100;

/// The figures: per form, answered and refused, over 2,000 questions about
/// 20 generated datasets (seeds fixed, so the figures are the same on every
/// run). Every question the planner should read is answered as the oracle
/// says; every one with a qualifier it does not read is refused.
#[test]
fn fidelity_figures_per_form() {
    let mut figures: BTreeMap<&'static str, [u32; 3]> = BTreeMap::new();
    for seed in 0..DATASETS {
        let dataset = strategies::sample(&strategies::dataset(1..=6, 0..=40), seed).unwrap();
        let specs = strategies::sample(
            &proptest::collection::vec(strategies::plain_spec(0.2), QUESTIONS_EACH),
            seed,
        )
        .unwrap();
        let fates = tally(&dataset, &specs).unwrap_or_else(|e| panic!("dataset seed {seed}: {e}"));
        for (fate, forms) in fates {
            for form in std::iter::once("(every question)").chain(forms) {
                figures.entry(form).or_default()[fate as usize] += 1;
            }
        }
    }
    eprintln!(
        "{:<34} {:>8} {:>16} {:>14}",
        "form", "answered", "refused: unread", "refused: other"
    );
    for (form, [answered, unread, other]) in &figures {
        eprintln!("{form:<34} {answered:>8} {unread:>16} {other:>14}");
    }
    let every = figures["(every question)"];
    assert_eq!(
        every.iter().sum::<u32>(),
        (DATASETS as u32) * QUESTIONS_EACH as u32
    );
    for form in [
        "a total",
        "a count",
        "the oldest n",
        "since",
        "between",
        "over an amount",
        "several addresses",
    ] {
        assert!(
            figures.get(form).is_some_and(|f| f[0] > 0),
            "no {form} answered: {figures:?}"
        );
    }
    assert!(
        figures
            .get("a merchant")
            .is_some_and(|f| f[0] == 0 && f[1] > 0),
        "{figures:?}"
    );
}
