//! Integration tests: each spawns Remit on its own fresh database and talks to it over HTTP.

mod accounts;
mod api_keys;
mod authorization_matrix;
mod billing;
mod checkout;
mod csrf;
mod dashboard;
mod demo;
mod hardening;
mod health;
mod helpers;
mod jobs;
mod mail;
mod mailbox;
mod pages;
mod password_reset;
mod payment_security;
mod payouts;
mod receipts;
mod secrets;
mod security_review;
mod sign_in;
mod startup;
mod stripe_webhooks;
mod tenant_stripe;
mod tenant_webhooks;
