//! TimescaleDB, highly available, as a CloudNativePG `Cluster`.
//!
//! CloudNativePG (not Patroni) manages the instances: it is a Kubernetes operator whose failover
//! uses the API server as its only source of truth, so there is no separate DCS to run, and it
//! loads TimescaleDB from an extension image, so the PostgreSQL image stays the operator's own.
//! The README says more.
//!
//! Schema initialisation runs the reading table's DDL from `ehs_contract::reading`, the same
//! definition the bridge's envelope and the JDBC sink's upsert key come from.

use std::collections::BTreeMap;

use ehs_contract::reading;
use k8s_openapi::api::core::v1::{ConfigMap, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kafka::{Storage, StorageLayer};
use super::{count_i32, manifest, resource_requirements, App, ComponentError, ComponentHooks};
use crate::manifest::Manifest;
use crate::model::{
    Count, DnsLabel, DnsSubdomain, Image, ImageLayer, Resources, ResourcesLayer, SqlIdentifier,
};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{FieldPath, KindSchema, Reference, Report};

pub const NAME: &str = "timescaledb";

/// Name of the `Cluster`; CloudNativePG derives its Services and Secrets from it.
pub const CLUSTER: &str = "timescaledb";
/// PostgreSQL's port on every Service of the cluster.
pub const PORT: u16 = 5432;
/// ConfigMap holding the schema SQL run once when the cluster is created.
pub const SCHEMA_CONFIG_MAP: &str = "timescaledb-schema";
/// Key of the schema SQL in [`SCHEMA_CONFIG_MAP`].
pub const SCHEMA_KEY: &str = "schema.sql";
/// The PostgreSQL extension (`CREATE EXTENSION`) and preloaded library.
const EXTENSION: &str = "timescaledb";
/// The extension image's name in `postgresql.extensions`.
const EXTENSION_IMAGE_NAME: &str = "timescaledb-oss";

/// Overridable TimescaleDB settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "TimescaledbSettings")]
pub struct Layer {
    /// PostgreSQL instances: one primary, the rest streaming standbys. 1 has no failover;
    /// production needs at least 2, and 3 lets one standby be down while commits stay synchronous.
    pub instances: Option<Count>,
    /// CloudNativePG's PostgreSQL image, e.g. `ghcr.io/cloudnative-pg/postgresql` tag
    /// `18-minimal-trixie`; its major version must match the extension image's.
    pub image: Option<ImageLayer>,
    /// CloudNativePG's TimescaleDB extension image, e.g. `ghcr.io/cloudnative-pg/timescaledb-oss`
    /// tag `2.29.2-18-trixie` (TimescaleDB 2.29.2 for PostgreSQL 18).
    pub extension_image: Option<ImageLayer>,
    /// Resources of each instance.
    pub resources: Option<ResourcesLayer>,
    /// Persistent volume of each instance.
    pub storage: Option<StorageLayer>,
    /// The application database, also the name of the role that owns it and its tables.
    pub database: Option<SqlIdentifier>,
    /// Secret (`kubernetes.io/basic-auth`: `username`, `password`) with the owner's credentials.
    /// Unset: CloudNativePG generates Secret `timescaledb-app`. Set: the Secret must exist
    /// before the cluster (declare it under `providedExternally`).
    pub owner_secret: Option<DnsSubdomain>,
    /// How many standbys confirm each commit.
    pub synchronous_replication: Option<SynchronousLayer>,
    /// Whether instances must (`required`) or should (`preferred`) run on different nodes.
    pub pod_anti_affinity: Option<AntiAffinity>,
}

/// Synchronous replication settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SynchronousReplication")]
pub struct SynchronousLayer {
    /// Standbys that must confirm a commit before it is acknowledged (quorum: any of them);
    /// 0 replicates asynchronously. At most `instances - 1`.
    pub standbys: Option<u32>,
    /// `required`: commits wait while fewer standbys are healthy (no acknowledged write is lost
    /// in a failover; writes stall instead). `preferred`: commits proceed on fewer standbys.
    pub data_durability: Option<DataDurability>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataDurability {
    Required,
    Preferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinity {
    Required,
    Preferred,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub instances: Count,
    pub image: Image,
    pub extension_image: Image,
    pub resources: Resources,
    pub storage: Storage,
    pub database: SqlIdentifier,
    #[serde(default)]
    pub owner_secret: Option<DnsSubdomain>,
    pub synchronous_replication: SynchronousReplication,
    pub pod_anti_affinity: AntiAffinity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SynchronousReplication {
    pub standbys: u32,
    pub data_durability: DataDurability,
}

/// CloudNativePG's instance manager serves the operator's status calls here.
const INSTANCE_STATUS_PORT: u16 = 8000;

/// The instances' pods (CloudNativePG labels them with their cluster), for flows to them.
pub fn pods(_platform: &Platform) -> crate::graph::Peer {
    crate::graph::Peer::created_by(
        "CloudNativePG",
        CLUSTER,
        crate::graph::Labels::from([("cnpg.io/cluster".to_owned(), CLUSTER.to_owned())]),
    )
}

/// How other components reach the database: one source for the Connect sink's JDBC URL and
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The read-write Service CloudNativePG keeps pointed at the primary.
    pub service: String,
    pub port: u16,
    pub database: String,
    /// Secret with the owner's `username` and `password`.
    pub credentials_secret: String,
}

impl Connection {
    /// `jdbc:postgresql://<service>.<namespace>.svc:<port>/<database>`.
    pub fn jdbc_url(&self, namespace: &DnsLabel) -> String {
        format!(
            "jdbc:postgresql://{}.{namespace}.svc:{}/{}",
            self.service, self.port, self.database
        )
    }
}

impl Settings {
        pub fn connection(&self) -> Connection {
        Connection {
            service: format!("{CLUSTER}-rw"),
            port: PORT,
            database: self.database.to_string(),
            credentials_secret: self.credentials_secret(),
        }
    }

    /// The owner's credentials: the configured Secret, or the one CloudNativePG generates.
    pub fn credentials_secret(&self) -> String {
        self.owner_secret
            .as_ref()
            .map_or_else(|| format!("{CLUSTER}-app"), ToString::to_string)
    }

    /// Findings about the settings themselves, as `(field under timescaledb, reason)`.
    pub fn problems(&self, production: bool) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let (instances, standbys) = (self.instances.get(), self.synchronous_replication.standbys);
        if standbys >= instances {
            problems.push((
                "synchronousReplication.standbys",
                format!(
                    "{standbys} synchronous standby(s) need more than {instances} instance(s); \
                     use at most {}",
                    instances - 1
                ),
            ));
        }
        if production && instances < 2 {
            problems.push((
                "instances",
                format!(
                    "production needs at least 2 instances so the database survives losing \
                     one; found {instances}"
                ),
            ));
        }
        if production && instances >= 2 && standbys == 0 {
            problems.push((
                "synchronousReplication.standbys",
                "production needs at least 1 synchronous standby: with asynchronous \
                 replication a failover loses commits the sink already counted as written"
                    .to_owned(),
            ));
        }
        match (
            postgres_major(self.image.tag.as_ref()),
            extension_postgres_major(self.extension_image.tag.as_ref()),
        ) {
            (Some(server), Some(extension)) if server != extension => problems.push((
                "extensionImage.tag",
                format!(
                    "the extension image is built for PostgreSQL {extension} but the image runs \
                     PostgreSQL {server}; use tags of the same major version"
                ),
            )),
            (Some(_), Some(_)) => {}
            _ => problems.push((
                "image.tag",
                format!(
                    "cannot tell the PostgreSQL major version from `{}` and `{}`; use tags of the \
                     forms `18-minimal-trixie` (image) and `2.29.2-18-trixie` (extensionImage)",
                    self.image.tag, self.extension_image.tag
                ),
            )),
        }
        problems
    }
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Stateful
    }

    fn kinds() -> Vec<KindSchema> {
        vec![KindSchema::of::<Cluster>(), KindSchema::of::<ConfigMap>()]
    }

    fn invariants(platform: &Platform, _: &[Manifest], report: &mut Report) {
        for (field, reason) in platform
            .timescaledb
            .problems(platform.environment.production)
        {
            report.model(format!("{NAME}.{field}"), reason);
        }
    }

    /// Standbys stream from the primary through the read-write Service; the operator calls
    /// each instance's status port; the instance manager watches the API server.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        use crate::graph::{tcp, Flow, Peer};
        let connection = platform.timescaledb.connection();
        let operator = Peer::in_namespace(
            "cloudnative-pg",
            platform.security.network.cloud_native_pg_namespace.as_ref(),
            crate::graph::Labels::new(),
        );
        let (api, api_ports) = super::security::kubernetes_api(platform);
        vec![
            Flow::new(
                pods(platform),
                pods(platform),
                vec![tcp(connection.port)],
                "streaming replication",
            )
            .via(connection.service),
            Flow::new(
                operator,
                pods(platform),
                vec![tcp(INSTANCE_STATUS_PORT), tcp(connection.port)],
                "operator manages the instances",
            ),
            Flow::new(pods(platform), api, api_ports, "instance manager"),
        ]
    }

    /// Objects the `Cluster` names: each must be rendered or provided externally before the
    /// operator can create the instances.
    fn references(platform: &Platform) -> Vec<Reference> {
        let settings = &platform.timescaledb;
        let reference = |field: FieldPath, kind: &'static str, name: String| Reference {
            from: ("Cluster", CLUSTER.to_owned()),
            field,
            to: (kind, name),
        };
        let mut references = vec![
            reference(
                FieldPath::of("spec.storage.storageClass"),
                "StorageClass",
                platform.storage.class_name.to_string(),
            ),
            reference(
                FieldPath::of("spec.bootstrap.initdb.postInitApplicationSQLRefs.configMapRefs")
                    .index(0)
                    .key("name"),
                "ConfigMap",
                SCHEMA_CONFIG_MAP.to_owned(),
            ),
        ];
        if let Some(secret) = &settings.owner_secret {
            references.push(reference(
                FieldPath::of("spec.bootstrap.initdb.secret.name"),
                "Secret",
                secret.to_string(),
            ));
        }
        references
    }

    /// CloudNativePG's Services for the primary (`-rw`), replicas (`-ro`) and any instance
    /// (`-r`), and the owner's credentials Secret it generates when none is named.
    fn operator_created(platform: &Platform) -> Vec<(&'static str, String)> {
        let mut created: Vec<(&'static str, String)> = ["rw", "ro", "r"]
            .into_iter()
            .map(|suffix| ("Service", format!("{CLUSTER}-{suffix}")))
            .collect();
        if platform.timescaledb.owner_secret.is_none() {
            created.push(("Secret", platform.timescaledb.credentials_secret()));
        }
        created
    }
}

/// `18-minimal-trixie` or `18.1-minimal-trixie` → `18`.
fn postgres_major(tag: &str) -> Option<&str> {
    let version = tag.split('-').next()?;
    let major = version.split('.').next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then_some(major)
}

/// `2.29.2-18-trixie` or the build-stamped `2.29.2-202608221028-18-trixie` → `18`: the major is
/// always the part before the distribution.
fn extension_postgres_major(tag: &str) -> Option<&str> {
    let major = tag.rsplit('-').nth(1)?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then_some(major)
}

/// The schema SQL: the extension (which needs a superuser), then the reading table created as
/// the owner, so the sink's role owns the hypertable it writes to.
pub fn schema_sql(settings: &Settings) -> String {
    format!(
        "CREATE EXTENSION IF NOT EXISTS {EXTENSION};\n\
         SET ROLE {owner};\n\
         {ddl}\
         RESET ROLE;\n",
        owner = settings.database,
        ddl = reading::table_ddl(),
    )
}

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let app = App {
        platform,
        name: NAME,
        component: NAME,
    };
    let schema = ConfigMap {
        metadata: app.metadata(SCHEMA_CONFIG_MAP),
        data: Some(BTreeMap::from([(
            SCHEMA_KEY.to_owned(),
            schema_sql(&platform.timescaledb),
        )])),
        ..Default::default()
    };
    Ok(vec![
        manifest(NAME, &schema)?,
        manifest(NAME, &cluster(&app))?,
    ])
}

/// The `Cluster` for this environment.
pub fn cluster(app: &App) -> Cluster {
    let settings = &app.platform.timescaledb;
    let synchronous = (settings.synchronous_replication.standbys > 0).then(|| Synchronous {
        // Quorum commit: any standby's confirmation counts, so losing one standby of several
        // does not stall writes, and the operator may promote whichever is most current.
        method: SyncMethod::Any,
        number: i32::try_from(settings.synchronous_replication.standbys).unwrap_or(i32::MAX),
        data_durability: settings.synchronous_replication.data_durability,
    });
    Cluster {
        metadata: app.metadata(CLUSTER),
        spec: ClusterSpec {
            instances: count_i32(settings.instances),
            image_name: settings.image.to_string(),
            image_pull_policy: "IfNotPresent".to_owned(),
            inherited_metadata: InheritedMetadata {
                labels: app.labels(),
            },
            postgresql: PostgresConfiguration {
                shared_preload_libraries: vec![EXTENSION.to_owned()],
                parameters: BTreeMap::from([
                    // No phoning home from a production database.
                    ("timescaledb.telemetry_level".to_owned(), "off".to_owned()),
                    // Every chunk of a hypertable a query touches takes a lock; the default 64
                    // runs out on long time ranges.
                    ("max_locks_per_transaction".to_owned(), "128".to_owned()),
                ]),
                extensions: vec![ExtensionConfiguration {
                    name: EXTENSION_IMAGE_NAME.to_owned(),
                    image: ImageVolumeSource {
                        reference: settings.extension_image.to_string(),
                    },
                }],
                synchronous,
            },
            bootstrap: Bootstrap {
                initdb: InitDb {
                    database: settings.database.to_string(),
                    owner: settings.database.to_string(),
                    secret: settings.owner_secret.as_ref().map(|name| LocalObjectReference {
                        name: name.to_string(),
                    }),
                    data_checksums: true,
                    post_init_application_sql_refs: SqlRefs {
                        config_map_refs: vec![KeySelector {
                            name: SCHEMA_CONFIG_MAP.to_owned(),
                            key: SCHEMA_KEY.to_owned(),
                        }],
                    },
                },
            },
            // The application connects as the owner; nobody needs the `postgres` password.
            enable_superuser_access: false,
            enable_pdb: true,
            storage: ClusterStorage {
                size: settings.storage.size.to_k8s(),
                storage_class: app.platform.storage.class_name.to_string(),
            },
            affinity: ClusterAffinity {
                enable_pod_anti_affinity: true,
                topology_key: "kubernetes.io/hostname".to_owned(),
                pod_anti_affinity_type: settings.pod_anti_affinity,
            },
            resources: resource_requirements(&settings.resources),
        },
    }
}

/// A CloudNativePG `Cluster` (`postgresql.cnpg.io/v1`): the fields this platform sets, named as
/// in the CRD. `ehs validate` checks rendered Clusters against this type's schema.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub metadata: ObjectMeta,
    pub spec: ClusterSpec,
}

/// What a `Cluster` looks like on the wire: with `apiVersion` and `kind`, as k8s-openapi's own
/// types write themselves.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterObject<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: &'a ObjectMeta,
    spec: &'a ClusterSpec,
}

impl Serialize for Cluster {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use k8s_openapi::Resource;
        ClusterObject {
            api_version: Self::API_VERSION,
            kind: Self::KIND,
            metadata: &self.metadata,
            spec: &self.spec,
        }
        .serialize(serializer)
    }
}

impl JsonSchema for Cluster {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cluster".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ClusterObject::json_schema(generator)
    }
}

impl k8s_openapi::Resource for Cluster {
    const API_VERSION: &'static str = "postgresql.cnpg.io/v1";
    const GROUP: &'static str = "postgresql.cnpg.io";
    const KIND: &'static str = "Cluster";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "clusters";
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Cluster {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub instances: i32,
    pub image_name: String,
    pub image_pull_policy: String,
    /// Labels CloudNativePG copies onto the pods, Services and PVCs it creates.
    pub inherited_metadata: InheritedMetadata,
    pub postgresql: PostgresConfiguration,
    pub bootstrap: Bootstrap,
    pub enable_superuser_access: bool,
    #[serde(rename = "enablePDB")]
    pub enable_pdb: bool,
    pub storage: ClusterStorage,
    pub affinity: ClusterAffinity,
    pub resources: ResourceRequirements,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InheritedMetadata {
    pub labels: BTreeMap<String, String>,
}

/// `spec.postgresql`; CloudNativePG spells some of these fields in snake case.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PostgresConfiguration {
    pub shared_preload_libraries: Vec<String>,
    pub parameters: BTreeMap<String, String>,
    pub extensions: Vec<ExtensionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synchronous: Option<Synchronous>,
}

/// An extension mounted from an image (Kubernetes ImageVolume, CloudNativePG ≥ 1.27).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExtensionConfiguration {
    pub name: String,
    pub image: ImageVolumeSource,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageVolumeSource {
    pub reference: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Synchronous {
    pub method: SyncMethod,
    pub number: i32,
    pub data_durability: DataDurability,
}

/// Only quorum commit is used; see [`cluster`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    Any,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Bootstrap {
    pub initdb: InitDb,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitDb {
    pub database: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<LocalObjectReference>,
    pub data_checksums: bool,
    #[serde(rename = "postInitApplicationSQLRefs")]
    pub post_init_application_sql_refs: SqlRefs,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LocalObjectReference {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlRefs {
    pub config_map_refs: Vec<KeySelector>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KeySelector {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStorage {
    pub size: K8sQuantity,
    pub storage_class: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinity {
    pub enable_pod_anti_affinity: bool,
    pub topology_key: String,
    pub pod_anti_affinity_type: AntiAffinity,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::{platform, templates};
    use crate::validate::validate;

    fn cluster_of(platform: &Platform) -> Cluster {
        cluster(&App {
            platform,
            name: NAME,
            component: NAME,
        })
    }

    /// Findings of a full validation, as `object: field: reason` lines.
    fn findings(platform: &Platform) -> Vec<String> {
        let objects = crate::components::build_all(platform, &templates()).unwrap();
        validate(&objects, platform)
            .iter()
            .map(|finding| format!("{}: {}: {}", finding.object, finding.field, finding.reason))
            .collect()
    }

    #[test]
    fn prod_runs_three_instances_with_quorum_commit_on_one_standby() {
        let spec = cluster_of(&platform("prod")).spec;
        assert_eq!(spec.instances, 3);
        let synchronous = spec.postgresql.synchronous.expect("synchronous replication");
        assert_eq!(synchronous.method, SyncMethod::Any);
        assert_eq!(synchronous.number, 1);
        assert_eq!(synchronous.data_durability, DataDurability::Required);
        assert_eq!(spec.affinity.pod_anti_affinity_type, AntiAffinity::Required);
        assert!(spec.enable_pdb);
        assert!(!spec.enable_superuser_access);
        assert_eq!(spec.storage.size.0, "100Gi");
    }

    #[test]
    fn dev_runs_one_instance_without_synchronous_replication() {
        let spec = cluster_of(&platform("dev")).spec;
        assert_eq!(spec.instances, 1);
        assert!(spec.postgresql.synchronous.is_none());
        let value = serde_json::to_value(cluster_of(&platform("dev"))).unwrap();
        assert_eq!(value["apiVersion"], "postgresql.cnpg.io/v1");
        assert_eq!(value["kind"], "Cluster");
        assert!(value["spec"]["postgresql"].get("synchronous").is_none());
    }

    #[test]
    fn timescaledb_is_preloaded_from_the_extension_image_without_telemetry() {
        let platform = platform("prod");
        let postgresql = cluster_of(&platform).spec.postgresql;
        assert_eq!(postgresql.shared_preload_libraries, ["timescaledb"]);
        assert_eq!(
            postgresql.parameters["timescaledb.telemetry_level"],
            "off"
        );
        assert_eq!(postgresql.extensions.len(), 1);
        assert_eq!(
            postgresql.extensions[0].image.reference,
            platform.timescaledb.extension_image.to_string()
        );
    }

    #[test]
    fn schema_init_runs_the_contract_ddl_after_creating_the_extension() {
        let platform = platform("dev");
        let objects = build(&platform, &templates()).unwrap();
        let config_map = objects
            .iter()
            .find(|o| o.kind() == "ConfigMap")
            .expect("schema ConfigMap");
        let sql = config_map.value["data"][SCHEMA_KEY].as_str().unwrap();
        let extension = sql.find("CREATE EXTENSION IF NOT EXISTS timescaledb;").unwrap();
        let table = sql.find(&reading::table_ddl()).expect("the contract's DDL");
        assert!(extension < table, "{sql}");
        assert!(sql.contains("SET ROLE ehs;"), "the owner creates the table: {sql}");

        let initdb = cluster_of(&platform).spec.bootstrap.initdb;
        let refs = &initdb.post_init_application_sql_refs.config_map_refs;
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].name, config_map.name());
        assert_eq!(refs[0].key, SCHEMA_KEY);
        assert_eq!(initdb.owner, initdb.database);
    }

    #[test]
    fn connection_names_the_read_write_service_and_the_owner_secret() {
        let mut platform = platform("prod");
        let connection = platform.timescaledb.connection();
        assert_eq!(connection.service, "timescaledb-rw");
        assert_eq!(connection.port, 5432);
        assert_eq!(connection.database, "ehs");
        assert_eq!(connection.credentials_secret, "timescaledb-app");
        assert_eq!(
            connection.jdbc_url(&platform.environment.namespace),
            "jdbc:postgresql://timescaledb-rw.ehs-prod.svc:5432/ehs"
        );
        assert!(cluster_of(&platform).spec.bootstrap.initdb.secret.is_none());

        platform.timescaledb.owner_secret = Some("db-owner".into());
        assert_eq!(platform.timescaledb.connection().credentials_secret, "db-owner");
        let secret = cluster_of(&platform).spec.bootstrap.initdb.secret;
        assert_eq!(secret.map(|s| s.name).as_deref(), Some("db-owner"));
    }

    #[test]
    fn committed_environments_have_no_timescaledb_findings() {
        for env in ["dev", "prod"] {
            let findings = findings(&platform(env));
            assert!(
                !findings.iter().any(|f| f.contains("timescaledb")),
                "{env}: {findings:#?}"
            );
        }
    }

    #[test]
    fn more_synchronous_standbys_than_standbys_is_a_finding() {
        let mut platform = platform("dev");
        platform.timescaledb.synchronous_replication.standbys = 1;
        let findings = findings(&platform);
        assert!(
            findings.contains(
                &"environment: timescaledb.synchronousReplication.standbys: 1 synchronous \
                  standby(s) need more than 1 instance(s); use at most 0"
                    .to_owned()
            ),
            "{findings:#?}"
        );
    }

    #[test]
    fn production_needs_standbys_and_synchronous_commits() {
        let mut platform = platform("prod");
        platform.timescaledb.synchronous_replication.standbys = 0;
        let problems = platform.timescaledb.problems(true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "synchronousReplication.standbys");

        platform.timescaledb.instances = serde_json::from_value(serde_json::json!(1)).unwrap();
        let problems = platform.timescaledb.problems(true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "instances");
        assert!(platform.timescaledb.problems(false).is_empty());
    }

    #[test]
    fn extension_built_for_another_postgres_major_is_a_finding() {
        let mut settings = platform("dev").timescaledb;
        settings.image.tag = "17.6-minimal-trixie".into();
        let problems = settings.problems(false);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "extensionImage.tag");
        assert!(problems[0].1.contains("PostgreSQL 18"), "{}", problems[0].1);
        assert!(problems[0].1.contains("PostgreSQL 17"), "{}", problems[0].1);

        settings.image.tag = "latest".into();
        let problems = settings.problems(false);
        assert_eq!(problems[0].0, "image.tag");
        assert!(problems[0].1.contains("`18-minimal-trixie`"), "{}", problems[0].1);
    }

    #[test]
    fn an_owner_secret_must_be_provided_externally() {
        let mut platform = platform("dev");
        platform.timescaledb.owner_secret = Some("db-owner".into());
        let findings = findings(&platform);
        assert!(
            findings.contains(
                &"timescaledb/Cluster/timescaledb: spec.bootstrap.initdb.secret.name: Secret \
                  `db-owner` does not exist in namespace `ehs-dev`: render it in this \
                  environment or declare it as provided externally"
                    .to_owned()
            ),
            "{findings:#?}"
        );
    }

    #[test]
    fn a_storage_class_nobody_provides_is_a_finding() {
        let mut platform = platform("dev");
        platform.storage.provisioner = crate::components::storage::Provisioner::None;
        platform.storage.class_name = "fast-ssd".into();
        let findings = findings(&platform);
        assert!(
            findings.iter().any(|f| f.starts_with(
                "timescaledb/Cluster/timescaledb: spec.storage.storageClass: StorageClass \
                 `fast-ssd` does not exist"
            )),
            "{findings:#?}"
        );
    }

    #[test]
    fn database_names_that_need_quoting_are_rejected_with_file_line_and_column() {
        let error = crate::load::parse_yaml::<crate::model::Environment>(
            "environments/x.yaml",
            "namespace: x\ndomain: x.y\ntimescaledb:\n  database: Ehs-Data\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("environments/x.yaml:4:13: `Ehs-Data` is not a valid PostgreSQL name"),
            "{error}"
        );
    }

    #[test]
    fn the_cluster_passes_its_own_schema_check_and_an_unknown_field_fails_it() {
        let platform = platform("prod");
        let mut objects = crate::components::build_all(&platform, &templates()).unwrap();
        assert!(validate(&objects, &platform).is_empty());
        let cluster = objects
            .iter_mut()
            .find(|o| o.kind() == "Cluster")
            .expect("Cluster");
        cluster.value["spec"]["postgresql"]["synchronus"] = serde_json::json!({});
        let findings = validate(&objects, &platform);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].field, "spec.postgresql.synchronus");
        assert!(findings[0].reason.contains("did you mean `synchronous`"), "{}", findings[0].reason);
    }
}
