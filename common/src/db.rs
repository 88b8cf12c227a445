//! Database connections for SQLite (default, one file per service) and PostgreSQL.
//!
//! Services use `sqlx::Any`, so one set of SQL serves both backends. Keep statements portable:
//! `$N` placeholders (SQLite accepts them too), `INSERT .. ON CONFLICT .. DO UPDATE`, and only
//! the types `Any` maps (integers, text, blobs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

/// SQLite allows at most this many bound values in one statement (PostgreSQL allows more).
pub const MAX_BIND_PARAMS: usize = 32_766;

/// What every SQLite connection runs first, in order.
pub const SQLITE_PRAGMAS: &[&str] = &[
    // WAL lets readers (reports, status) run beside the writer; NORMAL is durable across process
    // crashes, which is what replay-from-Kafka needs.
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
    // Batches write thousands of rows per transaction: keep their pages and statement journals in
    // memory, and checkpoint the WAL less often. On one connection the cache stays warm across
    // batches, and 4 MB applied 860k events as fast as 16 MB (warehouse, mailer): time-ordered
    // keys keep the hot pages few. A bigger cache only made memory grow with the database.
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -4096",
    "PRAGMA wal_autocheckpoint = 10000",
];

/// The causes are part of each message and deliberately not `#[source]`s: sqlx's errors already
/// repeat their own source in their message, so a chain (anyhow's `{:#}`) would print the cause
/// two or three times.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `url` is redacted.
    #[error(
        "invalid database URL {url:?}: {why}; expected a file path, sqlite://PATH or \
         postgres://USER:PASSWORD@HOST/DB (postgresql:// too)"
    )]
    InvalidUrl { url: String, why: &'static str },
    #[error("cannot create the database directory {path}: {cause}")]
    CreateDir { path: String, cause: std::io::Error },
    #[error("cannot connect to the database at {url}: {cause}")]
    Connect { url: String, cause: sqlx::Error },
    #[error("invalid PostgreSQL schema name {0:?}: use lower-case letters, digits and _")]
    InvalidSchema(String),
    #[error("database migration failed on {url}: {cause}")]
    Migrate { url: String, cause: MigrateError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool and what it is connected to.
#[derive(Clone)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
    /// The URL without its password, fit for logs.
    pub display_url: String,
    /// SQLite's file, for a connection of one's own beside the pool; `None` on PostgreSQL or
    /// in memory.
    pub sqlite_file: Option<PathBuf>,
}

impl Database {
    /// Refreshes PostgreSQL's planner statistics of every table in the schema in use, after a
    /// bulk load. Autovacuum analyzes a table only a minute or more after it grew, and until
    /// then queries are planned for the table as it was: a replay right after a rebuild, whose
    /// ledger updates then scanned the whole `mails` table, ran 3x slower. SQLite: nothing.
    pub async fn analyze(&self) -> Result<(), sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&self.pool)
        .await?;
        if !tables.is_empty() {
            sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// The default store of a service: `data/NAME.db` under the working directory.
pub fn default_url(name: &str) -> String {
    format!("sqlite://data/{name}.db")
}

/// Connects, creating a missing SQLite file and its directory, then runs `migrator`.
pub async fn connect(url: &str, migrator: &Migrator) -> Result<Database, DbError> {
    connect_to(url, None, migrator).await
}

/// Like [`connect`], but on PostgreSQL keeps every table (and the migration history) in
/// `pg_schema`, creating it if needed, so services can share one database. SQLite ignores it:
/// each service has its own file.
pub async fn connect_to(
    url: &str,
    pg_schema: Option<&str>,
    migrator: &Migrator,
) -> Result<Database, DbError> {
    sqlx::any::install_default_drivers();
    let (url, backend) = normalize(url)?;
    let search_path = match pg_schema {
        Some(schema) if backend == Backend::Postgres => Some(valid_schema(schema)?),
        _ => None,
    };
    let display_url = redact(&url);
    if backend == Backend::Sqlite {
        create_parent_dir(&url)?;
    }
    let options: AnyConnectOptions = url
        .parse::<AnyConnectOptions>()
        .map_err(|cause| DbError::Connect {
            url: display_url.clone(),
            cause,
        })?
        .log_statements(tracing::log::LevelFilter::Trace)
        // Debug, not warn: sqlx logs the whole statement, and a multi-row insert is tens of KB.
        .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(2));
    let pool = AnyPoolOptions::new()
        // SQLite has one writer anyway, and each connection its own page cache, which a write
        // through another connection invalidates. The pool hands its idle connections out in
        // turn, so with two every batch began on a cold cache, and both caches filled: a
        // replay's peak RSS grew with the database (62 MB at 100k events, 118 MB at 2M).
        .max_connections(if backend == Backend::Sqlite { 1 } else { 4 })
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let search_path = search_path.clone();
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    for pragma in SQLITE_PRAGMAS {
                        conn.execute(*pragma).await?;
                    }
                }
                if let Some(schema) = &search_path {
                    conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                        .await?;
                    conn.execute(format!("SET search_path TO {schema}").as_str())
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|cause| DbError::Connect {
            url: display_url.clone(),
            cause,
        })?;
    migrator
        .run(&pool)
        .await
        .map_err(|cause| DbError::Migrate {
            url: display_url.clone(),
            cause,
        })?;
    Ok(Database {
        pool,
        backend,
        display_url,
        sqlite_file: sqlite_file(&url),
    })
}

/// Opens a database that is already there, for inspection (`status`): it never creates the
/// SQLite file, the PostgreSQL schema or a table, and runs no migration. `Ok(None)` when there is
/// no such file or schema yet.
pub async fn open_existing(
    url: &str,
    pg_schema: Option<&str>,
) -> Result<Option<Database>, DbError> {
    sqlx::any::install_default_drivers();
    let (url, backend) = normalize(url)?;
    let display_url = redact(&url);
    let url = match backend {
        Backend::Sqlite => {
            if !sqlite_file(&url).is_some_and(|path| path.is_file()) {
                return Ok(None);
            }
            url.replace("mode=rwc", "mode=rw")
        }
        Backend::Postgres => url,
    };
    let search_path = match pg_schema {
        Some(schema) if backend == Backend::Postgres => Some(valid_schema(schema)?),
        _ => None,
    };
    let connect_error = |cause| DbError::Connect {
        url: display_url.clone(),
        cause,
    };
    let options: AnyConnectOptions = url.parse().map_err(connect_error)?;
    let path = search_path.clone();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let path = path.clone();
            Box::pin(async move {
                if let Some(schema) = &path {
                    conn.execute(format!("SET search_path TO {schema}").as_str())
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(connect_error)?;
    if let Some(schema) = &search_path {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
        )
        .bind(schema)
        .fetch_optional(&pool)
        .await
        .map_err(connect_error)?;
        if found.is_none() {
            pool.close().await;
            return Ok(None);
        }
    }
    Ok(Some(Database {
        pool,
        backend,
        display_url,
        sqlite_file: sqlite_file(&url),
    }))
}

/// Whether an error means "the database is unavailable right now" (retry later) rather than
/// "this statement is wrong" (a bug; retrying cannot help).
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xFF, 5 | 6))
            } else {
                // PostgreSQL SQLSTATE: connection exceptions (08), operator intervention such as
                // admin_shutdown (57), insufficient resources (53), serialization failure and
                // deadlock.
                code.starts_with("08")
                    || code.starts_with("57")
                    || code.starts_with("53")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

/// Writes bind placeholders in statement order: `$1, $2, ...` on PostgreSQL, anonymous `?` on
/// SQLite. sqlx looks every numbered SQLite parameter up by name, a scan of the statement's
/// parameter list, so a multi-row statement with thousands of `$N` binds in quadratic time
/// (2.4 s for 32k parameters, measured); `?` has no name to look up. Values are bound in the
/// order the placeholders were written.
#[derive(Debug)]
pub struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    pub fn new(backend: Backend) -> Placeholders {
        Placeholders { backend, next: 1 }
    }

    /// Appends one placeholder.
    pub fn push(&mut self, sql: &mut String) {
        match self.backend {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                use std::fmt::Write;
                let _ = write!(sql, "${}", self.next);
            }
        }
        self.next += 1;
    }

    /// Appends `(a, b), (c, d), ...`: `rows` tuples of `columns` placeholders.
    pub fn push_rows(&mut self, sql: &mut String, rows: usize, columns: usize) {
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                self.push(sql);
            }
            sql.push(')');
        }
    }
}

impl Backend {
    /// The backend a database URL names: PostgreSQL for `postgres:` and `postgresql:`, else
    /// SQLite.
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The backend behind an `Any` connection.
    pub fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// How many rows of `columns` values fit in one statement.
pub fn max_rows_per_statement(columns: usize) -> usize {
    MAX_BIND_PARAMS / columns
}

/// Schema names go into SQL text, so only plain identifiers pass.
fn valid_schema(schema: &str) -> Result<String, DbError> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if plain {
        Ok(schema.to_owned())
    } else {
        Err(DbError::InvalidSchema(schema.to_owned()))
    }
}

/// The URL sqlx is given, and its backend. Anything that is not clearly a PostgreSQL URL, a
/// SQLite one or a file path is refused, rather than becoming a file named after it.
fn normalize(url: &str) -> Result<(String, Backend), DbError> {
    let invalid = |why| DbError::InvalidUrl {
        url: redact(url),
        why,
    };
    if Backend::of_url(url) == Backend::Postgres {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) => path,
        None if url.contains("://") => return Err(invalid("unsupported scheme")),
        // libpq's `host=... user=... password=...`: surely meant for PostgreSQL, not a file name.
        None if url.split('?').next().is_some_and(|path| path.contains('=')) => {
            return Err(invalid(
                "a key=value connection string is not a URL (a file name with = needs sqlite://)",
            ))
        }
        None => url,
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() {
        return Err(invalid("no file path"));
    }
    let mode = if query.contains("mode=") {
        String::new()
    } else {
        "mode=rwc".to_owned()
    };
    let query = [query, &mode]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("&");
    Ok((format!("sqlite://{path}?{query}"), Backend::Sqlite))
}

/// The file behind a SQLite URL or path (`sqlite://data/x.db?mode=rwc` → `data/x.db`); `None`
/// for PostgreSQL, an in-memory database or a URL that is neither.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let (url, backend) = normalize(url).ok()?;
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    (backend == Backend::Sqlite && path != ":memory:").then(|| PathBuf::from(path))
}

fn create_parent_dir(url: &str) -> Result<(), DbError> {
    match sqlite_file(url).as_deref().and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|cause| DbError::CreateDir {
                path: dir.display().to_string(),
                cause,
            })
        }
        _ => Ok(()),
    }
}

/// Hides the password of `scheme://user:password@host/...`, and every `password=` value: of a
/// URL's query, or of a libpq `key=value` string (where it may be 'quoted').
pub fn redact(url: &str) -> String {
    let url = hide_password_values(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    // The host follows the last `@`: a password may contain `@` itself.
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

/// Replaces the value of each `password = VALUE` whose key starts the text or follows a space,
/// `?`, `&` or `;`. A value ends at white space or `&`, or, quoted, at its closing quote.
fn hide_password_values(text: &str) -> String {
    const KEY: &str = "password";
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let (mut out, mut copied, mut from) = (String::with_capacity(text.len()), 0, 0);
    while let Some(found) = lower[from..].find(KEY) {
        let start = from + found;
        from = start + KEY.len();
        let starts_key = start == 0
            || matches!(text.as_bytes()[start - 1], b'?' | b'&' | b';')
            || text.as_bytes()[start - 1].is_ascii_whitespace();
        let Some(value) = text[from..]
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start)
        else {
            continue;
        };
        if !starts_key {
            continue;
        }
        let value_start = text.len() - value.len();
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = value_start + value_len(value);
        from = copied;
    }
    out.push_str(&text[copied..]);
    out
}

/// The length of the value at the start of `value`: libpq's quoting, `\'` escapes a quote.
fn value_len(value: &str) -> usize {
    let Some(quoted) = value.strip_prefix('\'') else {
        return value
            .find(|c: char| c.is_whitespace() || c == '&')
            .unwrap_or(value.len());
    };
    let mut escaped = false;
    for (at, c) in quoted.char_indices() {
        match c {
            '\'' if !escaped => return at + 2,
            '\\' if !escaped => escaped = true,
            _ => escaped = false,
        }
    }
    value.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_rows_on_postgres_and_anonymous_on_sqlite() {
        for (backend, want) in [
            (Backend::Postgres, "$1 IN ($2, $3), ($4, $5)"),
            (Backend::Sqlite, "? IN (?, ?), (?, ?)"),
        ] {
            let mut sql = String::new();
            let mut placeholders = Placeholders::new(backend);
            placeholders.push(&mut sql);
            sql.push_str(" IN ");
            placeholders.push_rows(&mut sql, 2, 2);
            assert_eq!(sql, want);
        }
    }

    #[test]
    fn a_sqlite_url_or_path_names_its_file() {
        for url in ["data/w.db", "sqlite://data/w.db", "sqlite:data/w.db?mode=ro"] {
            assert_eq!(sqlite_file(url), Some(PathBuf::from("data/w.db")), "{url}");
        }
        assert_eq!(sqlite_file("postgres://u:p@h/db"), None);
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("host=h password=p"), None);
    }

    #[test]
    fn urls_normalize_to_a_backend() {
        assert_eq!(
            normalize("data/w.db").unwrap(),
            ("sqlite://data/w.db?mode=rwc".into(), Backend::Sqlite)
        );
        assert_eq!(
            normalize("sqlite://x.db?mode=ro").unwrap().0,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalize("postgres://u:p@h/db").unwrap().1,
            Backend::Postgres
        );
        assert_eq!(normalize("postgresql://h/db").unwrap().1, Backend::Postgres);
        assert_eq!(
            normalize("postgres:///db?host=/run/postgresql").unwrap().1,
            Backend::Postgres
        );
        assert_eq!(
            normalize("sqlite:x.db").unwrap().0,
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            normalize("data/w.db?mode=ro").unwrap().0,
            "sqlite://data/w.db?mode=ro"
        );
        assert_eq!(
            normalize("sqlite://data/a=b.db").unwrap().0,
            "sqlite://data/a=b.db?mode=rwc"
        );
        assert!(normalize("sqlite://").is_err());
    }

    #[test]
    fn anything_else_is_refused_naming_the_accepted_forms_without_its_password() {
        for (url, why) in [
            (
                "host=localhost user=u password=SECRET9 dbname=x",
                "key=value",
            ),
            ("dbname=x password='SECRET9 x'", "key=value"),
            ("mysql://u:SECRET9@h/db", "unsupported scheme"),
            (
                "jdbc:postgresql://h/db?password=SECRET9",
                "unsupported scheme",
            ),
        ] {
            let message = normalize(url).unwrap_err().to_string();
            assert!(message.contains(why), "{message}");
            assert!(
                message.contains("a file path, sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"),
                "{message}"
            );
            assert!(!message.contains("SECRET9"), "{message}");
        }
    }

    #[test]
    fn only_plain_schema_names_pass() {
        assert!(valid_schema("warehouse_2").is_ok());
        assert!(valid_schema("x; DROP TABLE y").is_err());
        assert!(valid_schema("Warehouse").is_err());
        assert!(valid_schema("").is_err());
    }

    #[test]
    fn passwords_never_reach_display() {
        assert_eq!(
            redact("postgres://edison:s3cret@127.0.0.1/db"),
            "postgres://edison:***@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite://data/w.db"), "sqlite://data/w.db");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=s3cret"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://u@h/db?PASSWORD=s3cret&x=1"),
            "postgres://u@h/db?PASSWORD=***&x=1"
        );
    }

    #[test]
    fn libpq_passwords_never_reach_display() {
        assert_eq!(
            redact("host=h user=u password=s3cret dbname=x"),
            "host=h user=u password=*** dbname=x"
        );
        assert_eq!(redact("password = s3cret"), "password = ***");
        assert_eq!(
            redact("user=u password='s3 c\\'ret' dbname=x"),
            "user=u password=*** dbname=x"
        );
        assert_eq!(redact("password='unterminated s3cret"), "password=***");
        assert_eq!(
            redact("host=h oldpassword=x mypassword"),
            "host=h oldpassword=x mypassword",
            "other keys stay"
        );
        assert_eq!(redact("data/password.db"), "data/password.db");
    }
}
