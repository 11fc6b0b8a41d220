//! A deliberately hostile guest for the host's fault-containment tests. It implements ABI v1 and
//! behaves like a trivial env (`noop` tool; any step terminates with reward 1) until told to misbehave.
//!
//! The misbehaviour is chosen by the task given to reset, `{"mode": "<mode>", "bytes": N}` (`bytes`
//! optional, used by `bigout`/`bigprint`), and happens on the next `sandgym_step`; reset itself
//! behaves. Generating a task (no task given) gives mode `ok`. Modes:
//!
//! | mode          | what `step` does                                                              |
//! |---------------|-------------------------------------------------------------------------------|
//! | `ok`          | behaves: terminates with reward 1, success                                    |
//! | `loop`        | spins forever (a volatile read, so the optimizer keeps the loop)              |
//! | `membomb`     | allocates and touches 1 MiB blocks forever, until the memory cap stops it     |
//! | `recursion`   | recurses without bound (frames kept alive by `black_box`): stack exhaustion    |
//! | `panic`       | `panic!("hostile guest panicked on purpose")` (message on stderr, then a trap)|
//! | `clock`       | calls `SystemTime::now()` (WASI `clock_time_get`), then behaves if not trapped|
//! | `exit`        | `std::process::exit(3)` (WASI `proc_exit`)                                    |
//! | `stdout`      | prints "hello from hostile" to stdout and to stderr, then behaves             |
//! | `bigprint`    | prints `bytes` (default 10 MiB) to stdout and to stderr, then behaves         |
//! | `bigout`      | returns a valid step envelope whose message holds `bytes` (default 64 MiB)    |
//! | `badjson`     | returns bytes that are not JSON                                               |
//! | `badutf8`     | returns JSON-shaped bytes with invalid UTF-8 inside a string                   |
//! | `badptr`      | returns a (pointer, length) that runs past the end of linear memory           |
//! | `badptr_wrap` | returns a pointer near 4 GiB whose pointer + length overflows 32 bits         |
//! | `reset_loop`  | (task only) spins forever inside `reset`                                      |
//!
//! Config `{"mode_on_reset": "<mode>"}` runs any of the modes (except `reset_loop`) inside every reset
//! instead, and `{"mode_on_configure": "<mode>"}` inside configure itself; config `bytes` sizes them.
//! Modes from `bigout` down act at the export boundary, so the exports are written by hand here
//! instead of by `export_env!` (same names and calling convention); the env records the fault and the
//! export returns the bad output in place of the real one.

use std::io::Write;

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, StepOutput, Value, function_tool, json,
    reject_unknown_keys,
};

pub const NAME: &str = "hostile";
pub const VERSION: u32 = 0;
const DEFAULT_BIGOUT: usize = 64 << 20;
const DEFAULT_BIGPRINT: usize = 10 << 20;
const MAX_BYTES: i64 = 1 << 30;

/// One way to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Loop,
    Membomb,
    Recursion,
    Panic,
    Clock,
    Exit,
    Stdout,
    Bigprint,
    Bigout,
    Badjson,
    Badutf8,
    Badptr,
    BadptrWrap,
    ResetLoop,
}

impl Mode {
    pub const ALL: [(&str, Mode); 15] = [
        ("ok", Mode::Ok),
        ("loop", Mode::Loop),
        ("membomb", Mode::Membomb),
        ("recursion", Mode::Recursion),
        ("panic", Mode::Panic),
        ("clock", Mode::Clock),
        ("exit", Mode::Exit),
        ("stdout", Mode::Stdout),
        ("bigprint", Mode::Bigprint),
        ("bigout", Mode::Bigout),
        ("badjson", Mode::Badjson),
        ("badutf8", Mode::Badutf8),
        ("badptr", Mode::Badptr),
        ("badptr_wrap", Mode::BadptrWrap),
        ("reset_loop", Mode::ResetLoop),
    ];

    pub fn name(self) -> &'static str {
        Mode::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .expect("every mode is listed")
    }

    fn parse(value: &Value, what: &str) -> Result<Mode, String> {
        let known = || {
            Mode::ALL
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = value
            .as_str()
            .ok_or_else(|| format!("{what} must be a string, got {value}"))?;
        Mode::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("{what} is unknown mode {name:?} (known: {})", known()))
    }

    /// Modes that corrupt the export's return value rather than misbehave inside the env.
    pub fn acts_at_export(self) -> bool {
        matches!(
            self,
            Mode::Bigout | Mode::Badjson | Mode::Badutf8 | Mode::Badptr | Mode::BadptrWrap
        )
    }
}

/// Where a fault was armed; shapes the `bigout` payload like that export's real output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Configure,
    Reset,
    Step,
}

/// A fault for the export to commit in place of returning the real output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub mode: Mode,
    pub phase: Phase,
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Hostile {
    mode: Mode,
    bytes: Option<usize>,
    mode_on_reset: Option<Mode>,
    config_bytes: Option<usize>,
    fault: Option<Fault>,
    active: bool,
}

impl Default for Hostile {
    fn default() -> Self {
        Hostile {
            mode: Mode::Ok,
            bytes: None,
            mode_on_reset: None,
            config_bytes: None,
            fault: None,
            active: false,
        }
    }
}

fn bytes_field(value: Option<&Value>, what: &str) -> Result<Option<usize>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|n| (1..=MAX_BYTES).contains(n))
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("{what} must be an integer in 1..={MAX_BYTES}, got {v}")),
    }
}

impl Hostile {
    /// The fault armed by the last call, if any; the export commits it.
    pub fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    /// Misbehaves as `mode` says, in `phase`. Env-level modes act here (most never return); the
    /// export-level ones are recorded for the export.
    fn misbehave(&mut self, mode: Mode, phase: Phase, bytes: Option<usize>) {
        match mode {
            Mode::Ok => {}
            Mode::Loop | Mode::ResetLoop => spin(),
            Mode::Membomb => membomb(),
            Mode::Recursion => {
                std::hint::black_box(dive(0));
            }
            Mode::Panic => panic!("hostile guest panicked on purpose"),
            Mode::Clock => {
                std::hint::black_box(std::time::SystemTime::now());
            }
            Mode::Exit => std::process::exit(3),
            Mode::Stdout => {
                let _ = writeln!(std::io::stdout(), "hello from hostile");
                let _ = writeln!(std::io::stderr(), "hello from hostile");
            }
            Mode::Bigprint => {
                let n = bytes.unwrap_or(DEFAULT_BIGPRINT);
                flood(&mut std::io::stdout(), n);
                flood(&mut std::io::stderr(), n);
            }
            Mode::Bigout | Mode::Badjson | Mode::Badutf8 | Mode::Badptr | Mode::BadptrWrap => {
                self.fault = Some(Fault {
                    mode,
                    phase,
                    bytes: bytes.unwrap_or(DEFAULT_BIGOUT),
                });
            }
        }
    }
}

/// Spins forever: the volatile read of a flag nothing sets keeps the loop from being optimized out.
fn spin() {
    static STOP: u8 = 0;
    // SAFETY: reading a valid, aligned static.
    while unsafe { std::ptr::read_volatile(&raw const STOP) } == 0 {}
}

fn membomb() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // `vec![1; n]` writes every byte, so the pages are really used, not just reserved.
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// Recurses without bound; the array keeps every frame on the (shadow) stack and the use after the
/// call rules out tail calls.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let below = dive(std::hint::black_box(depth + 1));
    below.wrapping_add(frame[(depth % 32) as usize])
}

fn flood(out: &mut impl Write, n: usize) {
    // On the heap: the guest's whole shadow stack is 64 KiB.
    let chunk = vec![b'x'; 65536];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        // A host that caps captured output may fail the write; keep going like a careless guest.
        let _ = out.write_all(&chunk[..k]);
        left -= k;
    }
    let _ = out.flush();
}

/// The `bigout` payload: a valid envelope for `phase` whose one message holds `n` bytes of text,
/// built in a single buffer so the guest needs about `n` bytes of memory, not twice that.
pub fn big_output(phase: Phase, n: usize) -> Vec<u8> {
    let (head, tail): (&[u8], &[u8]) = match phase {
        Phase::Configure => (b"{\"err\":\"", b"\"}"),
        Phase::Reset => (
            b"{\"ok\":{\"messages\":[{\"role\":\"user\",\"content\":\"",
            b"\"}],\"task_id\":\"hostile-bigout\",\"task\":{\"mode\":\"ok\"},\"info\":{}}}",
        ),
        Phase::Step => (
            b"{\"ok\":{\"messages\":[{\"role\":\"user\",\"content\":\"",
            b"\"}],\"reward\":1.0,\"terminated\":true,\"truncated\":false,\"success\":true,\"info\":{}}}",
        ),
    };
    let mut out = Vec::with_capacity(head.len() + n + tail.len());
    out.extend_from_slice(head);
    out.resize(head.len() + n, b'x');
    out.extend_from_slice(tail);
    out
}

/// Not JSON at all.
pub const BAD_JSON: &[u8] = b"{\"ok\": {\"messages\": [this is not json";
/// Well-formed JSON except for invalid UTF-8 (a lone continuation byte and an overlong encoding)
/// inside a string.
pub const BAD_UTF8: &[u8] =
    b"{\"ok\":{\"messages\":[{\"role\":\"user\",\"content\":\"\x80\xc0\xaf\xff\"}],\"reward\":1.0,\
\"terminated\":true,\"truncated\":false,\"success\":true,\"info\":{}}}";

impl sandgym_sdk::Env for Hostile {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "Misbehaves on purpose (task field `mode`) to test the host's fault \
                          containment."
                .to_string(),
            system_prompt: "A test env. Call noop.".to_string(),
            tools: vec![function_tool("noop", "Does nothing.", &[])],
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: json!({"mode_on_reset": null, "mode_on_configure": null, "bytes": null}),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        reject_unknown_keys(config, &["mode_on_reset", "mode_on_configure", "bytes"])?;
        let get = |key: &str| config.get(key).filter(|v| !v.is_null());
        self.config_bytes = bytes_field(get("bytes"), "config `bytes`")?;
        self.mode_on_reset = get("mode_on_reset")
            .map(|v| Mode::parse(v, "config `mode_on_reset`"))
            .transpose()?;
        if self.mode_on_reset == Some(Mode::ResetLoop) {
            return Err("config `mode_on_reset` takes \"loop\", not \"reset_loop\"".to_string());
        }
        if let Some(value) = get("mode_on_configure") {
            let mode = Mode::parse(value, "config `mode_on_configure`")?;
            self.misbehave(mode, Phase::Configure, self.config_bytes);
        }
        Ok(())
    }

    fn reset(&mut self, _seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.active = false;
        self.fault = None;
        let (mode, bytes) = match &task {
            None => (Mode::Ok, None),
            Some(Value::Object(map)) => {
                if let Some(key) = map
                    .keys()
                    .find(|k| !["mode", "bytes"].contains(&k.as_str()))
                {
                    return Err(format!(
                        "task has unknown field `{key}` (known: mode, bytes)"
                    ));
                }
                let mode = match map.get("mode") {
                    Some(v) => Mode::parse(v, "task field `mode`")?,
                    None => return Err("task field `mode` is missing".to_string()),
                };
                (mode, bytes_field(map.get("bytes"), "task field `bytes`")?)
            }
            Some(other) => return Err(format!("task must be a JSON object, got {other}")),
        };
        if mode == Mode::ResetLoop {
            spin();
        }
        if let Some(on_reset) = self.mode_on_reset {
            self.misbehave(on_reset, Phase::Reset, self.config_bytes);
        }
        self.mode = mode;
        self.bytes = bytes;
        self.active = true;
        let mut task = json!({"mode": mode.name()});
        if let Some(n) = bytes {
            task["bytes"] = json!(n);
        }
        Ok(ResetOutput {
            messages: vec![
                Message::system("A test env. Call noop."),
                Message::user(format!("Mode: {}. Call noop.", mode.name())),
            ],
            task_id: format!("{NAME}-{}", mode.name()),
            task,
            info: json!({}),
            user_turn: None,
        })
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        if !self.active {
            return sandgym_sdk::episode_over(action);
        }
        self.misbehave(self.mode, Phase::Step, self.bytes);
        self.active = false;
        let messages = if action.tool_calls.is_empty() {
            vec![Message::user("ok")]
        } else {
            action
                .tool_calls
                .iter()
                .map(|call| Message::tool(call, "ok"))
                .collect()
        };
        StepOutput {
            messages,
            reward: 1.0,
            terminated: true,
            truncated: false,
            success: true,
            info: json!({"mode": self.mode.name()}),
            user_turn: None,
        }
    }

    fn expert(&mut self) -> Option<Action> {
        self.active.then(|| Action::tool("noop", &json!({})))
    }

    fn actions(&mut self) -> Vec<Action> {
        self.expert().into_iter().collect()
    }
}

/// The exports of `export_env!`, by hand, so export-level faults can replace the real output.
#[cfg(target_arch = "wasm32")]
mod exports {
    use std::cell::RefCell;

    use sandgym_sdk::Host;

    use super::{BAD_JSON, BAD_UTF8, Fault, Hostile, Mode, big_output};

    thread_local! {
        static HOST: RefCell<Host<Hostile>> = RefCell::new(Host::default());
        /// Keeps a `bigout` payload alive until the next call, like the SDK's output buffer.
        static BIG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    fn output(bytes: &[u8]) -> i64 {
        sandgym_sdk::__private::pack(bytes.as_ptr() as u32, bytes.len() as u32)
    }

    /// Returns the real output unless the call armed a fault.
    fn finish(host: &mut Host<Hostile>, real: i64) -> i64 {
        let Some(Fault { mode, phase, bytes }) = host.env_mut().take_fault() else {
            return real;
        };
        match mode {
            Mode::Badjson => output(BAD_JSON),
            Mode::Badutf8 => output(BAD_UTF8),
            Mode::Badptr => {
                let end = core::arch::wasm32::memory_size(0) * 65536;
                sandgym_sdk::__private::pack((end - 8) as u32, 4096)
            }
            Mode::BadptrWrap => sandgym_sdk::__private::pack(u32::MAX - 15, 64),
            _ => BIG.with_borrow_mut(|big| {
                *big = big_output(phase, bytes);
                output(big)
            }),
        }
    }

    fn input(ptr: i32, len: i32) -> Vec<u8> {
        if len <= 0 {
            return Vec::new();
        }
        // SAFETY: the host obtained `ptr` from `sandgym_alloc(len)` and filled `len` bytes;
        // ownership passes back to the guest here, exactly once per call (docs/abi.md).
        unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) }
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_abi_version() -> i32 {
        sandgym_sdk::ABI_VERSION as i32
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_alloc(len: i32) -> i32 {
        let mut buf = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len.max(0) as usize));
        buf.as_mut_ptr() as i32
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_dealloc(ptr: i32, len: i32) {
        drop(input(ptr, len));
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_info() -> i64 {
        HOST.with_borrow_mut(|h| output(h.info()))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_configure(ptr: i32, len: i32) -> i64 {
        let bytes = input(ptr, len);
        HOST.with_borrow_mut(|h| {
            let real = output(h.configure(&bytes));
            finish(h, real)
        })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_reset(ptr: i32, len: i32) -> i64 {
        let bytes = input(ptr, len);
        HOST.with_borrow_mut(|h| {
            let real = output(h.reset(&bytes));
            finish(h, real)
        })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_step(ptr: i32, len: i32) -> i64 {
        let bytes = input(ptr, len);
        HOST.with_borrow_mut(|h| {
            let real = output(h.step(&bytes));
            finish(h, real)
        })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_expert() -> i64 {
        HOST.with_borrow_mut(|h| output(h.expert()))
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn sandgym_actions() -> i64 {
        HOST.with_borrow_mut(|h| output(h.actions()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_sdk::{Env, Envelope, Host};

    #[test]
    fn ok_mode_behaves_and_is_the_generated_default() {
        let mut env = Hostile::default();
        let out = env.reset(3, None).unwrap();
        assert_eq!(out.task, json!({"mode": "ok"}));
        let action = env.expert().unwrap();
        let step = env.step(&action);
        assert!(step.terminated && step.success && step.reward == 1.0);
        assert_eq!(env.take_fault(), None);
        assert!(
            env.step(&action).messages[0]
                .content
                .contains("episode is over")
        );
    }

    #[test]
    fn export_level_modes_arm_a_fault_instead_of_misbehaving() {
        for name in ["bigout", "badjson", "badutf8", "badptr", "badptr_wrap"] {
            let mut env = Hostile::default();
            env.reset(0, Some(json!({"mode": name, "bytes": 10})))
                .unwrap();
            assert_eq!(env.take_fault(), None, "reset behaves");
            env.step(&Action::text("go"));
            let fault = env.take_fault().unwrap();
            assert_eq!(
                (fault.mode.name(), fault.phase, fault.bytes),
                (name, Phase::Step, 10)
            );
        }
        let mut env = Hostile::default();
        env.configure(&json!({"mode_on_reset": "badjson"})).unwrap();
        env.reset(0, None).unwrap();
        assert_eq!(env.take_fault().map(|f| f.phase), Some(Phase::Reset));
        env.configure(&json!({"mode_on_configure": "bigout", "bytes": 5}))
            .unwrap();
        assert_eq!(
            env.take_fault().map(|f| (f.phase, f.bytes)),
            Some((Phase::Configure, 5))
        );
    }

    #[test]
    fn big_output_is_a_valid_envelope_of_the_requested_size() {
        let step: Envelope<StepOutput> =
            serde_json::from_slice(&big_output(Phase::Step, 1000)).unwrap();
        let Envelope::Ok(step) = step else { panic!() };
        assert_eq!(step.messages[0].content.len(), 1000);
        let reset: Envelope<ResetOutput> =
            serde_json::from_slice(&big_output(Phase::Reset, 10)).unwrap();
        assert!(matches!(reset, Envelope::Ok(_)));
        let configure: Envelope<()> =
            serde_json::from_slice(&big_output(Phase::Configure, 10)).unwrap();
        assert_eq!(configure, Envelope::Err("x".repeat(10)));
        assert!(serde_json::from_slice::<Value>(BAD_JSON).is_err());
        assert!(serde_json::from_slice::<Value>(BAD_UTF8).is_err());
        assert!(std::str::from_utf8(std::hint::black_box(BAD_UTF8)).is_err());
    }

    #[test]
    fn bad_tasks_and_configs_are_rejected() {
        let mut env = Hostile::default();
        assert!(
            env.reset(0, Some(json!({"mode": "nuke"})))
                .unwrap_err()
                .contains("`mode`")
        );
        assert!(
            env.reset(0, Some(json!({})))
                .unwrap_err()
                .contains("`mode` is missing")
        );
        assert!(
            env.reset(0, Some(json!({"mode": "ok", "x": 1})))
                .unwrap_err()
                .contains("`x`")
        );
        assert!(
            env.reset(0, Some(json!({"mode": "bigout", "bytes": 0})))
                .unwrap_err()
                .contains("`bytes`")
        );
        assert!(
            env.configure(&json!({"mode_on_reset": "reset_loop"}))
                .is_err()
        );
        assert!(env.configure(&json!({"mode": "loop"})).is_err());
        let mut host = Host::<Hostile>::default();
        let out: Envelope<()> =
            serde_json::from_slice(host.configure(b"{\"mode_on_reset\": 1}")).unwrap();
        assert!(matches!(out, Envelope::Err(e) if e.contains("must be a string")));
    }

    #[test]
    fn clock_mode_then_behaves_natively() {
        // `stdout` is left to the sandbox tests: natively it would write past the test harness capture.
        let mut env = Hostile::default();
        env.reset(0, Some(json!({"mode": "clock"}))).unwrap();
        let out = env.step(&Action::tool("noop", &json!({})));
        assert!(out.success);
    }
}
