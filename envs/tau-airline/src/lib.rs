//! tau-bench airline (Sierra's tau-bench v1 `envs/airline`, plus tau2's `get_flight_status`): a
//! customer-service agent books, changes and cancels flight reservations under an airline policy.
//!
//! This module owns the env: configuration, the DB an episode starts from (imported or generated),
//! tasks (tau2 tasks, sandgym task JSON, or generated from the seed), the tool protocol, the verifier,
//! the expert and the admissible actions. The DB types live in [`db`], the domain tools in [`tools`]
//! (over any [`store::Store`]), the episode's copy-on-write DB in [`overlay`], the world generator in
//! [`world`], the task generator in [`tasks`]; task model, conversation tools, verifier and expert
//! helpers come from `tau_common`.
//!
//! Config knobs (defaults): `db` (absent: generate one; an object `{"users", "flights",
//! "reservations"}` in the v1 shape: import it), generator knobs `seed` 0, `users` 200 (1..=5000),
//! `airports` 20 (2..=40), `flights` 150 (1..=999), `reservations` 600 (0..=20000), `max_turns` 30
//! (1..=1000), `mode` `"solo"` or `"user"` (a user policy plays the customer, see
//! `tau_common::user`), `max_user_turns` 20 (1..=200). Tasks: a tau2 airline task object, or the
//! sandgym task JSON (see `tau_common::task`); without one, reset generates a task from the seed.
//!
//! The episode: the agent reads the ticket, calls tools (one message per call), talks to the
//! customer with `respond`, and ends with `end_conversation` or `transfer_to_human_agents`. Then the
//! verifier replays the gold calls on a fresh copy of the initial DB: reward 1 iff the DBs are equal
//! and every output string was said in some `respond` (case-insensitive, commas removed).
//!
//! State: the initial DB is the one full copy (built in `configure`, never written afterwards); the
//! episode's writes and the gold replay's go to two small overlays of changed records (see [`overlay`]).

pub mod db;
pub mod overlay;
pub mod store;
pub mod tasks;
pub mod tools;
pub mod world;

use std::collections::BTreeSet;

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, StepOutput, ToolCall, ToolEnv, Turns,
    Value, config_int, json, parse_arguments, reject_unknown_keys, tool_error,
};
use tau_common::user::{DEFAULT_MAX_USER_TURNS, MAX_USER_TURNS_RANGE};
use tau_common::{
    CONVERSATION_TOOLS, Conversation, END_CONVERSATION, Ending, ExpertCursor, GoldAction, Handover,
    Mode, RESPOND, TRANSFER_TO_HUMAN_AGENTS, TaskSource, TauTask, UserSim, canonical_hash,
    content_id, conversation_tool_schemas, expert_plan, expert_plan_user, outputs_missing,
    replay_gold, split_for_seed, verdict,
};

use db::Db;
use overlay::{MaterializedDb, Overlay};
use store::Store;
use world::GenConfig;

pub const NAME: &str = "tau-airline";
pub const VERSION: u32 = 0;

/// Every tool name, domain tools first.
pub const TOOL_NAMES: [&str; 17] = tau_common::with_conversation_tools(tools::DOMAIN_TOOLS);

/// The most admissible actions [`Env::actions`](sandgym_sdk::Env::actions) lists.
pub const MAX_ACTIONS: usize = 40;

pub const SYSTEM_PROMPT: &str = "You are a customer-service agent of an airline. The current time \
is 2024-05-15 15:00 EST.

How this works: the customer's whole request arrives as one ticket and the customer will not write \
again, so the ticket counts as their explicit confirmation of what it asks for, as far as the policy \
allows it. Handle it with your tools, one tool call at a time. Tell the customer anything they asked \
to know with `respond`. When you are done (or the policy rules the request out), call \
`end_conversation`. The tools do not enforce the policy: you must.

Policy
General
- Use only facts from the ticket and from the tools; no guesses, no advice of your own.
- Serve one user, identified by their user id; only act on that user's reservations.
- Refuse what the policy does not allow. Call transfer_to_human_agents only when the request is \
outside what your tools and this policy can handle (this ends the conversation).

Data
- A user has payment methods (credit cards; gift cards with a balance; travel certificates with an \
amount), a membership level (regular, silver or gold), saved passengers and reservations.
- A flight has a number, an origin, a destination and scheduled times. On each date it is available \
(seats and prices listed per cabin: bookable), on time or delayed (not departed, not bookable), \
flying, landed, or cancelled.
- Cabins: basic economy, economy, business. Basic economy is a class of its own.
- A reservation is one way or round trip; all its flights and passengers share one cabin.

Booking
- At most 5 passengers, each with first name, last name and date of birth.
- Pay only with methods in the user's profile: at most one travel certificate, one credit card and \
three gift cards per reservation. The payments must add up to the total. What is left on a \
certificate is not refunded.
- Total = each flight's price in the cabin times the passengers, plus travel insurance ($30 per \
passenger) if taken, plus $50 for each checked bag beyond the free allowance.
- Free checked bags per passenger, for basic economy / economy / business: regular member 0 / 1 / 2, \
silver 1 / 2 / 3, gold 2 / 3 / 4. Do not add bags the customer does not need.

Changing a reservation
- Flights of a basic economy reservation cannot be changed. Other reservations may change flights \
but not their origin, destination or trip type. Segments that are kept keep the price paid; list \
every segment of the new itinerary in the update, kept ones included.
- The cabin may be changed (basic economy included) only if no flight has been flown yet, and only \
for all flights together; the customer pays or gets back the difference.
- A flight or cabin change is paid or refunded with one gift card or credit card from the profile \
(not a certificate).
- Checked bags may be added, not removed. Insurance cannot be added after booking.
- Passenger details may be changed, the number of passengers may not.

Cancelling
- Check the reservation and the reason. If any flight of it has already been flown, you cannot \
help: transfer to a human agent.
- Otherwise cancel only if: it was booked within the last 24 hours, or the airline cancelled a \
flight, or it is business class, or it has travel insurance and the reason is health or weather.
- Refunds go to the original payment methods within 5 to 7 business days.

Compensation
- Only when the customer explicitly asks for it, after confirming the facts, and only for silver or \
gold members, insured reservations, or business class.
- A flight cancelled by the airline: a travel certificate of $100 times the passengers. A delayed \
flight, when the customer changes or cancels the reservation: $50 times the passengers, after the \
change or cancellation.
- No compensation for anything else.";

/// The paragraph of [`SYSTEM_PROMPT`] that describes solo mode; user mode replaces it with
/// [`USER_HOW`].
const SOLO_HOW: &str = "How this works: the customer's whole request arrives as one ticket and the \
customer will not write again, so the ticket counts as their explicit confirmation of what it asks \
for, as far as the policy allows it. Handle it with your tools, one tool call at a time. Tell the \
customer anything they asked to know with `respond`. When you are done (or the policy rules the \
request out), call `end_conversation`. The tools do not enforce the policy: you must.";

/// How user-simulator mode works, for the agent.
const USER_HOW: &str = "How this works: a live customer talks to you; their messages arrive as \
user messages. Talk to them only with `respond`: it ends your turn and their answer follows. Use \
your other tools one call at a time. Ask for what you need, and get the customer's explicit \
confirmation (yes) before any booking, change or cancellation. The customer ends the conversation \
when satisfied; call `end_conversation` only if they ask or nothing more can be done. The tools do \
not enforce the policy: you must.";

/// The agent's system prompt in `mode`.
pub fn system_prompt(mode: Mode) -> String {
    match mode {
        Mode::Solo => SYSTEM_PROMPT.to_string(),
        Mode::User => SYSTEM_PROMPT.replacen(SOLO_HOW, USER_HOW, 1),
    }
}

/// Validated configuration knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub generator: GenConfig,
    /// An imported DB, if given. The env moves it into its initial DB (so [`TauAirline::config`]
    /// shows `None` here once the DB is built), keeping one copy of it in memory.
    pub db: Option<Db>,
    pub max_turns: i64,
    /// Solo (ticket) or user-simulator mode.
    pub mode: Mode,
    /// Customer messages per episode in user mode, the opening one included.
    pub max_user_turns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            generator: GenConfig::default(),
            db: None,
            max_turns: 30,
            mode: Mode::Solo,
            max_user_turns: DEFAULT_MAX_USER_TURNS,
        }
    }
}

impl Config {
    const KEYS: [&str; 9] = [
        "db",
        "seed",
        "users",
        "airports",
        "flights",
        "reservations",
        "max_turns",
        "mode",
        "max_user_turns",
    ];
    const GENERATOR_KEYS: [&str; 5] = ["seed", "users", "airports", "flights", "reservations"];

    pub fn from_json(config: &Value) -> Result<Config, String> {
        reject_unknown_keys(config, &Self::KEYS)?;
        let d = GenConfig::default();
        let given = |key: &str| config.get(key).is_some_and(|v| !v.is_null());
        let mode = Mode::from_config(config)?;
        let max_user_turns = config_int(
            config,
            "max_user_turns",
            DEFAULT_MAX_USER_TURNS,
            MAX_USER_TURNS_RANGE,
        )?;
        let db = if given("db") {
            if let Some(key) = Self::GENERATOR_KEYS.iter().find(|k| given(k)) {
                return Err(format!(
                    "config `{key}` is a generator knob and has no effect with an imported `db`; \
                     drop one of them"
                ));
            }
            Some(Db::from_json(&config["db"]).map_err(|e| format!("config `db`: {e}"))?)
        } else {
            None
        };
        let seed = config_int(config, "seed", d.seed as i64, 0..=i64::MAX)? as u64;
        let count = |key: &str, default: usize, max: i64, min: i64| {
            config_int(config, key, default as i64, min..=max).map(|n| n as usize)
        };
        Ok(Config {
            generator: GenConfig {
                seed,
                users: count("users", d.users, 5000, 1)?,
                airports: count("airports", d.airports, world::MAX_AIRPORTS as i64, 2)?,
                flights: count("flights", d.flights, 999, 1)?,
                reservations: count("reservations", d.reservations, 20_000, 0)?,
            },
            db,
            max_turns: config_int(config, "max_turns", 30, 1..=1000)?,
            mode,
            max_user_turns,
        })
    }

    pub fn default_json() -> Value {
        let d = GenConfig::default();
        json!({
            "db": null,
            "seed": d.seed,
            "users": d.users,
            "airports": d.airports,
            "flights": d.flights,
            "reservations": d.reservations,
            "max_turns": 30,
            "mode": "solo",
            "max_user_turns": DEFAULT_MAX_USER_TURNS,
        })
    }
}

/// Ids the agent has seen in the ticket or in tool results, for admissible actions.
#[derive(Debug, Clone, Default)]
struct Seen {
    users: BTreeSet<String>,
    reservations: BTreeSet<String>,
}

impl Seen {
    /// Records every user and reservation id of `base` + `overlay` that occurs as a token of `text`.
    fn scan(&mut self, base: &Db, overlay: &Overlay, text: &str) {
        for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if token.len() < 6 {
                continue;
            }
            if overlay.user(base, token).is_some() {
                self.users.insert(token.to_string());
            } else if overlay.reservation(base, token).is_some() {
                self.reservations.insert(token.to_string());
            }
        }
    }
}

/// The tau-bench airline env.
#[derive(Debug, Default)]
pub struct TauAirline {
    config: Config,
    /// The DB every episode starts from (the imported one, or generated on first use): the base of
    /// both overlays, never written once built.
    initial: Option<Db>,
    /// Canonical hash of `initial` (computed once, with it); episode digests build on it.
    initial_hash: u64,
    /// The episode's changes to the initial DB.
    db: Overlay,
    /// The gold replay's changes to the initial DB (replayed at reset).
    gold: Overlay,
    /// How many gold actions failed in that replay.
    gold_errors: usize,
    task: Option<TauTask>,
    conversation: Conversation,
    expert: ExpertCursor,
    seen: Seen,
    turns: Turns,
    /// The simulated customer (user-simulator mode; inert in solo mode).
    user: UserSim,
}

impl TauAirline {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The DB episodes start from.
    pub fn initial_db(&mut self) -> &Db {
        if self.initial.is_none() {
            let initial = match self.config.db.take() {
                Some(db) => db,
                None => world::generate_db(&self.config.generator),
            };
            self.initial_hash = canonical_hash(&initial);
            self.initial = Some(initial);
            self.db.clear();
            self.gold.clear();
        }
        self.initial.as_ref().expect("set above")
    }

    /// The DB of the current episode, copied out of the initial DB and the episode's changes (a full
    /// copy: for tests and tools built on the crate). Empty before the initial DB exists.
    pub fn db(&self) -> MaterializedDb {
        match &self.initial {
            Some(initial) => self.db.materialize(initial),
            None => Overlay::default().materialize(&Db::default()),
        }
    }

    pub fn task(&self) -> Option<&TauTask> {
        self.task.as_ref()
    }

    /// Runs one domain tool on `db` (`None` for other names), answering like the original.
    fn dispatch_domain(
        db: &mut impl Store,
        name: &str,
        arguments: &Value,
    ) -> Option<Result<String, String>> {
        let empty = serde_json::Map::new();
        let map = match arguments {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Some(Err(format!(
                    "arguments of `{name}` must be a JSON object, got {other}"
                )));
            }
        };
        tools::call(db, name, map)
    }

    /// Replays the gold actions of the current task on a fresh copy of the initial DB: the DB they
    /// produce (a full copy), and how many of them failed. (Reset replays them; the verifier uses the
    /// result.)
    pub fn gold_db(&mut self) -> (MaterializedDb, usize) {
        let errors = self.replay_gold();
        let initial = self.initial.as_ref().expect("built by the replay");
        (self.gold.materialize(initial), errors)
    }

    /// Replays the gold actions of the current task into the gold overlay (emptied first); returns
    /// how many of them failed.
    fn replay_gold(&mut self) -> usize {
        self.initial_db();
        let initial = self.initial.as_ref().expect("initialized above");
        self.gold.clear();
        let actions = self.task.as_ref().map_or(&[][..], |t| &t.actions[..]);
        let steps = replay_gold(&mut self.gold.view(initial), actions, |db, action| {
            match Self::dispatch_domain(db, &action.name, &action.arguments) {
                Some(Ok(text)) => text,
                Some(Err(e)) => format!("Error: {e}"),
                // calculate / think change nothing; anything else is unknown.
                None if [tau_common::CALCULATE, tau_common::THINK]
                    .contains(&action.name.as_str()) =>
                {
                    String::new()
                }
                None => format!("Unknown action {}", action.name),
            }
        });
        steps.iter().filter(|s| s.error).count()
    }

    /// The verifier, run when the episode ends.
    fn verify(&mut self, ending: Ending, out: &mut StepOutput) {
        // The gold DB was replayed at reset.
        let gold_errors = self.gold_errors;
        let initial = self
            .initial
            .as_ref()
            .expect("an active episode has an initial DB");
        let db_match = self.db.same_as(&self.gold, initial);
        let task = self.task.as_ref().expect("an active episode has a task");
        let missing = outputs_missing(&task.outputs, &self.conversation.responses);
        // Digests of (initial DB hash, changed records): the cost follows the records touched.
        let gold_hash = self.gold.digest(initial, self.initial_hash);
        let agent_hash = if db_match {
            gold_hash
        } else {
            self.db.digest(initial, self.initial_hash)
        };
        let v = verdict(db_match, agent_hash, gold_hash, missing, ending.as_str());
        let mut info = v.info;
        if !db_match {
            let diff = self.db.diff(&self.gold, initial);
            info["db_diff"] = json!(diff.iter().take(8).collect::<Vec<_>>());
        }
        info["gold_errors"] = json!(gold_errors);
        out.reward = v.reward;
        out.success = v.success;
        out.terminated = true;
        out.info = info;
    }

    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        let map = match parse_arguments(call) {
            Ok(map) => map,
            Err(e) => return tool_error(call, e),
        };
        self.expert
            .observe(call, |name| tools::WRITE_TOOLS.contains(&name));
        let arguments = Value::Object(map);
        if let Some(reply) = self.conversation.handle(&call.name, &arguments) {
            return match reply {
                Err(e) => tool_error(call, e),
                Ok(reply) => {
                    if let Some(ending) = reply.ending {
                        self.verify(ending, out);
                    }
                    Message::tool(call, reply.text)
                }
            };
        }
        let initial = self
            .initial
            .as_ref()
            .expect("an active episode has an initial DB");
        match Self::dispatch_domain(&mut self.db.view(initial), &call.name, &arguments) {
            Some(Ok(text)) => {
                self.seen.scan(initial, &self.db, &text);
                Message::tool(call, text)
            }
            Some(Err(e)) => tool_error(call, e),
            None => tool_error(
                call,
                format!(
                    "unknown tool `{}`; the tools are {}",
                    call.name,
                    TOOL_NAMES.join(", ")
                ),
            ),
        }
    }

    /// Whether the task is done (DB equals the gold DB, every output said): the scripted customer
    /// then says `###STOP###`.
    fn complete(&self) -> bool {
        let outputs = self.task.as_ref().map_or(&[][..], |t| &t.outputs[..]);
        let Some(initial) = &self.initial else {
            return false;
        };
        self.db.same_as(&self.gold, initial)
            && outputs_missing(outputs, &self.conversation.responses).is_empty()
    }

    /// The scripted customer's reply, or all admissible replies (`all`), on the customer's turn.
    fn user_actions(&self, all: bool) -> Vec<Action> {
        let Some(task) = &self.task else {
            return Vec::new();
        };
        let complete = self.complete();
        let write_next = self
            .expert
            .write_next(|name| tools::WRITE_TOOLS.contains(&name));
        if all {
            self.user.actions(&task.instruction, complete, write_next)
        } else {
            vec![Action::text(self.user.scripted_reply(
                &task.instruction,
                complete,
                write_next,
            ))]
        }
    }

    /// Plays the customer's reply: their message goes to the agent; `###STOP###` ends the episode
    /// with the verifier.
    fn user_step(&mut self, action: &Action) -> StepOutput {
        let (mut out, stop) = self.user.reply_step(action);
        if stop {
            self.verify(Ending::UserStop, &mut out);
            self.user.end();
            self.turns.end();
        }
        out
    }

    /// Parses and checks a task given by file: every gold action must name a known tool.
    fn parse_task(value: &Value) -> Result<TauTask, String> {
        let task = TauTask::from_json(value)?;
        for (i, action) in task.actions.iter().enumerate() {
            if !TOOL_NAMES.contains(&action.name.as_str()) {
                return Err(format!(
                    "task action {i} calls unknown tool `{}` (the airline tools are {})",
                    action.name,
                    TOOL_NAMES.join(", ")
                ));
            }
            if !action.arguments.is_object() {
                return Err(format!(
                    "task action {i} (`{}`): arguments must be an object",
                    action.name
                ));
            }
        }
        Ok(task)
    }

    fn generate_task(&mut self, seed: u64) -> Result<TauTask, String> {
        self.initial_db();
        let initial = self.initial.as_ref().expect("initialized above");
        // The gold working copy is the scratch DB of the draws (reset replays the gold on it anyway).
        let draft = tasks::generate_with(initial, seed, &mut self.gold)?;
        let id = content_id(&draft.instruction, &draft.actions, &draft.outputs);
        Ok(TauTask {
            id,
            instruction: draft.instruction,
            actions: draft.actions,
            outputs: draft.outputs,
            split: Some(split_for_seed(seed).to_string()),
            source: TaskSource::Generated,
            meta: json!({"kind": draft.kind, "user_id": draft.user_id, "seed": seed}),
        })
    }
}

fn action(name: &str, arguments: Value) -> Action {
    Action::tool(name, &arguments)
}

impl ToolEnv for TauAirline {
    const TOOL_NAMES: &'static [&'static str] = &TOOL_NAMES;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

/// All tool schemas: the domain tools, then the conversation tools.
pub fn tool_schemas() -> Vec<Value> {
    let mut schemas = tools::schemas();
    schemas.extend(conversation_tool_schemas(&CONVERSATION_TOOLS));
    schemas
}

impl sandgym_sdk::Env for TauAirline {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "tau-bench airline customer service: look up, book, change and cancel \
                          flight reservations under the airline policy (solo ticket mode); reward \
                          1 iff the final DB equals the gold one and the requested facts were said."
                .to_string(),
            system_prompt: system_prompt(Mode::Solo),
            tools: tool_schemas(),
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: Config::default_json(),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        let config = Config::from_json(config)?;
        self.initial = None;
        self.config = config;
        // Build the DB now rather than at the first reset: configured state is what the host bakes
        // into the shared copy-on-write image, so forks never copy the DB. Episodes only add small
        // overlays on top of it.
        self.initial_db();
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let task = match task {
            None => self.generate_task(seed)?,
            Some(value) => Self::parse_task(&value)?,
        };
        self.initial_db();
        self.db.clear();
        let mode = self.config.mode;
        self.conversation = Conversation::new(mode == Mode::User);
        self.expert = ExpertCursor::new(match mode {
            Mode::Solo => expert_plan(&task),
            Mode::User => expert_plan_user(&task, |name| tools::WRITE_TOOLS.contains(&name)),
        });
        let user_turn = self
            .user
            .start(mode, &task.instruction, self.config.max_user_turns);
        // In user mode the customer opens: their first message answers the user turn.
        let mut messages = vec![Message::system(system_prompt(mode))];
        if mode == Mode::Solo {
            messages.push(Message::user(task.instruction.clone()));
        }
        self.seen = Seen::default();
        let initial = self.initial.as_ref().expect("initialized above");
        self.seen.scan(initial, &self.db, &task.instruction);
        let mut output = ResetOutput {
            messages,
            task_id: task.task_id(NAME),
            task: task.to_json(),
            info: json!({
                "source": task.source.as_str(),
                "split": task.split,
                "gold_actions": task.actions.len(),
                "outputs": task.outputs.len(),
                "mode": mode.as_str(),
            }),
            user_turn,
        };
        self.task = Some(task);
        let gold_errors = self.replay_gold();
        self.gold_errors = gold_errors;
        output.info["gold_errors"] = json!(gold_errors);
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        if self.turns.is_active() && self.user.is_user_turn() {
            return self.user_step(action);
        }
        let mut out = sandgym_sdk::play_turn(self, action);
        if !out.terminated && !out.truncated {
            match self.user.hand_over(&self.conversation.responses) {
                Handover::None => {}
                Handover::User(turn) => out.user_turn = Some(turn),
                Handover::LimitReached => {
                    out.truncated = true;
                    out.info = json!({"reason": "user turn limit reached"});
                    self.turns.end();
                }
            }
        }
        out
    }

    /// On the agent's turn the expert agent; on the customer's turn the scripted customer.
    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        if self.user.is_user_turn() {
            return self.user_actions(false).pop();
        }
        tau_common::expert_action(&self.expert, &self.user, |name| {
            tools::WRITE_TOOLS.contains(&name)
        })
    }

    fn actions(&mut self) -> Vec<Action> {
        if !self.turns.is_active() {
            return Vec::new();
        }
        if self.user.is_user_turn() {
            return self.user_actions(true);
        }
        let mut actions: Vec<Action> = Vec::new();
        let mut push = |a: Action| {
            if actions.len() < MAX_ACTIONS && !actions.contains(&a) {
                actions.push(a);
            }
        };
        if let Some(next) = self.expert.next_action() {
            push(next);
        }
        push(action(END_CONVERSATION, json!({})));
        push(action(
            RESPOND,
            json!({"content": "I have looked into your request."}),
        ));
        push(action(
            TRANSFER_TO_HUMAN_AGENTS,
            json!({"summary": "The customer needs help that I cannot give with my tools."}),
        ));
        push(action("list_all_airports", json!({})));
        for user_id in &self.seen.users {
            push(action("get_user_details", json!({"user_id": user_id})));
        }
        for reservation_id in &self.seen.reservations {
            push(action(
                "get_reservation_details",
                json!({"reservation_id": reservation_id}),
            ));
        }
        for reservation_id in &self.seen.reservations {
            let Some(r) = self
                .initial
                .as_ref()
                .and_then(|initial| self.db.reservation(initial, reservation_id))
            else {
                continue;
            };
            for f in &r.flights {
                push(action(
                    "get_flight_status",
                    json!({"flight_number": f.flight_number, "date": f.date}),
                ));
                push(action(
                    "search_direct_flight",
                    json!({"origin": f.origin, "destination": f.destination, "date": f.date}),
                ));
            }
        }
        for reservation_id in &self.seen.reservations {
            push(action(
                "cancel_reservation",
                json!({"reservation_id": reservation_id}),
            ));
        }
        actions
    }
}

/// The gold action list of the current task (for tests and tools built on the crate).
pub fn gold_actions(env: &TauAirline) -> &[GoldAction] {
    env.task.as_ref().map_or(&[], |t| &t.actions)
}

sandgym_sdk::export_env!(TauAirline);

#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_mode_tests;
