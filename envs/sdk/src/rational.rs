//! Exact fractions over checked `i128`, for envs whose answers or expressions are rational numbers
//! (reasoning's expression tasks, code-math's answers): an overflow is `None`, never a wrong value.

use std::fmt;

/// A fraction in lowest terms with a positive denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

/// On magnitudes, so that `i128::MIN` has one.
fn gcd(a: i128, b: i128) -> u128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// The whole number `value`.
    pub fn integer(value: i128) -> Rational {
        Rational { num: value, den: 1 }
    }

    /// `num / den` reduced; `None` for a zero denominator and where `i128` runs out (`i128::MIN` over a
    /// negative denominator, or over itself).
    pub fn new(num: i128, den: i128) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = i128::try_from(gcd(num, den)).ok()?;
        let sign = if den < 0 { -1 } else { 1 };
        Some(Rational {
            num: (num / g).checked_mul(sign)?,
            den: (den / g).checked_mul(sign)?,
        })
    }

    /// Carries the sign.
    pub fn numerator(self) -> i128 {
        self.num
    }

    /// Always positive.
    pub fn denominator(self) -> i128 {
        self.den
    }

    /// The value as an integer, if it is one.
    pub fn as_integer(self) -> Option<i128> {
        (self.den == 1).then_some(self.num)
    }

    /// `-self`; `None` on overflow.
    pub fn checked_neg(self) -> Option<Rational> {
        Some(Rational {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    /// `self op other` for `op` in `+ - * /`; `None` on overflow, division by zero or another `op`.
    pub fn apply(self, op: char, other: Rational) -> Option<Rational> {
        let (a, b, c, d) = (self.num, self.den, other.num, other.den);
        match op {
            '+' => Rational::new(
                a.checked_mul(d)?.checked_add(c.checked_mul(b)?)?,
                b.checked_mul(d)?,
            ),
            '-' => Rational::new(
                a.checked_mul(d)?.checked_sub(c.checked_mul(b)?)?,
                b.checked_mul(d)?,
            ),
            '*' => Rational::new(a.checked_mul(c)?, b.checked_mul(d)?),
            '/' => Rational::new(a.checked_mul(d)?, b.checked_mul(c)?),
            _ => None,
        }
    }
}

impl fmt::Display for Rational {
    /// `7`, `-3/4`: the form tasks state their answers in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rational;

    fn r(num: i128, den: i128) -> Rational {
        Rational::new(num, den).unwrap()
    }

    #[test]
    fn fractions_are_reduced_with_a_positive_denominator() {
        assert_eq!(r(6, -8), r(-3, 4));
        assert_eq!((r(-6, -8).numerator(), r(-6, -8).denominator()), (3, 4));
        assert_eq!(r(0, -5), Rational::integer(0));
        assert_eq!(r(10, 5).as_integer(), Some(2));
        assert_eq!(r(1, 2).as_integer(), None);
        assert_eq!(Rational::new(1, 0), None);
        assert_eq!(Rational::new(i128::MIN, -1), None, "-i128::MIN overflows");
        assert_eq!(
            Rational::new(i128::MIN, i128::MIN),
            None,
            "their gcd overflows"
        );
        assert_eq!(r(i128::MIN, 2).numerator(), i128::MIN / 2);
        assert_eq!(r(-3, 4).to_string(), "-3/4");
        assert_eq!(r(14, 2).to_string(), "7");
    }

    #[test]
    fn arithmetic_is_exact_and_checked() {
        // 8 / (3 - 8 / 3) = 24
        let inner = Rational::integer(3).apply('-', r(8, 3)).unwrap();
        assert_eq!(
            Rational::integer(8).apply('/', inner),
            Some(Rational::integer(24))
        );
        assert_eq!(r(1, 2).apply('+', r(1, 3)), Some(r(5, 6)));
        assert_eq!(r(1, 2).apply('*', r(2, 3)), Some(r(1, 3)));
        assert_eq!(r(1, 2).apply('/', Rational::integer(0)), None);
        assert_eq!(r(1, 2).apply('^', r(1, 2)), None);
        let big = Rational::integer(i128::MAX);
        assert_eq!(big.apply('+', Rational::integer(1)), None);
        assert_eq!(big.apply('*', Rational::integer(2)), None);
        assert_eq!(Rational::integer(i128::MIN).checked_neg(), None);
        assert_eq!(r(3, 4).checked_neg(), Some(r(-3, 4)));
    }
}
