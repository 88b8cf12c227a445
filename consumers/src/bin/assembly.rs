//! `assembly`: the build queue of paid orders, by expected delivery.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main(edison_consumers::departments::Assembly).await
}
