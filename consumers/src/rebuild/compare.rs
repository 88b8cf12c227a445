//! Comparing two projections table by table: row counts, a checksum, and the differing rows.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// How many differing rows a comparison lists per side.
const SHOWN_DIFFERENCES: usize = 10;

/// One table in two projections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableComparison {
    pub table: String,
    pub live_rows: usize,
    pub shadow_rows: usize,
    pub live_checksum: u64,
    pub shadow_checksum: u64,
    /// Up to ten rows only in the live projection, rendered as text.
    pub only_live: Vec<String>,
    pub only_shadow: Vec<String>,
}

impl TableComparison {
    pub fn matches(&self) -> bool {
        self.live_rows == self.shadow_rows && self.live_checksum == self.shadow_checksum
    }
}

impl std::fmt::Display for TableComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.matches() { "identical" } else { "DIFFERENT" };
        writeln!(
            f,
            "  {:<24} live {:>8} rows {:016x}   shadow {:>8} rows {:016x}   {verdict}",
            self.table, self.live_rows, self.live_checksum, self.shadow_rows, self.shadow_checksum
        )?;
        for row in &self.only_live {
            writeln!(f, "    - live only:   {row}")?;
        }
        for row in &self.only_shadow {
            writeln!(f, "    + shadow only: {row}")?;
        }
        Ok(())
    }
}

/// Compares `tables` between two databases. Rows are compared as ordered sets, so the physical
/// order does not matter; the tables must hold only what the log determines (no wall-clock
/// columns), which is what [`crate::runtime::Projection::TABLES`] promises.
pub async fn compare_tables(tables: &[&str], live: &AnyPool, shadow: &AnyPool) -> Result<Vec<TableComparison>, sqlx::Error> {
    let mut comparisons = Vec::new();
    for table in tables {
        let live_rows = rows_as_text(live, table).await?;
        let shadow_rows = rows_as_text(shadow, table).await?;
        comparisons.push(TableComparison {
            table: (*table).to_owned(),
            live_rows: live_rows.len(),
            shadow_rows: shadow_rows.len(),
            live_checksum: checksum(&live_rows),
            shadow_checksum: checksum(&shadow_rows),
            only_live: live_rows.difference(&shadow_rows).take(SHOWN_DIFFERENCES).cloned().collect(),
            only_shadow: shadow_rows.difference(&live_rows).take(SHOWN_DIFFERENCES).cloned().collect(),
        });
    }
    Ok(comparisons)
}

async fn rows_as_text(pool: &AnyPool, table: &str) -> Result<BTreeSet<String>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}")).fetch_all(pool).await?;
    Ok(rows.iter().map(row_as_text).collect())
}

/// `col=value|col=value`, with integers from either backend's integer types rendered alike.
fn row_as_text(row: &AnyRow) -> String {
    let cells: Vec<String> = (0..row.len())
        .map(|i| {
            let value = row
                .try_get::<Option<i64>, _>(i)
                .map(|v| v.map(|v| v.to_string()))
                .or_else(|_| row.try_get::<Option<i32>, _>(i).map(|v| v.map(|v| v.to_string())))
                .or_else(|_| row.try_get::<Option<String>, _>(i))
                .or_else(|_| row.try_get::<Option<bool>, _>(i).map(|v| v.map(|v| i64::from(v).to_string())))
                .or_else(|_| row.try_get::<Option<Vec<u8>>, _>(i).map(|v| v.map(|v| format!("{v:02x?}"))))
                .unwrap_or_else(|error| Some(format!("<{error}>")));
            format!("{}={}", sqlx::Column::name(&row.columns()[i]), value.as_deref().unwrap_or("NULL"))
        })
        .collect();
    cells.join("|")
}

/// Order-independent within the set (it is sorted); stable within one process, which is where
/// both sides are computed.
fn checksum(rows: &BTreeSet<String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    rows.hash(&mut hasher);
    hasher.finish()
}
