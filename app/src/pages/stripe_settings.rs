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

/// What Stripe's requirement codes mean, in words.
pub fn describe_requirement(code: &str) -> String {
    let known = match code {
        "external_account" => "Add a bank account for payouts",
        "tos_acceptance.date" | "tos_acceptance.ip" => "Accept Stripe's services agreement",
        "business_type" => "Say what kind of business this is",
        "business_profile.url" => "Add the business website",
        "business_profile.mcc" => "Choose the business category",
        "individual.first_name" | "individual.last_name" => "Give the account holder's name",
        "individual.dob.day" | "individual.dob.month" | "individual.dob.year" => {
            "Give the account holder's date of birth"
        }
        "individual.address.line1" | "individual.address.city" | "individual.address.postal_code" => {
            "Give the account holder's address"
        }
        "individual.id_number" | "individual.ssn_last_4" => "Give the account holder's tax ID",
        "individual.verification.document" => "Upload an identity document",
        "company.tax_id" => "Give the company's tax ID",
        _ => "",
    };
    if known.is_empty() { format!("Provide {}", code.replace(['.', '_'], " ")) } else { known.to_owned() }
}

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
    let tasks: Vec<(String, bool)> = c
        .requirements
        .past_due
        .iter()
        .map(|r| (describe_requirement(r), true))
        .chain(
            c.requirements
                .currently_due
                .iter()
                .filter(|r| !c.requirements.past_due.contains(r))
                .map(|r| (describe_requirement(r), false)),
        )
        .collect();
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
                <p class="mt-4 text-sm text-red-700">{format!("Stripe has restricted the account ({}).", r.replace(['.', '_'], " "))}</p>
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
