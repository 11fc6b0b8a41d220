//! End-to-end collection: policies × envs on rayon → background writer → Parquet → read back.

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::store::{self, WriteSummary, WriterOptions};
use sandgym_core::{Trajectory, policy};
use serde_json::json;

use crate::common::{guest, tight};

/// Runs `plan` in memory; rows sorted by episode id.
fn collect_rows(
    plan: &[collect::EpisodeSpec],
    policy: &dyn policy::Policy,
    options: &CollectOptions,
) -> (collect::CollectSummary, Vec<Trajectory>) {
    let rows = std::sync::Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let summary = collect::collect(plan, policy, options, &sink, &|_| {}).unwrap();
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| a.episode_id.cmp(&b.episode_id));
    (summary, rows)
}

/// Runs `plan` into Parquet parts in `dir`.
fn collect_into(
    plan: &[collect::EpisodeSpec],
    dir: &std::path::Path,
) -> (collect::CollectSummary, WriteSummary) {
    collect::collect_to_dir(
        plan,
        &policy::ExpertPolicy,
        &CollectOptions::default(),
        dir,
        WriterOptions::default(),
        &|_| {},
    )
    .unwrap()
}

fn ids() -> Vec<String> {
    vec!["countdown-v0".into(), "parity-v0".into()]
}

#[test]
fn expert_collection_to_parquet_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, written) = collect_into(&collect::plan(&ids(), 40, 0, None), dir.path());
    assert_eq!(summary.episodes, 80);
    assert_eq!(
        summary.successes, 80,
        "the expert solves every generated task"
    );
    assert_eq!(summary.errors, 0);
    assert_eq!(written.rows, 80);
    let rows = store::read_dir_or_file(dir.path()).unwrap();
    assert_eq!(rows.len(), 80);
    for row in &rows {
        assert!(row.success && row.terminated && !row.truncated);
        assert_eq!(row.messages[0].role, sandgym_core::Role::System);
        assert!(row.num_turns >= 1 && row.num_tool_calls >= 1);
        assert_eq!(row.turn_rewards.len() as u32, row.num_turns);
        assert!(row.error_kind.is_none());
        assert_eq!(row.policy, "expert");
        let tools: serde_json::Value = serde_json::from_str(&row.tools).unwrap();
        assert!(tools.as_array().is_some_and(|t| !t.is_empty()));
    }
}

#[test]
fn random_policy_is_low_but_not_constant() {
    let plan = collect::plan(&["countdown-v0".into()], 200, 0, None);
    let options = CollectOptions {
        max_turns: 4,
        ..CollectOptions::default()
    };
    let (summary, rows) = collect_rows(&plan, &policy::RandomPolicy::default(), &options);
    assert_eq!(summary.episodes, 200);
    assert!(
        summary.success_rate() < 0.9,
        "random success {}",
        summary.success_rate()
    );
    let rewards: Vec<f64> = rows.iter().map(|t| t.total_reward).collect();
    assert!(
        rewards.iter().any(|r| *r != rewards[0]),
        "rewards vary across episodes"
    );
}

#[test]
fn runs_are_reproducible() {
    let plan = collect::plan(&ids(), 10, 5, None);
    let run = || {
        let (_, rows) = collect_rows(
            &plan,
            &policy::RandomPolicy::default(),
            &CollectOptions::default(),
        );
        rows.into_iter()
            .map(|t| (t.task_id, t.messages, t.turn_rewards))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn guest_faults_become_rows_and_the_run_goes_on() {
    let tasks = vec![
        json!({"mode": "ok"}),
        json!({"mode": "loop"}),
        json!({"mode": "panic"}),
        json!({"mode": "ok"}),
    ];
    let plan = collect::plan(&[guest("hostile")], 8, 0, Some(&tasks));
    let options = CollectOptions {
        env_options: tight(),
        ..CollectOptions::default()
    };
    let (summary, rows) = collect_rows(&plan, &policy::RandomPolicy::default(), &options);
    assert_eq!(summary.episodes, 8);
    assert_eq!(summary.errors, 4);
    let mut kinds: Vec<_> = rows.iter().filter_map(|t| t.error_kind.clone()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["guest_trap", "guest_trap", "out_of_fuel", "out_of_fuel"]
    );
    assert!(
        rows.iter()
            .filter(|t| t.error_kind.is_none())
            .all(|t| t.success)
    );
}

#[test]
fn unknown_env_fails_fast() {
    let plan = collect::plan(&["nope".into()], 1, 0, None);
    let options = CollectOptions::default();
    let err =
        collect::collect(&plan, &policy::ExpertPolicy, &options, &|_| Ok(()), &|_| {}).unwrap_err();
    assert_eq!(err.kind(), "unknown_env");
}

#[test]
fn resume_skips_episodes_already_written() {
    let dir = tempfile::tempdir().unwrap();
    collect_into(&collect::plan(&ids(), 5, 0, None), dir.path());
    let (rest, skipped) =
        collect::skip_done(collect::plan(&ids(), 8, 0, None), dir.path()).unwrap();
    assert_eq!((skipped, rest.len()), (10, 6));
    collect_into(&rest, dir.path());
    let rows = store::read_dir_or_file(dir.path()).unwrap();
    let mut episode_ids: Vec<_> = rows.iter().map(|t| t.episode_id.clone()).collect();
    episode_ids.sort();
    episode_ids.dedup();
    assert_eq!(episode_ids.len(), rows.len(), "no episode is written twice");
    let (rest, skipped) =
        collect::skip_done(collect::plan(&ids(), 8, 0, None), dir.path()).unwrap();
    assert!(rest.is_empty() && skipped == 16);
}
