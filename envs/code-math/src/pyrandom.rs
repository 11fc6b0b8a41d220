//! Python's `random` module for the session, seeded from the episode seed.
//!
//! monty 0.0.23 has no `random` module, and an `import` of a module it does not know always raises
//! `ModuleNotFoundError` at run time. So the env provides one in three parts:
//!
//! - **The generator** ([`PyRandom`]): xoshiro256++ in Rust, part of the [`Session`](crate::session)
//!   and therefore guest memory: snapshots and forks copy it with the Python heap, and every copy
//!   continues the same stream. A new session starts from the episode seed; `random.seed(x)` restarts
//!   it from `x` (`int`, `float`, `str`, `bytes`; `seed()` or `seed(None)` restarts from the episode
//!   seed). The stream is deterministic per seed but is not CPython's Mersenne Twister: the same seed
//!   gives different numbers than in CPython.
//! - **External functions**: [`PyRandom::call`] answers the calls monty suspends on
//!   (`random.randint(1, 6)` pauses the interpreter, the env computes the result and resumes it), with
//!   CPython's argument handling and error messages (`randint(5, 1)` raises
//!   `ValueError: empty range in randrange(5, 2)` in the cell).
//! - **A prelude** ([`PRELUDE`]), run once in the session before the first cell that imports `random`:
//!   it builds the module object, whose numeric functions are the external functions and whose
//!   sequence functions (`choice`, `choices`, `sample`, `shuffle`) are Python, because they must
//!   return the sequence's own elements (not copies) and `shuffle` must reorder the list in place;
//!   they ask Rust only for indices.
//!
//! [`rewrite_imports`] turns `import random` (with `as`, in a list of modules, or
//! `from random import ...`) into assignments from that module object before the cell is compiled.

use monty_types::{ExcType, MontyException, MontyObject};
use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::collections::BTreeMap;

/// The global the prelude binds the module object to.
pub const MODULE_GLOBAL: &str = "__sandgym_random__";

/// Prefix of the globals that name the env's functions (the prelude calls or reads them).
const FUNCTION_PREFIX: &str = "__sandgym_random_";

/// The module's public functions, as `from random import *` binds them.
pub const EXPORTS: [&str; 14] = [
    "seed",
    "random",
    "getrandbits",
    "randrange",
    "randint",
    "uniform",
    "triangular",
    "gauss",
    "normalvariate",
    "expovariate",
    "choice",
    "choices",
    "sample",
    "shuffle",
];

/// Builds the module object: a class used as a namespace (monty has no way to define a module).
/// Functions in a class body are plain functions when read from the class, so `random.choice(xs)`
/// is a call of `choice(xs)`; the numeric functions are the external functions themselves.
pub const PRELUDE: &str = r#"def __sandgym_random_module():
    class random:
        seed = __sandgym_random_seed
        random = __sandgym_random_random
        getrandbits = __sandgym_random_getrandbits
        randrange = __sandgym_random_randrange
        randint = __sandgym_random_randint
        uniform = __sandgym_random_uniform
        triangular = __sandgym_random_triangular
        gauss = __sandgym_random_gauss
        normalvariate = __sandgym_random_normalvariate
        expovariate = __sandgym_random_expovariate

        def choice(seq):
            return seq[__sandgym_random_choice_index(len(seq))]

        def shuffle(x):
            n = len(x)
            if n > 1:
                items = [x[i] for i in range(n)]
                order = __sandgym_random_permutation(n)
                for i in range(n):
                    x[i] = items[order[i]]

        def sample(population, k, *, counts=None):
            if isinstance(population, (set, frozenset, dict)):
                raise TypeError('Population must be a sequence.  For dicts or sets, use sorted(d).')
            if counts is not None:
                counts = list(counts)
            return [population[i] for i in __sandgym_random_sample_indices(len(population), k, counts)]

        def choices(population, weights=None, *, cum_weights=None, k=1):
            n = len(population)
            if weights is not None:
                if cum_weights is None and isinstance(weights, int):
                    raise TypeError(f'The number of choices must be a keyword argument: k={weights}')
                weights = list(weights)
            if cum_weights is not None:
                cum_weights = list(cum_weights)
            return [population[i] for i in __sandgym_random_choices_indices(n, k, weights, cum_weights)]

    return random


__sandgym_random__ = __sandgym_random_module()
"#;

/// The functions implemented in Rust: the module's numeric functions, then the index helpers the
/// prelude's sequence functions call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Seed,
    Random,
    GetRandBits,
    RandRange,
    RandInt,
    Uniform,
    Triangular,
    Gauss,
    NormalVariate,
    ExpoVariate,
    ChoiceIndex,
    ChoicesIndices,
    SampleIndices,
    Permutation,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "seed" => Function::Seed,
            "random" => Function::Random,
            "getrandbits" => Function::GetRandBits,
            "randrange" => Function::RandRange,
            "randint" => Function::RandInt,
            "uniform" => Function::Uniform,
            "triangular" => Function::Triangular,
            "gauss" => Function::Gauss,
            "normalvariate" => Function::NormalVariate,
            "expovariate" => Function::ExpoVariate,
            "choice_index" => Function::ChoiceIndex,
            "choices_indices" => Function::ChoicesIndices,
            "sample_indices" => Function::SampleIndices,
            "permutation" => Function::Permutation,
            _ => return None,
        })
    }

    /// `(name, parameters, required)`: positional-or-keyword parameters, as in CPython's
    /// `random.Random` methods (the first `required` have no default).
    fn signature(self) -> (&'static str, &'static [&'static str], usize) {
        match self {
            Function::Seed => ("seed", &["a", "version"], 0),
            Function::Random => ("random", &[], 0),
            Function::GetRandBits => ("getrandbits", &["k"], 1),
            Function::RandRange => ("randrange", &["start", "stop", "step"], 1),
            Function::RandInt => ("randint", &["a", "b"], 2),
            Function::Uniform => ("uniform", &["a", "b"], 2),
            Function::Triangular => ("triangular", &["low", "high", "mode"], 0),
            Function::Gauss => ("gauss", &["mu", "sigma"], 0),
            Function::NormalVariate => ("normalvariate", &["mu", "sigma"], 0),
            Function::ExpoVariate => ("expovariate", &["lambd"], 0),
            Function::ChoiceIndex => ("choice_index", &["n"], 1),
            Function::ChoicesIndices => {
                ("choices_indices", &["n", "k", "weights", "cum_weights"], 4)
            }
            Function::SampleIndices => ("sample_indices", &["n", "k", "counts"], 3),
            Function::Permutation => ("permutation", &["n"], 1),
        }
    }
}

/// The name of the env's function behind an external call or a global lookup: `random.randint` (the
/// name the module's attributes carry) or `__sandgym_random_randint` (the global the prelude uses).
fn function_named(name: &str) -> Option<Function> {
    let bare = name
        .strip_prefix("random.")
        .or_else(|| name.strip_prefix(FUNCTION_PREFIX))?;
    Function::from_name(bare)
}

/// What a global name the session cannot find resolves to: the env's functions, for the prelude.
pub fn lookup(name: &str) -> Option<MontyObject> {
    let function = function_named(name)?;
    Some(MontyObject::Function {
        name: format!("random.{}", function.signature().0),
        docstring: None,
    })
}

/// The session's random number generator: xoshiro256++ (Blackman and Vigna), 256 bits of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyRandom {
    state: [u64; 4],
    episode_seed: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator state from seed material: `tag` keeps kinds of seeds apart (an episode seed, an
/// int, a string), the length keeps zero-padded chunks apart.
fn state_from(tag: u8, bytes: &[u8]) -> [u64; 4] {
    let mut h = mix64(0x5361_6e64_676d_5079 ^ u64::from(tag) ^ ((bytes.len() as u64) << 8));
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word)).wrapping_add(GOLDEN);
    }
    let mut state = [0u64; 4];
    for slot in &mut state {
        h = h.wrapping_add(GOLDEN);
        *slot = mix64(h);
    }
    if state == [0; 4] {
        state[0] = 1;
    }
    state
}

type PyResult<T> = Result<T, MontyException>;

fn error(exc_type: ExcType, message: impl Into<String>) -> MontyException {
    MontyException::new(exc_type, Some(message.into()))
}

/// The bound arguments of one call, in signature order.
type Bound<'a> = Vec<Option<&'a MontyObject>>;

/// Binds positional and keyword arguments to `function`'s parameters, with CPython's messages for a
/// method of `random.Random` (whose counts include `self`).
fn bind<'a>(
    function: Function,
    args: &'a [MontyObject],
    kwargs: &'a [(MontyObject, MontyObject)],
) -> PyResult<Bound<'a>> {
    let (name, params, required) = function.signature();
    let qualname = format!("Random.{name}()");
    if params.is_empty() && (!args.is_empty() || !kwargs.is_empty()) {
        return Err(error(
            ExcType::TypeError,
            format!(
                "{qualname} takes no arguments ({} given)",
                args.len() + kwargs.len()
            ),
        ));
    }
    if args.len() > params.len() {
        let takes = if required == params.len() {
            format!("{}", params.len() + 1)
        } else {
            format!("from {} to {}", required + 1, params.len() + 1)
        };
        return Err(error(
            ExcType::TypeError,
            format!(
                "{qualname} takes {takes} positional arguments but {} were given",
                args.len() + 1
            ),
        ));
    }
    let mut bound: Bound<'a> = vec![None; params.len()];
    for (slot, arg) in bound.iter_mut().zip(args) {
        *slot = Some(arg);
    }
    for (key, value) in kwargs {
        let key = match key {
            MontyObject::String(key) => key.as_str(),
            other => {
                return Err(error(
                    ExcType::TypeError,
                    format!("keywords must be strings, not {}", other.type_name()),
                ));
            }
        };
        let Some(index) = params.iter().position(|p| *p == key) else {
            return Err(error(
                ExcType::TypeError,
                format!("{qualname} got an unexpected keyword argument '{key}'"),
            ));
        };
        if bound[index].is_some() {
            return Err(error(
                ExcType::TypeError,
                format!("{qualname} got multiple values for argument '{key}'"),
            ));
        }
        bound[index] = Some(value);
    }
    let missing: Vec<String> = params[..required]
        .iter()
        .zip(&bound)
        .filter(|(_, value)| value.is_none())
        .map(|(param, _)| format!("'{param}'"))
        .collect();
    if !missing.is_empty() {
        let list = match missing.as_slice() {
            [one] => one.clone(),
            [first, second] => format!("{first} and {second}"),
            [init @ .., last] => format!("{}, and {last}", init.join(", ")),
            [] => unreachable!(),
        };
        let plural = if missing.len() == 1 {
            "argument"
        } else {
            "arguments"
        };
        return Err(error(
            ExcType::TypeError,
            format!(
                "{qualname} missing {} required positional {plural}: {list}",
                missing.len()
            ),
        ));
    }
    Ok(bound)
}

/// `operator.index`: an int (or bool), else `TypeError`.
fn to_int(value: &MontyObject) -> PyResult<BigInt> {
    match value {
        MontyObject::Int(i) => Ok(BigInt::from(*i)),
        MontyObject::BigInt(i) => Ok(i.clone()),
        MontyObject::Bool(b) => Ok(BigInt::from(u8::from(*b))),
        other => Err(error(
            ExcType::TypeError,
            format!(
                "'{}' object cannot be interpreted as an integer",
                other.type_name()
            ),
        )),
    }
}

/// A count the env will allocate for (`len(...)` of a sequence, `k` of a sample): an int that fits
/// in 64 bits.
fn to_count(value: &MontyObject) -> PyResult<i64> {
    to_int(value)?.to_i64().ok_or_else(|| {
        error(
            ExcType::OverflowError,
            "Python int too large to convert to C ssize_t",
        )
    })
}

/// A real number as a float: an int, bool or float, else `TypeError`.
fn to_float(value: &MontyObject) -> PyResult<f64> {
    match value {
        MontyObject::Int(i) => Ok(*i as f64),
        MontyObject::Bool(b) => Ok(f64::from(u8::from(*b))),
        MontyObject::Float(f) => Ok(*f),
        MontyObject::BigInt(i) => match i.to_f64() {
            Some(f) if f.is_finite() => Ok(f),
            _ => Err(error(
                ExcType::OverflowError,
                "int too large to convert to float",
            )),
        },
        other => Err(error(
            ExcType::TypeError,
            format!("must be real number, not {}", other.type_name()),
        )),
    }
}

fn float_or(value: Option<&MontyObject>, default: f64) -> PyResult<f64> {
    value.map_or(Ok(default), to_float)
}

fn int_object(value: BigInt) -> MontyObject {
    value
        .to_i64()
        .map_or(MontyObject::BigInt(value), MontyObject::Int)
}

fn index_list(indices: impl IntoIterator<Item = u64>) -> MontyObject {
    MontyObject::List(
        indices
            .into_iter()
            .map(|i| MontyObject::Int(i as i64))
            .collect(),
    )
}

fn is_none(value: Option<&MontyObject>) -> bool {
    matches!(value, None | Some(MontyObject::None))
}

/// `bisect.bisect_right(a, x, 0, hi)`.
fn bisect_right<T: PartialOrd>(a: &[T], x: &T, hi: usize) -> usize {
    let (mut lo, mut hi) = (0, hi);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if x < &a[mid] {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

impl PyRandom {
    /// The generator a session starts with: the episode seed's stream (a stream of its own, not the
    /// one the task generator draws from).
    pub fn new(episode_seed: u64) -> PyRandom {
        PyRandom {
            state: state_from(b'e', &episode_seed.to_le_bytes()),
            episode_seed,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits, like CPython's `random()`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `k` random bits as an integer.
    fn bits(&mut self, k: u64) -> BigUint {
        let words = k.div_ceil(64);
        let mut digits = Vec::with_capacity(words as usize * 2);
        for i in 0..words {
            let mut word = self.next_u64();
            let left = k - i * 64;
            if left < 64 {
                word >>= 64 - left;
            }
            digits.push(word as u32);
            digits.push((word >> 32) as u32);
        }
        BigUint::new(digits)
    }

    /// Uniform in `0..n` for `n > 0`, by rejection of `n.bit_length()` random bits (CPython's
    /// `_randbelow`).
    fn below(&mut self, n: &BigUint) -> BigUint {
        let k = n.bits();
        if let Some(small) = n.to_u64() {
            return BigUint::from(self.below_u64(small));
        }
        loop {
            let r = self.bits(k);
            if &r < n {
                return r;
            }
        }
    }

    fn below_u64(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let k = 64 - n.leading_zeros();
        loop {
            let r = if k == 0 {
                0
            } else {
                self.next_u64() >> (64 - k)
            };
            if r < n {
                return r;
            }
        }
    }

    /// Restarts the stream: `None` from the episode seed, else from the value.
    fn reseed(&mut self, a: Option<&MontyObject>) -> PyResult<()> {
        let state = match a {
            None | Some(MontyObject::None) => state_from(b'e', &self.episode_seed.to_le_bytes()),
            Some(MontyObject::Int(_) | MontyObject::BigInt(_) | MontyObject::Bool(_)) => {
                let value = to_int(a.expect("matched"))?;
                state_from(b'i', &value.magnitude().to_bytes_le())
            }
            // An integral float seeds like the int it equals (`hash(2.0) == hash(2)` in CPython).
            Some(MontyObject::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                state_from(b'i', &BigUint::from(f.abs() as u64).to_bytes_le())
            }
            Some(MontyObject::Float(f)) => state_from(b'f', &f.to_bits().to_le_bytes()),
            // As in CPython, a str seeds like its UTF-8 bytes.
            Some(MontyObject::String(s)) => state_from(b's', s.as_bytes()),
            Some(MontyObject::Bytes(b)) => state_from(b's', b),
            Some(_) => {
                return Err(error(
                    ExcType::TypeError,
                    "The only supported seed types are: None,\nint, float, str, bytes, and bytearray.",
                ));
            }
        };
        self.state = state;
        Ok(())
    }

    /// `randrange(start, stop=None, step=1)` with CPython's checks and messages.
    fn randrange(
        &mut self,
        start: &MontyObject,
        stop: Option<&MontyObject>,
        step: Option<&MontyObject>,
    ) -> PyResult<BigInt> {
        let istart = to_int(start)?;
        let Some(stop) = stop.filter(|s| !matches!(s, MontyObject::None)) else {
            if step.is_some_and(|s| s != &MontyObject::Int(1)) {
                return Err(error(
                    ExcType::TypeError,
                    "Missing a non-None stop argument",
                ));
            }
            if istart.is_positive() {
                return Ok(BigInt::from(self.below(istart.magnitude())));
            }
            return Err(error(ExcType::ValueError, "empty range for randrange()"));
        };
        let istop = to_int(stop)?;
        let width = &istop - &istart;
        let istep = step.map_or(Ok(BigInt::one()), to_int)?;
        if istep.is_one() {
            if width.is_positive() {
                return Ok(istart + BigInt::from(self.below(width.magnitude())));
            }
            return Err(error(
                ExcType::ValueError,
                format!(
                    "empty range in randrange({}, {})",
                    start.py_repr(),
                    stop.py_repr()
                ),
            ));
        }
        let n = if istep.is_positive() {
            (width + &istep - BigInt::one()).div_floor(&istep)
        } else if istep.is_negative() {
            (width + &istep + BigInt::one()).div_floor(&istep)
        } else {
            return Err(error(ExcType::ValueError, "zero step for randrange()"));
        };
        if !n.is_positive() {
            return Err(error(
                ExcType::ValueError,
                format!(
                    "empty range in randrange({}, {}, {})",
                    start.py_repr(),
                    stop.py_repr(),
                    step.map_or_else(|| "1".to_string(), MontyObject::py_repr)
                ),
            ));
        }
        Ok(istart + istep * BigInt::from(self.below(n.magnitude())))
    }

    /// Box–Muller: one normal deviate from two uniform ones.
    fn normal(&mut self, mu: f64, sigma: f64) -> f64 {
        let angle = self.unit() * std::f64::consts::TAU;
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        mu + angle.cos() * radius * sigma
    }

    /// Answers a call of one of the env's functions (`None` for any other name: the caller raises
    /// `NameError`). Python errors come back as `Err`, raised at the call in the cell.
    /// `max_items` bounds the lists and bits the env builds for one call (`MemoryError` above it).
    pub fn call(
        &mut self,
        name: &str,
        args: &[MontyObject],
        kwargs: &[(MontyObject, MontyObject)],
        max_items: usize,
    ) -> Option<PyResult<MontyObject>> {
        let function = function_named(name)?;
        Some(
            bind(function, args, kwargs)
                .and_then(|bound| self.dispatch(function, &bound, max_items)),
        )
    }

    fn dispatch(
        &mut self,
        function: Function,
        a: &Bound<'_>,
        max_items: usize,
    ) -> PyResult<MontyObject> {
        // `what` names the call, `count` the items it would build.
        let too_big = |count: u64, what: String| -> PyResult<()> {
            if count > max_items as u64 {
                Err(error(
                    ExcType::MemoryError,
                    format!(
                        "{what} would build {count} items; this cell's memory budget allows \
                         {max_items}"
                    ),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match function {
            Function::Seed => {
                if let Some(version) = a[1]
                    && !matches!(version, MontyObject::Int(1 | 2))
                {
                    return Err(error(
                        ExcType::ValueError,
                        format!("Invalid version: {} (must be 1 or 2)", version.py_repr()),
                    ));
                }
                self.reseed(a[0])?;
                MontyObject::None
            }
            Function::Random => MontyObject::Float(self.unit()),
            Function::GetRandBits => {
                let k = to_int(a[0].expect("required"))?;
                if k.is_negative() {
                    return Err(error(
                        ExcType::ValueError,
                        "number of bits must be non-negative",
                    ));
                }
                let k = k.to_u64().unwrap_or(u64::MAX);
                let max_bits = max_items as u64 * 64;
                if k > max_bits {
                    return Err(error(
                        ExcType::MemoryError,
                        format!(
                            "getrandbits({k}) would build a {k}-bit int; this cell's memory \
                             budget allows {max_bits} bits"
                        ),
                    ));
                }
                int_object(BigInt::from(self.bits(k)))
            }
            Function::RandRange => {
                int_object(self.randrange(a[0].expect("required"), a[1], a[2])?)
            }
            Function::RandInt => {
                let low = a[0].expect("required");
                let high = to_int(a[1].expect("required"))? + 1;
                int_object(self.randrange(low, Some(&int_object(high)), None)?)
            }
            Function::Uniform => {
                let low = to_float(a[0].expect("required"))?;
                let high = to_float(a[1].expect("required"))?;
                MontyObject::Float(low + (high - low) * self.unit())
            }
            Function::Triangular => {
                let mut low = float_or(a[0], 0.0)?;
                let mut high = float_or(a[1], 1.0)?;
                let mode = if is_none(a[2]) {
                    None
                } else {
                    Some(to_float(a[2].expect("not none"))?)
                };
                let mut u = self.unit();
                if high == low {
                    return Ok(MontyObject::Float(low));
                }
                let mut c = mode.map_or(0.5, |m| (m - low) / (high - low));
                if u > c {
                    u = 1.0 - u;
                    c = 1.0 - c;
                    (low, high) = (high, low);
                }
                MontyObject::Float(low + (high - low) * (u * c).sqrt())
            }
            Function::Gauss | Function::NormalVariate => {
                let mu = float_or(a[0], 0.0)?;
                let sigma = float_or(a[1], 1.0)?;
                MontyObject::Float(self.normal(mu, sigma))
            }
            Function::ExpoVariate => {
                let lambd = float_or(a[0], 1.0)?;
                if lambd == 0.0 {
                    return Err(error(ExcType::ZeroDivisionError, "float division by zero"));
                }
                MontyObject::Float(-(1.0 - self.unit()).ln() / lambd)
            }
            Function::ChoiceIndex => {
                let n = to_count(a[0].expect("required"))?;
                if n <= 0 {
                    return Err(error(
                        ExcType::IndexError,
                        "Cannot choose from an empty sequence",
                    ));
                }
                MontyObject::Int(self.below_u64(n as u64) as i64)
            }
            Function::ChoicesIndices => {
                let n = to_count(a[0].expect("required"))?.max(0) as usize;
                let k = to_count(a[1].expect("required"))?.max(0) as u64;
                too_big(k, format!("choices(k={k})"))?;
                let (weights, cum_weights) = (a[2], a[3]);
                let cumulative: Vec<f64> = match (is_none(weights), is_none(cum_weights)) {
                    (true, true) => {
                        let n = n as f64;
                        let picks: Vec<u64> =
                            (0..k).map(|_| (self.unit() * n).floor() as u64).collect();
                        return Ok(index_list(picks));
                    }
                    (false, false) => {
                        return Err(error(
                            ExcType::TypeError,
                            "Cannot specify both weights and cumulative weights",
                        ));
                    }
                    (false, true) => {
                        let mut total = 0.0;
                        numbers(weights.expect("not none"))?
                            .into_iter()
                            .map(|w| {
                                total += w;
                                total
                            })
                            .collect()
                    }
                    (true, false) => numbers(cum_weights.expect("not none"))?,
                };
                if cumulative.len() != n {
                    return Err(error(
                        ExcType::ValueError,
                        "The number of weights does not match the population",
                    ));
                }
                let Some(&total) = cumulative.last() else {
                    return Err(error(ExcType::IndexError, "list index out of range"));
                };
                if total <= 0.0 {
                    return Err(error(
                        ExcType::ValueError,
                        "Total of weights must be greater than zero",
                    ));
                }
                if !total.is_finite() {
                    return Err(error(
                        ExcType::ValueError,
                        "Total of weights must be finite",
                    ));
                }
                let hi = n - 1;
                let picks: Vec<u64> = (0..k)
                    .map(|_| bisect_right(&cumulative, &(self.unit() * total), hi) as u64)
                    .collect();
                index_list(picks)
            }
            Function::SampleIndices => {
                let n = to_count(a[0].expect("required"))?.max(0) as u64;
                let k = to_count(a[1].expect("required"))?;
                let counts = a[2].filter(|c| !matches!(c, MontyObject::None));
                let Some(counts) = counts else {
                    if !(0..=n as i64).contains(&k) {
                        return Err(error(
                            ExcType::ValueError,
                            "Sample larger than population or is negative",
                        ));
                    }
                    too_big(k as u64, format!("sample(k={k})"))?;
                    return Ok(index_list(self.sample(n, k as u64)));
                };
                let MontyObject::List(counts) = counts else {
                    return Err(error(ExcType::TypeError, "Counts must be integers"));
                };
                let mut cumulative = Vec::with_capacity(counts.len());
                let mut total = BigInt::zero();
                for count in counts {
                    if !matches!(
                        count,
                        MontyObject::Int(_) | MontyObject::BigInt(_) | MontyObject::Bool(_)
                    ) {
                        return Err(error(ExcType::TypeError, "Counts must be integers"));
                    }
                    total += to_int(count)?;
                    cumulative.push(total.clone());
                }
                if cumulative.len() as u64 != n {
                    return Err(error(
                        ExcType::ValueError,
                        "The number of counts does not match the population",
                    ));
                }
                let Some(total) = cumulative.pop() else {
                    return Err(error(ExcType::IndexError, "pop from empty list"));
                };
                if !total.is_positive() {
                    return Err(error(
                        ExcType::ValueError,
                        "Total of counts must be greater than zero",
                    ));
                }
                let total = total.to_u64().ok_or_else(|| {
                    error(
                        ExcType::OverflowError,
                        "Python int too large to convert to C ssize_t",
                    )
                })?;
                if !(0..=total as i128).contains(&i128::from(k)) {
                    return Err(error(
                        ExcType::ValueError,
                        "Sample larger than population or is negative",
                    ));
                }
                too_big(k as u64, format!("sample(k={k})"))?;
                let hi = cumulative.len();
                let picks: Vec<u64> = self
                    .sample(total, k as u64)
                    .into_iter()
                    .map(|s| bisect_right(&cumulative, &BigInt::from(s), hi) as u64)
                    .collect();
                index_list(picks)
            }
            Function::Permutation => {
                let n = to_count(a[0].expect("required"))?.max(0) as u64;
                too_big(n, format!("shuffle() of {n} items"))?;
                let mut order: Vec<u64> = (0..n).collect();
                for i in (1..order.len()).rev() {
                    let j = self.below_u64(i as u64 + 1) as usize;
                    order.swap(i, j);
                }
                index_list(order)
            }
        })
    }

    /// `k` distinct values of `0..n` in selection order: a partial Fisher–Yates shuffle over a
    /// sparse map, so `n` may be far larger than memory.
    fn sample(&mut self, n: u64, k: u64) -> Vec<u64> {
        let mut moved: BTreeMap<u64, u64> = BTreeMap::new();
        let mut picks = Vec::with_capacity(k as usize);
        for i in 0..k {
            let j = i + self.below_u64(n - i);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            let at_i = moved.get(&i).copied().unwrap_or(i);
            moved.insert(j, at_i);
            picks.push(at_j);
        }
        picks
    }
}

/// The numbers in a list (weights), as floats.
fn numbers(list: &MontyObject) -> PyResult<Vec<f64>> {
    match list {
        MontyObject::List(items) | MontyObject::Tuple(items) => {
            items.iter().map(to_float).collect()
        }
        other => Err(error(
            ExcType::TypeError,
            format!("'{}' object is not iterable", other.type_name()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Import rewriting
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Name,
    Op(u8),
    /// The end of a logical line (a newline outside brackets and not after a backslash).
    Newline,
    /// A string or number literal.
    Literal,
}

/// Splits Python source into the few token kinds the import rewrite needs, with byte spans. Strings
/// (with any prefix, triple-quoted or not) and comments are skipped whole; newlines inside brackets
/// and after a backslash are not tokens.
fn tokenize(code: &str) -> Vec<(Token, usize, usize)> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\\' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'\n' => {
                if depth == 0 {
                    tokens.push((Token::Newline, start, start + 1));
                }
                i += 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            quote @ (b'\'' | b'"') => {
                i = skip_string(bytes, i, quote);
                tokens.push((Token::Literal, start, i));
            }
            b if is_name_byte(b) => {
                while i < bytes.len() && is_name_byte(bytes[i]) {
                    i += 1;
                }
                let word = &bytes[start..i];
                let prefix = word.len() <= 2
                    && word.iter().all(|c| b"rRbBfFuUtT".contains(c))
                    && matches!(bytes.get(i), Some(b'\'' | b'"'));
                if prefix {
                    i = skip_string(bytes, i, bytes[i]);
                    tokens.push((Token::Literal, start, i));
                } else if word[0].is_ascii_digit() {
                    tokens.push((Token::Literal, start, i));
                } else {
                    tokens.push((Token::Name, start, i));
                }
            }
            b => {
                match b {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                i += 1;
                tokens.push((Token::Op(b), start, i));
            }
        }
    }
    tokens
}

/// The index just past the string literal whose opening quote is at `i`.
fn skip_string(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    let triple = bytes[i..].starts_with(&[quote; 3]);
    i += if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote && (!triple || bytes[i..].starts_with(&[quote; 3])) => {
                return i + if triple { 3 } else { 1 };
            }
            b'\n' if !triple => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// One name of an import statement: `dotted [as alias]`.
#[derive(Debug)]
struct ImportItem<'a> {
    path: Vec<&'a str>,
    alias: Option<&'a str>,
}

impl ImportItem<'_> {
    fn binding(&self) -> &str {
        self.alias.unwrap_or(self.path[0])
    }

    fn source(&self) -> String {
        match self.alias {
            Some(alias) => format!("{} as {alias}", self.path.join(".")),
            None => self.path.join("."),
        }
    }
}

/// A parsed import statement.
#[derive(Debug)]
enum Import<'a> {
    /// `import a.b as c, d`
    Modules(Vec<ImportItem<'a>>),
    /// `from <dots><module> import names` (`None` for `*`).
    From {
        module: String,
        names: Option<Vec<ImportItem<'a>>>,
    },
}

/// Parses the import statement in `tokens` (which starts with `import` or `from`); `None` for
/// anything else, which is then left for monty's parser to judge.
fn parse_import<'a>(code: &'a str, tokens: &[(Token, usize, usize)]) -> Option<Import<'a>> {
    let text = |t: &(Token, usize, usize)| &code[t.1..t.2];
    let items =
        |at: &mut usize, dotted: bool, parenthesized: bool| -> Option<Vec<ImportItem<'a>>> {
            let mut list = Vec::new();
            loop {
                let (Token::Name, ..) = tokens.get(*at)? else {
                    return None;
                };
                let mut path = vec![text(&tokens[*at])];
                *at += 1;
                while dotted && tokens.get(*at).map(|t| t.0) == Some(Token::Op(b'.')) {
                    let name = tokens.get(*at + 1).filter(|t| t.0 == Token::Name)?;
                    path.push(text(name));
                    *at += 2;
                }
                let mut alias = None;
                if tokens.get(*at).map(text) == Some("as") {
                    let name = tokens.get(*at + 1).filter(|t| t.0 == Token::Name)?;
                    alias = Some(text(name));
                    *at += 2;
                }
                list.push(ImportItem { path, alias });
                if tokens.get(*at).map(|t| t.0) != Some(Token::Op(b',')) {
                    return Some(list);
                }
                *at += 1;
                if parenthesized && tokens.get(*at).map(|t| t.0) == Some(Token::Op(b')')) {
                    return Some(list);
                }
            }
        };
    let mut at;
    let import = match text(&tokens[0]) {
        "import" => {
            at = 1;
            Import::Modules(items(&mut at, true, false)?)
        }
        _ => {
            at = 1;
            let mut module = String::new();
            while let Some(t) = tokens.get(at).filter(|t| t.0 == Token::Op(b'.')) {
                module.push_str(text(t));
                at += 1;
            }
            while let Some(t) = tokens.get(at).filter(|t| t.0 == Token::Name) {
                if text(t) == "import" {
                    break;
                }
                module.push_str(text(t));
                at += 1;
                if let Some(dot) = tokens.get(at).filter(|t| t.0 == Token::Op(b'.')) {
                    module.push_str(text(dot));
                    at += 1;
                } else {
                    break;
                }
            }
            if tokens.get(at).map(text) != Some("import") {
                return None;
            }
            at += 1;
            let names = match tokens.get(at)?.0 {
                Token::Op(b'*') => {
                    at += 1;
                    None
                }
                Token::Op(b'(') => {
                    at += 1;
                    let list = items(&mut at, false, true)?;
                    if tokens.get(at)?.0 != Token::Op(b')') {
                        return None;
                    }
                    at += 1;
                    Some(list)
                }
                _ => Some(items(&mut at, false, false)?),
            };
            Import::From { module, names }
        }
    };
    (at == tokens.len()).then_some(import)
}

/// The statements that replace an import of `random`, or `None` when it imports no `random`.
fn replacement(import: &Import<'_>) -> Option<Vec<String>> {
    let module = MODULE_GLOBAL;
    match import {
        Import::Modules(items) => {
            if !items.iter().any(|item| item.path == ["random"]) {
                return None;
            }
            let mut statements = Vec::new();
            let mut others: Vec<String> = Vec::new();
            for item in items {
                if item.path == ["random"] {
                    if !others.is_empty() {
                        statements.push(format!("import {}", others.join(", ")));
                        others.clear();
                    }
                    statements.push(format!("{} = ({module})", item.binding()));
                } else {
                    others.push(item.source());
                }
            }
            if !others.is_empty() {
                statements.push(format!("import {}", others.join(", ")));
            }
            Some(statements)
        }
        Import::From {
            module: name,
            names,
        } if name == "random" => {
            let mut statements = Vec::new();
            match names {
                None => {
                    for export in EXPORTS {
                        statements.push(format!("{export} = ({module}.{export})"));
                    }
                }
                Some(names) => {
                    for item in names {
                        let name = item.path[0];
                        if EXPORTS.contains(&name) {
                            statements.push(format!("{} = ({module}.{name})", item.binding()));
                        } else {
                            statements.push(format!(
                                "raise ImportError(\"cannot import name '{name}' from 'random' \
                                 (unknown location)\")"
                            ));
                            break;
                        }
                    }
                }
            }
            Some(statements)
        }
        Import::From { .. } => None,
    }
}

/// Rewrites every import of `random` in a cell into assignments from the module object
/// ([`MODULE_GLOBAL`]); `None` when the cell imports no `random`. Each rewritten statement keeps its
/// place and its line count (the newlines it spanned move inside the parentheses of its first
/// assignment), so later lines keep their numbers in tracebacks. Imports of other modules in the
/// same statement stay imports.
pub fn rewrite_imports(code: &str) -> Option<String> {
    if !code.contains("random") {
        return None;
    }
    let tokens = tokenize(code);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut statement_start = true;
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let (token, start, end) = tokens[i];
        let word = &code[start..end];
        if statement_start && token == Token::Name && (word == "import" || word == "from") {
            // The statement runs to the end of the logical line or a `;` outside brackets.
            let mut j = i;
            let mut inner = 0usize;
            while j < tokens.len() {
                match tokens[j].0 {
                    Token::Newline => break,
                    Token::Op(b';') if inner == 0 => break,
                    Token::Op(b'(') => inner += 1,
                    Token::Op(b')') => inner = inner.saturating_sub(1),
                    _ => {}
                }
                j += 1;
            }
            if let Some(statements) = parse_import(code, &tokens[i..j])
                .as_ref()
                .and_then(replacement)
            {
                let stop = tokens[j - 1].2;
                let newlines = code[start..stop].matches('\n').count();
                edits.push((start, stop, join_padded(&statements, newlines)));
            }
            statement_start = false;
            i = j;
            continue;
        }
        statement_start = match token {
            Token::Newline => true,
            Token::Op(b';' | b':') => depth == 0,
            _ => false,
        };
        match token {
            Token::Op(b'(' | b'[' | b'{') => depth += 1,
            Token::Op(b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(code.len() + 64 * edits.len());
    let mut copied = 0;
    for (start, stop, text) in edits {
        out.push_str(&code[copied..start]);
        out.push_str(&text);
        copied = stop;
    }
    out.push_str(&code[copied..]);
    Some(out)
}

/// Joins statements with `; `, putting `newlines` newlines before the closing parenthesis of the
/// first statement that ends with one (every replacement has one: an assignment or a `raise`).
fn join_padded(statements: &[String], newlines: usize) -> String {
    let mut padded = statements.to_vec();
    if newlines > 0
        && let Some(first) = padded.iter_mut().find(|s| s.ends_with(')'))
    {
        first.insert_str(first.len() - 1, &"\n".repeat(newlines));
    }
    padded.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_every_import_form_and_nothing_else() {
        let m = MODULE_GLOBAL;
        let cases = [
            ("import random", format!("random = ({m})")),
            ("import random as r", format!("r = ({m})")),
            (
                "import math, random, json as j",
                format!("import math; random = ({m}); import json as j"),
            ),
            (
                "from random import randint, choice as pick",
                format!("randint = ({m}.randint); pick = ({m}.choice)"),
            ),
            (
                "from random import (\n    randint,\n    shuffle,\n)\nx = 1",
                format!("randint = ({m}.randint\n\n\n); shuffle = ({m}.shuffle)\nx = 1"),
            ),
            (
                "import math, \\\n  random",
                format!("import math; random = ({m}\n)"),
            ),
            (
                "def f():\n    import random\n    return random.random()",
                format!("def f():\n    random = ({m})\n    return random.random()"),
            ),
            (
                "if True: import random; x = 1",
                format!("if True: random = ({m}); x = 1"),
            ),
            (
                "from random import Random",
                "raise ImportError(\"cannot import name 'Random' from 'random' (unknown location)\")"
                    .to_string(),
            ),
        ];
        for (code, expected) in cases {
            assert_eq!(
                rewrite_imports(code).as_deref(),
                Some(expected.as_str()),
                "{code}"
            );
        }
        let star = rewrite_imports("from random import *").unwrap();
        assert!(star.starts_with(&format!("seed = ({m}.seed); ")), "{star}");
        for untouched in [
            "import math",
            "s = 'import random'",
            "x = \"\"\"\nimport random\n\"\"\"",
            "# import random",
            "import random.shuffle",
            "from .random import x",
            "from randomness import x",
            "import randomness",
            "randomly = 1",
            "x = [import_ for import_ in random]",
            "print(f'{1}import random')",
        ] {
            assert_eq!(rewrite_imports(untouched), None, "{untouched}");
        }
    }

    #[test]
    fn streams_depend_on_the_seed_only() {
        let draw = |rng: &mut PyRandom| (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>();
        let mut a = PyRandom::new(3);
        let mut b = PyRandom::new(3);
        assert_eq!(draw(&mut a), draw(&mut b));
        assert_ne!(draw(&mut PyRandom::new(4)), draw(&mut PyRandom::new(3)));
        // seed(n) seeds like seed(-n) and seed(float(n)); a str like its UTF-8 bytes.
        let seeded = |value: MontyObject| {
            let mut rng = PyRandom::new(0);
            rng.reseed(Some(&value)).unwrap();
            draw(&mut rng)
        };
        assert_eq!(seeded(MontyObject::Int(5)), seeded(MontyObject::Int(-5)));
        assert_eq!(seeded(MontyObject::Int(5)), seeded(MontyObject::Float(5.0)));
        assert_ne!(seeded(MontyObject::Int(5)), seeded(MontyObject::Int(6)));
        assert_eq!(
            seeded(MontyObject::String("ab".into())),
            seeded(MontyObject::Bytes(b"ab".to_vec()))
        );
        let mut rng = PyRandom::new(9);
        let first = draw(&mut rng);
        rng.reseed(None).unwrap();
        assert_eq!(
            draw(&mut rng),
            first,
            "seed() restarts the episode's stream"
        );
    }

    #[test]
    fn below_is_uniform_and_in_range() {
        let mut rng = PyRandom::new(1);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below_u64(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
        let big = BigUint::from(10u32).pow(40);
        for _ in 0..100 {
            assert!(rng.below(&big) < big);
        }
        assert_eq!(rng.bits(0), BigUint::zero());
        assert!(rng.bits(70).bits() <= 70);
        let sample = rng.sample(10, 10);
        let mut sorted = sample.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
}
