//! `orchestrator`: ask questions that span MCP servers.
//!
//! Exit codes: 0 answered (an unknown user is an answer), 1 no answer
//! (servers failed or replied badly, or the LLM planner's model failed or
//! proposed a call a guard refused), 2 bad usage, config or question
//! (including one a tool refused, such as a malformed email, and one the
//! planner did not understand completely: the reply names the words it
//! could not use and lists the forms it answers), 130 and 143 stopped by
//! SIGINT (Ctrl-C) or SIGTERM, after closing every session.

use mcp_server_kit::say;

mod bench;
mod embedded;
mod signal;

use std::{future::Future, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use orchestrator::{
    Answer, AskError, CallError, Catalog, Config, Credential, LlmMode, LlmPlanner, LlmSettings,
    NetDialer, Orchestrator, PlanError, Planner, Policy, StepTrace, check_url,
};
use reference_servers::Role;

use embedded::Transport;
use signal::{Stop, Stopped};

/// Answers questions such as "What are the recent transactions for
/// bob@example.com?" by chaining tools across MCP servers.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Answer one question.
    Ask {
        /// The question, e.g. "What are the recent transactions for bob@example.com?"
        question: String,
        #[command(flatten)]
        servers: Servers,
        /// Print each step (server, tool, arguments, attempts, latency) on stderr.
        #[arg(long)]
        explain: bool,
        /// Print the answer as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        planner: PlannerArgs,
    },
    /// List every server's tools, namespaced server/tool.
    Tools {
        #[command(flatten)]
        servers: Servers,
    },
    /// Load generator: run the 2-hop demo query N times against the embedded
    /// reference servers, or the servers a --config file names, and report
    /// latency percentiles and throughput.
    Bench(bench::BenchArgs),
    /// Run a reference server on stdio (used by embedded stdio mode):
    /// user or payment.
    #[command(hide = true)]
    ServeEmbedded { role: Role },
}

/// Which planner chooses the calls.
#[derive(Debug, clap::Args)]
struct PlannerArgs {
    /// rules: the deterministic planner (reads the question completely or
    /// refuses). llm: a model behind an OpenAI-compatible endpoint chooses
    /// the calls, under guards. Default: the config's [planner] kind, else rules.
    #[arg(long, value_enum)]
    planner: Option<PlannerKind>,
    /// The model endpoint's base URL, e.g. http://127.0.0.1:8091/v1
    /// (overrides [planner] base_url).
    #[arg(long, value_name = "URL")]
    llm_url: Option<String>,
    /// The model name the endpoint expects (overrides [planner] model).
    #[arg(long, value_name = "NAME")]
    llm_model: Option<String>,
    /// How to ask the model: json_schema (a grammar of the grounded calls)
    /// or tools (native tool calling). Overrides [planner] mode.
    #[arg(long, value_name = "MODE", value_parser = ["json_schema", "tools"])]
    llm_mode: Option<String>,
    /// The environment variable holding the model endpoint's API key.
    #[arg(long, value_name = "VAR")]
    llm_key_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlannerKind {
    Rules,
    Llm,
}

/// Which servers to talk to.
#[derive(Debug, clap::Args)]
struct Servers {
    /// Servers and policy from this TOML file (see orchestrator.example.toml).
    /// Without it, both reference servers are started with the demo data.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Transport for the embedded servers (without --config).
    #[arg(long, value_enum, default_value_t = Transport::Stdio, conflicts_with = "config")]
    transport: Transport,
    /// Seed for retry jitter; the same seed replays the same backoff pauses.
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ServeEmbedded { role } = cli.command {
        mcp_server_kit::init_tracing("info,rmcp=warn");
        return exit(embedded::serve_stdio(role));
    }
    init_tracing(cli.verbose);
    // One thread: a question is a short chain of dependent calls, and
    // cross-thread wake-ups cost more than they win (2-hop over TCP: 318 us
    // multi-thread, 123 us current-thread). Embedded TCP/HTTP servers run
    // on a thread of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return exit(Err(error.into())),
    };
    let code = runtime.block_on(async {
        let stop = match signal::stop_signal() {
            Ok(stop) => stop,
            Err(error) => return exit(Err(error.into())),
        };
        match cli.command {
            Command::Ask {
                question,
                servers,
                explain,
                json,
                planner,
            } => ask(&question, &servers, &planner, explain, json, stop).await,
            Command::Tools { servers } => exit(tools(&servers, stop).await),
            Command::Bench(args) => exit(bench::run(args, stop).await),
            Command::ServeEmbedded { .. } => unreachable!("handled above"),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(Stopped(stop)) = error.downcast_ref::<Stopped>() {
                stop.report();
                return stop.exit_code();
            }
            eprintln!("error: {}", mcp_server_kit::describe(error.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8) {
    mcp_server_kit::init_tracing(match verbose {
        // rmcp logs transport noise at error level on ordinary failures;
        // the orchestrator reports those itself, with the server named.
        0 => "warn,rmcp=off",
        1 => "info,rmcp=warn",
        _ => "debug",
    });
}

/// The orchestrator the flags select, plus the embedded servers it needs alive.
async fn connect(
    servers: &Servers,
    planner: Option<&PlannerArgs>,
) -> anyhow::Result<(Orchestrator, Option<embedded::Embedded>)> {
    let seed = servers.seed.unwrap_or_else(random_seed);
    let config = servers
        .config
        .as_deref()
        .map(Config::from_file)
        .transpose()?;
    let policy = config.as_ref().map_or(Policy::DEFAULT, Config::policy);
    let llm = match planner {
        Some(args) => llm_planner(args, config.as_ref(), &policy)?,
        None => None,
    };
    let (orchestrator, embedded) = match &config {
        Some(config) => {
            let servers = config
                .servers()
                .iter()
                .map(|s| (s.name.clone(), s.transport.connector()))
                .collect();
            (Orchestrator::new(servers, policy, seed), None)
        }
        None => {
            let embedded = embedded::start(servers.transport).await?;
            let orchestrator = Orchestrator::new(embedded.servers.clone(), policy, seed);
            (orchestrator, Some(embedded))
        }
    };
    Ok(match llm {
        Some(llm) => (orchestrator.with_llm(llm), embedded),
        None => (orchestrator, embedded),
    })
}

/// The LLM planner the flags and the config ask for, if any: `--planner`
/// wins over `[planner] kind`, and each `--llm-*` flag over its setting.
fn llm_planner(
    args: &PlannerArgs,
    config: Option<&Config>,
    policy: &Policy,
) -> anyhow::Result<Option<LlmPlanner>> {
    let configured = config.map(|c| c.planner());
    let wanted = match args.planner {
        Some(kind) => kind == PlannerKind::Llm,
        None => matches!(configured, Some(Planner::Llm(_))),
    };
    if !wanted {
        return Ok(None);
    }
    if let Some(url) = &args.llm_url {
        check_url(url).map_err(|message| anyhow::anyhow!("--llm-url {message}"))?;
    }
    let from_config = config.and_then(Config::llm).cloned();
    let (url, model) = match (&args.llm_url, &args.llm_model, &from_config) {
        (Some(url), Some(model), _) => (url.clone(), model.clone()),
        (url, model, Some(settings)) => (
            url.clone().unwrap_or_else(|| settings.base_url.clone()),
            model.clone().unwrap_or_else(|| settings.model.clone()),
        ),
        _ => anyhow::bail!(
            "--planner llm needs a model: give --llm-url and --llm-model, or a [planner] table in --config"
        ),
    };
    let mut settings = from_config.unwrap_or_else(|| LlmSettings::new(&url, &model));
    (settings.base_url, settings.model) = (url, model);
    if let Some(mode) = &args.llm_mode {
        settings.mode = LlmMode::named(mode).expect("clap checked the mode");
    }
    if let Some(var) = &args.llm_key_env {
        settings.api_key = Some(Credential::Env(var.clone()));
    }
    Ok(Some(LlmPlanner::new(
        settings,
        NetDialer::default(),
        policy,
    )))
}

/// A seed from the OS's hash keys: this binary is not simulated.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Runs `work` unless a stop signal comes first, then closes every session
/// of `orchestrator` (and waits for them to close) either way.
async fn unless_stopped<T>(
    orchestrator: &Orchestrator,
    stop: impl Future<Output = Stop>,
    work: impl Future<Output = T>,
) -> Result<T, Stopped> {
    let outcome = tokio::select! {
        done = work => Ok(done),
        stop = stop => Err(Stopped(stop)),
    };
    orchestrator.shutdown().await;
    outcome
}

async fn ask(
    question: &str,
    servers: &Servers,
    planner: &PlannerArgs,
    explain: bool,
    json: bool,
    stop: impl Future<Output = Stop>,
) -> ExitCode {
    let (orchestrator, _embedded) = match connect(servers, Some(planner)).await {
        Ok(connected) => connected,
        Err(error) => return exit(Err(error)),
    };
    let mut trace = Vec::new();
    let work = answer(&orchestrator, question, explain, &mut trace);
    let result = match unless_stopped(&orchestrator, stop, work).await {
        Ok(result) => result,
        Err(stopped) => return exit(Err(stopped.into())),
    };
    if explain {
        print_trace(&trace);
    }
    let code = match &result {
        Ok(_) => ExitCode::SUCCESS,
        Err(AskError::Plan(_) | AskError::Tool { .. }) => ExitCode::from(2),
        Err(_) => ExitCode::FAILURE,
    };
    if json {
        let value = match &result {
            Ok(answer) => {
                serde_json::json!({ "question": question, "answer": answer, "steps": trace })
            }
            Err(error) => {
                let mut value = serde_json::json!({
                    "question": question,
                    "error": error.to_string(),
                    "transient": error.is_transient(),
                    "steps": trace,
                });
                if let AskError::Plan(PlanError::NotUnderstood { unused }) = error {
                    value["unused"] = serde_json::json!(unused);
                }
                value
            }
        };
        say!("{value}");
    } else {
        match &result {
            Ok(answer) => say!("{}", answer.render()),
            Err(AskError::Plan(error)) => eprintln!("{error}"),
            Err(AskError::Model(error)) => {
                eprintln!("error: the LLM planner gave no answer: {error}");
                if error.is_transient() {
                    eprintln!("(this may be temporary: asking again later may work)");
                }
                eprintln!(
                    "(nothing was guessed; ask with --planner rules for the deterministic planner)"
                );
            }
            Err(error) => {
                eprintln!("error: {error}");
                if error.is_transient() {
                    eprintln!("(this may be temporary: asking again later may work)");
                }
            }
        }
    }
    code
}

/// The answer to `question`; with `explain`, the catalog first, on stderr.
async fn answer(
    orchestrator: &Orchestrator,
    question: &str,
    explain: bool,
    trace: &mut Vec<StepTrace>,
) -> Result<Answer, AskError> {
    if explain {
        let started = tokio::time::Instant::now();
        let (catalog, down) = orchestrator.catalog().await;
        eprintln!(
            "catalog: {} tool(s) in {:.1} ms: {}",
            catalog.entries().len(),
            started.elapsed().as_secs_f64() * 1e3,
            catalog
                .entries()
                .iter()
                .map(|e| e.qualified_name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (server, error) in down {
            eprintln!("  unreachable: {server}: {error}");
        }
    }
    orchestrator.ask(question, trace).await
}

fn print_trace(trace: &[StepTrace]) {
    for step in trace {
        eprintln!(
            "step {}: {}/{} {}\n        {} · {} attempt(s) · {:.2} ms",
            step.step,
            step.server,
            step.tool,
            serde_json::Value::Object(step.arguments.clone()),
            step.outcome,
            step.attempts,
            step.latency.as_secs_f64() * 1e3,
        );
    }
}

async fn tools(servers: &Servers, stop: impl Future<Output = Stop>) -> anyhow::Result<()> {
    let (orchestrator, _embedded) = connect(servers, None).await?;
    let (catalog, down) = unless_stopped(&orchestrator, stop, orchestrator.catalog()).await?;
    print_tools(&catalog, &down)
}

fn print_tools(catalog: &Catalog, down: &[(String, CallError)]) -> anyhow::Result<()> {
    let width = catalog
        .entries()
        .iter()
        .map(|e| e.qualified_name().len())
        .max()
        .unwrap_or(0);
    for entry in catalog.entries() {
        let description = entry.tool.description.as_deref().unwrap_or("");
        let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
        let safety = if entry.retry_safe() {
            "read-only"
        } else {
            "may write"
        };
        say!(
            "{:width$}  {safety:9}  {description}",
            entry.qualified_name()
        );
    }
    if !down.is_empty() {
        let names: Vec<String> = down.iter().map(|(s, e)| format!("{s}: {e}")).collect();
        anyhow::bail!("unreachable: {}", names.join("; "));
    }
    if catalog.is_empty() {
        anyhow::bail!("no server offers any tool");
    }
    Ok(())
}
