//! A real `ehs-bridge` process under test: configured through the environment variables named in
//! `ehs-contract`, probed over its HTTP endpoints, killed or stopped like Kubernetes would.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ehs_contract::config::BridgeConfig;
use ehs_contract::{env, http, OutputEncoding};

#[derive(Debug, thiserror::Error)]
pub enum BridgeProcessError {
    #[error("cannot start {binary} (build it first: `cargo build --release -p ehs-bridge`)")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create log file {path}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no free local port for the bridge's HTTP server")]
    Port(#[source] std::io::Error),
    #[error("bridge `{client_id}` exited during start-up with {status}; log {log}:\n{tail}")]
    ExitedEarly {
        client_id: String,
        status: ExitStatus,
        log: String,
        tail: String,
    },
    #[error("bridge `{client_id}` not ready: {probe}; log {log}:\n{tail}")]
    NotReady {
        client_id: String,
        probe: String,
        log: String,
        tail: String,
    },
    #[error("cannot signal bridge process {pid}")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("bridge process {pid} did not exit within {waited:?}")]
    NoExit { pid: u32, waited: Duration },
    #[error("cannot wait for bridge process")]
    Wait(#[source] std::io::Error),
}

/// Everything a bridge replica is configured with; [`BridgeSpec::env`] turns it into the
/// environment the bridge reads.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    pub binary: PathBuf,
    pub mqtt_url: String,
    pub client_id: String,
    pub share_group: String,
    pub filters: Vec<String>,
    pub session_expiry_secs: u32,
    pub receive_maximum: u16,
    pub topic_pattern: String,
    pub payload_routes: String,
    pub max_payload_bytes: Option<usize>,
    pub kafka_bootstrap: String,
    pub kafka_topic: String,
    pub dead_letter_topic: String,
    pub output_encoding: OutputEncoding,
    pub max_in_flight: usize,
    pub drain_timeout_secs: u32,
    /// Where the replica's stdout and stderr go.
    pub log_dir: PathBuf,
    /// Settings that replace the ones above, e.g. a rendered environment's
    /// ([`rendered_settings`]).
    pub settings: Vec<(&'static str, String)>,
}

/// Variables a run keeps its own even when replaying a rendered environment: which topics it
/// subscribes and which share group it joins keep concurrent runs apart.
const RUN_OWN_SETTINGS: [&str; 2] = [env::MQTT_FILTERS, env::MQTT_SHARE_GROUP];

/// The bridge's own settings ([`BridgeConfig::FIELDS`]) as a rendered StatefulSet sets them,
/// e.g. `rendered/prod/bridge/statefulset-ehs-bridge.yaml`: the benchmark runs what is
/// deployed instead of a retyped copy. Filters and share group stay the run's own.
pub fn rendered_settings(statefulset: &Path) -> Result<Vec<(&'static str, String)>, String> {
    let text = std::fs::read_to_string(statefulset)
        .map_err(|error| format!("cannot read {}: {error}", statefulset.display()))?;
    let mut lines = text.lines().map(str::trim);
    let mut settings = Vec::new();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("- name: ") else {
            continue;
        };
        let Some((_, variable)) = BridgeConfig::FIELDS
            .iter()
            .find(|(_, variable)| *variable == name)
        else {
            continue;
        };
        let Some(value) = lines.next().and_then(|line| line.strip_prefix("value: ")) else {
            return Err(format!(
                "{}: `{name}` has no literal value on the next line",
                statefulset.display()
            ));
        };
        // The compiler writes plain scalars or double-quoted ones, which are JSON strings.
        let value = if value.starts_with('"') {
            serde_json::from_str(value)
                .map_err(|error| format!("{}: `{name}`: {error}", statefulset.display()))?
        } else {
            value.to_owned()
        };
        if !RUN_OWN_SETTINGS.contains(variable) {
            settings.push((*variable, value));
        }
    }
    let expected = BridgeConfig::FIELDS.len() - RUN_OWN_SETTINGS.len();
    if settings.len() != expected {
        return Err(format!(
            "{}: found {} of the bridge's {expected} settings; render it with `ehs render`",
            statefulset.display(),
            settings.len()
        ));
    }
    Ok(settings)
}

impl BridgeSpec {
    fn env(&self, http_listen: SocketAddr) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (env::MQTT_URL, self.mqtt_url.clone()),
            (env::MQTT_CLIENT_ID, self.client_id.clone()),
            (env::MQTT_SHARE_GROUP, self.share_group.clone()),
            (env::MQTT_FILTERS, self.filters.join(",")),
            (
                env::MQTT_SESSION_EXPIRY_SECS,
                self.session_expiry_secs.to_string(),
            ),
            (env::MQTT_RECEIVE_MAXIMUM, self.receive_maximum.to_string()),
            (env::TOPIC_PATTERN, self.topic_pattern.clone()),
            (env::PAYLOAD_ROUTES, self.payload_routes.clone()),
            (env::KAFKA_BOOTSTRAP_SERVERS, self.kafka_bootstrap.clone()),
            (env::KAFKA_TOPIC, self.kafka_topic.clone()),
            (env::KAFKA_DEAD_LETTER_TOPIC, self.dead_letter_topic.clone()),
            (env::OUTPUT_ENCODING, self.output_encoding.name().to_owned()),
            (env::MAX_IN_FLIGHT, self.max_in_flight.to_string()),
            (env::HTTP_LISTEN, http_listen.to_string()),
            (env::DRAIN_TIMEOUT_SECS, self.drain_timeout_secs.to_string()),
            (env::LOG_FORMAT, "text".to_owned()),
            (env::LOG_LEVEL, "info,rdkafka=warn".to_owned()),
        ];
        if let Some(max) = self.max_payload_bytes {
            vars.push((env::MAX_PAYLOAD_BYTES, max.to_string()));
        }
        vars.retain(|(name, _)| !self.settings.iter().any(|(set, _)| set == name));
        vars.extend(self.settings.iter().cloned());
        vars
    }
}

/// A running replica. Dropping it kills the process (SIGKILL), so a failing test never leaves
/// a bridge behind.
pub struct BridgeProcess {
    spec: BridgeSpec,
    child: Child,
    http: SocketAddr,
    log_path: PathBuf,
    started: Instant,
}

impl BridgeProcess {
    /// Starts the replica and waits until `/readyz` answers 200.
    pub fn start(spec: &BridgeSpec, ready_within: Duration) -> Result<Self, BridgeProcessError> {
        let mut process = Self::spawn(spec)?;
        process.wait_ready(ready_within)?;
        Ok(process)
    }

    /// Starts the replica without waiting for readiness.
    pub fn spawn(spec: &BridgeSpec) -> Result<Self, BridgeProcessError> {
        let http = free_local_port()?;
        std::fs::create_dir_all(&spec.log_dir).map_err(|source| BridgeProcessError::Log {
            path: spec.log_dir.display().to_string(),
            source,
        })?;
        let log_path = spec.log_dir.join(format!("{}.log", spec.client_id));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| BridgeProcessError::Log {
                path: log_path.display().to_string(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| BridgeProcessError::Log {
            path: log_path.display().to_string(),
            source,
        })?;
        let mut command = Command::new(&spec.binary);
        // Only the variables below configure the replica, whatever the caller's shell exports.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("EHS_")) {
            command.env_remove(name);
        }
        command
            .envs(spec.env(http))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|source| BridgeProcessError::Spawn {
                binary: spec.binary.display().to_string(),
                source,
            })?;
        Ok(Self {
            spec: spec.clone(),
            child,
            http,
            log_path,
            started: Instant::now(),
        })
    }

    pub fn spec(&self) -> &BridgeSpec {
        &self.spec
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the replica's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// GET `path` on the replica's HTTP server: status code and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.http, path)
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.get(http::READYZ_PATH), Ok((200, _)))
    }

    pub fn wait_ready(&mut self, within: Duration) -> Result<(), BridgeProcessError> {
        let started = Instant::now();
        let mut last: String;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BridgeProcessError::ExitedEarly {
                    client_id: self.spec.client_id.clone(),
                    status,
                    log: self.log_path.display().to_string(),
                    tail: self.log_tail(30),
                });
            }
            match self.get(http::READYZ_PATH) {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => last = format!("{code} {}", body.trim()),
                Err(error) => last = error.to_string(),
            }
            if started.elapsed() >= within {
                return Err(BridgeProcessError::NotReady {
                    client_id: self.spec.client_id.clone(),
                    probe: format!(
                        "http://{}{} still answered `{last}` after {within:?}",
                        self.http,
                        http::READYZ_PATH
                    ),
                    log: self.log_path.display().to_string(),
                    tail: self.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/metrics` as name (with labels) → value.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let Ok((200, body)) = self.get(http::METRICS_PATH) else {
            return BTreeMap::new();
        };
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// Sum of every series of `metric` whose name (before any labels) matches.
    pub fn metric_sum(&self, metric: &str) -> f64 {
        self.metrics()
            .iter()
            .filter(|(name, _)| name.split('{').next() == Some(metric))
            .map(|(_, value)| value)
            .sum()
    }

    /// Peak resident set size so far (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// Current resident set size (VmRSS), KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// CPU seconds used so far (user + system).
    pub fn cpu_seconds(&self) -> Option<f64> {
        crate::cpu::process_cpu_seconds(self.pid())
    }

    /// SIGKILL, as a crashed node or an OOM kill would, and reap it.
    pub fn kill9(&mut self) -> Result<ExitStatus, BridgeProcessError> {
        self.child
            .kill()
            .map_err(|source| BridgeProcessError::Signal {
                pid: self.pid(),
                source,
            })?;
        self.child.wait().map_err(BridgeProcessError::Wait)
    }

    /// SIGTERM, as Kubernetes sends before removing a pod; the bridge is expected to drain.
    pub fn sigterm(&self) -> Result<(), BridgeProcessError> {
        let pid = self.pid();
        // `kill(1)` rather than libc: the workspace forbids unsafe code.
        let status = Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .status()
            .map_err(|source| BridgeProcessError::Signal { pid, source })?;
        if status.success() {
            Ok(())
        } else {
            Err(BridgeProcessError::Signal {
                pid,
                source: std::io::Error::other(format!("kill exited {status}")),
            })
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Result<ExitStatus, BridgeProcessError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(BridgeProcessError::Wait)? {
                return Ok(status);
            }
            if started.elapsed() >= within {
                return Err(BridgeProcessError::NoExit {
                    pid: self.pid(),
                    waited: within,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_local_port() -> Result<SocketAddr, BridgeProcessError> {
    // The port is released before the bridge binds it; another process could take it in
    // between, which start-up would then report as not ready.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(BridgeProcessError::Port)
}

fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_prod_settings_are_the_bridges_own() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../rendered/prod/bridge/statefulset-ehs-bridge.yaml");
        let settings = rendered_settings(&path).expect("rendered prod settings");
        let value = |name| {
            settings
                .iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value(env::OUTPUT_ENCODING), Some("connect-json"));
        assert_eq!(
            value(env::TOPIC_PATTERN),
            Some("ehs/{home}/{device}/telemetry")
        );
        assert_eq!(value(env::MQTT_FILTERS), None);
        assert!(value(env::PAYLOAD_ROUTES).is_some_and(|routes| routes.contains("exclude=")));
        let missing = std::env::temp_dir().join("ehs-bench-no-such-statefulset.yaml");
        assert!(rendered_settings(&missing).is_err());
    }
}
