//! Checking a receipt or credit note: anyone holding one can confirm it is genuine with its
//! verification code.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedReceipt {
    pub number: String,
    /// A credit note names the receipt it corrects.
    pub corrects: Option<String>,
    /// The tenant, or for a fee the consultant and their tenant.
    pub issuer: String,
    /// "Lot 17, Autumn sale", or what a fee was for.
    pub paid_for: String,
    pub amount: String,
    pub paid_at: String,
    pub order_status: String,
    pub test_mode: bool,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verification {
    /// No code given yet.
    NotAsked,
    Genuine(Box<VerifiedReceipt>),
    /// No receipt carries this code.
    Unknown,
}

/// A malformed code is a 422 naming the field.
#[server(prefix = "/rpc", endpoint = "verify_receipt")]
pub async fn verify_receipt(code: Option<String>) -> Result<Verification, AppError> {
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else { return Ok(Verification::NotAsked) };
    let services = crate::server::services()?;
    let Some(verified) = domain::receipts::verify(&services, &code).await? else { return Ok(Verification::Unknown) };
    Ok(Verification::Genuine(Box::new(VerifiedReceipt {
        number: verified.number,
        corrects: verified.corrects,
        issuer: verified.issuer,
        paid_for: verified.paid_for,
        amount: verified.amount,
        paid_at: verified.at.format("%-d %B %Y, %H:%M UTC").to_string(),
        order_status: verified.order_status,
        test_mode: !verified.livemode,
        sha256: verified.sha256,
    })))
}
