//! Early experience: forked branches equal from-scratch replays, K distinct non-expert alternatives per
//! state, recorded demonstrations are checked while replayed, and the dataset files are written.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use sandgym_core::collect::{self, CollectOptions, EpisodeSpec};
use sandgym_core::early::branch::{self, BranchOptions, EpisodeInput, Method, Verify};
use sandgym_core::early::samplers::{self, Sampler, SamplerSpec, action_key};
use sandgym_core::early::{self, Branch, DatasetOptions, Filters};
use sandgym_core::policy::{Needs, Policy, PolicyInput};
use sandgym_core::{Action, EnvOptions, Error, Role, Trajectory, registry};

/// Branches `inputs` in memory with the default verification; rows sorted by (episode, step, branch).
fn branch_rows(
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    method: Method,
) -> Result<(branch::BranchSummary, Vec<Branch>), Error> {
    branch_rows_with(inputs, sampler, method, Verify::default())
}

fn branch_rows_with(
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    method: Method,
    verify: Verify,
) -> Result<(branch::BranchSummary, Vec<Branch>), Error> {
    let rows = Mutex::new(Vec::<Branch>::new());
    let sink = |group: Vec<Branch>| {
        rows.lock().unwrap().extend(group);
        Ok(())
    };
    let options = BranchOptions {
        run_id: "test".into(),
        method,
        verify,
        ..BranchOptions::default()
    };
    let summary = branch::branch_episodes(inputs, sampler, &options, &sink)?;
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| (&a.episode_id, a.step, a.branch).cmp(&(&b.episode_id, b.step, b.branch)));
    Ok((summary, rows))
}

fn live(env: &str, episodes: u64) -> Vec<EpisodeInput> {
    let id = registry::canonical_id(env).unwrap();
    branch::inputs_from_plan(&collect::plan(&[id], episodes, 100, None))
}

/// Replays `row` from scratch on a fresh env: reset, the state's actions, then the row's action.
/// Returns the env's answer and the admissible actions in the state.
fn replay(row: &Branch) -> (Vec<sandgym_core::Message>, f64, bool, Vec<Action>) {
    let mut env = registry::make(&row.env_id, EnvOptions::default()).unwrap();
    // The seed alone regenerates a generated task; recorded inputs' tasks are remembered by `task_of`.
    env.reset(row.seed, task_of(row)).unwrap();
    for message in row.state.iter().filter(|m| m.role == Role::Assistant) {
        env.step(&branch::action_of(message)).unwrap();
    }
    let admissible = env.actions().unwrap();
    let out = env.step(&branch::action_of(&row.action)).unwrap();
    (
        out.messages,
        out.reward,
        out.terminated || out.truncated,
        admissible,
    )
}

thread_local! {
    static TASKS: std::cell::RefCell<BTreeMap<(String, u64), serde_json::Value>> = Default::default();
}

fn task_of(row: &Branch) -> Option<serde_json::Value> {
    TASKS.with(|t| t.borrow().get(&(row.episode_id.clone(), row.seed)).cloned())
}

fn remember_tasks(inputs: &[EpisodeInput]) {
    TASKS.with(|t| {
        let mut t = t.borrow_mut();
        for input in inputs {
            if let Some(task) = &input.spec.task {
                t.insert((input.episode_id.clone(), input.spec.seed), task.clone());
            }
        }
    });
}

/// The checks of the definition of done, on every branch of `rows`.
fn check_against_replay(rows: &[Branch], k: Option<usize>) {
    let mut by_state: BTreeMap<(&str, u32), Vec<&Branch>> = BTreeMap::new();
    for row in rows {
        by_state
            .entry((&row.episode_id, row.step))
            .or_default()
            .push(row);
    }
    assert!(!by_state.is_empty());
    for ((episode, step), group) in &by_state {
        let expert = group[0];
        assert!(expert.is_expert && expert.branch == 0, "{episode}/{step}");
        let expert_key = action_key(&branch::action_of(&expert.action));
        let mut keys = HashSet::new();
        let mut admissible_others = 0;
        for row in group {
            assert_eq!(row.state_digest, expert.state_digest);
            assert_eq!(row.state, expert.state);
            assert!(row.error_kind.is_none(), "{:?}", row.error_message);
            let (next, reward, done, admissible) = replay(row);
            assert_eq!(
                next, row.next_state,
                "{episode} step {step} branch {}",
                row.branch
            );
            assert_eq!(reward, row.reward);
            assert_eq!(done, row.done);
            admissible_others = admissible
                .iter()
                .filter(|a| action_key(a) != expert_key)
                .map(action_key)
                .collect::<HashSet<_>>()
                .len();
            if row.branch > 0 {
                assert!(!row.is_expert);
                let key = action_key(&branch::action_of(&row.action));
                assert_ne!(key, expert_key, "an alternative equals the expert action");
                assert!(keys.insert(key), "alternatives repeat");
            }
        }
        if let Some(k) = k {
            assert_eq!(
                keys.len(),
                k.min(admissible_others),
                "{episode} step {step}: {} alternatives",
                keys.len()
            );
        }
    }
}

/// Calculates with the first non-expert admissible `calc` for `calcs` turns, then plays the expert: a
/// multi-step demonstration for envs whose expert finishes at once.
struct CalcThenExpert {
    calcs: u32,
}

impl Policy for CalcThenExpert {
    fn name(&self) -> &str {
        "calc-then-expert"
    }
    fn needs(&self) -> Needs {
        Needs {
            expert: true,
            admissible: true,
        }
    }
    fn act(&self, input: &PolicyInput<'_>) -> sandgym_core::Result<Action> {
        if input.turn < self.calcs
            && let Some(calc) = input
                .admissible
                .iter()
                .filter(|a| a.tool_calls.first().is_some_and(|c| c.name == "calc"))
                .nth(input.turn as usize)
        {
            return Ok(calc.clone());
        }
        Ok(input.expert.cloned().expect("countdown has an expert"))
    }
}

fn countdown_demos(episodes: u64, calcs: u32) -> Vec<Trajectory> {
    let plan = collect::plan(&["countdown-v0".to_string()], episodes, 7, None);
    let rows = Mutex::new(Vec::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    collect::collect(
        &plan,
        &CalcThenExpert { calcs },
        &CollectOptions::default(),
        &sink,
        &|_| {},
    )
    .unwrap();
    let mut rows: Vec<Trajectory> = rows.into_inner().unwrap();
    rows.sort_by_key(|t| t.episode_index);
    rows
}

#[test]
fn countdown_forks_match_replays_on_every_branch() {
    let demos = countdown_demos(4, 5);
    assert!(
        demos
            .iter()
            .all(|t| t.num_turns == 6 && t.error_kind.is_none())
    );
    let (inputs, skipped) = branch::inputs_from_trajectories(&demos).unwrap();
    assert_eq!((inputs.len(), skipped), (4, 0));
    remember_tasks(&inputs);
    let sampler = samplers::UniformSampler { k: 8 };
    let (summary, forked) = branch_rows(&inputs, &sampler, Method::Fork).unwrap();
    assert_eq!(summary.states, 24);
    assert_eq!(forked.len() as u64, summary.branches);
    check_against_replay(&forked, Some(8));
    // The replay-from-reset method gives the same rows, with many more env steps, under every
    // verification level (the digests differ by level, the outcomes do not).
    let (replay_summary, replayed) = branch_rows(&inputs, &sampler, Method::Replay).unwrap();
    assert_eq!(forked, replayed);
    assert!(replay_summary.env_steps > 2 * summary.env_steps);
    for verify in [Verify::Full, Verify::Expert] {
        let (_, fork_rows) = branch_rows_with(&inputs, &sampler, Method::Fork, verify).unwrap();
        let (_, replay_rows) = branch_rows_with(&inputs, &sampler, Method::Replay, verify).unwrap();
        assert_eq!(fork_rows, replay_rows);
        let outcomes = |rows: &[Branch]| -> Vec<_> {
            rows.iter()
                .map(|r| (r.action.clone(), r.next_state.clone()))
                .collect()
        };
        assert_eq!(outcomes(&fork_rows), outcomes(&forked));
    }
    // The live expert path (one submission per countdown episode) works too.
    let (_, live_rows) = branch_rows(&live("countdown", 3), &sampler, Method::Fork).unwrap();
    check_against_replay(&live_rows, Some(8));
}

#[test]
fn tau_retail_forks_match_replays_with_both_samplers() {
    let inputs = live("tau-retail", 3);
    let uniform = samplers::UniformSampler { k: 8 };
    let (summary, rows) = branch_rows(&inputs, &uniform, Method::Fork).unwrap();
    assert!(summary.states >= 9, "{summary:?}");
    check_against_replay(&rows, Some(8));
    let schema = samplers::ToolSchemaSampler {
        k: 5,
        exclude_expert_tool: true,
    };
    let (_, rows) = branch_rows(&inputs, &schema, Method::Fork).unwrap();
    check_against_replay(&rows, None);
    let mut by_state: BTreeMap<(String, u32), Vec<&Branch>> = BTreeMap::new();
    for row in &rows {
        by_state
            .entry((row.episode_id.clone(), row.step))
            .or_default()
            .push(row);
    }
    for group in by_state.values() {
        assert_eq!(group.len(), 6, "expert + K=5 tool-schema alternatives");
        let expert_tool = &group[0].action.tool_calls[0].name;
        assert!(
            group[1..]
                .iter()
                .all(|b| &b.action.tool_calls[0].name != expert_tool)
        );
    }
    // Invalid actions are kept: their error observations are recorded as outcomes.
    assert!(
        rows.iter()
            .any(|r| r.observation_error && r.error_kind.is_none())
    );
}

#[test]
fn every_env_listing_actions_branches_like_a_replay() {
    for spec in registry::list().unwrap() {
        if !(spec.info.capabilities.actions && spec.info.capabilities.expert) {
            continue;
        }
        let (_, rows) = branch_rows(
            &live(&spec.id, 2),
            &samplers::UniformSampler { k: 4 },
            Method::Fork,
        )
        .unwrap();
        check_against_replay(&rows, Some(4));
    }
}

#[test]
fn policy_and_exhaustive_samplers_exclude_the_expert() {
    let inputs = live("countdown", 2);
    for spec in [
        SamplerSpec {
            name: "policy".into(),
            k: Some(3),
            policy: "random".into(),
            temperatures: vec![0.5, 1.0],
            ..SamplerSpec::default()
        },
        SamplerSpec {
            name: "policy".into(),
            k: Some(3),
            policy: "expert".into(),
            ..SamplerSpec::default()
        },
        SamplerSpec {
            name: "exhaustive".into(),
            ..SamplerSpec::default()
        },
    ] {
        let sampler = samplers::by_name(&spec).unwrap();
        let (_, rows) = branch_rows(&inputs, sampler.as_ref(), Method::Fork).unwrap();
        let k = (spec.name == "policy").then_some(3);
        check_against_replay(&rows, k);
    }
}

#[test]
fn recorded_trajectories_that_do_not_replay_are_refused() {
    let mut demos = countdown_demos(1, 2);
    let sampler = samplers::UniformSampler { k: 2 };
    // A tampered observation.
    let tool = demos[0]
        .messages
        .iter_mut()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    tool.content.push_str(" (edited)");
    let (inputs, _) = branch::inputs_from_trajectories(&demos).unwrap();
    let err = branch_rows(&inputs, &sampler, Method::Fork).unwrap_err();
    assert!(
        err.to_string().contains("another answer than recorded"),
        "{err}"
    );
    // Another task than the one recorded.
    let mut demos = countdown_demos(1, 2);
    demos[0].task = countdown_demos(1, 2)[0]
        .task
        .replace("\"target\":", "\"target\": 1");
    let (inputs, _) = branch::inputs_from_trajectories(&demos).unwrap();
    assert!(branch_rows(&inputs, &sampler, Method::Fork).is_err());
    // A task that is not JSON is a clear error, rows without a step are skipped.
    let mut broken = countdown_demos(1, 0);
    broken[0].task = "{".into();
    let err = branch::inputs_from_trajectories(&broken).unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let mut empty = countdown_demos(1, 0);
    empty[0].messages.truncate(2);
    assert_eq!(branch::inputs_from_trajectories(&empty).unwrap().0.len(), 0);
}

#[test]
fn fingerprints_tell_states_apart_and_forks_share_them() {
    for verify in [Verify::State, Verify::Full, Verify::Expert] {
        let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
        env.reset(3, None).unwrap();
        let s0 = branch::fingerprint(&mut env, verify).unwrap();
        let mut fork = env.fork().unwrap();
        assert_eq!(branch::fingerprint(&mut fork, verify).unwrap(), s0);
        // Another task: another fingerprint.
        let mut other = registry::make("countdown", EnvOptions::default()).unwrap();
        other.reset(4, None).unwrap();
        assert_ne!(branch::fingerprint(&mut other, verify).unwrap(), s0);
        // Another position in the same episode: another fingerprint (tau-retail's expert moves on).
        let mut tau = registry::make("tau-retail", EnvOptions::default()).unwrap();
        tau.reset(0, None).unwrap();
        let t0 = branch::fingerprint(&mut tau, verify).unwrap();
        let action = tau.expert().unwrap().unwrap();
        tau.step(&action).unwrap();
        assert_ne!(branch::fingerprint(&mut tau, verify).unwrap(), t0);
    }
}

#[test]
fn samplers_that_need_admissible_actions_say_so() {
    let sampler = samplers::by_name(&SamplerSpec::default()).unwrap();
    assert!(sampler.requires_admissible());
    assert!(
        samplers::by_name(&SamplerSpec {
            k: Some(0),
            ..SamplerSpec::default()
        })
        .is_err()
    );
}

#[test]
fn run_to_dir_writes_every_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ee");
    let (inputs, _) = branch::inputs_from_trajectories(&countdown_demos(2, 2)).unwrap();
    let sampler = samplers::UniformSampler { k: 3 };
    let options = BranchOptions::default();
    let summary = early::run_to_dir(
        &inputs,
        &sampler,
        &options,
        &DatasetOptions::default(),
        &out,
    )
    .unwrap();
    assert_eq!(summary.branching.states, 6);
    assert_eq!(summary.expert_rows, 6);
    assert_eq!(summary.iwm_rows, 6 * 4);
    assert_eq!(summary.prompt_rows, 6);
    for path in early::output_paths(&out) {
        assert!(path.is_file(), "{}", path.display());
    }
    let again = early::run_to_dir(
        &inputs,
        &sampler,
        &options,
        &DatasetOptions::default(),
        &out,
    );
    assert!(again.unwrap_err().to_string().contains("already exists"));
    // Reflection SFT from reflections written here, with and without filters.
    let prompts = early::reflection::read_prompts(&out.join(early::files::PROMPTS)).unwrap();
    assert_eq!(prompts.len(), 6);
    assert!(
        prompts[0].messages[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You will be presented with a situation")
    );
    let reflections: Vec<early::reflection::FilledReflection> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| early::reflection::FilledReflection {
            id: p.id.clone(),
            reflection: if i == 0 {
                "The expert action is clearly the best.".into()
            } else {
                format!("Weighing the options, I go with {}.", p.expert_action)
            },
        })
        .collect();
    let plain = early::build_reflection_sft(
        &prompts,
        &reflections,
        &Filters::default(),
        &dir.path().join("plain"),
    )
    .unwrap();
    assert_eq!((plain.kept, plain.dropped, plain.missing), (6, 0, 0));
    let filtered = early::build_reflection_sft(
        &prompts,
        &reflections[..5],
        &Filters {
            label_leak: true,
            ..Filters::default()
        },
        &dir.path().join("filtered"),
    )
    .unwrap();
    assert_eq!(
        (filtered.kept, filtered.dropped, filtered.missing),
        (4, 1, 1)
    );
    let unknown = [early::reflection::FilledReflection {
        id: "nope".into(),
        reflection: "x".into(),
    }];
    assert!(
        early::build_reflection_sft(
            &prompts,
            &unknown,
            &Filters::default(),
            &dir.path().join("u")
        )
        .is_err()
    );
}

/// Workers finish episodes in any order; the files list them in input order, so two runs write the
/// same bytes.
#[test]
fn run_to_dir_writes_in_input_order_whatever_the_scheduling() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, _) = branch::inputs_from_trajectories(&countdown_demos(8, 3)).unwrap();
    let sampler = samplers::UniformSampler { k: 2 };
    let options = BranchOptions {
        run_id: "fixed".into(),
        ..BranchOptions::default()
    };
    let write = |name: &str| {
        let out = dir.path().join(name);
        early::run_to_dir(
            &inputs,
            &sampler,
            &options,
            &DatasetOptions::default(),
            &out,
        )
        .unwrap();
        out
    };
    let (first, second) = (write("a"), write("b"));
    let prompts = early::reflection::read_prompts(&first.join(early::files::PROMPTS)).unwrap();
    let order: Vec<(usize, u32)> = prompts
        .iter()
        .map(|p| {
            let episode = inputs
                .iter()
                .position(|i| i.episode_id == p.episode_id)
                .unwrap();
            (episode, p.step)
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "prompts follow the inputs, states in order");
    assert_eq!(order.first(), Some(&(0, 0)));
    for name in [
        early::files::PROMPTS,
        early::files::PROMPTS_DELEAKED,
        "expert_sft.jsonl",
        "iwm_sft.jsonl",
    ] {
        assert_eq!(
            std::fs::read(first.join(name)).unwrap(),
            std::fs::read(second.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn reflections_are_read_from_jsonl_and_parquet() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, LargeStringArray, RecordBatch, StringArray};

    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("r.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"reflection\": \"one\"}\n\n{\"id\": \"b\", \"reflection\": \"two\"}\n",
    )
    .unwrap();
    let want = vec![
        early::reflection::FilledReflection {
            id: "a".into(),
            reflection: "one".into(),
        },
        early::reflection::FilledReflection {
            id: "b".into(),
            reflection: "two".into(),
        },
    ];
    assert_eq!(early::reflection::read_reflections(&jsonl).unwrap(), want);
    let write = |name: &str, columns: Vec<(&str, ArrayRef)>| {
        let path = dir.path().join(name);
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    };
    // Extra columns are ignored; polars-style large strings are read too.
    let parquet = write(
        "r.parquet",
        vec![
            (
                "score",
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            ),
            (
                "reflection",
                Arc::new(LargeStringArray::from(vec!["one", "two"])),
            ),
            ("id", Arc::new(StringArray::from(vec!["a", "b"]))),
        ],
    );
    assert_eq!(early::reflection::read_reflections(&parquet).unwrap(), want);
    let missing = write(
        "m.parquet",
        vec![("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)],
    );
    let err = early::reflection::read_reflections(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no `reflection` column"), "{err}");
    let nulls = write(
        "n.parquet",
        vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            (
                "reflection",
                Arc::new(StringArray::from(vec!["one", "two"])),
            ),
        ],
    );
    let err = early::reflection::read_reflections(&nulls)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1 has a null id"), "{err}");
}

#[test]
fn episodes_without_expert_or_actions_are_refused_up_front() {
    let spec = EpisodeSpec {
        env_id: "countdown-v0".into(),
        episode_index: 0,
        seed: 0,
        task: None,
    };
    let inputs = branch::inputs_from_plan(&[spec]);
    // An env id that does not exist fails before any work.
    let mut bad = inputs.clone();
    bad[0].spec.env_id = "no-such-env".into();
    assert!(branch_rows(&bad, &samplers::UniformSampler { k: 2 }, Method::Fork).is_err());
}

#[test]
fn schema_doc_lists_every_branches_column_in_order() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let section = doc
        .split("## Branches table")
        .nth(1)
        .expect("a Branches table section");
    let documented: Vec<String> = section
        .lines()
        .skip_while(|line| !line.starts_with("| `"))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect();
    let actual: Vec<String> = early::table::branches_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(documented, actual);
}

/// `Env::admissible` shares its previous list when the guest answers with the same bytes, and decodes
/// a changed answer: along an episode, every list equals the one a fresh env lists in that state.
#[test]
fn admissible_lists_are_shared_exactly_while_unchanged() {
    let (mut shared, mut changed) = (0, 0);
    for env_id in ["countdown", "tau-retail"] {
        let mut env = registry::make(env_id, EnvOptions::default()).unwrap();
        env.reset(5, None).unwrap();
        let mut prefix = Vec::new();
        let mut previous: Option<std::sync::Arc<[Action]>> = None;
        while env.is_running() && prefix.len() < 12 {
            let listed = env.admissible().unwrap();
            let mut fresh = registry::make(env_id, EnvOptions::default()).unwrap();
            fresh.reset(5, None).unwrap();
            for action in &prefix {
                fresh.step(action).unwrap();
            }
            assert_eq!(
                *listed,
                *fresh.actions().unwrap(),
                "{env_id} step {}",
                prefix.len()
            );
            if let Some(previous) = &previous {
                let same = **previous == *listed;
                assert_eq!(std::sync::Arc::ptr_eq(previous, &listed), same);
                if same { shared += 1 } else { changed += 1 }
            }
            // The last listed action: a calc in countdown (the expert would end the episode at once).
            let action = listed.last().cloned().unwrap();
            env.step(&action).unwrap();
            prefix.push(action);
            previous = Some(listed);
        }
    }
    // Both cases occurred: countdown lists the same actions all episode, tau-retail's list changes.
    assert!(
        shared > 0 && changed > 0,
        "{shared} shared, {changed} changed"
    );
}
