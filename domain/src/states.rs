//! The states Remit's rows move through, as PostgreSQL enums (`sqlx::Type`), for every layer to
//! name: a leaf module, so the events sent to tenants can carry them.

use serde::{Deserialize, Serialize};

/// Where a refund stands: `requested` while Remit asks Stripe, then Stripe's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "refund_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Requested,
    Pending,
    Succeeded,
    Failed,
    Canceled,
}

impl RefundStatus {
    /// Stripe's `status` of a refund (`requires_action` waits on the buyer, like `pending`).
    pub fn from_stripe(status: Option<&str>) -> Self {
        match status {
            Some("succeeded") => Self::Succeeded,
            Some("failed") => Self::Failed,
            Some("canceled") => Self::Canceled,
            _ => Self::Pending,
        }
    }

    /// How far a refund has come. Stripe's state is read when an event is applied, so two
    /// appliers may read it at different moments: a state is recorded only over an earlier one,
    /// never back (a succeeded refund can still fail later; a failed one stays failed).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Requested => 0,
            Self::Pending => 1,
            Self::Succeeded => 2,
            Self::Failed | Self::Canceled => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// What an email to a winning's buyer was about (its timeline names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "buyer_email_kind", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BuyerEmail {
    PaymentLink,
    LinkResent,
    Reminder,
    PaymentFailed,
    WindowClosed,
    WindowExtended,
    Cancelled,
    Receipt,
    CreditNote,
}

impl BuyerEmail {
    /// In the timeline's words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PaymentLink => "Payment link emailed",
            Self::LinkResent => "New payment link emailed (the old one stopped working)",
            Self::Reminder => "Reminder emailed",
            Self::PaymentFailed => "Failed attempt explained by email",
            Self::WindowClosed => "Told the payment window closed",
            Self::WindowExtended => "New deadline emailed",
            Self::Cancelled => "Told the winning was cancelled",
            Self::Receipt => "Receipt emailed",
            Self::CreditNote => "Credit note emailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_recorded_only_over_an_earlier_one() {
        use RefundStatus::*;
        assert!(Succeeded.rank() > Pending.rank());
        assert!(Failed.rank() > Succeeded.rank(), "a succeeded refund can still fail");
        assert!(Pending.rank() < Succeeded.rank(), "a late read of `pending` does not undo `succeeded`");
        assert_eq!(RefundStatus::from_stripe(Some("requires_action")), Pending);
        assert_eq!(RefundStatus::from_stripe(Some("canceled")), Canceled);
    }
}

/// How Stripe's balance and Remit's books differ on one thing (the daily reconciliation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "reconciliation_difference", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationDifference {
    /// Stripe moved money Remit has no record of.
    MissingInRemit,
    /// Remit recorded money Stripe did not move.
    MissingInStripe,
    /// Both have it, for different amounts.
    AmountMismatch,
}

impl ReconciliationDifference {
    /// In the admin page's words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MissingInRemit => "In Stripe, not in Remit",
            Self::MissingInStripe => "In Remit, not in Stripe",
            Self::AmountMismatch => "Amounts differ",
        }
    }
}
