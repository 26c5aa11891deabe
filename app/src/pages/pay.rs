//! The buyer's pages: pay for a won lot, and where the payment stands afterwards. No account is
//! needed; the payment link's token (and then the Checkout Session id) identify the bid.

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::winnings::{AfterCheckout, PayView, PayWinning, RetryPayment, load_pay_page, load_payment_result},
    components::{
        forms::{FormError, action_error},
        status::Loaded,
        ui,
    },
};

fn countdown(seconds: i64) -> String {
    if seconds <= 0 {
        return "The payment window has closed.".into();
    }
    format!("{:02}:{:02}:{:02} left to pay", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

#[component]
pub fn PayPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let pay = ServerAction::<PayWinning>::new();
    let data = Resource::new(token, load_pay_page);
    view! {
        <Title text="Pay for your lot"/>
        <Loaded data view=move |p| view! { <Pay p token=token() pay/> }/>
    }
}

#[component]
fn Pay(p: PayView, token: String, pay: ServerAction<PayWinning>) -> impl IntoView {
    let error = action_error(pay);
    let left = RwSignal::new(p.seconds_left);
    // Counts down in the browser; the server enforces the window whatever the page shows.
    Effect::new(move |_| {
        set_interval(move || left.update(|s| *s = (*s - 1).max(0)), Duration::from_secs(1));
    });
    view! {
        <section class=ui::CARD data-testid="pay">
            <p class=ui::MUTED>{format!("{} · {}", p.tenant, p.auction)}</p>
            <h1 class=ui::HEADING>{format!("Lot {}", p.lot)}</h1>
            {(!p.description.is_empty()).then(|| view! { <p class="mt-1 text-sm text-gray-700">{p.description.clone()}</p> })}
            <p class="mt-4 text-3xl font-semibold text-gray-900" data-testid="amount">{p.amount.clone()}</p>
            {match p.status.as_str() {
                "paid" => view! {
                    <p class="mt-4"><span class=ui::BADGE_OK>"Paid — thank you"</span></p>
                    {p.receipt_url.clone().map(|href| view! {
                        <p class="mt-4">
                            <a class=ui::LINK href=href download data-testid="receipt-link" rel="external">"Download your receipt (PDF)"</a>
                        </p>
                        <p class=ui::MUTED>"We also emailed it to you."</p>
                    })}
                }.into_any(),
                "failed" => view! {
                    <p class="mt-4 text-sm text-red-700" role="alert">"Payment failed three times, so this link is closed. Please contact the auction house."</p>
                }.into_any(),
                _ if p.unavailable.is_some() => view! {
                    <h2 class="mt-4 text-lg font-semibold text-gray-900" data-testid="payments-paused">"Payments are paused"</h2>
                    <p class="text-sm text-gray-600">{p.unavailable.clone()}</p>
                }.into_any(),
                _ if !p.can_pay => view! {
                    <h2 class="mt-4 text-lg font-semibold text-gray-900" data-testid="window-closed">"Payment window closed"</h2>
                    <p class="text-sm text-gray-600">{format!("Payment was due by {}. Please contact the auction house.", p.pay_by)}</p>
                }.into_any(),
                _ => view! {
                    <p class="mt-2 text-sm text-gray-700" data-testid="countdown" data-seconds-left=p.seconds_left>{move || countdown(left.get())}</p>
                    <p class=ui::MUTED>{format!("Pay by {}", p.pay_by)}</p>
                    {p.last_failure.clone().map(|f| view! { <p class="mt-2 text-sm text-red-700" role="alert">{f}</p> })}
                    <FormError error/>
                    <ActionForm action=pay attr:class="mt-4">
                        <input type="hidden" name="token" value=token.clone()/>
                        <button type="submit" class=ui::BUTTON>{format!("Pay {}", p.amount)}</button>
                    </ActionForm>
                    <p class="mt-2 text-xs text-gray-500">"You pay on Stripe's secure page; Remit never sees your card."</p>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
pub fn PaymentResultPage() -> impl IntoView {
    let query = use_query_map();
    let retry = ServerAction::<RetryPayment>::new();
    let session = move || query.read().get("session").unwrap_or_default();
    let data = Resource::new(session, load_payment_result);
    view! {
        <Title text="Payment"/>
        <Loaded data view=move |r| view! { <Result r session=session() retry/> }/>
    }
}

#[component]
fn Result(r: AfterCheckout, session: String, retry: ServerAction<RetryPayment>) -> impl IntoView {
    let error = action_error(retry);
    view! {
        <section class=ui::CARD data-testid="payment-result">
            <h1 class=ui::HEADING>{if r.paid { "Payment received" } else { "Not paid yet" }}</h1>
            <p class="mt-2 text-sm text-gray-700">{format!("Lot {} · {}", r.lot, r.amount)}</p>
            {if r.paid {
                view! {
                    <p class="mt-2 text-sm text-gray-700">"Thank you. The auction house has been told of your payment."</p>
                    <p class="mt-2 text-sm text-gray-700">"Your receipt is on its way to your email. You can also download it from the payment link in your first email."</p>
                }.into_any()
            } else if r.bid_status == "awaiting_payment" {
                view! {
                    {r.failure.clone().map(|f| view! { <p class="mt-2 text-sm text-red-700" role="alert">{f}</p> })}
                    <p class="mt-2 text-sm text-gray-600">"If you just paid, Stripe is confirming it: reload this page in a moment."</p>
                    <FormError error/>
                    <ActionForm action=retry attr:class="mt-4">
                        <input type="hidden" name="session" value=session/>
                        <button type="submit" class=ui::BUTTON>"Try again"</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <p class="mt-2 text-sm text-gray-600">"This payment link is closed. Please contact the auction house."</p> }.into_any()
            }}
        </section>
    }
}
