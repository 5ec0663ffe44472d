//! Replay files: a shrunk failure's minimal case, with the check, the seed
//! and the exchange it had, written where `--out` says; `--replay FILE`
//! runs exactly that case again, against the same server or a fixed one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Shrunk,
    checks::{self, Finding, Ledger, Level, Step},
    run::{self, Live, Property},
    session::{Revision, Session},
    target::Target,
};

/// What a replay file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayFile {
    /// The version of the probe that wrote it.
    pub probe: String,
    /// The server it failed against, as the report names it.
    pub target: String,
    pub revision: Revision,
    pub check: String,
    pub seed: u64,
    /// The generated property the case belongs to.
    pub property: String,
    /// The minimal case, as the property generates it.
    pub case: Value,
    /// The messages sent, in order, and what came back.
    pub exchange: Vec<Step>,
    /// The command that replays it.
    pub command: String,
}

/// Why a replay file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a replay file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path}: property {property:?} is not one this probe knows (framing, before-initialize, tool-calls)"
    )]
    Property { path: PathBuf, property: String },
    #[error("{path}: its case does not fit property {property}: {source}")]
    Case {
        path: PathBuf,
        property: String,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Probe(#[from] crate::ProbeError),
}

impl ReplayFile {
    pub fn new(target: &Target, revision: Revision, seed: u64, shrunk: &Shrunk) -> ReplayFile {
        ReplayFile {
            probe: env!("CARGO_PKG_VERSION").to_owned(),
            target: target.to_string(),
            revision,
            check: shrunk.finding.check.id.to_owned(),
            seed,
            property: shrunk.property.to_owned(),
            case: shrunk.case.clone(),
            exchange: shrunk.finding.exchange.clone(),
            command: String::new(),
        }
    }

    /// The file name it is written under: the check and the revision.
    pub fn file_name(&self) -> String {
        format!("{}-{}.json", self.check, self.revision)
    }

    /// Writes it into `dir` (made if missing); returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReplayError> {
        let path = dir.join(self.file_name());
        let write = |source| ReplayError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let text = serde_json::to_string_pretty(self).expect("a replay file serializes");
        std::fs::write(&path, text + "\n").map_err(write)?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<ReplayFile, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
            path: path.into(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReplayError::Parse {
            path: path.into(),
            source,
        })
    }
}

/// What replaying a file came to.
#[derive(Debug)]
pub struct Replayed {
    /// The file's check failed again.
    pub failed: bool,
    /// The file's check's finding this time, if it failed again.
    pub finding: Option<Finding>,
    pub steps: Vec<Step>,
}

/// Runs the file's case once on a fresh session of `target`.
pub fn replay(target: &Target, path: &Path) -> Result<Replayed, ReplayError> {
    let file = ReplayFile::read(path)?;
    let rt = crate::runtime().map_err(crate::ProbeError::from)?;
    let mut live = Live::new(target, file.revision);
    let fit = |source| ReplayError::Case {
        path: path.into(),
        property: file.property.clone(),
        source,
    };
    let outcome = match file.property.as_str() {
        "framing" => run::replay_case(
            &rt,
            &checks::jsonrpc::Framing {
                http: target.is_http(),
            },
            &mut live,
            file.case.clone(),
        ),
        "before-initialize" => run::replay_case(
            &rt,
            &checks::lifecycle::BeforeInitialize,
            &mut live,
            file.case.clone(),
        ),
        "tool-calls" => {
            let calls = rt.block_on(listed_tools(target, file.revision))?;
            run::replay_case(&rt, &calls, &mut live, file.case.clone())
        }
        other => {
            return Err(ReplayError::Property {
                path: path.into(),
                property: other.to_owned(),
            });
        }
    }
    .map_err(fit)?;
    let finding = outcome
        .findings
        .into_iter()
        .find(|f| f.check.id == file.check);
    let failed = finding
        .as_ref()
        .is_some_and(|f| f.check.level == Level::Must);
    Ok(Replayed {
        failed,
        finding,
        steps: outcome.steps,
    })
}

/// Every tool the server lists, callable or not: the file says which it calls.
async fn listed_tools(
    target: &Target,
    revision: Revision,
) -> Result<checks::tools::ToolCalls, crate::ProbeError> {
    let unreachable = |error: String| crate::ProbeError::Unreachable {
        target: target.to_string(),
        source: crate::LinkError::Unreachable {
            url: target.to_string(),
            reason: error,
        },
    };
    let mut session = Session::open(target, revision)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let tools = checks::lifecycle::tools(&mut session, &mut Ledger::default())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(checks::tools::ToolCalls::callable(
        &tools.unwrap_or_default(),
        true,
    ))
}

/// The name a property has in replay files, for each the probe runs.
pub fn properties() -> [&'static str; 3] {
    [
        checks::jsonrpc::Framing { http: false }.name(),
        checks::lifecycle::BeforeInitialize.name(),
        checks::tools::ToolCalls { tools: Vec::new() }.name(),
    ]
}
