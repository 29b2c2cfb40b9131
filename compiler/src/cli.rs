//! The `ehs` command line.
//!
//! Exit codes: 0 = success / no differences, 1 = the check found something (validation findings,
//! stale `rendered/`, differences), 2 = error (bad input, unreadable files). Warnings are printed
//! but count as findings only with `--deny-warnings`.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::diff;
use crate::emit;
use crate::load::{Repo, RENDERED_DIR};
use crate::model::Environment;
use crate::pipeline::{self, Compiled, PipelineError, Shared};
use crate::validate::Crds;

/// Compiles EHS environments (`environments/*.yaml` + `components/`) into plain Kubernetes
/// manifests under `rendered/<env>/`, ready for Argo CD or Flux.
#[derive(Debug, Parser)]
#[command(name = "ehs", version, propagate_version = true)]
pub struct Cli {
    /// Repository root. Default: the nearest directory at or above the current one that holds
    /// `environments/`.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write `rendered/<env>/` for one or more environments (all of them by default).
    ///
    /// Every selected environment is compiled and validated before anything is written; on any
    /// error or finding nothing changes. Files no longer produced are removed.
    Render {
        #[command(flatten)]
        selection: Selection,
        /// Write nothing; exit 1 with the findings and a diff if validation fails or `rendered/`
        /// differs from a fresh render (for CI).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        checks: Checks,
    },
    Diff(diff::command::DiffArgs),
    /// Check every object against its kind's JSON Schema, cross-object references and platform
    /// invariants. Prints one line per finding; exit 1 if there is any (warnings count only with
    /// `--deny-warnings`).
    Validate {
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        checks: Checks,
    },
    /// Copy one component's image pins (its `image` and `*Image` settings) from one environment
    /// file to another, as a minimal edit of the target file (comments and formatting kept),
    /// then render the target environment. Prints each pin that changed. Afterwards the target
    /// sets exactly the pins the source sets (one the source leaves to the defaults is removed).
    /// If the target no longer validates, its file is restored and nothing is rendered.
    Promote {
        /// The environment whose pins are copied (file stem in `environments/`).
        #[arg(long, value_name = "ENV")]
        from: String,
        /// The environment file that is edited and rendered.
        #[arg(long, value_name = "ENV")]
        to: String,
        /// The component, e.g. `bridge`.
        component: String,
    },
    /// Print an environment's connection graph: every flow the NetworkPolicies allow (everything
    /// else is denied), as text or as Graphviz DOT (`ehs graph --env prod --format dot | dot
    /// -Tsvg`).
    Graph {
        /// Environment (file stem in `environments/`).
        #[arg(long, value_name = "ENV")]
        env: String,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Print the JSON Schema of environment files (what editors check while typing).
    Schema {
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct Selection {
    /// Environment to process (file stem in `environments/`); repeat for several.
    #[arg(long = "env", value_name = "ENV", conflicts_with = "all")]
    environments: Vec<String>,
    /// Every environment in `environments/` (the default when no --env is given).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct Checks {
    /// Also check every custom resource against the `openAPIV3Schema` of its
    /// CustomResourceDefinition, read from the `*.yaml` files in DIR (unknown fields fail, as
    /// with a strict server-side apply). A custom resource whose CRD is not there is a finding.
    #[arg(long, value_name = "DIR")]
    crds: Option<PathBuf>,
    /// Treat warnings (printed as `warning:`, e.g. HiveMQ without a licence in production) as
    /// findings: exit 1 and, for `render`, write nothing.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    /// One line per flow: from -> to, ports, the Service it goes through, who declares it and why.
    Text,
    /// Graphviz DOT.
    Dot,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ColourChoice {
    Auto,
    Always,
    Never,
}

impl ColourChoice {
    pub fn enabled(self) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => std::io::stdout().is_terminal(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("cannot determine the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error("{path}: cannot write the schema")]
    WriteSchema {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise the schema")]
    Schema(#[source] serde_json::Error),
    #[error(transparent)]
    Diff(#[from] diff::command::DiffError),
    #[error("cannot write to standard output")]
    Stdout(#[source] io::Error),
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    #[error("--from and --to are both `{0}`: name two different environments")]
    PromoteToItself(String),
    #[error("`{name}` is not a component; valid: {valid}")]
    UnknownComponent { name: String, valid: String },
    #[error("{path}: cannot write")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for errors: bad input, unreadable or unwritable files.
pub const EXIT_ERROR: u8 = 2;

/// Writes to standard output. A reader that closed the pipe early (`ehs diff | head`) has seen
/// what it wanted: the rest is dropped and the command still ends with its own exit code.
pub fn out(text: impl fmt::Display) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Stdout(error)),
        _ => Ok(()),
    }
}

/// Prints an error and the errors it wraps on standard error: `error: outer: inner`.
pub fn report_error(error: impl Into<anyhow::Error>) {
    note(format_args!("error: {:#}", error.into()));
}

/// Writes a line to standard error. When even that fails there is nowhere left to report it, so
/// the failure is dropped; the exit code still says how the command ended.
pub fn note(text: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Schema { output } = &cli.command {
        return write_schema(output.as_ref());
    }
    let start = match &cli.root {
        Some(root) => root.clone(),
        None => std::env::current_dir().map_err(CliError::CurrentDir)?,
    };
    let repo = Repo::discover(&start).map_err(PipelineError::from)?;
    let mut shared = Shared::load(&repo).map_err(PipelineError::from)?;
    if let Command::Render { checks, .. } | Command::Validate { checks, .. } = &cli.command {
        if let Some(dir) = &checks.crds {
            shared.crds = Some(Crds::load(dir).map_err(PipelineError::from)?);
        }
    }
    match cli.command {
        Command::Render {
            selection,
            check,
            checks,
        } => render(&repo, &shared, &selection, check, checks.deny_warnings),
        Command::Diff(args) => diff::command::run(&repo, &shared, &args),
        Command::Validate { selection, checks } => {
            validate(&repo, &shared, &selection, checks.deny_warnings)
        }
        Command::Promote {
            from,
            to,
            component,
        } => promote(&repo, &shared, &from, &to, &component),
        Command::Graph { env, format } => {
            let environment = pipeline::compile(&repo, &shared, &env)?;
            let graph = crate::graph::graph(&environment.platform);
            out(match format {
                GraphFormat::Text => graph.text(),
                GraphFormat::Dot => graph.dot(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { .. } => unreachable!("handled above"),
    }
}

fn promote(
    repo: &Repo,
    shared: &Shared,
    from: &str,
    to: &str,
    component: &str,
) -> Result<ExitCode, CliError> {
    if from == to {
        return Err(CliError::PromoteToItself(from.to_owned()));
    }
    let valid: Vec<&str> = crate::components::ALL
        .iter()
        .map(|known| known.name)
        .collect();
    if !valid.contains(&component) {
        return Err(CliError::UnknownComponent {
            name: component.to_owned(),
            valid: valid.join(", "),
        });
    }
    // Both must be environments that load (an unknown name lists the valid ones).
    let source = repo.environment(from).map_err(PipelineError::from)?;
    let target = repo.environment(to).map_err(PipelineError::from)?;
    let read = |path: &str| {
        std::fs::read_to_string(repo.root.join(path)).map_err(|source| {
            PipelineError::from(crate::load::LoadError::Read {
                path: path.to_owned(),
                source,
            })
        })
    };
    let (source_text, target_text) = (read(&source.path)?, read(&target.path)?);
    let (text, changes) = crate::promote::edit(
        &source.path,
        &source_text,
        &target.path,
        &target_text,
        component,
    )?;
    if changes.is_empty() {
        out(format_args!(
            "{}: {component} already has the image pins of {}\n",
            target.path, source.path
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let write = |text: &str| {
        std::fs::write(repo.root.join(&target.path), text).map_err(|source| CliError::Write {
            path: target.path.clone(),
            source,
        })
    };
    write(&text)?;
    let shown = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map_or("unset (the default)".to_owned(), ToString::to_string)
    };
    for change in &changes {
        out(format_args!(
            "{}: {}: {} -> {}\n",
            target.path,
            change.setting,
            shown(&change.before),
            shown(&change.after)
        ))?;
    }
    let selection = Selection {
        environments: vec![to.to_owned()],
        all: false,
    };
    let code = render(repo, shared, &selection, false, false)?;
    if code != ExitCode::SUCCESS {
        write(&target_text)?;
        note(format_args!("{}: restored, nothing promoted", target.path));
    }
    Ok(code)
}

/// Environments compiled in memory, and every error met on the way: all environments are
/// compiled even when one fails, so one run reports everything.
struct Outcome {
    names: Vec<String>,
    compiled: Vec<Compiled>,
    errors: Vec<PipelineError>,
}

impl Outcome {
    /// Prints every finding and warning (standard output) and error (standard error, which
    /// takes them). The exit code if anything failed: errors before findings; warnings fail only
    /// when `deny_warnings`.
    fn report(&mut self, deny_warnings: bool) -> Result<Option<ExitCode>, CliError> {
        let mut findings = false;
        for finding in self
            .compiled
            .iter()
            .flat_map(|environment| &environment.findings)
        {
            out(format_args!("{finding}\n"))?;
            findings |= deny_warnings || finding.is_error();
        }
        let errors = std::mem::take(&mut self.errors);
        let failed = !errors.is_empty();
        for error in errors {
            report_error(error);
        }
        Ok(if failed {
            Some(ExitCode::from(EXIT_ERROR))
        } else if findings {
            Some(ExitCode::from(EXIT_FINDINGS))
        } else {
            None
        })
    }
}

/// Compiles the environments selected by `--env` / `--all` (all of them when none is named).
fn compile_selected(
    repo: &Repo,
    shared: &Shared,
    selection: &Selection,
) -> Result<Outcome, PipelineError> {
    let (names, mut errors) = if selection.environments.is_empty() {
        let listing = repo.environments()?;
        let invalid = listing.invalid.into_iter().map(PipelineError::from);
        (listing.names, invalid.collect())
    } else {
        (selection.environments.clone(), Vec::new())
    };
    let mut compiled = Vec::new();
    for name in &names {
        match pipeline::compile(repo, shared, name) {
            Ok(environment) => compiled.push(environment),
            Err(error) => errors.push(error),
        }
    }
    errors.extend(pipeline::shared_namespaces(repo, &compiled));
    Ok(Outcome {
        names,
        compiled,
        errors,
    })
}

fn render(
    repo: &Repo,
    shared: &Shared,
    selection: &Selection,
    check: bool,
    deny_warnings: bool,
) -> Result<ExitCode, CliError> {
    let mut outcome = compile_selected(repo, shared, selection)?;
    let verdict = outcome.report(deny_warnings)?;
    let failed = verdict == Some(ExitCode::from(EXIT_ERROR));
    if let Some(code) = verdict.filter(|_| !check || failed) {
        note(format_args!("nothing written"));
        return Ok(code);
    }
    let rendered_dir = repo.rendered_dir();
    let names = &outcome.names;
    // Without --env, environments that no longer exist are stale too.
    let orphans: Vec<String> = if selection.environments.is_empty() {
        emit::rendered_environments(&rendered_dir)
            .map_err(PipelineError::from)?
            .into_iter()
            .filter(|name| !names.contains(name))
            .collect()
    } else {
        Vec::new()
    };

    if check {
        let mut stale = false;
        for environment in &outcome.compiled {
            let committed = emit::read_environment(&rendered_dir, &environment.name)
                .map_err(PipelineError::from)?;
            let section = diff::section(&environment.name, &committed, &environment.files);
            if let Some(reason) = emit::hand_edited(&committed) {
                note(format_args!(
                    "{RENDERED_DIR}/{}/: {reason}",
                    environment.name
                ));
            }
            if !section.pairs.is_empty() {
                stale = true;
                let title = format!(
                    "{RENDERED_DIR}/{} → fresh render of {}",
                    environment.name, environment.name
                );
                out(diff::plain_report(
                    &title,
                    &[section],
                    ColourChoice::Auto.enabled(),
                ))?;
            }
        }
        for orphan in &orphans {
            stale = true;
            out(format_args!(
                "{RENDERED_DIR}/{orphan}/ has no environment file and would be removed\n"
            ))?;
        }
        if stale {
            note(format_args!(
                "rendered/ is stale: run `ehs render` and commit the result"
            ));
        }
        if verdict.is_some() {
            note(format_args!("validation failed: fix the findings above"));
        }
        if stale || verdict.is_some() {
            return Ok(ExitCode::from(EXIT_FINDINGS));
        }
        note(format_args!(
            "rendered/ is up to date and valid ({})",
            names.join(", ")
        ));
        return Ok(ExitCode::SUCCESS);
    }

    let environments: Vec<(&str, &emit::Files)> = outcome
        .compiled
        .iter()
        .map(|environment| (environment.name.as_str(), &environment.files))
        .collect();
    emit::write_environments(&rendered_dir, &environments, &orphans)
        .map_err(PipelineError::from)?;
    for environment in &outcome.compiled {
        note(format_args!(
            "rendered {RENDERED_DIR}/{}/ ({} files)",
            environment.name,
            environment.files.len()
        ));
    }
    for orphan in &orphans {
        note(format_args!(
            "removed {RENDERED_DIR}/{orphan}/ (no environment file)"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(
    repo: &Repo,
    shared: &Shared,
    selection: &Selection,
    deny_warnings: bool,
) -> Result<ExitCode, CliError> {
    let mut outcome = compile_selected(repo, shared, selection)?;
    if let Some(code) = outcome.report(deny_warnings)? {
        return Ok(code);
    }
    note(format_args!("valid: {}", outcome.names.join(", ")));
    Ok(ExitCode::SUCCESS)
}

/// The JSON Schema of environment files, pretty-printed with a final newline.
pub fn environment_schema() -> Result<String, serde_json::Error> {
    let schema = schemars::schema_for!(Environment);
    Ok(format!("{}\n", serde_json::to_string_pretty(&schema)?))
}

fn write_schema(output: Option<&PathBuf>) -> Result<ExitCode, CliError> {
    let schema = environment_schema().map_err(CliError::Schema)?;
    match output {
        Some(path) => std::fs::write(path, schema).map_err(|source| CliError::WriteSchema {
            path: path.display().to_string(),
            source,
        })?,
        None => out(schema)?,
    }
    Ok(ExitCode::SUCCESS)
}
