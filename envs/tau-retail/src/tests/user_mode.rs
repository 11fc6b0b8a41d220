//! User-simulator mode: the customer's turns, the scripted customer, `###STOP###`, the bound on
//! customer turns, a random customer, and (when the original data is present) every tau2 task.

use sandgym_sdk::{Action, Env, Message, Rng, Role, StepOutput, Value, json};
use tau_common::user::{AGENT_GREETING, CONFIRM_REPLY, STOP};
use tau_common::{RESPOND, TauTask};

use super::common::*;
use crate::TauRetail;
use crate::tools;

fn user_env(extra: Value) -> TauRetail {
    let mut config = json!({"mode": "user"});
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    env_with(config)
}

/// Plays the episode with `pick` choosing each move (`true` when it is the customer's turn), as a
/// host does: the customer answers whenever a step hands it a user turn. Returns the last output, the
/// agent's transcript (what a trajectory records) and the number of customer turns.
fn play(
    env: &mut TauRetail,
    user_turn: bool,
    mut pick: impl FnMut(&mut TauRetail, bool) -> Action,
) -> (StepOutput, Vec<Message>, usize) {
    let mut transcript = Vec::new();
    let mut users_turn = user_turn;
    let mut user_turns = 0;
    for _ in 0..400 {
        let action = pick(env, users_turn);
        if users_turn {
            user_turns += 1;
        } else {
            transcript.push(Message::assistant(&action));
        }
        let out = env.step(&action);
        transcript.extend(out.messages.iter().cloned());
        users_turn = out.user_turn.is_some();
        if out.terminated || out.truncated {
            assert!(out.user_turn.is_none(), "an ended episode waits for nobody");
            return (out, transcript, user_turns);
        }
    }
    panic!("the episode did not end");
}

fn expert_move(env: &mut TauRetail, _user: bool) -> Action {
    env.expert().expect("an expert move on either side's turn")
}

#[test]
fn reset_waits_for_the_customer_to_open() {
    let mut env = user_env(json!({}));
    let reset = env.reset(4, None).unwrap();
    assert_eq!(reset.messages.len(), 1, "only the system prompt");
    assert_eq!(reset.messages[0].role, Role::System);
    assert!(reset.messages[0].content.contains("A live customer"));
    assert!(!reset.messages[0].content.contains("Solo mode"));
    assert_eq!(reset.info["mode"], "user");
    let turn = reset.user_turn.expect("the customer opens");
    let instruction = env.task().unwrap().instruction.clone();
    assert_eq!(turn.messages.len(), 2);
    assert_eq!(turn.messages[0].role, Role::System);
    assert!(turn.messages[0].content.contains(&instruction));
    assert!(turn.messages[0].content.contains(STOP));
    assert_eq!(turn.messages[1], Message::user(AGENT_GREETING));
    // The scripted customer opens with the request; admissible replies include stopping.
    let opening = env.expert().unwrap();
    assert_eq!(opening, Action::text(instruction.clone()));
    let actions = env.actions();
    assert_eq!(actions[0], opening);
    assert!(actions.contains(&Action::text(STOP)));
    assert!(actions.iter().all(|a| a.tool_calls.is_empty()));
    // The customer's reply is the agent's first user message; then it is the agent's turn.
    let out = env.step(&opening);
    assert_eq!(out.messages, vec![Message::user(instruction)]);
    assert!(out.user_turn.is_none() && !out.terminated && out.reward == 0.0);
    assert_eq!(out.info["user_turns"], 1);
    assert!(env.expert().unwrap().tool_calls.len() == 1);
}

#[test]
fn solo_mode_is_unchanged() {
    let mut env = env_with(json!({}));
    let reset = env.reset(4, None).unwrap();
    assert_eq!(reset.messages.len(), 2);
    assert!(reset.user_turn.is_none());
    assert!(reset.messages[0].content.contains("Solo mode"));
    let out = env.step(&act(RESPOND, json!({"content": "hello"})));
    assert!(out.user_turn.is_none());
    assert!(text(&out).contains("nothing to add"));
}

#[test]
fn respond_hands_over_and_the_customer_sees_the_agent_as_user() {
    let mut env = user_env(json!({}));
    let reset = env.reset(9, None).unwrap();
    let instruction = env.task().unwrap().instruction.clone();
    env.step(&Action::text(instruction.clone()));
    // A read keeps the turn; two responds in one turn reach the customer as one message.
    let out = env.step(&act(tools::LIST_ALL_PRODUCT_TYPES, json!({})));
    assert!(out.user_turn.is_none());
    let mut action = act(RESPOND, json!({"content": "First."}));
    action.tool_calls.push(sandgym_sdk::ToolCall::new(
        "call_1",
        RESPOND,
        &json!({"content": "Second."}),
    ));
    let out = env.step(&action);
    assert_eq!(out.messages.len(), 2);
    assert!(out.messages.iter().all(|m| m.role == Role::Tool));
    assert_eq!(
        out.messages[0].content,
        tau_common::conversation::USER_RESPOND_REPLY
    );
    let turn = out.user_turn.expect("the customer answers a respond");
    let view = &turn.messages;
    assert_eq!(view[0], reset.user_turn.unwrap().messages[0]);
    assert_eq!(view[2].role, Role::Assistant);
    assert_eq!(view[2].content, instruction);
    assert_eq!(view.last().unwrap(), &Message::user("First.\n\nSecond."));
    // The customer's answer ends its turn; the agent goes on.
    let out = env.step(&Action::text("What do you need?"));
    assert_eq!(out.messages, vec![Message::user("What do you need?")]);
    assert!(out.user_turn.is_none());
}

#[test]
fn expert_agent_and_scripted_customer_solve_generated_tasks() {
    let mut env = user_env(json!({}));
    let mut confirmations = 0;
    for seed in 0..80 {
        let reset = env.reset(seed, None).unwrap();
        let task = TauTask::from_json(&reset.task).unwrap();
        let (out, transcript, user_turns) = play(&mut env, true, expert_move);
        assert!(out.terminated, "seed {seed}: {}", out.info);
        assert_eq!(out.reward, 1.0, "seed {seed}: {}", out.info);
        assert!(out.success);
        assert_eq!(out.info["ended_by"], "user_stop", "seed {seed}");
        // The customer opened with the request and ended with ###STOP###.
        assert_eq!(transcript[0], Message::user(task.instruction.clone()));
        assert_eq!(transcript.last().unwrap(), &Message::user(STOP));
        // One confirmation per gold write, plus the opening and the stop.
        let writes = task
            .actions
            .iter()
            .filter(|a| tools::is_write(&a.name))
            .count();
        assert_eq!(user_turns, writes + 2, "seed {seed}");
        confirmations += transcript
            .iter()
            .filter(|m| m.role == Role::User && m.content == CONFIRM_REPLY)
            .count();
        // Every confirmation comes right before the write it confirms.
        for (i, m) in transcript.iter().enumerate() {
            if m.role == Role::User && m.content == CONFIRM_REPLY {
                let next = &transcript[i + 1];
                assert!(tools::is_write(&next.tool_calls[0].name), "seed {seed}");
            }
        }
    }
    assert!(confirmations >= 80, "{confirmations}");
}

#[test]
fn stopping_early_runs_the_verifier_and_fails() {
    let mut env = user_env(json!({}));
    env.reset(2, None).unwrap();
    let out = env.step(&Action::text(format!("Never mind. {STOP}")));
    assert!(out.terminated && !out.truncated);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["ended_by"], "user_stop");
    assert_eq!(out.info["db_match"], false);
    assert!(env.expert().is_none(), "nothing to play after the end");
    let after = env.step(&Action::text("hello?"));
    assert!(after.terminated && after.info["reason"] == "episode already over");
}

#[test]
fn scripted_customer_restates_once_then_gives_up() {
    let mut env = user_env(json!({}));
    env.reset(5, None).unwrap();
    let instruction = env.task().unwrap().instruction.clone();
    let opening = env.expert().unwrap();
    env.step(&opening);
    // The agent talks without doing anything: the customer repeats its request, then stops.
    let out = env.step(&act(RESPOND, json!({"content": "Could you tell me more?"})));
    assert!(out.user_turn.is_some());
    let again = env.expert().unwrap();
    assert!(again.content.contains(&instruction), "{}", again.content);
    env.step(&again);
    env.step(&act(RESPOND, json!({"content": "Could you tell me more?"})));
    assert_eq!(env.expert().unwrap(), Action::text(STOP));
}

#[test]
fn customer_turns_are_bounded() {
    let mut env = user_env(json!({"max_user_turns": 2}));
    env.reset(1, None).unwrap();
    env.step(&Action::text("I need help."));
    env.step(&act(RESPOND, json!({"content": "With what?"})));
    let out = env.step(&Action::text("An order."));
    assert!(out.user_turn.is_none());
    let out = env.step(&act(RESPOND, json!({"content": "Which one?"})));
    assert!(out.truncated && !out.terminated, "{}", out.info);
    assert!(out.user_turn.is_none());
    assert_eq!(out.info["reason"], "user turn limit reached");
    assert!(env.expert().is_none());
}

#[test]
fn agent_turn_limit_still_applies_in_user_mode() {
    let mut env = user_env(json!({"max_turns": 3}));
    env.reset(1, None).unwrap();
    env.step(&Action::text("I need help."));
    for i in 0..3 {
        let out = env.step(&act(tools::LIST_ALL_PRODUCT_TYPES, json!({})));
        assert_eq!(out.truncated, i == 2);
    }
}

#[test]
fn random_customer_never_breaks_the_env() {
    let mut env = user_env(json!({"max_turns": 60}));
    let mut solved = 0;
    let episodes = 60;
    for seed in 0..episodes {
        env.reset(seed, None).unwrap();
        let mut rng = Rng::new(seed ^ 0x5eed);
        let (out, transcript, _) = play(&mut env, true, |env, user| {
            if user {
                let actions = env.actions();
                assert!(!actions.is_empty());
                rng.choose(&actions).clone()
            } else {
                env.expert().unwrap()
            }
        });
        assert!(out.terminated || out.truncated);
        assert!(transcript.iter().all(|m| m.role != Role::System));
        solved += usize::from(out.success);
    }
    eprintln!("random customer: {solved}/{episodes} solved");
    assert!(solved < episodes as usize / 2, "{solved}/{episodes}");
}

#[test]
fn replaying_the_recorded_turns_gives_the_same_episode() {
    let mut env = user_env(json!({}));
    let reset = env.reset(11, None).unwrap();
    let (first, transcript, _) = play(&mut env, true, expert_move);
    // Replay from the transcript alone: assistant messages are agent actions, and the user messages
    // that follow a hand-over (or open the episode) are the customer's replies.
    env.reset(11, Some(reset.task.clone())).unwrap();
    let mut users_turn = true;
    let mut replayed = Vec::new();
    let mut last = None;
    for m in &transcript {
        let action = match m.role {
            Role::Assistant => Action {
                content: m.content.clone(),
                tool_calls: m.tool_calls.clone(),
                format_error: None,
            },
            Role::User if users_turn => Action::text(m.content.clone()),
            _ => continue,
        };
        if m.role == Role::Assistant {
            replayed.push(m.clone());
        }
        let out = env.step(&action);
        users_turn = out.user_turn.is_some();
        replayed.extend(out.messages.iter().cloned());
        last = Some(out);
    }
    assert_eq!(replayed, transcript);
    assert_eq!(last.unwrap(), first);
}

#[test]
fn all_tau2_retail_tasks_solve_with_the_scripted_customer() {
    let Some(dir) = tau_data_dir() else { return };
    let tasks = read_json(dir.join("tau2/retail/tasks.json"));
    let mut env = env_with(json!({"db": v1_db(&dir), "mode": "user"}));
    let mut most_agent_turns = 0;
    for task in tasks.as_array().unwrap() {
        let id = task["id"].as_str().unwrap();
        env.reset(0, Some(task.clone()))
            .unwrap_or_else(|e| panic!("task {id}: {e}"));
        let (out, transcript, _) = play(&mut env, true, expert_move);
        assert!(out.terminated, "task {id}: {}", out.info);
        assert_eq!(out.reward, 1.0, "task {id}: {}", out.info);
        let agent_turns = transcript
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count();
        most_agent_turns = most_agent_turns.max(agent_turns);
    }
    eprintln!("most agent turns in a tau2 retail task (user mode): {most_agent_turns}");
}
