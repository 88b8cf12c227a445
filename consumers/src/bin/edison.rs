//! `edison`: every department in one binary (`edison <department> <command>`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main().await
}
