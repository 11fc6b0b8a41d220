"""Exception classes raised by sandgym; each carries ``kind`` (the stable ``error_kind`` code)."""

from __future__ import annotations


class SandgymError(Exception):
    """Base class of every sandgym error."""

    kind: str = "sandbox"
    stderr: str = ""


# --- loading envs ---
class UnknownEnvError(SandgymError, KeyError):
    """Raised when an env id is not registered and is not a path to a ``.wasm`` file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidModuleError(SandgymError, ValueError):
    """Raised when a module is not valid wasm or lacks the sandgym ABI exports."""


class ForbiddenImportError(InvalidModuleError):
    """Raised when a module imports anything outside WASI preview 1."""


class AbiMismatchError(InvalidModuleError):
    """Raised when a module speaks another ABI version than the host."""


# --- guest faults (the instance is replaced at the next reset) ---
class GuestError(SandgymError):
    """Raised when a guest fails during a call; ``stderr`` holds what it printed."""


class OutOfFuelError(GuestError):
    """Raised when a guest call exceeds its fuel budget."""


class DeadlineError(GuestError, TimeoutError):
    """Raised when a guest call exceeds its wall-clock deadline."""


class MemoryLimitError(GuestError, MemoryError):
    """Raised when a guest grows its memory beyond the cap."""


class StackOverflowError(GuestError):
    """Raised when a guest overflows its stack."""


class GuestTrapError(GuestError):
    """Raised when a guest panics or traps."""


class GuestExitError(GuestError):
    """Raised when a guest calls ``proc_exit``."""


class ForbiddenCallError(GuestError):
    """Raised when a guest calls a WASI function the sandbox does not grant (clock, files, ...)."""


class MalformedOutputError(GuestError):
    """Raised when a guest returns output that is not bounded, valid JSON of the ABI."""


# --- using envs ---
class RejectedError(SandgymError, ValueError):
    """Raised when an env rejects a configuration or a task, with its reason."""


class ResetNeededError(SandgymError, RuntimeError):
    """Raised when ``step`` is called on an env whose episode has ended (or never started)."""


class InvalidArgumentError(SandgymError, ValueError):
    """Raised when an argument is invalid (bad JSON, wrong batch length, ...)."""


class PolicyError(SandgymError):
    """Raised when a policy fails to produce an action."""


class PoolExhaustedError(SandgymError, RuntimeError):
    """Raised when more envs are alive than the sandbox pool holds (``SANDGYM_POOL_SLOTS``)."""


class ResourceExhaustedError(SandgymError, MemoryError):
    """Raised when the OS refuses what a new instance needs.

    That is address space under ``ulimit -v`` (``RLIMIT_AS``), or memory. The module is fine; run fewer envs
    at once or raise the limit.
    """


class SandgymIOError(SandgymError, OSError):
    """Raised when reading or writing a file fails."""


class StorageError(SandgymError):
    """Raised when Parquet data cannot be written or read back."""


class SandboxError(SandgymError, RuntimeError):
    """Raised when the sandbox itself fails (engine set-up, internal errors)."""


__all__ = [
    name for name, value in dict(globals()).items() if isinstance(value, type) and issubclass(value, SandgymError)
]
