//! Platform rules that hold for every environment (and the stricter ones for production):
//! Kafka replication and quorum, HA replicas, container resources, Pod Security "restricted",
//! and one namespace per environment.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use super::path::FieldPath;
use super::pods::{items, pod_templates, Container, PodTemplate};
use super::{schema, PlatformFacts, Report};
use crate::manifest::Manifest;
use crate::quantity::Quantity;

pub(super) fn check(objects: &[Manifest], facts: &PlatformFacts, report: &mut Report) {
    check_kafka(facts, report);
    for (field, reason) in &facts.component_problems {
        report.model(field, reason.clone());
    }
    check_namespaces(objects, report);
    for manifest in objects {
        if facts.production && manifest.kind() == "StatefulSet" {
            check_production_replicas(manifest, report);
        }
    }
    for template in pod_templates(objects) {
        check_pod_security(&template, report);
        for container in template.containers() {
            check_resources(template.manifest, &container, report);
            check_container_security(&template, &container, report);
        }
    }
}

fn check_kafka(facts: &PlatformFacts, report: &mut Report) {
    let kafka = &facts.kafka;
    let voters = kafka.controller_voters;
    // A KRaft quorum of n voters tolerates (n-1)/2 failures; an even n adds a voter without adding tolerance.
    if voters.is_multiple_of(2) {
        report.model(
            "kafka.controllerVoters",
            format!(
                "a KRaft controller quorum needs an odd number of voters (1, 3, 5); found {voters}"
            ),
        );
    } else if facts.production && voters < 3 {
        report.model("kafka.controllerVoters", format!("production needs at least 3 KRaft controller voters to survive losing one; found {voters}"));
    }
    let mut names = BTreeSet::new();
    for topic in &kafka.topics {
        let field = |name: &str| FieldPath::of("kafka.topics").key(&topic.name).key(name);
        if !names.insert(topic.name.as_str()) {
            report.model(
                field("name"),
                "topic is declared more than once; topic names must be unique",
            );
        }
        let (replicas, min_isr) = (topic.replication_factor, topic.min_insync_replicas);
        if topic.partitions < 1 {
            report.model(
                field("partitions"),
                "a topic needs at least 1 partition; found 0",
            );
        }
        if replicas < 1 {
            report.model(
                field("replicationFactor"),
                "replication factor must be at least 1; found 0",
            );
        } else if replicas > kafka.brokers {
            let reason = format!(
                "replication factor {replicas} exceeds the {} broker(s); use at most {}",
                kafka.brokers, kafka.brokers
            );
            report.model(field("replicationFactor"), reason);
        }
        if min_isr < 1 {
            report.model(
                field("minInsyncReplicas"),
                "min.insync.replicas must be at least 1; found 0",
            );
        } else if min_isr > replicas {
            let reason = format!("min.insync.replicas {min_isr} exceeds the replication factor {replicas}, so no write could ever succeed");
            report.model(field("minInsyncReplicas"), reason);
        } else if facts.production && min_isr == replicas {
            let reason = format!(
                "in production min.insync.replicas must be below the replication factor ({replicas}) so writes survive losing one replica; use at most {}",
                replicas - 1
            );
            report.model(field("minInsyncReplicas"), reason);
        }
    }
}

fn check_production_replicas(statefulset: &Manifest, report: &mut Report) {
    // Kubernetes defaults an absent replica count to 1.
    let replicas = statefulset
        .value
        .pointer("/spec/replicas")
        .map_or(Some(1), Value::as_i64);
    if let Some(replicas) = replicas.filter(|replicas| *replicas < 2) {
        let reason = format!("a StatefulSet in production needs at least 2 replicas so it survives losing one pod; found {replicas}");
        report.object(statefulset, "spec.replicas", reason);
    }
}

/// The environment declares exactly one Namespace, and every namespaced object lives in it.
fn check_namespaces(objects: &[Manifest], report: &mut Report) {
    let namespaces: Vec<&Manifest> = objects
        .iter()
        .filter(|manifest| manifest.kind() == "Namespace")
        .collect();
    let declared = match namespaces.as_slice() {
        [] => {
            report.model("namespace", "the environment renders no Namespace object; it must declare the one namespace its objects live in");
            None
        }
        [namespace] => Some(namespace.name()),
        [first, others @ ..] => {
            for other in others {
                let reason = format!("the environment already declares namespace `{}`; an environment has exactly one", first.name());
                report.object(other, "metadata.name", reason);
            }
            Some(first.name())
        }
    };
    for namespace in &namespaces {
        let enforce = namespace
            .value
            .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
            .and_then(Value::as_str);
        if enforce != Some("restricted") {
            let field = FieldPath::of("metadata.labels").key("pod-security.kubernetes.io/enforce");
            let reason = format!(
                "must be `restricted` so the API server enforces Pod Security; found {}",
                enforce.map_or("nothing".to_owned(), |value| format!("`{value}`"))
            );
            report.object(namespace, field, reason);
        }
    }
    let Some(declared) = declared else { return };
    for manifest in objects {
        // Unknown kinds are reported by the schema check; their scope is unknown.
        if schema::is_namespaced(manifest.api_version(), manifest.kind()) != Some(true) {
            continue;
        }
        match manifest.namespace() {
            Some(namespace) if namespace == declared => {}
            found => {
                let found = found.map_or("none".to_owned(), |namespace| format!("`{namespace}`"));
                report.object(
                    manifest,
                    "metadata.namespace",
                    format!("must be the environment's namespace `{declared}`; found {found}"),
                );
            }
        }
    }
}

fn check_resources(workload: &Manifest, container: &Container, report: &mut Report) {
    let resources_path = container.path.key("resources");
    let resources = container.value.get("resources");
    for resource in ["cpu", "memory"] {
        let request = parsed_resource(
            workload,
            resources,
            &resources_path,
            "requests",
            resource,
            report,
        );
        let limit = parsed_resource(
            workload,
            resources,
            &resources_path,
            "limits",
            resource,
            report,
        );
        if let (Some((request_text, request)), Some((limit_text, limit))) = (request, limit) {
            if request.compare(limit) == Ordering::Greater {
                let reason = format!("request `{request_text}` exceeds limit `{limit_text}`; the request must be at most the limit");
                report.object(
                    workload,
                    resources_path.key("requests").key(resource),
                    reason,
                );
            }
        }
    }
}

/// The quantity at `resources.<section>.<resource>`, reporting it when missing or malformed.
fn parsed_resource(
    workload: &Manifest,
    resources: Option<&Value>,
    resources_path: &FieldPath,
    section: &str,
    resource: &str,
    report: &mut Report,
) -> Option<(String, Quantity)> {
    let field = resources_path.key(section).key(resource);
    let value = resources
        .and_then(|resources| resources.get(section))
        .and_then(|section| section.get(resource));
    let text = match value {
        None => {
            let reason = format!(
                "missing: every container needs {resource} requests and limits (e.g. {})",
                example(resource)
            );
            report.object(workload, field, reason);
            return None;
        }
        Some(Value::String(text)) => text.clone(),
        // YAML may carry plain numbers (`cpu: 2`); they are quantities too.
        Some(Value::Number(number)) => number.to_string(),
        // A wrong type is a schema finding already.
        Some(_) => return None,
    };
    match Quantity::parse(&text) {
        Ok(quantity) if quantity.is_negative() => {
            report.object(
                workload,
                field,
                format!("`{text}` is negative; resources must be zero or more"),
            );
            None
        }
        Ok(quantity) => Some((text, quantity)),
        Err(error) => {
            report.object(workload, field, error.to_string());
            None
        }
    }
}

fn example(resource: &str) -> &'static str {
    if resource == "cpu" {
        "`cpu: 100m`"
    } else {
        "`memory: 256Mi`"
    }
}

/// Volume types Pod Security "restricted" allows.
const RESTRICTED_VOLUME_TYPES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Pod-level rules of Pod Security "restricted".
fn check_pod_security(template: &PodTemplate, report: &mut Report) {
    let (manifest, spec, spec_path) = (template.manifest, template.spec, &template.spec_path);
    for host_namespace in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(host_namespace) == Some(&Value::Bool(true)) {
            report.object(manifest, spec_path.key(host_namespace), "sharing the host's namespaces is not allowed under Pod Security restricted; remove it or set false");
        }
    }
    if spec
        .pointer("/securityContext/runAsUser")
        .and_then(Value::as_i64)
        == Some(0)
    {
        report.object(
            manifest,
            spec_path.key("securityContext").key("runAsUser"),
            "running as root (UID 0) is not allowed; use a non-zero UID",
        );
    }
    for (index, volume) in items(spec.get("volumes")) {
        let Some(volume) = volume.as_object() else {
            continue;
        };
        for source in volume.keys().filter(|key| *key != "name") {
            if !RESTRICTED_VOLUME_TYPES.contains(&source.as_str()) {
                let reason = format!(
                    "`{source}` volumes are not allowed under Pod Security restricted (allowed: {})",
                    RESTRICTED_VOLUME_TYPES.join(", ")
                );
                report.object(
                    manifest,
                    spec_path.key("volumes").index(index).key(source),
                    reason,
                );
            }
        }
    }
}

/// Container-level rules of Pod Security "restricted", plus our read-only root filesystem rule.
/// `runAsNonRoot`, `runAsUser` and `seccompProfile` may be set on the pod and overridden per container.
fn check_container_security(template: &PodTemplate, container: &Container, report: &mut Report) {
    let manifest = template.manifest;
    let context = container.value.get("securityContext");
    let context_path = container.path.key("securityContext");
    let container_setting = |pointer: &str| context.and_then(|context| context.pointer(pointer));
    let effective = |pointer: &str| {
        container_setting(pointer).or_else(|| {
            template
                .spec
                .get("securityContext")
                .and_then(|context| context.pointer(pointer))
        })
    };

    if effective("/runAsNonRoot") != Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("runAsNonRoot"),
            "must be true (on the container or the pod) under Pod Security restricted",
        );
    }
    if container_setting("/runAsUser").and_then(Value::as_i64) == Some(0) {
        report.object(
            manifest,
            context_path.key("runAsUser"),
            "running as root (UID 0) is not allowed; use a non-zero UID",
        );
    }
    match effective("/seccompProfile/type").and_then(Value::as_str) {
        Some("RuntimeDefault" | "Localhost") => {}
        found => {
            let found = found.map_or("nothing".to_owned(), |found| format!("`{found}`"));
            let reason = format!("seccompProfile.type must be RuntimeDefault (or Localhost), on the container or the pod; found {found}");
            report.object(
                manifest,
                context_path.key("seccompProfile").key("type"),
                reason,
            );
        }
    }
    if container_setting("/allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
        report.object(
            manifest,
            context_path.key("allowPrivilegeEscalation"),
            "must be false under Pod Security restricted",
        );
    }
    if container_setting("/privileged") == Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("privileged"),
            "privileged containers are not allowed; remove it or set false",
        );
    }
    if container_setting("/readOnlyRootFilesystem") != Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("readOnlyRootFilesystem"),
            "must be true; mount an emptyDir where the program needs to write",
        );
    }
    let drops_all = items(container_setting("/capabilities/drop"))
        .any(|(_, capability)| capability.as_str() == Some("ALL"));
    if !drops_all {
        report.object(
            manifest,
            context_path.key("capabilities").key("drop"),
            "must include ALL under Pod Security restricted",
        );
    }
    for (index, capability) in items(container_setting("/capabilities/add")) {
        if capability.as_str() != Some("NET_BIND_SERVICE") {
            let path = context_path.key("capabilities").key("add").index(index);
            report.object(
                manifest,
                path,
                format!("adding {capability} is not allowed; only NET_BIND_SERVICE may be added"),
            );
        }
    }
    for (index, port) in items(container.value.get("ports")) {
        if port
            .get("hostPort")
            .and_then(Value::as_i64)
            .is_some_and(|host_port| host_port != 0)
        {
            let path = container.path.key("ports").index(index).key("hostPort");
            report.object(manifest, path, "host ports are not allowed under Pod Security restricted; expose the port through a Service");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::TopicFacts;
    use super::*;

    fn findings(objects: &[Manifest], facts: &PlatformFacts) -> Vec<(String, String, String)> {
        findings_of(check, objects, facts)
    }

    fn model_findings(facts: &PlatformFacts) -> Vec<(String, String)> {
        findings(&good_environment(), facts)
            .into_iter()
            .map(|(_, field, reason)| (field, reason))
            .collect()
    }

    /// The single finding for the kafka StatefulSet after `change`.
    fn kafka_finding(change: impl FnOnce(&mut Vec<Manifest>)) -> (String, String) {
        let mut objects = good_environment();
        change(&mut objects);
        let mut found = findings(&objects, &prod_facts());
        assert_eq!(found.len(), 1, "{found:#?}");
        let (object, field, reason) = found.remove(0);
        assert_eq!(object, "kafka/StatefulSet/kafka");
        (field, reason)
    }

    fn kafka_finding_after_setting(pointer: &str, value: Value) -> (String, String) {
        kafka_finding(|objects| set(objects, "StatefulSet", "kafka", pointer, value))
    }

    const CONTAINER: &str = "/spec/template/spec/containers/0";

    #[test]
    fn the_valid_environment_meets_every_invariant() {
        assert_eq!(findings(&good_environment(), &prod_facts()), Vec::new());
    }

    #[test]
    fn replication_factor_cannot_exceed_the_brokers() {
        let mut facts = prod_facts();
        facts.kafka.brokers = 2;
        assert_eq!(
            model_findings(&facts),
            [
                (
                    "kafka.topics[\"ehs.telemetry.dead-letter\"].replicationFactor".to_owned(),
                    "replication factor 3 exceeds the 2 broker(s); use at most 2".to_owned()
                ),
                (
                    "kafka.topics[\"ehs.telemetry.raw\"].replicationFactor".to_owned(),
                    "replication factor 3 exceeds the 2 broker(s); use at most 2".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn min_isr_rules() {
        let single = |replication_factor, min_insync_replicas, production| {
            let mut facts = prod_facts();
            facts.production = production;
            facts.kafka.topics = vec![TopicFacts {
                name: "t".into(),
                partitions: 1,
                replication_factor,
                min_insync_replicas,
            }];
            model_findings(&facts)
                .into_iter()
                .map(|(field, _)| field)
                .collect::<Vec<_>>()
        };
        assert_eq!(single(3, 2, true), Vec::<String>::new());
        assert_eq!(single(3, 3, true), ["kafka.topics.t.minInsyncReplicas"]);
        assert_eq!(single(3, 3, false), Vec::<String>::new());
        assert_eq!(single(1, 1, false), Vec::<String>::new());
        assert_eq!(single(2, 3, false), ["kafka.topics.t.minInsyncReplicas"]);
        assert_eq!(single(2, 0, false), ["kafka.topics.t.minInsyncReplicas"]);
        assert_eq!(
            single(0, 0, false),
            [
                "kafka.topics.t.minInsyncReplicas",
                "kafka.topics.t.replicationFactor"
            ]
        );
    }

    #[test]
    fn topics_need_partitions_and_unique_names() {
        let mut facts = prod_facts();
        facts.kafka.topics[1].name = facts.kafka.topics[0].name.clone();
        facts.kafka.topics[0].partitions = 0;
        let fields: Vec<String> = model_findings(&facts)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "kafka.topics[\"ehs.telemetry.raw\"].name",
                "kafka.topics[\"ehs.telemetry.raw\"].partitions"
            ]
        );
    }

    #[test]
    fn the_kraft_quorum_is_odd_and_at_least_three_in_production() {
        let voters = |count, production| {
            let mut facts = prod_facts();
            facts.production = production;
            facts.kafka.controller_voters = count;
            model_findings(&facts)
        };
        assert_eq!(voters(3, true), Vec::new());
        assert_eq!(voters(5, true), Vec::new());
        assert_eq!(voters(1, false), Vec::new());
        assert_eq!(
            voters(4, true),
            [(
                "kafka.controllerVoters".to_owned(),
                "a KRaft controller quorum needs an odd number of voters (1, 3, 5); found 4"
                    .to_owned()
            )]
        );
        assert_eq!(voters(0, false).len(), 1);
        assert_eq!(voters(1, true), [("kafka.controllerVoters".to_owned(), "production needs at least 3 KRaft controller voters to survive losing one; found 1".to_owned())]);
    }

    #[test]
    fn stateful_components_need_two_replicas_in_production_only() {
        let (field, reason) = kafka_finding_after_setting("/spec/replicas", json!(1));
        assert_eq!(field, "spec.replicas");
        assert!(reason.ends_with("found 1"), "{reason}");
        let (_, reason) =
            kafka_finding(|objects| remove(objects, "StatefulSet", "kafka", "/spec/replicas"));
        assert!(
            reason.ends_with("found 1"),
            "absent replicas default to 1: {reason}"
        );
        let objects = changed("StatefulSet", "kafka", "/spec/replicas", json!(1));
        let mut dev = prod_facts();
        dev.production = false;
        assert_eq!(findings(&objects, &dev), Vec::new());
    }

    #[test]
    fn every_container_needs_cpu_and_memory_requests_and_limits() {
        let (field, reason) = kafka_finding(|objects| {
            remove(
                objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/limits/memory"),
            )
        });
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.limits.memory"
        );
        assert_eq!(
            reason,
            "missing: every container needs memory requests and limits (e.g. `memory: 256Mi`)"
        );

        let mut objects = good_environment();
        remove(
            &mut objects,
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/initContainers/0/resources",
        );
        let fields: Vec<String> = findings(&objects, &prod_facts())
            .into_iter()
            .map(|(_, field, _)| field)
            .collect();
        let prefix = "spec.template.spec.initContainers[0].resources";
        assert_eq!(
            fields,
            [
                format!("{prefix}.limits.cpu"),
                format!("{prefix}.limits.memory"),
                format!("{prefix}.requests.cpu"),
                format!("{prefix}.requests.memory")
            ]
        );
    }

    #[test]
    fn requests_may_not_exceed_limits_in_any_notation() {
        let (field, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/memory"),
            json!("1.5Gi"),
        );
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.requests.memory"
        );
        assert_eq!(
            reason,
            "request `1.5Gi` exceeds limit `1Gi`; the request must be at most the limit"
        );
        let (_, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/cpu"),
            json!("2001m"),
        );
        assert_eq!(
            reason,
            "request `2001m` exceeds limit `2`; the request must be at most the limit"
        );
        // Equal values written differently are fine.
        for (request, limit) in [("2000m", "2"), ("1024Mi", "1Gi"), ("2e0", "2000m")] {
            let mut objects = good_environment();
            let resource = if request.ends_with('i') {
                "memory"
            } else {
                "cpu"
            };
            set(
                &mut objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/requests/{resource}"),
                json!(request),
            );
            set(
                &mut objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/limits/{resource}"),
                json!(limit),
            );
            assert_eq!(
                findings(&objects, &prod_facts()),
                Vec::new(),
                "{request} vs {limit}"
            );
        }
        let objects = changed(
            "StatefulSet",
            "kafka",
            &format!("{CONTAINER}/resources/limits/cpu"),
            json!(2),
        );
        assert_eq!(
            findings(&objects, &prod_facts()),
            Vec::new(),
            "numbers are quantities too"
        );
    }

    #[test]
    fn invalid_or_negative_quantities_are_reported() {
        let (field, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/limits/memory"),
            json!("1Gx"),
        );
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.limits.memory"
        );
        assert!(
            reason.starts_with("`1Gx` has the unknown suffix `Gx`"),
            "{reason}"
        );
        let (_, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/cpu"),
            json!("-1"),
        );
        assert_eq!(reason, "`-1` is negative; resources must be zero or more");
    }

    #[test]
    fn pod_security_restricted_is_enforced_per_container() {
        let cases: [(&str, Value, &str); 8] = [
            (
                "/securityContext/allowPrivilegeEscalation",
                json!(true),
                "securityContext.allowPrivilegeEscalation",
            ),
            (
                "/securityContext/readOnlyRootFilesystem",
                json!(false),
                "securityContext.readOnlyRootFilesystem",
            ),
            (
                "/securityContext/capabilities/drop",
                json!(["NET_RAW"]),
                "securityContext.capabilities.drop",
            ),
            (
                "/securityContext/capabilities/add",
                json!(["NET_BIND_SERVICE", "SYS_ADMIN"]),
                "securityContext.capabilities.add[1]",
            ),
            (
                "/securityContext/privileged",
                json!(true),
                "securityContext.privileged",
            ),
            (
                "/securityContext/runAsNonRoot",
                json!(false),
                "securityContext.runAsNonRoot",
            ),
            (
                "/securityContext/seccompProfile/type",
                json!("Unconfined"),
                "securityContext.seccompProfile.type",
            ),
            ("/ports/0/hostPort", json!(9092), "ports[0].hostPort"),
        ];
        for (pointer, value, field) in cases {
            let (found, _) = kafka_finding(|objects| {
                set(
                    objects,
                    "StatefulSet",
                    "kafka",
                    &format!("{CONTAINER}{pointer}"),
                    value,
                )
            });
            assert_eq!(found, format!("spec.template.spec.containers[0].{field}"));
        }
        let (found, _) = kafka_finding_after_setting(
            &format!("{CONTAINER}/securityContext/runAsUser"),
            json!(0),
        );
        assert_eq!(
            found,
            "spec.template.spec.containers[0].securityContext.runAsUser"
        );
    }

    #[test]
    fn pod_level_settings_apply_to_every_container_unless_overridden() {
        // Without the pod-level defaults, each of the kafka container's settings is missing.
        let mut objects = good_environment();
        remove(
            &mut objects,
            "StatefulSet",
            "kafka",
            "/spec/template/spec/securityContext",
        );
        let fields: Vec<String> = findings(&objects, &prod_facts())
            .into_iter()
            .map(|(_, field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[0].securityContext.runAsNonRoot",
                "spec.template.spec.containers[0].securityContext.seccompProfile.type"
            ]
        );
        // Setting them on the container instead satisfies the rule.
        set(
            &mut objects,
            "StatefulSet",
            "kafka",
            &format!("{CONTAINER}/securityContext/runAsNonRoot"),
            json!(true),
        );
        set(
            &mut objects,
            "StatefulSet",
            "kafka",
            &format!("{CONTAINER}/securityContext/seccompProfile"),
            json!({"type": "RuntimeDefault"}),
        );
        assert_eq!(findings(&objects, &prod_facts()), Vec::new());
    }

    #[test]
    fn host_namespaces_root_and_host_path_volumes_are_rejected() {
        let (field, _) =
            kafka_finding_after_setting("/spec/template/spec/hostNetwork", json!(true));
        assert_eq!(field, "spec.template.spec.hostNetwork");
        let (field, _) = kafka_finding_after_setting("/spec/template/spec/hostPID", json!(true));
        assert_eq!(field, "spec.template.spec.hostPID");
        let (field, _) =
            kafka_finding_after_setting("/spec/template/spec/securityContext/runAsUser", json!(0));
        assert_eq!(field, "spec.template.spec.securityContext.runAsUser");
        let (field, reason) = kafka_finding(|objects| {
            set(
                objects,
                "StatefulSet",
                "kafka",
                "/spec/template/spec/volumes/1",
                json!({"name": "tmp", "hostPath": {"path": "/tmp"}}),
            );
        });
        assert_eq!(field, "spec.template.spec.volumes[1].hostPath");
        assert!(
            reason.starts_with("`hostPath` volumes are not allowed"),
            "{reason}"
        );
    }

    #[test]
    fn every_namespaced_object_lives_in_the_declared_namespace() {
        let mut objects = changed(
            "ConfigMap",
            "kafka-config",
            "/metadata/namespace",
            json!("default"),
        );
        remove(&mut objects, "Service", "kafka", "/metadata/namespace");
        let found = findings(&objects, &prod_facts());
        assert_eq!(
            found,
            [
                (
                    "kafka/ConfigMap/kafka-config".to_owned(),
                    "metadata.namespace".to_owned(),
                    "must be the environment's namespace `ehs-prod`; found `default`".to_owned()
                ),
                (
                    "kafka/Service/kafka".to_owned(),
                    "metadata.namespace".to_owned(),
                    "must be the environment's namespace `ehs-prod`; found none".to_owned()
                ),
            ]
        );
        // Cluster-scoped objects carry no namespace.
        let mut objects = good_environment();
        objects.push(Manifest { component: "storage".into(), value: json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "x"}, "provisioner": "p"}) });
        assert_eq!(findings(&objects, &prod_facts()), Vec::new());
    }

    #[test]
    fn exactly_one_namespace_with_pod_security_enforced() {
        let mut objects = good_environment();
        objects.retain(|manifest| manifest.kind() != "Namespace");
        let found = findings(&objects, &prod_facts());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("environment", "namespace")
        );

        let mut objects = good_environment();
        let mut second = namespace();
        second["metadata"]["name"] = json!("ehs-prod-2");
        objects.push(Manifest {
            component: "namespace".into(),
            value: second,
        });
        let found = findings(&objects, &prod_facts());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].0, "namespace/Namespace/ehs-prod-2");

        let objects = changed(
            "Namespace",
            NAMESPACE,
            "/metadata/labels/pod-security.kubernetes.io~1enforce",
            json!("baseline"),
        );
        let found = findings(&objects, &prod_facts());
        assert_eq!(
            found,
            [(
                "namespace/Namespace/ehs-prod".to_owned(),
                "metadata.labels[\"pod-security.kubernetes.io/enforce\"]".to_owned(),
                "must be `restricted` so the API server enforces Pod Security; found `baseline`"
                    .to_owned()
            )]
        );
    }
}
