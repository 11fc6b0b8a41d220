//! Early experience (Zhang et al., "Agent Learning via Early Experience", arXiv 2510.08558): data from the
//! agent's own alternative actions in expert states, without rewards.
//!
//! This module owns the whole pipeline, one idea per file, data flowing one way
//! (`samplers → branch (env) → table rows → datasets / reflection files`):
//!
//! - [`samplers`]: which alternative actions to try in an expert state (uniform admissible, tool schema,
//!   policy-proposed, exhaustive);
//! - [`branch`]: recovering expert states from a live expert or recorded trajectories, running the expert
//!   action and each alternative on its own fork of the state, verifying every fork's fingerprint (and the
//!   replay-from-reset baseline);
//! - [`table`]: the branches table ([`Branch`] rows) and its Parquet writer;
//! - [`datasets`]: the imitation and world-model datasets (states and actions rendered by
//!   [`crate::chat`]);
//! - [`reflection`]: self-reflection prompts (paper and de-leaked templates), filters and SFT rows.
//!
//! [`run_to_dir`] wires them: branches stream to `branches.parquet` and the dataset files as each state
//! finishes; [`run`] does a whole run from one [`EarlyConfig`] (what the CLI and Python fill in). The
//! layout is documented in `docs/early-experience.md` and `docs/schema.md`.

pub mod branch;
pub mod datasets;
pub mod reflection;
mod run;
pub mod samplers;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use branch::{BranchOptions, BranchSummary, EpisodeInput, Method, branch_episodes};
pub use reflection::{Filters, ReflectionSummary, Template, build_reflection_sft};
pub use run::{EarlyConfig, EarlyReport, run};
pub use samplers::{Sampler, SamplerSpec};
pub use table::Branch;

use crate::error::{Error, Result};
use datasets::SftWriter;
use reflection::PromptWriter;
use table::BranchWriter;

/// File names written by [`run_to_dir`].
pub mod files {
    pub const BRANCHES: &str = "branches.parquet";
    pub const EXPERT: &str = "expert_sft";
    pub const IWM: &str = "iwm_sft";
    pub const REFLECTION: &str = "reflection_sft";
    pub const PROMPTS: &str = "reflection_prompts.jsonl";
    pub const PROMPTS_DELEAKED: &str = "reflection_prompts_deleaked.jsonl";
}

/// Settings of the dataset files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetOptions {
    /// Alternatives shown per reflection prompt (the first ones sampled whose step did not fail).
    pub reflect_k: usize,
    /// Include the expert transition in the world-model file (the paper does: ALFWorld 8 alt + 1 expert).
    pub iwm_expert: bool,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            reflect_k: reflection::DEFAULT_REFLECT_K,
            iwm_expert: true,
        }
    }
}

/// What [`run_to_dir`] did: the branching figures and the rows per file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarlySummary {
    pub branching: BranchSummary,
    pub expert_rows: u64,
    pub iwm_rows: u64,
    pub prompt_rows: u64,
    pub files: Vec<PathBuf>,
}

struct Writers {
    branches: BranchWriter,
    expert: SftWriter,
    iwm: SftWriter,
    prompts: PromptWriter,
    deleaked: PromptWriter,
}

impl Writers {
    fn write(&mut self, group: &[Branch], options: &DatasetOptions) -> Result<()> {
        self.branches.write(group)?;
        let Some(expert) = group.first().filter(|b| b.is_expert) else {
            return Ok(());
        };
        if expert.error_kind.is_none() {
            self.expert.write(&[datasets::expert_row(expert)])?;
        }
        let iwm: Vec<_> = group
            .iter()
            .filter(|b| options.iwm_expert || !b.is_expert)
            .filter_map(datasets::world_model_row)
            .collect();
        self.iwm.write(&iwm)?;
        for (template, writer) in [
            (Template::Paper, &mut self.prompts),
            (Template::Deleaked, &mut self.deleaked),
        ] {
            if let Some(prompt) = reflection::reflection_prompt(group, template, options.reflect_k)
            {
                writer.write(&prompt)?;
            }
        }
        Ok(())
    }

    fn finish(self, summary: &mut EarlySummary) -> Result<()> {
        summary.expert_rows = self.expert.rows();
        summary.iwm_rows = self.iwm.rows();
        summary.prompt_rows = self.prompts.rows();
        summary.files.push(self.branches.finish()?);
        let (a, b) = self.expert.finish()?;
        let (c, d) = self.iwm.finish()?;
        summary.files.extend([a, b, c, d]);
        summary.files.push(self.prompts.finish()?);
        summary.files.push(self.deleaked.finish()?);
        Ok(())
    }
}

/// The files [`run_to_dir`] writes into `out_dir`.
pub fn output_paths(out_dir: &Path) -> Vec<PathBuf> {
    vec![
        out_dir.join(files::BRANCHES),
        out_dir.join(format!("{}.jsonl", files::EXPERT)),
        out_dir.join(format!("{}.parquet", files::EXPERT)),
        out_dir.join(format!("{}.jsonl", files::IWM)),
        out_dir.join(format!("{}.parquet", files::IWM)),
        out_dir.join(files::PROMPTS),
        out_dir.join(files::PROMPTS_DELEAKED),
    ]
}

/// Branches every input and streams the branches table and the dataset files into `out_dir`. Refuses
/// to overwrite earlier output. When the run fails part way (drift, a demonstration that does not
/// replay), the files keep the states finished so far and the error is returned.
pub fn run_to_dir(
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    options: &BranchOptions,
    datasets: &DatasetOptions,
    out_dir: &Path,
) -> Result<EarlySummary> {
    if datasets.reflect_k == 0 {
        return Err(Error::InvalidArgument(
            "reflect_k must be at least 1".into(),
        ));
    }
    if let Some(existing) = output_paths(out_dir).into_iter().find(|p| p.exists()) {
        return Err(Error::InvalidArgument(format!(
            "{} already exists; choose another output directory",
            existing.display()
        )));
    }
    let writers = Mutex::new(Writers {
        branches: BranchWriter::create(&out_dir.join(files::BRANCHES))?,
        expert: SftWriter::create(out_dir, files::EXPERT)?,
        iwm: SftWriter::create(out_dir, files::IWM)?,
        prompts: PromptWriter::create(&out_dir.join(files::PROMPTS))?,
        deleaked: PromptWriter::create(&out_dir.join(files::PROMPTS_DELEAKED))?,
    });
    let sink = |group: Vec<Branch>| -> Result<()> {
        writers.lock().expect("writers").write(&group, datasets)
    };
    let branching = branch_episodes(inputs, sampler, options, &sink);
    let mut summary = EarlySummary::default();
    let finished = writers.into_inner().expect("writers").finish(&mut summary);
    summary.branching = branching?;
    finished?;
    Ok(summary)
}
