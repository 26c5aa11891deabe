//! A consultant's payout setup: guidance, Stripe's embedded onboarding, the completion page, and
//! the tenant staff's view of their consultants' payouts.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::payouts::{
        PaymentSetup, PayoutAccountView, SendOnboardingLink, SetPayoutLinkRecipient, StartPayoutSetup, TenantPayouts,
        load_payment_setup, load_tenant_payouts,
    },
    components::{
        forms::{FieldError, FormError, Notice, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn PaymentSetupPage() -> impl IntoView {
    let start = ServerAction::<StartPayoutSetup>::new();
    let send = ServerAction::<SendOnboardingLink>::new();
    let approve = ServerAction::<SetPayoutLinkRecipient>::new();
    let data = Resource::new(
        move || (start.version().get(), send.version().get(), approve.version().get()),
        |_| load_payment_setup(),
    );
    view! {
        <Title text="Payment setup"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Payment setup"</h1>
            <Loaded data view=move |s| view! { <Setup s start send approve/> }/>
        </div>
    }
}

/// Charges and payouts flags, and what Stripe still needs, in words.
#[component]
pub fn AccountState(a: PayoutAccountView) -> impl IntoView {
    let flag = |on: bool, yes: &'static str, no: &'static str| {
        if on {
            view! { <span class=ui::BADGE_OK>{yes}</span> }
        } else {
            view! { <span class=ui::BADGE_WAIT>{no}</span> }
        }
    };
    view! {
        <p class="flex flex-wrap gap-2" data-testid="payout-state">
            {flag(a.payouts_enabled, "Payouts enabled", "Payouts not enabled yet")}
            {flag(a.charges_enabled, "Charges enabled", "Charges not enabled yet")}
        </p>
        {a.stale.then(|| view! { <p class="mt-2 text-sm text-gray-600">"Stripe could not be reached just now; this is the last known status."</p> })}
        {a.requirements.disabled_reason.clone().map(|r| view! {
            <p class="mt-2 text-sm text-red-700">{format!("Stripe has paused this account ({r}).")}</p>
        })}
        {(!a.requirements.tasks.is_empty()).then(|| view! {
            <h3 class="mt-4 text-sm font-semibold">"Stripe still needs"</h3>
            <ul class="mt-1 flex flex-col gap-1 text-sm" data-testid="payout-tasks">
                {a.requirements.tasks.clone().into_iter().map(|(task, overdue)| view! {
                    <li>{task}{overdue.then_some(" (overdue)")}</li>
                }).collect_view()}
            </ul>
            {a.requirements.current_deadline.clone().map(|d| view! { <p class="mt-1 text-sm">{format!("Deadline: {d}")}</p> })}
        })}
    }
}

#[component]
fn Setup(
    s: PaymentSetup,
    start: ServerAction<StartPayoutSetup>,
    send: ServerAction<SendOnboardingLink>,
    approve: ServerAction<SetPayoutLinkRecipient>,
) -> impl IntoView {
    let start_error = action_error(start);
    if !s.subscribed {
        return view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Subscribe first"</h2>
                <p class="mt-1 text-sm text-gray-600">
                    "Payouts are part of your Remit subscription. " <a class=ui::LINK href="/billing">"Choose a plan"</a>
                    " and come back here."
                </p>
            </section>
        }
        .into_any();
    }
    let Some(account) = s.account else {
        return view! {
            <section class=ui::CARD data-testid="payout-guidance">
                <h2 class=ui::SUBHEADING>"Before you start"</h2>
                <p class="mt-1 text-sm text-gray-600">"Stripe pays you and keeps your details. It takes about five minutes; have these ready:"</p>
                <ul class="mt-2 flex flex-col gap-1 text-sm">
                    <li>"Your legal name, date of birth and home address"</li>
                    <li>"The bank account payouts go to (routing and account number)"</li>
                    <li>"For a company: its tax ID"</li>
                </ul>
                {if s.can_manage {
                    view! {
                        <FormError error=start_error/>
                        <ActionForm action=start attr:class="mt-4">
                            <button type="submit" class=ui::BUTTON>"Start payout setup"</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <p class="mt-4 text-sm text-gray-600">"The consultant starts payout setup."</p> }.into_any()
                }}
            </section>
        }
        .into_any();
    };
    let done = account.payouts_enabled && account.requirements.tasks.is_empty();
    let return_url = "/payment-setup/complete";
    view! {
        {s.notice.map(|n| view! { <Notice>{n}</Notice> })}
        <section class=ui::CARD>
            <h2 class="mb-2 text-lg font-semibold text-gray-900">"Your payout account"</h2>
            <AccountState a=account.clone()/>
        </section>
        {s.can_manage.then(|| view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>{if done { "Update your details" } else { "Finish with Stripe" }}</h2>
                <div
                    data-stripe-embed="onboarding"
                    data-publishable-key=s.publishable_key.clone()
                    data-connect-js=s.connect_js_url.clone()
                    data-session-endpoint="/rpc/account_session"
                    data-return-url=return_url
                >
                    <p class="mt-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" role="alert" data-stripe-error="" hidden=true>
                        "Unable to access onboarding. Please try again. "
                        <button type="button" class=ui::BUTTON_QUIET data-stripe-retry="">"Try again"</button>
                    </p>
                    <div class="mt-4" data-testid="stripe-onboarding" data-stripe-component="account-onboarding"></div>
                </div>
                <noscript>
                    <p class="mt-2 text-sm text-gray-600">"The embedded form needs JavaScript. Send yourself a link to Stripe's hosted pages instead:"</p>
                </noscript>
            </section>
            <SendLink send consultant_id=String::new() email=s.email.clone()/>
            <ApprovedRecipient approve current=s.link_recipient.clone()/>
        })}
    }
    .into_any()
}

/// The one other address the consultant allows payout links to go to.
#[component]
fn ApprovedRecipient(approve: ServerAction<SetPayoutLinkRecipient>, current: Option<String>) -> impl IntoView {
    let error = action_error(approve);
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Who else may receive your payout links"</h2>
            <p class="mt-1 text-sm text-gray-600">
                "A payout link lets its holder enter the bank account your payouts go to. Links go to your own address, \
                 or to one address you approve here (for example whoever keeps your books); you are told of every link sent."
            </p>
            <FormError error/>
            <ActionForm action=approve attr:class="mt-4 flex flex-wrap items-end gap-2">
                <div>
                    <label for="link-recipient" class=ui::LABEL>"Approved address (leave empty for none)"</label>
                    <input id="link-recipient" name="email" type="email" value=current class=ui::INPUT/>
                    <FieldError error field="email"/>
                </div>
                <button type="submit" class=ui::BUTTON_QUIET>"Save"</button>
            </ActionForm>
        </section>
    }
}

/// The form that sends a one-time link to Stripe's hosted onboarding.
#[component]
fn SendLink(send: ServerAction<SendOnboardingLink>, consultant_id: String, email: String) -> impl IntoView {
    let error = action_error(send);
    let id = format!("link-email-{consultant_id}");
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Send an onboarding link"</h2>
            <p class="mt-1 text-sm text-gray-600">"The link opens Stripe's hosted pages, once, within 7 days: for another device, or for the address the consultant approved."</p>
            <FormError error/>
            <ActionForm action=send attr:class="mt-4 flex flex-wrap items-end gap-2">
                <input type="hidden" name="consultant_id" value=consultant_id/>
                <div>
                    <label for=id.clone() class=ui::LABEL>"Send to"</label>
                    <input id=id name="email" type="email" value=email class=ui::INPUT/>
                    <FieldError error field="email"/>
                </div>
                <button type="submit" class=ui::BUTTON_QUIET>"Send link"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn PaymentSetupCompletePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_payment_setup());
    view! {
        <Title text="Payment setup"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Payment setup"</h1>
            <Loaded data view=move |s| view! { <Complete s/> }/>
        </div>
    }
}

#[component]
fn Complete(s: PaymentSetup) -> impl IntoView {
    match s.account {
        None => {
            view! { <p class=ui::MUTED><a class=ui::LINK rel="external" href="/payment-setup">"Start payout setup"</a></p> }.into_any()
        }
        Some(a) => {
            let heading =
                if a.payouts_enabled { "You're all set" } else { "Thanks — Stripe is checking your details" };
            view! {
                <section class=ui::CARD data-testid="payout-complete">
                    <h2 class="mb-2 text-lg font-semibold text-gray-900">{heading}</h2>
                    <AccountState a/>
                    <p class="mt-4 text-sm"><a class=ui::LINK rel="external" href="/payment-setup">"Back to payment setup"</a></p>
                </section>
            }
            .into_any()
        }
    }
}

#[component]
pub fn TenantPayoutsPage() -> impl IntoView {
    let send = ServerAction::<SendOnboardingLink>::new();
    let data = Resource::new(move || send.version().get(), |_| load_tenant_payouts());
    view! {
        <Title text="Payouts"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Consultants' payouts"</h1>
                <p class=ui::MUTED>"Where each consultant's payout setup with Stripe stands. A link lets them finish on Stripe's hosted pages."</p>
            </div>
            <Loaded data view=move |t| view! { <Consultants t send/> }/>
        </div>
    }
}

#[component]
fn Consultants(t: TenantPayouts, send: ServerAction<SendOnboardingLink>) -> impl IntoView {
    let error = action_error(send);
    view! {
        {t.notice.map(|n| view! { <Notice>{n}</Notice> })}
        <section class=ui::CARD>
            <FormError error/>
            {if t.consultants.is_empty() {
                view! { <p class=ui::MUTED>"No consultants yet."</p> }.into_any()
            } else {
                view! {
                    <table class=ui::TABLE data-testid="consultant-payouts">
                        <thead>
                            <tr>
                                <th class=ui::TH>"Consultant"</th>
                                <th class=ui::TH>"Subscription"</th>
                                <th class=ui::TH>"Payouts"</th>
                                <th class=ui::TH>"Onboarding link"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {t.consultants.into_iter().map(|c| view! {
                                <tr>
                                    <td class=ui::TD>
                                        <span class="font-medium">{c.name.clone()}</span>
                                        <span class="block text-xs text-gray-500">{c.email.clone()}</span>
                                    </td>
                                    <td class=ui::TD>{if c.subscribed { "Active" } else { "None" }}</td>
                                    <td class=ui::TD>
                                        {c.state.clone()}
                                        {(c.open_tasks > 0).then(|| view! { <span class="block text-xs text-gray-500">{format!("{} tasks open", c.open_tasks)}</span> })}
                                    </td>
                                    <td class=ui::TD>
                                        {c.subscribed.then(|| view! {
                                            <ActionForm action=send attr:class="flex flex-wrap items-end gap-2">
                                                <input type="hidden" name="consultant_id" value=c.id.clone()/>
                                                <input name="email" type="email" value=c.email.clone() class=ui::INPUT aria-label=format!("Send a link for {} to", c.name)/>
                                                <button type="submit" class=ui::BUTTON_QUIET>"Send link"</button>
                                            </ActionForm>
                                        })}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
