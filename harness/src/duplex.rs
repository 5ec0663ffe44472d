//! The servers and the orchestrator in one process, speaking real MCP over
//! in-memory pipes (`tokio::io::duplex`) with the same newline framing as
//! stdio and TCP. No network, no faults: the fastest way to ask the whole
//! stack a question, for the property tests.

use orchestrator::{Orchestrator, Policy};
use reference_servers::Data;

use crate::{Dataset, dataset::DatasetError};

/// An orchestrator over the reference servers loaded with `dataset`, all in
/// this process (`reference_servers::in_process`). Call it inside a tokio
/// runtime.
pub fn orchestrator(
    dataset: &Dataset,
    policy: Policy,
    seed: u64,
) -> Result<Orchestrator, DatasetError> {
    let (users, ledger) = dataset.stores()?;
    let servers = reference_servers::in_process(&Data::new(users, ledger));
    Ok(Orchestrator::new(servers, policy, seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Oracle;

    #[tokio::test]
    async fn answers_the_demo_question_like_the_oracle() {
        let dataset = Dataset::demo();
        let orchestrator = orchestrator(&dataset, Policy::DEFAULT, 1).unwrap();
        let question = "What are the recent transactions for bob@example.com?";
        let mut trace = Vec::new();
        let got = orchestrator.ask(question, &mut trace).await.unwrap();
        assert_eq!(
            Oracle::new(dataset)
                .answer(question)
                .check(&got, &got.render()),
            Ok(())
        );
        assert_eq!(trace.len(), 2, "two hops: {trace:?}");
        orchestrator.shutdown().await;
    }
}
