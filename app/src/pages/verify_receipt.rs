use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::receipts::{Verification, VerifiedReceipt, verify_receipt},
    components::{forms::Problem, ui},
};

/// `/receipts/verify`: anyone can check a receipt's verification code. A plain GET form, so
/// it works without JavaScript.
#[component]
pub fn VerifyReceiptPage() -> impl IntoView {
    let query = use_query_map();
    let code = move || query.read().get("code").filter(|v| !v.trim().is_empty());
    let result = Resource::new(code, verify_receipt);
    view! {
        <Title text="Check a receipt"/>
        <section class=ui::CARD>
            <h1 class=ui::HEADING>"Check a receipt"</h1>
            <p class="mt-1 text-sm text-gray-600">"Type the verification code printed on a Remit receipt to see whether it is genuine."</p>
            <form method="get" class="mt-4 flex flex-wrap items-end gap-4">
                <div>
                    <label for="code" class=ui::LABEL>"Verification code"</label>
                    <input id="code" name="code" class=ui::INPUT placeholder="7KQ2-M9XD-4HTB" autocomplete="off"
                        value=move || code().unwrap_or_default()/>
                </div>
                <button type="submit" class=ui::BUTTON>"Check"</button>
            </form>
            <div class="mt-6" data-testid="verification">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match result.await {
                            Ok(Verification::NotAsked) => ().into_any(),
                            Ok(Verification::Genuine(r)) => view! { <Genuine r=*r/> }.into_any(),
                            Ok(Verification::Unknown) => view! {
                                <Problem>"No receipt has this code. Check it was typed as printed; if it was, this receipt was not issued by Remit."</Problem>
                            }.into_any(),
                            Err(error) => view! { <Problem>{error.message}</Problem> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </section>
    }
}

#[component]
fn Genuine(r: VerifiedReceipt) -> impl IntoView {
    let credit = r.corrects.is_some();
    let (document, moved, when) =
        if credit { ("credit note", "Amount refunded", "Refunded") } else { ("receipt", "Amount paid", "Paid") };
    view! {
        <p role="status" class="rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
            {format!("Genuine: {document} {} issued by {} through Remit.", r.number, r.issuer)}
        </p>
        {r.test_mode.then(|| view! { <p class="mt-2 text-sm text-gray-600">{format!("This {document} is for test money; none was moved.")}</p> })}
        <dl class="mt-4 grid grid-cols-1 gap-2 text-sm md:grid-cols-2">
            {r.corrects.map(|receipt| view! { <dt class=ui::MUTED>"Corrects receipt"</dt><dd>{receipt}</dd> })}
            <dt class=ui::MUTED>"For"</dt><dd>{r.paid_for}</dd>
            <dt class=ui::MUTED>{moved}</dt><dd data-testid="verified-amount">{r.amount}</dd>
            <dt class=ui::MUTED>{when}</dt><dd>{r.paid_at}</dd>
            <dt class=ui::MUTED>"Order"</dt><dd>{r.order_status}</dd>
            <dt class=ui::MUTED>"SHA-256 of the PDF"</dt><dd><code class="break-all font-mono text-xs">{r.sha256}</code></dd>
        </dl>
    }
}
