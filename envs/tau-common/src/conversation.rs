//! The tools every tau env has besides its domain tools: `respond`, `end_conversation`, `calculate`,
//! `think` and `transfer_to_human_agents`, with their OpenAI schemas and their handling.
//!
//! `respond` is tau-bench's pseudo-action for talking to the customer; its contents are recorded for
//! the outputs check. In solo mode nobody answers, and the observation says so; in user-simulator
//! mode the customer answers next (see [`crate::user`]). `end_conversation` (sandgym's explicit end,
//! where tau-bench waits for the user's `###STOP###`) and `transfer_to_human_agents` end the
//! episode: the env then runs its verifier. In user mode the customer's `###STOP###` ends it too.

use sandgym_sdk::{Value, json};

use crate::args::Args;
use crate::calc::calculate;

pub const RESPOND: &str = "respond";
pub const END_CONVERSATION: &str = "end_conversation";
pub const CALCULATE: &str = "calculate";
pub const THINK: &str = "think";
pub const TRANSFER_TO_HUMAN_AGENTS: &str = "transfer_to_human_agents";

/// The conversation tools, in the order [`conversation_tool_schemas`] lists them.
pub const CONVERSATION_TOOLS: [&str; 5] = [
    RESPOND,
    END_CONVERSATION,
    CALCULATE,
    THINK,
    TRANSFER_TO_HUMAN_AGENTS,
];

/// A domain's tool list followed by [`CONVERSATION_TOOLS`], as a constant (`N` = `D` + 5).
pub const fn with_conversation_tools<const D: usize, const N: usize>(
    domain: [&'static str; D],
) -> [&'static str; N] {
    assert!(N == D + CONVERSATION_TOOLS.len(), "N must be D + 5");
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = if i < D {
            domain[i]
        } else {
            CONVERSATION_TOOLS[i - D]
        };
        i += 1;
    }
    names
}

/// The observation of `respond` in solo mode.
pub const SOLO_RESPOND_REPLY: &str = "(The customer has nothing to add: the ticket is all they \
will say. Your message was delivered. Finish the request with your tools, then call \
end_conversation.)";

/// The observation of `respond` in user-simulator mode: the customer's answer follows as a user
/// message once the agent's turn is over.
pub const USER_RESPOND_REPLY: &str = "Message delivered to the customer; their reply follows.";

/// The observation of `end_conversation`.
pub const END_REPLY: &str = "The conversation has ended.";

/// The observation of `transfer_to_human_agents` (as the original).
pub const TRANSFER_REPLY: &str = "Transfer successful";

/// The parameters of a conversation tool (all required), `None` for other names.
pub fn conversation_params(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        RESPOND => &["content"],
        END_CONVERSATION => &[],
        CALCULATE => &["expression"],
        THINK => &["thought"],
        TRANSFER_TO_HUMAN_AGENTS => &["summary"],
        _ => return None,
    })
}

/// An OpenAI function-calling schema whose parameters are all required and typed by `params`
/// (`(name, JSON schema of the parameter)`).
pub fn tool_schema(name: &str, description: &str, params: &[(&str, Value)]) -> Value {
    sandgym_sdk::typed_function_tool(name, description, params)
}

/// The JSON schema of a string parameter.
pub fn string_param(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// The JSON schema of a list-of-strings parameter.
pub fn string_list_param(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

/// The schema of one conversation tool, `None` for other names.
pub fn conversation_tool_schema(name: &str) -> Option<Value> {
    Some(match name {
        RESPOND => tool_schema(
            RESPOND,
            "Send a message to the customer, e.g. to answer a question or report what you did. \
             Anything the customer asked to be told must be said with this tool.",
            &[("content", string_param("The message to the customer."))],
        ),
        END_CONVERSATION => tool_schema(
            END_CONVERSATION,
            "End the conversation once the customer's requests are handled (or cannot be). This \
             ends the episode; nothing can be done afterwards.",
            &[],
        ),
        CALCULATE => tool_schema(
            CALCULATE,
            "Calculate the result of a mathematical expression.",
            &[(
                "expression",
                string_param(
                    "The expression, such as '2 + 2'. It may contain numbers, the operators \
                     + - * /, parentheses and spaces.",
                ),
            )],
        ),
        THINK => tool_schema(
            THINK,
            "Think about something. It changes nothing and fetches nothing; use it as a \
             scratchpad for complex reasoning.",
            &[("thought", string_param("A thought to think about."))],
        ),
        TRANSFER_TO_HUMAN_AGENTS => tool_schema(
            TRANSFER_TO_HUMAN_AGENTS,
            "Transfer the customer to a human agent with a summary of their issue. Only transfer \
             if the customer explicitly asks for a human, or if their issue cannot be resolved \
             with the available tools. This ends the episode.",
            &[(
                "summary",
                string_param("A summary of the customer's issue."),
            )],
        ),
        _ => return None,
    })
}

/// The schemas of `names` (each must be a conversation tool).
pub fn conversation_tool_schemas(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|name| conversation_tool_schema(name).expect("a conversation tool name"))
        .collect()
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The agent called `end_conversation`.
    EndConversation,
    /// The agent called `transfer_to_human_agents`.
    Transfer,
    /// The simulated customer said `###STOP###` (user-simulator mode).
    UserStop,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::EndConversation => END_CONVERSATION,
            Ending::Transfer => TRANSFER_TO_HUMAN_AGENTS,
            Ending::UserStop => "user_stop",
        }
    }
}

/// What a conversation tool answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The tool message's content.
    pub text: String,
    /// Set when the call ends the episode (the env then verifies).
    pub ending: Option<Ending>,
}

/// The conversation so far: what the agent told the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Every `respond` content, in order.
    pub responses: Vec<String>,
    /// Whether a simulated customer answers `respond` (user-simulator mode).
    pub live_user: bool,
}

impl Conversation {
    /// An empty conversation; `live_user` says whether a simulated customer answers.
    pub fn new(live_user: bool) -> Self {
        Conversation {
            responses: Vec::new(),
            live_user,
        }
    }

    /// Handles a conversation tool: `None` if `name` is not one, `Some(Err(..))` for bad arguments
    /// (a message without `Error: ` prefix), otherwise the reply. Only `respond` changes the state.
    pub fn handle(&mut self, name: &str, arguments: &Value) -> Option<Result<Reply, String>> {
        let params = conversation_params(name)?;
        let args = match Args::from_value(name, arguments, params) {
            Ok(args) => args,
            Err(e) => return Some(Err(e)),
        };
        Some(self.run(&args))
    }

    fn run(&mut self, args: &Args) -> Result<Reply, String> {
        let reply = |text: String| Reply { text, ending: None };
        Ok(match args.tool() {
            RESPOND => {
                let content = args.str("content")?;
                self.responses.push(content);
                reply(
                    if self.live_user {
                        USER_RESPOND_REPLY
                    } else {
                        SOLO_RESPOND_REPLY
                    }
                    .to_string(),
                )
            }
            END_CONVERSATION => Reply {
                text: END_REPLY.to_string(),
                ending: Some(Ending::EndConversation),
            },
            CALCULATE => reply(calculate(&args.str("expression")?)),
            THINK => {
                args.str("thought")?;
                reply(String::new())
            }
            TRANSFER_TO_HUMAN_AGENTS => {
                args.str("summary")?;
                Reply {
                    text: TRANSFER_REPLY.to_string(),
                    ending: Some(Ending::Transfer),
                }
            }
            other => return Err(format!("`{other}` is not a conversation tool")),
        })
    }
}
