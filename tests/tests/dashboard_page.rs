//! `dashboard serve` in a real browser: Debian's `chromium`, driven by Playwright
//! (`tests/browser/drive.mjs`; `npm ci` there first, as `.ci/run` does). Each test runs Sales,
//! the departments and the page as the real binaries, on its own topic and groups, and waits on
//! what the page shows, never for a fixed time.
//!
//! What the page must show, restated from the issue: the dashboard's figures as its `report`
//! prints them, and as counted here from the log; a new order without a reload; every
//! department's lag as Kafka counts it (log end minus the group's committed offset), growing
//! while the department is stopped and back to zero once it has caught up again; its dead
//! letters and a shadow rebuild's progress; user input as text.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use support::*;

/// How long the page may take to show something that has happened (the first figures need
/// the department to start, the lag a few samples of its groups).
const SHOWS_WITHIN_MS: u64 = 20_000;

/// How long a new order may take to show on the open page: "within a few seconds".
const NEW_ORDER_WITHIN_MS: u64 = 5_000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Headless chromium, one command at a time (see `tests/browser/drive.mjs`).
struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Browser {
    fn open(url: &str) -> Browser {
        let dir = workspace().join("tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is not installed: run `npm ci` in {}",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("drive.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node must be installed");
        let (stdin, answers) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        let mut browser = Browser { child, stdin, answers };
        browser.call(json!({ "op": "open", "url": url }));
        browser
    }

    #[track_caller]
    fn call(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").expect("the driver reads commands");
        let mut line = String::new();
        self.answers.read_line(&mut line).expect("the driver answers");
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?} to {command}"));
        assert_eq!(answer["ok"], true, "{command}: {}", answer["error"].as_str().unwrap_or_default());
        answer["value"].clone()
    }

    #[track_caller]
    fn eval(&mut self, expr: &str) -> Value {
        self.call(json!({ "op": "eval", "expr": expr }))
    }

    /// Waits until `expr` is truthy in the page, and returns its value.
    #[track_caller]
    fn wait(&mut self, expr: &str) -> Value {
        self.wait_within(expr, SHOWS_WITHIN_MS)
    }

    #[track_caller]
    fn wait_within(&mut self, expr: &str, ms: u64) -> Value {
        self.call(json!({ "op": "wait", "expr": expr, "timeout": ms }))
    }

    /// (dialogs opened, page errors, page loads) since `open`.
    fn state(&mut self) -> (Vec<Value>, Vec<Value>, i64) {
        let state = self.call(json!({ "op": "state" }));
        let list = |key: &str| state[key].as_array().cloned().unwrap_or_default();
        (list("dialogs"), list("errors"), state["loads"].as_i64().unwrap_or(0))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Sales store of the test's own and its topic.
struct Sales {
    topic: String,
    store: tempfile::TempDir,
}

impl Sales {
    /// A new topic with 3 partitions, created by Sales as in production.
    fn create() -> Sales {
        let sales = Sales { topic: unique("orders-test-page"), store: tempfile::tempdir().unwrap() };
        sales.run(&["topic", "create", "--partitions", "3"]);
        sales
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(binary("edison-sales", "sales"))
            .args(["--bootstrap-servers", &bootstrap(), "--topic", &self.topic, "--database-url"])
            .arg(self.store.path().join("sales.db"))
            .args(args)
            .output()
            .expect("run sales");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "sales {args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    /// Places an order for `name` and returns its id.
    fn place(&self, name: &str) -> String {
        let out = self.run(&["--json", "place", "--model", "H", "--customer-name", name, "--email", "t@example.com", "--address", "1 Test Road"]);
        let placed: Value = serde_json::from_str(out.trim()).unwrap_or_else(|error| panic!("{error}: {out}"));
        let relay = &placed["relay"];
        assert_eq!(relay["queued"], 0, "the order is published: {placed}");
        placed["order"]["id"].as_str().unwrap_or_else(|| panic!("an order id: {placed}")).to_owned()
    }
}

/// `dashboard serve` on a free port, sampling every second, the other departments' groups
/// named as [`group_for`] names them.
struct Served {
    _process: Process,
    url: String,
    store: Store,
    _logs: tempfile::TempDir,
}

fn serve(topic: &str) -> Served {
    let store = Store::sqlite();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let mut child = Command::new(binary("edison-consumers", "dashboard"))
        .args(department_args(topic, "dashboard", &store))
        .args(["serve", "--listen", "127.0.0.1:0", "--sample-seconds", "1", "--recent", "10"])
        .args(["--group-prefix", &group_for(topic, ""), "--dead-letter-topic", &format!("{topic}.dlq")])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start dashboard serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}: {}", std::fs::read_to_string(&log).unwrap_or_default()))
        .to_owned();
    Served { _process: Process(child), url, store, _logs: logs }
}

/// The text of the element `selector` in the page, `null` while it is missing (a JS expression).
fn text_of(selector: &str) -> String {
    format!("(document.querySelector({})?.textContent ?? null)", json!(selector))
}

/// The dashboard's statistics over every order, counted here from the latest event of each
/// order read back from the topic: (orders, paid, cancelled before payment, cancelled after).
fn counted_from_the_log(topic: &str) -> (i64, i64, i64, i64) {
    let mut counts = (0, 0, 0, 0);
    for event in latest_states(&read_all(topic)).values() {
        let (paid, cancelled) = (event.order.paid_at.is_some(), event.order.cancelled_at.is_some());
        counts.0 += 1;
        counts.1 += i64::from(paid);
        counts.2 += i64::from(cancelled && !paid);
        counts.3 += i64::from(cancelled && paid);
    }
    counts
}

/// The `by model` and `overall` rows of `dashboard report`: label, then the figures as printed
/// (orders, paid, conversion, cancelled, after payment, revenue).
fn report_rows(topic: &str, store: &Store) -> Vec<Vec<String>> {
    let output = Command::new(binary("edison-consumers", "dashboard"))
        .args(department_args(topic, "dashboard", store))
        .arg("report")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{report}");
    let mut section = "";
    let mut rows = Vec::new();
    for line in report.lines() {
        if line.starts_with("  ") && !line.starts_with("    ") {
            section = line.trim();
            continue;
        }
        if section == "by model" || section == "overall" {
            let cells: Vec<&str> = line.split_whitespace().collect();
            // The revenue is the rest of the line: "EUR 1,234.50".
            let mut row: Vec<String> = cells[..6].iter().map(|c| c.to_string()).collect();
            row.push(cells[6..].join(" "));
            rows.push(row);
        }
    }
    assert!(rows.len() >= 2, "{report}");
    rows
}

/// The by-model rows of the page and its totals, as the report's rows.
const PAGE_ROWS: &str = r#"(() => {
  const cell = (row, field) => row.querySelector(`[data-field="${field}"]`).textContent;
  const fields = ['orders', 'paid', 'conversion', 'cancelled', 'cancelled_after_payment', 'revenue'];
  const rows = [...document.querySelectorAll('#by-model tbody tr')].map((row) => [row.dataset.label, ...fields.map((f) => cell(row, f))]);
  const total = (field) => document.querySelector(`[data-total="${field}"] .value`).textContent;
  const before = Number(total('cancelled_before_payment')), after = Number(total('cancelled_after_payment'));
  rows.push(['all', total('orders'), total('paid'), total('conversion'), String(before + after), String(after), total('revenue')]);
  return rows;
})()"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_the_reports_figures_and_a_new_order_without_reload() {
    let sales = Sales::create();
    sales.run(&["simulate", "--orders", "150", "--seed", "12"]);
    let (orders, paid, before_payment, after_payment) = counted_from_the_log(&sales.topic);
    let served = serve(&sales.topic);
    let mut page = Browser::open(&served.url);

    page.wait(&format!("{} === '{orders}'", text_of(r#"[data-total="orders"] .value"#)));
    let figures = |page: &mut Browser| -> Vec<Vec<String>> { serde_json::from_value(page.eval(PAGE_ROWS)).unwrap() };
    let shown = figures(&mut page);
    assert_eq!(shown, report_rows(&sales.topic, &served.store), "the page's figures are the report's");
    let all = shown.last().unwrap();
    assert_eq!(
        (&all[1], &all[2], all[4].parse::<i64>().unwrap(), &all[5]),
        (&orders.to_string(), &paid.to_string(), before_payment + after_payment, &after_payment.to_string()),
        "and those counted from the log"
    );
    assert!(0 < before_payment && 0 < after_payment && paid < orders, "the simulation has every case: {all:?}");

    let id = sales.place("Grace Hopper");
    let listed = format!("{} === 'Grace Hopper'", text_of(&format!(r#"#events li[data-order-id="{id}"] .customer"#)));
    let counted = format!("{} === '{}'", text_of(r#"[data-total="orders"] .value"#), orders + 1);
    page.wait_within(&format!("{listed} && {counted}"), NEW_ORDER_WITHIN_MS);
    let shown = figures(&mut page);
    assert_eq!(shown, report_rows(&sales.topic, &served.store), "still the report's, one order more");
    let (dialogs, errors, loads) = page.state();
    assert_eq!((dialogs.len(), errors, loads), (0, vec![], 1), "shown live: the page never reloaded");

    let shot = workspace().join("target/dashboard-page.png");
    page.call(json!({ "op": "screenshot", "path": shot }));
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "{}", shot.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_name_is_shown_as_text_and_runs_nothing() {
    let sales = Sales::create();
    let names = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"];
    let ids: Vec<String> = names.iter().map(|name| sales.place(name)).collect();
    let served = serve(&sales.topic);
    let mut page = Browser::open(&served.url);

    for (id, name) in ids.iter().zip(names) {
        let customer = format!(r#"#events li[data-order-id="{id}"] .customer"#);
        page.wait(&format!("{} !== null", text_of(&customer)));
        assert_eq!(page.eval(&text_of(&customer)), json!(name), "the name, as text");
        let markup = format!("document.querySelector({}).children.length", json!(customer));
        assert_eq!(page.eval(&markup), json!(0), "no element made of {name}");
    }
    // A record no department can decode: dead-lettered by the dashboard, counted on its row.
    produce(&sales.topic, &[(b"poison".to_vec(), Some(b"<b>not avro</b>".to_vec()))]).await;
    page.wait(&format!("{} === '1'", text_of(r#"tr[data-department="dashboard"] [data-field="dead_lettered"]"#)));
    page.wait(&format!("{} !== null", text_of(r#"#events li[data-order-id="poison"][data-event="UNDECODABLE"]"#)));
    assert_eq!(page.eval(&text_of(r#"tr[data-department="warehouse"] [data-field="dead_lettered"]"#)), json!("0"), "counted by origin group");
    assert_eq!(page.eval("document.querySelectorAll('script').length"), json!(1), "only the page's own script");
    assert_eq!(page.eval("document.querySelectorAll('img').length"), json!(0));
    let (dialogs, errors, _) = page.state();
    assert!(dialogs.is_empty(), "a dialog opened: {dialogs:?}");
    assert!(errors.is_empty(), "{errors:?}");
}

/// Sum of the log end offsets over the partitions of `topic`.
fn log_end(topic: &str) -> i64 {
    watermarks(topic).values().map(|(_, high)| high).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_department_lags_on_the_page_until_it_runs_again() {
    let sales = Sales::create();
    sales.run(&["simulate", "--orders", "40", "--seed", "13"]);
    let store = Store::sqlite();
    let logs = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (logs.path().join("warehouse-1.log"), logs.path().join("warehouse-2.log"));
    let start = |log| start_member("warehouse", &sales.topic, "warehouse", &store, log, 3);
    let warehouse = start(&first_log).await;
    let served = serve(&sales.topic);
    let mut page = Browser::open(&served.url);
    let lag = text_of(r#"tr[data-department="warehouse"] [data-field="lag"]"#);
    let state = text_of(r#"tr[data-department="warehouse"] [data-field="state"]"#);

    page.wait(&format!("{lag} === '0' && {state} === 'Stable'"));
    assert!(warehouse.terminate().success());
    page.wait(&format!("{state} !== null && {state} !== 'Stable'"));
    let before = log_end(&sales.topic);
    sales.run(&["simulate", "--orders", "30", "--seed", "14"]);
    let behind = log_end(&sales.topic) - before;
    assert!(behind > 30, "the new orders' events are in the log: {behind}");
    page.wait(&format!("{lag} === '{behind}'"));
    page.wait(&format!("{} === '0'", text_of(r#"tr[data-department="dashboard"] [data-field="lag"]"#)));
    let history = r#"fetch('/api/pipeline').then((r) => r.json()).then((v) =>
        v.departments.find((d) => d.department === 'warehouse').lag_history.map(([, lag]) => lag))"#;
    let history: Vec<i64> = serde_json::from_value(page.eval(history)).unwrap();
    assert!(history.contains(&0) && history.last() == Some(&behind), "the hour's history has it: {history:?}");

    let _warehouse = start(&second_log).await;
    page.wait(&format!("{lag} === '0' && {state} === 'Stable'"));

    // A shadow rebuild builds, then stops short of the swap while the live warehouse runs: the
    // page shows its group and how far it got.
    let rebuild = Command::new(binary("edison-consumers", "warehouse"))
        .args(department_args(&sales.topic, "warehouse", &store))
        .args(["rebuild", "--shadow", "--dead-letter-topic", &format!("{}.dlq", sales.topic)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&rebuild.stderr);
    assert!(!rebuild.status.success() && said.contains("active member"), "{said}");
    let shadow = text_of(r#"tr[data-department="warehouse"] [data-field="shadow"]"#);
    page.wait(&format!("{shadow}?.startsWith('shadow idle: 100%')"));
    assert_eq!(page.eval(&text_of(r#"tr[data-department="billing"] [data-field="shadow"]"#)), json!("—"));
    let (_, errors, loads) = page.state();
    assert_eq!((errors, loads), (vec![], 1));
}
