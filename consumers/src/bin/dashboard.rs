//! `dashboard`: sales statistics by model and day.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main(edison_consumers::departments::Dashboard).await
}
