mod account;
mod admin;
mod api_keys;
mod audit;
mod billing;
mod dashboard;
mod fees;
mod home;
mod overview;
mod password;
mod pay;
mod payment_setup;
mod payment_terms;
mod payouts;
mod people;
mod plans;
mod reconciliation;
mod reports;
mod security;
mod sign_in;
mod stripe_settings;
mod tenant_settings;
mod tenant_webhooks;
mod verify_receipt;
mod winnings;

pub use account::AccountPage;
pub use admin::{AdminPage, JobsPage, OutboxEmailPage, OutboxPage};
pub use api_keys::ApiKeysPage;
pub use audit::AuditPage;
pub use billing::{BillingPage, PaymentMethodsPage};
pub use dashboard::DashboardPage;
pub use fees::FeesPage;
pub use home::HomePage;
pub use overview::{AdminDashboardPage, TenantOverviewPage};
pub use password::{ChoosePasswordPage, ForgotPasswordPage};
pub use pay::{PayPage, PaymentResultPage};
pub use payment_setup::{PaymentSetupCompletePage, PaymentSetupPage, TenantPayoutsPage};
pub use payment_terms::TenantTermsPage;
pub use payouts::PayoutsPage;
pub use plans::{BillingMetricsPage, PlansPage};
pub use reconciliation::ReconciliationPage;
pub use reports::{PlatformReportsPage, ReportsPage};
pub use security::SecurityPage;
pub use sign_in::SignInPage;
pub use stripe_settings::StripeSettingsPage;
pub use tenant_settings::TenantSettingsPage;
pub use tenant_webhooks::{WebhookDeliveryPage, WebhooksPage};
pub use verify_receipt::VerifyReceiptPage;
pub use winnings::{WinningPage, WinningsPage};

pub use crate::components::status::NotFoundPage;

/// Every page is a lazy route: in the browser its code is a chunk of its own, loaded with the page
/// (`cargo leptos build --split`), so the first page of a visit hydrates with its own code and
/// the shared parts rather than the whole app. `data` starts nothing: a page's resources are in
/// its chunk, and the first page's data arrives serialised in the server's HTML.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident),* $(,)?) => {
        $(
            #[doc = concat!("The lazy route of [`", stringify!($page), "`].")]
            pub struct $route;

            #[leptos_router::lazy_route]
            impl leptos_router::LazyRoute for $route {
                fn data() -> Self {
                    Self
                }

                fn view(_this: Self) -> leptos::prelude::AnyView {
                    use leptos::prelude::IntoAny as _;
                    crate::components::status::mark_hydrated();
                    leptos::prelude::view! { <$page/> }.into_any()
                }
            }
        )*
    };
}

lazy_pages! {
    HomeRoute => HomePage,
    SignInRoute => SignInPage,
    ForgotPasswordRoute => ForgotPasswordPage,
    ChoosePasswordRoute => ChoosePasswordPage,
    DashboardRoute => DashboardPage,
    AccountRoute => AccountPage,
    PaymentResultRoute => PaymentResultPage,
    PayRoute => PayPage,
    VerifyReceiptRoute => VerifyReceiptPage,
    WinningsRoute => WinningsPage,
    WinningRoute => WinningPage,
    ReportsRoute => ReportsPage,
    PlatformReportsRoute => PlatformReportsPage,
    ReconciliationRoute => ReconciliationPage,
    BillingRoute => BillingPage,
    FeesRoute => FeesPage,
    PayoutsRoute => PayoutsPage,
    PaymentSetupRoute => PaymentSetupPage,
    PaymentSetupCompleteRoute => PaymentSetupCompletePage,
    PaymentMethodsRoute => PaymentMethodsPage,
    TenantOverviewRoute => TenantOverviewPage,
    TenantSettingsRoute => TenantSettingsPage,
    StripeSettingsRoute => StripeSettingsPage,
    ApiKeysRoute => ApiKeysPage,
    WebhooksRoute => WebhooksPage,
    WebhookDeliveryRoute => WebhookDeliveryPage,
    TenantPayoutsRoute => TenantPayoutsPage,
    AuditRoute => AuditPage,
    SecurityRoute => SecurityPage,
    AdminDashboardRoute => AdminDashboardPage,
    AdminRoute => AdminPage,
    TenantTermsRoute => TenantTermsPage,
    PlansRoute => PlansPage,
    BillingMetricsRoute => BillingMetricsPage,
    JobsRoute => JobsPage,
    OutboxRoute => OutboxPage,
    OutboxEmailRoute => OutboxEmailPage,
}
