//! The simulated customer of the user-simulator mode (config `"mode": "user"`).
//!
//! tau-bench plays the customer with an LLM (`tau_bench/envs/user.py`): it gets the task's
//! instruction in its system prompt, opens the conversation, answers the agent's messages, and says
//! `###STOP###` when its goal is met, which ends the episode. In sandgym the customer is a second
//! player: the env hands the host a [`UserTurn`] (the customer's own view of the conversation), the
//! host asks a *user policy* (an LLM endpoint, the scripted user of [`UserSim::scripted_reply`], a
//! random one) and sends the reply back through the ordinary `step` call. The env knows whose turn
//! it is, so the ABI needs no new export, and the replies are recorded in the trajectory, so an
//! episode replays exactly.
//!
//! [`UserSim`] keeps the customer's side: the view, whose turn it is, and the bound on customer
//! turns. The env keeps everything else (tools, verifier), and calls [`UserSim::hand_over`] after
//! each agent turn: every `respond` of that turn goes to the customer, who then answers.

use sandgym_sdk::{Action, Message, Role, StepOutput, UserTurn, Value};

/// tau-bench's end-of-conversation marker: a customer message containing it ends the episode.
pub const STOP: &str = "###STOP###";

/// The agent's greeting the customer answers first (tau-bench's user simulator starts from it).
pub const AGENT_GREETING: &str = "Hi! How can I help you today?";

/// The scripted customer's answer to a request for confirmation.
pub const CONFIRM_REPLY: &str = "Yes, I confirm. Please go ahead.";

/// How the scripted customer starts the one time it restates its request.
pub const RESTATE_PREFIX: &str = "Here is everything I know about my request: ";

/// Default and range of the `max_user_turns` knob: customer messages per episode, the opening one
/// included. tau-bench has no such bound, but an LLM customer that never says `###STOP###` must not
/// keep an episode alive forever.
pub const DEFAULT_MAX_USER_TURNS: i64 = 20;
pub const MAX_USER_TURNS_RANGE: std::ops::RangeInclusive<i64> = 1..=200;

/// Who talks to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Solo (ticket) mode: the whole request is the first user message and nobody answers.
    #[default]
    Solo,
    /// User-simulator mode: a user policy plays the customer.
    User,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Solo => "solo",
            Mode::User => "user",
        }
    }

    /// Reads the `mode` knob of a config object (absent or `null`: solo).
    pub fn from_config(config: &Value) -> Result<Mode, String> {
        match config.get("mode") {
            None | Some(Value::Null) => Ok(Mode::Solo),
            Some(Value::String(mode)) if mode == "solo" => Ok(Mode::Solo),
            Some(Value::String(mode)) if mode == "user" => Ok(Mode::User),
            Some(other) => Err(format!(
                "config `mode` must be \"solo\" (the whole request up front) or \"user\" (a user \
                 policy plays the customer), got {other}"
            )),
        }
    }
}

/// The customer's system prompt: sandgym's wording of the rules of tau-bench's user simulator prompt
/// (one message at a time, reveal only what is needed, never invent facts, `###STOP###` once the
/// goal is met), with the task's instruction.
pub fn user_system_prompt(instruction: &str) -> String {
    format!(
        "You are a customer talking to a customer-service agent. Play the customer described by \
         the instruction below.\n\nInstruction: {instruction}\n\nRules:\n\
         - Write one message at a time, as the customer would, in plain text.\n\
         - Do not give away the whole instruction at once: give only what the current step needs.\n\
         - Do not invent anything the instruction does not say. If the agent asks for something \
         you were not given (an order id, an email), say you do not know or do not have it.\n\
         - When the instruction's goal is met, or the agent cannot help any further, answer with \
         {STOP} alone to end the conversation.\n\
         - Say things in your own words instead of repeating the instruction verbatim, and keep \
         the conversation natural, in the character the instruction describes."
    )
}

/// What happened at the end of an agent turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Handover {
    /// The agent did not talk to the customer: it keeps the turn.
    None,
    /// The customer answers next.
    User(UserTurn),
    /// The agent talked, but the customer has used all its turns: the episode is cut off.
    LimitReached,
}

/// The customer's reply, as the env records it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserReply {
    /// The message the agent sees (a `user` message).
    pub message: Message,
    /// The reply holds [`STOP`]: the episode ends and the verifier runs.
    pub stop: bool,
}

/// The customer's side of one episode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserSim {
    mode: Mode,
    /// The customer's view: system prompt, then agent words as `user`, own replies as `assistant`.
    view: Vec<Message>,
    /// Whether the next step is the customer's.
    awaiting: bool,
    /// Customer messages so far (the opening included).
    taken: i64,
    limit: i64,
    /// How many of the conversation's `respond` contents the customer has already been shown.
    heard: usize,
}

impl UserSim {
    /// Starts an episode. In user mode the customer opens, so the first turn is returned.
    pub fn start(
        &mut self,
        mode: Mode,
        instruction: &str,
        max_user_turns: i64,
    ) -> Option<UserTurn> {
        *self = UserSim {
            mode,
            limit: max_user_turns,
            ..UserSim::default()
        };
        if mode == Mode::Solo {
            return None;
        }
        self.view = vec![
            Message::system(user_system_prompt(instruction)),
            Message::user(AGENT_GREETING),
        ];
        self.awaiting = true;
        Some(self.turn())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the next step is the customer's reply.
    pub fn is_user_turn(&self) -> bool {
        self.awaiting
    }

    /// Customer messages so far.
    pub fn turns_taken(&self) -> i64 {
        self.taken
    }

    /// Whether the customer's latest message answers the agent's latest words with a yes: the
    /// user-mode expert does a write only then, as the policy asks (and re-asks otherwise).
    pub fn confirmed(&self) -> bool {
        self.view
            .last()
            .is_some_and(|m| m.role == Role::Assistant && m.content.to_lowercase().contains("yes"))
    }

    /// The pending turn: the customer's view so far.
    pub fn turn(&self) -> UserTurn {
        UserTurn {
            messages: self.view.clone(),
        }
    }

    /// Ends the customer's part (the episode ended).
    pub fn end(&mut self) {
        self.awaiting = false;
    }

    /// Called after an agent turn that did not end the episode, with every `respond` content of the
    /// episode so far: the new ones go to the customer (joined into one message), who answers next.
    pub fn hand_over(&mut self, responses: &[String]) -> Handover {
        if self.mode == Mode::Solo || responses.len() <= self.heard {
            return Handover::None;
        }
        let said = responses[self.heard..].join("\n\n");
        self.heard = responses.len();
        if self.taken >= self.limit {
            return Handover::LimitReached;
        }
        self.view.push(Message::user(said));
        self.awaiting = true;
        Handover::User(self.turn())
    }

    /// Records the customer's reply. The reply is the action's text; the host sends user turns as
    /// plain text, and tool calls in a raw action are ignored (a customer has no tools).
    pub fn reply(&mut self, action: &Action) -> UserReply {
        let content = action.content.clone();
        self.view.push(Message {
            role: Role::Assistant,
            content: content.clone(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        });
        self.awaiting = false;
        self.taken += 1;
        UserReply {
            stop: content.contains(STOP),
            message: Message::user(content),
        }
    }

    /// Records the customer's reply (see [`UserSim::reply`]) and returns the step the agent sees: the
    /// customer's message, no reward yet. The flag is [`UserReply::stop`]: the env must then end the
    /// episode with its verifier.
    pub fn reply_step(&mut self, action: &Action) -> (StepOutput, bool) {
        let reply = self.reply(action);
        let out = StepOutput {
            messages: vec![reply.message],
            reward: 0.0,
            terminated: false,
            truncated: false,
            success: false,
            info: serde_json::json!({"reason": "user turn", "user_turns": self.taken}),
            user_turn: None,
        };
        (out, reply.stop)
    }

    /// The scripted customer's next message, from the task's instruction and the state of the task:
    /// the instruction as the opening message; `###STOP###` once the task is `complete`; a
    /// confirmation when the agent's next expert step is a write (`write_next`: the agent is asking
    /// for one); otherwise the instruction once more, and then `###STOP###` (it has nothing else to
    /// say).
    pub fn scripted_reply(&self, instruction: &str, complete: bool, write_next: bool) -> String {
        if self.taken == 0 {
            return instruction.to_string();
        }
        if complete {
            return STOP.to_string();
        }
        if write_next {
            return CONFIRM_REPLY.to_string();
        }
        let restated = self
            .view
            .iter()
            .any(|m| m.role == Role::Assistant && m.content.starts_with(RESTATE_PREFIX));
        if restated {
            STOP.to_string()
        } else {
            format!("{RESTATE_PREFIX}{instruction}")
        }
    }

    /// Admissible customer messages: the scripted one first, then a few stock answers (for random
    /// user policies and search).
    pub fn actions(&self, instruction: &str, complete: bool, write_next: bool) -> Vec<Action> {
        let mut texts = vec![self.scripted_reply(instruction, complete, write_next)];
        for text in [
            instruction,
            CONFIRM_REPLY,
            "No, please do not do that.",
            "I do not know.",
            STOP,
        ] {
            if !texts.iter().any(|t| t == text) {
                texts.push(text.to_string());
            }
        }
        texts.into_iter().map(Action::text).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_sdk::json;

    #[test]
    fn mode_knob() {
        assert_eq!(Mode::from_config(&json!({})), Ok(Mode::Solo));
        assert_eq!(Mode::from_config(&json!({"mode": null})), Ok(Mode::Solo));
        assert_eq!(Mode::from_config(&json!({"mode": "user"})), Ok(Mode::User));
        let err = Mode::from_config(&json!({"mode": "llm"})).unwrap_err();
        assert!(err.contains("\"llm\""), "{err}");
    }

    #[test]
    fn solo_mode_never_hands_over() {
        let mut sim = UserSim::default();
        assert_eq!(sim.start(Mode::Solo, "help", 5), None);
        assert_eq!(sim.hand_over(&["hi".into()]), Handover::None);
        assert!(!sim.is_user_turn());
    }

    #[test]
    fn turns_views_and_the_scripted_customer() {
        let mut sim = UserSim::default();
        let turn = sim.start(Mode::User, "Cancel #W1.", 3).unwrap();
        assert!(turn.messages[0].content.contains("Cancel #W1."));
        assert_eq!(
            sim.scripted_reply("Cancel #W1.", false, false),
            "Cancel #W1."
        );
        let reply = sim.reply(&Action::text("Cancel #W1."));
        assert!(!reply.stop && !sim.is_user_turn());
        assert_eq!(
            sim.hand_over(&[]),
            Handover::None,
            "no respond: agent keeps the turn"
        );
        let responses = vec!["Sure.".to_string(), "Confirm?".to_string()];
        let Handover::User(turn) = sim.hand_over(&responses) else {
            panic!("a respond hands over")
        };
        assert_eq!(
            turn.messages.last().unwrap(),
            &Message::user("Sure.\n\nConfirm?")
        );
        assert_eq!(sim.scripted_reply("x", false, true), CONFIRM_REPLY);
        assert_eq!(sim.scripted_reply("x", true, true), STOP);
        assert!(
            sim.scripted_reply("x", false, false)
                .starts_with(RESTATE_PREFIX)
        );
        sim.reply(&Action::text(format!("{RESTATE_PREFIX}x")));
        assert!(!sim.confirmed());
        assert_eq!(sim.scripted_reply("x", false, false), STOP);
        // Already shown responses are not shown again; the third customer turn is the last.
        assert_eq!(sim.hand_over(&responses), Handover::None);
        let more = [responses.clone(), vec!["Done.".into()]].concat();
        assert!(matches!(sim.hand_over(&more), Handover::User(_)));
        assert!(sim.reply(&Action::text("yes ###STOP###")).stop);
        let last = [more, vec!["Bye.".into()]].concat();
        assert_eq!(sim.hand_over(&last), Handover::LimitReached);
    }
}
