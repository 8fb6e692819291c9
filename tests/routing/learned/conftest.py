"""The same fixtures as the offline route evaluation's tests: the RouteLLM data folder and isolated state."""

from tests.evals.routing.conftest import isolated_state, routellm_dir

__all__ = ["isolated_state", "routellm_dir"]
