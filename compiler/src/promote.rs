//! `ehs promote`: copies one component's image pins (its `image` and `*Image` settings) from one
//! environment file to another as a minimal textual edit of the target file, so its comments,
//! key order and formatting stay as they were and the reviewed diff shows only the pins.
//!
//! After the edit the target file sets exactly the pins the source file sets: a pin the source
//! leaves to the defaults (`components/upstream.yaml`) is removed from the target too. The
//! files are edited as block-style YAML (what `environments/*.yaml` are written in); a component
//! or pin written in flow style (`bridge: {image: …}`) is refused with a message saying so.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::emit::to_yaml;
use crate::load::{parse_yaml, LoadError};

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{path}: `{component}` is not a map in that file")]
    NotAMap { path: String, component: String },
    #[error(
        "{path}:{line}: `{key}` is written in flow style; `ehs promote` edits block-style YAML \
         only: write it as an indented block (one setting per line)"
    )]
    FlowStyle {
        path: String,
        line: usize,
        key: String,
    },
}

/// One pin that differs: its setting (`<component>.<key>`) and its value in the target file
/// before and after (unset: the defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub setting: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Whether a component's setting is an image pin.
fn is_pin(key: &str) -> bool {
    key == "image" || key.ends_with("Image")
}

/// The pins of `component` a parsed environment file sets.
fn pins(
    path: &str,
    environment: &Value,
    component: &str,
) -> Result<Map<String, Value>, PromoteError> {
    match environment.get(component) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(settings)) => Ok(settings
            .iter()
            .filter(|(key, _)| is_pin(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()),
        Some(_) => Err(PromoteError::NotAMap {
            path: path.to_owned(),
            component: component.to_owned(),
        }),
    }
}

/// The target file's new text and the pins that changed (none: the text is unchanged).
pub fn edit(
    source_path: &str,
    source: &str,
    target_path: &str,
    target: &str,
    component: &str,
) -> Result<(String, Vec<Change>), PromoteError> {
    let wanted = pins(source_path, &parse_yaml(source_path, source)?, component)?;
    let current = pins(target_path, &parse_yaml(target_path, target)?, component)?;
    let keys: BTreeSet<&String> = wanted.keys().chain(current.keys()).collect();
    let mut lines: Vec<String> = target.lines().map(str::to_owned).collect();
    let mut changes = Vec::new();
    for key in keys {
        let (before, after) = (current.get(key), wanted.get(key));
        if before == after {
            continue;
        }
        let mut file = Lines {
            path: target_path,
            lines: &mut lines,
        };
        file.set(component, key, before, after)?;
        changes.push(Change {
            setting: format!("{component}.{key}"),
            before: before.cloned(),
            after: after.cloned(),
        });
    }
    let mut text = lines.join("\n");
    if target.ends_with('\n') || target.is_empty() {
        text.push('\n');
    }
    Ok((
        if changes.is_empty() {
            target.to_owned()
        } else {
            text
        },
        changes,
    ))
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// A scalar as it is written after `key: `: a string plain (unquoted) when YAML reads it back as
/// the same string, as people write tags (`tag: 0.2.0`), quoted otherwise (`tag: "2.0"`).
fn scalar(value: &Value) -> String {
    if let Value::String(text) = value {
        let plain = !text.is_empty()
            && !text.contains(" #")
            && !text.contains(": ")
            && !text.starts_with(|first: char| "\"'{}[]&*!|>%@`-?#, ".contains(first))
            && serde_saphyr::from_str::<Value>(text).ok().as_ref() == Some(value);
        if plain {
            return text.clone();
        }
    }
    to_yaml(value).trim_end().to_owned()
}

/// `key: value` lines at `indent` (a map or list below the key, a scalar after it).
fn block(indent: usize, key: &str, value: &Value) -> Vec<String> {
    let pad = " ".repeat(indent);
    let nested = |value: &Value| matches!(value, Value::Object(_) | Value::Array(_));
    match value {
        // An image: a map of scalars, written as people write it.
        Value::Object(map) if !map.is_empty() && !map.values().any(nested) => {
            std::iter::once(format!("{pad}{key}:"))
                .chain(
                    map.iter()
                        .map(|(field, value)| format!("{pad}  {field}: {}", scalar(value))),
                )
                .collect()
        }
        Value::Object(map) if !map.is_empty() => block_of(&pad, key, value),
        Value::Array(items) if !items.is_empty() => block_of(&pad, key, value),
        _ => vec![format!("{pad}{key}: {}", scalar(value))],
    }
}

/// `key:` and the value's canonical YAML below it.
fn block_of(pad: &str, key: &str, value: &Value) -> Vec<String> {
    std::iter::once(format!("{pad}{key}:"))
        .chain(to_yaml(value).lines().map(|line| format!("{pad}  {line}")))
        .collect()
}

struct Lines<'a> {
    path: &'a str,
    lines: &'a mut Vec<String>,
}

impl Lines<'_> {
    /// The line of `key:` at exactly `indent` within `range`, and whether a value follows the
    /// colon on that line (other than a comment).
    fn find(
        &self,
        range: std::ops::Range<usize>,
        indent: usize,
        key: &str,
    ) -> Option<(usize, bool)> {
        range.into_iter().find_map(|index| {
            let line = &self.lines[index];
            let rest = line.strip_prefix(&" ".repeat(indent))?.strip_prefix(key)?;
            let rest = rest.strip_prefix(':')?;
            if !(rest.is_empty() || rest.starts_with([' ', '\t'])) || indentation(line) != indent {
                return None;
            }
            let value = rest.trim_start();
            Some((index, !(value.is_empty() || value.starts_with('#'))))
        })
    }

    /// The lines below `start` indented deeper than `indent` (blank and comment lines inside
    /// included, trailing ones not): `start + 1..end`.
    fn block_end(&self, start: usize, indent: usize) -> usize {
        let mut end = start + 1;
        for index in start + 1..self.lines.len() {
            let line = &self.lines[index];
            if line.trim().is_empty() {
                continue;
            }
            if indentation(line) <= indent {
                break;
            }
            end = index + 1;
        }
        end
    }

    /// The indentation of the entries of the block `start + 1..end` (2 more than `indent` when
    /// it has none).
    fn child_indent(&self, start: usize, end: usize, indent: usize) -> usize {
        self.lines[start + 1..end]
            .iter()
            .find(|line| !is_blank_or_comment(line))
            .map_or(indent + 2, |line| indentation(line))
    }

    fn flow(&self, line: usize, key: &str) -> PromoteError {
        PromoteError::FlowStyle {
            path: self.path.to_owned(),
            line: line + 1,
            key: key.to_owned(),
        }
    }

    /// Sets (or, with `after` unset, removes) `component.key`.
    fn set(
        &mut self,
        component: &str,
        key: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), PromoteError> {
        let Some((top, inline)) = self.find(0..self.lines.len(), 0, component) else {
            // Not in the file yet: appended as a new top-level block.
            if let Some(after) = after {
                if self
                    .lines
                    .last()
                    .is_some_and(|line| !line.trim().is_empty())
                {
                    self.lines.push(String::new());
                }
                self.lines.push(format!("{component}:"));
                self.lines.extend(block(2, key, after));
            }
            return Ok(());
        };
        if inline {
            return Err(self.flow(top, component));
        }
        let end = self.block_end(top, 0);
        let indent = self.child_indent(top, end, 0);
        let Some((line, inline)) = self.find(top + 1..end, indent, key) else {
            if let Some(after) = after {
                self.lines.splice(end..end, block(indent, key, after));
            }
            return Ok(());
        };
        let key_end = self.block_end(line, indent);
        let Some(after) = after else {
            self.lines.drain(line..key_end);
            // A component left without settings goes too.
            let end = self.block_end(top, 0);
            if self.lines[top + 1..end]
                .iter()
                .all(|line| is_blank_or_comment(line))
            {
                self.lines.drain(top..end);
            }
            return Ok(());
        };
        match (before, after) {
            (Some(Value::Object(old)), Value::Object(new))
                if !inline
                    && old
                        .values()
                        .chain(new.values())
                        .all(|value| !matches!(value, Value::Object(_) | Value::Array(_))) =>
            {
                self.set_fields(line, key_end, indent, old, new);
                Ok(())
            }
            (_, _) if inline && matches!(after, Value::Object(_) | Value::Array(_)) => {
                Err(self.flow(line, key))
            }
            _ => {
                self.lines.splice(line..key_end, block(indent, key, after));
                Ok(())
            }
        }
    }

    /// Field by field within a map of scalars: changed values are replaced on their line
    /// (keeping a trailing comment), missing fields appended, fields the source lacks removed.
    fn set_fields(
        &mut self,
        line: usize,
        end: usize,
        indent: usize,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
    ) {
        let field_indent = self.child_indent(line, end, indent);
        let pad = " ".repeat(field_indent);
        let mut end = end;
        for (field, value) in new {
            match self.find(line + 1..end, field_indent, field) {
                Some(_) if old.get(field) == Some(value) => {}
                Some((index, _)) => {
                    let comment = self.lines[index]
                        .split_once(" #")
                        .map(|(_, comment)| format!(" #{comment}"))
                        .unwrap_or_default();
                    self.lines[index] = format!("{pad}{field}: {}{comment}", scalar(value));
                }
                None => {
                    self.lines
                        .insert(end, format!("{pad}{field}: {}", scalar(value)));
                    end += 1;
                }
            }
        }
        for field in old.keys().filter(|field| !new.contains_key(*field)) {
            if let Some((index, _)) = self.find(line + 1..end, field_indent, field) {
                self.lines.remove(index);
                end -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "\
# Production.
namespace: ehs-prod
bridge:
  replicas: 3
  image:
    repository: ghcr.io/ehs-platform/ehs-bridge # built by CI
    tag: 0.1.0
  resources:
    limits:
      cpu: \"1\"
kafka:
  replicas: 3
";

    fn promote(source: &str, target: &str, component: &str) -> (String, Vec<Change>) {
        edit(
            "environments/dev.yaml",
            source,
            "environments/prod.yaml",
            target,
            component,
        )
        .unwrap()
    }

    #[test]
    fn a_changed_tag_is_a_one_line_edit_keeping_comments() {
        let source = "namespace: ehs-dev\nbridge:\n  image:\n    repository: ghcr.io/ehs-platform/ehs-bridge\n    tag: 0.2.0\n";
        let (text, changes) = promote(source, TARGET, "bridge");
        assert_eq!(text, TARGET.replace("tag: 0.1.0", "tag: 0.2.0"));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].setting, "bridge.image");
        // Promoting again changes nothing.
        assert!(promote(source, &text, "bridge").1.is_empty());
    }

    #[test]
    fn fields_and_pins_the_source_sets_are_added_and_those_it_lacks_removed() {
        let source = "bridge:\n  image:\n    repository: ghcr.io/ehs-platform/ehs-bridge\n    tag: 0.2.0\n    digest: sha256:ab\n";
        let (text, _) = promote(source, TARGET, "bridge");
        assert!(
            text.contains("    tag: 0.2.0\n    digest: sha256:ab\n  resources:\n"),
            "{text}"
        );
        assert!(text.contains("# built by CI"));

        // A component the target does not mention yet becomes a new block at the end.
        let source = "timescaledb:\n  extensionImage:\n    repository: r\n    tag: \"2.0\"\n";
        let (text, changes) = promote(source, TARGET, "timescaledb");
        assert!(text.ends_with("kafka:\n  replicas: 3\n\ntimescaledb:\n  extensionImage:\n    repository: r\n    tag: \"2.0\"\n"), "{text}");
        assert_eq!(changes[0].before, None);

        // The source uses the default image: the target's pin goes, its other settings stay.
        let (text, changes) = promote("namespace: ehs-dev\n", TARGET, "bridge");
        assert_eq!(changes[0].after, None);
        assert!(!text.contains("image"));
        assert!(
            text.contains("bridge:\n  replicas: 3\n  resources:\n"),
            "{text}"
        );
        // A component left without settings is removed.
        let target = "namespace: x\nconnect:\n  image:\n    tag: \"1\"\nkafka:\n  replicas: 3\n";
        let (text, _) = promote("namespace: y\n", target, "connect");
        assert_eq!(text, "namespace: x\nkafka:\n  replicas: 3\n");
        // Parses back to what the source sets.
        let parsed: Value =
            serde_saphyr::from_str(&promote(source, TARGET, "timescaledb").0).unwrap();
        assert_eq!(parsed["timescaledb"]["extensionImage"]["tag"], "2.0");
    }

    #[test]
    fn flow_style_is_refused_with_its_line() {
        let target = "namespace: x\nbridge: {image: {tag: \"1\"}}\n";
        let source = "bridge:\n  image:\n    tag: \"2\"\n";
        let error = edit("a.yaml", source, "b.yaml", target, "bridge").unwrap_err();
        assert_eq!(
            error.to_string(),
            "b.yaml:2: `bridge` is written in flow style; `ehs promote` edits block-style YAML \
             only: write it as an indented block (one setting per line)"
        );
    }
}
