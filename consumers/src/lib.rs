//! The departments: consumers of the `orders` topic, each materialising its own projection.
//!
//! # Layout
//! Each layer uses only those above it in this list (a unit test below checks the `use crate::`
//! lines):
//! - [`runtime`]: all Kafka work, once: consume, decode, batch, apply in one transaction, store
//!   offsets after commit, dead-letter, shutdown, catch-up and its progress bar. A department is
//!   a [`runtime::Projection`]: migrations, `apply`, queries and a report.
//! - [`admin`] (`reset-offsets`, `status`) and [`rebuild`] (shadow rebuilds, snapshots): generic
//!   tools over any projection.
//! - [`command`]: the commands every department has, and the [`command::Department`]
//!   descriptor.
//! - [`departments`]: one module per department, and `DEPARTMENTS`, the registry.
//! - [`web`]: `dashboard serve`, the dashboard department with a live page of its sales and of
//!   every registered department's consumer group (the only layer above the registry that
//!   reads Kafka for all of them).
//! - [`cli`]: the `edison` command line, parsing and dispatch only; `src/bin/` holds one-line
//!   binaries.
//!
//! Below them all: `edison_schemas` (events and codec) and `edison_common` (flags, Kafka
//! configs, topics, database connections, time).

pub mod admin;
pub mod cli;
pub mod command;
pub mod departments;
pub mod rebuild;
pub mod runtime;
pub mod web;

/// jemalloc, not glibc's malloc: a replay allocates and frees a dozen strings per decoded event,
/// across the poll loop and the database's worker thread. Measured on warehouse into SQLite
/// (release, interleaved runs): re-applying 430k events 1.54–1.61 → 1.31–1.32 s, and peak RSS
/// from 100k to 2M events 1.22–1.25x → 1.12–1.18x. mimalloc was as fast at twice the memory.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(test)]
mod layers {
    use std::path::Path;

    /// The modules, lowest layer first. `admin` and `rebuild` share one and never use each other.
    const LAYERS: &[&[&str]] = &[&["runtime"], &["admin", "rebuild"], &["command"], &["departments"], &["web"], &["cli"]];

    fn layer(module: &str) -> usize {
        LAYERS.iter().position(|layer| layer.contains(&module)).unwrap_or_else(|| panic!("module {module} has no layer"))
    }

    /// (file, module) for every `crate::MODULE` in the file or folder at `path`.
    fn uses(path: &Path, found: &mut Vec<(String, String)>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                uses(&entry.unwrap().path(), found);
            }
        } else if path.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(path).unwrap();
            for (at, _) in text.match_indices("crate::") {
                let used = text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push((path.display().to_string(), used));
            }
        }
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut total = 0;
        for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
            let mut found = Vec::new();
            uses(&src.join(module), &mut found);
            uses(&src.join(format!("{module}.rs")), &mut found);
            for (path, used) in &found {
                assert!(
                    used == module || layer(used) < layer(module),
                    "{path} ({module}) uses crate::{used}, which is not in a layer below it"
                );
            }
            total += found.len();
        }
        assert!(total > 20, "the scan found the crate's uses: {total}");
    }
}
