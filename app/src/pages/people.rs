//! The table of people shared by the dashboard, tenant and admin pages.

use leptos::prelude::*;

use crate::{api::PersonRow, components::ui};

#[component]
pub fn PeopleTable(people: Vec<PersonRow>, #[prop(optional)] show_tenant: bool) -> impl IntoView {
    if people.is_empty() {
        return view! { <p class=ui::MUTED>"Nobody yet."</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <table class=ui::TABLE>
                <thead>
                    <tr>
                        <th class=ui::TH>"Name"</th>
                        <th class=ui::TH>"Email"</th>
                        <th class=ui::TH>"Role"</th>
                        {show_tenant.then(|| view! { <th class=ui::TH>"Tenant"</th> })}
                        <th class=ui::TH>"Status"</th>
                        <th class=ui::TH>"Since"</th>
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
                            view! {
                                <tr>
                                    <td class=ui::TD>{p.display_name}</td>
                                    <td class=ui::TD>{p.email}</td>
                                    <td class=ui::TD>{role}</td>
                                    {show_tenant.then(|| view! {
                                        <td class=ui::TD>{p.tenant_name.unwrap_or_else(|| "(platform)".into())}</td>
                                    })}
                                    <td class=ui::TD>
                                        {if p.active {
                                            view! { <span class=ui::BADGE_OK>"Active"</span> }
                                        } else {
                                            view! { <span class=ui::BADGE_WAIT>"Invited"</span> }
                                        }}
                                    </td>
                                    <td class=ui::TD>{p.joined}</td>
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
