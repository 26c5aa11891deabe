mod admin;
mod dashboard;
mod home;
mod password;
mod people;
mod sign_in;
mod tenant_settings;

pub use admin::{AdminPage, OutboxEmailPage, OutboxPage};
pub use dashboard::DashboardPage;
pub use home::HomePage;
pub use password::{ChoosePasswordPage, ForgotPasswordPage};
pub use sign_in::SignInPage;
pub use tenant_settings::TenantSettingsPage;

pub use crate::components::status::NotFoundPage;
