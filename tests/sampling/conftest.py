"""Shared set-up of the sampler tests: one tiny random model for the session."""
import pytest

from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset


@pytest.fixture(scope="session")
def model():
  """(graphdef, params) of the `tiny` preset, seed 3."""
  return tr.init(get_preset("tiny"), seed=3)
