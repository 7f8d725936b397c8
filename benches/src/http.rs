//! The blocking HTTP client every phase shares.

use std::io::Read;
use std::time::Duration;

/// Longest any single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response body read (the series endpoint over a big workload is large).
const MAX_BODY_BYTES: u64 = 1 << 30;

/// An agent that hands back 4xx/5xx responses instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// A response reduced to status and body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text (lossy UTF-8).
    pub body: String,
}

/// Reads a ureq result into a [`Reply`].
pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<Reply> {
    let mut resp = r?;
    let status = resp.status().as_u16();
    let mut raw = Vec::new();
    resp.body_mut().as_reader().take(MAX_BODY_BYTES).read_to_end(&mut raw)?;
    Ok(Reply { status, body: String::from_utf8_lossy(&raw).into_owned() })
}

/// GETs `url` with query parameters.
pub fn get(agent: &ureq::Agent, url: &str, params: &[(&str, &str)]) -> anyhow::Result<Reply> {
    let mut req = agent.get(url);
    for (k, v) in params {
        req = req.query(*k, *v);
    }
    reply(req.call())
}

/// POSTs an empty body to `url`.
pub fn post_empty(agent: &ureq::Agent, url: &str) -> anyhow::Result<Reply> {
    reply(agent.post(url).send_empty())
}
