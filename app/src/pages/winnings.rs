//! The tenant staff's winnings: the list with a form to register a win, and one winning's page
//! with its payment, refunds (and the form to refund) and disputes.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::{
        refunds::RefundWinning,
        winnings::{
            CancelWinning, ExtendWinning, ListQuery, RegisterWinning, ResendPaymentLink, WinningDetail, WinningsList,
            load_winning, load_winnings,
        },
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
    let query = use_query_map();
    let list_query = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        ListQuery {
            q: get("q"),
            status: get("status"),
            mode: get("mode"),
            from: get("from"),
            to: get("to"),
            cursor: get("cursor"),
        }
    };
    let data = Resource::new(
        move || (register.version().get(), list_query()),
        |(_, l)| load_winnings(l.q, l.status, l.mode, l.from, l.to, l.cursor),
    );
    let error = action_error(register);
    let current = list_query();
    let status_options = ["", "awaiting_payment", "paid", "expired", "failed", "cancelled"];
    view! {
        <Title text="Winnings"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Winnings"</h1>
                <p class=ui::MUTED>"Won lots and their payments. Your systems can register wins with POST /api/v1/winnings."</p>
            </div>
            <form method="get" action="/winnings" class="grid grid-cols-1 gap-4 md:grid-cols-6" data-testid="winnings-filter">
                <div class="md:col-span-2">
                    <label for="filter-q" class=ui::LABEL>"Search (reference, buyer, lot)"</label>
                    <input id="filter-q" name="q" value=current.q.clone() class=ui::INPUT/>
                </div>
                <div>
                    <label for="filter-status" class=ui::LABEL>"Status"</label>
                    <select id="filter-status" name="status" class=ui::INPUT>
                        {status_options.into_iter().map(|s| {
                            let selected = current.status.as_deref().unwrap_or("") == s;
                            let label = if s.is_empty() { "Any".to_owned() } else { s.replace('_', " ") };
                            view! { <option value=s selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="filter-mode" class=ui::LABEL>"Mode"</label>
                    <select id="filter-mode" name="mode" class=ui::INPUT>
                        {["", "live", "test"].into_iter().map(|m| {
                            let selected = current.mode.as_deref().unwrap_or("") == m;
                            view! { <option value=m selected=selected>{if m.is_empty() { "Both" } else { m }}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="filter-from" class=ui::LABEL>"Won from"</label>
                    <input id="filter-from" type="date" name="from" value=current.from.clone() class=ui::INPUT/>
                </div>
                <div>
                    <label for="filter-to" class=ui::LABEL>"Won until"</label>
                    <input id="filter-to" type="date" name="to" value=current.to.clone() class=ui::INPUT/>
                </div>
                <div><button type="submit" class=ui::BUTTON_QUIET>"Filter"</button></div>
            </form>
            <Loaded data view=move |list| {
                let WinningsList { rows, next_cursor, export_url } = list;
                let base = list_query().query_string();
                let next = next_cursor.map(|cursor| {
                    if base.is_empty() { format!("/winnings?cursor={cursor}") } else { format!("/winnings?{base}&cursor={cursor}") }
                });
                view! {
                <p class="text-sm">
                    <a class=ui::LINK href=export_url download rel="external">"Export CSV"</a>
                </p>
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
                    {next.map(|href| view! { <p class="mt-4 text-sm"><a class=ui::LINK href=href>"Older winnings →"</a></p> })}
                </section>
                }
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
    let actions = Actions {
        cancel: ServerAction::<CancelWinning>::new(),
        extend: ServerAction::<ExtendWinning>::new(),
        resend: ServerAction::<ResendPaymentLink>::new(),
    };
    let data = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                refund.version().get(),
                actions.cancel.version().get(),
                actions.extend.version().get(),
                actions.resend.version().get(),
            )
        },
        |(id, ..)| load_winning(id),
    );
    view! {
        <Title text="Winning"/>
        <div class="flex flex-col gap-6">
            <p><a class=ui::LINK href="/winnings">"← Winnings"</a></p>
            <Loaded data view=move |w| view! { <Winning w refund error actions/> }/>
        </div>
    }
}

/// What staff can do to an unpaid winning.
#[derive(Clone, Copy)]
struct Actions {
    cancel: ServerAction<CancelWinning>,
    extend: ServerAction<ExtendWinning>,
    resend: ServerAction<ResendPaymentLink>,
}

#[component]
fn ActionsCard(w: WinningDetail, actions: Actions) -> impl IntoView {
    let cancel_error = action_error(actions.cancel);
    let extend_error = action_error(actions.extend);
    let resend_error = action_error(actions.resend);
    let (id1, id2, id3) = (w.id.clone(), w.id.clone(), w.id.clone());
    let resend = w.can_resend.then(|| {
        view! {
            <ActionForm action=actions.resend attr:class="flex items-end gap-2">
                <input type="hidden" name="winning_id" value=id1/>
                <button type="submit" class=ui::BUTTON_QUIET>"Send a new payment link"</button>
            </ActionForm>
        }
    });
    let extend = w.extend_until.clone().map(|until| view! {
        <ActionForm action=actions.extend attr:class="flex flex-wrap items-end gap-2">
            <input type="hidden" name="winning_id" value=id2/>
            <div>
                <label for="extend-pay-by" class=ui::LABEL>"New deadline (UTC, once, up to 72 h after the win)"</label>
                <input id="extend-pay-by" type="datetime-local" name="pay_by" max=until class=ui::INPUT/>
            </div>
            <button type="submit" class=ui::BUTTON_QUIET>"Extend"</button>
        </ActionForm>
    });
    let cancel = w.can_cancel.then(|| {
        view! {
            <ActionForm action=actions.cancel attr:class="flex flex-wrap items-end gap-2">
                <input type="hidden" name="winning_id" value=id3/>
                <div class="grow">
                    <label for="cancel-reason" class=ui::LABEL>"Reason (the buyer is told)"</label>
                    <input id="cancel-reason" name="reason" maxlength=500 class=ui::INPUT/>
                </div>
                <button type="submit" class=ui::BUTTON_QUIET>"Cancel the winning"</button>
            </ActionForm>
        }
    });
    (w.can_cancel || w.can_resend || w.extend_until.is_some()).then(|| {
        view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Actions"</h2>
                <FormError error=resend_error/>
                <FormError error=extend_error/>
                <FormError error=cancel_error/>
                <div class="mt-4 flex flex-col gap-4">{resend}{extend}{cancel}</div>
            </section>
        }
    })
}

#[component]
fn Winning(
    w: WinningDetail,
    refund: ServerAction<RefundWinning>,
    #[prop(into)] error: Signal<Option<crate::error::AppError>>,
    actions: Actions,
) -> impl IntoView {
    let actions_card = view! { <ActionsCard w=w.clone() actions/> };
    let timeline = w.timeline.clone();
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
        {actions_card}
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
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Timeline"</h2>
            <ol class="mt-4 flex flex-col gap-2 text-sm" data-testid="timeline">
                {timeline.into_iter().map(|e| view! {
                    <li>
                        <span class="font-mono text-xs text-gray-500">{e.at}</span>" "
                        <span class="font-medium">{e.what}</span>
                        {e.detail.map(|d| view! { <span class="block text-gray-600">{d}</span> })}
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}
