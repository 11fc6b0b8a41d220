"""``sandgym serve`` speaks OpenEnv 0.10's protocol: OpenEnv's own client drives it, and its extras work.

Each test starts a real ``sandgym serve`` process on a free port and talks to it with OpenEnv's own
``GenericEnvClient`` (async and ``.sync()``), raw WebSocket frames (``websockets``, OpenEnv's own dependency)
and plain HTTP. Skipped when openenv (or a dependency it imports) is not installed, unless
``SANDGYM_REQUIRE_OPENENV=1`` makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import sandgym

if os.environ.get("SANDGYM_REQUIRE_OPENENV") == "1":
    import websockets
    from openenv.core.generic_client import GenericEnvClient
else:
    # openenv.core imports fastmcp's client at import time: a missing dependency of it skips too, naming it.
    websockets = pytest.importorskip("websockets")
    GenericEnvClient = pytest.importorskip("openenv.core.generic_client").GenericEnvClient

ENV = "countdown-v0"
CALC = {"message": "", "tool_calls": [{"name": "calc", "arguments": {"expression": "1 + 1"}}]}


def submit(expression: str) -> dict[str, Any]:
    """A structured ``submit`` action."""
    return {"message": "", "tool_calls": [{"name": "submit", "arguments": {"expression": expression}}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``sandgym serve`` subprocess and its URLs."""

    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.process = process
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.http + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        request = urllib.request.Request(self.http + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def wait_for(self, predicate: Any, what: str) -> dict[str, Any]:
        """Poll ``/sessions`` until ``predicate`` holds (the server frees slots as it sees sockets close)."""
        for _ in range(600):
            status = self.get("/sessions")
            if predicate(status):
                return dict(status)
            time.sleep(0.05)
        raise AssertionError(f"server never reached: {what}; last /sessions: {status}")


@contextlib.contextmanager
def serve(*args: str) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "sandgym.cli", "serve", "--env", ENV, "--port", str(port), *args]
    with serve_command([*command, "--log-level", "warning"], port) as server:
        yield server


@contextlib.contextmanager
def serve_command(command: list[str], port: int) -> Iterator[Server]:
    # A file, not a pipe: a server that logs more than a pipe holds must not block on it.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = Server(port, process)
    try:
        for _ in range(600):
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"sandgym serve exited with {process.returncode}:\n{log.read().decode()}")
            try:
                server.get("/health")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            raise AssertionError("sandgym serve never answered /health")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve("--max-sessions", "16") as running:
        yield running


def solution(result: Any) -> str:
    """The gold expression of a reset with ``expose_task`` (the metadata then holds the task)."""
    return str(result.metadata["task"]["solution"])


# --- OpenEnv's own client ---


def test_openenv_sync_client_plays_an_episode(server: Server) -> None:
    with GenericEnvClient(base_url=server.http).sync() as env:
        result = env.reset(seed=7, expose_task=True)
        gold = solution(result)
        assert result.done is False and result.reward is None
        # The env's info (here with the exposed task and its gold answer) travels beside the observation, never
        # in it: verifiers' taskset shows the model the whole observation.
        assert "metadata" not in result.observation and gold not in json.dumps(result.observation)
        observation = result.observation
        assert [m["role"] for m in observation["messages"]] == ["system", "user"]
        assert {tool["function"]["name"] for tool in observation["tools"]} == {"calc", "submit"}
        assert observation["seed"] == 7

        text = '<tool_call>{"name": "calc", "arguments": {"expression": "6 * 7"}}</tool_call>'
        result = env.step({"message": text})
        assert result.observation["messages"][0]["content"] == "42"
        assert result.done is False and result.reward == 0.0

        result = env.step(submit(gold))
        assert result.done is True and result.reward == 1.0
        assert result.metadata == {"reason": "solved", "success": True}
        state = env.state()
        assert state["step_count"] == 2 and state["done"] is True and state["total_reward"] == 1.0
        assert state["env_id"] == ENV


def test_openenv_async_client_same_seed_same_episode(server: Server) -> None:
    async def episode(seed: int) -> dict[str, Any]:
        async with GenericEnvClient(base_url=server.http) as env:
            result = await env.reset(seed=seed)
            return dict(result.observation)

    first, again, other = asyncio.run(_gather(episode(3), episode(3), episode(4)))
    assert first["messages"] == again["messages"] and first["task_id"] == again["task_id"]
    assert first["task_id"] != other["task_id"]


async def _gather(*coroutines: Any) -> list[Any]:
    return list(await asyncio.gather(*coroutines))


def test_concurrent_sessions_are_independent(server: Server) -> None:
    async def play(seed: int) -> tuple[str, float, int]:
        async with GenericEnvClient(base_url=server.http) as env:
            reset = await env.reset(seed=seed, expose_task=True)
            await env.step(CALC)
            result = await env.step(submit(solution(reset)))
            state = await env.state()
            return str(reset.observation["task_id"]), float(result.reward or 0.0), int(state["step_count"])

    results = asyncio.run(_gather(*(play(seed) for seed in range(8))))
    assert len({task_id for task_id, _, _ in results}) == 8
    assert all(reward == 1.0 and steps == 2 for _, reward, steps in results)
    server.wait_for(lambda s: s["active_sessions"] == 0, "every session closed")


# --- fork, snapshot, restore ---


def test_fork_mid_episode_branches_diverge(server: Server) -> None:
    async def run() -> None:
        async with GenericEnvClient(base_url=server.http) as parent:
            reset = await parent.reset(seed=11, expose_task=True)
            await parent.step(CALC)
            saved = (await parent._send_and_receive({"type": "snapshot"}))["data"]["snapshot_id"]
            fork = (await parent._send_and_receive({"type": "fork"}))["data"]
            assert fork["state"]["step_count"] == 1
            assert fork["state"]["conversation"] == (await parent.state())["conversation"]
            assert fork["base_url"] == f"{server.http}/sessions/{fork['session_id']}"

            async with GenericEnvClient(base_url=fork["base_url"]) as child:
                right = await child.step(submit(solution(reset)))
                wrong = await parent.step(submit("1 + 1"))
                assert right.reward == 1.0 and right.done
                assert wrong.reward == 0.0 and wrong.done
                assert right.observation["messages"] != wrong.observation["messages"]
                child_state, parent_state = await child.state(), await parent.state()
                assert child_state["session_id"] == fork["session_id"] != parent_state["session_id"]
                assert child_state["conversation"][:-2] == parent_state["conversation"][:-2]
                assert child_state["conversation"][-1] != parent_state["conversation"][-1]
                # A fork holds its parent's snapshots: the ended branch rewinds to the fork point.
                rewound = await child._send_and_receive({"type": "restore", "data": {"snapshot_id": saved}})
                assert rewound["data"]["step_count"] == 1 and rewound["data"]["done"] is False
                assert rewound["data"]["session_id"] == fork["session_id"]
                assert (await child.step(CALC)).done is False

            # A fork is attached once; its session ends with its socket.
            with pytest.raises(RuntimeError, match="SESSION_ERROR"):
                async with GenericEnvClient(base_url=fork["base_url"]) as again:
                    await again.state()

    asyncio.run(run())


def test_unattached_fork_ends_with_its_creator(server: Server) -> None:
    async def run() -> str:
        async with GenericEnvClient(base_url=server.http) as parent:
            await parent.reset(seed=1)
            fork = (await parent._send_and_receive({"type": "fork"}))["data"]
            assert fork["session_id"] in server.get("/sessions")["unattached_forks"]
            return str(fork["session_id"])

    session_id = asyncio.run(run())
    server.wait_for(lambda s: session_id not in s["unattached_forks"], "the orphaned fork destroyed")


def test_snapshot_restore_replays_from_the_saved_state(server: Server) -> None:
    async def run() -> None:
        async with GenericEnvClient(base_url=server.http) as env:
            reset = await env.reset(seed=5, expose_task=True)
            await env.step(CALC)
            saved = await env._send_and_receive({"type": "snapshot"})
            assert saved["type"] == "snapshot" and saved["data"]["step_count"] == 1
            snapshot_id = saved["data"]["snapshot_id"]

            wrong = await env.step(submit("1 + 1"))
            assert wrong.done and wrong.reward == 0.0
            with pytest.raises(RuntimeError, match="EXECUTION_ERROR"):
                await env.step(CALC)  # the episode is over

            restored = await env._send_and_receive({"type": "restore", "data": {"snapshot_id": snapshot_id}})
            assert restored["type"] == "state"
            assert restored["data"]["step_count"] == 1 and restored["data"]["done"] is False
            right = await env.step(submit(solution(reset)))
            assert right.done and right.reward == 1.0
            assert (await env.state())["total_reward"] == 1.0

            released = await env._send_and_receive({"type": "release", "data": {"snapshot_id": snapshot_id}})
            assert released == {"type": "released", "data": {"snapshot_id": snapshot_id}}
            with pytest.raises(RuntimeError, match="unknown snapshot_id"):
                await env._send_and_receive({"type": "restore", "data": {"snapshot_id": snapshot_id}})

    asyncio.run(run())


# --- bad messages ---


def test_bad_messages_get_json_errors_and_the_session_lives_on(server: Server) -> None:
    async def run() -> None:
        async with websockets.connect(server.ws) as ws:

            async def ask(frame: str) -> dict[str, Any]:
                await ws.send(frame)
                return dict(json.loads(await ws.recv()))

            def code(reply: dict[str, Any]) -> str:
                assert reply["type"] == "error", reply
                assert reply["data"]["message"]
                return str(reply["data"]["code"])

            assert code(await ask('{"type": "step", "data": {"message": "hi"}}')) == "SESSION_ERROR"  # no reset
            assert code(await ask("{not json")) == "INVALID_JSON"
            assert code(await ask('["reset"]')) == "VALIDATION_ERROR"
            assert code(await ask('{"type": "teleport"}')) == "UNKNOWN_TYPE"
            assert code(await ask('{"type": "reset", "data": {"seed": -1}}')) == "VALIDATION_ERROR"
            assert code(await ask('{"type": "reset", "data": {"colour": "red"}}')) == "VALIDATION_ERROR"

            reply = await ask(json.dumps({"type": "reset", "data": {"seed": 2}}))
            assert reply["type"] == "observation" and reply["data"]["done"] is False

            missing = await ask('{"type": "step", "data": {"text": "hi"}}')
            assert code(missing) == "VALIDATION_ERROR" and "message" in missing["data"]["message"]
            assert missing["data"]["errors"][0]["loc"] == ["message"]
            assert code(await ask('{"type": "step", "data": {"message": 5}}')) == "VALIDATION_ERROR"
            assert code(await ask('{"type": "step", "data": {"message": "", "tool_calls": [{}]}}')) == (
                "VALIDATION_ERROR"
            )
            assert code(await ask('{"type": "step"}')) == "VALIDATION_ERROR"
            assert code(await ask('{"type": "restore", "data": {"snapshot_id": "nope"}}')) == "VALIDATION_ERROR"
            await ws.send(b"\xff\xfe")
            assert code(json.loads(await ws.recv())) == "INVALID_JSON"

            # Unparseable model text is the env's business, not an error: it gets a format-error observation.
            reply = await ask(json.dumps({"type": "step", "data": {"message": "I think the answer is 12"}}))
            assert reply["type"] == "observation" and reply["data"]["done"] is False

            reply = await ask(json.dumps({"type": "step", "data": CALC}))
            assert reply["type"] == "observation"
            assert reply["data"]["observation"]["messages"][0]["content"] == "2"
            state = await ask('{"type": "state"}')
            assert state["type"] == "state" and state["data"]["step_count"] == 2

    asyncio.run(run())


# --- HTTP ---


def test_http_endpoints(server: Server) -> None:
    assert server.get("/health") == {"status": "healthy"}
    metadata = server.get("/metadata")
    assert metadata["name"] == ENV and metadata["description"]
    assert set(metadata) == {"name", "description", "readme_content", "version", "author", "documentation_url"}

    schema = server.get("/schema")
    assert set(schema) == {"action", "observation", "state", "reset_observation"}
    # verifiers' OpenEnv taskset wraps a raw model reply into the action's single required field, and lists
    # MCP tools instead when the action is OpenEnv's generic Action: neither must misfire here.
    assert schema["action"]["required"] == ["message"]
    assert schema["action"]["title"] not in {"Action", "CallToolAction", "ListToolsAction"}
    assert "messages" in schema["observation"]["properties"]
    assert "tools" in schema["reset_observation"]["properties"]

    state = server.get("/state")
    assert state["step_count"] == 0 and state["episode_id"] is None and state["env_id"] == ENV

    status, first = server.post("/reset", b'{"seed": 9}')
    assert status == 200 and first["done"] is False and first["reward"] is None
    assert first["observation"]["seed"] == 9 and first["observation"]["messages"]
    status, again = server.post("/reset", b'{"seed": 9}')
    assert again["observation"]["messages"] == first["observation"]["messages"]
    status, _ = server.post("/reset", b"")
    assert status == 200

    status, error = server.post("/reset", b'{"seed": -3}')
    assert status == 422 and error["detail"][0]["loc"] == ["seed"]
    status, error = server.post("/step", b'{"action": {"message": 1}}')
    assert status == 422
    status, error = server.post("/step", b'{"nothing": 1}')
    assert status == 422
    # As in OpenEnv, every HTTP request gets a fresh env: /step has no episode, and says to use /ws.
    status, error = server.post("/step", json.dumps({"action": CALC}).encode())
    assert status == 409 and "/ws" in error["detail"]["message"]
    status, error = server.post("/reset", b"{oops")
    assert status == 400 and error["detail"]["code"] == "INVALID_JSON"


# --- capacity ---


def test_beyond_max_sessions_with_no_queue_is_a_capacity_error_with_a_retry_hint() -> None:
    async def run(server: Server) -> None:
        async with GenericEnvClient(base_url=server.http) as first:
            await first.reset(seed=0)
            with pytest.raises(RuntimeError, match=r"CAPACITY_REACHED") as refused:
                async with GenericEnvClient(base_url=server.http) as second:
                    await second.reset(seed=0)
            assert "Retry in" in str(refused.value)

            async with websockets.connect(server.ws) as ws:
                reply = json.loads(await ws.recv())  # sent unasked, before the close: never a silent socket
                assert reply["type"] == "error" and reply["data"]["code"] == "CAPACITY_REACHED"
                assert reply["data"]["retry_after_s"] > 0
                assert reply["data"]["active_sessions"] == 1 and reply["data"]["max_sessions"] == 1
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

            # The first session is unharmed, and a fork needs a slot too.
            result = await first.step(CALC)
            assert result.observation["messages"][0]["content"] == "2"
            with pytest.raises(RuntimeError, match="CAPACITY_REACHED"):
                await first._send_and_receive({"type": "fork"})
            assert (await first.state())["step_count"] == 1

        server.wait_for(lambda s: s["active_sessions"] == 0, "the first session closed")
        async with GenericEnvClient(base_url=server.http) as later:
            assert (await later.reset(seed=0)).done is False

    with serve("--max-sessions", "1", "--queue", "0") as server:
        asyncio.run(run(server))


def test_beyond_max_sessions_waits_in_the_queue() -> None:
    async def run(server: Server) -> None:
        first = GenericEnvClient(base_url=server.http)
        await first.connect()
        await first.reset(seed=0)
        second = GenericEnvClient(base_url=server.http)
        waiting = asyncio.ensure_future(second.reset(seed=1))
        await asyncio.to_thread(server.wait_for, lambda s: s["queued"] == 1, "the second session queued")
        assert not waiting.done()

        async with websockets.connect(server.ws) as leaver:
            await leaver.send(json.dumps({"type": "reset", "data": {}}))  # as OpenEnv's client does, at once
            await asyncio.to_thread(server.wait_for, lambda s: s["queued"] == 2, "a second client queued")
            # The queue (size 2) is full: one more is refused at once.
            with pytest.raises(RuntimeError, match="waiting queue is full.*CAPACITY_REACHED"):
                async with GenericEnvClient(base_url=server.http) as third:
                    await third.reset(seed=2)
        # A queued client that leaves frees its place in the queue.
        await asyncio.to_thread(server.wait_for, lambda s: s["queued"] == 1, "the leaver out of the queue")

        await first.close()
        result = await waiting  # the freed slot passes to the queued session
        assert result.observation["seed"] == 1
        await second.close()

    with serve("--max-sessions", "1", "--queue", "2") as server:
        asyncio.run(run(server))


def test_a_queued_session_that_waits_too_long_gets_the_capacity_error() -> None:
    async def run(server: Server) -> None:
        async with GenericEnvClient(base_url=server.http) as first:
            await first.reset(seed=0)
            with pytest.raises(RuntimeError, match=r"no session slot freed within.*CAPACITY_REACHED"):
                async with GenericEnvClient(base_url=server.http) as second:
                    await second.reset(seed=1)
            assert (await first.step(CALC)).done is False

    with serve("--max-sessions", "1", "--queue", "4", "--queue-timeout", "0.2") as server:
        asyncio.run(run(server))


def test_serve_rejects_an_unknown_env_with_a_clear_error() -> None:
    command = [sys.executable, "-m", "sandgym.cli", "serve", "--env", "no-such-env-v0", "--port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no-such-env-v0" in result.stderr


def test_serve_help_names_the_protocol() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandgym.cli", "serve", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "OpenEnv" in result.stdout and "--max-sessions" in result.stdout and "fork" in result.stdout


def test_env_calls_on_the_event_loop_serve_the_same_protocol() -> None:
    async def run(server: Server) -> None:
        async def play(seed: int) -> float:
            async with GenericEnvClient(base_url=server.http) as env:
                reset = await env.reset(seed=seed, expose_task=True)
                fork = (await env._send_and_receive({"type": "fork"}))["data"]
                async with GenericEnvClient(base_url=fork["base_url"]) as child:
                    assert (await child.step(submit("1 + 1"))).reward == 0.0
                return float((await env.step(submit(solution(reset)))).reward or 0.0)

        assert await _gather(*(play(seed) for seed in range(4))) == [1.0] * 4

    with serve("--threads", "0") as server:
        asyncio.run(run(server))


def test_openenv_mcp_style_actions_list_and_call_the_env_tools(server: Server) -> None:
    # What OpenEnv's MCP actions (ListToolsAction, CallToolAction) send as a step, e.g. verifiers' OpenEnv
    # taskset for an env whose action is OpenEnv's generic Action.
    from openenv.core import CallToolAction, ListToolsAction

    with GenericEnvClient(base_url=server.http).sync() as env:
        gold = solution(env.reset(seed=21, expose_task=True))
        listed = env.step(ListToolsAction()).observation
        assert {tool["name"] for tool in listed["tools"]} == {"calc", "submit"}
        assert "expression" in listed["tools"][0]["input_schema"]["properties"]
        assert env.state()["step_count"] == 0  # listing tools is not a step

        calc = env.step({"type": "call_tool", "tool_name": "calc", "arguments": {"expression": "6 * 7"}})
        assert calc.observation["tool_name"] == "calc" and calc.observation["result"] == "42"
        assert calc.observation["error"] is None and calc.done is False

        result = env.step(CallToolAction(tool_name="submit", arguments={"expression": gold}))
        assert result.done and result.reward == 1.0 and "Correct" in result.observation["result"]
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            env.step({"type": "call_tool", "name": "calc"})


def test_openenv_mcp_tool_client_plays_over_http_mcp_and_the_attached_socket(server: Server) -> None:
    from openenv.core import CallToolAction
    from openenv.core.mcp_client import MCPToolClient

    async def run() -> str:
        async with MCPToolClient(base_url=server.http) as env:
            session_id = str(env._production_session_id)
            reset = await env.reset(seed=21, expose_task=True)  # over /ws?session_id=..., the HTTP session's env
            gold = reset.metadata["task"]["solution"]
            tools = await env.list_tools()
            assert {tool.name for tool in tools} == {"calc", "submit"}
            assert "expression" in tools[0].input_schema["properties"]
            assert await env.call_tool("calc", expression="6 * 7") == "42"  # over HTTP /mcp, same episode
            result = await env.step(CallToolAction(tool_name="submit", arguments={"expression": gold}))
            assert result.done and result.reward == 1.0
            state = await env.state()
            assert state.step_count == 2
            with pytest.raises(RuntimeError, match="Tool 'calc' failed"):
                await env.call_tool("calc", expression="1")  # the episode is over
        return session_id

    session_id = asyncio.run(run())
    status, reply = server.post(
        "/mcp",
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"session_id": session_id, "name": "calc"}}
        ).encode(),
    )
    assert status == 200 and reply["error"]["message"] == f"Unknown session_id: {session_id}"  # closed with the client
    status, reply = server.post("/mcp", b"{nope")
    assert reply["error"]["code"] == -32700
    status, reply = server.post("/mcp", b'{"jsonrpc": "2.0", "id": 2, "method": "resources/list"}')
    assert reply["id"] == 2 and reply["error"]["code"] == -32601
    status, reply = server.post("/mcp", b'{"jsonrpc": "2.0", "id": 3, "method": "tools/list"}')
    assert {tool["name"] for tool in reply["result"]["tools"]} == {"calc", "submit"}


def test_an_idle_http_session_is_ended_after_the_session_timeout() -> None:
    with serve("--session-timeout", "3") as server:
        status, reply = server.post("/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}')
        session_id = reply["result"]["session_id"]
        assert server.get("/sessions")["active_sessions"] == 1
        server.wait_for(lambda s: s["active_sessions"] == 0, "the idle HTTP session reaped")
        status, reply = server.post(
            "/mcp",
            json.dumps(
                {"jsonrpc": "2.0", "id": 2, "method": "openenv/session/close", "params": {"session_id": session_id}}
            ).encode(),
        )
        assert "Unknown session_id" in reply["error"]["message"]


class CountdownOverOpenEnv:
    """The environment class a TRL OpenEnv recipe writes (``GRPOTrainer(environment_factory=...)``), on this server.

    TRL makes one instance per rollout slot, calls ``reset(**row)`` for the prompt's extra text, then the tool
    methods the model calls (their docstrings are the tool schemas), then reads ``reward``.
    """

    base_url = ""

    def __init__(self) -> None:
        self.client = GenericEnvClient(base_url=self.base_url).sync()
        self.client.connect()
        self.reward = 0.0

    def reset(self, **row: Any) -> str:
        result = self.client.reset(seed=int(row["seed"]))
        self.reward = 0.0
        return str(result.observation["messages"][-1]["content"])

    def _call(self, name: str, expression: str) -> str:
        result = self.client.step(
            {"message": "", "tool_calls": [{"name": name, "arguments": {"expression": expression}}]}
        )
        self.reward += float(result.reward or 0.0)
        return str(result.observation["messages"][0]["content"])

    def calc(self, expression: str) -> str:
        """Evaluate an arithmetic expression.

        Args:
            expression: the expression, e.g. "(25 - 5) * 4".
        """
        return self._call("calc", expression)

    def submit(self, expression: str) -> str:
        """Submit the final expression; ends the episode.

        Args:
            expression: the expression that equals the target.
        """
        return self._call("submit", expression)


def test_a_trl_style_environment_class_pool_plays_rollouts(server: Server) -> None:
    probe = sandgym.make(ENV)
    CountdownOverOpenEnv.base_url = server.http
    pool = [CountdownOverOpenEnv() for _ in range(4)]
    try:
        for seed, instance in enumerate(pool * 2):  # instances are reused across rollouts, as TRL does
            probe.reset(seed=seed)
            prompt = instance.reset(seed=seed, prompt="...")
            assert "Target:" in prompt
            assert instance.calc("2 * 3") == "6"
            assert "Correct" in instance.submit(probe.task["solution"])
            assert instance.reward == 1.0
    finally:
        for instance in pool:
            instance.client.close()


def test_a_given_task_replays_and_tau_user_mode_is_played_by_the_expert_user(server: Server) -> None:
    with GenericEnvClient(base_url=server.http).sync() as env:
        first = env.reset(seed=4, expose_task=True)
        again = env.reset(seed=99, task=first.metadata["task"])  # the task given, not generated from the seed
        assert again.observation["task_id"] == first.observation["task_id"]
        assert again.observation["messages"] == first.observation["messages"]

    port = free_port()
    command = [sys.executable, "-m", "sandgym.cli", "serve", "--env", "tau-retail-v0", "--port", str(port)]
    command += ["--config", '{"mode": "user"}', "--user", "expert", "--log-level", "warning"]
    with serve_command(command, port) as tau:
        with GenericEnvClient(base_url=tau.http).sync() as env:
            result = env.reset(seed=0)
            roles = [m["role"] for m in result.observation["messages"]]
            assert roles[:2] == ["system", "user"] and len(roles) >= 2
            assert "gold_actions" in (result.metadata or {})  # beside the observation, not in it
            assert "gold_actions" not in json.dumps(result.observation)
