//! The world `ehs validate`'s tests check: what the real compiler builds from the committed
//! environments and defaults. Tests break one thing at a time and expect exactly its finding.

use serde_json::{json, Value};

use super::{Finding, Report};
use crate::components;
use crate::manifest::Manifest;
use crate::resolve::tests::{platform, templates};
use crate::resolve::Platform;

/// The committed environment `name`, resolved, and every object the components build for it.
pub(crate) fn built(name: &str) -> (Platform, Vec<Manifest>) {
    let platform = platform(name);
    let objects = components::build_all(&platform, &templates()).unwrap();
    (platform, objects)
}

/// Production's objects with the value at JSON `pointer` of `kind`/`name` replaced.
pub(crate) fn changed(kind: &str, name: &str, pointer: &str, value: Value) -> Vec<Manifest> {
    let (_, mut objects) = built("prod");
    set(&mut objects, kind, name, pointer, value);
    objects
}

fn target<'a>(objects: &'a mut [Manifest], kind: &str, name: &str) -> &'a mut Manifest {
    let found = objects
        .iter_mut()
        .find(|manifest| manifest.kind() == kind && manifest.name() == name);
    match found {
        Some(target) => target,
        None => panic!("the compiler builds no {kind}/{name}"),
    }
}

/// Sets the value at JSON `pointer` inside the object of `kind` named `name`, creating missing
/// objects along the way.
pub(crate) fn set(objects: &mut [Manifest], kind: &str, name: &str, pointer: &str, value: Value) {
    let mut current = &mut target(objects, kind, name).value;
    for key in pointer.split('/').skip(1) {
        let key = unescape(key);
        current = match current {
            Value::Array(items) => match key.parse::<usize>().ok() {
                Some(index) if index == items.len() => {
                    items.push(Value::Null);
                    &mut items[index]
                }
                Some(index) if index < items.len() => &mut items[index],
                _ => panic!("no index {key} in {pointer}"),
            },
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                match other.as_object_mut() {
                    Some(map) => map.entry(key).or_insert(Value::Null),
                    None => panic!("cannot descend into {pointer}"),
                }
            }
        };
    }
    *current = value;
}

/// Removes the value at JSON `pointer` inside the object of `kind` named `name`.
pub(crate) fn remove(objects: &mut [Manifest], kind: &str, name: &str, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let key = unescape(key);
    let removed = match target(objects, kind, name).value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&key),
        _ => None,
    };
    assert!(removed.is_some(), "no {pointer} in {kind}/{name}");
}

fn unescape(pointer_segment: &str) -> String {
    pointer_segment.replace("~1", "/").replace("~0", "~")
}

/// What one check reports, as (object, field, reason), sorted.
pub(crate) fn findings_of(
    environment: &str,
    check: impl FnOnce(&mut Report),
) -> Vec<(String, String, String)> {
    let mut report = Report::new(environment);
    check(&mut report);
    triples(report.into_sorted())
}

pub(crate) fn triples(findings: Vec<Finding>) -> Vec<(String, String, String)> {
    findings
        .into_iter()
        .map(|finding| (finding.object, finding.field, finding.reason))
        .collect()
}
