use std::process::ExitCode;

use clap::Parser;
use ehs_bridge::config::Args;

/// Invalid configuration: the same exit code clap uses for bad arguments.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let config = match Args::parse().validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ehs-bridge: invalid configuration: {}", chain(&error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = ehs_bridge::logging::init(config.log_format, &config.log_level) {
        eprintln!("ehs-bridge: invalid configuration: {}", chain(&error));
        return ExitCode::from(EXIT_CONFIG);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %chain(error.as_ref()), "ehs-bridge failed");
            ExitCode::FAILURE
        }
    }
}

fn run(config: ehs_bridge::config::Config) -> anyhow::Result<()> {
    // Two workers: the acknowledger can release acks while the MQTT loop is busy reading;
    // librdkafka runs its own threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(ehs_bridge::run::run(config))?;
    Ok(())
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
