//! `assembly`: an alias of `edison assembly`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("assembly").await
}
