//! The `calculate` tool as the original runs it: only `0-9 + - * / ( ) .` and spaces are allowed, then
//! the text is evaluated as a Python expression and the result printed as `str(round(float(x), 2))`.
//!
//! The evaluator covers the Python subset those characters can spell: int and float literals, unary
//! `+`/`-`, `+ - * / // **` with Python's precedence, associativity and int/float semantics (true
//! division always gives a float, `//` floors, `**` is right-associative and binds tighter than a unary
//! minus on its left). Errors read like the original's `Error: {exception}` texts. Known differences:
//! ints are 128-bit (beyond that they continue as floats), syntax errors have fewer variants than
//! CPython's, and nesting is limited to [`MAX_DEPTH`] levels.

use crate::num::{py_float_repr, py_round};

/// Deepest nesting of parentheses and `**` chains accepted (guests run on a small stack).
pub const MAX_DEPTH: usize = 40;

const SYNTAX: &str = "invalid syntax (<string>, line 1)";

/// The `calculate` tool's whole answer for `expression`, `Error: …` texts included.
pub fn calculate(expression: &str) -> String {
    if !expression.chars().all(|c| "0123456789+-*/(). ".contains(c)) {
        return "Error: invalid characters in expression".to_string();
    }
    match evaluate(expression) {
        Ok(value) => match value.to_float() {
            Ok(f) => py_float_repr(py_round(f, 2)),
            Err(e) => format!("Error: {e}"),
        },
        Err(e) => format!("Error: {e}"),
    }
}

/// A Python value of the subset: an int or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyValue {
    Int(i128),
    Float(f64),
}

impl PyValue {
    fn as_f64(self) -> f64 {
        match self {
            PyValue::Int(i) => i as f64,
            PyValue::Float(f) => f,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
        }
    }

    /// Python's `float(x)`.
    pub fn to_float(self) -> Result<f64, String> {
        Ok(self.as_f64())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Num(PyValue),
    Plus,
    Minus,
    Star,
    Slash,
    DoubleSlash,
    DoubleStar,
    LParen,
    RParen,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' => i += 1,
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let mut is_float = false;
                if i < bytes.len() && bytes[i] == b'.' {
                    is_float = true;
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let lit = &text[start..i];
                if lit == "." {
                    return Err(SYNTAX.to_string());
                }
                if is_float {
                    let f: f64 = lit.parse().map_err(|_| SYNTAX.to_string())?;
                    toks.push(Tok::Num(PyValue::Float(f)));
                } else {
                    if lit.len() > 1 && lit.starts_with('0') && lit.bytes().any(|b| b != b'0') {
                        return Err(
                            "leading zeros in decimal integer literals are not permitted; \
                                    use an 0o prefix for octal integers (<string>, line 1)"
                                .to_string(),
                        );
                    }
                    let value = match lit.parse::<i128>() {
                        Ok(n) => PyValue::Int(n),
                        Err(_) => PyValue::Float(lit.parse().map_err(|_| SYNTAX.to_string())?),
                    };
                    toks.push(Tok::Num(value));
                }
            }
            b'+' => {
                toks.push(Tok::Plus);
                i += 1;
            }
            b'-' => {
                toks.push(Tok::Minus);
                i += 1;
            }
            b'*' | b'/' => {
                let double = bytes.get(i + 1) == Some(&c);
                toks.push(match (c, double) {
                    (b'*', false) => Tok::Star,
                    (b'*', true) => Tok::DoubleStar,
                    (_, false) => Tok::Slash,
                    (_, true) => Tok::DoubleSlash,
                });
                i += if double { 2 } else { 1 };
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            _ => return Err(SYNTAX.to_string()),
        }
    }
    Ok(toks)
}

/// What went wrong while parsing or evaluating (both become `Error: {text}`).
type Eval = Result<PyValue, String>;

/// A parsed expression node; nodes are stored in post-order (operands before their operator), which is
/// also Python's evaluation order, so evaluation is a single loop without recursion.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Lit(PyValue),
    /// The empty tuple `()`.
    Tuple,
    Neg(usize),
    Pos(usize),
    Bin(Tok, usize, usize),
    /// `callee(args)`: always a TypeError once callee and argument are evaluated.
    Call(usize),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    nodes: Vec<Node>,
}

type Parsed = Result<usize, String>;

impl Parser {
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.pos).copied()
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err("too many nested parentheses (<string>, line 1)".to_string())
        } else {
            Ok(())
        }
    }

    /// expr := term (('+' | '-') term)*
    fn expr(&mut self) -> Parsed {
        let mut node = self.term()?;
        while let Some(op @ (Tok::Plus | Tok::Minus)) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            node = self.push(Node::Bin(op, node, rhs));
        }
        Ok(node)
    }

    /// term := factor (('*' | '/' | '//') factor)*
    fn term(&mut self) -> Parsed {
        let mut node = self.factor()?;
        while let Some(op @ (Tok::Star | Tok::Slash | Tok::DoubleSlash)) = self.peek() {
            self.pos += 1;
            let rhs = self.factor()?;
            node = self.push(Node::Bin(op, node, rhs));
        }
        Ok(node)
    }

    /// factor := ('+' | '-')* power; the signs apply innermost first.
    fn factor(&mut self) -> Parsed {
        let mut signs = Vec::new();
        while let Some(op @ (Tok::Plus | Tok::Minus)) = self.peek() {
            self.pos += 1;
            signs.push(op);
        }
        let mut node = self.power()?;
        for sign in signs.into_iter().rev() {
            node = self.push(if sign == Tok::Minus {
                Node::Neg(node)
            } else {
                Node::Pos(node)
            });
        }
        Ok(node)
    }

    /// power := atom ['**' factor]
    fn power(&mut self) -> Parsed {
        let base = self.atom()?;
        if self.peek() == Some(Tok::DoubleStar) {
            self.pos += 1;
            self.enter()?;
            let exp = self.factor()?;
            self.depth -= 1;
            return Ok(self.push(Node::Bin(Tok::DoubleStar, base, exp)));
        }
        Ok(base)
    }

    /// atom := (NUMBER | '(' [expr] ')') ('(' [expr] ')')*
    fn atom(&mut self) -> Parsed {
        let mut node = match self.peek() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                self.push(Node::Lit(v))
            }
            Some(Tok::LParen) => self.parenthesized(Node::Tuple)?,
            Some(Tok::RParen) => return Err("unmatched ')' (<string>, line 1)".to_string()),
            _ => return Err(SYNTAX.to_string()),
        };
        while self.peek() == Some(Tok::LParen) {
            self.parenthesized(Node::Tuple)?;
            node = self.push(Node::Call(node));
        }
        Ok(node)
    }

    /// `'(' [expr] ')'`; an empty pair is `empty`.
    fn parenthesized(&mut self, empty: Node) -> Parsed {
        self.pos += 1;
        self.enter()?;
        let node = if self.peek() == Some(Tok::RParen) {
            self.push(empty)
        } else {
            self.expr()?
        };
        match self.peek() {
            Some(Tok::RParen) => self.pos += 1,
            None => return Err("'(' was never closed (<string>, line 1)".to_string()),
            Some(_) => return Err(SYNTAX.to_string()),
        }
        self.depth -= 1;
        Ok(node)
    }
}

/// A runtime value: a number or the empty tuple.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Num(PyValue),
    Tuple,
}

impl Value {
    fn type_name(self) -> &'static str {
        match self {
            Value::Num(v) => v.type_name(),
            Value::Tuple => "tuple",
        }
    }
}

fn op_symbol(op: Tok) -> &'static str {
    match op {
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::DoubleSlash => "//",
        _ => "** or pow()",
    }
}

fn eval_nodes(nodes: &[Node]) -> Result<Value, String> {
    let mut values: Vec<Value> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let value = match *node {
            Node::Lit(v) => Value::Num(v),
            Node::Tuple => Value::Tuple,
            Node::Neg(i) | Node::Pos(i) => match values[i] {
                Value::Num(v) if matches!(node, Node::Neg(_)) => Value::Num(negative(v)),
                Value::Num(v) => Value::Num(v),
                Value::Tuple => {
                    let sign = if matches!(node, Node::Neg(_)) {
                        '-'
                    } else {
                        '+'
                    };
                    return Err(format!("bad operand type for unary {sign}: 'tuple'"));
                }
            },
            Node::Bin(op, l, r) => match (values[l], values[r]) {
                (Value::Num(a), Value::Num(b)) => Value::Num(if op == Tok::DoubleStar {
                    pow(a, b)?
                } else {
                    binary(op, a, b)?
                }),
                (Value::Tuple, Value::Tuple) if op == Tok::Plus => Value::Tuple,
                (Value::Tuple, Value::Num(PyValue::Int(_)))
                | (Value::Num(PyValue::Int(_)), Value::Tuple)
                    if op == Tok::Star =>
                {
                    Value::Tuple
                }
                (Value::Tuple, b) if op == Tok::Plus => {
                    return Err(format!(
                        "can only concatenate tuple (not \"{}\") to tuple",
                        b.type_name()
                    ));
                }
                (a, b) => {
                    return Err(format!(
                        "unsupported operand type(s) for {}: '{}' and '{}'",
                        op_symbol(op),
                        a.type_name(),
                        b.type_name()
                    ));
                }
            },
            Node::Call(callee) => {
                return Err(format!(
                    "'{}' object is not callable",
                    values[callee].type_name()
                ));
            }
        };
        values.push(value);
    }
    Ok(*values.last().expect("a parsed expression has a node"))
}

fn negative(v: PyValue) -> PyValue {
    match v {
        PyValue::Int(i) => i
            .checked_neg()
            .map_or(PyValue::Float(-(i as f64)), PyValue::Int),
        PyValue::Float(f) => PyValue::Float(-f),
    }
}

fn int_or_float(result: Option<i128>, fallback: f64) -> PyValue {
    result.map_or(PyValue::Float(fallback), PyValue::Int)
}

/// Python's float floor division (`float_floor_div` in CPython).
fn float_floordiv(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let floor = div.floor();
        if div - floor > 0.5 {
            floor + 1.0
        } else {
            floor
        }
    } else {
        0.0f64.copysign(a / b)
    }
}

fn binary(op: Tok, a: PyValue, b: PyValue) -> Eval {
    use PyValue::{Float, Int};
    Ok(match (op, a, b) {
        (Tok::Plus, Int(x), Int(y)) => int_or_float(x.checked_add(y), x as f64 + y as f64),
        (Tok::Minus, Int(x), Int(y)) => int_or_float(x.checked_sub(y), x as f64 - y as f64),
        (Tok::Star, Int(x), Int(y)) => int_or_float(x.checked_mul(y), x as f64 * y as f64),
        (Tok::Plus, _, _) => Float(a.as_f64() + b.as_f64()),
        (Tok::Minus, _, _) => Float(a.as_f64() - b.as_f64()),
        (Tok::Star, _, _) => Float(a.as_f64() * b.as_f64()),
        (Tok::Slash, Int(_), Int(0)) => return Err("division by zero".to_string()),
        (Tok::Slash, _, _) if b.as_f64() == 0.0 => {
            return Err("float division by zero".to_string());
        }
        (Tok::Slash, _, _) => Float(a.as_f64() / b.as_f64()),
        (Tok::DoubleSlash, Int(_), Int(0)) => {
            return Err("integer division or modulo by zero".to_string());
        }
        (Tok::DoubleSlash, Int(x), Int(y)) => {
            let mut q = x.wrapping_div(y);
            if x % y != 0 && ((x < 0) != (y < 0)) {
                q -= 1;
            }
            Int(q)
        }
        (Tok::DoubleSlash, _, _) if b.as_f64() == 0.0 => {
            return Err("float floor division by zero".to_string());
        }
        (Tok::DoubleSlash, _, _) => Float(float_floordiv(a.as_f64(), b.as_f64())),
        _ => return Err(SYNTAX.to_string()),
    })
}

fn pow(base: PyValue, exp: PyValue) -> Eval {
    use PyValue::{Float, Int};
    match (base, exp) {
        (Int(b), Int(e)) if e >= 0 => {
            let exact = u32::try_from(e).ok().and_then(|e| b.checked_pow(e));
            match exact {
                Some(v) => Ok(Int(v)),
                None => {
                    let f = (b as f64).powf(e as f64);
                    if f.is_finite() {
                        Ok(Float(f))
                    } else {
                        Err("int too large to convert to float".to_string())
                    }
                }
            }
        }
        _ => {
            let (b, e) = (base.as_f64(), exp.as_f64());
            if b == 0.0 && e < 0.0 {
                return Err("0.0 cannot be raised to a negative power".to_string());
            }
            if b < 0.0 && e.fract() != 0.0 && e.is_finite() {
                // Python returns a complex number here, which float() refuses.
                return Err(
                    "float() argument must be a string or a real number, not 'complex'".to_string(),
                );
            }
            let f = b.powf(e);
            if f.is_infinite() && b.is_finite() && e.is_finite() {
                return Err("(34, 'Numerical result out of range')".to_string());
            }
            Ok(Float(f))
        }
    }
}

/// Evaluates an expression of the allowed characters as Python would: the whole text is parsed
/// first (a syntax error anywhere wins, as Python compiles before it runs), then evaluated.
pub fn evaluate(expression: &str) -> Eval {
    let toks = tokenize(expression)?;
    if toks.is_empty() {
        return Err("invalid syntax (<string>, line 0)".to_string());
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        depth: 0,
        nodes: Vec::new(),
    };
    parser.expr()?;
    match parser.peek() {
        None => {}
        Some(Tok::RParen) => return Err("unmatched ')' (<string>, line 1)".to_string()),
        Some(_) => return Err(SYNTAX.to_string()),
    }
    match eval_nodes(&parser.nodes)? {
        Value::Num(v) => Ok(v),
        Value::Tuple => {
            Err("float() argument must be a string or a real number, not 'tuple'".to_string())
        }
    }
}
