//! The `openai` policy: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp's server,
//! hosted APIs) over blocking HTTP (`sandgym-http`).
//!
//! One request per decision (or per group of identical prompts when `n > 1`), with a timeout and retries
//! with exponential backoff on transport errors, timeouts, 408/409/425/429/5xx and malformed bodies
//! (`Retry-After` is honoured). A request that still fails is an error for its episode only (the row
//! records `error_kind = "policy"`), never for the run. The collector keeps
//! [`OpenAiConfig::concurrency`] episodes in flight, which bounds the requests open at once.
//!
//! The reply's structured `tool_calls` are used when the server parsed them (vLLM/SGLang with a tool
//! parser); otherwise its text goes through [`crate::chat::parse`] in the configured format, and a malformed
//! action becomes a format-error observation the model sees on its next turn. Requests carry the
//! conversation as [`crate::chat`] renders it: the OpenAI wire shape, or Hermes text (`tools_in_prompt`).

use std::time::{Duration, Instant};

use sandgym_abi::Action;
use sandgym_http::{Failure, JsonClient, RetryPolicy, truncate};
use serde_json::{Map, Value, json};

use super::{Decision, Policy, PolicyInput, Usage};
use crate::chat::{
    Format, action_from_json, fold_system_prompt, hermes_text_messages, openai_messages,
    parse_completion,
};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Settings of the `openai` policy. `Default` gives a local server at `http://127.0.0.1:8000/v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The API root, up to and including `/v1` (requests go to `{base_url}/chat/completions`).
    pub base_url: String,
    /// Model name sent in each request; empty asks the server's `/models` for its first model.
    pub model: String,
    /// Environment variable holding the API key (sent as a bearer token); unset or empty sends none,
    /// which local servers accept. The key itself is never stored in settings or rows.
    pub api_key_env: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Completions per request: episodes at the same prompt (a group's first turn) share one request
    /// with `n` up to this many choices. 1 sends one request per episode.
    pub n: u32,
    /// Base of the per-request `seed` (mixed with the episode's sampling seed and the turn, so a run is
    /// reproducible on servers that honour it); `None` sends no seed.
    pub seed: Option<u64>,
    /// Episodes in flight, hence requests open at once.
    pub concurrency: usize,
    /// Wall-clock limit of one request, connection included.
    pub timeout: Duration,
    /// Attempts after the first one for a request that fails in a retryable way.
    pub retries: u32,
    /// First backoff between attempts; it doubles after each failure (capped at 30 s).
    pub backoff: Duration,
    /// How to read the model's text when the server returns no structured tool calls.
    pub parser: Format,
    /// Send the env's tool schemas as `tools` (servers with a tool-calling chat template).
    pub send_tools: bool,
    /// Describe the tools in the system prompt in the Hermes format and render earlier tool calls and
    /// results as text (`<tool_call>`, `<tool_response>`), for servers whose chat template knows no tools
    /// (e.g. llama.cpp with a plain chat format). Implies not sending `tools`.
    pub tools_in_prompt: bool,
    /// Put the system prompt at the head of the first user message instead of a `system` message, for
    /// chat templates without a system role (Gemma's: llama.cpp's `gemma` format drops system messages).
    pub fold_system: bool,
    /// Extra top-level fields merged into every request body (e.g. `{"chat_template_kwargs": {...}}`
    /// for vLLM, `{"top_k": 20}`).
    pub extra_body: Option<Map<String, Value>>,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "http://127.0.0.1:8000/v1".to_string(),
            model: String::new(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            n: 1,
            seed: Some(0),
            concurrency: 8,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_secs(1),
            parser: Format::Auto,
            send_tools: true,
            tools_in_prompt: false,
            fold_system: false,
            extra_body: None,
        }
    }
}

impl OpenAiConfig {
    /// Settings from a JSON object whose keys are the field names (`timeout_s` and `backoff_s` in
    /// seconds, `parser` by name); absent keys keep their default, unknown keys are an error.
    pub fn from_json(value: &Value) -> Result<Self> {
        let map = value.as_object().ok_or_else(|| {
            invalid(format!(
                "openai settings must be a JSON object, got {value}"
            ))
        })?;
        let mut c = OpenAiConfig::default();
        let bad = |key: &str, want: &str, got: &Value| {
            invalid(format!("openai setting `{key}` must be {want}, got {got}"))
        };
        for (key, v) in map {
            let string = || {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(key, "a string", v))
            };
            let float = || {
                if v.is_null() {
                    Ok(None)
                } else {
                    v.as_f64()
                        .map(Some)
                        .ok_or_else(|| bad(key, "a number or null", v))
                }
            };
            let uint = || {
                v.as_u64()
                    .ok_or_else(|| bad(key, "a non-negative integer", v))
            };
            let small =
                || uint().and_then(|n| u32::try_from(n).map_err(|_| bad(key, "below 2^32", v)));
            let flag = || v.as_bool().ok_or_else(|| bad(key, "true or false", v));
            let secs = || {
                v.as_f64()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| bad(key, "a non-negative number of seconds", v))
            };
            match key.as_str() {
                "base_url" => c.base_url = string()?,
                "model" => {
                    c.model = if v.is_null() {
                        String::new()
                    } else {
                        string()?
                    }
                }
                "api_key_env" => c.api_key_env = string()?,
                "temperature" => c.temperature = float()?,
                "top_p" => c.top_p = float()?,
                "max_tokens" => c.max_tokens = if v.is_null() { None } else { Some(small()?) },
                "n" => c.n = small()?,
                "seed" => c.seed = if v.is_null() { None } else { Some(uint()?) },
                "concurrency" => c.concurrency = uint()? as usize,
                "timeout_s" => c.timeout = secs()?,
                "retries" => c.retries = small()?,
                "backoff_s" => c.backoff = secs()?,
                "parser" => c.parser = string()?.parse().map_err(invalid)?,
                "send_tools" => c.send_tools = flag()?,
                "tools_in_prompt" => c.tools_in_prompt = flag()?,
                "fold_system" => c.fold_system = flag()?,
                "extra_body" => {
                    c.extra_body = match v {
                        Value::Null => None,
                        Value::Object(m) => Some(m.clone()),
                        other => return Err(bad(key, "a JSON object or null", other)),
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "unknown openai setting `{other}` (known: base_url, model, api_key_env, \
                         temperature, top_p, max_tokens, n, seed, concurrency, timeout_s, retries, \
                         backoff_s, parser, send_tools, tools_in_prompt, fold_system, extra_body)"
                    )));
                }
            }
        }
        Ok(c)
    }
}

/// A chat-completions client acting as a policy.
pub struct OpenAiPolicy {
    config: OpenAiConfig,
    name: String,
    url: String,
    client: JsonClient,
}

impl std::fmt::Debug for OpenAiPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiPolicy")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("client", &self.client)
            .finish()
    }
}

/// One choice of a completion, with the usage attributed to it.
struct Choice {
    decision: Decision,
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl OpenAiPolicy {
    /// Checks the settings and, when no model is named, asks the server for its first model.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid(format!(
                "--base-url must start with http:// or https://, got {:?}",
                config.base_url
            )));
        }
        if config.concurrency == 0 {
            return Err(invalid(
                "the openai policy's concurrency must be at least 1".into(),
            ));
        }
        if config.n == 0 {
            return Err(invalid("n must be at least 1".into()));
        }
        if config.timeout.is_zero() {
            return Err(invalid("the request timeout must be positive".into()));
        }
        for (name, value) in [("temperature", config.temperature), ("top_p", config.top_p)] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(invalid(format!("{name} must be a non-negative number")));
            }
        }
        let api_key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty());
        let retry = RetryPolicy {
            retries: config.retries,
            backoff: config.backoff,
        };
        let mut policy = OpenAiPolicy {
            url: format!("{base}/chat/completions"),
            name: String::new(),
            client: JsonClient::new(config.timeout, api_key, retry),
            config,
        };
        if policy.config.model.trim().is_empty() {
            policy.config.model = policy.first_model(&base)?;
        }
        policy.name = format!("openai:{}", policy.config.model);
        Ok(policy)
    }

    /// The settings in use (with the model the server named, when none was given).
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn first_model(&self, base: &str) -> Result<String> {
        let url = format!("{base}/models");
        let body = self
            .client
            .with_retries(|| self.client.get(&url))
            .map_err(|e| {
                Error::Policy(format!("could not list the server's models ({url}): {e}"))
            })?;
        body.pointer("/data/0/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::Policy(format!(
                    "{url} lists no model; name one with --model (got {})",
                    truncate(&body.to_string(), 300)
                ))
            })
    }

    /// The request body for `input`, asking for `n` choices.
    pub fn request_body(&self, input: &PolicyInput<'_>, n: u32) -> Value {
        let c = &self.config;
        let tools_in_prompt = c.tools_in_prompt && !input.tools.is_empty();
        let mut messages = if tools_in_prompt {
            hermes_text_messages(input.messages, input.tools)
        } else {
            openai_messages(input.messages)
        };
        if c.fold_system {
            messages = fold_system_prompt(messages);
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(c.model));
        body.insert("messages".into(), Value::Array(messages));
        if c.send_tools && !tools_in_prompt && !input.tools.is_empty() {
            body.insert("tools".into(), Value::Array(input.tools.to_vec()));
        }
        if let Some(t) = c.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(p) = c.top_p {
            body.insert("top_p".into(), json!(p));
        }
        if let Some(m) = c.max_tokens {
            body.insert("max_tokens".into(), json!(m));
        }
        if n > 1 {
            body.insert("n".into(), json!(n));
        }
        if let Some(base) = c.seed {
            // 31 bits: every server takes it (llama.cpp seeds are 32-bit, some JSON stacks are signed).
            let seed = SplitMix64::for_stream(base ^ input.episode_seed, u64::from(input.turn))
                .next_u64()
                & 0x7fff_ffff;
            body.insert("seed".into(), json!(seed));
        }
        if let Some(extra) = &c.extra_body {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        Value::Object(body)
    }

    /// One request for `input` with `n` choices: exactly `n` decisions, or the reason it failed.
    fn complete(&self, input: &PolicyInput<'_>, n: u32) -> Result<Vec<Choice>> {
        let body = self.request_body(input, n).to_string();
        let started = Instant::now();
        let reply = self
            .client
            .with_retries(|| {
                let reply = self.client.post(&self.url, &body)?;
                // A body without the choices asked for is malformed: try again.
                match reply.get("choices").and_then(Value::as_array) {
                    Some(choices) if choices.len() >= n as usize => Ok(reply),
                    _ => Err(Failure::retry(format!(
                        "the server's reply has no {n} choices: {}",
                        truncate(&reply.to_string(), 300)
                    ))),
                }
            })
            .map_err(|e| Error::Policy(format!("request to {} failed: {e}", self.url)))?;
        let latency_s = started.elapsed().as_secs_f64();
        let usage = reply.get("usage");
        let count = |key: &str| {
            usage
                .and_then(|u| u.get(key))
                .and_then(Value::as_u64)
                .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
        };
        let (prompt, completion) = (count("prompt_tokens"), count("completion_tokens"));
        // vLLM's `return_token_ids` gives the context's ids once for all choices.
        let prompt_ids = token_ids(reply.get("prompt_token_ids"));
        let choices = reply["choices"].as_array().cloned().unwrap_or_default();
        Ok(choices
            .iter()
            .take(n as usize)
            .enumerate()
            .map(|(i, choice)| {
                // The server reports one total for all choices: split the completion tokens evenly.
                let share = completion / n + u32::from((i as u32) < completion % n);
                let mut decision = self.read_choice(choice, input.tools);
                decision.usage = Usage {
                    prompt_tokens: prompt,
                    completion_tokens: share,
                };
                decision.latency_s = latency_s;
                decision.prompt_ids = prompt_ids.clone();
                Choice { decision }
            })
            .collect())
    }

    /// A reply's choice → decision: structured tool calls when present, else the parsed text; with the
    /// generated token ids and log-probabilities the server returned.
    fn read_choice(&self, choice: &Value, tools: &[Value]) -> Decision {
        let mut decision = self.read_action(choice, tools);
        (decision.completion_ids, decision.completion_logprobs) = choice_tokens(choice);
        decision
    }

    fn read_action(&self, choice: &Value, tools: &[Value]) -> Decision {
        let message = choice.get("message").unwrap_or(&Value::Null);
        let content = match message.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .concat(),
            _ => String::new(),
        };
        if let Some(Value::Array(calls)) = message.get("tool_calls")
            && !calls.is_empty()
        {
            let raw = format!("{content}\n{}", Value::Array(calls.clone()));
            let action = match action_from_json(&json!({"content": content, "tool_calls": calls})) {
                Ok(action) => action,
                Err(error) => Action {
                    content: raw.trim().to_string(),
                    tool_calls: Vec::new(),
                    format_error: Some(error),
                },
            };
            return Decision {
                action,
                raw_output: raw.trim().to_string(),
                parser: Format::OpenAi.name().to_string(),
                ..Decision::default()
            };
        }
        let parsed = parse_completion(&content, self.config.parser, tools);
        Decision {
            action: parsed.action,
            raw_output: content,
            parser: parsed.parser.name().to_string(),
            ..Decision::default()
        }
    }
}

impl Policy for OpenAiPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        super::decide(self, input).map(|d| d.action)
    }

    /// One request per input, or per run of up to `n` inputs with the same request (same conversation,
    /// tools and seed), sent from up to `concurrency` threads.
    fn act_batch(&self, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
        // Group identical requests (a group's first turn) into chunks of at most n.
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        if self.config.n > 1 {
            let mut by_body: std::collections::HashMap<String, usize> = Default::default();
            for (i, input) in inputs.iter().enumerate() {
                let key = self.request_body(input, 1).to_string();
                match by_body.get(&key) {
                    Some(&c) if chunks[c].len() < self.config.n as usize => chunks[c].push(i),
                    _ => {
                        by_body.insert(key, chunks.len());
                        chunks.push(vec![i]);
                    }
                }
            }
        } else {
            chunks = (0..inputs.len()).map(|i| vec![i]).collect();
        }
        let mut results: Vec<Option<Result<Decision>>> = (0..inputs.len()).map(|_| None).collect();
        let run_chunk = |chunk: &Vec<usize>| -> Vec<(usize, Result<Decision>)> {
            match self.complete(&inputs[chunk[0]], chunk.len() as u32) {
                Ok(choices) => chunk
                    .iter()
                    .zip(choices)
                    .map(|(&i, c)| (i, Ok(c.decision)))
                    .collect(),
                Err(err) => chunk
                    .iter()
                    .map(|&i| (i, Err(Error::Policy(err.to_string()))))
                    .collect(),
            }
        };
        if chunks.len() == 1 {
            for (i, r) in run_chunk(&chunks[0]) {
                results[i] = Some(r);
            }
        } else {
            let workers = self.config.concurrency.min(chunks.len()).max(1);
            let next = std::sync::atomic::AtomicUsize::new(0);
            let done = std::sync::Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| {
                        loop {
                            let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(chunk) = chunks.get(c) else { break };
                            let out = run_chunk(chunk);
                            done.lock().unwrap_or_else(|e| e.into_inner()).extend(out);
                        }
                    });
                }
            });
            for (i, r) in done.into_inner().unwrap_or_else(|e| e.into_inner()) {
                results[i] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Policy("no reply for this input".into()))))
            .collect()
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.config.concurrency)
    }
}

/// The token ids (vLLM's `token_ids` with `return_token_ids`) and log-probabilities (the chat format's
/// `logprobs.content[].logprob`) of a choice; empty for what the server did not return.
fn choice_tokens(choice: &Value) -> (Vec<u32>, Vec<f64>) {
    let ids = token_ids(choice.get("token_ids"));
    let logprobs = choice
        .pointer("/logprobs/content")
        .and_then(Value::as_array)
        .map(|tokens| {
            tokens
                .iter()
                .filter_map(|token| token.get("logprob").and_then(Value::as_f64))
                .collect()
        })
        .unwrap_or_default();
    (ids, logprobs)
}

/// A JSON list of token ids; empty when absent or not a list of ids.
fn token_ids(value: Option<&Value>) -> Vec<u32> {
    value
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_u64().and_then(|id| u32::try_from(id).ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_and_logprobs_are_read_when_the_server_returns_them() {
        // vLLM with `return_token_ids` and `logprobs`; llama.cpp's server returns the logprobs only.
        let vllm = json!({
            "message": {"role": "assistant", "content": "hi"},
            "token_ids": [15, 7, 151645],
            "logprobs": {"content": [
                {"token": "h", "logprob": -0.5},
                {"token": "i", "logprob": -0.25},
                {"token": "<|im_end|>", "logprob": 0.0}
            ]}
        });
        assert_eq!(
            choice_tokens(&vllm),
            (vec![15, 7, 151_645], vec![-0.5, -0.25, 0.0])
        );
        let plain = json!({"message": {"role": "assistant", "content": "hi"}, "logprobs": null});
        assert_eq!(choice_tokens(&plain), (Vec::new(), Vec::new()));
    }
}
