//! Python-like numbers: the tau-bench databases mix JSON integers (gift-card balances) and floats
//! (prices, amounts), and the original tools do Python arithmetic on them (`int + float` is a float,
//! `round(int, 2)` stays an int, `round(float, 2)` rounds the exact binary value half-to-even). [`Num`]
//! keeps that distinction so a record serializes, compares and hashes like the original's.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JSON number with Python's int/float distinction.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Default for Num {
    fn default() -> Self {
        Num::Int(0)
    }
}

impl PartialEq for Num {
    /// Equal iff Python's `str()` of both is equal: `1 != 1.0` and `0.0 != -0.0` (the original compares
    /// databases through `str`), floats compared bit for bit.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Float(b)) => {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            }
            _ => false,
        }
    }
}

impl Num {
    /// The value as a float (Python's `float(x)`).
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn is_int(self) -> bool {
        matches!(self, Num::Int(_))
    }

    /// `abs(self)`.
    pub fn abs(self) -> Num {
        match self {
            Num::Int(i) => i
                .checked_abs()
                .map_or(Num::Float((i as f64).abs()), Num::Int),
            Num::Float(f) => Num::Float(f.abs()),
        }
    }

    /// Python's `round(self, ndigits)` for `ndigits >= 0`: ints are unchanged, floats are rounded
    /// half-to-even on their exact binary value.
    pub fn round(self, ndigits: usize) -> Num {
        match self {
            Num::Int(i) => Num::Int(i),
            Num::Float(f) => Num::Float(py_round(f, ndigits)),
        }
    }

    /// Python's comparison of two numbers (exact for ints below 2^53, which is all the data holds).
    pub fn py_cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }

    /// Python's `self < other`.
    pub fn lt(self, other: Num) -> bool {
        self.py_cmp(other) == Some(Ordering::Less)
    }

    /// Python's `self > 0`.
    pub fn is_positive(self) -> bool {
        self.py_cmp(Num::Int(0)) == Some(Ordering::Greater)
    }

    /// Python's `str(self)` / `repr(self)`.
    pub fn py_str(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => py_float_repr(f),
        }
    }
}

impl Num {
    /// An exact integer as a Python int (a float beyond `i64`, where Python would keep a big int).
    pub fn from_i128(x: i128) -> Num {
        i64::try_from(x).map_or(Num::Float(x as f64), Num::Int)
    }

    /// Python's `self * n` for an int `n`.
    pub fn times(self, n: i64) -> Num {
        match self {
            Num::Int(i) => Num::from_i128(i128::from(i) * i128::from(n)),
            Num::Float(f) => Num::Float(f * n as f64),
        }
    }
}

impl std::ops::Neg for Num {
    type Output = Num;

    /// Python's `-x`.
    fn neg(self) -> Num {
        match self {
            Num::Int(i) => Num::from_i128(-i128::from(i)),
            Num::Float(f) => Num::Float(-f),
        }
    }
}

impl std::iter::Sum for Num {
    /// Python's `sum(xs)`: starts from the int 0.
    fn sum<I: Iterator<Item = Num>>(iter: I) -> Num {
        iter.fold(Num::Int(0), |a, b| a + b)
    }
}

impl std::ops::Add for Num {
    type Output = Num;

    /// `self + other` with Python's typing (an int overflow falls back to a float).
    fn add(self, other: Num) -> Num {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map_or(Num::Float(a as f64 + b as f64), Num::Int),
            _ => Num::Float(self.as_f64() + other.as_f64()),
        }
    }
}

impl std::ops::Sub for Num {
    type Output = Num;

    /// `self - other` with Python's typing.
    fn sub(self, other: Num) -> Num {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_sub(b)
                .map_or(Num::Float(a as f64 - b as f64), Num::Int),
            _ => Num::Float(self.as_f64() - other.as_f64()),
        }
    }
}

impl From<i64> for Num {
    fn from(i: i64) -> Self {
        Num::Int(i)
    }
}

impl From<f64> for Num {
    fn from(f: f64) -> Self {
        Num::Float(f)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.py_str())
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Num::Int(i) => serializer.serialize_i64(i),
            Num::Float(f) => serializer.serialize_f64(f),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;
        impl Visitor<'_> for NumVisitor {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(i64::try_from(v).map_or(Num::Float(v as f64), Num::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num::Float(v))
            }
        }
        deserializer.deserialize_any(NumVisitor)
    }
}

/// Python's `round(x, ndigits)` for a float and `ndigits >= 0`: the exact binary value rounded to
/// `ndigits` decimals, ties to even (Rust's fixed-precision formatting is exact and rounds ties to
/// even, so formatting and parsing back gives exactly Python's result).
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let rounded: f64 = format!("{x:.ndigits$}")
        .parse()
        .expect("a formatted float parses");
    // Python keeps the sign of zero: round(-0.001, 2) == -0.0.
    if rounded == 0.0 {
        0.0f64.copysign(x)
    } else {
        rounded
    }
}

/// Python's `repr(x)` of a float: the shortest round-tripping digits, positional for decimal exponents
/// in -4..16 (`0.0001`, `1e-05`, `1000000000000000.0`, `1e+16`), always with a `.0` when positional.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}
