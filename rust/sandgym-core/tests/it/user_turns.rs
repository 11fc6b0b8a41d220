//! Simulated-user turns through the real sandbox: the `Env` turn guard, the collector alternating an
//! agent policy and a user policy, the recorded turns in Parquet, and replaying them.

use std::sync::Arc;

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::store::{self, WriterOptions};
use sandgym_core::{Action, EnvOptions, Error, Role, Trajectory, policy, registry};
use serde_json::json;

const TAU: [&str; 2] = ["tau-retail-v0", "tau-airline-v0"];

fn user_options() -> EnvOptions {
    EnvOptions {
        config: json!({"mode": "user"}),
        ..EnvOptions::default()
    }
}

fn options_with(user: Option<Arc<dyn policy::Policy>>) -> CollectOptions {
    CollectOptions {
        env_options: user_options(),
        user_policy: user,
        ..CollectOptions::default()
    }
}

fn collect_rows(
    plan: &[collect::EpisodeSpec],
    agent: &dyn policy::Policy,
    options: &CollectOptions,
) -> (collect::CollectSummary, Vec<Trajectory>) {
    let rows = std::sync::Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let summary = collect::collect(plan, agent, options, &sink, &|_| {}).unwrap();
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|t| (t.env_id.clone(), t.episode_index));
    (summary, rows)
}

#[test]
fn env_guards_whose_turn_it_is() {
    let mut env = registry::make("tau-retail-v0", user_options()).unwrap();
    let reset = env.reset(7, None).unwrap();
    let turn = reset.user_turn.expect("the user opens");
    assert_eq!(turn.messages[0].role, Role::System);
    assert!(env.awaits_user() && env.is_running());
    // The agent may not act now, and the refusal changes nothing.
    let probe = Action::tool("list_all_product_types", &json!({}));
    let err = env.step(&probe).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("user_step"), "{err}");
    assert!(env.awaits_user());
    // The scripted user answers for the user on its turn.
    let opening = env.expert().unwrap().unwrap();
    assert!(opening.tool_calls.is_empty() && !opening.content.is_empty());
    assert!(env.actions().unwrap().contains(&opening));
    let out = env.user_step(&opening.content).unwrap();
    assert_eq!(out.messages[0].role, Role::User);
    assert_eq!(out.messages[0].content, opening.content);
    assert!(!env.awaits_user());
    let err = env.user_step("again").unwrap_err();
    assert!(err.to_string().contains("agent's turn"), "{err}");
    env.step(&probe).unwrap();
    // Snapshots and forks carry whose turn it is.
    let respond = Action::tool("respond", &json!({"content": "How can I help?"}));
    let out = env.step(&respond).unwrap();
    assert!(out.user_turn.is_some() && env.awaits_user());
    let snapshot = env.snapshot().unwrap();
    let mut fork = env.fork().unwrap();
    assert!(fork.awaits_user());
    let a = env.user_step("###STOP###").unwrap();
    let b = fork.user_step("###STOP###").unwrap();
    assert_eq!(a, b);
    assert!(a.terminated && !env.is_running());
    assert!(matches!(env.user_step("x"), Err(Error::ResetNeeded)));
    env.restore(&snapshot).unwrap();
    assert!(env.awaits_user());
    // Solo mode never asks for the user.
    let mut solo = registry::make("tau-retail-v0", EnvOptions::default()).unwrap();
    assert!(solo.reset(7, None).unwrap().user_turn.is_none());
    assert!(!solo.awaits_user());
    assert!(matches!(
        solo.user_step("hi"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn expert_user_policy_solves_and_is_recorded_in_parquet() {
    let ids: Vec<String> = TAU.iter().map(|s| s.to_string()).collect();
    let plan = collect::plan(&ids, 15, 0, None);
    let dir = tempfile::tempdir().unwrap();
    let options = options_with(Some(Arc::new(policy::ExpertPolicy)));
    let (summary, _) = collect::collect_to_dir(
        &plan,
        &policy::ExpertPolicy,
        &options,
        dir.path(),
        WriterOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        (summary.episodes, summary.successes, summary.errors),
        (30, 30, 0)
    );
    let rows = store::read_dir_or_file(dir.path()).unwrap();
    for row in &rows {
        assert_eq!(row.user_policy.as_deref(), Some("expert"));
        assert_eq!(
            row.user_turns[0], 1,
            "the user opens after the system prompt"
        );
        for &i in &row.user_turns {
            assert_eq!(row.messages[i as usize].role, Role::User);
        }
        let last = row.user_turns.last().copied().unwrap() as usize;
        assert_eq!(row.messages[last].content, "###STOP###");
        assert_eq!(last, row.messages.len() - 1);
        assert_eq!(row.turn_rewards.len() as u32, row.num_turns);
        assert_eq!(row.final_reward, 1.0);
    }
}

#[test]
fn recorded_turns_replay_the_episode() {
    let plan = collect::plan(&["tau-retail-v0".into()], 4, 20, None);
    let options = options_with(Some(Arc::new(policy::ExpertPolicy)));
    let (_, rows) = collect_rows(&plan, &policy::ExpertPolicy, &options);
    let mut env = registry::make("tau-retail-v0", user_options()).unwrap();
    for row in rows {
        let task: serde_json::Value = serde_json::from_str(&row.task).unwrap();
        let mut messages = env.reset(row.seed, Some(task)).unwrap().messages;
        let mut last = None;
        for (i, m) in row.messages.iter().enumerate() {
            let out = if row.user_turns.contains(&(i as u32)) {
                env.user_step(&m.content).unwrap()
            } else if m.role == Role::Assistant {
                messages.push(m.clone());
                let action = Action {
                    content: m.content.clone(),
                    tool_calls: m.tool_calls.clone(),
                    format_error: None,
                };
                env.step(&action).unwrap()
            } else {
                continue;
            };
            messages.extend(out.messages.iter().cloned());
            last = Some(out);
        }
        assert_eq!(messages, row.messages, "{}", row.episode_id);
        assert!(last.unwrap().success);
    }
}

#[test]
fn random_or_missing_user_policy_fails_cleanly() {
    let plan = collect::plan(
        &["tau-retail-v0".into(), "tau-airline-v0".into()],
        30,
        0,
        None,
    );
    let random = options_with(Some(Arc::new(policy::RandomPolicy::default())));
    let (summary, rows) = collect_rows(&plan, &policy::ExpertPolicy, &random);
    assert_eq!(summary.errors, 0);
    assert!(summary.success_rate() < 1.0, "{}", summary.success_rate());
    assert!(
        rows.iter()
            .all(|r| r.user_policy.as_deref() == Some("random"))
    );
    let (summary, _) = collect_rows(&plan, &policy::RandomPolicy::default(), &random);
    assert_eq!(summary.errors, 0);
    assert!(summary.success_rate() < 0.2, "{}", summary.success_rate());
    let (summary, rows) = collect_rows(&plan, &policy::ExpertPolicy, &options_with(None));
    assert_eq!(summary.errors, 60);
    assert_eq!(rows[0].error_kind.as_deref(), Some("policy"));
    assert!(
        rows[0]
            .error_message
            .as_ref()
            .unwrap()
            .contains("no user policy")
    );
}
