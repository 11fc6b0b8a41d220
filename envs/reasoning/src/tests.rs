//! Reasoning suite tests: the expert on 1,000 seeds per task and difficulty, perturbed answers and
//! illegal moves rejected, config and task validation, task replay, determinism of the JSON bytes.

use super::*;
use sandgym_sdk::{Env, Envelope, Host, serde_json};

const SEEDS: u64 = 1000;

fn configured(config: Value) -> Reasoning {
    let mut env = Reasoning::default();
    env.configure(&config).unwrap();
    env
}

/// Plays the expert to the end; returns total reward and whether every step was answered without
/// an error message.
fn play_expert(env: &mut Reasoning) -> (f64, bool, StepOutput) {
    let mut reward = 0.0;
    let mut clean = true;
    let mut last = None;
    while let Some(action) = env.expert() {
        let out = env.step(&action);
        reward += out.reward;
        clean &= out.messages.iter().all(|m| !m.content.starts_with("Error"));
        let done = out.terminated || out.truncated;
        last = Some(out);
        if done {
            break;
        }
    }
    (reward, clean, last.expect("the expert acts at least once"))
}

#[test]
fn expert_solves_every_task_on_1000_seeds_at_every_difficulty() {
    for family in tasks::family_names() {
        for difficulty in 1..=LEVELS {
            let mut env = configured(json!({"task": family, "difficulty": difficulty}));
            for seed in 0..SEEDS {
                let reset = env.reset(seed, None).unwrap();
                assert_eq!(reset.task["task"], family);
                let (reward, clean, last) = play_expert(&mut env);
                assert_eq!(
                    reward, 1.0,
                    "{family} level {difficulty} seed {seed}: {last:?}"
                );
                assert!(clean && last.success && last.terminated && !last.truncated);
                assert!(env.expert().is_none(), "no expert move after the end");
            }
        }
    }
}

/// Wrong answers derived from the expert's by hand, per task, so the test does not trust the
/// family's own notion of a wrong answer: every one of them must be rejected.
fn perturbations(task: &Value, expert: &str) -> Vec<String> {
    let name = task["task"].as_str().unwrap();
    let int = || expert.parse::<i128>().unwrap();
    match name {
        "basic_arithmetic" | "chain_sum" | "gcd" | "lcm" | "letter_counting" => {
            vec![
                (int() + 1).to_string(),
                (int() - 1).to_string(),
                format!("{expert}.5"),
            ]
        }
        "prime_factorization" => {
            let factors: Vec<&str> = expert.split(" × ").collect();
            let mut wrong = vec![format!("{expert} × 2"), format!("{expert} × 1")];
            if factors.len() > 1 {
                wrong.push(factors[1..].join(" × "));
            } else {
                wrong.push((task["value"].as_i64().unwrap() + 1).to_string());
            }
            wrong
        }
        // A leading 1 makes a different number; a leading 0 is not canonical.
        "base_conversion" => vec![format!("1{expert}"), format!("0{expert}")],
        "number_sorting" => {
            let items: Vec<&str> = expert.trim_matches(['[', ']']).split(", ").collect();
            let mut wrong = vec![format!("[{}]", items[..items.len() - 1].join(", "))];
            let mut values: Vec<f64> = items
                .iter()
                .map(|i| i.trim_matches('\'').parse().unwrap())
                .collect();
            values.dedup();
            if values.len() > 1 {
                let reversed: Vec<&str> = items.iter().rev().copied().collect();
                wrong.push(format!("[{}]", reversed.join(", ")));
            }
            wrong
        }
        "countdown" | "puzzle24" => {
            // Bump the first literal: the numbers used no longer match the given ones.
            let start = expert.find(|c: char| c.is_ascii_digit()).unwrap();
            let len = expert[start..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(expert.len() - start);
            let n: i64 = expert[start..start + len].parse().unwrap();
            let mut bumped = expert.to_string();
            bumped.replace_range(start..start + len, &(n + 1).to_string());
            vec![bumped, format!("{expert} + 0"), format!("({expert}) * 1")]
        }
        "mini_sudoku" | "n_queens" => {
            // Change one cell of the complete grid: a repeat, a conflict or a lost given.
            let mut rows: Vec<Vec<String>> = tasks::parse_grid_answer(expert);
            let changed = match rows[0][0].as_str() {
                "1" => "2",
                "2" | "3" | "4" => "1",
                "Q" => "_",
                _ => "Q",
            };
            rows[0][0] = changed.to_string();
            let mut swapped_rows = tasks::parse_grid_answer(expert);
            swapped_rows.swap(0, 1);
            let mut wrong = vec![tasks::render_grid(&rows)];
            if swapped_rows != tasks::parse_grid_answer(expert) && name == "mini_sudoku" {
                wrong.push(tasks::render_grid(&swapped_rows));
            }
            wrong
        }
        "knights_knaves" => {
            let flipped = if expert.contains("is a knight") {
                expert.replacen("is a knight", "is a knave", 1)
            } else {
                expert.replacen("is a knave", "is a knight", 1)
            };
            let first_clause = expert.split(", ").next().unwrap().to_string();
            vec![flipped, first_clause]
        }
        "shortest_path" => {
            if expert == "infeasible" {
                vec!["right".to_string(), "".to_string()]
            } else {
                let steps: Vec<&str> = expert.split(' ').collect();
                vec![
                    "infeasible".to_string(),
                    steps[..steps.len() - 1].join(" "),
                    format!("{expert} up down"),
                    format!("{expert} left right"),
                ]
            }
        }
        other => panic!("no perturbations for {other}"),
    }
}

#[test]
fn verifiers_reject_perturbed_answers() {
    for family in tasks::FAMILIES {
        let mut env = configured(json!({"task": family.name(), "difficulty": 3}));
        for seed in 0..200 {
            let reset = env.reset(seed, None).unwrap();
            let Some(Instance::Answer(puzzle)) = env.instance() else {
                continue;
            };
            let expert = puzzle.expert_answer();
            assert_eq!(puzzle.verify(&expert), Ok(()));
            // Whitespace around an answer is normalized away.
            assert_eq!(puzzle.verify(&format!("  {expert}\n")), Ok(()));
            for wrong in perturbations(&reset.task, &expert) {
                assert!(
                    puzzle.verify(&wrong).is_err(),
                    "{} seed {seed}: {wrong:?} accepted (expert {expert:?})",
                    family.name()
                );
            }
            let near_misses = puzzle.wrong_answers();
            assert!(!near_misses.is_empty(), "{} seed {seed}", family.name());
            for wrong in near_misses {
                assert!(
                    puzzle.verify(&wrong).is_err(),
                    "{}: {wrong:?}",
                    family.name()
                );
            }
        }
    }
}

#[test]
fn a_wrong_submission_ends_the_task_with_zero_reward() {
    let mut env = configured(json!({"task": "gcd"}));
    env.reset(3, Some(json!({"task": "gcd", "numbers": [12, 18]})))
        .unwrap();
    let out = env.step(&submit("5"));
    assert!(out.terminated && !out.success);
    assert_eq!(out.reward, 0.0);
    assert!(out.messages[0].content.starts_with("Incorrect"));
    env.reset(3, Some(json!({"task": "gcd", "numbers": [12, 18]})))
        .unwrap();
    let out = env.step(&submit(" 6 "));
    assert!(out.success && out.reward == 1.0);
}

#[test]
fn hand_checked_answers() {
    let cases = [
        (
            json!({"task": "basic_arithmetic", "expression": "4 + 3 * (12 / 4) - 7"}),
            "6",
            "10",
        ),
        (
            json!({"task": "chain_sum", "expression": "48 + 23 - 91"}),
            "-20",
            "20",
        ),
        (json!({"task": "lcm", "numbers": [4, 6]}), "12", "24"),
        (
            json!({"task": "prime_factorization", "value": 60}),
            "5 * 3 × 2 x 2",
            "2 × 3 × 10",
        ),
        (
            json!({"task": "base_conversion", "value": 255, "source_base": 10, "target_base": 16}),
            "FF",
            "0xff",
        ),
        (
            json!({"task": "number_sorting", "numbers": ["3.5", "-1", "2"], "descending": false}),
            "-1, 2, 3.50",
            "['-1', '3.5', '2']",
        ),
        (
            json!({"task": "letter_counting", "text": "Every evening", "letter": "e"}),
            "4",
            "3",
        ),
        (
            json!({"task": "puzzle24", "numbers": [3, 3, 8, 8]}),
            "8 / (3 - 8 / 3)",
            "8 * 3 + 8 - 8",
        ),
        (
            json!({"task": "countdown", "numbers": [25, 3, 4], "target": 88, "solution": "(25 - 3) * 4"}),
            "4*(25-3)",
            "(25 - 3) * 4 + 0",
        ),
        (
            json!({"task": "shortest_path", "grid": ["*O", "X#"]}),
            "right down",
            "down right",
        ),
        (
            json!({"task": "shortest_path", "grid": ["*X", "X#"]}),
            "Infeasible",
            "right down",
        ),
        (
            json!({"task": "n_queens", "board": ["_Q__", "____", "Q___", "____"]}),
            "_ Q _ _\n_ _ _ Q\nQ _ _ _\n_ _ Q _",
            "_ Q _ _\n_ _ _ Q\nQ _ _ _\n_ _ _ Q",
        ),
        (
            json!({"task": "mini_sudoku", "puzzle": [[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 0, 0]]}),
            "1234\n3412\n2143\n4321",
            "1234\n3412\n2143\n4312",
        ),
        (
            json!({"task": "knights_knaves", "names": ["Zoey", "Riley"], "claims": [["is", 1, "knave"], ["and", ["is", 0, "knave"], ["is", 1, "knave"]]]}),
            "zoey is a knight and riley is a knave",
            "Zoey is a knave, and Riley is a knave",
        ),
    ];
    for (task, right, wrong) in cases {
        let mut env = Reasoning::default();
        env.reset(0, Some(task.clone())).unwrap();
        let Some(Instance::Answer(puzzle)) = env.instance() else {
            panic!("{task}")
        };
        assert_eq!(puzzle.verify(right), Ok(()), "{task}");
        assert!(puzzle.verify(wrong).is_err(), "{task}: {wrong}");
    }
}

fn game_step(env: &mut Reasoning, tool: &str, args: Value) -> StepOutput {
    env.step(&Action::tool(tool, &args))
}

#[test]
fn hanoi_refuses_illegal_moves_and_ends_when_the_budget_is_spent() {
    let mut env = Reasoning::default();
    env.reset(
        0,
        Some(json!({"task": "tower_of_hanoi", "disks": 2, "start": 1, "target": 3})),
    )
    .unwrap();
    // Budget 2 * 3 = 6 moves.
    let out = game_step(&mut env, "move_disk", json!({"from": 2, "to": 3}));
    assert!(
        out.messages[0].content.contains("peg 2 is empty"),
        "{out:?}"
    );
    game_step(&mut env, "move_disk", json!({"from": 1, "to": 2}));
    let out = game_step(&mut env, "move_disk", json!({"from": 1, "to": 2}));
    assert!(out.messages[0].content.contains("smaller disk"), "{out:?}");
    let out = game_step(&mut env, "submit", json!({"answer": "done"}));
    assert!(out.messages[0].content.contains("played with move_disk"));
    let out = game_step(&mut env, "move_disk", json!({"from": "Peg 2", "to": "1"}));
    assert!(
        out.messages[0].content.starts_with("Moved disk 1"),
        "{out:?}"
    );
    let legal = env.actions();
    assert_eq!(legal.len(), 2, "{legal:?}");
    assert!(legal.contains(&env.expert().unwrap()));
    game_step(&mut env, "move_disk", json!({"from": 1, "to": 2}));
    let out = game_step(&mut env, "move_disk", json!({"from": 2, "to": 1}));
    assert!(
        out.terminated && !out.success && out.reward == 0.0,
        "{out:?}"
    );
    assert_eq!(out.info["reason"], "move budget spent");
}

#[test]
fn hanoi_expert_recovers_from_detours() {
    let task = json!({"task": "tower_of_hanoi", "disks": 4, "start": 2, "target": 1});
    for detour in 0..6 {
        let mut env = Reasoning::default();
        env.reset(0, Some(task.clone())).unwrap();
        for i in 0..detour {
            // Some legal move other than the expert's.
            let expert = env.expert().unwrap();
            let other = env.actions().into_iter().find(|a| *a != expert).unwrap();
            let out = env.step(if i % 2 == 0 { &other } else { &expert });
            assert!(!out.terminated);
        }
        let (reward, clean, _) = play_expert(&mut env);
        assert_eq!(reward, 1.0, "detour {detour}");
        assert!(clean);
    }
}

#[test]
fn maze_refuses_walls_and_ends_when_the_budget_is_spent() {
    let grid = ["S.#", "#.#", "G.."];
    let mut env = Reasoning::default();
    env.reset(0, Some(json!({"task": "maze", "grid": grid})))
        .unwrap();
    let out = game_step(&mut env, "move", json!({"direction": "down"}));
    assert!(out.messages[0].content.contains("wall"), "{out:?}");
    let out = game_step(&mut env, "move", json!({"direction": "up"}));
    assert!(out.messages[0].content.contains("outside"), "{out:?}");
    let out = game_step(&mut env, "move", json!({"direction": "north"}));
    assert!(
        out.messages[0].content.contains("unknown direction"),
        "{out:?}"
    );
    assert_eq!(
        env.actions(),
        vec![Action::tool("move", &json!({"direction": "right"}))]
    );
    // Shortest path 4 → budget 8; 3 spent. Oscillate until the budget runs out.
    for i in 0..5 {
        let direction = if i % 2 == 0 { "right" } else { "left" };
        let out = game_step(&mut env, "move", json!({"direction": direction}));
        assert_eq!(out.terminated, i == 4, "{out:?}");
        if out.terminated {
            assert!(!out.success && out.reward == 0.0);
        }
    }
    env.reset(0, Some(json!({"task": "maze", "grid": grid})))
        .unwrap();
    for direction in ["right", "down", "down", "left"] {
        let out = game_step(&mut env, "move", json!({"direction": direction}));
        assert_eq!(out.success, direction == "left" && out.terminated);
    }
}

#[test]
fn config_is_validated() {
    let cases = [
        (json!({"taks": "gcd"}), "unknown config key `taks`"),
        (json!({"task": "sudoku"}), "config `task`"),
        (json!({"difficulty": 0}), "`difficulty`"),
        (json!({"difficulty": 6}), "`difficulty`"),
        (json!({"max_turns": 0}), "`max_turns`"),
        (json!({"gcd": {"max_value": 0}}), "`gcd.max_value`"),
        (
            json!({"gcd": {"max_vlaue": 10}}),
            "unknown knob `max_vlaue` for task `gcd`",
        ),
        (json!({"gcd": 3}), "config `gcd` must be an object"),
        (
            json!({"gcd": {"min_value": 50, "max_value": 10}}),
            "`min_value` (50) must not exceed `max_value` (10)",
        ),
        (
            json!({"n_queens": {"n": 4, "max_remove": 5}}),
            "`max_remove` (5) must not exceed `n` (4)",
        ),
        (
            json!({"base_conversion": {"min_base": 7, "max_base": 7}}),
            "must differ",
        ),
        (
            json!({"weights": {"gcd": 0}, "task": "gcd"}),
            "only with `task` \"mix\"",
        ),
        (json!({"weights": {"gdc": 1}}), "unknown task `gdc`"),
        (json!({"weights": {"gcd": -1}}), "`weights.gcd`"),
        (json!([1]), "JSON object"),
    ];
    for (config, needle) in cases {
        let err = Config::from_json(&config).unwrap_err();
        assert!(err.contains(needle), "{config}: {err}");
    }
    let zero: serde_json::Map<String, Value> = tasks::family_names()
        .into_iter()
        .map(|n| (n.to_string(), json!(0)))
        .collect();
    let err = Config::from_json(&json!({"weights": zero})).unwrap_err();
    assert!(err.contains("weight 0"), "{err}");
    // The advertised default config is accepted and means the defaults.
    let config = Config::from_json(&Reasoning::info().default_config).unwrap();
    assert_eq!(config.mix.len(), tasks::FAMILIES.len());
}

#[test]
fn unreachable_knobs_fail_at_reset_with_a_message() {
    let mut env = configured(json!({
        "task": "maze",
        "maze": {"min_grid_size": 3, "max_grid_size": 3, "min_dist": 50, "max_dist": 60}
    }));
    let err = env.reset(0, None).unwrap_err();
    assert!(err.contains("maze") && err.contains("min_dist"), "{err}");
    let mut env = configured(json!({
        "task": "countdown",
        "countdown": {"min_numbers": 2, "max_numbers": 2, "max_value": 2, "min_target": 900}
    }));
    assert!(env.reset(0, None).unwrap_err().contains("target"));
}

/// Every knob at the end of its range (all at their minimum, all at their maximum) either generates
/// or fails with a message, promptly: generation is bounded for every accepted value.
#[test]
fn extreme_knobs_generate_or_fail_cleanly() {
    for family in tasks::FAMILIES {
        for extreme in [0, 1] {
            let knobs: serde_json::Map<String, Value> = family
                .knobs()
                .iter()
                .map(|k| {
                    (
                        k.name.to_string(),
                        json!(if extreme == 0 { k.min } else { k.max }),
                    )
                })
                .collect();
            let config = json!({"task": family.name(), family.name(): knobs});
            let Ok(config) = Config::from_json(&config) else {
                continue; // A cross-knob rule forbids this corner; it is rejected, not generated.
            };
            for seed in 0..3 {
                if let Ok((_, instance)) = config.generate(&mut Rng::new(seed))
                    && let Instance::Answer(puzzle) = instance
                {
                    assert_eq!(
                        puzzle.verify(&puzzle.expert_answer()),
                        Ok(()),
                        "{}",
                        family.name()
                    );
                }
            }
        }
    }
}

#[test]
fn tasks_replay_from_their_json_and_bad_tasks_are_refused() {
    let mut env = Reasoning::default();
    for seed in 0..300 {
        let first = env.reset(seed, None).unwrap();
        let replay = env.reset(seed + 1, Some(first.task.clone())).unwrap();
        assert_eq!(replay, first, "seed {seed}");
    }
    let cases = [
        (json!([1]), "JSON object"),
        (json!({"numbers": [1, 2]}), "task field `task`"),
        (json!({"task": "gdc"}), "unknown task `gdc`"),
        (json!({"task": "gcd", "numbers": [1]}), "`numbers`"),
        (
            json!({"task": "gcd", "numbers": [4, 6], "x": 1}),
            "unknown field `x`",
        ),
        (
            json!({"task": "basic_arithmetic", "expression": "1 / 3"}),
            "whole-number",
        ),
        (
            json!({"task": "countdown", "numbers": [1, 2, 3, 4, 5], "target": 15}),
            "`solution` is required",
        ),
        (
            json!({"task": "countdown", "numbers": [1, 2], "target": 4, "solution": "1 + 2"}),
            "not a solution",
        ),
        (
            json!({"task": "puzzle24", "numbers": [1, 1, 1, 1]}),
            "cannot reach",
        ),
        (
            json!({"task": "puzzle24", "numbers": [3, 3, 8, 8], "target": 25}),
            "`target`",
        ),
        (
            json!({"task": "mini_sudoku", "puzzle": [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]}),
            "repeats",
        ),
        (json!({"task": "maze", "grid": ["S#", "#G"]}), "no path"),
        (
            json!({"task": "maze", "grid": ["S.", ".."]}),
            "exactly one 'G'",
        ),
        (
            json!({"task": "tower_of_hanoi", "disks": 3, "start": 2, "target": 2}),
            "different pegs",
        ),
        (
            json!({"task": "n_queens", "board": ["QQ__", "____", "____", "____"]}),
            "two queens",
        ),
        (
            json!({"task": "knights_knaves", "names": ["Zoey", "Riley"], "claims": [["is", 0, "knight"], ["is", 1, "knight"]]}),
            "exactly one consistent",
        ),
        (
            json!({"task": "knights_knaves", "names": ["Ann", "Anna"], "claims": [["is", 0, "knight"], ["is", 1, "knight"]]}),
            "none containing another",
        ),
        (
            json!({"task": "number_sorting", "numbers": ["1", "x"], "descending": true}),
            "decimal numbers",
        ),
        (
            json!({"task": "letter_counting", "text": "abc", "letter": "ab"}),
            "`letter`",
        ),
    ];
    for (task, needle) in cases {
        let err = env.reset(0, Some(task.clone())).unwrap_err();
        assert!(err.contains(needle), "{task}: {err}");
    }
}

#[test]
fn the_default_mix_draws_every_task() {
    let mut env = Reasoning::default();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..500 {
        seen.insert(
            env.reset(seed, None).unwrap().info["task"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen.len(), tasks::FAMILIES.len(), "{seen:?}");
    let mut env = configured(json!({"weights": {"gcd": 1, "maze": 3, "lcm": 0}}));
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for seed in 0..400 {
        let name = env.reset(seed, None).unwrap().info["task"]
            .as_str()
            .unwrap()
            .to_string();
        *counts.entry(name).or_default() += 1;
    }
    assert!(!counts.contains_key("lcm"));
    assert!(counts["maze"] > 2 * counts["gcd"], "{counts:?}");
}

#[test]
fn bad_calls_are_answered_and_turns_truncate() {
    let mut env = configured(json!({"task": "gcd", "max_turns": 3}));
    env.reset(0, None).unwrap();
    let out = env.step(&Action::tool("move", &json!({"direction": "up"})));
    assert!(out.messages[0].content.contains("answer it with submit"));
    let out = env.step(&Action::tool("submit", &json!({"reply": "3"})));
    assert!(
        out.messages[0]
            .content
            .starts_with("Error: unexpected argument")
    );
    let out = env.step(&Action::tool("guess", &json!({})));
    assert!(out.truncated && !out.terminated, "{out:?}");
    let mut env = configured(json!({"task": "lcm"}));
    env.reset(0, None).unwrap();
    let out = env.step(&submit(&"9".repeat(5000)));
    assert!(out.terminated && out.reward == 0.0);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut host = Host::<Reasoning>::default();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(host.configure(b"{\"difficulty\": 2}"));
        for seed in 0..40u64 {
            bytes.extend_from_slice(host.reset(format!("{{\"seed\": {seed}}}").as_bytes()));
            loop {
                let expert: Envelope<Option<Action>> =
                    serde_json::from_slice(host.expert()).unwrap();
                let Envelope::Ok(Some(action)) = expert else {
                    break;
                };
                bytes.extend_from_slice(host.actions());
                let out = host.step(&serde_json::to_vec(&action).unwrap()).to_vec();
                bytes.extend_from_slice(&out);
            }
        }
        bytes
    };
    assert_eq!(run(), run());
}

/// docs/envs/reasoning.md has a section per task listing each of its knobs.
#[test]
fn the_docs_list_every_task_and_knob() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/envs/reasoning.md");
    let doc = std::fs::read_to_string(path).expect("docs/envs/reasoning.md exists");
    for family in tasks::FAMILIES {
        let heading = format!("### `{}`", family.name());
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("no section {heading}"));
        let section = doc[start + heading.len()..].split("\n### ").next().unwrap();
        assert!(section.contains(&format!("reasoning-gym's `{}", family.follows())));
        for knob in family.knobs() {
            let levels: Vec<String> = knob.levels.iter().map(i64::to_string).collect();
            let row = format!(
                "| `{}` | {}..={} | {} |",
                knob.name,
                knob.min,
                knob.max,
                levels.join(" / ")
            );
            assert!(section.contains(&row), "{}: {row}", family.name());
        }
    }
}
