//! Changes a review must not wave through: the cluster refuses them, or accepts them and carries
//! nothing out. Each names the flag that lets it through once its migration path (README,
//! "Changes the cluster refuses or ignores") has been followed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::objects::{Pair, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A static KRaft voter set rewritten under a live quorum.
    QuorumResize,
    /// Partitions or replication factor of an existing topic: the topics Job only creates
    /// missing topics.
    TopicSettings,
    /// A StatefulSet's `volumeClaimTemplates`: the API server forbids the update.
    VolumeClaimTemplates,
}

impl Rule {
    /// The `ehs diff` flag that accepts this change.
    pub fn flag(self) -> &'static str {
        match self {
            Rule::QuorumResize => "--allow-quorum-resize",
            Rule::TopicSettings => "--allow-topic-change",
            Rule::VolumeClaimTemplates => "--allow-volume-claim-change",
        }
    }

    /// The first step of the migration path; the README has the whole of it.
    pub fn migration(self) -> &'static str {
        match self {
            Rule::QuorumResize => {
                "add or remove nodes by migrating to a new cluster of the new size (or, for \
                 disposable data, delete the StatefulSet and its claims and let the sync \
                 recreate it)"
            }
            Rule::TopicSettings => {
                "raise partitions by hand with `kafka-topics.sh --alter --topic <topic> \
                 --partitions <n>` (keys move to other partitions); change the replication \
                 factor with `kafka-reassign-partitions.sh`; a lower count needs a new topic"
            }
            Rule::VolumeClaimTemplates => {
                "resize each PersistentVolumeClaim (if its StorageClass allows expansion), then \
                 `kubectl delete statefulset <name> --cascade=orphan` and let the sync recreate \
                 it with the new template"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: Rule,
    /// The object it is about: `ConfigMap ehs-prod/kafka-config`.
    pub subject: String,
    pub message: String,
}

/// Every warning about one environment's changes.
pub fn check(pairs: &[Pair]) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for pair in pairs {
        let Some((old, new)) = pair.values() else {
            continue;
        };
        let subject = pair.describe();
        warnings.extend(topic_settings(&subject, old, new));
        if let Some(message) = quorum_resize(old, new) {
            warnings.push(Warning {
                rule: Rule::QuorumResize,
                subject: subject.clone(),
                message,
            });
        }
        if pair.status == Status::Changed
            && new.get("kind").and_then(Value::as_str) == Some("StatefulSet")
            && old.pointer("/spec/volumeClaimTemplates")
                != new.pointer("/spec/volumeClaimTemplates")
        {
            warnings.push(Warning {
                rule: Rule::VolumeClaimTemplates,
                subject,
                message: "spec.volumeClaimTemplates changed: the API server refuses updates to \
                          a StatefulSet's volume claim templates (a sync fails with `Forbidden: \
                          updates to statefulset spec for fields other than …`)"
                    .to_owned(),
            });
        }
    }
    warnings
}

fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

/// The voters of every `controller.quorum.voters=` line in the object's text values.
fn voters(value: &Value) -> Option<Vec<String>> {
    let mut texts = Vec::new();
    strings(value, &mut texts);
    texts.iter().flat_map(|text| text.lines()).find_map(|line| {
        let list = line.trim().strip_prefix("controller.quorum.voters=")?;
        Some(
            list.split(',')
                .map(|voter| voter.trim().to_owned())
                .collect(),
        )
    })
}

fn quorum_resize(old: &Value, new: &Value) -> Option<String> {
    let (before, after) = (voters(old)?, voters(new)?);
    if before == after {
        return None;
    }
    let ids = |voters: &[String]| {
        voters
            .iter()
            .map(|voter| voter.split_once('@').map_or(voter.as_str(), |(id, _)| id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = if before.len() == after.len() {
        "rewrites the static voter list".to_owned()
    } else {
        format!(
            "resizes the static voter set from {} to {}",
            before.len(),
            after.len()
        )
    };
    Some(format!(
        "controller.quorum.voters {what} (voters {} → {}): Kafka does not support changing a \
         static voter list under a live quorum; while the pods roll, nodes disagree on who votes \
         and the quorum can lose its majority or elect two leaders",
        ids(&before),
        ids(&after)
    ))
}

/// A topic's settings as the topics script creates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TopicSettings {
    partitions: Option<String>,
    replication_factor: Option<String>,
}

/// Topics created by `kafka-topics.sh --create` in scripts, with the options given to them.
/// Topics the same script alters with `--partitions` are left out: that script does change them.
fn topics(value: &Value) -> BTreeMap<String, TopicSettings> {
    let mut texts = Vec::new();
    strings(value, &mut texts);
    let mut created = BTreeMap::new();
    for text in texts.into_iter().filter(|t| t.contains("kafka-topics.sh")) {
        let joined = text.replace("\\\n", " ");
        for command in joined.lines() {
            let words: Vec<&str> = command
                .split_whitespace()
                .map(|word| word.trim_matches(['"', '\'']))
                .collect();
            let option = |name: &str| {
                let at = words.iter().position(|word| *word == name)?;
                words.get(at + 1).map(|value| (*value).to_owned())
            };
            let Some(topic) = option("--topic") else {
                continue;
            };
            if words.contains(&"--create") {
                created.insert(
                    topic,
                    TopicSettings {
                        partitions: option("--partitions"),
                        replication_factor: option("--replication-factor"),
                    },
                );
            } else if words.contains(&"--alter") && words.contains(&"--partitions") {
                created.remove(&topic);
            }
        }
    }
    created
}

/// Topics both sides create whose partitions or replication factor differ.
fn topic_settings(subject: &str, old: &Value, new: &Value) -> Vec<Warning> {
    let before = topics(old);
    let mut warnings = Vec::new();
    for (topic, after) in topics(new) {
        let Some(before) = before.get(&topic) else {
            continue;
        };
        let setting = |name: &str, old: &Option<String>, new: &Option<String>| {
            (old != new).then(|| {
                let shown = |value: &Option<String>| value.clone().unwrap_or("default".into());
                format!("{name} {} → {}", shown(old), shown(new))
            })
        };
        let changes: Vec<String> = [
            setting("partitions", &before.partitions, &after.partitions),
            setting(
                "replication factor",
                &before.replication_factor,
                &after.replication_factor,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !changes.is_empty() {
            warnings.push(Warning {
                rule: Rule::TopicSettings,
                subject: subject.to_owned(),
                message: format!(
                    "topic `{topic}`: {}; the topics Job only creates missing topics \
                     (`--create --if-not-exists`), so an existing topic keeps its old settings \
                     and nothing changes",
                    changes.join(", ")
                ),
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::objects::pair;
    use crate::emit::Files;

    /// Before/after fixtures cut from `rendered/prod`.
    fn warnings_between(path: &str, before: &str, after: &str) -> Vec<Warning> {
        let files = |text: &str| -> Files { [(path.to_owned(), text.to_owned())].into() };
        check(&pair(&files(before), &files(after)))
    }

    fn kafka_config(nodes: usize) -> String {
        let voters: Vec<String> = (0..nodes)
            .map(|n| format!("{n}@kafka-{n}.kafka-quorum.ehs-prod.svc:9093"))
            .collect();
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kafka-config\n  namespace: ehs-prod\ndata:\n  server.properties: |\n    process.roles=broker,controller\n    controller.quorum.voters={}\n    log.dirs=/var/lib/kafka/data/logs\n",
            voters.join(",")
        )
    }

    #[test]
    fn resizing_the_static_voter_set_is_flagged() {
        let warnings = warnings_between(
            "kafka/configmap-kafka-config.yaml",
            &kafka_config(3),
            &kafka_config(5),
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].rule, Rule::QuorumResize);
        assert_eq!(warnings[0].subject, "ConfigMap ehs-prod/kafka-config");
        assert!(
            warnings[0].message.contains(
                "resizes the static voter set from 3 to 5 (voters 0, 1, 2 → 0, 1, 2, 3, 4)"
            ),
            "{}",
            warnings[0].message
        );
        let unrelated = kafka_config(3).replace("log.dirs=/var", "log.dirs=/srv");
        assert!(warnings_between("k.yaml", &kafka_config(3), &unrelated).is_empty());
    }

    fn topics_script(telemetry_partitions: u32, alter: bool) -> String {
        let alter = if alter {
            "    /opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$bootstrap\" --alter --topic \"ehs.telemetry.raw\" --partitions 24\n"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kafka-topics\n  namespace: ehs-prod\ndata:\n  create-topics.sh: |\n    /opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$bootstrap\" --create --if-not-exists \\\n      --topic \"ehs.telemetry.raw\" --partitions {telemetry_partitions} \\\n      --replication-factor 3 \\\n      --config min.insync.replicas=2\n    /opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$bootstrap\" --create --if-not-exists \\\n      --topic \"ehs.telemetry.dead-letters\" --partitions 3 \\\n      --replication-factor 3\n{alter}"
        )
    }

    #[test]
    fn raising_an_existing_topics_partitions_is_flagged() {
        let warnings = warnings_between(
            "kafka/configmap-kafka-topics.yaml",
            &topics_script(12, false),
            &topics_script(24, false),
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].rule, Rule::TopicSettings);
        assert!(
            warnings[0]
                .message
                .starts_with("topic `ehs.telemetry.raw`: partitions 12 → 24;"),
            "{}",
            warnings[0].message
        );
        // A script that alters the topic itself does carry the change out.
        assert!(warnings_between(
            "k.yaml",
            &topics_script(12, false),
            &topics_script(24, true)
        )
        .is_empty());
        // A new topic is created by the Job: nothing to warn about.
        let added = topics_script(12, false).replace("ehs.telemetry.dead-letters", "ehs.new");
        assert!(warnings_between("k.yaml", &topics_script(12, false), &added).is_empty());
    }

    fn statefulset(size: &str, replicas: u32) -> String {
        format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: kafka\n  namespace: ehs-prod\nspec:\n  replicas: {replicas}\n  volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n      accessModes:\n      - ReadWriteOnce\n      resources:\n        requests:\n          storage: {size}\n"
        )
    }

    #[test]
    fn changing_volume_claim_templates_is_flagged() {
        let warnings = warnings_between(
            "kafka/statefulset-kafka.yaml",
            &statefulset("50Gi", 3),
            &statefulset("80Gi", 3),
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].rule, Rule::VolumeClaimTemplates);
        assert_eq!(warnings[0].subject, "StatefulSet ehs-prod/kafka");
        assert!(warnings_between(
            "kafka/statefulset-kafka.yaml",
            &statefulset("50Gi", 3),
            &statefulset("50Gi", 4),
        )
        .is_empty());
    }
}
