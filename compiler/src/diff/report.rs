//! The review as text: per environment a summary table of the objects added, changed and
//! removed, the warnings, then one semantic diff per object; plain text for a terminal or
//! Markdown for pull-request comments and job summaries, cut into parts a PR comment can hold.

use std::fmt::Write as _;

use super::canonical::{self, Line};
use super::objects::{Pair, Status};
use super::warnings::{Rule, Warning};

/// GitHub refuses comments over 65,536 characters; a part stays under this, headers included.
pub const PART_LIMIT: usize = 60_000;
/// Room kept in every part for its `part i of n` header.
const PART_HEADER_ROOM: usize = 200;
/// Changed lines shown with this many unchanged lines around them.
const CONTEXT: usize = 3;
/// Changed paths named in a summary row before `and N more`.
const PATHS_IN_ROW: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Markdown => "md",
        }
    }
}

/// One environment's changes.
#[derive(Debug, Clone)]
pub struct Section {
    pub environment: String,
    pub pairs: Vec<Pair>,
    pub warnings: Vec<Warning>,
}

impl Section {
    pub fn counts(&self) -> String {
        let count = |wanted: &[Status]| {
            self.pairs
                .iter()
                .filter(|pair| wanted.contains(&pair.status))
                .count()
        };
        let renamed = count(&[Status::Renamed]);
        let mut text = format!(
            "{} added, {} changed, {} removed",
            count(&[Status::Added]),
            count(&[Status::Changed, Status::Renamed]),
            count(&[Status::Removed])
        );
        if renamed > 0 {
            let _ = write!(text, " ({renamed} of them renamed)");
        }
        text
    }
}

/// A piece of the report that is never cut between parts, and what to repeat before it when it
/// opens a part (the table header for a table row).
struct Block {
    text: String,
    reopen: String,
}

/// The report in parts of at most `limit` characters each. `allowed` are the rules whose
/// warnings were let through by their flag; `None` prints warnings without a verdict.
pub fn parts(
    title: &str,
    sections: &[Section],
    format: Format,
    allowed: Option<&[Rule]>,
    limit: usize,
) -> Vec<String> {
    let budget = limit.saturating_sub(PART_HEADER_ROOM);
    let blocks = blocks(title, sections, format, allowed, budget);
    let mut parts: Vec<String> = vec![String::new()];
    for block in blocks {
        let current = parts.last_mut().expect("at least one part");
        if current.len() + block.text.len() <= budget || current.is_empty() {
            current.push_str(&block.text);
        } else {
            parts.push(format!("{}{}", block.reopen, block.text));
        }
    }
    let total = parts.len();
    if total == 1 {
        return parts;
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| {
            let number = index + 1;
            match format {
                Format::Markdown => format!(
                    "<!-- ehs diff: part {number} of {total} -->\n**ehs diff, part {number} of {total}**\n\n{part}"
                ),
                Format::Text => format!("==== ehs diff, part {number} of {total} ====\n{part}"),
            }
        })
        .collect()
}

fn blocks(
    title: &str,
    sections: &[Section],
    format: Format,
    allowed: Option<&[Rule]>,
    budget: usize,
) -> Vec<Block> {
    let markdown = format == Format::Markdown;
    let mut blocks = Vec::new();
    let mut opening = if markdown {
        format!("## ehs diff: {title}\n\n")
    } else {
        format!("ehs diff: {title}\n")
    };
    if sections.iter().all(|section| section.pairs.is_empty()) {
        opening.push_str("No differences.\n");
    }
    blocks.push(Block {
        text: opening,
        reopen: String::new(),
    });
    for section in sections {
        let environment = &section.environment;
        if section.pairs.is_empty() {
            blocks.push(Block {
                text: if markdown {
                    format!("### {environment}: no differences\n\n")
                } else {
                    format!("\n{environment}: no differences\n")
                },
                reopen: String::new(),
            });
            continue;
        }
        let continued = if markdown {
            format!("### {environment} (continued)\n\n")
        } else {
            format!("{environment} (continued):\n")
        };
        let table_header =
            "| Change | Kind | Namespace | Name | Changed paths |\n|---|---|---|---|---|\n";
        blocks.push(Block {
            text: if markdown {
                format!("### {environment}: {}\n\n{table_header}", section.counts())
            } else {
                format!("\n{environment}: {}\n", section.counts())
            },
            reopen: String::new(),
        });
        for pair in &section.pairs {
            blocks.push(Block {
                text: row(pair, format),
                reopen: if markdown {
                    format!("{continued}{table_header}")
                } else {
                    continued.clone()
                },
            });
        }
        if markdown {
            blocks.push(Block {
                text: "\n".to_owned(),
                reopen: String::new(),
            });
        }
        for warning in &section.warnings {
            blocks.push(Block {
                text: warning_text(environment, warning, allowed, format),
                reopen: String::new(),
            });
        }
        for pair in &section.pairs {
            let room = budget.saturating_sub(continued.len());
            blocks.push(Block {
                text: object(environment, pair, format, room),
                reopen: continued.clone(),
            });
        }
    }
    blocks
}

fn row(pair: &Pair, format: Format) -> String {
    let entry = pair.entry();
    let identity = &entry.identity;
    let paths = match pair.values() {
        Some((old, new)) => {
            let paths = canonical::changed_paths(old, new);
            let mut shown: Vec<String> = paths.iter().take(PATHS_IN_ROW).cloned().collect();
            if format == Format::Markdown {
                shown = shown
                    .into_iter()
                    .map(|path| format!("`{}`", markdown_cell(&path.replace('`', "'"))))
                    .collect();
            }
            let mut text = shown.join(", ");
            if paths.len() > PATHS_IN_ROW {
                let _ = write!(text, " and {} more", paths.len() - PATHS_IN_ROW);
            }
            text
        }
        _ => String::new(),
    };
    let name = match (&pair.old, &pair.new) {
        (Some(old), Some(new)) if old.identity.name != new.identity.name => {
            format!("{} → {}", old.identity.name, new.identity.name)
        }
        _ => identity.name.clone(),
    };
    let status = pair.status.word();
    match format {
        Format::Markdown => format!(
            "| {status} | {} | {} | {} | {paths} |\n",
            markdown_cell(&identity.kind),
            markdown_cell(if identity.namespace.is_empty() {
                "—"
            } else {
                &identity.namespace
            }),
            markdown_cell(&name),
        ),
        Format::Text => {
            let subject = pair.describe();
            let mut line = format!("  {status:<8} {subject}");
            if !paths.is_empty() {
                let _ = write!(line, "  ({paths})");
            }
            line.push('\n');
            line
        }
    }
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn warning_text(
    environment: &str,
    warning: &Warning,
    allowed: Option<&[Rule]>,
    format: Format,
) -> String {
    let rule = warning.rule;
    let verdict = match allowed {
        Some(allowed) if allowed.contains(&rule) => format!(" (allowed by {})", rule.flag()),
        Some(_) => format!(" (refused without {})", rule.flag()),
        None => String::new(),
    };
    let subject = &warning.subject;
    let message = &warning.message;
    let migration = rule.migration();
    match format {
        Format::Markdown => format!(
            "> [!WARNING]\n> **{environment}: {subject}**{verdict}: {message}.\n> Migration: {migration}. See the README, \"Changes the cluster refuses or ignores\".\n\n"
        ),
        Format::Text => format!(
            "\nwarning{verdict}: {environment}: {subject}: {message}.\n  migration: {migration}; see the README, \"Changes the cluster refuses or ignores\".\n"
        ),
    }
}

/// One object's diff, cut to `room` characters with a note of what was left out.
fn object(environment: &str, pair: &Pair, format: Format, room: usize) -> String {
    let (old, new) = canonical::texts(pair);
    let lines = canonical::unified(&old, &new, CONTEXT);
    let title = format!(
        "{} {} ({environment}/{})",
        pair.status.word(),
        pair.describe(),
        pair.entry().component()
    );
    let body: Vec<String> = lines
        .iter()
        .map(|Line { tag, text }| match tag {
            '@' => text.clone(),
            tag => format!("{tag}{text}"),
        })
        .collect();
    let fence = fence_for(&body);
    let (open, close) = match format {
        Format::Markdown => (
            format!(
                "<details><summary>{}</summary>\n\n{fence}diff\n",
                html_escape(&title)
            ),
            format!("{fence}\n\n</details>\n\n"),
        ),
        Format::Text => (format!("\n--- {title}\n"), String::new()),
    };
    let note_room = 120;
    let mut text = open;
    let mut shown = 0;
    for line in &body {
        if text.len() + line.len() + 1 + close.len() + note_room > room {
            break;
        }
        text.push_str(line);
        text.push('\n');
        shown += 1;
    }
    if shown < body.len() {
        let _ = writeln!(
            text,
            "… {} more lines not shown here: run `ehs diff` locally for all of them",
            body.len() - shown
        );
    }
    text.push_str(&close);
    text
}

/// A code fence longer than any run of backticks in the content.
fn fence_for(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .flat_map(|line| line.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::objects::pair;
    use crate::emit::Files;

    fn configmap(name: &str, lines: usize, salt: &str) -> String {
        let body: String = (0..lines)
            .map(|n| format!("    line {n} of {name}: {salt}\n"))
            .collect();
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: ns\ndata:\n  file.txt: |\n{body}")
    }

    fn section(old: &Files, new: &Files) -> Section {
        let pairs = pair(old, new);
        let warnings = crate::diff::warnings::check(&pairs);
        Section {
            environment: "prod".to_owned(),
            pairs,
            warnings,
        }
    }

    #[test]
    fn a_large_diff_is_cut_into_parts_under_the_limit_in_order() {
        // 40 objects, each with 400 changed lines: about 1.3 MB of diff.
        let mut old = Files::new();
        let mut new = Files::new();
        for n in 0..40 {
            let name = format!("config-{n:02}");
            old.insert(format!("c/{name}.yaml"), configmap(&name, 400, "before"));
            new.insert(format!("c/{name}.yaml"), configmap(&name, 400, "after"));
        }
        let sections = [section(&old, &new)];
        for format in [Format::Markdown, Format::Text] {
            let parts = parts("a → b", &sections, format, Some(&[]), PART_LIMIT);
            assert!(parts.len() > 2, "{}", parts.len());
            for (index, part) in parts.iter().enumerate() {
                assert!(part.len() < PART_LIMIT, "part {index}: {}", part.len());
                assert!(
                    part.contains(&format!("part {} of {}", index + 1, parts.len())),
                    "{}",
                    &part[..200]
                );
                if format == Format::Markdown {
                    assert_eq!(
                        part.matches("<details>").count(),
                        part.matches("</details>").count(),
                        "every part closes what it opens"
                    );
                }
            }
            let all = parts.concat();
            // The summary comes first; every object is there, in order, each once.
            let table = all.find("config-00").unwrap();
            assert!(table < all.find("line 0 of config-00").unwrap());
            let mut previous = 0;
            for n in 0..40 {
                let at = all[previous..]
                    .find(&format!("changed ConfigMap ns/config-{n:02}"))
                    .unwrap_or_else(|| panic!("config-{n:02} missing or out of order"));
                previous += at + 1;
            }
            // Each object is bigger than a part can hold with the others, not than a part.
            assert!(!all.contains("more lines not shown"));
        }
    }

    #[test]
    fn one_object_bigger_than_a_part_is_cut_with_a_note() {
        let old: Files = [("c/big.yaml".to_owned(), configmap("big", 3000, "before"))].into();
        let new: Files = [("c/big.yaml".to_owned(), configmap("big", 3000, "after"))].into();
        let parts = parts(
            "a → b",
            &[section(&old, &new)],
            Format::Markdown,
            Some(&[]),
            PART_LIMIT,
        );
        assert!(parts.iter().all(|part| part.len() < PART_LIMIT));
        let all = parts.concat();
        assert!(all.contains("more lines not shown here"), "{}", all.len());
        assert!(all.trim_end().ends_with("</details>"));
    }

    #[test]
    fn markdown_has_the_table_first_then_a_collapsible_diff_per_object() {
        let old: Files = [("c/a.yaml".to_owned(), configmap("a", 2, "x"))].into();
        let new: Files = [
            ("c/a.yaml".to_owned(), configmap("a", 2, "y")),
            ("c/b.yaml".to_owned(), configmap("b", 1, "y")),
        ]
        .into();
        let parts = parts(
            "base → head",
            &[section(&old, &new)],
            Format::Markdown,
            Some(&[]),
            PART_LIMIT,
        );
        assert_eq!(parts.len(), 1);
        let text = &parts[0];
        assert!(
            text.starts_with(
                "## ehs diff: base → head\n\n### prod: 1 added, 1 changed, 0 removed\n\n\
                 | Change | Kind | Namespace | Name | Changed paths |\n|---|---|---|---|---|\n\
                 | changed | ConfigMap | ns | a | `data[\"file.txt\"]` |\n\
                 | added | ConfigMap | ns | b |  |\n\n"
            ),
            "{text}"
        );
        assert!(text.contains("<details><summary>changed ConfigMap ns/a (prod/c)</summary>\n\n```diff\n@@ -5,5 +5,5 @@ data[\"file.txt\"]\n"), "{text}");
        assert!(
            text.contains("-    line 1 of a: x\n+    line 0 of a: y\n"),
            "{text}"
        );
    }
}
