//! `maze` (after reasoning-gym's `maze`, made interactive): walk from `S` to `G` through a grid with
//! walls, one `move(direction)` at a time. reasoning-gym asks for the length of the shortest path;
//! here the agent walks it, and the episode ends when the goal is reached (success) or the move
//! budget (twice the shortest path, at least 4 more than it) is spent.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    DIRECTIONS, Family, GamePuzzle, Instance, Knob, Knobs, MarkedGrid, bfs_distances, known_fields,
    object, open_cells, random_open_grid, shortest_route, step_in,
};

const MAX_SIZE: i64 = 30;
const MAX_ATTEMPTS: usize = 200;

/// How the maze is drawn: start, goal, floor, wall.
const MARKS: [char; 4] = ['S', 'G', '.', '#'];

#[derive(Debug, Clone, PartialEq, Eq)]
struct MazeGame {
    grid: MarkedGrid,
    shortest: usize,
    position: (usize, usize),
}

impl MazeGame {
    fn new(grid: MarkedGrid) -> Option<MazeGame> {
        let shortest = bfs_distances(&grid.open, grid.start)[grid.goal.0][grid.goal.1]?;
        Some(MazeGame {
            shortest,
            position: grid.start,
            grid,
        })
    }

    fn directions(&self) -> impl Iterator<Item = (&'static str, (usize, usize))> + '_ {
        let (rows, cols) = (self.grid.open.len(), self.grid.open[0].len());
        DIRECTIONS.iter().filter_map(move |&(name, dr, dc)| {
            step_in(rows, cols, self.position, dr, dc)
                .filter(|&(r, c)| self.grid.open[r][c])
                .map(|cell| (name, cell))
        })
    }
}

fn direction(name: &str) -> Value {
    json!({"direction": name})
}

impl GamePuzzle for MazeGame {
    fn statement(&self) -> String {
        format!(
            "Navigate from S to G in this maze ('#' is a wall, '.' is open floor; rows are \
             numbered from 1 at the top, columns from 1 at the left):\n{}\n\nYou are at S (row {}, \
             column {}). Call move with direction up, down, left or right, one step at a time, \
             until you reach G. You have {} moves, wall bumps included.",
            self.grid.rows(MARKS).join("\n"),
            self.grid.start.0 + 1,
            self.grid.start.1 + 1,
            self.move_budget()
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"grid": self.grid.rows(MARKS)}))
    }

    fn tool(&self) -> &'static str {
        "move"
    }

    fn apply(&mut self, args: &Map<String, Value>) -> Result<String, String> {
        if let Some(extra) = args.keys().find(|k| *k != "direction") {
            return Err(format!("unexpected argument `{extra}` for `move`"));
        }
        let name = args
            .get("direction")
            .and_then(Value::as_str)
            .ok_or("missing argument `direction` (up, down, left or right)")?
            .trim()
            .to_lowercase();
        let &(name, dr, dc) = DIRECTIONS
            .iter()
            .find(|(d, _, _)| *d == name)
            .ok_or_else(|| format!("unknown direction {name:?}; use up, down, left or right"))?;
        let (rows, cols) = (self.grid.open.len(), self.grid.open[0].len());
        match step_in(rows, cols, self.position, dr, dc) {
            None => Err(format!("cannot move {name}: that is outside the maze")),
            Some((r, c)) if !self.grid.open[r][c] => {
                Err(format!("cannot move {name}: a wall is in the way"))
            }
            Some(cell) => {
                self.position = cell;
                let place = format!("row {}, column {}", cell.0 + 1, cell.1 + 1);
                Ok(if self.is_solved() {
                    format!("Moved {name} to {place}: you reached the goal G.")
                } else {
                    format!("Moved {name} to {place}.")
                })
            }
        }
    }

    fn is_solved(&self) -> bool {
        self.position == self.grid.goal
    }

    fn move_budget(&self) -> usize {
        (2 * self.shortest).max(self.shortest + 4)
    }

    fn expert_move(&self) -> Option<Value> {
        let route = shortest_route(&self.grid.open, self.position, self.grid.goal)?;
        route.first().map(|d| direction(d))
    }

    fn legal_moves(&self) -> Vec<Value> {
        self.directions().map(|(name, _)| direction(name)).collect()
    }
}

static KNOBS: [Knob; 5] = [
    Knob::new(
        "min_grid_size",
        3,
        MAX_SIZE,
        [5, 6, 8, 10, 12],
        "smallest side of the square grid",
    ),
    Knob::new(
        "max_grid_size",
        3,
        MAX_SIZE,
        [7, 8, 10, 12, 15],
        "largest side of the square grid",
    ),
    Knob::new(
        "min_dist",
        1,
        200,
        [4, 5, 8, 12, 16],
        "shortest S-G path length, lower bound",
    ),
    Knob::new(
        "max_dist",
        1,
        200,
        [8, 10, 14, 20, 30],
        "shortest S-G path length, upper bound",
    ),
    Knob::new(
        "wall_percent",
        0,
        60,
        [30, 30, 35, 35, 40],
        "chance (in %) that a cell is a wall",
    ),
];

pub struct Maze;

impl Family for Maze {
    fn name(&self) -> &'static str {
        "maze"
    }
    fn follows(&self) -> &'static str {
        "maze"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_grid_size", "max_grid_size")?;
        knobs.ordered("min_dist", "max_dist")
    }
    /// Random walls, a random open start, and a goal drawn among the cells whose shortest distance
    /// lies in the knob range; redrawn (boundedly) when no cell qualifies.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let dist_range = knobs.usize("min_dist")..=knobs.usize("max_dist");
        for _ in 0..MAX_ATTEMPTS {
            let size = knobs.draw(rng, "min_grid_size", "max_grid_size") as usize;
            let mut open = random_open_grid(rng, size, size, knobs.get("wall_percent"));
            let start = (
                rng.below(size as u64) as usize,
                rng.below(size as u64) as usize,
            );
            open[start.0][start.1] = true;
            let dist = bfs_distances(&open, start);
            let goals: Vec<(usize, usize)> = open_cells(&open)
                .into_iter()
                .filter(|&(r, c)| dist[r][c].is_some_and(|d| dist_range.contains(&d)))
                .collect();
            if goals.is_empty() {
                continue;
            }
            let goal = *rng.choose(&goals);
            let game =
                MazeGame::new(MarkedGrid { open, start, goal }).expect("the goal is reachable");
            return Ok(Instance::Game(Box::new(game)));
        }
        Err(format!(
            "maze: no start and goal {}..={} apart within {MAX_ATTEMPTS} grids; lower `min_dist`, \
             raise the grid size or lower `wall_percent`",
            dist_range.start(),
            dist_range.end()
        ))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["grid"])?;
        let grid = MarkedGrid::load(task, "grid", 2..=MAX_SIZE as usize, MARKS)?;
        let game = MazeGame::new(grid).ok_or("task field `grid` has no path from S to G")?;
        Ok(Instance::Game(Box::new(game)))
    }
}
