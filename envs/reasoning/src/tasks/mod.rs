//! The task families of the suite and what they share.
//!
//! A family ([`Family`]) is a static description: its name, its knobs (with a value per difficulty
//! level), how to generate an instance from a seed and how to read one back from task JSON. An
//! instance is either an [`AnswerPuzzle`] (one `submit(answer)` ends the episode; the verifier is
//! exact) or a [`GamePuzzle`] (interactive: moves change its state until it is solved or the move
//! budget runs out). Keeping generation, verification and the expert of one family in one file
//! makes each family readable on its own; the env in `lib.rs` only dispatches.

pub mod arithmetic;
pub mod base_conversion;
pub mod countdown;
pub mod hanoi;
pub mod knights_knaves;
pub mod letter_counting;
pub mod maze;
pub mod n_queens;
pub mod number_sorting;
pub mod number_theory;
pub mod shortest_path;
pub mod sudoku;

use std::collections::BTreeMap;
use std::fmt::Debug;

use sandgym_sdk::{Rng, Value, serde_json::Map};

/// Difficulty levels every knob has a value for (1 = easiest, near reasoning-gym's defaults; 5 = hardest).
pub const LEVELS: usize = 5;

/// One integer knob of a family: its allowed range (validated at configure, so generation stays
/// bounded for every accepted value) and its default at each difficulty level.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
    pub levels: [i64; LEVELS],
    pub doc: &'static str,
}

impl Knob {
    /// A knob: `name`, its allowed range `min..=max`, its default at each level and what it means.
    pub const fn new(
        name: &'static str,
        min: i64,
        max: i64,
        levels: [i64; LEVELS],
        doc: &'static str,
    ) -> Knob {
        Knob {
            name,
            min,
            max,
            levels,
            doc,
        }
    }
}

/// The four knobs of a family that draws a list of numbers (`min_numbers`, `max_numbers`,
/// `min_value`, `max_value`), with the list length in `2..=max_count` and values in `1..=max_value`.
/// Only the levels of the count knobs and of `max_value` differ between such families.
pub const fn number_list_knobs(
    max_count: i64,
    max_value: i64,
    min_numbers_levels: [i64; LEVELS],
    max_numbers_levels: [i64; LEVELS],
    max_value_levels: [i64; LEVELS],
) -> [Knob; 4] {
    [
        Knob::new(
            "min_numbers",
            2,
            max_count,
            min_numbers_levels,
            "fewest numbers",
        ),
        Knob::new(
            "max_numbers",
            2,
            max_count,
            max_numbers_levels,
            "most numbers",
        ),
        Knob::new("min_value", 1, max_value, [1; LEVELS], "smallest number"),
        Knob::new(
            "max_value",
            1,
            max_value,
            max_value_levels,
            "largest number",
        ),
    ]
}

/// Resolved knob values of one family, by knob name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Knobs(pub BTreeMap<&'static str, i64>);

impl Knobs {
    /// The value of a knob the family declared (a missing one is a bug in the family, not input).
    pub fn get(&self, name: &str) -> i64 {
        *self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("knob `{name}` is not declared"))
    }

    /// `get` as a size or count (knob ranges keep these non-negative).
    pub fn usize(&self, name: &str) -> usize {
        self.get(name) as usize
    }

    /// Fails unless knob `low` does not exceed knob `high`; families call it for their min/max pairs.
    pub fn ordered(&self, low: &str, high: &str) -> Result<(), String> {
        let (lo, hi) = (self.get(low), self.get(high));
        if lo > hi {
            return Err(format!("`{low}` ({lo}) must not exceed `{high}` ({hi})"));
        }
        Ok(())
    }

    /// Uniform draw between two knobs (inclusive), e.g. `min_terms..=max_terms`.
    pub fn draw(&self, rng: &mut Rng, low: &str, high: &str) -> i64 {
        rng.range(self.get(low), self.get(high))
    }
}

/// A task family: static, so the registry is a plain list.
pub trait Family: Sync {
    /// The task name used in config and task JSON, e.g. `gcd`.
    fn name(&self) -> &'static str;
    /// The reasoning-gym task this family follows (for the docs and the task list in `info`).
    fn follows(&self) -> &'static str;
    fn knobs(&self) -> &'static [Knob];
    /// Checks relations between knobs (min ≤ max and the like) after each is range-checked.
    fn check_knobs(&self, _knobs: &Knobs) -> Result<(), String> {
        Ok(())
    }
    /// Draws an instance; must be deterministic in `rng` and bounded in time for every valid knob set.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String>;
    /// Reads an instance from task JSON (the object without its `task` key); errors name the field.
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String>;
}

impl Debug for dyn Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One generated or loaded task.
#[derive(Debug)]
pub enum Instance {
    Answer(Box<dyn AnswerPuzzle>),
    Game(Box<dyn GamePuzzle>),
}

impl Instance {
    pub fn statement(&self) -> String {
        match self {
            Instance::Answer(p) => p.statement(),
            Instance::Game(g) => g.statement(),
        }
    }

    pub fn to_json(&self) -> Map<String, Value> {
        match self {
            Instance::Answer(p) => p.to_json(),
            Instance::Game(g) => g.to_json(),
        }
    }
}

/// A task answered once with `submit(answer)`.
pub trait AnswerPuzzle: Debug + Send {
    /// The question, including the answer format.
    fn statement(&self) -> String;
    /// The fields that replay this exact task (the env adds `task`).
    fn to_json(&self) -> Map<String, Value>;
    /// The exact verifier: `Ok` iff `answer` is correct, else the reason (shown to the model).
    fn verify(&self, answer: &str) -> Result<(), String>;
    /// A correct answer in the requested format.
    fn expert_answer(&self) -> String;
    /// Plausible wrong answers (near misses of the correct one): the admissible-action list offers
    /// them next to the expert's, and the tests check the verifier rejects every one.
    fn wrong_answers(&self) -> Vec<String>;
}

/// An interactive task played with one tool (`move`, `move_disk`) until solved or out of moves.
pub trait GamePuzzle: Debug + Send {
    fn statement(&self) -> String;
    /// The fields that replay this task from its initial state.
    fn to_json(&self) -> Map<String, Value>;
    /// The tool this game is played with.
    fn tool(&self) -> &'static str;
    /// Applies one move given as the tool's arguments: `Ok(observation)`, or `Err(reason)` for an
    /// illegal or malformed move, which leaves the state unchanged.
    fn apply(&mut self, args: &Map<String, Value>) -> Result<String, String>;
    fn is_solved(&self) -> bool;
    /// Moves allowed in total (legal or not) before the episode ends unsolved.
    fn move_budget(&self) -> usize;
    /// The expert's next move (arguments of [`GamePuzzle::tool`]) from the current state: an optimal
    /// continuation, so it solves within the budget from any state the budget still allows.
    fn expert_move(&self) -> Option<Value>;
    /// The legal moves in the current state (a short list).
    fn legal_moves(&self) -> Vec<Value>;
}

/// Every family, in the order the docs list them.
pub static FAMILIES: &[&dyn Family] = &[
    &arithmetic::BasicArithmetic,
    &arithmetic::ChainSum,
    &number_theory::GCD,
    &number_theory::LCM,
    &number_theory::PrimeFactorization,
    &base_conversion::BaseConversion,
    &number_sorting::NumberSorting,
    &letter_counting::LetterCounting,
    &countdown::Countdown,
    &countdown::Puzzle24,
    &sudoku::MiniSudoku,
    &maze::Maze,
    &hanoi::TowerOfHanoi,
    &n_queens::NQueens,
    &knights_knaves::KnightsKnaves,
    &shortest_path::ShortestPath,
];

pub fn family(name: &str) -> Option<&'static dyn Family> {
    FAMILIES.iter().copied().find(|f| f.name() == name)
}

pub fn family_names() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.name()).collect()
}

/// Resolves a family's knobs: each starts at its value for `difficulty` (1-based) and may be
/// overridden by `overrides` (a JSON object of knob → integer, or null); errors name the knob.
pub fn resolve_knobs(
    family: &dyn Family,
    difficulty: usize,
    overrides: &Value,
) -> Result<Knobs, String> {
    let name = family.name();
    let known: Vec<&str> = family.knobs().iter().map(|k| k.name).collect();
    match overrides {
        Value::Null => {}
        Value::Object(map) => {
            if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "unknown knob `{key}` for task `{name}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        other => {
            return Err(format!(
                "config `{name}` must be an object of knobs, got {other}"
            ));
        }
    }
    let mut knobs = Knobs::default();
    for knob in family.knobs() {
        let value = match overrides.get(knob.name).filter(|v| !v.is_null()) {
            None => knob.levels[difficulty - 1],
            Some(v) => v
                .as_i64()
                .filter(|n| (knob.min..=knob.max).contains(n))
                .ok_or_else(|| {
                    format!(
                        "knob `{name}.{}` must be an integer in {}..={}, got {v}",
                        knob.name, knob.min, knob.max
                    )
                })?,
        };
        knobs.0.insert(knob.name, value);
    }
    family
        .check_knobs(&knobs)
        .map_err(|e| format!("knobs of task `{name}`: {e}"))?;
    Ok(knobs)
}

// ---- Reading task JSON: every error names the field, since task files are written by people. ----

/// Fails on a field outside `known`.
pub fn known_fields(task: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match task.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "task has unknown field `{key}` (known: task, {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// A required integer field within `lo..=hi`.
pub fn int_field(task: &Map<String, Value>, key: &str, lo: i64, hi: i64) -> Result<i64, String> {
    task.get(key)
        .and_then(Value::as_i64)
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("task field `{key}` must be an integer in {lo}..={hi}"))
}

/// A required array of integers within `lo..=hi`, with a length in `len`.
pub fn int_list_field(
    task: &Map<String, Value>,
    key: &str,
    len: std::ops::RangeInclusive<usize>,
    lo: i64,
    hi: i64,
) -> Result<Vec<i64>, String> {
    list_field(task, key, len, &format!("integers in {lo}..={hi}"), |v| {
        v.as_i64().filter(|n| (lo..=hi).contains(n))
    })
}

/// A required array with a length in `len` whose every item `item` reads; `what` describes the items.
fn list_field<T>(
    task: &Map<String, Value>,
    key: &str,
    len: std::ops::RangeInclusive<usize>,
    what: &str,
    item: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, String> {
    task.get(key)
        .and_then(Value::as_array)
        .filter(|a| len.contains(&a.len()))
        .and_then(|items| items.iter().map(item).collect::<Option<Vec<T>>>())
        .ok_or_else(|| {
            format!(
                "task field `{key}` must be an array of {} to {} {what}",
                len.start(),
                len.end()
            )
        })
}

/// A required string field of at most `max_len` bytes.
pub fn str_field<'a>(
    task: &'a Map<String, Value>,
    key: &str,
    max_len: usize,
) -> Result<&'a str, String> {
    task.get(key)
        .and_then(Value::as_str)
        .filter(|s| s.len() <= max_len)
        .ok_or_else(|| format!("task field `{key}` must be a string of at most {max_len} bytes"))
}

/// A required array of strings (each at most `max_len` bytes), with a length in `len`.
pub fn str_list_field(
    task: &Map<String, Value>,
    key: &str,
    len: std::ops::RangeInclusive<usize>,
    max_len: usize,
) -> Result<Vec<String>, String> {
    list_field(
        task,
        key,
        len,
        &format!("strings of at most {max_len} bytes"),
        |v| {
            v.as_str()
                .filter(|s| s.len() <= max_len)
                .map(str::to_string)
        },
    )
}

// ---- Reading answers. ----

/// Longest answer any verifier reads; longer submissions are rejected before parsing.
pub const MAX_ANSWER_LEN: usize = 4096;

/// Parses an integer answer, allowing surrounding whitespace and a leading `+`.
pub fn parse_int_answer(answer: &str) -> Result<i128, String> {
    let text = answer.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.len() > 40 || digits.is_empty() {
        return Err(format!("expected a whole number, got {text:?}"));
    }
    digits
        .parse::<i128>()
        .map_err(|_| format!("expected a whole number, got {text:?}"))
}

/// The verifier of tasks whose answer is one integer.
pub fn verify_int(answer: &str, expected: i128) -> Result<(), String> {
    let value = parse_int_answer(answer)?;
    if value == expected {
        Ok(())
    } else {
        Err(format!("{value} is not the answer"))
    }
}

/// Near misses of an integer answer: off by one either way, and the negation when it differs.
pub fn wrong_ints(expected: i128) -> Vec<String> {
    let mut wrong = vec![(expected + 1).to_string(), (expected - 1).to_string()];
    if expected != 0 {
        wrong.push((-expected).to_string());
    }
    wrong
}

/// Splits a grid answer into rows of cells: lines are rows; within a line, cells are separated by
/// whitespace, or the line is read character by character when it has no spaces. Blank lines and
/// surrounding whitespace are ignored, so `"1 2\n3 4"` and `"12\n34"` read the same.
pub fn parse_grid_answer(answer: &str) -> Vec<Vec<String>> {
    answer
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            if line.contains(char::is_whitespace) {
                line.split_whitespace().map(str::to_string).collect()
            } else {
                line.chars().map(|c| c.to_string()).collect()
            }
        })
        .collect()
}

/// Renders a grid as the answers are written: one row per line, cells separated by spaces.
pub fn render_grid<T: ToString>(rows: &[Vec<T>]) -> String {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The four grid directions as (name, row delta, column delta), in the order moves are listed.
pub const DIRECTIONS: [(&str, i64, i64); 4] = [
    ("up", -1, 0),
    ("down", 1, 0),
    ("left", 0, -1),
    ("right", 0, 1),
];

/// Breadth-first distances from `from` over open cells of a `rows`×`cols` grid (`None` = unreachable).
pub fn bfs_distances(open: &[Vec<bool>], from: (usize, usize)) -> Vec<Vec<Option<usize>>> {
    let rows = open.len();
    let cols = open.first().map_or(0, Vec::len);
    let mut dist = vec![vec![None; cols]; rows];
    let mut queue = std::collections::VecDeque::new();
    dist[from.0][from.1] = Some(0);
    queue.push_back(from);
    while let Some((r, c)) = queue.pop_front() {
        let d = dist[r][c].expect("queued cells have a distance");
        for (_, dr, dc) in DIRECTIONS {
            if let Some((nr, nc)) = step_in(rows, cols, (r, c), dr, dc)
                && open[nr][nc]
                && dist[nr][nc].is_none()
            {
                dist[nr][nc] = Some(d + 1);
                queue.push_back((nr, nc));
            }
        }
    }
    dist
}

/// The neighbour of `cell` in direction (`dr`, `dc`), if it lies inside the grid.
pub fn step_in(
    rows: usize,
    cols: usize,
    cell: (usize, usize),
    dr: i64,
    dc: i64,
) -> Option<(usize, usize)> {
    let r = cell.0 as i64 + dr;
    let c = cell.1 as i64 + dc;
    (r >= 0 && c >= 0 && (r as usize) < rows && (c as usize) < cols)
        .then_some((r as usize, c as usize))
}

/// Directions of a shortest path from `from` to `to` (`None` when unreachable): walk back down the
/// distance field from `to`, trying directions in [`DIRECTIONS`] order so the path is deterministic.
pub fn shortest_route(
    open: &[Vec<bool>],
    from: (usize, usize),
    to: (usize, usize),
) -> Option<Vec<&'static str>> {
    let dist = bfs_distances(open, to);
    let rows = open.len();
    let cols = open.first().map_or(0, Vec::len);
    let mut here = from;
    let mut route = Vec::new();
    let mut left = dist[from.0][from.1]?;
    while left > 0 {
        let (name, next) = DIRECTIONS
            .iter()
            .find_map(|&(name, dr, dc)| {
                step_in(rows, cols, here, dr, dc)
                    .filter(|&(r, c)| dist[r][c] == Some(left - 1))
                    .map(|next| (name, next))
            })
            .expect("a cell at distance d > 0 has a neighbour at d - 1");
        route.push(name);
        here = next;
        left -= 1;
    }
    Some(route)
}

/// A grid of open and blocked cells with a start and a goal, as the maze and shortest-path tasks
/// show it: one character per cell from `marks` = [start, goal, open, blocked].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedGrid {
    pub open: Vec<Vec<bool>>,
    pub start: (usize, usize),
    pub goal: (usize, usize),
}

impl MarkedGrid {
    pub fn rows(&self, marks: [char; 4]) -> Vec<String> {
        let [start, goal, open, blocked] = marks;
        self.open
            .iter()
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .map(|(c, &is_open)| match (r, c) {
                        cell if cell == self.start => start,
                        cell if cell == self.goal => goal,
                        _ if is_open => open,
                        _ => blocked,
                    })
                    .collect()
            })
            .collect()
    }

    /// Reads task field `key`: rows of equal length (`size` rows and columns) over `marks`, with
    /// exactly one start and one goal.
    pub fn load(
        task: &Map<String, Value>,
        key: &str,
        size: std::ops::RangeInclusive<usize>,
        marks: [char; 4],
    ) -> Result<MarkedGrid, String> {
        let alphabet: String = marks.iter().collect();
        let grid = char_grid_field(task, key, size, &alphabet)?;
        Ok(MarkedGrid {
            start: unique_cell(&grid, marks[0], key)?,
            goal: unique_cell(&grid, marks[1], key)?,
            open: grid
                .iter()
                .map(|row| row.iter().map(|&c| c != marks[3]).collect())
                .collect(),
        })
    }
}

/// Reads a rectangular character grid from task JSON (`rows` strings of equal length over `alphabet`).
fn char_grid_field(
    task: &Map<String, Value>,
    key: &str,
    size: std::ops::RangeInclusive<usize>,
    alphabet: &str,
) -> Result<Vec<Vec<char>>, String> {
    let rows = str_list_field(task, key, size.clone(), *size.end())?;
    let grid: Vec<Vec<char>> = rows.iter().map(|r| r.chars().collect()).collect();
    let width = grid[0].len();
    if !size.contains(&width)
        || grid.iter().any(|r| r.len() != width)
        || grid.iter().flatten().any(|c| !alphabet.contains(*c))
    {
        return Err(format!(
            "task field `{key}` must be rows of equal length ({}..={}) over the characters {alphabet:?}",
            size.start(),
            size.end()
        ));
    }
    Ok(grid)
}

/// Finds the single cell holding `mark`; errors when it is missing or repeated.
fn unique_cell(grid: &[Vec<char>], mark: char, key: &str) -> Result<(usize, usize), String> {
    let cells: Vec<(usize, usize)> = grid
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .filter(move |(_, c)| **c == mark)
                .map(move |(c, _)| (r, c))
        })
        .collect();
    match cells.as_slice() {
        [cell] => Ok(*cell),
        _ => Err(format!(
            "task field `{key}` must contain exactly one {mark:?}"
        )),
    }
}

/// The map inside a JSON object built with `json!` (task JSON is always an object).
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// A random `rows`×`cols` grid whose cells are walls with probability `wall_percent`/100 (`true` =
/// open). Maze and shortest-path generation both start here.
pub fn random_open_grid(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    wall_percent: i64,
) -> Vec<Vec<bool>> {
    (0..rows)
        .map(|_| {
            (0..cols)
                .map(|_| rng.range(0, 99) >= wall_percent)
                .collect()
        })
        .collect()
}

/// The open cells of a grid, row by row.
pub fn open_cells(open: &[Vec<bool>]) -> Vec<(usize, usize)> {
    open.iter()
        .enumerate()
        .flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, o)| **o)
                .map(move |(c, _)| (r, c))
        })
        .collect()
}
