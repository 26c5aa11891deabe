//! Form helpers: messages under fields and above forms.

use leptos::prelude::*;

use crate::{components::ui, error::AppError};

/// The latest result of an action as an error, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}

/// Shows the error of a form above it (and nothing while there is none).
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().filter(|e| e.field.is_none()).map(|e| {
            view! {
                <p role="alert" class="mb-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-700">
                    {e.message}
                </p>
            }
        })
    }
}

/// Shows the error that concerns `field`, under it.
#[component]
pub fn FieldError(#[prop(into)] error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.for_field(field)).map(|message| {
            view! { <p role="alert" class="mt-1 text-sm text-red-700">{message}</p> }
        })
    }
}

/// A confirmation shown after a successful action.
#[component]
pub fn Notice(children: Children) -> impl IntoView {
    view! {
        <p role="status" class="mb-4 rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
            {children()}
        </p>
    }
}

/// Something that went wrong outside a form (e.g. after returning from Stripe).
#[component]
pub fn Problem(children: Children) -> impl IntoView {
    view! {
        <p role="alert" class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
            {children()}
        </p>
    }
}

/// A labelled input with its error underneath.
#[component]
pub fn TextField(
    id: &'static str,
    /// The server function argument the value is sent as.
    name: &'static str,
    label: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
    #[prop(default = "text")] input_type: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] maxlength: Option<u32>,
    #[prop(optional, into)] value: Option<String>,
) -> impl IntoView {
    view! {
        <div>
            <label for=id class=ui::LABEL>{label}</label>
            <input id=id name=name type=input_type autocomplete=autocomplete maxlength=maxlength value=value class=ui::INPUT/>
            <FieldError error field=name/>
        </div>
    }
}
