//! Group rollouts on the real countdown guest: members, sink order, advantages, resume, pass-rate filter.

use std::sync::Mutex;

use sandgym_core::advantage::{AdvantageOptions, Estimator, PassRateHistory};
use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::store::{self, WriterOptions};
use sandgym_core::{Trajectory, policy};

fn grouped_options(group_size: u32, estimator: Estimator) -> CollectOptions {
    CollectOptions {
        max_turns: 4,
        group_size,
        advantage: Some(AdvantageOptions {
            estimator,
            ..AdvantageOptions::default()
        }),
        ..CollectOptions::default()
    }
}

#[test]
fn groups_reach_the_sink_whole_with_advantages() {
    let plan = collect::plan(&["countdown-v0".into()], 12, 5, None);
    let options = grouped_options(3, Estimator::DrGrpo);
    let rows = Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let summary = collect::collect(
        &plan,
        &policy::RandomPolicy::default(),
        &options,
        &sink,
        &|_| {},
    )
    .unwrap();
    assert_eq!(summary.episodes, 36);
    let rows = rows.into_inner().unwrap();
    // Each group's three rows arrive one after the other, in member order.
    for chunk in rows.chunks(3) {
        let gid = chunk[0].group_id.clone().unwrap();
        assert!(
            chunk
                .iter()
                .all(|r| r.group_id.as_deref() == Some(gid.as_str()))
        );
        assert_eq!(
            chunk.iter().map(|r| r.group_index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(
            chunk
                .iter()
                .all(|r| r.task_id == chunk[0].task_id && r.seed == chunk[0].seed)
        );
        let mean = chunk.iter().map(|r| r.total_reward).sum::<f64>() / 3.0;
        for r in chunk {
            assert!((r.advantage.unwrap() - (r.total_reward - mean)).abs() < 1e-12);
            assert_eq!(
                r.sample_seed,
                collect::plan::sample_seed(r.seed, r.group_index)
            );
            assert_eq!(r.episode_id, format!("{gid}/{}", r.group_index));
        }
    }
}

#[test]
fn batch_estimator_normalizes_by_the_run() {
    let plan = collect::plan(&["countdown-v0".into()], 8, 0, None);
    let rows = Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    collect::collect(
        &plan,
        &policy::RandomPolicy::default(),
        &grouped_options(4, Estimator::Batch),
        &sink,
        &|_| {},
    )
    .unwrap();
    let rows = rows.into_inner().unwrap();
    assert_eq!(rows.len(), 32);
    let all: Vec<f64> = rows.iter().map(|r| r.total_reward).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let std = (all.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (all.len() - 1) as f64).sqrt();
    for group in rows.chunks(4) {
        let m = group.iter().map(|r| r.total_reward).sum::<f64>() / 4.0;
        for r in group {
            let want = (r.total_reward - m) / (std + sandgym_core::advantage::STD_EPS);
            assert!((r.advantage.unwrap() - want).abs() < 1e-9);
        }
    }
}

#[test]
fn resume_skips_whole_groups_and_refuses_partial_ones() {
    let dir = tempfile::tempdir().unwrap();
    let plan = collect::plan(&["countdown-v0".into()], 3, 0, None);
    let options = grouped_options(2, Estimator::Grpo);
    collect::collect_to_dir(
        &plan,
        &policy::ExpertPolicy,
        &options,
        dir.path(),
        WriterOptions::default(),
        &|_| {},
    )
    .unwrap();
    let longer = collect::plan(&["countdown-v0".into()], 5, 0, None);
    let (rest, skipped) = collect::plan::skip_done_groups(longer.clone(), dir.path(), 2).unwrap();
    assert_eq!(skipped, 3);
    assert_eq!(rest.len(), 2);
    // A file holding one member of group 3 only: resuming must not complete it by half.
    let mut half = store::read_dir_or_file(dir.path()).unwrap()[0].clone();
    half.episode_id = "countdown-v0/3/0".into();
    let other = tempfile::tempdir().unwrap();
    let writer = store::Writer::create(other.path(), WriterOptions::default()).unwrap();
    writer.send(half).unwrap();
    writer.finish().unwrap();
    let err = collect::plan::skip_done_groups(longer, other.path(), 2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("countdown-v0/3") && err.contains("1 of 2"),
        "{err}"
    );
}

#[test]
fn pass_rate_filter_drops_retired_prompts_before_playing() {
    let plan = collect::plan(&["countdown-v0".into()], 4, 0, None);
    let rows = Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    collect::collect(
        &plan[..2],
        &policy::ExpertPolicy,
        &CollectOptions::default(),
        &sink,
        &|_| {},
    )
    .unwrap();
    let mut history = PassRateHistory::default();
    history.record(&rows.into_inner().unwrap());
    let (kept, filter) =
        collect::plan::filter_plan(plan.clone(), &history, 0.9, &Default::default()).unwrap();
    assert_eq!((filter.kept, filter.dropped), (2, 2));
    assert_eq!(kept, plan[2..]);
    let (kept, _) =
        collect::plan::filter_plan(plan.clone(), &history, 1.5, &Default::default()).unwrap();
    assert_eq!(kept, plan);
}
