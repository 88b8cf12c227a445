//! `billing`: an alias of `edison billing`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("billing").await
}
