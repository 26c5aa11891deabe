use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::tenant_admin::{
        DeliveryView, RedeliverWebhook, RemoveWebhook, SaveWebhook, SendTestWebhook, Webhooks, load_webhooks,
    },
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let save = ServerAction::<SaveWebhook>::new();
    let remove = ServerAction::<RemoveWebhook>::new();
    let test = ServerAction::<SendTestWebhook>::new();
    let redeliver = ServerAction::<RedeliverWebhook>::new();
    let data = Resource::new(
        move || (save.version().get(), remove.version().get(), test.version().get(), redeliver.version().get()),
        |_| load_webhooks(),
    );
    view! {
        <Title text="Webhooks"/>
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Webhooks"</h1>
                <p class=ui::MUTED>"Remit tells your systems about payments, orders, receipts and onboarding by posting signed events to your endpoint."</p>
            </section>
            <Loaded data view=move |w| view! { <Settings w save remove test redeliver/> }/>
            <Verification/>
        </div>
    }
}

#[component]
fn Settings(
    w: Webhooks,
    save: ServerAction<SaveWebhook>,
    remove: ServerAction<RemoveWebhook>,
    test: ServerAction<SendTestWebhook>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let save_error = action_error(save);
    let remove_error = action_error(remove);
    let test_error = action_error(test);
    let redeliver_error = action_error(redeliver);
    let url = w.endpoint.as_ref().and_then(|e| e.url.clone());
    let has_url = url.is_some();
    view! {
        {w.new_secret.map(|secret| view! {
            <section class="rounded-lg border border-green-200 bg-green-50 p-6" role="status">
                <h2 class=ui::SUBHEADING>"Your signing secret"</h2>
                <p class="mb-2 text-sm">"Copy it now: it is shown once. Use it to check the Remit-Signature header."</p>
                <code class="font-mono text-sm" data-testid="webhook-secret">{secret}</code>
            </section>
        })}
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Endpoint"</h2>
            {w.endpoint.as_ref().map(|e| view! {
                <p class="mt-1 text-sm text-gray-600">
                    "Secret " <code class="font-mono">{e.secret_masked.clone()}</code> " · "
                    {if e.enabled {
                        view! { <span class=ui::BADGE_OK>"Enabled"</span> }.into_any()
                    } else {
                        view! { <span class=ui::BADGE_WAIT>{format!("Disabled ({})", e.disabled_reason.clone().unwrap_or_default())}</span> }.into_any()
                    }}
                </p>
            })}
            {(!has_url).then(|| view! {
                <p class="mt-1 text-sm text-gray-600" data-testid="no-endpoint">
                    "No endpoint yet. Once your system's HTTPS URL is saved here, Remit shows its signing secret once and posts every payment, order, receipt and onboarding event to it, signed and retried until your system answers 2xx."
                </p>
            })}
            {if w.can_remove {
                view! {
                    <FormError error=save_error/>
                    <ActionForm action=save attr:class="mt-4 flex flex-col gap-3" attr:novalidate="">
                        <TextField id="webhook-url" name="url" label="HTTPS URL" error=save_error input_type="url" maxlength=2048 value=url.clone().unwrap_or_default()/>
                        <label class="text-sm">
                            <input type="checkbox" name="regenerate_secret" value="yes"/>
                            " Make a new signing secret (the current one stops working)"
                        </label>
                        <div><button type="submit" class=ui::BUTTON>"Save endpoint"</button></div>
                    </ActionForm>
                }.into_any()
            } else {
                view! {
                    <p class="mt-2 text-sm text-gray-600">
                        {url.clone().map(|u| format!("Events go to {u}. "))}
                        "Only the tenant's owner changes the endpoint or its secret."
                    </p>
                }.into_any()
            }}
            {(has_url && w.can_remove).then(|| view! {
                <FormError error=remove_error/>
                <ActionForm action=remove attr:class="mt-4">
                    <button type="submit" class=ui::BUTTON_QUIET>"Remove endpoint"</button>
                </ActionForm>
            })}
        </section>
        {has_url.then(|| view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Send a test event"</h2>
                <p class="mt-1 text-sm text-gray-600">"Posts a remit.test event now and reports how your endpoint answered (10 second limit)."</p>
                <FormError error=test_error/>
                {w.test_result.map(|r| view! {
                    <p class=if r.ok { "mt-4 rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm" } else { "mt-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm" } role="status" data-testid="test-result">
                        {if r.ok { "Delivered: ".to_owned() } else { "Not delivered: ".to_owned() }}
                        {r.status_code.map(|s| format!("HTTP {s}, ")).unwrap_or_default()}
                        {format!("{} ms", r.response_time_ms)}
                        {r.error.map(|e| format!(" — {e}"))}
                    </p>
                })}
                <ActionForm action=test attr:class="mt-4">
                    <button type="submit" class=ui::BUTTON_QUIET>"Send test event"</button>
                </ActionForm>
            </section>
        })}
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">"Delivery log"</h2>
            <FormError error=redeliver_error/>
            {if w.deliveries.is_empty() {
                view! { <p class=ui::MUTED>"Nothing delivered yet. With an endpoint saved, Send test event shows a delivery here at once."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class=ui::TABLE data-testid="deliveries">
                            <thead>
                                <tr>
                                    <th class=ui::TH>"When"</th>
                                    <th class=ui::TH>"Event"</th>
                                    <th class=ui::TH>"Attempt"</th>
                                    <th class=ui::TH>"Result"</th>
                                    <th class=ui::TH></th>
                                </tr>
                            </thead>
                            <tbody>
                                {w.deliveries.into_iter().map(|d| view! { <Delivery d redeliver/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Delivery(d: DeliveryView, redeliver: ServerAction<RedeliverWebhook>) -> impl IntoView {
    let result = match (d.status_code, d.succeeded) {
        (Some(code), true) => format!("HTTP {code} in {} ms", d.response_time_ms.unwrap_or(0)),
        (Some(code), false) => format!("HTTP {code}"),
        (None, _) => d.error.clone().unwrap_or_else(|| "failed".into()),
    };
    view! {
        <tr>
            <td class=ui::TD>{d.at.clone()}</td>
            <td class=ui::TD><code class="font-mono">{d.event_type.clone()}</code></td>
            <td class=ui::TD>{d.attempt}</td>
            <td class=ui::TD>
                {if d.succeeded { view! { <span class=ui::BADGE_OK>{result}</span> }.into_any() } else { view! { <span class=ui::BADGE_WAIT>{result}</span> }.into_any() }}
            </td>
            <td class=ui::TD>
                {d.can_redeliver.then(|| view! {
                    <ActionForm action=redeliver>
                        <input type="hidden" name="delivery_id" value=d.id.clone()/>
                        <button type="submit" class=ui::BUTTON_QUIET>"Redeliver"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

/// How to check a delivery, as the docs say it.
#[component]
fn Verification() -> impl IntoView {
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Checking the signature"</h2>
            <p class="mt-1 text-sm text-gray-600">
                "Each delivery has a Remit-Signature header: t=<unix time>,v1=<hex>. Compute HMAC-SHA256 with your signing secret over "
                "the timestamp, a dot and the raw body, compare it with v1 in constant time, and refuse timestamps older than five minutes."
            </p>
            <pre class="mt-4 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm">
"import hashlib, hmac, time

def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split('=', 1) for p in header.split(','))
    signed = parts['t'].encode() + b'.' + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(parts['t'])) <= 300
    return fresh and hmac.compare_digest(expected, parts['v1'])"
            </pre>
        </section>
    }
}
