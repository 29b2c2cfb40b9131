#!/usr/bin/env python3
"""The whole data path against a running `scripts/pipeline up`: MQTT v5 QoS 1 into HiveMQ, through
both bridge replicas, Kafka and the JDBC sink, into TimescaleDB's `readings`.

Run with the pipeline's environment: eval "$(scripts/pipeline env)"; python3 tests/pipeline/whole_path.py
Scenarios: `clean` (no faults), and while publishing: `bridge-crash` (kill -9 one bridge replica,
then restart it), `connect-restart` (kill -9 the Connect worker, start it again), `kafka-broker-kill`
(kill -9 one of the three Kafka nodes, restart it), `postgres-restart` (PostgreSQL stopped and
started), `hivemq-restart` (HiveMQ stopped with SIGTERM, started again: the bridges' persistent
sessions resume). Each asserts that every valid reading is in `readings` exactly once with the right
home, device, metric, value and device time, and that each malformed message is in the dead-letter
topic with its reason header; it prints where redelivery happened (MQTT messages the bridges took,
Kafka records written, rows the upsert rewrote) and its time. Prints cargo-style `test result:`
lines so scripts/test counts them.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOMES = int(os.environ.get("EHS_WHOLE_PATH_HOMES", "40"))
DEVICES = 5  # meter-0..meter-4 in every home: the same device id in many homes
ROUNDS = 4  # messages per device; all devices of a round share one device timestamp
BASE = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)
ARRIVAL_TIMEOUT_S = 180


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: eval \"$(scripts/pipeline env)\" first")
    return value


def rfc3339(ts):
    return ts.isoformat().replace("+00:00", "Z")


def payload_shapes(round_no, device_no):
    """(payload, {metric: value}, device time) for the flat-json adapter's firmware variants."""
    ts = BASE + timedelta(minutes=round_no)
    v = round_no * 10 + device_no + 0.25
    shape = (round_no + device_no) % 4
    if shape == 0:  # RFC 3339 with offset, two metrics
        local = ts.astimezone(timezone(timedelta(hours=1)))
        return {"power_w": v, "voltage_v": 230.5, "ts": local.isoformat()}, {"power_w": v, "voltage_v": 230.5}, ts
    if shape == 1:  # epoch seconds under `timestamp`, a number as a string, status text ignored
        return (
            {"timestamp": int(ts.timestamp()), "energy_kwh": str(v), "status": "ok", "relay": True},
            {"energy_kwh": v},
            ts,
        )
    if shape == 2:  # epoch milliseconds under `time`, nested object ignored
        return (
            {"time": int(ts.timestamp() * 1000), "temp_c": v, "meta": {"fw": 3}},
            {"temp_c": v},
            ts,
        )
    # RFC 3339 with fractional seconds, three metrics
    ts += timedelta(milliseconds=123)
    return (
        {"ts": rfc3339(ts), "power_w": v, "current_a": v / 230, "pf": 0.95},
        {"power_w": v, "current_a": v / 230, "pf": 0.95},
        ts,
    )


MALFORMED = [
    (b"not json at all", "unparseable"),
    (b"[1, 2, 3]", "unparseable"),
    (b'{"status": "ok", "relay": true}', "non-numeric"),
    (b'{"power_w": 1.5, "ts": "yesterday"}', "bad-timestamp"),
    (json.dumps({"power_w": 1.0, "pad": "x" * 70000}).encode(), "oversize"),
]


def build_messages(run):
    """[(topic, payload bytes)], {(home, device, metric, time): value}, {topic: reason}"""
    messages, expected, dead = [], {}, {}
    for round_no in range(ROUNDS):
        for home_no in range(HOMES):
            home = f"{run}-home-{home_no}"
            for device_no in range(DEVICES):
                device = f"meter-{device_no}"
                payload, metrics, ts = payload_shapes(round_no, device_no)
                messages.append((f"ehs/{home}/{device}/telemetry", json.dumps(payload).encode()))
                for metric, value in metrics.items():
                    expected[(home, device, metric, ts)] = value
    for index, (payload, reason) in enumerate(MALFORMED):
        topic = f"ehs/{run}-bad/dev-{index}/telemetry"
        messages.append((topic, payload))
        dead[topic] = reason
    return messages, expected, dead


# Fault scenarios publish at this pace so the fault lands while messages flow through every
# stage (unpaced, paho queues all of them within milliseconds and the fault would hit an idle path).
FAULT_RATE_PER_S = 150


def publish(messages, url, during=None):
    """QoS 1, MQTT v5; returns when the broker acknowledged every message. `during(i)` runs
    after message i is handed to the client (fault injection); publishing is then paced."""
    parsed = urlparse(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"whole-path-{secrets.token_hex(4)}", protocol=mqtt.MQTTv5
    )
    acked = set()
    client.on_publish = lambda _client, _userdata, mid, _reason, _properties: acked.add(mid)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    # A restarted broker (hivemq-restart) is back within seconds; paho's default backoff goes to 2 min.
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect(parsed.hostname, parsed.port or 1883)
    client.loop_start()
    infos = []
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("test", "whole-path")
    t0 = time.monotonic()
    for index, (topic, payload) in enumerate(messages):
        infos.append(client.publish(topic, payload, qos=1, properties=props))
        if during:
            during(index)
            time.sleep(max(0.0, t0 + (index + 1) / FAULT_RATE_PER_S - time.monotonic()))
    # PUBACKs as they come, not wait_for_publish/is_published: those raise at once for a message
    # handed over while the broker was away (hivemq-restart), which paho keeps and sends after
    # reconnecting.
    deadline = time.monotonic() + 120
    while (waiting := [info.mid for info in infos if info.mid not in acked]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if waiting:
        raise AssertionError(f"{len(waiting)} publishes not acknowledged by the broker in 120 s, e.g. mids {waiting[:5]}")
    client.disconnect()
    client.loop_stop()


class Database:
    """The readings database, reconnecting when the server went away (postgres-restart)."""

    RECONNECT_S = 60

    def __init__(self, url):
        self.url, self.conn = url, None

    def query(self, sql, params=()):
        deadline = time.monotonic() + self.RECONNECT_S
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True)
                with self.conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            except psycopg.OperationalError:
                self.conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def rows_for(conn, run):
    return conn.query(
        "SELECT home_id, device_id, metric, time, value, arrival_time FROM readings WHERE home_id LIKE %s",
        (f"{run}-%",),
    )


def wait_for_rows(conn, run, count):
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    rows = []
    while time.monotonic() < deadline:
        rows = rows_for(conn, run)
        if len(rows) >= count:
            # Let late redeliveries land: they must not add rows.
            time.sleep(3)
            return rows_for(conn, run)
        time.sleep(1)
    return rows


def dead_letters(run, topics):
    """{mqtt topic: reason header} of this run's dead letters."""
    out = subprocess.run(
        [
            f"{ROOT}/scripts/local-stack", "consume", env("EHS_PIPELINE_DEAD_LETTER_TOPIC"),
            "--from-beginning", "--timeout-ms", "15000",
            "--property", "print.headers=true", "--property", "print.value=false",
        ],
        capture_output=True, text=True, check=False,
    ).stdout
    found = {}
    for line in out.splitlines():
        headers = dict(h.split(":", 1) for h in line.split(",") if ":" in h)
        topic = headers.get("ehs.mqtt.topic")
        if topic in topics:
            found.setdefault(topic, []).append(headers.get("ehs.dlq.reason"))
    return found


def raw_records(*topics):
    """{topic: records so far} (sums of end offsets), in one tool run. On the readings topic,
    more records than readings means the bridge wrote some twice (redelivery after a crash); on
    the sink's dead-letter topic, they are records the sink gave up on."""
    out = subprocess.run(
        [
            f"{ROOT}/scripts/local-stack", "kafka-class", "org.apache.kafka.tools.GetOffsetShell",
            "--bootstrap-server", env("EHS_STACK_KAFKA_BOOTSTRAP"),
            "--topic", "|".join(re.escape(topic) for topic in topics),
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    records = dict.fromkeys(topics, 0)
    for line in out.splitlines():
        parts = line.rsplit(":", 2)
        if len(parts) == 3 and parts[0] in records:
            records[parts[0]] += int(parts[2])
    return records


def bridge_messages_received():
    """MQTT messages the running bridge replicas took from the broker (their counters; a
    restarted replica counts from 0). More than were published: the broker redelivered."""
    total = 0
    for replica in range(int(env("EHS_PIPELINE_BRIDGES"))):
        url = f"http://127.0.0.1:{int(env('EHS_PIPELINE_BRIDGE_HTTP_PORT')) + replica}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("ehs_bridge_mqtt_messages_received_total"):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def redelivery_counters(conn):
    readings, sink_dead = env("EHS_PIPELINE_READINGS_TOPIC"), env("EHS_PIPELINE_SINK_DEAD_LETTER_TOPIC")
    records = raw_records(readings, sink_dead)
    return {
        "mqtt messages the bridges took": bridge_messages_received(),
        "kafka records written": records[readings],
        "records the sink dead-lettered": records[sink_dead],
        "rows the upsert rewrote": upserted_rows(conn),
    }


def upserted_rows(conn):
    """Rows the sink's INSERT … ON CONFLICT DO UPDATE updated instead of inserting, over the
    hypertable's chunks: the sink writing a reading again (e.g. after a restart) shows up here."""
    # Autocommit: each query is a transaction of its own, with a fresh statistics snapshot.
    return int(
        conn.query(
            """SELECT coalesce(sum(s.n_tup_upd), 0) FROM timescaledb_information.chunks c
               JOIN pg_stat_user_tables s ON s.schemaname = c.chunk_schema AND s.relname = c.chunk_name
               WHERE c.hypertable_name = 'readings'"""
        )[0][0]
    )


def check(run, expected, dead, started, rows):
    failures = []
    by_key = {}
    for home, device, metric, ts, value, arrival in rows:
        by_key.setdefault((home, device, metric, ts), []).append((value, arrival))
    duplicates = sum(len(v) - 1 for v in by_key.values())
    missing = [k for k in expected if k not in by_key]
    unexpected = [k for k in by_key if k not in expected]
    wrong = [(k, expected[k], by_key[k][0][0]) for k in expected if k in by_key and abs(by_key[k][0][0] - expected[k]) > 1e-9]
    late = [k for k, v in by_key.items() if not started - timedelta(seconds=5) <= v[0][1] <= datetime.now(timezone.utc)]
    if missing:
        failures.append(f"{len(missing)} readings missing, e.g. {missing[:3]}")
    if unexpected:
        failures.append(f"{len(unexpected)} rows nobody sent, e.g. {unexpected[:3]}")
    if duplicates:
        failures.append(f"{duplicates} duplicate rows")
    if wrong:
        failures.append(f"{len(wrong)} wrong values, e.g. {wrong[:3]}")
    if late:
        failures.append(f"{len(late)} rows with an arrival_time outside the run, e.g. {late[:3]}")
    letters = dead_letters(run, dead)
    for topic, reason in dead.items():
        if letters.get(topic) is None:
            failures.append(f"dead letter of {topic} ({reason}) missing")
        elif reason not in letters[topic]:
            failures.append(f"dead letter of {topic}: reason {letters[topic]}, expected {reason}")
    print(
        f"  readings sent {len(expected)}, arrived {len(by_key)}, duplicates {duplicates}, "
        f"dead letters {sum(1 for t in dead if t in letters)}/{len(dead)}"
    )
    return failures


def pipeline(*args):
    subprocess.run([f"{ROOT}/scripts/pipeline", *args], check=True)


def scenario(name, conn, fault=None):
    run = f"t{secrets.token_hex(3)}"
    messages, expected, dead = build_messages(run)
    before = redelivery_counters(conn)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    faults = fault(len(messages)) if fault else None
    publish(messages, env("EHS_STACK_MQTT_URL"), faults)
    rows = wait_for_rows(conn, run, len(expected))
    elapsed = time.monotonic() - t0
    # Statistics reach pg_stat a moment after the sink's transaction commits.
    time.sleep(1)
    print(f"test whole_path::{name} ({len(messages)} messages, {elapsed:.1f} s to the last row)")
    after = redelivery_counters(conn)
    print("  " + ", ".join(f"{what} {after[what] - before[what]}" for what in before))
    failures = check(run, expected, dead, started, rows)
    if faults:
        failures += faults.failures()
    print(f"  scenario time {time.monotonic() - t0:.1f} s")
    for failure in failures:
        print(f"  FAIL {failure}")
    return not failures


class Faults:
    """`steps` are (fraction of the publish, action): one background thread runs them in order,
    each once the publish has handed that share of its messages to the client, so a slow action
    (a restart waiting for readiness) never stalls the publishing. The last message waits for
    them all. `recovery()` (optional) returns failures found once the rows are in."""

    def __init__(self, total, steps, recovery=None):
        self.total, self.steps, self.recovery = total, steps, recovery
        self.reached = threading.Condition()
        self.index = -1
        self.errors = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        for fraction, action in self.steps:
            with self.reached:
                self.reached.wait_for(lambda: self.index >= int(self.total * fraction))
            started = time.monotonic()
            try:
                action()
            except subprocess.CalledProcessError as error:
                self.errors.append(f"fault step failed: {' '.join(error.cmd)} (exit {error.returncode})")
                return
            print(f"  fault step at {fraction:.0%} of the publish took {time.monotonic() - started:.1f} s")

    def failures(self):
        return self.errors + (self.recovery() if self.recovery else [])

    def __call__(self, index):
        with self.reached:
            self.index = index
            self.reached.notify_all()
        if index == self.total - 1:
            self.thread.join()


def kill_bridge_mid_publish(total):
    """kill -9 bridge replica 1 a third into the publish, restart it two thirds in."""
    return Faults(total, [(1 / 3, lambda: pipeline("bridge", "kill", "1")), (2 / 3, lambda: pipeline("bridge", "start", "1"))])


def restart_connect_mid_publish(total):
    """SIGKILL the Connect worker a third into the publish and start it again: the sink resumes
    from its last committed offsets and writes again what it wrote since, which the upsert key
    turns into updates, not duplicate rows."""
    return Faults(total, [(1 / 3, lambda: (pipeline("stack", "kill", "connect"), pipeline("stack", "start", "connect")))])


# The Kafka node the broker-kill scenario crashes; with replication factor 3 and
# min.insync.replicas 2 the other two keep taking acks=all writes.
KILLED_KAFKA_NODE = "kafka-2"


def under_replicated_partitions():
    out = subprocess.run(
        [
            f"{ROOT}/scripts/local-stack", "kafka-class", "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server", env("EHS_STACK_KAFKA_BOOTSTRAP"), "--describe", "--under-replicated-partitions",
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    return [line.strip() for line in out.splitlines() if "Partition:" in line]


def kill_kafka_broker_mid_publish(total):
    """kill -9 one Kafka node a third into the publish, start it two thirds in; afterwards
    every partition must have its full in-sync replica set again."""

    def back_in_sync():
        deadline = time.monotonic() + 120
        while (lagging := under_replicated_partitions()) and time.monotonic() < deadline:
            time.sleep(2)
        return [f"{len(lagging)} partitions still under-replicated 120 s after the restart, e.g. {lagging[:2]}"] if lagging else []

    return Faults(
        total,
        [(1 / 3, lambda: pipeline("stack", "kill", KILLED_KAFKA_NODE)), (2 / 3, lambda: pipeline("stack", "start", KILLED_KAFKA_NODE))],
        back_in_sync,
    )


def restart_postgres_mid_publish(total):
    """PostgreSQL stopped (fast shutdown: clients are disconnected) and started a third into the
    publish: the sink's writes fail until it is back and must then be retried, not dropped."""
    return Faults(total, [(1 / 3, lambda: pipeline("stack", "restart", "postgres"))])


def restart_hivemq_mid_publish(total):
    """HiveMQ stopped gracefully (SIGTERM; it persists its sessions and queues) a third into the
    publish, started again: the publisher reconnects and resends what was not acknowledged, the
    bridges resume their persistent sessions (clean start off) and get the queued messages."""
    return Faults(total, [(1 / 3, lambda: (pipeline("stack", "stop", "hivemq"), pipeline("stack", "start", "hivemq")))])


def main():
    url = env("EHS_STACK_POSTGRES_URL")
    os.environ.setdefault("PGPASSFILE", env("EHS_STACK_POSTGRES_PASSFILE"))
    scenarios = {
        "clean": None,
        "bridge-crash": kill_bridge_mid_publish,
        "connect-restart": restart_connect_mid_publish,
        "kafka-broker-kill": kill_kafka_broker_mid_publish,
        "postgres-restart": restart_postgres_mid_publish,
        "hivemq-restart": restart_hivemq_mid_publish,
    }
    chosen = sys.argv[1:] or list(scenarios)
    passed = failed = 0
    conn = Database(url)
    for name in chosen:
        if scenario(name, conn, scenarios[name]):
            passed += 1
        else:
            failed += 1
    print(f"test result: {'ok' if not failed else 'FAILED'}. {passed} passed; {failed} failed; 0 ignored")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
