//! The signed-in person's own account: their password and their sessions.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::account::{AccountView, ChangePassword, SignOutOtherSessions, SignOutSession, account_notice, load_account},
    components::{
        forms::{FormError, Notice, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let end_one = ServerAction::<SignOutSession>::new();
    let end_others = ServerAction::<SignOutOtherSessions>::new();
    let versions = move || (change.version().get(), end_one.version().get(), end_others.version().get());
    let data = Resource::new(versions, |_| load_account());
    let notice = Resource::new(versions, |_| account_notice());
    view! {
        <Title text="Your account"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                notice.await.ok().flatten().map(|message| view! { <Notice>{message}</Notice> })
            })}
        </Suspense>
        <Loaded data view=move |a| view! { <Account a change end_one end_others/> }/>
    }
}

#[component]
fn Account(
    a: AccountView,
    change: ServerAction<ChangePassword>,
    end_one: ServerAction<SignOutSession>,
    end_others: ServerAction<SignOutOtherSessions>,
) -> impl IntoView {
    let error = action_error(change);
    let end_error = action_error(end_one);
    let others = a.sessions.iter().filter(|s| !s.current).count();
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING>"Your account"</h1>
                <p class=ui::MUTED>{a.display_name} " · " {a.email} " · " {a.role.label()}</p>
            </section>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Change your password"</h2>
                <p class="mb-4 text-sm text-gray-500">
                    "At least 12 characters, and not easy to guess: a few unrelated words work well. Your other sessions are signed out."
                </p>
                <FormError error/>
                <ActionForm action=change attr:class="grid grid-cols-1 gap-4 md:grid-cols-3" attr:novalidate="">
                    <TextField id="current-password" name="current_password" label="Current password" error input_type="password" autocomplete="current-password"/>
                    <TextField id="new-password" name="new_password" label="New password" error input_type="password" autocomplete="new-password"/>
                    <TextField id="confirm-password" name="confirmation" label="New password again" error input_type="password" autocomplete="new-password"/>
                    <div>
                        <button type="submit" class=ui::BUTTON>"Change password"</button>
                    </div>
                </ActionForm>
            </section>
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Where you are signed in"</h2>
                <p class="mb-4 text-sm text-gray-500">
                    "A session ends after 12 hours without use, and 7 days after signing in in any case."
                </p>
                <FormError error=end_error/>
                <div class="overflow-x-auto">
                    <table class=ui::TABLE data-testid="sessions">
                        <thead>
                            <tr>
                                <th class=ui::TH>"Device"</th>
                                <th class=ui::TH>"Address"</th>
                                <th class=ui::TH>"Signed in"</th>
                                <th class=ui::TH>"Last seen"</th>
                                <th class=ui::TH>""</th>
                            </tr>
                        </thead>
                        <tbody>
                            {a.sessions.into_iter().map(|s| view! {
                                <tr>
                                    <td class=ui::TD>{s.device}</td>
                                    <td class=ui::TD>{s.address}</td>
                                    <td class=ui::TD>{s.signed_in}</td>
                                    <td class=ui::TD>{s.last_seen}</td>
                                    <td class=ui::TD>
                                        {if s.current {
                                            view! { <span class=ui::BADGE_OK>"This session"</span> }.into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=end_one>
                                                    <input type="hidden" name="id" value=s.id/>
                                                    <button type="submit" class=ui::BUTTON_QUIET>"Sign out"</button>
                                                </ActionForm>
                                            }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {(others > 0).then(|| view! {
                    <ActionForm action=end_others attr:class="mt-4">
                        <button type="submit" class=ui::BUTTON_QUIET>"Sign out everywhere else"</button>
                    </ActionForm>
                })}
            </section>
        </div>
    }
}
