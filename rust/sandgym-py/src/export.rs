//! Exports and advantages for Python, mirroring `sandgym_core::export` and `sandgym_core::advantage`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandgym_core::advantage::{self, AdvantageOptions, Estimator, GroupBy, PassRateHistory};
use sandgym_core::collect::config::{advantage_options, reward_preset};
use sandgym_core::export::{self, ExportOptions, Format};
use sandgym_core::{Error, store};

use crate::arrow::ArrowTable;
use crate::error::IntoPy;

/// Writes a trainer dataset from sandgym trajectories; returns the export's figures.
#[pyfunction]
#[pyo3(signature = (path, to, out, group_by="group", advantage=None, reward="env", overlong=None, success_only=false, include_errors=false, drop_zero_variance=false, pass_rates=None, drop_pass_rate=0.9, split="train", data_source_prefix="sandgym/", env_class="sandgym"))]
#[allow(clippy::too_many_arguments)]
pub fn export_trajectories<'py>(
    py: Python<'py>,
    path: PathBuf,
    to: &str,
    out: PathBuf,
    group_by: &str,
    advantage: Option<&str>,
    reward: &str,
    overlong: Option<(u64, u64, f64)>,
    success_only: bool,
    include_errors: bool,
    drop_zero_variance: bool,
    pass_rates: Option<PathBuf>,
    drop_pass_rate: f64,
    split: &str,
    data_source_prefix: &str,
    env_class: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let summary = py
        .detach(|| -> Result<_, Error> {
            let format = Format::by_name(to)?;
            let group_by = GroupBy::by_name(group_by)?;
            let options = ExportOptions {
                format,
                advantage: advantage_options(advantage, reward, overlong, group_by, None)?,
                group_by,
                success_only,
                include_errors,
                drop_zero_variance,
                pass_rates: pass_rates
                    .as_deref()
                    .map(PassRateHistory::load)
                    .transpose()?,
                drop_pass_rate,
                split: split.to_string(),
                data_source_prefix: data_source_prefix.to_string(),
                env_class: env_class.to_string(),
            };
            export::FileKind::of(&out)?;
            let rows = store::read_dir_or_file(&path).map_err(Error::storage)?;
            export::export(rows, &options, &out)
        })
        .py_err()?;
    let dict = PyDict::new(py);
    dict.set_item("path", out.display().to_string())?;
    dict.set_item("rows_in", summary.rows_in)?;
    dict.set_item("rows_out", summary.rows_out)?;
    dict.set_item("dropped_errors", summary.dropped_errors)?;
    dict.set_item("dropped_unsuccessful", summary.dropped_unsuccessful)?;
    dict.set_item("dropped_zero_variance", summary.dropped_zero_variance)?;
    dict.set_item("dropped_pass_rate", summary.dropped_pass_rate)?;
    dict.set_item("groups_without_pair", summary.groups_without_pair)?;
    dict.set_item("dropped_without_tokens", summary.dropped_without_tokens)?;
    dict.set_item("first_token_gap", summary.first_token_gap)?;
    Ok(dict)
}

/// Reads trajectories and recomputes `shaped_reward` and `advantage`; returns the rows as Arrow.
#[pyfunction]
#[pyo3(signature = (path, estimator="grpo", reward="env", overlong=None, group_by="group", drop_zero_variance=false))]
pub fn compute_advantages(
    py: Python<'_>,
    path: PathBuf,
    estimator: &str,
    reward: &str,
    overlong: Option<(u64, u64, f64)>,
    group_by: &str,
    drop_zero_variance: bool,
) -> PyResult<ArrowTable> {
    let batch = py
        .detach(|| -> Result<_, Error> {
            let group_by = GroupBy::by_name(group_by)?;
            let options = AdvantageOptions {
                estimator: Estimator::by_name(estimator)?,
                preset: reward_preset(reward, overlong)?,
                group_by,
            };
            let mut rows = store::read_dir_or_file(&path).map_err(Error::storage)?;
            advantage::compute_advantages(&mut rows, &options);
            if drop_zero_variance {
                advantage::drop_zero_variance(&mut rows, group_by);
            }
            store::to_record_batch(&rows).map_err(Error::storage)
        })
        .py_err()?;
    Ok(ArrowTable::new(store::schema(), vec![batch]))
}
