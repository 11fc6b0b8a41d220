//! Chat formats: the one module that converts between text (or chat JSON) and sandgym's `Action` and
//! `Message`, in every format sandgym reads or writes. [`parse`] reads model text into an `Action`;
//! [`render`] writes actions, messages and states back out. Formats:
//!
//! - Hermes / Qwen `<tool_call>{"name", "arguments"}</tool_call>` blocks, with tool results as
//!   `<tool_response>` blocks and tools described in the system prompt (read and written);
//! - OpenAI JSON tool calls: the chat-completions wire shape and the Hugging Face dataset shape (written),
//!   an assistant message, a call list or a bare call (read);
//! - ReAct `Action:` / `Action Input:` / `Final Answer:` lines, `<answer>` tags and fenced python blocks
//!   (read only: no sandgym output uses them);
//! - the early-experience transcript of a state (`Action: …`, `Observation:` blocks; written).
//!
//! It sees only the ABI types, so every layer that needs a format (the policies, export, early
//! experience, the Python bindings) uses this module instead of one another. The tag literals live here
//! only: a test fails when another host source spells them.

pub mod parse;
pub mod render;

pub use parse::{Format, Parsed, action_from_json, parse_action, parse_completion};
pub use render::{
    fold_system_prompt, hermes_assistant_text, hermes_text_messages, hermes_tool_prompt,
    hermes_user_turn, hf_message, openai_messages, render_action, render_message_action,
    render_observation, render_state, system_prompt, tool_response,
};

/// Opens a Hermes tool call.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
/// Closes a Hermes tool call.
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";
/// Opens a Hermes tool result.
pub const TOOL_RESPONSE_OPEN: &str = "<tool_response>";
/// Closes a Hermes tool result.
pub const TOOL_RESPONSE_CLOSE: &str = "</tool_response>";

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use sandgym_abi::{Action, Message, ToolCall};
    use serde_json::{Value, json};

    use super::*;

    fn action(content: &str, calls: &[(&str, Value)]) -> Action {
        Action {
            content: content.into(),
            tool_calls: calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| ToolCall::new(format!("call_{i}"), *name, arguments))
                .collect(),
            format_error: None,
        }
    }

    /// Actions every writer must give back unchanged: text only, one call, several calls with text,
    /// unicode and quotes in arguments, an argument-less call.
    fn samples() -> Vec<Action> {
        vec![
            action("just text", &[]),
            action("", &[("calc", json!({"expression": "1+2"}))]),
            action(
                "let me check",
                &[
                    ("calc", json!({"expression": "(3+5)*2"})),
                    (
                        "submit",
                        json!({"answer": "say \"é\" 😀", "n": [1, {"b": 2, "a": null}]}),
                    ),
                ],
            ),
            action("", &[("list_all", json!({}))]),
        ]
    }

    #[test]
    fn hermes_inline_round_trips() {
        for a in samples() {
            let text = render_action(&a);
            assert_eq!(parse_action(&text), a, "{text}");
            let forced = parse_completion(&text, Format::Hermes, &[]);
            if !a.tool_calls.is_empty() {
                assert_eq!(forced.action, a, "{text}");
                assert_eq!(forced.parser, Format::Hermes);
            }
        }
    }

    #[test]
    fn hermes_chat_template_text_round_trips() {
        for a in samples() {
            let text = hermes_assistant_text(&Message::assistant(&a));
            assert_eq!(parse_action(&text), a, "{text}");
        }
    }

    #[test]
    fn openai_wire_and_dataset_shapes_round_trip() {
        let mut with_ids = samples();
        with_ids[2].tool_calls[0].id = "abc".into();
        for a in with_ids.into_iter().filter(|a| !a.tool_calls.is_empty()) {
            let message = Message::assistant(&a);
            let wire = openai_messages(std::slice::from_ref(&message))[0].to_string();
            let read = parse_completion(&wire, Format::OpenAi, &[]);
            assert_eq!(read.action, a, "{wire}");
            // As in JSONL exports, which leave out null members (a `"name": null` would read as a call).
            let mut hf = hf_message(&message);
            hf.as_object_mut().unwrap().retain(|_, v| !v.is_null());
            let hf = hf.to_string();
            assert_eq!(parse_completion(&hf, Format::OpenAi, &[]).action, a, "{hf}");
        }
    }

    /// Host sources (every `src/` of `rust/`) outside this module must not spell the Hermes tags in code:
    /// they call this module. Comments and `#[cfg(test)] mod` blocks (model-text fixtures) are skipped.
    #[test]
    fn tag_literals_live_only_in_the_chat_module() {
        let rust_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let chat_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chat");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(rust_dir).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                rust_files(&src, &mut files);
            }
        }
        assert!(files.len() > 20, "found only {} sources", files.len());
        let tags = [
            TOOL_CALL_OPEN,
            TOOL_CALL_CLOSE,
            TOOL_RESPONSE_OPEN,
            TOOL_RESPONSE_CLOSE,
        ];
        let mut offenders = Vec::new();
        for file in files.iter().filter(|f| !f.starts_with(&chat_dir)) {
            let text = std::fs::read_to_string(file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                let code = line.trim_start();
                let test_module = code == "#[cfg(test)]"
                    && lines[n + 1..]
                        .iter()
                        .map(|l| l.trim_start())
                        .find(|l| !l.is_empty())
                        .is_some_and(|l| l.starts_with("mod "));
                if test_module {
                    break;
                }
                if !code.starts_with("//") && tags.iter().any(|t| code.contains(t)) {
                    offenders.push(format!("{}:{}: {code}", file.display(), n + 1));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "write Hermes text through sandgym_core::chat instead:\n{}",
            offenders.join("\n")
        );
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
