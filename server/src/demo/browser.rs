//! The demo's people in their browsers: plain HTTP requests to the Stripe sandbox's hosted pages
//! (consent, card entry, 3D Secure, onboarding forms), as a browser posts them. Redirects are
//! not followed; the caller reads where a page sends the person.

use std::time::Duration;

use anyhow::Context as _;

/// How long one page may take to answer.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// A page's answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    /// Where a redirect sends the browser, made absolute.
    pub location: Option<String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
}

impl Browser {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PAGE_TIMEOUT)
            .user_agent("Remit demo")
            .build()?;
        Ok(Self { client })
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Page> {
        Self::read(url, self.client.get(url).send().await).await
    }

    /// Submits a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> anyhow::Result<Page> {
        Self::read(url, self.client.post(url).form(fields).send().await).await
    }

    async fn read(url: &str, sent: reqwest::Result<reqwest::Response>) -> anyhow::Result<Page> {
        let response = sent.with_context(|| format!("could not load {url}"))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| response.url().join(l).ok())
            .map(String::from);
        let body = response.text().await.with_context(|| format!("{url} did not finish its answer"))?;
        Ok(Page { status, location, body })
    }
}
