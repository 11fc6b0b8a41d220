//! One early-experience run from an [`EarlyConfig`], end to end: the sampler, the episodes to branch
//! (recorded trajectories, or a plan of the env's own expert), the branch options, and
//! [`super::run_to_dir`] in a pool of `threads`. `sandgym early-experience` and
//! `sandgym.early_experience` are thin wrappers around [`run`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::branch::{self, BranchOptions, Method, Verify};
use super::reflection::DEFAULT_REFLECT_K;
use super::samplers::{self, SamplerSpec};
use super::{DatasetOptions, EarlySummary};
use crate::env::EnvOptions;
use crate::error::{Error, Result};
use crate::policy::PolicySpec;
use crate::{collect, files, registry, store};

/// Every setting of an early-experience run that is data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyConfig {
    /// Output directory (must not hold earlier early-experience output).
    pub out_dir: PathBuf,
    /// Env id or `.wasm` path: the env whose expert is played, or, with `trajectories`, the env whose
    /// rows are kept (all rows when `None`).
    pub env: Option<String>,
    /// Expert trajectories to branch (a sandgym Parquet file or directory), replayed step by step;
    /// `None` plays the env's own expert.
    pub trajectories: Option<PathBuf>,
    /// Expert episodes to play (without `trajectories`); episode `i` uses seed `seed + i`.
    pub episodes: u64,
    /// Seed of the first expert episode.
    pub seed: u64,
    /// Tasks for the expert episodes, inline, played in turn.
    pub tasks: Option<Vec<Value>>,
    /// Tasks for the expert episodes from a file (JSONL or JSON array). Not together with `tasks`.
    pub tasks_file: Option<PathBuf>,
    /// Alternative sampler: `uniform`, `tool-schema`, `policy` or `exhaustive`.
    pub sampler: String,
    /// Alternatives per state (default: 8 uniform, 5 tool-schema, 3 policy, all exhaustive).
    pub k: Option<usize>,
    /// tool-schema sampler: never sample the expert's tool.
    pub exclude_expert_tool: bool,
    /// policy sampler: the proposing policy's name (`random`, `expert`, …) when no policy spec is
    /// passed to [`run`].
    pub policy: String,
    /// policy sampler: temperatures, one proposing policy each.
    pub temperatures: Vec<f64>,
    /// How alternatives reach the expert state: `fork` (snapshot) or `replay` (from reset).
    pub method: String,
    /// What each copy's fingerprint covers: `state`, `full` or `expert`.
    pub verify: String,
    /// Alternatives shown per self-reflection prompt.
    pub reflect_k: usize,
    /// Include the expert transition in the world-model file.
    pub iwm_expert: bool,
    /// Expert states per episode at most (live expert).
    pub max_steps: u32,
    /// The env's configuration (JSON object or null); `{"$path": ...}` is expanded at run time.
    pub config: Value,
    /// Fuel per guest call; `None` keeps the default.
    pub fuel: Option<u64>,
    /// Guest memory cap in MiB; `None` keeps the default.
    pub memory_mb: Option<usize>,
    /// Wall-clock deadline per guest call in seconds; `None` keeps the default.
    pub deadline_s: Option<f64>,
    /// Worker threads; `None` runs on rayon's global pool.
    pub threads: Option<usize>,
    /// Identifies the run in every branch row; `None` generates one.
    pub run_id: Option<String>,
}

impl Default for EarlyConfig {
    fn default() -> Self {
        EarlyConfig {
            out_dir: PathBuf::from("early-experience"),
            env: None,
            trajectories: None,
            episodes: 10,
            seed: 0,
            tasks: None,
            tasks_file: None,
            sampler: "uniform".into(),
            k: None,
            exclude_expert_tool: false,
            policy: "random".into(),
            temperatures: vec![1.0],
            method: "fork".into(),
            verify: "state".into(),
            reflect_k: DEFAULT_REFLECT_K,
            iwm_expert: true,
            max_steps: 64,
            config: Value::Null,
            fuel: None,
            memory_mb: None,
            deadline_s: None,
            threads: None,
            run_id: None,
        }
    }
}

impl EarlyConfig {
    /// Reads a config from JSON text; unknown fields are an error naming them.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("early-experience config: {e}")))
    }

    /// The config as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an early-experience config is JSON")
    }
}

/// What an early-experience run did.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyReport {
    pub run_id: String,
    /// The sampler's name.
    pub sampler: String,
    /// Recorded episodes left out (no complete step to branch).
    pub skipped: usize,
    pub summary: EarlySummary,
}

/// Runs the early-experience pipeline `config` describes. `policy_spec` is the proposing policy of
/// the `policy` sampler with its settings (an `openai` endpoint, a `replay` file); `None` builds
/// `config.policy` by name.
pub fn run(config: &EarlyConfig, policy_spec: Option<PolicySpec>) -> Result<EarlyReport> {
    let method: Method = config.method.parse()?;
    let verify: Verify = config.verify.parse()?;
    let sampler = samplers::by_name(&SamplerSpec {
        name: config.sampler.clone(),
        k: config.k,
        exclude_expert_tool: config.exclude_expert_tool,
        policy: config.policy.clone(),
        policy_spec,
        temperatures: config.temperatures.clone(),
    })?;
    let options = BranchOptions {
        run_id: config.run_id.clone().unwrap_or_else(collect::new_run_id),
        method,
        verify,
        max_steps: config.max_steps,
        env_options: EnvOptions {
            config: files::expand_config(config.config.clone())?,
            limits: collect::config::limits(config.fuel, config.memory_mb, config.deadline_s)?,
        },
    };
    let datasets = DatasetOptions {
        reflect_k: config.reflect_k,
        iwm_expert: config.iwm_expert,
    };
    crate::pool::install(config.threads, || {
        let (inputs, skipped) = match &config.trajectories {
            Some(path) => {
                let mut rows = store::read_dir_or_file(path).map_err(Error::storage)?;
                if let Some(env) = &config.env {
                    let id = registry::canonical_id(env)?;
                    rows.retain(|r| r.env_id == id);
                }
                branch::inputs_from_trajectories(&rows)?
            }
            None => {
                let env = config.env.as_deref().ok_or_else(|| {
                    Error::InvalidArgument("give `env` (and optionally `trajectories`)".into())
                })?;
                let tasks = match (&config.tasks, &config.tasks_file) {
                    (Some(_), Some(_)) => {
                        return Err(Error::InvalidArgument(
                            "give `tasks` or `tasks_file`, not both".into(),
                        ));
                    }
                    (Some(tasks), None) => Some(tasks.clone()),
                    (None, Some(path)) => Some(files::read_tasks(path)?),
                    (None, None) => None,
                };
                let plan = collect::plan(
                    &[registry::canonical_id(env)?],
                    config.episodes,
                    config.seed,
                    tasks.as_deref(),
                );
                (branch::inputs_from_plan(&plan), 0)
            }
        };
        if inputs.is_empty() {
            return Err(Error::InvalidArgument(
                "no episode to branch (no trajectory with a complete step)".into(),
            ));
        }
        let summary = super::run_to_dir(
            &inputs,
            sampler.as_ref(),
            &options,
            &datasets,
            &config.out_dir,
        )?;
        Ok(EarlyReport {
            run_id: options.run_id.clone(),
            sampler: sampler.name().to_string(),
            skipped,
            summary,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let config = EarlyConfig {
            env: Some("countdown-v0".into()),
            episodes: 2,
            tasks: Some(vec![serde_json::json!({"target": 3})]),
            sampler: "policy".into(),
            temperatures: vec![0.5, 1.0],
            threads: Some(2),
            ..EarlyConfig::default()
        };
        assert_eq!(EarlyConfig::from_json(&config.to_json()).unwrap(), config);
        assert_eq!(
            EarlyConfig::from_json("{}").unwrap(),
            EarlyConfig::default()
        );
        let err = EarlyConfig::from_json(r#"{"sampler": "uniform", "samplr": 1}"#).unwrap_err();
        assert!(err.to_string().contains("samplr"), "{err}");
    }
}
