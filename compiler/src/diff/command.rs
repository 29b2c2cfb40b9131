//! `ehs diff`: which trees are compared, and where the report goes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::git::{self, GitError};
use super::report::{self, Format, Section, PART_LIMIT};
use super::warnings::Rule;
use crate::cli::{note, out, CliError, ColourChoice, EXIT_ERROR, EXIT_FINDINGS};
use crate::emit::{self, Files};
use crate::load::{Repo, RENDERED_DIR};
use crate::pipeline::{self, PipelineError, Shared};

/// Show what a change does to the cluster, object by object: `rendered/` at a Git revision
/// against the working tree (`--base origin/main`, for pull requests), a fresh render against
/// the committed `rendered/<env>/` (`--env prod`), or two environments (`ehs diff dev prod`).
///
/// A summary table of the objects added, changed and removed comes first, then a diff per object
/// that ignores key order; Secret values are never printed. Changes the cluster refuses or
/// ignores (KRaft voter set, existing topics' partitions, StatefulSet volume claim templates) are
/// refused unless their `--allow-…` flag is given. Exit 0 = no differences, 1 = differences,
/// 2 = error or a refused change.
#[derive(Debug, Args)]
// One required group of all forms, so a bare `ehs diff` shows them all in its usage error.
#[command(group(
    ArgGroup::new("compare").required(true).multiple(true).args(["base", "env", "environments"])
))]
pub struct DiffArgs {
    /// Compare `rendered/` as committed at this Git revision (a branch, tag or commit, e.g.
    /// `origin/main`) with `rendered/` in the working tree, every environment of either side.
    #[arg(long, value_name = "REF", conflicts_with = "environments")]
    base: Option<String>,
    /// Without --base: compare this environment's fresh render with its committed `rendered/`
    /// files. With --base: only this environment. Repeat for several.
    #[arg(long, value_name = "ENV")]
    env: Vec<String>,
    /// Two environments to compare with each other; their namespaces are normalised.
    #[arg(num_args = 2, value_names = ["FROM", "TO"], conflicts_with = "env")]
    environments: Vec<String>,
    /// `markdown` for pull-request comments and job summaries (a collapsible diff per object).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to DIR/ehs-diff-<n>.<txt|md>, one file per part of under 60,000
    /// characters (one PR comment each), instead of standard output.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Accept a change of the static KRaft voter set (README: the migration path).
    #[arg(long)]
    allow_quorum_resize: bool,
    /// Accept changed partitions or replication factor of existing topics.
    #[arg(long)]
    allow_topic_change: bool,
    /// Accept a change of a StatefulSet's volumeClaimTemplates.
    #[arg(long)]
    allow_volume_claim_change: bool,
    /// Colour the text report: auto (on a terminal), always or never.
    #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
    colour: ColourChoice,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("no environment `{name}` in {RENDERED_DIR}/ at {base} or in the working tree; available: {available}")]
    UnknownEnvironment {
        name: String,
        base: String,
        available: String,
    },
    #[error("{path}: cannot {action}")]
    Io {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl DiffArgs {
    fn allowed(&self) -> Vec<Rule> {
        [
            (self.allow_quorum_resize, Rule::QuorumResize),
            (self.allow_topic_change, Rule::TopicSettings),
            (self.allow_volume_claim_change, Rule::VolumeClaimTemplates),
        ]
        .into_iter()
        .filter_map(|(allowed, rule)| allowed.then_some(rule))
        .collect()
    }
}

pub fn run(repo: &Repo, shared: &Shared, args: &DiffArgs) -> Result<ExitCode, CliError> {
    let (title, sections) = if let Some(base) = &args.base {
        against_base(repo, base, &args.env)?
    } else if let [from, to] = args.environments.as_slice() {
        between_environments(repo, shared, from, to)?
    } else {
        against_fresh_render(repo, shared, &args.env)?
    };
    let allowed = args.allowed();
    let parts = report::parts(&title, &sections, args.format, Some(&allowed), PART_LIMIT);
    match &args.output_dir {
        Some(dir) => write_parts(dir, &parts, args.format)?,
        None => {
            let colour = args.format == Format::Text && args.colour.enabled();
            out(colourize(&parts.join("\n"), colour))?;
        }
    }
    let refused: BTreeSet<&str> = sections
        .iter()
        .flat_map(|section| &section.warnings)
        .filter(|warning| !allowed.contains(&warning.rule))
        .map(|warning| warning.rule.flag())
        .collect();
    if !refused.is_empty() {
        note(format_args!(
            "error: the cluster would refuse or ignore some of these changes (warnings above): \
             follow the migration path in the README (\"Changes the cluster refuses or \
             ignores\"), then pass {}",
            refused.into_iter().collect::<Vec<_>>().join(" ")
        ));
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    Ok(if sections.iter().all(|s| s.pairs.is_empty()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

fn against_base(
    repo: &Repo,
    base: &str,
    only: &[String],
) -> Result<(String, Vec<Section>), CliError> {
    let mut old = git::rendered_at(&repo.root, base).map_err(DiffError::from)?;
    old.retain(|name, _| !name.starts_with('.'));
    let rendered_dir = repo.rendered_dir();
    let current = emit::rendered_environments(&rendered_dir).map_err(PipelineError::from)?;
    let all: BTreeSet<String> = old.keys().cloned().chain(current).collect();
    for name in only {
        if !all.contains(name) {
            return Err(DiffError::UnknownEnvironment {
                name: name.clone(),
                base: base.to_owned(),
                available: all.iter().cloned().collect::<Vec<_>>().join(", "),
            }
            .into());
        }
    }
    let mut sections = Vec::new();
    for name in all
        .iter()
        .filter(|name| only.is_empty() || only.contains(name))
    {
        let new = emit::read_environment(&rendered_dir, name).map_err(PipelineError::from)?;
        let old = old.remove(name).unwrap_or_default();
        sections.push(super::section(name, &old, &new));
    }
    Ok((
        format!("{RENDERED_DIR}/ at {base} → {RENDERED_DIR}/ in the working tree"),
        sections,
    ))
}

fn against_fresh_render(
    repo: &Repo,
    shared: &Shared,
    names: &[String],
) -> Result<(String, Vec<Section>), CliError> {
    let mut sections = Vec::new();
    for name in names {
        let environment = pipeline::compile(repo, shared, name)?;
        let committed =
            emit::read_environment(&repo.rendered_dir(), name).map_err(PipelineError::from)?;
        sections.push(super::section(name, &committed, &environment.files));
    }
    Ok((
        format!("committed {RENDERED_DIR}/ → fresh render"),
        sections,
    ))
}

/// Two environments are not a change a cluster goes through, so no warnings.
fn between_environments(
    repo: &Repo,
    shared: &Shared,
    from: &str,
    to: &str,
) -> Result<(String, Vec<Section>), CliError> {
    let normalized = |name: &str| -> Result<Files, PipelineError> {
        let environment = pipeline::compile(repo, shared, name)?;
        let namespace = environment.platform.environment.namespace.to_string();
        Ok(super::normalize(&environment.files, &namespace, name))
    };
    let mut section = super::section(
        &format!("{from} → {to}"),
        &normalized(from)?,
        &normalized(to)?,
    );
    section.warnings.clear();
    Ok((
        format!("{from} → {to} (namespaces normalised)"),
        vec![section],
    ))
}

/// Writes `ehs-diff-<n>.<ext>` and removes parts a previous, longer report left behind, so a CI
/// step that posts every file posts only this report.
fn write_parts(dir: &Path, parts: &[String], format: Format) -> Result<(), DiffError> {
    let io = |path: &Path, action| {
        let path = path.display().to_string();
        move |source| DiffError::Io {
            path,
            action,
            source,
        }
    };
    fs::create_dir_all(dir).map_err(io(dir, "create"))?;
    let extension = format.extension();
    for entry in fs::read_dir(dir).map_err(io(dir, "list"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name
            .strip_prefix("ehs-diff-")
            .and_then(|rest| rest.strip_suffix(&format!(".{extension}")))
            .is_some_and(|number| number.parse::<usize>().is_ok());
        if stale {
            fs::remove_file(entry.path()).map_err(io(&entry.path(), "remove"))?;
        }
    }
    for (index, part) in parts.iter().enumerate() {
        let path = dir.join(format!("ehs-diff-{}.{extension}", index + 1));
        fs::write(&path, part).map_err(io(&path, "write"))?;
        note(format_args!("wrote {}", path.display()));
    }
    Ok(())
}

/// Diff lines in red and green, hunk headers in cyan, object headers in bold.
pub fn colourize(text: &str, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("--- ") || body.starts_with("warning") {
            "1"
        } else if body.starts_with('+') {
            "32"
        } else if body.starts_with('-') {
            "31"
        } else if body.starts_with("@@") {
            "36"
        } else {
            out.push_str(line);
            continue;
        };
        out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{end}"));
    }
    out
}
