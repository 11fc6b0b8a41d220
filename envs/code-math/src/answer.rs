//! Exact answers: a reduced fraction, parsed leniently from what a model (or a GSM8K file) writes.
//!
//! The verifier is exact equality of the normalized values, so `"1,250"`, `"$1250"`, `"1250.00"` and
//! `"2500/2"` all equal 1250, and `"0.75"` equals `"3/4"`; `"0.33"` does not equal `1/3`.

pub use sandgym_sdk::Rational;

/// Digits an answer may have: keeps every intermediate product far inside `i128`.
const MAX_DIGITS: usize = 30;

/// Parses an answer: an optional sign, then an integer (digits may be grouped with commas or
/// underscores), a decimal, or a fraction `a/b`; around it, whitespace, a `$` or `\boxed{...}`,
/// a trailing period and a trailing `%` sign (kept as the number: "25%" is 25) are ignored.
pub fn parse(text: &str) -> Option<Rational> {
    let mut s = text.trim();
    if let Some(inner) = s
        .strip_prefix("\\boxed{")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        s = inner.trim();
    }
    s = s.strip_suffix('.').unwrap_or(s).trim_end();
    s = s.strip_suffix('%').unwrap_or(s).trim_end();
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let rest = rest.strip_prefix('$').unwrap_or(rest).trim_start();
    let value = match rest.split_once('/') {
        Some((num, den)) => {
            let num = parse_decimal(num.trim())?;
            let den = parse_decimal(den.trim())?;
            Rational::new(
                num.numerator().checked_mul(den.denominator())?,
                den.numerator().checked_mul(num.denominator())?,
            )?
        }
        None => parse_decimal(rest)?,
    };
    if negative {
        value.checked_neg()
    } else {
        Some(value)
    }
}

/// Unsigned integer or decimal with optional digit grouping (`1,234.5`, `1_000`).
fn parse_decimal(text: &str) -> Option<Rational> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let whole: String = whole.chars().filter(|c| *c != ',' && *c != '_').collect();
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = whole.len() + fraction.len();
    if digits > MAX_DIGITS
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // Grouping commas must separate groups of three ("1,234", not "12,34").
    if text.contains(',') {
        let head = text.split('.').next().unwrap_or("");
        let mut groups = head.split(',');
        let first = groups.next().unwrap_or("");
        if first.is_empty() || first.len() > 3 || groups.any(|g| g.len() != 3) {
            return None;
        }
    }
    let mut num: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        num = num * 10 + i128::from(c as u8 - b'0');
    }
    Rational::new(num, 10i128.pow(fraction.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Option<String> {
        parse(text).map(|v| v.to_string())
    }

    #[test]
    fn normalizes_the_usual_spellings() {
        assert_eq!(r("1250").as_deref(), Some("1250"));
        for same in [
            "1,250",
            "$1,250",
            " 1250.00 ",
            "2500/2",
            "\\boxed{1250}",
            "1250.",
        ] {
            assert_eq!(r(same).as_deref(), Some("1250"), "{same}");
        }
        assert_eq!(r("-$3.50").as_deref(), Some("-7/2"));
        assert_eq!(r("0.75").as_deref(), Some("3/4"));
        assert_eq!(
            r("6/-8").as_deref(),
            None,
            "a sign inside a fraction is not an answer"
        );
        assert_eq!(r("-6/8").as_deref(), Some("-3/4"));
        assert_eq!(r("25%").as_deref(), Some("25"));
        assert_eq!(r(".5").as_deref(), Some("1/2"));
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for bad in [
            "", "abc", "1/0", "12,34", "1.2.3", "--1", "3 apples", "1e5", "/", ".",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
        assert_eq!(r(&"9".repeat(31)), None, "too many digits");
        assert_ne!(parse("0.33"), Rational::new(1, 3));
    }
}
