//! `shortest_path` (after reasoning-gym's `shortest_path`): find a shortest path from `*` to `#` in
//! a grid of open (`O`) and blocked (`X`) cells, moving up, down, left or right. The answer is the
//! sequence of directions (e.g. "right right down"), or "infeasible" when no path exists; the
//! verifier walks the path and gives full credit only to a valid path of shortest length.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, DIRECTIONS, Family, Instance, Knob, Knobs, MarkedGrid, known_fields, object,
    random_open_grid, shortest_route, step_in,
};

const MAX_SIZE: i64 = 20;
const INFEASIBLE: &str = "infeasible";

/// How the grid is drawn: start, destination, open, blocked.
const MARKS: [char; 4] = ['*', '#', 'O', 'X'];

#[derive(Debug, Clone, PartialEq, Eq)]
struct PathGrid {
    grid: MarkedGrid,
    /// A shortest route, or `None` when the goal is unreachable.
    route: Option<Vec<&'static str>>,
}

impl PathGrid {
    fn new(grid: MarkedGrid) -> PathGrid {
        let route = shortest_route(&grid.open, grid.start, grid.goal);
        PathGrid { grid, route }
    }
}

impl AnswerPuzzle for PathGrid {
    fn statement(&self) -> String {
        let rows: Vec<String> = self
            .grid
            .rows(MARKS)
            .iter()
            .map(|r| r.chars().map(String::from).collect::<Vec<_>>().join(" "))
            .collect();
        format!(
            "Find the length-minimal path from * to # in this grid (O is open, X is blocked; you \
             may move up, down, left or right):\n{}\n\nSubmit the directions of a shortest path \
             separated by spaces, e.g. \"right right down\", or \"{INFEASIBLE}\" if # cannot be \
             reached.",
            rows.join("\n")
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"grid": self.grid.rows(MARKS)}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        let text = answer.trim().to_lowercase();
        if text == INFEASIBLE {
            return match &self.route {
                None => Ok(()),
                Some(_) => Err("a path exists".to_string()),
            };
        }
        let Some(route) = &self.route else {
            return Err(format!("no path exists; the answer is \"{INFEASIBLE}\""));
        };
        let (rows, cols) = (self.grid.open.len(), self.grid.open[0].len());
        let mut here = self.grid.start;
        let steps: Vec<&str> = text
            .split([' ', ',', '\n', '\t'])
            .filter(|s| !s.is_empty())
            .collect();
        for step in &steps {
            let &(name, dr, dc) = DIRECTIONS
                .iter()
                .find(|(d, _, _)| d == step)
                .ok_or_else(|| format!("{step:?} is not a direction"))?;
            here = step_in(rows, cols, here, dr, dc)
                .filter(|&(r, c)| self.grid.open[r][c])
                .ok_or_else(|| {
                    format!(
                        "moving {name} from row {}, column {} is blocked",
                        here.0 + 1,
                        here.1 + 1
                    )
                })?;
        }
        if here != self.grid.goal {
            return Err("the path does not end at #".to_string());
        }
        if steps.len() != route.len() {
            return Err(format!(
                "the path has {} steps; a shortest one has {}",
                steps.len(),
                route.len()
            ));
        }
        Ok(())
    }

    fn expert_answer(&self) -> String {
        match &self.route {
            Some(route) => route.join(" "),
            None => INFEASIBLE.to_string(),
        }
    }

    fn wrong_answers(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        match &self.route {
            None => wrong.push("right".to_string()),
            Some(route) => {
                wrong.push(INFEASIBLE.to_string());
                wrong.push(route[..route.len() - 1].join(" "));
                let mut swapped = route.clone();
                if let Some(i) = (1..swapped.len()).find(|&i| swapped[i] != swapped[i - 1]) {
                    swapped.swap(i, i - 1);
                    wrong.push(swapped.join(" "));
                }
                // A detour: one step out and back makes a valid but longer path when possible.
                let mut detour = route.clone();
                detour.extend(["up", "down"]);
                wrong.push(detour.join(" "));
            }
        }
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static KNOBS: [Knob; 5] = [
    Knob::new("min_rows", 2, MAX_SIZE, [5, 5, 6, 7, 8], "fewest rows"),
    Knob::new("max_rows", 2, MAX_SIZE, [8, 8, 9, 10, 12], "most rows"),
    Knob::new("min_cols", 2, MAX_SIZE, [5, 5, 6, 7, 8], "fewest columns"),
    Knob::new("max_cols", 2, MAX_SIZE, [8, 8, 9, 10, 12], "most columns"),
    Knob::new(
        "blocked_percent",
        0,
        80,
        [40, 40, 35, 35, 35],
        "chance (in %) that a cell is blocked",
    ),
];

pub struct ShortestPath;

impl Family for ShortestPath {
    fn name(&self) -> &'static str {
        "shortest_path"
    }
    fn follows(&self) -> &'static str {
        "shortest_path"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_rows", "max_rows")?;
        knobs.ordered("min_cols", "max_cols")
    }
    /// Random blocked cells, then start and destination at two distinct random cells (made open);
    /// like reasoning-gym, the destination may be unreachable.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let rows = knobs.draw(rng, "min_rows", "max_rows") as usize;
        let cols = knobs.draw(rng, "min_cols", "max_cols") as usize;
        let mut open = random_open_grid(rng, rows, cols, knobs.get("blocked_percent"));
        let start = rng.below((rows * cols) as u64) as usize;
        let mut goal = rng.below((rows * cols - 1) as u64) as usize;
        if goal >= start {
            goal += 1;
        }
        let (start, goal) = ((start / cols, start % cols), (goal / cols, goal % cols));
        open[start.0][start.1] = true;
        open[goal.0][goal.1] = true;
        Ok(Instance::Answer(Box::new(PathGrid::new(MarkedGrid {
            open,
            start,
            goal,
        }))))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["grid"])?;
        let grid = MarkedGrid::load(task, "grid", 2..=MAX_SIZE as usize, MARKS)?;
        Ok(Instance::Answer(Box::new(PathGrid::new(grid))))
    }
}
