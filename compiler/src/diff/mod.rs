//! What a change to `rendered/` does to a cluster, for review: objects paired by identity (a
//! hash-named Job whose spec changed is a rename, not a removal and an addition), a semantic diff
//! per object that ignores key order and masks Secret values, warnings about changes the cluster
//! refuses or ignores, and a report in parts a pull-request comment can hold.

mod canonical;
pub mod command;
mod git;
mod objects;
mod report;
mod warnings;

use crate::emit::{Files, PROVENANCE};

pub use report::{Format, Section};

/// One environment's differences between two sets of rendered files, with their warnings.
/// [`PROVENANCE`] is left out: it changes with every input and never reaches the cluster, so
/// listing it would only bury the objects that do.
pub fn section(environment: &str, old: &Files, new: &Files) -> Section {
    let applied = |files: &Files| -> Files {
        files
            .iter()
            .filter(|(path, _)| path.as_str() != PROVENANCE)
            .map(|(path, content)| (path.clone(), content.clone()))
            .collect()
    };
    let pairs = objects::pair(&applied(old), &applied(new));
    let warnings = warnings::check(&pairs);
    Section {
        environment: environment.to_owned(),
        pairs,
        warnings,
    }
}

/// The whole report as one text, uncut, warnings without a verdict: for `render --check`, which
/// says that `rendered/` is stale, not whether a change may go through.
pub fn plain_report(title: &str, sections: &[Section], colour: bool) -> String {
    let parts = report::parts(title, sections, Format::Text, None, usize::MAX);
    command::colourize(&parts.concat(), colour)
}

/// Makes two environments' renders comparable: their own namespace and environment file name
/// become placeholders, in paths and in content.
pub fn normalize(files: &Files, namespace: &str, environment: &str) -> Files {
    let replace = |text: &str| {
        text.replace(
            &format!("environments/{environment}.yaml"),
            "environments/<environment>.yaml",
        )
        .replace(namespace, "<namespace>")
    };
    files
        .iter()
        .map(|(path, content)| (replace(path), replace(content)))
        .collect()
}
