//! Kafka Connect: distributed workers running Debezium's JDBC sink, which upserts the bridge's
//! readings from Kafka into the TimescaleDB `readings` hypertable.
//!
//! The workers are a Deployment (they keep no local state: the group's configs, offsets and
//! statuses live in Kafka topics) behind a ClusterIP Service for the REST API. Their image is built
//! from `components/connect/Containerfile`: the Kafka model's image plus the plugin, so brokers and
//! workers run one Kafka version. The connector is not part of the workers' configuration: a Job
//! named by a hash of the connector config `PUT`s it through the REST API, as the topics Job does
//! for topics.
//!
//! Everything the sink shares with another component is read from that component's model: the
//! topic the bridge writes and the dead-letter topic (Kafka), the read-write Service, database and
//! credentials Secret (TimescaleDB), the table and upsert key (`ehs_contract::reading`).

use std::collections::BTreeMap;

use ehs_contract::reading;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, PodSpec, PodTemplateSpec, Probe,
    SecretVolumeSource, Service, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kafka::{self, heap_options};
use super::{
    config_map_volume, container_port, count_i32, env_var, manifest, pod_field_env_var,
    restricted_container, restricted_pod_security, run_once_job, scratch_volume, service_port,
    short_hash, App,
    ComponentError, ComponentHooks, CONFIG_CHECKSUM_ANNOTATION,
};
use crate::manifest::Manifest;
use crate::model::{Count, DnsLabel, Image, ImageLayer, Resources, ResourcesLayer};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{FieldPath, KindSchema, Reference, Report};

pub const NAME: &str = "connect";

/// Overridable Kafka Connect settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ConnectSettings")]
pub struct Layer {
    /// Connect workers. Tasks are spread over them and move to the others when one stops;
    /// production needs at least 2.
    pub replicas: Option<Count>,
    /// The worker image built from `components/connect/Containerfile`.
    pub image: Option<ImageLayer>,
    /// Resources of each worker. The JVM heap is half the memory limit.
    pub resources: Option<ResourcesLayer>,
    /// Resources of the short-lived Job that registers the connector.
    pub registration_resources: Option<ResourcesLayer>,
    /// The workers' group id; also the prefix of its internal topics (`<groupId>-configs`,
    /// `-offsets`, `-status`).
    pub group_id: Option<DnsLabel>,
    /// The JDBC sink connector.
    pub sink: Option<SinkLayer>,
}

/// The JDBC sink connector into TimescaleDB.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ConnectSink")]
pub struct SinkLayer {
    /// The connector's name in the REST API.
    pub name: Option<DnsLabel>,
    /// Sink tasks, each consuming some of the telemetry topic's partitions; at most its
    /// partition count (more tasks would sit idle).
    pub tasks_max: Option<Count>,
    /// Records written per JDBC batch (`batch.size`).
    pub batch_size: Option<Count>,
    /// Records each sink task's consumer takes per poll (`max.poll.records`); a batch is at most
    /// this many records, so below `batchSize` it caps the batch instead.
    pub max_poll_records: Option<Count>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub replicas: Count,
    pub image: Image,
    pub resources: Resources,
    pub registration_resources: Resources,
    pub group_id: DnsLabel,
    pub sink: Sink,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sink {
    pub name: DnsLabel,
    pub tasks_max: Count,
    pub batch_size: Count,
    pub max_poll_records: Count,
}

/// Name of the workers' Deployment, REST Service and PodDisruptionBudget.
pub const APP: &str = "kafka-connect";
pub const REST_PORT: u16 = 8083;
const REST_PORT_NAME: &str = "http-rest";
/// Kafka 3.9+ (KIP-1017): 200 once the worker has started and its herder thread is responsive.
const HEALTH_PATH: &str = "/health";
const CONFIG_MAP: &str = "kafka-connect-config";
const PROPERTIES_FILE: &str = "connect-distributed.properties";
const START_FILE: &str = "start.sh";
const CONFIG_MOUNT: &str = "/etc/kafka-connect";
/// Name of the registration Job's application: its ConfigMap, and its Job's name prefix.
const REGISTER_APP: &str = "kafka-connect-register";
const REGISTER_MOUNT: &str = "/etc/kafka-connect-register";
const REGISTER_SCRIPT: &str = "register.sh";
/// How long one run of the registration script waits for the API and for RUNNING.
const REGISTRATION_TIMEOUT_SECS: u32 = 600;
/// Where the Containerfile unpacks the plugin (the worker's `plugin.path`).
pub const PLUGIN_PATH: &str = "/opt/connect-plugins";
/// `appuser` of the Kafka image, which the Containerfile keeps.
const CONNECT_UID: i64 = 1000;
/// The only folder the worker's directory config provider may read.
const SECRETS_ROOT: &str = "/mnt/secrets";
const DB_SECRET_VOLUME: &str = "db-credentials";
const DB_SECRET_MOUNT: &str = "/mnt/secrets/db";
/// Keys of the database credentials Secret (`kubernetes.io/basic-auth`); each becomes a file.
const DB_USERNAME_KEY: &str = "username";
const DB_PASSWORD_KEY: &str = "password";
/// The worker's scripts and JVM write logs and temporary files; the root filesystem is read-only.
const SCRATCH_MOUNT: &str = "/tmp";
const APPLICATION_LOG_DIR: &str = "/tmp/kafka-connect-logs";
const CONNECTOR_CLASS: &str = "io.debezium.connector.jdbc.JdbcSinkConnector";

impl Settings {
    /// The worker group's internal topics: configs, offsets, statuses.
    pub fn internal_topics(&self) -> [String; 3] {
        ["configs", "offsets", "status"].map(|suffix| format!("{}-{suffix}", self.group_id))
    }

    /// The connector's file in the registration ConfigMap.
    fn connector_file(&self) -> String {
        format!("{}.json", self.sink.name)
    }
}

/// `http://<service>.<namespace>.svc:<port>`: the REST API, from inside the namespace only.
pub fn rest_url(namespace: &DnsLabel) -> String {
    format!("http://{APP}.{namespace}.svc:{REST_PORT}")
}

/// `${dir:<mount>:<key>}`: a file of the mounted credentials Secret, resolved by the worker.
fn secret_placeholder(key: &str) -> String {
    format!("${{dir:{DB_SECRET_MOUNT}:{key}}}")
}

/// The sink connector's configuration, as the REST API's `PUT /connectors/<name>/config` takes
/// it. Sorted by key, so the same model gives the same bytes.
pub fn connector_config(platform: &Platform) -> BTreeMap<&'static str, String> {
    let connect = &platform.connect;
    let kafka = &platform.kafka;
    let mapping = reading::sink_mapping();
    let dead_letters = kafka.topic_spec(&kafka.topics.sink_dead_letters);
    BTreeMap::from([
        ("connector.class", CONNECTOR_CLASS.to_owned()),
        ("tasks.max", connect.sink.tasks_max.to_string()),
        // The topic the bridge writes.
        ("topics", kafka.topics.telemetry.name.to_string()),
        ("connection.url", sink_jdbc_url(platform)),
        ("connection.username", secret_placeholder(DB_USERNAME_KEY)),
        ("connection.password", secret_placeholder(DB_PASSWORD_KEY)),
        // Without it a database restart or failover fails every task for good (found by the
        // pipeline's postgres-restart scenario); with it the batch is retried on a new
        // connection. Debezium warns of loss behind an asynchronous replica; the database
        // component replicates synchronously where it has replicas.
        ("connection.restart.on.errors", "true".to_owned()),
        // A redelivered reading has the same key and overwrites its row.
        ("insert.mode", "upsert".to_owned()),
        ("primary.key.mode", "record_value".to_owned()),
        ("primary.key.fields", mapping.primary_key_fields_property()),
        ("collection.name.format", mapping.table.to_owned()),
        // The table is created by the database component from the same reading schema.
        ("schema.evolution", "none".to_owned()),
        ("batch.size", connect.sink.batch_size.to_string()),
        // Kafka's default of 500 records per poll capped every batch at 500 whatever
        // `batch.size` said; the worker allows this override (connector.client.config.override.policy).
        (
            "consumer.override.max.poll.records",
            connect.sink.max_poll_records.to_string(),
        ),
        // A record the sink cannot write goes to the dead-letter topic instead of stopping it.
        ("errors.tolerance", "all".to_owned()),
        ("errors.log.enable", "true".to_owned()),
        (
            "errors.deadletterqueue.topic.name",
            dead_letters.name.to_string(),
        ),
        (
            "errors.deadletterqueue.topic.replication.factor",
            dead_letters.replication_factor.to_string(),
        ),
        // Why a record failed, in its headers.
        ("errors.deadletterqueue.context.headers.enable", "true".to_owned()),
    ])
}

/// The database's read-write JDBC URL with `reWriteBatchedInserts`: pgjdbc then sends a batch as
/// multi-row INSERTs instead of one statement per row, which more than doubled the sink's rows/s
/// here.
fn sink_jdbc_url(platform: &Platform) -> String {
    let url = platform
        .timescaledb
        .connection()
        .jdbc_url(&platform.environment.namespace);
    format!("{url}?reWriteBatchedInserts=true")
}

/// The connector config as the JSON file the registration Job sends: one key per line.
fn connector_json(platform: &Platform) -> Result<String, ComponentError> {
    serde_json::to_string_pretty(&connector_config(platform))
        .map(|json| json + "\n")
        .map_err(|source| ComponentError::Serialize {
            component: NAME,
            kind: "connector config",
            source,
        })
}

fn worker_properties(platform: &Platform, templates: &Templates) -> Result<String, ComponentError> {
    let connect = &platform.connect;
    let kafka = &platform.kafka;
    let [config_topic, offset_topic, status_topic] = connect.internal_topics();
    Ok(templates.render(
        "connect/connect-distributed.properties.j2",
        minijinja::context! {
            bootstrap_servers => kafka.bootstrap_servers(&platform.environment.namespace),
            group_id => connect.group_id.as_ref(),
            rest_port => REST_PORT,
            config_topic,
            offset_topic,
            status_topic,
            replication_factor => kafka.default_replication_factor(),
            plugin_path => PLUGIN_PATH,
            secrets_root => SECRETS_ROOT,
        },
    )?)
}

pub fn build(platform: &Platform, templates: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let connect = &platform.connect;
    let namespace = &platform.environment.namespace;
    let app = App {
        platform,
        name: APP,
        component: NAME,
    };
    let properties = worker_properties(platform, templates)?;
    let start = templates.render(
        "connect/start.sh.j2",
        minijinja::context! { config_mount => CONFIG_MOUNT },
    )?;
    let config_map = ConfigMap {
        metadata: app.metadata(CONFIG_MAP),
        data: Some(BTreeMap::from([
            (PROPERTIES_FILE.to_owned(), properties.clone()),
            (START_FILE.to_owned(), start.clone()),
        ])),
        ..Default::default()
    };
    // The connector config is not the workers' configuration: changing it re-registers the
    // connector through the Job, without restarting the workers.
    let config_checksum = short_hash(&format!("{properties}{start}"), 16);

    let register_app = App {
        platform,
        name: REGISTER_APP,
        component: NAME,
    };
    let connector = connector_json(platform)?;
    let script = templates.render(
        "connect/register.sh.j2",
        minijinja::context! {
            rest_url => rest_url(namespace),
            connector => connect.sink.name.as_ref(),
            config_path => format!("{REGISTER_MOUNT}/{}", connect.connector_file()),
            timeout_secs => REGISTRATION_TIMEOUT_SECS,
        },
    )?;
    let register_config_map = ConfigMap {
        metadata: register_app.metadata(REGISTER_APP),
        data: Some(BTreeMap::from([
            (connect.connector_file(), connector.clone()),
            (REGISTER_SCRIPT.to_owned(), script.clone()),
        ])),
        ..Default::default()
    };

    Ok(vec![
        manifest(NAME, &config_map)?,
        manifest(NAME, &rest_service(&app))?,
        manifest(NAME, &deployment(&app, &config_checksum))?,
        manifest(NAME, &app.one_at_a_time_disruption_budget())?,
        manifest(NAME, &register_config_map)?,
        manifest(
            NAME,
            &registration_job(&register_app, &format!("{connector}{script}")),
        )?,
    ])
}

/// ClusterIP only: the REST API can change connectors, so nothing outside the namespace gets it.
fn rest_service(app: &App) -> Service {
    Service {
        metadata: app.metadata(APP),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(app.selector_labels()),
            ports: Some(vec![service_port(REST_PORT_NAME, REST_PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn health_probe(period_seconds: i32, failure_threshold: i32) -> Probe {
    super::http_probe(HEALTH_PATH, REST_PORT_NAME, period_seconds, failure_threshold, 5)
}

/// The database credentials Secret, only its username and password, as files for the worker's
/// directory config provider.
fn db_credentials_volume(platform: &Platform) -> (Volume, VolumeMount) {
    let items = [DB_USERNAME_KEY, DB_PASSWORD_KEY]
        .map(|key| KeyToPath {
            key: key.to_owned(),
            path: key.to_owned(),
            mode: None,
        })
        .to_vec();
    (
        Volume {
            name: DB_SECRET_VOLUME.to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(platform.timescaledb.connection().credentials_secret),
                items: Some(items),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: DB_SECRET_VOLUME.to_owned(),
            mount_path: DB_SECRET_MOUNT.to_owned(),
            read_only: Some(true),
            ..Default::default()
        },
    )
}

fn deployment(app: &App, config_checksum: &str) -> Deployment {
    let connect = &app.platform.connect;
    let (config, config_mount) = config_map_volume(CONFIG_MAP, CONFIG_MOUNT);
    let (scratch, scratch_mount) = scratch_volume("tmp", SCRATCH_MOUNT);
    let (credentials, credentials_mount) = db_credentials_volume(app.platform);
    let container = Container {
        command: Some(vec![
            "/bin/bash".to_owned(),
            format!("{CONFIG_MOUNT}/{START_FILE}"),
        ]),
        working_dir: Some(SCRATCH_MOUNT.to_owned()),
        ports: Some(vec![container_port(REST_PORT_NAME, REST_PORT)]),
        env: Some(vec![
            pod_field_env_var("POD_IP", "status.podIP"),
            env_var("KAFKA_HEAP_OPTS", heap_options(&connect.resources)),
            env_var("LOG_DIR", APPLICATION_LOG_DIR),
        ]),
        volume_mounts: Some(vec![config_mount, credentials_mount, scratch_mount]),
        // Joining the group and loading the plugin take a while; liveness waits for startup.
        startup_probe: Some(health_probe(5, 60)),
        readiness_probe: Some(health_probe(10, 3)),
        liveness_probe: Some(health_probe(20, 3)),
        ..restricted_container(APP, connect.image.to_string(), &connect.resources)
    };
    Deployment {
        metadata: app.metadata(APP),
        spec: Some(DeploymentSpec {
            replicas: Some(count_i32(connect.replicas)),
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
                    security_context: Some(restricted_pod_security(CONNECT_UID)),
                    containers: vec![container],
                    volumes: Some(vec![config, credentials, scratch]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Registers the connector; a changed connector config (or image) yields a new Job.
fn registration_job(app: &App, what_it_does: &str) -> Job {
    let connect = &app.platform.connect;
    let (config, config_mount) = config_map_volume(REGISTER_APP, REGISTER_MOUNT);
    // The worker image: it has bash and curl (its Containerfile installs curl for this Job).
    let container = Container {
        command: Some(vec![
            "/bin/bash".to_owned(),
            format!("{REGISTER_MOUNT}/{REGISTER_SCRIPT}"),
        ]),
        volume_mounts: Some(vec![config_mount]),
        ..restricted_container(
            "register",
            connect.image.to_string(),
            &connect.registration_resources,
        )
    };
    run_once_job(
        app,
        what_it_does,
        CONNECT_UID,
        container,
        vec![config],
        6,
        3600,
    )
}

/// Kafka Connect's part in `ehs validate`.
pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Clients
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<ConfigMap>(),
            KindSchema::of::<Service>(),
            KindSchema::of::<Deployment>(),
            KindSchema::of::<PodDisruptionBudget>(),
            KindSchema::of::<Job>(),
        ]
    }

    fn invariants(platform: &Platform, objects: &[Manifest], report: &mut Report) {
        check_model(platform, report);
        for object in objects.iter().filter(|o| o.kind() == "ConfigMap") {
            if object.name() == CONFIG_MAP {
                check_worker_properties(platform, object, report);
            } else if object.name() == REGISTER_APP {
                check_connector(platform, object, report);
            }
        }
    }

    /// Workers to Kafka and the database their configuration names and to each other (a
    /// worker forwards REST requests to the leader); the registration Job to the REST API.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        use crate::graph::{tcp, Flow, Peer};
        let database = platform.timescaledb.connection();
        let workers = Peer::app(&App {
            platform,
            name: APP,
            component: NAME,
        });
        let register = Peer::app(&App {
            platform,
            name: REGISTER_APP,
            component: NAME,
        });
        vec![
            Flow::new(
                workers.clone(),
                kafka::pods(platform),
                vec![tcp(kafka::CLIENT_PORT)],
                "consumes telemetry, writes dead letters and its own topics",
            )
            .via(kafka::CLIENT_SERVICE),
            Flow::new(
                workers.clone(),
                super::timescaledb::pods(platform),
                vec![tcp(database.port)],
                "JDBC sink writes readings",
            )
            .via(database.service),
            Flow::new(
                workers.clone(),
                workers.clone(),
                vec![tcp(REST_PORT)],
                "forwards REST requests to the leader",
            ),
            Flow::new(
                register,
                workers,
                vec![tcp(REST_PORT)],
                "registers the sink connector",
            )
            .via(APP),
        ]
    }

    /// Services and the Secret named inside configuration files, where the generic checks
    /// cannot see them.
    fn references(platform: &Platform) -> Vec<Reference> {
        let connect = &platform.connect;
        let database = platform.timescaledb.connection();
        let connector = |key: &str| {
            FieldPath::of("data")
                .key(&connect.connector_file())
                .key(key)
        };
        vec![
            Reference {
                from: ("ConfigMap", CONFIG_MAP.to_owned()),
                field: FieldPath::of("data")
                    .key(PROPERTIES_FILE)
                    .key("bootstrap.servers"),
                to: ("Service", kafka::CLIENT_SERVICE.to_owned()),
            },
            Reference {
                from: ("ConfigMap", REGISTER_APP.to_owned()),
                field: connector("connection.url"),
                to: ("Service", database.service),
            },
            Reference {
                from: ("ConfigMap", REGISTER_APP.to_owned()),
                field: connector("connection.password"),
                to: ("Secret", database.credentials_secret),
            },
        ]
    }
}

fn check_model(platform: &Platform, report: &mut Report) {
    let connect = &platform.connect;
    let workers = connect.replicas.get();
    if platform.environment.production && workers < 2 {
        report.model(
            "connect.replicas",
            format!(
                "production needs at least 2 Kafka Connect workers so the sink's tasks move to \
                 another when one stops; found {workers}"
            ),
        );
    }
    let telemetry = &platform.kafka.topics.telemetry;
    let (tasks, partitions) = (connect.sink.tasks_max.get(), telemetry.partitions.get());
    if tasks > partitions {
        report.model(
            "connect.sink.tasksMax",
            format!(
                "{tasks} sink tasks exceed the {partitions} partition(s) of topic `{}`; the \
                 extra tasks would sit idle: use at most {partitions}",
                telemetry.name
            ),
        );
    }
}

/// The internal topics' replication factor, read back from the rendered worker properties.
fn check_worker_properties(platform: &Platform, object: &Manifest, report: &mut Report) {
    let Some(text) = object.value["data"][PROPERTIES_FILE].as_str() else {
        report.object(object, FieldPath::of("data").key(PROPERTIES_FILE), "missing");
        return;
    };
    let properties: BTreeMap<&str, &str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect();
    let brokers = platform.kafka.replicas.get();
    for key in [
        "config.storage.replication.factor",
        "offset.storage.replication.factor",
        "status.storage.replication.factor",
    ] {
        let field = FieldPath::of("data").key(PROPERTIES_FILE).key(key);
        match properties.get(key).map(|value| value.parse::<u32>()) {
            Some(Ok(factor)) if factor <= brokers => {}
            Some(Ok(factor)) => report.object(
                object,
                field,
                format!(
                    "replication factor {factor} of a Kafka Connect internal topic exceeds the \
                     {brokers} Kafka node(s); use at most {brokers}"
                ),
            ),
            _ => report.object(
                object,
                field,
                format!("must be a replication factor from 1 to {brokers}"),
            ),
        }
    }
}

/// The rendered connector names the bridge's topic, the database's read-write Service and the
/// sink's dead-letter topic of this environment.
fn check_connector(platform: &Platform, object: &Manifest, report: &mut Report) {
    let file = platform.connect.connector_file();
    let config: Option<Value> = object.value["data"][&file]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok());
    let Some(config) = config else {
        let reason = "must be the connector config as a JSON object";
        report.object(object, FieldPath::of("data").key(&file), reason);
        return;
    };
    let kafka = &platform.kafka;
    let expected = [
        (
            "topics",
            kafka.topics.telemetry.name.to_string(),
            "the topic the bridge writes (kafka.topics.telemetry)",
        ),
        (
            "connection.url",
            sink_jdbc_url(platform),
            "the database's read-write Service",
        ),
        (
            "errors.deadletterqueue.topic.name",
            kafka.topics.sink_dead_letters.name.to_string(),
            "the sink's dead-letter topic (kafka.topics.sinkDeadLetters)",
        ),
    ];
    for (key, value, what) in expected {
        let found = config[key].as_str().unwrap_or_default();
        if found != value {
            report.object(
                object,
                FieldPath::of("data").key(&file).key(key),
                format!("must be {what}, `{value}`; found `{found}`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resolve::tests::{platform, repo, templates};
    use crate::validate::testing::{built, set};
    use crate::validate::validate;

    fn objects(platform: &Platform) -> Vec<Manifest> {
        build(platform, &templates()).unwrap()
    }

    fn object<'a>(objects: &'a [Manifest], kind: &str, prefix: &str) -> &'a Manifest {
        objects
            .iter()
            .find(|o| o.kind() == kind && o.name().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {kind}/{prefix}"))
    }

    /// Findings of a full validation, as `object: field: reason` lines.
    fn findings(platform: &Platform, objects: &[Manifest]) -> Vec<String> {
        validate(objects, platform)
            .iter()
            .map(|finding| format!("{}: {}: {}", finding.object, finding.field, finding.reason))
            .collect()
    }

    fn containerfile() -> String {
        std::fs::read_to_string(repo().root.join("components/connect/Containerfile")).unwrap()
    }

    /// Golden facts of the rendered prod connector, worker and Job.
    #[test]
    fn prod_renders_two_workers_and_the_sink_from_the_other_models() {
        let platform = platform("prod");
        let objects = objects(&platform);
        let deployment = object(&objects, "Deployment", APP);
        assert_eq!(deployment.value["spec"]["replicas"], 2);
        let pod = &deployment.value["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            "ghcr.io/ehs-platform/ehs-connect:0.1.0"
        );
        assert_eq!(pod["volumes"][1]["secret"]["secretName"], "timescaledb-app");

        let service = object(&objects, "Service", APP);
        assert_eq!(service.value["spec"]["type"], "ClusterIP");
        assert_eq!(service.value["spec"]["ports"][0]["port"], 8083);

        let config = &object(&objects, "ConfigMap", CONFIG_MAP).value["data"][PROPERTIES_FILE];
        let config = config.as_str().unwrap();
        for line in [
            "bootstrap.servers=kafka.ehs-prod.svc:9092",
            "group.id=ehs-connect",
            "config.storage.topic=ehs-connect-configs",
            "offset.storage.replication.factor=3",
            "plugin.discovery=service_load",
            "config.providers=dir",
            "value.converter.schemas.enable=true",
            "plugin.path=/opt/connect-plugins",
            "connector.client.config.override.policy=All",
        ] {
            assert!(config.lines().any(|l| l == line), "{line}\n{config}");
        }

        let register = object(&objects, "ConfigMap", REGISTER_APP);
        let text = register.value["data"]["readings-sink.json"].as_str().unwrap();
        let connector: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            connector,
            json!({
                "batch.size": "3000",
                "collection.name.format": "readings",
                "connection.password": "${dir:/mnt/secrets/db:password}",
                "connection.restart.on.errors": "true",
                "connection.url":
                    "jdbc:postgresql://timescaledb-rw.ehs-prod.svc:5432/ehs?reWriteBatchedInserts=true",
                "connection.username": "${dir:/mnt/secrets/db:username}",
                "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
                "consumer.override.max.poll.records": "5000",
                "errors.deadletterqueue.context.headers.enable": "true",
                "errors.deadletterqueue.topic.name": "ehs.telemetry.sink-dead-letters",
                "errors.deadletterqueue.topic.replication.factor": "3",
                "errors.log.enable": "true",
                "errors.tolerance": "all",
                "insert.mode": "upsert",
                "primary.key.fields": "home_id,device_id,metric,time",
                "primary.key.mode": "record_value",
                "schema.evolution": "none",
                "tasks.max": "6",
                "topics": "ehs.telemetry.raw",
            })
        );
        assert!(text.lines().all(|line| line.len() < 120), "{text}");
        let script = register.value["data"][REGISTER_SCRIPT].as_str().unwrap();
        assert!(script.contains("url=\"http://kafka-connect.ehs-prod.svc:8083\""), "{script}");
        assert!(script.contains("@/etc/kafka-connect-register/readings-sink.json"));

        let job = object(&objects, "Job", REGISTER_APP);
        assert_eq!(
            job.value["spec"]["template"]["spec"]["containers"][0]["image"],
            pod["containers"][0]["image"]
        );
    }

    #[test]
    fn dev_runs_one_worker_with_internal_topics_at_rf1() {
        let platform = platform("dev");
        let objects = objects(&platform);
        assert_eq!(object(&objects, "Deployment", APP).value["spec"]["replicas"], 1);
        let config = object(&objects, "ConfigMap", CONFIG_MAP).value["data"][PROPERTIES_FILE]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(config.contains("status.storage.replication.factor=1\n"), "{config}");
    }

    #[test]
    fn the_sink_key_and_table_come_from_the_reading_contract() {
        let config = connector_config(&platform("dev"));
        let mapping = reading::sink_mapping();
        assert_eq!(config["primary.key.fields"], mapping.primary_key_fields_property());
        assert_eq!(config["collection.name.format"], reading::TABLE);
    }

    #[test]
    fn the_registration_job_is_renamed_when_the_connector_changes() {
        let mut platform = platform("dev");
        let name = |platform: &Platform| object(&objects(platform), "Job", REGISTER_APP).name().to_owned();
        let before = name(&platform);
        assert_eq!(before, name(&platform), "deterministic");
        platform.connect.sink.batch_size = 500.into();
        assert_ne!(before, name(&platform));
    }

    #[test]
    fn worker_config_changes_roll_the_workers_but_connector_changes_do_not() {
        let mut platform = platform("dev");
        let checksum = |platform: &Platform| {
            object(&objects(platform), "Deployment", APP).value["spec"]["template"]["metadata"]
                ["annotations"][CONFIG_CHECKSUM_ANNOTATION]
                .clone()
        };
        let before = checksum(&platform);
        platform.connect.sink.batch_size = 500.into();
        assert_eq!(before, checksum(&platform));
        platform.connect.group_id = "other-connect".into();
        assert_ne!(before, checksum(&platform));
    }

    #[test]
    fn the_containerfile_builds_on_the_kafka_models_image() {
        let kafka_image = repo().upstream().unwrap().images["kafka.image"].to_string();
        let containerfile = containerfile();
        let arg = containerfile
            .lines()
            .find_map(|line| line.strip_prefix("ARG KAFKA_IMAGE="))
            .expect("an ARG KAFKA_IMAGE= line");
        assert_eq!(
            arg, kafka_image,
            "components/connect/Containerfile's KAFKA_IMAGE must be kafka.image of components/upstream.yaml"
        );
    }

    #[test]
    fn the_containerfile_provides_what_the_pods_rely_on() {
        let containerfile = containerfile();
        let user = containerfile
            .lines()
            .filter_map(|line| line.strip_prefix("USER "))
            .next_back()
            .expect("a USER line");
        assert_eq!(user.split(':').next(), Some(CONNECT_UID.to_string().as_str()));
        assert!(
            containerfile.contains(&format!("COPY --from=plugin /plugins {PLUGIN_PATH}\n")),
            "the plugin is unpacked into plugin.path"
        );
        // The registration script runs curl.
        assert!(containerfile.contains("RUN apk add --no-cache curl\n"));
        assert!(containerfile.contains("sha256sum -c"));
    }

    #[test]
    fn committed_environments_have_no_connect_findings() {
        for env in ["dev", "prod"] {
            let (platform, objects) = built(env);
            let findings = findings(&platform, &objects);
            assert!(
                !findings.iter().any(|f| f.contains("connect")),
                "{env}: {findings:#?}"
            );
        }
    }

    #[test]
    fn production_needs_two_workers_and_tasks_fit_the_partitions() {
        let (mut platform, objects) = built("prod");
        platform.connect.replicas = 1.into();
        platform.connect.sink.tasks_max = 13.into();
        assert_eq!(
            findings(&platform, &objects),
            [
                "environment: connect.replicas: production needs at least 2 Kafka Connect \
                 workers so the sink's tasks move to another when one stops; found 1",
                "environment: connect.sink.tasksMax: 13 sink tasks exceed the 12 partition(s) \
                 of topic `ehs.telemetry.raw`; the extra tasks would sit idle: use at most 12",
            ]
        );
    }

    #[test]
    fn internal_topic_replication_beyond_the_kafka_nodes_is_a_finding() {
        let (platform, mut objects) = built("dev");
        let config = object(&objects, "ConfigMap", CONFIG_MAP).value["data"][PROPERTIES_FILE]
            .as_str()
            .unwrap()
            .replace(
                "offset.storage.replication.factor=1",
                "offset.storage.replication.factor=3",
            );
        let pointer = format!("/data/{PROPERTIES_FILE}");
        set(&mut objects, "ConfigMap", CONFIG_MAP, &pointer, json!(config));
        assert_eq!(
            findings(&platform, &objects),
            [
                "connect/ConfigMap/kafka-connect-config: \
                 data[\"connect-distributed.properties\"][\"offset.storage.replication.factor\"]: \
                 replication factor 3 of a Kafka Connect internal topic exceeds the 1 Kafka \
                 node(s); use at most 1"
            ]
        );
    }

    #[test]
    fn a_connector_aimed_elsewhere_is_a_finding() {
        let (platform, mut objects) = built("prod");
        let mut config = connector_config(&platform);
        config.insert("topics", "ehs.telemetry.other".to_owned());
        config.insert(
            "connection.url",
            "jdbc:postgresql://timescaledb-ro.ehs-prod.svc:5432/ehs".to_owned(),
        );
        let text = serde_json::to_string_pretty(&config).unwrap();
        set(&mut objects, "ConfigMap", REGISTER_APP, "/data/readings-sink.json", json!(text));
        assert_eq!(
            findings(&platform, &objects),
            [
                "connect/ConfigMap/kafka-connect-register: data[\"readings-sink.json\"].topics: \
                 must be the topic the bridge writes (kafka.topics.telemetry), \
                 `ehs.telemetry.raw`; found `ehs.telemetry.other`",
                "connect/ConfigMap/kafka-connect-register: \
                 data[\"readings-sink.json\"][\"connection.url\"]: must be the database's \
                 read-write Service, \
                 `jdbc:postgresql://timescaledb-rw.ehs-prod.svc:5432/ehs?reWriteBatchedInserts=true`; \
                 found `jdbc:postgresql://timescaledb-ro.ehs-prod.svc:5432/ehs`",
            ]
        );
    }

    #[test]
    fn a_credentials_secret_nobody_provides_is_a_finding_naming_the_connector() {
        let (mut platform, _) = built("dev");
        platform.timescaledb.owner_secret = Some("db-owner".into());
        let objects = crate::components::build_all(&platform, &templates()).unwrap();
        let findings = findings(&platform, &objects);
        assert!(
            findings.contains(
                &"connect/ConfigMap/kafka-connect-register: \
                  data[\"readings-sink.json\"][\"connection.password\"]: Secret `db-owner` does \
                  not exist in namespace `ehs-dev`: render it in this environment or declare it \
                  as provided externally"
                    .to_owned()
            ),
            "{findings:#?}"
        );
    }

    #[test]
    fn bad_sink_settings_are_rejected_with_file_line_and_column() {
        let parse = |sink: &str| {
            crate::load::parse_yaml::<crate::model::Environment>(
                "environments/x.yaml",
                &format!("namespace: x\ndomain: x.y\nconnect:\n  sink:\n    {sink}\n"),
            )
            .unwrap_err()
            .to_string()
        };
        let error = parse("tasksMax: 0");
        assert!(
            error.starts_with("environments/x.yaml:5:15: 0 is not a valid count"),
            "{error}"
        );
        let error = parse("tasks: 2");
        assert!(
            error.starts_with(
                "environments/x.yaml:5:5: unknown field `tasks`, expected one of name, tasksMax, \
                 batchSize"
            ),
            "{error}"
        );
        let error = parse("name: Readings");
        assert!(error.starts_with("environments/x.yaml:5:11: `Readings`"), "{error}");
    }

    #[test]
    fn the_read_write_service_is_the_database_operators() {
        let platform = platform("prod");
        let created = <crate::components::timescaledb::Hooks as ComponentHooks>::operator_created(
            &platform,
        );
        let service = platform.timescaledb.connection().service;
        assert!(created.contains(&("Service", service.clone())), "{created:?}");
        let references = Hooks::references(&platform);
        assert!(references.iter().any(|r| r.to == ("Service", service.clone())));
    }
}
