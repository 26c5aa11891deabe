//! The tenant staff's winnings: the list with a form to register a win, and one winning's page
//! with its payment, refunds (and the form to refund) and disputes.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::{
        refunds::RefundWinning,
        winnings::{RegisterWinning, WinningDetail, load_winning, load_winnings},
    },
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn WinningsPage() -> impl IntoView {
    let register = ServerAction::<RegisterWinning>::new();
    let data = Resource::new(move || register.version().get(), |_| load_winnings());
    let error = action_error(register);
    view! {
        <Title text="Winnings"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Winnings"</h1>
                <p class=ui::MUTED>"Won lots and their payments. Your systems can register wins with POST /api/v1/winnings."</p>
            </div>
            <Loaded data view=move |rows| view! {
                <section class=ui::CARD>
                    {if rows.is_empty() {
                        view! { <p class=ui::MUTED>"No winnings yet."</p> }.into_any()
                    } else {
                        view! {
                            <table class=ui::TABLE data-testid="winnings">
                                <thead><tr>
                                    <th class=ui::TH>"Reference"</th><th class=ui::TH>"Lot"</th><th class=ui::TH>"Buyer"</th>
                                    <th class=ui::TH>"Amount"</th><th class=ui::TH>"Status"</th><th class=ui::TH>"Pay by"</th>
                                    <th class=ui::TH>"Order"</th>
                                </tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|w| {
                                        let receipt = format!("/winnings/{}/receipt.pdf", w.id);
                                        view! {
                                            <tr>
                                                <td class=ui::TD><a class=ui::LINK href=format!("/winnings/{}", w.id)>{w.reference}</a></td><td class=ui::TD>{w.lot}</td><td class=ui::TD>{w.buyer}</td>
                                                <td class=ui::TD>{w.amount}</td><td class=ui::TD>{w.status}</td><td class=ui::TD>{w.pay_by}</td>
                                                <td class=ui::TD>
                                                    {w.order_status.map(|status| view! {
                                                        {status}" · "
                                                        <a class=ui::LINK href=receipt download rel="external">"Receipt"</a>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                </section>
            }/>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Register a win"</h2>
                <p class="mt-1 text-sm text-gray-600">"The buyer gets an email with a payment link, valid for 24 hours."</p>
                <FormError error/>
                <ActionForm action=register attr:class="mt-4 grid grid-cols-1 gap-4 md:grid-cols-3">
                    <TextField id="win-reference" name="reference" label="Your reference" error/>
                    <TextField id="win-auction" name="auction" label="Auction" error/>
                    <TextField id="win-lot" name="lot" label="Lot" error/>
                    <TextField id="win-buyer" name="buyer_email" label="Buyer's email" error input_type="email"/>
                    <TextField id="win-amount" name="amount" label="Amount (e.g. 125.00)" error/>
                    <div>
                        <label for="win-currency" class=ui::LABEL>"Currency"</label>
                        <select id="win-currency" name="currency" class=ui::INPUT>
                            <option value="usd">"USD"</option>
                            <option value="eur">"EUR"</option>
                            <option value="gbp">"GBP"</option>
                            <option value="cad">"CAD"</option>
                            <option value="aud">"AUD"</option>
                        </select>
                    </div>
                    <div><button type="submit" class=ui::BUTTON>"Register and email the buyer"</button></div>
                </ActionForm>
            </section>
        </div>
    }
}

fn refund_badge(status: &str) -> &'static str {
    match status {
        "succeeded" => ui::BADGE_OK,
        "failed" | "canceled" => ui::BADGE_HIGH,
        _ => ui::BADGE_WAIT,
    }
}

/// One winning: what was won and paid, its refunds with their credit notes, its disputes, and
/// (for a paid lot with something left to refund) the refund form.
#[component]
pub fn WinningPage() -> impl IntoView {
    let params = use_params_map();
    let refund = ServerAction::<RefundWinning>::new();
    let error = action_error(refund);
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), refund.version().get()),
        |(id, _)| load_winning(id),
    );
    view! {
        <Title text="Winning"/>
        <div class="flex flex-col gap-6">
            <p><a class=ui::LINK href="/winnings">"← Winnings"</a></p>
            <Loaded data view=move |w| view! { <Winning w refund error/> }/>
        </div>
    }
}

#[component]
fn Winning(
    w: WinningDetail,
    refund: ServerAction<RefundWinning>,
    #[prop(into)] error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let receipt = w.order_status.as_ref().map(|_| format!("/winnings/{}/receipt.pdf", w.id));
    let refund_form = w.refundable.clone().map(|left| {
        let (id, key) = (w.id.clone(), w.refund_key.clone());
        view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Refund"</h2>
                <p class="mt-1 text-sm text-gray-600" data-testid="refundable">
                    {format!("Up to {left} can be refunded. The buyer is emailed a credit note; the money goes back to their card.")}
                </p>
                <FormError error/>
                <ActionForm action=refund attr:class="mt-4 grid grid-cols-1 gap-4 md:grid-cols-3">
                    <input type="hidden" name="winning_id" value=id/>
                    <input type="hidden" name="idempotency_key" value=key/>
                    <TextField id="refund-amount" name="amount" label="Amount (empty for all that is left)" error/>
                    <TextField id="refund-reason" name="reason" label="Reason (printed on the credit note)" error maxlength=500/>
                    <div class="flex items-end"><button type="submit" class=ui::BUTTON>"Refund"</button></div>
                </ActionForm>
            </section>
        }
    });
    view! {
        <section class=ui::CARD>
            <h1 class=ui::HEADING>{format!("Lot {} · {}", w.lot, w.auction)}</h1>
            <p class="mt-1 text-sm text-gray-600">
                {format!("{} · won {} · {}", w.reference, w.won_at, if w.livemode { "live" } else { "test" })}
            </p>
            <dl class="mt-4 grid grid-cols-1 gap-2 text-sm md:grid-cols-2">
                <div><dt class=ui::MUTED>"Buyer"</dt><dd>{w.buyer.clone()}</dd></div>
                <div><dt class=ui::MUTED>"Amount"</dt><dd>{format!("{} ({})", w.amount, w.currency)}</dd></div>
                <div><dt class=ui::MUTED>"Status"</dt><dd data-testid="winning-status">{w.status.clone()}</dd></div>
                <div><dt class=ui::MUTED>"Pay by"</dt><dd>{w.pay_by.clone()}</dd></div>
                <div><dt class=ui::MUTED>"Order"</dt><dd data-testid="order-status">
                    {w.order_status.clone().unwrap_or_else(|| "not paid".into())}
                    {receipt.map(|href| view! { " · " <a class=ui::LINK href=href download rel="external">"Receipt"</a> })}
                </dd></div>
                {(!w.description.is_empty()).then(|| view! {
                    <div><dt class=ui::MUTED>"Description"</dt><dd>{w.description.clone()}</dd></div>
                })}
            </dl>
        </section>
        {refund_form}
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Refunds"</h2>
            {if w.refunds.is_empty() {
                view! { <p class=ui::MUTED>"No refunds."</p> }.into_any()
            } else {
                view! {
                    <table class=ui::TABLE data-testid="refunds">
                        <thead><tr>
                            <th class=ui::TH>"When"</th><th class=ui::TH>"Amount"</th><th class=ui::TH>"Status"</th>
                            <th class=ui::TH>"Reason"</th><th class=ui::TH>"Credit note"</th>
                        </tr></thead>
                        <tbody>
                            {w.refunds.into_iter().map(|r| view! {
                                <tr>
                                    <td class=ui::TD>{r.at}</td>
                                    <td class=ui::TD>{r.amount}</td>
                                    <td class=ui::TD><span class=refund_badge(&r.status)>{r.status.clone()}</span>
                                        {r.failure.map(|f| view! { <span class="block text-xs text-gray-500">{f}</span> })}</td>
                                    <td class=ui::TD>{r.reason}</td>
                                    <td class=ui::TD>{match r.credit_note {
                                        Some((number, href)) => view! {
                                            <a class=ui::LINK href=href download rel="external">{number}</a>
                                        }.into_any(),
                                        None => view! { <span class=ui::MUTED>"—"</span> }.into_any(),
                                    }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        {(!w.disputes.is_empty()).then(|| view! {
            <section class=ui::CARD data-testid="disputes">
                <h2 class=ui::SUBHEADING>"Disputes"</h2>
                {w.disputes.into_iter().map(|d| view! {
                    <p class="mt-2 text-sm">
                        {format!("{} disputed on {} ({}): {}", d.amount, d.opened, d.reason, d.status)}
                        {d.evidence_due_by.map(|due| format!(" · evidence due by {due}, in Stripe's dashboard"))}
                    </p>
                }).collect_view()}
            </section>
        })}
    }
}
