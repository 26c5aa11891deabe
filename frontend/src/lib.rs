//! The browser entry point: hydrates the server-rendered page, once the lazy-loaded code of
//! the page's route has arrived.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
