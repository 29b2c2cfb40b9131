use std::process::ExitCode;

use clap::Parser;
use ehs_bridge::config::Args;
use ehs_bridge::logging::error_chain;

/// Invalid configuration: the same exit code clap uses for bad arguments.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let config = match Args::parse().validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ehs-bridge: invalid configuration: {}", error_chain(&error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = ehs_bridge::logging::init(config.log_format, &config.log_level) {
        eprintln!("ehs-bridge: invalid configuration: {}", error_chain(&error));
        return ExitCode::from(EXIT_CONFIG);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "ehs-bridge failed");
            ExitCode::FAILURE
        }
    }
}

fn run(config: ehs_bridge::config::Config) -> anyhow::Result<()> {
    // One thread: the MQTT loop, the acknowledger and the HTTP server are light, and a second
    // worker cost more than it gave (tasks woken across workers park and unpark threads at
    // every message; measured 0.3-0.8 context switches per message). librdkafka runs its own
    // threads, and blocking calls go to tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ehs_bridge::run::run(config))?;
    Ok(())
}
