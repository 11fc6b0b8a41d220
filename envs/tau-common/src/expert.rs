//! The expert of a tau task: the gold actions one per turn, then a `respond` stating every output
//! string (if any), then the ending (`transfer_to_human_agents` when the gold list has it, else
//! `end_conversation`). [`ExpertCursor`] follows the episode so the expert resumes where it stands.

use sandgym_sdk::{Action, ToolCall, json};

use crate::conversation::{END_CONVERSATION, RESPOND, TRANSFER_TO_HUMAN_AGENTS};
use crate::task::{GoldAction, TauTask};

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
