//! `shipping`: an alias of `edison shipping`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("shipping").await
}
