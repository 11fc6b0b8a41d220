//! The expert of a tau task: the gold actions one per turn, then a `respond` stating every output
//! string (if any), then the ending (`transfer_to_human_agents` when the gold list has it, else
//! `end_conversation`). [`ExpertCursor`] follows the episode so the expert resumes where it stands.

use sandgym_sdk::{Action, ToolCall, json};

use crate::conversation::{END_CONVERSATION, RESPOND, TRANSFER_TO_HUMAN_AGENTS};
use crate::task::{GoldAction, TauTask};
use crate::user::{Mode, UserSim};

/// The `respond` content the expert uses to state the outputs.
pub fn outputs_message(outputs: &[String]) -> String {
    format!(
        "Here is the information you asked for: {}.",
        outputs.join("; ")
    )
}

/// The expert's whole plan for `task`.
pub fn expert_plan(task: &TauTask) -> Vec<GoldAction> {
    let mut plan: Vec<GoldAction> = task
        .actions
        .iter()
        .filter(|a| a.name != TRANSFER_TO_HUMAN_AGENTS && a.name != END_CONVERSATION)
        .cloned()
        .collect();
    if !task.outputs.is_empty() {
        plan.push(GoldAction::new(
            RESPOND,
            json!({"content": outputs_message(&task.outputs)}),
        ));
    }
    match task
        .actions
        .iter()
        .find(|a| a.name == TRANSFER_TO_HUMAN_AGENTS)
    {
        Some(transfer) => plan.push(transfer.clone()),
        None => plan.push(GoldAction::new(END_CONVERSATION, json!({}))),
    }
    plan
}

/// The `respond` the user-mode expert sends before a write: it states the call and asks the
/// customer to confirm, as the policy requires (the scripted customer then says yes).
pub fn confirmation_message(action: &GoldAction) -> String {
    format!(
        "To proceed I will call {} with {}. Do you confirm (yes/no)?",
        action.name, action.arguments
    )
}

/// The closing `respond` of the user-mode expert when the task asks for no outputs.
pub const CLOSING_MESSAGE: &str =
    "Your request has been handled. Is there anything else I can help you with?";

/// The expert's plan in user-simulator mode: the gold calls with a confirmation `respond` before
/// each write (`is_write`), then one closing `respond` (stating the outputs, if any), after which the
/// scripted customer says `###STOP###`; then the ending of [`expert_plan`] in case the customer does
/// not stop.
pub fn expert_plan_user(task: &TauTask, is_write: impl Fn(&str) -> bool) -> Vec<GoldAction> {
    let mut plan = Vec::new();
    for action in &task.actions {
        if action.name == TRANSFER_TO_HUMAN_AGENTS || action.name == END_CONVERSATION {
            continue;
        }
        if is_write(&action.name) {
            plan.push(GoldAction::new(
                RESPOND,
                json!({"content": confirmation_message(action)}),
            ));
        }
        plan.push(action.clone());
    }
    let closing = if task.outputs.is_empty() {
        CLOSING_MESSAGE.to_string()
    } else {
        outputs_message(&task.outputs)
    };
    plan.push(GoldAction::new(RESPOND, json!({"content": closing})));
    match task
        .actions
        .iter()
        .find(|a| a.name == TRANSFER_TO_HUMAN_AGENTS)
    {
        Some(transfer) => plan.push(transfer.clone()),
        None => plan.push(GoldAction::new(END_CONVERSATION, json!({}))),
    }
    plan
}

/// The expert agent's next action. In user mode it does a write only once the customer has said
/// yes to its confirmation request; otherwise it asks again, so a customer who refuses or stops is
/// respected (and a random customer mostly fails the task).
pub fn expert_action(
    cursor: &ExpertCursor,
    user: &UserSim,
    is_write: impl Fn(&str) -> bool,
) -> Option<Action> {
    let next = cursor.peek()?;
    if user.mode() == Mode::User && is_write(&next.name) && !user.confirmed() {
        return Some(Action::tool(
            RESPOND,
            &json!({"content": confirmation_message(next)}),
        ));
    }
    Some(next.to_action())
}

/// The expert's position in its plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpertCursor {
    plan: Vec<GoldAction>,
    next: usize,
}

impl ExpertCursor {
    pub fn new(plan: Vec<GoldAction>) -> Self {
        ExpertCursor { plan, next: 0 }
    }

    pub fn plan(&self) -> &[GoldAction] {
        &self.plan
    }

    /// The next planned call, if any.
    pub fn peek(&self) -> Option<&GoldAction> {
        self.plan.get(self.next)
    }

    /// Whether the next planned call is a write (per `is_write`): in user mode the agent has just
    /// asked the customer to confirm it.
    pub fn write_next(&self, is_write: impl Fn(&str) -> bool) -> bool {
        self.peek().is_some_and(|a| is_write(&a.name))
    }

    /// The next planned action (one tool call).
    pub fn next_action(&self) -> Option<Action> {
        self.peek().map(GoldAction::to_action)
    }

    /// Records a call the agent made: when it is a step of the plan at or after the cursor, and every
    /// step it skips is not a write (per `is_write`), the cursor moves past it. Skipping only reads
    /// keeps the expert from ever leaving a gold write undone.
    pub fn observe(&mut self, call: &ToolCall, is_write: impl Fn(&str) -> bool) {
        for j in self.next..self.plan.len() {
            if self.plan[j].matches(call) {
                self.next = j + 1;
                return;
            }
            if is_write(&self.plan[j].name) {
                return;
            }
        }
    }
}
