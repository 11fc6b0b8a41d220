//! Self-reflection (paper §4.3): the prompts that ask a model why the expert action beats the
//! alternatives, and — once a model has filled them — the SFT rows (user = `s_i`, assistant = the
//! reflection then `a_i`), with the optional filters of the authors' release notes, all off by default.
//!
//! Owns the two templates (the paper's verbatim one, and a de-leaked variant), the prompt rows (which
//! carry everything the SFT builder needs, so it never re-reads branches) and the filters. Renders states
//! and actions with [`crate::chat`], so `s_i` is serialized exactly as in the other files.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::datasets::{SftRow, SftWriter, Staged};
use super::table::Branch;
use crate::chat::{
    parse_action, render_message_action, render_observation, render_state, system_prompt,
};
use crate::error::{Error, Result};

/// Alternatives shown in a reflection prompt by default (ALFWorld's K for self-reflection).
pub const DEFAULT_REFLECT_K: usize = 3;

/// Which reflection prompt template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// The paper's §4.3 template, word for word.
    Paper,
    /// Slots renamed, label words and outcome narration forbidden, a length target (release lessons).
    Deleaked,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::Paper => "paper",
            Template::Deleaked => "deleaked",
        }
    }
}

/// One reflection prompt, self-contained: the chat to send, and what the SFT row will need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionPrompt {
    /// `{episode_id}/{step}`: the key a filled reflection refers to.
    pub id: String,
    pub episode_id: String,
    pub step: u32,
    pub template: Template,
    /// The chat to send to the reflecting model: one user message holding the filled template.
    pub messages: Vec<serde_json::Value>,
    /// The agent prompt (system message of the SFT row).
    pub system: String,
    /// `s_i` rendered as in every dataset file (user message of the SFT row).
    pub state: String,
    /// `a_i` rendered in the action format.
    pub expert_action: String,
    /// The alternatives shown, rendered.
    pub alternative_actions: Vec<String>,
}

/// The paper's template (§4.3) up to the alternatives list.
fn paper_prompt(
    state: &str,
    expert: &str,
    outcome: &str,
    alternatives: &[(String, String)],
) -> String {
    let mut text = format!(
        "You will be presented with a situation where you need to choose between multiple possible actions. \
Your task is to analyze the situation and provide reasoning about why we decide to take the expert action.\n\
• Situation Description (s_i): {state}\n\
• Expert Action (a_i): {expert}\n\
• Expected Outcome (s_{{i+1}}): {outcome}\n\
• Alternative Actions:\n"
    );
    for (j, (action, result)) in alternatives.iter().enumerate() {
        let n = j + 1;
        text.push_str(&format!(
            "  {n}. Action a_i^{n}: {action}, resulting state s_i^{n}: {result}\n"
        ));
    }
    text.push_str(
        "Provide a detailed self-reflection as an internal monologue that demonstrates your reasoning process for \
the current situation. Your monologue should:\n\
1. Analyze the situation and the goal.\n\
2. Compare the possible actions, explaining why each may be less optimal.\n\
3. Justify why the expert action is most suitable, grounded in the expected outcome.\n\
4. Highlight any relevant clues, constraints, or consequences from the situation.\n\
Guidelines:\n\
• Stay strictly within the provided information.\n\
• Avoid meta-commentary about being an AI.\n\
• Use natural, step-by-step reasoning.\n\
• Focus on logical decision-making.\n\
Output: Directly write the self-reflection monologue, no extra headings, disclaimers, or external notes.",
    );
    text
}

/// The de-leaked variant: no "expert" slot names, no numbered labels, outcomes for judgement only.
fn deleaked_prompt(
    state: &str,
    expert: &str,
    outcome: &str,
    alternatives: &[(String, String)],
) -> String {
    let mut text = format!(
        "You will be shown a situation from an agent's task, the action the agent takes here, and other \
actions it could take, each with what it would lead to. Write the agent's internal monologue before it acts, \
reasoning its way to the action it takes here.\n\
• Situation: {state}\n\
• The action the agent takes here: {expert}\n\
• What it leads to (for your judgement only; the agent has not seen it): {outcome}\n\
• Other actions the agent could take, and what each would lead to (for your judgement only):\n"
    );
    for (action, result) in alternatives {
        text.push_str(&format!("  - {action}, which would lead to: {result}\n"));
    }
    text.push_str(
        "The monologue should:\n\
- analyze the situation and the goal;\n\
- weigh the other actions, describing each by what it does, and why it would help less;\n\
- reason toward the action the agent takes here, anticipating its effect (\"this should ...\") instead of \
describing any outcome as already seen;\n\
- point out the clues, constraints or consequences in the situation that matter.\n\
Rules:\n\
- Stay strictly within the provided information.\n\
- Do not use the words expert, selected, chosen, correct, best, optimal or preferred, and do not refer to \
actions by numbers or labels.\n\
- Do not write \"the resulting state\", \"which results in\", \"now I see\" or \"now I find\".\n\
- No meta-commentary about being an AI.\n\
- Aim for 200 to 400 words.\n\
Output: directly the monologue, with no headings, disclaimers or notes, ending with the action to take.",
    );
    text
}

/// The reflection prompt of one state, from its branch rows (expert first). Alternatives whose step
/// failed outright are skipped; at most `reflect_k` are shown. `None` when no alternative is left or the
/// expert step failed.
pub fn reflection_prompt(
    group: &[Branch],
    template: Template,
    reflect_k: usize,
) -> Option<ReflectionPrompt> {
    let expert = group
        .first()
        .filter(|b| b.is_expert && b.error_kind.is_none())?;
    let alternatives: Vec<(String, String)> = group[1..]
        .iter()
        .filter(|b| b.error_kind.is_none())
        .take(reflect_k)
        .map(|b| {
            (
                render_message_action(&b.action),
                render_observation(&b.next_state),
            )
        })
        .collect();
    if alternatives.is_empty() {
        return None;
    }
    let state = render_state(&expert.state);
    let expert_action = render_message_action(&expert.action);
    let outcome = render_observation(&expert.next_state);
    let text = match template {
        Template::Paper => paper_prompt(&state, &expert_action, &outcome, &alternatives),
        Template::Deleaked => deleaked_prompt(&state, &expert_action, &outcome, &alternatives),
    };
    Some(ReflectionPrompt {
        id: format!("{}/{}", expert.episode_id, expert.step),
        episode_id: expert.episode_id.clone(),
        step: expert.step,
        template,
        messages: vec![serde_json::json!({"role": "user", "content": text})],
        system: system_prompt(&expert.state),
        state,
        expert_action,
        alternative_actions: alternatives.into_iter().map(|(a, _)| a).collect(),
    })
}

/// Streams reflection prompts to a JSONL file (one [`ReflectionPrompt`] per line).
pub struct PromptWriter {
    staged: Staged,
    out: BufWriter<File>,
    rows: u64,
}

impl PromptWriter {
    pub fn create(path: &Path) -> Result<PromptWriter> {
        let (staged, file) = Staged::new(path)?;
        Ok(PromptWriter {
            staged,
            out: BufWriter::new(file),
            rows: 0,
        })
    }

    pub fn write(&mut self, prompt: &ReflectionPrompt) -> Result<()> {
        let line = serde_json::to_string(prompt).expect("prompts encode");
        writeln!(self.out, "{line}").map_err(|e| Error::io_path("write", self.staged.temp(), e))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        self.out
            .flush()
            .map_err(|e| Error::io_path("write", self.staged.temp(), e))?;
        drop(self.out);
        self.staged.publish()
    }
}

/// Optional filters of filled reflections (authors' release lessons); all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filters {
    /// Drop reflections that use a label word (expert, selected, chosen, correct, best, optimal,
    /// preferred) or a numbered label (`Action 1`, `a_i^2`, `alternative 3`, `option 1`).
    pub label_leak: bool,
    /// Drop reflections that narrate an outcome as seen (`the resulting state`, `which results in`,
    /// `now I see`, `now I find`).
    pub outcome_leak: bool,
    /// Drop reflections whose opening (first 120 characters) reappears in their second half.
    pub duplicated: bool,
    /// Drop reflections whose last-mentioned action is an alternative rather than the expert action.
    pub concluded_action: bool,
}

const LABEL_WORDS: &[&str] = &[
    "expert",
    "selected",
    "chosen",
    "correct",
    "best",
    "optimal",
    "preferred",
];
const LABEL_NOUNS: &[&str] = &["action", "alternative", "option"];
const OUTCOME_PHRASES: &[&str] = &[
    "the resulting state",
    "which results in",
    "now i see",
    "now i find",
];

/// The label leak found in `text`, if any.
pub fn label_leak(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '^'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in words.iter().enumerate() {
        if LABEL_WORDS.contains(word) {
            return Some(format!("label word `{word}`"));
        }
        if word.starts_with("a_i") {
            return Some(format!("label `{word}`"));
        }
        if LABEL_NOUNS.contains(word)
            && words
                .get(i + 1)
                .is_some_and(|next| next.chars().all(|c| c.is_ascii_digit()))
        {
            return Some(format!("numbered label `{word} {}`", words[i + 1]));
        }
    }
    None
}

/// The outcome-narration phrase found in `text`, if any.
pub fn outcome_leak(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    OUTCOME_PHRASES.iter().copied().find(|p| lower.contains(p))
}

/// Whether the opening of `text` (first 120 characters, whitespace collapsed) reappears in its second half.
pub fn is_duplicated(text: &str) -> bool {
    let norm: Vec<char> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    const HEAD: usize = 120;
    if norm.len() < 2 * HEAD {
        return false;
    }
    let head: String = norm[..HEAD].iter().collect();
    let second: String = norm[norm.len() / 2..].iter().collect();
    second.contains(&head)
}

/// Strings by which a reflection can name an action: its rendering, and each string value of at least
/// three characters in its tool-call arguments (or its text, for a text action).
fn signatures(rendered: &str) -> Vec<String> {
    let mut out = vec![rendered.to_string()];
    let action = parse_action(rendered);
    if action.tool_calls.is_empty() && action.content.len() >= 3 {
        out.push(action.content.clone());
    }
    for call in &action.tool_calls {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&call.arguments) {
            collect_strings(&value, &mut out);
        }
    }
    out.retain(|s| s.trim().len() >= 3);
    out
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Which action the reflection names last: `Some(0)` the expert, `Some(j)` the j-th alternative (1-based),
/// `None` if it names none. A mention inside a longer mention of another action does not count, and a
/// string naming both the expert and an alternative counts for the expert.
pub fn concluded_action(text: &str, expert: &str, alternatives: &[String]) -> Option<usize> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (index, rendered) in std::iter::once(expert)
        .chain(alternatives.iter().map(String::as_str))
        .enumerate()
    {
        for signature in signatures(rendered) {
            owner.entry(signature).or_insert(index);
        }
    }
    let mut mentions: Vec<(usize, usize, usize)> = Vec::new();
    for (signature, index) in &owner {
        for (start, matched) in text.match_indices(signature.as_str()) {
            mentions.push((start, start + matched.len(), *index));
        }
    }
    let inside_longer = |m: &(usize, usize, usize)| {
        mentions
            .iter()
            .any(|o| o.2 != m.2 && o.0 <= m.0 && m.1 <= o.1 && (o.1 - o.0) > (m.1 - m.0))
    };
    mentions
        .iter()
        .filter(|m| !inside_longer(m))
        .max_by_key(|m| (m.1, std::cmp::Reverse(m.2)))
        .map(|m| m.2)
}

/// Why a reflection is dropped under `filters`, or `None` to keep it.
pub fn drop_reason(
    filters: &Filters,
    prompt: &ReflectionPrompt,
    reflection: &str,
) -> Option<String> {
    if reflection.trim().is_empty() {
        return Some("empty reflection".into());
    }
    if filters.label_leak
        && let Some(leak) = label_leak(reflection)
    {
        return Some(format!("label leak: {leak}"));
    }
    if filters.outcome_leak
        && let Some(phrase) = outcome_leak(reflection)
    {
        return Some(format!("outcome leak: `{phrase}`"));
    }
    if filters.duplicated && is_duplicated(reflection) {
        return Some("duplicated monologue".into());
    }
    if filters.concluded_action
        && let Some(j) = concluded_action(
            reflection,
            &prompt.expert_action,
            &prompt.alternative_actions,
        )
        && j > 0
    {
        return Some(format!(
            "concludes with an alternative: {}",
            prompt.alternative_actions[j - 1]
        ));
    }
    None
}

/// The SFT row of a kept reflection: system = agent prompt, user = `s_i`, assistant = reflection, a blank
/// line, then `a_i`.
pub fn reflection_row(prompt: &ReflectionPrompt, reflection: &str) -> SftRow {
    SftRow {
        id: prompt.id.clone(),
        episode_id: prompt.episode_id.clone(),
        step: prompt.step,
        branch: 0,
        is_expert: true,
        messages: vec![
            ("system".into(), prompt.system.clone()),
            ("user".into(), prompt.state.clone()),
            (
                "assistant".into(),
                format!("{}\n\n{}", reflection.trim(), prompt.expert_action),
            ),
        ],
    }
}

/// Reads prompts written by [`PromptWriter`].
pub fn read_prompts(path: &Path) -> Result<Vec<ReflectionPrompt>> {
    read_jsonl(path, |line| {
        serde_json::from_str::<ReflectionPrompt>(line).map_err(|e| e.to_string())
    })
}

/// A filled reflection: the prompt id and the model's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilledReflection {
    pub id: String,
    pub reflection: String,
}

/// Reads filled reflections: from JSONL, one `{"id": ..., "reflection": ...}` object per line, or from a
/// `.parquet` file with `id` and `reflection` string columns (other columns are ignored).
pub fn read_reflections(path: &Path) -> Result<Vec<FilledReflection>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return read_reflections_parquet(path);
    }
    read_jsonl(path, |line| {
        serde_json::from_str::<FilledReflection>(line)
            .map_err(|e| format!("{e} (expected {{\"id\": ..., \"reflection\": ...}})"))
    })
}

fn read_reflections_parquet(path: &Path) -> Result<Vec<FilledReflection>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;

    let bad = |what: String| Error::InvalidArgument(format!("{}: {what}", path.display()));
    let file = File::open(path).map_err(|e| Error::io_path("open", path, e))?;
    let batches = crate::store::read_columns(file, &["id", "reflection"]).map_err(|e| match e {
        crate::store::StoreError::Schema(what) => bad(format!(
            "{what} (expected string columns `id` and `reflection`)"
        )),
        other => bad(other.to_string()),
    })?;
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| -> Result<Vec<Option<String>>> {
            let array = batch.column_by_name(name).expect("projected");
            let strings: Vec<Option<String>> = if let Some(a) = array.as_string_opt::<i32>() {
                a.iter().map(|v| v.map(str::to_owned)).collect()
            } else if let Some(a) = array.as_string_opt::<i64>() {
                a.iter().map(|v| v.map(str::to_owned)).collect()
            } else if let Some(a) = array.as_string_view_opt() {
                a.iter().map(|v| v.map(str::to_owned)).collect()
            } else {
                return Err(bad(format!(
                    "column `{name}` is {}, not a string column",
                    array.data_type()
                )));
            };
            Ok(strings)
        };
        let first_row = out.len();
        for (n, (id, reflection)) in column("id")?
            .into_iter()
            .zip(column("reflection")?)
            .enumerate()
        {
            match (id, reflection) {
                (Some(id), Some(reflection)) => out.push(FilledReflection { id, reflection }),
                _ => {
                    return Err(bad(format!(
                        "row {} has a null id or reflection",
                        first_row + n
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn read_jsonl<T>(
    path: &Path,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let file = File::open(path).map_err(|e| Error::io_path("open", path, e))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io_path("read", path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse(&line).map_err(|e| {
            Error::InvalidArgument(format!("{} line {}: {e}", path.display(), n + 1))
        })?);
    }
    Ok(out)
}

/// What [`build_reflection_sft`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReflectionSummary {
    pub kept: u64,
    pub dropped: u64,
    /// Prompts no reflection was given for.
    pub missing: u64,
    /// `reflection_sft.jsonl`, `reflection_sft.parquet`, `reflection_sft_dropped.jsonl`.
    pub files: Vec<PathBuf>,
}

/// Builds `reflection_sft.{jsonl,parquet}` in `out_dir` from prompts and filled reflections; dropped
/// reflections go, with their reason, to `reflection_sft_dropped.jsonl` (nothing is lost). A reflection
/// for an unknown prompt id, or two for one id, is an error.
pub fn build_reflection_sft(
    prompts: &[ReflectionPrompt],
    reflections: &[FilledReflection],
    filters: &Filters,
    out_dir: &Path,
) -> Result<ReflectionSummary> {
    let by_id: HashMap<&str, &ReflectionPrompt> =
        prompts.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for r in reflections {
        if !by_id.contains_key(r.id.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "reflection for unknown prompt id `{}` (do the prompts and reflections belong together?)",
                r.id
            )));
        }
        if !seen.insert(r.id.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "two reflections for prompt id `{}`",
                r.id
            )));
        }
    }
    let mut writer = SftWriter::create(out_dir, "reflection_sft")?;
    let (staged, file) = Staged::new(&out_dir.join("reflection_sft_dropped.jsonl"))?;
    let mut dropped_out = BufWriter::new(file);
    let mut summary = ReflectionSummary::default();
    let mut kept = Vec::new();
    for r in reflections {
        let prompt = by_id[r.id.as_str()];
        match drop_reason(filters, prompt, &r.reflection) {
            None => kept.push(reflection_row(prompt, &r.reflection)),
            Some(reason) => {
                summary.dropped += 1;
                let line =
                    serde_json::json!({"id": r.id, "reason": reason, "reflection": r.reflection});
                writeln!(dropped_out, "{line}")
                    .map_err(|e| Error::io_path("write", staged.temp(), e))?;
            }
        }
    }
    summary.kept = kept.len() as u64;
    summary.missing = prompts.len().saturating_sub(seen.len()) as u64;
    writer.write(&kept)?;
    let (jsonl, parquet) = writer.finish()?;
    dropped_out
        .flush()
        .map_err(|e| Error::io_path("write", staged.temp(), e))?;
    drop(dropped_out);
    summary.files = vec![jsonl, parquet, staged.publish()?];
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_find_what_they_name() {
        assert!(label_leak("The expert action is to submit").is_some());
        assert!(label_leak("Unlike Action 2, this keeps the numbers").is_some());
        assert!(label_leak("a_i^1 fails").is_some());
        assert!(label_leak("Submitting (3+5)*2 should reach the target.").is_none());
        assert!(outcome_leak("Now I see the order is cancelled").is_some());
        let head = "I need to reach the target with these numbers and each may be used only once, so I plan. ".repeat(2);
        assert!(is_duplicated(&format!("{head} middle part {head}")));
        assert!(!is_duplicated(&head));
        let expert =
            r#"<tool_call>{"name": "submit", "arguments": {"expression":"(3+5)*2"}}</tool_call>"#;
        let alts = vec![
            r#"<tool_call>{"name": "submit", "arguments": {"expression":"3+5"}}</tool_call>"#
                .to_string(),
        ];
        assert_eq!(
            concluded_action("3+5 is too small; (3+5)*2 works.", expert, &alts),
            Some(0)
        );
        assert_eq!(
            concluded_action("(3+5)*2 looks long; I go with 3+5.", expert, &alts),
            Some(1)
        );
        assert_eq!(concluded_action("No idea.", expert, &alts), None);
    }
}
