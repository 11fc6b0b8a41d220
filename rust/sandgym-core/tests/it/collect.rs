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

/// Episode id, sample seed, messages, turn rewards, success, advantage of a row.
type Reproducible = (String, u64, String, Vec<f64>, bool, Option<f64>);

/// The columns a rerun reproduces (not the run id or the timings).
fn reproducible(rows: &[Trajectory]) -> Vec<Reproducible> {
    let mut rows: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.episode_id.clone(),
                r.sample_seed,
                serde_json::to_string(&r.messages).unwrap(),
                r.turn_rewards.clone(),
                r.success,
                r.advantage,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn run_from_config_writes_or_keeps_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut config: collect::CollectConfig = collect::CollectConfig::from_json(
        r#"{"envs": ["countdown-v0", "parity-v0"], "episodes": 5, "seed": 2, "max_turns": 4,
            "group_size": 2, "config": null, "run_id": "same"}"#,
    )
    .unwrap();
    let random = policy::RandomPolicy::default();
    let events = std::sync::Mutex::new(Vec::new());
    let memory = collect::run(&config, &random, None, &|e| {
        if !matches!(e, collect::RunEvent::Finished(_)) {
            events.lock().unwrap().push(e)
        }
    })
    .unwrap();
    assert_eq!(memory.env_ids, ids());
    assert_eq!(
        events.into_inner().unwrap(),
        [collect::RunEvent::Started(20)]
    );
    let rows = memory.rows.unwrap();
    assert_eq!(memory.summary.episodes, 20);
    // In memory, rows come in plan order: env by env, episode by episode, member by member.
    let order: Vec<(String, u64, u32)> = rows
        .iter()
        .map(|r| (r.env_id.clone(), r.episode_index, r.group_index))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|(env, i, j)| (ids().iter().position(|e| e == env), *i, *j));
    assert_eq!(order, sorted);
    assert!(
        rows.iter()
            .all(|r| r.advantage.is_some() && r.run_id == "same")
    );

    config.out_dir = Some(dir.path().to_path_buf());
    let written = collect::run(&config, &random, None, &|_| {}).unwrap();
    assert!(written.rows.is_none());
    assert_eq!(written.written.as_ref().unwrap().rows, 20);
    let stored = store::read_dir_or_file(dir.path()).unwrap();
    assert_eq!(reproducible(&stored), reproducible(&rows));

    // Resuming the same config finds everything stored; resuming in memory is refused.
    config.resume = true;
    let resumed = collect::run(&config, &random, None, &|_| {}).unwrap();
    assert_eq!((resumed.skipped, resumed.summary.episodes), (5 * 2, 0));
    config.out_dir = None;
    assert!(collect::run(&config, &random, None, &|_| {}).is_err());
}

#[test]
fn run_refuses_bad_configs_before_playing() {
    let random = policy::RandomPolicy::default();
    let bad = |json: &str| {
        let config = collect::CollectConfig::from_json(json).unwrap();
        collect::run(&config, &random, None, &|_| {})
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        bad(r#"{"envs": ["countdown-v0"], "deadline_s": 0}"#),
        "invalid_argument"
    );
    assert_eq!(
        bad(r#"{"envs": ["countdown-v0"], "tasks": [], "tasks_file": "t.jsonl"}"#),
        "invalid_argument"
    );
    assert_eq!(
        bad(r#"{"envs": ["countdown-v0"], "split": "test"}"#),
        "invalid_argument"
    );
    assert_eq!(
        bad(r#"{"envs": ["countdown-v0"], "advantage": "nope"}"#),
        "invalid_argument"
    );
}
