//! One environment through the whole pipeline: load → resolve → build → validate → emit.

use crate::components::{self, ComponentError};
use crate::emit::{self, EmitError, Files};
use crate::load::{Defaults, EnvironmentFile, LoadError, Repo, RENDERED_DIR};
use crate::resolve::{self, Platform, ResolveError};
use crate::templates::Templates;
use crate::validate::{self, CrdError, Crds, Finding, Severity};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error(transparent)]
    Crds(#[from] CrdError),
    #[error(
        "{path}:{line}:{column}: namespace `{namespace}` is already the namespace of {other}; \
         give every environment a namespace of its own, or their objects overwrite each other"
    )]
    NamespaceTaken {
        path: String,
        line: u64,
        column: u64,
        namespace: String,
        other: String,
    },
}

/// Inputs shared by every environment, read once.
pub struct Shared {
    pub defaults: Defaults,
    pub templates: Templates,
    /// The CRDs custom resources are checked against (`--crds DIR`); none: not checked.
    pub crds: Option<Crds>,
}

impl Shared {
    pub fn load(repo: &Repo) -> Result<Shared, LoadError> {
        Ok(Shared {
            defaults: repo.defaults()?,
            templates: repo.templates()?,
            crds: None,
        })
    }
}

/// An environment compiled in memory; nothing is written yet.
pub struct Compiled {
    pub name: String,
    pub source: EnvironmentFile,
    pub platform: Platform,
    pub findings: Vec<Finding>,
    pub files: Files,
}

pub fn compile(repo: &Repo, shared: &Shared, name: &str) -> Result<Compiled, PipelineError> {
    let file = repo.environment(name)?;
    let platform = resolve::resolve(&file, &shared.defaults)?;
    let objects = components::build_all(&platform, &shared.templates)?;
    let mut findings = validate::validate_against(&objects, &platform, shared.crds.as_ref());
    let not_synced: Vec<&str> = components::ALL
        .iter()
        .filter(|component| (component.stage)() == components::Stage::Delivery)
        .map(|component| component.name)
        .collect();
    let mut files = emit::render_files(&file.path, &objects, &not_synced)?;
    emit::add_provenance(name, &mut files, &repo.inputs(name)?);
    findings.extend(long_line_findings(name, &files));
    Ok(Compiled {
        name: name.to_owned(),
        source: file,
        platform,
        findings,
        files,
    })
}

/// Lines of the rendered files too long to review, as findings naming file and line.
fn long_line_findings(environment: &str, files: &Files) -> Vec<Finding> {
    emit::long_lines(files)
        .into_iter()
        .map(|long| Finding {
            environment: environment.to_owned(),
            object: format!("{RENDERED_DIR}/{environment}/{}", long.file),
            field: format!("line {}", long.line),
            reason: format!(
                "{} characters, more than the {} a reviewer can read in a diff; split the \
                 setting or template line that makes it this long",
                long.chars,
                emit::MAX_LINE_CHARS
            ),
            severity: Severity::Error,
        })
        .collect()
}

/// Environments that share a namespace would deploy over each other. Each is reported at its
/// `namespace` line, naming the first environment (in the given order) that has it.
pub fn shared_namespaces(repo: &Repo, compiled: &[Compiled]) -> Vec<PipelineError> {
    let mut owners: std::collections::BTreeMap<&str, &EnvironmentFile> = Default::default();
    let mut errors = Vec::new();
    for environment in compiled {
        let source = &environment.source;
        let namespace = source.environment.namespace.as_ref();
        match owners.get(namespace) {
            Some(first) => errors.push(match repo.namespace_position(source) {
                Ok((line, column)) => PipelineError::NamespaceTaken {
                    path: source.path.clone(),
                    line,
                    column,
                    namespace: namespace.to_owned(),
                    other: first.path.clone(),
                },
                Err(error) => error.into(),
            }),
            None => {
                owners.insert(namespace, source);
            }
        }
    }
    errors
}
