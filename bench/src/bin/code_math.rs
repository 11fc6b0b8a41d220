//! code-math's Python tool: sandgym (the monty interpreter inside the wasm guest) vs Python
//! subprocesses, measured in the same run on the same cells.
//!
//! - **short cells**: tool calls per second on one thread. sandgym: `Env::step` with a `python` call
//!   against a live session. Baselines: `python3 -c CELL` per call (a fresh interpreter per tool call,
//!   what SkyRL-gym-style sandboxes do), and a persistent `python3` worker fed cells over a pipe (the
//!   fastest a subprocess can be; state persists, like a Jupyter kernel).
//! - **session fork**: copying a live session that holds state (functions, a 10,000-element list and a
//!   dict). sandgym: `Env::fork`, then one cell in the copy. Baseline: a subprocess session cannot be
//!   copied, so it is rebuilt: start `python3` and replay the cells that built the state, then the cell.
//!
//! Run: `cargo run --release -p sandgym-bench --bin code_math` (add `-- --quick` for a smoke run).
//! Results are recorded in docs/benchmarks.md.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use sandgym_core::{Action, Env, EnvOptions, registry};
use serde_json::json;

/// Short cells, cycled: an assignment, arithmetic on state, a comprehension, a call, a print.
const SHORT_CELLS: [&str; 5] = [
    "x = x + 1",
    "x * 2 + 1",
    "sum(i * i for i in range(50))",
    "f(x)",
    "print('x is', x)",
];
const SETUP: &str = "x = 0\ndef f(n):\n    return n * n - 1";

/// Cells that build the state a fork copies.
const STATE_CELLS: [&str; 3] = [
    "data = list(range(10000))\nindex = {i: str(i) for i in range(2000)}",
    "def mean(xs):\n    return sum(xs) / len(xs)\nm = mean(data)",
    "evens = [v for v in data if v % 2 == 0]\nlen(evens)",
];
const AFTER_FORK_CELL: &str = "m + len(evens) + len(index)";

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn python_action(code: &str) -> Action {
    Action::tool("python", &json!({ "code": code }))
}

fn sandgym_session(cells: &[&str]) -> Env {
    let mut env = registry::make(
        "code-math",
        EnvOptions {
            config: json!({"max_turns": 100}),
            ..EnvOptions::default()
        },
    )
    .unwrap();
    env.reset(0, None).unwrap();
    for code in cells {
        run_sandgym_cell(&mut env, code);
    }
    env
}

fn run_sandgym_cell(env: &mut Env, code: &str) -> String {
    let out = env.step(&python_action(code)).unwrap();
    assert!(!out.terminated && !out.truncated);
    let text = out.messages[0].content.clone();
    assert!(!text.contains("Error"), "{code}: {text}");
    text
}

/// One tool call = one fresh interpreter running the cell (state would have to be replayed; short
/// cells here only need the setup, which is prepended).
fn python_c(code: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", &format!("{SETUP}\n{code}")])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A persistent `python3` process that execs cells sent as JSON lines and answers one line each.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

const WORKER: &str = r#"
import sys, json, io, contextlib, ast
env = {}
for line in sys.stdin:
    code = json.loads(line)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), env)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), env)
            if value is not None:
                print(repr(value))
    sys.stdout.write(json.dumps(out.getvalue()) + "\n")
    sys.stdout.flush()
"#;

impl Worker {
    fn start() -> Worker {
        let mut child = Command::new("python3")
            .args(["-u", "-c", WORKER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn run(&mut self, code: &str) -> String {
        writeln!(self.stdin, "{}", serde_json::to_string(code).unwrap()).unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).expect("the worker answers every cell")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn calls_per_second(calls: usize, mut call: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        call(i);
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (calls, subprocess_calls, repeats) = if quick {
        (200, 10, 3)
    } else {
        (5_000, 200, 21)
    };

    println!("## code-math: short cells, one thread");
    let mut env = sandgym_session(&[SETUP]);
    // Warm up (compiled module cache, first allocations).
    for code in SHORT_CELLS {
        run_sandgym_cell(&mut env, code);
    }
    // Each session lives for at most `max_turns` calls; a new episode takes over when one ends.
    let sandgym = calls_per_second(calls, |i| {
        if i % 90 == 89 {
            env.reset(0, None).unwrap();
            run_sandgym_cell(&mut env, SETUP);
        }
        run_sandgym_cell(&mut env, SHORT_CELLS[i % SHORT_CELLS.len()]);
    });
    let fresh = calls_per_second(subprocess_calls, |i| {
        python_c(SHORT_CELLS[i % SHORT_CELLS.len()]);
    });
    let mut worker = Worker::start();
    worker.run(SETUP);
    let persistent = calls_per_second(calls, |i| {
        worker.run(SHORT_CELLS[i % SHORT_CELLS.len()]);
    });
    println!("sandgym (monty in wasm, Env::step): {sandgym:>10.0} calls/s");
    println!("python3 -c per call:                 {fresh:>10.1} calls/s");
    println!("persistent python3 worker (pipe):    {persistent:>10.0} calls/s");
    println!(
        "sandgym / python3 -c: {:.0}x; sandgym / worker: {:.2}x",
        sandgym / fresh,
        sandgym / persistent
    );

    println!("\n## code-math: forking a live session (state: 10k-element list, 2k-entry dict)");
    let mut env = sandgym_session(&STATE_CELLS);
    let expected = run_sandgym_cell(&mut env.fork().unwrap(), AFTER_FORK_CELL);
    let fork_only = median(
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                let fork = env.fork().unwrap();
                let elapsed = start.elapsed();
                drop(fork);
                elapsed
            })
            .collect(),
    );
    let fork_and_cell = median(
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                let mut fork = env.fork().unwrap();
                assert_eq!(run_sandgym_cell(&mut fork, AFTER_FORK_CELL), expected);
                start.elapsed()
            })
            .collect(),
    );
    let replay = median(
        (0..repeats.min(if quick { 3 } else { 11 }))
            .map(|_| {
                let start = Instant::now();
                let mut worker = Worker::start();
                for code in STATE_CELLS {
                    worker.run(code);
                }
                assert_eq!(worker.run(AFTER_FORK_CELL).trim(), expected.trim());
                start.elapsed()
            })
            .collect(),
    );
    println!(
        "sandgym Env::fork:                      {:>9.1} µs",
        fork_only.as_secs_f64() * 1e6
    );
    println!(
        "sandgym fork + one cell:                {:>9.1} µs",
        fork_and_cell.as_secs_f64() * 1e6
    );
    println!(
        "python3 start + replay cells + the cell: {:>9.1} µs",
        replay.as_secs_f64() * 1e6
    );
    println!(
        "replay / (fork + cell): {:.0}x",
        replay.as_secs_f64() / fork_and_cell.as_secs_f64()
    );
    println!(
        "guest memory of the session: {:.1} MiB",
        env.memory_bytes() as f64 / (1 << 20) as f64
    );
}
