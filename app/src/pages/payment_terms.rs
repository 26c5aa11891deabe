//! A tenant's payment terms, for platform admins: Remit's fee on its buyers' payments, whether
//! refunds give the fee back, and its 3D Secure thresholds per currency.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::payment_terms::{SetTenantFee, SetThreeDSecure, TermsView, load_tenant_terms},
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn TenantTermsPage() -> impl IntoView {
    let params = use_params_map();
    let fee = ServerAction::<SetTenantFee>::new();
    let three_d_secure = ServerAction::<SetThreeDSecure>::new();
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), fee.version().get(), three_d_secure.version().get()),
        |(id, ..)| load_tenant_terms(id),
    );
    view! {
        <Title text="Payment terms"/>
        <div class="flex flex-col gap-6">
            <p><a class=ui::LINK href="/admin/people">"← Tenants & users"</a></p>
            <Loaded data view=move |t| view! { <Terms t fee three_d_secure/> }/>
        </div>
    }
}

#[component]
fn Terms(
    t: TermsView,
    fee: ServerAction<SetTenantFee>,
    three_d_secure: ServerAction<SetThreeDSecure>,
) -> impl IntoView {
    let fee_error = action_error(fee);
    let three_d_secure_error = action_error(three_d_secure);
    let fee_note = if t.fee_is_default { "Remit's default (PLATFORM_FEE_BPS)" } else { "set for this tenant" };
    let tenant_id = t.tenant_id.clone();
    let rows = t
        .three_d_secure
        .into_iter()
        .map(|row| {
            let id = tenant_id.clone();
            let field = format!("above-{}", row.currency);
            let label = format!("{} amount", row.currency.to_uppercase());
            let note = if row.is_default { " (Remit's)" } else { " (this tenant's)" };
            view! {
                <tr>
                    <td class=ui::TD>{row.currency.to_uppercase()}</td>
                    <td class=ui::TD>{row.above.clone()}{note}</td>
                    <td class=ui::TD>
                        <ActionForm action=three_d_secure attr:class="flex flex-wrap items-end gap-2">
                            <input type="hidden" name="tenant_id" value=id/>
                            <input type="hidden" name="currency" value=row.currency.clone()/>
                            <label class="sr-only" for=field.clone()>{label}</label>
                            <input id=field name="above" value=row.typed.clone() class=ui::INPUT/>
                            <button type="submit" class=ui::BUTTON_QUIET>"Save"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class=ui::CARD>
            <h1 class=ui::HEADING>{format!("Payment terms: {}", t.tenant_name)}</h1>
            <p class="mt-1 text-sm text-gray-600">"Changes apply from the next Checkout attempt; each is in the audit log. The tenant sees them on its settings page."</p>
        </section>
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Platform fee"</h2>
            <p class="mt-1 text-sm text-gray-600" data-testid="fee">{format!("{} of each buyer payment, {fee_note}.", t.fee)}</p>
            <FormError error=fee_error/>
            <ActionForm action=fee attr:class="mt-4 grid grid-cols-1 gap-4 md:grid-cols-3">
                <input type="hidden" name="tenant_id" value=tenant_id/>
                <TextField id="terms-fee" name="fee" label="Fee in % (empty for Remit's default)" error=fee_error value=t.fee_typed.clone()/>
                <label class="flex items-end gap-2 text-sm">
                    <input type="checkbox" name="refund_application_fee" value="yes" checked=t.refund_application_fee/>
                    "Refunds give the fee back in proportion"
                </label>
                <div class="flex items-end"><button type="submit" class=ui::BUTTON>"Save fee"</button></div>
            </ActionForm>
        </section>
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"3D Secure"</h2>
            <p class="mt-1 text-sm text-gray-600">"Payments above these amounts ask the card issuer to authenticate the buyer. Empty restores Remit's table; 0 asks for every payment."</p>
            <FormError error=three_d_secure_error/>
            <table class=ui::TABLE data-testid="three-d-secure">
                <thead><tr><th class=ui::TH>"Currency"</th><th class=ui::TH>"Asked above"</th><th class=ui::TH>"Change"</th></tr></thead>
                <tbody>
                    {rows}
                </tbody>
            </table>
        </section>
    }
}
