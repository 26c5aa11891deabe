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

/// How one Account Session request ended (FG-003's failure-rate alert counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "account_session_outcome", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AccountSessionOutcome {
    Succeeded,
    /// Stripe answered with an error, or could not be reached, on the last attempt.
    StripeError,
    /// No answer within the request's deadline.
    TimedOut,
    /// Refused by the consultant's hourly limit before Stripe was asked.
    RateLimited,
}

impl AccountSessionOutcome {
    /// In an alert's words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::StripeError => "Stripe error",
            Self::TimedOut => "timed out",
            Self::RateLimited => "refused by the hourly limit",
        }
    }
}

/// Where a consultant's fee request stands. A paid fee's refunds and disputes are its order's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "fee_request_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum FeeRequestStatus {
    Open,
    Paid,
    Cancelled,
}

impl FeeRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Whether a fee is billed once or every month until the consultant stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "fee_recurrence", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum FeeRecurrence {
    Once,
    Monthly,
}

impl FeeRecurrence {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "once" => Some(Self::Once),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
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
