//! Field paths in findings, written the way `kubectl explain` reads them:
//! `spec.template.spec.containers[0].resources`, `metadata.labels["app.kubernetes.io/name"]`.

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses a dotted path made only of plain keys, e.g. `spec.template`.
    pub fn of(dotted: &str) -> Self {
        dotted
            .split('.')
            .filter(|key| !key.is_empty())
            .fold(Self::root(), |path, key| path.key(key))
    }

    pub fn key(&self, key: &str) -> Self {
        let mut text = self.0.clone();
        if is_plain_key(key) {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(key);
        } else {
            // Keys such as label names contain dots and slashes; quoting keeps the path unambiguous.
            text.push_str(&format!("[{key:?}]"));
        }
        Self(text)
    }

    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(object)")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_indexes_read_like_kubectl_explain() {
        let path = FieldPath::of("spec.template.spec")
            .key("containers")
            .index(0)
            .key("resources");
        assert_eq!(
            path.to_string(),
            "spec.template.spec.containers[0].resources"
        );
    }

    #[test]
    fn keys_with_dots_or_slashes_are_quoted() {
        let path = FieldPath::of("metadata.labels").key("app.kubernetes.io/name");
        assert_eq!(
            path.to_string(),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
    }

    #[test]
    fn the_whole_object_has_a_readable_name() {
        assert_eq!(FieldPath::root().to_string(), "(object)");
    }
}
