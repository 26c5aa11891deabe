use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::account::SignIn,
    components::{
        forms::{FormError, Notice, TextField, action_error},
        ui,
    },
};

#[component]
pub fn SignInPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let error = action_error(sign_in);
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let flag = move |name: &str| query.read().get(name).is_some();

    view! {
        <Title text="Sign in"/>
        <div class="mx-auto max-w-md">
            <section class=ui::CARD>
                <h1 class=ui::HEADING>"Sign in to Remit"</h1>
                <p class="mt-1 mb-6 text-sm text-gray-500">"Payments, payouts and receipts for your organisation."</p>
                {move || flag("signed_out").then(|| view! { <Notice>"You are signed out."</Notice> })}
                {move || flag("password_set").then(|| view! { <Notice>"Your password is set. Sign in with it now."</Notice> })}
                <FormError error/>
                <ActionForm action=sign_in attr:class="flex flex-col gap-4" attr:novalidate="">
                    <input type="hidden" name="next" value=next/>
                    <TextField id="email" name="email" label="Email" error input_type="email" autocomplete="username" maxlength=254/>
                    <TextField id="password" name="password" label="Password" error input_type="password" autocomplete="current-password"/>
                    <button type="submit" class=format!("{} w-full", ui::BUTTON)>"Sign in"</button>
                </ActionForm>
                <p class="mt-6 text-sm">
                    <a href="/forgot-password" class=ui::LINK>"Forgot your password?"</a>
                </p>
            </section>
        </div>
    }
}
