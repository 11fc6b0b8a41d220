//! Alternative-action samplers: given an expert state `s_i`, choose the K actions `a_i^j ≠ a_i` whose
//! outcomes become early-experience data. Pluggable behind [`Sampler`]; every sampler is deterministic in
//! its [`SampleContext::seed`], so the fork and the replay-from-reset paths sample the same alternatives.
//!
//! Owns: canonical action keys (what "the same action" means), the four samplers of the paper's table
//! (uniform admissible, tool schema, policy-proposed, exhaustive) and their defaults. Never touches an env:
//! the branching module hands it the state, the expert action and the admissible list.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use sandgym_abi::{Action, Message, Role, ToolCall};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::policy::{self, Policy, PolicyInput};
use crate::rng::SplitMix64;

/// Default K of the uniform-admissible sampler (ALFWorld, paper Table 1).
pub const DEFAULT_K_UNIFORM: usize = 8;
/// Default K of the tool-schema sampler (Tau-Bench retail).
pub const DEFAULT_K_TOOL_SCHEMA: usize = 5;
/// Default K of the policy-proposed sampler (ALFWorld self-reflection: up to 3).
pub const DEFAULT_K_POLICY: usize = 3;

/// What a sampler sees of one expert state.
#[derive(Debug, Clone, Copy)]
pub struct SampleContext<'a> {
    /// The conversation up to `s_i`, system prompt first.
    pub messages: &'a [Message],
    /// Tool schemas of the env (OpenAI function-calling shape).
    pub tools: &'a [Value],
    /// The expert action `a_i` (never returned as an alternative).
    pub expert: &'a Action,
    /// Admissible actions in `s_i` (empty when the env cannot list them).
    pub admissible: &'a [Action],
    /// Seed of this state's sampling stream (derived from the episode seed and the step).
    pub seed: u64,
    /// Index of the expert state in its episode.
    pub step: u32,
    /// Scratch kept across the states of one episode (`None`: nothing is kept).
    pub memo: Option<&'a SamplerMemo>,
}

/// Scratch a sampler may keep across the states of one episode. The branching walk hands the states of
/// an episode over in order, each state's messages extending the previous state's, so what a sampler
/// derived from a conversation prefix need not be derived again (the tool-schema sampler's scan of
/// seen values would otherwise grow with the square of the episode length).
#[derive(Default)]
pub struct SamplerMemo(Mutex<Option<Box<dyn Any + Send>>>);

impl SamplerMemo {
    /// The scratch of type `T` (a new default one when it holds none or another type), under a lock.
    fn with<T: Any + Send + Default, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|b| b.is::<T>()) {
            *slot = Some(Box::new(T::default()));
        }
        let scratch = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<T>())
            .expect("the slot holds a T");
        f(scratch)
    }
}

impl std::fmt::Debug for SamplerMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SamplerMemo")
    }
}

/// Chooses alternative actions for an expert state.
pub trait Sampler: Send + Sync {
    /// Name recorded in the `sampler` column (e.g. `uniform`).
    fn name(&self) -> &str;

    /// Whether the sampler only works on envs that list admissible actions (`Capabilities.actions`).
    fn requires_admissible(&self) -> bool {
        false
    }

    /// Whether the sampler looks at the admissible actions when the env lists them (they are then fetched
    /// in every expert state).
    fn wants_admissible(&self) -> bool {
        self.requires_admissible()
    }

    /// The number of alternatives it aims for per state (`None`: as many as the state offers).
    fn k(&self) -> Option<usize>;

    /// The alternatives: canonical (see [`canonicalize`]), pairwise distinct and all different from the
    /// expert action. May return fewer than K when the state offers fewer.
    fn sample(&self, ctx: &SampleContext<'_>) -> Result<Vec<Action>>;
}

/// Canonical JSON text: object keys sorted (serde_json's map is ordered), no whitespace.
fn canonical_json(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .map(|v| sort_keys(v).to_string())
}

/// `value` with every object's keys sorted: serde_json keeps insertion order (the `preserve_order`
/// feature, which tau observations need), so key order must be normalized explicitly here.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// The action in canonical form: trimmed content, call ids `call_0, call_1, …`, arguments re-serialized
/// with sorted keys when they are valid JSON (kept verbatim otherwise), `format_error` kept.
pub fn canonicalize(action: &Action) -> Action {
    Action {
        content: action.content.trim().to_string(),
        tool_calls: action
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, call)| ToolCall {
                id: format!("call_{i}"),
                name: call.name.trim().to_string(),
                arguments: canonical_json(&call.arguments)
                    .unwrap_or_else(|| call.arguments.clone()),
            })
            .collect(),
        format_error: action.format_error.clone(),
    }
}

/// A key that two actions share iff they are the same action up to call ids, argument key order and
/// surrounding whitespace.
pub fn action_key(action: &Action) -> String {
    canonical_key(&canonicalize(action))
}

/// [`action_key`] of an action already in canonical form: `[content, [[name, arguments], …],
/// format_error]` as JSON text.
fn canonical_key(canonical: &Action) -> String {
    let calls: Vec<(&str, &str)> = canonical
        .tool_calls
        .iter()
        .map(|c| (c.name.as_str(), c.arguments.as_str()))
        .collect();
    serde_json::to_string(&(&canonical.content, calls, &canonical.format_error))
        .expect("strings serialize")
}

/// Collects distinct canonical alternatives, skipping the expert's key and repeats.
struct Picked {
    seen: HashSet<String>,
    actions: Vec<Action>,
}

impl Picked {
    fn new(expert: &Action) -> Picked {
        Picked {
            seen: HashSet::from([action_key(expert)]),
            actions: Vec::new(),
        }
    }

    /// Adds `action` unless it is the expert's or already picked; returns whether it was added.
    fn add(&mut self, action: &Action) -> bool {
        let canonical = canonicalize(action);
        if self.seen.insert(canonical_key(&canonical)) {
            self.actions.push(canonical);
            true
        } else {
            false
        }
    }
}

/// Uniform without replacement from `pool`, up to `want` more actions; drawn actions that are the
/// expert's or already picked are passed over, which leaves the draw uniform over the others. (Only
/// drawn actions are canonicalized: admissible lists run to hundreds of actions.)
fn take_uniform(pool: &[Action], picked: &mut Picked, want: usize, rng: &mut SplitMix64) {
    let mut candidates: Vec<&Action> = pool.iter().collect();
    let mut added = 0;
    while added < want && !candidates.is_empty() {
        let i = rng.below(candidates.len());
        let action = candidates.swap_remove(i);
        if picked.add(action) {
            added += 1;
        }
    }
}

/// Uniform without replacement from the env's admissible actions, excluding the expert action
/// (ALFWorld-style; K = 8 by default).
#[derive(Debug, Clone)]
pub struct UniformSampler {
    pub k: usize,
}

impl Default for UniformSampler {
    fn default() -> Self {
        UniformSampler {
            k: DEFAULT_K_UNIFORM,
        }
    }
}

impl Sampler for UniformSampler {
    fn name(&self) -> &str {
        "uniform"
    }

    fn requires_admissible(&self) -> bool {
        true
    }

    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    fn sample(&self, ctx: &SampleContext<'_>) -> Result<Vec<Action>> {
        let mut rng = SplitMix64::for_stream(ctx.seed, 1);
        let mut picked = Picked::new(ctx.expert);
        take_uniform(ctx.admissible, &mut picked, self.k, &mut rng);
        Ok(picked.actions)
    }
}

/// Every admissible action except the expert's, in the env's order (TravelPlanner-style). `limit` caps
/// the count (none by default).
#[derive(Debug, Clone, Default)]
pub struct ExhaustiveSampler {
    pub limit: Option<usize>,
}

impl Sampler for ExhaustiveSampler {
    fn name(&self) -> &str {
        "exhaustive"
    }

    fn requires_admissible(&self) -> bool {
        true
    }

    fn k(&self) -> Option<usize> {
        self.limit
    }

    fn sample(&self, ctx: &SampleContext<'_>) -> Result<Vec<Action>> {
        let mut picked = Picked::new(ctx.expert);
        for action in ctx.admissible {
            if self
                .limit
                .is_some_and(|limit| picked.actions.len() >= limit)
            {
                break;
            }
            picked.add(action);
        }
        Ok(picked.actions)
    }
}

/// A random tool, with arguments drawn from its JSON schema and, preferably, from values seen in the
/// state (ids in tool results, the task text's tokens); optionally never the expert's tool (Tau-Bench
/// retail: "the expert's tool removed from the tool set"; K = 5 by default).
#[derive(Debug, Clone)]
pub struct ToolSchemaSampler {
    pub k: usize,
    pub exclude_expert_tool: bool,
}

impl Default for ToolSchemaSampler {
    fn default() -> Self {
        ToolSchemaSampler {
            k: DEFAULT_K_TOOL_SCHEMA,
            exclude_expert_tool: false,
        }
    }
}

/// Values seen in the state: by argument name (from tool-call arguments and JSON tool results) and all
/// scalars, strings and numbers separately.
#[derive(Debug, Default)]
struct SeenValues {
    by_key: BTreeMap<String, Vec<Value>>,
    strings: Vec<String>,
    known: HashSet<String>,
    numbers: Vec<Value>,
    /// Messages scanned so far: a later state's conversation extends an earlier one's.
    scanned: usize,
}

impl SeenValues {
    /// Scans the messages not seen yet (all of them again if `messages` is shorter than what was
    /// scanned, i.e. another conversation). The result equals a scan of `messages` from scratch.
    fn extend_to(&mut self, messages: &[Message]) {
        if messages.len() < self.scanned {
            *self = SeenValues::default();
        }
        let seen = self;
        for message in &messages[seen.scanned..] {
            if message.role == Role::System {
                continue;
            }
            for call in &message.tool_calls {
                if let Ok(value) = serde_json::from_str::<Value>(&call.arguments) {
                    seen.walk(None, &value, 0);
                }
            }
            match serde_json::from_str::<Value>(&message.content) {
                Ok(value @ (Value::Object(_) | Value::Array(_))) => seen.walk(None, &value, 0),
                _ => {
                    // Plain text: keep id-like tokens (letters and digits mixed, or marked with # / @).
                    for token in message.content.split(|c: char| {
                        c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | '?')
                    }) {
                        let token = token.trim_end_matches(['.', ':', '!']);
                        let idish = token.len() >= 3
                            && (token.contains('#')
                                || token.contains('@')
                                || (token.chars().any(|c| c.is_ascii_digit())
                                    && token.chars().any(|c| c.is_ascii_alphabetic())));
                        if idish && seen.known.insert(token.to_string()) {
                            seen.strings.push(token.to_string());
                        }
                    }
                }
            }
        }
        seen.strings.sort();
        seen.scanned = messages.len();
    }

    fn walk(&mut self, key: Option<&str>, value: &Value, depth: u32) {
        if depth > 6 {
            return;
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    self.walk(Some(k), v, depth + 1);
                }
            }
            Value::Array(items) => {
                for item in items.iter().take(64) {
                    self.walk(key, item, depth + 1);
                }
            }
            Value::String(s) => {
                if let Some(key) = key {
                    push_unique(self.by_key.entry(key.to_string()).or_default(), value);
                }
                if !s.is_empty() && s.len() <= 200 && self.known.insert(s.clone()) {
                    self.strings.push(s.clone());
                }
            }
            Value::Number(_) => {
                if let Some(key) = key {
                    push_unique(self.by_key.entry(key.to_string()).or_default(), value);
                }
                push_unique(&mut self.numbers, value);
            }
            _ => {}
        }
    }
}

fn push_unique(list: &mut Vec<Value>, value: &Value) {
    if !list.contains(value) {
        list.push(value.clone());
    }
}

const WORDS: &[&str] = &["0", "1", "2", "10", "yes", "no", "unknown", "x"];

fn schema_value(
    key: &str,
    schema: &Value,
    seen: &SeenValues,
    rng: &mut SplitMix64,
    depth: u32,
) -> Value {
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.is_empty()
    {
        return options[rng.below(options.len())].clone();
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    // Values seen under the same argument name, of a fitting type, come first.
    if let Some(values) = seen.by_key.get(key) {
        let fitting: Vec<&Value> = values
            .iter()
            .filter(|v| match kind {
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                _ => false,
            })
            .collect();
        if !fitting.is_empty() && rng.below(4) != 0 {
            return fitting[rng.below(fitting.len())].clone();
        }
    }
    match kind {
        "integer" => {
            let ints: Vec<&Value> = seen.numbers.iter().filter(|v| v.is_i64()).collect();
            if !ints.is_empty() && rng.below(2) == 0 {
                return ints[rng.below(ints.len())].clone();
            }
            json!(rng.below(101) as i64 - 10)
        }
        "number" => {
            if !seen.numbers.is_empty() && rng.below(2) == 0 {
                return seen.numbers[rng.below(seen.numbers.len())].clone();
            }
            json!(rng.below(10_001) as f64 / 100.0)
        }
        "boolean" => json!(rng.below(2) == 1),
        "array" if depth < 3 => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..1 + rng.below(2))
                    .map(|_| schema_value(key, &items, seen, rng, depth + 1))
                    .collect(),
            )
        }
        "object" if depth < 3 => schema_object(schema, seen, rng, depth + 1),
        _ => {
            if !seen.strings.is_empty() && rng.below(4) != 0 {
                json!(seen.strings[rng.below(seen.strings.len())])
            } else {
                json!(WORDS[rng.below(WORDS.len())])
            }
        }
    }
}

fn schema_object(schema: &Value, seen: &SeenValues, rng: &mut SplitMix64, depth: u32) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, property) in properties {
            out.insert(name.clone(), schema_value(name, property, seen, rng, depth));
        }
    }
    Value::Object(out)
}

/// `(name, parameters)` of a tool schema in the OpenAI shape (or a bare function object).
fn tool_parts(tool: &Value) -> Option<(&str, &Value)> {
    let function = tool.get("function").unwrap_or(tool);
    let name = function.get("name")?.as_str()?;
    Some((name, function.get("parameters").unwrap_or(&Value::Null)))
}

impl Sampler for ToolSchemaSampler {
    fn name(&self) -> &str {
        "tool-schema"
    }

    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    fn sample(&self, ctx: &SampleContext<'_>) -> Result<Vec<Action>> {
        let expert_tools: HashSet<&str> = ctx
            .expert
            .tool_calls
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let tools: Vec<(&str, &Value)> = ctx
            .tools
            .iter()
            .filter_map(tool_parts)
            .filter(|(name, _)| !(self.exclude_expert_tool && expert_tools.contains(name)))
            .collect();
        if tools.is_empty() {
            return Err(Error::InvalidArgument(if ctx.tools.is_empty() {
                "the `tool-schema` sampler needs an env with tools".into()
            } else {
                "the `tool-schema` sampler has no tool left once the expert's tool is excluded"
                    .into()
            }));
        }
        let draw = |seen: &mut SeenValues| {
            seen.extend_to(ctx.messages);
            let mut rng = SplitMix64::for_stream(ctx.seed, 2);
            let mut picked = Picked::new(ctx.expert);
            // Distinct draws can run out (a tool without parameters has one call): bounded attempts.
            let mut attempts = 0;
            while picked.actions.len() < self.k && attempts < self.k * 20 + 20 {
                attempts += 1;
                let (name, parameters) = tools[rng.below(tools.len())];
                let arguments = schema_object(parameters, seen, &mut rng, 0);
                picked.add(&Action::tool(name, &arguments));
            }
            picked.actions
        };
        Ok(match ctx.memo {
            Some(memo) => memo.with(draw),
            None => draw(&mut SeenValues::default()),
        })
    }
}

/// Alternatives proposed by sandgym policies, one per temperature in `temperatures` (WebShop: policy at
/// T ∈ {0.5, 0.8, 0.9}); proposals are canonicalized and deduplicated, the expert's action dropped. An
/// invalid proposal (not admissible when the env lists admissible actions; an unknown tool, arguments that
/// are not a JSON object or a format error otherwise) is replaced by a random admissible action; with
/// `fill`, the set is topped up to K with random admissible actions.
///
/// The temperature reaches the policy through the factory given to [`PolicySampler::new`], which builds
/// one policy per temperature (`Policy` itself has no temperature: the built-in `expert` and `random`
/// policies ignore it; an LLM policy would sample at it). Each proposal asks its policy with a distinct
/// `episode_seed`, so a stochastic policy proposes different actions.
pub struct PolicySampler {
    pub k: usize,
    /// Proposals asked of each temperature's policy.
    pub proposals_per_temperature: usize,
    /// Top up to K with uniform admissible actions when the proposals fall short.
    pub fill: bool,
    policies: Vec<(f64, Arc<dyn Policy>)>,
    name: String,
}

impl PolicySampler {
    /// `factory(temperature)` builds the policy that proposes at that temperature.
    pub fn new(
        k: usize,
        temperatures: &[f64],
        factory: &dyn Fn(f64) -> Result<Arc<dyn Policy>>,
    ) -> Result<PolicySampler> {
        if temperatures.is_empty() {
            return Err(Error::InvalidArgument(
                "the `policy` sampler needs at least one temperature".into(),
            ));
        }
        if let Some(t) = temperatures.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
            return Err(Error::InvalidArgument(format!(
                "temperatures must be finite and non-negative, got {t}"
            )));
        }
        let policies = temperatures
            .iter()
            .map(|t| Ok((*t, factory(*t)?)))
            .collect::<Result<Vec<_>>>()?;
        let name = format!("policy:{}", policies[0].1.name());
        Ok(PolicySampler {
            k,
            proposals_per_temperature: k.div_ceil(temperatures.len()).max(1),
            fill: true,
            policies,
            name,
        })
    }

    /// A sampler over a built-in policy by name (`expert`, `random`), the same at every temperature.
    pub fn by_name(k: usize, policy: &str, temperatures: &[f64]) -> Result<PolicySampler> {
        PolicySampler::new(k, temperatures, &|_| policy::by_name(policy).map(Arc::from))
    }

    /// A sampler over any buildable policy (`openai` included): an `openai` policy is built once per
    /// temperature with that sampling temperature; the others ignore it.
    pub fn from_spec(
        k: usize,
        spec: &policy::PolicySpec,
        temperatures: &[f64],
    ) -> Result<PolicySampler> {
        PolicySampler::new(k, temperatures, &|temperature| {
            let mut spec = spec.clone();
            spec.openai.temperature = Some(temperature);
            policy::build(&spec)
        })
    }
}

fn is_valid_proposal(
    action: &Action,
    ctx: &SampleContext<'_>,
    admissible: &HashSet<String>,
) -> bool {
    if !ctx.admissible.is_empty() {
        return admissible.contains(&action_key(action));
    }
    action.format_error.is_none()
        && action.tool_calls.iter().all(|call| {
            ctx.tools
                .iter()
                .filter_map(tool_parts)
                .any(|(name, _)| name == call.name)
                && matches!(
                    serde_json::from_str::<Value>(&call.arguments),
                    Ok(Value::Object(_))
                )
        })
}

impl Sampler for PolicySampler {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants_admissible(&self) -> bool {
        true
    }

    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    fn sample(&self, ctx: &SampleContext<'_>) -> Result<Vec<Action>> {
        let admissible: HashSet<String> = ctx.admissible.iter().map(action_key).collect();
        let mut rng = SplitMix64::for_stream(ctx.seed, 3);
        let mut picked = Picked::new(ctx.expert);
        'outer: for (t_index, (_, policy)) in self.policies.iter().enumerate() {
            for proposal in 0..self.proposals_per_temperature {
                if picked.actions.len() >= self.k {
                    break 'outer;
                }
                let needs = policy.needs();
                let input = PolicyInput {
                    messages: ctx.messages,
                    tools: ctx.tools,
                    expert: needs.expert.then_some(ctx.expert),
                    admissible: if needs.admissible {
                        ctx.admissible
                    } else {
                        &[]
                    },
                    episode_seed: SplitMix64::for_stream(
                        ctx.seed,
                        ((t_index as u64) << 32) | proposal as u64,
                    )
                    .next_u64(),
                    turn: ctx.step,
                };
                let action = canonicalize(&policy.act(&input)?);
                if is_valid_proposal(&action, ctx, &admissible) {
                    picked.add(&action);
                } else if !ctx.admissible.is_empty() {
                    take_uniform(ctx.admissible, &mut picked, 1, &mut rng);
                } else {
                    // Nothing to replace it with: keep it (its error observation is a valid target).
                    picked.add(&action);
                }
            }
        }
        if self.fill && picked.actions.len() < self.k {
            let want = self.k - picked.actions.len();
            take_uniform(ctx.admissible, &mut picked, want, &mut rng);
        }
        picked.actions.truncate(self.k);
        Ok(picked.actions)
    }
}

/// Names accepted by [`by_name`].
pub const SAMPLER_NAMES: &[&str] = &["uniform", "tool-schema", "policy", "exhaustive"];

/// Settings of [`by_name`]; `k = None` takes the sampler's default.
#[derive(Debug, Clone)]
pub struct SamplerSpec {
    pub name: String,
    pub k: Option<usize>,
    /// tool-schema: never sample the expert's tool.
    pub exclude_expert_tool: bool,
    /// policy: the proposing policy (`expert`, `random`), when `policy_spec` is not given.
    pub policy: String,
    /// policy: the full spec of the proposing policy (e.g. `openai` with its endpoint settings).
    pub policy_spec: Option<policy::PolicySpec>,
    /// policy: temperatures, one proposing policy each.
    pub temperatures: Vec<f64>,
}

impl Default for SamplerSpec {
    fn default() -> Self {
        SamplerSpec {
            name: "uniform".into(),
            k: None,
            exclude_expert_tool: false,
            policy: "random".into(),
            policy_spec: None,
            temperatures: vec![1.0],
        }
    }
}

/// Builds a sampler from its spec.
pub fn by_name(spec: &SamplerSpec) -> Result<Box<dyn Sampler>> {
    if spec.k == Some(0) {
        return Err(Error::InvalidArgument("k must be at least 1".into()));
    }
    Ok(match spec.name.as_str() {
        "uniform" => Box::new(UniformSampler {
            k: spec.k.unwrap_or(DEFAULT_K_UNIFORM),
        }),
        "exhaustive" => Box::new(ExhaustiveSampler { limit: spec.k }),
        "tool-schema" => Box::new(ToolSchemaSampler {
            k: spec.k.unwrap_or(DEFAULT_K_TOOL_SCHEMA),
            exclude_expert_tool: spec.exclude_expert_tool,
        }),
        "policy" => Box::new(match &spec.policy_spec {
            Some(policy_spec) => PolicySampler::from_spec(
                spec.k.unwrap_or(DEFAULT_K_POLICY),
                policy_spec,
                &spec.temperatures,
            )?,
            None => PolicySampler::by_name(
                spec.k.unwrap_or(DEFAULT_K_POLICY),
                &spec.policy,
                &spec.temperatures,
            )?,
        }),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown sampler `{other}` (available: {})",
                SAMPLER_NAMES.join(", ")
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(e: &str) -> Action {
        Action::tool("calc", &json!({ "expression": e }))
    }

    fn ctx<'a>(
        expert: &'a Action,
        admissible: &'a [Action],
        tools: &'a [Value],
        messages: &'a [Message],
    ) -> SampleContext<'a> {
        SampleContext {
            messages,
            tools,
            expert,
            admissible,
            seed: 7,
            step: 0,
            memo: None,
        }
    }

    #[test]
    fn keys_ignore_ids_key_order_and_whitespace() {
        let mut a = Action::tool("f", &json!({"a": 1, "b": 2}));
        a.tool_calls[0].arguments = "{ \"b\": 2, \"a\": 1 }".into();
        a.tool_calls[0].id = "xyz".into();
        let b = Action::tool("f", &json!({"a": 1, "b": 2}));
        assert_eq!(action_key(&a), action_key(&b));
        assert_ne!(
            action_key(&b),
            action_key(&Action::tool("f", &json!({"a": 2})))
        );
    }

    #[test]
    fn uniform_excludes_expert_is_distinct_and_reproducible() {
        let admissible: Vec<Action> = (0..20).map(|i| calc(&format!("{i}+1"))).collect();
        let expert = admissible[3].clone();
        let c = ctx(&expert, &admissible, &[], &[]);
        let s = UniformSampler { k: 8 };
        let a = s.sample(&c).unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(a, s.sample(&c).unwrap());
        let keys: HashSet<String> = a.iter().map(action_key).collect();
        assert_eq!(keys.len(), 8);
        assert!(!keys.contains(&action_key(&expert)));
        // Fewer admissible than K: all of them but the expert.
        let few = &admissible[..4];
        assert_eq!(
            UniformSampler { k: 8 }
                .sample(&ctx(&expert, few, &[], &[]))
                .unwrap()
                .len(),
            3
        );
        let all = ExhaustiveSampler::default().sample(&c).unwrap();
        assert_eq!(all.len(), 19);
    }

    #[test]
    fn tool_schema_uses_seen_values_and_can_exclude_the_expert_tool() {
        let tools = vec![
            json!({"type": "function", "function": {"name": "get_order", "parameters": {
                "type": "object", "properties": {"order_id": {"type": "string"}}}}}),
            json!({"type": "function", "function": {"name": "cancel", "parameters": {
                "type": "object", "properties": {"order_id": {"type": "string"},
                "reason": {"enum": ["a", "b"]}}}}}),
        ];
        let messages = vec![Message::user("Cancel my order #W123, I'm bob@example.com")];
        let expert = Action::tool("get_order", &json!({"order_id": "#W123"}));
        let s = ToolSchemaSampler {
            k: 5,
            exclude_expert_tool: true,
        };
        let out = s.sample(&ctx(&expert, &[], &tools, &messages)).unwrap();
        assert!(!out.is_empty());
        assert!(out.iter().all(|a| a.tool_calls[0].name == "cancel"));
        assert!(
            out.iter()
                .any(|a| a.tool_calls[0].arguments.contains("#W123"))
        );
    }

    #[test]
    fn tool_schema_memo_samples_what_a_scan_from_scratch_samples() {
        let tools = vec![
            json!({"type": "function", "function": {"name": "get_order", "parameters": {
                "type": "object", "properties": {"order_id": {"type": "string"},
                "quantity": {"type": "integer"}, "price": {"type": "number"}}}}}),
            json!({"type": "function", "function": {"name": "find_user", "parameters": {
                "type": "object", "properties": {"email": {"type": "string"}}}}}),
        ];
        let mut conversation = vec![
            Message::system("sys"),
            Message::user("Order #W1 for carol@example.com please"),
        ];
        for turn in 0..8 {
            let call = Action::tool("get_order", &json!({"order_id": format!("#W{turn}")}));
            conversation.push(Message::assistant(&call));
            conversation.push(Message::user(
                json!({"order_id": format!("#W{}", turn + 1), "quantity": turn, "price": turn as f64 * 1.5,
                       "items": [{"item_id": format!("i{turn}x"), "email": format!("u{turn}@x.org")}]})
                .to_string(),
            ));
        }
        let s = ToolSchemaSampler {
            k: 5,
            exclude_expert_tool: false,
        };
        let expert = Action::tool("find_user", &json!({"email": "carol@example.com"}));
        let memo = SamplerMemo::default();
        // States of one episode in order (with the memo), then a shorter, other conversation.
        for end in (2..=conversation.len()).step_by(2).chain([3]) {
            let messages = &conversation[..end];
            let mut with_memo = ctx(&expert, &[], &tools, messages);
            with_memo.memo = Some(&memo);
            with_memo.seed = end as u64;
            let mut scratch = with_memo;
            scratch.memo = None;
            assert_eq!(
                s.sample(&with_memo).unwrap(),
                s.sample(&scratch).unwrap(),
                "{end} messages"
            );
        }
    }

    #[test]
    fn policy_sampler_replaces_the_expert_and_fills() {
        let admissible: Vec<Action> = (0..6).map(|i| calc(&format!("{i}*2"))).collect();
        let expert = admissible[0].clone();
        // The expert policy proposes only the expert action: dropped, then topped up from admissible.
        let s = PolicySampler::by_name(3, "expert", &[0.5, 1.0]).unwrap();
        let out = s.sample(&ctx(&expert, &admissible, &[], &[])).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|a| action_key(a) != action_key(&expert)));
        let r = PolicySampler::by_name(3, "random", &[1.0]).unwrap();
        assert_eq!(
            r.sample(&ctx(&expert, &admissible, &[], &[]))
                .unwrap()
                .len(),
            3
        );
        assert!(PolicySampler::by_name(3, "random", &[]).is_err());
        assert!(
            by_name(&SamplerSpec {
                name: "nope".into(),
                ..SamplerSpec::default()
            })
            .is_err()
        );
    }
}
