//! The ehs-bridge binary never prints a password: not when it refuses a configuration, not in
//! `--help`, and not while it runs with every log target at `trace` and librdkafka's debug
//! output on. A fake MQTT broker records what the bridge sends it, which shows the password was
//! read and used, so its absence from the output is redaction and not a missing value. Needs no
//! running stack.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BRIDGE: &str = env!("CARGO_BIN_EXE_ehs-bridge");
const SENTINEL: &str = "Sentinel-Pa55word-0815";

fn bridge() -> Command {
    let mut command = Command::new(BRIDGE);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("EHS_")) {
        command.env_remove(name);
    }
    command
        .args(["--mqtt-client-id", "ehs-bridge-0"])
        .args(["--kafka-topic", "ehs.readings"])
        .args(["--kafka-dead-letter-topic", "ehs.readings.dlq"])
        .args(["--http-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_no_secret(output: &str) {
    assert!(!output.contains(SENTINEL), "secret printed:\n{output}");
    assert!(
        !output.contains("Pa55word"),
        "part of a secret printed:\n{output}"
    );
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
}

fn credential_files() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-secrets");
    std::fs::create_dir_all(&dir).expect("dir");
    let (user, pass) = (dir.join("username"), dir.join("password"));
    std::fs::write(&user, "bridge\n").expect("write");
    std::fs::write(&pass, format!("{SENTINEL}\n")).expect("write");
    (user, pass)
}

#[test]
fn a_refused_url_with_credentials_is_printed_redacted() {
    let output = bridge()
        .args([
            "--mqtt-url",
            &format!("mqtt://bridge:{SENTINEL}@broker:1883"),
        ])
        .args(["--kafka-bootstrap-servers", "127.0.0.1:9092"])
        .output()
        .expect("run");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("mqtt://[redacted]@broker:1883"), "{text}");
    assert_no_secret(&text);

    let output = bridge()
        .args(["--mqtt-url", "mqtt://broker:1883"])
        .args(["--kafka-bootstrap-servers", "127.0.0.1:9092"])
        .args([
            "--kafka-producer-overrides",
            &format!("sasl.password={SENTINEL}"),
        ])
        .output()
        .expect("run");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("`sasl.password`"), "{text}");
    assert_no_secret(&text);
}

#[test]
fn help_hides_environment_values_that_may_hold_secrets() {
    let output = bridge()
        .env("EHS_MQTT_URL", format!("mqtt://bridge:{SENTINEL}@broker"))
        .env(
            "EHS_KAFKA_PRODUCER_OVERRIDES",
            format!("sasl.password={SENTINEL}"),
        )
        .arg("--help")
        .output()
        .expect("run");
    let text = printed(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("EHS_MQTT_URL"), "{text}");
    assert_no_secret(&text);
}

#[test]
fn a_running_bridge_logs_no_password_at_trace_level() {
    // The fake broker takes the CONNECT, answers "bad user name or password" (MQTT 5 reason
    // 0x86) and closes, so the bridge goes through its refusal and reconnect paths.
    let broker = TcpListener::bind("127.0.0.1:0").expect("bind");
    let broker_address = broker.local_addr().expect("address");
    let (connects, received) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for stream in broker.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let mut buffer = vec![0; 4096];
            let read = stream.read(&mut buffer).unwrap_or(0);
            buffer.truncate(read);
            use std::io::Write;
            let _ = stream.write_all(&[0x20, 0x03, 0x00, 0x86, 0x00]);
            if connects.send(buffer).is_err() {
                return;
            }
        }
    });
    let (user, pass) = credential_files();
    let child = bridge()
        .args(["--mqtt-url", &format!("mqtt://{broker_address}")])
        .args(["--mqtt-username-file", user.to_str().expect("utf8")])
        .args(["--mqtt-password-file", pass.to_str().expect("utf8")])
        .args(["--kafka-bootstrap-servers", &closed_port().to_string()])
        .args(["--kafka-sasl-mechanism", "PLAIN"])
        .args(["--kafka-sasl-username-file", user.to_str().expect("utf8")])
        .args(["--kafka-sasl-password-file", pass.to_str().expect("utf8")])
        .args(["--kafka-producer-overrides", "debug=all"])
        .args(["--log-level", "trace"])
        .args(["--log-format", "text"])
        .spawn()
        .expect("spawn");
    let mut child = Running(Some(child));
    // Two CONNECTs: the first attempt and a reconnect after the refusal.
    for attempt in 0..2 {
        let connect = received
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no MQTT CONNECT number {attempt}"));
        let connect = String::from_utf8_lossy(&connect);
        assert!(connect.contains(SENTINEL), "the password was not used");
    }
    // librdkafka keeps retrying its unreachable broker meanwhile.
    std::thread::sleep(Duration::from_secs(2));
    let output = child.finish();
    let text = printed(&output);
    assert!(text.contains("cannot connect to MQTT"), "{text}");
    assert!(text.contains("librdkafka"), "{text}");
    assert_no_secret(&text);
}

/// Kills the bridge when the test ends, however it ends.
struct Running(Option<std::process::Child>);

impl Running {
    fn finish(&mut self) -> Output {
        let mut child = self.0.take().expect("running");
        let _ = child.kill();
        child.wait_with_output().expect("output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
