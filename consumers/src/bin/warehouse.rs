//! `warehouse`: battery reservations per order.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main(edison_consumers::departments::Warehouse).await
}
