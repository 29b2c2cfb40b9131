//! Compares two sets of rendered files object by object: a summary per component, then a unified
//! diff of every object that changed. Secret values are never printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use similar::TextDiff;

use crate::emit::{to_yaml, Files};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

/// One file (one object, or the kustomization) that differs.
#[derive(Debug, Clone)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    old: String,
    new: String,
}

impl Change {
    /// The component folder the file is in; top-level files belong to the environment.
    pub fn component(&self) -> &str {
        self.path
            .split_once('/')
            .map_or("(environment)", |(component, _)| component)
    }
}

/// Files that differ between `old` and `new`, by path.
pub fn compare(old: &Files, new: &Files) -> Vec<Change> {
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let kind = match (old.get(path), new.get(path)) {
                (Some(before), Some(after)) if before == after => return None,
                (Some(_), Some(_)) => ChangeKind::Changed,
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (None, None) => return None,
            };
            Some(Change {
                path: path.clone(),
                kind,
                old: old.get(path).cloned().unwrap_or_default(),
                new: new.get(path).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// How the report is labelled and coloured.
pub struct ReportStyle<'a> {
    pub old_label: &'a str,
    pub new_label: &'a str,
    pub colour: bool,
}

/// Summary first (objects added / changed / removed per component), then one diff per object.
pub fn report(changes: &[Change], style: &ReportStyle) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "no differences between {} and {}",
            style.old_label, style.new_label
        );
        return out;
    }
    let mut counts: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for change in changes {
        counts.entry(change.component()).or_default()[change.kind as usize] += 1;
    }
    let _ = writeln!(out, "{} → {}:", style.old_label, style.new_label);
    for (component, [added, changed, removed]) in &counts {
        let _ = writeln!(
            out,
            "  {component}: {added} added, {changed} changed, {removed} removed"
        );
    }
    for change in changes {
        out.push('\n');
        let old_name = format!("{}/{}", style.old_label, change.path);
        let new_name = format!("{}/{}", style.new_label, change.path);
        let (old, new) = (masked(&change.old), masked(&change.new));
        let text = TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string();
        if text.is_empty() {
            // Only masked values differ.
            let _ = writeln!(
                out,
                "--- {old_name}\n+++ {new_name}\n(Secret values changed; not shown)"
            );
        }
        for line in text.lines() {
            out.push_str(&colourize(line, style.colour));
            out.push('\n');
        }
    }
    out
}

fn colourize(line: &str, colour: bool) -> String {
    if !colour {
        return line.to_owned();
    }
    let code = if line.starts_with("+++") || line.starts_with("---") {
        "1"
    } else if line.starts_with('+') {
        "32"
    } else if line.starts_with('-') {
        "31"
    } else if line.starts_with("@@") {
        "36"
    } else {
        return line.to_owned();
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}

const REDACTED: &str = "<redacted>";

/// The file with every Secret `data` / `stringData` value replaced by a placeholder. A file that
/// mentions Secret but does not parse is withheld entirely rather than risk printing a value.
fn masked(content: &str) -> String {
    if !content.contains("Secret") {
        return content.to_owned();
    }
    let Ok(mut value) = serde_saphyr::from_str::<Value>(content) else {
        return "<file mentions a Secret but is not valid YAML; content withheld>\n".to_owned();
    };
    if value.get("kind").and_then(Value::as_str) != Some("Secret") {
        return content.to_owned();
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(entries)) = value.get_mut(field) {
            for entry in entries.values_mut() {
                *entry = Value::String(REDACTED.to_owned());
            }
        }
    }
    to_yaml(&value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> Files {
        entries
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn summary_counts_per_component() {
        let old = files(&[
            ("kafka/a.yaml", "x: 1\n"),
            ("kafka/gone.yaml", "y\n"),
            ("bridge/s.yaml", "same\n"),
        ]);
        let new = files(&[
            ("kafka/a.yaml", "x: 2\n"),
            ("bridge/s.yaml", "same\n"),
            ("bridge/new.yaml", "z\n"),
        ]);
        let changes = compare(&old, &new);
        let text = report(
            &changes,
            &ReportStyle {
                old_label: "old",
                new_label: "new",
                colour: false,
            },
        );
        assert!(text.starts_with("old → new:\n  bridge: 1 added, 0 changed, 0 removed\n  kafka: 0 added, 1 changed, 1 removed\n"), "{text}");
        assert!(text.contains("-x: 1\n+x: 2\n"), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn secret_values_are_never_printed() {
        let secret = |value: &str| {
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {value}\n")
        };
        let old = files(&[("x/secret-s.yaml", &secret("hunter2"))]);
        let new = files(&[("x/secret-s.yaml", &secret("correct-horse"))]);
        let text = report(
            &compare(&old, &new),
            &ReportStyle {
                old_label: "a",
                new_label: "b",
                colour: true,
            },
        );
        assert!(
            !text.contains("hunter2") && !text.contains("correct-horse"),
            "{text}"
        );
        assert!(text.contains("Secret values changed; not shown"), "{text}");
    }
}
