//! Limits over the whole run (stdio): the child stays alive and answering,
//! and its resident memory stays bounded.

use super::{Finding, LIMITS_ALIVE, LIMITS_RSS, Ledger};
use crate::run::Live;

/// Resident memory may grow to twice its first reading, plus this much.
const RSS_SLACK_KIB: u64 = 64 << 10;

/// Judges the limits from `live`, the session the generated properties
/// used; a session it had to replace counts against it.
pub(crate) async fn limits(live: &mut Live<'_>, ledger: &mut Ledger) {
    if live.target.is_http() {
        for check in [&LIMITS_ALIVE, &LIMITS_RSS] {
            ledger.skip(check, "only over --stdio, where the probe owns the process");
        }
        return;
    }
    alive(live, ledger).await;
    rss(live, ledger);
}

async fn alive(live: &mut Live<'_>, ledger: &mut Ledger) {
    let broken = live.broken;
    let finding = match live.session().await {
        Err(error) => Some(format!(
            "after the run, a fresh session could not be opened: {error}"
        )),
        Ok(session) => match control(session).await {
            Err(error) => Some(format!(
                "after the run, the control request failed: {error}"
            )),
            Ok(answer) if answer.get("result").is_none() => {
                Some(format!("after the run, the control request got {answer}"))
            }
            Ok(_) if broken > 0 => Some(format!(
                "the server process had to be restarted {broken} time(s) during the run"
            )),
            Ok(_) => None,
        },
    };
    ledger.check(
        &LIMITS_ALIVE,
        finding.map(|d| Finding::new(&LIMITS_ALIVE, d)),
    );
}

fn rss(live: &mut Live<'_>, ledger: &mut Ledger) {
    live.sample_rss();
    let Some(first) = live.rss_first_kib else {
        ledger.skip(
            &LIMITS_RSS,
            "the child's memory could not be read from /proc",
        );
        return;
    };
    let bound = 2 * first + RSS_SLACK_KIB;
    let peak = live.rss_peak_kib;
    let finding = (peak > bound).then(|| {
        Finding::new(
            &LIMITS_RSS,
            format!("resident memory grew from {first} KiB to {peak} KiB (bound {bound} KiB)"),
        )
    });
    ledger.check(&LIMITS_RSS, finding);
}

async fn control(
    session: &mut crate::session::Session,
) -> Result<serde_json::Value, crate::target::LinkError> {
    let request = session.control_ping();
    session.call_raw(request).await
}
