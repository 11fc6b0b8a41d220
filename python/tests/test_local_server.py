"""The LLM example's server launcher says what died and why when its server dies, not "connection refused".

A stand-in server (a few lines of ``http.server``) answers ``/v1/models`` like llama.cpp's and crashes the way
llama-cpp-python 0.3.36 did with Gemma 3 270M: killed by SIGSEGV on its first chat completion.
"""

import signal
import sys

import pytest
import sandgym
from sandgym.policies import OpenAIPolicy

CRASHING_SERVER = """
import http.server, json, os, signal, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "stand-in", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        print("ggml_compute_forward: simulated fault in the first chat completion", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)

    def log_message(self, *args):
        pass

print("stand-in server: listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_a_server_that_dies_mid_run_is_reported_with_its_signal_and_log(llm_example, tmp_path):
    port = llm_example.free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", CRASHING_SERVER, str(port)]
    policy = OpenAIPolicy(model="stand-in", max_tokens=8, concurrency=2, timeout_s=10.0, retries=0, backoff_s=0.1)
    with pytest.raises(llm_example.ServerDiedError) as died:
        with llm_example.local_server(command, port, "stand-in server", timeout_s=30, log=log) as base_url:
            policy.base_url = base_url
            result = sandgym.collect("countdown-v0", 2, policy=policy, max_turns=1)
            # The collector itself goes on: the failed requests end their episodes as policy rows.
            assert result.episodes == 2 and result.errors == 2
    message = str(died.value)
    assert "stand-in server" in message and "killed by signal 11 (SIGSEGV) while in use" in message
    assert "simulated fault in the first chat completion" in message, "the tail of its log is in the message"


def test_a_server_that_exits_before_answering_is_reported_with_its_code(llm_example, tmp_path):
    port = llm_example.free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", "import sys; print('error: unknown model file', flush=True); sys.exit(3)"]
    with pytest.raises(llm_example.ServerDiedError, match=r"exited with code 3 before it answered") as died:
        with llm_example.local_server(command, port, "stand-in server", timeout_s=30, log=log):
            pytest.fail("the body must not run")
    assert "error: unknown model file" in str(died.value)


def test_exit_status_wording(llm_example):
    assert llm_example.describe_exit(0) == "exited with code 0"
    assert llm_example.describe_exit(-signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
    assert llm_example.describe_exit(-200) == "was killed by signal 200"
