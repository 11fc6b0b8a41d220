//! The policy options of `sandgym collect`: which policy plays, and the settings of the `openai` and
//! `replay` policies.

use std::path::PathBuf;
use std::time::Duration;

use sandgym_core::Error;
use sandgym_core::parse::Format;
use sandgym_core::policy::{OpenAiConfig, PolicySpec};
use serde_json::Value;

/// Options of the `openai` policy (an OpenAI-compatible chat-completions server) and the `replay` policy.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Policy options (openai, replay)")]
pub struct PolicyArgs {
    /// API root of an OpenAI-compatible server, up to `/v1` (vLLM, SGLang, llama.cpp, hosted APIs).
    #[arg(long, default_value = "http://127.0.0.1:8000/v1")]
    pub base_url: String,
    /// Model name; default: the first model the server lists at `/models`.
    #[arg(long)]
    pub model: Option<String>,
    /// Environment variable holding the API key (sent as a bearer token; unset sends none).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Sampling temperature (the server's default when absent).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling `top_p`.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Completion tokens per turn.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Completions per request: episodes at the same prompt (a group's first turn) share one request
    /// with up to this many choices.
    #[arg(long = "completions-per-request", default_value_t = 1)]
    pub n: u32,
    /// Base of each request's `seed` (mixed with the episode's sampling seed and the turn).
    #[arg(long, default_value_t = 0)]
    pub sampling_seed: u64,
    /// Send no `seed` (servers that reject it).
    #[arg(long)]
    pub no_sampling_seed: bool,
    /// Requests in flight at once (= episodes collected concurrently).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout_s: f64,
    /// Retries of a request after a transport error, timeout, 429 or 5xx (exponential backoff).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// First backoff between retries, in seconds (doubles each time).
    #[arg(long, default_value_t = 1.0)]
    pub backoff_s: f64,
    /// How to read the model's text: auto, hermes, openai, react, answer, python, text.
    #[arg(long, default_value = "auto")]
    pub parser: String,
    /// Describe the tools in the system prompt (Hermes format) and render tool calls and results as
    /// text, for servers whose chat template has no tools (e.g. llama.cpp with a plain chat format).
    #[arg(long)]
    pub tools_in_prompt: bool,
    /// Put the system prompt at the head of the first user message, for chat templates without a
    /// system role (llama.cpp's `gemma` format drops system messages).
    #[arg(long)]
    pub fold_system: bool,
    /// Do not send the env's tool schemas as `tools`.
    #[arg(long)]
    pub no_tools: bool,
    /// Extra JSON fields for every request body, e.g. '{"top_k": 20}'.
    #[arg(long)]
    pub extra_body: Option<String>,
    /// Trajectories (a Parquet file or directory) the `replay` policy plays back.
    #[arg(long)]
    pub replay: Option<PathBuf>,
}

fn seconds(name: &str, value: f64) -> Result<Duration, Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::InvalidArgument(format!(
            "--{name} must be a non-negative number of seconds, got {value}"
        )))
    }
}

impl PolicyArgs {
    /// The spec of policy `name` with these settings.
    pub fn spec(&self, name: &str) -> Result<PolicySpec, Error> {
        let parser: Format = self.parser.parse().map_err(Error::InvalidArgument)?;
        let extra_body = match &self.extra_body {
            None => None,
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => {
                    return Err(Error::InvalidArgument(
                        "--extra-body must be a JSON object".into(),
                    ));
                }
                Err(e) => {
                    return Err(Error::InvalidArgument(format!(
                        "--extra-body is not JSON: {e}"
                    )));
                }
            },
        };
        Ok(PolicySpec {
            name: name.to_string(),
            openai: OpenAiConfig {
                base_url: self.base_url.clone(),
                model: self.model.clone().unwrap_or_default(),
                api_key_env: self.api_key_env.clone(),
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_tokens,
                n: self.n,
                seed: (!self.no_sampling_seed).then_some(self.sampling_seed),
                concurrency: self.concurrency,
                timeout: seconds("timeout-s", self.timeout_s)?,
                retries: self.retries,
                backoff: seconds("backoff-s", self.backoff_s)?,
                parser,
                send_tools: !self.no_tools,
                tools_in_prompt: self.tools_in_prompt,
                fold_system: self.fold_system,
                extra_body,
            },
            replay_from: self.replay.clone(),
        })
    }
}
