//! `sandgym early-experience` and `sandgym reflection-sft`: the early-experience pipeline of
//! `sandgym_core::early` on the command line.

use std::io::Write;
use std::path::PathBuf;

use sandgym_core::Error;
use sandgym_core::early::reflection::{self, Filters};
use sandgym_core::early::{self, EarlyConfig, EarlySummary};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct EarlyArgs {
    /// Env id or `.wasm` path. With --trajectories, keeps only that env's rows (default: all rows).
    #[arg(long)]
    env: Option<String>,
    /// Expert trajectories to branch (a sandgym Parquet file or directory), replayed step by step.
    /// Default: play the env's own expert.
    #[arg(long)]
    trajectories: Option<PathBuf>,
    /// Episodes of the env's expert to branch (without --trajectories).
    #[arg(long, short = 'n', default_value_t = 10)]
    episodes: u64,
    /// Seed of the first expert episode; episode i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tasks for the expert episodes (JSONL or JSON array), played in turn.
    #[arg(long)]
    tasks: Option<PathBuf>,
    /// Alternative sampler: `uniform` (admissible, without replacement), `tool-schema`, `policy`,
    /// `exhaustive` (every admissible action).
    #[arg(long, default_value = "uniform")]
    sampler: String,
    /// Alternatives per state (default: 8 uniform, 5 tool-schema, 3 policy, all exhaustive).
    #[arg(long)]
    k: Option<usize>,
    /// tool-schema: never sample the expert's tool.
    #[arg(long)]
    exclude_expert_tool: bool,
    /// policy: the proposing policy (`random`, `expert`, `openai`, `replay`).
    #[arg(long, default_value = "random")]
    policy: String,
    /// policy: temperatures, comma-separated; one proposing policy each.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    temperatures: Vec<f64>,
    /// Settings of the proposing policy when it is `openai` (endpoint, model, ...) or `replay`; each
    /// temperature above becomes the `openai` policy's sampling temperature.
    #[command(flatten)]
    policy_args: crate::policy_args::PolicyArgs,
    /// How alternatives reach the expert state: `fork` (snapshot) or `replay` (from reset; the baseline).
    #[arg(long, default_value = "fork")]
    method: String,
    /// What each copy's fingerprint covers before it steps: `state` (the env's state digest: memory,
    /// globals, RNG), `full` (its expert and admissible actions) or `expert` (its expert action).
    #[arg(long, default_value = "state")]
    verify: String,
    /// Alternatives shown per self-reflection prompt.
    #[arg(long, default_value_t = reflection::DEFAULT_REFLECT_K)]
    reflect_k: usize,
    /// Leave the expert transition out of the world-model file.
    #[arg(long)]
    no_iwm_expert: bool,
    /// Expert states per episode at most (live expert).
    #[arg(long, default_value_t = 64)]
    max_steps: u32,
    /// Env configuration as a JSON object.
    #[arg(long)]
    config: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Output directory (must not hold earlier early-experience output).
    #[arg(long, short = 'o', default_value = "early-experience")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ReflectionArgs {
    /// Prompts written by `early-experience` (reflection_prompts.jsonl or the de-leaked file).
    #[arg(long)]
    prompts: PathBuf,
    /// Filled reflections: JSONL, one `{"id": ..., "reflection": ...}` per line, or a `.parquet` file
    /// with `id` and `reflection` string columns.
    #[arg(long)]
    reflections: PathBuf,
    /// Output directory for reflection_sft.{jsonl,parquet} and reflection_sft_dropped.jsonl.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Drop reflections using label words (expert, chosen, best, ...) or numbered labels.
    #[arg(long)]
    filter_label_leak: bool,
    /// Drop reflections narrating outcomes as seen ("the resulting state", "now I see", ...).
    #[arg(long)]
    filter_outcome_leak: bool,
    /// Drop reflections whose opening reappears in their second half.
    #[arg(long)]
    filter_duplicated: bool,
    /// Drop reflections that conclude with an alternative instead of the expert action.
    #[arg(long)]
    filter_concluded_action: bool,
}

pub fn run_early(args: EarlyArgs) -> Result<(), Error> {
    let config = EarlyConfig {
        out_dir: args.out.clone(),
        env: args.env.clone(),
        trajectories: args.trajectories.clone(),
        episodes: args.episodes,
        seed: args.seed,
        tasks: None,
        tasks_file: args.tasks.clone(),
        sampler: args.sampler.clone(),
        k: args.k,
        exclude_expert_tool: args.exclude_expert_tool,
        policy: args.policy.clone(),
        temperatures: args.temperatures.clone(),
        method: args.method.clone(),
        verify: args.verify.clone(),
        reflect_k: args.reflect_k,
        iwm_expert: !args.no_iwm_expert,
        max_steps: args.max_steps,
        config: match &args.config {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::InvalidArgument(format!("--config is not JSON: {e}")))?,
            None => Value::Null,
        },
        threads: args.threads,
        ..EarlyConfig::default()
    };
    let report = early::run(&config, Some(args.policy_args.spec(&args.policy)?))?;
    print_summary(
        &report.run_id,
        &report.sampler,
        report.skipped,
        &report.summary,
    );
    Ok(())
}

fn print_summary(run_id: &str, sampler: &str, skipped: usize, summary: &EarlySummary) {
    let b = &summary.branching;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {run_id}: {} episodes ({skipped} skipped), {} states, sampler {sampler}",
        b.episodes, b.states
    );
    let _ = writeln!(
        out,
        "branches: {} ({} alternatives, {} states short of K, {} failed steps, {} error observations)",
        b.branches, b.alternatives, b.short_states, b.branch_errors, b.observation_errors
    );
    let _ = writeln!(
        out,
        "env steps: {}  wall time: {:.2} s  branches/s: {:.0}",
        b.env_steps,
        b.wall_time_s,
        b.branches_per_second()
    );
    let _ = writeln!(
        out,
        "rows: expert {}  world model {}  reflection prompts {}",
        summary.expert_rows, summary.iwm_rows, summary.prompt_rows
    );
    for file in &summary.files {
        let _ = writeln!(out, "wrote {}", file.display());
    }
}

pub fn run_reflection(args: ReflectionArgs) -> Result<(), Error> {
    let prompts = reflection::read_prompts(&args.prompts)?;
    let reflections = reflection::read_reflections(&args.reflections)?;
    let filters = Filters {
        label_leak: args.filter_label_leak,
        outcome_leak: args.filter_outcome_leak,
        duplicated: args.filter_duplicated,
        concluded_action: args.filter_concluded_action,
    };
    let summary = early::build_reflection_sft(&prompts, &reflections, &filters, &args.out)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "kept {}  dropped {}  missing {}",
        summary.kept, summary.dropped, summary.missing
    );
    for file in &summary.files {
        let _ = writeln!(out, "wrote {}", file.display());
    }
    Ok(())
}
