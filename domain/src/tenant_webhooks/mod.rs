//! Webhooks Remit sends to tenants, run the way dedicated webhook services run them.
//!
//! - [`events`]: the typed events, recorded once each (whatever endpoints exist) with their
//!   object's sequence number, in the transaction of the change they report.
//! - [`endpoints`]: up to ten endpoints per tenant and mode, each with the event types it wants
//!   and its own secret, rotated with an overlap.
//! - [`signing`]: Standard Webhooks signatures (and the older `Remit-Signature`).
//! - [`delivery`]: one delivery per event and endpoint, its own queue; retries with jitter,
//!   disabling on `410 Gone` or five days of failure.
//! - [`log`]: the deliveries log, redelivery, replay, test deliveries ([`timing`] times each of
//!   their phases).
//! - [`address`]: where Remit may post at all.

pub mod address;
pub mod delivery;
pub mod endpoints;
pub mod events;
pub mod log;
pub mod signing;
pub mod timing;
