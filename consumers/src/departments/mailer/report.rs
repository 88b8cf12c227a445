//! What the mailer tells the operator: the report of its ledger, and what a run leaves behind.

use std::fmt::Write;

use sqlx::AnyPool;

use edison_common::time::format_rfc3339;

use super::ledger::{self, MailStatus};
use super::mail::MailKind;
use crate::runtime::RunSummary;

pub(super) async fn report(pool: &AnyPool) -> Result<String, sqlx::Error> {
    let mut out = String::from("Mailer\n");
    let since = match ledger::cutoff(pool).await? {
        Some(ms) => format_rfc3339(ms),
        None => "not set yet (no batch applied)".to_owned(),
    };
    let _ = writeln!(out, "  mail since: {since}");
    let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_orders").fetch_one(pool).await?;
    let _ = writeln!(out, "  orders tracked: {tracked}");
    let counts = ledger::mails_by_kind_and_status(pool).await?;
    let _ = write!(out, "  mails by kind and status:\n    {:<13}", "");
    for status in MailStatus::ALL {
        let _ = write!(out, " {:>10}", status.as_str());
    }
    for kind in MailKind::ALL {
        let _ = write!(out, "\n    {:<13}", kind.as_str());
        for status in MailStatus::ALL {
            let _ = write!(out, " {:>10}", counts.get(&(kind, status)).copied().unwrap_or(0));
        }
    }
    out.push('\n');
    Ok(out)
}

/// The end of `run`: a note if it recorded mail as historical (by the cutoff `mail_since`, or
/// the stored one), and unfinished if mail is pending because of `transport_failure`. Mail left
/// pending by a shutdown is not a failure: the next run sends it.
pub(super) async fn summarize_run(
    pool: &AnyPool,
    run: &str,
    mail_since: Option<i64>,
    transport_failure: Option<&str>,
) -> Result<RunSummary, sqlx::Error> {
    let mut summary = RunSummary::default();
    let historical = ledger::count(pool, MailStatus::Historical, Some(run)).await?;
    if historical > 0 {
        let (cutoff, set_by) = match mail_since {
            Some(since) => (since, "set by --mail-since"),
            None => (ledger::cutoff(pool).await?.unwrap_or_default(), "stored by the ledger's first run"),
        };
        // A cutoff set later does not turn recorded history into mail, hence the advice.
        summary.notes.push(format!(
            "{} recorded as historical, never to be sent: what they tell happened before the cutoff {} ({set_by}). \
             To mail history, start a new ledger with an earlier --mail-since.",
            mails(historical),
            format_rfc3339(cutoff)
        ));
    }
    if let Some(failure) = transport_failure {
        let pending = ledger::count(pool, MailStatus::Pending, None).await?;
        if pending > 0 {
            summary.unfinished = Some(format!(
                "{} pending because the transport failed: {failure}. A later run retries them.",
                mails(pending)
            ));
        }
    }
    Ok(summary)
}

fn mails(count: i64) -> String {
    format!("{count} mail{}", if count == 1 { "" } else { "s" })
}
