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
    Lazy, SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::{components::layout::Shell, pages::*};

/// Whether the server sends the page at `path` without the wasm app: the buyer's payment pages
/// and sign-in, the first page of most visits, often on a phone. They are forms that work as
/// plain HTML (server functions answer a form post with a redirect), so the app's code would
/// only add what a buyer downloads before paying; `/plain.js` (a few KB) runs the countdown.
/// The browser reaches them by full page loads (links in emails, Stripe's return URLs, a sign-out
/// redirect); the app still has their lazy routes for a navigation inside it.
pub fn served_without_app(path: &str) -> bool {
    path == "/sign-in" || path.starts_with("/pay/")
}

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let plain = use_context::<http::request::Parts>().is_some_and(|parts| served_without_app(parts.uri.path()));
    #[cfg(not(feature = "ssr"))]
    let plain = false;
    let scripts = if plain {
        leptos::either::Either::Left(view! { <script src="/plain.js" defer></script> })
    } else {
        leptos::either::Either::Right(view! {
            <HydrationScripts options=options.clone()/>
            // Mounts Stripe's embedded components on the payment setup and payouts pages (plain
            // JS: it drives Stripe's Connect.js, which is not part of the wasm app).
            <script src="/stripe-embed.js" defer></script>
        })
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options/>
                {scripts}
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
    view! {
        <Stylesheet id="leptos" href="/pkg/remit.css"/>
        <Title formatter=|title: String| if title.is_empty() { "Remit".to_owned() } else { format!("{title} · Remit") }/>
        <Router>
            <Shell>
                // Every page waits for its data before the response starts, so that a refusal
                // is answered with its real status (401, 403, 404) rather than 200.
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in") view={Lazy::<SignInRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/forgot-password") view={Lazy::<ForgotPasswordRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/reset-password") view={Lazy::<ChoosePasswordRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard") view={Lazy::<DashboardRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/account") view={Lazy::<AccountRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/pay/complete") view={Lazy::<PaymentResultRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/pay/cancelled") view={Lazy::<PaymentResultRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/pay/:token") view={Lazy::<PayRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/receipts/verify") view={Lazy::<VerifyReceiptRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/winnings") view={Lazy::<WinningsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/winnings/:id") view={Lazy::<WinningRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/reports") view={Lazy::<ReportsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/billing") view={Lazy::<BillingRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/fees") view={Lazy::<FeesRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/payouts") view={Lazy::<PayoutsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/payment-setup") view={Lazy::<PaymentSetupRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/payment-setup/complete") view={Lazy::<PaymentSetupCompleteRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/billing/payment-methods") view={Lazy::<PaymentMethodsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/tenant") view={Lazy::<TenantOverviewRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings") view={Lazy::<TenantSettingsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/stripe") view={Lazy::<StripeSettingsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/api-keys") view={Lazy::<ApiKeysRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/webhooks") view={Lazy::<WebhooksRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/webhooks/deliveries/:id") view={Lazy::<WebhookDeliveryRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/payouts") view={Lazy::<TenantPayoutsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/security") view={Lazy::<SecurityRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view={Lazy::<AdminDashboardRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/people") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/tenants/:id/terms") view={Lazy::<TenantTermsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/security") view={Lazy::<SecurityRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/plans") view={Lazy::<PlansRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/billing") view={Lazy::<BillingMetricsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/reports") view={Lazy::<PlatformReportsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/reconciliation") view={Lazy::<ReconciliationRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/jobs") view={Lazy::<JobsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/outbox") view={Lazy::<OutboxRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/outbox/:id") view={Lazy::<OutboxEmailRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </Shell>
        </Router>
    }
}
