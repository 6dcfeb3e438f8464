"""word2vec files written by gensim, for rensa's reader, and a check that gensim reads rensa's.

Run from the repository root with gensim 4.4.0 installed (`cargo xtask bench word2vec --peers`
creates such a venv in .venv-peers):

    .venv-peers/bin/python assets/golden/word2vec/gensim_fixture.py

It writes gensim.txt and gensim.bin (gensim's `save_word2vec_format`, text and binary) from the
vectors below, and gensim.json with those vectors as gensim reads its own files back. Then it
loads rensa.txt and rensa.bin (written by rensa: `RENSA_WRITE_FIXTURE=1 cargo test -p rensa-models --test suite
rensa_writes_the_files` regenerates them) with `load_word2vec_format` and checks that
they hold the same words and vectors as gensim.json.
"""
import json
import os

import numpy as np
from gensim.models import KeyedVectors

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = ["the", "king", "queen", "café", "日本", "naïve-word", "x"]
DIMS = 5

rng = np.random.default_rng(20261204)
vectors = rng.standard_normal((len(WORDS), DIMS)).astype(np.float32)
vectors[6] = [0.0, -0.0, 1e-5, 3.4e38, -1.5]

kv = KeyedVectors(DIMS)
kv.add_vectors(WORDS, vectors)
kv.save_word2vec_format(os.path.join(HERE, "gensim.txt"), binary=False)
kv.save_word2vec_format(os.path.join(HERE, "gensim.bin"), binary=True)

expected = {w: kv[w].tolist() for w in WORDS}
with open(os.path.join(HERE, "gensim.json"), "w") as f:
    json.dump({"words": WORDS, "dims": DIMS, "vectors": [expected[w] for w in WORDS]}, f, ensure_ascii=False, indent=1)

for name, binary in [("rensa.txt", False), ("rensa.bin", True)]:
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        print(f"{name}: absent, not checked")
        continue
    got = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert list(got.index_to_key) == WORDS, (name, got.index_to_key)
    for w in WORDS:
        assert np.array_equal(got[w], kv[w]), (name, w, got[w], kv[w])
    print(f"{name}: gensim reads the same {len(WORDS)} words and vectors")
