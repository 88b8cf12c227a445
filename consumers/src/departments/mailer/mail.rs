//! What mail an order's state calls for, and how a recorded mail becomes an RFC 5322 message.
//! Pure functions: no database, no I/O.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use lettre::message::{Mailbox, Message, SinglePart};

use edison_schemas::{Order, OrderEvent};

use crate::departments::format::{day, utc_day};

/// The three mails a customer gets, at most once each per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailKind {
    /// The order was placed.
    Confirmation,
    /// The order was paid.
    Receipt,
    /// The order was cancelled.
    Cancellation,
}

impl MailKind {
    pub const ALL: [MailKind; 3] = [MailKind::Confirmation, MailKind::Receipt, MailKind::Cancellation];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Confirmation => "confirmation",
            MailKind::Receipt => "receipt",
            MailKind::Cancellation => "cancellation",
        }
    }

    pub fn parse(name: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// When what this mail tells happened to `order`, if it did: a state implies a mail once its
    /// timestamp is set. `paid_at` stays set after a cancellation, so every kind is monotonic: a
    /// later state implies every mail an earlier one did.
    pub fn happened_at(self, order: &Order) -> Option<i64> {
        match self {
            MailKind::Confirmation => Some(order.placed_at),
            MailKind::Receipt => order.paid_at,
            MailKind::Cancellation => order.cancelled_at,
        }
    }

    /// Its bit in a set of kinds (`mail_orders.mails`).
    pub(super) fn bit(self) -> i64 {
        1 << self as u8
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mail an order's state calls for, before the ledger decides whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub order_id: String,
    pub kind: MailKind,
    /// The sequence of the event whose state implied it.
    pub sequence: i64,
    /// When what the mail tells happened (placed_at, paid_at or cancelled_at), ms since the epoch.
    pub happened_at: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Every mail the state in `order` implies, in the order a customer should read them: its kind
/// and when what it tells happened. Derived from state, not from `event_type`: the runtime
/// collapses a batch to each order's latest event.
pub(super) fn implied(order: &Order) -> impl Iterator<Item = (MailKind, i64)> + '_ {
    MailKind::ALL.into_iter().filter_map(|kind| Some((kind, kind.happened_at(order)?)))
}

/// Every mail the state in `event` implies, rendered.
pub fn drafts(event: &OrderEvent) -> Vec<Draft> {
    let order = &event.order;
    implied(order)
        .map(|(kind, happened_at)| Draft {
            order_id: order.order_id.clone(),
            kind,
            sequence: event.sequence,
            happened_at,
            recipient: order.customer.email.clone(),
            subject: subject(kind, order),
            body: body(kind, order),
        })
        .collect()
}

/// The subject carries no personal data: the model and the order id only.
pub(super) fn subject(kind: MailKind, order: &Order) -> String {
    let what = match kind {
        MailKind::Confirmation => "Order confirmed",
        MailKind::Receipt => "Payment received",
        MailKind::Cancellation => "Order cancelled",
    };
    format!("{what}: your Edison {} (order {})", order.model, order.order_id)
}

pub(super) fn body(kind: MailKind, order: &Order) -> String {
    let mut text = format!("Dear {},\n\n", order.customer.name);
    let car = format!("Edison {} with {} battery pack(s)", order.model, order.batteries);
    // Lines stay short, so an ASCII body goes out as readable 7bit text.
    let price = order.price.to_string();
    let _ = match kind {
        MailKind::Confirmation => write!(
            text,
            "thank you for your order. We will build your {car}.\n\n\
             Price:             {price}\n\
             Expected delivery: {}\n\
             Shipping address:  {}\n",
            day(i64::from(order.expected_delivery)),
            order.customer.shipping_address
        ),
        MailKind::Receipt => write!(
            text,
            "we have received your payment of {price}\nfor your {car}.\n\n\
             Paid on:           {}\n\
             Expected delivery: {}\n",
            utc_day(order.paid_at.unwrap_or_default()),
            day(i64::from(order.expected_delivery))
        ),
        MailKind::Cancellation => write!(
            text,
            "your order of an {car}\nhas been cancelled{}.\n\n\
             Cancelled on:      {}\n{}",
            order.cancel_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
            utc_day(order.cancelled_at.unwrap_or_default()),
            if order.paid_at.is_some() { format!("Your payment of {price} will be refunded.\n") } else { String::new() }
        ),
    };
    let _ = write!(text, "\nOrder: {}\n\nEdison Cars\n", order.order_id);
    text
}

/// A recorded mail, ready to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub order_id: String,
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// When the ledger recorded it: the message's `Date`, so a re-send is byte-identical.
    pub created_at: i64,
}

/// The `Message-ID` of an order's mail of `kind`: the same whenever it is rendered, so a second
/// delivery of one mail is recognisable as a duplicate by any mail system.
pub fn message_id(order_id: &str, kind: MailKind, from: &Mailbox) -> String {
    format!("<{order_id}.{kind}@{}>", from.email.domain())
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid recipient address {address:?}: {source}")]
    Recipient { address: String, source: lettre::address::AddressError },
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// The RFC 5322 message for `mail`: From, To, Subject, Date, Message-ID, MIME-Version and a
/// `text/plain; charset=utf-8` body. A function of the ledger row alone.
pub fn render(mail: &Outgoing, from: &Mailbox) -> Result<Message, RenderError> {
    let to = mail
        .recipient
        .parse()
        .map_err(|source| RenderError::Recipient { address: mail.recipient.clone(), source })?;
    let date = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(mail.created_at).unwrap_or_default());
    Ok(Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.clone())
        .date(date)
        .message_id(Some(message_id(&mail.order_id, mail.kind, from)))
        .singlepart(SinglePart::plain(mail.body.clone()))?)
}

/// The header fields of a message as (name, value), unfolded, in order. For reading back what
/// was delivered.
pub fn headers(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().take_while(|line| !line.is_empty()) {
        match (line.strip_prefix([' ', '\t']), fields.last_mut()) {
            (Some(continued), Some((_, value))) => {
                value.push(' ');
                value.push_str(continued.trim_start());
            }
            _ => {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                fields.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{cancel, pay, placed, DAY_MS, PLACED_AT};

    const PAID_AT: i64 = PLACED_AT + DAY_MS;
    const CANCELLED_AT: i64 = PLACED_AT + 2 * DAY_MS;

    fn kinds(event: &OrderEvent) -> Vec<(MailKind, i64)> {
        drafts(event).iter().map(|d| (d.kind, d.happened_at)).collect()
    }

    #[test]
    fn the_state_implies_the_mails_whatever_the_event_type() {
        use MailKind::*;
        assert_eq!(kinds(&placed()), vec![(Confirmation, PLACED_AT)]);
        assert_eq!(kinds(&pay(placed(), PAID_AT)), vec![(Confirmation, PLACED_AT), (Receipt, PAID_AT)]);
        assert_eq!(kinds(&cancel(placed(), CANCELLED_AT)), vec![(Confirmation, PLACED_AT), (Cancellation, CANCELLED_AT)]);
        let paid_then_cancelled = cancel(pay(placed(), PAID_AT), CANCELLED_AT);
        assert_eq!(
            kinds(&paid_then_cancelled),
            vec![(Confirmation, PLACED_AT), (Receipt, PAID_AT), (Cancellation, CANCELLED_AT)],
            "paid_at stays set after a cancellation: all three"
        );
        let mut amended = paid_then_cancelled.clone();
        amended.event_type = edison_schemas::EventType::Amended;
        assert_eq!(kinds(&amended), kinds(&paid_then_cancelled), "the event type plays no part");
        for draft in drafts(&paid_then_cancelled) {
            assert_eq!(draft.sequence, 3, "the triggering event's sequence");
            assert_eq!(draft.recipient, "ada@example.com");
        }
    }

    #[test]
    fn texts_say_what_happened_and_subjects_hold_no_personal_data() {
        let all = drafts(&cancel(pay(placed(), PAID_AT), CANCELLED_AT));
        let [confirmation, receipt, cancellation] = &all[..] else { panic!("three mails") };
        assert!(confirmation.body.starts_with("Dear Ada Lovelace,\n"));
        assert!(confirmation.body.contains("EUR 69,900.00") && confirmation.body.contains("12 Analytical Row, London"));
        assert!(confirmation.body.contains("Expected delivery: 2026-03-30"), "{}", confirmation.body);
        assert!(receipt.body.contains("Paid on:           2025-11-25"), "{}", receipt.body);
        assert!(cancellation.body.contains("(changed mind)") && cancellation.body.contains("will be refunded"));
        assert!(!drafts(&cancel(placed(), CANCELLED_AT))[1].body.contains("refunded"), "nothing to refund if unpaid");
        for draft in &all {
            assert!(!draft.subject.contains("Ada") && !draft.subject.contains("ada@"), "{}", draft.subject);
            assert!(draft.subject.contains("Edison Model P") && draft.subject.contains(&draft.order_id));
            assert!(draft.body.contains(&draft.order_id));
        }
    }

    fn outgoing(kind: MailKind) -> Outgoing {
        let draft = drafts(&cancel(pay(placed(), PAID_AT), CANCELLED_AT)).into_iter().find(|d| d.kind == kind).unwrap();
        Outgoing {
            order_id: draft.order_id,
            kind,
            recipient: draft.recipient,
            subject: draft.subject,
            body: draft.body,
            created_at: PLACED_AT + 5_000,
        }
    }

    fn from() -> Mailbox {
        "Edison Cars <orders@edison-cars.example>".parse().unwrap()
    }

    #[test]
    fn a_rendered_mail_has_the_rfc_5322_headers() {
        let message = render(&outgoing(MailKind::Receipt), &from()).unwrap().formatted();
        let headers = headers(&message);
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("From"), Some("\"Edison Cars\" <orders@edison-cars.example>"));
        assert_eq!(get("To"), Some("ada@example.com"));
        assert_eq!(get("Subject"), Some("Payment received: your Edison Model P (order 0196a000-0000-7000-8000-00000000beef)"));
        assert_eq!(get("Date"), Some("Mon, 24 Nov 2025 16:00:05 +0000"));
        assert_eq!(get("Message-ID"), Some("<0196a000-0000-7000-8000-00000000beef.receipt@edison-cars.example>"));
        assert_eq!(get("MIME-Version"), Some("1.0"));
        assert_eq!(get("Content-Type"), Some("text/plain; charset=utf-8"));
    }

    #[test]
    fn rendering_is_deterministic_and_message_ids_differ_by_order_and_kind() {
        let a = render(&outgoing(MailKind::Confirmation), &from()).unwrap().formatted();
        let b = render(&outgoing(MailKind::Confirmation), &from()).unwrap().formatted();
        assert_eq!(a, b, "a re-send is byte-identical, Message-ID included");
        let order = &placed().order.order_id;
        let ids: std::collections::HashSet<String> =
            MailKind::ALL.iter().map(|kind| message_id(order, *kind, &from())).collect();
        assert_eq!(ids.len(), 3);
        assert_ne!(message_id(order, MailKind::Receipt, &from()), message_id("other", MailKind::Receipt, &from()));
    }

    #[test]
    fn a_malformed_recipient_is_a_render_error() {
        let mut mail = outgoing(MailKind::Confirmation);
        mail.recipient = "not an address".into();
        assert!(matches!(render(&mail, &from()), Err(RenderError::Recipient { .. })));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("invoice"), None);
    }
}
