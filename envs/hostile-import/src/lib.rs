//! A guest that imports `evil.launch_missiles` (a module the host does not provide) and calls it from
//! `step`, so the import survives optimization. Otherwise a valid trivial env: the host must refuse it
//! at load time, before any export runs, because only the allowed WASI functions may be imported.

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, StepOutput, Value, function_tool, json,
};

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "evil")]
unsafe extern "C" {
    fn launch_missiles() -> i32;
}

/// Natively there is no `evil` module; the stand-in keeps the crate testable and linkable as an rlib.
#[cfg(not(target_arch = "wasm32"))]
unsafe fn launch_missiles() -> i32 {
    0
}

#[derive(Debug, Default)]
pub struct HostileImport {
    active: bool,
}

impl sandgym_sdk::Env for HostileImport {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: "hostile_import".to_string(),
            version: 0,
            description: "Imports a non-WASI function; must be refused at load.".to_string(),
            system_prompt: "A test env. Call noop.".to_string(),
            tools: vec![function_tool("noop", "Does nothing.", &[])],
            capabilities: Capabilities {
                expert: false,
                actions: false,
                generates_tasks: true,
            },
            default_config: json!({}),
        }
    }

    fn reset(&mut self, _seed: u64, _task: Option<Value>) -> Result<ResetOutput, String> {
        self.active = true;
        Ok(ResetOutput {
            messages: vec![Message::system("A test env."), Message::user("Call noop.")],
            task_id: "hostile_import-0".to_string(),
            task: json!({}),
            info: json!({}),
            user_turn: None,
        })
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        // SAFETY: an imported host function without arguments; the host must never let it run.
        let launched = unsafe { launch_missiles() };
        self.active = false;
        StepOutput {
            messages: vec![Message::user(format!("launched: {launched}"))],
            reward: 0.0,
            terminated: true,
            truncated: false,
            success: false,
            info: json!({"calls": action.tool_calls.len()}),
            user_turn: None,
        }
    }
}

sandgym_sdk::export_env!(HostileImport);
