//! A small, complete production environment that passes every check; tests break one thing at a
//! time and expect exactly the finding for it.

use serde_json::{json, Value};

use super::{ExternalObject, KafkaFacts, PlatformFacts, Report, TopicFacts};
use crate::manifest::Manifest;

pub(super) const NAMESPACE: &str = "ehs-prod";

fn labels(name: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": format!("{name}-prod"),
        "app.kubernetes.io/part-of": "ehs-platform",
        "app.kubernetes.io/managed-by": "ehs",
    })
}

fn selector(name: &str) -> Value {
    json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": format!("{name}-prod")})
}

fn restricted_container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    })
}

fn pod_security_context() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
}

pub(super) fn namespace() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "ehs-platform",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.35",
            },
        },
    })
}

pub(super) fn kafka_config_map() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kafka-config", "namespace": NAMESPACE, "labels": labels("kafka")},
        "data": {"server.properties": "process.roles=broker,controller\n"},
    })
}

pub(super) fn kafka_headless_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kafka-headless", "namespace": NAMESPACE, "labels": labels("kafka")},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": selector("kafka"),
            "ports": [
                {"name": "client", "port": 9092, "targetPort": "client"},
                {"name": "controller", "port": 9093, "targetPort": "controller"},
            ],
        },
    })
}

pub(super) fn kafka_client_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kafka", "namespace": NAMESPACE, "labels": labels("kafka")},
        "spec": {
            "type": "ClusterIP",
            "selector": selector("kafka"),
            "ports": [{"name": "client", "port": 9092, "targetPort": "client", "protocol": "TCP"}],
        },
    })
}

pub(super) fn kafka_statefulset() -> Value {
    let mut container = restricted_container("kafka", "apache/kafka:4.1.0");
    container["ports"] = json!([
        {"name": "client", "containerPort": 9092},
        {"name": "controller", "containerPort": 9093},
    ]);
    container["env"] = json!([
        {"name": "KAFKA_NODE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}},
        {"name": "KAFKA_CLUSTER_ID", "valueFrom": {"secretKeyRef": {"name": "kafka-cluster-id", "key": "id"}}},
    ]);
    container["volumeMounts"] = json!([
        {"name": "data", "mountPath": "/var/lib/kafka/data"},
        {"name": "config", "mountPath": "/etc/kafka/ehs", "readOnly": true},
        {"name": "tmp", "mountPath": "/tmp"},
    ]);
    container["readinessProbe"] = json!({"tcpSocket": {"port": "client"}, "periodSeconds": 10});
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "kafka", "namespace": NAMESPACE, "labels": labels("kafka")},
        "spec": {
            "replicas": 3,
            "serviceName": "kafka-headless",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector("kafka")},
            "template": {
                "metadata": {"labels": labels("kafka")},
                "spec": {
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "kafka-config"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": labels("kafka")},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "local-path",
                    "resources": {"requests": {"storage": "20Gi"}},
                },
            }],
        },
    })
}

pub(super) fn kafka_pod_disruption_budget() -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "kafka", "namespace": NAMESPACE, "labels": labels("kafka")},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector("kafka")}},
    })
}

pub(super) fn bridge_service_account() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE, "labels": labels("ehs-bridge")},
        "automountServiceAccountToken": false,
    })
}

pub(super) fn bridge_headless_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE, "labels": labels("ehs-bridge")},
        "spec": {
            "clusterIP": "None",
            "selector": selector("ehs-bridge"),
            "ports": [{"name": "metrics", "port": 9100, "targetPort": "metrics"}],
        },
    })
}

pub(super) fn bridge_statefulset() -> Value {
    let mut container = restricted_container("bridge", "ghcr.io/ehs-platform/ehs-bridge:0.1.0");
    container["ports"] = json!([{"name": "metrics", "containerPort": 9100}]);
    container["envFrom"] = json!([{"secretRef": {"name": "mqtt-credentials"}}]);
    container["env"] = json!([
        {"name": "EHS_KAFKA_BOOTSTRAP", "value": "kafka:9092"},
        {"name": "EHS_OPTIONAL", "valueFrom": {"configMapKeyRef": {"name": "not-here", "key": "x", "optional": true}}},
    ]);
    let mut init = restricted_container("wait-for-kafka", "ghcr.io/ehs-platform/ehs-bridge:0.1.0");
    init["resources"] = json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}});
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE, "labels": labels("ehs-bridge")},
        "spec": {
            "replicas": 2,
            "serviceName": "ehs-bridge",
            "selector": {"matchLabels": selector("ehs-bridge")},
            "template": {
                "metadata": {"labels": labels("ehs-bridge")},
                "spec": {
                    "serviceAccountName": "ehs-bridge",
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security_context(),
                    "initContainers": [init],
                    "containers": [container],
                },
            },
        },
    })
}

fn manifest(component: &str, value: Value) -> Manifest {
    Manifest {
        component: component.into(),
        value,
    }
}

pub(super) fn good_environment() -> Vec<Manifest> {
    vec![
        manifest("namespace", namespace()),
        manifest("kafka", kafka_config_map()),
        manifest("kafka", kafka_headless_service()),
        manifest("kafka", kafka_client_service()),
        manifest("kafka", kafka_statefulset()),
        manifest("kafka", kafka_pod_disruption_budget()),
        manifest("bridge", bridge_service_account()),
        manifest("bridge", bridge_headless_service()),
        manifest("bridge", bridge_statefulset()),
    ]
}

pub(super) fn prod_facts() -> PlatformFacts {
    let topic = |name: &str| TopicFacts {
        name: name.into(),
        partitions: 12,
        replication_factor: 3,
        min_insync_replicas: 2,
    };
    PlatformFacts {
        environment: "prod".into(),
        production: true,
        kafka: KafkaFacts {
            brokers: 3,
            controller_voters: 3,
            topics: vec![
                topic("ehs.telemetry.raw"),
                topic("ehs.telemetry.dead-letter"),
            ],
        },
        provided_externally: [
            ("StorageClass", "local-path"),
            ("Secret", "mqtt-credentials"),
            ("Secret", "kafka-cluster-id"),
        ]
        .into_iter()
        .map(|(kind, name)| ExternalObject {
            kind: kind.into(),
            name: name.into(),
        })
        .collect(),
        component_problems: Vec::new(),
        component_references: Vec::new(),
    }
}

/// The valid environment with the value at JSON `pointer` of the object `kind`/`name` replaced.
pub(super) fn changed(kind: &str, name: &str, pointer: &str, value: Value) -> Vec<Manifest> {
    let mut objects = good_environment();
    set(&mut objects, kind, name, pointer, value);
    objects
}

/// Sets the value at JSON `pointer` inside the object of `kind` named `name`; panics (failing the
/// test) when the fixture has no such object.
pub(super) fn set(objects: &mut [Manifest], kind: &str, name: &str, pointer: &str, value: Value) {
    let target = objects
        .iter_mut()
        .find(|manifest| manifest.kind() == kind && manifest.name() == name);
    let Some(target) = target else {
        panic!("fixture has no {kind}/{name}")
    };
    set_pointer(&mut target.value, pointer, value);
}

/// Like `Value::pointer_mut`, but creates missing objects along the way.
pub(super) fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let mut current = root;
    for key in pointer.split('/').skip(1) {
        let key = unescape(key);
        let key = key.as_str();
        current = match current {
            Value::Array(items) => match key
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get_mut(index))
            {
                Some(item) => item,
                None => panic!("no index {key} in {pointer}"),
            },
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                match other.as_object_mut() {
                    Some(map) => map.entry(key).or_insert(Value::Null),
                    None => panic!("cannot descend into {pointer}"),
                }
            }
        };
    }
    *current = value;
}

/// Removes the value at JSON `pointer` inside the object of `kind` named `name`.
pub(super) fn remove(objects: &mut [Manifest], kind: &str, name: &str, pointer: &str) {
    let target = objects
        .iter_mut()
        .find(|manifest| manifest.kind() == kind && manifest.name() == name);
    let Some(target) = target else {
        panic!("fixture has no {kind}/{name}")
    };
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let key = unescape(key);
    let key = key.as_str();
    match target.value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(key);
        }
        Some(Value::Array(items)) => {
            if let Some(index) = key
                .parse::<usize>()
                .ok()
                .filter(|index| *index < items.len())
            {
                items.remove(index);
            }
        }
        _ => panic!("no {pointer} in {kind}/{name}"),
    }
}

fn unescape(pointer_segment: &str) -> String {
    pointer_segment.replace("~1", "/").replace("~0", "~")
}

/// The findings of one check, as (object, field, reason), sorted.
pub(super) fn findings_of(
    check: fn(&[Manifest], &PlatformFacts, &mut Report),
    objects: &[Manifest],
    facts: &PlatformFacts,
) -> Vec<(String, String, String)> {
    let mut report = Report::new(&facts.environment);
    check(objects, facts, &mut report);
    report
        .into_sorted()
        .into_iter()
        .map(|finding| (finding.object, finding.field, finding.reason))
        .collect()
}
