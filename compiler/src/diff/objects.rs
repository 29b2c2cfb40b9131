//! Rendered files as cluster objects, and the pairing of a base's objects with the head's by
//! what the cluster knows them as (API group, kind, namespace, name), never by file path.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::emit::Files;

/// What the API server identifies an object by. The version is left out: `v1beta1` → `v1` of the
/// same object is a change of that object. Files that are not objects (the kustomization, a file
/// that does not parse) have kind [`FILE_KIND`] and their path as name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

pub const FILE_KIND: &str = "(file)";

impl Identity {
    /// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
    pub fn describe(&self) -> String {
        if self.kind == FILE_KIND {
            return format!("file {}", self.name);
        }
        match self.namespace.as_str() {
            "" => format!("{} {}", self.kind, self.name),
            namespace => format!("{} {namespace}/{}", self.kind, self.name),
        }
    }
}

/// One rendered file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to `rendered/<env>/`.
    pub path: String,
    pub identity: Identity,
    /// The parsed object; `None` when the file is not one YAML document.
    pub value: Option<Value>,
    /// The file as written, for files that do not parse.
    pub raw: String,
}

impl Entry {
    fn parse(path: &str, raw: &str) -> Entry {
        let value = serde_saphyr::from_str::<Value>(raw).ok();
        let text = |value: &Value, pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let object = value.as_ref().and_then(|value| {
            let api_version = text(value, "/apiVersion")?;
            let kind = text(value, "/kind")?;
            let name = text(value, "/metadata/name")?;
            let group = api_version
                .rsplit_once('/')
                .map_or("", |(group, _)| group)
                .to_owned();
            Some(Identity {
                group,
                kind,
                namespace: text(value, "/metadata/namespace").unwrap_or_default(),
                name,
            })
        });
        Entry {
            path: path.to_owned(),
            identity: object.unwrap_or_else(|| file_identity(path)),
            value,
            raw: raw.to_owned(),
        }
    }

    /// The component folder the file is in; top-level files belong to the environment.
    pub fn component(&self) -> &str {
        self.path
            .split_once('/')
            .map_or("(environment)", |(component, _)| component)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.value
            .as_ref()?
            .get("metadata")?
            .get("labels")?
            .get(key)?
            .as_str()
    }
}

fn file_identity(path: &str) -> Identity {
    Identity {
        group: String::new(),
        kind: FILE_KIND.to_owned(),
        namespace: String::new(),
        name: path.to_owned(),
    }
}

/// Every file of a tree, keyed by identity. A second file claiming an identity already taken
/// (possible only in a hand-edited tree) is kept as a file of its own rather than dropped.
pub fn entries(files: &Files) -> BTreeMap<Identity, Entry> {
    let mut entries = BTreeMap::new();
    for (path, raw) in files {
        let mut entry = Entry::parse(path, raw);
        if entries.contains_key(&entry.identity) {
            entry.identity = file_identity(path);
        }
        entries.insert(entry.identity.clone(), entry);
    }
    entries
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Added,
    Changed,
    /// The same object under a new name: a hash-named Job whose spec changed. The cluster
    /// deletes the old object and creates the new one.
    Renamed,
    Removed,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Changed => "changed",
            Status::Renamed => "renamed",
            Status::Removed => "removed",
        }
    }
}

/// One object that differs between base and head.
#[derive(Debug, Clone)]
pub struct Pair {
    pub status: Status,
    pub old: Option<Entry>,
    pub new: Option<Entry>,
}

impl Pair {
    /// The newer side's entry when there is one.
    pub fn entry(&self) -> &Entry {
        match (&self.new, &self.old) {
            (Some(entry), _) | (None, Some(entry)) => entry,
            (None, None) => unreachable!("a pair has at least one side"),
        }
    }

    /// Both sides' objects, when both sides are there and parse.
    pub fn values(&self) -> Option<(&Value, &Value)> {
        fn value(entry: &Option<Entry>) -> Option<&Value> {
            entry.as_ref()?.value.as_ref()
        }
        Some((value(&self.old)?, value(&self.new)?))
    }

    /// `Kind namespace/name`, with `old → new` for a rename.
    pub fn describe(&self) -> String {
        match (&self.old, &self.new) {
            (Some(old), Some(new)) if old.identity.name != new.identity.name => {
                format!("{} → {}", old.identity.describe(), new.identity.name)
            }
            _ => self.entry().identity.describe(),
        }
    }
}

/// The objects that differ, paired by identity; objects left over on both sides are paired as
/// renames when they are unambiguously the same thing under a new name.
pub fn pair(old: &Files, new: &Files) -> Vec<Pair> {
    let mut old = entries(old);
    let mut new = entries(new);
    let mut pairs = Vec::new();
    let shared: Vec<Identity> = old
        .keys()
        .filter(|identity| new.contains_key(identity))
        .cloned()
        .collect();
    for identity in shared {
        let (Some(before), Some(after)) = (old.remove(&identity), new.remove(&identity)) else {
            continue;
        };
        if before.value.is_some() && before.value == after.value || before.raw == after.raw {
            continue;
        }
        pairs.push(Pair {
            status: Status::Changed,
            old: Some(before),
            new: Some(after),
        });
    }
    for key in [rename_key_by_name as RenameKey, rename_key_by_labels] {
        pairs.extend(renames(&mut old, &mut new, key));
    }
    pairs.extend(old.into_values().map(|entry| Pair {
        status: Status::Removed,
        old: Some(entry),
        new: None,
    }));
    pairs.extend(new.into_values().map(|entry| Pair {
        status: Status::Added,
        old: None,
        new: Some(entry),
    }));
    pairs.sort_by(|a, b| {
        (a.entry().component(), &a.entry().identity, a.status).cmp(&(
            b.entry().component(),
            &b.entry().identity,
            b.status,
        ))
    });
    pairs
}

type RenameKey = fn(&Entry) -> Option<(String, String, String, String)>;

/// Kind, namespace and the name without its hash suffix (`kafka-topics-adda3881` →
/// `kafka-topics`): what the components name run-once Jobs by.
fn rename_key_by_name(entry: &Entry) -> Option<(String, String, String, String)> {
    let identity = &entry.identity;
    let stem = strip_hash_suffix(&identity.name)?;
    Some((
        identity.group.clone(),
        identity.kind.clone(),
        identity.namespace.clone(),
        stem.to_owned(),
    ))
}

/// Kind, namespace and the labels every component sets (`app.kubernetes.io/name` and
/// `/component`), for objects renamed without a hash suffix.
fn rename_key_by_labels(entry: &Entry) -> Option<(String, String, String, String)> {
    let identity = &entry.identity;
    if identity.kind == FILE_KIND {
        return None;
    }
    let name = entry.label("app.kubernetes.io/name")?;
    let component = entry.label("app.kubernetes.io/component")?;
    Some((
        identity.group.clone(),
        identity.kind.clone(),
        identity.namespace.clone(),
        format!("{name}\n{component}"),
    ))
}

/// The name without a trailing `-<8 to 16 lowercase hex digits>`, if it has one.
pub fn strip_hash_suffix(name: &str) -> Option<&str> {
    let (stem, suffix) = name.rsplit_once('-')?;
    let hex = (8..=16).contains(&suffix.len())
        && suffix
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    (hex && !stem.is_empty()).then_some(stem)
}

/// Pairs the leftovers that share a key, one old with one new; a key shared by more than one
/// object on either side is ambiguous and left alone.
fn renames(
    old: &mut BTreeMap<Identity, Entry>,
    new: &mut BTreeMap<Identity, Entry>,
    key: RenameKey,
) -> Vec<Pair> {
    let group = |entries: &BTreeMap<Identity, Entry>| {
        let mut groups: BTreeMap<_, Vec<Identity>> = BTreeMap::new();
        for (identity, entry) in entries {
            if let Some(key) = key(entry) {
                groups.entry(key).or_default().push(identity.clone());
            }
        }
        groups
    };
    let (old_groups, new_groups) = (group(old), group(new));
    let mut pairs = Vec::new();
    for (key, before) in old_groups {
        let Some(after) = new_groups.get(&key) else {
            continue;
        };
        if let ([before], [after]) = (before.as_slice(), after.as_slice()) {
            if let (Some(before), Some(after)) = (old.remove(before), new.remove(after)) {
                pairs.push(Pair {
                    status: Status::Renamed,
                    old: Some(before),
                    new: Some(after),
                });
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, image: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  labels:\n    app.kubernetes.io/component: kafka\n    app.kubernetes.io/name: kafka-topics\n  name: {name}\n  namespace: ehs-prod\nspec:\n  template:\n    spec:\n      containers:\n      - image: {image}\n        name: create-topics\n"
        )
    }

    fn files(entries: &[(&str, String)]) -> Files {
        entries
            .iter()
            .map(|(path, content)| (path.to_string(), content.clone()))
            .collect()
    }

    #[test]
    fn hash_suffixes_are_recognised_and_nothing_else() {
        assert_eq!(
            strip_hash_suffix("kafka-topics-adda3881"),
            Some("kafka-topics")
        );
        assert_eq!(
            strip_hash_suffix("kafka-connect-register-7e3e53f7"),
            Some("kafka-connect-register")
        );
        assert_eq!(strip_hash_suffix("kafka-connect"), None);
        assert_eq!(strip_hash_suffix("kafka-quorum"), None);
        assert_eq!(strip_hash_suffix("ehs-bridge-ADDA3881"), None);
        assert_eq!(strip_hash_suffix("-adda3881"), None);
    }

    #[test]
    fn a_hash_named_job_whose_spec_changed_is_a_rename() {
        let old = files(&[(
            "kafka/job-kafka-topics-adda3881.yaml",
            job("kafka-topics-adda3881", "kafka:4.1.0"),
        )]);
        let new = files(&[(
            "kafka/job-kafka-topics-0b1c2d3e.yaml",
            job("kafka-topics-0b1c2d3e", "kafka:4.1.1"),
        )]);
        let pairs = pair(&old, &new);
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!(pairs[0].status, Status::Renamed);
        assert_eq!(
            pairs[0].describe(),
            "Job ehs-prod/kafka-topics-adda3881 → kafka-topics-0b1c2d3e"
        );
    }

    #[test]
    fn objects_are_paired_by_identity_not_by_path_and_key_order_is_ignored() {
        let a = "apiVersion: v1\nkind: Service\nmetadata:\n  name: kafka\n  namespace: ns\nspec:\n  clusterIP: None\n  type: ClusterIP\n";
        let b = "kind: Service\napiVersion: v1\nspec:\n  type: ClusterIP\n  clusterIP: None\nmetadata:\n  namespace: ns\n  name: kafka\n";
        let old = files(&[("kafka/service-kafka.yaml", a.to_owned())]);
        let new = files(&[("moved/elsewhere.yaml", b.to_owned())]);
        assert!(pair(&old, &new).is_empty());
    }

    #[test]
    fn ambiguous_leftovers_stay_added_and_removed() {
        let old = files(&[
            ("k/a.yaml", job("kafka-topics-11111111", "x")),
            ("k/b.yaml", job("kafka-topics-22222222", "x")),
        ]);
        let new = files(&[("k/c.yaml", job("kafka-topics-33333333", "y"))]);
        let statuses: Vec<Status> = pair(&old, &new).iter().map(|p| p.status).collect();
        assert_eq!(
            statuses,
            [Status::Removed, Status::Removed, Status::Added],
            "two old Jobs could each be the new one"
        );
    }

    #[test]
    fn renamed_objects_without_a_hash_pair_by_their_component_labels() {
        let service = |name: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata:\n  labels:\n    app.kubernetes.io/component: kafka\n    app.kubernetes.io/name: kafka\n  name: {name}\n  namespace: ns\n")
        };
        let old = files(&[("k/a.yaml", service("kafka"))]);
        let new = files(&[("k/b.yaml", service("kafka-bootstrap"))]);
        let pairs = pair(&old, &new);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].status, Status::Renamed);
    }
}
