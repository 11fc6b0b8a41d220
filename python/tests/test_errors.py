import pytest
import sandgym
from sandgym import _core, errors


def test_every_error_kind_has_a_class():
    for kind, name in _core._error_classes():
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SandgymError), (kind, name)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("loop", errors.OutOfFuelError),
        ("membomb", errors.MemoryLimitError),
        ("panic", errors.GuestTrapError),
        ("badjson", errors.MalformedOutputError),
        ("badutf8", errors.MalformedOutputError),
        ("badptr", errors.MalformedOutputError),
        ("clock", errors.ForbiddenCallError),
        ("exit", errors.GuestExitError),
    ],
)
def test_hostile_guest_raises_typed_error_and_env_recovers(guest_dir, mode, error):
    env = sandgym.make(str(guest_dir / "hostile.wasm"), fuel=50_000_000, memory_mb=32)
    env.reset(seed=0, options={"task": {"mode": mode}})
    with pytest.raises(error) as caught:
        env.step("go")
    assert caught.value.kind
    if mode == "panic":
        assert "panicked on purpose" in caught.value.stderr
    env.reset(seed=1, options={"task": {"mode": "ok"}})
    _, reward, terminated, _, _ = env.step("go")
    assert terminated


def test_forbidden_import_is_refused(guest_dir):
    with pytest.raises(errors.ForbiddenImportError):
        sandgym.make(str(guest_dir / "hostile_import.wasm"))


def test_vecenv_isolates_a_faulting_slot(guest_dir):
    vec = sandgym.VecEnv(str(guest_dir / "hostile.wasm"), 3, fuel=50_000_000)
    vec.reset(seed=[0, 1, 2], options={"tasks": [{"mode": "ok"}, {"mode": "loop"}, {"mode": "ok"}]})
    _, _, terminations, truncations, infos = vec.step(["go", "go", "go"])
    assert infos["error_kind"][1] == "out_of_fuel"
    assert list(infos["_error_kind"]) == [False, True, False]
    assert terminations[0] and terminations[2] and truncations[1]
