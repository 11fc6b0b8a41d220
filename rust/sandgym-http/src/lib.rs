//! sandgym's HTTP: a blocking JSON client for model servers (OpenAI-compatible endpoints: vLLM, SGLang,
//! llama.cpp's server, hosted APIs), over `ureq` with rustls for `https`. It knows HTTP and JSON, nothing
//! of chats or policies.
//!
//! Every request has a global timeout and an optional bearer key. [`JsonClient::with_retries`] retries an
//! attempt with exponential backoff (capped at 30 s a wait, or the server's `Retry-After` up to 60 s) on
//! what may pass: transport errors, timeouts, 408/409/425/429/5xx, and bodies that are not JSON.

use std::time::Duration;

use serde_json::Value;

/// Why one attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub retryable: bool,
    /// The wait the server asked for (`Retry-After`, in seconds).
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure worth another attempt.
    pub fn retry(message: String) -> Self {
        Failure {
            message,
            retryable: true,
            retry_after: None,
        }
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first wait; each later one doubles, up to 30 s.
    pub backoff: Duration,
}

/// A blocking JSON-over-HTTP client.
pub struct JsonClient {
    agent: ureq::Agent,
    api_key: Option<String>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for JsonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonClient")
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("retry", &self.retry)
            .finish()
    }
}

impl JsonClient {
    /// A client whose every request ends within `timeout`, sending `api_key` (if any) as a bearer token.
    pub fn new(timeout: Duration, api_key: Option<String>, retry: RetryPolicy) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        JsonClient {
            agent,
            api_key,
            retry,
        }
    }

    /// One `GET`, its JSON body on 2xx.
    pub fn get(&self, url: &str) -> Result<Value, Failure> {
        let mut request = self.agent.get(url);
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        read_reply(request.call())
    }

    /// One `POST` of a JSON body, the reply's JSON body on 2xx.
    pub fn post(&self, url: &str, body: &str) -> Result<Value, Failure> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        read_reply(request.send(body))
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of retries; the error is the last
    /// failure's message, with the number of attempts when there were several.
    pub fn with_retries(
        &self,
        mut attempt: impl FnMut() -> Result<Value, Failure>,
    ) -> Result<Value, String> {
        let mut backoff = self.retry.backoff;
        let mut tries = 0u32;
        loop {
            tries += 1;
            match attempt() {
                Ok(value) => return Ok(value),
                Err(failure) if failure.retryable && tries <= self.retry.retries => {
                    let wait = failure
                        .retry_after
                        .unwrap_or(backoff)
                        .min(Duration::from_secs(60));
                    std::thread::sleep(wait);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(failure) => {
                    return Err(if tries > 1 {
                        format!("{} (after {tries} attempts)", failure.message)
                    } else {
                        failure.message
                    });
                }
            }
        }
    }
}

/// Reads an HTTP reply: JSON on 2xx, otherwise a failure that says whether to retry.
fn read_reply(
    reply: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, Failure> {
    let mut response = match reply {
        Ok(response) => response,
        Err(err) => {
            let retryable = !matches!(err, ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl);
            return Err(Failure {
                message: format!("transport error: {err}"),
                retryable,
                retry_after: None,
            });
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let text = match response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
    {
        Ok(text) => text,
        Err(err) => {
            return Err(Failure::retry(format!(
                "HTTP {status}: could not read the body: {err}"
            )));
        }
    };
    if !(200..300).contains(&status) {
        return Err(Failure {
            message: format!("HTTP {status}: {}", truncate(&text, 500)),
            retryable: matches!(status, 408 | 409 | 425 | 429) || status >= 500,
            retry_after,
        });
    }
    serde_json::from_str(&text).map_err(|e| {
        Failure::retry(format!(
            "HTTP {status} with a body that is not JSON ({e}): {}",
            truncate(&text, 300)
        ))
    })
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("héllo", 3), "hé…");
    }
}
