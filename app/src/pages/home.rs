use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::components::layout::CurrentUser;

/// `/` sends people where they belong: their role's home, or the sign-in page.
#[component]
pub fn HomePage() -> impl IntoView {
    let CurrentUser(me) = expect_context();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let target = match me.await {
                    Ok(Some(me)) => me.role.home(),
                    _ => "/sign-in",
                };
                view! { <Redirect path=target/> }
            })}
        </Suspense>
    }
}
