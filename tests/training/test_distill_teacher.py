"""`objective.distill` settings: the defaults, and the refusal of a target that cancels."""
import pytest

from explore_rl.errors import ConfigError
from explore_rl.training.distill_teacher import distill_settings


@pytest.mark.parametrize("method", ["poe", "interp", "trust_region"])
@pytest.mark.parametrize("divergence, beta", [("reverse_kl", 0.5), ("sampled", 0.5),
                                              ("jsd", 1.0)])
def test_reverse_kl_towards_an_aggregate_is_refused(method, divergence, beta):
  with pytest.raises(ConfigError, match=f"method={method} with divergence={divergence} "
                                        "trains like method=teacher") as err:
    distill_settings({"coef": 1.0, "method": method, "divergence": divergence, "beta": beta})
  assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", ["poe", "interp", "trust_region", "teacher"])
def test_the_default_divergence_is_forward_kl_and_accepted(method):
  settings = distill_settings({"coef": 1.0, "method": method})
  assert settings.spec.divergence == "forward_kl"


def test_reverse_kl_to_the_teacher_alone_is_on_policy_distillation():
  settings = distill_settings({"coef": 1.0, "method": "teacher", "divergence": "reverse_kl"})
  assert settings.spec.divergence == "reverse_kl"
  assert distill_settings({"coef": 1.0, "method": "interp", "divergence": "jsd"}) is not None
