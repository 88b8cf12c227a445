//! `mailer`: an alias of `edison mailer`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_as("mailer").await
}
