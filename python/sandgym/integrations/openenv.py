"""An OpenEnv-compatible server for a sandgym env: what ``sandgym serve`` runs.

It speaks OpenEnv 0.10's wire protocol, so OpenEnv's own ``GenericEnvClient`` (and its ``.sync()`` wrapper),
TRL's OpenEnv recipes and verifiers' OpenEnv taskset drive a sandboxed env unchanged:

- HTTP: ``GET /health``, ``/metadata``, ``/schema``, ``/state`` and ``POST /reset``, ``/step``, with OpenEnv's
  semantics: each HTTP request gets a fresh env (so ``/step`` over HTTP has no episode to step and says so);
- WebSocket ``/ws``: one env per connection, OpenEnv's ``reset`` / ``step`` / ``state`` / ``close`` messages and
  its ``observation`` / ``state`` / ``error`` replies. A step's action is :class:`SandgymAction` (model text,
  optionally structured tool calls) or one of OpenEnv's MCP actions (``list_tools``, ``call_tool``), so
  OpenEnv's MCP-style clients work too;
- HTTP ``POST /mcp``: OpenEnv's MCP JSON-RPC (``openenv/session/create`` / ``close``, ``tools/list``,
  ``tools/call``), what OpenEnv's ``MCPToolClient`` speaks; its WebSocket attaches with ``/ws?session_id=``.

Beyond OpenEnv, a session can ``snapshot``, ``restore`` and ``release`` snapshots of its episode and ``fork`` it:
a fork is a new session in the same state, attached to by a second WebSocket at ``/sessions/{id}/ws`` (so
``GenericEnvClient(base_url=".../sessions/{id}")`` drives it) or ``/ws?session_id={id}``. Sessions beyond
``max_sessions`` wait in a bounded queue, or get a ``CAPACITY_REACHED`` error frame with a retry hint and a
1013 close, never a silent socket. A malformed message gets an ``error`` frame and the session lives on.

This module owns the protocol mapping and session lifecycle; envs are :class:`sandgym.SandgymEnv`. It needs
starlette, pydantic, uvicorn and a WebSocket implementation for uvicorn (``websockets`` or ``wsproto``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.util
import json
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sandgym.env import SandgymEnv
from sandgym.errors import GuestError, SandgymError

T = TypeVar("T")

#: OpenEnv's ``WSErrorCode`` values, as sent in ``error`` frames (``data.code``).
INVALID_JSON = "INVALID_JSON"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
VALIDATION_ERROR = "VALIDATION_ERROR"
EXECUTION_ERROR = "EXECUTION_ERROR"
CAPACITY_REACHED = "CAPACITY_REACHED"
FACTORY_ERROR = "FACTORY_ERROR"
SESSION_ERROR = "SESSION_ERROR"

#: Over HTTP ``/mcp`` only (JSON-RPC's own code for it): a method this server does not have.
METHOD_NOT_FOUND = "METHOD_NOT_FOUND"

#: JSON-RPC error codes of the errors above, as OpenEnv's ``/mcp`` answers them (-32602: invalid params).
_JSON_RPC_CODES = {METHOD_NOT_FOUND: -32601, EXECUTION_ERROR: -32603, CAPACITY_REACHED: -32000}

#: WebSocket close code for "try again later" (RFC 6455 registry): a refused session at capacity.
CLOSE_TRY_AGAIN_LATER = 1013
#: WebSocket close code for a policy violation: attaching to a session that cannot be attached.
CLOSE_POLICY_VIOLATION = 1008

#: Frames a queued client may send before it has a session (OpenEnv's client sends one, its reset).
_MAX_QUEUED_FRAMES = 64

#: The message types a session answers: OpenEnv's four, then sandgym's.
MESSAGE_TYPES = ("reset", "step", "state", "close", "fork", "snapshot", "restore", "release")


# --- the wire models: published by /schema, and what messages are validated against ---


class ToolCall(BaseModel):
    """One structured tool call of an action."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Call id; the tool result carries it as tool_call_id")
    name: str = Field(description="Tool name, one of the env's tools (reset's observation lists them)")
    arguments: dict[str, Any] | str = Field(default_factory=dict, description="Arguments as an object or a JSON string")


class SandgymAction(BaseModel):
    """An agent turn: the model's reply text, and optionally structured tool calls beside it."""

    model_config = ConfigDict(extra="forbid", title="SandgymAction")

    message: str = Field(
        description=(
            "The model's reply. Without tool_calls, tool calls are parsed from it (Hermes <tool_call> blocks "
            "or OpenAI JSON); text with none gets a 'No tool call found' observation. With tool_calls, the "
            "text content beside them (may be empty)."
        )
    )
    tool_calls: list[ToolCall] | None = Field(default=None, description="Structured tool calls of this turn")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Additional metadata for the action")


_METADATA = (
    "The env's info (success, reason, ...). Sent as the result's top-level metadata, never inside the "
    "observation: clients that show the observation to the model (verifiers' OpenEnv taskset does) must not "
    "show it gold answers (tau's gold actions, a task exposed with expose_task)."
)


class SandgymObservation(BaseModel):
    """What a step returns: the chat messages to append to the conversation."""

    model_config = ConfigDict(extra="forbid", title="SandgymObservation")

    done: bool = Field(default=False, description="Whether the episode has ended (terminated or truncated)")
    reward: float | None = Field(default=None, description="Reward of this step")
    metadata: dict[str, Any] = Field(default_factory=dict, description=_METADATA)
    messages: list[dict[str, Any]] = Field(description="Chat messages to append (tool results, env replies)")
    terminated: bool = Field(default=False, description="The task ended (solved or failed)")
    truncated: bool = Field(default=False, description="The env's turn limit cut the episode off")


class SandgymResetObservation(BaseModel):
    """What a reset returns: the system prompt and task as chat messages, and the tools."""

    model_config = ConfigDict(extra="forbid", title="SandgymResetObservation")

    done: bool = Field(default=False, description="Always false after a reset")
    reward: float | None = Field(default=None, description="Always null after a reset")
    metadata: dict[str, Any] = Field(default_factory=dict, description=_METADATA)
    messages: list[dict[str, Any]] = Field(description="The system prompt and the task, as chat messages")
    tools: list[dict[str, Any]] = Field(description="The env's tools as OpenAI function schemas")
    task_id: str = Field(description="Id of this episode's task")
    seed: int = Field(description="The episode's seed: same seed, same episode")
    episode_id: str = Field(description="This episode's id (the reset's episode_id, or a generated one)")


class SandgymState(BaseModel):
    """A session's state: the episode's bookkeeping and the whole conversation so far."""

    model_config = ConfigDict(extra="allow", title="SandgymState")

    episode_id: str | None = Field(default=None, description="Id of the current episode")
    step_count: int = Field(default=0, ge=0, description="Steps taken in the current episode")
    env_id: str = Field(description="The sandgym env id")
    session_id: str | None = Field(default=None, description="This session's id (what a fork attaches by)")
    seed: int | None = Field(default=None, description="The current episode's seed")
    task_id: str | None = Field(default=None, description="The current episode's task id")
    done: bool = Field(default=False, description="The episode has ended")
    terminated: bool = Field(default=False, description="The task ended")
    truncated: bool = Field(default=False, description="The turn limit cut the episode off")
    total_reward: float = Field(default=0.0, description="Sum of the episode's step rewards")
    conversation: list[dict[str, Any]] = Field(default_factory=list, description="Every message of the episode")


class ResetData(BaseModel):
    """The parameters of a reset (the ``data`` of a ``reset`` message, or the body of ``POST /reset``)."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Seed of the episode")
    episode_id: str | None = Field(default=None, max_length=255, description="Custom episode identifier")
    task: Any = Field(default=None, description="Play this task (the env's task JSON) instead of a generated one")
    expose_task: bool = Field(default=False, description="Add the task (with its gold answer) to the metadata")


class StepRequest(BaseModel):
    """The body of ``POST /step`` (OpenEnv's ``StepRequest``)."""

    model_config = ConfigDict(extra="allow")

    action: dict[str, Any]
    timeout_s: float | None = Field(default=None, gt=0)
    request_id: str | None = Field(default=None, max_length=255)


class ListToolsAction(BaseModel):
    """OpenEnv's MCP ``list_tools`` action (what ``MCPToolClient.list_tools`` steps with)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["list_tools"]
    metadata: dict[str, Any] = Field(default_factory=dict)


class CallToolAction(BaseModel):
    """OpenEnv's MCP ``call_tool`` action (what ``MCPToolClient.call_tool`` steps with): one tool call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["call_tool"]
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ProtocolError(Exception):
    """A message the session cannot act on; becomes an ``error`` frame and the session lives on."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        """Error ``code`` (an OpenEnv ``WSErrorCode``), human ``message`` and extra ``data`` fields."""
        super().__init__(message)
        self.code = code
        self.extra = extra

    def data(self) -> dict[str, Any]:
        """The ``data`` of the error frame."""
        return {"message": str(self), "code": self.code, **self.extra}


def _validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as plain JSON (contexts can hold exception objects)."""
    errors: list[dict[str, Any]] = json.loads(error.json(include_url=False))
    return errors


def _invalid(what: str, error: ValidationError) -> ProtocolError:
    """A VALIDATION_ERROR naming ``what`` was invalid and the first reason."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "(root)"
    return ProtocolError(
        VALIDATION_ERROR, f"invalid {what}: {where}: {first.get('msg')}", errors=_validation_errors(error)
    )


def _execution_error(error: Exception) -> ProtocolError:
    """An env exception as an EXECUTION_ERROR carrying the sandgym error kind."""
    message = str(error)
    if isinstance(error, GuestError):
        message += " (the env's instance is replaced at the next reset)"
    kind = error.kind if isinstance(error, SandgymError) else "internal"
    return ProtocolError(EXECUTION_ERROR, message, kind=kind, error=type(error).__name__)


def _observation_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of what travels as ``observation``: the model without ``metadata`` (see ``_METADATA``)."""
    schema = model.model_json_schema()
    schema["properties"].pop("metadata", None)
    return schema


def _observation_payload(observation: SandgymObservation | SandgymResetObservation) -> dict[str, Any]:
    """An observation as OpenEnv's ``serialize_observation`` lays it out (reward and done beside it)."""
    # OpenEnv also copies the metadata into the observation; here it stays beside it (see _METADATA), where
    # GenericEnvClient (StepResult.metadata) and MCPToolClient read it first.
    body = observation.model_dump(exclude={"reward", "done", "metadata"})
    payload: dict[str, Any] = {"observation": body, "reward": observation.reward, "done": observation.done}
    if observation.metadata:
        payload["metadata"] = observation.metadata
    return payload


# --- sessions ---


@dataclass
class _Saved:
    """A snapshot and the session bookkeeping that goes with it (the guest does not hold the conversation)."""

    snapshot: Any
    conversation: list[dict[str, Any]]
    bookkeeping: dict[str, Any]


@dataclass
class Session:
    """One live env and its episode bookkeeping; a WebSocket connection drives at most one at a time."""

    id: str
    env: SandgymEnv
    episode_id: str | None = None
    step_count: int = 0
    seed: int | None = None
    task_id: str | None = None
    terminated: bool = False
    truncated: bool = False
    total_reward: float = 0.0
    snapshots: dict[str, _Saved] = field(default_factory=dict)
    #: Whether a WebSocket is driving this session now.
    attached: bool = False
    #: The session whose ``fork`` made this one, until a WebSocket attaches to it.
    owner: str | None = None
    #: Made by ``openenv/session/create`` over HTTP ``/mcp``: it outlives its WebSockets until
    #: ``openenv/session/close`` (or the idle timeout), as in OpenEnv.
    http_owned: bool = False
    #: ``openenv/session/close`` arrived while a WebSocket was attached: end it when that socket closes.
    close_pending: bool = False
    #: When the session last did anything (``time.monotonic()``), for the idle timeout of HTTP sessions.
    last_active: float = field(default_factory=time.monotonic)
    #: One call at a time: a WebSocket and HTTP ``/mcp`` may both drive an HTTP-made session.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    _BOOKKEEPING = ("episode_id", "step_count", "seed", "task_id", "terminated", "truncated", "total_reward")

    def state(self) -> SandgymState:
        """The session's state (OpenEnv's ``state``)."""
        return SandgymState(
            episode_id=self.episode_id,
            step_count=self.step_count,
            env_id=self.env.id,
            session_id=self.id,
            seed=self.seed,
            task_id=self.task_id,
            done=self.terminated or self.truncated,
            terminated=self.terminated,
            truncated=self.truncated,
            total_reward=self.total_reward,
            conversation=list(self.env.conversation),
        )

    def reset(self, data: ResetData) -> SandgymResetObservation:
        """Start an episode."""
        options: dict[str, Any] = {"expose_task": data.expose_task}
        if data.task is not None:
            options["task"] = data.task
        messages, info = self.env.reset(seed=data.seed, options=options)
        info = dict(info)
        tools = info.pop("tools", self.env.tools)
        task_id = str(info.pop("task_id"))
        seed = int(info.pop("seed"))
        self.episode_id = data.episode_id or uuid.uuid4().hex
        self.step_count, self.seed, self.task_id = 0, seed, task_id
        self.terminated = self.truncated = False
        self.total_reward = 0.0
        return SandgymResetObservation(
            messages=messages, tools=tools, task_id=task_id, seed=seed, episode_id=self.episode_id, metadata=info
        )

    def step(self, action: SandgymAction) -> SandgymObservation:
        """Apply one agent turn."""
        if self.episode_id is None:
            raise ProtocolError(SESSION_ERROR, "no episode in this session: send a reset message first")
        if action.tool_calls is None:
            out = self.env.step(action.message)
        else:
            calls = [call.model_dump(exclude_none=True) for call in action.tool_calls]
            out = self.env.step({"content": action.message, "tool_calls": calls})
        messages, reward, terminated, truncated, info = out
        self.step_count += 1
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        self.total_reward += float(reward)
        return SandgymObservation(
            messages=messages,
            reward=float(reward),
            done=self.terminated or self.truncated,
            terminated=self.terminated,
            truncated=self.truncated,
            metadata=dict(info),
        )

    def snapshot(self, snapshot_id: str) -> None:
        """Save the env and the bookkeeping under ``snapshot_id``."""
        saved = _Saved(
            snapshot=self.env.snapshot(),
            conversation=list(self.env.conversation),
            bookkeeping={name: getattr(self, name) for name in self._BOOKKEEPING} | {"task": self.env.task},
        )
        self.snapshots[snapshot_id] = saved

    def restore(self, snapshot_id: str) -> None:
        """Rewind to a saved snapshot (of this session, or of the session it was forked from)."""
        saved = self.snapshots[snapshot_id]
        self.env.restore(saved.snapshot)
        self.env.conversation = list(saved.conversation)
        self.env.task = saved.bookkeeping["task"]
        for name in self._BOOKKEEPING:
            setattr(self, name, saved.bookkeeping[name])

    def fork(self, session_id: str) -> Session:
        """A new session in the same state; it inherits this one's snapshots (a fork restores them too)."""
        child = Session(id=session_id, env=self.env.fork(), snapshots=dict(self.snapshots), owner=self.id)
        for name in self._BOOKKEEPING:
            setattr(child, name, getattr(self, name))
        return child


class AtCapacityError(Exception):
    """Raised when no session slot is free and the waiting queue is full (or the wait timed out)."""


class Capacity:
    """At most ``limit`` live sessions; up to ``queue_size`` more wait for a slot, first come first served."""

    def __init__(self, limit: int, queue_size: int) -> None:
        """``limit`` slots, ``queue_size`` waiters."""
        self.limit = limit
        self.queue_size = queue_size
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        """Sessions waiting for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (and nobody is queued ahead)."""
        if self.active < self.limit and not self.queued:
            self.active += 1
            return True
        return False

    async def acquire(self, timeout_s: float) -> None:
        """Take a slot, waiting in the queue up to ``timeout_s``; raises :class:`AtCapacityError`."""
        if self.try_acquire():
            return
        if self.queued >= self.queue_size:
            raise AtCapacityError(f"the waiting queue is full ({self.queue_size} sessions)")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except (asyncio.TimeoutError, asyncio.CancelledError) as error:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as the wait ended: give it back, not leak it.
                self.release()
            else:
                waiter.cancel()
            if isinstance(error, asyncio.TimeoutError):
                raise AtCapacityError(f"no session slot freed within {timeout_s:g} s in the queue") from None
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release(self) -> None:
        """Free a slot: it passes straight to the first waiter, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


# --- the server ---


@dataclass
class ServeConfig:
    """How ``sandgym serve`` runs: the env and the limits on sessions."""

    env_id: str
    config: dict[str, Any] = field(default_factory=dict)
    #: Live sessions at most (WebSocket connections and unattached forks).
    max_sessions: int = 64
    #: Connections that may wait for a slot beyond ``max_sessions``; 0 refuses them at once.
    queue_size: int = 256
    #: How long a queued connection waits before it gets the at-capacity error.
    queue_timeout_s: float = 60.0
    #: The retry hint (``retry_after_s``) of an at-capacity error.
    retry_after_s: float = 1.0
    #: Snapshots a session may hold at once (``release`` frees them).
    max_snapshots: int = 64
    #: Worker threads for env calls (None: one per session, at most 32). 0 runs them on the event loop.
    threads: int | None = None
    #: Seconds an HTTP-made session (``openenv/session/create``) may sit idle with no WebSocket attached.
    session_timeout_s: float = 600.0
    #: Who plays the simulated user in envs that have one (tau envs with ``{"mode": "user"}``): ``"expert"``
    #: answers the user's turns inside reset and step. None leaves them to the client (``info["user_turn"]``),
    #: which this protocol has no message to answer.
    user_policy: str | None = None


class OpenEnvServer:
    """Sessions of one sandgym env behind OpenEnv's HTTP and WebSocket protocol; :meth:`app` is the ASGI app."""

    def __init__(self, serve: ServeConfig) -> None:
        """Check the env loads (an unknown id or bad config fails here, not at the first connection)."""
        if serve.max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {serve.max_sessions}")
        if serve.queue_size < 0:
            raise ValueError(f"queue_size must be 0 or more, got {serve.queue_size}")
        if serve.threads is not None and serve.threads < 0:
            raise ValueError(f"threads must be 0 or more, got {serve.threads}")
        self.serve = serve
        probe = self._make_env()
        self.env_info: dict[str, Any] = probe.env_info
        self.capacity = Capacity(serve.max_sessions, serve.queue_size)
        self.sessions: dict[str, Session] = {}
        self._schemas = {
            "action": SandgymAction.model_json_schema(),
            "observation": _observation_schema(SandgymObservation),
            "state": SandgymState.model_json_schema(),
            "reset_observation": _observation_schema(SandgymResetObservation),
        }
        # Env calls run off the event loop by default (the extension releases the GIL in them): a slow guest
        # call (bounded by its deadline) must not stall every other session's socket, nor /health. The hop
        # costs more than a countdown step itself, hence threads=0 for envs whose calls take microseconds.
        workers = min(32, serve.max_sessions) if serve.threads is None else serve.threads
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandgym") if workers else None
        self._snapshot_counter = 0

    def _make_env(self) -> SandgymEnv:
        return SandgymEnv(self.serve.env_id, self.serve.config or None, user_policy=self.serve.user_policy)

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def capacity_error(self, reason: str) -> ProtocolError:
        """The CAPACITY_REACHED error: who is connected, and when to retry."""
        hint = self.serve.retry_after_s
        return ProtocolError(
            CAPACITY_REACHED,
            f"Server at capacity: {self.capacity.active}/{self.serve.max_sessions} sessions active, "
            f"{self.capacity.queued} queued; {reason}. Retry in {hint:g} s, or start the server with a "
            "larger --max-sessions / --queue.",
            active_sessions=self.capacity.active,
            max_sessions=self.serve.max_sessions,
            queued=self.capacity.queued,
            retry_after_s=hint,
        )

    # --- HTTP ---

    async def health(self, request: Request) -> JSONResponse:
        """``GET /health``: OpenEnv's ``HealthResponse``."""
        return JSONResponse({"status": "healthy"})

    async def metadata(self, request: Request) -> JSONResponse:
        """``GET /metadata``: OpenEnv's ``EnvironmentMetadata``."""
        info = self.env_info
        return JSONResponse(
            {
                "name": self.serve.env_id,
                "description": info.get("description") or f"sandgym env {self.serve.env_id}",
                "readme_content": None,
                "version": str(info.get("version")) if info.get("version") is not None else None,
                "author": "sandgym",
                "documentation_url": None,
            }
        )

    async def schema(self, request: Request) -> JSONResponse:
        """``GET /schema``: JSON schemas of the action, observations and state (OpenEnv's ``SchemaResponse``)."""
        return JSONResponse(self._schemas)

    async def http_state(self, request: Request) -> JSONResponse:
        """``GET /state``: as in OpenEnv, the state of a fresh env (HTTP requests hold no session)."""
        return JSONResponse(SandgymState(env_id=self.serve.env_id).model_dump())

    async def sessions_status(self, request: Request) -> JSONResponse:
        """``GET /sessions`` (sandgym's): live and queued sessions against the limits."""
        return JSONResponse(
            {
                "active_sessions": self.capacity.active,
                "max_sessions": self.serve.max_sessions,
                "queued": self.capacity.queued,
                "queue_size": self.serve.queue_size,
                "unattached_forks": sorted(sid for sid, s in self.sessions.items() if s.owner and not s.attached),
                "http_sessions": sorted(sid for sid, s in self.sessions.items() if s.http_owned),
            }
        )

    @staticmethod
    async def _json_body(request: Request, *, default: Any) -> Any:
        body = await request.body()
        if not body.strip():
            return default
        try:
            return json.loads(body)
        except json.JSONDecodeError as error:
            raise ProtocolError(INVALID_JSON, f"Invalid JSON body: {error}") from None

    @staticmethod
    def _http_error(status: int, error: ProtocolError) -> JSONResponse:
        return JSONResponse({"detail": error.data()}, status_code=status)

    async def http_reset(self, request: Request) -> JSONResponse:
        """``POST /reset``: a fresh env's first observation (OpenEnv's ``ResetResponse``)."""
        try:
            body = await self._json_body(request, default={})
            if not isinstance(body, dict):
                raise ProtocolError(VALIDATION_ERROR, "the reset body must be a JSON object")
            try:
                data = ResetData.model_validate(body)
            except ValidationError as error:
                return JSONResponse({"detail": _validation_errors(error)}, status_code=422)
            session = Session(id="http", env=await self._run(self._make_env))
            observation = await self._run(lambda: session.reset(data))
        except ProtocolError as error:
            return self._http_error(400, error)
        except Exception as error:
            return self._http_error(500, _execution_error(error))
        return JSONResponse(_observation_payload(observation))

    async def http_step(self, request: Request) -> JSONResponse:
        """``POST /step``: validates the action, then says why a fresh env cannot step (use ``/ws``)."""
        try:
            body = await self._json_body(request, default=None)
        except ProtocolError as error:
            return self._http_error(400, error)
        try:
            step = StepRequest.model_validate(body)
            SandgymAction.model_validate(step.action)
        except ValidationError as error:
            return JSONResponse({"detail": _validation_errors(error)}, status_code=422)
        # OpenEnv's HTTP /step steps a fresh env per request; a sandgym env has no episode before a reset,
        # so stepping one could only fail. Episodes live in WebSocket sessions.
        no_episode = ProtocolError(
            SESSION_ERROR,
            "HTTP /step has no episode to step: as in OpenEnv, every HTTP request gets a fresh env. "
            "Play episodes over the /ws WebSocket (OpenEnv's GenericEnvClient does).",
        )
        return self._http_error(409, no_episode)

    # --- HTTP /mcp: OpenEnv's JSON-RPC for MCPToolClient ---

    async def http_mcp(self, request: Request) -> JSONResponse:
        """``POST /mcp``: OpenEnv's MCP JSON-RPC, what ``MCPToolClient`` (production mode) speaks.

        ``openenv/session/create`` and ``openenv/session/close`` hold a session over HTTP (a WebSocket attaches
        to it with ``/ws?session_id=``); ``tools/list`` lists the env's tools; ``tools/call`` steps the
        session's episode with one tool call. Errors are JSON-RPC error objects with HTTP 200, as in OpenEnv.
        """
        body = await request.body()
        try:
            message = json.loads(body)
        except json.JSONDecodeError as error:
            return self._rpc_error(None, -32700, f"Parse error: {error}")
        if (
            not isinstance(message, dict)
            or message.get("jsonrpc") != "2.0"
            or not isinstance(message.get("method"), str)
        ):
            return self._rpc_error(
                None, -32600, 'Invalid request: expected {"jsonrpc": "2.0", "method": ..., "id": ...}'
            )
        request_id = message.get("id")
        params = message.get("params", {})
        if not isinstance(params, dict):
            return self._rpc_error(request_id, -32602, "Params must be an object")
        method = message["method"]
        try:
            result = await self._rpc(method, params)
        except ProtocolError as error:
            return self._rpc_error(request_id, _JSON_RPC_CODES.get(error.code, -32602), str(error), error.data())
        return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})

    @staticmethod
    def _rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> JSONResponse:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error})

    def _rpc_session(self, params: dict[str, Any]) -> Session:
        session_id = params.get("session_id")
        if not session_id:
            raise ProtocolError(
                SESSION_ERROR,
                "Invalid params - 'session_id' is required: a sandgym env has an episode only in a session "
                "(openenv/session/create, then reset over /ws?session_id=...)",
            )
        session = self.sessions.get(session_id)
        if session is None:
            raise ProtocolError(SESSION_ERROR, f"Unknown session_id: {session_id}")
        session.last_active = time.monotonic()
        return session

    async def _rpc(self, method: str, params: dict[str, Any]) -> Any:
        if method == "openenv/session/create":
            if not self.capacity.try_acquire():
                raise self.capacity_error("an HTTP session is a session too")
            try:
                env = await self._env_call(self._make_env)
            except BaseException:
                self.capacity.release()
                raise
            session = Session(id=uuid.uuid4().hex, env=env, http_owned=True)
            self.sessions[session.id] = session
            return {"session_id": session.id}
        if method == "openenv/session/close":
            session = self._rpc_session(params)
            if session.attached:
                session.close_pending = True
                return {"session_id": session.id, "closed": False, "closing": True}
            self._destroy(session)
            return {"session_id": session.id, "closed": True}
        if method == "tools/list":
            tools = self._mcp_tools()
            return {
                "tools": [
                    {"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]}
                    for t in tools
                ]
            }
        if method == "tools/call":
            name = params.get("name")
            if not isinstance(name, str) or not name:
                raise ProtocolError(VALIDATION_ERROR, "Missing 'name' in params")
            session = self._rpc_session(params)
            data = {"type": "call_tool", "tool_name": name, "arguments": params.get("arguments", {})}
            async with session.lock:
                payload = await self._mcp_step(session, data)
            observation = payload["observation"]
            text = (
                observation["result"] if isinstance(observation["result"], str) else json.dumps(observation["result"])
            )
            # MCPToolClient returns result["data"]; the rest is an MCP CallToolResult plus the step's outcome.
            return {
                "content": [{"type": "text", "text": text}],
                "isError": False,
                "data": observation["result"],
                "tool_name": name,
                "reward": payload["reward"],
                "done": payload["done"],
                "messages": observation["messages"],
                "metadata": payload.get("metadata", {}),
            }
        raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {method}")

    def _mcp_tools(self) -> list[dict[str, Any]]:
        """The env's tools as MCP tool specs (``name``, ``description``, ``input_schema``)."""
        return [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters", {}),
            }
            for tool in self.env_info["tools"]
        ]

    # --- WebSocket ---

    async def _receive_text(self, websocket: WebSocket) -> str | None:
        """The next frame as text; None when the client has gone."""
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return str(message["text"])
        raw = message.get("bytes") or b""
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            # Invalid UTF-8 cannot be JSON: let the JSON parser report it like any other bad frame.
            return "\ufffd"

    async def _send(self, websocket: WebSocket, kind: str, data: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps({"type": kind, "data": data}))

    async def _wait_for_slot(self, websocket: WebSocket) -> tuple[bool, list[str]]:
        """Wait for a session slot while watching the socket.

        Returns ``(connected, frames)``: a client that leaves the queue frees its place at once, and the frames
        it sent while queued (OpenEnv's client sends its reset straight away) are kept for the session.
        Raises :class:`AtCapacityError` when the queue is full or the wait times out.
        """
        if self.capacity.try_acquire():
            return True, []
        frames: list[str] = []
        acquire = asyncio.ensure_future(self.capacity.acquire(self.serve.queue_timeout_s))
        while True:
            receive = asyncio.ensure_future(self._receive_text(websocket))
            done, _ = await asyncio.wait({acquire, receive}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                await asyncio.gather(receive, return_exceptions=True)
                acquire.result()
                return True, frames
            frame = receive.result()
            if frame is None:
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
                if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
                    self.capacity.release()  # granted just as the client left
                return False, []
            if len(frames) >= _MAX_QUEUED_FRAMES:
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
                if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
                    self.capacity.release()
                raise AtCapacityError(f"{len(frames)} messages sent while waiting in the queue, unanswered")
            frames.append(frame)

    async def websocket(self, websocket: WebSocket) -> None:
        """``/ws`` (a new session, or ``?session_id=`` to attach to a fork) and ``/sessions/{id}/ws``."""
        await websocket.accept()
        attach_id = websocket.path_params.get("session_id") or websocket.query_params.get("session_id")
        session: Session | None = None
        pending: list[str] = []
        try:
            if attach_id:
                session = self._attach(attach_id)
            else:
                connected, pending = await self._wait_for_slot(websocket)
                if not connected:
                    return
                try:
                    env = await self._run(self._make_env)
                except Exception as error:
                    self.capacity.release()
                    raise ProtocolError(FACTORY_ERROR, f"could not make env {self.serve.env_id}: {error}") from None
                session = Session(id=uuid.uuid4().hex, env=env, attached=True)
                self.sessions[session.id] = session
            await self._serve_session(websocket, session, pending)
        except AtCapacityError as error:
            await self._refuse(websocket, self.capacity_error(str(error)), CLOSE_TRY_AGAIN_LATER)
        except ProtocolError as error:
            await self._refuse(websocket, error, CLOSE_POLICY_VIOLATION)
        except WebSocketDisconnect:
            pass
        except Exception as error:
            # A failure outside any one message (the socket, the server): say so before closing, never leave
            # the client waiting on a half-open socket.
            await self._refuse(websocket, ProtocolError(SESSION_ERROR, f"session failed: {error}"), 1011)
        finally:
            if session is not None:
                if session.http_owned and not session.close_pending and session.id in self.sessions:
                    session.attached = False
                    session.last_active = time.monotonic()
                else:
                    self._destroy(session)

    async def _refuse(self, websocket: WebSocket, error: ProtocolError, code: int) -> None:
        """Send the error frame, then close with ``code``: the client reads why before the close."""
        try:
            await self._send(websocket, "error", error.data())
            await websocket.close(code=code, reason=str(error)[:120])
        except (RuntimeError, WebSocketDisconnect):
            pass

    def _attach(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise ProtocolError(
                SESSION_ERROR,
                f"unknown session_id {session_id!r}: forks live until their creator's connection closes, and "
                "a session ends when its own WebSocket closes",
            )
        if session.attached:
            raise ProtocolError(SESSION_ERROR, f"session {session_id} already has an attached WebSocket")
        session.attached = True
        session.owner = None
        return session

    def _destroy(self, session: Session) -> None:
        """End a session, and the forks it made that nobody attached to."""
        if self.sessions.pop(session.id, None) is None:
            return
        self.capacity.release()
        orphans = [s for s in self.sessions.values() if s.owner == session.id and not s.attached]
        for orphan in orphans:
            self._destroy(orphan)

    async def _serve_session(self, websocket: WebSocket, session: Session, pending: list[str]) -> None:
        """Answer frames until the client closes: first those it sent while queued, then the socket's."""
        while True:
            frame = pending.pop(0) if pending else await self._receive_text(websocket)
            if frame is None:
                return
            session.last_active = time.monotonic()
            try:
                async with session.lock:
                    reply = await self._handle(websocket, session, frame)
            except ProtocolError as error:
                reply = ("error", error.data())
            except Exception as error:
                reply = ("error", _execution_error(error).data())
            if reply is None:  # close
                await websocket.close()
                return
            await self._send(websocket, *reply)

    async def _handle(self, websocket: WebSocket, session: Session, frame: str) -> tuple[str, dict[str, Any]] | None:
        """Answer one frame: ``(reply type, reply data)``, or None for ``close``."""
        try:
            message = json.loads(frame)
        except json.JSONDecodeError as error:
            raise ProtocolError(INVALID_JSON, f"Invalid JSON: {error}") from None
        if not isinstance(message, dict):
            raise ProtocolError(
                VALIDATION_ERROR, f'a message must be a JSON object {{"type": ..., "data": ...}}, got {frame[:80]!r}'
            )
        kind = message.get("type", "")
        if kind not in MESSAGE_TYPES:
            raise ProtocolError(
                UNKNOWN_TYPE, f"Unknown message type: {kind!r}; this server answers {', '.join(MESSAGE_TYPES)}"
            )
        extra = sorted(set(message) - {"type", "data"})
        if extra:
            raise ProtocolError(VALIDATION_ERROR, f"invalid {kind} message: unexpected fields {extra}")
        data = message.get("data", {})
        if kind == "step" and "data" not in message:
            raise ProtocolError(VALIDATION_ERROR, "invalid step message: data (the action) is required")
        if not isinstance(data, dict):
            raise ProtocolError(VALIDATION_ERROR, f"invalid {kind} message: data must be a JSON object")

        if kind == "reset":
            try:
                reset = ResetData.model_validate(data)
            except ValidationError as error:
                raise _invalid(f"reset data (a reset takes {', '.join(ResetData.model_fields)})", error) from None
            return "observation", _observation_payload(await self._env_call(lambda: session.reset(reset)))
        if kind == "step" and data.get("type") in ("list_tools", "call_tool"):
            return "observation", await self._mcp_step(session, data)
        if kind == "step":
            try:
                action = SandgymAction.model_validate(data)
            except ValidationError as error:
                raise _invalid("step action", error) from None
            return "observation", _observation_payload(await self._env_call(lambda: session.step(action)))
        if kind == "state":
            return "state", session.state().model_dump()
        if kind == "close":
            return None
        if kind == "snapshot":
            return "snapshot", await self._snapshot(session)
        if kind in ("restore", "release"):
            snapshot_id = data.get("snapshot_id")
            if snapshot_id not in session.snapshots:
                held = ", ".join(session.snapshots) or "none"
                raise ProtocolError(
                    VALIDATION_ERROR, f"{kind}: unknown snapshot_id {snapshot_id!r} (this session holds: {held})"
                )
            if kind == "release":
                del session.snapshots[snapshot_id]
                return "released", {"snapshot_id": snapshot_id}
            await self._env_call(lambda: session.restore(snapshot_id))
            return "state", session.state().model_dump()
        return "fork", await self._fork(websocket, session)

    async def _mcp_step(self, session: Session, data: dict[str, Any]) -> dict[str, Any]:
        """OpenEnv's MCP actions as steps: ``list_tools`` lists the env's tools, ``call_tool`` makes one call.

        Their observations carry the fields ``MCPToolClient`` reads (``tools``; ``tool_name``, ``result``,
        ``error``) beside sandgym's (``messages``, ``terminated``, ``truncated``); rewards and ``done`` are the
        step's, so an MCP client's episode is scored like any other.
        """
        if data["type"] == "list_tools":
            try:
                ListToolsAction.model_validate(data)
            except ValidationError as error:
                raise _invalid("list_tools action", error) from None
            return {"observation": {"tools": self._mcp_tools()}, "reward": None, "done": False}
        try:
            call = CallToolAction.model_validate(data)
        except ValidationError as error:
            raise _invalid("call_tool action", error) from None
        action = SandgymAction(message="", tool_calls=[ToolCall(name=call.tool_name, arguments=call.arguments)])
        observation = await self._env_call(lambda: session.step(action))
        payload = _observation_payload(observation)
        results = [m.get("content") for m in observation.messages if m.get("role") == "tool"]
        payload["observation"] |= {
            "tool_name": call.tool_name,
            "result": results[0] if len(results) == 1 else results or None,
            "error": None,
        }
        return payload

    async def _env_call(self, fn: Callable[[], T]) -> T:
        try:
            return await self._run(fn)
        except ProtocolError:
            raise
        except Exception as error:
            raise _execution_error(error) from None

    async def _snapshot(self, session: Session) -> dict[str, Any]:
        if len(session.snapshots) >= self.serve.max_snapshots:
            raise ProtocolError(
                EXECUTION_ERROR,
                f"this session holds {len(session.snapshots)} snapshots, the limit: release one first "
                '({"type": "release", "data": {"snapshot_id": ...}})',
            )
        self._snapshot_counter += 1
        snapshot_id = f"snap-{self._snapshot_counter}"
        await self._env_call(lambda: session.snapshot(snapshot_id))
        return {"snapshot_id": snapshot_id, "episode_id": session.episode_id, "step_count": session.step_count}

    async def _fork(self, websocket: WebSocket, session: Session) -> dict[str, Any]:
        if not self.capacity.try_acquire():
            raise self.capacity_error("a fork is a session too")
        child_id = uuid.uuid4().hex
        try:
            child = await self._env_call(lambda: session.fork(child_id))
        except BaseException:
            self.capacity.release()
            raise
        self.sessions[child_id] = child
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        return {
            "session_id": child_id,
            "path": f"/sessions/{child_id}/ws",
            "base_url": f"{scheme}://{websocket.url.netloc}/sessions/{child_id}",
            "state": child.state().model_dump(),
        }

    def app(self) -> Starlette:
        """The ASGI app (starlette), to run with uvicorn or any ASGI server."""
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/metadata", self.metadata, methods=["GET"]),
            Route("/schema", self.schema, methods=["GET"]),
            Route("/state", self.http_state, methods=["GET"]),
            Route("/sessions", self.sessions_status, methods=["GET"]),
            Route("/reset", self.http_reset, methods=["POST"]),
            Route("/step", self.http_step, methods=["POST"]),
            Route("/mcp", self.http_mcp, methods=["POST"]),
            WebSocketRoute("/ws", self.websocket),
            WebSocketRoute("/sessions/{session_id}/ws", self.websocket),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.ensure_future(self._reap_idle_http_sessions())
        try:
            yield
        finally:
            reaper.cancel()
            if self._executor is not None:
                self._executor.shutdown(wait=False)

    async def _reap_idle_http_sessions(self) -> None:
        """End HTTP-made sessions left idle with no WebSocket: a client that died never sends the close."""
        timeout = self.serve.session_timeout_s
        while True:
            await asyncio.sleep(min(max(timeout / 4, 0.05), 5.0))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.http_owned and not session.attached and now - session.last_active > timeout:
                    self._destroy(session)


def create_app(serve: ServeConfig) -> Starlette:
    """An ASGI app serving ``serve.env_id`` over OpenEnv's protocol (see the module docstring)."""
    return OpenEnvServer(serve).app()


def _websocket_library() -> str | None:
    """The WebSocket implementation uvicorn will use, or None if it has none."""
    for name in ("websockets", "wsproto"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def serve(serve_config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the server until interrupted (what ``sandgym serve`` does)."""
    import uvicorn

    if _websocket_library() is None:
        raise SystemExit(
            "sandgym serve needs a WebSocket implementation for uvicorn: pip install websockets (or wsproto)"
        )
    app = create_app(serve_config)
    # "auto" takes websockets (its sans-I/O protocol) when installed, else wsproto: both checked above.
    uvicorn.run(app, host=host, port=port, ws="auto", log_level=log_level)


_EPILOG = """\
WebSocket messages (JSON {"type": ..., "data": ...}; every reply is one frame):
  reset     data: {seed, episode_id, task, expose_task}      -> observation
  step      data: {message, tool_calls?}                      -> observation
  state                                                       -> state
  close                                                       (ends the session)
  snapshot                                                    -> snapshot {snapshot_id}
  restore   data: {snapshot_id}                               -> state
  release   data: {snapshot_id}                               -> released
  fork                                                        -> fork {session_id, base_url}
            then GenericEnvClient(base_url=<base_url>) drives the branch.
Errors are {"type": "error", "data": {message, code}}; the session lives on. A connection beyond
--max-sessions waits in the queue, or gets code CAPACITY_REACHED with retry_after_s, then a 1013 close.

Example:
  sandgym serve --env countdown-v0 --port 8000 --max-sessions 32
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``sandgym serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sandgym serve",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
        description=textwrap.fill(
            "Serve a sandgym env over OpenEnv 0.10's protocol (HTTP /health /metadata /schema /state /reset /step "
            "/mcp and the /ws episode WebSocket), so OpenEnv's GenericEnvClient and MCPToolClient, TRL's OpenEnv "
            "recipes and verifiers' OpenEnv taskset can drive it. Beyond OpenEnv, a WebSocket session answers "
            "fork, snapshot, restore and release messages; a fork is attached to at /sessions/{session_id}/ws.",
            width=100,
        ),
    )
    parser.add_argument("--env", required=True, metavar="ID", help="env id (countdown-v0, ...) or a .wasm path")
    parser.add_argument("--config", default=None, metavar="JSON", help="env configuration knobs, as a JSON object")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=64,
        metavar="N",
        help="live sessions at most, WebSocket connections and unattached forks (default 64)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=256,
        metavar="N",
        help="connections that may wait for a free session beyond --max-sessions; 0 refuses them at once "
        "with a CAPACITY_REACHED error and a retry hint (default 256)",
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a queued connection waits before it gets the CAPACITY_REACHED error (default 60)",
    )
    parser.add_argument(
        "--max-snapshots", type=int, default=64, metavar="N", help="snapshots one session may hold (default 64)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="worker threads for env calls (default: one per session, at most 32); 0 runs env calls on the "
        "event loop: about twice the steps/s for envs whose steps take microseconds (countdown, parity, "
        "reasoning), but a slow call then delays every session",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds a session made over HTTP /mcp (openenv/session/create) may idle with no WebSocket "
        "attached before it is ended (default 600)",
    )
    parser.add_argument(
        "--user",
        choices=["expert"],
        default=None,
        help='who plays the simulated user in envs that have one (tau envs with --config \'{"mode": "user"}\'): '
        "expert, the env's scripted user, answers inside reset and step",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def main(argv: list[str]) -> int:
    """``sandgym serve ARGS``: parse, check the env loads, serve until interrupted."""
    args = build_parser().parse_args(argv)
    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as error:
            raise SystemExit(f"sandgym serve: --config is not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise SystemExit("sandgym serve: --config must be a JSON object of env knobs")
    serve_config = ServeConfig(
        env_id=args.env,
        config=config,
        max_sessions=args.max_sessions,
        queue_size=args.queue,
        queue_timeout_s=args.queue_timeout,
        max_snapshots=args.max_snapshots,
        threads=args.threads,
        session_timeout_s=args.session_timeout,
        user_policy=args.user,
    )
    try:
        serve(serve_config, host=args.host, port=args.port, log_level=args.log_level)
    except (SandgymError, ValueError) as error:
        raise SystemExit(f"sandgym serve: {error}") from None
    return 0
