//! ehs-bridge against the real local brokers (`scripts/local-stack start`): shared
//! subscriptions, crashes, scale-down, Kafka outages and bad input, checked message by message
//! in Kafka. Nothing is mocked. Each test holds the stack's lock for its whole run, so tests
//! run one after another even though the harness runs them on several threads, and a test that
//! stops or freezes Kafka never disturbs another.
//!
//! Without a running stack every test fails with the command that starts it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ehs_bench::bridge_process::BridgeProcess;
use ehs_bench::kafka::TopicReader;
use ehs_bench::publisher::{publish_raw, PublishError, PublishReport, RawMessage};
use ehs_bench::scenario::{error_chain, ReplicaSettings, Scenario};
use ehs_bench::telemetry::{payload, MessageId, SEQ_PROPERTY};
use ehs_bench::verify::{check, DeliveryCheck};
use ehs_contract::config::BridgeConfig;
use ehs_contract::{headers, PayloadAdapter};

const BRIDGE: &str = env!("CARGO_BIN_EXE_ehs-bridge");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bridge/ has a parent")
        .to_path_buf()
}

fn scenario(name: &str, devices: u32) -> Scenario {
    Scenario::new(
        name,
        &workspace_root(),
        Path::new(BRIDGE),
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-brokers"),
        devices,
        4,
    )
    .unwrap_or_else(|error| panic!("{}", error_chain(&error)))
}

fn start(scenario: &Scenario, ordinal: u32, settings: &ReplicaSettings) -> BridgeProcess {
    scenario
        .start(&scenario.replica(ordinal, settings))
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)))
}

fn report(test: &str, result: &DeliveryCheck) {
    eprintln!("[{test}] {result}");
}

/// Waits for the first `count` fleet messages in `reader` (see [`Scenario::settle`]) and
/// compares what arrived with what was published.
fn settle(
    test: &str,
    s: &Scenario,
    reader: &TopicReader,
    count: u64,
    deadline_secs: u64,
    quiet_secs: u64,
    linger: Duration,
) -> DeliveryCheck {
    let got = s.settle(
        reader,
        count,
        Duration::from_secs(deadline_secs),
        Duration::from_secs(quiet_secs),
        linger,
    );
    let result = check(&got, s.fleet.ids(0, count));
    report(test, &result);
    result
}

fn assert_nothing_lost(test: &str, result: &DeliveryCheck, replicas: &[&BridgeProcess]) {
    let state: Vec<String> = replicas
        .iter()
        .map(|r| format!("{} ({})", r.log_path().display(), bridge_state(r)))
        .collect();
    assert!(
        result.missing.is_empty(),
        "[{test}] {} of {} messages never reached Kafka ({}); bridges: {}",
        result.lost(),
        result.expected,
        result.missing_summary(3),
        state.join("; ")
    );
    assert_eq!(
        result.unexpected, 0,
        "[{test}] records for messages that were never published"
    );
}

/// The bridge's own counters, for failure messages: where did the messages stop?
fn bridge_state(replica: &BridgeProcess) -> String {
    const SHOWN: [&str; 7] = [
        "ehs_bridge_mqtt_messages_received_total",
        "ehs_bridge_kafka_records_produced_total",
        "ehs_bridge_mqtt_acks_sent_total",
        "ehs_bridge_in_flight_messages",
        "ehs_bridge_mqtt_stale_acks_dropped_total",
        "ehs_bridge_mqtt_connected",
        "ehs_bridge_kafka_delivery_failures_total",
    ];
    if !replica.is_ready() && replica.metrics().is_empty() {
        return "not answering".to_owned();
    }
    SHOWN
        .iter()
        .map(|name| {
            let short = name.trim_start_matches("ehs_bridge_");
            format!("{short}={}", replica.metric_sum(name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn received(replica: &BridgeProcess) -> f64 {
    replica.metric_sum("ehs_bridge_mqtt_messages_received_total")
}

/// Publishes the next `count` messages of the fleet in the background.
fn next_batch(
    s: &Scenario,
    published: &mut u64,
    count: u64,
    rate: u32,
) -> tokio::task::JoinHandle<Result<PublishReport, PublishError>> {
    let handle = s.publish_in_background(*published, count, rate);
    *published += count;
    handle
}

fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    condition()
}

/// Two replicas in one share group split the stream: every message exactly once, and each
/// device's messages in publish order (devices publish every 100 ms here, far longer than the
/// bridge takes, as real meters do; a shared subscription does not pin a device to a replica).
#[test]
fn two_replicas_share_the_stream_exactly_once_in_order() {
    const TEST: &str = "share";
    const MESSAGES: u64 = 20_000;
    let s = scenario(TEST, 500);
    let settings = ReplicaSettings::default();
    let a = start(&s, 0, &settings);
    let b = start(&s, 1, &settings);
    let reader = s.readings().expect("read the readings topic");

    let published = s.join(s.publish_in_background(0, MESSAGES, 5_000));
    let result = settle(TEST, &s, &reader, MESSAGES, 90, 20, Duration::from_secs(2));
    eprintln!(
        "[{TEST}] published at {:.0} msg/s; replica 0 took {}, replica 1 took {}",
        published.rate(),
        received(&a),
        received(&b)
    );
    assert_nothing_lost(TEST, &result, &[&a, &b]);
    assert_eq!(
        result.duplicates, 0,
        "[{TEST}] duplicates although nothing failed"
    );
    assert_eq!(
        result.order_violations, 0,
        "[{TEST}] per-device order broken"
    );
    assert_eq!(
        result.devices_split_across_partitions, 0,
        "[{TEST}] a device's records in two partitions"
    );
    assert!(
        received(&a) > 0.0 && received(&b) > 0.0,
        "[{TEST}] one replica took no share of the load"
    );
}

/// A replica killed with SIGKILL mid-stream and restarted under the same client id resumes its
/// persistent session: the broker redelivers what it held, so nothing is lost. Records the
/// dead process produced but never acknowledged come again (at-least-once); they are counted.
#[test]
fn killed_replica_restarted_with_same_identity_loses_nothing() {
    const TEST: &str = "kill-restart";
    const MESSAGES: u64 = 20_000;
    let s = scenario(TEST, 200);
    let settings = ReplicaSettings::default();
    let mut a = start(&s, 0, &settings);
    let b = start(&s, 1, &settings);
    let reader = s.readings().expect("read the readings topic");

    let publishing = s.publish_in_background(0, MESSAGES, 4_000);
    std::thread::sleep(Duration::from_millis(1500));
    let in_flight_at_kill = a.metric_sum("ehs_bridge_in_flight_messages");
    a.kill9().expect("SIGKILL replica 0");
    std::thread::sleep(Duration::from_secs(1));
    let a = start(&s, 0, &settings);
    s.join(publishing);
    let restarted_took = received(&a);

    let result = settle(TEST, &s, &reader, MESSAGES, 90, 20, Duration::from_secs(2));
    eprintln!(
        "[{TEST}] replica 0 had {in_flight_at_kill} messages in flight when killed; after its restart it took {restarted_took} (its session's backlog and new share); {} duplicates",
        result.duplicates
    );
    assert_nothing_lost(TEST, &result, &[&a, &b]);
    // Only what the dead process held unacknowledged can come twice.
    let bound = (settings.max_in_flight + usize::from(settings.receive_maximum)) as u64;
    assert!(
        result.duplicates <= bound,
        "[{TEST}] {} duplicates exceed the in-flight bound {bound}",
        result.duplicates
    );
}

/// Scaling from two replicas to one: the leaving replica gets SIGTERM, stops taking new work,
/// finishes and acknowledges what it holds, and exits within its drain timeout; the other takes
/// over the whole stream. Nothing is lost.
#[test]
fn scale_down_drains_the_leaving_replica_without_loss() {
    const TEST: &str = "scale-down";
    const MESSAGES: u64 = 20_000;
    let s = scenario(TEST, 200);
    let settings = ReplicaSettings {
        drain_timeout_secs: 15,
        ..ReplicaSettings::default()
    };
    let a = start(&s, 0, &settings);
    let mut b = start(&s, 1, &settings);
    let reader = s.readings().expect("read the readings topic");

    let publishing = s.publish_in_background(0, MESSAGES, 4_000);
    std::thread::sleep(Duration::from_millis(1500));
    let sent_term = Instant::now();
    b.sigterm().expect("SIGTERM replica 1");
    let status = b
        .wait_exit(Duration::from_secs(
            u64::from(settings.drain_timeout_secs) + 10,
        ))
        .unwrap_or_else(|error| {
            panic!(
                "[{TEST}] {}; log {}",
                error_chain(&error),
                b.log_path().display()
            )
        });
    let drained_in = sent_term.elapsed();
    let leaving_took = received(&a);
    s.join(publishing);

    let result = settle(TEST, &s, &reader, MESSAGES, 90, 20, Duration::from_secs(2));
    eprintln!("[{TEST}] replica 1 drained and exited ({status}) in {drained_in:?}; replica 0 had taken {leaving_took} by then");
    assert!(
        status.success(),
        "[{TEST}] draining replica exited with {status}; log {}",
        b.log_path().display()
    );
    assert_nothing_lost(TEST, &result, &[&a, &b]);
}

/// A replica killed with SIGKILL that never comes back: its persistent session keeps taking its
/// round-robin share of the group's messages until the session expires, and the broker then
/// discards them. That is the stranding bound the README states: at most what was in flight at
/// the replica (receive maximum) plus its share (1/replicas) of the message rate for the
/// session expiry interval; after expiry, nothing more is stranded.
#[test]
fn replica_that_never_returns_strands_at_most_its_share_until_session_expiry() {
    const TEST: &str = "stranded";
    const RATE: u32 = 1_000;
    const EXPIRY_SECS: u32 = 6;
    // The broker checks expiry periodically and notices the dead connection a moment later.
    const SLACK_SECS: u32 = 3;
    let s = scenario(TEST, 100);
    let settings = ReplicaSettings {
        session_expiry_secs: EXPIRY_SECS,
        receive_maximum: 50,
        max_in_flight: 100,
        ..ReplicaSettings::default()
    };
    let mut a = start(&s, 0, &settings);
    let b = start(&s, 1, &settings);
    let reader = s.readings().expect("read the readings topic");

    // Phase 1 runs from 2 s before the kill until well after the session expired.
    let before_kill = u64::from(2 * RATE);
    let phase1 = before_kill + u64::from((EXPIRY_SECS + 2 * SLACK_SECS) * RATE);
    let publishing = s.publish_in_background(0, phase1, RATE);
    std::thread::sleep(Duration::from_secs(2));
    a.kill9().expect("SIGKILL replica 0");
    let killed_at = Instant::now();
    s.join(publishing);
    // Phase 2 starts only after expiry + slack: every message must reach the survivor.
    let phase2 = u64::from(3 * RATE);
    assert!(killed_at.elapsed() >= Duration::from_secs(u64::from(EXPIRY_SECS + SLACK_SECS)));
    s.join(s.publish_in_background(phase1, phase2, RATE));

    let total = phase1 + phase2;
    let result = settle(TEST, &s, &reader, total, 60, 10, Duration::from_secs(1));
    assert_eq!(
        result.unexpected, 0,
        "[{TEST}] records for messages that were never published"
    );
    // Publish time of a message relative to the kill, from its place in the paced schedule.
    let after_kill_secs =
        |id: &MessageId| (s.fleet.index(*id) as f64 - before_kill as f64) / f64::from(RATE);
    let stranded: Vec<f64> = result.missing.iter().map(after_kill_secs).collect();
    let first = stranded.iter().copied().fold(f64::INFINITY, f64::min);
    let last = stranded.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let share = 1.0 / 2.0;
    let bound = u64::from(settings.receive_maximum)
        + (f64::from(RATE) * share * f64::from(EXPIRY_SECS + SLACK_SECS)).ceil() as u64;
    let after_expiry = result
        .missing
        .iter()
        .filter(|id| s.fleet.index(**id) >= phase1)
        .count();
    eprintln!(
        "[{TEST}] stranded: {} of {total} messages, published from {first:.2} s to {last:.2} s after the kill \
         (session expiry {EXPIRY_SECS} s, {RATE} msg/s, 2 replicas, receive maximum {}); bound: {} + {share} × {RATE} × ({EXPIRY_SECS} + {SLACK_SECS}) = {bound}; \
         stranded among the {phase2} published after expiry: {after_expiry}",
        result.lost(),
        settings.receive_maximum,
        settings.receive_maximum,
    );
    assert!(
        result.lost() <= bound,
        "[{TEST}] {} stranded, more than the bound {bound}",
        result.lost()
    );
    assert!(
        last <= f64::from(EXPIRY_SECS + SLACK_SECS),
        "[{TEST}] a message published {last:.2} s after the kill was stranded, after the {EXPIRY_SECS} s session expiry"
    );
    assert_eq!(
        after_expiry, 0,
        "[{TEST}] messages published after session expiry were stranded"
    );
    assert!(
        received(&b) > 0.0,
        "[{TEST}] the surviving replica took nothing"
    );
}

/// Kafka stopped, then started; then frozen with SIGSTOP (sockets open, no answers) and thawed.
/// The bridge stops acknowledging (the broker keeps the QoS 1 messages), reports not ready,
/// stays within bounded memory, and resumes by itself: nothing is lost.
#[test]
fn kafka_outage_and_freeze_lose_nothing_and_flow_resumes() {
    const TEST: &str = "kafka-outage";
    let s = scenario(TEST, 100);
    let settings = ReplicaSettings {
        max_in_flight: 500,
        receive_maximum: 200,
        ..ReplicaSettings::default()
    };
    let bridge = start(&s, 0, &settings);
    let reader = s.readings().expect("read the readings topic");
    let mut published = 0;

    // Warm-up: the flow works.
    s.join(next_batch(&s, &mut published, 2_000, 2_000));
    let warm = settle(
        &format!("{TEST}/warm-up"),
        &s,
        &reader,
        published,
        60,
        20,
        Duration::ZERO,
    );
    assert_nothing_lost(&format!("{TEST}/warm-up"), &warm, &[&bridge]);
    drop(reader);
    let rss_before = bridge.peak_rss_kib().unwrap_or(0);

    // Stopped Kafka.
    s.stack
        .stop_kafka()
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let stopped_at = Instant::now();
    let unready = wait_until(Duration::from_secs(30), || !bridge.is_ready());
    let outage = next_batch(&s, &mut published, 20_000, 5_000);
    s.join(outage);
    std::thread::sleep(Duration::from_secs(3));
    let in_flight_during_stop = bridge.metric_sum("ehs_bridge_in_flight_messages");
    let rss_during_stop = bridge.rss_kib().unwrap_or(0);
    s.stack
        .start_kafka()
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    eprintln!("[{TEST}] Kafka was down {:?}", stopped_at.elapsed());
    let ready_again = wait_until(Duration::from_secs(60), || bridge.is_ready());
    // A fresh reader after each outage: the verdict must not depend on how this test's own
    // consumer rode out the outage.
    let reader = s.readings().expect("read the readings topic");
    let after_stop = settle(
        &format!("{TEST}/stop"),
        &s,
        &reader,
        published,
        120,
        45,
        Duration::ZERO,
    );
    eprintln!(
        "[{TEST}/stop] not ready while stopped: {unready}; ready again: {ready_again}; in flight while stopped: {in_flight_during_stop} (max {}); RSS {} KiB before, {} KiB during",
        settings.max_in_flight, rss_before, rss_during_stop
    );
    eprintln!("[{TEST}/stop] bridge: {}", bridge_state(&bridge));
    assert_nothing_lost(&format!("{TEST}/stop"), &after_stop, &[&bridge]);
    assert!(
        unready,
        "[{TEST}] /readyz still said ready 30 s after Kafka stopped"
    );
    assert!(
        ready_again,
        "[{TEST}] /readyz not ready 60 s after Kafka came back"
    );
    assert!(
        in_flight_during_stop <= settings.max_in_flight as f64,
        "[{TEST}] {in_flight_during_stop} in flight, above max in flight {}",
        settings.max_in_flight
    );

    // Frozen Kafka.
    s.stack
        .pause_kafka()
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let frozen_at = Instant::now();
    let freeze = next_batch(&s, &mut published, 10_000, 5_000);
    let unready_frozen = wait_until(Duration::from_secs(30), || !bridge.is_ready());
    s.join(freeze);
    let in_flight_frozen = bridge.metric_sum("ehs_bridge_in_flight_messages");
    s.stack
        .resume_kafka()
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    eprintln!("[{TEST}] Kafka was frozen {:?}", frozen_at.elapsed());
    let ready_after_thaw = wait_until(Duration::from_secs(60), || bridge.is_ready());
    let reader = s.readings().expect("read the readings topic");
    let after_freeze = settle(
        &format!("{TEST}/freeze"),
        &s,
        &reader,
        published,
        120,
        45,
        Duration::from_secs(1),
    );
    let peak = bridge.peak_rss_kib().unwrap_or(0);
    eprintln!(
        "[{TEST}/freeze] not ready while frozen: {unready_frozen}; ready after thaw: {ready_after_thaw}; in flight while frozen: {in_flight_frozen}; bridge peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    eprintln!("[{TEST}/freeze] bridge: {}", bridge_state(&bridge));
    assert_nothing_lost(&format!("{TEST}/freeze"), &after_freeze, &[&bridge]);
    assert!(
        unready_frozen,
        "[{TEST}] /readyz still said ready 30 s into the Kafka freeze"
    );
    assert!(
        ready_after_thaw,
        "[{TEST}] /readyz not ready 60 s after Kafka thawed"
    );
    assert!(
        in_flight_frozen <= settings.max_in_flight as f64,
        "[{TEST}] {in_flight_frozen} in flight while frozen"
    );
    // 30 000 messages waited at the broker during the outages; bounded memory means the
    // bridge held only its in-flight window of them.
    assert!(
        peak <= 64 * 1024,
        "[{TEST}] bridge peak RSS {peak} KiB above 64 MiB"
    );
}

/// Bad input goes to the dead-letter topic with its reason, and good messages keep flowing.
#[test]
fn malformed_messages_are_dead_lettered_with_their_reason() {
    const TEST: &str = "dead-letters";
    const GOOD: u64 = 200;
    const MAX_PAYLOAD: usize = 1024;
    let s = scenario(TEST, 10);
    let home = &s.fleet.home;
    let mut spec = s.replica(0, &ReplicaSettings::default());
    // `{metric}` in the pattern names the value of numeric topics; telemetry topics are JSON.
    spec.topic_pattern = "ehs/{home}/{device}/{metric}".to_owned();
    spec.filters = vec![format!("ehs/{home}/#")];
    spec.payload_routes = format!(
        "ehs/{home}/+/telemetry={},ehs/{home}/+/power_w={}",
        PayloadAdapter::FlatJson.name(),
        PayloadAdapter::Numeric.name()
    );
    spec.max_payload_bytes = Some(MAX_PAYLOAD);
    let bridge = s
        .start(&spec)
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let readings = s.readings().expect("read the readings topic");
    let dead_letters = s.dead_letter_reader().expect("read the dead-letter topic");

    let device = s.fleet.device_name(0);
    let telemetry = s.fleet.topic(0);
    let oversize = format!(
        r#"{{"ts":1764064800000,"power_w":1.0,"pad":"{}"}}"#,
        "x".repeat(MAX_PAYLOAD)
    );
    let fields: Vec<String> = (0..=BridgeConfig::default().max_readings_per_message)
        .map(|i| format!("\"m{i}\":0"))
        .collect();
    let too_many_readings = format!("{{{}}}", fields.join(","));
    let bad: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "bad-json",
            telemetry.clone(),
            b"{\"ts\": 17, \"power_w\": ".to_vec(),
            "unparseable",
        ),
        (
            "not-utf8",
            telemetry.clone(),
            vec![0xff, 0xfe, 0x00],
            "unparseable",
        ),
        (
            "oversize",
            telemetry.clone(),
            oversize.into_bytes(),
            "oversize",
        ),
        (
            "no-route",
            format!("ehs/{home}/{device}/firmware"),
            b"{\"v\":1}".to_vec(),
            "unmapped",
        ),
        (
            "no-pattern",
            format!("ehs/{home}/{device}/a/b"),
            b"{\"power_w\":1}".to_vec(),
            "unmapped",
        ),
        (
            "text-value",
            format!("ehs/{home}/{device}/power_w"),
            b"on".to_vec(),
            "non-numeric",
        ),
        (
            "no-metrics",
            telemetry.clone(),
            b"{\"status\":\"ok\"}".to_vec(),
            "non-numeric",
        ),
        (
            "fan-out",
            telemetry.clone(),
            too_many_readings.into_bytes(),
            "too-many-readings",
        ),
    ];
    let case_property = "case";
    let mut messages = Vec::new();
    for seq in 0..GOOD {
        // Good and bad interleaved, so bad input visibly does not stop the stream.
        let id = s.fleet.message(seq);
        messages.push(RawMessage {
            topic: s.fleet.topic(id.device),
            payload: payload(id.seq, 1_764_064_800_000).into_bytes(),
            user_properties: vec![(SEQ_PROPERTY.to_owned(), id.seq.to_string())],
        });
        if let Some((case, topic, body, _)) = bad.get(seq as usize) {
            messages.push(RawMessage {
                topic: topic.clone(),
                payload: body.clone(),
                user_properties: vec![(case_property.to_owned(), (*case).to_owned())],
            });
        }
    }
    messages.push(RawMessage {
        topic: format!("ehs/{home}/{device}/power_w"),
        payload: b"412.5".to_vec(),
        user_properties: vec![(case_property.to_owned(), "numeric-ok".to_owned())],
    });
    s.runtime
        .block_on(publish_raw(&s.stack, &format!("{}-raw", s.name), messages))
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));

    let case_header = format!("{}{case_property}", headers::USER_PROPERTY_PREFIX);
    let expected_cases = bad.len();
    dead_letters.wait_for(
        Duration::from_secs(60),
        Duration::from_secs(30),
        |records| records.len() >= expected_cases,
    );
    let result = settle(TEST, &s, &readings, GOOD, 60, 20, Duration::from_secs(1));
    assert_nothing_lost(TEST, &result, &[&bridge]);
    let numeric_ok = readings
        .snapshot()
        .iter()
        .any(|record| record.header_str(&case_header) == Some("numeric-ok"));
    assert!(
        numeric_ok,
        "[{TEST}] the valid numeric payload did not reach the readings topic"
    );

    let dead = dead_letters.snapshot();
    for (case, topic, body, reason) in &bad {
        let record = dead
            .iter()
            .find(|record| record.header_str(&case_header) == Some(*case));
        let Some(record) = record else {
            panic!(
                "[{TEST}] `{case}` on {topic} is not in the dead-letter topic; got {} records",
                dead.len()
            );
        };
        let got_reason = record.header_str(headers::DEAD_LETTER_REASON);
        eprintln!(
            "[{TEST}] {case}: reason {got_reason:?}, {} payload bytes kept",
            record.payload.len()
        );
        assert_eq!(
            got_reason,
            Some(*reason),
            "[{TEST}] `{case}` dead-lettered with the wrong reason"
        );
        assert_eq!(
            record.header_str(headers::MQTT_TOPIC),
            Some(topic.as_str()),
            "[{TEST}] `{case}`: topic header"
        );
        if *case != "oversize" {
            assert_eq!(
                &record.payload, body,
                "[{TEST}] `{case}`: the original payload is kept"
            );
        }
    }
    assert_eq!(dead.len(), bad.len(), "[{TEST}] unexpected dead letters");
    let counted = bridge.metric_sum("ehs_bridge_dead_lettered_total");
    assert_eq!(
        counted,
        bad.len() as f64,
        "[{TEST}] dead_lettered_total counts every dead letter"
    );
}
