//! The local broker stack (`scripts/local-stack`): where its brokers listen, whether they are up,
//! and the Kafka outages the failure tests inject through it.

use std::fs::File;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Variables `scripts/local-stack env` exports; defaults are the script's own addresses.
const MQTT_URL_VAR: &str = "EHS_STACK_MQTT_URL";
const KAFKA_BOOTSTRAP_VAR: &str = "EHS_STACK_KAFKA_BOOTSTRAP";
const DEFAULT_MQTT_URL: &str = "mqtt://127.0.0.1:1883";
const DEFAULT_KAFKA_BOOTSTRAP: &str = "127.0.0.1:9092";

/// Set by `scripts/local-stack env`: the script that manages this stack.
const SCRIPT_VAR: &str = "EHS_STACK_SCRIPT";

/// Every harness user (each test, the benchmark) holds a lock per stack while it talks to the
/// brokers: the failure tests stop and freeze the one Kafka, and the benchmark's figures mean
/// nothing while another load runs next to it. Named after the MQTT port, so stacks on other
/// ports (another run dir) do not wait for each other.
const LOCK_DIR: &str = "/tmp";

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "the local broker stack is not running: {service} does not accept connections on {address}. \
         Start it first with `scripts/local-stack start` (addresses come from \
         {MQTT_URL_VAR} / {KAFKA_BOOTSTRAP_VAR}, default {DEFAULT_MQTT_URL} and {DEFAULT_KAFKA_BOOTSTRAP})"
    )]
    NotRunning {
        service: &'static str,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{value}` from {variable} is not a host:port address")]
    BadAddress {
        variable: &'static str,
        value: String,
    },
    #[error("cannot run `{script} {args}`")]
    Spawn {
        script: String,
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{script} {args}` failed with {status}: {stderr}")]
    ScriptFailed {
        script: String,
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot take the stack lock {path}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Broker addresses of the running local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub mqtt_url: String,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub kafka_bootstrap: String,
    script: PathBuf,
}

impl Stack {
    /// Reads the addresses and checks that both brokers accept TCP connections, so a test run
    /// without the stack fails at once with the command that fixes it.
    pub fn require_running(workspace_root: &Path) -> Result<Self, StackError> {
        let mqtt_url = std::env::var(MQTT_URL_VAR).unwrap_or_else(|_| DEFAULT_MQTT_URL.to_owned());
        let kafka_bootstrap = std::env::var(KAFKA_BOOTSTRAP_VAR)
            .unwrap_or_else(|_| DEFAULT_KAFKA_BOOTSTRAP.to_owned());
        let mqtt_address = mqtt_url
            .trim_start_matches("mqtt://")
            .trim_end_matches('/')
            .to_owned();
        let (mqtt_host, mqtt_port) =
            split_host_port(&mqtt_address).ok_or_else(|| StackError::BadAddress {
                variable: MQTT_URL_VAR,
                value: mqtt_url.clone(),
            })?;
        let kafka_first = kafka_bootstrap
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned();
        probe("Mosquitto (MQTT)", &mqtt_address, MQTT_URL_VAR)?;
        probe("Kafka", &kafka_first, KAFKA_BOOTSTRAP_VAR)?;
        Ok(Self {
            mqtt_url,
            mqtt_host,
            mqtt_port,
            kafka_bootstrap,
            script: std::env::var_os(SCRIPT_VAR).map_or_else(
                || workspace_root.join("scripts").join("local-stack"),
                PathBuf::from,
            ),
        })
    }

    /// Blocks until no other harness user holds the stack; released when the guard drops.
    pub fn exclusive(&self) -> Result<StackLock, StackError> {
        let path = format!("{LOCK_DIR}/ehs-local-stack-{}.lock", self.mqtt_port);
        let lock_error = |source| StackError::Lock {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        file.lock().map_err(lock_error)?;
        Ok(StackLock { _file: file })
    }

    /// Runs `scripts/local-stack <args>` and waits for it.
    pub fn run_script(&self, args: &[&str]) -> Result<String, StackError> {
        let script = self.script.display().to_string();
        let joined = args.join(" ");
        let output = Command::new(&self.script)
            .args(args)
            .output()
            .map_err(|source| StackError::Spawn {
                script: script.clone(),
                args: joined.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(StackError::ScriptFailed {
                script,
                args: joined,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn stop_kafka(&self) -> Result<(), StackError> {
        self.run_script(&["stop", "kafka"]).map(drop)
    }

    pub fn start_kafka(&self) -> Result<(), StackError> {
        self.run_script(&["start", "kafka"]).map(drop)
    }

    /// Freezes Kafka with SIGSTOP: its sockets stay open but nothing answers, the failure mode
    /// that hangs clients waiting for replies.
    pub fn pause_kafka(&self) -> Result<(), StackError> {
        self.run_script(&["pause", "kafka"]).map(drop)
    }

    pub fn resume_kafka(&self) -> Result<(), StackError> {
        self.run_script(&["resume", "kafka"]).map(drop)
    }

    /// True when Kafka accepts TCP connections (not whether it answers requests).
    pub fn kafka_accepts_connections(&self) -> bool {
        let first = self.kafka_bootstrap.split(',').next().unwrap_or_default();
        resolve(first)
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
    }
}

/// Held while a test or the benchmark uses the brokers; see [`Stack::exclusive`].
pub struct StackLock {
    _file: File,
}

fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

fn resolve(address: &str) -> Option<SocketAddr> {
    address.to_socket_addrs().ok()?.next()
}

fn probe(service: &'static str, address: &str, variable: &'static str) -> Result<(), StackError> {
    let socket = resolve(address).ok_or_else(|| StackError::BadAddress {
        variable,
        value: address.to_owned(),
    })?;
    TcpStream::connect_timeout(&socket, Duration::from_secs(2))
        .map(drop)
        .map_err(|source| StackError::NotRunning {
            service,
            address: address.to_owned(),
            source,
        })
}
