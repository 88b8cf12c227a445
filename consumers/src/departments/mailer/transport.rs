//! Where mail goes: a Maildir spool (the default) or an SMTP server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Message;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// How long one SMTP exchange may take before it counts as a (transient) failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the mailer delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A Maildir: each mail is written to `tmp/`, then renamed into `new/` as `NAME.eml`.
    Spool(PathBuf),
    /// Plain SMTP (no TLS, no authentication), as to a local relay or a test server.
    Smtp { host: String, port: u16 },
}

impl Delivery {
    /// `smtp://HOST[:PORT]` (port 25 by default); a bracketed IPv6 host is allowed.
    pub fn smtp_url(url: &str) -> Result<Delivery, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("{url:?}: expected smtp://HOST[:PORT] (TLS and credentials are not supported: relay through a local MTA)"))?;
        let authority = rest.trim_end_matches('/');
        if authority.contains(['@', '/', '?']) {
            return Err(format!("{url:?}: expected smtp://HOST[:PORT], without credentials, path or query"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port.parse::<u16>().map_err(|_| format!("{url:?}: invalid port {port:?}"))?;
                (host, port)
            }
            _ => (authority, 25),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Delivery::Smtp { host: host.to_owned(), port })
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Spool(dir) => write!(f, "the Maildir {}", dir.display()),
            Delivery::Smtp { host, port } => write!(f, "smtp://{host}:{port}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot write to the spool {path}: {source}")]
    Spool { path: String, source: std::io::Error },
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SendError {
    /// A permanent failure (an SMTP 5xx reply) will fail again; anything else may pass later.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Smtp(error) if error.is_permanent())
    }
}

/// A connected [`Delivery`]. SMTP connections are pooled and opened on first use.
pub enum Transport {
    Spool(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    pub fn new(delivery: &Delivery) -> Transport {
        match delivery {
            Delivery::Spool(dir) => Transport::Spool(dir.clone()),
            Delivery::Smtp { host, port } => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        }
    }

    /// Hands `message` over; `Ok` means the spool file is durable or the server accepted it.
    /// `name` is unique per mail and names its spool file.
    pub async fn send(&self, name: &str, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Spool(dir) => {
                let (dir, name) = (dir.clone(), name.to_owned());
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || deliver_to_maildir(&dir, &name, &bytes))
                    .await
                    .expect("spool writer panicked")
            }
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(SendError::from),
        }
    }
}

/// Maildir delivery: write and sync `tmp/UNIQUE`, rename it to `new/NAME.eml`, sync `new/`. A
/// reader never sees a partial file, and a crash leaves at most a stray file in `tmp/`. The name
/// is the same for every delivery of one mail, so a re-delivery replaces rather than adds.
pub fn deliver_to_maildir(root: &Path, name: &str, message: &[u8]) -> Result<(), SendError> {
    let error = |path: &Path| {
        let path = path.display().to_string();
        move |source| SendError::Spool { path, source }
    };
    for sub in ["tmp", "new", "cur"] {
        let dir = root.join(sub);
        std::fs::create_dir_all(&dir).map_err(error(&dir))?;
    }
    let unique = format!(
        "{name}.{}.{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
    );
    let tmp = root.join("tmp").join(unique);
    let new = root.join("new").join(format!("{name}.eml"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(message)?;
        file.sync_all()
    };
    write().map_err(error(&tmp))?;
    std::fs::rename(&tmp, &new).map_err(error(&new))?;
    #[cfg(unix)]
    std::fs::File::open(root.join("new")).and_then(|dir| dir.sync_all()).map_err(error(&root.join("new")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(host: &str, port: u16) -> Result<Delivery, String> {
        Ok(Delivery::Smtp { host: host.into(), port })
    }

    #[test]
    fn smtp_urls_name_a_host_and_a_port() {
        assert_eq!(Delivery::smtp_url("smtp://127.0.0.1:2525"), smtp("127.0.0.1", 2525));
        assert_eq!(Delivery::smtp_url("smtp://mail.example/"), smtp("mail.example", 25));
        assert_eq!(Delivery::smtp_url("smtp://[::1]:2525"), smtp("::1", 2525));
        assert_eq!(Delivery::smtp_url("smtp://[::1]"), smtp("::1", 25));
        for bad in ["smtps://h:465", "h:25", "smtp://", "smtp://h:x", "smtp://u:p@h:25", "smtp://h:99999"] {
            assert!(Delivery::smtp_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_maildir_gets_one_complete_file_per_name_in_new() {
        let root = tempfile::tempdir().unwrap();
        deliver_to_maildir(root.path(), "a.confirmation", b"one").unwrap();
        deliver_to_maildir(root.path(), "a.receipt", b"two").unwrap();
        deliver_to_maildir(root.path(), "a.confirmation", b"one").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(root.path().join("new"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.confirmation.eml", "a.receipt.eml"], "a re-delivery replaces its file");
        assert_eq!(std::fs::read(root.path().join("new/a.receipt.eml")).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0, "nothing left in tmp/");
    }
}
