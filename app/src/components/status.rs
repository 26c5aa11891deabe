//! What a page shows when its data cannot be shown to this visitor, with the matching status.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::{components::ui, error::AppError};

#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::set_page_status(error.status);
    let location = use_location();
    let here = move || {
        let path = location.pathname.get();
        let query = location.search.get();
        let next = if query.is_empty() { path } else { format!("{path}?{query}") };
        format!("/sign-in?next={}", urlencode(&next))
    };
    let (title, body) = match error.status {
        401 => ("Sign in required", "Please sign in to see this page.".to_owned()),
        403 => ("No access", "Your role does not give you access to this page.".to_owned()),
        404 => ("Not found", error.message.clone()),
        429 => ("Too many attempts", error.message.clone()),
        _ => ("Something went wrong", error.message.clone()),
    };
    view! {
        <Title text=title/>
        <section class=ui::CARD data-testid="load-error" data-status=error.status>
            <h1 class=ui::HEADING>{title}</h1>
            <p class="mt-2 text-gray-600">{body}</p>
            {(error.status == 401).then(|| view! {
                <p class="mt-4"><a class=ui::BUTTON href=here>"Sign in"</a></p>
            })}
        </section>
    }
}

/// Percent-encodes a path for use as a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Marks the page as hydrated (`data-hydrated` on the body), which end-to-end tests wait for
/// before they click. Called from an effect of each page, so it holds once the page's own
/// lazily loaded code has hydrated it, not only the frame around it. Effects run only in the
/// browser.
pub fn mark_hydrated() {
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

#[component]
pub fn NotFoundPage() -> impl IntoView {
    mark_hydrated();
    view! { <LoadError error=AppError::new(404, "There is no page at this address.")/> }
}

/// Shows a page's data once loaded, or the refusal or failure with its status.
#[component]
pub fn Loaded<T, F, V>(data: Resource<Result<T, AppError>>, view: F) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| view! { <p class=ui::MUTED>"Loading…"</p> }>
            {
                let view = view.clone();
                move || {
                    let view = view.clone();
                    Suspend::new(async move {
                        match data.await {
                            Ok(value) => view(value).into_any(),
                            Err(error) => view! { <LoadError error/> }.into_any(),
                        }
                    })
                }
            }
        </Suspense>
    }
}
