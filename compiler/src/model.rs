//! What a platform engineer writes: the environment file and the value types its fields use.
//!
//! Every type here checks itself while it is deserialised, so a bad value is reported by the YAML
//! reader with the file, line and column it came from. The same types produce the JSON Schema of
//! environment files (`ehs schema`).
//!
//! Component settings are *layers*: every field is optional, a component's
//! `components/<name>/defaults.yaml` fills them all and an environment overrides a few.
//! `resolve` merges the layers into the complete settings the components build from.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::components;

/// Defines [`Environment`]: its own fields, then one field per registered component.
macro_rules! define_environment {
    ($($component:ident => $key:ident),* $(,)?) => {
        /// One environment, e.g. `environments/prod.yaml`: a namespace and what differs there from the
        /// component defaults.
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        #[schemars(title = "EHS environment")]
        pub struct Environment {
            /// Namespace every object of this environment lives in, e.g. `ehs-prod`.
            pub namespace: DnsLabel,
            /// DNS domain the environment's public endpoints live under, e.g. `energy.example.com`.
            pub domain: DnsSubdomain,
            /// Production environments must meet the high-availability invariants (at least two replicas
            /// of every stateful component, `minInsyncReplicas` below the replication factor).
            #[serde(default)]
            pub production: bool,
            /// Objects the manifests reference that are created outside this repository (a StorageClass,
            /// Secrets holding credentials and keys).
            #[serde(default)]
            pub provided_externally: Vec<ExternalObject>,
            $(
                #[doc = concat!("Overrides of `components/", stringify!($component), "/defaults.yaml`.")]
                #[serde(default)]
                pub $key: Option<components::$component::Layer>,
            )*
        }
    };
}
components::for_each_component!(define_environment);

/// An object referenced by name that this repository does not create.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalObject {
    /// Kubernetes kind, e.g. `Secret`, `StorageClass`, `Service`.
    pub kind: String,
    /// Object name; namespaced kinds are looked up in the environment's namespace.
    pub name: DnsSubdomain,
}

/// A container image. The tag is separate so an environment can pin a version without repeating
/// the repository.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Image")]
pub struct ImageLayer {
    /// Registry and repository, e.g. `docker.io/apache/kafka`.
    pub repository: Option<ImageRepository>,
    /// Version tag, e.g. `4.1.1`.
    pub tag: Option<ImageTag>,
    /// Content digest of that tag, `sha256:<64 hex digits>`; the runtime pulls by digest, so the
    /// tag cannot move under a running platform. An environment that overrides `repository` or
    /// `tag` without a digest drops the default's digest, which belongs to the default's tag.
    pub digest: Option<ImageDigest>,
}

/// CPU and memory requests and limits; any field may be overridden on its own.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Resources")]
pub struct ResourcesLayer {
    /// What the scheduler reserves for the container.
    pub requests: Option<ComputeLayer>,
    /// The most the container may use.
    pub limits: Option<ComputeLayer>,
}

/// An amount of CPU and memory.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Compute")]
pub struct ComputeLayer {
    /// CPU, e.g. `500m` or `2`.
    pub cpu: Option<Quantity>,
    /// Memory, e.g. `512Mi` or `4Gi`.
    pub memory: Option<Quantity>,
}

/// A resolved container image.
#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub repository: ImageRepository,
    pub tag: ImageTag,
    #[serde(default)]
    pub digest: Option<ImageDigest>,
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)?;
        match &self.digest {
            Some(digest) => write!(f, "@{digest}"),
            None => Ok(()),
        }
    }
}

/// Resolved requests and limits.
#[derive(Debug, Clone, Deserialize)]
pub struct Resources {
    pub requests: Compute,
    pub limits: Compute,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Compute {
    pub cpu: Quantity,
    pub memory: Quantity,
}

/// Reads a string and checks it; the error text becomes part of a `file:line:column` message.
fn checked_string<'de, D, T>(
    deserializer: D,
    check: impl FnOnce(&str) -> Result<(), String>,
    wrap: impl FnOnce(String) -> T,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    check(&text).map_err(serde::de::Error::custom)?;
    Ok(wrap(text))
}

/// Declares a string newtype that validates itself on deserialisation.
macro_rules! checked_string_type {
    ($(#[doc = $doc:literal])* $name:ident, $check:path, $schema_pattern:expr) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                checked_string(deserializer, $check, $name)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let description = [$($doc),*].map(str::trim).join(" ");
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $schema_pattern,
                    "description": description,
                })
            }
        }

        #[cfg(test)]
        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }
    };
}

const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
const DNS_SUBDOMAIN_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const TOPIC_NAME_PATTERN: &str = "^[a-zA-Z0-9._-]{1,249}$";

/// A registry host name component (`docker.io`, `localhost`), upper case allowed.
macro_rules! host_label {
    () => {
        "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
    };
}
/// A path component of an image repository: lower case, separators only between alphanumerics.
macro_rules! path_component {
    () => {
        "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*"
    };
}
/// Editors' approximation of [`check_image_repository`] (which also limits the length). The
/// first component is a registry exactly when it holds `.` or `:` or is `localhost`, as container
/// runtimes read it.
const IMAGE_REPOSITORY_PATTERN: &str = concat!(
    "^(((?=[^/]*[.:])",
    host_label!(),
    "(\\.",
    host_label!(),
    ")*(:[0-9]+)?|localhost)/|(?![^/]*[.:][^/]*/)(?!localhost/))",
    path_component!(),
    "(/",
    path_component!(),
    ")*$"
);
const IMAGE_TAG_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";
const IMAGE_DIGEST_PATTERN: &str = "^sha256:[0-9a-f]{64}$";
const POD_SECURITY_VERSION_PATTERN: &str = "^(latest|v1\\.(0|[1-9][0-9]{0,2}))$";

checked_string_type!(
    /// An image repository in the OCI distribution reference grammar: an optional registry
    /// (`host[:port]`, holding `.` or `:`, or `localhost`) and `/`-separated path components of
    /// lowercase letters and digits joined by `.`, `_`, `__` or dashes; e.g.
    /// `docker.io/apache/kafka`.
    ImageRepository,
    check_image_repository,
    IMAGE_REPOSITORY_PATTERN
);

checked_string_type!(
    /// An image tag: 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`;
    /// e.g. `4.1.1`.
    ImageTag,
    check_image_tag,
    IMAGE_TAG_PATTERN
);

checked_string_type!(
    /// An image content digest: `sha256:` and 64 lowercase hex digits.
    ImageDigest,
    check_image_digest,
    IMAGE_DIGEST_PATTERN
);

checked_string_type!(
    /// A Pod Security Standard version: `latest` or a Kubernetes minor version `v1.<minor>`,
    /// e.g. `v1.35`.
    PodSecurityVersion,
    check_pod_security_version,
    POD_SECURITY_VERSION_PATTERN
);

checked_string_type!(
    /// A DNS-1123 label (RFC 1123): lowercase letters, digits and `-`, at most 63 characters,
    /// starting and ending with a letter or digit. Namespaces and most object names.
    DnsLabel,
    check_dns_label,
    DNS_LABEL_PATTERN
);

checked_string_type!(
    /// A DNS-1123 subdomain: dot-separated DNS labels, at most 253 characters.
    DnsSubdomain,
    check_dns_subdomain,
    DNS_SUBDOMAIN_PATTERN
);

checked_string_type!(
    /// A Kubernetes resource quantity: a number with an optional suffix, binary (`Ki`, `Mi`,
    /// `Gi`, `Ti`, `Pi`, `Ei`), decimal (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or an
    /// exponent (`e3`); e.g. `500m`, `2`, `512Mi`, `10Gi`.
    Quantity,
    check_quantity,
    crate::quantity::PATTERN
);

checked_string_type!(
    /// A Kafka topic name: 1 to 249 characters from `a-z A-Z 0-9 . _ -`.
    TopicName,
    check_topic_name,
    TOPIC_NAME_PATTERN
);

checked_string_type!(
    /// A PostgreSQL identifier that needs no quoting: a lowercase letter or `_`, then lowercase
    /// letters, digits or `_`, at most 63 characters; e.g. `ehs`.
    SqlIdentifier,
    check_sql_identifier,
    SQL_IDENTIFIER_PATTERN
);

const SQL_IDENTIFIER_PATTERN: &str = "^[a-z_][a-z0-9_]{0,62}$";

fn check_sql_identifier(text: &str) -> Result<(), String> {
    let mut bytes = text.bytes();
    let valid = text.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid PostgreSQL name here: use 1 to 63 lowercase letters, digits \
             or `_`, starting with a letter or `_` (e.g. `ehs`)"
        ))
    }
}

pub fn check_dns_label(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid DNS label: use 1 to 63 lowercase letters, digits or `-`, \
             starting and ending with a letter or digit (e.g. `ehs-prod`)"
        ))
    }
}

fn check_dns_subdomain(text: &str) -> Result<(), String> {
    let valid = text.len() <= 253 && text.split('.').all(|label| check_dns_label(label).is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid DNS subdomain: use dot-separated labels of lowercase \
             letters, digits or `-`, at most 253 characters (e.g. `energy.example.com`)"
        ))
    }
}

/// Longest repository name container runtimes accept.
const IMAGE_REPOSITORY_MAX: usize = 255;

fn check_image_repository(text: &str) -> Result<(), String> {
    let (registry, path) = match text.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, text),
    };
    let valid = text.len() <= IMAGE_REPOSITORY_MAX
        && registry.is_none_or(is_registry)
        && path.split('/').all(is_path_component);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid image repository: use an optional registry (`host[:port]/`) \
             and `/`-separated parts of lowercase letters and digits joined by `.`, `_`, `__` or \
             `-`, at most {IMAGE_REPOSITORY_MAX} characters, without the tag (e.g. \
             `docker.io/apache/kafka`)"
        ))
    }
}

fn is_registry(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let is_label = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        && host.split('.').all(is_label)
}

fn is_path_component(text: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    // Every run of separators must be `.`, `_`, `__` or any number of `-`.
    text.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .all(|separator| {
            matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

fn check_image_digest(text: &str) -> Result<(), String> {
    let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not an image digest: use `sha256:` and 64 lowercase hex digits, as the \
             registry reports it"
        ))
    }
}

fn check_image_tag(text: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = text.len() <= 128
        && text.bytes().next().is_some_and(word)
        && text.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid image tag: use 1 to 128 letters, digits, `_`, `.` or `-`, \
             not starting with `.` or `-` (e.g. `4.1.1`)"
        ))
    }
}

fn check_pod_security_version(text: &str) -> Result<(), String> {
    let minor = text.strip_prefix("v1.").unwrap_or_default();
    let valid = text == "latest"
        || (matches!(minor.len(), 1..=3)
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || !minor.starts_with('0')));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid Pod Security Standard version: use `latest` or a Kubernetes \
             minor version `v1.<minor>` (e.g. `v1.35`)"
        ))
    }
}

fn check_topic_name(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 249
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid Kafka topic name: use 1 to 249 characters from \
             `a-z A-Z 0-9 . _ -` (e.g. `ehs.telemetry.raw`)"
        ))
    }
}

fn check_quantity(text: &str) -> Result<(), String> {
    crate::quantity::Quantity::parse(text)
        .map(|_| ())
        .map_err(|_| {
            format!(
                "`{text}` is not a valid quantity: use a number with an optional suffix, binary \
             (Ki, Mi, Gi, Ti, Pi, Ei), decimal (m, k, M, G, T, P, E) or an exponent (e3), \
             e.g. `500m`, `512Mi`, `10Gi`"
            )
        })
}

impl Quantity {
    /// Whole base units (bytes for memory, cores for CPU).
    pub fn whole_units(&self) -> i128 {
        // Only validated text reaches a `Quantity`, so parsing cannot fail here.
        crate::quantity::Quantity::parse(&self.0).map_or(0, |q| q.whole_units())
    }

    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.0.clone())
    }
}

/// A count that must be at least one: replicas, partitions, replication factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Count(u32);

impl Count {
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

/// Accepts any scalar so that a negative number or a word gets a message saying what is valid
/// instead of the reader's "invalid u32".
struct CountVisitor;

impl CountVisitor {
    fn invalid<E: serde::de::Error>(got: impl fmt::Display) -> E {
        E::custom(format!(
            "{got} is not a valid count: use a whole number from 1 to {}",
            u32::MAX
        ))
    }
}

impl serde::de::Visitor<'_> for CountVisitor {
    type Value = Count;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "a whole number from 1 to {}", u32::MAX)
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Count, E> {
        match u32::try_from(number) {
            Ok(count) if count >= 1 => Ok(Count(count)),
            _ => Err(Self::invalid(number)),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Count, E> {
        match u64::try_from(number) {
            Ok(number) => self.visit_u64(number),
            Err(_) => Err(Self::invalid(number)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Count, E> {
        Err(Self::invalid(number))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Count, E> {
        Err(Self::invalid(format_args!("`{text}`")))
    }

    fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<Count, E> {
        Err(Self::invalid(flag))
    }
}

impl JsonSchema for Count {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Count".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 1,
            "maximum": u32::MAX,
            "description": "A whole number, at least 1.",
        })
    }
}

#[cfg(test)]
impl From<u32> for Count {
    fn from(count: u32) -> Self {
        Count(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for valid in ["1", "500m", "0.5", "10Gi", "1e3", "2E-2", ".5", "+1k"] {
            assert!(check_quantity(valid).is_ok(), "{valid}");
        }
        for invalid in ["10Gx", "", "Gi", "1.2.3", "10 Gi", "1e", "10gi", "."] {
            assert!(check_quantity(invalid).is_err(), "{invalid}");
        }
        let quantity = |text: &str| -> Quantity { serde_json::from_value(text.into()).unwrap() };
        assert_eq!(quantity("2Gi").whole_units(), 2 * 1024 * 1024 * 1024);
        assert_eq!(quantity("1500m").whole_units(), 1);
    }

    #[test]
    fn image_references_follow_the_oci_grammar_and_the_schema_agrees() {
        let repositories = [
            ("docker.io/apache/kafka", true),
            ("apache/kafka", true),
            ("kafka", true),
            ("localhost/ehs-bridge", true),
            ("localhost:5000/ehs/bridge", true),
            ("registry.example.com:443/a/b", true),
            ("Registry.Example.com/a", true),
            ("ghcr.io/a__b/c.d/e--f_g", true),
            ("a.b", true),
            ("", false),
            (":", false),
            ("docker.io/apache kafka", false),
            ("Apache/kafka", false),
            ("docker.io/Apache/kafka", false),
            ("docker.io/apache/kafka:4.1.1", false),
            ("a_b.c/x", false),
            ("a:b/c", false),
            ("a.b:/c", false),
            ("-a.b/c", false),
            ("a..b/c", false),
            ("a/b/", false),
            ("a//b", false),
            ("a/.b", false),
            ("a/b.", false),
            ("a/b___c", false),
            ("a/b._c", false),
        ];
        let tags = [
            ("4.1.1", true),
            ("latest", true),
            ("_x", true),
            ("V1-rc.2", true),
            (&*"a".repeat(128), true),
            (&*"a".repeat(129), false),
            ("", false),
            (".x", false),
            ("-x", false),
            ("a:b", false),
            ("a b", false),
            ("a@sha256", false),
        ];
        let versions = [
            ("latest", true),
            ("v1.35", true),
            ("v1.0", true),
            ("v1.", false),
            ("v1.035", false),
            ("1.35", false),
            ("v2.1", false),
            ("v1.35 ", false),
            ("Latest", false),
            ("v1.1000", false),
        ];
        fn agree<T: JsonSchema>(check: fn(&str) -> Result<(), String>, samples: &[(&str, bool)]) {
            let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            for (sample, valid) in samples {
                assert_eq!(check(sample).is_ok(), *valid, "{sample:?}");
                assert_eq!(
                    validator.is_valid(&serde_json::json!(sample)),
                    *valid,
                    "schema: {sample:?}"
                );
            }
        }
        agree::<ImageRepository>(check_image_repository, &repositories);
        agree::<ImageTag>(check_image_tag, &tags);
        agree::<PodSecurityVersion>(check_pod_security_version, &versions);
        assert!(check_image_repository(&format!("a/{}", "b".repeat(254))).is_err());
    }

    #[test]
    fn dns_names() {
        assert!(check_dns_label("ehs-prod").is_ok());
        for invalid in ["", "EHS", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_dns_label(invalid).is_err(), "{invalid}");
        }
        assert!(check_dns_subdomain("energy.example.com").is_ok());
        assert!(check_dns_subdomain("energy..com").is_err());
    }
}
