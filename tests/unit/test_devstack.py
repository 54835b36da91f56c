"""The ``tokenhub dev`` supervisor with stand-in children (small Python processes): restart
delays, the delay reset, a gateway that cannot start, and how children's lines are shown."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from api import devstack
from api.devstack import DevStack, Output, parse_line
from shared.config import Settings
from tests.support.server import free_port

LISTEN = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); "
          "s.listen(); time.sleep(60)")


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _stack(tmp_path: Path) -> tuple[DevStack, io.StringIO]:
    tport, uiport, port = free_port(), free_port(), free_port()
    settings = Settings(_env_file=None, data_dir=tmp_path,  # type: ignore[call-arg]
                        temporal_address=f"127.0.0.1:{tport}", temporal_ui_port=uiport)
    buf = io.StringIO()
    stack = DevStack(settings, port=port, temporal_port=tport, output=Output("json", stream=buf))
    stack.temporal.argv = lambda: _py(LISTEN.format(port=tport))
    stack.worker.argv = lambda: _py("print('{\"msg\": \"worker polling q\"}'); "
                                    "import time; time.sleep(60)")
    stack.gateway.argv = lambda: _py(LISTEN.format(port=port))
    return stack, buf


def _events(buf: io.StringIO) -> list[str]:
    lines = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    return [x["msg"] for x in lines if x["proc"] == "dev"]


def _run_for(stack: DevStack, seconds: float) -> int:
    timer = threading.Timer(seconds, lambda: setattr(stack, "stopping", True))
    timer.start()
    try:
        return stack.run()
    finally:
        timer.cancel()


def test_a_child_dying_young_is_restarted_with_doubling_delays(tmp_path: Path) -> None:
    stack, buf = _stack(tmp_path)
    stack.worker.argv = lambda: _py("import sys; sys.exit(5)")
    t0 = time.monotonic()
    assert _run_for(stack, 4.2) == 0
    assert time.monotonic() - t0 < 15
    died = [e for e in _events(buf) if e.startswith("worker exited")]
    assert died[:3] == [f"worker exited with code 5; restarting in {d} s"
                        for d in ("0.5", "1.0", "2.0")]
    events = _events(buf)
    assert "temporal is up" in " ".join(events) and "gateway is up" in " ".join(events)
    assert any(e.startswith("worker restarting (pid ") for e in events)
    assert events[-1] == "stopping gateway, temporal"


def test_the_delay_resets_after_a_child_stayed_up(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devstack, "STABLE_S", 0.2)
    stack, buf = _stack(tmp_path)
    stack.worker.argv = lambda: _py("import sys, time; time.sleep(0.4); sys.exit(7)")
    assert _run_for(stack, 3.5) == 0
    died = [e for e in _events(buf) if e.startswith("worker exited")]
    assert len(died) >= 2
    assert set(died) == {"worker exited with code 7; restarting in 0.5 s"}


def test_a_gateway_that_cannot_start_stops_the_stack(tmp_path: Path) -> None:
    stack, buf = _stack(tmp_path)
    stack.gateway.argv = lambda: _py("import sys; print('boom'); sys.exit(3)")
    t0 = time.monotonic()
    assert _run_for(stack, 30) == 1
    assert time.monotonic() - t0 < 15
    events = _events(buf)
    assert "the gateway could not start (code 3); stopping" in events
    assert not any("restarting in" in e for e in events)
    assert all(c.proc is None or c.proc.poll() is not None for c in stack.children)
    lines = [(x["proc"], x["msg"]) for x in map(orjson.loads, buf.getvalue().splitlines())]
    # its last words come before the verdict
    assert lines.index(("gateway", "boom")) < lines.index(
        ("dev", "the gateway could not start (code 3); stopping"))


def test_a_gateway_dying_later_is_restarted(tmp_path: Path) -> None:
    stack, buf = _stack(tmp_path)
    port = stack.port
    stack.gateway.argv = lambda: _py(LISTEN.replace("time.sleep(60)", "time.sleep(0.5)")
                                     .format(port=port))
    assert _run_for(stack, 2.5) == 0
    events = _events(buf)
    assert "gateway exited with code 0; restarting in 0.5 s" in events
    assert any(e.startswith("gateway is back") for e in events)


def test_children_lines_are_parsed_and_tagged() -> None:
    own = parse_line("gateway", '{"ts": "t", "level": "info", "logger": "x", "msg": "m"}')
    assert own == {"ts": "t", "proc": "gateway", "level": "info", "logger": "x", "msg": "m"}
    tagged = parse_line("worker", '{"ts": "t", "proc": "worker", "msg": "m"}')
    assert tagged["proc"] == "worker"
    server = parse_line("temporal", 'time=2026-12-01T22:43:31.898 level=WARN '
                                    'msg="Failed to poll for task." service=worker '
                                    'Error="a \\"quoted\\" thing"')
    assert server == {"ts": "2026-12-01T22:43:31.898", "proc": "temporal", "level": "warning",
                      "logger": "temporal.worker", "msg": "Failed to poll for task.",
                      "Error": 'a "quoted" thing'}
    plain = parse_line("temporal", "Temporal Server:      localhost:7233")
    assert (plain["proc"], plain["msg"]) == ("temporal", "Temporal Server:      localhost:7233")


def test_output_json_strips_colour_and_text_tags_each_line() -> None:
    buf = io.StringIO()
    Output("json", stream=buf).child_line("worker", "\x1b[33m WARN\x1b[0m core says hi\n")
    line = orjson.loads(buf.getvalue())
    assert line["msg"] == " WARN core says hi" and line["proc"] == "worker"
    assert "\x1b" not in buf.getvalue()
    buf = io.StringIO()
    Output("text", stream=buf).child_line(
        "gateway", '{"ts": "2026-12-01T10:00:00.000+00:00", "level": "warning", '
                   '"logger": "tokenhub.dispatch", "msg": "hello", "request_id": "req_1"}')
    text = buf.getvalue()
    assert " gateway  WARNING tokenhub.dispatch: hello request_id=req_1\n" in text
    assert "\x1b" not in text


def test_dev_runs_are_encrypted_and_the_ui_decodes_through_the_gateway(
        tmp_path: Path) -> None:
    tport, uiport, port = free_port(), free_port(), free_port()
    settings = Settings(_env_file=None, data_dir=tmp_path,  # type: ignore[call-arg]
                        temporal_address=f"127.0.0.1:{tport}", temporal_ui_port=uiport,
                        env="development")
    stack = DevStack(settings, port=port, temporal_port=tport,
                     output=Output("json", stream=io.StringIO()))
    keyfile = Path(stack.env["TOKENHUB_TEMPORAL_PAYLOAD_KEYS_FILE"])
    assert keyfile == (tmp_path / "temporal_payload_keys").resolve()
    assert keyfile.stat().st_mode & 0o777 == 0o600
    first = keyfile.read_text()
    again = DevStack(settings, port=port, temporal_port=tport,
                     output=Output("json", stream=io.StringIO()))
    assert Path(again.env["TOKENHUB_TEMPORAL_PAYLOAD_KEYS_FILE"]).read_text() == first  # kept
    argv = stack._temporal_argv()
    assert argv[argv.index("--ui-codec-endpoint") + 1] == f"http://127.0.0.1:{port}/codec"
    given = Settings(_env_file=None, data_dir=tmp_path / "x",  # type: ignore[call-arg]
                     temporal_payload_keys="k:" + "A" * 43 + "=")
    assert devstack.dev_payload_keys(given) == {}  # a configured key is used as it is
