//! `billing`: invoices, credit notes and revenue by month.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main(edison_consumers::departments::Billing).await
}
