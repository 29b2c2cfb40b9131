#!/usr/bin/env python3
"""Reads one environment's rendered manifests for scripts/pipeline and rewrites their endpoints.

Only endpoints change: hosts, ports, listen addresses, secret mount paths, per-replica names.
Everything else (converters, upsert keys, batch sizes, topics, bridge tuning) is taken as
rendered, so a config that is wrong in rendered/ is wrong on the local pipeline too. The
rewrites are all in REWRITES below, and `scripts/pipeline rewrites` prints them.
"""

import json
import re
import sys
from pathlib import Path

import yaml

# (what, key, becomes): the one table of rewrites. {...} names a local value from `Local`.
REWRITES = [
    ("topics job", "bootstrap= in create-topics.sh", "{kafka}"),
    ("topics job", "/opt/kafka/bin/kafka-*.sh (the image's tools)", "shims in {run_dir}/kafka-bin over local-stack kafka-class"),
    ("connect worker", "bootstrap.servers", "{kafka}"),
    ("connect worker", "listeners", "http://127.0.0.1:{connect_port}"),
    ("connect worker", "plugin.path", "the local Debezium plugin directory"),
    ("connect worker", "config.providers.dir.param.allowed.paths", "{secrets}"),
    ("connect worker", "rest.advertised.host.name (start.sh appends the pod IP)", "127.0.0.1"),
    ("connector", "connection.url host:port", "127.0.0.1:{postgres_port}"),
    ("connector", "${dir:<mountPath>:…} of a Secret volume", "${dir:{secrets}/<volume>:…}"),
    ("bridge", "EHS_MQTT_URL host:port", "{mqtt_hostport} (HiveMQ)"),
    ("bridge", "EHS_KAFKA_BOOTSTRAP_SERVERS", "{kafka}"),
    ("bridge", "EHS_HTTP_LISTEN", "127.0.0.1:{bridge_http_base}+<replica>"),
    ("bridge", "EHS_MQTT_CLIENT_ID (fieldRef metadata.name)", "ehs-bridge-<replica>"),
    ("bridge", "*_FILE under a Secret volume's mountPath", "{secrets}/<volume>/…"),
]

# What each Secret volume holds locally: the database owner's credentials from local-stack, or
# MQTT credentials generated here (HiveMQ CE without an auth extension accepts any).
SECRET_SOURCES = {"db-credentials": "postgres", "mqtt-credentials": "generated"}


def die(message):
    print(f"pipeline: error: {message}", file=sys.stderr)
    sys.exit(2)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        die(f"{path} not found; render it with `cargo run -q -p ehs-compiler -- render --all`")


def no_cluster_names(what, values):
    """An endpoint the table misses would point at a Kubernetes Service: refuse, never guess."""
    for key, value in values.items():
        if ".svc" in str(value):
            die(f"{what}: {key}={value} still names a cluster Service; add it to REWRITES in {__file__}")


# The Kafka image's tools the topics Job's script calls, and the main class each runs.
KAFKA_IMAGE_BIN = "/opt/kafka/bin/"
KAFKA_TOOLS = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs.sh": "kafka.admin.ConfigCommand",
}


def topics_script(rendered, out, kafka_bin, kafka, stack):
    """The rendered topics Job's create-topics.sh, run as the Job runs it, with its bootstrap
    and the image's tool paths rewritten; the tools become shims over local-stack kafka-class."""
    script = load(rendered / "kafka/configmap-kafka-topics.yaml")["data"]["create-topics.sh"]
    script, count = re.subn(r'(?m)^bootstrap="[^"]*"$', f'bootstrap="{kafka}"', script)
    if count != 1:
        die("create-topics.sh in kafka/configmap-kafka-topics.yaml has no bootstrap=\"…\" line to rewrite")
    used = set(re.findall(re.escape(KAFKA_IMAGE_BIN) + r"([\w.-]+)", script))
    unknown = used - set(KAFKA_TOOLS)
    if unknown:
        die(f"create-topics.sh calls {', '.join(sorted(unknown))}; add it to KAFKA_TOOLS in {__file__}")
    Path(kafka_bin).mkdir(parents=True, exist_ok=True)
    for tool in used:
        shim = Path(kafka_bin) / tool
        shim.write_text(f'#!/bin/sh\nexec "{stack}" kafka-class {KAFKA_TOOLS[tool]} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    script = script.replace(KAFKA_IMAGE_BIN, f"{kafka_bin}/")
    no_cluster_names("topics job", {"create-topics.sh": script})
    Path(out).write_text(script, encoding="utf-8")


def secret_mounts(pod_spec, container):
    """mountPath -> volume name for the container's Secret volumes."""
    secret_volumes = {v["name"] for v in pod_spec.get("volumes", []) if "secret" in v}
    mounts = {}
    for mount in container.get("volumeMounts", []):
        if mount["name"] in secret_volumes:
            if mount["name"] not in SECRET_SOURCES:
                die(f"Secret volume {mount['name']} has no local source; add it to SECRET_SOURCES in {__file__}")
            mounts[mount["mountPath"]] = mount["name"]
    return mounts


def rewrite_mounts(value, mounts, secrets):
    # Longest mount path first, so /a/b wins over /a.
    for path in sorted(mounts, key=len, reverse=True):
        if value == path or value.startswith(path + "/") or value.startswith(path + ":"):
            return f"{secrets}/{mounts[path]}{value[len(path):]}"
    return value


def connect_deployment(rendered):
    deployment = load(rendered / "connect/deployment-kafka-connect.yaml")
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def connect_worker(rendered, out, secrets):
    """The rendered worker properties as a local-stack template (EHS_STACK_CONNECT_CONFIG)."""
    text = load(rendered / "connect/configmap-kafka-connect-config.yaml")["data"][
        "connect-distributed.properties"
    ]
    local = {
        "bootstrap.servers": "@BOOTSTRAP@",
        "listeners": "http://127.0.0.1:@CONNECT_PORT@",
        "plugin.path": "@PLUGIN_PATH@",
        "config.providers.dir.param.allowed.paths": secrets,
    }
    lines, seen = [], set()
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in local:
            line = f"{key}={local[key]}"
            seen.add(key)
        lines.append(line)
    missing = set(local) - seen - {"config.providers.dir.param.allowed.paths"}
    if missing:
        die(f"connect worker config lacks {', '.join(sorted(missing))}")
    # What the rendered start.sh appends in the pod, with the local address.
    lines += ["rest.advertised.host.name=127.0.0.1", "rest.advertised.port=@CONNECT_PORT@"]
    props = dict(l.split("=", 1) for l in lines if "=" in l and not l.lstrip().startswith("#"))
    no_cluster_names("connect worker", props)
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")


def connector_config(rendered):
    """(name, config) of the one connector the registration ConfigMap holds, as rendered."""
    data = load(rendered / "connect/configmap-kafka-connect-register.yaml")["data"]
    keys = [k for k in data if k.endswith(".json")]
    if len(keys) != 1:
        die(f"expected one connector JSON in connect/configmap-kafka-connect-register.yaml, found {keys}")
    return keys[0][: -len(".json")], json.loads(data[keys[0]])


def connector(rendered, out, secrets, postgres_port):
    """{"name": ..., "config": ...} from the rendered registration ConfigMap."""
    name, config = connector_config(rendered)
    pod, container = connect_deployment(rendered)
    mounts = secret_mounts(pod, container)
    url = config.get("connection.url", "")
    match = re.fullmatch(r"(jdbc:postgresql://)[^/]+(/.*)", url)
    if not match:
        die(f"connector {name}: connection.url {url!r} is not jdbc:postgresql://host:port/db")
    config["connection.url"] = f"{match[1]}127.0.0.1:{postgres_port}{match[2]}"
    for key, value in config.items():
        config[key] = re.sub(
            r"\$\{(\w+):([^:}]+)",
            lambda m: "${" + m[1] + ":" + rewrite_mounts(m[2], mounts, secrets),
            value,
        )
    no_cluster_names(f"connector {name}", config)
    Path(out).write_text(json.dumps({"name": name, "config": config}, indent=2) + "\n", encoding="utf-8")


def bridge_statefulset(rendered):
    sts = load(rendered / "bridge/statefulset-ehs-bridge.yaml")
    pod = sts["spec"]["template"]["spec"]
    return sts, pod, pod["containers"][0]


def bridge_env(rendered, replica, secrets, mqtt_hostport, kafka, http_port):
    """NAME=VALUE lines: the rendered StatefulSet's env with endpoints rewritten."""
    sts, pod, container = bridge_statefulset(rendered)
    mounts = secret_mounts(pod, container)
    name = sts["metadata"]["name"]
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = f"{name}-{replica}"
        else:
            die(f"bridge env {var['name']}: only value and fieldRef metadata.name are supported locally")
    if "EHS_MQTT_URL" in env:
        env["EHS_MQTT_URL"] = re.sub(r"^(\w+://)[^/]+", rf"\g<1>{mqtt_hostport}", env["EHS_MQTT_URL"])
    env["EHS_KAFKA_BOOTSTRAP_SERVERS"] = kafka
    env["EHS_HTTP_LISTEN"] = f"127.0.0.1:{http_port}"
    for key, value in env.items():
        if key.endswith("_FILE"):
            env[key] = rewrite_mounts(value, mounts, secrets)
    no_cluster_names(f"bridge {name}-{replica}", env)
    for key, value in env.items():
        if "\n" in value:
            die(f"bridge env {key} holds a newline")
        print(f"{key}={value}")


def secret_volumes(rendered):
    """volume source: every Secret volume the connector and the bridge mount, with its local source."""
    found = {}
    for pod, container in (connect_deployment(rendered), bridge_statefulset(rendered)[1:]):
        for volume in secret_mounts(pod, container).values():
            found[volume] = SECRET_SOURCES[volume]
    for volume, source in sorted(found.items()):
        print(volume, source)


def rewrites():
    width = max(len(k) for _, k, _ in REWRITES)
    for what, key, becomes in REWRITES:
        print(f"{what:<15} {key:<{width}}  ->  {becomes}")


def main(argv):
    if not argv:
        die("usage: rendered.py COMMAND RENDERED_DIR ...")
    command, args = argv[0], argv[1:]
    if command == "rewrites":
        return rewrites()
    rendered = Path(args[0])
    commands = {
        "topics-script": lambda: topics_script(rendered, *args[1:5]),
        "connect-worker": lambda: connect_worker(rendered, *args[1:3]),
        "connector": lambda: connector(rendered, *args[1:4]),
        "bridge-env": lambda: bridge_env(rendered, *args[1:6]),
        "secret-volumes": lambda: secret_volumes(rendered),
        "connector-value": lambda: print(connector_config(rendered)[1].get(args[1], "")),
        "bridge-env-value": lambda: print(
            next(v.get("value", "") for v in bridge_statefulset(rendered)[2]["env"] if v["name"] == args[1])
        ),
    }
    if command not in commands:
        die(f"unknown command {command}")
    commands[command]()


if __name__ == "__main__":
    main(sys.argv[1:])
