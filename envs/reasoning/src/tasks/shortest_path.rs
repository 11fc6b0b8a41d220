//! `shortest_path` (after reasoning-gym's `shortest_path`): find a shortest path from `*` to `#` in
//! a grid of open (`O`) and blocked (`X`) cells, moving up, down, left or right. The answer is the
//! sequence of directions (e.g. "right right down"), or "infeasible" when no path exists; the
//! verifier walks the path and gives full credit only to a valid path of shortest length.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, DIRECTIONS, Family, Instance, Knob, Knobs, char_grid_field, known_fields, object,
    random_open_grid, shortest_route, step_in, unique_cell,
};

const MAX_SIZE: i64 = 20;
const INFEASIBLE: &str = "infeasible";

#[derive(Debug, Clone, PartialEq, Eq)]
struct PathGrid {
    open: Vec<Vec<bool>>,
    start: (usize, usize),
    goal: (usize, usize),
    /// A shortest route, or `None` when the goal is unreachable.
    route: Option<Vec<&'static str>>,
}

impl PathGrid {
    fn new(open: Vec<Vec<bool>>, start: (usize, usize), goal: (usize, usize)) -> PathGrid {
        let route = shortest_route(&open, start, goal);
        PathGrid {
            open,
            start,
            goal,
            route,
        }
    }

    fn rows(&self) -> Vec<String> {
        self.open
            .iter()
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .map(|(c, &open)| match (r, c) {
                        cell if cell == self.start => '*',
                        cell if cell == self.goal => '#',
                        _ if open => 'O',
                        _ => 'X',
                    })
                    .collect()
            })
            .collect()
    }
}

impl AnswerPuzzle for PathGrid {
    fn statement(&self) -> String {
        let rows: Vec<String> = self
            .rows()
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
        object(json!({"grid": self.rows()}))
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
        let (rows, cols) = (self.open.len(), self.open[0].len());
        let mut here = self.start;
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
                .filter(|&(r, c)| self.open[r][c])
                .ok_or_else(|| {
                    format!(
                        "moving {name} from row {}, column {} is blocked",
                        here.0 + 1,
                        here.1 + 1
                    )
                })?;
        }
        if here != self.goal {
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
    Knob {
        name: "min_rows",
        min: 2,
        max: MAX_SIZE,
        levels: [5, 5, 6, 7, 8],
        doc: "fewest rows",
    },
    Knob {
        name: "max_rows",
        min: 2,
        max: MAX_SIZE,
        levels: [8, 8, 9, 10, 12],
        doc: "most rows",
    },
    Knob {
        name: "min_cols",
        min: 2,
        max: MAX_SIZE,
        levels: [5, 5, 6, 7, 8],
        doc: "fewest columns",
    },
    Knob {
        name: "max_cols",
        min: 2,
        max: MAX_SIZE,
        levels: [8, 8, 9, 10, 12],
        doc: "most columns",
    },
    Knob {
        name: "blocked_percent",
        min: 0,
        max: 80,
        levels: [40, 40, 35, 35, 35],
        doc: "chance (in %) that a cell is blocked",
    },
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
        Ok(Instance::Answer(Box::new(PathGrid::new(open, start, goal))))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["grid"])?;
        let grid = char_grid_field(task, "grid", 2..=MAX_SIZE as usize, "OX*#")?;
        let start = unique_cell(&grid, '*', "grid")?;
        let goal = unique_cell(&grid, '#', "grid")?;
        let open = grid
            .iter()
            .map(|row| row.iter().map(|&c| c != 'X').collect())
            .collect();
        Ok(Instance::Answer(Box::new(PathGrid::new(open, start, goal))))
    }
}
