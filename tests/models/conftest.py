"""Tiny GGUF files written with `gguf.GGUFWriter`, as llama.cpp's converter writes them.

`write_gguf(path, arch, qtype)` draws a random Llama / Qwen2 model in HF's layout
(hidden 256, so every row holds whole K-quant blocks of 256), permutes a Llama's q/k rows
as the converter does, and stores every matrix in `qtype`: through `gguf.quants.quantize`
where gguf has a quantizer, else as random raw blocks built per the block format
(`raw_blocks`). Norms stay F32. The tokenizer is a byte-level BPE over the 256 byte
tokens, a few merges and the ChatML specials.
"""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="needs gguf (pip install -c requirements.lock gguf)")

from explore_rl.models.gguf_tokenizer import byte_alphabet  # noqa: E402

QUANTIZERS = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
K_QUANTS = ("Q4_K", "Q5_K", "Q6_K")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "Ġ s", "o n", "1 2", "Ġ w", "r e", "a n",
          "Ġ =", "Ġ +", "Ġ 1", "i s", "Ġ is", "Ġ in", "o u", "Ġ c"]
TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
            "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
DIMS = dict(hidden=256, ffn=512, layers=2, heads=4, kv_heads=2)


def tokenizer_vocab():
  """(tokens, token types): the specials (control, type 3), the byte alphabet, merges."""
  tokens = SPECIALS + list(byte_alphabet().values()) + [m.replace(" ", "") for m in MERGES]
  return tokens, [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))


def raw_blocks(qtype: str, rows: int, cols: int, rng) -> np.ndarray:
  """Random raw blocks uint8 [rows, cols / block * block bytes] of a type gguf cannot
  quantize to: random quants and scales; a K-quant's fp16 super-block scales are sized for
  weights of ~1/sqrt(cols)."""
  block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]]
  blocks = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
  scale = lambda n: rng.uniform(0.2, 1.0, (rows, cols // block, n)).astype(np.float16)  # noqa: E731
  if qtype == "Q6_K":   # ql[128] qh[64] scales int8[16] d
    blocks[..., -2:] = (scale(1) * 2e-3).view(np.uint8)
  elif qtype in K_QUANTS:  # d dmin scales[12] (qh[32]) qs[128]
    blocks[..., :4] = (scale(2) * 2e-3).view(np.uint8)
  return blocks.reshape(rows, -1)


def _store(writer, name: str, w: np.ndarray, qtype: str, rng):
  kind = gguf.GGMLQuantizationType[qtype]
  if w.ndim == 1 or qtype == "F32":
    writer.add_tensor(name, w.astype(np.float32))
  elif qtype in QUANTIZERS:
    writer.add_tensor(name, gguf.quants.quantize(w.astype(np.float32), kind), raw_dtype=kind)
  else:
    writer.add_tensor(name, raw_blocks(qtype, *w.shape, rng), raw_dtype=kind)


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
  """llama.cpp's converter: per head, rows [2, head_dim/2] -> [head_dim/2, 2]."""
  return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
      w.shape)


def write_gguf(path, arch: str = "llama", qtype: str = "F32", *, seed: int = 0, tied=True,
               vocab: int | None = None, meta: dict | None = None, skip=(),
               types: dict | None = None) -> str:
  """Write a tiny model; `meta` overrides metadata keys ({arch} stands for the
  architecture), `skip` drops keys, `types` gives some tensors another type."""
  rng = np.random.default_rng(seed)
  tokens, token_types = tokenizer_vocab()
  d, f, layers, heads, kv = (DIMS[k] for k in ("hidden", "ffn", "layers", "heads", "kv_heads"))
  hd = d // heads
  vocab = vocab or len(tokens)
  tensors = {"token_embd.weight": rng.normal(0, 1, (vocab, d)),
             "output_norm.weight": 1 + 0.2 * rng.normal(size=d)}
  if not tied:
    tensors["output.weight"] = rng.normal(0, 3 / np.sqrt(d), (vocab, d))
  for i in range(layers):
    p = f"blk.{i}."
    shapes = {"attn_q": (heads * hd, d), "attn_k": (kv * hd, d), "attn_v": (kv * hd, d),
              "attn_output": (d, heads * hd), "ffn_gate": (f, d), "ffn_up": (f, d),
              "ffn_down": (d, f)}
    for n, shape in shapes.items():
      tensors[p + n + ".weight"] = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
    if arch == "qwen2":
      for n in ("attn_q", "attn_k", "attn_v"):
        tensors[p + n + ".bias"] = rng.normal(0, 0.5, shapes[n][0])
    tensors[p + "attn_norm.weight"] = 1 + 0.2 * rng.normal(size=d)
    tensors[p + "ffn_norm.weight"] = 1 + 0.2 * rng.normal(size=d)
    if arch == "llama":
      tensors[p + "attn_q.weight"] = _permute(tensors[p + "attn_q.weight"], heads)
      tensors[p + "attn_k.weight"] = _permute(tensors[p + "attn_k.weight"], kv)

  a = arch if arch in ("llama", "qwen2") else "llama"
  values = {
      f"{a}.block_count": layers, f"{a}.context_length": 512,
      f"{a}.embedding_length": d, f"{a}.feed_forward_length": f,
      f"{a}.attention.head_count": heads, f"{a}.attention.head_count_kv": kv,
      f"{a}.rope.freq_base": 10000.0 if arch == "llama" else 1e6,
      f"{a}.attention.layer_norm_rms_epsilon": 1e-5, f"{a}.rope.dimension_count": hd,
      "tokenizer.ggml.model": "gpt2",
      "tokenizer.ggml.pre": "smollm" if arch == "llama" else "qwen2",
      "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": token_types,
      "tokenizer.ggml.merges": MERGES, "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.padding_token_id": 2,
      "tokenizer.ggml.add_bos_token": False, "tokenizer.chat_template": TEMPLATE}
  values.update({k.replace("{arch}", a): v for k, v in (meta or {}).items()})
  writer = gguf.GGUFWriter(str(path), arch)   # writes general.architecture
  for key, value in values.items():
    if key in skip:
      continue
    if isinstance(value, str):
      writer.add_string(key, value)
    elif isinstance(value, bool):
      writer.add_bool(key, value)
    elif isinstance(value, float):
      writer.add_float32(key, value)
    elif isinstance(value, int):
      writer.add_uint32(key, value)
    elif key == "tokenizer.ggml.token_type":
      writer.add_array(key, [int(t) for t in value])   # int32 array
    else:
      writer.add_array(key, value)
  for name, w in tensors.items():
    _store(writer, name, w, (types or {}).get(name, qtype), rng)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return str(path)


@pytest.fixture(scope="session", name="write_gguf")
def write_gguf_fixture():
  """write_gguf(path, arch="llama", qtype="F32", **kw) -> path (`write_gguf` above)."""
  return write_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
  """tiny_gguf(arch="llama", qtype="F32", **kw) -> path of a tiny GGUF file (cached)."""
  cache = {}

  def make(arch="llama", qtype="F32", **kw):
    key = (arch, qtype, tuple(sorted((k, repr(v)) for k, v in kw.items())))
    if key not in cache:
      cache[key] = write_gguf(tmp_path_factory.mktemp("gguf") / f"{arch}-{qtype}.gguf", arch,
                              qtype, **kw)
    return cache[key]
  return make
