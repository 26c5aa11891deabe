use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::tenant_admin::{ConnectionView, DisconnectStripe, StartStripeConnect, StripeSettings, load_stripe_settings},
    components::{
        forms::{FormError, Notice, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn StripeSettingsPage() -> impl IntoView {
    let connect = ServerAction::<StartStripeConnect>::new();
    let disconnect = ServerAction::<DisconnectStripe>::new();
    let data = Resource::new(move || disconnect.version().get(), |_| load_stripe_settings());
    let query = use_query_map();
    let connected = move || query.read().get("connected").is_some();
    view! {
        <Title text="Stripe"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Stripe account"</h1>
            {move || connected().then(|| view! { <Notice>"Your Stripe account is connected."</Notice> })}
            <Loaded data view=move |s| view! { <Settings s connect disconnect/> }/>
        </div>
    }
}

#[component]
fn Settings(
    s: StripeSettings,
    connect: ServerAction<StartStripeConnect>,
    disconnect: ServerAction<DisconnectStripe>,
) -> impl IntoView {
    let connect_error = action_error(connect);
    let disconnect_error = action_error(disconnect);
    match s.connection {
        None => view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Not connected"</h2>
                <p class="mt-1 mb-4 text-sm text-gray-600">
                    "Connect your organisation's Stripe account so buyers' payments reach it. You will sign in to Stripe and come back here."
                </p>
                <FormError error=connect_error/>
                {if s.can_manage {
                    view! {
                        <ActionForm action=connect>
                            <button type="submit" class=ui::BUTTON>"Connect with Stripe"</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <p class=ui::MUTED>"Only the tenant owner can connect the Stripe account."</p> }.into_any()
                }}
            </section>
        }
        .into_any(),
        Some(c) => view! {
            <Connected c can_manage=s.can_manage disconnect disconnect_error/>
        }
        .into_any(),
    }
}

#[component]
fn Connected(
    c: ConnectionView,
    can_manage: bool,
    disconnect: ServerAction<DisconnectStripe>,
    disconnect_error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let flag = |on: bool, yes: &'static str, no: &'static str| {
        if on {
            view! { <span class=ui::BADGE_OK>{yes}</span> }
        } else {
            view! { <span class=ui::BADGE_WAIT>{no}</span> }
        }
    };
    let tasks = c.requirements.tasks.clone();
    view! {
        <section class=ui::CARD data-testid="stripe-connection">
            <h2 class=ui::SUBHEADING>"Connected"</h2>
            <p class="mt-1 text-sm text-gray-600">
                "Account " <span class="font-mono">{c.account_id.clone()}</span> ", connected " {c.connected.clone()}
                {c.stale.then_some(" · Stripe could not be reached just now; this is the last known status.")}
            </p>
            <p class="mt-4 flex flex-wrap gap-2">
                {flag(c.charges_enabled, "Charges enabled", "Charges disabled")}
                {flag(c.payouts_enabled, "Payouts enabled", "Payouts disabled")}
                {flag(c.details_submitted, "Details submitted", "Details missing")}
            </p>
            {c.requirements.disabled_reason.clone().map(|r| view! {
                <p class="mt-4 text-sm text-red-700">{format!("Stripe has restricted the account ({r}).")}</p>
            })}
            {(!tasks.is_empty()).then(|| view! {
                <h3 class="mt-4 text-sm font-semibold">"Stripe needs"</h3>
                <ul class="mt-1 flex flex-col gap-1 text-sm">
                    {tasks.into_iter().map(|(task, overdue)| view! {
                        <li>{task}{overdue.then_some(" (overdue)")}</li>
                    }).collect_view()}
                </ul>
                {c.requirements.current_deadline.clone().map(|d| view! { <p class="mt-1 text-sm">{format!("Deadline: {d}")}</p> })}
            })}
            {can_manage.then(|| view! {
                <FormError error=disconnect_error/>
                <ActionForm action=disconnect attr:class="mt-6">
                    <button type="submit" class=ui::BUTTON_QUIET>"Disconnect Stripe"</button>
                </ActionForm>
            })}
        </section>
    }
}
