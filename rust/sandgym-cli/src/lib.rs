//! The `sandgym` command line, as a library: `main(argv)` parses with clap and runs one command.
//! The cargo binary and the Python console script (through `sandgym._core.cli_main`) both call it.
//! Progress and diagnostics go to stderr; stdout carries only results (tables, summaries, JSON).

mod early;
mod export;
mod policy_args;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use sandgym_core::collect::{self, CollectConfig, CollectSummary, RunEvent};
use sandgym_core::policy::Policy;
use sandgym_core::store::{self, WriteSummary};
use sandgym_core::{Error, Role, Trajectory, policy, registry};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "sandgym",
    version,
    about = "Sandboxed, forkable wasm environments for training LLM agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the bundled environments and their tools.
    Envs {
        /// Print the specs as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Collect trajectories into Parquet.
    Collect(Box<CollectArgs>),
    /// Early-experience data: branch expert states with alternative actions on forks; write the branches
    /// table and the expert, world-model and self-reflection-prompt datasets.
    EarlyExperience(Box<early::EarlyArgs>),
    /// Build self-reflection SFT rows from reflection prompts and the reflections a model wrote.
    ReflectionSft(Box<early::ReflectionArgs>),
    /// Write a trainer dataset (TRL SFT/GRPO/DPO, verl RL/SFT, SkyRL, Early Experience) from
    /// trajectories, optionally recomputing rewards and advantages.
    Export(Box<export::ExportArgs>),
    /// Show the schema, counts and one trajectory of a Parquet file or output directory.
    Inspect {
        /// A `.parquet` file or a directory of them.
        path: PathBuf,
        /// Which row to render (default: the first).
        #[arg(long, default_value_t = 0)]
        row: usize,
    },
}

#[derive(Debug, clap::Args)]
struct CollectArgs {
    /// Env id (`countdown-v0`) or path to a `.wasm`; repeat for several. Default: every bundled env.
    #[arg(long = "env")]
    envs: Vec<String>,
    /// Episodes per env.
    #[arg(long, short = 'n', default_value_t = 100)]
    episodes: u64,
    /// Seed of the first episode; episode i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `expert`, `random`, `openai` (an OpenAI-compatible server: see --base-url and the policy
    /// options) or `replay` (the actions of earlier trajectories: --replay PATH).
    #[arg(long, default_value = "expert")]
    policy: String,
    /// Policy that plays the simulated user when the env asks for user turns (tau envs with
    /// `--config '{"mode": "user"}'`): `expert` (the env's scripted user), `random`, or `openai`.
    #[arg(long)]
    user_policy: Option<String>,
    /// Turns after which an episode is truncated.
    #[arg(long, default_value_t = 64)]
    max_turns: u32,
    /// Output directory for the Parquet part files.
    #[arg(long, short = 'o', default_value = "sandgym-out")]
    out: PathBuf,
    /// Tasks to play instead of generated ones: a JSONL file (one task per line) or a JSON array
    /// (e.g. tau2's tasks.json).
    #[arg(long)]
    tasks: Option<PathBuf>,
    /// Play only the tasks of this split (needs --split-file).
    #[arg(long, requires = "split_file")]
    split: Option<String>,
    /// JSON object mapping split names to task ids (e.g. tau2's split_tasks.json).
    #[arg(long, requires_all = ["split", "tasks"])]
    split_file: Option<PathBuf>,
    /// Env configuration as a JSON object, e.g. '{"d": 16}'. `{"$path": "FILE_OR_DIR"}` anywhere in it is
    /// replaced by the file's JSON (or a directory's *.json files by name).
    #[arg(long)]
    config: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Fuel (≈ wasm instructions) per guest call.
    #[arg(long)]
    fuel: Option<u64>,
    /// Guest memory cap in MiB.
    #[arg(long)]
    memory_mb: Option<usize>,
    /// Wall-clock deadline per guest call, in seconds.
    #[arg(long)]
    deadline_s: Option<f64>,
    /// Skip episodes whose rows are already in --out (continue a run that was killed; same arguments).
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    policy_args: policy_args::PolicyArgs,
    /// Markovian thinking around `--policy openai`: every model turn is reasoned in chunks over the
    /// server's `/v1/completions` with token-id prompts, e.g. `C=8192,m=4096,I=5,keep_head=100`
    /// (`carry=progressive` for the head+tail trimmer; `I=1,m=0` is the LongCoT baseline). Each chunk's
    /// ids and log-probabilities land in `policy_turns[].chunks`. Needs the console script of the Python
    /// package, where the wrapper lives.
    #[arg(
        long,
        value_name = "KNOBS",
        help_heading = "Policy options (openai, replay)"
    )]
    delethink: Option<String>,
    /// The tokenizer `--delethink` renders and decodes with: a Hugging Face `tokenizer.json`, its folder
    /// or a hub id. Default: the server's own `/tokenize` and `/detokenize` (llama.cpp, vLLM).
    #[arg(
        long,
        requires = "delethink",
        help_heading = "Policy options (openai, replay)"
    )]
    tokenizer: Option<String>,
    /// Rollouts per task: each planned episode becomes a group of this many episodes on the same task
    /// and seed, sampled with different seeds; advantages (GRPO by default) are computed per group.
    #[arg(long, default_value_t = 1)]
    group_size: u32,
    #[command(flatten)]
    advantage: export::AdvantageArgs,
    /// Per-prompt pass-rate history (JSON, created if missing): prompts at or above --drop-pass-rate
    /// are not played, and this run's outcomes are added to it.
    #[arg(long)]
    pass_rates: Option<PathBuf>,
    /// Pass rate at or above which a prompt is dropped (ScaleRL: 0.9).
    #[arg(long, default_value_t = sandgym_core::advantage::DEFAULT_DROP_PASS_RATE)]
    drop_pass_rate: f64,
}

/// Policies the host process supplies: the ones whose code is not in Rust.
#[derive(Default)]
pub struct Hooks {
    /// Builds the `--delethink` policy. The Python console script sets it (the wrapper is
    /// `sandgym.delethink`); the bare cargo binary has none and refuses the flag.
    #[allow(clippy::type_complexity)]
    pub delethink: Option<Box<dyn Fn(&DelethinkRequest) -> Result<Arc<dyn Policy>, Error> + Sync>>,
}

/// What `--delethink` asks for: the knobs, the tokenizer, and the `openai` policy's server settings
/// (endpoint, model, API key variable, temperature, timeout, parser, concurrency) that it wraps.
#[derive(Debug, Clone)]
pub struct DelethinkRequest {
    /// The knobs as given (`C=...,m=...,I=...,keep_head=...,carry=...`).
    pub knobs: String,
    /// `--tokenizer`, if given.
    pub tokenizer: Option<String>,
    /// The `openai` policy's settings.
    pub openai: policy::OpenAiConfig,
}

/// Runs the CLI with `args` (including the program name) and returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    main_with(args, &Hooks::default())
}

/// [`main`] with the policies a host process adds.
pub fn main_with(args: Vec<String>, hooks: &Hooks) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Envs { json } => envs(json),
        Command::Collect(args) => run_collect(*args, hooks),
        Command::EarlyExperience(args) => early::run_early(*args),
        Command::ReflectionSft(args) => early::run_reflection(*args),
        Command::Export(args) => export::run_export(*args),
        Command::Inspect { path, row } => inspect(&path, row),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

fn envs(json: bool) -> Result<(), Error> {
    let specs = registry::list()?;
    let mut out = std::io::stdout().lock();
    if json {
        let value: Vec<Value> = specs
            .iter()
            .map(|s| serde_json::json!({"id": s.id, "info": s.info}))
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).expect("json")
        );
        return Ok(());
    }
    for spec in specs {
        let _ = writeln!(out, "{}  {}", spec.id, spec.info.description);
        for tool in &spec.info.tools {
            let function = tool.get("function").unwrap_or(tool);
            let name = function.get("name").and_then(Value::as_str).unwrap_or("?");
            let params: Vec<&str> = function
                .pointer("/parameters/properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let description = function
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let _ = writeln!(out, "    {name}({})  {description}", params.join(", "));
        }
        let caps = &spec.info.capabilities;
        let _ = writeln!(
            out,
            "    expert: {}  admissible actions: {}  generates tasks: {}",
            yes(caps.expert),
            yes(caps.actions),
            yes(caps.generates_tasks)
        );
    }
    Ok(())
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

impl CollectArgs {
    /// The run these arguments describe, as the core's one config.
    fn config(&self) -> Result<CollectConfig, Error> {
        let config = match &self.config {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::InvalidArgument(format!("--config is not JSON: {e}")))?,
            None => Value::Null,
        };
        let advantage = &self.advantage;
        Ok(CollectConfig {
            envs: self.envs.clone(),
            episodes: self.episodes,
            seed: self.seed,
            max_turns: self.max_turns,
            tasks: None,
            tasks_file: self.tasks.clone(),
            split: self.split.clone(),
            split_file: self.split_file.clone(),
            config,
            fuel: self.fuel,
            memory_mb: self.memory_mb,
            deadline_s: self.deadline_s,
            threads: self.threads,
            run_id: None,
            resume: self.resume,
            out_dir: Some(self.out.clone()),
            group_size: self.group_size,
            advantage: advantage.advantage.clone(),
            reward: advantage.reward.clone(),
            overlong: advantage
                .overlong_max
                .map(|max| (max, advantage.overlong_buffer, advantage.overlong_penalty)),
            pass_rates: self.pass_rates.clone(),
            drop_pass_rate: self.drop_pass_rate,
        })
    }
}

/// The policy `--delethink` wraps around the `openai` one, from the host's hook.
fn delethink_policy(
    args: &CollectArgs,
    knobs: &str,
    hooks: &Hooks,
) -> Result<Arc<dyn Policy>, Error> {
    if args.policy != "openai" {
        return Err(Error::InvalidArgument(format!(
            "--delethink wraps `--policy openai` (a server with /v1/completions), not `{}`",
            args.policy
        )));
    }
    let build = hooks.delethink.as_ref().ok_or_else(|| {
        Error::InvalidArgument(
            "--delethink runs the Delethink wrapper of the Python package: use the `sandgym` command \
             that `pip install sandgym` installs"
                .into(),
        )
    })?;
    build(&DelethinkRequest {
        knobs: knobs.to_string(),
        tokenizer: args.tokenizer.clone(),
        openai: args.policy_args.spec("openai")?.openai,
    })
}

fn run_collect(args: CollectArgs, hooks: &Hooks) -> Result<(), Error> {
    let config = args.config()?;
    let policy = match &args.delethink {
        Some(knobs) => delethink_policy(&args, knobs, hooks)?,
        None => policy::build(&args.policy_args.spec(&args.policy)?)?,
    };
    let user_policy = match &args.user_policy {
        Some(name) => Some(policy::build(&args.policy_args.spec(name)?)?),
        None => None,
    };
    let progress = Progress::new(!args.quiet && std::io::stderr().is_terminal());
    let events = |event: RunEvent| match event {
        RunEvent::Filtered(filter) => eprintln!(
            "pass-rate filter: {} prompts dropped (pass rate >= {}), {} kept",
            filter.dropped, config.drop_pass_rate, filter.kept
        ),
        RunEvent::Resumed(skipped) => eprintln!(
            "resuming: {skipped} episodes already in {}",
            args.out.display()
        ),
        RunEvent::Started(total) => progress.start(total),
        RunEvent::Finished(done) => progress.update(done),
    };
    let report = collect::run(&config, policy.as_ref(), user_policy, &events)?;
    progress.finish();
    let written = report.written.unwrap_or_default();
    print_summary(&report.env_ids, &report.run_id, &report.summary, &written);
    if let (Some(prompts), Some(path)) = (report.pass_rate_prompts, &config.pass_rates) {
        println!("pass rates of {prompts} prompts in {}", path.display());
    }
    Ok(())
}

fn print_summary(
    env_ids: &[String],
    run_id: &str,
    summary: &CollectSummary,
    written: &WriteSummary,
) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {run_id}: {} envs ({})",
        env_ids.len(),
        env_ids.join(", ")
    );
    let _ = writeln!(
        out,
        "episodes: {}  success rate: {:.3}  errors: {}  mean reward: {:.3}",
        summary.episodes,
        summary.success_rate(),
        summary.errors,
        if summary.episodes > 0 {
            summary.total_reward / summary.episodes as f64
        } else {
            0.0
        }
    );
    let _ = writeln!(
        out,
        "steps: {}  wall time: {:.2} s  steps/s: {:.0}",
        summary.steps,
        summary.wall_time_s,
        summary.steps_per_second()
    );
    for file in &written.files {
        let _ = writeln!(out, "wrote {}", file.display());
    }
    let _ = writeln!(out, "rows: {}  bytes: {}", written.rows, written.bytes);
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
struct Progress {
    total: AtomicUsize,
    enabled: bool,
    started: Instant,
    last_draw: Mutex<Instant>,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            total: AtomicUsize::new(0),
            enabled,
            started: now,
            last_draw: Mutex::new(now - Duration::from_secs(1)),
        }
    }

    /// Sets the number of episodes the bar counts up to.
    fn start(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn update(&self, done: usize) {
        if !self.enabled {
            return;
        }
        let total = self.total.load(Ordering::Relaxed);
        let mut last = self.last_draw.lock().expect("progress");
        if last.elapsed() < Duration::from_millis(100) && done < total {
            return;
        }
        *last = Instant::now();
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r[{}{}] {done}/{} episodes  {rate:.0}/s ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            total
        );
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

fn inspect(path: &Path, row: usize) -> Result<(), Error> {
    let rows = store::read_dir_or_file(path).map_err(Error::storage)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}: {} episodes", path.display(), rows.len());
    let _ = writeln!(out, "\nschema:");
    for field in store::schema().fields() {
        let _ = writeln!(
            out,
            "  {:<16} {}{}",
            field.name(),
            store::type_name(field.data_type()),
            if field.is_nullable() {
                " (nullable)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, "\ncounts:");
    let mut by_env: std::collections::BTreeMap<(&str, &str), (u64, u64, f64)> = Default::default();
    let mut by_error: std::collections::BTreeMap<&str, u64> = Default::default();
    for traj in &rows {
        let entry = by_env
            .entry((traj.env_id.as_str(), traj.policy.as_str()))
            .or_default();
        entry.0 += 1;
        entry.1 += u64::from(traj.success);
        entry.2 += traj.total_reward;
        if let Some(kind) = &traj.error_kind {
            *by_error.entry(kind.as_str()).or_default() += 1;
        }
    }
    for ((env, policy), (n, ok, reward)) in &by_env {
        let _ = writeln!(
            out,
            "  {env} [{policy}]: {n} episodes, success rate {:.3}, mean reward {:.3}",
            *ok as f64 / *n as f64,
            reward / *n as f64
        );
    }
    for (kind, n) in &by_error {
        let _ = writeln!(out, "  error {kind}: {n}");
    }
    if let Some(traj) = rows.get(row) {
        let _ = writeln!(out, "\nrow {row}:");
        let _ = write!(out, "{}", render(traj));
    } else if !rows.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "--row {row}: there are only {} rows",
            rows.len()
        )));
    }
    Ok(())
}

/// Renders one trajectory as readable text.
pub fn render(traj: &Trajectory) -> String {
    let mut text = format!(
        "episode {} (env {}, task {}, seed {}, policy {})\n",
        traj.episode_id, traj.env_id, traj.task_id, traj.seed, traj.policy
    );
    if let Some(user_policy) = &traj.user_policy {
        text.push_str(&format!("user policy {user_policy}\n"));
    }
    for (i, message) in traj.messages.iter().enumerate() {
        let mut role = message.role.as_str().to_uppercase();
        if traj.user_turns.contains(&(i as u32)) {
            role.push_str(" (user policy)");
        }
        match message.role {
            Role::Tool => text.push_str(&format!(
                "--- {role} ({}) ---\n{}\n",
                message.name.as_deref().unwrap_or("?"),
                message.content
            )),
            _ => {
                text.push_str(&format!("--- {role} ---\n"));
                if !message.content.is_empty() {
                    text.push_str(&message.content);
                    text.push('\n');
                }
                for call in &message.tool_calls {
                    text.push_str(&format!(
                        "[call {}] {}({})\n",
                        call.id, call.name, call.arguments
                    ));
                }
            }
        }
    }
    text.push_str(&format!(
        "=== reward {:.3} (turns {:?})  success {}  terminated {}  truncated {}  turns {}  tool calls {}  tool errors {}\n",
        traj.total_reward,
        traj.turn_rewards,
        traj.success,
        traj.terminated,
        traj.truncated,
        traj.num_turns,
        traj.num_tool_calls,
        traj.num_tool_errors
    ));
    if let Some(kind) = &traj.error_kind {
        text.push_str(&format!(
            "error [{kind}]: {}\n",
            traj.error_message.as_deref().unwrap_or("")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_args(argv: &[&str]) -> CollectArgs {
        let argv = ["sandgym", "collect"]
            .iter()
            .chain(argv)
            .map(|s| s.to_string());
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Collect(args) => *args,
            other => panic!("not collect: {other:?}"),
        }
    }

    fn refusal(argv: &[&str], hooks: &Hooks) -> String {
        let args = collect_args(argv);
        let knobs = args.delethink.clone().expect("--delethink given");
        match delethink_policy(&args, &knobs, hooks) {
            Ok(_) => panic!("built a policy"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn delethink_needs_the_openai_policy_and_a_host_that_has_the_wrapper() {
        let none = Hooks::default();
        assert!(refusal(&["--delethink", "C=8"], &none).contains("wraps `--policy openai`"));
        let message = refusal(&["--policy", "openai", "--delethink", "C=8"], &none);
        assert!(message.contains("pip install sandgym"), "{message}");
        assert!(
            Cli::try_parse_from(["sandgym", "collect", "--tokenizer", "t.json"]).is_err(),
            "--tokenizer without --delethink"
        );
    }

    #[test]
    fn the_host_hook_gets_the_servers_settings() {
        let seen = Arc::new(Mutex::new(None));
        let recorder = Arc::clone(&seen);
        let hooks = Hooks {
            delethink: Some(Box::new(move |request: &DelethinkRequest| {
                *recorder.lock().unwrap() = Some(request.clone());
                Err(Error::InvalidArgument("stop here".into()))
            })),
        };
        let argv = [
            "--policy",
            "openai",
            "--base-url",
            "http://h:1/v1",
            "--model",
            "m",
            "--delethink",
            "C=64,m=32",
            "--tokenizer",
            "tok",
            "--concurrency",
            "3",
        ];
        assert_eq!(refusal(&argv, &hooks), "invalid argument: stop here");
        let request = seen.lock().unwrap().clone().expect("called");
        assert_eq!(request.knobs, "C=64,m=32");
        let openai = &request.openai;
        assert_eq!(
            (openai.base_url.as_str(), openai.model.as_str()),
            ("http://h:1/v1", "m")
        );
        assert_eq!(request.tokenizer.as_deref(), Some("tok"));
        assert_eq!(openai.concurrency, 3);
    }
}
