use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::tenant_webhooks::{
        CreateWebhookEndpoint, DeleteWebhookEndpoint, DeliveryView, EndpointView, RedeliverWebhook, ReplayWebhooks,
        RotateWebhookSecret, SendTestWebhook, SwitchWebhookEndpoint, UpdateWebhookEndpoint, Webhooks,
        load_webhook_delivery, load_webhooks,
    },
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

/// Every action of the page, so that any of them reloads the data.
#[derive(Clone, Copy)]
struct Actions {
    create: ServerAction<CreateWebhookEndpoint>,
    update: ServerAction<UpdateWebhookEndpoint>,
    switch: ServerAction<SwitchWebhookEndpoint>,
    rotate: ServerAction<RotateWebhookSecret>,
    delete: ServerAction<DeleteWebhookEndpoint>,
    test: ServerAction<SendTestWebhook>,
    replay: ServerAction<ReplayWebhooks>,
    redeliver: ServerAction<RedeliverWebhook>,
}

impl Actions {
    fn new() -> Self {
        Self {
            create: ServerAction::new(),
            update: ServerAction::new(),
            switch: ServerAction::new(),
            rotate: ServerAction::new(),
            delete: ServerAction::new(),
            test: ServerAction::new(),
            replay: ServerAction::new(),
            redeliver: ServerAction::new(),
        }
    }

    fn version(self) -> [usize; 8] {
        [
            self.create.version().get(),
            self.update.version().get(),
            self.switch.version().get(),
            self.rotate.version().get(),
            self.delete.version().get(),
            self.test.version().get(),
            self.replay.version().get(),
            self.redeliver.version().get(),
        ]
    }
}

/// The tenant's webhook endpoints, and the deliveries log with filters (a plain GET form, so it
/// works without JavaScript).
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let actions = Actions::new();
    let query = use_query_map();
    let param = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let data = Resource::new(
        move || (actions.version(), param("endpoint"), param("type"), param("status"), param("since"), param("until")),
        |(_, endpoint, kind, status, since, until)| load_webhooks(endpoint, kind, status, since, until),
    );
    view! {
        <Title text="Webhooks"/>
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Webhooks"</h1>
                <p class=ui::MUTED>"Remit tells your systems about payments, orders, receipts and onboarding by posting signed events to your endpoints: up to ten in each mode, each with the events it wants."</p>
            </section>
            <Loaded data view=move |w| view! { <Settings w actions/> }/>
            <Verification/>
        </div>
    }
}

#[component]
fn Settings(w: Webhooks, actions: Actions) -> impl IntoView {
    let errors = [
        action_error(actions.update),
        action_error(actions.switch),
        action_error(actions.rotate),
        action_error(actions.delete),
        action_error(actions.test),
        action_error(actions.replay),
        action_error(actions.redeliver),
    ];
    let error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    let is_owner = w.is_owner;
    let types = w.event_types.clone();
    view! {
        {w.new_secret.map(|secret| view! {
            <section class="rounded-lg border border-green-200 bg-green-50 p-6" role="status">
                <h2 class=ui::SUBHEADING>"Your signing secret"</h2>
                <p class="mb-2 text-sm">"Copy it now: it is shown once. Give it to your Standard Webhooks library (or use it to check Remit-Signature)."</p>
                <code class="font-mono text-sm" data-testid="webhook-secret">{secret}</code>
            </section>
        })}
        {w.test_result.map(|r| view! {
            <p class=if r.ok { "rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm" } else { "rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm" } role="status" data-testid="test-result">
                {if r.ok { "Test delivered: ".to_owned() } else { "Test not delivered: ".to_owned() }}
                {r.status_code.map(|s| format!("HTTP {s}, ")).unwrap_or_default()}
                {format!("{} ms", r.response_time_ms)}
                {r.error.map(|e| format!(" — {e}"))}
                <br/><span class="text-xs text-gray-600" data-testid="test-phases">{r.phases}</span>
                {r.verifies_signatures.map(|checks| view! {
                    <br/>
                    {if checks {
                        "Your endpoint refused a copy signed with a wrong secret: it checks signatures."
                    } else {
                        "Your endpoint also accepted a copy signed with a wrong secret: check the signature before trusting a delivery."
                    }}
                })}
            </p>
        })}
        <FormError error/>
        {if w.endpoints.is_empty() {
            view! {
                <p class="text-sm text-gray-600" data-testid="no-endpoint">
                    "No endpoint yet. Once your system's HTTPS URL is added here, Remit shows its signing secret once and posts the events it wants to it, signed and retried until your system answers 2xx."
                </p>
            }.into_any()
        } else {
            w.endpoints.into_iter().map(|e| view! { <Endpoint e is_owner actions types=types.clone()/> }).collect_view().into_any()
        }}
        {if is_owner {
            view! { <AddEndpoint action=actions.create types=types.clone()/> }.into_any()
        } else {
            view! { <p class=ui::MUTED>"Only the tenant's owner adds, changes or deletes endpoints and their secrets."</p> }.into_any()
        }}
        <DeliveryLog deliveries=w.deliveries types redeliver=actions.redeliver/>
    }
}

/// Checkboxes for the event types; none ticked means every type.
#[component]
fn EventTypes(types: Vec<String>, chosen: Option<Vec<String>>) -> impl IntoView {
    view! {
        <fieldset>
            <legend class=ui::LABEL>"Events (none ticked: every type, including ones added later)"</legend>
            <div class="mt-1 flex flex-col gap-1">
                {types.into_iter().map(|t| {
                    let checked = chosen.as_ref().is_some_and(|c| c.contains(&t));
                    view! {
                        <label class="text-sm">
                            <input type="checkbox" name="event_types[]" value=t.clone() checked=checked/>
                            " " <code class="font-mono">{t}</code>
                        </label>
                    }
                }).collect_view()}
            </div>
        </fieldset>
    }
}

#[component]
fn AddEndpoint(action: ServerAction<CreateWebhookEndpoint>, types: Vec<String>) -> impl IntoView {
    let error = action_error(action);
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Add an endpoint"</h2>
            <FormError error/>
            <ActionForm action attr:class="mt-4 flex flex-col gap-3" attr:novalidate="" attr:data-testid="add-endpoint">
                <TextField id="webhook-url" name="url" label="HTTPS URL" error input_type="url" maxlength=2048/>
                <TextField id="webhook-description" name="description" label="Description (optional)" error maxlength=200/>
                <div>
                    <label for="webhook-mode" class=ui::LABEL>"Mode"</label>
                    <select id="webhook-mode" name="mode" class=ui::INPUT>
                        <option value="live">"Live: events about live payments"</option>
                        <option value="test">"Test: events about test-mode data"</option>
                    </select>
                </div>
                <EventTypes types chosen=None/>
                <div>
                    <label for="webhook-rate" class=ui::LABEL>"Most deliveries a second (optional)"</label>
                    <input id="webhook-rate" name="rate_limit" type="number" min="1" max="1000" class=ui::INPUT/>
                </div>
                <div><button type="submit" class=ui::BUTTON>"Add endpoint"</button></div>
            </ActionForm>
        </section>
    }
}

#[component]
fn Endpoint(e: EndpointView, is_owner: bool, actions: Actions, types: Vec<String>) -> impl IntoView {
    let id = e.id.clone();
    let id1 = id.clone();
    let id2 = id.clone();
    let events = match &e.event_types {
        None => "every event type".to_owned(),
        Some(list) => list.join(", "),
    };
    view! {
        <section class=ui::CARD data-testid="endpoint">
            <div class="flex flex-wrap items-center gap-3">
                <h2 class="font-mono text-sm font-semibold text-gray-900" data-testid="endpoint-url">{e.url.clone()}</h2>
                <span class=ui::BADGE>{if e.livemode { "Live" } else { "Test" }}</span>
                {match &e.disabled {
                    None => view! { <span class=ui::BADGE_OK>"Enabled"</span> }.into_any(),
                    Some(why) => view! { <span class=ui::BADGE_WAIT>{format!("Disabled: {why}")}</span> }.into_any(),
                }}
            </div>
            {(!e.description.is_empty()).then(|| view! { <p class="mt-1 text-sm text-gray-600">{e.description.clone()}</p> })}
            <p class="mt-1 text-sm text-gray-600">"Receives " {events}</p>
            <p class="mt-1 text-sm text-gray-600">
                "Secret " <code class="font-mono">{e.secret_masked.clone()}</code>
                {e.rotation_ends.clone().map(|t| format!(" · the previous secret signs too until {t}"))}
            </p>
            {e.rate_limit.map(|n| view! { <p class="mt-1 text-sm text-gray-600">{format!("At most {n} deliveries a second")}</p> })}
            {e.paused_until.clone().map(|t| view! {
                <p class="mt-1 text-sm text-red-700" data-testid="endpoint-paused">{format!("Paused: every recent attempt failed. Remit tries one delivery again at {t}, and resumes when it succeeds.")}</p>
            })}
            {e.failing_since.clone().map(|t| view! {
                <p class="mt-1 text-sm text-red-700">{format!("Every delivery has failed since {t}; after five days Remit disables the endpoint.")}</p>
            })}
            <div class="mt-4 flex flex-wrap gap-3">
                <ActionForm action=actions.test>
                    <input type="hidden" name="endpoint_id" value=id1/>
                    <button type="submit" class=ui::BUTTON_QUIET>"Send test event"</button>
                </ActionForm>
                <ActionForm action=actions.replay attr:class="flex items-end gap-2">
                    <input type="hidden" name="endpoint_id" value=id2/>
                    <label class="text-sm">"Replay events since "
                        <input type="date" name="since" required=true class=ui::INPUT/>
                    </label>
                    <button type="submit" class=ui::BUTTON_QUIET>"Replay"</button>
                </ActionForm>
                <a class=ui::LINK href=format!("/settings/webhooks?endpoint={id}")>"Its deliveries"</a>
            </div>
            {is_owner.then(|| view! { <OwnerActions e=e.clone() actions types/> })}
        </section>
    }
}

/// What only the owner does to an endpoint.
#[component]
fn OwnerActions(e: EndpointView, actions: Actions, types: Vec<String>) -> impl IntoView {
    let id = e.id.clone();
    let id1 = id.clone();
    let id2 = id.clone();
    let id3 = id.clone();
    let id4 = id.clone();
    view! {
            <div class="mt-4 flex flex-wrap gap-3">
                <ActionForm action=actions.switch>
                    <input type="hidden" name="endpoint_id" value=id1/>
                    <input type="hidden" name="enabled" value=if e.enabled { "no" } else { "yes" }/>
                    <button type="submit" class=ui::BUTTON_QUIET>{if e.enabled { "Turn off" } else { "Turn on" }}</button>
                </ActionForm>
                <ActionForm action=actions.rotate attr:class="flex items-end gap-2">
                    <input type="hidden" name="endpoint_id" value=id2/>
                    <label class="text-sm">"Old secret keeps signing for (hours) "
                        <input type="number" name="overlap_hours" value="24" min="0" max="168" class=ui::INPUT/>
                    </label>
                    <button type="submit" class=ui::BUTTON_QUIET>"Rotate secret"</button>
                </ActionForm>
                <ActionForm action=actions.delete>
                    <input type="hidden" name="endpoint_id" value=id3/>
                    <button type="submit" class=ui::BUTTON_QUIET>"Delete endpoint"</button>
                </ActionForm>
            </div>
            <details class="mt-4">
                <summary class="text-sm">"Change URL, description or events"</summary>
                <ActionForm action=actions.update attr:class="mt-2 flex flex-col gap-3">
                    <input type="hidden" name="endpoint_id" value=id4/>
                    <div>
                        <label class=ui::LABEL>"HTTPS URL"
                            <input type="url" name="url" value=e.url.clone() maxlength="2048" class=ui::INPUT/>
                        </label>
                    </div>
                    <div>
                        <label class=ui::LABEL>"Description"
                            <input name="description" value=e.description.clone() maxlength="200" class=ui::INPUT/>
                        </label>
                    </div>
                    <EventTypes types=types.clone() chosen=e.event_types.clone()/>
                    <div>
                        <label class=ui::LABEL>"Most deliveries a second (empty: no limit)"
                            <input name="rate_limit" type="number" min="1" max="1000" value=e.rate_limit.map(|n| n.to_string()).unwrap_or_default() class=ui::INPUT/>
                        </label>
                    </div>
                    <div><button type="submit" class=ui::BUTTON>"Save"</button></div>
                </ActionForm>
            </details>
    }
}

#[component]
fn DeliveryLog(
    deliveries: Vec<DeliveryView>,
    types: Vec<String>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    view! {
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">"Delivery log"</h2>
            <form method="get" class="mb-4 grid grid-cols-1 gap-4 md:grid-cols-3" data-testid="delivery-filters">
                <input type="hidden" name="endpoint" value=param("endpoint")/>
                <div>
                    <label for="f-type" class=ui::LABEL>"Event"</label>
                    <select id="f-type" name="type" class=ui::INPUT>
                        <option value="">"Every type"</option>
                        {types.into_iter().map(|t| {
                            let selected = param("type") == t;
                            let label = t.clone();
                            view! { <option value=t selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="f-status" class=ui::LABEL>"Status"</label>
                    <select id="f-status" name="status" class=ui::INPUT>
                        {[("", "Any"), ("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed")].into_iter().map(|(value, label)| {
                            let selected = param("status") == value;
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="f-since" class=ui::LABEL>"From"</label>
                    <input id="f-since" name="since" type="date" value=param("since") class=ui::INPUT/>
                </div>
                <div>
                    <label for="f-until" class=ui::LABEL>"To"</label>
                    <input id="f-until" name="until" type="date" value=param("until") class=ui::INPUT/>
                </div>
                <div class="flex items-end"><button type="submit" class=ui::BUTTON>"Filter"</button></div>
            </form>
            {if deliveries.is_empty() {
                view! { <p class=ui::MUTED>"No deliveries match. Events appear here as Remit sends them to your endpoints."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class=ui::TABLE data-testid="deliveries">
                            <thead>
                                <tr>
                                    <th class=ui::TH>"When"</th>
                                    <th class=ui::TH>"Event"</th>
                                    <th class=ui::TH>"Endpoint"</th>
                                    <th class=ui::TH>"Status"</th>
                                    <th class=ui::TH>"Attempts"</th>
                                    <th class=ui::TH>"Last result"</th>
                                    <th class=ui::TH></th>
                                </tr>
                            </thead>
                            <tbody>
                                {deliveries.into_iter().map(|d| view! { <DeliveryRow d redeliver/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "succeeded" => ui::BADGE_OK,
        "failed" => ui::BADGE_HIGH,
        _ => ui::BADGE_WAIT,
    }
}

#[component]
fn DeliveryRow(d: DeliveryView, redeliver: ServerAction<RedeliverWebhook>) -> impl IntoView {
    view! {
        <tr>
            <td class=ui::TD><a class=ui::LINK href=format!("/settings/webhooks/deliveries/{}", d.id)>{d.at.clone()}</a></td>
            <td class=ui::TD><code class="font-mono">{d.event_type.clone()}</code></td>
            <td class=ui::TD>{d.endpoint_url.clone()}</td>
            <td class=ui::TD>
                <span class=status_badge(&d.status)>{d.status.clone()}</span>
                {d.next_attempt.clone().map(|t| view! { <span class="text-xs text-gray-500">{format!(" next try {t}")}</span> })}
            </td>
            <td class=ui::TD>{d.attempts}</td>
            <td class=ui::TD>{d.result.clone()}</td>
            <td class=ui::TD>
                <ActionForm action=redeliver>
                    <input type="hidden" name="delivery_id" value=d.id.clone()/>
                    <button type="submit" class=ui::BUTTON_QUIET>"Redeliver"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// One delivery: the payload sent and each attempt with the receiver's answer.
#[component]
pub fn WebhookDeliveryPage() -> impl IntoView {
    let params = use_params_map();
    let redeliver = ServerAction::<RedeliverWebhook>::new();
    let error = action_error(redeliver);
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), redeliver.version().get()),
        |(id, _)| load_webhook_delivery(id),
    );
    view! {
        <Title text="Webhook delivery"/>
        <div class="flex flex-col gap-6">
            <p><a class=ui::LINK href="/settings/webhooks">"← Webhooks"</a></p>
            <FormError error/>
            <Loaded data view=move |detail| view! {
                <section class=ui::CARD>
                    <h1 class=ui::HEADING><code class="font-mono">{detail.delivery.event_type.clone()}</code></h1>
                    <p class="mt-1 text-sm text-gray-600">
                        {format!("{} to {} · ", detail.delivery.event_id, detail.delivery.endpoint_url)}
                        <span class=status_badge(&detail.delivery.status) data-testid="delivery-status">{detail.delivery.status.clone()}</span>
                    </p>
                    <ActionForm action=redeliver attr:class="mt-4">
                        <input type="hidden" name="delivery_id" value=detail.delivery.id.clone()/>
                        <button type="submit" class=ui::BUTTON_QUIET>"Redeliver"</button>
                    </ActionForm>
                </section>
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Payload"</h2>
                    <pre class="mt-4 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm" data-testid="payload">{detail.payload}</pre>
                </section>
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Attempts"</h2>
                    {if detail.attempts.is_empty() {
                        view! { <p class=ui::MUTED>"Not tried yet."</p> }.into_any()
                    } else {
                        detail.attempts.into_iter().map(|a| view! {
                            <div class="mt-4" data-testid="attempt">
                                <p class="text-sm">{format!("#{} at {}: {}", a.attempt, a.at, a.result)}</p>
                                {a.response_body.map(|b| view! { <pre class="mt-2 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm">{b}</pre> })}
                                {a.response_headers.map(|h| view! {
                                    <details class="mt-2"><summary class="text-sm">"Response headers"</summary>
                                        <pre class="mt-2 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm">{h}</pre>
                                    </details>
                                })}
                            </div>
                        }).collect_view().into_any()
                    }}
                </section>
            }/>
        </div>
    }
}

/// How to check a delivery, as the docs say it.
#[component]
fn Verification() -> impl IntoView {
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Checking the signature"</h2>
            <p class="mt-1 text-sm text-gray-600">
                "Deliveries are signed per the Standard Webhooks specification (webhook-id, webhook-timestamp and webhook-signature headers), "
                "so the official standardwebhooks library for your language verifies them with the endpoint's secret. During a secret's "
                "rotation each delivery carries one signature per secret, and either one verifies."
            </p>
            <pre class="mt-4 whitespace-pre-wrap rounded-md bg-gray-100 p-4 text-sm">
"from standardwebhooks.webhooks import Webhook

event = Webhook(secret).verify(raw_body, request_headers)  # raises if the signature or timestamp is wrong"
            </pre>
        </section>
    }
}
