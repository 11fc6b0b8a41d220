import threading

import sandgym


def test_vecenv_reset_step_and_expert_batch():
    vec = sandgym.VecEnv("countdown-v0", 8)
    assert len(vec) == 8
    resets = vec.reset(seeds=100)
    assert len({r["task_id"] for r in resets}) > 1
    envs = [sandgym.make("countdown-v0") for _ in range(8)]
    experts = []
    for i, env in enumerate(envs):
        env.reset(seed=100 + i)
        experts.append(env.expert_action())
    results = vec.step(experts)
    singles = [env.step(a) for env, a in zip(envs, experts, strict=False)]
    for batch, single in zip(results, singles, strict=False):
        assert batch["messages"] == single[0]
        assert batch["reward"] == single[1]


def test_text_batch_parses_each_completion():
    vec = sandgym.VecEnv("countdown-v0", 2)
    vec.reset(seeds=[1, 2])
    out = vec.step(['<tool_call>{"name": "calc", "arguments": {"expression": "1+1"}}</tool_call>', "no call here"])
    assert out[0]["messages"][0]["role"] == "tool"
    assert out[1]["messages"][0]["role"] == "user"


def test_gil_is_released_while_stepping():
    vec = sandgym.VecEnv("countdown-v0", 64)
    vec.reset(seeds=0)
    counter = 0
    stop = False

    def spin():
        nonlocal counter
        while not stop:
            counter += 1

    thread = threading.Thread(target=spin)
    thread.start()
    steps = vec.run_steps(
        {"content": "", "tool_calls": [{"id": "c", "name": "calc", "arguments": '{"expression": "1+2"}'}]}, 200
    )
    stop = True
    thread.join()
    assert steps == 64 * 200
    assert counter > 1000, "a Python thread ran while Rust stepped"
