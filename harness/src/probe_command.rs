//! `harness probe`: property-tested conformance for any MCP server (the
//! checks live in the `mcp-probe` crate; this is its command line).

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use mcp_probe::{
    HttpUrl, Options, Progress, Report, Revision, Target,
    replay::{self, ReplayFile},
    report::{self, Written},
};
use mcp_server_kit::say;

/// Probe any MCP server: `--stdio -- PROGRAM [ARGS…]` or `--url URL`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every MUST holds, 1 one does not, 2 bad usage or a server that cannot be started or reached."
)]
pub(crate) struct ProbeArgs {
    /// Generated sequences per property.
    #[arg(long, default_value_t = 64)]
    cases: u32,
    /// Seeds the generators: the same seed sends the same sequences.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The protocol revision(s) to probe: 2025-11-25, 2026-07-28 or all.
    #[arg(long, default_value = "all", value_name = "REVISION")]
    spec: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Where minimal failures are written, as replay files.
    #[arg(long, value_name = "DIR", default_value = "probe-failures")]
    out: PathBuf,
    /// Rerun exactly the exchange in a replay file (against the server given).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Also call tools not marked readOnlyHint (they may change data).
    #[arg(long)]
    allow_writes: bool,
    /// Start the server as a child process: `--stdio -- PROGRAM [ARGS…]`.
    #[arg(long, conflicts_with = "url")]
    stdio: bool,
    /// Probe a streamable-HTTP endpoint.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A header sent on every HTTP request, e.g. 'Authorization: Bearer …'.
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "url")]
    headers: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    command: Vec<OsString>,
}

/// Runs the probe, or a replay; `Ok(false)` when a MUST does not hold.
pub(crate) fn probe(args: &ProbeArgs) -> anyhow::Result<bool> {
    let target = target(args)?;
    if let Some(file) = &args.replay {
        return replay(&target, file);
    }
    let options = Options {
        cases: args.cases,
        seed: args.seed,
        revisions: revisions(&args.spec)?,
        allow_writes: args.allow_writes,
    };
    let bar = Bar::new(args.quiet || args.json);
    let report = mcp_probe::probe(&target, &options, &bar)?;
    bar.0.finish_and_clear();
    let written = write_replays(&report, &target, args)?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report::json(&report, &written))?
        );
    } else {
        say!("{}", report::text(&report, &written).trim_end());
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.passed())
}

fn target(args: &ProbeArgs) -> anyhow::Result<Target> {
    match (&args.url, args.stdio) {
        (Some(url), false) => {
            if !args.command.is_empty() {
                bail!(
                    "--url takes no program after `--`; for a child process use --stdio -- PROGRAM [ARGS…]"
                );
            }
            let url = HttpUrl::parse(url).map_err(anyhow::Error::msg)?;
            let headers = args
                .headers
                .iter()
                .map(|h| header(h))
                .collect::<anyhow::Result<_>>()?;
            Ok(Target::Http { url, headers })
        }
        (None, true) => {
            let Some((program, rest)) = args.command.split_first() else {
                bail!(
                    "--stdio needs the server's command after `--`: harness probe --stdio -- PROGRAM [ARGS…]"
                );
            };
            Ok(Target::Stdio {
                program: program.clone(),
                args: rest.to_vec(),
            })
        }
        _ => bail!("say which server to probe: --stdio -- PROGRAM [ARGS…], or --url URL"),
    }
}

fn header(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.to_owned(), value.trim().to_owned()))
        }
        _ => bail!("--header {text:?}: expected 'NAME: VALUE'"),
    }
}

fn revisions(spec: &str) -> anyhow::Result<Vec<Revision>> {
    match spec {
        "all" => Ok(Revision::ALL.to_vec()),
        name => match Revision::named(name) {
            Some(revision) => Ok(vec![revision]),
            None => bail!("--spec {name:?}: expected 2025-11-25, 2026-07-28 or all"),
        },
    }
}

/// Writes a replay file for each shrunk failure, with its command.
fn write_replays(
    report: &Report,
    target: &Target,
    args: &ProbeArgs,
) -> anyhow::Result<Vec<Written>> {
    let mut written = Vec::new();
    for revision in &report.revisions {
        for shrunk in &revision.shrunk {
            let mut file = ReplayFile::new(target, revision.revision, report.seed, shrunk);
            let path = args.out.join(file.file_name());
            file.command = format!(
                "harness probe --replay {} {}",
                path.display(),
                target_args(args)
            );
            let path = file.write(&args.out)?;
            written.push(Written {
                revision: revision.revision,
                check: shrunk.finding.check.id,
                path,
                command: file.command,
            });
        }
    }
    Ok(written)
}

/// The target as the command line gave it, header values left out (they
/// may hold tokens).
fn target_args(args: &ProbeArgs) -> String {
    match &args.url {
        Some(url) => {
            let headers: String = args
                .headers
                .iter()
                .map(|h| format!(" --header '{}: …'", h.split(':').next().unwrap_or(h)))
                .collect();
            format!("--url {url}{headers}")
        }
        None => {
            let words: Vec<String> = args
                .command
                .iter()
                .map(|w| shell_word(&w.to_string_lossy()))
                .collect();
            format!("--stdio -- {}", words.join(" "))
        }
    }
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `--replay FILE`: the exchange again, and whether its check still fails.
fn replay(target: &Target, file: &Path) -> anyhow::Result<bool> {
    let saved = ReplayFile::read(file)?;
    let replayed = replay::replay(target, file)?;
    say!(
        "replay {} ({} at {}, seed {}) against {target}",
        file.display(),
        saved.check,
        saved.revision,
        saved.seed
    );
    for step in &replayed.steps {
        say!("  → {}", mcp_probe::checks::clip(&step.sent, 400));
        step.got
            .iter()
            .for_each(|got| say!("  ← {}", mcp_probe::checks::clip(got, 400)));
    }
    match &replayed.finding {
        Some(finding) if replayed.failed => say!("FAIL  {}: {}", saved.check, finding.detail),
        Some(finding) => say!("warn  {}: {}", saved.check, finding.detail),
        None => say!("ok    {}: the exchange no longer shows it", saved.check),
    }
    Ok(!replayed.failed)
}

/// A progress bar on stderr, one phase at a time.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(hidden: bool) -> Bar {
        if hidden {
            return Bar(indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{msg:28} [{bar:30}] {pos}/{len} sequences ({per_sec})",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        Bar(bar)
    }
}

impl Progress for Bar {
    fn phase(&self, label: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(label.to_owned());
    }

    fn tick(&self) {
        self.0.inc(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_specs_are_read_or_refused_with_the_form_expected() {
        assert_eq!(
            header("Authorization: Bearer x").unwrap(),
            ("Authorization".into(), "Bearer x".into())
        );
        assert!(
            header("no colon")
                .unwrap_err()
                .to_string()
                .contains("NAME: VALUE")
        );
        assert_eq!(revisions("all").unwrap().len(), 2);
        assert!(
            revisions("2025-06-18")
                .unwrap_err()
                .to_string()
                .contains("2025-11-25")
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(
            shell_word("target/debug/user-server"),
            "target/debug/user-server"
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
