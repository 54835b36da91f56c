"""/v1/plan on the local runtime (TOKENHUB_TEMPORAL_ENABLED=false), and output shaping."""

from __future__ import annotations

import time

import httpx

from tests.fake_provider import FakeProvider

TASK = {"messages": [{"role": "user", "content": "design a cache"}]}


def test_vote_runs_voters_in_parallel(client: httpx.Client, fake: FakeProvider) -> None:
    for m in ("small-up", "medium-up", "claude-up", "large-up"):
        fake.script(m, [{"delay_ms": 300}])
    t0 = time.perf_counter()
    r = client.post("/v1/plan", json={"request": TASK,
                                      "orchestration": {"mode": "vote", "voters": 3}})
    wall = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    assert r.headers["x-tokenhub-executor"] == "local"
    data = r.json()
    assert len(data["responses"]) == 3 and data["judge"]
    assert wall < 0.9 + 0.3  # 3 parallel voters + judge; serial would be ≥ 1.2 s


def test_refine_and_planning(client: httpx.Client, fake: FakeProvider) -> None:
    r = client.post("/v1/plan", json={"request": TASK,
                                      "orchestration": {"mode": "refine", "iterations": 2}})
    assert r.status_code == 200
    assert set(r.json()) >= {"refined_response", "iterations", "model"}
    assert fake.count() == 3
    r = client.post("/v1/plan", json={"request": TASK, "orchestration": {"mode": "planning"}})
    assert r.status_code == 200 and r.json()["plan"]


def test_plan_bad_input(client: httpx.Client) -> None:
    r = client.post("/v1/plan", json={"request": TASK,
                                      "orchestration": {"mode": "adversarial",
                                                        "iterations": 11}})
    assert r.status_code == 400 and "iterations" in r.json()["error"]["message"]
    r = client.post("/v1/plan", json={"request": TASK,
                                      "orchestration": {"primary_model_id": "ghost"}})
    assert r.status_code == 404


def test_output_schema_422_and_strip_think(client: httpx.Client, fake: FakeProvider) -> None:
    schema = {"type": "object", "required": ["answer"]}
    fake.script("small-up", [{"content": "not json"}])
    r = client.post("/v1/chat", json={"request": {**TASK, "model_hint": "small"},
                                      "output_format": {"type": "json", "schema": schema}})
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "output_validation_failed"
    fake.script("small-up", [{"content": '<think>hmm</think>{"answer": 42}'}])
    r = client.post("/v1/chat", json={"request": {**TASK, "model_hint": "small"},
                                      "output_format": {"type": "json", "schema": schema,
                                                        "strip_think": True}})
    assert r.status_code == 200, r.text
    assert r.json()["response"]["parsed"] == {"answer": 42}
    assert r.json()["response"]["message"]["content"] == '{"answer": 42}'


def test_plan_parameters_reach_every_step(client: httpx.Client, fake: FakeProvider) -> None:
    r = client.post("/v1/plan", json={
        "request": {**TASK, "parameters": {"temperature": 0.3, "max_tokens": 77}},
        "orchestration": {"mode": "vote", "voters": 2,
                          "role_parameters": {"judge": {"temperature": 0}}}})
    assert r.status_code == 200, r.text
    calls = fake.calls()
    assert len(calls) == 3  # two voters and the judge
    assert all(c["params"]["max_tokens"] == 77 for c in calls)
    temps = sorted(c["params"]["temperature"] for c in calls)
    assert temps == [0, 0.3, 0.3]  # the judge's override, the voters' shared value
    fake.reset()
    r = client.post("/v1/plan", json={
        "request": {**TASK, "parameters": {"max_tokens": 50}},
        "orchestration": {"mode": "adversarial", "iterations": 1,
                          "role_parameters": {"reviewer": {"max_tokens": 20}}}})
    assert r.status_code == 200, r.text
    by_step = [c["params"]["max_tokens"] for c in fake.calls()]
    assert by_step == [50, 20, 50]  # plan, critique (reviewer), refine


def test_plan_parameters_bad_values_name_the_field(client: httpx.Client) -> None:
    r = client.post("/v1/plan", json={"request": {**TASK, "parameters": {"temperature": 5}}})
    assert r.status_code == 400
    assert "request.parameters.temperature" in r.json()["error"]["message"]
    r = client.post("/v1/plan", json={"request": TASK, "orchestration": {
        "mode": "vote", "role_parameters": {"critic": {"temperature": 1}}}})
    assert r.status_code == 400
    assert "orchestration.role_parameters.critic" in r.json()["error"]["message"]
    r = client.post("/v1/plan", json={"request": {**TASK, "parameters": {"max_tokens": 0}}})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
