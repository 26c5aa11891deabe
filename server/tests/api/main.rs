//! Integration tests: each spawns Remit on its own fresh database and talks to it over HTTP.

mod authorization_matrix;
mod csrf;
mod health;
mod helpers;
mod jobs;
mod mail;
mod pages;
mod password_reset;
mod secrets;
mod sign_in;
mod startup;
mod stripe_webhooks;
