//! Exact rational arithmetic and a bounded expression parser, shared by the tasks whose answer is an
//! expression (countdown, 24-game) and the generators that build expressions (basic arithmetic).
//!
//! reasoning-gym evaluates submitted expressions with sympy, so intermediate fractions are allowed
//! (`8 / (3 - 8 / 3)` makes 24). Rationals over checked `i128` give the same exact results; an overflow
//! is an error, never a wrong value. Evaluation happens during the parse, so no tree is built and
//! recursion depth is bounded by [`MAX_DEPTH`] (hostile input stays inside the 64 KiB guest stack).

/// Longest accepted expression, in bytes.
pub const MAX_LEN: usize = 1000;
/// Deepest accepted nesting of parentheses.
pub const MAX_DEPTH: usize = 32;

pub use sandgym_sdk::Rational;

/// The value of an expression and the number literals it used, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub value: Rational,
    pub literals: Vec<i128>,
}

/// Parses and evaluates `text`: non-negative integer literals, `+ - * /` (also `×` and `÷`),
/// parentheses and whitespace; no unary operators. Errors are messages for the model.
pub fn evaluate(text: &str) -> Result<Evaluation, String> {
    if text.len() > MAX_LEN {
        return Err(format!("expression longer than {MAX_LEN} bytes"));
    }
    let normalized: Vec<u8> = text
        .replace('×', "*")
        .replace('÷', "/")
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut parser = Parser {
        bytes: &normalized,
        pos: 0,
        literals: Vec::new(),
    };
    let value = parser.sum(0)?;
    if parser.pos < normalized.len() {
        return Err(format!(
            "unexpected {:?} in the expression",
            normalized[parser.pos] as char
        ));
    }
    Ok(Evaluation {
        value,
        literals: parser.literals,
    })
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    literals: Vec<i128>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn sum(&mut self, depth: usize) -> Result<Rational, String> {
        self.chain(depth, *b"+-", Self::product)
    }

    fn product(&mut self, depth: usize) -> Result<Rational, String> {
        self.chain(depth, *b"*/", Self::atom)
    }

    /// One precedence level: operands read by `operand`, joined left to right by the two `ops`.
    fn chain(
        &mut self,
        depth: usize,
        ops: [u8; 2],
        operand: fn(&mut Self, usize) -> Result<Rational, String>,
    ) -> Result<Rational, String> {
        let mut value = operand(self, depth)?;
        while let Some(op) = self.peek().filter(|b| ops.contains(b)) {
            self.pos += 1;
            let rhs = operand(self, depth)?;
            value = apply(value, op as char, rhs)?;
        }
        Ok(value)
    }

    fn atom(&mut self, depth: usize) -> Result<Rational, String> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err(format!("parentheses nested deeper than {MAX_DEPTH}"));
                }
                self.pos += 1;
                let value = self.sum(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err("missing ')'".to_string());
                }
                self.pos += 1;
                Ok(value)
            }
            Some(b'0'..=b'9') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.bytes[start..self.pos]).expect("ASCII");
                let n: i128 = digits
                    .parse()
                    .ok()
                    .filter(|_| digits.len() <= 18)
                    .ok_or_else(|| format!("number {digits} is too large"))?;
                self.literals.push(n);
                Ok(Rational::integer(n))
            }
            Some(b'-' | b'+') => Err("unary signs are not allowed".to_string()),
            Some(other) => Err(format!("unexpected {:?} in the expression", other as char)),
            None => Err("the expression ends too early".to_string()),
        }
    }
}

fn apply(a: Rational, op: char, b: Rational) -> Result<Rational, String> {
    if op == '/' && b.numerator() == 0 {
        return Err("division by zero".to_string());
    }
    a.apply(op, b)
        .ok_or_else(|| "overflow: a result is too large".to_string())
}

/// A built expression: its text, exact value and the precedence of its top operator (literals bind
/// tightest), so that combining nodes prints the fewest parentheses. Generators and solvers use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub text: String,
    pub value: Rational,
    precedence: u8,
}

impl Node {
    pub fn literal(n: i128) -> Node {
        Node {
            text: n.to_string(),
            value: Rational::integer(n),
            precedence: 3,
        }
    }

    /// `left op right`, parenthesizing a child only where precedence (or the non-associativity of
    /// `-` and `/` on the right) needs it; `None` on overflow or division by zero.
    pub fn combine(left: Node, op: char, right: Node) -> Option<Node> {
        let value = left.value.apply(op, right.value)?;
        let p = if op == '+' || op == '-' { 1 } else { 2 };
        let wrap = |node: Node, strict: bool| {
            if node.precedence < p || (strict && node.precedence == p) {
                format!("({})", node.text)
            } else {
                node.text
            }
        };
        let text = format!(
            "{} {op} {}",
            wrap(left, false),
            wrap(right, op == '-' || op == '/')
        );
        Some(Node {
            text,
            value,
            precedence: p,
        })
    }
}

/// The shared verifier of "use every given number exactly once to reach the target" tasks.
pub fn verify_uses_all(numbers: &[i64], target: i64, expression: &str) -> Result<(), String> {
    let eval = evaluate(expression)?;
    let mut used = eval.literals.clone();
    let mut given: Vec<i128> = numbers.iter().map(|&n| i128::from(n)).collect();
    used.sort_unstable();
    given.sort_unstable();
    if used != given {
        let show = |v: &[i128]| v.iter().map(i128::to_string).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "the expression uses [{}] but must use each of [{}] exactly once",
            show(&used),
            show(&given)
        ));
    }
    if eval.value != Rational::integer(i128::from(target)) {
        return Err(format!(
            "the expression equals {}, not {target}",
            eval.value
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_exactly_with_fractions() {
        let e = evaluate("8 / (3 - 8 / 3)").unwrap();
        assert_eq!(e.value, Rational::integer(24));
        assert_eq!(e.literals, vec![8, 3, 8, 3]);
        assert_eq!(
            evaluate("2 × 3 ÷ 4").unwrap().value,
            Rational::new(3, 2).unwrap()
        );
        assert!(evaluate("-3 + 4").is_err());
        assert!(
            evaluate("1 / (2 - 2)")
                .unwrap_err()
                .contains("division by zero")
        );
        assert!(evaluate(&"(".repeat(40)).unwrap_err().contains("nested"));
        assert!(evaluate("2 +").is_err());
        assert!(evaluate("2 ^ 3").is_err());
        assert!(evaluate("999999999999999999 * 999999999999999999 * 999999999999999999").is_err());
    }
}
