//! `rendered/` as committed at a Git revision, read with the `git` command.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::emit::Files;
use crate::load::RENDERED_DIR;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run `git {args}` in {dir}")]
    Spawn {
        args: String,
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Failed {
        args: String,
        dir: String,
        stderr: String,
    },
    #[error("`{reference}` is not a commit of the Git repository at {dir} (or that is no Git repository): name a branch, tag or commit, e.g. `--base origin/main` after `git fetch origin`")]
    NoCommit { reference: String, dir: String },
    #[error("{path} at {reference} is not UTF-8 text")]
    NotText { path: String, reference: String },
}

fn git(dir: &Path, args: &[&str], input: Option<Vec<u8>>) -> Result<Vec<u8>, GitError> {
    let describe = || (args.join(" "), dir.display().to_string());
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            let (args, dir) = describe();
            GitError::Spawn { args, dir, source }
        })?;
    // Written from a thread: git answers while it reads, and a full output pipe would otherwise
    // stop both sides.
    let writer = input.and_then(|input| {
        let mut stdin = child.stdin.take()?;
        Some(std::thread::spawn(move || stdin.write_all(&input)))
    });
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    if let Some(out) = child.stdout.as_mut() {
        let _ = out.read_to_end(&mut stdout);
    }
    if let Some(err) = child.stderr.as_mut() {
        let _ = err.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|source| {
        let (args, dir) = describe();
        GitError::Spawn { args, dir, source }
    })?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if !status.success() {
        let (args, dir) = describe();
        return Err(GitError::Failed {
            args,
            dir,
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(stdout)
}

/// Every environment's files under `rendered/` at `reference`, by environment name.
pub fn rendered_at(root: &Path, reference: &str) -> Result<BTreeMap<String, Files>, GitError> {
    let commit = format!("{reference}^{{commit}}");
    if git(root, &["rev-parse", "--verify", "--quiet", &commit], None).is_err() {
        return Err(GitError::NoCommit {
            reference: reference.to_owned(),
            dir: root.display().to_string(),
        });
    }
    // Paths come back relative to `root`, which need not be the top of the Git work tree.
    let listing = git(
        root,
        &["ls-tree", "-r", "-z", &commit, "--", RENDERED_DIR],
        None,
    )?;
    let mut blobs = Vec::new();
    for record in listing.split(|byte| *byte == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (Some(_mode), Some("blob"), Some(id)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path
            .strip_prefix(RENDERED_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(path);
        let Some((environment, file)) = relative.split_once('/') else {
            continue;
        };
        blobs.push((environment.to_owned(), file.to_owned(), id.to_owned()));
    }
    let request: String = blobs.iter().map(|(_, _, id)| format!("{id}\n")).collect();
    let contents = git(root, &["cat-file", "--batch"], Some(request.into_bytes()))?;
    let mut trees: BTreeMap<String, Files> = BTreeMap::new();
    let mut rest = contents.as_slice();
    for (environment, file, _) in blobs {
        let path = format!("{RENDERED_DIR}/{environment}/{file}");
        let header_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let header = String::from_utf8_lossy(&rest[..header_end]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|size| size.parse().ok())
            .ok_or_else(|| GitError::Failed {
                args: "cat-file --batch".to_owned(),
                dir: root.display().to_string(),
                stderr: format!("unexpected answer `{header}` for {path}"),
            })?;
        let start = (header_end + 1).min(rest.len());
        let end = (start + size).min(rest.len());
        let text = String::from_utf8(rest[start..end].to_vec()).map_err(|_| GitError::NotText {
            path,
            reference: reference.to_owned(),
        })?;
        // Each blob is followed by a line feed.
        rest = &rest[(end + 1).min(rest.len())..];
        trees.entry(environment).or_default().insert(file, text);
    }
    Ok(trees)
}
