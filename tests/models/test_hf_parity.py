"""Hugging Face checkpoints: explore_rl's logits and greedy decoding equal transformers'.

Tiny random Llama / Qwen2 models are built with transformers, saved as
safetensors and loaded with `hf_import`; weights are redrawn with a wide spread
so logits are far from ties and a wrong mapping or RoPE shows up as a large error.
"""
import json
import math
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="needs the `hf` extra: pip install -e .[hf] (torch==2.13.0 CPU, transformers)")
transformers = pytest.importorskip("transformers", reason="needs the `hf` extra (transformers)")

from explore_rl.models import chat_tokenizer, hf_export, hf_import, sharding  # noqa: E402
from explore_rl.models.tokenizer import CharTokenizer, pad_left  # noqa: E402
from explore_rl.sampling.generate import generate  # noqa: E402
from explore_rl.sampling.processors import SamplingConfig  # noqa: E402
from explore_rl.models.tokenizer import encode_prompts  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16}
CASES = {
    "llama_gqa_untied_llama3": ("llama", dict(num_key_value_heads=2, rope_theta=50000.0,
                                              rope_scaling=LLAMA3)),
    "llama_mqa_tied_linear_head32": ("llama", dict(
        num_key_value_heads=1, head_dim=32, tie_word_embeddings=True,
        rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "qwen2_gqa_tied_bias": ("qwen2", dict(num_key_value_heads=2, tie_word_embeddings=True,
                                          rope_theta=1e6)),
    "qwen2_mqa_untied_bias": ("qwen2", dict(num_key_value_heads=1, vocab_size=256,
                                            tie_word_embeddings=False)),
}
ATOL = 1e-4


def _tree_equal(a, b) -> bool:
  return (jax.tree.structure(a) == jax.tree.structure(b) and all(
      x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def build_hf(kind: str, overrides: dict, directory, seed: int = 0):
  """A random transformers model saved (safetensors) with a char tokenizer to `directory`."""
  config_cls, model_cls = {
      "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
      "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[kind]
  kw = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5,
            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=False)
  torch.manual_seed(seed)
  model = model_cls(config_cls(**{**kw, **overrides})).eval()
  with torch.no_grad():  # spread: logits std ~3-8, so greedy choices are never near ties
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_(1 + 0.2 * torch.randn_like(p))
      elif p.ndim == 1:  # biases (HF initialises them to zero, which would hide a mix-up)
        p.normal_(0, 0.5)
      elif "embed_tokens" in name:
        p.normal_(0, 1.0)
      else:
        p.normal_(0, (3.0 if "lm_head" in name else 1.0) / math.sqrt(p.shape[1]))
  model.save_pretrained(str(directory))
  hf_export.write_char_tokenizer(str(directory))
  return model


def hf_logits(model, tokens, attention_mask=None, position_ids=None) -> np.ndarray:
  as_t = lambda x: None if x is None else torch.tensor(np.asarray(x), dtype=torch.long)
  with torch.no_grad():
    return model(input_ids=as_t(tokens), attention_mask=as_t(attention_mask),
                 position_ids=as_t(position_ids)).logits.float().numpy()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  """name -> the saved checkpoint of CASES[name], its transformers model and our import."""
  built = {}

  def get(name: str):
    if name not in built:
      kind, overrides = CASES[name]
      path = tmp_path_factory.mktemp(name)
      hf = build_hf(kind, overrides, path)
      built[name] = types.SimpleNamespace(name=name, kind=kind, hf=hf, path=str(path),
                                          model=hf_import.load_hf_model(str(path)))
    return built[name]
  return get


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, checkpoints):
  return checkpoints(request.param)


def _prompts(vocab: int, lengths, seed: int = 0) -> list[list[int]]:
  rng = np.random.default_rng(seed)
  return [rng.integers(3, vocab, n).tolist() for n in lengths]


def test_config_maps_every_field(case):
  c, h = case.model.config, case.hf.config
  assert (c.vocab_size, c.num_key_value_heads, c.tie_word_embeddings) == (
      h.vocab_size, h.num_key_value_heads, h.tie_word_embeddings)
  assert c.head_size == (getattr(h, "head_dim", None) or h.hidden_size // h.num_attention_heads)
  assert c.attention_bias == (case.kind == "qwen2")
  assert c.rope_theta == h.rope_parameters["rope_theta"]
  assert c.rope_scaling_dict.get("rope_type", "default") == h.rope_parameters["rope_type"]
  assert ("lm_head" in case.model.params) == (not c.tie_word_embeddings)


def test_logits_match_transformers_on_left_padded_batch(case):
  prompts = _prompts(case.model.config.vocab_size, (13, 7, 2))
  tokens, valid = pad_left(prompts, PAD)
  ours = np.asarray(case.model(tokens, valid))                   # [3, 13, V]
  assert ours.dtype == np.float32
  positions = np.maximum(np.cumsum(valid, 1) - 1, 0)
  batched = hf_logits(case.hf, tokens, valid.astype(np.int64), positions)
  for i, p in enumerate(prompts):
    alone = hf_logits(case.hf, [p])[0]                             # [len, V], no padding at all
    np.testing.assert_allclose(ours[i, -len(p):], alone, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours[i, valid[i]], batched[i, valid[i]], atol=ATOL, rtol=0)
  assert np.abs(alone).max() > 1.0  # the comparison is at a scale where 1e-4 means something


def test_greedy_generation_matches_hf_generate(case):
  prompts = _prompts(case.model.config.vocab_size, (5, 9, 2), seed=1)
  tokens, valid = pad_left(prompts, PAD)
  out = generate(case.model.graphdef, case.model.params, jnp.asarray(tokens), jnp.asarray(valid),
                 jax.random.key(0), num_samples=1,
                 config=SamplingConfig(temperature=0.0, max_new_tokens=32), eos_id=EOS,
                 pad_id=PAD)
  with torch.no_grad():  # the mask must be explicit: HF would infer one from pad_token_id
    ref = case.hf.generate(input_ids=torch.tensor(tokens, dtype=torch.long),
                           attention_mask=torch.tensor(valid, dtype=torch.long),
                           do_sample=False, max_new_tokens=32, eos_token_id=EOS,
                           pad_token_id=PAD).numpy()[:, tokens.shape[1]:]
  ref = np.pad(ref, ((0, 0), (0, 32 - ref.shape[1])), constant_values=PAD)
  np.testing.assert_array_equal(np.asarray(out.tokens), ref)
  assert np.asarray(out.lengths).max() >= 16  # long enough to exercise the KV cache


def test_export_round_trip_is_bit_identical_and_transformers_loads_it(case, tmp_path):
  model = case.model
  hf_export.save_hf_checkpoint(str(tmp_path), model.graphdef, model.params,
                               tokenizer_dir=case.path)
  again = hf_import.load_hf_model(str(tmp_path))
  assert again.config == model.config
  assert _tree_equal(again.params, model.params)
  assert again.tokenizer.encode("a+b=3", bos=True) == model.tokenizer.encode("a+b=3", bos=True)
  reloaded = type(case.hf).from_pretrained(str(tmp_path)).eval()
  original = case.hf.state_dict()
  for name, tensor in reloaded.state_dict().items():
    assert torch.equal(tensor, original[name]), name
  tokens = np.asarray(_prompts(model.config.vocab_size, (11,), seed=2))
  np.testing.assert_array_equal(hf_logits(reloaded, tokens), hf_logits(case.hf, tokens))


def test_export_as_the_other_architecture_keeps_the_function(case, tmp_path):
  """Llama -> Qwen2 adds zero q/k/v biases; Qwen2 -> Llama adds a zero o_proj bias."""
  other = {"llama": "qwen2", "qwen2": "llama"}[case.kind]
  hf_export.save_hf_checkpoint(str(tmp_path), case.model.config, case.model.params,
                               model_type=other)
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
  assert reloaded.config.model_type == other
  tokens = np.asarray(_prompts(case.model.config.vocab_size, (11,), seed=3))
  np.testing.assert_allclose(hf_logits(reloaded, tokens), hf_logits(case.hf, tokens),
                             atol=1e-5, rtol=0)
  again = hf_import.load_hf_model(str(tmp_path))
  np.testing.assert_allclose(np.asarray(again(tokens)), np.asarray(case.model(tokens)),
                             atol=1e-5, rtol=0)


def test_sharded_index_loads_each_tensor_onto_the_mesh(checkpoints, tmp_path):
  path = str(tmp_path / "hf")
  checkpoints("qwen2_gqa_tied_bias").hf.save_pretrained(path, max_shard_size="20KB")
  index = json.load(open(os.path.join(path, hf_import.SAFETENSORS_INDEX)))
  assert hf_import.is_hf_checkpoint(path)
  assert len(set(index["weight_map"].values())) > 3
  model = hf_import.load_hf_model(path)
  mesh = sharding.make_mesh()                                      # fsdp over 8 devices
  params = hf_import.load_hf_params(path, model.config, mesh=mesh)
  assert _tree_equal(params, model.params)
  expected = sharding.param_shardings(params, mesh)
  for x, s in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
    assert x.sharding.is_equivalent_to(s, x.ndim)
  per_device = sharding.bytes_per_device(params)
  total = sum(x.nbytes for x in jax.tree.leaves(params))
  assert len(per_device) == 8 and max(per_device.values()) < total / 4
  # Export with a shard limit writes an index too, and reads back identically.
  out = tmp_path / "export"
  hf_export.save_hf_checkpoint(str(out), model.config, params, max_shard_size=30_000)
  assert os.path.exists(out / hf_import.SAFETENSORS_INDEX)
  assert not os.path.exists(out / hf_import.SAFETENSORS)
  assert _tree_equal(hf_import.load_hf_params(str(out), model.config), model.params)


def test_bf16_load_gives_bf16_params_and_fp32_logits(checkpoints):
  case = checkpoints("qwen2_gqa_tied_bias")
  bf16 = hf_import.load_hf_model(case.path, dtype=jnp.bfloat16)
  assert {x.dtype for x in jax.tree.leaves(bf16.params)} == {jnp.dtype(jnp.bfloat16)}
  cast = jax.tree.map(lambda x: np.asarray(x).astype(jnp.bfloat16), case.model.params)
  assert _tree_equal(bf16.params, cast)  # one rounding, as torch's .to(bfloat16)
  tokens = np.asarray(_prompts(bf16.config.vocab_size, (12,), seed=4))
  logits, ref = np.asarray(bf16(tokens)), np.asarray(case.model(tokens))
  assert logits.dtype == np.float32
  assert np.abs(logits - ref).max() < 0.05 * np.abs(ref).max()


def test_llama_attention_bias_needs_a_zero_o_proj_bias(tmp_path):
  hf = build_hf("llama", dict(num_key_value_heads=2, attention_bias=True), tmp_path / "zero")
  with torch.no_grad():
    for layer in hf.model.layers:
      layer.self_attn.o_proj.bias.zero_()
  hf.save_pretrained(str(tmp_path / "zero"))
  model = hf_import.load_hf_model(str(tmp_path / "zero"))
  assert model.config.attention_bias
  tokens = np.asarray(_prompts(128, (9,)))
  np.testing.assert_allclose(np.asarray(model(tokens)), hf_logits(hf, tokens), atol=ATOL, rtol=0)
  build_hf("llama", dict(num_key_value_heads=2, attention_bias=True), tmp_path / "nonzero")
  with pytest.raises(ValueError, match="o_proj.bias is non-zero"):
    hf_import.load_hf_model(str(tmp_path / "nonzero"))


def test_config_rope_forms_and_clear_errors(tmp_path):
  base = dict(model_type="llama", vocab_size=128, hidden_size=64, intermediate_size=128,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
  legacy = hf_import.config_from_hf(
      {**base, "rope_theta": 5e5, "rope_scaling": {"type": "linear", "factor": 4.0}})
  v5 = hf_import.config_from_hf({**base, "rope_parameters": {
      "rope_theta": 5e5, "rope_type": "linear", "factor": 4.0}})
  assert legacy == v5 and v5.rope_theta == 5e5
  assert v5.rope_scaling_dict == {"rope_type": "linear", "factor": 4.0}
  default = hf_import.config_from_hf({**base, "rope_parameters": {"rope_theta": 1e4,
                                                                  "rope_type": "default"}})
  assert default.rope_scaling is None and default.head_size == 16
  with pytest.raises(ValueError, match="valid: llama, qwen2"):
    hf_import.config_from_hf({**base, "model_type": "mistral"})
  with pytest.raises(ValueError, match="valid: default, linear, llama3"):
    hf_import.config_from_hf({**base, "rope_parameters": {"rope_theta": 1e4, "rope_type": "yarn",
                                                          "factor": 4.0}})
  with pytest.raises(ValueError, match="sliding"):
    hf_import.config_from_hf({**base, "model_type": "qwen2", "use_sliding_window": True})
  (tmp_path / "pytorch_model.bin").write_bytes(b"")
  (tmp_path / "config.json").write_text(json.dumps(base))  # as a run's workdir has one too
  assert not hf_import.is_hf_checkpoint(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="pickle"):
    hf_import.load_hf_params(str(tmp_path), legacy)


TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'skip' %}{% continue %}{% endif %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + m['role']) }}{% endif %}\n"
    "<|{{ m['role'] }}|>\n"
    "{% if m['role'] == 'system' %}{{ m['content'] | tojson }}{% else %}"
    "{{ m['content'] | trim }}{% endif %}{{ eos_token }}\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
MESSAGES = [{"role": "system", "content": "Be brief, café."}, {"role": "skip", "content": "x"},
            {"role": "user", "content": "  2+3?  "}, {"role": "assistant", "content": "5"},
            {"role": "user", "content": "7*8?"}]


@pytest.mark.parametrize("source", ["tokenizer_config", "jinja_file"])
def test_chat_template_renders_as_transformers(source, tmp_path):
  hf_export.write_char_tokenizer(str(tmp_path))
  if source == "jinja_file":
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
  else:
    config = json.load(open(tmp_path / "tokenizer_config.json"))
    json.dump({**config, "chat_template": TEMPLATE}, open(tmp_path / "tokenizer_config.json", "w"))
  ours = chat_tokenizer.CheckpointTokenizer(str(tmp_path))
  theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  assert ours.chat_template == TEMPLATE
  for gen in (True, False):
    expected = theirs.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=gen)
    assert ours.apply_chat_template(MESSAGES, add_generation_prompt=gen) == expected
  assert '"Be brief, café."' in expected and expected.startswith("<bos>")
  with pytest.raises(Exception, match="unknown role tool"):
    ours.apply_chat_template([{"role": "tool", "content": "?"}])
  # chat_prompts: the trainer's prompt encoding goes through the template (one BOS).
  chat = chat_tokenizer.CheckpointTokenizer(str(tmp_path), chat_prompts=True)
  ids = chat.encode("2+3?", bos=True)
  rendered = ours.apply_chat_template([{"role": "user", "content": "2+3?"}])
  assert ids == ours.encode(rendered) and ids.count(BOS) == 1 and ids[0] == BOS
  assert rendered.endswith("<|assistant|>\n")


def test_tokenizer_without_bos_or_pad(tmp_path):
  hf_export.write_char_tokenizer(str(tmp_path))
  config = json.load(open(tmp_path / "tokenizer_config.json"))
  del config["bos_token"], config["pad_token"]
  json.dump(config, open(tmp_path / "tokenizer_config.json", "w"))
  tok = chat_tokenizer.CheckpointTokenizer(str(tmp_path))
  assert tok.bos_id is None and tok.pad_id == tok.eos_id == EOS
  assert tok.encode("ab", bos=True, eos=True) == CharTokenizer().encode("ab", eos=True)
  del config["eos_token"]
  json.dump(config, open(tmp_path / "tokenizer_config.json", "w"))
  json.dump({"eos_token_id": [EOS, 5]}, open(tmp_path / "config.json", "w"))
  assert chat_tokenizer.CheckpointTokenizer(str(tmp_path)).eos_id == EOS  # first of a list


def test_load_hf_policy_runs_through_generate(checkpoints):
  case = checkpoints("llama_gqa_untied_llama3")
  policy = hf_import.load_hf_policy(case.path, mesh=sharding.make_mesh())
  tokenizer, config, graphdef, params = (policy.tokenizer, policy.config, policy.graphdef,
                                         policy.params)
  char = CharTokenizer()
  assert config == case.model.config
  assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id) == (BOS, EOS, PAD)
  prompts = ["12+3=", "7*8 = ?"]
  assert [tokenizer.encode(p, bos=True) for p in prompts] == [char.encode(p, bos=True)
                                                              for p in prompts]
  tokens, valid = encode_prompts(tokenizer, prompts, 10)
  out = generate(graphdef, params, jnp.asarray(tokens), jnp.asarray(valid), jax.random.key(1),
                 num_samples=2, config=SamplingConfig(temperature=1.0, max_new_tokens=8),
                 eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
  assert out.tokens.shape == (4, 8)
  # The embedding table (128) is larger than the tokenizer (99), as in real checkpoints;
  # ids without a token decode to nothing.
  tokens = np.asarray(out.tokens)
  known = np.where(tokens < char.vocab_size, tokens, PAD)
  assert [tokenizer.decode(t) for t in tokens] == [char.decode(t) for t in known]
  assert np.isfinite(np.asarray(out.logprobs)).all()
