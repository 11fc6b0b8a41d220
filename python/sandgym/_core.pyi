"""Type stubs of the compiled extension ``sandgym._core`` (the Rust core's thin pyo3 layer)."""

from typing import Any, final

__all__ = [
    "__version__",
    "ABI_VERSION",
    "Env",
    "VecEnv",
    "Snapshot",
    "ArrowTable",
    "list_envs",
    "bundled_env_ids",
    "parse_action_text",
    "render_tool_call",
    "render_user_turn",
    "collect_episodes",
    "read_trajectories",
    "read_tasks",
    "early_experience",
    "build_reflection_sft",
    "read_reflections",
    "export_trajectories",
    "compute_advantages",
    "_error_classes",
    "_engine_info",
    "cli_main",
]

__version__: str
ABI_VERSION: int

@final
class Snapshot:
    """A copy of an env's state (guest memory, globals, host state)."""

    @property
    def memory_bytes(self) -> int:
        """Bytes of guest memory held."""

@final
class Env:
    """One sandboxed environment (low level; ``sandgym.make`` wraps it)."""

    def __new__(
        cls,
        env_id: str,
        config: str | None = None,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
    ) -> Env: ...
    @property
    def id(self) -> str:
        """The canonical env id or the path."""
    @property
    def info(self) -> dict[str, Any]:
        """Static description: name, version, tools, capabilities, default config."""
    @property
    def memory_bytes(self) -> int:
        """Current guest memory in bytes."""
    @property
    def running(self) -> bool:
        """Whether an episode is in progress."""
    @property
    def awaits_user(self) -> bool:
        """Whether the env waits for the simulated user's reply (``user_step``)."""
    def reset(self, seed: int, task: str | None = None) -> dict[str, Any]:
        """Start an episode; ``task`` is JSON text. Returns messages, task_id, task, info."""
    def step(self, action: dict[str, Any] | str) -> dict[str, Any]:
        """Apply an action in the OpenAI shape: a dict or its JSON text."""
    def step_text(self, text: str) -> dict[str, Any]:
        """Parse model text and apply it; the result carries the parsed ``action``."""
    def user_step(self, content: str) -> dict[str, Any]:
        """Send the simulated user's reply text when the last output carried a ``user_turn``."""
    def play_user(self, policy: object, turn: dict[str, Any], seed: int, index: int) -> dict[str, Any]:
        """Let ``policy`` (a policy, or a function from the user's view to its reply) answer the user ``turn``."""
    def expert(self) -> dict[str, Any] | None:
        """The expert's next action."""
    def actions(self) -> list[dict[str, Any]]:
        """Admissible actions in the current state."""
    def snapshot(self) -> Snapshot:
        """Copy the state."""
    def restore(self, snapshot: Snapshot) -> None:
        """Rewind to a snapshot."""
    def fork(self) -> Env:
        """An independent copy in the same state."""

@final
class VecEnv:
    """N envs stepped in parallel with the GIL released."""

    def __new__(
        cls,
        env_id: str,
        n: int,
        config: str | None = None,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
    ) -> VecEnv: ...
    def __len__(self) -> int: ...
    @property
    def id(self) -> str:
        """The env id."""
    @property
    def info(self) -> dict[str, Any]:
        """Static description of the env."""
    def reset(self, seeds: list[int], tasks: list[str | None] | None = None) -> list[dict[str, Any]]:
        """Reset every env."""
    def step(self, actions: list[dict[str, Any] | str]) -> list[dict[str, Any]]:
        """Step with OpenAI-shape actions (dicts or their JSON text)."""
    def step_text(self, texts: list[str]) -> list[dict[str, Any]]:
        """Step with model text, parsed per env."""
    def apply(
        self,
        actions: list[dict[str, Any] | str | None],
        resets: list[tuple[int, str | None] | None] | None = None,
        with_actions: bool = False,
    ) -> list[dict[str, Any] | None]:
        """One batch: slot ``i`` reset with ``resets[i]``, else stepped with ``actions[i]``, else left alone."""
    def run_steps(self, action: dict[str, Any] | str, rounds: int) -> int:
        """Step all envs ``rounds`` times in Rust with auto-reset; returns the step count."""

@final
class ArrowTable:
    """Record batches in Rust memory, exported zero-copy through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int:
        """Number of rows."""
    @property
    def column_names(self) -> list[str]:
        """Column names."""
    def __len__(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """An ``arrow_array_stream`` capsule."""
    def __arrow_c_schema__(self) -> object:
        """An ``arrow_schema`` capsule."""

def bundled_env_ids() -> list[str]:
    """The bundled env ids (``countdown-v0``, ...), without loading any env."""

def list_envs() -> list[dict[str, Any]]:
    """Every bundled env as ``{"id", "info"}``."""

def parse_action_text(text: str, parser: str = "auto", tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Parse model text into an action dict with the named parser; ``tools`` are the env's schemas."""

def render_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """One call of tool ``name`` as model text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""

def render_user_turn(messages: list[dict[str, Any]]) -> str:
    """An env's messages as one user turn: tool results as ``<tool_response>`` blocks, one per line."""

def collect_episodes(
    config: str,
    policy: object | None = None,
    user_policy: object | None = None,
) -> tuple[dict[str, Any], ArrowTable | None]:
    """Run the collection a ``CollectConfig`` (JSON text) describes: the summary and, without ``out_dir``, rows."""

def read_trajectories(path: str) -> ArrowTable:
    """Read sandgym Parquet back, checking the schema."""

def read_tasks(path: str, split: str | None = None, split_file: str | None = None) -> list[Any]:
    """Read tasks from a JSONL or JSON-array file, optionally one split of a split file."""

def early_experience(config: str) -> dict[str, Any]:
    """Run the early-experience pipeline an ``EarlyConfig`` (JSON text) describes; returns its figures."""

def read_reflections(path: str) -> list[tuple[str, str]]:
    """Read filled reflections (JSONL or Parquet ``id``/``reflection`` columns) as (id, reflection) pairs."""

def build_reflection_sft(
    prompts: str,
    reflections: list[tuple[str, str]],
    out_dir: str,
    label_leak: bool = False,
    outcome_leak: bool = False,
    duplicated: bool = False,
    concluded_action: bool = False,
) -> dict[str, Any]:
    """Build reflection SFT rows from prompts and (id, reflection) pairs; returns counts and files."""

def export_trajectories(
    path: str,
    to: str,
    out: str,
    group_by: str = "group",
    advantage: str | None = None,
    reward: str = "env",
    overlong: tuple[int, int, float] | None = None,
    success_only: bool = False,
    include_errors: bool = False,
    drop_zero_variance: bool = False,
    pass_rates: str | None = None,
    drop_pass_rate: float = 0.9,
    split: str = "train",
    data_source_prefix: str = "sandgym/",
    env_class: str = "sandgym",
) -> dict[str, Any]:
    """Write a trainer dataset from trajectories; returns the export's figures."""

def compute_advantages(
    path: str,
    estimator: str = "grpo",
    reward: str = "env",
    overlong: tuple[int, int, float] | None = None,
    group_by: str = "group",
    drop_zero_variance: bool = False,
) -> ArrowTable:
    """Read trajectories and recompute ``shaped_reward`` and ``advantage``."""

def cli_main(argv: list[str]) -> int:
    """Run the ``sandgym`` command line."""

def _error_classes() -> list[tuple[str, str]]: ...
def _engine_info() -> dict[str, Any]:
    """How guest memories are laid out in this process.

    Keys: ``allocator`` (``"pooling"`` or ``"on_demand"``), ``pool_slots``, ``memory_reservation`` and
    ``bytes_per_instance`` (bytes of address space), ``address_space_limit`` (``RLIMIT_AS`` in bytes, ``None``
    when unlimited), ``bounds_checks_elided``.
    """
