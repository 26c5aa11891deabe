use leptos::prelude::*;
use leptos_meta::Title;

use super::people::{PeopleActions, PeopleTable};
use crate::{
    api::{
        payment_terms::SetSecondChance,
        tenant::{InviteMember, RenameTenant, SetTimeZone, TenantSettings, load_tenant_settings},
    },
    components::{
        forms::{FieldError, FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn TenantSettingsPage() -> impl IntoView {
    let invite = ServerAction::<InviteMember>::new();
    let rename = ServerAction::<RenameTenant>::new();
    let second_chance = ServerAction::<SetSecondChance>::new();
    let time_zone = ServerAction::<SetTimeZone>::new();
    let manage = PeopleActions::new();
    let data = Resource::new(
        move || {
            (
                invite.version().get(),
                rename.version().get(),
                manage.version(),
                second_chance.version().get(),
                time_zone.version().get(),
            )
        },
        |_| load_tenant_settings(),
    );
    view! {
        <Title text="Tenant settings"/>
        <Loaded data view=move |s| view! { <Settings s invite rename manage second_chance time_zone/> }/>
    }
}

#[component]
fn Settings(
    s: TenantSettings,
    invite: ServerAction<InviteMember>,
    rename: ServerAction<RenameTenant>,
    manage: PeopleActions,
    second_chance: ServerAction<SetSecondChance>,
    time_zone: ServerAction<SetTimeZone>,
) -> impl IntoView {
    let second_chance_error = action_error(second_chance);
    let time_zone_error = action_error(time_zone);
    let zone = s.time_zone.clone();
    let second_chance_on = s.terms.second_chance;
    let invite_error = action_error(invite);
    let rename_error = action_error(rename);
    let can_rename = s.can_rename();
    let roles = s.invitable_roles();
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING data-testid="tenant-name">{s.tenant_name.clone()}</h1>
                <p class=ui::MUTED>"On Remit since " {s.created.clone()} " · you are " {s.viewer_role.label().to_lowercase()}</p>
            </section>
            {can_rename.then(|| view! {
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Name"</h2>
                    <FormError error=rename_error/>
                    <ActionForm action=rename attr:class="mt-4 flex flex-wrap items-end gap-4" attr:novalidate="">
                        <div class="grow">
                            <TextField id="tenant-name" name="name" label="Tenant name" error=rename_error maxlength=120 value=s.tenant_name.clone()/>
                        </div>
                        <button type="submit" class=ui::BUTTON>"Rename"</button>
                    </ActionForm>
                </section>
            })}
            <section class=ui::CARD data-testid="time-zone">
                <h2 class=ui::SUBHEADING>"Time zone"</h2>
                <p class="mt-1 text-sm text-gray-600">{format!("Times on winnings and their timelines are shown in {zone}.")}</p>
                {can_rename.then(|| view! {
                    <FormError error=time_zone_error/>
                    <ActionForm action=time_zone attr:class="mt-4 flex flex-wrap items-end gap-4" attr:novalidate="">
                        <div class="grow">
                            <TextField id="tenant-time-zone" name="time_zone" label="IANA time zone (e.g. Europe/London)" error=time_zone_error maxlength=64 value=zone.clone()/>
                        </div>
                        <button type="submit" class=ui::BUTTON_QUIET>"Save"</button>
                    </ActionForm>
                })}
            </section>
            <section class=ui::CARD data-testid="payment-terms">
                <h2 class=ui::SUBHEADING>"Payment terms"</h2>
                <p class="mt-1 text-sm text-gray-600">
                    {format!(
                        "Remit keeps {} of each buyer payment as its fee{}; {}.",
                        s.terms.fee,
                        if s.terms.fee_is_default { "" } else { " (agreed for you)" },
                        if s.terms.refund_application_fee { "a refund gives that fee back in proportion" } else { "a refund does not give that fee back" },
                    )}
                </p>
                <p class="mt-1 text-sm text-gray-600">
                    "Buyers are asked to authenticate with their bank (3D Secure) for payments above "
                    {s.terms.three_d_secure.iter().map(|t| t.above.clone()).collect::<Vec<_>>().join(", ")}
                    "."
                </p>
                <p class="mt-1 text-sm text-gray-600" data-testid="second-chance">
                    {if second_chance_on {
                        "Second chance is on: when a winner does not pay, the lot is offered to the runners-up your system registered, best first, each with 24 hours."
                    } else {
                        "Second chance is off: a lot whose winner does not pay is not offered to the runners-up."
                    }}
                </p>
                {can_rename.then(|| view! {
                    <FormError error=second_chance_error/>
                    <ActionForm action=second_chance attr:class="mt-2 flex items-center gap-2">
                        <label class="flex items-center gap-2 text-sm">
                            <input type="checkbox" name="enabled" value="yes" checked=second_chance_on/>
                            "Offer unpaid lots to the runners-up"
                        </label>
                        <button type="submit" class=ui::BUTTON_QUIET>"Save"</button>
                    </ActionForm>
                })}
            </section>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"People"</h2>
                <PeopleTable people=s.people manage/>
            </section>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Invite someone"</h2>
                <p class="mb-4 text-sm text-gray-500">"They receive an email with a link to choose their password."</p>
                <FormError error=invite_error/>
                <ActionForm action=invite attr:class="grid grid-cols-1 gap-4 md:grid-cols-4" attr:novalidate="">
                    <TextField id="invite-name" name="display_name" label="Name" error=invite_error maxlength=120/>
                    <TextField id="invite-email" name="email" label="Email" error=invite_error input_type="email" maxlength=254/>
                    <div>
                        <label for="invite-role" class=ui::LABEL>"Role"</label>
                        <select id="invite-role" name="role" class=ui::INPUT>
                            {roles
                                .iter()
                                .map(|r| {
                                    let value = match r {
                                        crate::api::UserRole::TenantAdmin => "tenant_admin",
                                        _ => "consultant",
                                    };
                                    view! { <option value=value>{r.label()}</option> }
                                })
                                .collect_view()}
                        </select>
                        <FieldError error=invite_error field="role"/>
                    </div>
                    <div class="flex items-end">
                        <button type="submit" class=ui::BUTTON>"Send invitation"</button>
                    </div>
                </ActionForm>
            </section>
        </div>
    }
}
