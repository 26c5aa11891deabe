//! Headers every response carries: a Content-Security-Policy, no MIME sniffing, no framing,
//! same-origin referrers (which the CSRF check and no-JavaScript form redirects rely on), HSTS
//! over https, and no caching of pages.
//!
//! The policy allows scripts from Remit itself and, by a fresh nonce per response, the inline
//! scripts Leptos writes (the hydration bootstrap and the data of resources); WebAssembly may be
//! compiled (`'wasm-unsafe-eval'`), nothing may frame Remit, and no plugins run. Stripe's
//! Connect.js and its frames are allowed only on the pages that embed them; forms may lead to
//! Stripe's hosted pages (Checkout, onboarding, OAuth), whose origins come from the Stripe
//! configuration (the sandbox's in development).

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use rand::RngCore as _;

/// The nonce of this response's inline scripts; the page renderer puts it on each of them.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// Pages that embed Stripe's Connect.js components (the app's links load them in full).
use app::components::layout::STRIPE_EMBED_PAGES;

/// Where Stripe's hosted pages and scripts come from.
#[derive(Debug, Clone)]
pub struct Policy {
    hsts: bool,
    /// Origins forms may lead to (Stripe's hosted pages).
    form_targets: String,
    /// What the pages that embed Connect.js add to each directive.
    embed_script: String,
    embed_frame: String,
    embed_connect: String,
    embed_img: String,
    embed_style: String,
}

fn origin(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null")
}

impl Policy {
    pub fn new(public_base_url: &url::Url, stripe: &domain::stripe::StripeConfig) -> Self {
        let real_stripe = url::Url::parse(&stripe.api_base)
            .ok()
            .and_then(|u| u.host_str().map(|h| h == "stripe.com" || h.ends_with(".stripe.com")))
            .unwrap_or(false);
        let mut stripe_pages: Vec<String> =
            [&stripe.api_base, &stripe.connect_base].into_iter().filter_map(|u| origin(u)).collect();
        let connect_js = origin(&stripe.connect_js_url).unwrap_or_default();
        let policy = if real_stripe {
            // Stripe's own list for Connect embedded components.
            stripe_pages.extend(
                ["https://checkout.stripe.com", "https://connect.stripe.com", "https://billing.stripe.com"]
                    .map(str::to_owned),
            );
            Self {
                hsts: false,
                form_targets: String::new(),
                embed_script: "https://connect-js.stripe.com https://js.stripe.com".into(),
                embed_frame: "https://connect-js.stripe.com https://js.stripe.com".into(),
                embed_connect: "https://api.stripe.com https://connect-js.stripe.com".into(),
                embed_img: "https://*.stripe.com".into(),
                embed_style: "'sha256-0hAheEzaMe6uXIKV4EehS9pu1am1lj/KnnzrOYqckXk='".into(),
            }
        } else {
            Self {
                hsts: false,
                form_targets: String::new(),
                embed_script: connect_js.clone(),
                embed_frame: connect_js.clone(),
                embed_connect: connect_js,
                embed_img: String::new(),
                embed_style: String::new(),
            }
        };
        stripe_pages.sort();
        stripe_pages.dedup();
        Self { hsts: public_base_url.scheme() == "https", form_targets: stripe_pages.join(" "), ..policy }
    }

    /// The policy for a response to `path`, with this response's `nonce`.
    pub fn header(&self, path: &str, nonce: &str) -> String {
        let embeds = STRIPE_EMBED_PAGES.contains(&path);
        let extra = |value: &str| if embeds && !value.is_empty() { format!(" {value}") } else { String::new() };
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'{}; style-src 'self'{}; \
             img-src 'self' data:{}; font-src 'self'; connect-src 'self'{}; frame-src {}; \
             form-action 'self' {}; frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
            extra(&self.embed_script),
            extra(&self.embed_style),
            extra(&self.embed_img),
            extra(&self.embed_connect),
            if embeds && !self.embed_frame.is_empty() { self.embed_frame.as_str() } else { "'none'" },
            self.form_targets,
        )
    }
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

pub async fn apply(State(policy): State<Policy>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_asset = path.starts_with("/pkg/");
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&policy.header(&path, &nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if policy.hsts {
        headers
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api_base: &str, connect_js: &str) -> domain::stripe::StripeConfig {
        domain::stripe::StripeConfig {
            api_base: api_base.into(),
            connect_base: api_base.trim_end_matches('/').into(),
            connect_js_url: connect_js.into(),
            live: None,
            test: None,
        }
    }

    #[test]
    fn the_policy_allows_only_nonced_inline_scripts_and_embeds_stripe_where_needed() {
        let base = url::Url::parse("https://pay.example.com").unwrap();
        let policy =
            Policy::new(&base, &config("https://api.stripe.com/", "https://connect-js.stripe.com/v1.0/connect.js"));
        let page = policy.header("/dashboard", "abc");
        assert!(page.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"), "{page}");
        assert!(
            page.contains("frame-ancestors 'none'")
                && page.contains("object-src 'none'")
                && page.contains("base-uri 'self'")
        );
        assert!(page.contains("frame-src 'none'") && !page.contains("connect-js"), "{page}");
        assert!(page.contains("https://checkout.stripe.com"), "forms may lead to Checkout: {page}");
        assert!(!page.contains("unsafe-inline"));
        let setup = policy.header("/payment-setup", "abc");
        assert!(
            setup.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval' https://connect-js.stripe.com"),
            "{setup}"
        );
        assert!(setup.contains("frame-src https://connect-js.stripe.com https://js.stripe.com"), "{setup}");
        assert!(policy.hsts);
    }

    #[test]
    fn in_development_the_sandbox_stands_in_for_stripe() {
        let base = url::Url::parse("http://127.0.0.1:3000").unwrap();
        let policy = Policy::new(&base, &config("http://127.0.0.1:12111/", "http://127.0.0.1:12111/connect.js"));
        assert!(!policy.hsts);
        let setup = policy.header("/payment-setup", "n");
        assert!(setup.contains("frame-src http://127.0.0.1:12111;"), "{setup}");
        assert!(policy.header("/", "n").contains("form-action 'self' http://127.0.0.1:12111;"));
    }
}
