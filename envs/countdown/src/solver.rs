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

/// Finds an expression reaching `target` from `numbers` (each used at most once, or exactly once with
/// `use_all`), with exact integer arithmetic. `None` when there is none.
pub fn solve(numbers: &[i64], target: i64, use_all: bool) -> Option<String> {
    let mut search = Search {
        target,
        use_all,
        tree: Tree::default(),
        failed: HashSet::default(),
    };
    let items: Vec<(i64, usize)> = numbers.iter().map(|&n| (n, search.tree.leaf(n))).collect();
    let root = search.dfs(&items)?;
    Some(search.tree.render(root))
}

struct Search {
    target: i64,
    use_all: bool,
    tree: Tree,
    /// Value multisets (sorted) known to lead nowhere. Lookups only, never iterated, so the hasher's
    /// order cannot leak into results.
    failed: HashSet<Vec<i64>, BuildHasherDefault<FxHasher>>,
}

impl Search {
    fn dfs(&mut self, items: &[(i64, usize)]) -> Option<usize> {
        if self.use_all {
            if items.len() == 1 && items[0].0 == self.target {
                return Some(items[0].1);
            }
        } else if let Some(&(_, node)) = items.iter().find(|(v, _)| *v == self.target) {
            return Some(node);
        }
        if items.len() < 2 {
            return None;
        }
        let mut key: Vec<i64> = items.iter().map(|(v, _)| *v).collect();
        key.sort_unstable();
        if self.failed.contains(&key) {
            return None;
        }
        let mark = self.tree.nodes.len();
        let mut next: Vec<(i64, usize)> = Vec::with_capacity(items.len() - 1);
        for i in 0..items.len() {
            for j in i + 1..items.len() {
                let (a, na) = items[i];
                let (b, nb) = items[j];
                let candidates = [
                    (Op::Add, a, b, na, nb),
                    (Op::Mul, a, b, na, nb),
                    (Op::Sub, a, b, na, nb),
                    (Op::Sub, b, a, nb, na),
                    (Op::Div, a, b, na, nb),
                    (Op::Div, b, a, nb, na),
                ];
                for (op, x, y, nx, ny) in candidates {
                    let Ok(value) = op.apply(x, y) else { continue };
                    next.clear();
                    next.extend(
                        items
                            .iter()
                            .enumerate()
                            .filter(|&(k, _)| k != i && k != j)
                            .map(|(_, item)| *item),
                    );
                    let node = self.tree.bin(op, nx, ny);
                    next.push((value, node));
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
