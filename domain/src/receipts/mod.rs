//! PDF receipts for buyers' payments (credit notes for refunds are drawn and checked the same
//! way, see `refunds`): made once per order by a job, stored with their SHA-256,
//! emailed to the buyer (and announced to the tenant as `receipt.sent`) in the transaction that
//! stores them, so exactly one receipt email is queued per order; downloadable with the buyer's
//! payment link or by the tenant, and checkable by anyone who holds one through its
//! verification code.

pub mod pdf;
mod sfnt;

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{
    Services, buyer_mail, crypto,
    error::{Error, Result},
    mail::{self, Attachment, OutgoingEmail},
    money::format_minor,
    queue,
    states::BuyerEmail,
    tenant_webhooks::{
        self,
        events::{ReceiptSent, TenantEvent},
    },
};

/// Crockford's base32: no I, L, O or U, so a code read aloud or retyped survives.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Twelve code characters as they are printed and stored: `XXXX-XXXX-XXXX`.
fn grouped(chars: &[char]) -> String {
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A new verification code (60 random bits).
pub(crate) fn new_verification_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..12).map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..32)])).collect();
    grouped(&chars)
}

/// A code as someone typed it, in the stored form: case, spaces and dashes ignored, and the
/// letters Crockford's alphabet leaves out read as the digits they look like.
pub fn normalise_code(input: &str) -> Option<String> {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if chars.len() != 12 || !chars.iter().all(|c| c.is_ascii() && CODE_ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    Some(grouped(&chars))
}

/// What `issue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub receipt_id: Uuid,
    /// False when the order already had its receipt.
    pub created: bool,
}

/// Makes an order's PDF receipt and queues the email that carries it (see [`issue`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct IssueReceipt {
    pub order_id: Uuid,
}

impl TaskHandler for IssueReceipt {
    const IDENTIFIER: &'static str = "issue_receipt";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        issue(services, self.order_id).await.map(|_| ()).map_err(|err| {
            err.log();
            err.to_string()
        })
    }
}

/// Makes the order's receipt and queues the email that carries it, once: the receipt is unique
/// per order and its email is queued in the same transaction, so a repeated or concurrent run
/// changes nothing. The receipt number is taken from the tenant's counter in that transaction.
pub async fn issue(services: &Services, order_id: Uuid) -> Result<Issued> {
    if let Some(receipt_id) = sqlx::query_scalar!("SELECT id FROM receipts WHERE order_id = $1", order_id)
        .fetch_optional(&services.pool)
        .await?
    {
        return Ok(Issued { receipt_id, created: false });
    }
    let order = describe(&services.pool, order_id).await?;
    let mut tx = services.pool.begin().await?;
    let issued_at = Utc::now();
    let sequence = sqlx::query_scalar!(
        "INSERT INTO receipt_counters (tenant_id, last_number) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET last_number = receipt_counters.last_number + 1 RETURNING last_number",
        order.tenant_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let number = format!("{}-{sequence:06}", issued_at.format("%Y"));
    let verification_code = new_verification_code();
    let (seller, items) = order.paid_for.seller_and_items(&order.tenant);
    let content = pdf::ReceiptContent {
        kind: pdf::Kind::Receipt,
        number: number.clone(),
        seller,
        items,
        amount: order.amount,
        currency: order.currency.clone(),
        paid_at: order.paid_at,
        issued_at,
        payment_reference: order.payment_intent.clone(),
        verification_code: verification_code.clone(),
        verify_url: services.settings.public_url("/receipts/verify"),
        livemode: order.livemode,
    };
    let document = pdf::render(&services.receipt_fonts, &content)?;
    let digest = Sha256::digest(&document).to_vec();
    let sha256 = hex::encode(&digest);
    let receipt_id = Uuid::new_v4();
    let inserted = sqlx::query!(
        "INSERT INTO receipts (id, order_id, tenant_id, number, verification_code, sha256, pdf)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO NOTHING",
        receipt_id,
        order_id,
        order.tenant_id,
        number,
        verification_code,
        digest,
        document,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // Another run stored it meanwhile; this one's number goes back with the rollback.
        drop(tx);
        let receipt_id = sqlx::query_scalar!("SELECT id FROM receipts WHERE order_id = $1", order_id)
            .fetch_one(&services.pool)
            .await?;
        return Ok(Issued { receipt_id, created: false });
    }
    let attachment = Attachment {
        filename: format!("receipt-{number}.pdf"),
        content_type: "application/pdf".into(),
        content: document,
    };
    let amount = format_minor(order.amount, &order.currency);
    let paid = order.paid_at.format("%-d %B %Y, %H:%M UTC");
    match order.paid_for {
        PaidFor::Lot { bid_id, reference, auction, lot, buyer_email, .. } => {
            buyer_mail::send(
                &mut tx,
                bid_id,
                BuyerEmail::Receipt,
                None,
                OutgoingEmail {
                    tenant_id: Some(order.tenant_id),
                    to: buyer_email,
                    subject: format!("Your receipt for lot {lot} — {}", order.tenant),
                    text_body: format!(
                        "Thank you for your payment.\n\n\
                         Lot {lot} ({auction}), {tenant}\nAmount paid: {amount}\nPaid: {paid}\nReceipt number: {number}\n\
                         Verification code: {verification_code}\n\n\
                         Your receipt is attached as a PDF. You can download it again from the payment link we sent \
                         you, and anyone can check it is genuine at {verify}.\n",
                        tenant = order.tenant,
                        verify = content.verify_url,
                    ),
                    attachments: vec![attachment],
                    links: None,
                },
            )
            .await?;
            let event = TenantEvent::ReceiptSent(ReceiptSent {
                order: order_id,
                winning: bid_id,
                reference,
                receipt_number: number.to_string(),
                sha256,
                receipt_url: format!("/api/v1/winnings/{bid_id}/receipt"),
            });
            tenant_webhooks::events::emit(&mut tx, order.tenant_id, order.livemode, event).await?;
        }
        // The tenant hears of a fee's payment (`fee.paid`); its receipt is the client's.
        PaidFor::Fee { description, consultant, client_email, .. } => {
            mail::enqueue(
                &mut tx,
                OutgoingEmail {
                    tenant_id: Some(order.tenant_id),
                    to: client_email,
                    subject: format!("Your receipt: {description} — {consultant}"),
                    text_body: format!(
                        "Thank you for your payment.\n\n\
                         {description}, billed by {consultant}\nAmount paid: {amount}\nPaid: {paid}\n\
                         Receipt number: {number}\nVerification code: {verification_code}\n\n\
                         Your receipt is attached as a PDF. You can download it again under Fees in Remit, and \
                         anyone can check it is genuine at {verify}.\n",
                        verify = content.verify_url,
                    ),
                    attachments: vec![attachment],
                    links: None,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(%order_id, %receipt_id, "receipt issued");
    Ok(Issued { receipt_id, created: true })
}

/// What an order paid for, as its receipt and credit notes describe it.
pub(crate) enum PaidFor {
    Lot { bid_id: Uuid, reference: String, auction: String, lot: String, description: String, buyer_email: String },
    Fee { description: String, due_on: chrono::NaiveDate, consultant: String, client_email: String },
}

impl PaidFor {
    /// Who was paid (the tenant for a lot, the consultant for a fee) and the document's rows.
    pub(crate) fn seller_and_items(&self, tenant: &str) -> (String, Vec<pdf::Item>) {
        match self {
            Self::Lot { auction, lot, description, buyer_email, .. } => {
                (tenant.to_owned(), pdf::lot_items(tenant, auction, lot, description, buyer_email))
            }
            Self::Fee { description, due_on, consultant, client_email } => (
                consultant.clone(),
                vec![
                    pdf::Item::new("Billed by", format!("{consultant}, {tenant}")),
                    pdf::Item::long("For", description.clone()),
                    pdf::Item::new("Due", due_on.format("%-d %B %Y").to_string()),
                    pdf::Item::new("Client", client_email.clone()),
                ],
            ),
        }
    }
}

/// A paid order as its documents describe it.
pub(crate) struct Described {
    pub tenant_id: Uuid,
    pub tenant: String,
    pub amount: i64,
    pub currency: String,
    pub paid_at: DateTime<Utc>,
    pub payment_intent: String,
    pub livemode: bool,
    pub paid_for: PaidFor,
}

/// Reads what an order paid for (a lot or a fee) and whom.
pub(crate) async fn describe(pool: &sqlx::PgPool, order_id: Uuid) -> Result<Described> {
    let order = sqlx::query!(
        r#"SELECT o.tenant_id, o.amount, o.currency, o.paid_at, o.stripe_payment_intent_id, t.name AS tenant,
                  coalesce(b.livemode, f.livemode) AS "livemode!",
                  b.id AS "bid_id?", b.reference AS "reference?", b.auction AS "auction?", b.lot AS "lot?",
                  b.description AS "lot_description?", b.buyer_email AS "buyer_email?",
                  f.description AS "fee_description?", f.due_on AS "due_on?", c.display_name AS "consultant?",
                  u.email AS "client_email?"
           FROM orders o JOIN tenants t ON t.id = o.tenant_id
           LEFT JOIN winning_bids b ON b.id = o.bid_id
           LEFT JOIN fee_requests f ON f.id = o.fee_request_id
           LEFT JOIN users c ON c.id = f.consultant_id LEFT JOIN users u ON u.id = f.client_id
           WHERE o.id = $1"#,
        order_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("order"))?;
    let paid_for = match (order.bid_id, order.reference, order.auction, order.lot, order.buyer_email) {
        (Some(bid_id), Some(reference), Some(auction), Some(lot), Some(buyer_email)) => PaidFor::Lot {
            bid_id,
            reference,
            auction,
            lot,
            description: order.lot_description.unwrap_or_default(),
            buyer_email,
        },
        _ => PaidFor::Fee {
            description: order.fee_description.ok_or_else(|| anyhow::anyhow!("order {order_id} pays for nothing"))?,
            due_on: order.due_on.ok_or_else(|| anyhow::anyhow!("fee of order {order_id} has no due date"))?,
            consultant: order.consultant.unwrap_or_default(),
            client_email: order.client_email.unwrap_or_default(),
        },
    };
    Ok(Described {
        tenant_id: order.tenant_id,
        tenant: order.tenant,
        amount: order.amount,
        currency: order.currency,
        paid_at: order.paid_at,
        payment_intent: order.stripe_payment_intent_id,
        livemode: order.livemode,
        paid_for,
    })
}

/// A receipt as it is downloaded.
#[derive(Debug, Clone)]
pub struct ReceiptFile {
    pub filename: String,
    pub content: Vec<u8>,
    pub sha256: [u8; 32],
}

/// Reads the order's receipt (making it first if its job has not run yet) and checks it
/// against its stored SHA-256: a mismatch is refused, never served.
async fn file_of_order(services: &Services, order_id: Uuid) -> Result<ReceiptFile> {
    issue(services, order_id).await?;
    let row = sqlx::query!("SELECT number, sha256, pdf FROM receipts WHERE order_id = $1", order_id)
        .fetch_one(&services.pool)
        .await?;
    checked_file(format!("receipt-{}.pdf", row.number), &row.sha256, row.pdf)
}

/// A stored PDF (receipt or credit note) as it is served, once it matches the SHA-256 stored
/// with it: a mismatch is refused, never served.
pub(crate) fn checked_file(filename: String, stored_sha256: &[u8], content: Vec<u8>) -> Result<ReceiptFile> {
    let actual: [u8; 32] = Sha256::digest(&content).into();
    if actual.as_slice() != stored_sha256 {
        return Err(anyhow::anyhow!("the stored {filename} does not match its SHA-256").into());
    }
    Ok(ReceiptFile { filename, content, sha256: actual })
}

/// The buyer's receipt, by their payment link's token. No order (yet), or a wrong token: 404.
pub async fn for_buyer(services: &Services, token: &str) -> Result<ReceiptFile> {
    let order_id = sqlx::query_scalar!(
        "SELECT o.id FROM orders o JOIN winning_bids b ON b.id = o.bid_id WHERE b.token_hash = $1",
        crypto::token_hash(token)
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("receipt"))?;
    file_of_order(services, order_id).await
}

/// A tenant's receipt for one of its bids; another tenant's bid (or, for an API key, the other
/// mode's) is not found.
pub async fn for_tenant(
    services: &Services,
    tenant_id: Uuid,
    livemode: Option<bool>,
    bid_id: Uuid,
) -> Result<ReceiptFile> {
    let order_id = sqlx::query_scalar!(
        "SELECT o.id FROM orders o JOIN winning_bids b ON b.id = o.bid_id
         WHERE b.id = $1 AND b.tenant_id = $2 AND ($3::boolean IS NULL OR b.livemode = $3)",
        bid_id,
        tenant_id,
        livemode,
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("receipt"))?;
    file_of_order(services, order_id).await
}

/// A paid fee's receipt, for its client or the consultant who billed it; anyone else's (or an
/// unpaid fee's) is not found.
pub async fn for_fee(services: &Services, user_id: Uuid, fee_id: Uuid) -> Result<ReceiptFile> {
    let order_id = sqlx::query_scalar!(
        "SELECT o.id FROM orders o JOIN fee_requests f ON f.id = o.fee_request_id
         WHERE f.id = $1 AND (f.client_id = $2 OR f.consultant_id = $2)",
        fee_id,
        user_id,
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("receipt"))?;
    file_of_order(services, order_id).await
}

/// What checking a verification code shows: enough to match a receipt or credit note in hand,
/// nothing about the buyer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub number: String,
    /// For a credit note, the number of the receipt it corrects; `None` for a receipt.
    pub corrects: Option<String>,
    /// Who issued it: the tenant, or for a fee the consultant and their tenant.
    pub issuer: String,
    /// What was paid for: "Lot 17, Autumn sale", or a fee's description.
    pub paid_for: String,
    /// Paid (a receipt) or refunded (a credit note).
    pub amount: String,
    /// When it was paid or refunded.
    pub at: DateTime<Utc>,
    pub order_status: String,
    pub livemode: bool,
    pub sha256: String,
}

/// Looks a receipt or a credit note up by its verification code (the two share one alphabet
/// and are drawn from the same 60 random bits). `Ok(None)` when none has it.
pub async fn verify(services: &Services, code: &str) -> Result<Option<Verified>> {
    let code = normalise_code(code)
        .ok_or_else(|| Error::invalid("code", "A verification code has 12 letters and digits, like 7KQ2-M9XD-4HTB."))?;
    let row = sqlx::query!(
        r#"SELECT r.number AS "number!", NULL::text AS corrects, r.sha256 AS "sha256!",
                  coalesce(c.display_name || ', ', '') || t.name AS "issuer!",
                  coalesce('Lot ' || b.lot || ', ' || b.auction, f.description) AS "paid_for!",
                  coalesce(b.livemode, f.livemode) AS "livemode!", o.amount AS "amount!",
                  o.currency AS "currency!", o.paid_at AS "at!", o.status AS "status!"
           FROM receipts r JOIN orders o ON o.id = r.order_id JOIN tenants t ON t.id = r.tenant_id
           LEFT JOIN winning_bids b ON b.id = o.bid_id LEFT JOIN fee_requests f ON f.id = o.fee_request_id
           LEFT JOIN users c ON c.id = f.consultant_id
           WHERE r.verification_code = $1
           UNION ALL
           SELECT cn.number, rc.number, cn.sha256, coalesce(c.display_name || ', ', '') || t.name,
                  coalesce('Lot ' || b.lot || ', ' || b.auction, f.description), coalesce(b.livemode, f.livemode),
                  rf.amount, rf.currency, rf.updated_at, o.status
           FROM credit_notes cn JOIN refunds rf ON rf.id = cn.refund_id JOIN orders o ON o.id = rf.order_id
           JOIN tenants t ON t.id = cn.tenant_id
           LEFT JOIN winning_bids b ON b.id = o.bid_id LEFT JOIN fee_requests f ON f.id = o.fee_request_id
           LEFT JOIN users c ON c.id = f.consultant_id
           LEFT JOIN receipts rc ON rc.order_id = o.id
           WHERE cn.verification_code = $1"#,
        code
    )
    .fetch_optional(&services.pool)
    .await?;
    Ok(row.map(|r| Verified {
        number: r.number,
        corrects: r.corrects,
        issuer: r.issuer,
        paid_for: r.paid_for,
        amount: format_minor(r.amount, &r.currency),
        at: r.at,
        order_status: r.status,
        livemode: r.livemode,
        sha256: hex::encode(r.sha256),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_survive_retyping() {
        let code = new_verification_code();
        assert_eq!(code.len(), 14);
        assert_eq!(normalise_code(&code.to_lowercase().replace('-', " ")), Some(code.clone()));
        assert_eq!(normalise_code("0ILO-0000-0000"), Some("0110-0000-0000".into()));
        assert_eq!(normalise_code("ABCD-EFGH-JKM"), None, "too short");
        assert_eq!(normalise_code("ABCD-EFGH-JKMU"), None, "U is not in the alphabet");
        assert_ne!(new_verification_code(), new_verification_code());
    }
}
