//! `mini_sudoku` (after reasoning-gym's `mini_sudoku`): complete a 4×4 sudoku (rows, columns and 2×2
//! boxes each hold 1-4 once). Generated puzzles have a unique solution. The answer is the completed
//! grid, one row per line; the verifier accepts any valid completion that keeps every given digit.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, known_fields, object, parse_grid_answer,
    render_grid,
};

const N: usize = 4;
const BOX: usize = 2;
/// A 4×4 sudoku with a unique solution keeps at least 4 givens.
const MAX_EMPTY: i64 = 12;

type Grid = [[u8; N]; N];

/// Whether `digit` may go at (r, c) given the other filled cells.
fn allowed(grid: &Grid, r: usize, c: usize, digit: u8) -> bool {
    (0..N).all(|i| {
        (i == c || grid[r][i] != digit) && (i == r || grid[i][c] != digit) && {
            let (br, bc) = (r / BOX * BOX + i / BOX, c / BOX * BOX + i % BOX);
            (br, bc) == (r, c) || grid[br][bc] != digit
        }
    })
}

/// Counts completions of `grid` (0 = empty), stopping at `limit`; fills `grid` with the first found.
fn count_solutions(grid: &mut Grid, limit: usize, first: &mut Option<Grid>) -> usize {
    let Some((r, c)) = (0..N * N)
        .map(|i| (i / N, i % N))
        .find(|&(r, c)| grid[r][c] == 0)
    else {
        if first.is_none() {
            *first = Some(*grid);
        }
        return 1;
    };
    let mut found = 0;
    for digit in 1..=N as u8 {
        if allowed(grid, r, c, digit) {
            grid[r][c] = digit;
            found += count_solutions(grid, limit - found, first);
            grid[r][c] = 0;
            if found >= limit {
                break;
            }
        }
    }
    found
}

fn is_complete_and_valid(grid: &Grid) -> bool {
    (0..N).all(|r| (0..N).all(|c| grid[r][c] != 0 && allowed(grid, r, c, grid[r][c])))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SudokuPuzzle {
    puzzle: Grid,
    solution: Grid,
}

fn show(grid: &Grid, empty: &str) -> Vec<Vec<String>> {
    grid.iter()
        .map(|row| {
            row.iter()
                .map(|&d| {
                    if d == 0 {
                        empty.to_string()
                    } else {
                        d.to_string()
                    }
                })
                .collect()
        })
        .collect()
}

impl AnswerPuzzle for SudokuPuzzle {
    fn statement(&self) -> String {
        format!(
            "Solve this 4x4 Mini Sudoku puzzle (each row, each column and each 2x2 box must \
             contain the digits 1-4 exactly once; _ marks an empty cell):\n{}\n\nSubmit the \
             completed grid: four lines of four digits separated by spaces.",
            render_grid(&show(&self.puzzle, "_"))
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"puzzle": self.puzzle}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        let rows = parse_grid_answer(answer);
        if rows.len() != N || rows.iter().any(|r| r.len() != N) {
            return Err("expected four lines of four digits".to_string());
        }
        let mut grid: Grid = [[0; N]; N];
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                grid[r][c] = match cell.as_str() {
                    "1" => 1,
                    "2" => 2,
                    "3" => 3,
                    "4" => 4,
                    other => return Err(format!("cell {other:?} is not a digit 1-4")),
                };
                if self.puzzle[r][c] != 0 && self.puzzle[r][c] != grid[r][c] {
                    return Err(format!(
                        "row {} column {} must keep the given {}",
                        r + 1,
                        c + 1,
                        self.puzzle[r][c]
                    ));
                }
            }
        }
        if !is_complete_and_valid(&grid) {
            return Err("a row, column or box repeats a digit".to_string());
        }
        Ok(())
    }

    fn expert_answer(&self) -> String {
        render_grid(&show(&self.solution, "_"))
    }

    fn wrong_answers(&self) -> Vec<String> {
        let mut wrong = vec![render_grid(&show(&self.puzzle, "_"))];
        if let Some((r, c)) = (0..N * N)
            .map(|i| (i / N, i % N))
            .find(|&(r, c)| self.puzzle[r][c] == 0)
        {
            let mut changed = self.solution;
            changed[r][c] = changed[r][c] % N as u8 + 1;
            wrong.push(render_grid(&show(&changed, "_")));
        }
        let mut swapped = self.solution;
        swapped[0].swap(0, 1);
        wrong.push(render_grid(&show(&swapped, "_")));
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

/// A random full grid: a base pattern relabelled and shuffled by the sudoku symmetries (digit
/// permutation, rows within bands, bands, columns within stacks, stacks, transposition).
fn random_solution(rng: &mut Rng) -> Grid {
    let mut digits = [1u8, 2, 3, 4];
    rng.shuffle(&mut digits);
    let order = |rng: &mut Rng| {
        let mut bands = [0usize, 1];
        rng.shuffle(&mut bands);
        let mut out = [0usize; N];
        for (slot, &band) in bands.iter().enumerate() {
            let mut within = [0usize, 1];
            rng.shuffle(&mut within);
            for (k, &w) in within.iter().enumerate() {
                out[slot * BOX + k] = band * BOX + w;
            }
        }
        out
    };
    let rows = order(rng);
    let cols = order(rng);
    let transpose = rng.bernoulli(0.5);
    let mut grid: Grid = [[0; N]; N];
    for (r, &br) in rows.iter().enumerate() {
        for (c, &bc) in cols.iter().enumerate() {
            let base = (br * BOX + br / BOX + bc) % N;
            let (tr, tc) = if transpose { (c, r) } else { (r, c) };
            grid[tr][tc] = digits[base];
        }
    }
    grid
}

static KNOBS: [Knob; 2] = [
    Knob::new(
        "min_empty",
        0,
        MAX_EMPTY,
        [6, 8, 9, 10, 11],
        "fewest empty cells (fewer if uniqueness forbids more)",
    ),
    Knob::new(
        "max_empty",
        0,
        MAX_EMPTY,
        [8, 12, 12, 12, 12],
        "most empty cells",
    ),
];

pub struct MiniSudoku;

impl Family for MiniSudoku {
    fn name(&self) -> &'static str {
        "mini_sudoku"
    }
    fn follows(&self) -> &'static str {
        "mini_sudoku"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_empty", "max_empty")
    }
    /// Empties cells in random order, skipping any whose removal would allow a second solution,
    /// until the drawn number of empty cells is reached (or no cell can go).
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let solution = random_solution(rng);
        let target = knobs.draw(rng, "min_empty", "max_empty") as usize;
        let mut cells: Vec<usize> = (0..N * N).collect();
        rng.shuffle(&mut cells);
        let mut puzzle = solution;
        let mut empty = 0;
        for cell in cells {
            if empty == target {
                break;
            }
            let (r, c) = (cell / N, cell % N);
            let keep = puzzle[r][c];
            puzzle[r][c] = 0;
            if count_solutions(&mut puzzle.clone(), 2, &mut None) == 1 {
                empty += 1;
            } else {
                puzzle[r][c] = keep;
            }
        }
        Ok(Instance::Answer(Box::new(SudokuPuzzle {
            puzzle,
            solution,
        })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["puzzle"])?;
        let error =
            || "task field `puzzle` must be 4 rows of 4 integers in 0..=4 (0 = empty)".to_string();
        let rows = task
            .get("puzzle")
            .and_then(Value::as_array)
            .filter(|r| r.len() == N)
            .ok_or_else(error)?;
        let mut puzzle: Grid = [[0; N]; N];
        for (r, row) in rows.iter().enumerate() {
            let row = row.as_array().filter(|c| c.len() == N).ok_or_else(error)?;
            for (c, cell) in row.iter().enumerate() {
                puzzle[r][c] = cell.as_u64().filter(|d| *d <= N as u64).ok_or_else(error)? as u8;
                if puzzle[r][c] != 0 && !allowed(&puzzle, r, c, puzzle[r][c]) {
                    return Err(format!(
                        "task field `puzzle` repeats {} around row {} column {}",
                        puzzle[r][c],
                        r + 1,
                        c + 1
                    ));
                }
            }
        }
        let mut first = None;
        if count_solutions(&mut puzzle.clone(), 1, &mut first) == 0 {
            return Err("task field `puzzle` has no solution".to_string());
        }
        let solution = first.expect("a counted solution was recorded");
        Ok(Instance::Answer(Box::new(SudokuPuzzle {
            puzzle,
            solution,
        })))
    }
}
