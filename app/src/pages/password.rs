use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::account::{ChoosePassword, RequestPasswordReset, inspect_link},
    components::{
        forms::{FieldError, FormError, Notice, TextField, action_error},
        status::LoadError,
        ui,
    },
};

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let request = ServerAction::<RequestPasswordReset>::new();
    let error = action_error(request);
    let query = use_query_map();
    let sent = move || query.read().get("sent").is_some();

    view! {
        <Title text="Forgot password"/>
        <div class="mx-auto max-w-md">
            <section class=ui::CARD>
                <h1 class=ui::HEADING>"Forgot your password?"</h1>
                {move || if sent() {
                    view! {
                        <Notice>
                            "If an account uses that address, we have emailed it a link to choose a new password. The link works for one hour."
                        </Notice>
                    }.into_any()
                } else {
                    view! {
                        <p class="mt-1 mb-6 text-sm text-gray-500">
                            "Enter the email address of your account and we will send you a link to choose a new password."
                        </p>
                    }.into_any()
                }}
                <FormError error/>
                <ActionForm action=request attr:class="flex flex-col gap-4" attr:novalidate="">
                    <TextField id="email" name="email" label="Email" error input_type="email" autocomplete="username" maxlength=254/>
                    <button type="submit" class=ui::BUTTON>"Send the link"</button>
                </ActionForm>
                <p class="mt-6 text-sm"><a href="/sign-in" class=ui::LINK>"Back to sign in"</a></p>
            </section>
        </div>
    }
}

/// Choosing a password through a one-time link (after "forgot password", or an invitation).
#[component]
pub fn ChoosePasswordPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let link = Resource::new(token, inspect_link);
    let choose = ServerAction::<ChoosePassword>::new();
    let error = action_error(choose);

    view! {
        <Title text="Choose a password"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match link.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(info) => view! {
                        <div class="mx-auto max-w-md">
                            <section class=ui::CARD>
                                <h1 class=ui::HEADING>
                                    {if info.invitation { "Welcome to Remit" } else { "Choose a new password" }}
                                </h1>
                                <p class="mt-1 mb-6 text-sm text-gray-500">
                                    "For " <span class="font-medium">{info.email}</span>
                                    ". Use at least 10 characters."
                                </p>
                                <FormError error/>
                                <FieldError error field="token"/>
                                <ActionForm action=choose attr:class="flex flex-col gap-4" attr:novalidate="">
                                    <input type="hidden" name="token" value=token/>
                                    <TextField id="password" name="password" label="New password" error input_type="password" autocomplete="new-password"/>
                                    <TextField id="confirmation" name="confirmation" label="The same password again" error input_type="password" autocomplete="new-password"/>
                                    <button type="submit" class=ui::BUTTON>"Save the password"</button>
                                </ActionForm>
                            </section>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
