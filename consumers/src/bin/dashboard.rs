//! `dashboard`: an alias of `edison dashboard`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("dashboard").await
}
