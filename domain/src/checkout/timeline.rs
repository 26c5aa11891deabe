//! A winning's timeline: everything that happened to it, from the tables that record each
//! thing (registration, the buyer's emails, Checkout attempts, the payment, receipt, refunds,
//! credit notes, disputes, window changes, and each outbound webhook delivery with its state),
//! oldest first.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Services, error::Result, states::BuyerEmail};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// What happened, in words.
    pub what: String,
    /// More about it (a failure's reason, a delivery's state, an email's address).
    pub detail: Option<String>,
}

/// The timeline of a tenant's bid (another tenant's has none).
pub async fn of_winning(services: &Services, tenant_id: Uuid, bid_id: Uuid) -> Result<Vec<Entry>> {
    let rows = sqlx::query!(
        r#"
        SELECT b.won_at AS "at!", 'registered' AS "kind!", b.buyer_email AS detail, NULL::buyer_email_kind AS "email_kind?: BuyerEmail", NULL::int AS number
        FROM winning_bids b WHERE b.id = $1 AND b.tenant_id = $2
        UNION ALL
        SELECT e.created_at, 'email', coalesce(e.subject, ''), w.kind, NULL
        FROM winning_emails w JOIN emails e ON e.id = w.email_id JOIN winning_bids b ON b.id = w.bid_id
        WHERE w.bid_id = $1 AND b.tenant_id = $2
        UNION ALL
        SELECT s.created_at, 'attempt', s.failure_message, NULL, s.attempt
        FROM payment_sessions s JOIN winning_bids b ON b.id = s.bid_id WHERE s.bid_id = $1 AND b.tenant_id = $2
        UNION ALL
        SELECT o.paid_at, 'paid', o.stripe_payment_intent_id, NULL, NULL
        FROM orders o WHERE o.bid_id = $1 AND o.tenant_id = $2
        UNION ALL
        SELECT r.created_at, 'receipt', r.number, NULL, NULL
        FROM receipts r JOIN orders o ON o.id = r.order_id WHERE o.bid_id = $1 AND r.tenant_id = $2
        UNION ALL
        SELECT f.created_at, 'refund', f.status::text || ': ' || f.reason, NULL, NULL
        FROM refunds f JOIN orders o ON o.id = f.order_id WHERE o.bid_id = $1 AND f.tenant_id = $2
        UNION ALL
        SELECT c.created_at, 'credit_note', c.number, NULL, NULL
        FROM credit_notes c JOIN refunds f ON f.id = c.refund_id JOIN orders o ON o.id = f.order_id
        WHERE o.bid_id = $1 AND c.tenant_id = $2
        UNION ALL
        SELECT d.created_at, 'dispute', d.reason || ' (' || d.status || ')', NULL, NULL
        FROM disputes d JOIN orders o ON o.id = d.order_id WHERE o.bid_id = $1 AND d.tenant_id = $2
        UNION ALL
        SELECT b.extended_at, 'extended', to_char(b.pay_by AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), NULL, NULL
        FROM winning_bids b WHERE b.id = $1 AND b.tenant_id = $2 AND b.extended_at IS NOT NULL
        UNION ALL
        SELECT b.cancelled_at, 'cancelled', b.cancel_reason, NULL, NULL
        FROM winning_bids b WHERE b.id = $1 AND b.tenant_id = $2 AND b.cancelled_at IS NOT NULL
        UNION ALL
        SELECT b.pay_by, 'closed', b.status, NULL, NULL
        FROM winning_bids b WHERE b.id = $1 AND b.tenant_id = $2 AND b.status IN ('expired', 'failed')
        UNION ALL
        SELECT coalesce(d.delivered_at, d.created_at), 'webhook',
               ev.type || ' to ' || p.url || ': ' || d.status::text
                   || coalesce(' (' || d.attempts || ' attempts, last answer ' || d.last_status || ')', ''),
               NULL, NULL
        FROM webhook_events ev JOIN webhook_deliveries d ON d.event_id = ev.id
        JOIN webhook_endpoints p ON p.id = d.endpoint_id
        WHERE ev.tenant_id = $2 AND ev.payload -> 'data' ->> 'winning' = $1::text
        ORDER BY 1, 2
        "#,
        bid_id,
        tenant_id
    )
    .fetch_all(&services.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let what = match r.kind.as_str() {
                "registered" => "Won and registered; the buyer was emailed the payment link".to_owned(),
                "email" => r.email_kind.map_or("Email to the buyer", BuyerEmail::describe).to_owned(),
                "attempt" if r.detail.is_some() => format!("Checkout attempt {} failed", r.number.unwrap_or(0)),
                "attempt" => format!("Checkout attempt {} opened", r.number.unwrap_or(0)),
                "paid" => "Paid".to_owned(),
                "receipt" => "Receipt issued".to_owned(),
                "refund" => "Refund".to_owned(),
                "credit_note" => "Credit note issued".to_owned(),
                "dispute" => "Payment disputed".to_owned(),
                "extended" => "Payment window extended".to_owned(),
                "cancelled" => "Cancelled".to_owned(),
                "closed" => "Payment window closed unpaid".to_owned(),
                "webhook" => "Webhook delivery".to_owned(),
                other => other.to_owned(),
            };
            Entry { at: r.at, what, detail: r.detail }
        })
        .collect())
}
