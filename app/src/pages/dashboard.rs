use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    fees::FeeReports,
    people::{PeopleActions, PeopleTable},
};
use crate::{
    api::{
        fees::load_fee_report,
        household::{ConsultantDashboard, InviteFamilyMember, load_consultant_dashboard},
    },
    components::{
        forms::{FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

/// The consultant's home; a family member sees the same page without the controls.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let invite = ServerAction::<InviteFamilyMember>::new();
    let manage = PeopleActions::new();
    let data = Resource::new(move || (invite.version().get(), manage.version()), |_| load_consultant_dashboard());
    view! {
        <Title text="Dashboard"/>
        <Loaded data view=move |d| view! { <Dashboard d invite manage/> }/>
    }
}

#[component]
fn Dashboard(d: ConsultantDashboard, invite: ServerAction<InviteFamilyMember>, manage: PeopleActions) -> impl IntoView {
    let error = action_error(invite);
    let household_title =
        if d.can_manage { "Your household".to_owned() } else { format!("{}'s household", d.consultant_name) };
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Welcome, " {d.display_name.clone()}</h1>
                <p class=ui::MUTED>
                    {d.role.label()} " at " <span data-testid="tenant-name">{d.tenant_name.clone()}</span>
                    {(!d.can_manage).then(|| format!(" · attached to {}", d.consultant_name))}
                </p>
            </section>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>{household_title}</h2>
                <p class="mb-4 text-sm text-gray-500">
                    "Family members can sign in and follow your payments and payouts. They cannot change anything."
                </p>
                <PeopleTable people=d.household manage/>
            </section>
            {d.can_manage.then(|| view! { <ConsultantFees/> })}
            {d.can_manage.then(|| view! {
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Invite a family member"</h2>
                    <p class="mb-4 text-sm text-gray-500">"They receive an email with a link to choose their password."</p>
                    <FormError error/>
                    <ActionForm action=invite attr:class="grid grid-cols-1 gap-4 md:grid-cols-3" attr:novalidate="">
                        <TextField id="family-name" name="display_name" label="Name" error maxlength=120/>
                        <TextField id="family-email" name="email" label="Email" error input_type="email" maxlength=254/>
                        <div class="flex items-end">
                            <button type="submit" class=ui::BUTTON>"Send invitation"</button>
                        </div>
                    </ActionForm>
                </section>
            })}
        </div>
    }
}

/// The consultant's fees per month (family members see only their own fees, on the Fees page).
#[component]
fn ConsultantFees() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_fee_report());
    view! {
        <section class="flex flex-col gap-4">
            <div>
                <h2 class=ui::SUBHEADING>"Your fees by month"</h2>
                <p class="text-sm text-gray-500">
                    "Invoiced, paid, outstanding and refunded over the last twelve months. "
                    <a class=ui::LINK href="/fees">"Bill a client"</a>
                </p>
            </div>
            <Loaded data view=move |reports| view! { <FeeReports reports titled=false/> }/>
        </section>
    }
}
