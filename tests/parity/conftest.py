from tests.integration.conftest import temporal_env

__all__ = ["temporal_env"]
