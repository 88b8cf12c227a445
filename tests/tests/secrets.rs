//! No secret reaches the output: the real binaries, at `RUST_LOG=debug`, given canary passwords
//! in `-X sasl.password=...` (and a mistyped `-X sasl.pasword=...`, which librdkafka does not
//! know to be secret) and in `DATABASE_URL` (a URL and a libpq `key=value` string), through a
//! broker that is not there and a database that is not there. Each command's whole stdout and
//! stderr is searched for the canaries; each must also show that it got as far as the failure
//! it was meant to meet, so that silence is not mistaken for secrecy.

mod support;

use std::process::Command;

use support::*;

const CANARY: &str = "CANARY";
const KAFKA_SECRET: &str = "sasl.password=CANARY71";
const MISTYPED_SECRET: &str = "sasl.pasword=CANARY72";
const POSTGRES_URL: &str = "postgres://edison:CANARY73@127.0.0.1:1/edison";
const LIBPQ: &str = "host=127.0.0.1 port=1 user=edison password=CANARY74 dbname=edison";
/// Nothing listens on port 1 of the loopback interface.
const NO_BROKER: &str = "127.0.0.1:1";

/// One run of a binary and what it must show.
struct Case {
    binary: (&'static str, &'static str),
    args: Vec<String>,
    database_url: Option<&'static str>,
    succeeds: bool,
    expected: &'static str,
}

/// `binary` with the concatenated `args`, which exits with success or not, showing `expected`.
fn case(
    binary: (&'static str, &'static str),
    args: &[&[&str]],
    succeeds: bool,
    expected: &'static str,
) -> Case {
    let args = args
        .iter()
        .flat_map(|part| part.iter().map(|a| a.to_string()))
        .collect();
    Case {
        binary,
        args,
        database_url: None,
        succeeds,
        expected,
    }
}

impl Case {
    /// With `DATABASE_URL` in the environment rather than on the command line.
    fn env(mut self, url: &'static str) -> Case {
        self.database_url = Some(url);
        self
    }

    /// Runs it; `None` if all is well, else what went wrong.
    fn check(&self) -> Option<String> {
        let mut command = Command::new(binary(self.binary.0, self.binary.1));
        command
            .args(&self.args)
            .env("RUST_LOG", "debug")
            .env_remove("DATABASE_URL");
        if let Some(url) = self.database_url {
            command.env("DATABASE_URL", url);
        }
        let output = command.output().expect("run the binary");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let what = format!(
            "{} {:?} (DATABASE_URL {:?})",
            self.binary.1, self.args, self.database_url
        );
        if all.to_ascii_uppercase().contains(CANARY) {
            let line = all
                .lines()
                .find(|line| line.to_ascii_uppercase().contains(CANARY))
                .unwrap_or_default();
            return Some(format!("{what} printed a secret: {line}"));
        }
        if output.status.success() != self.succeeds {
            return Some(format!("{what} exited with {}: {all}", output.status));
        }
        (!all.contains(self.expected))
            .then(|| format!("{what} did not show {:?}: {all}", self.expected))
    }
}

const SALES: (&str, &str) = ("edison-sales", "sales");
const WAREHOUSE: (&str, &str) = ("edison-consumers", "warehouse");

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_secret() {
    let topic = orders_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    // A store per command: they run at once, and two first runs would both migrate one store.
    let stores: Vec<String> = (0..5)
        .map(|i| {
            dir.path()
                .join(format!("store{i}.db"))
                .display()
                .to_string()
        })
        .collect();
    let sqlite = |i: usize| ["--database-url", stores[i].as_str()];
    let broker = bootstrap();
    let place: &[&str] = &[
        "place",
        "--model",
        "P",
        "--customer-name",
        "Ada",
        "--email",
        "ada@example.com",
        "--address",
        "1 Way",
    ];
    let to_no_broker: &[&str] = &[
        "--bootstrap-servers",
        NO_BROKER,
        "-X",
        KAFKA_SECRET,
        "--topic",
        &topic,
    ];
    let mistyped: &[&str] = &[
        "--bootstrap-servers",
        &broker,
        "-X",
        MISTYPED_SECRET,
        "--topic",
        &topic,
    ];
    let to_broker: &[&str] = &[
        "--bootstrap-servers",
        &broker,
        "-X",
        KAFKA_SECRET,
        "--topic",
        &topic,
    ];
    let (postgres, libpq): (&[&str], &[&str]) = (
        &["--database-url", POSTGRES_URL],
        &["--database-url", LIBPQ],
    );
    let until_caught_up: &[&str] = &["run", "--until-caught-up"];
    let mistyped_key = "No such configuration property: \"sasl.pasword\"";
    let cannot_connect =
        "cannot connect to the database at postgres://edison:***@127.0.0.1:1/edison";
    let not_a_url = "a key=value connection string is not a URL";
    let cases = [
        // Sales: a failing database, a failing broker (the change is kept, its event queued), a
        // mistyped secret, and help.
        case(SALES, &[to_broker, postgres, place], false, cannot_connect),
        case(SALES, &[to_broker, place], false, cannot_connect).env(POSTGRES_URL),
        case(SALES, &[to_broker, libpq, &["list"]], false, not_a_url),
        case(
            SALES,
            &[to_no_broker, &sqlite(0), place],
            true,
            "Kafka is unreachable",
        ),
        case(
            SALES,
            &[to_no_broker, &sqlite(1), &["simulate", "--orders", "3"]],
            true,
            "Kafka is unreachable",
        ),
        case(SALES, &[mistyped, &sqlite(2), place], true, mistyped_key),
        case(
            SALES,
            &[mistyped, &["topic", "create"]],
            false,
            mistyped_key,
        ),
        case(
            SALES,
            &[to_no_broker, &["topic", "create"]],
            false,
            "cannot create topic",
        ),
        case(SALES, &[to_broker, &["--help"]], true, "Usage: sales").env(POSTGRES_URL),
        case(
            SALES,
            &[to_broker, &["place", "--help"]],
            true,
            "--database-url",
        )
        .env(LIBPQ),
        // A department: run, status and reset-offsets through each failure, and help.
        case(
            WAREHOUSE,
            &[to_broker, until_caught_up],
            false,
            cannot_connect,
        )
        .env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_broker, libpq, until_caught_up],
            false,
            not_a_url,
        ),
        case(
            WAREHOUSE,
            &[to_no_broker, &sqlite(3), until_caught_up],
            false,
            "Kafka request failed",
        ),
        case(
            WAREHOUSE,
            &[mistyped, &sqlite(4), until_caught_up],
            false,
            mistyped_key,
        ),
        case(WAREHOUSE, &[mistyped, &["status"]], false, mistyped_key).env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_no_broker, &["status"]],
            false,
            "Kafka request failed",
        )
        .env(POSTGRES_URL),
        case(WAREHOUSE, &[to_broker, &["status"]], true, cannot_connect).env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_broker, &["status", "--json"]],
            true,
            not_a_url,
        )
        .env(LIBPQ),
        case(
            WAREHOUSE,
            &[mistyped, &["reset-offsets", "--to-earliest"]],
            false,
            mistyped_key,
        )
        .env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[
                to_no_broker,
                &["reset-offsets", "--to-earliest", "--execute"],
            ],
            false,
            "Kafka request failed",
        )
        .env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_broker, &["reset-offsets", "--to-earliest", "--execute"]],
            false,
            cannot_connect,
        )
        .env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_broker, &["--help"]],
            true,
            "Usage: warehouse",
        )
        .env(POSTGRES_URL),
        case(
            WAREHOUSE,
            &[to_broker, &["run", "--help"]],
            true,
            "--database-url",
        )
        .env(LIBPQ),
    ];
    // Several wait out a broker timeout: run them side by side.
    let failures: Vec<String> = std::thread::scope(|scope| {
        cases
            .iter()
            .map(|c| scope.spawn(|| c.check()))
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
