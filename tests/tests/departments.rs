//! The department registry is the one list: `edison`, its aliases and the scripts all read it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use edison_consumers::departments::{Warehouse, DEPARTMENTS};
use support::*;

fn edison() -> PathBuf {
    binary("edison-consumers", "edison")
}

fn script(name: &str) -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name));
    // The debug binaries this test built, as they are.
    command
        .env("EDISON_NO_BUILD", "1")
        .env("EDISON_BIN_DIR", edison().parent().unwrap())
        .env_remove("DATABASE_URL");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn names() -> Vec<&'static str> {
    DEPARTMENTS.iter().map(|department| department.name).collect()
}

#[test]
fn edison_lists_the_registry_and_an_alias_is_the_same_command() {
    let output = Command::new(edison()).arg("departments").output().unwrap();
    assert!(output.status.success());
    assert_eq!(stdout(&output).lines().collect::<Vec<_>>(), names());

    for (name, args) in [("warehouse", &["run", "--help"][..]), ("dashboard", &["--help"]), ("dashboard", &["serve", "--help"])] {
        let via_edison = Command::new(edison()).arg(name).args(args).output().unwrap();
        let via_alias = Command::new(binary("edison-consumers", name)).args(args).output().unwrap();
        assert!(via_edison.status.success() && via_alias.status.success(), "{name} {args:?}");
        assert_eq!(
            stdout(&via_edison).replace(&format!("edison {name}"), name),
            stdout(&via_alias),
            "the alias takes exactly edison {name}'s flags"
        );
    }
    let serves = |name: &str| stdout(&Command::new(edison()).args([name, "--help"]).output().unwrap()).contains("\n  serve ");
    assert!(serves("dashboard") && !serves("warehouse"), "only the dashboard serves a page");

    let unknown = Command::new(edison()).args(["sales", "run"]).output().unwrap();
    assert!(!unknown.status.success(), "sales is not a department");
}

#[test]
fn reset_offsets_names_the_registered_departments_for_an_unknown_one() {
    let output = script("reset-offsets").args(["nosuch", "--to-earliest"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown department nosuch"), "{stderr}");
    for name in names() {
        assert!(stderr.contains(name), "{name} missing: {stderr}");
    }
}

/// The demo prints `scripts/status --topic T --data-dir data/demo`: that hint must find the
/// stores the demo wrote, and status must cover every registered department.
#[tokio::test(flavor = "multi_thread")]
async fn status_covers_every_department_and_finds_stores_in_a_data_dir() {
    let topic = orders_topic(2).await;
    produce_events(&topic, &lifecycles(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::at(&format!("sqlite://{}/warehouse.db", dir.path().display()));
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;

    let output = script("status")
        .args(["--json", "--bootstrap-servers", &bootstrap(), "--topic", &topic, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
    let statuses: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    let departments: Vec<&str> = statuses.iter().map(|s| s["department"].as_str().unwrap_or_default()).collect();
    assert_eq!(departments, names(), "{statuses:?}");
    for status in &statuses {
        let note = status["database_note"].as_str();
        if status["department"] == "warehouse" {
            assert_eq!(note, None, "the warehouse's store in the data dir is found: {status}");
            assert!(status["last_applied_ms"].as_i64().is_some(), "{status}");
        } else {
            assert!(note.is_some_and(|note| note.contains("has not run")), "{status}");
        }
    }
    assert!(!dir.path().join("billing.db").exists(), "status creates no store");
}
