//! `sqlx::migrate!` embeds each department's migration files when the crate compiles, but cargo
//! recompiles only when a Rust source changes: a new migration alone would be left out.
fn main() {
    println!("cargo:rerun-if-changed=src/departments");
}
