"""Settings and catalog: the YAML contract, env shortcuts, errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings, load_catalog, load_settings
from shared.errors import ConfigError

YAML = """
providers:
  - id: local-vllm
    type: vllm
    base_url: http://127.0.0.1:9001/v1
    api_key_env: MY_KEY_VAR
    some_future_key: ignored-but-allowed
models:
  - id: small
    provider: local-vllm
    upstream_model: smollm2
    weight: 3
    max_context_tokens: 8192
    input_per_1k: 0.0005
    output_per_1k: 0.0015
  - id: big
    provider: local-vllm
    weight: 8
aliases:
  - id: chat
    targets: {small: 3, big: 1}
"""


def _settings(tmp_path: Path, text: str, **kw: object) -> Settings:
    path = tmp_path / "tokenhub.yaml"
    path.write_text(text)
    return Settings(config=path, data_dir=tmp_path, _env_file=None, **kw)  # type: ignore[call-arg]


def test_yaml_catalog_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY_VAR", "sk-from-env")
    catalog = load_catalog(_settings(tmp_path, YAML))
    assert [p.id for p in catalog.providers] == ["local-vllm"]
    small = catalog.model("small")
    assert small is not None and small.upstream == "smollm2" and small.weight == 3
    big = catalog.model("big")
    assert big is not None and big.upstream == "big"  # upstream defaults to id
    assert catalog.providers[0].resolve_key() == "sk-from-env"
    assert catalog.alias_targets()["chat"] == {"small": 3, "big": 1}


@pytest.mark.parametrize(("snippet", "needle"), [
    ("models:\n  - id: x\n    provider: nowhere\n", "unknown provider 'nowhere'"),
    ("providers:\n  - id: p\n    type: grpc\n    base_url: http://x\n", "providers.0.type"),
    ("providers:\n  - id: p\n    type: openai\n", "base_url"),
    ("providers:\n  - {id: p, type: openai, base_url: 'http://x'}\nmodels:\n"
     "  - {id: m, provider: p, weight: 11}\n", "models.0.weight"),
    ("providers: [\n", "not valid YAML"),
])
def test_bad_yaml_names_the_field(tmp_path: Path, snippet: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_catalog(_settings(tmp_path, snippet))
    assert needle in exc.value.message
    assert "TOKENHUB_CONFIG" in exc.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    settings = Settings(config=tmp_path / "nope.yaml", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="file not found"):
        load_catalog(settings)


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHUB_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="TOKENHUB_PORT"):
        load_settings(_env_file=None)
    monkeypatch.setenv("TOKENHUB_PORT", "8080")
    monkeypatch.setenv("TOKENHUB_DEFAULT_MODE", "fastest")
    with pytest.raises(ConfigError, match="TOKENHUB_DEFAULT_MODE"):
        load_settings(_env_file=None)


def test_env_shortcuts_register_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHUB_OPENAI_API_KEY", "sk-secret-openai")
    monkeypatch.setenv("TOKENHUB_VLLM_ENDPOINTS", "http://127.0.0.1:9001/v1, http://127.0.0.1:9002/v1")
    settings = load_settings(_env_file=None)
    catalog = load_catalog(settings)
    ids = {p.id: p for p in catalog.providers}
    assert set(ids) == {"openai", "vllm"}  # no simulated provider when real ones exist
    assert ids["vllm"].urls() == ["http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1"]
    assert ids["openai"].resolve_key() == "sk-secret-openai"


def test_simulated_provider_only_when_nothing_configured() -> None:
    catalog = load_catalog(Settings(_env_file=None))  # type: ignore[call-arg]
    assert [p.type for p in catalog.providers] == ["simulated"]
    assert catalog.models


def test_masked_config_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHUB_OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("TOKENHUB_DATABASE_URL", "postgresql+asyncpg://u:hunter2@db/x")
    masked = str(load_settings(_env_file=None).masked())
    assert "sk-very-secret" not in masked and "hunter2" not in masked
    assert "********" in masked


@pytest.mark.parametrize(("value", "mode"), [
    (None, "chat"), ("chat", "chat"), ("all", "all"), ("none", "none"),
    ("true", "all"), ("false", "none"),  # the earlier boolean form
])
def test_local_activities_mode(monkeypatch: pytest.MonkeyPatch, value: str | None,
                               mode: str) -> None:
    if value is not None:
        monkeypatch.setenv("TOKENHUB_TEMPORAL_LOCAL_ACTIVITIES", value)
    assert Settings(_env_file=None).temporal_local_activities == mode  # type: ignore[call-arg]


def test_local_activities_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHUB_TEMPORAL_LOCAL_ACTIVITIES", "sometimes")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "TOKENHUB_TEMPORAL_LOCAL_ACTIVITIES" in exc.value.message


def test_temporal_ports_and_ui_url(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.temporal_host, s.temporal_port, s.temporal_ui_port) == ("127.0.0.1", 7233, 8233)
    assert s.temporal_ui_url == "http://127.0.0.1:8233"
    monkeypatch.setenv("TOKENHUB_TEMPORAL_ADDRESS", "temporal.local:7300")
    monkeypatch.setenv("TOKENHUB_TEMPORAL_UI_PORT", "9233")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.temporal_host, s.temporal_port) == ("temporal.local", 7300)
    assert s.temporal_ui_url == "http://temporal.local:9233"
    monkeypatch.setenv("TOKENHUB_TEMPORAL_UI_URL", "https://ui.example")
    assert Settings(_env_file=None).temporal_ui_url == "https://ui.example"  # type: ignore[call-arg]
    monkeypatch.setenv("TOKENHUB_TEMPORAL_UI_PORT", "0")
    with pytest.raises(ValueError, match="temporal_ui_port"):
        Settings(_env_file=None)  # type: ignore[call-arg]


_P = "providers:\n  - {id: p, type: openai, base_url: 'http://x'}\n"


@pytest.mark.parametrize(("snippet", "needle"), [
    (_P + "models:\n  - {id: \"gpt\\0x\", provider: p}\n", "models.0.id"),
    (_P + "models:\n  - {id: \"modèle\", provider: p}\n", "models.0.id"),
    (_P + "models:\n  - {id: \"a b\", provider: p}\n", "models.0.id"),
    (_P + f"models:\n  - {{id: {'m' * 129}, provider: p}}\n", "models.0.id"),
    ("providers:\n  - {id: \"p\\u2028\", type: openai, base_url: 'http://x'}\n", "providers.0.id"),
    (_P + "models:\n  - {id: m, provider: p}\naliases:\n  - {id: \"al\\u00ff\", "
     "targets: {m: 1}}\n", "aliases.0.id"),
    (_P + "models:\n  - {id: m, provider: p, aliases: [\"x\\ty\"]}\n", "models.0.aliases.0"),
    # an alias that is also a model id would silently take that model's traffic
    (_P + "models:\n  - {id: small, provider: p}\n  - {id: big, provider: p, "
     "aliases: [small]}\n", "models.1.aliases: alias 'small' of model 'big' is already"),
    (_P + "models:\n  - {id: small, provider: p}\naliases:\n  - {id: small, "
     "targets: {small: 1}}\n", "aliases.0.id: alias 'small' collides"),
    (_P + "models:\n  - {id: auto, provider: p}\n", "models.0.id: 'auto' is reserved"),
])
def test_catalog_ids_are_safe_and_unambiguous(tmp_path: Path, snippet: str,
                                              needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_catalog(_settings(tmp_path, snippet))
    assert needle in exc.value.message and "TOKENHUB_CONFIG" in exc.value.message


def test_real_model_ids_are_valid(tmp_path: Path) -> None:
    ids = ["gpt-4o-mini", "claude-3-5-haiku-latest", "meta-llama/Llama-3.1-8B-Instruct",
           "qwen2.5:7b", "org/model@rev+ft_1"]
    models = "".join(f"  - {{id: '{i}', provider: p}}\n" for i in ids)
    catalog = load_catalog(_settings(tmp_path, _P + "models:\n" + models))
    assert [m.id for m in catalog.models] == ids
