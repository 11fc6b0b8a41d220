//! `n_queens` (after reasoning-gym's `n_queens`): complete a board on which some queens of an
//! n-queens solution were removed. The answer is the full board (`Q` for a queen, `_` for an empty
//! square, one row per line); the verifier accepts any valid placement of n queens that keeps the
//! given ones.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, char_grid_field, known_fields, object,
    parse_grid_answer, render_grid,
};

const MAX_N: i64 = 12;

/// `cols[r]` is the column of the queen in row `r`, if any.
type Placement = Vec<Option<usize>>;

fn attacks(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 == b.0 || a.1 == b.1 || a.0.abs_diff(b.0) == a.1.abs_diff(b.1)
}

/// Fills the empty rows of `cols` by backtracking, trying columns in `order` (a permutation, so a
/// shuffled order draws a random solution); `false` when no completion exists.
fn complete(cols: &mut Placement, row: usize, order: &[usize]) -> bool {
    let n = cols.len();
    if row == n {
        return true;
    }
    let fits = |cols: &Placement, c: usize| {
        (0..n).all(|r| r == row || cols[r].is_none_or(|q| !attacks((r, q), (row, c))))
    };
    if let Some(c) = cols[row] {
        return fits(cols, c) && complete(cols, row + 1, order);
    }
    for &c in order {
        if fits(cols, c) {
            cols[row] = Some(c);
            if complete(cols, row + 1, order) {
                return true;
            }
            cols[row] = None;
        }
    }
    false
}

fn board(cols: &Placement) -> Vec<Vec<char>> {
    let n = cols.len();
    (0..n)
        .map(|r| {
            (0..n)
                .map(|c| if cols[r] == Some(c) { 'Q' } else { '_' })
                .collect()
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Queens {
    given: Placement,
    solution: Placement,
}

impl AnswerPuzzle for Queens {
    fn statement(&self) -> String {
        let n = self.given.len();
        let missing = self.given.iter().filter(|q| q.is_none()).count();
        format!(
            "Your job is to complete an n x n chess board with n = {n} queens in total, such that \
             no two queens attack each other (no two share a row, a column or a diagonal). Some \
             queens are already placed ('Q'); '_' is an empty square:\n{}\n\nPlace {missing} more \
             queens and submit the whole board in the same format: one row per line, squares \
             separated by spaces.",
            render_grid(&board(&self.given))
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        let rows: Vec<String> = board(&self.given)
            .iter()
            .map(|r| r.iter().collect())
            .collect();
        object(json!({"board": rows}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        let n = self.given.len();
        let rows = parse_grid_answer(answer);
        if rows.len() != n || rows.iter().any(|r| r.len() != n) {
            return Err(format!("expected {n} lines of {n} squares"));
        }
        let mut queens = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                match cell.as_str() {
                    "Q" | "q" => queens.push((r, c)),
                    "_" | "." => {}
                    other => return Err(format!("square {other:?} is neither Q nor _")),
                }
            }
        }
        if queens.len() != n {
            return Err(format!(
                "the board has {} queens, expected {n}",
                queens.len()
            ));
        }
        for (r, given) in self.given.iter().enumerate() {
            if let Some(c) = given
                && !queens.contains(&(r, *c))
            {
                return Err(format!(
                    "the given queen at row {} column {} is missing",
                    r + 1,
                    c + 1
                ));
            }
        }
        for (i, &a) in queens.iter().enumerate() {
            if let Some(&b) = queens[i + 1..].iter().find(|&&b| attacks(a, b)) {
                return Err(format!(
                    "the queens at ({}, {}) and ({}, {}) attack each other",
                    a.0 + 1,
                    a.1 + 1,
                    b.0 + 1,
                    b.1 + 1
                ));
            }
        }
        Ok(())
    }

    fn expert_answer(&self) -> String {
        render_grid(&board(&self.solution))
    }

    fn wrong_answers(&self) -> Vec<String> {
        let n = self.given.len();
        let mut wrong = vec![render_grid(&board(&self.given))];
        // Shift one placed queen sideways: a conflict or a missing given queen.
        let mut shifted = self.solution.clone();
        let r = (0..n).find(|&r| self.given[r].is_none()).unwrap_or(0);
        shifted[r] = shifted[r].map(|c| (c + 1) % n);
        wrong.push(render_grid(&board(&shifted)));
        let mut swapped = self.solution.clone();
        swapped.swap(0, n - 1);
        wrong.push(render_grid(&board(&swapped)));
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static KNOBS: [Knob; 3] = [
    Knob::new(
        "n",
        4,
        MAX_N,
        [6, 8, 8, 8, 10],
        "board size and number of queens",
    ),
    Knob::new(
        "min_remove",
        1,
        MAX_N,
        [1, 1, 3, 5, 6],
        "fewest queens removed from the solution",
    ),
    Knob::new(
        "max_remove",
        1,
        MAX_N,
        [3, 7, 7, 8, 10],
        "most queens removed from the solution",
    ),
];

pub struct NQueens;

impl Family for NQueens {
    fn name(&self) -> &'static str {
        "n_queens"
    }
    fn follows(&self) -> &'static str {
        "n_queens"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_remove", "max_remove")?;
        knobs.ordered("max_remove", "n")
    }
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let n = knobs.usize("n");
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut solution: Placement = vec![None; n];
        assert!(
            complete(&mut solution, 0, &order),
            "every n >= 4 has a solution"
        );
        let remove = knobs.draw(rng, "min_remove", "max_remove") as usize;
        let mut rows: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut rows);
        let mut given = solution.clone();
        for &r in &rows[..remove] {
            given[r] = None;
        }
        Ok(Instance::Answer(Box::new(Queens { given, solution })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["board"])?;
        let grid = char_grid_field(task, "board", 4..=MAX_N as usize, "_Q")?;
        let n = grid.len();
        if grid[0].len() != n {
            return Err("task field `board` must be square".to_string());
        }
        let mut given: Placement = vec![None; n];
        for (r, row) in grid.iter().enumerate() {
            let queens: Vec<usize> = (0..n).filter(|&c| row[c] == 'Q').collect();
            match queens.as_slice() {
                [] => {}
                [c] => given[r] = Some(*c),
                _ => {
                    return Err(format!(
                        "task field `board` has two queens in row {}",
                        r + 1
                    ));
                }
            }
        }
        let mut solution = given.clone();
        let order: Vec<usize> = (0..n).collect();
        if !complete(&mut solution, 0, &order) {
            return Err("task field `board` cannot be completed".to_string());
        }
        Ok(Instance::Answer(Box::new(Queens { given, solution })))
    }
}
