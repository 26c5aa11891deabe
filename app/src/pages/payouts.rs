//! The consultant's Payouts page: Stripe's embedded components (what Stripe needs, the balance
//! and payouts, the payments received, account management) in the browser, and the same
//! essentials rendered by the server for a browser without JavaScript: the balance, the latest
//! payouts, open requirements, and a way into Stripe's Express dashboard.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::payouts::{BalanceView, OpenExpressDashboard, PayoutsView, load_payouts},
    components::{
        forms::{FormError, action_error},
        status::Loaded,
        ui,
    },
    pages::payment_setup::AccountState,
};

#[component]
pub fn PayoutsPage() -> impl IntoView {
    let dashboard = ServerAction::<OpenExpressDashboard>::new();
    let data = Resource::new(|| (), |_| load_payouts());
    view! {
        <Title text="Payouts"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Payouts"</h1>
                <p class=ui::MUTED>"Your fees are paid into your Stripe account and paid out to your bank on Stripe's schedule."</p>
            </div>
            <Loaded data view=move |p| view! { <Payouts p dashboard/> }/>
        </div>
    }
}

#[component]
fn Payouts(p: PayoutsView, dashboard: ServerAction<OpenExpressDashboard>) -> impl IntoView {
    let Some(account) = p.account else {
        return view! {
            <section class=ui::CARD data-testid="payout-summary">
                <p class="text-sm">
                    "You have no payout account yet. "
                    <a class=ui::LINK rel="external" href="/payment-setup">"Set up payouts"</a>
                    " to be paid for your fees."
                </p>
            </section>
        }
        .into_any();
    };
    let error = action_error(dashboard);
    let onboarded = account.details_submitted;
    view! {
        <section class=ui::CARD data-testid="payout-summary">
            <h2 class=ui::SUBHEADING>"Balance"</h2>
            {match p.balance {
                Some(b) => view! { <Balance b/> }.into_any(),
                None => view! {
                    <p class="mt-1 text-sm text-gray-600" role="status">
                        "Stripe could not be reached just now, so your balance and payouts are not shown. Try again in a moment."
                    </p>
                }.into_any(),
            }}
            <div class="mt-4"><AccountState a=account/></div>
            {if onboarded {
                view! {
                    <FormError error/>
                    <ActionForm action=dashboard attr:class="mt-4">
                        <button type="submit" class=ui::BUTTON_QUIET>"Open your Stripe Express dashboard"</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! {
                    <p class="mt-4 text-sm">
                        <a class=ui::LINK rel="external" href="/payment-setup">"Finish payment setup"</a>
                        " to be paid out."
                    </p>
                }.into_any()
            }}
        </section>
        {if p.subscribed {
            view! {
                <section class=ui::CARD>
                    <div
                        data-stripe-embed="payouts"
                        data-publishable-key=p.publishable_key
                        data-connect-js=p.connect_js_url
                        data-session-endpoint="/rpc/payouts_session"
                    >
                        <p class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" role="alert" data-stripe-error="" hidden=true>
                            "Stripe's payout details could not be loaded. "
                            <button type="button" class=ui::BUTTON_QUIET data-stripe-retry="">"Try again"</button>
                        </p>
                        <div data-testid="stripe-notifications" data-stripe-component="notification-banner"></div>
                        <div class="mt-4" data-testid="stripe-payouts" data-stripe-component="payouts"></div>
                        <div class="mt-4" data-testid="stripe-payments" data-stripe-component="payments"></div>
                        {onboarded.then(|| view! {
                            <div class="mt-4" data-testid="stripe-account" data-stripe-component="account-management"></div>
                        })}
                    </div>
                    <noscript>
                        <p class="text-sm text-gray-600">"Stripe's detailed views need JavaScript; the summary above and your Stripe dashboard show the same money."</p>
                    </noscript>
                </section>
            }.into_any()
        } else {
            view! {
                <section class=ui::CARD>
                    <p class="text-sm">
                        "Stripe's detailed views come back with your subscription. "
                        <a class=ui::LINK href="/billing">"Choose a plan"</a>
                        " — what is in your Stripe account is still paid out."
                    </p>
                </section>
            }.into_any()
        }}
    }
    .into_any()
}

#[component]
fn Balance(b: BalanceView) -> impl IntoView {
    let amounts = |list: Vec<String>| if list.is_empty() { "—".to_owned() } else { list.join(" · ") };
    view! {
        <dl class="mt-2 grid grid-cols-2 gap-2 text-sm" data-testid="payout-balance">
            <dt class="text-gray-600">"Available"</dt>
            <dd class="font-medium" data-testid="balance-available">{amounts(b.available)}</dd>
            <dt class="text-gray-600">"Pending"</dt>
            <dd class="font-medium" data-testid="balance-pending">{amounts(b.pending)}</dd>
        </dl>
        <h3 class="mt-4 text-sm font-semibold">"Latest payouts"</h3>
        {if b.payouts.is_empty() {
            view! { <p class="mt-1 text-sm text-gray-600">"No payouts yet: payments are paid out once Stripe makes them available."</p> }.into_any()
        } else {
            view! {
                <table class=ui::TABLE data-testid="payout-list">
                    <thead>
                        <tr>
                            <th class=ui::TH>"Arrives"</th>
                            <th class=ui::TH>"Status"</th>
                            <th class=ui::TH>"Amount"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {b.payouts.into_iter().map(|p| view! {
                            <tr>
                                <td class=ui::TD>{p.arrival}</td>
                                <td class=ui::TD>{p.state}{(!p.automatic).then_some(" (on request)")}</td>
                                <td class=ui::TD>{p.amount}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}
