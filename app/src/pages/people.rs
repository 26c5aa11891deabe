//! The table of people shared by the dashboard, tenant and admin pages, with the management
//! buttons the viewer is allowed (deactivate, reactivate, change role, resend or revoke an
//! invitation).

use leptos::prelude::*;

use crate::{
    api::{
        PersonRow, UserRole,
        people::{ChangeUserRole, ResendInvitation, RevokeInvitation, SetUserActive},
    },
    components::{
        forms::{FormError, action_error},
        ui,
    },
};

/// The management actions of a page, so it reloads its people after any of them.
#[derive(Clone, Copy)]
pub struct PeopleActions {
    pub set_active: ServerAction<SetUserActive>,
    pub change_role: ServerAction<ChangeUserRole>,
    pub resend: ServerAction<ResendInvitation>,
    pub revoke: ServerAction<RevokeInvitation>,
}

impl PeopleActions {
    pub fn new() -> Self {
        Self {
            set_active: ServerAction::new(),
            change_role: ServerAction::new(),
            resend: ServerAction::new(),
            revoke: ServerAction::new(),
        }
    }

    /// Changes whenever one of the actions has run (a resource's source, to reload).
    pub fn version(&self) -> usize {
        self.set_active.version().get()
            + self.change_role.version().get()
            + self.resend.version().get()
            + self.revoke.version().get()
    }
}

impl Default for PeopleActions {
    fn default() -> Self {
        Self::new()
    }
}

fn role_value(role: UserRole) -> &'static str {
    match role {
        UserRole::TenantAdmin => "tenant_admin",
        UserRole::Consultant => "consultant",
        UserRole::TenantOwner => "tenant_owner",
        UserRole::FamilyMember => "family_member",
        UserRole::PlatformAdmin => "platform_admin",
    }
}

/// One management button: a form with the user's id (and any fixed value) for an action. A
/// macro, as `ActionForm` is typed by each server function.
macro_rules! button {
    ($action:expr, $id:expr, $extra:expr, $label:expr) => {{
        let extra: Option<(&'static str, &'static str)> = $extra;
        let user_id: String = $id;
        let label: String = $label.into();
        view! {
            <ActionForm action=$action>
                <input type="hidden" name="user_id" value=user_id/>
                {extra.map(|(name, value)| view! { <input type="hidden" name=name value=value/> })}
                <button type="submit" class=ui::BUTTON_QUIET>{label}</button>
            </ActionForm>
        }
        .into_any()
    }};
}

#[component]
fn RowActions(p: PersonRow, manage: PeopleActions) -> impl IntoView {
    let a = p.actions;
    let id = p.id;
    let mut buttons = Vec::new();
    if a.deactivate {
        buttons.push(button!(manage.set_active, id.clone(), Some(("active", "false")), "Deactivate"));
    }
    if a.reactivate {
        buttons.push(button!(manage.set_active, id.clone(), Some(("active", "true")), "Reactivate"));
    }
    if let Some(role) = a.change_role_to {
        let label = format!("Make {}", role.label().to_lowercase());
        buttons.push(button!(manage.change_role, id.clone(), Some(("role", role_value(role))), label));
    }
    if a.resend_invitation {
        buttons.push(button!(manage.resend, id.clone(), None, "Resend invitation"));
    }
    if a.revoke_invitation {
        buttons.push(button!(manage.revoke, id, None, "Revoke invitation"));
    }
    view! { <div class="flex flex-wrap gap-2">{buttons}</div> }
}

#[component]
pub fn PeopleTable(
    people: Vec<PersonRow>,
    #[prop(optional)] show_tenant: bool,
    #[prop(optional)] manage: Option<PeopleActions>,
) -> impl IntoView {
    if people.is_empty() {
        return view! { <p class=ui::MUTED>"Nobody yet."</p> }.into_any();
    }
    let with_actions = manage.is_some() && people.iter().any(|p| p.actions.any());
    let errors = manage.map(|m| {
        view! {
            <FormError error=action_error(m.set_active)/>
            <FormError error=action_error(m.change_role)/>
            <FormError error=action_error(m.resend)/>
            <FormError error=action_error(m.revoke)/>
        }
    });
    view! {
        {errors}
        <div class="overflow-x-auto">
            <table class=ui::TABLE data-testid="people">
                <thead>
                    <tr>
                        <th class=ui::TH>"Name"</th>
                        <th class=ui::TH>"Email"</th>
                        <th class=ui::TH>"Role"</th>
                        {show_tenant.then(|| view! { <th class=ui::TH>"Tenant"</th> })}
                        <th class=ui::TH>"Status"</th>
                        <th class=ui::TH>"Since"</th>
                        {with_actions.then(|| view! { <th class=ui::TH>""</th> })}
                    </tr>
                </thead>
                <tbody>
                    {people
                        .into_iter()
                        .map(|p| {
                            let role = match &p.consultant_name {
                                Some(consultant) => format!("{} of {consultant}", p.role.label()),
                                None => p.role.label().to_owned(),
                            };
                            let status = if p.deactivated {
                                view! { <span class=ui::BADGE_HIGH>"Deactivated"</span> }.into_any()
                            } else if p.active {
                                view! { <span class=ui::BADGE_OK>"Active"</span> }.into_any()
                            } else {
                                view! { <span class=ui::BADGE_WAIT>"Invited"</span> }.into_any()
                            };
                            let actions = (with_actions)
                                .then(|| manage.map(|m| view! { <td class=ui::TD><RowActions p=p.clone() manage=m/></td> }));
                            view! {
                                <tr data-email=p.email.clone()>
                                    <td class=ui::TD>{p.display_name.clone()}</td>
                                    <td class=ui::TD>{p.email.clone()}</td>
                                    <td class=ui::TD>{role}</td>
                                    {show_tenant.then(|| view! {
                                        <td class=ui::TD>{p.tenant_name.clone().unwrap_or_else(|| "(platform)".into())}</td>
                                    })}
                                    <td class=ui::TD>{status}</td>
                                    <td class=ui::TD>{p.joined.clone()}</td>
                                    {actions}
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
