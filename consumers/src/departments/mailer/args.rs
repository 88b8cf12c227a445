//! The mailer's own flags, beside the ones every department takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Delivery, Mailer, MailerSettings};
use crate::command::FromFlags;

pub(super) const DEFAULT_FROM: &str = "Edison Cars <orders@edison-cars.example>";

#[derive(Debug, Clone, Args)]
pub struct MailerArgs {
    /// The Maildir to deliver into (tmp/, new/, cur/), unless --smtp-url is given.
    #[arg(long, env = "MAILER_SPOOL_DIR", default_value = "data/mail-spool", global = true)]
    pub spool_dir: PathBuf,

    /// Deliver by SMTP instead: smtp://HOST[:PORT], plain SMTP without authentication (a local
    /// relay or a test server).
    #[arg(long, env = "MAILER_SMTP_URL", value_parser = Delivery::smtp_url, global = true)]
    pub smtp_url: Option<Delivery>,

    /// The sender's mailbox; its domain is also the Message-ID's.
    #[arg(long, env = "MAILER_FROM", default_value = DEFAULT_FROM, global = true)]
    pub from: String,

    /// Mail about anything that happened before this time is recorded as historical and never
    /// sent: RFC 3339 (2026-01-01T00:00:00Z) or milliseconds since the epoch. [default: the cutoff
    /// the ledger stored on its first batch: the start of the mailer's first run]
    #[arg(long, env = "MAILER_SINCE", value_parser = parse_mail_since, global = true)]
    pub mail_since: Option<i64>,

    /// How long one delivery round retries a failing transport before leaving the rest pending.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", global = true)]
    pub retry_for: u64,
}

impl MailerArgs {
    pub fn settings(self) -> MailerSettings {
        MailerSettings {
            delivery: self.smtp_url.unwrap_or(Delivery::Spool(self.spool_dir)),
            from: self.from,
            mail_since: self.mail_since,
            retry_for: Duration::from_secs(self.retry_for),
        }
    }
}

/// The mailer is the department with flags of its own.
impl FromFlags for Mailer {
    type Flags = MailerArgs;

    fn from_flags(flags: MailerArgs) -> anyhow::Result<Mailer> {
        Ok(Mailer::new(flags.settings())?)
    }
}

/// An ISO 8601 time, or milliseconds since the epoch, as milliseconds since the epoch.
pub fn parse_mail_since(text: &str) -> Result<i64, String> {
    text.parse::<i64>().or_else(|_| edison_common::time::parse_datetime(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mailer: MailerArgs,
    }

    #[test]
    fn mail_since_takes_rfc_3339_or_milliseconds() {
        assert_eq!(parse_mail_since("0"), Ok(0));
        assert_eq!(parse_mail_since("1764000000000"), Ok(1_764_000_000_000));
        assert_eq!(parse_mail_since("2025-11-24T16:00:00Z"), Ok(1_764_000_000_000));
        assert_eq!(parse_mail_since("2025-11-24T17:00:00.5+01:00"), Ok(1_764_000_000_500));
        assert!(parse_mail_since("yesterday").is_err());
    }

    #[test]
    fn an_smtp_url_replaces_the_spool() {
        let spool = Cli::try_parse_from(["mailer", "--spool-dir", "/tmp/s"]).unwrap().mailer.settings();
        assert_eq!(spool.delivery, Delivery::Spool("/tmp/s".into()));
        assert_eq!(spool.mail_since, None);
        let smtp = Cli::try_parse_from(["mailer", "--smtp-url", "smtp://127.0.0.1:2525", "--mail-since", "0", "--retry-for", "5"])
            .unwrap()
            .mailer
            .settings();
        assert_eq!(smtp.delivery, Delivery::Smtp { host: "127.0.0.1".into(), port: 2525 });
        assert_eq!((smtp.mail_since, smtp.retry_for), (Some(0), Duration::from_secs(5)));
        assert!(Cli::try_parse_from(["mailer", "--smtp-url", "smtps://h"]).is_err());
    }
}
