//! The ehs-bridge workload: MQTT shared subscription in, Kafka out.
//!
//! A StatefulSet, not a Deployment: each replica's MQTT client id is its pod name, which survives
//! restarts, so a crashed replica resumes its own persistent session instead of leaving it to
//! strand its share of the traffic until the session expires.


use ehs_contract::config::{BridgeConfig, BridgeConfigLayer};
use ehs_contract::{env, http};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    PodSpec, PodTemplateSpec, SecretVolumeSource, Service,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    container_port, count_i32, env_var, manifest, pod_field_env_var, restricted_container,
    restricted_pod_security, service_port, App, ComponentError,
};
use crate::manifest::Manifest;
use crate::model::{Count, DnsSubdomain, Image, ImageLayer, Resources, ResourcesLayer};
use crate::resolve::Platform;
use crate::templates::Templates;

pub const NAME: &str = "bridge";
/// Name of the StatefulSet, its Service and its pods' prefix.
pub const APP_NAME: &str = "ehs-bridge";

/// Overridable bridge settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "BridgeSettings")]
pub struct Layer {
    /// Bridge replicas; they split the MQTT traffic through one shared subscription.
    pub replicas: Option<Count>,
    /// The image built from `bridge/` in this repository.
    pub image: Option<ImageLayer>,
    /// Resources of each replica.
    pub resources: Option<ResourcesLayer>,
    /// Where the MQTT broker is and how the bridge logs in to it.
    pub mqtt: Option<MqttLayer>,
    /// The bridge binary's own settings, checked by the rules the bridge applies at start-up.
    pub config: Option<BridgeConfigLayer>,
}

/// The MQTT broker the bridge connects to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Mqtt")]
pub struct MqttLayer {
    /// Secret with keys `username` and `password`, mounted as files.
    pub credentials_secret: Option<DnsSubdomain>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub replicas: Count,
    pub image: Image,
    pub resources: Resources,
    pub mqtt: Mqtt,
    /// Unset settings take the binary's defaults, so both sides share one set.
    #[serde(default)]
    pub config: Config,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mqtt {
    pub credentials_secret: DnsSubdomain,
}

/// A [`BridgeConfig`] the bridge accepts: resolving refuses one it would refuse at start-up,
/// naming every problem.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "BridgeConfig")]
pub struct Config(BridgeConfig);

impl TryFrom<BridgeConfig> for Config {
    type Error = String;

    fn try_from(config: BridgeConfig) -> Result<Self, String> {
        let problems = config.validate();
        if problems.is_empty() {
            Ok(Self(config))
        } else {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(problems.join("; "))
        }
    }
}

impl std::ops::Deref for Config {
    type Target = BridgeConfig;

    fn deref(&self) -> &BridgeConfig {
        &self.0
    }
}

/// Extra time beyond the drain timeout before the kubelet kills the container: the drain's own
/// deadline must fire first so the bridge acknowledges what it holds and exits cleanly.
const GRACE_BEYOND_DRAIN_SECS: i64 = 15;
/// The non-root user of the bridge image (distroless `nonroot`).
const BRIDGE_UID: i64 = 65532;
const CREDENTIALS_MOUNT: &str = "/var/run/secrets/ehs-platform.io/mqtt";
/// The pod volume holding the MQTT credentials Secret, mounted at [`CREDENTIALS_MOUNT`].
const CREDENTIALS_VOLUME: &str = "mqtt-credentials";

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let app = App {
        platform,
        name: APP_NAME,
        component: NAME,
    };
    Ok(vec![
        manifest(NAME, &headless_service(&app))?,
        manifest(NAME, &stateful_set(&app))?,
        manifest(NAME, &app.one_at_a_time_disruption_budget())?,
    ])
}

fn headless_service(app: &App) -> Service {
    Service {
        metadata: app.metadata(APP_NAME),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(app.selector_labels()),
            ports: Some(vec![service_port(http::PORT_NAME, http::PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every environment variable the bridge reads, from the model and the shared contract.
fn bridge_env(platform: &Platform) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let bridge = &platform.bridge;
    let kafka = &platform.kafka;
    let namespace = &platform.environment.namespace;
    // The filters as subscribed, so the manifest shows them even when derived from the pattern.
    let config = BridgeConfig {
        mqtt_filters: bridge.config.subscribed_filters(),
        ..BridgeConfig::clone(&bridge.config)
    };
    let mut vars = vec![
        pod_field_env_var(env::MQTT_CLIENT_ID, "metadata.name"),
        env_var(env::MQTT_URL, platform.hivemq.in_cluster_mqtt_url(namespace)),
        env_var(
            env::MQTT_USERNAME_FILE,
            format!("{CREDENTIALS_MOUNT}/username"),
        ),
        env_var(
            env::MQTT_PASSWORD_FILE,
            format!("{CREDENTIALS_MOUNT}/password"),
        ),
        env_var(
            env::KAFKA_BOOTSTRAP_SERVERS,
            kafka.bootstrap_servers(namespace),
        ),
        env_var(env::KAFKA_TOPIC, kafka.topics.telemetry.name.to_string()),
        env_var(
            env::KAFKA_DEAD_LETTER_TOPIC,
            kafka.topics.dead_letters.name.to_string(),
        ),
        env_var(env::HTTP_LISTEN, format!("0.0.0.0:{}", http::PORT)),
    ];
    vars.extend(
        config
            .to_env()
            .into_iter()
            .map(|(name, value)| env_var(name, value)),
    );
    vars
}

fn stateful_set(app: &App) -> StatefulSet {
    let bridge = &app.platform.bridge;
    let container = k8s_openapi::api::core::v1::Container {
        env: Some(bridge_env(app.platform)),
        ports: Some(vec![container_port(http::PORT_NAME, http::PORT)]),
        readiness_probe: Some(super::http_probe(http::READYZ_PATH, http::PORT_NAME, 5, 3, 2)),
        liveness_probe: Some(super::http_probe(http::HEALTHZ_PATH, http::PORT_NAME, 10, 3, 2)),
        volume_mounts: Some(vec![VolumeMount {
            name: CREDENTIALS_VOLUME.to_owned(),
            mount_path: CREDENTIALS_MOUNT.to_owned(),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..restricted_container(APP_NAME, bridge.image.to_string(), &bridge.resources)
    };
    StatefulSet {
        metadata: app.metadata(APP_NAME),
        spec: Some(StatefulSetSpec {
            replicas: Some(count_i32(bridge.replicas)),
            service_name: Some(APP_NAME.to_owned()),
            // Replicas are independent share-group members; none waits for another.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: app.selector(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app.labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    // It never calls the Kubernetes API.
                    automount_service_account_token: Some(false),
                    affinity: Some(app.spread_across_nodes()),
                    termination_grace_period_seconds: Some(
                        i64::try_from(bridge.config.drain_timeout_secs)
                            .unwrap_or(i64::MAX)
                            .saturating_add(GRACE_BEYOND_DRAIN_SECS),
                    ),
                    security_context: Some(restricted_pod_security(BRIDGE_UID)),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: CREDENTIALS_VOLUME.to_owned(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(bridge.mqtt.credentials_secret.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The bridge's part in `ehs validate`.
pub struct Hooks;

impl super::ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Clients
    }

    fn kinds() -> Vec<crate::validate::KindSchema> {
        use crate::validate::KindSchema;
        vec![
            KindSchema::of::<Service>(),
            KindSchema::of::<StatefulSet>(),
            KindSchema::of::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(),
        ]
    }

    /// To the MQTT listener and the Kafka bootstrap its environment variables name.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        use crate::graph::{tcp, Flow, Peer};
        let bridge = Peer::app(&super::App {
            platform,
            name: APP_NAME,
            component: NAME,
        });
        vec![
            Flow::new(
                bridge.clone(),
                super::hivemq::pods(platform),
                vec![tcp(super::hivemq::MQTT_PORT)],
                "subscribes to device telemetry",
            )
            .via(super::hivemq::MQTT_SERVICE),
            Flow::new(
                bridge,
                super::kafka::pods(platform),
                vec![tcp(super::kafka::CLIENT_PORT)],
                "produces telemetry and dead letters",
            )
            .via(super::kafka::CLIENT_SERVICE),
        ]
    }

    /// The Services behind the MQTT and Kafka addresses in its environment variables.
    fn references(_: &Platform) -> Vec<crate::validate::Reference> {
        let field = crate::validate::FieldPath::of("spec.template.spec.containers")
            .index(0)
            .key("env");
        [
            super::hivemq::MQTT_SERVICE.to_owned(),
            super::kafka::CLIENT_SERVICE.to_owned(),
        ]
        .into_iter()
        .map(|service| crate::validate::Reference {
            from: ("StatefulSet", APP_NAME.to_owned()),
            field: field.clone(),
            to: ("Service", service),
        })
        .collect()
    }
}

/// Environment variables the bridge pods get, by name (for tests and validation).
#[cfg(test)]
fn env_map(
    platform: &Platform,
) -> std::collections::BTreeMap<String, k8s_openapi::api::core::v1::EnvVar> {
    bridge_env(platform)
        .into_iter()
        .map(|var| (var.name.clone(), var))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::{platform, repo};

    #[test]
    fn pod_user_is_the_image_user() {
        // runAsUser must be the user the image runs as, or a read-only, non-root pod cannot
        // start it; the Containerfile is the other place that number stands.
        let containerfile =
            std::fs::read_to_string(repo().root.join("bridge/Containerfile")).unwrap();
        let user = containerfile
            .lines()
            .find_map(|line| line.strip_prefix("USER "))
            .expect("a USER line");
        assert_eq!(user.split(':').next(), Some(BRIDGE_UID.to_string().as_str()));
    }

    #[test]
    fn kafka_endpoints_and_topics_come_from_the_kafka_model() {
        let platform = platform("prod");
        let vars = env_map(&platform);
        let value = |name: &str| vars[name].value.clone().unwrap();
        assert_eq!(
            value(env::KAFKA_BOOTSTRAP_SERVERS),
            platform
                .kafka
                .bootstrap_servers(&platform.environment.namespace)
        );
        assert_eq!(
            value(env::KAFKA_BOOTSTRAP_SERVERS),
            "kafka.ehs-prod.svc:9092"
        );
        assert_eq!(
            value(env::KAFKA_TOPIC),
            platform.kafka.topics.telemetry.name.as_ref()
        );
        assert_eq!(
            value(env::KAFKA_DEAD_LETTER_TOPIC),
            platform.kafka.topics.dead_letters.name.as_ref()
        );
    }

    #[test]
    fn client_id_is_the_stable_pod_name() {
        let vars = env_map(&platform("dev"));
        let source = vars[env::MQTT_CLIENT_ID].value_from.clone().unwrap();
        assert_eq!(source.field_ref.unwrap().field_path, "metadata.name");
    }

    #[test]
    fn drain_finishes_inside_the_grace_period() {
        let platform = platform("prod");
        let statefulset = stateful_set(&App {
            platform: &platform,
            name: APP_NAME,
            component: NAME,
        });
        let grace = statefulset
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .termination_grace_period_seconds
            .unwrap();
        assert!(i64::try_from(platform.bridge.config.drain_timeout_secs).unwrap() < grace);
    }

    #[test]
    fn payload_routes_use_the_contract_syntax() {
        let vars = env_map(&platform("dev"));
        let routes =
            ehs_contract::parse_payload_routes(vars[env::PAYLOAD_ROUTES].value.as_deref().unwrap())
                .unwrap();
        assert!(!routes.is_empty());
    }
}
