//! `shipping`: shipments due by ISO week.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main(edison_consumers::departments::Shipping).await
}
