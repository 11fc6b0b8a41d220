//! `tower_of_hanoi` (after reasoning-gym's `tower_of_hanoi`, made interactive, 3 pegs): move a tower
//! of disks from its start peg to the target peg with `move_disk(from, to)`, never placing a larger
//! disk on a smaller one. reasoning-gym asks for the whole move list at once; here each move is a
//! tool call, an illegal move is refused (and still spends a move), and the episode ends when the
//! tower stands on the target peg or the move budget (twice the optimal 2^n - 1) is spent.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{Family, GamePuzzle, Instance, Knob, Knobs, int_field, known_fields, object};

const PEGS: usize = 3;
/// 2^10 - 1 = 1023 optimal moves is already far beyond an LLM episode.
const MAX_DISKS: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hanoi {
    disks: usize,
    start: usize,
    target: usize,
    /// `peg_of[d]` is the peg (1-based) of disk `d + 1`; disk 1 is the smallest.
    peg_of: Vec<usize>,
}

impl Hanoi {
    fn new(disks: usize, start: usize, target: usize) -> Hanoi {
        Hanoi {
            disks,
            start,
            target,
            peg_of: vec![start; disks],
        }
    }

    /// The smallest disk on `peg` (the one that can move), if any.
    fn top(&self, peg: usize) -> Option<usize> {
        (0..self.disks)
            .find(|&d| self.peg_of[d] == peg)
            .map(|d| d + 1)
    }

    fn is_legal(&self, from: usize, to: usize) -> bool {
        from != to
            && match (self.top(from), self.top(to)) {
                (Some(moving), Some(below)) => moving < below,
                (Some(_), None) => true,
                (None, _) => false,
            }
    }

    fn describe(&self) -> String {
        (1..=PEGS)
            .map(|peg| {
                let stack: Vec<String> = (0..self.disks)
                    .rev()
                    .filter(|&d| self.peg_of[d] == peg)
                    .map(|d| (d + 1).to_string())
                    .collect();
                format!("peg {peg}: [{}]", stack.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The optimal next move that gathers disks 1..=k on `goal` from the current state: if disk k is
    /// already there, recurse on the smaller ones; otherwise disk k moves once every smaller disk
    /// waits on the third peg, so first gather them there.
    fn next_move(&self, k: usize, goal: usize) -> Option<(usize, usize)> {
        if k == 0 {
            return None;
        }
        let peg = self.peg_of[k - 1];
        if peg == goal {
            return self.next_move(k - 1, goal);
        }
        let spare = 1 + 2 + 3 - peg - goal;
        if self.peg_of[..k - 1].iter().all(|&p| p == spare) {
            Some((peg, goal))
        } else {
            self.next_move(k - 1, spare)
        }
    }
}

fn peg_argument(args: &Map<String, Value>, key: &str) -> Result<usize, String> {
    let value = args
        .get(key)
        .ok_or_else(|| format!("missing argument `{key}` (a peg number 1-3)"))?;
    let peg = match value {
        Value::Number(n) => n.as_u64(),
        // Models often write "2" or "peg 2" for a peg; both mean peg 2.
        Value::String(s) => {
            let lower = s.trim().to_lowercase();
            let number = lower.strip_prefix("peg").unwrap_or(&lower);
            number.trim().parse().ok()
        }
        _ => None,
    };
    peg.filter(|p| (1..=PEGS as u64).contains(p))
        .map(|p| p as usize)
        .ok_or_else(|| format!("argument `{key}` must be a peg number 1-3, got {value}"))
}

fn disk_move(from: usize, to: usize) -> Value {
    json!({"from": from, "to": to})
}

impl GamePuzzle for Hanoi {
    fn statement(&self) -> String {
        format!(
            "Solve the Tower of Hanoi with {} disks (numbered 1, the smallest, to {}) and {PEGS} \
             pegs. All disks start on peg {}; move them all to peg {}. Move one disk at a time: \
             call move_disk(from, to) to move the top disk of peg `from` onto peg `to`; a disk may \
             never be placed on a smaller one. You have {} moves, illegal ones included.",
            self.disks,
            self.disks,
            self.start,
            self.target,
            self.move_budget()
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"disks": self.disks, "start": self.start, "target": self.target}))
    }

    fn tool(&self) -> &'static str {
        "move_disk"
    }

    fn apply(&mut self, args: &Map<String, Value>) -> Result<String, String> {
        if let Some(extra) = args.keys().find(|k| *k != "from" && *k != "to") {
            return Err(format!("unexpected argument `{extra}` for `move_disk`"));
        }
        let from = peg_argument(args, "from")?;
        let to = peg_argument(args, "to")?;
        let Some(disk) = self.top(from) else {
            return Err(format!("peg {from} is empty"));
        };
        if !self.is_legal(from, to) {
            return Err(if from == to {
                format!("disk {disk} is already on peg {to}")
            } else {
                format!(
                    "cannot place disk {disk} on the smaller disk {} (peg {to})",
                    self.top(to).unwrap_or_default()
                )
            });
        }
        self.peg_of[disk - 1] = to;
        let done = if self.is_solved() {
            " The tower is complete."
        } else {
            ""
        };
        Ok(format!(
            "Moved disk {disk} from peg {from} to peg {to}. Now {}.{done}",
            self.describe()
        ))
    }

    fn is_solved(&self) -> bool {
        self.peg_of.iter().all(|&p| p == self.target)
    }

    fn move_budget(&self) -> usize {
        2 * ((1usize << self.disks) - 1)
    }

    fn expert_move(&self) -> Option<Value> {
        self.next_move(self.disks, self.target)
            .map(|(from, to)| disk_move(from, to))
    }

    fn legal_moves(&self) -> Vec<Value> {
        (1..=PEGS)
            .flat_map(|from| (1..=PEGS).map(move |to| (from, to)))
            .filter(|&(from, to)| self.is_legal(from, to))
            .map(|(from, to)| disk_move(from, to))
            .collect()
    }
}

static KNOBS: [Knob; 2] = [
    Knob::new("min_disks", 1, MAX_DISKS, [3, 3, 4, 5, 6], "fewest disks"),
    Knob::new("max_disks", 1, MAX_DISKS, [3, 4, 5, 6, 7], "most disks"),
];

pub struct TowerOfHanoi;

impl Family for TowerOfHanoi {
    fn name(&self) -> &'static str {
        "tower_of_hanoi"
    }
    fn follows(&self) -> &'static str {
        "tower_of_hanoi"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_disks", "max_disks")
    }
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let disks = knobs.draw(rng, "min_disks", "max_disks") as usize;
        let start = rng.range(1, PEGS as i64) as usize;
        let mut target = rng.range(1, PEGS as i64 - 1) as usize;
        if target >= start {
            target += 1;
        }
        Ok(Instance::Game(Box::new(Hanoi::new(disks, start, target))))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["disks", "start", "target"])?;
        let disks = int_field(task, "disks", 1, MAX_DISKS)? as usize;
        let start = int_field(task, "start", 1, PEGS as i64)? as usize;
        let target = int_field(task, "target", 1, PEGS as i64)? as usize;
        if start == target {
            return Err("task fields `start` and `target` must be different pegs".to_string());
        }
        Ok(Instance::Game(Box::new(Hanoi::new(disks, start, target))))
    }
}
