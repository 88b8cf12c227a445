//! The `sales` binary refuses bad input with a clear message, a non-zero exit and no change.

use std::process::{Command, Output};

/// Runs `sales` against a store of its own, with no broker (events stay queued in the outbox).
struct Sales {
    dir: tempfile::TempDir,
}

impl Sales {
    fn run(&self, args: &[&str]) -> Output {
        let store = self.dir.path().join("sales.db");
        Command::new(env!("CARGO_BIN_EXE_sales"))
            .args(["--bootstrap-servers", "127.0.0.1:1", "--database-url", store.to_str().unwrap()])
            .args(args)
            .output()
            .expect("run sales")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Asserts that `args` fails with `message`, and that the store is as it was.
    fn refused(&self, args: &[&str], message: &str) {
        let before = self.ok(&["--json", "list"]);
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} must fail");
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
