//! `sandgym export` (trainer datasets from trajectories) and the advantage / reward options it shares
//! with `sandgym collect`.

use std::io::Write;
use std::path::PathBuf;

use sandgym_core::advantage::{AdvantageOptions, Estimator, GroupBy, PassRateHistory};
use sandgym_core::collect::config::advantage_options;
use sandgym_core::export::{self, ExportOptions, Format};
use sandgym_core::{Error, store};

/// Reward preset and advantage estimator options (shared by `collect` and `export`).
#[derive(Debug, Clone, clap::Args)]
pub struct AdvantageArgs {
    /// Advantage estimator: `grpo` ((r - mean) / std in the group), `dr-grpo` (r - mean) or `batch`
    /// (group mean, batch std; ScaleRL).
    #[arg(long)]
    pub advantage: Option<String>,
    /// Reward the advantages are computed from: `env` (total_reward), `outcome` (±1),
    /// `demystify-paper` (±1 + 0.1 per tool call, capped at 0.4) or `demystify-code` (+1, or
    /// min(-0.6, -1 + 0.1 per tool round)).
    #[arg(long, default_value = "env")]
    pub reward: String,
    /// Overlong shaping: the response length (characters the agent wrote) at which the full penalty
    /// applies.
    #[arg(long)]
    pub overlong_max: Option<u64>,
    /// Overlong shaping: the soft band before --overlong-max where the penalty grows linearly.
    #[arg(long, default_value_t = 4096, requires = "overlong_max")]
    pub overlong_buffer: u64,
    /// Overlong shaping: the full penalty.
    #[arg(long, default_value_t = 1.0, requires = "overlong_max")]
    pub overlong_penalty: f64,
}

impl AdvantageArgs {
    /// The advantage settings: `Some` when `--advantage` is given, or when a reward preset other than
    /// the default is, with `default_estimator`.
    pub fn options(
        &self,
        group_by: GroupBy,
        default_estimator: Option<Estimator>,
    ) -> Result<Option<AdvantageOptions>, Error> {
        advantage_options(
            self.advantage.as_deref(),
            &self.reward,
            self.overlong(),
            group_by,
            default_estimator,
        )
    }

    /// Overlong shaping `(max_len, buffer, penalty)`, when `--overlong-max` is given.
    fn overlong(&self) -> Option<(u64, u64, f64)> {
        self.overlong_max
            .map(|max| (max, self.overlong_buffer, self.overlong_penalty))
    }
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Trajectories: a sandgym Parquet file or a directory of part files.
    input: PathBuf,
    /// Layout: trl-sft, trl-grpo, trl-dpo, verl-rl, verl-sft, skyrl or early-expert.
    #[arg(long = "to")]
    to: String,
    /// Output file; `.parquet` or `.jsonl` (default: `<format>.parquet`, `early-expert.jsonl`).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// What makes a group (a prompt): `group` (the group_id column) or `task` (env and task id).
    #[arg(long, default_value = "group")]
    group_by: String,
    #[command(flatten)]
    advantage: AdvantageArgs,
    /// Keep only successful episodes (SFT and early-expert layouts).
    #[arg(long)]
    success_only: bool,
    /// Keep episodes that ended with an error (dropped by default).
    #[arg(long)]
    include_errors: bool,
    /// Drop groups whose rewards are all equal (no learning signal).
    #[arg(long)]
    drop_zero_variance: bool,
    /// Pass-rate history (written by `collect --pass-rates`): drop prompts at or above --drop-pass-rate.
    #[arg(long)]
    pass_rates: Option<PathBuf>,
    /// Pass rate at or above which a prompt is dropped (ScaleRL: 0.9).
    #[arg(long, default_value_t = sandgym_core::advantage::DEFAULT_DROP_PASS_RATE)]
    drop_pass_rate: f64,
    /// verl / SkyRL: `extra_info.split`.
    #[arg(long, default_value = "train")]
    split: String,
    /// verl / SkyRL: `data_source` prefix (followed by the env name).
    #[arg(long, default_value = "sandgym/")]
    data_source_prefix: String,
    /// SkyRL: `env_class`.
    #[arg(long, default_value = "sandgym")]
    env_class: String,
}

pub fn run_export(args: ExportArgs) -> Result<(), Error> {
    let format = Format::by_name(&args.to)?;
    let group_by = GroupBy::by_name(&args.group_by)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(match format {
            Format::EarlyExpert => "early-expert.jsonl".to_string(),
            other => format!("{}.parquet", other.name()),
        })
    });
    export::FileKind::of(&out)?;
    let pass_rates = args
        .pass_rates
        .as_deref()
        .map(PassRateHistory::load)
        .transpose()?;
    let options = ExportOptions {
        format,
        advantage: args.advantage.options(group_by, None)?,
        group_by,
        success_only: args.success_only,
        include_errors: args.include_errors,
        drop_zero_variance: args.drop_zero_variance,
        pass_rates,
        drop_pass_rate: args.drop_pass_rate,
        split: args.split,
        data_source_prefix: args.data_source_prefix,
        env_class: args.env_class,
    };
    let rows = store::read_dir_or_file(&args.input).map_err(Error::storage)?;
    let summary = export::export(rows, &options, &out)?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}: {} rows from {} trajectories (dropped: {} with errors, {} unsuccessful, {} in zero-variance \
         groups, {} retired prompts, {} without token ids; {} groups without a chosen/rejected pair)",
        format.name(),
        summary.rows_out,
        summary.rows_in,
        summary.dropped_errors,
        summary.dropped_unsuccessful,
        summary.dropped_zero_variance,
        summary.dropped_pass_rate,
        summary.dropped_without_tokens,
        summary.groups_without_pair
    );
    if let Some(gap) = &summary.first_token_gap {
        let _ = writeln!(stdout, "first episode without a token sequence: {gap}");
    }
    let _ = writeln!(stdout, "wrote {}", out.display());
    Ok(())
}
