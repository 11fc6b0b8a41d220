//! User-simulator mode of the airline env: the customer opens, the scripted customer and the expert
//! agent solve generated tasks, `###STOP###` and the customer-turn bound end episodes.

use sandgym_sdk::{Action, Env, Message, Role, StepOutput, Value, json};
use tau_common::user::{AGENT_GREETING, STOP};

use super::*;

fn user_env(extra: Value) -> TauAirline {
    let mut config = json!({"mode": "user"});
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    let mut env = TauAirline::default();
    env.configure(&config).expect("valid config");
    env
}

/// Plays expert against scripted customer until the end: the last output and the customer turns.
fn play_expert(env: &mut TauAirline) -> (StepOutput, usize) {
    let mut user_turns = 0;
    let mut users_turn = true;
    for _ in 0..300 {
        let action = env.expert().expect("a move on either side's turn");
        user_turns += usize::from(users_turn);
        let out = env.step(&action);
        users_turn = out.user_turn.is_some();
        if out.terminated || out.truncated {
            return (out, user_turns);
        }
    }
    panic!("the episode did not end");
}

#[test]
fn user_mode_prompt_replaces_the_solo_paragraph() {
    assert!(
        SYSTEM_PROMPT.contains(SOLO_HOW),
        "SOLO_HOW must be a paragraph of the prompt"
    );
    let user = system_prompt(Mode::User);
    assert!(user.contains(USER_HOW) && !user.contains(SOLO_HOW));
    assert!(user.contains("Compensation"), "the policy stays");
    assert_eq!(system_prompt(Mode::Solo), SYSTEM_PROMPT);
}

#[test]
fn reset_waits_for_the_customer() {
    let mut env = user_env(json!({}));
    let reset = env.reset(3, None).unwrap();
    assert_eq!(reset.messages.len(), 1);
    assert!(reset.messages[0].content.contains("a live customer"));
    let turn = reset.user_turn.unwrap();
    let instruction = env.task().unwrap().instruction.clone();
    assert!(turn.messages[0].content.contains(&instruction));
    assert_eq!(turn.messages[1], Message::user(AGENT_GREETING));
    let opening = env.expert().unwrap();
    assert_eq!(opening, Action::text(instruction.clone()));
    let out = env.step(&opening);
    assert_eq!(out.messages, vec![Message::user(instruction)]);
    assert!(out.user_turn.is_none());
    // Solo mode keeps the ticket in the reset.
    let mut solo = TauAirline::default();
    let reset = solo.reset(3, None).unwrap();
    assert_eq!(reset.messages.len(), 2);
    assert!(reset.user_turn.is_none());
}

#[test]
fn expert_and_scripted_customer_solve_generated_tasks() {
    let mut env = user_env(json!({}));
    for seed in 0..40 {
        env.reset(seed, None).unwrap();
        let (out, user_turns) = play_expert(&mut env);
        assert!(out.terminated, "seed {seed}: {}", out.info);
        assert_eq!(out.reward, 1.0, "seed {seed}: {}", out.info);
        assert!(
            out.info["ended_by"] == "user_stop" || out.info["ended_by"] == TRANSFER_TO_HUMAN_AGENTS,
            "seed {seed}: {}",
            out.info
        );
        assert!(user_turns >= 2, "seed {seed}");
    }
}

#[test]
fn stop_and_turn_bound_end_the_episode() {
    let mut env = user_env(json!({"max_user_turns": 1}));
    env.reset(0, None).unwrap();
    let out = env.step(&Action::text(STOP));
    assert!(out.terminated && out.info["ended_by"] == "user_stop");
    assert!(env.expert().is_none());
    env.reset(0, None).unwrap();
    env.step(&Action::text("hello"));
    let out = env.step(&Action::tool(
        RESPOND,
        &json!({"content": "Hi, who are you?"}),
    ));
    assert!(out.truncated && out.info["reason"] == "user turn limit reached");
    assert_eq!(out.messages[0].role, Role::Tool);
}
