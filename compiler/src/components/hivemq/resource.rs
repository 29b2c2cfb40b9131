//! The `HiveMQPlatform` custom resource (`hivemq.com/v1`) the HiveMQ Platform Operator reconciles
//! into a StatefulSet, its Services and the cluster's configuration.
//!
//! Typed after the CRD (`hivemq.com_hivemq-platforms.yaml`), with only the fields this platform
//! sets: the schema check then holds the rendered object to these types, strictly, like any core
//! kind. The embedded StatefulSet and Service specs are k8s-openapi's, as the CRD copies them.

use k8s_openapi::api::apps::v1::StatefulSetSpec;
use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A HiveMQ cluster managed by the operator.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HiveMQPlatform {
    /// Always [`HiveMQPlatform::API_VERSION`](k8s_openapi::Resource::API_VERSION).
    pub api_version: String,
    /// Always [`HiveMQPlatform::KIND`](k8s_openapi::Resource::KIND).
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: HiveMQPlatformSpec,
}

impl HiveMQPlatform {
    pub fn new(metadata: ObjectMeta, spec: HiveMQPlatformSpec) -> Self {
        use k8s_openapi::Resource;
        Self {
            api_version: Self::API_VERSION.to_owned(),
            kind: Self::KIND.to_owned(),
            metadata,
            spec,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HiveMQPlatformSpec {
    /// ConfigMap holding `config.xml`; the operator mounts it and reloads on change.
    pub config_map_name: String,
    pub log_level: LogLevel,
    /// Port of the operator's REST API inside each pod.
    pub operator_rest_api_port: u16,
    /// Port of HiveMQ's health API; the operator's probes call it.
    pub health_api_port: u16,
    /// Port of the Prometheus metrics endpoint.
    pub metrics_port: u16,
    pub metrics_path: String,
    /// The StatefulSet the operator creates, merged over its own defaults.
    pub stateful_set: StatefulSetTemplate,
    /// Services the operator creates in front of the pods; it sets their selectors.
    pub services: Vec<ServiceTemplate>,
}

/// HiveMQ's log level, as the CRD spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// `metadata` and `spec` of a StatefulSet, without `apiVersion` and `kind` (the CRD has neither).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatefulSetTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: StatefulSetSpec,
}

/// `metadata` and `spec` of a Service, without `apiVersion` and `kind` (the CRD has neither).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceTemplate {
    pub metadata: ObjectMeta,
    pub spec: ServiceSpec,
}

impl k8s_openapi::Resource for HiveMQPlatform {
    const API_VERSION: &'static str = "hivemq.com/v1";
    const GROUP: &'static str = "hivemq.com";
    const KIND: &'static str = "HiveMQPlatform";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "hivemq-platforms";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for HiveMQPlatform {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
