//! Expression trees over the given numbers and the exact Countdown solver.
//!
//! The solver searches pairwise combinations (the classic Countdown search): every expression over a
//! sub-multiset of the numbers with integer intermediates is such a sequence, so it is complete. Sets of
//! values already explored are memoized, which keeps six-number tasks, even unsolvable ones, cheap.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::expr::Op;

/// An arena of expression nodes; leaves are given numbers.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Num(i64),
    Bin(Op, usize, usize),
}

impl Tree {
    pub fn leaf(&mut self, n: i64) -> usize {
        self.nodes.push(Node::Num(n));
        self.nodes.len() - 1
    }

    pub fn bin(&mut self, op: Op, left: usize, right: usize) -> usize {
        self.nodes.push(Node::Bin(op, left, right));
        self.nodes.len() - 1
    }

    fn truncate(&mut self, len: usize) {
        self.nodes.truncate(len);
    }

    /// Prints `root` with the fewest parentheses that keep the left-to-right evaluation order of the
    /// tree: a right operand of equal precedence stays parenthesized, so the printed text evaluates
    /// exactly as the tree did (same intermediates, so same exactness and overflow behaviour).
    pub fn render(&self, root: usize) -> String {
        let mut out = String::new();
        self.write(root, &mut out);
        out
    }

    fn precedence(&self, node: usize) -> u8 {
        match self.nodes[node] {
            Node::Num(_) => u8::MAX,
            Node::Bin(op, _, _) => op.precedence(),
        }
    }

    fn write(&self, node: usize, out: &mut String) {
        match self.nodes[node] {
            Node::Num(n) => out.push_str(&n.to_string()),
            Node::Bin(op, left, right) => {
                let p = op.precedence();
                self.write_operand(left, self.precedence(left) < p, out);
                out.push(' ');
                out.push(op.symbol());
                out.push(' ');
                self.write_operand(right, self.precedence(right) <= p, out);
            }
        }
    }

    fn write_operand(&self, node: usize, parenthesize: bool, out: &mut String) {
        if parenthesize {
            out.push('(');
        }
        self.write(node, out);
        if parenthesize {
            out.push(')');
        }
    }
}

/// Most numbers the solver takes; tasks are validated against this bound.
pub const MAX_NUMBERS: usize = 6;

/// Finds an expression reaching `target` from `numbers` (each used at most once, or exactly once with
/// `use_all`), with exact integer arithmetic. `None` when there is none.
///
/// # Panics
/// If given more than [`MAX_NUMBERS`] numbers.
pub fn solve(numbers: &[i64], target: i64, use_all: bool) -> Option<String> {
    assert!(
        numbers.len() <= MAX_NUMBERS,
        "at most {MAX_NUMBERS} numbers"
    );
    let mut search = Search {
        target,
        use_all,
        tree: Tree::default(),
        failed: HashSet::default(),
    };
    let mut state = State {
        values: [0; MAX_NUMBERS],
        nodes: [0; MAX_NUMBERS],
        len: numbers.len(),
    };
    for (k, &n) in numbers.iter().enumerate() {
        state.values[k] = n;
        state.nodes[k] = search.tree.leaf(n);
    }
    let root = search.dfs(&state)?;
    Some(search.tree.render(root))
}

/// The values still to combine and the tree node each stands for. Fixed-size so the search allocates
/// only for the memo: an unsolvable six-number task visits hundreds of thousands of states.
#[derive(Clone, Copy)]
struct State {
    values: [i64; MAX_NUMBERS],
    nodes: [usize; MAX_NUMBERS],
    len: usize,
}

/// Sorted values, padded; the length disambiguates padding from a real value.
type Key = ([i64; MAX_NUMBERS], usize);

struct Search {
    target: i64,
    use_all: bool,
    tree: Tree,
    /// Value multisets known to lead nowhere. Lookups only, never iterated, so the hasher's order
    /// cannot leak into results.
    failed: HashSet<Key, BuildHasherDefault<FxHasher>>,
}

impl Search {
    fn dfs(&mut self, state: &State) -> Option<usize> {
        let n = state.len;
        let values = &state.values[..n];
        if self.use_all {
            if n == 1 && values[0] == self.target {
                return Some(state.nodes[0]);
            }
        } else if let Some(k) = values.iter().position(|&v| v == self.target) {
            return Some(state.nodes[k]);
        }
        if n < 2 {
            return None;
        }
        if n == 2 {
            // The leaves of the search: test the six results directly; hashing them into the memo
            // would cost more than it saves.
            let (a, b) = (values[0], values[1]);
            let (na, nb) = (state.nodes[0], state.nodes[1]);
            return candidates(a, b, na, nb)
                .into_iter()
                .find(|&(op, x, y, _, _)| op.apply(x, y) == Ok(self.target))
                .map(|(op, _, _, nx, ny)| self.tree.bin(op, nx, ny));
        }
        let mut key: Key = ([i64::MAX; MAX_NUMBERS], n);
        key.0[..n].copy_from_slice(values);
        key.0[..n].sort_unstable();
        if self.failed.contains(&key) {
            return None;
        }
        let mark = self.tree.nodes.len();
        for i in 0..n {
            for j in i + 1..n {
                // The rest of the state, with the result going into the last slot.
                let mut next = State {
                    len: n - 1,
                    ..*state
                };
                let mut k = 0;
                for m in (0..n).filter(|&m| m != i && m != j) {
                    next.values[k] = state.values[m];
                    next.nodes[k] = state.nodes[m];
                    k += 1;
                }
                let (a, na, b, nb) = (values[i], state.nodes[i], values[j], state.nodes[j]);
                for (op, x, y, nx, ny) in candidates(a, b, na, nb) {
                    let Ok(value) = op.apply(x, y) else { continue };
                    next.values[k] = value;
                    next.nodes[k] = self.tree.bin(op, nx, ny);
                    if let Some(found) = self.dfs(&next) {
                        return Some(found);
                    }
                    self.tree.truncate(mark);
                }
            }
        }
        self.failed.insert(key);
        None
    }
}

/// Every way to combine two values: `+` and `*` once (they commute), `-` and `/` both ways round.
fn candidates(a: i64, b: i64, na: usize, nb: usize) -> [(Op, i64, i64, usize, usize); 6] {
    [
        (Op::Add, a, b, na, nb),
        (Op::Mul, a, b, na, nb),
        (Op::Sub, a, b, na, nb),
        (Op::Sub, b, a, nb, na),
        (Op::Div, a, b, na, nb),
        (Op::Div, b, a, nb, na),
    ]
}

/// A fast deterministic hasher for the memo (the std hasher is seeded from WASI `random_get`).
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.hash = (self.hash.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::evaluate;

    fn check(numbers: &[i64], target: i64, use_all: bool) -> Option<String> {
        let solution = solve(numbers, target, use_all)?;
        let e = evaluate(&solution).unwrap();
        assert_eq!(e.value, Ok(target), "{solution}");
        let mut used = e.literals.clone();
        let mut given = numbers.to_vec();
        used.sort_unstable();
        given.sort_unstable();
        if use_all {
            assert_eq!(used, given, "{solution}");
        } else {
            for n in &used {
                let k = given.iter().position(|g| g == n).expect("given");
                given.remove(k);
            }
        }
        Some(solution)
    }

    #[test]
    fn finds_known_solutions() {
        assert!(check(&[4, 6, 1, 1], 24, false).is_some());
        assert!(check(&[3, 3, 8, 8], 24, false).is_some());
        assert!(check(&[25, 50, 75, 100, 3, 6], 952, true).is_some());
        assert!(check(&[7], 7, false).is_some());
        assert!(check(&[100, 2, 7], 93, false).is_some());
    }

    #[test]
    fn reports_unsolvable_tasks() {
        assert_eq!(check(&[1, 1], 5, false), None);
        // The famous 8 / (3 - 8 / 3) needs a fractional intermediate, which the rules forbid.
        assert_eq!(check(&[3, 3, 8, 8], 24, true), None);
        assert_eq!(check(&[2, 3], 2, true), None);
        assert_eq!(check(&[2, 3], 2, false), Some("2".to_string()));
        assert_eq!(check(&[1, 1, 1, 1, 1, 1], 1000, false), None);
        // The worst case: six numbers with no way to the target, so the whole space is searched.
        assert_eq!(check(&[97, 89, 83, 79, 73, 71], 999_999_937, false), None);
    }

    /// Every value reachable from exactly the multiset `values`, by brute force.
    fn reachable(values: &[i64]) -> std::collections::BTreeSet<i64> {
        let mut out = std::collections::BTreeSet::new();
        if values.len() == 1 {
            out.insert(values[0]);
            return out;
        }
        for i in 0..values.len() {
            for j in 0..values.len() {
                if i == j {
                    continue;
                }
                let rest: Vec<i64> = (0..values.len())
                    .filter(|&k| k != i && k != j)
                    .map(|k| values[k])
                    .collect();
                for op in Op::ALL {
                    if let Ok(v) = op.apply(values[i], values[j]) {
                        let mut next = rest.clone();
                        next.push(v);
                        out.extend(reachable(&next));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn agrees_with_brute_force() {
        let mut rng = sandgym_sdk::Rng::new(11);
        let (mut solvable, mut unsolvable) = (0, 0);
        for _ in 0..150 {
            let n = rng.range(2, 4) as usize;
            let numbers: Vec<i64> = (0..n).map(|_| rng.range(0, 12)).collect();
            let target = rng.range(-20, 150);
            let all = reachable(&numbers);
            let mut any = std::collections::BTreeSet::new();
            for mask in 1..(1u32 << n) {
                let subset: Vec<i64> = (0..n)
                    .filter(|k| mask & (1 << k) != 0)
                    .map(|k| numbers[k])
                    .collect();
                any.extend(reachable(&subset));
            }
            let found = check(&numbers, target, true).is_some();
            assert_eq!(found, all.contains(&target), "{numbers:?} -> {target}");
            let found = check(&numbers, target, false).is_some();
            assert_eq!(found, any.contains(&target), "{numbers:?} -> {target}");
            if found {
                solvable += 1;
            } else {
                unsolvable += 1;
            }
        }
        assert!(
            solvable > 20 && unsolvable > 20,
            "{solvable} / {unsolvable}"
        );
    }

    #[test]
    fn render_keeps_evaluation_order() {
        let mut t = Tree::default();
        let (a, b, c) = (t.leaf(8), t.leaf(4), t.leaf(2));
        let sub = t.bin(Op::Sub, b, c);
        let root = t.bin(Op::Sub, a, sub);
        assert_eq!(t.render(root), "8 - (4 - 2)");
        let sum = t.bin(Op::Add, a, b);
        let root = t.bin(Op::Mul, sum, c);
        assert_eq!(t.render(root), "(8 + 4) * 2");
        let prod = t.bin(Op::Mul, a, b);
        let root = t.bin(Op::Sub, prod, c);
        assert_eq!(t.render(root), "8 * 4 - 2");
    }
}
