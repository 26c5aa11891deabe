//! Fees: the consultant bills the clients of their household and follows what they paid; a
//! client sees what they owe and what they paid, pays on Stripe's page and downloads receipts.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::fees::{
        CancelFee, FeeMonthView, FeeReportView, FeeRow, FeesPage as Fees, PayFee, RefundFee, RequestFee, load_fees,
    },
    components::{
        chart::AmountChart,
        forms::{FieldError, FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn FeesPage() -> impl IntoView {
    let request = ServerAction::<RequestFee>::new();
    let cancel = ServerAction::<CancelFee>::new();
    let pay = ServerAction::<PayFee>::new();
    let refund = ServerAction::<RefundFee>::new();
    let query = use_query_map();
    let data = Resource::new(
        move || (query.read().get("paid"), request.version().get(), cancel.version().get(), refund.version().get()),
        |(paid, ..)| load_fees(paid),
    );
    view! {
        <Title text="Fees"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Fees"</h1>
            <Loaded data view=move |f| view! { <FeesView f request cancel pay refund/> }/>
        </div>
    }
}

fn status_badge(status: &str, overdue: bool) -> &'static str {
    match status {
        "paid" => ui::BADGE_OK,
        "open" if overdue => ui::BADGE_HIGH,
        "open" => ui::BADGE_WAIT,
        "disputed" => ui::BADGE_HIGH,
        _ => ui::BADGE,
    }
}

#[component]
fn FeesView(
    f: Fees,
    request: ServerAction<RequestFee>,
    cancel: ServerAction<CancelFee>,
    pay: ServerAction<PayFee>,
    refund: ServerAction<RefundFee>,
) -> impl IntoView {
    let Fees { billing, fees, clients, currencies, today, outstanding, returned_from_checkout } = f;
    let pay_error = action_error(pay);
    let cancel_error = action_error(cancel);
    let refund_error = action_error(refund);
    view! {
        {returned_from_checkout.then(|| view! {
            <p role="status" class="rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
                "Thank you. Stripe is confirming your payment; it shows as paid here in a moment, and your receipt comes by email."
            </p>
        })}
        {if billing {
            view! { <RequestForm request clients currencies today/> }.into_any()
        } else {
            view! {
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"What you owe"</h2>
                    <p class="mt-1 text-sm text-gray-700" data-testid="outstanding">
                        {if outstanding.is_empty() { "Nothing: you are all paid up.".to_owned() } else { outstanding.join(" + ") }}
                    </p>
                </section>
            }.into_any()
        }}
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>{if billing { "Fees you billed" } else { "Your fees" }}</h2>
            <FormError error=pay_error/>
            <FormError error=cancel_error/>
            <FormError error=refund_error/>
            {if fees.is_empty() {
                view! { <p class=ui::MUTED>{if billing { "No fee requests yet." } else { "No fees billed to you yet." }}</p> }.into_any()
            } else {
                view! {
                    <table class=ui::TABLE data-testid="fees">
                        <thead><tr>
                            <th class=ui::TH>{if billing { "Client" } else { "Consultant" }}</th>
                            <th class=ui::TH>"For"</th>
                            <th class=ui::TH>"Amount"</th>
                            <th class=ui::TH>"Due"</th>
                            <th class=ui::TH>"Billed"</th>
                            <th class=ui::TH>"Status"</th>
                            <th class=ui::TH></th>
                        </tr></thead>
                        <tbody>
                            {fees.into_iter().map(|fee| view! { <FeeLine fee billing cancel pay refund/> }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn FeeLine(
    fee: FeeRow,
    billing: bool,
    cancel: ServerAction<CancelFee>,
    pay: ServerAction<PayFee>,
    refund: ServerAction<RefundFee>,
) -> impl IntoView {
    let badge = status_badge(&fee.status, fee.overdue);
    let status = match (&fee.paid_at, fee.overdue) {
        (Some(paid), _) => format!("{} {paid}", fee.status),
        (None, true) => "overdue".to_owned(),
        (None, false) => fee.status.clone(),
    };
    let id = fee.id.clone();
    view! {
        <tr data-testid="fee">
            <td class=ui::TD>{if billing { fee.client.clone() } else { fee.consultant.clone() }}</td>
            <td class=ui::TD>
                {fee.description.clone()}
                {(!fee.refunds.is_empty()).then(|| view! {
                    <ul class="mt-1 flex flex-col gap-1 text-xs text-gray-600" data-testid="fee-refunds">
                        {fee.refunds.clone().into_iter().map(|r| view! {
                            <li>
                                {format!("Refund of {} ({}): {}", r.amount, r.status, r.reason)}
                                {r.failure_reason.map(|f| format!(" — {f}"))}
                                {r.credit_note_url.map(|url| view! { " · " <a href=url class=ui::LINK rel="external">"Credit note (PDF)"</a> })}
                            </li>
                        }).collect_view()}
                    </ul>
                })}
            </td>
            <td class=ui::TD>{fee.amount.clone()}</td>
            <td class=ui::TD>{fee.due_on.clone()}</td>
            <td class=ui::TD>{fee.recurrence.clone()}</td>
            <td class=ui::TD><span class=badge>{status}</span></td>
            <td class=ui::TD>
                <div class="flex flex-wrap items-center gap-2">
                    {fee.can_pay.then(|| {
                        let id = id.clone();
                        view! {
                            <ActionForm action=pay>
                                <input type="hidden" name="fee" value=id/>
                                <button type="submit" class=ui::BUTTON>{format!("Pay {}", fee.amount)}</button>
                            </ActionForm>
                        }
                    })}
                    {fee.receipt_url.clone().map(|url| view! { <a href=url class=ui::LINK rel="external">"Receipt (PDF)"</a> })}
                    {fee.cancel_label.clone().map(|label| {
                        let id = id.clone();
                        view! {
                            <ActionForm action=cancel>
                                <input type="hidden" name="fee" value=id/>
                                <button type="submit" class=ui::BUTTON_QUIET>{label}</button>
                            </ActionForm>
                        }
                    })}
                    {fee.refundable.clone().map(|left| {
                        let (amount_id, reason_id) = (format!("refund-amount-{id}"), format!("refund-reason-{id}"));
                        view! {
                            <details data-testid="refund-fee">
                                <summary class=ui::LINK>"Refund"</summary>
                                <ActionForm action=refund attr:class="mt-2 flex flex-col gap-2">
                                    <input type="hidden" name="fee" value=id.clone()/>
                                    <input type="hidden" name="idempotency_key" value=fee.refund_key.clone()/>
                                    <label for=amount_id.clone() class=ui::LABEL>{format!("Amount (empty for all of {left})")}</label>
                                    <input id=amount_id name="amount" class=ui::INPUT inputmode="decimal"/>
                                    <label for=reason_id.clone() class=ui::LABEL>"Reason (on the credit note)"</label>
                                    <input id=reason_id name="reason" class=ui::INPUT maxlength="500" required=true/>
                                    <button type="submit" class=ui::BUTTON_QUIET>"Refund"</button>
                                </ActionForm>
                            </details>
                        }
                    })}
                </div>
            </td>
        </tr>
    }
}

#[component]
fn RequestForm(
    request: ServerAction<RequestFee>,
    clients: Vec<crate::api::fees::ClientOption>,
    currencies: Vec<String>,
    today: String,
) -> impl IntoView {
    let error = action_error(request);
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Send a fee request"</h2>
            <p class="mb-4 text-sm text-gray-500">
                "Your client pays by card on Stripe's page; the money goes to your payout account, less the platform's fee. A new client is invited into your household."
            </p>
            <FormError error/>
            <ActionForm action=request attr:class="grid grid-cols-1 gap-4 md:grid-cols-3" attr:novalidate="">
                <div>
                    <label for="fee-client" class=ui::LABEL>"Client"</label>
                    <select id="fee-client" name="client" class=ui::INPUT>
                        {clients.into_iter().map(|c| view! { <option value=c.id>{c.name}</option> }).collect_view()}
                        <option value="new">"A new client…"</option>
                    </select>
                    <FieldError error field="client"/>
                </div>
                <TextField id="fee-client-email" name="client_email" label="New client's email" error input_type="email" maxlength=254/>
                <TextField id="fee-client-name" name="client_name" label="New client's name" error maxlength=120/>
                <TextField id="fee-description" name="description" label="For" error maxlength=200/>
                <TextField id="fee-amount" name="amount" label="Amount" error/>
                <div>
                    <label for="fee-currency" class=ui::LABEL>"Currency"</label>
                    <select id="fee-currency" name="currency" class=ui::INPUT>
                        {currencies.into_iter().map(|c| { let label = c.to_uppercase(); view! { <option value=c>{label}</option> } }).collect_view()}
                    </select>
                    <FieldError error field="currency"/>
                </div>
                <TextField id="fee-due" name="due_on" label="Due" error input_type="date" value=today/>
                <div>
                    <label for="fee-recurrence" class=ui::LABEL>"Billed"</label>
                    <select id="fee-recurrence" name="recurrence" class=ui::INPUT>
                        <option value="once">"Once"</option>
                        <option value="monthly">"Monthly, until I stop it"</option>
                    </select>
                    <FieldError error field="recurrence"/>
                </div>
                <div class="flex items-end">
                    <button type="submit" class=ui::BUTTON>"Send fee request"</button>
                </div>
            </ActionForm>
        </section>
    }
}

/// Fees per month (invoiced, paid, outstanding, refunded), with a chart of what was paid: one
/// consultant's in one currency.
#[component]
pub fn FeeMonths(r: FeeReportView, #[prop(optional)] titled: bool) -> impl IntoView {
    let caption = format!("Fees paid to {} per month over the last twelve months, in {}.", r.consultant, r.currency);
    let bars = r.months.iter().map(|m| (m.month.clone(), m.paid_minor, m.paid.clone())).collect();
    let heading = if titled { format!("{} · {}", r.consultant, r.currency) } else { r.currency.clone() };
    let row = |m: FeeMonthView, bold: bool| {
        let class = if bold { format!("{} font-semibold", ui::TD) } else { ui::TD.to_owned() };
        view! {
            <tr>
                <td class=class.clone()>{m.month}</td>
                <td class=class.clone()>{m.invoiced}</td>
                <td class=class.clone()>{m.paid}</td>
                <td class=class.clone()>{m.outstanding}</td>
                <td class=class>{m.refunded}</td>
            </tr>
        }
    };
    view! {
        <section class=ui::CARD data-testid="fee-report">
            <h3 class="mb-2 text-sm font-semibold">{heading}</h3>
            <AmountChart days=bars caption/>
            <table class=ui::TABLE>
                <thead>
                    <tr>
                        <th class=ui::TH>"Month"</th>
                        <th class=ui::TH>"Invoiced"</th>
                        <th class=ui::TH>"Paid"</th>
                        <th class=ui::TH>"Outstanding"</th>
                        <th class=ui::TH>"Refunded"</th>
                    </tr>
                </thead>
                <tbody>
                    {r.months.into_iter().rev().map(|m| row(m, false)).collect_view()}
                    {row(r.totals, true)}
                </tbody>
            </table>
        </section>
    }
}

/// The fee reports of a consultant (one per currency) or of a tenant's consultants.
#[component]
pub fn FeeReports(reports: Vec<FeeReportView>, titled: bool) -> impl IntoView {
    if reports.is_empty() {
        return view! { <p class=ui::MUTED>"No fees in the last twelve months."</p> }.into_any();
    }
    reports.into_iter().map(|r| view! { <FeeMonths r titled/> }).collect_view().into_any()
}
