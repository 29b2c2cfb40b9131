//! The text a reviewer reads for one object: its canonical YAML (keys sorted, as `ehs render`
//! writes it, whatever order the file had) with Secret values masked, and a unified diff of the
//! two sides whose hunks name the YAML path they are in.

use serde_json::{Map, Value};
use similar::{ChangeTag, TextDiff};

use super::objects::{Entry, Pair};
use crate::emit::to_yaml;

pub const REDACTED: &str = "<redacted>";
pub const REDACTED_CHANGED: &str = "<redacted, changed>";
const WITHHELD: &str = "<file mentions a Secret but is not valid YAML; content withheld>\n";
const SECRET_FIELDS: [&str; 2] = ["data", "stringData"];

/// Canonical text of both sides of a pair, Secret values masked. A value that differs between
/// the sides is masked differently on the new side, so the diff still says it changed.
pub fn texts(pair: &Pair) -> (String, String) {
    let old = pair.old.as_ref().map(|entry| masked(entry, None));
    let new = pair
        .new
        .as_ref()
        .map(|entry| masked(entry, pair.old.as_ref()));
    (old.unwrap_or_default(), new.unwrap_or_default())
}

fn is_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Secret")
}

fn masked(entry: &Entry, old: Option<&Entry>) -> String {
    let Some(value) = &entry.value else {
        return if entry.raw.contains("Secret") {
            WITHHELD.to_owned()
        } else {
            entry.raw.clone()
        };
    };
    if !is_secret(value) {
        return to_yaml(value);
    }
    let mut value = value.clone();
    let old = old.and_then(|entry| entry.value.as_ref());
    for field in SECRET_FIELDS {
        let before = old
            .and_then(|old| old.get(field))
            .and_then(Value::as_object);
        if let Some(Value::Object(entries)) = value.get_mut(field) {
            mask_entries(entries, before);
        }
    }
    to_yaml(&value)
}

fn mask_entries(entries: &mut Map<String, Value>, before: Option<&Map<String, Value>>) {
    for (key, entry) in entries.iter_mut() {
        let changed = before
            .and_then(|before| before.get(key))
            .is_some_and(|previous| previous != entry);
        let mask = if changed { REDACTED_CHANGED } else { REDACTED };
        *entry = Value::String(mask.to_owned());
    }
}

/// One line of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub tag: char,
    pub text: String,
}

/// A unified diff of `old` → `new` with `context` lines around each change. Each hunk opens with
/// `@@ -a,b +c,d @@ <path>`, the YAML path of its first changed line.
pub fn unified(old: &str, new: &str, context: usize) -> Vec<Line> {
    let diff = TextDiff::from_lines(old, new);
    let old_paths = line_paths(old);
    let new_paths = line_paths(new);
    let mut lines = Vec::new();
    for group in diff.grouped_ops(context) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let path = group
            .iter()
            .flat_map(|op| diff.iter_changes(op))
            .find(|change| change.tag() != ChangeTag::Equal)
            .and_then(|change| match change.tag() {
                ChangeTag::Insert => change.new_index().map(|i| &new_paths[i]),
                _ => change.old_index().map(|i| &old_paths[i]),
            })
            // A whole object added or removed has no one path.
            .filter(|path| !path.is_empty() && !old.is_empty() && !new.is_empty())
            .map(|path| format!(" {path}"))
            .unwrap_or_default();
        lines.push(Line {
            tag: '@',
            text: format!(
                "@@ -{} +{} @@{path}",
                hunk_range(old_range),
                hunk_range(new_range)
            ),
        });
        for op in &group {
            for change in diff.iter_changes(op) {
                let tag = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                let text = change.value().trim_end_matches('\n').to_owned();
                lines.push(Line { tag, text });
            }
        }
    }
    lines
}

fn hunk_range(range: std::ops::Range<usize>) -> String {
    let start = if range.is_empty() {
        range.start
    } else {
        range.start + 1
    };
    format!("{start},{}", range.len())
}

/// A path segment as a reviewer reads it: `.key`, or `["key"]` when the key holds anything but
/// letters, digits, `_` and `-` (`data["server.properties"]`, label keys).
fn key_segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{key}")
    } else {
        format!("[{}]", serde_json::Value::String(key.to_owned()))
    }
}

fn join(segments: &[String]) -> String {
    segments.concat().trim_start_matches('.').to_owned()
}

/// Paths whose values differ, in canonical key order: `spec.replicas`,
/// `spec.template.spec.containers[0].image`. Arrays of different lengths are one path.
pub fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(old, new, &mut Vec::new(), &mut paths);
    paths
}

fn walk(old: &Value, new: &Value, prefix: &mut Vec<String>, out: &mut Vec<String>) {
    match (old, new) {
        _ if old == new => {}
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                prefix.push(key_segment(key));
                walk(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    prefix,
                    out,
                );
                prefix.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                prefix.push(format!("[{index}]"));
                walk(x, y, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push(join(prefix)),
    }
}

/// The YAML path of every line of canonical YAML as `to_yaml` writes it: block text belongs to
/// its key, a sequence item's lines to `[index]`.
pub fn line_paths(text: &str) -> Vec<String> {
    #[derive(Clone)]
    struct Frame {
        indent: usize,
        segment: String,
        item: Option<usize>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    // Lines indented deeper than this belong to the block scalar that opened it.
    let mut block_owner: Option<usize> = None;
    let mut paths = Vec::new();
    let path_of = |stack: &[Frame]| {
        join(
            &stack
                .iter()
                .map(|frame| frame.segment.clone())
                .collect::<Vec<_>>(),
        )
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(owner) = block_owner {
            if line.trim().is_empty() || indent > owner {
                paths.push(path_of(&stack));
                continue;
            }
            block_owner = None;
        }
        let rest = &line[indent..];
        if rest.starts_with('#') || rest.is_empty() {
            paths.push(path_of(&stack));
            continue;
        }
        let mut key_indent = indent;
        let mut content = rest;
        if rest == "-" || rest.starts_with("- ") {
            let mut index = 0;
            while let Some(top) = stack.last() {
                if top.indent > indent || (top.indent == indent && top.item.is_some()) {
                    if top.indent == indent {
                        index = top.item.map_or(0, |i| i + 1);
                    }
                    stack.pop();
                } else {
                    break;
                }
            }
            stack.push(Frame {
                indent,
                segment: format!("[{index}]"),
                item: Some(index),
            });
            content = rest.get(2..).unwrap_or_default();
            key_indent = indent + 2;
        } else {
            while stack.last().is_some_and(|top| top.indent >= indent) {
                stack.pop();
            }
        }
        let owner = match split_key(content) {
            Some((key, value)) => {
                stack.push(Frame {
                    indent: key_indent,
                    segment: key_segment(&key),
                    item: None,
                });
                value
            }
            None => content,
        };
        paths.push(path_of(&stack));
        if owner.starts_with('|') {
            block_owner = Some(stack.last().map_or(0, |frame| frame.indent));
        }
    }
    paths
}

/// `key: value` → (key, value); double-quoted keys are unescaped. `None` for a plain scalar.
fn split_key(content: &str) -> Option<(String, &str)> {
    if content.starts_with('"') {
        let mut escaped = false;
        for (index, c) in content.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let key = serde_json::from_str::<String>(&content[..=index]).ok()?;
                    let rest = content[index + 1..].strip_prefix(':')?;
                    return Some((key, rest.trim_start()));
                }
                _ => escaped = false,
            }
        }
        return None;
    }
    let (key, rest) = content
        .split_once(": ")
        .or_else(|| content.strip_suffix(':').map(|key| (key, "")))?;
    Some((key.to_owned(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::Files;

    fn pair_of(old: &str, new: &str) -> Pair {
        let file = |text: &str| -> Files { [("x/o.yaml".to_owned(), text.to_owned())].into() };
        let mut pairs = super::super::objects::pair(&file(old), &file(new));
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        pairs.remove(0)
    }

    #[test]
    fn key_order_does_not_show_and_hunks_name_their_path() {
        let old = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: kafka\nspec:\n  serviceName: kafka-quorum\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: kafka\n        image: kafka:4.1.0\n      - name: sidecar\n        image: busybox:1\n";
        let new = "kind: StatefulSet\napiVersion: apps/v1\nmetadata:\n  name: kafka\nspec:\n  replicas: 3\n  serviceName: kafka-quorum\n  template:\n    spec:\n      containers:\n      - image: kafka:4.1.0\n        name: kafka\n      - image: busybox:2\n        name: sidecar\n";
        let pair = pair_of(old, new);
        let (before, after) = texts(&pair);
        let lines = unified(&before, &after, 1);
        let changed: Vec<String> = lines
            .iter()
            .filter(|line| line.tag != ' ')
            .map(|line| match line.tag {
                '@' => line.text.clone(),
                tag => format!("{tag}{}", line.text),
            })
            .collect();
        assert_eq!(
            changed,
            [
                "@@ -12,3 +12,3 @@ spec.template.spec.containers[1].image",
                "-      - image: busybox:1",
                "+      - image: busybox:2",
            ]
        );
        assert_eq!(
            changed_paths(
                pair.old.unwrap().value.as_ref().unwrap(),
                pair.new.unwrap().value.as_ref().unwrap()
            ),
            ["spec.template.spec.containers[1].image"]
        );
    }

    #[test]
    fn lines_in_block_text_and_dotted_keys_get_their_key_as_path() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    app.kubernetes.io/name: kafka\n  name: c\ndata:\n  server.properties: |\n    a=1\n\n    b=2\n  start.sh: x\nitems:\n- -\n  - 1\n";
        let paths = line_paths(text);
        assert_eq!(paths[4], "metadata.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(paths[8], "data[\"server.properties\"]");
        assert_eq!(paths[9], "data[\"server.properties\"]");
        assert_eq!(paths[10], "data[\"server.properties\"]");
        assert_eq!(paths[11], "data[\"start.sh\"]");
        assert_eq!(paths[12], "items");
    }

    #[test]
    fn secret_values_are_masked_and_a_changed_value_still_shows() {
        let secret = |password: &str, user: &str| {
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  user: {user}\nstringData:\n  password: {password}\n")
        };
        let pair = pair_of(
            &secret("hunter2", "YWRtaW4="),
            &secret("correct-horse", "YWRtaW4="),
        );
        let (before, after) = texts(&pair);
        let all: String = unified(&before, &after, 3)
            .iter()
            .map(|line| format!("{}{}\n", line.tag, line.text))
            .collect();
        for secret in ["hunter2", "correct-horse", "YWRtaW4="] {
            assert!(!all.contains(secret), "{all}");
        }
        assert!(all.contains("-  password: \"<redacted>\"\n"), "{all}");
        assert!(
            all.contains("+  password: \"<redacted, changed>\"\n"),
            "{all}"
        );
        assert!(all.contains("   user: \"<redacted>\"\n"), "{all}");
    }

    #[test]
    fn an_unparsable_file_mentioning_a_secret_is_withheld() {
        let pair = pair_of(
            "kind: Secret\ndata: [\n  password: hunter2",
            "kind: Secret\n",
        );
        let (before, _) = texts(&pair);
        assert_eq!(before, WITHHELD);
    }
}
