//! tau-bench retail (Sierra's tau-bench / tau2-bench, MIT) as a sandgym env: the agent serves one
//! customer of an online store through 17 tools over a users/orders/products database. In solo
//! (ticket) mode, the default, the customer's whole request arrives as the first message and nobody
//! answers. In user-simulator mode (`"mode": "user"`) a user policy plays the customer: the env hands
//! the host a `UserTurn` after reset and after each agent turn that used `respond`, and the reply
//! comes back through `step` (see `tau_common::user`); the customer's `###STOP###` ends the episode.
//!
//! Reward, as tau-bench's `calculate_reward`: when the agent calls `end_conversation` or
//! `transfer_to_human_agents`, the task's gold actions are replayed on a fresh copy of the initial DB
//! through the same tools; reward 1 iff the agent's DB equals that DB and every output string of the
//! task occurs in some `respond` (case-insensitive, commas removed). Hitting `max_turns` truncates
//! with reward 0.
//!
//! Modules: [`db`] (records, overlay), [`tools`] (schemas and the faithful tool code), [`gen_db`]
//! (procedural DB), [`gen_task`] (generated tasks), [`policy`] (system prompt). Shared tau pieces
//! (tasks, conversation tools, verifier helpers, expert) come from `tau_common`.
//!
//! Config knobs (defaults): `db` null (an object `{"users", "orders", "products"}` as tau-bench v1's
//! files imports that DB; otherwise the generator builds one from `seed` 0, `users` 200 (1..=5000)
//! and `products` 30 (2..=40)), `max_turns` 30 (1..=1000), `mode` `"solo"` or `"user"`,
//! `max_user_turns` 20 (1..=200, customer messages per episode in user mode).
//! Task JSON: tau2-bench task objects or the sandgym format (see `tau_common::task`).

pub mod db;
pub mod gen_db;
pub mod gen_task;
pub mod policy;
pub mod tools;

use std::collections::BTreeSet;

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, StepOutput, ToolCall, ToolEnv, Turns,
    Value, config_int, json, parse_arguments, reject_unknown_keys, tool_error,
};
use tau_common::user::{DEFAULT_MAX_USER_TURNS, MAX_USER_TURNS_RANGE};
use tau_common::{
    Conversation, Ending, ExpertCursor, Handover, Mode, ReplayStep, TauTask, UserSim,
    canonical_hash, expert_plan, expert_plan_user, hash_hex, is_error_result, outputs_missing,
    replay_gold, verdict,
};

use db::{Db, Effective, Overlay, View, overlay_digest, overlays_equal};
use gen_db::{GenConfig, MAX_PRODUCTS, generate_db};

pub const NAME: &str = "tau-retail";
pub const VERSION: u32 = 0;

/// Most admissible actions listed by `actions()`.
pub const MAX_ACTIONS: usize = 40;
/// Most ids of each kind remembered for `actions()`.
const MAX_SEEN: usize = 200;

/// Validated configuration knobs (the imported DB itself lives in the env, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub seed: u64,
    pub users: usize,
    pub products: usize,
    pub max_turns: i64,
    /// Whether `db` was given (the generator knobs are then unused).
    pub imported: bool,
    /// Solo (ticket) or user-simulator mode.
    pub mode: Mode,
    /// Customer messages per episode in user mode, the opening one included.
    pub max_user_turns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            users: 200,
            products: 30,
            max_turns: 30,
            imported: false,
            mode: Mode::Solo,
            max_user_turns: DEFAULT_MAX_USER_TURNS,
        }
    }
}

impl Config {
    const KEYS: [&str; 7] = [
        "db",
        "seed",
        "users",
        "products",
        "max_turns",
        "mode",
        "max_user_turns",
    ];

    /// Validates the knobs; the DB (imported or generated) is built by the caller.
    pub fn from_json(config: &Value) -> Result<Config, String> {
        reject_unknown_keys(config, &Self::KEYS)?;
        let d = Config::default();
        Ok(Config {
            mode: Mode::from_config(config)?,
            max_user_turns: config_int(
                config,
                "max_user_turns",
                d.max_user_turns,
                MAX_USER_TURNS_RANGE,
            )?,
            seed: config_int(config, "seed", d.seed as i64, 0..=i64::MAX)? as u64,
            users: config_int(config, "users", d.users as i64, 1..=5000)? as usize,
            products: config_int(
                config,
                "products",
                d.products as i64,
                2..=MAX_PRODUCTS as i64,
            )? as usize,
            max_turns: config_int(config, "max_turns", d.max_turns, 1..=1000)?,
            imported: config.get("db").is_some_and(|v| !v.is_null()),
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "db": null,
            "seed": self.seed,
            "users": self.users,
            "products": self.products,
            "max_turns": self.max_turns,
            "mode": self.mode.as_str(),
            "max_user_turns": self.max_user_turns,
        })
    }

    fn gen_config(&self) -> GenConfig {
        GenConfig {
            seed: self.seed,
            users: self.users,
            products: self.products,
        }
    }
}

/// Ids the agent has seen in observations (for `actions()`), in first-seen order.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    users: Vec<String>,
    orders: Vec<String>,
    products: Vec<String>,
    items: Vec<String>,
}

fn remember(list: &mut Vec<String>, id: &str) {
    if list.len() < MAX_SEEN && !list.iter().any(|x| x == id) {
        list.push(id.to_string());
    }
}

/// Order ids (`#` followed by letters and digits) mentioned in a text.
fn order_ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (start, _) in text.match_indices('#') {
        let rest = &text[start + 1..];
        let len = rest
            .char_indices()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
            .map_or(rest.len(), |(i, _)| i);
        if len >= 2 {
            ids.push(text[start..start + 1 + len].to_string());
        }
    }
    ids
}

/// One episode's state.
#[derive(Debug, Clone)]
struct Episode {
    task: TauTask,
    /// The agent's changes to the DB.
    overlay: Overlay,
    /// The gold actions' changes to the initial DB.
    gold: Overlay,
    /// Digest of the gold DB (computed once, at reset; see [`overlay_digest`]).
    gold_hash: u64,
    gold_steps: Vec<ReplayStep>,
    conversation: Conversation,
    expert: ExpertCursor,
    seen: Seen,
    /// The last user the agent looked up successfully.
    current_user: Option<String>,
    /// The simulated customer (user-simulator mode; inert in solo mode).
    user: UserSim,
}

/// The tau-bench retail env.
#[derive(Debug, Default)]
pub struct TauRetail {
    config: Config,
    db: Option<Db>,
    /// Canonical hash of `db` (computed once per configured DB).
    db_hash: Option<u64>,
    episode: Option<Episode>,
    turns: Turns,
}

impl TauRetail {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configured DB (built with the default knobs if `configure` was never called).
    pub fn db(&mut self) -> &Db {
        let config = self.config.gen_config();
        self.db.get_or_insert_with(|| generate_db(config))
    }

    /// The task being played.
    pub fn task(&self) -> Option<&TauTask> {
        self.episode.as_ref().map(|e| &e.task)
    }

    /// The gold replay of the current task: one step per gold action.
    pub fn gold_steps(&self) -> &[ReplayStep] {
        self.episode.as_ref().map_or(&[], |e| &e.gold_steps)
    }

    /// Whether the agent's DB currently equals the gold DB.
    pub fn db_matches_gold(&self) -> bool {
        match (&self.db, &self.episode) {
            (Some(db), Some(ep)) => overlays_equal(db, &ep.overlay, &ep.gold),
            _ => false,
        }
    }

    /// Canonical JSON of the agent's current DB (tests: determinism of the DB bytes).
    pub fn agent_db_json(&self) -> Option<String> {
        let db = self.db.as_ref()?;
        let overlay = self.episode.as_ref().map(|e| &e.overlay)?;
        Some(tau_common::canonical_json(&Effective { base: db, overlay }))
    }

    /// Runs one domain tool on the agent's DB outside the turn protocol (tests).
    pub fn run_tool(&mut self, name: &str, arguments: &Value) -> String {
        let (Some(db), Some(ep)) = (&self.db, &mut self.episode) else {
            return "Error: no episode".to_string();
        };
        tools::dispatch(&mut View::new(db, &mut ep.overlay), name, arguments)
    }

    /// Whether the task is done: the DB equals the gold DB and every output was said. The scripted
    /// customer says `###STOP###` then.
    fn complete(db: &Db, ep: &Episode) -> bool {
        overlays_equal(db, &ep.overlay, &ep.gold)
            && outputs_missing(&ep.task.outputs, &ep.conversation.responses).is_empty()
    }

    /// The scripted customer's reply, or its admissible replies (`all`), on the customer's turn.
    fn user_actions(&self, all: bool) -> Vec<Action> {
        let (Some(db), Some(ep)) = (&self.db, &self.episode) else {
            return Vec::new();
        };
        let complete = Self::complete(db, ep);
        let write_next = ep.expert.write_next(tools::is_write);
        let instruction = &ep.task.instruction;
        if all {
            ep.user.actions(instruction, complete, write_next)
        } else {
            vec![Action::text(ep.user.scripted_reply(
                instruction,
                complete,
                write_next,
            ))]
        }
    }

    /// Plays the customer's reply (user-simulator mode): their message goes to the agent, and
    /// `###STOP###` ends the episode with the verifier, as the agent's `end_conversation` does.
    fn user_step(&mut self, action: &Action) -> StepOutput {
        let (Some(db), Some(db_hash), Some(ep)) = (&self.db, self.db_hash, &mut self.episode)
        else {
            return sandgym_sdk::episode_over(action);
        };
        let (mut out, stop) = ep.user.reply_step(action);
        if stop {
            let v = Self::verify(db, db_hash, ep, Ending::UserStop);
            out.terminated = true;
            out.reward = v.reward;
            out.success = v.success;
            out.info = v.info;
            ep.user.end();
            self.turns.end();
        }
        out
    }

    /// After an agent turn that did not end the episode: hands over to the customer when the agent
    /// talked to them (user mode), or cuts the episode off when the customer has no turn left.
    fn hand_over(&mut self, out: &mut StepOutput) {
        let Some(ep) = &mut self.episode else { return };
        match ep.user.hand_over(&ep.conversation.responses) {
            Handover::None => {}
            Handover::User(turn) => out.user_turn = Some(turn),
            Handover::LimitReached => {
                out.truncated = true;
                out.info = json!({"reason": "user turn limit reached"});
                self.turns.end();
            }
        }
    }

    fn verify(db: &Db, db_hash: u64, ep: &Episode, ending: Ending) -> tau_common::Verdict {
        let db_match = overlays_equal(db, &ep.overlay, &ep.gold);
        // Equal DBs have equal digests: only a mismatch needs the agent's changed records serialized.
        let agent_hash = if db_match {
            ep.gold_hash
        } else {
            overlay_digest(db, db_hash, &ep.overlay)
        };
        let missing = outputs_missing(&ep.task.outputs, &ep.conversation.responses);
        verdict(db_match, agent_hash, ep.gold_hash, missing, ending.as_str())
    }

    /// Remembers ids from a successful read, and who the current customer is.
    fn track(db: &Db, ep: &mut Episode, name: &str, args: &Value, result: &str) {
        if is_error_result(result) {
            return;
        }
        let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
        let overlay = &ep.overlay;
        let order = |id: &str| overlay.orders.get(id).or_else(|| db.orders.get(id));
        let user = |id: &str| overlay.users.get(id).or_else(|| db.users.get(id));
        let seen = &mut ep.seen;
        match name {
            tools::FIND_USER_ID_BY_EMAIL | tools::FIND_USER_ID_BY_NAME_ZIP => {
                remember(&mut seen.users, result);
                ep.current_user = Some(result.to_string());
            }
            tools::GET_USER_DETAILS => {
                let id = arg("user_id");
                remember(&mut seen.users, id);
                if let Some(u) = user(id) {
                    for o in &u.orders {
                        remember(&mut seen.orders, o);
                    }
                }
                ep.current_user = Some(id.to_string());
            }
            tools::GET_ORDER_DETAILS => {
                let id = arg("order_id");
                remember(&mut seen.orders, id);
                if let Some(o) = order(id) {
                    remember(&mut seen.users, &o.user_id);
                    for item in &o.items {
                        remember(&mut seen.products, &item.product_id);
                        remember(&mut seen.items, &item.item_id);
                    }
                }
            }
            tools::GET_PRODUCT_DETAILS => {
                let id = arg("product_id");
                remember(&mut seen.products, id);
                if let Some(p) = db.products.get(id) {
                    for item in p.variants.keys() {
                        remember(&mut seen.items, item);
                    }
                }
            }
            tools::GET_ITEM_DETAILS => remember(&mut seen.items, arg("item_id")),
            tools::LIST_ALL_PRODUCT_TYPES => {
                for id in db.products.keys() {
                    remember(&mut seen.products, id);
                }
            }
            _ => {}
        }
    }

    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        let (Some(db), Some(db_hash), Some(ep)) = (&self.db, self.db_hash, &mut self.episode)
        else {
            return tool_error(call, "no episode is running");
        };
        let args = match parse_arguments(call) {
            Ok(map) => Value::Object(map),
            Err(e) => return tool_error(call, e),
        };
        ep.expert.observe(call, tools::is_write);
        if let Some(result) = ep.conversation.handle(&call.name, &args) {
            return match result {
                Err(e) => tool_error(call, e),
                Ok(reply) => {
                    if let Some(ending) = reply.ending {
                        let v = Self::verify(db, db_hash, ep, ending);
                        out.terminated = true;
                        out.reward = v.reward;
                        out.success = v.success;
                        out.info = v.info;
                    }
                    Message::tool(call, reply.text)
                }
            };
        }
        let text = tools::dispatch(&mut View::new(db, &mut ep.overlay), &call.name, &args);
        Self::track(db, ep, &call.name, &args, &text);
        Message::tool(call, text)
    }
}

impl ToolEnv for TauRetail {
    const TOOL_NAMES: &'static [&'static str] = &tools::TOOL_NAMES;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

/// The agent's system prompt: the policy and the note of the mode.
fn system_prompt(mode: Mode) -> String {
    let note = match mode {
        Mode::Solo => policy::SOLO_NOTE,
        Mode::User => policy::USER_NOTE,
    };
    format!("{}\n\n{}", policy::POLICY, note)
}

impl sandgym_sdk::Env for TauRetail {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "tau-bench retail customer service (solo ticket mode, or a user policy \
                          playing the customer with config mode \"user\"): authenticate the \
                          customer, then cancel, modify, return or exchange orders or update an \
                          address with 17 tools over a users/orders/products DB; reward 1 iff the \
                          final DB equals the gold actions' DB and the requested facts were said."
                .to_string(),
            system_prompt: system_prompt(Mode::Solo),
            tools: tools::schemas(),
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: Config::default().to_json(),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        let parsed = Config::from_json(config)?;
        let db = match config.get("db").filter(|v| !v.is_null()) {
            Some(value) => Db::from_json(value)?,
            None => generate_db(parsed.gen_config()),
        };
        self.config = parsed;
        self.db_hash = Some(canonical_hash(&db));
        self.db = Some(db);
        self.episode = None;
        self.turns.end();
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        self.episode = None;
        self.db();
        let db = self.db.as_ref().expect("built above");
        let db_hash = *self.db_hash.get_or_insert_with(|| canonical_hash(db));
        let task = match task {
            None => gen_task::generate_task(db, seed)?,
            Some(value) => TauTask::from_json(&value)?,
        };
        let mut gold = Overlay::default();
        let gold_steps = replay_gold(&mut gold, &task.actions, |overlay, action| {
            tools::dispatch(&mut View::new(db, overlay), &action.name, &action.arguments)
        });
        let gold_errors: Vec<Value> = gold_steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.error)
            .map(|(i, s)| json!({"index": i, "name": s.name, "result": s.result}))
            .collect();
        let gold_hash = overlay_digest(db, db_hash, &gold);
        let mut seen = Seen::default();
        for id in order_ids_in(&task.instruction) {
            remember(&mut seen.orders, &id);
        }
        let mode = self.config.mode;
        let mut user = UserSim::default();
        let user_turn = user.start(mode, &task.instruction, self.config.max_user_turns);
        // In user mode the customer opens the conversation: their first message is the answer to
        // the user turn, not part of the reset.
        let mut messages = vec![Message::system(system_prompt(mode))];
        if mode == Mode::Solo {
            messages.push(Message::user(task.instruction.clone()));
        }
        let output = ResetOutput {
            messages,
            task_id: task.task_id(NAME),
            task: task.to_json(),
            info: json!({
                "source": task.source.as_str(),
                "split": task.split,
                "gold_actions": task.actions.len(),
                "gold_errors": gold_errors,
                "outputs": task.outputs.len(),
                "gold_db_hash": hash_hex(gold_hash),
                "mode": mode.as_str(),
            }),
            user_turn,
        };
        self.episode = Some(Episode {
            expert: ExpertCursor::new(match mode {
                Mode::Solo => expert_plan(&task),
                Mode::User => expert_plan_user(&task, tools::is_write),
            }),
            task,
            overlay: Overlay::default(),
            gold,
            gold_hash,
            gold_steps,
            conversation: Conversation::new(mode == Mode::User),
            seen,
            current_user: None,
            user,
        });
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        if self.turns.is_active() && self.episode.as_ref().is_some_and(|e| e.user.is_user_turn()) {
            return self.user_step(action);
        }
        let mut out = sandgym_sdk::play_turn(self, action);
        if !out.terminated && !out.truncated {
            self.hand_over(&mut out);
        }
        out
    }

    /// On the agent's turn the expert agent; on the customer's turn the scripted customer.
    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        let ep = self.episode.as_ref()?;
        if ep.user.is_user_turn() {
            return self.user_actions(false).pop();
        }
        tau_common::expert_action(&ep.expert, &ep.user, tools::is_write)
    }

    fn actions(&mut self) -> Vec<Action> {
        if !self.turns.is_active() {
            return Vec::new();
        }
        if self.episode.as_ref().is_some_and(|e| e.user.is_user_turn()) {
            return self.user_actions(true);
        }
        let (Some(db), Some(ep)) = (&self.db, &self.episode) else {
            return Vec::new();
        };
        let mut actions: Vec<Action> = Vec::new();
        let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
        let mut push = |actions: &mut Vec<Action>, name: &str, args: Value| {
            if actions.len() < MAX_ACTIONS && keys.insert((name.to_string(), args.to_string())) {
                actions.push(Action::tool(name, &args));
            }
        };
        if let Some(next) = ep.expert.peek() {
            push(&mut actions, &next.name, next.arguments.clone());
        }
        push(&mut actions, tau_common::END_CONVERSATION, json!({}));
        let order = |id: &str| ep.overlay.orders.get(id).or_else(|| db.orders.get(id));
        let user = |id: &str| ep.overlay.users.get(id).or_else(|| db.users.get(id));
        // Writes on the current customer's orders.
        if let Some(u) = ep.current_user.as_deref().and_then(user) {
            for order_id in u.orders.iter().take(6) {
                let Some(o) = order(order_id) else { continue };
                match o.status.as_str() {
                    "pending" => push(
                        &mut actions,
                        tools::CANCEL_PENDING_ORDER,
                        json!({"order_id": order_id, "reason": "no longer needed"}),
                    ),
                    "delivered" => {
                        if let (Some(item), Some(pay)) =
                            (o.items.first(), o.payment_history.first())
                        {
                            push(
                                &mut actions,
                                tools::RETURN_DELIVERED_ORDER_ITEMS,
                                json!({"order_id": order_id, "item_ids": [item.item_id],
                                       "payment_method_id": pay.payment_method_id}),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        // Reads of ids seen so far, interleaved so every kind gets a share.
        let lists: [(&str, &str, &Vec<String>); 4] = [
            (tools::GET_USER_DETAILS, "user_id", &ep.seen.users),
            (tools::GET_ORDER_DETAILS, "order_id", &ep.seen.orders),
            (tools::GET_PRODUCT_DETAILS, "product_id", &ep.seen.products),
            (tools::GET_ITEM_DETAILS, "item_id", &ep.seen.items),
        ];
        let longest = lists.iter().map(|(_, _, l)| l.len()).max().unwrap_or(0);
        for i in 0..longest {
            for (tool, key, list) in &lists {
                if let Some(id) = list.get(i) {
                    push(&mut actions, tool, json!({ *key: id }));
                }
            }
        }
        push(&mut actions, tools::LIST_ALL_PRODUCT_TYPES, json!({}));
        actions
    }
}

sandgym_sdk::export_env!(TauRetail);

#[cfg(test)]
mod tests;
