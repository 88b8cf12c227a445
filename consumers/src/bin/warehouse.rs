//! `warehouse`: an alias of `edison warehouse`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("warehouse").await
}
