//! `mailer`: a confirmation on placement, a receipt on payment, a notice on cancellation, each
//! sent once. Delivers into a Maildir (`--spool-dir`) or by SMTP (`--smtp-url`).

use edison_consumers::departments::mailer::{Mailer, MailerArgs};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edison_consumers::cli::main_with(|args: MailerArgs| Ok(Mailer::new(args.settings())?)).await
}
