use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::tenant_admin::{ApiKeys, CreateApiKey, KeyRow, RegenerateApiKeys, RevokeApiKey, load_api_keys},
    components::{
        forms::{FieldError, FormError, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let regenerate = ServerAction::<RegenerateApiKeys>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let data = Resource::new(
        move || (create.version().get(), regenerate.version().get(), revoke.version().get()),
        |_| load_api_keys(),
    );
    view! {
        <Title text="API keys"/>
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"API keys"</h1>
                <p class=ui::MUTED>
                    "Your systems call Remit's API with these keys (Authorization: Bearer …). Test keys see only test data. "
                    <a class=ui::LINK href="/api/v1/openapi.json">"API reference (OpenAPI)"</a>
                </p>
            </section>
            <Loaded data view=move |k| view! { <Keys k create regenerate revoke/> }/>
        </div>
    }
}

#[component]
fn Keys(
    k: ApiKeys,
    create: ServerAction<CreateApiKey>,
    regenerate: ServerAction<RegenerateApiKeys>,
    revoke: ServerAction<RevokeApiKey>,
) -> impl IntoView {
    let create_error = action_error(create);
    let regenerate_error = action_error(regenerate);
    let revoke_error = action_error(revoke);
    let can_manage = k.can_manage;
    view! {
        {(!k.new_secrets.is_empty()).then(|| view! {
            <section class="rounded-lg border border-green-200 bg-green-50 p-6" role="status" data-testid="new-secrets">
                <h2 class=ui::SUBHEADING>"Copy your new key now"</h2>
                <p class="mb-2 text-sm">"This is the only time it is shown. Remit keeps only a fingerprint of it."</p>
                {k.new_secrets.into_iter().map(|s| view! {
                    <p class="text-sm">
                        <span class=ui::BADGE>{s.mode}</span>
                        " "
                        <code class="font-mono" data-testid="new-secret">{s.secret}</code>
                    </p>
                }).collect_view()}
            </section>
        })}
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">"Keys"</h2>
            <FormError error=revoke_error/>
            <FieldError error=revoke_error field="reason"/>
            {if k.keys.is_empty() {
                view! {
                    <p class=ui::MUTED data-testid="no-keys">
                        "No keys yet. Create a test key to try the API: your auction system registers each won lot with POST /api/v1/winnings and Remit emails the buyer a payment link. A key's secret is shown once, when it is made."
                    </p>
                }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class=ui::TABLE data-testid="api-keys">
                            <thead>
                                <tr>
                                    <th class=ui::TH>"Key"</th>
                                    <th class=ui::TH>"Mode"</th>
                                    <th class=ui::TH>"Created"</th>
                                    <th class=ui::TH>"Last used"</th>
                                    <th class=ui::TH>"Status"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {k.keys.into_iter().map(|key| view! { <KeyLine key can_manage revoke/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
        {can_manage.then(|| view! {
            <div class="grid grid-cols-1 gap-4 md:grid-cols-2">
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Create a key"</h2>
                    <FormError error=create_error/>
                    <ActionForm action=create attr:class="mt-4 flex flex-wrap items-end gap-4">
                        <div>
                            <label for="create-mode" class=ui::LABEL>"Mode"</label>
                            <select id="create-mode" name="mode" class=ui::INPUT>
                                <option value="test">"Test"</option>
                                <option value="live">"Live"</option>
                            </select>
                        </div>
                        <button type="submit" class=ui::BUTTON>"Create key"</button>
                    </ActionForm>
                </section>
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Regenerate keys"</h2>
                    <p class="mt-1 text-sm text-gray-600">"The current keys of the chosen mode stop working at once."</p>
                    <FormError error=regenerate_error/>
                    <ActionForm action=regenerate attr:class="mt-4 flex flex-col gap-3">
                        <div>
                            <label for="regenerate-type" class=ui::LABEL>"Keys"</label>
                            <select id="regenerate-type" name="key_type" class=ui::INPUT>
                                <option value="test">"Test keys"</option>
                                <option value="live">"Live keys"</option>
                                <option value="all">"All keys"</option>
                            </select>
                        </div>
                        <label class="text-sm">
                            <input type="checkbox" name="confirm" value="yes"/>
                            " I understand the current keys stop working now"
                        </label>
                        <FieldError error=regenerate_error field="confirm"/>
                        <div><button type="submit" class=ui::BUTTON_QUIET>"Regenerate"</button></div>
                    </ActionForm>
                </section>
            </div>
        })}
    }
}

#[component]
fn KeyLine(key: KeyRow, can_manage: bool, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    let active = key.revoked.is_none();
    let reason_id = format!("reason-{}", key.id);
    view! {
        <tr>
            <td class=ui::TD><code class="font-mono" data-testid="masked-key">{key.masked.clone()}</code></td>
            <td class=ui::TD>{key.mode.clone()}</td>
            <td class=ui::TD>{key.created.clone()}</td>
            <td class=ui::TD>{key.last_used.clone().unwrap_or_else(|| "never".into())}</td>
            <td class=ui::TD>
                {if active {
                    view! { <span class=ui::BADGE_OK>"Active"</span> }.into_any()
                } else {
                    view! {
                        <span class=ui::BADGE>"Revoked"</span>
                        <span class="block text-xs text-gray-500">{format!("{} — {}", key.revoked.clone().unwrap_or_default(), key.revoke_reason.clone().unwrap_or_default())}</span>
                    }.into_any()
                }}
                {(active && can_manage).then(|| view! {
                    <ActionForm action=revoke attr:class="mt-2 flex flex-wrap items-end gap-2">
                        <input type="hidden" name="key_id" value=key.id.clone()/>
                        <div>
                            <label for=reason_id.clone() class="block text-xs text-gray-600">"Reason"</label>
                            <input id=reason_id name="reason" maxlength="500" class=ui::INPUT placeholder="e.g. leaked in a log"/>
                        </div>
                        <button type="submit" class=ui::BUTTON_QUIET>"Revoke"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
