//! The `sales` binary refuses bad input with a clear message, a non-zero exit and no change, and
//! a command that only reads never creates a store.

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{Connection, Executor, SqliteConnection};

/// Runs `sales` on the store at `store`, with no broker (events stay queued in the outbox).
fn sales(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sales"))
        .args(["--bootstrap-servers", "127.0.0.1:1", "--database-url", store.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run sales")
}

/// Asserts that `output` is a failure, and returns its stderr.
fn failed(output: &Output, args: &[&str]) -> String {
    assert!(!output.status.success(), "{args:?} must fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `sales` against a store of its own.
struct Sales {
    dir: tempfile::TempDir,
}

impl Sales {
    fn run(&self, args: &[&str]) -> Output {
        sales(&self.dir.path().join("sales.db"), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Asserts that `args` fails with `message`, and that the store is as it was.
    fn refused(&self, args: &[&str], message: &str) {
        let before = self.ok(&["--json", "list"]);
        let stderr = failed(&self.run(args), args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(self.ok(&["--json", "list"]), before, "{args:?} changed the store");
    }
}

fn order_id(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["order"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn illegal_commands_fail_clearly_and_change_nothing() {
    let sales = Sales { dir: tempfile::tempdir().unwrap() };
    let place = ["--json", "place", "--model", "F", "--customer-name", "Ada", "--email", "ada@example.com", "--address", "1 Way"];
    let paid = order_id(&sales.ok(&place));
    let cancelled = order_id(&sales.ok(&place));
    sales.ok(&["pay", &paid]);
    sales.ok(&["cancel", &cancelled]);

    sales.refused(&["pay", "01a214cf-0000-7000-8000-000000000000"], "no order");
    sales.refused(&["pay", "not-an-id"], "not-an-id");
    sales.refused(&["pay", &paid], "paid");
    sales.refused(&["pay", &cancelled], "cancelled");
    sales.refused(&["cancel", &cancelled], "cancelled");
    sales.refused(&["amend", &paid, "--model", "H"], "paid");
    sales.refused(&["place", "--model", "Z", "--customer-name", "A", "--email", "a@b.co", "--address", "x"], "unknown model");
    sales.refused(&["place", "--model", "F", "--customer-name", "A", "--email", "nope", "--address", "x"], "email");
    sales.refused(&["simulate", "--orders", "10", "--rate=-5"], "rate");
    sales.refused(&["simulate", "--orders", "0"], "orders");
}

#[test]
fn reading_a_missing_store_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("missing/dir/sales.db");
    let message = format!(
        "no Sales store at {}: nothing has been sold with it yet (`sales place` or `sales simulate` creates it)",
        store.display()
    );
    for args in [&["list"][..], &["--json", "list", "--status", "paid"], &["show", "01a214cf-0000-7000-8000-000000000000"]] {
        let stderr = failed(&sales(&store, args), args);
        assert_eq!(stderr.matches(&message).count(), 1, "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

#[tokio::test]
async fn a_failure_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let place = ["place", "--model", "F", "--customer-name", "Ada", "--email", "ada@example.com", "--address", "1 Way"];
    let stderr = failed(&sales(&dir.path().join("file/dir/sales.db"), &place), &place);
    assert!(stderr.contains("cannot create the database directory"), "{stderr}");
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");

    // A store that lost its orders table fails on the first query, past opening.
    let store = dir.path().join("sales.db");
    assert!(sales(&store, &place).status.success());
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", store.display())).await.unwrap();
    conn.execute("ALTER TABLE orders RENAME TO lost").await.unwrap();
    conn.close().await.unwrap();
    let stderr = failed(&sales(&store, &["list"]), &["list"]);
    assert_eq!(stderr.matches("no such table: orders").count(), 1, "{stderr}");
}
