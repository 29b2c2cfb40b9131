//! A rendered Kubernetes object on its way to validation and emission.

use serde_json::Value;

/// One object, already built from typed structs and serialised, with the component it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Component module that produced it, e.g. `kafka`; also its folder under `rendered/<env>/`.
    pub component: String,
    /// The whole object: `apiVersion`, `kind`, `metadata`, ….
    pub value: Value,
}

impl Manifest {
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}
