//! The `openai` policy against a scripted HTTP server on a real loopback socket (successes, retries,
//! timeouts, 4xx/5xx, malformed bodies, `n > 1`), collection with it, and the `replay` policy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::parse::Format;
use sandgym_core::policy::{
    self, Decision, OpenAiConfig, OpenAiPolicy, Policy, PolicyInput, PolicySpec, ReplayPolicy,
};
use sandgym_core::{Message, Trajectory};
use serde_json::{Value, json};

/// One scripted reply.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
    headers: Vec<(String, String)>,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: body.to_string(),
        delay: Duration::ZERO,
        headers: Vec::new(),
    }
}

fn status(code: u16, body: &str) -> Reply {
    Reply {
        status: code,
        body: body.to_string(),
        delay: Duration::ZERO,
        headers: Vec::new(),
    }
}

/// A completion reply with `texts` as choices and some usage.
fn completion(texts: &[&str]) -> Value {
    json!({
        "id": "x", "object": "chat.completion",
        "choices": texts.iter().enumerate().map(|(i, t)| json!({
            "index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"
        })).collect::<Vec<_>>(),
        "usage": {"prompt_tokens": 17, "completion_tokens": 5 * texts.len(), "total_tokens": 99}
    })
}

/// A request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// A loopback HTTP server answering request i with `script[i]` (the last reply repeats), or with
/// `respond(body)` when given.
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Responder = Arc<dyn Fn(&Value, usize) -> Reply + Send + Sync>;

fn serve(responder: Responder) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            let responder = responder.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let mut headers = Vec::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                        if k == "content-length" {
                            length = v.parse().unwrap();
                        }
                        headers.push((k, v));
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        path,
                        headers,
                        body: body.clone(),
                    });
                    log.len() - 1
                };
                let reply = responder(&body, index);
                std::thread::sleep(reply.delay);
                let mut out = stream;
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(reply.body.as_bytes());
            });
        }
    });
    Server { url, seen }
}

fn scripted(script: Vec<Reply>) -> Server {
    serve(Arc::new(move |_, i| {
        script[i.min(script.len() - 1)].clone()
    }))
}

fn config(url: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: url.to_string(),
        model: "test-model".into(),
        timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(10),
        ..OpenAiConfig::default()
    }
}

fn tools() -> Vec<Value> {
    let p = json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]});
    vec![json!({"type": "function", "function": {"name": "submit", "parameters": p}})]
}

fn decide_one(policy: &dyn Policy, seed: u64) -> sandgym_core::Result<Decision> {
    let messages = vec![
        Message::system("sys"),
        Message::user("Numbers: 3 8. Target 24."),
    ];
    let tools = tools();
    policy::decide(
        policy,
        &PolicyInput {
            messages: &messages,
            tools: &tools,
            expert: None,
            admissible: &[],
            episode_seed: seed,
            turn: 0,
        },
    )
}

#[test]
fn completion_is_parsed_and_usage_recorded() {
    let server = scripted(vec![ok(completion(&[
        "Sure.\n<tool_call>{\"name\": \"submit\", \"arguments\": {\"expression\": \"3*8\"}}</tool_call>",
    ]))]);
    let policy = OpenAiPolicy::new(OpenAiConfig {
        temperature: Some(0.7),
        max_tokens: Some(64),
        api_key_env: "HOME".into(),
        ..config(&server.url)
    })
    .unwrap();
    assert_eq!(policy.name(), "openai:test-model");
    let d = decide_one(&policy, 5).unwrap();
    assert_eq!(d.parser, "hermes");
    assert_eq!(d.action.tool_calls[0].name, "submit");
    assert_eq!(d.action.content, "Sure.");
    assert!(d.raw_output.contains("<tool_call>"));
    assert_eq!((d.usage.prompt_tokens, d.usage.completion_tokens), (17, 5));
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    let body = &seen[0].body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["temperature"], 0.7);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["tools"][0]["function"]["name"], "submit");
    assert_eq!(body["messages"][1]["role"], "user");
    assert!(body.get("n").is_none());
    // The seed is reproducible per (episode, turn) and differs between episodes.
    let seed = body["seed"].as_u64().unwrap();
    decide_one(&policy, 5).unwrap();
    decide_one(&policy, 6).unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen[1].body["seed"].as_u64(), Some(seed));
    assert_ne!(seen[2].body["seed"].as_u64(), Some(seed));
    let auth = seen[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(
        auth,
        Some(format!("Bearer {}", std::env::var("HOME").unwrap()))
    );
}

#[test]
fn structured_tool_calls_from_the_server_are_used() {
    let server = scripted(vec![ok(json!({
        "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "abc", "type": "function", "function": {"name": "submit", "arguments": "{\"expression\": \"24\"}"}}
        ]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}
    }))]);
    let policy = OpenAiPolicy::new(config(&server.url)).unwrap();
    let d = decide_one(&policy, 0).unwrap();
    assert_eq!(d.parser, "openai");
    assert_eq!(d.action.tool_calls[0].id, "abc");
    assert_eq!(d.action.tool_calls[0].arguments, "{\"expression\": \"24\"}");
}

#[test]
fn transient_failures_are_retried() {
    let retry_after = Reply {
        headers: vec![("Retry-After".into(), "0".into())],
        ..status(429, "slow down")
    };
    let server = scripted(vec![
        status(500, "boom"),
        retry_after,
        ok(json!({"not": "a completion"})),
        ok(completion(&["plain text answer"])),
    ]);
    let policy = OpenAiPolicy::new(OpenAiConfig {
        retries: 3,
        ..config(&server.url)
    })
    .unwrap();
    let d = decide_one(&policy, 0).unwrap();
    assert_eq!(d.parser, "text");
    assert_eq!(d.action.content, "plain text answer");
    assert_eq!(server.seen.lock().unwrap().len(), 4);
}

#[test]
fn malformed_json_body_is_retried_then_fails() {
    let server = scripted(vec![Reply {
        body: "{\"choices\": [".into(),
        ..status(200, "")
    }]);
    let policy = OpenAiPolicy::new(config(&server.url)).unwrap();
    let err = decide_one(&policy, 0).unwrap_err();
    assert_eq!(err.kind(), "policy");
    let message = err.to_string();
    assert!(message.contains("not JSON"), "{message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(server.seen.lock().unwrap().len(), 3);
}

#[test]
fn client_errors_are_not_retried() {
    let server = scripted(vec![status(
        400,
        "{\"error\": \"context length exceeded\"}",
    )]);
    let policy = OpenAiPolicy::new(config(&server.url)).unwrap();
    let err = decide_one(&policy, 0).unwrap_err().to_string();
    assert!(
        err.contains("HTTP 400") && err.contains("context length"),
        "{err}"
    );
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[test]
fn timeouts_end_the_request_after_retries() {
    let server = scripted(vec![Reply {
        delay: Duration::from_secs(3),
        ..ok(completion(&["late"]))
    }]);
    let policy = OpenAiPolicy::new(OpenAiConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..config(&server.url)
    })
    .unwrap();
    let started = Instant::now();
    let err = decide_one(&policy, 0).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("after 2 attempts"), "{err}");
}

#[test]
fn unreachable_server_is_an_error_not_a_panic() {
    // Bind and drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policy = OpenAiPolicy::new(config(&format!("http://127.0.0.1:{port}/v1"))).unwrap();
    let err = decide_one(&policy, 0).unwrap_err();
    assert_eq!(err.kind(), "policy");
    // Without a model, building the policy asks the server, and says so when it cannot.
    let err = OpenAiPolicy::new(OpenAiConfig {
        model: String::new(),
        ..config(&format!("http://127.0.0.1:{port}/v1"))
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/models"), "{err}");
}

#[test]
fn model_is_discovered_and_settings_are_checked() {
    let server = serve(Arc::new(|_, _| {
        ok(json!({"data": [{"id": "served-model"}]}))
    }));
    let policy = OpenAiPolicy::new(OpenAiConfig {
        model: String::new(),
        ..config(&server.url)
    })
    .unwrap();
    assert_eq!(policy.name(), "openai:served-model");
    assert_eq!(server.seen.lock().unwrap()[0].path, "/v1/models");
    for bad in [
        OpenAiConfig {
            base_url: "localhost:8000".into(),
            ..config(&server.url)
        },
        OpenAiConfig {
            concurrency: 0,
            ..config(&server.url)
        },
        OpenAiConfig {
            temperature: Some(f64::NAN),
            ..config(&server.url)
        },
    ] {
        assert_eq!(
            OpenAiPolicy::new(bad).unwrap_err().kind(),
            "invalid_argument"
        );
    }
    let parsed = OpenAiConfig::from_json(&json!({"base_url": server.url, "model": "m",
        "timeout_s": 2.5, "parser": "react", "seed": null, "extra_body": {"top_k": 20}}))
    .unwrap();
    assert_eq!(parsed.timeout, Duration::from_millis(2500));
    assert_eq!(parsed.parser, Format::React);
    assert_eq!(parsed.seed, None);
    let folded = OpenAiPolicy::new(OpenAiConfig {
        fold_system: true,
        tools_in_prompt: true,
        ..config(&server.url)
    })
    .unwrap();
    let messages = vec![Message::system("Rules."), Message::user("Task.")];
    let tools = tools();
    let body = folded.request_body(
        &PolicyInput {
            messages: &messages,
            tools: &tools,
            expert: None,
            admissible: &[],
            episode_seed: 0,
            turn: 0,
        },
        1,
    );
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["role"], "user");
    let text = sent[0]["content"].as_str().unwrap();
    assert!(
        text.starts_with("Rules.\n\n# Tools") && text.ends_with("\n\nTask."),
        "{text}"
    );
    assert!(
        text.contains("<tools>") && text.contains("\"submit\""),
        "{text}"
    );
    assert!(
        body.get("tools").is_none(),
        "tools are in the prompt, not sent"
    );
    let err = OpenAiConfig::from_json(&json!({"temprature": 1}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown openai setting `temprature`"), "{err}");
}

#[test]
fn identical_prompts_share_a_request_with_n_choices() {
    let server = serve(Arc::new(|body, _| {
        let n = body.get("n").and_then(Value::as_u64).unwrap_or(1) as usize;
        let texts: Vec<String> = (0..n).map(|i| format!("choice {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        ok(completion(&refs))
    }));
    let policy = OpenAiPolicy::new(OpenAiConfig {
        n: 4,
        seed: None,
        ..config(&server.url)
    })
    .unwrap();
    let messages = vec![Message::system("sys"), Message::user("same")];
    let other = vec![Message::system("sys"), Message::user("different")];
    let input = |m: &'static [Message]| PolicyInput {
        messages: m,
        tools: &[],
        expert: None,
        admissible: &[],
        episode_seed: 0,
        turn: 0,
    };
    let same: &'static [Message] = Box::leak(messages.into_boxed_slice());
    let diff: &'static [Message] = Box::leak(other.into_boxed_slice());
    let out = policy.act_batch(&[input(same), input(same), input(diff), input(same)]);
    let texts: Vec<String> = out
        .iter()
        .map(|d| d.as_ref().unwrap().action.content.clone())
        .collect();
    assert_eq!(texts, ["choice 0", "choice 1", "choice 0", "choice 2"]);
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    // Usage: the prompt counts for each choice, the completion tokens are split among them.
    let d = out[0].as_ref().unwrap();
    assert_eq!((d.usage.prompt_tokens, d.usage.completion_tokens), (17, 5));
}

fn countdown_plan(n: u64) -> Vec<collect::EpisodeSpec> {
    collect::plan(&["countdown-v0".to_string()], n, 0, None)
}

fn collect_rows(
    policy: &dyn Policy,
    plan: &[collect::EpisodeSpec],
    max_turns: u32,
) -> Vec<Trajectory> {
    let rows = Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let options = CollectOptions {
        max_turns,
        ..CollectOptions::default()
    };
    collect::collect(plan, policy, &options, &sink, &|_| {}).unwrap();
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| a.episode_id.cmp(&b.episode_id));
    rows
}

/// Collection with the openai policy: format errors become observations and the episode goes on, a
/// request that fails ends only its episode, tokens are recorded per turn, and the policy's concurrency
/// keeps several requests in flight.
#[test]
fn collection_with_a_flaky_model_server() {
    let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
    let gauge = in_flight.clone();
    let server = serve(Arc::new(move |body, _| {
        {
            let mut g = gauge.lock().unwrap();
            g.0 += 1;
            g.1 = g.1.max(g.0);
        }
        std::thread::sleep(Duration::from_millis(150));
        gauge.lock().unwrap().0 -= 1;
        let task = body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let turn = body["messages"].as_array().map_or(0, |m| m.len());
        // Episodes whose prompt hashes odd get a broken call first; one task always fails.
        let odd = task.len() % 2 == 1;
        if task.contains("987654") {
            return status(503, "down");
        }
        if turn <= 2 && odd {
            ok(completion(&[
                "<tool_call>{\"name\": \"submit\", \"arguments\": {</tool_call>",
            ]))
        } else {
            ok(completion(&["Action: submit\nAction Input: 1+2"]))
        }
    }));
    let policy = OpenAiPolicy::new(OpenAiConfig {
        concurrency: 6,
        retries: 1,
        ..config(&server.url)
    })
    .unwrap();
    let mut plan = countdown_plan(12);
    // One episode plays a task whose text the server refuses.
    plan[11].task = Some(json!({"numbers": [1, 2], "target": 987654}));
    let rows = collect_rows(&policy, &plan, 3);
    assert_eq!(rows.len(), 12);
    let max_in_flight = in_flight.lock().unwrap().1;
    assert!(
        max_in_flight >= 4,
        "only {max_in_flight} requests were in flight at once"
    );
    let mut format_errors = 0;
    for row in &rows {
        if row.error_kind.is_some() {
            continue;
        }
        assert_eq!(row.policy, "openai:test-model");
        assert_eq!(row.policy_turns.len() as u32, row.num_turns, "{row:?}");
        assert!(row.terminated, "submit ends the game");
        assert_eq!(
            row.prompt_tokens,
            17 * u64::from(row.num_turns),
            "prompt tokens are summed over turns"
        );
        assert_eq!(row.completion_tokens, 5 * u64::from(row.num_turns));
        for (i, turn) in row.policy_turns.iter().enumerate() {
            if turn.format_error.is_some() {
                format_errors += 1;
                assert_eq!(turn.parser, "hermes");
                // The env answered the broken call with a format-error observation, and the episode
                // went on to the next turn.
                let answer = row
                    .messages
                    .iter()
                    .filter(|m| m.role == sandgym_core::Role::User)
                    .nth(1 + i)
                    .unwrap();
                assert!(answer.content.starts_with("Format error"), "{answer:?}");
                assert!(row.num_turns > i as u32 + 1);
            } else {
                assert_eq!(turn.parser, "react");
            }
        }
    }
    assert!(
        format_errors > 0,
        "some episodes must start with a broken call"
    );
    // The task the server refuses: an error row with the request's failure, and the rest went on.
    let failed: Vec<&Trajectory> = rows.iter().filter(|r| r.error_kind.is_some()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].error_kind.as_deref(), Some("policy"));
    assert!(
        failed[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("HTTP 503")
    );
}

/// Replaying an expert run reproduces it, through the store; a drifted conversation is an error row.
#[test]
fn replay_reproduces_recorded_episodes() {
    let dir = tempfile::tempdir().unwrap();
    let plan = collect::plan(
        &["countdown-v0".to_string(), "parity-v0".to_string()],
        4,
        0,
        None,
    );
    collect::collect_to_dir(
        &plan,
        &policy::RandomPolicy::default(),
        &CollectOptions {
            max_turns: 4,
            ..CollectOptions::default()
        },
        dir.path(),
        sandgym_core::store::WriterOptions::default(),
        &|_| {},
    )
    .unwrap();
    let recorded = sandgym_core::store::read_dir_or_file(dir.path()).unwrap();
    let replay = policy::build(&PolicySpec {
        name: "replay".into(),
        replay_from: Some(dir.path().to_path_buf()),
        ..PolicySpec::default()
    })
    .unwrap();
    let rows = collect_rows(replay.as_ref(), &plan, 4);
    assert_eq!(rows.len(), recorded.len());
    for row in &rows {
        let original = recorded
            .iter()
            .find(|r| r.episode_id == row.episode_id)
            .unwrap();
        assert_eq!(row.messages, original.messages, "{}", row.episode_id);
        assert_eq!(row.total_reward, original.total_reward);
        assert_eq!(row.policy, "replay");
    }
    // Another seed plays other tasks: nothing recorded starts like them.
    let other = ReplayPolicy::from_trajectories(recorded);
    let unseen = collect_rows(
        &other,
        &collect::plan(&["countdown-v0".to_string()], 1, 999, None),
        4,
    );
    assert_eq!(unseen[0].error_kind.as_deref(), Some("policy"));
    assert!(
        unseen[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("no recorded episode"),
        "{:?}",
        unseen[0].error_message
    );
    // A missing path is a clear error.
    let err = policy::build(&PolicySpec {
        name: "replay".into(),
        ..PolicySpec::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--replay"), "{err}");
}

/// The early-experience `policy` sampler over an `openai` policy: one policy per temperature, each
/// request sampled at its temperature, the model's proposals kept when valid and the expert's dropped.
#[test]
fn early_experience_policy_sampler_asks_the_endpoint_at_each_temperature() {
    use sandgym_core::early::Sampler;
    use sandgym_core::early::samplers::{PolicySampler, SampleContext};
    let server = serve(Arc::new(|body: &Value, _| {
        // Propose the expert's call at the low temperature and another call at the high one.
        let text = if body["temperature"].as_f64() == Some(0.25) {
            r#"<tool_call>{"name": "submit", "arguments": {"expression": "3*8"}}</tool_call>"#
        } else {
            r#"<tool_call>{"name": "submit", "arguments": {"expression": "8*3"}}</tool_call>"#
        };
        ok(completion(&[text]))
    }));
    let spec = PolicySpec {
        name: "openai".into(),
        openai: config(&server.url),
        ..PolicySpec::default()
    };
    let sampler = PolicySampler::from_spec(2, &spec, &[0.25, 0.75]).unwrap();
    let messages = vec![
        Message::system("sys"),
        Message::user("Numbers: 3 8. Target 24."),
    ];
    let tools = tools();
    let expert = sandgym_core::Action::tool("submit", &json!({"expression": "3*8"}));
    let out = sampler
        .sample(&SampleContext {
            messages: &messages,
            tools: &tools,
            expert: &expert,
            admissible: &[],
            seed: 7,
            step: 0,
            memo: None,
        })
        .unwrap();
    let temperatures: Vec<f64> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|seen| seen.body["temperature"].as_f64())
        .collect();
    assert!(
        temperatures.contains(&0.25) && temperatures.contains(&0.75),
        "{temperatures:?}"
    );
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|a| a.tool_calls[0].arguments != expert.tool_calls[0].arguments)
    );
    assert!(
        out.iter()
            .any(|a| a.tool_calls[0].arguments.contains("8*3")),
        "{out:?}"
    );
}

/// A byte-level "tokenizer" with a chat template, as a vLLM-like server applies it: each message is
/// a role token, its content's bytes and an end-of-turn token; the prompt ends with the assistant's role
/// token (the generation prompt). `strip` makes the template trim the content it renders, as templates
/// that rewrite past turns do.
const END_OF_TURN: u32 = 300;
fn role_token(role: &str) -> u32 {
    match role {
        "system" => 301,
        "user" => 302,
        "assistant" => 303,
        _ => 304,
    }
}
fn render_ids(messages: &[Value], strip: bool) -> Vec<u32> {
    let mut ids = Vec::new();
    for m in messages {
        ids.push(role_token(m["role"].as_str().unwrap_or("")));
        let content = m["content"].as_str().unwrap_or("");
        let content = if strip { content.trim() } else { content };
        ids.extend(content.bytes().map(u32::from));
        ids.push(END_OF_TURN);
    }
    ids.push(role_token("assistant"));
    ids
}

/// Collection against a server that returns token ids (vLLM's `return_token_ids`): each turn records
/// its context's and its completion's ids, and the episode is one sequence whose model tokens are the
/// completions and whose env tokens are what the template added, exported as TRL's token columns. When
/// the server's template re-renders the model's text differently, the export says where it diverged.
#[test]
fn token_ids_from_the_server_make_one_sequence_per_episode() {
    for strip in [false, true] {
        let server = serve(Arc::new(move |body, _| {
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            // Turn 1: a broken call with a trailing space (a format error; the episode goes on), then
            // a valid answer.
            let text = if messages.len() <= 2 {
                "<tool_call>{\"name\": \"submit\"</tool_call> "
            } else {
                "Action: submit\nAction Input: 1+2"
            };
            let mut reply = completion(&[text]);
            reply["prompt_token_ids"] = json!(render_ids(&messages, strip));
            let mut ids: Vec<u32> = text.bytes().map(u32::from).collect();
            ids.push(END_OF_TURN);
            reply["choices"][0]["token_ids"] = json!(ids);
            reply["choices"][0]["logprobs"] = json!({"content": ids.iter().map(|_| json!({"logprob": -0.5})).collect::<Vec<_>>()});
            ok(reply)
        }));
        let policy = OpenAiPolicy::new(config(&server.url)).unwrap();
        let rows = collect_rows(&policy, &countdown_plan(2), 3);
        for row in &rows {
            assert_eq!(row.error_kind, None, "{row:?}");
            assert_eq!(row.policy_turns.len(), 2);
            let first = &row.policy_turns[0];
            assert_eq!(first.prompt_ids.last(), Some(&role_token("assistant")));
            assert_eq!(first.completion_ids.last(), Some(&END_OF_TURN));
            let tokens = sandgym_core::store::EpisodeTokens::from_turns(&row.policy_turns);
            if strip {
                // The trimmed space is where the re-rendered context leaves the model's tokens.
                let position = first.prompt_ids.len() + first.completion_ids.len() - 2;
                assert!(
                    matches!(tokens, Err(sandgym_core::store::TokenGap::Drift { turn: 1, position: p, .. }) if p == position),
                    "{tokens:?}"
                );
                continue;
            }
            let tokens = tokens.unwrap();
            assert_eq!(tokens.prompt_ids, first.prompt_ids);
            let model: Vec<u32> = tokens
                .response_ids
                .iter()
                .zip(&tokens.response_mask)
                .filter(|(_, m)| **m == 1)
                .map(|(id, _)| *id)
                .collect();
            let completions: Vec<u32> = row
                .policy_turns
                .iter()
                .flat_map(|t| t.completion_ids.clone())
                .collect();
            assert_eq!(model, completions);
            // The env tokens are the format-error observation the env answered turn 1 with.
            let env: Vec<u8> = tokens
                .response_ids
                .iter()
                .zip(&tokens.response_mask)
                .filter(|(id, m)| **m == 0 && **id < 256)
                .map(|(id, _)| *id as u8)
                .collect();
            assert!(
                String::from_utf8(env).unwrap().starts_with("Format error"),
                "{tokens:?}"
            );
            let logprobs = tokens.response_logprobs.unwrap();
            for (lp, mask) in logprobs.iter().zip(&tokens.response_mask) {
                assert_eq!(*lp, if *mask == 1 { -0.5 } else { 0.0 });
            }
        }
        // The export writes the sequence in TRL's names, or leaves the episode out and says why.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tokens.jsonl");
        let options = sandgym_core::export::ExportOptions {
            format: sandgym_core::export::Format::TrlTokens,
            ..Default::default()
        };
        let summary = sandgym_core::export::export(rows.clone(), &options, &out).unwrap();
        if strip {
            assert_eq!((summary.rows_out, summary.dropped_without_tokens), (0, 2));
            let gap = summary.first_token_gap.unwrap();
            assert!(gap.contains("turn 1's prompt does not extend"), "{gap}");
            continue;
        }
        assert_eq!((summary.rows_out, summary.dropped_without_tokens), (2, 0));
        let text = std::fs::read_to_string(&out).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let want = sandgym_core::store::EpisodeTokens::from_turns(&rows[0].policy_turns).unwrap();
        assert_eq!(first["prompt_ids"], json!(want.prompt_ids));
        assert_eq!(first["completion_ids"], json!(want.response_ids));
        assert_eq!(first["env_mask"], json!(want.response_mask));
        assert_eq!(first["episode_id"], json!(rows[0].episode_id));
        assert_eq!(first["reward"], json!(rows[0].total_reward));
    }
}
