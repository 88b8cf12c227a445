use std::process::ExitCode;

use clap::Parser;
use edison_sales::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    edison_common::telemetry::init_logging();
    match edison_sales::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sales: {error:#}");
            ExitCode::FAILURE
        }
    }
}
