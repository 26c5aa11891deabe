//! The page frame: a header with navigation for the signed-in role, and the page below it.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

use crate::{
    api::{
        UserRole,
        account::{Me, SignOut, current_user},
    },
    components::ui,
};

/// Pages whose Content-Security-Policy lets Stripe's Connect.js in (the server's security headers
/// say the same): links to them load the page in full rather than rendering it in place.
pub const STRIPE_EMBED_PAGES: &[&str] = &["/payment-setup", "/payouts"];

/// The signed-in user (or `None`), shared with every page through context.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<Me>, crate::error::AppError>>);

fn nav_links(role: UserRole) -> &'static [(&'static str, &'static str)] {
    match role {
        UserRole::PlatformAdmin => &[
            ("/admin", "Dashboard"),
            ("/admin/people", "Tenants & users"),
            ("/admin/billing", "Billing"),
            ("/admin/reports", "Reports"),
            ("/admin/reconciliation", "Reconciliation"),
            ("/admin/plans", "Plans"),
            ("/admin/security", "Security"),
            ("/admin/audit", "Audit log"),
            ("/admin/jobs", "Jobs"),
            ("/admin/outbox", "Outbox"),
        ],
        UserRole::TenantOwner | UserRole::TenantAdmin => &[
            ("/tenant", "Overview"),
            ("/winnings", "Winnings"),
            ("/reports", "Reports"),
            ("/settings", "People"),
            ("/settings/stripe", "Stripe"),
            ("/settings/api-keys", "API keys"),
            ("/settings/webhooks", "Webhooks"),
            ("/settings/payouts", "Payouts"),
            ("/security", "Security"),
            ("/audit", "Audit log"),
        ],
        UserRole::Consultant => &[
            ("/dashboard", "Dashboard"),
            ("/fees", "Fees"),
            ("/payouts", "Payouts"),
            ("/billing", "Billing"),
            ("/payment-setup", "Payment setup"),
        ],
        // A family member sees what they owe and pay, never the consultant's money.
        UserRole::FamilyMember => &[
            ("/dashboard", "Dashboard"),
            ("/fees", "Fees"),
            ("/billing", "Billing"),
            ("/payment-setup", "Payment setup"),
        ],
    }
}

#[component]
pub fn Shell(children: Children) -> impl IntoView {
    let location = use_location();
    // Re-read on every navigation so the header follows sign-in and sign-out.
    let me = Resource::new(move || location.pathname.get(), |_| current_user());
    provide_context(CurrentUser(me));

    view! {
        <header class="border-b border-gray-200 bg-white">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-4 px-4 py-3">
                <a href="/" class="text-lg font-bold text-blue-700">"Remit"</a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(me)) => view! { <SignedInNav me/> }.into_any(),
                            _ => view! {
                                <A href="/sign-in" attr:class=ui::LINK>"Sign in"</A>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </header>
        <main class=ui::CONTAINER>{children()}</main>
    }
}

#[component]
fn SignedInNav(me: Me) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <nav aria-label="Main" class="flex grow flex-wrap items-center gap-4 text-sm">
            {nav_links(me.role)
                .iter()
                .map(|(href, label)| {
                    // Pages that embed Stripe load in full: their Content-Security-Policy allows Stripe's scripts.
                    let external = STRIPE_EMBED_PAGES.contains(href).then_some("external");
                    view! { <A href=*href attr:rel=external attr:class="font-medium text-gray-700 hover:text-blue-700">{*label}</A> }
                })
                .collect_view()}
        </nav>
        <div class="flex flex-wrap items-center gap-3 text-sm">
            <span data-testid="signed-in-as">
                <A href="/account" attr:class="font-medium text-gray-700 hover:text-blue-700">{me.display_name}</A>
                " "
                <span class=ui::BADGE>{me.role.label()}</span>
            </span>
            <ActionForm action=sign_out>
                <button type="submit" class=ui::BUTTON_QUIET>"Sign out"</button>
            </ActionForm>
        </div>
    }
}
