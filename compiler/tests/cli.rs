//! End-to-end tests of the `ehs` binary. Each test works on a temporary copy of the repository's
//! inputs and committed `rendered/`, so the real checkout is never written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use assert_cmd::prelude::OutputAssertExt;
use predicates::prelude::*;

const EXIT_FINDINGS: i32 = 1;
const EXIT_ERROR: i32 = 2;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch copy of `environments/`, `components/` and `rendered/`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["environments", "components", "rendered"] {
            copy_tree(&repo_root().join(sub), &dir.path().join(sub));
        }
        Scratch { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn ehs(&self) -> assert_cmd::Command {
        let mut command = cargo_bin_cmd!("ehs");
        command.arg("--root").arg(self.root());
        command
    }

    /// The binary as a plain process, for tests that choose its standard streams themselves.
    fn ehs_process(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ehs"));
        command.arg("--root").arg(self.root());
        command
    }

    /// Replaces the first occurrence of `from` in an input file.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.root().join(file);
        let text = fs::read_to_string(&path).expect("read input");
        assert!(text.contains(from), "{file} does not contain {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).expect("write input");
    }

    /// The one-line change of `environments/prod.yaml` the diff tests review.
    fn set_bridge_replicas(&self, replicas: u32) {
        let to = format!("bridge:\n  replicas: {replicas}");
        self.edit("environments/prod.yaml", "bridge:\n  replicas: 3", &to);
    }

    /// Runs `ehs <args>` and expects it to refuse: exit 2 with `expected` on standard error.
    fn refuses(&self, args: &[&str], expected: &str) {
        self.ehs()
            .args(args)
            .assert()
            .code(EXIT_ERROR)
            .stderr(predicate::str::contains(expected));
    }

    fn rendered(&self) -> BTreeMap<String, Vec<u8>> {
        read_tree(&self.root().join("rendered"))
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .display()
                    .to_string();
                files.insert(relative, fs::read(&path).expect("read"));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

/// Each class of bad input: exit 2, a message naming file:line:column and what is valid, and
/// `rendered/` left exactly as it was.
#[test]
fn bad_inputs_name_file_line_and_column_and_write_nothing() {
    let cases = [
        (
            "unknown key",
            "  replicas: 3",
            "  replcas: 3",
            "environments/prod.yaml:18:3: unknown field `replcas`, expected one of replicas",
        ),
        (
            "wrong type",
            "production: true",
            "production: maybe",
            "environments/prod.yaml:6:13: invalid boolean: use `true` or `false`",
        ),
        (
            "wrong type (count)",
            "  replicas: 3",
            "  replicas: three",
            "environments/prod.yaml:18:13: `three` is not a valid count",
        ),
        (
            "invalid quantity",
            "    size: 50Gi",
            "    size: 10Gx",
            "environments/prod.yaml:27:11: `10Gx` is not a valid quantity",
        ),
        (
            "unknown component key",
            "kafka:\n  replicas: 3",
            "kafak:\n  replicas: 3",
            "environments/prod.yaml:17:1: unknown field `kafak`, expected one of namespace, \
             domain, production, providedExternally, namespaceSettings, storage, kafka, hivemq, timescaledb, bridge, \
             connect, exposure, certificates",
        ),
        (
            "invalid DNS name",
            "namespace: ehs-prod",
            "namespace: EHS_Prod",
            "environments/prod.yaml:4:12: `EHS_Prod` is not a valid DNS label",
        ),
        (
            "negative replicas",
            "  replicas: 3",
            "  replicas: -1",
            "environments/prod.yaml:18:13: -1 is not a valid count: use a whole number from 1",
        ),
        (
            "image repository `:`",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    repository: \":\"\n  replicas: 3",
            "environments/prod.yaml:19:17: `:` is not a valid image repository: use an optional \
             registry (`host[:port]/`)",
        ),
        (
            "image repository with a space",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    repository: docker.io/apache kafka\n  replicas: 3",
            "environments/prod.yaml:19:17: `docker.io/apache kafka` is not a valid image repository",
        ),
        (
            "empty image repository",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    repository: \"\"\n  replicas: 3",
            "environments/prod.yaml:19:17: `` is not a valid image repository",
        ),
        (
            "upper case in the image repository",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    repository: Apache/kafka\n  replicas: 3",
            "environments/prod.yaml:19:17: `Apache/kafka` is not a valid image repository",
        ),
        (
            "image tag",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    tag: 4.1.1:latest\n  replicas: 3",
            "environments/prod.yaml:19:10: `4.1.1:latest` is not a valid image tag: use 1 to 128 \
             letters, digits, `_`, `.` or `-`",
        ),
        (
            "empty image tag",
            "kafka:\n  replicas: 3",
            "kafka:\n  image:\n    tag: \"\"\n  replicas: 3",
            "environments/prod.yaml:19:10: `` is not a valid image tag",
        ),
        (
            "pod security version",
            "production: true\n",
            "production: true\nnamespaceSettings:\n  podSecurityVersion: \"1.35\"\n",
            "environments/prod.yaml:8:23: `1.35` is not a valid Pod Security Standard version: \
             use `latest` or a Kubernetes minor version `v1.<minor>` (e.g. `v1.35`)",
        ),
    ];
    for (class, from, to, expected) in cases {
        let scratch = Scratch::new();
        let before = scratch.rendered();
        scratch.edit("environments/prod.yaml", from, to);
        for args in [
            &["render", "--env", "prod"][..],
            &["render", "--all"],
            &["validate"],
            &["diff", "--env", "prod"],
        ] {
            scratch
                .ehs()
                .args(args)
                .assert()
                .code(EXIT_ERROR)
                .stderr(predicate::str::contains(expected))
                .stdout(predicate::str::is_empty());
        }
        assert!(scratch.rendered() == before, "{class}: rendered/ changed");
    }
}

#[test]
fn bad_component_defaults_are_reported_in_the_defaults_file() {
    let cases = [
        (
            "components/kafka/defaults.yaml",
            "  memory: 256Mi",
            "  memory: lots",
            "components/kafka/defaults.yaml:15:13: `lots` is not a valid quantity",
        ),
        (
            "components/upstream.yaml",
            "    version: v1.21.1",
            "    version: latest",
            "components/upstream.yaml: prerequisites.certManager: `version` must be one exact \
             release",
        ),
        (
            "components/kafka/defaults.yaml",
            "replicas: 1",
            "replicas: 1\nimage:\n  tag: 4.1.0",
            "components/upstream.yaml: images.`kafka.image`: also set in \
             `components/kafka/defaults.yaml`",
        ),
        (
            "components/hivemq/defaults.yaml",
            "replicas: 1",
            "replicas: 0",
            "components/hivemq/defaults.yaml:8:11: 0 is not a valid count: use a whole number from 1",
        ),
    ];
    for (file, from, to, expected) in cases {
        let scratch = Scratch::new();
        let before = scratch.rendered();
        scratch.edit(file, from, to);
        scratch
            .ehs()
            .arg("render")
            .assert()
            .code(EXIT_ERROR)
            .stderr(predicate::str::contains(expected));
        assert!(scratch.rendered() == before, "{file}: rendered/ changed");
    }
}

#[test]
fn every_component_needs_its_defaults_file() {
    for component in ["namespace", "kafka", "hivemq", "bridge"] {
        let scratch = Scratch::new();
        let before = scratch.rendered();
        let defaults = format!("components/{component}/defaults.yaml");
        fs::remove_file(scratch.root().join(&defaults)).unwrap();
        scratch
            .ehs()
            .arg("render")
            .assert()
            .code(EXIT_ERROR)
            .stderr(predicate::str::contains(format!(
                "error: {defaults}: cannot read"
            )));
        assert!(
            scratch.rendered() == before,
            "{component}: rendered/ changed"
        );
    }
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    Scratch::new()
        .ehs()
        .args(["render", "--env", "staging"])
        .assert()
        .code(EXIT_ERROR)
        .stderr(predicate::str::contains(
            "no environment `staging`; available: dev, prod",
        ));
}

/// The committed `rendered/` is the golden output: a fresh render must reproduce it byte for byte.
#[test]
fn committed_rendered_tree_is_what_a_fresh_render_produces() {
    let scratch = Scratch::new();
    let committed = scratch.rendered();
    scratch.ehs().args(["render", "--all"]).assert().success();
    let fresh = scratch.rendered();
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>()
    );
    for (path, content) in &committed {
        assert!(
            fresh[path] == *content,
            "{path} differs from a fresh render: run `ehs render`"
        );
    }
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let scratch = Scratch::new();
    scratch.ehs().arg("render").assert().success();
    let first = scratch.rendered();
    scratch.ehs().arg("render").assert().success();
    assert!(first == scratch.rendered());
}

#[test]
fn check_passes_on_the_committed_tree_and_fails_with_a_diff_when_stale() {
    let scratch = Scratch::new();
    scratch.ehs().args(["render", "--check"]).assert().success();

    scratch.edit(
        "environments/prod.yaml",
        "bridge:\n  replicas: 3",
        "bridge:\n  replicas: 5",
    );
    let before = scratch.rendered();
    scratch
        .ehs()
        .args(["render", "--check"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "prod: 0 added, 1 changed, 0 removed\n  changed  StatefulSet ehs-prod/ehs-bridge  (spec.replicas)\n",
        ))
        .stdout(predicate::str::contains("-  replicas: 3\n+  replicas: 5\n"))
        .stderr(predicate::str::contains("rendered/ is stale"));
    assert!(scratch.rendered() == before, "--check must not write");
}

#[test]
fn files_no_longer_produced_are_removed() {
    let scratch = Scratch::new();
    let rendered = scratch.root().join("rendered");
    fs::write(
        rendered.join("prod/kafka/configmap-retired.yaml"),
        "kind: ConfigMap\n",
    )
    .unwrap();
    copy_tree(&rendered.join("dev"), &rendered.join("retired-env"));
    scratch
        .ehs()
        .args(["render", "--check"])
        .assert()
        .code(EXIT_FINDINGS);
    scratch.ehs().arg("render").assert().success();
    assert!(!rendered.join("prod/kafka/configmap-retired.yaml").exists());
    assert!(!rendered.join("retired-env").exists());
    scratch.ehs().args(["render", "--check"]).assert().success();
}

/// A warning is printed but fails `validate` and `render` only with `--deny-warnings`.
#[test]
fn a_hivemq_queue_below_the_outage_backlog_is_a_warning_in_production() {
    let scratch = Scratch::new();
    scratch.edit(
        "environments/prod.yaml",
        "    maxQueueSize: 10000000",
        "    maxQueueSize: 1000",
    );
    let warning = "prod: environment: hivemq.queue.maxQueueSize: warning: 1000 messages cannot \
                   hold a 1800-second Kafka outage at 5000 messages/s (9000000 messages)";
    scratch
        .ehs()
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains(warning))
        .stdout(predicate::str::contains("dev:").not());
    scratch
        .ehs()
        .args(["validate", "--deny-warnings"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(warning));
    let before = scratch.rendered();
    scratch
        .ehs()
        .args(["render", "--deny-warnings"])
        .assert()
        .code(EXIT_FINDINGS)
        .stderr(predicate::str::contains("nothing written"));
    assert_eq!(scratch.rendered(), before);
    scratch
        .ehs()
        .arg("render")
        .assert()
        .success()
        .stdout(predicate::str::contains(warning));
    assert_ne!(scratch.rendered(), before);
    scratch.ehs().args(["render", "--check"]).assert().success();
    scratch
        .ehs()
        .args(["render", "--check", "--deny-warnings"])
        .assert()
        .code(EXIT_FINDINGS);
}

#[test]
fn validation_findings_fail_render_without_writing() {
    let scratch = Scratch::new();
    let before = scratch.rendered();
    scratch.edit(
        "environments/prod.yaml",
        "      partitions: 12\n",
        "      partitions: 12\n      replicationFactor: 5\n",
    );
    scratch
        .ehs()
        .arg("validate")
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "prod: environment: kafka.topics[\"ehs.telemetry.raw\"].replicationFactor: \
             replication factor 5 exceeds the 3 broker(s)",
        ));
    scratch
        .ehs()
        .arg("render")
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains("replicationFactor"))
        .stderr(predicate::str::contains("nothing written"));
    assert!(scratch.rendered() == before);
}

/// A multi-environment render that fails part-way leaves every environment as it was: here dev
/// would change, and prod's staging directory cannot be created (a file holds its name).
#[test]
fn a_failed_render_writes_no_environment() {
    let scratch = Scratch::new();
    scratch.edit(
        "environments/dev.yaml",
        "bridge:\n  config:",
        "bridge:\n  replicas: 2\n  config:",
    );
    let rendered = scratch.root().join("rendered");
    fs::write(rendered.join(".prod.staging"), "in the way\n").unwrap();
    let before = scratch.rendered();
    scratch
        .ehs()
        .args(["render", "--all"])
        .assert()
        .code(EXIT_ERROR)
        .stderr(predicate::str::contains(
            "rendered/.prod.staging: cannot remove",
        ));
    assert!(scratch.rendered() == before, "rendered/ changed");

    // Without the obstacle the same render goes through, so the failure above was prod's alone.
    fs::remove_file(rendered.join(".prod.staging")).unwrap();
    scratch.ehs().args(["render", "--all"]).assert().success();
    assert!(scratch.rendered() != before);
}

/// An environment's name becomes a directory and part of every file's header: anything but a
/// DNS label is refused before anything is written, and the message says what is valid.
#[test]
fn environment_file_names_must_be_dns_labels() {
    for (name, shown) in [
        ("a\nb", "environments/a\\nb.yaml"),
        (".", "environments/..yaml"),
        ("..", "environments/...yaml"),
        ("Prod", "environments/Prod.yaml"),
        ("prod copy", "environments/prod copy.yaml"),
    ] {
        let scratch = Scratch::new();
        fs::copy(
            scratch.root().join("environments/dev.yaml"),
            scratch.root().join(format!("environments/{name}.yaml")),
        )
        .unwrap();
        let before = scratch.rendered();
        let expected = format!(
            "error: {shown}: `{}` is not a valid DNS label: use 1 to 63 lowercase letters, \
             digits or `-`, starting and ending with a letter or digit (e.g. `ehs-prod`); an \
             environment file is named `<name>.yaml` where <name> is a DNS label",
            &shown["environments/".len()..shown.len() - ".yaml".len()]
        );
        for args in [&["render"][..], &["validate"], &["render", "--check"]] {
            scratch.refuses(args, &expected);
        }
        scratch.refuses(&["render", "--env", name], shown);
        assert!(scratch.rendered() == before, "{name:?}: rendered/ changed");
    }
}

#[test]
fn two_environments_may_not_share_a_namespace() {
    let scratch = Scratch::new();
    let before = scratch.rendered();
    fs::write(
        scratch.root().join("environments/staging.yaml"),
        "# yaml-language-server: $schema=./environment.schema.json\n\
         domain: staging.example.com\n\
         namespace: ehs-dev\n",
    )
    .unwrap();
    for args in [&["render"][..], &["validate"]] {
        scratch.refuses(
            args,
            "error: environments/staging.yaml:3:12: namespace `ehs-dev` is already the \
             namespace of environments/dev.yaml; give every environment a namespace of its own",
        );
    }
    assert!(scratch.rendered() == before);
}

/// One run reports everything: prod's load error does not hide dev's findings.
#[test]
fn every_environment_is_reported_in_one_run() {
    let scratch = Scratch::new();
    let before = scratch.rendered();
    scratch.edit("environments/prod.yaml", "  replicas: 3", "  replcas: 3");
    scratch.edit(
        "environments/dev.yaml",
        "bridge:\n  config:",
        "kafka:\n  topics:\n    telemetry:\n      replicationFactor: 2\nbridge:\n  config:",
    );
    for args in [&["validate"][..], &["render"], &["render", "--check"]] {
        scratch
            .ehs()
            .args(args)
            .assert()
            .code(EXIT_ERROR)
            .stdout(predicate::str::contains(
                "dev: environment: kafka.topics[\"ehs.telemetry.raw\"].replicationFactor: \
                 replication factor 2 exceeds the 1 broker(s)",
            ))
            .stderr(predicate::str::contains(
                "error: environments/prod.yaml:18:3: unknown field `replcas`",
            ));
    }
    assert!(scratch.rendered() == before);
}

/// Every file under `dir`, recursively.
fn rendered_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("rendered folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rendered_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn check_fails_on_an_up_to_date_tree_that_is_invalid() {
    let scratch = Scratch::new();
    // A domain this long makes the namespace's annotation line too long to review.
    let domain = format!("{}.example.com", vec!["a".repeat(60); 3].join("."));
    scratch.edit(
        "environments/prod.yaml",
        "domain: energy.example.com",
        &format!("domain: {domain}"),
    );
    scratch.ehs().args(["render"]).assert().code(EXIT_FINDINGS);
    // Bring rendered/ up to date by hand, as a stale commit of a broken render would be.
    for file in rendered_files(&scratch.root().join("rendered/prod")) {
        let text = fs::read_to_string(&file).unwrap();
        // Hosts follow the domain; the ACME contact e-mail is a setting of its own.
        let text = text
            .replace("energy.example.com", &domain)
            .replace(&format!("@{domain}"), "@energy.example.com");
        fs::write(&file, text).unwrap();
    }
    scratch
        .ehs()
        .args(["render", "--check"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "prod: rendered/prod/namespace/namespace-ehs-prod.yaml: line 7: 222 characters, \
             more than the 160 a reviewer can read in a diff",
        ))
        .stdout(predicate::str::contains("would be").not())
        .stderr(predicate::str::contains("validation failed"))
        // A tree brought up to date by hand is a hand edit: its provenance says so.
        .stderr(predicate::str::contains(
            "rendered/prod/: the files differ from the digest their PROVENANCE records",
        ));
}

#[test]
fn diff_usage_names_both_forms_and_errors_print_once() {
    Scratch::new().refuses(
        &["diff"],
        "Usage: ehs diff <--base <REF>|--env <ENV>|<FROM> <TO>>",
    );

    let scratch = Scratch::new();
    scratch.edit("environments/prod.yaml", "    size: 50Gi", "    size: 10Gx");
    let assert = scratch
        .ehs()
        .args(["diff", "--env", "prod"])
        .assert()
        .code(EXIT_ERROR);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr.matches("is not a valid quantity").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("prod.yaml:27:11").count(), 1, "{stderr}");
    // The snippet still shows where.
    assert!(
        stderr.contains("27 |     size: 10Gx\n   |           ^\n"),
        "{stderr}"
    );
}

#[test]
fn diff_exit_codes_and_summary() {
    let scratch = Scratch::new();
    scratch
        .ehs()
        .args(["diff", "--env", "prod"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No differences."));

    scratch.set_bridge_replicas(4);
    scratch
        .ehs()
        .args(["diff", "--env", "prod", "--colour", "never"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::starts_with(
            "ehs diff: committed rendered/ → fresh render\n\nprod: 0 added, 1 changed, 0 removed\n",
        ))
        .stdout(predicate::str::contains(
            "@@ -14,7 +14,7 @@ spec.replicas\n",
        ))
        .stdout(predicate::str::contains("-  replicas: 3\n+  replicas: 4\n"))
        .stdout(predicate::str::contains("\x1b[").not());

    scratch
        .ehs()
        .args(["diff", "--env", "nope"])
        .assert()
        .code(EXIT_ERROR);
}

/// A larger volume is a change the API server refuses for a StatefulSet: refused (exit 2) with
/// the migration path, accepted as a difference (exit 1) once its flag is given.
#[test]
fn diff_refuses_a_volume_claim_template_change_unless_allowed() {
    let scratch = Scratch::new();
    scratch.edit("environments/prod.yaml", "    size: 50Gi", "    size: 80Gi");
    scratch
        .ehs()
        .args(["diff", "--env", "prod", "--colour", "never"])
        .assert()
        .code(EXIT_ERROR)
        .stdout(predicate::str::contains(
            "warning (refused without --allow-volume-claim-change): prod: StatefulSet ehs-prod/kafka: spec.volumeClaimTemplates changed",
        ))
        .stdout(predicate::str::contains("--cascade=orphan"))
        .stdout(predicate::str::contains(
            "-          storage: 50Gi\n+          storage: 80Gi",
        ))
        .stderr(predicate::str::contains("then pass --allow-volume-claim-change"));
    scratch
        .ehs()
        .args(["diff", "--env", "prod", "--allow-volume-claim-change"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "warning (allowed by --allow-volume-claim-change)",
        ));
}

#[test]
fn diff_never_prints_secret_values() {
    let scratch = Scratch::new();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leftover\n  namespace: ehs-prod\nstringData:\n  password: hunter2\n";
    fs::write(
        scratch
            .root()
            .join("rendered/prod/bridge/secret-leftover.yaml"),
        secret,
    )
    .unwrap();
    scratch
        .ehs()
        .args(["diff", "--env", "prod"])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "prod: 0 added, 0 changed, 1 removed\n  removed  Secret ehs-prod/leftover\n",
        ))
        .stdout(predicate::str::contains("-  password: \"<redacted>\""))
        .stdout(predicate::str::contains("hunter2").not());
}

#[test]
fn diff_between_environments_ignores_their_namespaces() {
    let scratch = Scratch::new();
    let assert = scratch
        .ehs()
        .args(["diff", "dev", "prod"])
        .assert()
        .code(EXIT_FINDINGS);
    let output = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        output.contains("-  replicas: 1\n+  replicas: 3\n"),
        "{output}"
    );
    // Namespaces are normalised: the Namespace objects are compared with each other (they differ
    // only in their domain), not reported as one added and one removed.
    assert!(
        output.contains("  changed  Namespace <namespace>  (metadata.annotations"),
        "{output}"
    );
    assert!(
        !output.contains("ehs-dev") && !output.contains("ehs-prod"),
        "{output}"
    );
    scratch.ehs().args(["diff", "dev", "dev"]).assert().code(0);
}

/// A reader that stops early (`ehs diff dev prod | head`) closes the pipe; the command must still
/// end with its own exit code instead of panicking on the failed write.
#[test]
fn a_closed_output_pipe_keeps_the_exit_code() {
    let scratch = Scratch::new();
    let closed_pipe = || {
        // No reader at all, so every write fails with a broken pipe, however fast the command is.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };

    let diff = scratch
        .ehs_process()
        .args(["diff", "dev", "prod"])
        .stdout(closed_pipe())
        .assert()
        .code(EXIT_FINDINGS);
    let stderr = String::from_utf8_lossy(&diff.get_output().stderr).into_owned();
    assert!(stderr.is_empty(), "{stderr}");

    scratch
        .ehs_process()
        .args(["schema"])
        .stdout(closed_pipe())
        .assert()
        .success()
        .stderr(predicate::str::is_empty());

    scratch
        .ehs_process()
        .args(["render", "--check"])
        .stderr(closed_pipe())
        .assert()
        .success();

    scratch
        .ehs_process()
        .args(["diff", "--env", "nope"])
        .stderr(closed_pipe())
        .assert()
        .code(EXIT_ERROR);
}

#[test]
fn committed_schema_is_current() {
    let committed =
        fs::read_to_string(repo_root().join("environments/environment.schema.json")).unwrap();
    cargo_bin_cmd!("ehs")
        .arg("schema")
        .assert()
        .success()
        .stdout(committed);
}

#[test]
fn repository_root_is_found_from_a_subdirectory() {
    let scratch = Scratch::new();
    cargo_bin_cmd!("ehs")
        .current_dir(scratch.root().join("components/kafka"))
        .args(["render", "--check"])
        .assert()
        .success();
}

#[test]
fn every_environment_file_points_editors_at_the_schema() {
    for entry in fs::read_dir(repo_root().join("environments")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=./environment.schema.json\n"),
                "{}",
                path.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge's configuration (ehs-contract's BridgeConfig): what the bridge would refuse at
// start-up is refused before anything is rendered.

/// Exit 2 on every command, naming the environment file, the field and what is valid; nothing
/// written.
fn assert_refused(settings: &str, expected: &[&str]) {
    let scratch = Scratch::new();
    let before = scratch.rendered();
    scratch.edit(
        "environments/prod.yaml",
        "bridge:\n  replicas: 3",
        &format!("bridge:\n{settings}\n  replicas: 3"),
    );
    for args in [
        &["render", "--env", "prod"][..],
        &["render", "--all"],
        &["validate"],
    ] {
        let mut assert = scratch
            .ehs()
            .args(args)
            .assert()
            .code(EXIT_ERROR)
            .stdout(predicate::str::is_empty());
        for text in expected {
            assert = assert.stderr(predicate::str::contains(*text));
        }
    }
    assert!(
        scratch.rendered() == before,
        "{settings}: rendered/ changed"
    );
}

const INVALID_CONFIG: &str =
    "environments/prod.yaml: `bridge.config` (with the defaults of `components/bridge/defaults.yaml`)";

#[test]
fn bridge_log_level_the_bridge_cannot_parse_is_refused() {
    assert_refused(
        "  config:\n    logLevel: \"info,,=x[[\"",
        &[
            INVALID_CONFIG,
            "`logLevel` `info,,=x[[` is not a tracing filter",
            "e.g. `info,rdkafka=warn`",
        ],
    );
}

#[test]
fn bridge_window_smaller_than_receive_maximum_is_refused() {
    assert_refused(
        "  config:\n    mqttReceiveMaximum: 500\n    maxInFlight: 499",
        &[
            INVALID_CONFIG,
            "`maxInFlight` must be at least mqttReceiveMaximum (500), got 499",
        ],
    );
}

#[test]
fn bridge_payload_limit_above_kafkas_record_limit_is_refused() {
    assert_refused(
        "  config:\n    maxPayloadBytes: 1000001",
        &[
            INVALID_CONFIG,
            "`maxPayloadBytes` must be between 1 and 1000000",
        ],
    );
}

#[test]
fn bridge_receive_maximum_zero_is_refused() {
    assert_refused(
        "  config:\n    mqttReceiveMaximum: 0",
        &[
            INVALID_CONFIG,
            "`mqttReceiveMaximum` must be between 1 and 65535, got 0",
        ],
    );
}

#[test]
fn bridge_share_group_with_topic_wildcards_is_refused() {
    assert_refused(
        "  config:\n    mqttShareGroup: a/b+",
        &[
            INVALID_CONFIG,
            "`mqttShareGroup` must be a non-empty name without `/`, `+`, `#`",
        ],
    );
}

#[test]
fn the_broker_address_is_not_an_input_but_comes_from_the_hivemq_model() {
    // The audit's `brokerPort: 0` cannot be written any more: the bridge connects to the
    // Service the HiveMQPlatform declares, on the port the HiveMQ model defines.
    assert_refused(
        "  mqtt:\n    brokerPort: 0",
        &["environments/prod.yaml:54:5: unknown field `brokerPort`, expected one of credentialsSecret"],
    );
}

#[test]
fn bridge_topic_layout_must_agree() {
    assert_refused(
        "  config:\n    mqttFilters: [ehs/#/telemetry]",
        &[
            INVALID_CONFIG,
            "`mqttFilters` MQTT topic filter `ehs/#/telemetry` has `#` before the last level",
        ],
    );
    assert_refused(
        "  config:\n    topicPattern: ehs/{home}/telemetry",
        &[
            INVALID_CONFIG,
            "`topicPattern` topic pattern `ehs/{home}/telemetry` lacks `{device}`",
        ],
    );
    assert_refused(
        "  config:\n    payloadRoutes: [{filter: ehs/+/+/telemtry, adapter: numeric}]",
        &[INVALID_CONFIG, "`payloadRoutes` route filter `ehs/+/+/telemtry` matches no topic the subscribed filters (ehs/+/+/telemetry) deliver"],
    );
}

#[test]
fn bridge_fan_out_limits_and_field_selection_are_refused_when_invalid() {
    assert_refused(
        "  config:\n    maxReadingsPerMessage: 0",
        &[
            INVALID_CONFIG,
            "`maxReadingsPerMessage` must be between 1 and 10000, got 0",
        ],
    );
    assert_refused(
        "  config:\n    maxHeaderBytes: 65537",
        &[
            INVALID_CONFIG,
            "`maxHeaderBytes` must be between 0 and 65536",
        ],
    );
    assert_refused(
        "  config:\n    payloadRoutes: [{filter: '#', adapter: flat-json, include: [power_w], exclude: [seq]}]",
        &[
            INVALID_CONFIG,
            "`payloadRoutes` route `#` has both `include` and `exclude`",
        ],
    );
    assert_refused(
        "  config:\n    payloadRoutes: [{filter: '#', adapter: flat-json, exclude: ['a|b']}]",
        &[
            INVALID_CONFIG,
            "`payloadRoutes` route `#` selects the field `a|b`",
        ],
    );
}

/// The selection and the caps reach the bridge's environment in the syntax it parses.
#[test]
fn bridge_fan_out_limits_and_field_selection_are_rendered() {
    let scratch = Scratch::new();
    scratch.edit(
        "environments/prod.yaml",
        "bridge:\n  replicas: 3",
        "bridge:\n  config:\n    maxReadingsPerMessage: 16\n    maxHeaderBytes: 1024\n    \
         payloadRoutes: [{filter: 'ehs/+/+/telemetry', adapter: nested-json, include: [power_w, energy_kwh]}]\n  replicas: 3",
    );
    scratch
        .ehs()
        .args(["render", "--env", "prod"])
        .assert()
        .success();
    let statefulset = fs::read_to_string(
        scratch
            .root()
            .join("rendered/prod/bridge/statefulset-ehs-bridge.yaml"),
    )
    .expect("statefulset");
    for (name, value) in [
        ("EHS_MAX_READINGS_PER_MESSAGE", "\"16\""),
        ("EHS_MAX_HEADER_BYTES", "\"1024\""),
        (
            "EHS_PAYLOAD_ROUTES",
            "\"ehs/+/+/telemetry=nested-json;include=power_w|energy_kwh\"",
        ),
    ] {
        let expected = format!("- name: {name}\n          value: {value}\n");
        assert!(
            statefulset.contains(&expected),
            "{expected} not in {statefulset}"
        );
    }
}

/// A CustomResourceDefinition for `kind` in `group` whose `spec` lists only `spec_fields` (any
/// value each), or takes any field when `spec_fields` is empty.
fn crd(group: &str, kind: &str, spec_fields: &[&str]) -> String {
    let spec = if spec_fields.is_empty() {
        "{type: object, x-kubernetes-preserve-unknown-fields: true}".to_owned()
    } else {
        let fields: Vec<String> = spec_fields
            .iter()
            .map(|field| format!("{field}: {{x-kubernetes-preserve-unknown-fields: true}}"))
            .collect();
        format!("{{type: object, properties: {{{}}}}}", fields.join(", "))
    };
    let plural = format!("{}s", kind.to_lowercase());
    format!(
        "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: {{name: {plural}.{group}}}\nspec:\n  group: {group}\n  \
         names: {{kind: {kind}, plural: {plural}}}\n  scope: Namespaced\n  versions:\n  \
         - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        \
         type: object\n        properties:\n          spec: {spec}\n"
    )
}

/// `ehs validate --crds DIR` against small CRDs written for the test (CI has no reference CRDs
/// beside the clone; `.ci/run` checks the real ones).
#[test]
fn custom_resources_are_checked_against_the_crds_in_a_directory() {
    let scratch = Scratch::new();
    let crds = tempfile::tempdir().expect("temp dir");
    let dir = crds.path().display().to_string();
    let hivemq = crd("hivemq.com", "HiveMQPlatform", &[]);
    let cluster = crd("postgresql.cnpg.io", "Cluster", &[]);
    // Two documents in one file, as some operators ship them.
    fs::write(crds.path().join("all.yaml"), format!("{hivemq}{cluster}")).unwrap();
    // The edge's kinds stay in a file of their own through the cases below.
    let edge: String = [
        ("cert-manager.io", "ClusterIssuer"),
        ("cert-manager.io", "Certificate"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("argoproj.io", "AppProject"),
        ("argoproj.io", "Application"),
        ("source.toolkit.fluxcd.io", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("source.toolkit.fluxcd.io", "HelmRepository"),
        ("source.toolkit.fluxcd.io", "OCIRepository"),
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
    ]
    .iter()
    .map(|(group, kind)| {
        let definition = crd(group, kind, &[]);
        if *group == "argoproj.io" {
            definition.replace("- name: v1\n", "- name: v1alpha1\n")
        } else if *kind == "HelmRelease" {
            definition.replace("- name: v1\n", "- name: v2\n")
        } else if *kind == "ClusterIssuer" {
            definition.replace("scope: Namespaced", "scope: Cluster")
        } else {
            definition
        }
    })
    .collect();
    fs::write(crds.path().join("edge.yaml"), edge).unwrap();
    scratch
        .ehs()
        .args(["validate", "--crds", &dir])
        .assert()
        .success();
    scratch
        .ehs()
        .args(["render", "--check", "--crds", &dir])
        .assert()
        .success();

    // A CRD that does not know a field the compiler renders: the field is named.
    let strict = crd("postgresql.cnpg.io", "Cluster", &["instances", "imageName"]);
    fs::write(crds.path().join("all.yaml"), format!("{hivemq}{strict}")).unwrap();
    scratch
        .ehs()
        .args(["validate", "--crds", &dir])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(
            "prod: timescaledb/Cluster/timescaledb: spec.storage: unknown field `storage`",
        ));

    // A custom resource whose CRD is missing names its kind and the directory.
    fs::write(crds.path().join("all.yaml"), hivemq).unwrap();
    scratch
        .ehs()
        .args(["validate", "--crds", &dir])
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::contains(format!(
            "dev: timescaledb/Cluster/timescaledb: kind: no CustomResourceDefinition for kind \
             `Cluster` of group `postgresql.cnpg.io` in {dir}"
        )))
        .stdout(predicate::str::contains("HiveMQPlatform").not());

    // An unreadable directory is an error, not a finding.
    scratch.refuses(
        &["validate", "--crds", "no-such-dir"],
        "no-such-dir: cannot read the CRD directory",
    );
}

/// A repository with the scratch copy committed, for `ehs diff --base`.
fn committed_scratch() -> Scratch {
    let scratch = Scratch::new();
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "base"],
    ] {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=ehs", "-c", "user.email=ehs@example.com"])
            .arg("-C")
            .arg(scratch.root())
            .args(args)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
    scratch
}

/// The pull-request review: a one-line change of `environments/prod.yaml`, rendered, reads as
/// one object with one changed path, in a comment a reviewer takes in at a glance.
#[test]
fn diff_against_the_base_of_a_one_line_change_is_short() {
    let scratch = committed_scratch();
    scratch
        .ehs()
        .args(["diff", "--base", "HEAD"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No differences."));
    scratch.set_bridge_replicas(5);
    scratch.ehs().args(["render"]).assert().success();
    let assert = scratch
        .ehs()
        .args(["diff", "--base", "HEAD", "--format", "markdown"])
        .assert()
        .code(EXIT_FINDINGS);
    let output = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        output.starts_with(
            "## ehs diff: rendered/ at HEAD → rendered/ in the working tree\n\n\
             ### dev: no differences\n\n\
             ### prod: 0 added, 1 changed, 0 removed\n\n\
             | Change | Kind | Namespace | Name | Changed paths |\n|---|---|---|---|---|\n\
             | changed | StatefulSet | ehs-prod | ehs-bridge | `spec.replicas` |\n\n\
             <details><summary>changed StatefulSet ehs-prod/ehs-bridge (prod/bridge)</summary>\n\n\
             ```diff\n@@ -14,7 +14,7 @@ spec.replicas\n"
        ),
        "{output}"
    );
    assert!(
        output.contains("-  replicas: 3\n+  replicas: 5\n"),
        "{output}"
    );
    assert!(output.len() < 800, "{} characters:\n{output}", output.len());
    assert_eq!(output.lines().count(), 26, "{output}");
}

/// More partitions change the topics script, so the hash-named topics Job gets a new name: one
/// rename with its real change, and a refusal, since the Job only creates missing topics.
#[test]
fn diff_against_the_base_pairs_the_renamed_topics_job_and_refuses_new_partitions() {
    let scratch = committed_scratch();
    scratch.edit(
        "environments/prod.yaml",
        "    telemetry:\n      partitions: 12",
        "    telemetry:\n      partitions: 24",
    );
    scratch.ehs().args(["render"]).assert().success();
    let assert = scratch
        .ehs()
        .args([
            "diff", "--base", "HEAD", "--env", "prod", "--colour", "never",
        ])
        .assert()
        .code(EXIT_ERROR)
        .stderr(predicate::str::contains("then pass --allow-topic-change"));
    let output = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        output.contains("  renamed  Job ehs-prod/kafka-topics-a2339253 → kafka-topics-"),
        "{output}"
    );
    assert!(
        !output.contains("added  Job") && !output.contains("removed  Job"),
        "{output}"
    );
    assert!(
        output.contains(
            "warning (refused without --allow-topic-change): prod: ConfigMap ehs-prod/kafka-topics: \
             topic `ehs.telemetry.raw`: partitions 12 → 24;"
        ),
        "{output}"
    );
    assert!(
        !output.contains("dev:"),
        "--env prod leaves dev out:\n{output}"
    );

    let parts = scratch.root().join("comment");
    fs::create_dir_all(&parts).unwrap();
    fs::write(parts.join("ehs-diff-7.md"), "stale").unwrap();
    scratch
        .ehs()
        .args([
            "diff",
            "--base",
            "HEAD",
            "--allow-topic-change",
            "--format",
            "markdown",
        ])
        .arg("--output-dir")
        .arg(&parts)
        .assert()
        .code(EXIT_FINDINGS)
        .stdout(predicate::str::is_empty());
    let names: Vec<String> = fs::read_dir(&parts)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ehs-diff-1.md"], "a stale part is removed");
    let comment = fs::read_to_string(parts.join("ehs-diff-1.md")).unwrap();
    assert!(
        comment.contains("| renamed | Job | ehs-prod | kafka-topics-a2339253 → kafka-topics-"),
        "{comment}"
    );
    assert!(
        comment.contains("(allowed by --allow-topic-change)"),
        "{comment}"
    );
}

#[test]
fn diff_against_an_unknown_base_is_an_error() {
    let scratch = committed_scratch();
    scratch.refuses(
        &["diff", "--base", "no-such-branch"],
        "`no-such-branch` is not a commit of the Git repository at",
    );
    scratch.refuses(
        &["diff", "--base", "HEAD", "--env", "staging"],
        "no environment `staging` in rendered/ at HEAD or in the working tree; available: dev, prod",
    );
}

/// `ehs promote`: the bridge image dev runs goes to prod as a minimal edit of prod's file,
/// rendered; the errors name the file or the valid choices.
#[test]
fn promote_copies_a_components_image_pins_and_renders_the_target() {
    let scratch = Scratch::new();
    scratch.edit(
        "environments/dev.yaml",
        "bridge:\n",
        "bridge:\n  image:\n    tag: 0.2.0 # the release under test\n",
    );
    scratch
        .ehs()
        .args(["render", "--env", "dev"])
        .assert()
        .success();
    let before = fs::read_to_string(scratch.root().join("environments/prod.yaml")).unwrap();
    let promote = || {
        scratch
            .ehs()
            .args(["promote", "--from", "dev", "--to", "prod", "bridge"])
            .assert()
    };
    promote().success().stdout(predicate::str::contains(
        "environments/prod.yaml: bridge.image: unset (the default) -> {\"tag\":\"0.2.0\"}",
    ));
    let after = fs::read_to_string(scratch.root().join("environments/prod.yaml")).unwrap();
    // Only the pin's lines are new; every other line (comments included) is as it was.
    let added: Vec<&str> = after
        .lines()
        .filter(|line| !before.lines().any(|old| old == *line))
        .collect();
    assert_eq!(added, ["  image:", "    tag: 0.2.0"]);
    assert_eq!(after.lines().count(), before.lines().count() + 2);
    let statefulset = fs::read_to_string(
        scratch
            .root()
            .join("rendered/prod/bridge/statefulset-ehs-bridge.yaml"),
    )
    .unwrap();
    assert!(statefulset.contains("image: ghcr.io/ehs-platform/ehs-bridge:0.2.0"));
    scratch.ehs().args(["render", "--check"]).assert().success();
    // Again: nothing left to promote.
    promote().success().stdout(predicate::str::contains(
        "bridge already has the image pins of environments/dev.yaml",
    ));

    scratch.refuses(
        &["promote", "--from", "dev", "--to", "prod", "bridgE"],
        "`bridgE` is not a component; valid: namespace,",
    );
    scratch.refuses(
        &["promote", "--from", "dev", "--to", "staging", "bridge"],
        "staging",
    );
    scratch.refuses(
        &["promote", "--from", "dev", "--to", "dev", "bridge"],
        "--from and --to are both `dev`",
    );

    // A source pin that is not valid is refused where it is written; the target is untouched.
    scratch.edit("environments/dev.yaml", "tag: 0.2.0", "tag: \"bad tag\"");
    scratch.refuses(
        &["promote", "--from", "dev", "--to", "prod", "bridge"],
        "environments/dev.yaml:16:10: `bad tag` is not a valid image tag",
    );
    scratch.edit("environments/dev.yaml", "tag: \"bad tag\"", "tag: 0.3.0");
    // A target that does not validate after the edit is restored and nothing is rendered.
    let invalid = format!("{after}gitops:\n  repositoryUrl: git@github.com:x/y.git\n");
    fs::write(scratch.root().join("environments/prod.yaml"), &invalid).unwrap();
    let rendered = scratch.rendered();
    promote()
        .code(EXIT_FINDINGS)
        .stderr(predicate::str::contains(
            "environments/prod.yaml: restored, nothing promoted",
        ));
    assert_eq!(
        fs::read_to_string(scratch.root().join("environments/prod.yaml")).unwrap(),
        invalid
    );
    assert_eq!(scratch.rendered(), rendered);
}

#[test]
fn graph_prints_the_connection_graph_as_text_and_as_dot() {
    let graph = |args: &[&str]| {
        let mut command = cargo_bin_cmd!("ehs");
        command
            .arg("--root")
            .arg(repo_root())
            .arg("graph")
            .args(args);
        command.assert()
    };
    graph(&["--env", "prod"]).success().stdout(
        predicate::str::starts_with("# connection graph of namespace ehs-prod")
            .and(predicate::str::contains("via hivemq-mqtt"))
            .and(predicate::str::contains(
                "[bridge] subscribes to device telemetry",
            )),
    );
    graph(&["--env", "prod", "--format", "dot"])
        .success()
        .stdout(
            predicate::str::starts_with("digraph \"ehs-prod\" {")
                .and(predicate::str::contains("\"ehs-bridge\" -> \"kafka\"")),
        );
    graph(&["--env", "staging"]).code(EXIT_ERROR);
}
