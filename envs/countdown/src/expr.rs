//! Arithmetic expressions for Countdown: a bounded recursive-descent parser that evaluates exactly
//! (checked `i64`) while it parses, and records the literals it read for the multiset check.
//!
//! Evaluating during the parse means no syntax tree is built, so nothing deep is ever walked or
//! dropped recursively: recursion depth is bounded by [`MAX_DEPTH`] (parentheses and unary minus), which
//! keeps hostile input inside the guest's 64 KiB stack.

use std::fmt;

/// Longest accepted expression, in characters.
pub const MAX_LEN: usize = 1000;
/// Deepest accepted nesting of parentheses and unary minus.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }

    /// Binding strength, for printing with the fewest parentheses.
    pub fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::Div => 2,
        }
    }

    /// Exact integer arithmetic: a division must leave no remainder, since Countdown forbids
    /// fractional intermediate results.
    pub fn apply(self, a: i64, b: i64) -> Result<i64, ArithError> {
        match self {
            Op::Add => a.checked_add(b).ok_or(ArithError::Overflow),
            Op::Sub => a.checked_sub(b).ok_or(ArithError::Overflow),
            Op::Mul => a.checked_mul(b).ok_or(ArithError::Overflow),
            Op::Div => {
                if b == 0 {
                    Err(ArithError::DivisionByZero { a })
                } else if a.checked_rem(b).ok_or(ArithError::Overflow)? != 0 {
                    Err(ArithError::Inexact { a, b })
                } else {
                    a.checked_div(b).ok_or(ArithError::Overflow)
                }
            }
        }
    }
}

/// Why a well-formed expression has no exact value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArithError {
    Overflow,
    DivisionByZero { a: i64 },
    Inexact { a: i64, b: i64 },
}

impl fmt::Display for ArithError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArithError::Overflow => {
                write!(f, "overflow: a result does not fit in a 64-bit integer")
            }
            ArithError::DivisionByZero { a } => write!(f, "division by zero ({a} / 0)"),
            ArithError::Inexact { a, b } => write!(
                f,
                "division {a} / {b} is not exact (fractional results are not allowed)"
            ),
        }
    }
}

/// A parsed expression: its exact value (or why it has none), the integer literals in reading order,
/// and whether unary minus was used (allowed in `calc`, not in a submission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub value: Result<i64, ArithError>,
    pub literals: Vec<i64>,
    pub unary_minus: bool,
}

/// Parses and evaluates `text`. `Err` is a syntax error meant for the model; arithmetic failures are
/// reported in [`Evaluation::value`] so a syntax error later in the text still takes precedence.
pub fn evaluate(text: &str) -> Result<Evaluation, String> {
    // Bounding bytes first keeps a 64 MiB argument from being decoded into chars at all.
    if text.len() > 4 * MAX_LEN || text.chars().count() > MAX_LEN {
        return Err(format!("expression is longer than {MAX_LEN} characters"));
    }
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        literals: Vec::new(),
        unary_minus: false,
    };
    parser.skip_space();
    if parser.peek().is_none() {
        return Err("empty expression".to_string());
    }
    let value = parser.expr()?;
    parser.skip_space();
    if let Some(c) = parser.peek() {
        return Err(parser.unexpected(c));
    }
    Ok(Evaluation {
        value,
        literals: parser.literals,
        unary_minus: parser.unary_minus,
    })
}

type Value = Result<i64, ArithError>;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    literals: Vec<i64>,
    unary_minus: bool,
}

fn combine(op: Op, a: Value, b: Value) -> Value {
    op.apply(a?, b?)
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, c: char) -> String {
        let hint = match c {
            '=' => ": give only the expression, without '=' or the result",
            'x' | 'X' | '×' | '·' => ": use * for multiplication",
            '÷' | ':' => ": use / for division",
            '−' | '–' => ": use the ASCII '-' for subtraction",
            '[' | ']' | '{' | '}' => ": use round parentheses",
            '^' => ": powers are not allowed",
            _ => "",
        };
        format!("unexpected '{c}' at position {}{hint}", self.pos)
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "expression is nested too deeply (more than {MAX_DEPTH} levels)"
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Value, String> {
        let mut value = self.term()?;
        loop {
            self.skip_space();
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.term()?;
            value = combine(op, value, rhs);
        }
    }

    fn term(&mut self) -> Result<Value, String> {
        let mut value = self.factor()?;
        loop {
            self.skip_space();
            let op = match self.peek() {
                Some('*') => Op::Mul,
                Some('/') => Op::Div,
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.factor()?;
            value = combine(op, value, rhs);
        }
    }

    fn factor(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.peek() {
            None => Err("unexpected end of expression: an operand is missing".to_string()),
            Some('-') => {
                self.pos += 1;
                self.unary_minus = true;
                self.enter()?;
                let inner = self.factor()?;
                self.depth -= 1;
                Ok(inner.and_then(|v| v.checked_neg().ok_or(ArithError::Overflow)))
            }
            Some('(') => {
                self.pos += 1;
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                self.skip_space();
                match self.peek() {
                    Some(')') => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(c) => Err(self.unexpected(c)),
                    None => Err("missing ')' at the end of the expression".to_string()),
                }
            }
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(c) => Err(self.unexpected(c)),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        if self.peek() == Some('.') || self.peek() == Some(',') {
            return Err(format!(
                "only integers are allowed, found a decimal point after {digits} at position {}",
                self.pos
            ));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("number {digits} is too large"))?;
        self.literals.push(n);
        Ok(Ok(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        evaluate(text).expect("parses").value
    }

    fn syntax_error(text: &str) -> String {
        evaluate(text).expect_err("syntax error")
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(value("1 + 2 * 3"), Ok(7));
        assert_eq!(value("(1 + 2) * 3"), Ok(9));
        assert_eq!(value("10 - 4 - 3"), Ok(3));
        assert_eq!(value("100 / 10 / 5"), Ok(2));
        assert_eq!(value("2 * 3 / 6"), Ok(1));
        assert_eq!(value("  ((7))  "), Ok(7));
        assert_eq!(value("007+1"), Ok(8));
    }

    #[test]
    fn literals_and_unary_minus_are_recorded() {
        let e = evaluate("(25 - 3) * 4 + 25").unwrap();
        assert_eq!(e.literals, [25, 3, 4, 25]);
        assert!(!e.unary_minus);
        let e = evaluate("-3 + 5 * -(2)").unwrap();
        assert_eq!(e.value, Ok(-13));
        assert!(e.unary_minus);
        assert_eq!(value("--4"), Ok(4));
    }

    #[test]
    fn division_is_exact() {
        assert_eq!(value("8 / 4"), Ok(2));
        assert_eq!(value("-8 / 4"), Ok(-2));
        assert_eq!(value("7 / 2"), Err(ArithError::Inexact { a: 7, b: 2 }));
        assert_eq!(
            value("(7 / 2) * 2"),
            Err(ArithError::Inexact { a: 7, b: 2 })
        );
        assert_eq!(
            value("5 / (3 - 3)"),
            Err(ArithError::DivisionByZero { a: 5 })
        );
        assert!(
            ArithError::Inexact { a: 7, b: 2 }
                .to_string()
                .contains("not exact")
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert_eq!(value("9223372036854775807 + 1"), Err(ArithError::Overflow));
        assert_eq!(value("3037000500 * 3037000500"), Err(ArithError::Overflow));
        assert_eq!(
            value("-(0 - 9223372036854775807 - 1)"),
            Err(ArithError::Overflow)
        );
        assert_eq!(
            value("(0 - 9223372036854775807 - 1) / -1"),
            Err(ArithError::Overflow)
        );
        assert!(syntax_error("99999999999999999999").contains("too large"));
    }

    #[test]
    fn syntax_errors_are_clear() {
        assert_eq!(syntax_error(""), "empty expression");
        assert_eq!(syntax_error("   "), "empty expression");
        assert!(syntax_error("1 +").contains("operand is missing"));
        assert!(syntax_error("(1 + 2").contains("missing ')'"));
        assert!(syntax_error("1 + 2)").contains("unexpected ')'"));
        assert!(syntax_error("3 x 8").contains("use * for multiplication"));
        assert!(syntax_error("3 * 8 = 24").contains("without '='"));
        assert!(syntax_error("1.5 * 2").contains("only integers"));
        assert!(syntax_error("2 ^ 3").contains("powers"));
        assert!(syntax_error("1 2").contains("unexpected '2'"));
        assert!(syntax_error("a + 1").contains("unexpected 'a' at position 0"));
        assert!(syntax_error("+1").contains("unexpected '+'"));
        assert!(syntax_error("1 ** 2").contains("unexpected '*'"));
    }

    #[test]
    fn syntax_error_wins_over_arithmetic_error() {
        assert!(syntax_error("7 / 2 +").contains("operand is missing"));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(value(&deep), Ok(1));
        let deeper = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(syntax_error(&deeper).contains("nested too deeply"));
        assert!(syntax_error(&"-".repeat(500)).contains("nested too deeply"));
        assert!(syntax_error(&"(".repeat(100_000)).contains("longer than"));
        let long_chain = vec!["1"; MAX_LEN / 2].join("+");
        assert_eq!(value(&long_chain), Ok((MAX_LEN / 2) as i64));
        assert!(syntax_error(&"1".repeat(MAX_LEN + 1)).contains("longer than"));
        assert!(syntax_error(&"é".repeat(MAX_LEN + 1)).contains("longer than"));
    }
}
