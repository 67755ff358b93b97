"""all-MiniLM-L6-v2 in JAX: unit norm, determinism, published similarities, HF parity."""
import numpy as np
import pytest

from explore_rl.rewards.minilm import MiniLM, default_model_dir, embed, load_minilm

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


@pytest.fixture(scope="module")
def model() -> MiniLM:
  return load_minilm()


def test_unit_norm_float32_and_cached(model):
  e = embed(SENTENCES + [""])
  assert e.shape == (4, 384) and e.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
  assert load_minilm() is model  # One model per process.
  assert model.embed([]).shape == (0, 384)


def test_matches_published_sentence_transformers_similarities(model):
  # The sentence-transformers quickstart prints these cosine similarities for
  # all-MiniLM-L6-v2: [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411], [0.1046, 0.1411, 1]].
  e = model.embed(SENTENCES)
  np.testing.assert_allclose(e @ e.T, [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411],
                                       [0.1046, 0.1411, 1]], atol=1e-4)


def test_paraphrases_closer_than_unrelated(model):
  e = model.embed(["A man is eating food.", "A man is eating a piece of bread.",
                   "The girl is carrying a baby."])
  assert e[0] @ e[1] > 0.7 > 0.0 > e[0] @ e[2]


def test_deterministic_and_independent_of_batching(model):
  texts = ["a much longer sentence " * 12] + SENTENCES  # Pads the batch to 64 tokens.
  batched = model.embed(texts)  # Sorted by length inside: the order must come back.
  alone = np.concatenate([model.embed([t]) for t in texts])
  np.testing.assert_array_equal(model.embed(texts), batched)
  np.testing.assert_allclose(batched, alone, atol=1e-6)
  # Batches of 2 + 2, and one batch of 3 rows padded to 4, give the same vectors.
  np.testing.assert_allclose(model.embed(texts, batch_size=2), batched, atol=1e-6)
  np.testing.assert_allclose(model.embed(texts[:3], batch_size=8), batched[:3], atol=1e-6)


def test_tokenize_pads_to_bucket_and_truncates_to_256(model):
  ids, mask = model.tokenize(["word " * 400, "hi"])
  assert ids.shape == (2, 256) and ids.dtype == np.int32
  np.testing.assert_array_equal(mask.sum(1), [256, 3])  # [CLS] hi [SEP]
  assert ids[1, 0] == 101 and ids[1, 2] == 102
  ids, _ = model.tokenize(["hi", "a b c d e f g h i j k l m n o p q"])  # 19 tokens -> 32.
  assert ids.shape == (2, 32)


def test_matches_transformers_bert_model(model):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  hf = transformers.BertModel.from_pretrained(str(default_model_dir())).eval()
  texts = SENTENCES + ["word " * 300, "Numbers: 3 * (4 + 5) = 27."]
  ids, mask = model.tokenize(texts)
  with torch.no_grad():
    hidden = hf(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask, dtype=torch.long)).last_hidden_state.numpy()
  m = mask[..., None].astype(np.float32)
  pooled = (hidden * m).sum(1) / m.sum(1)
  expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
  np.testing.assert_allclose(model.embed(texts), expected, atol=1e-5)
