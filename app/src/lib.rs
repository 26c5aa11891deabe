//! Remit's user interface: Leptos components rendered on the server and hydrated in the
//! browser, and the server functions they call.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::{components::layout::Shell, pages::*};

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                // Mounts Stripe's embedded onboarding on the payment setup page (plain JS: it
                // drives Stripe's Connect.js, which is not part of the wasm app).
                <script src="/payment-setup.js" defer></script>
                <MetaTags/>
            </head>
            <body class="min-h-screen bg-gray-100 text-gray-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this marks the page as hydrated, which end-to-end tests
    // wait for before they click.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/remit.css"/>
        <Title formatter=|title: String| if title.is_empty() { "Remit".to_owned() } else { format!("{title} · Remit") }/>
        <Router>
            <Shell>
                // Every page waits for its data before the response starts, so that a refusal
                // is answered with its real status (401, 403, 404) rather than 200.
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async/>
                    <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=SsrMode::Async/>
                    <Route path=path!("/reset-password") view=ChoosePasswordPage ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard") view=DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/pay/complete") view=PaymentResultPage ssr=SsrMode::Async/>
                    <Route path=path!("/pay/cancelled") view=PaymentResultPage ssr=SsrMode::Async/>
                    <Route path=path!("/pay/:token") view=PayPage ssr=SsrMode::Async/>
                    <Route path=path!("/receipts/verify") view=VerifyReceiptPage ssr=SsrMode::Async/>
                    <Route path=path!("/winnings") view=WinningsPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing") view=BillingPage ssr=SsrMode::Async/>
                    <Route path=path!("/payment-setup") view=PaymentSetupPage ssr=SsrMode::Async/>
                    <Route path=path!("/payment-setup/complete") view=PaymentSetupCompletePage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/payment-methods") view=PaymentMethodsPage ssr=SsrMode::Async/>
                    <Route path=path!("/tenant") view=TenantOverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings") view=TenantSettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/stripe") view=StripeSettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/payouts") view=TenantPayoutsPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/security") view=SecurityPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=AdminDashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/people") view=AdminPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/security") view=SecurityPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/plans") view=PlansPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/billing") view=BillingMetricsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/jobs") view=JobsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/outbox") view=OutboxPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/outbox/:id") view=OutboxEmailPage ssr=SsrMode::Async/>
                </Routes>
            </Shell>
        </Router>
    }
}
