//! The MQTT broker: HiveMQ Platform, run by the HiveMQ Platform Operator from a `HiveMQPlatform`
//! custom resource and a `config.xml` ConfigMap it names.
//!
//! The operator creates the StatefulSet and the Services from the resource and labels the pods
//! it creates itself (`app.kubernetes.io/name: hivemq-platform`, `app.kubernetes.io/instance:
//! <resource name>`), so every selector here uses those labels, not our own.
//!
//! Zero loss is a broker setting too: while Kafka is down the bridge stops acknowledging, and the
//! readings wait in HiveMQ's queue for the bridge's shared subscription. `config.xml` sizes that
//! queue from the model, and validation compares it with the outage it must ride out.

mod resource;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetSpec;
use k8s_openapi::api::core::v1::{
    ConfigMap, EnvVar, EnvVarSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, SecretKeySelector, SecretVolumeSource, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::resource::{
    HiveMQPlatform, HiveMQPlatformSpec, LogLevel, ServiceTemplate, StatefulSetTemplate,
};
use super::kafka::{Storage, StorageLayer};
use super::{
    container_port, count_i32, env_var, manifest, persistent_volume_claim, restricted_container,
    restricted_pod_security, scratch_volume, service_port, short_hash, spread_across_nodes_matching, App,
    ComponentError, ComponentHooks, CONFIG_CHECKSUM_ANNOTATION,
};
use crate::manifest::Manifest;
use crate::model::{Count, DnsLabel, DnsSubdomain, Image, ImageLayer, Resources, ResourcesLayer};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{KindSchema, PodTemplatePaths, Report, Severity};

pub const NAME: &str = "hivemq";

/// Overridable HiveMQ settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQSettings")]
pub struct Layer {
    /// HiveMQ nodes. They form one masterless cluster; 3 in production, so losing one node keeps
    /// every session and queued message available on the others.
    pub replicas: Option<Count>,
    /// The HiveMQ Platform image the operator runs (`docker.io/hivemq/hivemq4`).
    pub image: Option<ImageLayer>,
    /// HiveMQ's own log level.
    pub log_level: Option<LogLevel>,
    /// Resources of each node. The JVM takes half the memory limit as heap.
    pub resources: Option<ResourcesLayer>,
    /// Persistent volume of each node: sessions, retained and queued messages.
    pub storage: Option<StorageLayer>,
    /// The devices' MQTT-over-TLS listener.
    pub tls: Option<TlsLayer>,
    /// The LoadBalancer Service devices connect to (8883, TLS only).
    pub devices: Option<DevicesLayer>,
    /// The HiveMQ licence.
    pub license: Option<LicenseLayer>,
    /// Per-client queue and flow-control limits of `config.xml`.
    pub queue: Option<QueueLayer>,
    /// What the queues must hold without losing a reading.
    pub ride_out: Option<RideOutLayer>,
}

/// Keystore of the devices' TLS listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQTls")]
pub struct TlsLayer {
    /// Secret holding the PKCS#12 keystore under the key `keystore.p12` (what a cert-manager
    /// Certificate with `keystores.pkcs12` writes). The one place this name is defined.
    pub secret_name: Option<DnsSubdomain>,
    /// Secret holding the keystore's password under the key `password`.
    pub password_secret_name: Option<DnsSubdomain>,
}

/// How the devices' LoadBalancer Service is exposed; what a cloud's or MetalLB's load balancer
/// reads from it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQDevices")]
pub struct DevicesLayer {
    /// `Local` keeps the devices' source addresses visible to HiveMQ and to
    /// `loadBalancerSourceRanges` (traffic goes only to nodes running a broker); `Cluster`
    /// spreads over every node but hides the source address.
    pub external_traffic_policy: Option<TrafficPolicy>,
    /// CIDRs allowed to connect (e.g. `203.0.113.0/24`); empty allows every address, as devices
    /// in homes need.
    pub load_balancer_source_ranges: Option<Vec<String>>,
    /// Annotations of the Service for the load balancer implementation (e.g. MetalLB's
    /// `metallb.io/loadBalancerIPs`, a cloud's internal/external switch).
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The Service's `externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TrafficPolicy {
    /// Only nodes running a broker take traffic; the client's address is kept.
    Local,
    /// Every node takes traffic and forwards it; the client's address is replaced.
    Cluster,
}

/// The licence HiveMQ reads at start.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQLicense")]
pub struct LicenseLayer {
    /// Secret holding the licence file under the key `license.lic`. Unset, HiveMQ runs in its
    /// connection-limited trial mode, which production environments must not.
    pub secret_name: Option<DnsSubdomain>,
}

/// HiveMQ's `<mqtt>` limits.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQQueue")]
pub struct QueueLayer {
    /// Messages queued per offline or slow client and shared-subscription group before
    /// `strategy` drops one (`<queued-messages><max-queue-size>`; HiveMQ's default, 1000, loses
    /// readings within a second of a Kafka outage). At least `rideOut.messagesPerSecond ×
    /// rideOut.kafkaOutageSecs`.
    pub max_queue_size: Option<Count>,
    /// Which message a full queue drops.
    pub strategy: Option<QueueStrategy>,
    /// QoS 1/2 publishes one client may have unacknowledged towards the broker
    /// (`<receive-maximum><server-receive-maximum>`, 1–65535; HiveMQ's default, 10, stalls fast
    /// publishers).
    pub server_receive_maximum: Option<Count>,
}

/// Which message a full queue drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueueStrategy {
    /// The arriving message (HiveMQ's default).
    Discard,
    /// The oldest queued message, so the newest readings survive.
    DiscardOldest,
}

impl QueueStrategy {
    /// The value `config.xml` expects.
    pub const fn config_value(self) -> &'static str {
        match self {
            Self::Discard => "discard",
            Self::DiscardOldest => "discard-oldest",
        }
    }
}

/// The outage the broker must bridge.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HiveMQRideOut")]
pub struct RideOutLayer {
    /// Seconds Kafka may be unavailable while HiveMQ holds the bridge's backlog.
    pub kafka_outage_secs: Option<Count>,
    /// MQTT messages per second the devices publish to the bridge's topics, all homes together.
    pub messages_per_second: Option<Count>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub replicas: Count,
    pub image: Image,
    pub log_level: LogLevel,
    pub resources: Resources,
    pub storage: Storage,
    pub tls: Tls,
    pub devices: Devices,
    pub license: License,
    pub queue: Queue,
    pub ride_out: RideOut,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    pub secret_name: DnsSubdomain,
    pub password_secret_name: DnsSubdomain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    pub external_traffic_policy: TrafficPolicy,
    #[serde(default)]
    pub load_balancer_source_ranges: Vec<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct License {
    pub secret_name: Option<DnsSubdomain>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub max_queue_size: Count,
    pub strategy: QueueStrategy,
    pub server_receive_maximum: Count,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RideOut {
    pub kafka_outage_secs: Count,
    pub messages_per_second: Count,
}

impl RideOut {
    /// Messages that pile up during the outage.
    pub fn backlog(&self) -> u64 {
        u64::from(self.kafka_outage_secs.get()) * u64::from(self.messages_per_second.get())
    }
}

/// The `HiveMQPlatform`'s name; the operator names the StatefulSet and labels the pods after it.
const PLATFORM: &str = "hivemq";
/// `app.kubernetes.io/name` of the pods the operator creates.
const OPERATOR_POD_NAME_LABEL: &str = "hivemq-platform";
const CONFIG_MAP: &str = "hivemq-config";
const CONFIG_FILE: &str = "config.xml";
/// ClusterIP Service of the plain MQTT listener: the bridge's broker.
pub const MQTT_SERVICE: &str = "hivemq-mqtt";
pub const MQTT_PORT: u16 = 1883;
// Port names follow the operator's `<type>-<port>` convention.
const MQTT_PORT_NAME: &str = "mqtt-1883";
/// LoadBalancer Service of the TLS listener: the devices' broker.
const DEVICES_SERVICE: &str = "hivemq-mqtts";
const MQTTS_PORT: u16 = 8883;
const MQTTS_PORT_NAME: &str = "mqtts-8883";
const CONTROL_CENTER_SERVICE: &str = "hivemq-control-center";
const CONTROL_CENTER_PORT: u16 = 8080;
const CONTROL_CENTER_PORT_NAME: &str = "cc-8080";
pub const METRICS_SERVICE: &str = "hivemq-metrics";
pub const METRICS_PORT: u16 = 9399;
const METRICS_PORT_NAME: &str = "metrics-9399";
const METRICS_PATH: &str = "/";
/// The operator's probes call the health API here; upstream says not to change it.
const HEALTH_API_PORT: u16 = 8889;
const OPERATOR_REST_API_PORT: u16 = 7979;
const CLUSTER_TRANSPORT_PORT: u16 = 7000;
/// The image's `hivemq` user. Its files belong to group 0 (the OpenShift convention), so the
/// process runs with group 0 and volumes are handed to group 0.
const HIVEMQ_UID: i64 = 10000;
const HIVEMQ_GID: i64 = 0;
const DATA_VOLUME: &str = "data";
const DATA_MOUNT: &str = "/opt/hivemq/data";
const LOG_MOUNT: &str = "/opt/hivemq/log";
const SCRATCH_MOUNT: &str = "/tmp";
const LICENSE_VOLUME: &str = "license";
/// HiveMQ reads every `*.lic` file in this folder.
const LICENSE_MOUNT: &str = "/opt/hivemq/license";
const TLS_VOLUME: &str = "tls";
const TLS_MOUNT: &str = "/opt/hivemq/tls";
/// The key cert-manager's PKCS#12 keystore output uses.
const KEYSTORE_KEY: &str = "keystore.p12";
pub const KEYSTORE_PASSWORD_KEY: &str = "password";
/// HiveMQ substitutes `${NAME}` in `config.xml` from the environment.
const KEYSTORE_PASSWORD_ENV: &str = "HIVEMQ_KEYSTORE_PASSWORD";
/// As upstream: the heap follows the container's memory limit.
const JAVA_OPTS: &str =
    "-XX:+UnlockExperimentalVMOptions -XX:InitialRAMPercentage=50 -XX:MaxRAMPercentage=50";

impl Settings {
    /// The broker URL of in-cluster clients: the plain listener's ClusterIP Service.
    pub fn in_cluster_mqtt_url(&self, namespace: &DnsLabel) -> String {
        format!("mqtt://{MQTT_SERVICE}.{namespace}.svc:{MQTT_PORT}")
    }
}

/// The host devices connect to; the MQTT listener's certificate names it.
pub fn devices_host(domain: &DnsSubdomain) -> String {
    format!("mqtt.{domain}")
}

/// The Control Center's Service and port, for a route to it.
pub fn control_center_backend() -> (&'static str, u16) {
    (CONTROL_CENTER_SERVICE, CONTROL_CENTER_PORT)
}

/// Labels the operator puts on the pods it creates (the upstream chart selects them this way).
fn operator_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            OPERATOR_POD_NAME_LABEL.to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), PLATFORM.to_owned()),
    ])
}

/// The brokers' pods, for flows to them.
pub fn pods(_platform: &Platform) -> crate::graph::Peer {
    crate::graph::Peer::pods(NAME, operator_pod_labels())
}

fn operator_pod_selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some(operator_pod_labels()),
        ..Default::default()
    }
}

/// `config.xml`, rendered from `components/hivemq/config.xml.j2`.
pub fn config_xml(hivemq: &Settings, templates: &Templates) -> Result<String, ComponentError> {
    Ok(templates.render(
        "hivemq/config.xml.j2",
        minijinja::context! {
            mqtt_port => MQTT_PORT,
            mqtts_port => MQTTS_PORT,
            keystore_path => format!("{TLS_MOUNT}/{KEYSTORE_KEY}"),
            keystore_password_placeholder => format!("${{{KEYSTORE_PASSWORD_ENV}}}"),
            max_queue_size => hivemq.queue.max_queue_size.get(),
            queue_strategy => hivemq.queue.strategy.config_value(),
            server_receive_maximum => hivemq.queue.server_receive_maximum.get(),
            messages_per_second => hivemq.ride_out.messages_per_second.get(),
            kafka_outage_secs => hivemq.ride_out.kafka_outage_secs.get(),
            cluster_port => CLUSTER_TRANSPORT_PORT,
            health_api_port => HEALTH_API_PORT,
            control_center_port => CONTROL_CENTER_PORT,
        },
    )?)
}

pub fn build(platform: &Platform, templates: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let app = App {
        platform,
        name: NAME,
        component: NAME,
    };
    let config = config_xml(&platform.hivemq, templates)?;
    let config_map = ConfigMap {
        metadata: app.metadata(CONFIG_MAP),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_owned(), config.clone())])),
        ..Default::default()
    };
    Ok(vec![
        manifest(NAME, &config_map)?,
        manifest(NAME, &hivemq_platform(&app, &short_hash(&config, 16)))?,
        manifest(NAME, &disruption_budget(&app))?,
    ])
}

fn hivemq_platform(app: &App, config_checksum: &str) -> HiveMQPlatform {
    HiveMQPlatform::new(
        app.metadata(PLATFORM),
        HiveMQPlatformSpec {
            config_map_name: CONFIG_MAP.to_owned(),
            log_level: app.platform.hivemq.log_level,
            operator_rest_api_port: OPERATOR_REST_API_PORT,
            health_api_port: HEALTH_API_PORT,
            metrics_port: METRICS_PORT,
            metrics_path: METRICS_PATH.to_owned(),
            stateful_set: StatefulSetTemplate {
                metadata: None,
                spec: stateful_set_spec(app, config_checksum),
            },
            services: services(app),
        },
    )
}

fn stateful_set_spec(app: &App, config_checksum: &str) -> StatefulSetSpec {
    let hivemq = &app.platform.hivemq;
    let mut labels = app.labels();
    labels.extend(operator_pod_labels());
    let mut volumes = vec![secret_volume(TLS_VOLUME, &hivemq.tls.secret_name)];
    let mut mounts = vec![read_only_mount(TLS_VOLUME, TLS_MOUNT)];
    if let Some(license) = &hivemq.license.secret_name {
        volumes.push(secret_volume(LICENSE_VOLUME, license));
        mounts.push(read_only_mount(LICENSE_VOLUME, LICENSE_MOUNT));
    }
    // The root filesystem is read-only; HiveMQ writes its logs and temporary files here.
    for (name, path) in [("log", LOG_MOUNT), ("tmp", SCRATCH_MOUNT)] {
        let (volume, mount) = scratch_volume(name, path);
        volumes.push(volume);
        mounts.push(mount);
    }
    mounts.push(VolumeMount {
        name: DATA_VOLUME.to_owned(),
        mount_path: DATA_MOUNT.to_owned(),
        ..Default::default()
    });
    let container = k8s_openapi::api::core::v1::Container {
        env: Some(vec![
            env_var("JAVA_OPTS", JAVA_OPTS),
            EnvVar {
                name: KEYSTORE_PASSWORD_ENV.to_owned(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: hivemq.tls.password_secret_name.to_string(),
                        key: KEYSTORE_PASSWORD_KEY.to_owned(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        ]),
        ports: Some(vec![
            container_port(MQTT_PORT_NAME, MQTT_PORT),
            container_port(MQTTS_PORT_NAME, MQTTS_PORT),
            container_port(CONTROL_CENTER_PORT_NAME, CONTROL_CENTER_PORT),
            container_port(METRICS_PORT_NAME, METRICS_PORT),
        ]),
        volume_mounts: Some(mounts),
        // The operator requires this name for the broker's container.
        ..restricted_container("hivemq", hivemq.image.to_string(), &hivemq.resources)
    };
    StatefulSetSpec {
        replicas: Some(count_i32(hivemq.replicas)),
        selector: operator_pod_selector(),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    CONFIG_CHECKSUM_ANNOTATION.to_owned(),
                    config_checksum.to_owned(),
                )])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                affinity: Some(spread_across_nodes_matching(operator_pod_selector())),
                security_context: Some(PodSecurityContext {
                    run_as_group: Some(HIVEMQ_GID),
                    fs_group: Some(HIVEMQ_GID),
                    ..restricted_pod_security(HIVEMQ_UID)
                }),
                containers: vec![container],
                volumes: Some(volumes),
                ..Default::default()
            }),
        },
        volume_claim_templates: Some(vec![persistent_volume_claim(
            app,
            DATA_VOLUME,
            &hivemq.storage,
        )]),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &DnsSubdomain) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// The Services the operator creates; it adds the selector of its pods to each.
fn services(app: &App) -> Vec<ServiceTemplate> {
    let service = |name: &str, type_: &str, port_name: &str, port: u16| ServiceTemplate {
        metadata: app.metadata(name),
        spec: ServiceSpec {
            type_: Some(type_.to_owned()),
            ports: Some(vec![service_port(port_name, port)]),
            ..Default::default()
        },
    };
    let mut control_center = service(
        CONTROL_CENTER_SERVICE,
        "ClusterIP",
        CONTROL_CENTER_PORT_NAME,
        CONTROL_CENTER_PORT,
    );
    // The control center keeps its session on one node.
    control_center.spec.session_affinity = Some("ClientIP".to_owned());
    let settings = &app.platform.hivemq.devices;
    let mut devices = service(DEVICES_SERVICE, "LoadBalancer", MQTTS_PORT_NAME, MQTTS_PORT);
    devices.spec.external_traffic_policy = Some(
        match settings.external_traffic_policy {
            TrafficPolicy::Local => "Local",
            TrafficPolicy::Cluster => "Cluster",
        }
        .to_owned(),
    );
    if !settings.load_balancer_source_ranges.is_empty() {
        devices.spec.load_balancer_source_ranges =
            Some(settings.load_balancer_source_ranges.clone());
    }
    if !settings.annotations.is_empty() {
        devices.metadata.annotations = Some(settings.annotations.clone());
    }
    vec![
        service(MQTT_SERVICE, "ClusterIP", MQTT_PORT_NAME, MQTT_PORT),
        devices,
        control_center,
        service(METRICS_SERVICE, "ClusterIP", METRICS_PORT_NAME, METRICS_PORT),
    ]
}

/// Drains take one broker at a time; its clients reconnect to the others.
fn disruption_budget(app: &App) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: app.metadata(NAME),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(operator_pod_selector()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Stateful
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            // The operator creates a StatefulSet from the spec the resource carries.
            KindSchema::of::<HiveMQPlatform>().with_pod_template(PodTemplatePaths {
                template: "spec.statefulSet.spec.template",
                selector: "spec.statefulSet.spec.selector",
                claims: Some("spec.statefulSet.spec.volumeClaimTemplates"),
            }),
            KindSchema::of::<ConfigMap>(),
            KindSchema::of::<PodDisruptionBudget>(),
        ]
    }

    fn invariants(platform: &Platform, _: &[Manifest], report: &mut Report) {
        for (field, reason, severity) in
            model_findings(&platform.hivemq, platform.environment.production)
        {
            report.model_as(severity, field, reason);
        }
    }

    /// Devices through the LoadBalancer, brokers among themselves, the operator's REST calls.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        use crate::graph::{tcp, Flow, Peer};
        let devices = &platform.hivemq.devices;
        // Only with `Local` does the broker see the client's address; with `Cluster` it sees a
        // node's, so the LoadBalancer's source ranges are all that filters devices.
        let cidrs = match devices.external_traffic_policy {
            TrafficPolicy::Local if !devices.load_balancer_source_ranges.is_empty() => {
                devices.load_balancer_source_ranges.clone()
            }
            _ => vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()],
        };
        let operator = Peer::in_namespace(
            "hivemq-operator",
            platform.security.network.hivemq_operator_namespace.as_ref(),
            crate::graph::Labels::new(),
        );
        vec![
            Flow::new(
                Peer::Addresses {
                    name: "devices".to_owned(),
                    cidrs,
                },
                pods(platform),
                vec![tcp(MQTTS_PORT)],
                "devices publish over MQTT/TLS",
            )
            .via(DEVICES_SERVICE),
            Flow::new(
                pods(platform),
                pods(platform),
                vec![tcp(CLUSTER_TRANSPORT_PORT)],
                "cluster transport",
            ),
            Flow::new(
                operator,
                pods(platform),
                vec![tcp(OPERATOR_REST_API_PORT)],
                "operator manages the brokers",
            ),
        ]
    }

    /// The operator creates the Services the resource declares; the bridge connects to one.
    fn operator_created(platform: &Platform) -> Vec<(&'static str, String)> {
        services(&App {
            platform,
            name: NAME,
            component: NAME,
        })
        .into_iter()
        .filter_map(|service| service.metadata.name)
        .map(|name| ("Service", name))
        .collect()
    }
}

/// Rules about the HiveMQ model: `(field under hivemq, reason, severity)` for each one broken.
pub fn model_findings(hivemq: &Settings, production: bool) -> Vec<(String, String, Severity)> {
    let mut findings = Vec::new();
    let receive_maximum = hivemq.queue.server_receive_maximum.get();
    if receive_maximum > u32::from(u16::MAX) {
        findings.push((
            "hivemq.queue.serverReceiveMaximum".to_owned(),
            format!("MQTT allows a receive maximum of 1 to 65535; found {receive_maximum}"),
            Severity::Error,
        ));
    }
    for (index, range) in hivemq.devices.load_balancer_source_ranges.iter().enumerate() {
        if !is_cidr(range) {
            findings.push((
                format!("hivemq.devices.loadBalancerSourceRanges[{index}]"),
                format!("`{range}` is not a CIDR: use an address and prefix length, e.g. `203.0.113.0/24`"),
                Severity::Error,
            ));
        }
    }
    if !production {
        return findings;
    }
    let replicas = hivemq.replicas.get();
    if replicas < 2 {
        findings.push((
            "hivemq.replicas".to_owned(),
            format!("production needs at least 2 HiveMQ nodes so the broker survives losing one; found {replicas}"),
            Severity::Error,
        ));
    }
    let backlog = hivemq.ride_out.backlog();
    let queue = hivemq.queue.max_queue_size.get();
    if u64::from(queue) < backlog {
        findings.push((
            "hivemq.queue.maxQueueSize".to_owned(),
            format!(
                "{queue} messages cannot hold a {}-second Kafka outage at {} messages/s ({backlog} messages); HiveMQ drops readings once the queue is full: raise it to at least {backlog} or lower rideOut",
                hivemq.ride_out.kafka_outage_secs, hivemq.ride_out.messages_per_second
            ),
            Severity::Warning,
        ));
    }
    if hivemq.license.secret_name.is_none() {
        findings.push((
            "hivemq.license.secretName".to_owned(),
            "no licence Secret: HiveMQ runs in its connection-limited trial mode; name the Secret holding `license.lic`".to_owned(),
            Severity::Warning,
        ));
    }
    findings
}

/// `address/prefix` with a prefix no longer than the address, as `loadBalancerSourceRanges` takes.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let bits = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    prefix.parse::<u8>().is_ok_and(|prefix| prefix <= bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::{platform, templates};

    fn rendered_config(platform: &Platform) -> String {
        config_xml(&platform.hivemq, &templates()).unwrap()
    }

    /// The text of the first `<tag>…</tag>` inside `<section>`.
    fn element<'a>(xml: &'a str, section: &str, tag: &str) -> &'a str {
        let section = xml
            .split_once(&format!("<{section}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{section}>")))
            .map(|(inside, _)| inside)
            .unwrap_or_else(|| panic!("no <{section}> in\n{xml}"));
        section
            .split_once(&format!("<{tag}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
            .map(|(value, _)| value)
            .unwrap_or_else(|| panic!("no <{tag}> in <{section}>"))
    }

    #[test]
    fn queue_and_receive_maximum_come_from_the_settings() {
        let mut platform = platform("dev");
        platform.hivemq.queue.max_queue_size = 123_456.into();
        platform.hivemq.queue.strategy = QueueStrategy::Discard;
        platform.hivemq.queue.server_receive_maximum = 777.into();
        let xml = rendered_config(&platform);
        assert_eq!(element(&xml, "queued-messages", "max-queue-size"), "123456");
        assert_eq!(element(&xml, "queued-messages", "strategy"), "discard");
        assert_eq!(
            element(&xml, "receive-maximum", "server-receive-maximum"),
            "777"
        );
    }

    #[test]
    fn defaults_replace_hivemqs_measured_traps() {
        for environment in ["dev", "prod"] {
            let xml = rendered_config(&platform(environment));
            let queue: u64 = element(&xml, "queued-messages", "max-queue-size")
                .parse()
                .unwrap();
            let receive: u32 = element(&xml, "receive-maximum", "server-receive-maximum")
                .parse()
                .unwrap();
            assert!(queue > 1000, "{environment}: {queue}");
            assert!(receive > 10, "{environment}: {receive}");
            let hivemq = platform(environment).hivemq;
            assert!(queue >= hivemq.ride_out.backlog(), "{environment}");
        }
    }

    #[test]
    fn listeners_use_the_modelled_ports_and_keystore() {
        let xml = rendered_config(&platform("prod"));
        assert_eq!(element(&xml, "tcp-listener", "port"), "1883");
        assert_eq!(element(&xml, "tls-tcp-listener", "port"), "8883");
        assert_eq!(
            element(&xml, "keystore", "path"),
            "/opt/hivemq/tls/keystore.p12"
        );
        assert_eq!(
            element(&xml, "keystore", "password"),
            "${HIVEMQ_KEYSTORE_PASSWORD}"
        );
        assert_eq!(element(&xml, "health-api", "port"), "8889");
        assert_eq!(element(&xml, "control-center", "port"), "8080");
        assert_eq!(element(&xml, "transport", "bind-port"), "7000");
        assert!(xml.contains("<discovery>\n      <extension/>\n    </discovery>"));
    }

    fn built(environment: &str) -> (Platform, Vec<Manifest>) {
        let platform = platform(environment);
        let objects = build(&platform, &templates()).unwrap();
        (platform, objects)
    }

    fn custom_resource(objects: &[Manifest]) -> &serde_json::Value {
        &objects
            .iter()
            .find(|object| object.kind() == "HiveMQPlatform")
            .expect("a HiveMQPlatform")
            .value
    }

    #[test]
    fn one_node_in_dev_three_spread_in_prod() {
        for (environment, nodes) in [("dev", 1), ("prod", 3)] {
            let (_, objects) = built(environment);
            let spec = &custom_resource(&objects)["spec"]["statefulSet"]["spec"];
            assert_eq!(spec["replicas"], nodes, "{environment}");
            let term = &spec["template"]["spec"]["affinity"]["podAntiAffinity"]
                ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
            assert_eq!(
                term["labelSelector"]["matchLabels"],
                spec["selector"]["matchLabels"]
            );
            assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        }
    }

    #[test]
    fn the_resource_names_the_config_map_and_the_container_is_hivemq() {
        let (_, objects) = built("prod");
        let resource = custom_resource(&objects);
        let config_map = resource["spec"]["configMapName"].as_str().unwrap();
        let rendered = objects
            .iter()
            .find(|object| object.kind() == "ConfigMap" && object.name() == config_map)
            .expect("the named ConfigMap is rendered");
        assert!(rendered.value["data"][CONFIG_FILE].is_string());
        let containers = &resource["spec"]["statefulSet"]["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "hivemq");
    }

    #[test]
    fn the_bridge_service_is_cluster_internal_and_devices_get_tls_on_a_load_balancer() {
        let (platform, objects) = built("prod");
        let services = custom_resource(&objects)["spec"]["services"]
            .as_array()
            .unwrap();
        let service = |name: &str| {
            services
                .iter()
                .find(|service| service["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("no Service {name}"))
        };
        let bridge = service(MQTT_SERVICE);
        assert_eq!(bridge["spec"]["type"], "ClusterIP");
        assert_eq!(bridge["spec"]["ports"][0]["port"], 1883);
        assert_eq!(
            platform.hivemq.in_cluster_mqtt_url(&platform.environment.namespace),
            "mqtt://hivemq-mqtt.ehs-prod.svc:1883"
        );
        let devices = service(DEVICES_SERVICE);
        assert_eq!(devices["spec"]["type"], "LoadBalancer");
        assert_eq!(devices["spec"]["ports"][0]["port"], 8883);
        assert_eq!(service(CONTROL_CENTER_SERVICE)["spec"]["type"], "ClusterIP");
        let load_balanced: Vec<&serde_json::Value> = services
            .iter()
            .filter(|service| service["spec"]["type"] == "LoadBalancer")
            .collect();
        assert_eq!(load_balanced.len(), 1, "only the TLS listener is exposed");
    }

    #[test]
    fn the_tls_secret_is_named_once_and_mounted_where_config_xml_reads_it() {
        let (platform, objects) = built("dev");
        let pod = &custom_resource(&objects)["spec"]["statefulSet"]["spec"]["template"]["spec"];
        let tls = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|volume| volume["name"] == TLS_VOLUME)
            .unwrap();
        assert_eq!(
            tls["secret"]["secretName"],
            platform.hivemq.tls.secret_name.as_ref()
        );
        let xml = rendered_config(&platform);
        let path = element(&xml, "keystore", "path");
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|mount| mount["name"] == TLS_VOLUME)
            .unwrap();
        assert!(path.starts_with(mount["mountPath"].as_str().unwrap()));
    }

    #[test]
    fn the_devices_load_balancer_takes_its_policy_ranges_and_annotations_from_the_model() {
        let mut platform = platform("prod");
        let devices_service = |platform: &Platform| {
            let objects = build(platform, &templates()).unwrap();
            custom_resource(&objects)["spec"]["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|service| service["metadata"]["name"] == DEVICES_SERVICE)
                .unwrap()
                .clone()
        };
        let service = devices_service(&platform);
        assert_eq!(service["spec"]["externalTrafficPolicy"], "Local");
        assert!(service["spec"].get("loadBalancerSourceRanges").is_none());
        assert!(service["metadata"].get("annotations").is_none());
        platform.hivemq.devices.external_traffic_policy = TrafficPolicy::Cluster;
        platform.hivemq.devices.load_balancer_source_ranges = vec!["203.0.113.0/24".to_owned()];
        platform.hivemq.devices.annotations =
            BTreeMap::from([("metallb.io/loadBalancerIPs".to_owned(), "198.51.100.7".to_owned())]);
        let service = devices_service(&platform);
        assert_eq!(service["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(
            service["spec"]["loadBalancerSourceRanges"],
            serde_json::json!(["203.0.113.0/24"])
        );
        assert_eq!(
            service["metadata"]["annotations"]["metallb.io/loadBalancerIPs"],
            "198.51.100.7"
        );
    }

    #[test]
    fn the_license_is_mounted_only_when_named() {
        let mounts = |platform: &Platform| {
            let objects = build(platform, &templates()).unwrap();
            let pod = custom_resource(&objects)["spec"]["statefulSet"]["spec"]["template"]
                ["spec"]
                .clone();
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|volume| volume["name"] == LICENSE_VOLUME)
        };
        let mut platform = platform("prod");
        assert!(mounts(&platform));
        platform.hivemq.license.secret_name = None;
        assert!(!mounts(&platform));
    }

    fn fields(findings: &[(String, String, Severity)]) -> Vec<&str> {
        findings.iter().map(|(field, ..)| field.as_str()).collect()
    }

    #[test]
    fn the_committed_environments_break_no_hivemq_rule() {
        for environment in ["dev", "prod"] {
            let platform = platform(environment);
            let findings = model_findings(&platform.hivemq, platform.environment.production);
            assert_eq!(findings, Vec::new(), "{environment}");
        }
    }

    #[test]
    fn production_warns_when_the_queue_cannot_hold_the_outage() {
        let mut hivemq = platform("prod").hivemq;
        hivemq.ride_out.kafka_outage_secs = 3600.into();
        hivemq.ride_out.messages_per_second = 5000.into();
        hivemq.queue.max_queue_size = 17_999_999.into();
        let findings = model_findings(&hivemq, true);
        assert_eq!(fields(&findings), ["hivemq.queue.maxQueueSize"]);
        assert_eq!(findings[0].2, Severity::Warning);
        assert!(
            findings[0].1.contains("at least 18000000"),
            "{}",
            findings[0].1
        );
        hivemq.queue.max_queue_size = 18_000_000.into();
        assert_eq!(model_findings(&hivemq, true), Vec::new());
        // Development environments may run a small queue.
        hivemq.queue.max_queue_size = 1000.into();
        assert_eq!(model_findings(&hivemq, false), Vec::new());
    }

    #[test]
    fn production_needs_a_license_and_two_nodes() {
        let mut hivemq = platform("prod").hivemq;
        hivemq.license.secret_name = None;
        hivemq.replicas = 1.into();
        let findings = model_findings(&hivemq, true);
        assert_eq!(
            fields(&findings),
            ["hivemq.replicas", "hivemq.license.secretName"]
        );
        assert!(findings[1].1.contains("trial mode"), "{}", findings[1].1);
        assert_eq!(
            [findings[0].2, findings[1].2],
            [Severity::Error, Severity::Warning]
        );
        assert_eq!(model_findings(&hivemq, false), Vec::new());
    }

    #[test]
    fn source_ranges_must_be_cidrs() {
        let mut hivemq = platform("dev").hivemq;
        hivemq.devices.load_balancer_source_ranges = ["203.0.113.0/24", "2001:db8::/32", "10.0.0.1", "10.0.0.0/33"]
            .map(str::to_owned)
            .to_vec();
        let findings = model_findings(&hivemq, false);
        assert_eq!(
            fields(&findings),
            [
                "hivemq.devices.loadBalancerSourceRanges[2]",
                "hivemq.devices.loadBalancerSourceRanges[3]"
            ]
        );
        assert!(findings[0].1.contains("`10.0.0.1` is not a CIDR"), "{}", findings[0].1);
    }

    #[test]
    fn receive_maximum_beyond_what_mqtt_allows_fails_everywhere() {
        let mut hivemq = platform("dev").hivemq;
        hivemq.queue.server_receive_maximum = 65_536.into();
        let findings = model_findings(&hivemq, false);
        assert_eq!(fields(&findings), ["hivemq.queue.serverReceiveMaximum"]);
    }
}
