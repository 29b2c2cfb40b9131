//! Apache Kafka in KRaft mode from the official `apache/kafka` image.
//!
//! Every node is both broker and controller ("combined" mode): the quorum voters are the
//! StatefulSet's pods, so the replica count must be odd (1 in dev, 3 in prod). With three nodes,
//! topics use replication factor 3 and `min.insync.replicas` 2: one node may be down (a rolling
//! update, a drain) while producers with `acks=all` keep writing.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::core::v1::{
    ConfigMap, PodSpec,
    PodTemplateSpec, Probe, Service, ServiceSpec, TCPSocketAction, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    config_map_volume, container_port, count_i32, env_var, manifest, persistent_volume_claim,
    pod_field_env_var, CONFIG_CHECKSUM_ANNOTATION,
    restricted_container, restricted_pod_security, run_once_job, scratch_volume, service_port, short_hash, App,
    ComponentError, ComponentHooks,
};
use crate::manifest::Manifest;
use crate::model::{
    Count, DnsLabel, Image, ImageLayer, Quantity, Resources, ResourcesLayer,
    TopicName,
};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{FieldPath, KindSchema, Report};

pub const NAME: &str = "kafka";

/// Overridable Kafka settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "KafkaSettings")]
pub struct Layer {
    /// Number of Kafka nodes. Each node is a broker and a KRaft controller voter, so this must be
    /// odd: 1 (no fault tolerance) or 3 (tolerates one node down).
    pub replicas: Option<Count>,
    /// The `apache/kafka` image.
    pub image: Option<ImageLayer>,
    /// Resources of each Kafka node. The JVM heap is half the memory limit; the rest is page
    /// cache and off-heap buffers.
    pub resources: Option<ResourcesLayer>,
    /// Resources of the short-lived job that creates the platform's topics.
    pub admin_resources: Option<ResourcesLayer>,
    /// Persistent volume of each node.
    pub storage: Option<StorageLayer>,
    /// Topics the platform needs; created when missing.
    pub topics: Option<TopicsLayer>,
}

/// Persistent volume settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Storage")]
pub struct StorageLayer {
    /// Size of each node's volume, e.g. `10Gi`. Its StorageClass is `storage.className`.
    pub size: Option<Quantity>,
}

/// The platform's topics.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Topics")]
pub struct TopicsLayer {
    /// Normalized meter readings written by the bridge.
    pub telemetry: Option<TopicLayer>,
    /// Messages the bridge could not decode or map.
    pub dead_letters: Option<TopicLayer>,
    /// Records the JDBC sink could not write (Kafka Connect's dead-letter queue).
    pub sink_dead_letters: Option<TopicLayer>,
}

/// One topic.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Topic")]
pub struct TopicLayer {
    /// Topic name, e.g. `ehs.telemetry.raw`.
    pub name: Option<TopicName>,
    /// Partitions: the upper bound on consumer parallelism. Can only grow.
    pub partitions: Option<Count>,
    /// Copies of each partition; at most the number of Kafka nodes. Unset: the number of nodes,
    /// at most 3 (1 node → 1, 3 or more nodes → 3).
    pub replication_factor: Option<Count>,
    /// Replicas that must acknowledge an `acks=all` write; below the replication factor so one
    /// replica may be offline. Unset: one less than the replication factor, at least 1
    /// (RF 1 → 1, RF 2 → 1, RF 3 → 2).
    pub min_insync_replicas: Option<Count>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub replicas: Count,
    pub image: Image,
    pub resources: Resources,
    pub admin_resources: Resources,
    pub storage: Storage,
    pub topics: Topics,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    pub size: Quantity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topics {
    pub telemetry: Topic,
    pub dead_letters: Topic,
    pub sink_dead_letters: Topic,
}

impl Topics {
    pub fn all(&self) -> [&Topic; 3] {
        [&self.telemetry, &self.dead_letters, &self.sink_dead_letters]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub name: TopicName,
    pub partitions: Count,
    /// An override; [`Settings::topic_spec`] derives it from the node count otherwise.
    #[serde(default)]
    pub replication_factor: Option<Count>,
    /// An override; [`Settings::topic_spec`] derives it from the replication factor otherwise.
    #[serde(default)]
    pub min_insync_replicas: Option<Count>,
}

/// A topic as it is created: overrides applied, the rest derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    pub name: TopicName,
    pub partitions: u32,
    pub replication_factor: u32,
    pub min_insync_replicas: u32,
}

/// The client Service; its name is what every client's bootstrap address starts with.
pub const CLIENT_SERVICE: &str = "kafka";
/// Headless Service giving each node the stable DNS name the quorum and clients use.
pub const QUORUM_SERVICE: &str = "kafka-quorum";
pub const CLIENT_PORT: u16 = 9092;
pub const CLIENT_PORT_NAME: &str = "tcp-client";
pub const CONTROLLER_PORT: u16 = 9093;
pub const CONTROLLER_PORT_NAME: &str = "tcp-controller";
const CONFIG_MAP: &str = "kafka-config";
/// Name of the topic-creating job's application: its ConfigMap, and its Job's name prefix.
const TOPICS_APP: &str = "kafka-topics";
/// `appuser` in the official image.
const KAFKA_UID: i64 = 1000;
const CONFIG_MOUNT: &str = "/etc/kafka-config";
const DATA_MOUNT: &str = "/var/lib/kafka/data";
/// A subdirectory, so the volume's own root (which may hold `lost+found`) is not a log dir.
const LOG_DIR: &str = "/var/lib/kafka/data/logs";
/// Kafka's scripts write their own logs under `LOG_DIR`; the root filesystem is read-only.
const SCRATCH_MOUNT: &str = "/tmp";
const APPLICATION_LOG_DIR: &str = "/tmp/kafka-logs";
/// No topic, internal (consumer offsets, transactions) or ours, gets more copies than this by
/// default: three copies survive losing one with a majority left.
const MAX_DEFAULT_REPLICATION: u32 = 3;

impl Settings {
    /// `host:port` clients bootstrap from: the client Service in the environment's namespace.
    pub fn bootstrap_servers(&self, namespace: &DnsLabel) -> String {
        format!("{CLIENT_SERVICE}.{namespace}.svc:{CLIENT_PORT}")
    }

    fn node_host(&self, ordinal: u32, namespace: &DnsLabel) -> String {
        format!("{NAME}-{ordinal}.{QUORUM_SERVICE}.{namespace}.svc")
    }

    /// `id@host:port` for every controller: each node's ordinal is its node id.
    pub fn quorum_voters(&self, namespace: &DnsLabel) -> String {
        (0..self.replicas.get())
            .map(|ordinal| {
                format!(
                    "{ordinal}@{}:{CONTROLLER_PORT}",
                    self.node_host(ordinal, namespace)
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Replication of Kafka's internal topics, and of ours unless overridden: as many copies as
    /// there are nodes, up to three.
    pub fn default_replication_factor(&self) -> u32 {
        self.replicas.get().min(MAX_DEFAULT_REPLICATION)
    }

    /// The platform's topics as they are created.
    pub fn topic_specs(&self) -> [TopicSpec; 3] {
        self.topics.all().map(|topic| self.topic_spec(topic))
    }

    pub fn topic_spec(&self, topic: &Topic) -> TopicSpec {
        let replication_factor = topic
            .replication_factor
            .map_or_else(|| self.default_replication_factor(), Count::get);
        TopicSpec {
            name: topic.name.clone(),
            partitions: topic.partitions.get(),
            replication_factor,
            min_insync_replicas: topic
                .min_insync_replicas
                .map_or_else(|| min_insync_replicas(replication_factor), Count::get),
        }
    }
}

/// One copy may be offline when there are at least two.
fn min_insync_replicas(replication_factor: u32) -> u32 {
    replication_factor.saturating_sub(1).max(1)
}

/// The cluster id every node formats its storage with. Derived from the namespace so it is stable
/// across renders and distinct per environment: a base64url-encoded 128-bit value, as Kafka's
/// `Uuid` expects.
pub fn cluster_id(namespace: &DnsLabel) -> String {
    let digest = Sha256::digest(format!("ehs-platform/kafka/{namespace}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// JVM heap flags: half the container's memory limit.
pub fn heap_options(resources: &Resources) -> String {
    let heap_mib = (resources.limits.memory.whole_units() / 2 / (1024 * 1024)).max(64);
    format!("-Xms{heap_mib}m -Xmx{heap_mib}m")
}

pub fn build(platform: &Platform, templates: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let kafka = &platform.kafka;
    let namespace = &platform.environment.namespace;
    let app = App {
        platform,
        name: NAME,
        component: NAME,
    };

    let server_properties = templates.render(
        "kafka/server.properties.j2",
        minijinja::context! {
            quorum_voters => kafka.quorum_voters(namespace),
            client_port => CLIENT_PORT,
            controller_port => CONTROLLER_PORT,
            log_dir => LOG_DIR,
            internal_replication_factor => kafka.default_replication_factor(),
            internal_min_insync_replicas => min_insync_replicas(kafka.default_replication_factor()),
        },
    )?;
    let start_script = templates.render(
        "kafka/start.sh.j2",
        minijinja::context! {
            config_mount => CONFIG_MOUNT,
            quorum_service => QUORUM_SERVICE,
            namespace => namespace.as_ref(),
            client_port => CLIENT_PORT,
            cluster_id => cluster_id(namespace),
        },
    )?;
    let topics_script = templates.render(
        "kafka/create-topics.sh.j2",
        minijinja::context! {
            bootstrap_servers => kafka.bootstrap_servers(namespace),
            topics => minijinja::value::Serde(kafka.topic_specs()),
        },
    )?;

    let config_map = ConfigMap {
        metadata: app.metadata(CONFIG_MAP),
        data: Some(BTreeMap::from([
            ("server.properties".to_owned(), server_properties.clone()),
            ("start.sh".to_owned(), start_script.clone()),
        ])),
        ..Default::default()
    };
    // The topics job's pods must not match the Kafka Services' or the PDB's selectors.
    let topics_app = App {
        platform,
        name: TOPICS_APP,
        component: NAME,
    };
    let topics_config_map = ConfigMap {
        metadata: topics_app.metadata(TOPICS_APP),
        data: Some(BTreeMap::from([(
            "create-topics.sh".to_owned(),
            topics_script.clone(),
        )])),
        ..Default::default()
    };
    let config_checksum = short_hash(&format!("{server_properties}{start_script}"), 16);

    Ok(vec![
        manifest(NAME, &config_map)?,
        manifest(NAME, &quorum_service(&app))?,
        manifest(NAME, &client_service(&app))?,
        manifest(NAME, &stateful_set(&app, &config_checksum))?,
        manifest(NAME, &app.one_at_a_time_disruption_budget())?,
        manifest(NAME, &topics_config_map)?,
        manifest(NAME, &topics_job(&topics_app, &topics_script))?,
    ])
}

fn quorum_service(app: &App) -> Service {
    Service {
        metadata: app.metadata(QUORUM_SERVICE),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Controllers must find each other before any of them is ready: the quorum forms first.
            publish_not_ready_addresses: Some(true),
            selector: Some(app.selector_labels()),
            ports: Some(vec![
                service_port(CLIENT_PORT_NAME, CLIENT_PORT),
                service_port(CONTROLLER_PORT_NAME, CONTROLLER_PORT),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn client_service(app: &App) -> Service {
    Service {
        metadata: app.metadata(CLIENT_SERVICE),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(app.selector_labels()),
            ports: Some(vec![service_port(CLIENT_PORT_NAME, CLIENT_PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp_probe(port_name: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port_name.to_owned()),
            host: None,
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

fn stateful_set(app: &App, config_checksum: &str) -> StatefulSet {
    let kafka = &app.platform.kafka;
    let (scratch, scratch_mount) = scratch_volume("tmp", SCRATCH_MOUNT);
    let (config, config_mount) = config_map_volume(CONFIG_MAP, CONFIG_MOUNT);
    let container = k8s_openapi::api::core::v1::Container {
        command: Some(vec![
            "/bin/bash".to_owned(),
            format!("{CONFIG_MOUNT}/start.sh"),
        ]),
        ports: Some(vec![
            container_port(CLIENT_PORT_NAME, CLIENT_PORT),
            container_port(CONTROLLER_PORT_NAME, CONTROLLER_PORT),
        ]),
        env: Some(vec![
            pod_field_env_var("POD_NAME", "metadata.name"),
            env_var("KAFKA_HEAP_OPTS", heap_options(&kafka.resources)),
            env_var("LOG_DIR", APPLICATION_LOG_DIR),
        ]),
        volume_mounts: Some(vec![
            config_mount,
            VolumeMount {
                name: "data".to_owned(),
                mount_path: DATA_MOUNT.to_owned(),
                ..Default::default()
            },
            scratch_mount,
        ]),
        // Log recovery after an unclean stop can take minutes; liveness waits for startup.
        startup_probe: Some(tcp_probe(CLIENT_PORT_NAME, 10, 60)),
        readiness_probe: Some(tcp_probe(CLIENT_PORT_NAME, 10, 3)),
        liveness_probe: Some(tcp_probe(CONTROLLER_PORT_NAME, 20, 3)),
        ..restricted_container(NAME, kafka.image.to_string(), &kafka.resources)
    };
    StatefulSet {
        metadata: app.metadata(NAME),
        spec: Some(StatefulSetSpec {
            replicas: Some(count_i32(kafka.replicas)),
            service_name: Some(QUORUM_SERVICE.to_owned()),
            // All voters must start together for the quorum to elect a leader.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: app.selector(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app.labels()),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_CHECKSUM_ANNOTATION.to_owned(),
                        config_checksum.to_owned(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    // It never calls the Kubernetes API.
                    automount_service_account_token: Some(false),
                    affinity: Some(app.spread_across_nodes()),
                    security_context: Some(restricted_pod_security(KAFKA_UID)),
                    containers: vec![container],
                    volumes: Some(vec![config, scratch]),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![persistent_volume_claim(app, "data", &kafka.storage)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Job that creates missing topics; a changed topic spec or image yields a new Job.
fn topics_job(app: &App, topics_script: &str) -> Job {
    let kafka = &app.platform.kafka;
    let (scratch, scratch_mount) = scratch_volume("tmp", SCRATCH_MOUNT);
    let (config, config_mount) = config_map_volume(TOPICS_APP, CONFIG_MOUNT);
    let container = k8s_openapi::api::core::v1::Container {
        command: Some(vec![
            "/bin/bash".to_owned(),
            format!("{CONFIG_MOUNT}/create-topics.sh"),
        ]),
        env: Some(vec![
            env_var("KAFKA_HEAP_OPTS", heap_options(&kafka.admin_resources)),
            env_var("LOG_DIR", APPLICATION_LOG_DIR),
        ]),
        volume_mounts: Some(vec![config_mount, scratch_mount]),
        ..restricted_container(
            "create-topics",
            kafka.image.to_string(),
            &kafka.admin_resources,
        )
    };
    run_once_job(
        app,
        topics_script,
        KAFKA_UID,
        container,
        vec![config, scratch],
        10,
        1800,
    )
}

/// The brokers' pods, for flows to them.
pub fn pods(platform: &Platform) -> crate::graph::Peer {
    crate::graph::Peer::app(&App {
        platform,
        name: NAME,
        component: NAME,
    })
}

/// Kafka's part in `ehs validate`.
pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Stateful
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<ConfigMap>(),
            KindSchema::of::<Service>(),
            KindSchema::of::<StatefulSet>(),
            KindSchema::of::<PodDisruptionBudget>(),
            KindSchema::of::<Job>(),
        ]
    }

    /// Brokers replicate and vote through the quorum Service's names; the topics Job creates
    /// topics through the client Service.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        use crate::graph::{tcp, Flow};
        let topics = crate::graph::Peer::app(&App {
            platform,
            name: TOPICS_APP,
            component: NAME,
        });
        vec![
            Flow::new(
                pods(platform),
                pods(platform),
                vec![tcp(CLIENT_PORT), tcp(CONTROLLER_PORT)],
                "replication and KRaft quorum",
            )
            .via(QUORUM_SERVICE),
            Flow::new(topics, pods(platform), vec![tcp(CLIENT_PORT)], "creates topics")
                .via(CLIENT_SERVICE),
        ]
    }

    fn invariants(platform: &Platform, _: &[Manifest], report: &mut Report) {
        check_quorum(&platform.kafka, platform.environment.production, report);
        check_topics(&platform.kafka, platform.environment.production, report);
    }
}

/// Every node is a KRaft controller voter (combined mode), so the node count is the quorum size.
fn check_quorum(kafka: &Settings, production: bool, report: &mut Report) {
    let voters = kafka.replicas.get();
    // A quorum of n voters tolerates (n-1)/2 failures; an even n adds a voter, not tolerance.
    if voters.is_multiple_of(2) {
        report.model(
            "kafka.replicas",
            format!(
                "every Kafka node is a KRaft controller voter and a quorum needs an odd number \
                 of voters: use 1, 3 or 5 nodes; found {voters}"
            ),
        );
    } else if production && voters < 3 {
        report.model(
            "kafka.replicas",
            format!(
                "production needs at least 3 Kafka nodes (KRaft controller voters) to survive \
                 losing one; found {voters}"
            ),
        );
    }
}

fn check_topics(kafka: &Settings, production: bool, report: &mut Report) {
    let brokers = kafka.replicas.get();
    let mut names = std::collections::BTreeSet::new();
    for topic in kafka.topic_specs() {
        let field = |name: &str| FieldPath::of("kafka.topics").key(topic.name.as_ref()).key(name);
        if !names.insert(topic.name.clone()) {
            report.model(
                field("name"),
                "topic is declared more than once; topic names must be unique",
            );
        }
        let (replicas, min_isr) = (topic.replication_factor, topic.min_insync_replicas);
        if replicas > brokers {
            let reason = format!(
                "replication factor {replicas} exceeds the {brokers} broker(s); use at most \
                 {brokers}"
            );
            report.model(field("replicationFactor"), reason);
        }
        if min_isr > replicas {
            let reason = format!(
                "min.insync.replicas {min_isr} exceeds the replication factor {replicas}, so no \
                 write could ever succeed"
            );
            report.model(field("minInsyncReplicas"), reason);
        } else if production && min_isr == replicas {
            let reason = format!(
                "in production min.insync.replicas must be below the replication factor \
                 ({replicas}) so writes survive losing one replica; use at most {}",
                replicas.saturating_sub(1).max(1)
            );
            report.model(field("minInsyncReplicas"), reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::resolve::tests::{platform, templates};

    fn statefulset_replicas(env: &str) -> (u32, String) {
        let platform = platform(env);
        let objects = super::build(&platform, &templates()).unwrap();
        let statefulset = objects
            .iter()
            .find(|o| o.kind() == "StatefulSet")
            .expect("a StatefulSet");
        let replicas = statefulset.value["spec"]["replicas"].as_u64().unwrap() as u32;
        let config = objects.iter().find(|o| o.name() == "kafka-config").unwrap();
        let properties = config.value["data"]["server.properties"]
            .as_str()
            .unwrap()
            .to_owned();
        (replicas, properties)
    }

    #[test]
    fn prod_runs_a_three_voter_quorum_with_rf3_and_min_isr_2() {
        let (replicas, properties) = statefulset_replicas("prod");
        assert_eq!(replicas, 3);
        let voters = properties
            .lines()
            .find_map(|line| line.strip_prefix("controller.quorum.voters="))
            .unwrap();
        assert_eq!(voters.split(',').count(), 3);
        assert!(
            voters.starts_with("0@kafka-0.kafka-quorum.ehs-prod.svc:9093,"),
            "{voters}"
        );
        for topic in platform("prod").kafka.topic_specs() {
            assert_eq!(topic.replication_factor, 3, "{}", topic.name);
            assert_eq!(topic.min_insync_replicas, 2, "{}", topic.name);
        }
        assert!(properties.contains("offsets.topic.replication.factor=3\n"));
        assert!(properties.contains("transaction.state.log.min.isr=2\n"));
    }

    #[test]
    fn dev_runs_one_combined_node_with_rf1() {
        let (replicas, properties) = statefulset_replicas("dev");
        assert_eq!(replicas, 1);
        assert!(properties
            .contains("controller.quorum.voters=0@kafka-0.kafka-quorum.ehs-dev.svc:9093\n"));
        assert!(properties.contains("process.roles=broker,controller\n"));
        for topic in platform("dev").kafka.topic_specs() {
            assert_eq!(topic.replication_factor, 1);
            assert_eq!(topic.min_insync_replicas, 1);
        }
    }

    #[test]
    fn topic_replication_follows_the_node_count_unless_overridden() {
        let mut platform = platform("dev");
        let spec = |platform: &crate::resolve::Platform| {
            let spec = platform.kafka.topic_specs()[0].clone();
            (spec.replication_factor, spec.min_insync_replicas)
        };
        for (replicas, expected) in [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))] {
            platform.kafka.replicas = replicas.into();
            assert_eq!(spec(&platform), expected, "{replicas} nodes");
        }
        platform.kafka.topics.telemetry.replication_factor = Some(5.into());
        assert_eq!(spec(&platform), (5, 4));
        platform.kafka.topics.telemetry.min_insync_replicas = Some(3.into());
        assert_eq!(spec(&platform), (5, 3));
    }

    /// Kafka's invariants for `platform`, as (field, reason).
    fn invariant_findings(platform: &crate::resolve::Platform) -> Vec<(String, String)> {
        use crate::components::ComponentHooks;
        crate::validate::testing::findings_of("prod", |report| {
            super::Hooks::invariants(platform, &[], report)
        })
        .into_iter()
        .map(|(object, field, reason)| {
            assert_eq!(object, "environment");
            (field, reason)
        })
        .collect()
    }

    #[test]
    fn the_committed_environments_meet_kafkas_invariants() {
        for environment in ["dev", "prod"] {
            assert_eq!(invariant_findings(&platform(environment)), []);
        }
    }

    #[test]
    fn replication_factor_cannot_exceed_the_brokers() {
        let mut platform = platform("dev");
        platform.kafka.topics.telemetry.replication_factor = Some(2.into());
        assert_eq!(
            invariant_findings(&platform),
            [(
                "kafka.topics[\"ehs.telemetry.raw\"].replicationFactor".to_owned(),
                "replication factor 2 exceeds the 1 broker(s); use at most 1".to_owned()
            )]
        );
    }

    #[test]
    fn min_isr_rules() {
        let fields = |replication_factor: u32, min_insync_replicas: u32, production: bool| {
            let mut platform = platform("prod");
            platform.environment.production = production;
            let topic = &mut platform.kafka.topics.telemetry;
            topic.replication_factor = Some(replication_factor.into());
            topic.min_insync_replicas = Some(min_insync_replicas.into());
            invariant_findings(&platform)
                .into_iter()
                .map(|(field, _)| field)
                .collect::<Vec<_>>()
        };
        let min_isr = "kafka.topics[\"ehs.telemetry.raw\"].minInsyncReplicas";
        assert_eq!(fields(3, 2, true), Vec::<String>::new());
        assert_eq!(fields(3, 3, true), [min_isr]);
        assert_eq!(fields(3, 3, false), Vec::<String>::new());
        assert_eq!(fields(1, 1, false), Vec::<String>::new());
        assert_eq!(fields(2, 3, false), [min_isr]);
        let mut platform = platform("prod");
        platform.kafka.topics.telemetry.min_insync_replicas = Some(3.into());
        assert_eq!(
            invariant_findings(&platform)[0].1,
            "in production min.insync.replicas must be below the replication factor (3) so \
             writes survive losing one replica; use at most 2"
        );
    }

    #[test]
    fn topic_names_are_unique() {
        let mut platform = platform("prod");
        platform.kafka.topics.dead_letters.name = platform.kafka.topics.telemetry.name.clone();
        assert_eq!(
            invariant_findings(&platform),
            [(
                "kafka.topics[\"ehs.telemetry.raw\"].name".to_owned(),
                "topic is declared more than once; topic names must be unique".to_owned()
            )]
        );
    }

    #[test]
    fn the_kraft_quorum_is_odd_and_at_least_three_in_production() {
        let quorum = |replicas: u32, production: bool| {
            let mut platform = platform("prod");
            platform.environment.production = production;
            platform.kafka.replicas = replicas.into();
            // Keep the topics within the node count, so only the quorum rule speaks.
            for topic in [
                &mut platform.kafka.topics.telemetry,
                &mut platform.kafka.topics.dead_letters,
                &mut platform.kafka.topics.sink_dead_letters,
            ] {
                topic.replication_factor = Some(1.into());
                topic.min_insync_replicas = Some(1.into());
            }
            invariant_findings(&platform)
                .into_iter()
                .filter(|(field, _)| !field.starts_with("kafka.topics"))
                .collect::<Vec<_>>()
        };
        assert_eq!(quorum(3, true), []);
        assert_eq!(quorum(5, true), []);
        assert_eq!(quorum(1, false), []);
        assert_eq!(
            quorum(4, true),
            [(
                "kafka.replicas".to_owned(),
                "every Kafka node is a KRaft controller voter and a quorum needs an odd number \
                 of voters: use 1, 3 or 5 nodes; found 4"
                    .to_owned()
            )]
        );
        assert_eq!(quorum(2, false).len(), 1);
        assert_eq!(
            quorum(1, true),
            [(
                "kafka.replicas".to_owned(),
                "production needs at least 3 Kafka nodes (KRaft controller voters) to survive \
                 losing one; found 1"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn cluster_id_is_a_stable_22_character_kafka_uuid_per_namespace() {
        let dev = super::cluster_id(&"ehs-dev".into());
        assert_eq!(dev.len(), 22);
        assert_eq!(dev, super::cluster_id(&"ehs-dev".into()));
        assert_ne!(dev, super::cluster_id(&"ehs-prod".into()));
    }

    #[test]
    fn topics_job_name_changes_with_the_topic_spec() {
        let mut platform = platform("dev");
        let job_name = |platform: &crate::resolve::Platform| {
            let objects = super::build(platform, &templates()).unwrap();
            objects
                .iter()
                .find(|o| o.kind() == "Job")
                .unwrap()
                .name()
                .to_owned()
        };
        let before = job_name(&platform);
        platform.kafka.topics.telemetry.partitions = 24.into();
        assert_ne!(before, job_name(&platform));
    }
}
